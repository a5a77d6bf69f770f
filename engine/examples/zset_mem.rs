//! Rough memory per member of a 1M-member sorted set (`cargo run --release
//! --example zset_mem`): live heap bytes counted by a wrapping allocator, as
//! requested and as glibc malloc chunks (size + 8, rounded up to 16, >= 32).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::Instant;

use memlog_engine::keyspace::ZSet;

struct Counting;
static REQ: AtomicIsize = AtomicIsize::new(0);
static CHUNK: AtomicIsize = AtomicIsize::new(0);

fn chunk(n: usize) -> isize {
    (((n + 8 + 15) & !15).max(32)) as isize
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        REQ.fetch_add(l.size() as isize, Relaxed);
        CHUNK.fetch_add(chunk(l.size()), Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        REQ.fetch_sub(l.size() as isize, Relaxed);
        CHUNK.fetch_sub(chunk(l.size()), Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        REQ.fetch_add(n as isize - l.size() as isize, Relaxed);
        CHUNK.fetch_add(chunk(n) - chunk(l.size()), Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static A: Counting = Counting;

fn main() {
    measure::<ZSet>();
}

fn measure<Z: Default + ZApi>() {
    const N: usize = 1_000_000;
    let (r0, c0) = (REQ.load(Relaxed), CHUNK.load(Relaxed));
    let t = Instant::now();
    let mut z = Z::default();
    // Members "member:<i>" (8-14 bytes), scores in shuffled order.
    for i in 0..N {
        let s = (i.wrapping_mul(2_654_435_761) % N) as f64;
        z.insert(format!("member:{i}").as_bytes(), s);
    }
    let ins = t.elapsed();
    let (r1, c1) = (REQ.load(Relaxed), CHUNK.load(Relaxed));
    println!(
        "{N} members: {:.1} bytes/member requested, {:.1} bytes/member as malloc chunks; insert {:?}",
        (r1 - r0) as f64 / N as f64,
        (c1 - c0) as f64 / N as f64,
        ins
    );
    let t = Instant::now();
    let mut acc = 0usize;
    for i in (0..N).step_by(10_000) {
        acc += z.rank(format!("member:{i}").as_bytes()).unwrap_or(0);
        acc += z.iter_from_rank(i).next().map_or(0, |(m, _)| m.len());
    }
    println!("100 ZRANK + 100 select-by-rank: {:?} ({acc})", t.elapsed());
}

/// The `ZSet` calls measured (so that another implementation can be plugged
/// in for comparison).
trait ZApi {
    fn insert(&mut self, m: &[u8], s: f64) -> Option<f64>;
    fn rank(&self, m: &[u8]) -> Option<usize>;
    fn iter_from_rank(&self, i: usize) -> impl Iterator<Item = (&[u8], f64)>;
}

impl ZApi for ZSet {
    fn insert(&mut self, m: &[u8], s: f64) -> Option<f64> {
        ZSet::insert(self, m, s)
    }
    fn rank(&self, m: &[u8]) -> Option<usize> {
        ZSet::rank(self, m)
    }
    fn iter_from_rank(&self, i: usize) -> impl Iterator<Item = (&[u8], f64)> {
        ZSet::iter_from_rank(self, i)
    }
}

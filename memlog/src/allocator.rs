//! The process allocator: jemalloc, plus a few kept IO buffers of sled.
//!
//! Every txlog flush (each group commit, on every node and in the embedded
//! server) makes sled seal its IO buffer and allocate a new one: a whole
//! segment ([`SEGMENT_SIZE`], 8 MiB). jemalloc serves requests of 8 MiB and
//! more from its oversize arena, which hands freed pages back to the kernel
//! at once, so each new buffer was fresh memory and every page sled wrote
//! into it was a page fault and a page the kernel zeroed first: 0.85 faults
//! and about a quarter of the server's CPU per SET at pipeline 16 (embedded).
//! Freed buffers of exactly that layout go to a small free list instead and
//! are handed out again, pages still mapped. At most [`KEPT_BUFFERS`] are
//! kept (sled frees them in bursts, when its epoch GC runs), and
//! [`Allocator::release_if_idle`] returns them once writes stop, so an idle
//! process does not hold them. Every other allocation is jemalloc's.

use std::alloc::{GlobalAlloc, Layout};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use memlog_txlog::store::{IO_BUFFER_ALIGN, SEGMENT_SIZE};
use tikv_jemallocator::Jemalloc;

/// Buffers kept for reuse. With 8, about half the faults at SET pipeline 16
/// (embedded) were left: sled's epoch GC frees buffers in bursts.
pub const KEPT_BUFFERS: usize = 32;

/// jemalloc with a free list for sled's IO buffers (see the module docs).
pub struct Allocator {
    kept: [AtomicPtr<u8>; KEPT_BUFFERS],
    /// IO buffers allocated so far (kept or new).
    io_buffer_allocs: AtomicU64,
}

impl Allocator {
    pub const fn new() -> Self {
        Self {
            kept: [const { AtomicPtr::new(ptr::null_mut()) }; KEPT_BUFFERS],
            io_buffer_allocs: AtomicU64::new(0),
        }
    }

    /// Frees every kept buffer if no IO buffer was allocated since the last
    /// call (`seen` carries the count between calls). Called about once a
    /// second, so kept buffers outlive the writes that used them by 1-2 s.
    pub fn release_if_idle(&self, seen: &mut u64) {
        let now = self.io_buffer_allocs.load(Ordering::Relaxed);
        if now == *seen {
            for slot in &self.kept {
                let p = slot.swap(ptr::null_mut(), Ordering::Acquire);
                if !p.is_null() {
                    // SAFETY: kept pointers came from Jemalloc with this layout.
                    unsafe { Jemalloc.dealloc(p, io_buffer_layout()) };
                }
            }
        }
        *seen = now;
    }

    /// Bytes the application holds: jemalloc's `stats.allocated` less the
    /// kept IO buffers (freed by sled, so not its data). For INFO
    /// `used_memory` and maxmemory; `None` if jemalloc cannot say.
    pub fn allocated_bytes(&self) -> Option<u64> {
        // The statistics are a snapshot refreshed by advancing the epoch.
        tikv_jemalloc_ctl::epoch::advance().ok()?;
        let allocated = tikv_jemalloc_ctl::stats::allocated::read().ok()? as u64;
        let kept = self
            .kept
            .iter()
            .filter(|s| !s.load(Ordering::Relaxed).is_null())
            .count() as u64;
        Some(allocated.saturating_sub(kept * SEGMENT_SIZE as u64))
    }

    fn is_io_buffer(layout: Layout) -> bool {
        layout.size() == SEGMENT_SIZE && layout.align() == IO_BUFFER_ALIGN
    }
}

fn io_buffer_layout() -> Layout {
    // SAFETY: SEGMENT_SIZE is a valid size and IO_BUFFER_ALIGN a power of two.
    unsafe { Layout::from_size_align_unchecked(SEGMENT_SIZE, IO_BUFFER_ALIGN) }
}

impl Default for Allocator {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every pointer handed out came from `Jemalloc` with the same layout
// it is later freed or reallocated with (kept buffers all share one layout),
// and a kept pointer is owned by exactly one slot or one caller at a time
// (taken with `swap`, stored with `compare_exchange` into an empty slot).
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::is_io_buffer(layout) {
            self.io_buffer_allocs.fetch_add(1, Ordering::Relaxed);
            for slot in &self.kept {
                let p = slot.swap(ptr::null_mut(), Ordering::Acquire);
                if !p.is_null() {
                    return p;
                }
            }
        }
        unsafe { Jemalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if Self::is_io_buffer(layout) {
            for slot in &self.kept {
                if slot
                    .compare_exchange(ptr::null_mut(), p, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
            }
        }
        unsafe { Jemalloc.dealloc(p, layout) }
    }

    // A kept buffer is not zeroed: zeroed requests always go to jemalloc.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { Jemalloc.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { Jemalloc.realloc(p, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(a: &Allocator) -> usize {
        a.kept
            .iter()
            .filter(|s| !s.load(Ordering::Relaxed).is_null())
            .count()
    }

    #[test]
    fn kept_buffers_are_released_once_allocations_stop() {
        let a = Allocator::new();
        let mut seen = 0;
        unsafe {
            let p = a.alloc(io_buffer_layout());
            a.dealloc(p, io_buffer_layout());
            // An allocation since the last look: still busy, keep it.
            a.release_if_idle(&mut seen);
            assert_eq!(kept(&a), 1);
            a.release_if_idle(&mut seen);
            assert_eq!(kept(&a), 0);
        }
    }

    #[test]
    fn a_freed_io_buffer_is_handed_out_again() {
        let a = Allocator::new();
        unsafe {
            let p = a.alloc(io_buffer_layout());
            assert!(!p.is_null());
            assert_eq!(p as usize % IO_BUFFER_ALIGN, 0);
            p.write_bytes(7, SEGMENT_SIZE);
            a.dealloc(p, io_buffer_layout());
            let q = a.alloc(io_buffer_layout());
            assert_eq!(p, q, "the kept buffer is reused");
            // Its pages were kept, contents and all.
            assert_eq!(*q.add(SEGMENT_SIZE - 1), 7);
            Jemalloc.dealloc(q, io_buffer_layout());
        }
    }

    #[test]
    fn at_most_kept_buffers_are_kept() {
        let a = Allocator::new();
        unsafe {
            let ps: Vec<_> = (0..KEPT_BUFFERS + 2)
                .map(|_| a.alloc(io_buffer_layout()))
                .collect();
            for &p in &ps {
                a.dealloc(p, io_buffer_layout());
            }
            assert_eq!(kept(&a), KEPT_BUFFERS);
            let mut seen = a.io_buffer_allocs.load(Ordering::Relaxed);
            a.release_if_idle(&mut seen);
            assert_eq!(kept(&a), 0);
        }
    }

    #[test]
    fn other_layouts_are_jemallocs() {
        let a = Allocator::new();
        unsafe {
            for layout in [
                Layout::from_size_align(SEGMENT_SIZE, 8).expect("layout"),
                Layout::from_size_align(SEGMENT_SIZE / 2, IO_BUFFER_ALIGN).expect("layout"),
            ] {
                let p = a.alloc(layout);
                a.dealloc(p, layout);
            }
            assert_eq!(kept(&a), 0);
            let z = a.alloc_zeroed(io_buffer_layout());
            assert_eq!(*z.add(12345), 0);
            Jemalloc.dealloc(z, io_buffer_layout());
        }
    }
}

//! The sorted set: members ordered by (score, member), with O(1) score lookup
//! and O(log n) rank, select-by-rank, insert and remove.
//!
//! The order is kept in a skiplist with spans, as in Redis (`t_zset.c`), whose
//! nodes live in a `Vec` arena and link to each other by index. Member bytes
//! are stored once, as the keys of the member table (`map`); a node refers to
//! its member by its position in that table (kept up to date when
//! `swap_remove` moves the last entry), and the table maps each member to its
//! node.

use std::cmp::Ordering;

use super::value::{Elem, Map};

/// An f64 score with a total order (scores are never NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        // As in Redis, -0 and 0 compare equal (then by member).
        self.0.partial_cmp(&other.0).unwrap_or(Ordering::Equal)
    }
}

/// Most levels a node can have (Redis' ZSKIPLIST_MAXLEVEL).
const MAX_LEVEL: usize = 32;
/// Index of the header node; as a link target it means "none" (the header is
/// never anybody's successor).
const HEAD: u32 = 0;

/// A forward link above level 0: the next node and how many level-0 steps it
/// skips.
#[derive(Debug, Clone, Copy, Default)]
struct Link {
    next: u32,
    span: u32,
}

#[derive(Debug, Clone)]
struct Node {
    score: f64,
    /// Position of the member in `ZSet::map`.
    midx: u32,
    /// Previous node at level 0 (`HEAD` for the first node).
    back: u32,
    /// Next node at level 0 (span 1); `HEAD` for the last one. In a free
    /// slot, the next free slot.
    next0: u32,
    /// Links of levels 1.. (empty for 3/4 of nodes, so no allocation).
    up: Box<[Link]>,
}

impl Node {
    fn new(score: f64, midx: u32, levels: usize) -> Node {
        Node {
            score,
            midx,
            back: HEAD,
            next0: HEAD,
            up: vec![Link::default(); levels - 1].into_boxed_slice(),
        }
    }
}

/// A sorted set.
#[derive(Debug, Clone, Default)]
pub struct ZSet {
    /// Member -> index of its node in `nodes`.
    map: Map<Elem, u32>,
    /// `nodes[0]` is the header (absent while the set is empty).
    nodes: Vec<Node>,
    /// Head of the list of free slots in `nodes` (linked by `next0`).
    free: u32,
    tail: u32,
    /// Levels in use (at least 1 once `nodes` has the header).
    level: usize,
    rng: u64,
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .map(|(m, s)| (m, Score(s)))
                .eq(other.iter().map(|(m, s)| (m, Score(s))))
    }
}

impl ZSet {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.map.get(member).map(|&x| self.nodes[x as usize].score)
    }

    /// Sets `member`'s score; returns the previous score, if any.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        // Redis' compact encoding stores -0 as the integer 0.
        let score = if score == 0.0 { 0.0 } else { score };
        if let Some((midx, _, &x)) = self.map.get_full(member) {
            let old = self.nodes[x as usize].score;
            if self.stays_in_place(x, score, member) {
                self.nodes[x as usize].score = score;
            } else {
                self.unlink(old, member);
                let x = self.link(score, member, midx as u32);
                self.map[midx] = x;
            }
            return Some(old);
        }
        if self.nodes.is_empty() {
            self.nodes.push(Node::new(0.0, 0, 1));
            self.level = 1;
            self.free = HEAD;
            self.tail = HEAD;
        }
        let (midx, _) = self.map.insert_full(member.into(), HEAD);
        let x = self.link(score, member, midx as u32);
        self.map[midx] = x;
        None
    }

    /// Removes `member`; returns its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (midx, _, &x) = self.map.get_full(member)?;
        let score = self.nodes[x as usize].score;
        self.unlink(score, member);
        self.map.swap_remove_index(midx);
        if let Some(&moved) = self.map.get_index(midx).map(|(_, x)| x) {
            self.nodes[moved as usize].midx = midx as u32;
        }
        if self.map.is_empty() {
            // Give the arena back.
            self.nodes = Vec::new();
            self.level = 0;
            self.free = HEAD;
            self.tail = HEAD;
        }
        Some(score)
    }

    /// Members in ascending (score, member) order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            z: self,
            front: self.first_node(),
            back: self.tail,
            left: self.len(),
        }
    }

    /// Members in ascending order starting at ascending rank `start`.
    pub fn iter_from_rank(&self, start: usize) -> Iter<'_> {
        match self.select(start) {
            Some(x) => Iter {
                z: self,
                front: x,
                back: self.tail,
                left: self.len() - start,
            },
            None => self.empty_iter(),
        }
    }

    /// Members in descending order starting at descending rank `start`.
    pub fn iter_rev_from_rank(&self, start: usize) -> std::iter::Rev<Iter<'_>> {
        if start >= self.len() {
            return self.empty_iter().rev();
        }
        let x = self.select(self.len() - 1 - start).expect("rank in range");
        Iter {
            z: self,
            front: self.first_node(),
            back: x,
            left: self.len() - start,
        }
        .rev()
    }

    /// Members in ascending order from the first with score >= `min`.
    pub fn iter_from_score(&self, min: f64) -> Iter<'_> {
        let n = self.count_while(|s| Score(s) < Score(min));
        self.iter_from_rank(n)
    }

    /// How many members, from the lowest, have a score satisfying `pred`,
    /// which must hold for a prefix of the ascending order (e.g. `s < x`):
    /// that is the rank of the first member whose score does not satisfy it.
    /// O(log n).
    pub fn count_while(&self, pred: impl Fn(f64) -> bool) -> usize {
        if self.is_empty() {
            return 0;
        }
        let mut x = HEAD;
        let mut rank = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let nx = self.next(x, i);
                if nx != HEAD && pred(self.nodes[nx as usize].score) {
                    rank += self.span(x, i) as usize;
                    x = nx;
                } else {
                    break;
                }
            }
        }
        rank
    }

    /// The first (lowest) member.
    pub fn first(&self) -> Option<(&[u8], f64)> {
        self.item(self.first_node())
    }

    /// The last (highest) member.
    pub fn last(&self) -> Option<(&[u8], f64)> {
        self.item(self.tail)
    }

    /// 0-based ascending rank of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let mut x = HEAD;
        let mut rank = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let nx = self.next(x, i);
                if nx != HEAD && self.key_lt(nx, score, member) {
                    rank += self.span(x, i) as usize;
                    x = nx;
                } else {
                    break;
                }
            }
        }
        Some(rank)
    }

    /// The member at index `i` of the hash part (for random sampling).
    pub fn get_index(&self, i: usize) -> Option<(&[u8], f64)> {
        self.map
            .get_index(i)
            .map(|(m, &x)| (&m[..], self.nodes[x as usize].score))
    }

    pub fn heap_size(&self) -> usize {
        self.map.keys().map(|m| m.len() + 96).sum::<usize>() + 64
    }

    // -- skiplist internals ------------------------------------------------

    fn empty_iter(&self) -> Iter<'_> {
        Iter {
            z: self,
            front: HEAD,
            back: HEAD,
            left: 0,
        }
    }

    fn first_node(&self) -> u32 {
        self.nodes.first().map_or(HEAD, |h| h.next0)
    }

    fn item(&self, x: u32) -> Option<(&[u8], f64)> {
        if x == HEAD {
            return None;
        }
        let n = &self.nodes[x as usize];
        let (m, _) = self.map.get_index(n.midx as usize).expect("member of node");
        Some((&m[..], n.score))
    }

    fn member_of(&self, x: u32) -> &[u8] {
        let midx = self.nodes[x as usize].midx as usize;
        &self.map.get_index(midx).expect("member of node").0[..]
    }

    /// Whether node `x` sorts before (score, member).
    fn key_lt(&self, x: u32, score: f64, member: &[u8]) -> bool {
        match Score(self.nodes[x as usize].score).cmp(&Score(score)) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => self.member_of(x) < member,
        }
    }

    /// Whether node `x` (holding `member`) keeps its position with a new score.
    fn stays_in_place(&self, x: u32, score: f64, member: &[u8]) -> bool {
        let n = &self.nodes[x as usize];
        (n.back == HEAD || self.key_lt(n.back, score, member))
            && (n.next0 == HEAD || !self.key_lt(n.next0, score, member))
    }

    fn next(&self, x: u32, i: usize) -> u32 {
        let n = &self.nodes[x as usize];
        if i == 0 {
            n.next0
        } else {
            n.up[i - 1].next
        }
    }

    fn set_next(&mut self, x: u32, i: usize, to: u32) {
        let n = &mut self.nodes[x as usize];
        if i == 0 {
            n.next0 = to;
        } else {
            n.up[i - 1].next = to;
        }
    }

    fn span(&self, x: u32, i: usize) -> u32 {
        if i == 0 {
            1
        } else {
            self.nodes[x as usize].up[i - 1].span
        }
    }

    fn span_mut(&mut self, x: u32, i: usize) -> &mut u32 {
        &mut self.nodes[x as usize].up[i - 1].span
    }

    /// The node of ascending rank `rank` (0-based).
    fn select(&self, rank: usize) -> Option<u32> {
        if rank >= self.len() {
            return None;
        }
        let target = rank + 1;
        let mut x = HEAD;
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let nx = self.next(x, i);
                let s = self.span(x, i) as usize;
                if nx != HEAD && traversed + s <= target {
                    traversed += s;
                    x = nx;
                } else {
                    break;
                }
            }
            if traversed == target {
                return Some(x);
            }
        }
        None
    }

    fn random_level(&mut self) -> usize {
        if self.rng == 0 {
            self.rng = 0x9E37_79B9_7F4A_7C15;
        }
        // xorshift64*
        let mut s = self.rng;
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        self.rng = s;
        let mut r = s.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // Each further level with probability 1/4 (Redis' ZSKIPLIST_P).
        let mut level = 1;
        while level < MAX_LEVEL && r & 3 == 0 {
            level += 1;
            r >>= 2;
        }
        level
    }

    /// The last node at each level that sorts before (score, member), and
    /// its rank.
    fn find_update(&self, score: f64, member: &[u8]) -> ([u32; MAX_LEVEL], [usize; MAX_LEVEL]) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0usize; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i + 1 == self.level { 0 } else { rank[i + 1] };
            loop {
                let nx = self.next(x, i);
                if nx != HEAD && self.key_lt(nx, score, member) {
                    rank[i] += self.span(x, i) as usize;
                    x = nx;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        (update, rank)
    }

    /// Links a new node for (score, member) whose member is at `midx` in the
    /// member table (zslInsert); returns its index.
    fn link(&mut self, score: f64, member: &[u8], midx: u32) -> u32 {
        let (mut update, mut rank) = self.find_update(score, member);
        // Nodes in the list before this one is linked.
        let length = self.map.len() - 1;
        let level = self.random_level();
        if level > self.level {
            let head = &mut self.nodes[HEAD as usize];
            if head.up.len() < level - 1 {
                let mut up = head.up.to_vec();
                up.resize(level - 1, Link::default());
                head.up = up.into_boxed_slice();
            }
            for i in self.level..level {
                rank[i] = 0;
                update[i] = HEAD;
                head.up[i - 1] = Link {
                    next: HEAD,
                    span: length as u32,
                };
            }
            self.level = level;
        }
        let node = Node::new(score, midx, level);
        let x = if self.free != HEAD {
            let x = self.free;
            self.free = self.nodes[x as usize].next0;
            self.nodes[x as usize] = node;
            x
        } else {
            assert!(self.nodes.len() < u32::MAX as usize, "sorted set too large");
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        };
        for i in 0..level {
            let u = update[i];
            let after = self.next(u, i);
            self.set_next(x, i, after);
            self.set_next(u, i, x);
            if i > 0 {
                let d = (rank[0] - rank[i]) as u32;
                let uspan = self.span(u, i);
                *self.span_mut(x, i) = uspan - d;
                *self.span_mut(u, i) = d + 1;
            }
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(level) {
            *self.span_mut(u, i) += 1;
        }
        self.nodes[x as usize].back = update[0];
        let after = self.nodes[x as usize].next0;
        if after != HEAD {
            self.nodes[after as usize].back = x;
        } else {
            self.tail = x;
        }
        x
    }

    /// Unlinks the node of (score, member) (zslDeleteNode) and frees its slot.
    fn unlink(&mut self, score: f64, member: &[u8]) {
        let (update, _) = self.find_update(score, member);
        let x = self.next(update[0], 0);
        debug_assert!(x != HEAD && self.member_of(x) == member);
        for (i, &u) in update.iter().enumerate().take(self.level) {
            if self.next(u, i) == x {
                if i > 0 {
                    let xs = self.span(x, i);
                    *self.span_mut(u, i) += xs;
                    *self.span_mut(u, i) -= 1;
                }
                let after = self.next(x, i);
                self.set_next(u, i, after);
            } else if i > 0 {
                *self.span_mut(u, i) -= 1;
            }
        }
        let (back, after) = {
            let n = &self.nodes[x as usize];
            (n.back, n.next0)
        };
        if after != HEAD {
            self.nodes[after as usize].back = back;
        } else {
            self.tail = back;
        }
        while self.level > 1 && self.next(HEAD, self.level - 1) == HEAD {
            self.level -= 1;
        }
        let n = &mut self.nodes[x as usize];
        n.up = Box::default();
        n.next0 = self.free;
        self.free = x;
    }
}

/// Iterator over a range of a sorted set, in either direction.
pub struct Iter<'a> {
    z: &'a ZSet,
    front: u32,
    back: u32,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let x = self.front;
        self.front = self.z.nodes[x as usize].next0;
        self.z.item(x)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let x = self.back;
        self.back = self.z.nodes[x as usize].back;
        self.z.item(x)
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Checks the skiplist invariants (links, spans, back pointers, member
    /// table cross-references) against a plain walk.
    fn check(z: &ZSet) {
        let items: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(items.len(), z.len());
        for w in items.windows(2) {
            assert!((Score(w[0].1), &w[0].0) < (Score(w[1].1), &w[1].0));
        }
        let rev: Vec<(Vec<u8>, f64)> = z.iter().rev().map(|(m, s)| (m.to_vec(), s)).collect();
        assert!(rev.iter().rev().eq(items.iter()));
        for (i, (m, s)) in items.iter().enumerate() {
            assert_eq!(z.rank(m), Some(i));
            assert_eq!(z.score(m), Some(*s));
            assert_eq!(z.select(i).map(|x| z.member_of(x)), Some(&m[..]));
        }
        for (i, (m, &x)) in z.map.iter().enumerate() {
            assert_eq!(z.nodes[x as usize].midx as usize, i);
            assert_eq!(z.member_of(x), &m[..]);
        }
    }

    #[test]
    fn basic_order_and_ranks() {
        let mut z = ZSet::default();
        assert_eq!(z.first(), None);
        assert_eq!(z.iter().next(), None);
        assert_eq!(z.iter_from_rank(0).next(), None);
        assert_eq!(z.iter_rev_from_rank(0).next(), None);
        assert_eq!(z.insert(b"b", 1.0), None);
        assert_eq!(z.insert(b"a", 1.0), None);
        assert_eq!(z.insert(b"c", -0.0), None);
        assert_eq!(z.insert(b"d", f64::INFINITY), None);
        assert_eq!(z.insert(b"e", f64::NEG_INFINITY), None);
        check(&z);
        let order: Vec<&[u8]> = z.iter().map(|(m, _)| m).collect();
        assert_eq!(order, [&b"e"[..], b"c", b"a", b"b", b"d"]);
        // -0 is stored as 0.
        assert_eq!(z.score(b"c").map(f64::to_bits), Some(0f64.to_bits()));
        assert_eq!(z.rank(b"a"), Some(2));
        assert_eq!(z.rank(b"zz"), None);
        let from2: Vec<&[u8]> = z.iter_from_rank(2).map(|(m, _)| m).collect();
        assert_eq!(from2, [&b"a"[..], b"b", b"d"]);
        let rev1: Vec<&[u8]> = z.iter_rev_from_rank(1).map(|(m, _)| m).collect();
        assert_eq!(rev1, [&b"b"[..], b"a", b"c", b"e"]);
        let s: Vec<&[u8]> = z.iter_from_score(0.0).map(|(m, _)| m).collect();
        assert_eq!(s, [&b"c"[..], b"a", b"b", b"d"]);
        assert_eq!(z.count_while(|s| s <= 1.0), 4);
        assert_eq!(z.insert(b"a", 5.0), Some(1.0));
        assert_eq!(z.insert(b"b", 1.5), Some(1.0)); // stays in place
        check(&z);
        assert_eq!(z.remove(b"e"), Some(f64::NEG_INFINITY));
        assert_eq!(z.remove(b"e"), None);
        check(&z);
        assert_eq!(z.first(), Some((&b"c"[..], 0.0)));
        assert_eq!(z.last(), Some((&b"d"[..], f64::INFINITY)));
        let other = z.clone();
        assert_eq!(z, other);
        for m in [&b"a"[..], b"b", b"c", b"d"] {
            z.remove(m);
        }
        assert!(z.is_empty());
        assert!(z.nodes.is_empty());
        assert_eq!(z.insert(b"x", 1.0), None);
        check(&z);
    }

    /// Randomized model test against a sorted Vec.
    #[test]
    fn model() {
        let mut rng = StdRng::seed_from_u64(7);
        for round in 0..4 {
            let mut z = ZSet::default();
            let mut model: Vec<(Score, Vec<u8>)> = Vec::new();
            let members = [20, 200, 2000, 50][round];
            for step in 0..6000 {
                let m = format!("m{}", rng.gen_range(0..members)).into_bytes();
                let score = match rng.gen_range(0..6) {
                    0 => 0.0,
                    1 => -0.0,
                    2 => rng.gen_range(-3..3) as f64,
                    3 => [f64::INFINITY, f64::NEG_INFINITY][rng.gen_range(0..2)],
                    _ => rng.gen_range(-100.0..100.0),
                };
                let pos = model.iter().position(|(_, x)| *x == m);
                match rng.gen_range(0..10) {
                    0..=5 => {
                        let old = pos.map(|p| model.remove(p).0 .0);
                        let s = if score == 0.0 { 0.0 } else { score };
                        let at = model.partition_point(|e| *e < (Score(s), m.clone()));
                        model.insert(at, (Score(s), m.clone()));
                        assert_eq!(z.insert(&m, score), old);
                    }
                    6..=7 => {
                        let old = pos.map(|p| model.remove(p).0 .0);
                        assert_eq!(z.remove(&m), old);
                    }
                    _ => {
                        assert_eq!(z.rank(&m), pos);
                        assert_eq!(z.score(&m), pos.map(|p| model[p].0 .0));
                    }
                }
                assert_eq!(z.len(), model.len());
                // Ranges by rank, both directions.
                let start = rng.gen_range(0..=model.len() + 1);
                let n = rng.gen_range(0..10);
                let got: Vec<(&[u8], f64)> = z.iter_from_rank(start).take(n).collect();
                let want: Vec<(&[u8], f64)> = model
                    .iter()
                    .skip(start)
                    .take(n)
                    .map(|(s, m)| (&m[..], s.0))
                    .collect();
                assert_eq!(got, want);
                let got: Vec<(&[u8], f64)> = z.iter_rev_from_rank(start).take(n).collect();
                let want: Vec<(&[u8], f64)> = model
                    .iter()
                    .rev()
                    .skip(start)
                    .take(n)
                    .map(|(s, m)| (&m[..], s.0))
                    .collect();
                assert_eq!(got, want);
                // Score ranges.
                let min = rng.gen_range(-120.0..120.0f64).round();
                let got: Vec<(&[u8], f64)> = z.iter_from_score(min).take(n).collect();
                let want: Vec<(&[u8], f64)> = model
                    .iter()
                    .filter(|(s, _)| s.0 >= min)
                    .take(n)
                    .map(|(s, m)| (&m[..], s.0))
                    .collect();
                assert_eq!(got, want);
                assert_eq!(
                    z.count_while(|s| s <= min),
                    model.iter().filter(|(s, _)| s.0 <= min).count()
                );
                assert_eq!(z.first(), model.first().map(|(s, m)| (&m[..], s.0)));
                assert_eq!(z.last(), model.last().map(|(s, m)| (&m[..], s.0)));
                if step % 500 == 0 {
                    check(&z);
                    let all: Vec<(&[u8], f64)> = z.iter().collect();
                    let want: Vec<(&[u8], f64)> =
                        model.iter().map(|(s, m)| (&m[..], s.0)).collect();
                    assert_eq!(all, want);
                }
            }
            check(&z);
        }
    }

    #[test]
    fn large_ranks() {
        let mut z = ZSet::default();
        for i in 0..20_000u32 {
            z.insert(format!("{i:06}").as_bytes(), (i % 100) as f64);
        }
        for i in (0..20_000u32).step_by(997) {
            let m = format!("{i:06}");
            let r = z.rank(m.as_bytes()).unwrap();
            assert_eq!(z.iter_from_rank(r).next().unwrap().0, m.as_bytes());
        }
        for i in (0..20_000u32).step_by(3) {
            z.remove(format!("{i:06}").as_bytes());
        }
        check(&z);
    }
}

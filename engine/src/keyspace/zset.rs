//! The sorted set: members ordered by (score, member), with O(1) score lookup
//! and O(log n) rank, select-by-rank, insert and remove.
//!
//! The order is kept in a skiplist with spans, as in Redis (`t_zset.c`), whose
//! nodes live in a `Vec` arena and link to each other by index. A node's
//! links (its "tower", one per level) sit together in a second arena, and
//! each link also holds the score and tower of the node it points to: a
//! search compares against the next node and moves on to its tower without
//! touching the node itself, so each step costs one cache miss, as a step
//! through Redis' nodes (links inline) does, where reaching the links through
//! the node and a boxed slice of its upper levels had cost two or three
//! (ZADD at pipeline 16 spent 63 % of the server's time searching). Member bytes
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
/// End of a free list of towers.
const NO_TOWER: u32 = u32::MAX;

/// A node's link at one level: the next node at that level, how many level-0
/// steps it skips (1 at level 0), and that node's score and tower, kept here
/// so that a search needs nothing else to compare and move on.
#[derive(Debug, Clone, Copy)]
struct Link {
    next: u32,
    span: u32,
    next_tower: u32,
    next_score: f64,
}

impl Link {
    const NONE: Link = Link {
        next: HEAD,
        span: 0,
        next_tower: NO_TOWER,
        next_score: 0.0,
    };
}

#[derive(Debug, Clone)]
struct Node {
    score: f64,
    /// Position of the member in `ZSet::map`.
    midx: u32,
    /// Previous node at level 0 (`HEAD` for the first node). In a free slot,
    /// the next free slot.
    back: u32,
    /// Its links in `ZSet::links`: `links[tower + i]` is level `i`'s.
    tower: u32,
    /// How many links the tower has (for the header: how many it can hold,
    /// at least `ZSet::level`).
    levels: u32,
}

/// A sorted set.
#[derive(Debug, Clone, Default)]
pub struct ZSet {
    /// Member -> index of its node in `nodes`.
    map: Map<Elem, u32>,
    /// `nodes[0]` is the header (absent while the set is empty).
    nodes: Vec<Node>,
    /// The nodes' towers, each a run of `levels` links.
    links: Vec<Link>,
    /// Head of the list of free slots in `nodes` (linked by `back`).
    free: u32,
    /// Heads of the lists of free towers by height (linked by their first
    /// link's `next`); empty until a tower is freed.
    free_towers: Vec<u32>,
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
                // The links into it hold its score too (zslUpdateScore
                // searches for them likewise).
                let (update, _) = self.find_update(old, member);
                for (i, &u) in update.iter().enumerate().take(self.levels(x)) {
                    self.link_mut(u, i).next_score = score;
                }
                self.nodes[x as usize].score = score;
            } else {
                self.unlink(old, member);
                let x = self.link(score, member, midx as u32);
                self.map[midx] = x;
            }
            return Some(old);
        }
        if self.nodes.is_empty() {
            self.links.push(Link::NONE);
            self.nodes.push(Node {
                score: 0.0,
                midx: 0,
                back: HEAD,
                tower: 0,
                levels: 1,
            });
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
            // Give the arenas back.
            self.nodes = Vec::new();
            self.links = Vec::new();
            self.free_towers = Vec::new();
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
        let mut tower = self.nodes[HEAD as usize].tower as usize;
        let mut rank = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = &self.links[tower + i];
                if l.next != HEAD && pred(l.next_score) {
                    rank += span_of(l, i);
                    tower = l.next_tower as usize;
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
        Some(self.find_update(score, member).1[0])
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
        if self.nodes.is_empty() {
            HEAD
        } else {
            self.next(HEAD, 0)
        }
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

    /// Whether node `x`, of score `xs`, sorts before (score, member).
    fn sorts_before(&self, x: u32, xs: f64, score: f64, member: &[u8]) -> bool {
        match Score(xs).cmp(&Score(score)) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => self.member_of(x) < member,
        }
    }

    /// Whether node `x` sorts before (score, member).
    fn key_lt(&self, x: u32, score: f64, member: &[u8]) -> bool {
        self.sorts_before(x, self.nodes[x as usize].score, score, member)
    }

    /// Whether node `x` (holding `member`) keeps its position with a new score.
    fn stays_in_place(&self, x: u32, score: f64, member: &[u8]) -> bool {
        let back = self.nodes[x as usize].back;
        let next = self.next(x, 0);
        (back == HEAD || self.key_lt(back, score, member))
            && (next == HEAD || !self.key_lt(next, score, member))
    }

    fn levels(&self, x: u32) -> usize {
        self.nodes[x as usize].levels as usize
    }

    fn link_at(&self, x: u32, i: usize) -> &Link {
        &self.links[self.nodes[x as usize].tower as usize + i]
    }

    fn link_mut(&mut self, x: u32, i: usize) -> &mut Link {
        let tower = self.nodes[x as usize].tower as usize;
        &mut self.links[tower + i]
    }

    fn next(&self, x: u32, i: usize) -> u32 {
        self.link_at(x, i).next
    }

    /// Points `x`'s link at level `i` to `to`, with `to`'s score and tower.
    fn set_next(&mut self, x: u32, i: usize, to: u32) {
        let (next_score, next_tower) = if to == HEAD {
            (0.0, NO_TOWER)
        } else {
            let n = &self.nodes[to as usize];
            (n.score, n.tower)
        };
        let l = self.link_mut(x, i);
        l.next = to;
        l.next_score = next_score;
        l.next_tower = next_tower;
    }

    fn span_mut(&mut self, x: u32, i: usize) -> &mut u32 {
        &mut self.link_mut(x, i).span
    }

    /// A tower of `levels` links, reused from the free list or new.
    fn new_tower(&mut self, levels: usize) -> u32 {
        if let Some(free) = self.free_towers.get_mut(levels) {
            if *free != NO_TOWER {
                let t = *free;
                *free = self.links[t as usize].next;
                self.links[t as usize..t as usize + levels].fill(Link::NONE);
                return t;
            }
        }
        let t = self.links.len();
        assert!(t + levels < NO_TOWER as usize, "sorted set too large");
        self.links.resize(t + levels, Link::NONE);
        t as u32
    }

    fn free_tower(&mut self, tower: u32, levels: usize) {
        if self.free_towers.is_empty() {
            self.free_towers = vec![NO_TOWER; MAX_LEVEL + 1];
        }
        self.links[tower as usize].next = self.free_towers[levels];
        self.free_towers[levels] = tower;
    }

    /// The node of ascending rank `rank` (0-based).
    fn select(&self, rank: usize) -> Option<u32> {
        if rank >= self.len() {
            return None;
        }
        let target = rank + 1;
        let mut x = HEAD;
        let mut tower = self.nodes[HEAD as usize].tower as usize;
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = &self.links[tower + i];
                let s = span_of(l, i);
                if l.next != HEAD && traversed + s <= target {
                    traversed += s;
                    x = l.next;
                    tower = l.next_tower as usize;
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
        let mut tower = self.nodes[HEAD as usize].tower as usize;
        for i in (0..self.level).rev() {
            rank[i] = if i + 1 == self.level { 0 } else { rank[i + 1] };
            loop {
                let l = &self.links[tower + i];
                if l.next != HEAD && self.sorts_before(l.next, l.next_score, score, member) {
                    rank[i] += span_of(l, i);
                    x = l.next;
                    tower = l.next_tower as usize;
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
            let head_levels = self.levels(HEAD);
            if head_levels < level {
                // Nothing links to the header: its tower can move.
                let old = self.nodes[HEAD as usize].tower;
                let tower = self.new_tower(level);
                self.links
                    .copy_within(old as usize..old as usize + head_levels, tower as usize);
                self.free_tower(old, head_levels);
                let head = &mut self.nodes[HEAD as usize];
                head.tower = tower;
                head.levels = level as u32;
            }
            for i in self.level..level {
                rank[i] = 0;
                update[i] = HEAD;
                *self.link_mut(HEAD, i) = Link {
                    span: length as u32,
                    ..Link::NONE
                };
            }
            self.level = level;
        }
        let tower = self.new_tower(level);
        let node = Node {
            score,
            midx,
            back: update[0],
            tower,
            levels: level as u32,
        };
        let x = if self.free != HEAD {
            let x = self.free;
            self.free = self.nodes[x as usize].back;
            self.nodes[x as usize] = node;
            x
        } else {
            assert!(self.nodes.len() < u32::MAX as usize, "sorted set too large");
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        };
        for i in 0..level {
            let u = update[i];
            let after = *self.link_at(u, i);
            *self.link_mut(x, i) = after;
            self.set_next(u, i, x);
            if i > 0 {
                let d = (rank[0] - rank[i]) as u32;
                *self.span_mut(x, i) = after.span - d;
                *self.span_mut(u, i) = d + 1;
            }
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(level) {
            *self.span_mut(u, i) += 1;
        }
        let after = self.next(x, 0);
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
                let gone = *self.link_at(x, i);
                let l = self.link_mut(u, i);
                if i > 0 {
                    l.span = l.span + gone.span - 1;
                }
                l.next = gone.next;
                l.next_score = gone.next_score;
                l.next_tower = gone.next_tower;
            } else if i > 0 {
                *self.span_mut(u, i) -= 1;
            }
        }
        let back = self.nodes[x as usize].back;
        let after = self.next(x, 0);
        if after != HEAD {
            self.nodes[after as usize].back = back;
        } else {
            self.tail = back;
        }
        while self.level > 1 && self.next(HEAD, self.level - 1) == HEAD {
            self.level -= 1;
        }
        let (tower, levels) = {
            let n = &self.nodes[x as usize];
            (n.tower, n.levels as usize)
        };
        self.free_tower(tower, levels);
        self.nodes[x as usize].back = self.free;
        self.free = x;
    }
}

/// How many level-0 steps link `l` at level `i` skips.
fn span_of(l: &Link, i: usize) -> usize {
    if i == 0 {
        1
    } else {
        l.span as usize
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
        self.front = self.z.next(x, 0);
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
        // Every link holds its target's score and tower.
        if !z.nodes.is_empty() {
            let nodes = std::iter::once(HEAD).chain(z.map.values().copied());
            for x in nodes {
                let levels = if x == HEAD { z.level } else { z.levels(x) };
                for i in 0..levels {
                    let l = z.link_at(x, i);
                    if l.next != HEAD {
                        let n = &z.nodes[l.next as usize];
                        assert_eq!(Score(l.next_score), Score(n.score));
                        assert_eq!(l.next_tower, n.tower);
                        assert!(i < n.levels as usize);
                    }
                }
            }
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
                if step % 100 == 0 {
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

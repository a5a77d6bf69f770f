//! The stream value (t_stream.c's `stream`): entries by ID, the stream's
//! counters, consumer groups, and a model of Redis' macro nodes.
//!
//! Redis keeps a stream as a radix tree of listpacks ("nodes") of up to
//! `stream-node-max-entries` entries and `stream-node-max-bytes` bytes. The
//! nodes are visible: `MAXLEN ~`/`MINID ~` trimming only ever drops whole
//! nodes, a deleted entry stays in its node (flagged) until the whole node
//! is empty, and XINFO reports node counts. memlog keeps the entries in an
//! ordered map and, beside them, each node's first ID, last ID, live and
//! deleted counts and an estimate of its listpack size, so that trimming
//! and the counters come out as Redis'.

use std::collections::{BTreeMap, BTreeSet};

use super::value::Elem;

/// A stream entry ID, `ms-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    /// The next ID (None past the last).
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                return None;
            }
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID (None before the first).
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                return None;
            }
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    pub fn to_bytes(self) -> Vec<u8> {
        format!("{}-{}", self.ms, self.seq).into_bytes()
    }

    /// The 16-byte big-endian form (RDB, radix tree keys).
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    pub fn from_be_bytes(b: &[u8; 16]) -> Self {
        let mut ms = [0u8; 8];
        let mut seq = [0u8; 8];
        ms.copy_from_slice(&b[..8]);
        seq.copy_from_slice(&b[8..]);
        StreamId::new(u64::from_be_bytes(ms), u64::from_be_bytes(seq))
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One of Redis' macro nodes, as far as it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The ID of the last entry appended to the node (deleted or not).
    pub last: StreamId,
    /// Entries not deleted.
    pub live: u64,
    /// Entries flagged deleted, still in the node.
    pub deleted: u64,
    /// About the node's listpack size in bytes (for stream-node-max-bytes).
    pub bytes: usize,
    /// The fields of the node's first entry (Redis' master fields): an
    /// entry with the same fields is stored without them.
    pub master_fields: Vec<Elem>,
}

/// An entry delivered to a consumer and not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    pub consumer: Elem,
    /// Unix ms of the last delivery.
    pub delivery_time: i64,
    pub delivery_count: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Consumer {
    /// Unix ms of the consumer's last interaction. Not part of equality:
    /// replaying the log sets it to the replay's time, as a Redis replica does.
    pub seen_time: i64,
    pub pending: BTreeSet<StreamId>,
}

impl PartialEq for Consumer {
    fn eq(&self, other: &Self) -> bool {
        self.pending == other.pending
    }
}

/// A consumer group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries the group has read (None: unknown, Redis' -1).
    pub entries_read: Option<u64>,
    pub pending: BTreeMap<StreamId, PendingEntry>,
    pub consumers: BTreeMap<Elem, Consumer>,
}

/// A stream.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    /// Live entries: each a flat field/value list.
    pub entries: BTreeMap<StreamId, Box<[Elem]>>,
    pub last_id: StreamId,
    pub max_deleted_id: StreamId,
    /// Entries ever added (XADD), for consumer group lag.
    pub entries_added: u64,
    pub groups: BTreeMap<Elem, Group>,
    /// Macro nodes by their first (master) ID.
    pub nodes: BTreeMap<StreamId, Node>,
}

/// Equality of what the stream holds; node boundaries, which depend on the
/// configuration when entries were added, are left out.
impl PartialEq for Stream {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
            && self.last_id == other.last_id
            && self.max_deleted_id == other.max_deleted_id
            && self.entries_added == other.entries_added
            && self.groups == other.groups
    }
}

/// Redis' STREAM_LISTPACK_MAX_SIZE.
const LISTPACK_MAX_SIZE: usize = 1 << 30;

impl Stream {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Approximate heap bytes (MEMORY USAGE).
    pub fn heap_size(&self) -> usize {
        let entries: usize = self
            .entries
            .values()
            .map(|f| 48 + f.iter().map(|e| e.len() + 16).sum::<usize>())
            .sum();
        let groups: usize = self
            .groups
            .values()
            .map(|g| 128 + g.pending.len() * 96 + g.consumers.len() * 96)
            .sum();
        64 + entries + groups + self.nodes.len() * 96
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first live entry's ID (0-0 when empty).
    pub fn first_id(&self) -> StreamId {
        self.entries.keys().next().copied().unwrap_or_default()
    }

    /// Appends an entry with an ID above `last_id` (checked by the caller),
    /// opening a new node as Redis would (streamAppendItem).
    pub fn append(
        &mut self,
        id: StreamId,
        fields: Box<[Elem]>,
        node_max_entries: u64,
        node_max_bytes: usize,
    ) {
        let totelelen: usize = fields.iter().map(|f| f.len()).sum();
        let max_bytes = if node_max_bytes == 0 || node_max_bytes > LISTPACK_MAX_SIZE {
            LISTPACK_MAX_SIZE
        } else {
            node_max_bytes
        };
        let names: Vec<&Elem> = fields.iter().step_by(2).collect();
        let tail = self.nodes.iter_mut().next_back().filter(|(_, n)| {
            !(n.bytes + totelelen >= max_bytes
                || (node_max_entries != 0 && n.live + n.deleted >= node_max_entries))
        });
        match tail {
            Some((master, node)) => {
                let same = node.master_fields.len() == names.len()
                    && node.master_fields.iter().zip(&names).all(|(a, b)| a == *b);
                node.bytes += entry_size(&fields, id, *master, same);
                node.live += 1;
                node.last = id;
            }
            None => {
                let master_fields: Vec<Elem> = names.into_iter().cloned().collect();
                let mut bytes = crate::listpack::EMPTY_BYTES
                    + crate::listpack::int_entry_size(1)
                    + crate::listpack::int_entry_size(0);
                bytes += crate::listpack::int_entry_size(master_fields.len() as i64);
                bytes += master_fields
                    .iter()
                    .map(|f| crate::listpack::entry_size(f))
                    .sum::<usize>();
                bytes += crate::listpack::int_entry_size(0);
                bytes += entry_size(&fields, id, id, true);
                self.nodes.insert(
                    id,
                    Node {
                        last: id,
                        live: 1,
                        deleted: 0,
                        bytes,
                        master_fields,
                    },
                );
            }
        }
        self.entries.insert(id, fields);
        self.last_id = id;
        self.entries_added = self.entries_added.wrapping_add(1);
    }

    /// Deletes an entry (XDEL): flagged in its node, the node dropped once
    /// it holds no live entry. Returns whether it existed.
    pub fn delete(&mut self, id: StreamId) -> bool {
        if self.entries.remove(&id).is_none() {
            return false;
        }
        if let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() {
            node.live = node.live.saturating_sub(1);
            node.deleted += 1;
            if node.live == 0 {
                self.nodes.remove(&master);
            }
        }
        true
    }

    /// Trims (streamTrim): by length (`maxlen`) or below an ID (`minid`);
    /// `approx` only drops whole nodes; `limit` (0: none) bounds the
    /// entries removed. Returns how many were removed.
    pub fn trim(&mut self, strategy: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        loop {
            if let Trim::MaxLen(maxlen) = strategy {
                if self.len() as u64 <= maxlen {
                    break;
                }
            }
            let Some((&master, node)) = self.nodes.iter().next() else {
                break;
            };
            let entries = node.live;
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let remove_node = match strategy {
                Trim::MaxLen(maxlen) => (self.len() as u64).saturating_sub(entries) >= maxlen,
                Trim::MinId(id) => node.last < id,
            };
            if remove_node {
                let last = node.last;
                self.nodes.remove(&master);
                let doomed: Vec<StreamId> =
                    self.entries.range(master..=last).map(|(k, _)| *k).collect();
                for k in doomed {
                    self.entries.remove(&k);
                }
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            // Flag entries of this node one by one.
            let last = node.last;
            let ids: Vec<StreamId> = self.entries.range(master..=last).map(|(k, _)| *k).collect();
            let mut from_node = 0u64;
            for id in ids {
                let stop = match strategy {
                    Trim::MaxLen(maxlen) => self.len() as u64 <= maxlen,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                self.entries.remove(&id);
                from_node += 1;
            }
            if let Some(node) = self.nodes.get_mut(&master) {
                node.live = node.live.saturating_sub(from_node);
                node.deleted += from_node;
            }
            deleted += from_node;
            break;
        }
        deleted
    }
}

impl Stream {
    /// streamRangeHasTombstones: whether an entry in `start..=end` (None:
    /// open) may have been deleted.
    pub fn range_has_tombstones(&self, start: Option<StreamId>, end: Option<StreamId>) -> bool {
        if self.is_empty() || self.max_deleted_id == StreamId::MIN {
            return false;
        }
        if self.first_id() > self.max_deleted_id {
            return false;
        }
        let start = start.unwrap_or(StreamId::MIN);
        let end = end.unwrap_or(StreamId::MAX);
        start <= self.max_deleted_id && self.max_deleted_id <= end
    }

    /// streamEstimateDistanceFromFirstEverEntry: entries added up to `id`,
    /// when that can be known.
    pub fn distance_from_first_ever(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.is_empty() && id <= self.last_id {
            return Some(self.entries_added);
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return Some(self.entries_added),
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Less => {}
        }
        let first = self.first_id();
        if self.max_deleted_id == StreamId::MIN || self.max_deleted_id < first {
            let before = self.entries_added.wrapping_sub(self.len() as u64);
            if id < first {
                return Some(before);
            } else if id == first {
                return Some(before.wrapping_add(1));
            }
        }
        None
    }

    /// The consumer group lag (None: unknown), streamReplyWithCGLag.
    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = g.entries_read {
            if !self.range_has_tombstones(Some(g.last_id), None) {
                return Some((self.entries_added as i64).wrapping_sub(read as i64));
            }
        }
        self.distance_from_first_ever(g.last_id)
            .map(|read| (self.entries_added as i64).wrapping_sub(read as i64))
    }

    /// The nodes of Redis' radix tree over the node keys (XINFO STREAM's
    /// radix-tree-nodes), counted as a compressed trie of the 16-byte keys.
    pub fn rax_nodes(&self) -> u64 {
        let keys: Vec<[u8; 16]> = self.nodes.keys().map(|k| k.to_be_bytes()).collect();
        if keys.is_empty() {
            return 1;
        }
        trie_nodes(&keys, 0)
    }
}

/// Nodes of a compressed trie over sorted, distinct, equal-length keys
/// sharing their first `depth` bytes.
fn trie_nodes(keys: &[[u8; 16]], depth: usize) -> u64 {
    if depth == 16 {
        return 1;
    }
    // The run of bytes every key shares from `depth`: one compressed node.
    let (first, last) = (&keys[0], &keys[keys.len() - 1]);
    let mut d = depth;
    while d < 16 && first[d] == last[d] {
        d += 1;
    }
    if d > depth {
        return 1 + trie_nodes(keys, d);
    }
    // A branching node, then one subtree per distinct next byte.
    let mut n = 1;
    let mut i = 0;
    while i < keys.len() {
        let b = keys[i][depth];
        let j = i + keys[i..].iter().take_while(|k| k[depth] == b).count();
        n += trie_nodes(&keys[i..j], depth + 1);
        i = j;
    }
    n
}

/// How a trim chooses what goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// The listpack bytes of one entry in a node whose master ID is `master`.
fn entry_size(fields: &[Elem], id: StreamId, master: StreamId, same_fields: bool) -> usize {
    let mut n = crate::listpack::int_entry_size(0); // flags
    n += crate::listpack::int_entry_size(id.ms.wrapping_sub(master.ms) as i64);
    n += crate::listpack::int_entry_size(id.seq.wrapping_sub(master.seq) as i64);
    let mut elements = 3i64;
    if same_fields {
        for v in fields.iter().skip(1).step_by(2) {
            n += crate::listpack::entry_size(v);
            elements += 1;
        }
    } else {
        n += crate::listpack::int_entry_size((fields.len() / 2) as i64);
        for f in fields.iter() {
            n += crate::listpack::entry_size(f);
        }
        elements += 1 + fields.len() as i64;
    }
    n + crate::listpack::int_entry_size(elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(pairs: &[&str]) -> Box<[Elem]> {
        pairs.iter().map(|s| Elem::from(s.as_bytes())).collect()
    }

    #[test]
    fn approximate_trimming_drops_whole_nodes() {
        let mut s = Stream::default();
        for i in 1..=1000u64 {
            s.append(
                StreamId::new(i, 0),
                e(&["xitem", &i.to_string()]),
                100,
                4096,
            );
        }
        assert_eq!(s.nodes.len(), 10);
        assert_eq!(s.trim(Trim::MaxLen(555), true, 0), 400);
        assert_eq!(s.len(), 600);
        assert_eq!(s.trim(Trim::MaxLen(555), false, 0), 45);
        assert_eq!(s.len(), 555);
        assert_eq!(s.first_id(), StreamId::new(446, 0));
        assert!(s.delete(StreamId::new(1000, 0)));
        assert!(!s.delete(StreamId::new(1000, 0)));
        assert_eq!(s.last_id, StreamId::new(1000, 0));
        assert_eq!(s.trim(Trim::MinId(StreamId::new(701, 0)), true, 0), 255);
        assert_eq!(s.first_id(), StreamId::new(701, 0));
    }

    #[test]
    fn ids_step_and_encode() {
        let id = StreamId::new(5, u64::MAX);
        assert_eq!(id.incr(), Some(StreamId::new(6, 0)));
        assert_eq!(StreamId::new(6, 0).decr(), Some(id));
        assert_eq!(StreamId::MAX.incr(), None);
        assert_eq!(StreamId::MIN.decr(), None);
        assert_eq!(StreamId::from_be_bytes(&id.to_be_bytes()), id);
        assert_eq!(id.to_string(), "5-18446744073709551615");
    }
}

//! Streams in Redis 7.0's RDB format, so that DUMP, RESTORE and memlog's
//! snapshots (RESTORE commands carrying DUMP payloads) carry streams.
//!
//! The object is laid out as rdb.c's `rdbSaveObject` writes a stream
//! (`RDB_TYPE_STREAM_LISTPACKS_2`); lengths are RDB lengths, names RDB
//! strings, IDs in the PELs 16 raw big-endian bytes and times 8-byte
//! little-endian milliseconds:
//!
//! ```text
//! nodes, then per node: master ID (a 16-byte string), listpack (a string)
//! length, last-id ms, seq, first-id ms, seq, max-deleted-id ms, seq, entries-added
//! groups, then per group: name, last-id ms, seq, entries-read (-1 as 2^64-1),
//!   PEL size, per entry: ID, delivery time, delivery count
//!   consumers, per consumer: name, seen time, PEL size, IDs
//! ```
//!
//! A node's listpack is t_stream.c's: the master entry `count, deleted,
//! num-fields, field..., 0`, then per entry `flags, ms-diff, seq-diff`,
//! either `num-fields, field, value, ...` or, with SAMEFIELDS (the entry's
//! fields are the master's), `value, ...`, and `lp-count`. IDs are deltas
//! from the node's master ID (the radix tree key).
//!
//! memlog keeps only live entries, and beside them a model of Redis' nodes
//! ([`Node`]: master ID, last ID, live and deleted counts). Saving writes a
//! listpack per modelled node. Entries deleted from a node (XDEL, exact
//! trimming) are gone, so the node gets as many tombstones (entries flagged
//! deleted, with the master fields and empty values) as it had deleted
//! entries: at the node's last ID and master ID when those entries are
//! gone, at the free IDs after the master for the rest (there are always
//! enough: the deleted entries had IDs of their own in that range). Loading
//! reads a node's master ID, last ID and counts back, so approximate
//! trimming and node splitting go on after a snapshot, and in a Redis that
//! RESTOREs the payload, as before it. The older `RDB_TYPE_STREAM_LISTPACKS`
//! (Redis 5 to 6.2, without the 7.0 counters) is read too.

use std::collections::{BTreeMap, BTreeSet};

use crate::keyspace::stream::{Consumer, Group, Node, PendingEntry};
use crate::keyspace::{Elem, Stream, StreamId};
use crate::listpack::{self, ListpackWriter};
use crate::numbers::parse_i64;
use crate::rdb::{save_len, save_string, Reader};

/// A stream as Redis 5.0 to 6.2 write it (no first ID, tombstone ID,
/// entries-added or entries-read).
pub const RDB_TYPE_STREAM_LISTPACKS: u8 = 15;
/// A stream as Redis 7.0 writes it.
pub const RDB_TYPE_STREAM_LISTPACKS_2: u8 = 19;

/// The entry is deleted (a tombstone).
const FLAG_DELETED: i64 = 1;
/// The entry's fields are the master entry's: only values are stored.
const FLAG_SAMEFIELDS: i64 = 2;

/// Entries per node when the stream has no node model to follow (Redis'
/// default `stream-node-max-entries`).
const FALLBACK_NODE_ENTRIES: usize = 100;

/// Redis' SCG_INVALID_ENTRIES_READ (-1) as rdbSaveLen writes it.
const ENTRIES_READ_UNKNOWN: u64 = u64::MAX;

// ---------------------------------------------------------------- save

/// An entry of a node being written.
enum Item<'a> {
    Live(StreamId, &'a [Elem]),
    Tombstone(StreamId),
}

impl Item<'_> {
    fn id(&self) -> StreamId {
        match self {
            Item::Live(id, _) | Item::Tombstone(id) => *id,
        }
    }
}

/// A node as it will be written.
struct PlannedNode<'a> {
    master: StreamId,
    master_fields: Vec<&'a [u8]>,
    items: Vec<Item<'a>>,
}

/// The field names of a flat field/value list.
fn field_names(fields: &[Elem]) -> impl Iterator<Item = &[u8]> {
    fields.chunks_exact(2).map(|p| &p[0][..])
}

/// The nodes of the stream's node model, with tombstones for the deleted
/// entries; None when the model does not cover the entries exactly (it
/// always should).
fn plan_from_model(s: &Stream) -> Option<Vec<PlannedNode<'_>>> {
    let mut planned = Vec::with_capacity(s.nodes.len());
    let mut covered = 0usize;
    let mut prev_last: Option<StreamId> = None;
    for (&master, node) in &s.nodes {
        if node.last < master || prev_last.is_some_and(|p| master <= p) {
            return None;
        }
        prev_last = Some(node.last);
        let live: Vec<(StreamId, &[Elem])> = s
            .entries
            .range(master..=node.last)
            .map(|(k, v)| (*k, &v[..]))
            .collect();
        covered += live.len();
        let tombstones = tombstone_ids(master, node.last, node.deleted, &live);
        if live.is_empty() && tombstones.is_empty() {
            continue;
        }
        let mut items: Vec<Item<'_>> = live.into_iter().map(|(id, f)| Item::Live(id, f)).collect();
        items.extend(tombstones.into_iter().map(Item::Tombstone));
        items.sort_unstable_by_key(Item::id);
        planned.push(PlannedNode {
            master,
            master_fields: node.master_fields.iter().map(|f| &f[..]).collect(),
            items,
        });
    }
    (covered == s.entries.len()).then_some(planned)
}

/// `deleted` IDs in `master..=last` that are not live: `last` and `master`
/// first (they bound the node), then the lowest free ones. Fewer when the
/// range has no more room (an inconsistent model).
fn tombstone_ids(
    master: StreamId,
    last: StreamId,
    deleted: u64,
    live: &[(StreamId, &[Elem])],
) -> Vec<StreamId> {
    let is_live = |id: StreamId| live.binary_search_by(|(k, _)| k.cmp(&id)).is_ok();
    let wanted = usize::try_from(deleted).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for id in [last, master] {
        if out.len() < wanted && !is_live(id) && !out.contains(&id) {
            out.push(id);
        }
    }
    let mut id = master;
    while out.len() < wanted {
        match id.incr() {
            Some(next) if next < last => id = next,
            _ => break,
        }
        if !is_live(id) {
            out.push(id);
        }
    }
    out.sort_unstable();
    out
}

/// Nodes of [`FALLBACK_NODE_ENTRIES`] entries, master fields from each
/// node's first entry, as Redis would have built them with its defaults.
fn plan_fallback(s: &Stream) -> Vec<PlannedNode<'_>> {
    let entries: Vec<(StreamId, &[Elem])> = s.entries.iter().map(|(k, v)| (*k, &v[..])).collect();
    entries
        .chunks(FALLBACK_NODE_ENTRIES)
        .map(|chunk| PlannedNode {
            master: chunk[0].0,
            master_fields: field_names(chunk[0].1).collect(),
            items: chunk.iter().map(|(id, f)| Item::Live(*id, f)).collect(),
        })
        .collect()
}

/// The listpack of a node (streamAppendItem's layout).
fn encode_node(node: &PlannedNode<'_>) -> Vec<u8> {
    let mut lp = ListpackWriter::new();
    let live = node
        .items
        .iter()
        .filter(|i| matches!(i, Item::Live(..)))
        .count();
    lp.push_int(live as i64);
    lp.push_int((node.items.len() - live) as i64);
    lp.push_int(node.master_fields.len() as i64);
    for f in &node.master_fields {
        lp.push_str(f);
    }
    lp.push_int(0);
    let nmaster = node.master_fields.len() as i64;
    for item in &node.items {
        let id = item.id();
        let ms_diff = id.ms.wrapping_sub(node.master.ms) as i64;
        let seq_diff = id.seq.wrapping_sub(node.master.seq) as i64;
        match item {
            Item::Tombstone(_) => {
                lp.push_int(FLAG_DELETED | FLAG_SAMEFIELDS);
                lp.push_int(ms_diff);
                lp.push_int(seq_diff);
                for _ in 0..nmaster {
                    lp.push_str(b"");
                }
                lp.push_int(nmaster + 3);
            }
            Item::Live(_, fields) => {
                let numfields = (fields.len() / 2) as i64;
                let same = numfields == nmaster
                    && field_names(fields)
                        .zip(&node.master_fields)
                        .all(|(a, b)| a == *b);
                lp.push_int(if same { FLAG_SAMEFIELDS } else { 0 });
                lp.push_int(ms_diff);
                lp.push_int(seq_diff);
                if same {
                    for pair in fields.chunks_exact(2) {
                        lp.push_str(&pair[1]);
                    }
                    lp.push_int(numfields + 3);
                } else {
                    lp.push_int(numfields);
                    for pair in fields.chunks_exact(2) {
                        lp.push_str(&pair[0]);
                        lp.push_str(&pair[1]);
                    }
                    lp.push_int(2 * numfields + 4);
                }
            }
        }
    }
    lp.finish()
}

fn save_id(out: &mut Vec<u8>, id: StreamId) {
    save_len(out, id.ms);
    save_len(out, id.seq);
}

/// rdbSaveMillisecondTime.
fn save_millis(out: &mut Vec<u8>, ms: i64) {
    out.extend_from_slice(&ms.to_le_bytes());
}

/// Writes the type byte and the stream as Redis 7.0's rdbSaveObject does.
pub fn save(out: &mut Vec<u8>, s: &Stream) {
    out.push(RDB_TYPE_STREAM_LISTPACKS_2);
    let nodes = plan_from_model(s).unwrap_or_else(|| plan_fallback(s));
    save_len(out, nodes.len() as u64);
    for node in &nodes {
        save_string(out, &node.master.to_be_bytes());
        save_string(out, &encode_node(node));
    }
    save_len(out, s.len() as u64);
    save_id(out, s.last_id);
    save_id(out, s.first_id());
    save_id(out, s.max_deleted_id);
    save_len(out, s.entries_added);

    save_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        save_string(out, name);
        save_id(out, g.last_id);
        save_len(out, g.entries_read.unwrap_or(ENTRIES_READ_UNKNOWN));
        save_len(out, g.pending.len() as u64);
        for (id, p) in &g.pending {
            out.extend_from_slice(&id.to_be_bytes());
            save_millis(out, p.delivery_time);
            save_len(out, p.delivery_count);
        }
        save_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            save_string(out, cname);
            save_millis(out, c.seen_time);
            save_len(out, c.pending.len() as u64);
            for id in &c.pending {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
    }
}

// ---------------------------------------------------------------- load

type R<T> = Option<T>;

fn load_id(r: &mut Reader<'_>) -> R<StreamId> {
    Some(StreamId::new(r.load_len()?, r.load_len()?))
}

/// A 16-byte big-endian ID (PELs).
fn load_raw_id(r: &mut Reader<'_>) -> R<StreamId> {
    let b: &[u8; 16] = r.take(16)?.try_into().ok()?;
    Some(StreamId::from_be_bytes(b))
}

/// rdbLoadMillisecondTime.
fn load_millis(r: &mut Reader<'_>) -> R<i64> {
    let b: [u8; 8] = r.take(8)?.try_into().ok()?;
    Some(i64::from_le_bytes(b))
}

/// Reads the elements of a node's listpack in order.
struct NodeReader {
    items: std::vec::IntoIter<Elem>,
}

impl NodeReader {
    fn elem(&mut self) -> R<Elem> {
        self.items.next()
    }

    /// An integer element (lpGetIntegerIfValid: integer-looking strings too).
    fn int(&mut self) -> R<i64> {
        parse_i64(&self.items.next()?)
    }

    /// A count: non-negative and no more than the elements left.
    fn count(&mut self) -> R<usize> {
        let n = usize::try_from(self.int()?).ok()?;
        (n <= self.items.len()).then_some(n)
    }
}

/// Decodes one node's listpack, adding its live entries to `entries`.
/// `prev` is the highest ID seen so far (deleted entries included): IDs
/// must keep growing across nodes. Returns None (bad data), or the node,
/// or Some(None) for a node without entries, which is left out.
fn load_node(
    lp: &[u8],
    master: StreamId,
    entries: &mut BTreeMap<StreamId, Box<[Elem]>>,
    prev: &mut Option<StreamId>,
) -> R<Option<Node>> {
    if prev.is_some_and(|p| master <= p) {
        return None;
    }
    let mut r = NodeReader {
        items: listpack::parse(lp)?.into_iter(),
    };
    let count = u64::try_from(r.int()?).ok()?;
    let deleted = u64::try_from(r.int()?).ok()?;
    let nmaster = r.count()?;
    let mut master_fields = Vec::with_capacity(nmaster);
    for _ in 0..nmaster {
        master_fields.push(r.elem()?);
    }
    if r.int()? != 0 {
        return None;
    }
    let (mut live, mut dead) = (0u64, 0u64);
    let mut last = None;
    while r.items.len() > 0 {
        let flags = r.int()?;
        if flags & !(FLAG_DELETED | FLAG_SAMEFIELDS) != 0 {
            return None;
        }
        let ms = master.ms.wrapping_add(r.int()? as u64);
        let seq = master.seq.wrapping_add(r.int()? as u64);
        let id = StreamId::new(ms, seq);
        if id < master || prev.is_some_and(|p| id <= p) {
            return None;
        }
        *prev = Some(id);
        last = Some(id);
        let (fields, lp_count): (Vec<Elem>, usize) = if flags & FLAG_SAMEFIELDS != 0 {
            if r.items.len() < nmaster {
                return None;
            }
            let mut fields = Vec::with_capacity(2 * nmaster);
            for f in &master_fields {
                fields.push(f.clone());
                fields.push(r.elem()?);
            }
            (fields, nmaster + 3)
        } else {
            let n = r.count()?;
            if r.items.len() / 2 < n {
                return None;
            }
            let mut fields = Vec::with_capacity(2 * n);
            for _ in 0..2 * n {
                fields.push(r.elem()?);
            }
            (fields, 2 * n + 4)
        };
        if usize::try_from(r.int()?).ok()? != lp_count {
            return None;
        }
        if flags & FLAG_DELETED != 0 {
            dead += 1;
        } else {
            live += 1;
            entries.insert(id, fields.into_boxed_slice());
        }
    }
    if live != count || dead != deleted {
        return None;
    }
    Some(last.map(|last| Node {
        last,
        live,
        deleted: dead,
        bytes: lp.len(),
        master_fields,
    }))
}

/// streamEstimateDistanceFromFirstEverEntry: the entries-read counter of a
/// group whose last ID is `id`, where the stream can tell (RDB types
/// without the counter).
fn estimate_entries_read(s: &Stream, id: StreamId) -> Option<u64> {
    if s.entries_added == 0 {
        return Some(0);
    }
    if s.is_empty() && id <= s.last_id {
        return Some(s.entries_added);
    }
    match id.cmp(&s.last_id) {
        std::cmp::Ordering::Equal => return Some(s.entries_added),
        std::cmp::Ordering::Greater => return None,
        std::cmp::Ordering::Less => {}
    }
    let first = s.first_id();
    if s.max_deleted_id == StreamId::MIN || s.max_deleted_id < first {
        let before_first = s.entries_added.saturating_sub(s.len() as u64);
        if id < first {
            return Some(before_first);
        } else if id == first {
            return Some(before_first + 1);
        }
    }
    None
}

/// Reads a stream object (after its type byte) of RDB type
/// [`RDB_TYPE_STREAM_LISTPACKS_2`] (`v2`) or [`RDB_TYPE_STREAM_LISTPACKS`]
/// as rdbLoadObject does, checking what Redis' deep sanitization checks and
/// what memlog's model needs (IDs in order, counts that add up, every
/// pending entry owned by one consumer). None on malformed input.
pub(crate) fn load(r: &mut Reader<'_>, v2: bool) -> R<Stream> {
    let mut s = Stream::default();
    let nodes = r.load_len()?;
    let mut prev: Option<StreamId> = None;
    for _ in 0..nodes {
        let key = r.load_string()?;
        let master = StreamId::from_be_bytes(key.as_slice().try_into().ok()?);
        let lp = r.load_string()?;
        if let Some(node) = load_node(&lp, master, &mut s.entries, &mut prev)? {
            s.nodes.insert(master, node);
        }
    }
    let length = r.load_len()?;
    s.last_id = load_id(r)?;
    if v2 {
        // The first ID is the first live entry's: derived, not kept.
        load_id(r)?;
        s.max_deleted_id = load_id(r)?;
        s.entries_added = r.load_len()?;
    } else {
        s.max_deleted_id = StreamId::MIN;
        s.entries_added = length;
    }
    // Redis lets XSETID move the last ID below a tombstone (and the
    // tombstone ID above it), not below a live entry; a node must not start
    // above it either, or the next XADD would land before the node's start.
    let top = s.nodes.keys().next_back().max(s.entries.keys().next_back());
    if length != s.entries.len() as u64
        || top.is_some_and(|&t| t > s.last_id)
        || s.entries_added < length
    {
        return None;
    }

    let ngroups = r.load_len()?;
    for _ in 0..ngroups {
        let name = Elem::from(r.load_string()?);
        let last_id = load_id(r)?;
        let entries_read = if v2 {
            Some(r.load_len()?).filter(|&n| n != ENTRIES_READ_UNKNOWN)
        } else {
            estimate_entries_read(&s, last_id)
        };
        // The group PEL, owners resolved from the consumers' PELs below.
        let mut unowned: BTreeMap<StreamId, (i64, u64)> = BTreeMap::new();
        for _ in 0..r.load_len()? {
            let id = load_raw_id(r)?;
            let delivery_time = load_millis(r)?;
            let delivery_count = r.load_len()?;
            if unowned
                .insert(id, (delivery_time, delivery_count))
                .is_some()
            {
                return None;
            }
        }
        let mut group = Group {
            last_id,
            entries_read,
            pending: BTreeMap::new(),
            consumers: BTreeMap::new(),
        };
        for _ in 0..r.load_len()? {
            let cname = Elem::from(r.load_string()?);
            let seen_time = load_millis(r)?;
            let mut pending = BTreeSet::new();
            for _ in 0..r.load_len()? {
                let id = load_raw_id(r)?;
                let (delivery_time, delivery_count) = unowned.remove(&id)?;
                pending.insert(id);
                group.pending.insert(
                    id,
                    PendingEntry {
                        consumer: cname.clone(),
                        delivery_time,
                        delivery_count,
                    },
                );
            }
            if group
                .consumers
                .insert(cname, Consumer { seen_time, pending })
                .is_some()
            {
                return None;
            }
        }
        if !unowned.is_empty() || s.groups.insert(name, group).is_some() {
            return None;
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::stream::Trim;
    use crate::keyspace::Value;
    use crate::rdb::{crc64, dump, restore, RestoreError, RDB_VERSION};

    // DUMP payloads from redis-server 7.0.15 (Debian). Times are the wall
    // clock of the run (ms since the epoch).

    /// rdbcompression no; XADD s 1-1 a 1 b 2, 1-2 a 3 b 4, 2-1 a 5 b 6;
    /// XGROUP CREATE s g 0; XREADGROUP GROUP g c COUNT 1 STREAMS s >.
    const REDIS_SIMPLE: &str = concat!(
        "13011000000000000000010000000000000001393900000018000301000102018161028162020001",
        "020100010001010102010501020100010101030104010501020101010001050106010501ff030201",
        "01010000030101670101010100000000000000010000000000000001fa127f4ca201000001010163",
        "fa127f4ca201000001000000000000000100000000000000010a0007f9ca00930192eb",
    );

    /// stream-node-max-entries 4, rdbcompression yes (LZF listpacks):
    /// 18 XADDs (3-0 ... 12-0, then 18446744073709551615-3; field sets and
    /// integer sizes vary), XDEL 5-1 7-0 8-0 9-0 9-1 18446744073709551615-3;
    /// groups g1 (from 0: alice reads 2 entries, bob 3, consumer "idle"
    /// created), g2 (from $) and g3 (from 6-5: consumer "123" reads 7-1,
    /// then 10-0).
    const REDIS_HISTORY: &str = concat!(
        "13051000000000000000030000000000000000c34051405a165a0000001f00040100010201846e61",
        "6d65058361676504400e0000200103837a6564200c0005201d0001400e0479616e0401200e000020",
        "0e4000803204827875030660220602018277750303202100ff100000000000000005000000000000",
        "0001406c6c0000001f00030101010201846e616d65058361676504000103010001000185616c6963",
        "65061e01050102010001010183626f6204dff902050100010101dfff020101846369747905857061",
        "726973060601020101010401856361726f6c06f4141a99be1c000000090501ff1000000000000000",
        "070000000000000000c3406740c717c70000001f00010103010201846e616d650583616765040020",
        "100000200109846461766505cfa00205200c20262000078362696704e06479e05a00016606208600",
        "0120770c856672616e6b06f270110104052013000220130c8467696e6105823031030501ff100000",
        "0000000000090000000000000001c3407b409c129c0000002900030101010301826b3103826b3220",
        "0302330300200f000020010182762013007620130376330306200f180101dfff020201846e616d65",
        "058368616c048361676504f4ff8000027f09086024010001e0002302697679a023206a4000008060",
        "230002e0034803826a6f03e00047007f404a202300ff10000000000000000c000000000000000039",
        "390000001200010101010201846e616d650583616765040001020100010001836b696d0402010501",
        "0301dff3020301836d61780403010501ff0c81ffffffffffffffff03030081ffffffffffffffff03",
        "1203026731050281ffffffffffffffff05000000000000000300000000000000005b457f4ca20100",
        "0001000000000000000400000000000000005b457f4ca20100000100000000000000040000000000",
        "0000015f457f4ca201000001000000000000000400000000000000025f457f4ca201000001000000",
        "000000000500000000000000025f457f4ca2010000010305616c6963655b457f4ca2010000020000",
        "00000000000300000000000000000000000000000004000000000000000003626f625f457f4ca201",
        "00000300000000000000040000000000000001000000000000000400000000000000020000000000",
        "00000500000000000000020469646c6567457f4ca20100000002673281ffffffffffffffff0381ff",
        "ffffffffffffff00000267330a0081ffffffffffffffff0200000000000000070000000000000001",
        "6b457f4ca201000001000000000000000a00000000000000006f457f4ca20100000101c07b6f457f",
        "4ca20100000200000000000000070000000000000001000000000000000a00000000000000000a00",
        "8e6957188a219016",
    );

    /// XADD s 1-1 a 1; XDEL s 1-1; XGROUP CREATE s g $ ENTRIESREAD 1.
    const REDIS_EMPTY: &str = "1300000101000001010101016701010100000a00186ac8ef2cae7e9b";

    /// XADD s 1-1 f <5000 x "z"> n 12, rdbcompression yes.
    const REDIS_LONG_VALUE: &str = concat!(
        "13011000000000000000010000000000000001c3406153ae11ae1300000c00010100010201816602",
        "816e0240090000200101f088201a007ae0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00",
        "e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ff00e0ee0006278d0c010501",
        "ff0101010101000001000a001be96ffeca69b83b",
    );

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    fn el(s: &str) -> Elem {
        Elem::from(s.as_bytes())
    }

    fn e(pairs: &[&str]) -> Box<[Elem]> {
        pairs.iter().map(|s| el(s)).collect()
    }

    /// A payload of `body` (type byte and object): version and CRC added.
    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = body.to_vec();
        out.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64(0, &out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn restore_stream(payload: &[u8]) -> Stream {
        match restore(payload) {
            Ok(Value::Stream(s)) => *s,
            other => panic!("not a stream: {other:?}"),
        }
    }

    fn dump_stream(s: &Stream) -> Vec<u8> {
        dump(&Value::Stream(Box::new(s.clone())))
    }

    /// The node model without the size estimates.
    fn node_shapes(s: &Stream) -> Vec<(StreamId, StreamId, u64, u64, Vec<Elem>)> {
        s.nodes
            .iter()
            .map(|(m, n)| (*m, n.last, n.live, n.deleted, n.master_fields.clone()))
            .collect()
    }

    /// The (master ID, listpack) pairs of a stream payload, LZF undone.
    fn listpacks(payload: &[u8]) -> Vec<(StreamId, Vec<u8>)> {
        let mut r = Reader::new(&payload[1..]);
        let n = r.load_len().unwrap();
        (0..n)
            .map(|_| {
                let key = r.load_string().unwrap();
                let lp = r.load_string().unwrap();
                (
                    StreamId::from_be_bytes(key.as_slice().try_into().unwrap()),
                    lp,
                )
            })
            .collect()
    }

    fn pending(consumer: &str, delivery_time: i64, delivery_count: u64) -> PendingEntry {
        PendingEntry {
            consumer: el(consumer),
            delivery_time,
            delivery_count,
        }
    }

    /// A stream with several nodes, deletions in and at the edges of nodes,
    /// an emptied node, exact trimming, odd values and consumer groups.
    fn sample_stream() -> Stream {
        let mut s = Stream::default();
        let long = "L".repeat(5000);
        let mid = "m".repeat(100);
        for i in 1..=60u64 {
            let n = i.to_string();
            let neg = format!("-{}", i * 1_000_003);
            let fields: Box<[Elem]> = match i % 7 {
                0 => e(&["other", &n]),
                1 => e(&["name", &mid, "age", &neg]),
                2 => e(&["name", "9223372036854775807", "age", "-9223372036854775808"]),
                3 => e(&["name", &long, "age", "01"]),
                _ => e(&["name", &n, "age", &n]),
            };
            s.append(id(i / 3, i % 3), fields, 8, 0);
        }
        // Nodes of 8: 0-1..2-2, 3-0..5-1, 5-2..8-0, 8-1..10-2, ...
        let mut deleted = vec![id(0, 1), id(1, 0), id(12, 0)];
        // The third node's master and last, and more of it.
        deleted.extend([id(5, 2), id(6, 0), id(6, 1), id(6, 2), id(7, 0), id(8, 0)]);
        // All of the fourth node.
        deleted.extend([
            id(8, 1),
            id(8, 2),
            id(9, 0),
            id(9, 1),
            id(9, 2),
            id(10, 0),
            id(10, 1),
            id(10, 2),
        ]);
        for d in deleted {
            assert!(s.delete(d), "{d}");
        }
        // Flags 0-2 to 2-0 in the first node.
        assert_eq!(s.trim(Trim::MinId(id(2, 1)), false, 0), 4);
        s.max_deleted_id = id(12, 0);
        let mut g1 = Group {
            last_id: id(9, 1),
            entries_read: Some(17),
            ..Group::default()
        };
        for (pid, c, t, n) in [
            (id(3, 0), "alice", 1_700_000_000_000i64, 1u64),
            (id(4, 2), "-5", -1, 300),
            (id(9, 1), "alice", 5, 1 << 40),
        ] {
            g1.pending.insert(pid, pending(c, t, n));
            g1.consumers.entry(el(c)).or_default().pending.insert(pid);
        }
        g1.consumers.get_mut(&el("alice")).unwrap().seen_time = 1_700_000_000_123;
        g1.consumers.insert(el("idle"), Consumer::default());
        s.groups.insert(el("g1"), g1);
        s.groups.insert(
            el("123"),
            Group {
                last_id: StreamId::MAX,
                entries_read: None,
                ..Group::default()
            },
        );
        s
    }

    #[test]
    fn round_trip_keeps_entries_groups_and_nodes() {
        let s = sample_stream();
        assert!(s
            .nodes
            .values()
            .any(|n| n.deleted > 0 && !s.entries.contains_key(&n.last)));
        let payload = dump_stream(&s);
        assert_eq!(payload[0], RDB_TYPE_STREAM_LISTPACKS_2);
        let back = restore_stream(&payload);
        assert_eq!(back, s);
        assert_eq!(back.nodes.len(), s.nodes.len());
        assert_eq!(node_shapes(&back), node_shapes(&s));
        let seen: Vec<i64> = back.groups[&el("g1")]
            .consumers
            .values()
            .map(|c| c.seen_time)
            .collect();
        assert_eq!(seen, [0, 1_700_000_000_123, 0]);
        // Saving what was loaded gives the same bytes.
        assert_eq!(dump_stream(&back), payload);
    }

    #[test]
    fn round_trip_edge_ids_and_empty_streams() {
        // IDs far from the master: negative and wrapping deltas.
        let mut s = Stream::default();
        s.append(id(0, 5), e(&["f", "v"]), 100, 4096);
        s.append(id(0, u64::MAX), e(&["f", ""]), 100, 4096);
        s.append(id(1, 0), e(&["g", "-1"]), 100, 4096);
        s.append(id(u64::MAX - 1, 3), e(&["f", "x"]), 100, 4096);
        s.append(StreamId::MAX, e(&["f", "y"]), 100, 4096);
        assert_eq!(s.nodes.len(), 1);
        s.entries_added = u64::MAX;
        s.max_deleted_id = id(0, 7);
        let back = restore_stream(&dump_stream(&s));
        assert_eq!(back, s);
        assert_eq!(node_shapes(&back), node_shapes(&s));

        // Empty: never written to, and emptied with a group left.
        let empty = Stream::default();
        assert_eq!(restore_stream(&dump_stream(&empty)), empty);
        let mut emptied = Stream::default();
        emptied.append(id(3, 3), e(&["a", "b"]), 100, 4096);
        emptied.delete(id(3, 3));
        emptied.max_deleted_id = id(3, 3);
        emptied.groups.insert(el("g"), Group::default());
        let back = restore_stream(&dump_stream(&emptied));
        assert_eq!(back, emptied);
        assert!(back.nodes.is_empty());
    }

    #[test]
    fn entries_outside_the_node_model_are_still_written() {
        let mut s = Stream::default();
        for i in 1..=250u64 {
            s.entries.insert(id(i, 0), e(&["k", &i.to_string()]));
        }
        s.last_id = id(250, 0);
        s.entries_added = 250;
        let back = restore_stream(&dump_stream(&s));
        assert_eq!(back, s);
        let masters: Vec<StreamId> = back.nodes.keys().copied().collect();
        assert_eq!(masters, [id(1, 0), id(101, 0), id(201, 0)]);
    }

    #[test]
    fn dump_is_byte_identical_to_redis() {
        let redis = hex(REDIS_SIMPLE);
        let s = restore_stream(&redis);
        assert_eq!(dump_stream(&s), redis);

        // The same history here gives the same bytes, times aside.
        let mut mine = Stream::default();
        mine.append(id(1, 1), e(&["a", "1", "b", "2"]), 100, 4096);
        mine.append(id(1, 2), e(&["a", "3", "b", "4"]), 100, 4096);
        mine.append(id(2, 1), e(&["a", "5", "b", "6"]), 100, 4096);
        let time = 0x01a2_4c7f_12fa;
        let mut g = Group {
            last_id: id(1, 1),
            entries_read: Some(1),
            ..Group::default()
        };
        g.pending.insert(id(1, 1), pending("c", time, 1));
        g.consumers.insert(
            el("c"),
            Consumer {
                seen_time: time,
                pending: [id(1, 1)].into(),
            },
        );
        mine.groups.insert(el("g"), g);
        assert_eq!(s, mine);
        assert_eq!(dump_stream(&mine), redis);

        // An emptied stream with a group.
        let redis = hex(REDIS_EMPTY);
        let s = restore_stream(&redis);
        assert!(s.is_empty() && s.nodes.is_empty());
        assert_eq!(
            (s.last_id, s.max_deleted_id, s.entries_added),
            (id(1, 1), id(1, 1), 1)
        );
        assert_eq!(s.groups[&el("g")].entries_read, Some(1));
        assert_eq!(dump_stream(&s), redis);

        // A 32-bit string (Redis compressed its listpack; ours is plain).
        let redis = hex(REDIS_LONG_VALUE);
        let s = restore_stream(&redis);
        let z = "z".repeat(5000);
        assert_eq!(&s.entries[&id(1, 1)][..], &e(&["f", &z, "n", "12"])[..]);
        assert_eq!(listpacks(&dump_stream(&s)), listpacks(&redis));
    }

    #[test]
    fn restores_redis_history_with_tombstones_and_groups() {
        let redis = hex(REDIS_HISTORY);
        let s = restore_stream(&redis);
        let top = id(u64::MAX, 3);
        let ids: Vec<StreamId> = s.entries.keys().copied().collect();
        assert_eq!(
            ids,
            [
                id(3, 0),
                id(4, 0),
                id(4, 1),
                id(4, 2),
                id(5, 2),
                id(6, 0),
                id(6, 5),
                id(7, 1),
                id(10, 0),
                id(10, 1),
                id(11, 0),
                id(12, 0)
            ]
        );
        assert_eq!(&s.entries[&id(4, 1)][..], &e(&["name", "xu"])[..]);
        assert_eq!(&s.entries[&id(6, 0)][..], &e(&["city", "paris"])[..]);
        assert_eq!(
            &s.entries[&id(6, 5)][..],
            &e(&["name", "carol", "age", "123456789012"])[..]
        );
        assert_eq!(
            &s.entries[&id(7, 1)][..],
            &e(&["big", &"y".repeat(100)])[..]
        );
        assert_eq!(
            &s.entries[&id(10, 0)][..],
            &e(&["name", "hal", "age", "9223372036854775807"])[..]
        );
        assert_eq!(
            &s.entries[&id(10, 1)][..],
            &e(&["name", "ivy", "age", "-9223372036854775808"])[..]
        );
        assert_eq!(
            &s.entries[&id(11, 0)][..],
            &e(&["name", "jo", "age", "-2147483649"])[..]
        );
        assert_eq!(
            &s.entries[&id(5, 2)][..],
            &e(&["name", "bob", "age", "-7"])[..]
        );
        assert_eq!(
            (s.last_id, s.max_deleted_id, s.entries_added),
            (top, top, 18)
        );

        let shapes: Vec<(StreamId, StreamId, u64, u64)> = node_shapes(&s)
            .into_iter()
            .map(|(m, l, live, del, _)| (m, l, live, del))
            .collect();
        assert_eq!(
            shapes,
            [
                (id(3, 0), id(4, 2), 4, 0),
                (id(5, 1), id(6, 5), 3, 1),
                (id(7, 0), id(9, 0), 1, 3),
                (id(9, 1), id(11, 0), 3, 1),
                (id(12, 0), top, 1, 1),
            ]
        );
        assert_eq!(
            s.nodes[&id(9, 1)].master_fields,
            [el("k1"), el("k2"), el("k3")]
        );

        let g1 = &s.groups[&el("g1")];
        assert_eq!((g1.last_id, g1.entries_read), (id(5, 2), None));
        let owners: Vec<(StreamId, &[u8], i64, u64)> = g1
            .pending
            .iter()
            .map(|(k, p)| (*k, &p.consumer[..], p.delivery_time, p.delivery_count))
            .collect();
        let (t1, t2) = (0x01a2_4c7f_455b, 0x01a2_4c7f_455f);
        assert_eq!(
            owners,
            [
                (id(3, 0), &b"alice"[..], t1, 1),
                (id(4, 0), b"alice", t1, 1),
                (id(4, 1), b"bob", t2, 1),
                (id(4, 2), b"bob", t2, 1),
                (id(5, 2), b"bob", t2, 1),
            ]
        );
        let names: Vec<&[u8]> = g1.consumers.keys().map(|k| &k[..]).collect();
        assert_eq!(names, [&b"alice"[..], b"bob", b"idle"]);
        assert_eq!(g1.consumers[&el("alice")].seen_time, t1);
        assert!(g1.consumers[&el("idle")].pending.is_empty());
        let g2 = &s.groups[&el("g2")];
        assert_eq!(
            (g2.last_id, g2.entries_read, g2.pending.len()),
            (top, None, 0)
        );
        let g3 = &s.groups[&el("g3")];
        assert_eq!(g3.last_id, id(10, 0));
        let mine: Vec<StreamId> = g3.consumers[&el("123")].pending.iter().copied().collect();
        assert_eq!(mine, [id(7, 1), id(10, 0)]);

        // Written back (tombstones with empty values standing for the
        // deleted entries), the nodes come out the same; the node without
        // deletions is Redis' listpack byte for byte.
        let payload = dump_stream(&s);
        let back = restore_stream(&payload);
        assert_eq!(back, s);
        assert_eq!(node_shapes(&back), node_shapes(&s));
        assert_eq!(listpacks(&payload)[0], listpacks(&redis)[0]);
    }

    #[test]
    fn restores_the_redis_6_stream_type() {
        // REDIS_SIMPLE less what Redis 7.0 added: first ID, tombstone ID,
        // entries-added, and the group's entries-read.
        let v2 = hex(REDIS_SIMPLE);
        let body = &v2[..v2.len() - 10];
        let mut v1 = vec![RDB_TYPE_STREAM_LISTPACKS];
        v1.extend_from_slice(&body[1..80]); // nodes, length, last ID
        v1.extend_from_slice(&body[85..90]); // groups, name, last ID
        v1.extend_from_slice(&body[91..]); // PEL, consumers
        let s = restore_stream(&framed(&v1));
        let mut expected = restore_stream(&v2);
        assert_eq!(s, expected);

        // Without counters, entries-read is estimated as Redis does
        // (first entry 1-1, last 2-1, 3 entries).
        expected.entries_added = 10;
        expected.max_deleted_id = id(0, 5);
        assert_eq!(estimate_entries_read(&expected, id(0, 1)), Some(7));
        assert_eq!(estimate_entries_read(&expected, id(1, 1)), Some(8));
        assert_eq!(estimate_entries_read(&expected, id(1, 2)), None);
        assert_eq!(estimate_entries_read(&expected, id(2, 1)), Some(10));
        assert_eq!(estimate_entries_read(&expected, id(2, 2)), None);
        expected.max_deleted_id = id(1, 2);
        assert_eq!(estimate_entries_read(&expected, id(0, 1)), None);
        assert_eq!(estimate_entries_read(&expected, id(2, 1)), Some(10));
    }

    #[test]
    fn listpack_encodings_match_redis() {
        let mut lp = ListpackWriter::new();
        for v in [
            "0", "127", "128", "-1", "-4096", "4095", "4096", "-32768", "32767", "8388607",
            "-8388608",
        ] {
            lp.push_str(v.as_bytes());
        }
        for v in [
            "2147483647",
            "-2147483648",
            "2147483648",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            lp.push_str(v.as_bytes());
        }
        let not_ints = ["", "01", "-0", "+1", " 1", "9223372036854775808", "1.5"];
        for v in not_ints {
            lp.push_str(v.as_bytes());
        }
        let (s63, s64, s4095, s4096) = (
            "a".repeat(63),
            "b".repeat(64),
            "c".repeat(4095),
            "d".repeat(4096),
        );
        for v in [&s63, &s64, &s4095, &s4096] {
            lp.push_str(v.as_bytes());
        }
        let bytes = lp.finish();
        // Spot checks against listpack.c's encodings.
        assert_eq!(&bytes[6..12], [0x00, 0x01, 0x7f, 0x01, 0xc0, 0x80]);
        assert_eq!(&bytes[12..15], [0x02, 0xdf, 0xff]); // 128: backlen 2, then -1
        let items = listpack::parse(&bytes).unwrap();
        let mut expected: Vec<Elem> = [
            "0",
            "127",
            "128",
            "-1",
            "-4096",
            "4095",
            "4096",
            "-32768",
            "32767",
            "8388607",
            "-8388608",
            "2147483647",
            "-2147483648",
            "2147483648",
            "9223372036854775807",
            "-9223372036854775808",
        ]
        .iter()
        .map(|s| el(s))
        .collect();
        expected.extend(not_ints.iter().map(|s| el(s)));
        expected.extend([&s63, &s64, &s4095, &s4096].iter().map(|s| el(s)));
        assert_eq!(items, expected);
        // More than 65535 elements: the header count is 65535 ("unknown").
        let mut lp = ListpackWriter::new();
        for _ in 0..70000 {
            lp.push_int(1);
        }
        let bytes = lp.finish();
        assert_eq!(&bytes[4..6], [0xff, 0xff]);
        assert_eq!(listpack::parse(&bytes).unwrap().len(), 70000);
    }

    #[test]
    fn corrupt_payloads_are_rejected_without_panicking() {
        let payloads = [
            hex(REDIS_SIMPLE),
            hex(REDIS_HISTORY),
            hex(REDIS_EMPTY),
            hex(REDIS_LONG_VALUE),
            dump_stream(&sample_stream()),
        ];
        for p in &payloads {
            let body = &p[..p.len() - 10];
            // Every truncation is an error. (Big payloads: a sample.)
            let step = body.len() / 2000 + 1;
            for n in (0..body.len()).step_by(step) {
                assert!(restore(&framed(&body[..n])).is_err(), "truncated at {n}");
            }
            // Flipped bits with a valid checksum: an error or some stream,
            // never a panic. (Big payloads: a sample of positions.)
            for i in (0..body.len()).step_by(step) {
                for mask in [0x01u8, 0x02, 0x10, 0x40, 0x80, 0xff] {
                    let mut b = body.to_vec();
                    b[i] ^= mask;
                    match restore(&framed(&b)) {
                        Ok(v) => assert!(matches!(v, Value::Stream(_))),
                        Err(e) => assert_eq!(e, RestoreError::BadData),
                    }
                }
            }
        }
    }

    #[test]
    fn inconsistent_streams_are_bad_data() {
        let bad = |s: &Stream| restore(&dump_stream(s));
        let base = restore_stream(&hex(REDIS_SIMPLE));

        // A consumer owning an entry the group PEL lacks.
        let mut s = base.clone();
        let g = s.groups.get_mut(&el("g")).unwrap();
        g.consumers
            .get_mut(&el("c"))
            .unwrap()
            .pending
            .insert(id(2, 1));
        assert_eq!(bad(&s), Err(RestoreError::BadData));
        // A group PEL entry no consumer owns.
        let mut s = base.clone();
        let g = s.groups.get_mut(&el("g")).unwrap();
        g.pending.insert(id(1, 2), pending("c", 0, 1));
        assert_eq!(bad(&s), Err(RestoreError::BadData));
        // Two consumers owning one entry.
        let mut s = base.clone();
        let g = s.groups.get_mut(&el("g")).unwrap();
        g.consumers.insert(el("d"), g.consumers[&el("c")].clone());
        assert_eq!(bad(&s), Err(RestoreError::BadData));
        // The last ID below an entry.
        let mut s = base.clone();
        s.last_id = id(1, 5);
        assert_eq!(bad(&s), Err(RestoreError::BadData));
        // Fewer entries added than there are.
        let mut s = base.clone();
        s.entries_added = 2;
        assert_eq!(bad(&s), Err(RestoreError::BadData));

        let redis = hex(REDIS_SIMPLE);
        let body = &redis[..redis.len() - 10];
        let patched = |at: usize, byte: u8| {
            let mut b = body.to_vec();
            b[at] = byte;
            restore(&framed(&b))
        };
        // The stream length (3), the master entry's count (3) and deleted
        // count (0), an lp-count (5), the master key's length (16).
        assert_eq!(patched(77, 0x02), Err(RestoreError::BadData));
        assert_eq!(patched(26, 0x02), Err(RestoreError::BadData));
        assert_eq!(patched(28, 0x01), Err(RestoreError::BadData));
        assert_eq!(patched(50, 0x04), Err(RestoreError::BadData));
        assert_eq!(patched(2, 0x0f), Err(RestoreError::BadData));
        // An unknown entry flag.
        assert_eq!(patched(40, 0x06), Err(RestoreError::BadData));

        // Huge counts end at the data's end, allocating nothing up front.
        for body in [
            vec![
                RDB_TYPE_STREAM_LISTPACKS_2,
                0x81,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
            ],
            vec![
                RDB_TYPE_STREAM_LISTPACKS_2,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0x81,
                0x7f,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
            ],
            vec![RDB_TYPE_STREAM_LISTPACKS_2, 1, 0x10],
        ] {
            assert_eq!(restore(&framed(&body)), Err(RestoreError::BadData));
        }
    }
}

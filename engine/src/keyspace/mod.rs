//! The keyspace: 16 (configurable) databases of keys, their expiry times, and
//! the bookkeeping every mutation goes through.
//!
//! Every change to a key passes through [`Keyspace::modified`], the one place
//! that invalidates WATCHers and wakes clients blocked on the key. Lazy expiry
//! happens here too: a lookup of an expired key deletes it and records a DEL
//! effect (before the command's own effect), exactly as a primary must for
//! replicas and recovery to see the same data. While effects are being
//! *applied* (replay, replicas) expiry is never decided locally.

pub mod access;
pub mod stream;
pub mod value;
pub mod zset;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use crate::effect::EffectLog;
pub use access::AccessClock;
pub use stream::{Stream, StreamId};
pub use value::{Elem, Key, Map, Object, Set, Value, ValueType};
pub use zset::ZSet;

/// A connection's identity (CLIENT ID).
pub type ClientId = u64;

/// One logical database (SELECT n).
#[derive(Debug, Default)]
pub struct Db {
    pub data: Map<Key, Object>,
    /// Absolute expiry times in Unix milliseconds, for keys that have one.
    pub expires: Map<Key, i64>,
}

impl Db {
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn expire_of(&self, key: &[u8]) -> Option<i64> {
        if self.expires.is_empty() {
            return None;
        }
        self.expires.get(key).copied()
    }

    /// The value at `key`, as stored: no expiry check, no access counted.
    pub fn value(&self, key: &[u8]) -> Option<&Value> {
        self.data.get(key).map(|o| &o.value)
    }

    /// Mutable [`value`](Self::value).
    pub fn value_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        self.data.get_mut(key).map(|o| &mut o.value)
    }
}

/// Keyspace notification classes (`notify-keyspace-events` letters).
pub mod notify {
    pub const KEYSPACE: u32 = 1 << 0; // K
    pub const KEYEVENT: u32 = 1 << 1; // E
    pub const GENERIC: u32 = 1 << 2; // g
    pub const STRING: u32 = 1 << 3; // $
    pub const LIST: u32 = 1 << 4; // l
    pub const SET: u32 = 1 << 5; // s
    pub const HASH: u32 = 1 << 6; // h
    pub const ZSET: u32 = 1 << 7; // z
    pub const EXPIRED: u32 = 1 << 8; // x
    pub const EVICTED: u32 = 1 << 9; // e
    pub const STREAM: u32 = 1 << 10; // t
    pub const KEY_MISS: u32 = 1 << 11; // m
    pub const MODULE: u32 = 1 << 12; // d
    pub const NEW: u32 = 1 << 13; // n
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

    /// Parses the config string; `None` on an unknown letter.
    pub fn parse(s: &[u8]) -> Option<u32> {
        let mut f = 0;
        for &c in s {
            f |= match c {
                b'A' => ALL,
                b'g' => GENERIC,
                b'$' => STRING,
                b'l' => LIST,
                b's' => SET,
                b'h' => HASH,
                b'z' => ZSET,
                b'x' => EXPIRED,
                b'e' => EVICTED,
                b'K' => KEYSPACE,
                b'E' => KEYEVENT,
                b't' => STREAM,
                b'm' => KEY_MISS,
                b'd' => MODULE,
                b'n' => NEW,
                _ => return None,
            };
        }
        Some(f)
    }

    /// The canonical config string for flags, as CONFIG GET shows it.
    pub fn to_string(f: u32) -> String {
        let mut s = String::new();
        if f & ALL == ALL {
            s.push('A');
        } else {
            for (bit, c) in [
                (GENERIC, 'g'),
                (STRING, '$'),
                (LIST, 'l'),
                (SET, 's'),
                (HASH, 'h'),
                (ZSET, 'z'),
                (EXPIRED, 'x'),
                (EVICTED, 'e'),
                (STREAM, 't'),
                (MODULE, 'd'),
                // Among the classes, so `A` hides it, as in Redis 7.0's
                // keyspaceEventsFlagsToString.
                (NEW, 'n'),
            ] {
                if f & bit != 0 {
                    s.push(c);
                }
            }
        }
        if f & KEYSPACE != 0 {
            s.push('K');
        }
        if f & KEYEVENT != 0 {
            s.push('E');
        }
        if f & KEY_MISS != 0 {
            s.push('m');
        }
        s
    }
}

/// A keyspace event waiting to be published once the command finishes.
#[derive(Debug, Clone)]
pub struct KeyEvent {
    pub db: usize,
    pub event: Bytes,
    pub key: Bytes,
}

/// A WATCHed key as recorded at WATCH time.
#[derive(Debug, Clone)]
struct WatchEntry {
    client: ClientId,
    /// The key was already logically expired when watched.
    expired_at_watch: bool,
}

/// All databases plus the per-mutation bookkeeping.
#[derive(Debug)]
pub struct Keyspace {
    pub dbs: Vec<Db>,
    /// The time of the command being executed, Unix ms (Redis caches it too).
    pub now_ms: i64,
    /// True while replaying effects: no lazy expiry, no effects emitted.
    pub applying: bool,
    /// Changes since the last save (INFO rdb_changes_since_last_save).
    pub dirty: u64,
    /// Changes made by the command being executed.
    pub cmd_dirty: u64,
    pub effects: EffectLog,
    /// notify-keyspace-events flags.
    pub notify_flags: u32,
    pub pending_events: Vec<KeyEvent>,
    /// Keys some client is blocked on (BLPOP & co), and which became ready.
    pub blocked_keys: HashMap<(usize, Elem), usize>,
    pub ready_keys: Vec<(usize, Elem)>,
    watched: HashMap<(usize, Elem), Vec<WatchEntry>>,
    /// Clients whose WATCHed keys changed: their EXEC fails.
    pub dirty_cas: HashSet<ClientId>,
    pub stat_expired_keys: u64,
    pub stat_keyspace_hits: u64,
    pub stat_keyspace_misses: u64,
    /// Some client has CLIENT TRACKING on: changes are listed below.
    pub tracking_on: bool,
    /// Keys changed since the tracking side last looked, with whether a
    /// command changed each (false: it expired).
    pub tracking_changes: Vec<(Bytes, bool)>,
    /// A database was emptied since the tracking side last looked.
    pub tracking_flushed: bool,
    /// CLIENT PAUSE is in force: reads treat expired keys as gone but do
    /// not delete them (a deletion is a write).
    pub expire_paused: bool,
    /// How keys' access clocks are kept (LRU or LFU).
    pub access: AccessClock,
    /// A forked snapshot child shares the data set's pages: lookups leave
    /// access clocks alone meanwhile, so that reads copy no page (Redis
    /// skips them while it has a child for the same reason).
    pub forked_child: bool,
    /// The entry (db, index) the command being executed last accessed:
    /// under LFU a write right after a lookup of the same key is not a
    /// second access (see `touch`).
    last_touch: Option<(usize, usize)>,
}

/// How a lookup counts (Redis' LOOKUP_NOSTATS and LOOKUP_NONOTIFY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    /// Neither in the keyspace hits/misses nor as an event.
    No,
    /// A keyspace hit or miss.
    Stats,
    /// A keyspace hit or miss, and a miss is a `keymiss` event.
    StatsAndKeymiss,
}

/// Current Unix time in milliseconds.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Keyspace {
    pub fn new(databases: usize) -> Self {
        Self {
            dbs: (0..databases.max(1)).map(|_| Db::default()).collect(),
            now_ms: unix_ms(),
            applying: false,
            dirty: 0,
            cmd_dirty: 0,
            effects: EffectLog::default(),
            notify_flags: 0,
            pending_events: Vec::new(),
            blocked_keys: HashMap::new(),
            ready_keys: Vec::new(),
            watched: HashMap::new(),
            dirty_cas: HashSet::new(),
            stat_expired_keys: 0,
            stat_keyspace_hits: 0,
            stat_keyspace_misses: 0,
            tracking_on: false,
            tracking_changes: Vec::new(),
            tracking_flushed: false,
            expire_paused: false,
            access: AccessClock::default(),
            forked_child: false,
            last_touch: None,
        }
    }

    /// Whether `key` has a TTL that has passed (it may still be in the dict).
    pub fn is_expired(&self, db: usize, key: &[u8]) -> bool {
        match self.dbs[db].expire_of(key) {
            Some(at) => !self.applying && at <= self.now_ms,
            None => false,
        }
    }

    /// Deletes `key` if its TTL has passed, recording the DEL effect and the
    /// `expired` event. Returns whether it was deleted.
    pub fn expire_if_needed(&mut self, db: usize, key: &[u8]) -> bool {
        if !self.is_expired(db, key) {
            return false;
        }
        self.delete_expired(db, key);
        true
    }

    /// Removes an expired key (lazily or from the active cycle).
    pub fn delete_expired(&mut self, db: usize, key: &[u8]) {
        let d = &mut self.dbs[db];
        d.data.swap_remove(key);
        d.expires.swap_remove(key);
        self.stat_expired_keys += 1;
        self.dirty += 1;
        self.effects.push_command(
            db,
            vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(key)],
        );
        self.notify(db, notify::EXPIRED, "expired", key);
        self.touch_watched(db, key);
        if self.tracking_on {
            self.tracking_changes
                .push((Bytes::copy_from_slice(key), false));
        }
    }

    /// Looks a key up for reading (expired keys are deleted first); an
    /// access of the key.
    pub fn get(&mut self, db: usize, key: &[u8]) -> Option<&Value> {
        self.lookup(db, key, true, Count::No)
    }

    /// Like [`get`](Self::get), counting keyspace hits and misses.
    pub fn get_counted(&mut self, db: usize, key: &[u8]) -> Option<&Value> {
        self.lookup(db, key, true, Count::StatsAndKeymiss)
    }

    /// Like [`get_counted`](Self::get_counted), but not an access of the
    /// key: its access clock stays (Redis' LOOKUP_NOTOUCH, which EXISTS,
    /// TYPE and TTL use).
    pub fn peek_counted(&mut self, db: usize, key: &[u8]) -> Option<&Value> {
        self.lookup(db, key, false, Count::StatsAndKeymiss)
    }

    /// Like [`peek_counted`](Self::peek_counted) without the `keymiss`
    /// event (Redis' LOOKUP_NOTOUCH|LOOKUP_NONOTIFY, which OBJECT uses).
    pub fn peek_counted_quietly(&mut self, db: usize, key: &[u8]) -> Option<&Value> {
        self.lookup(db, key, false, Count::Stats)
    }

    /// Counts a keyspace miss of `key` and sends its `keymiss` event, as a
    /// counted lookup that found nothing does (also SCAN's TYPE filter).
    pub fn count_miss(&mut self, db: usize, key: &[u8]) {
        self.stat_keyspace_misses += 1;
        if self.notify_flags & notify::KEY_MISS != 0 {
            self.notify(db, notify::KEY_MISS, "keymiss", key);
        }
    }

    /// The key's access clock (`access`), if it exists; no lookup.
    pub fn access_clock(&self, db: usize, key: &[u8]) -> Option<u32> {
        self.dbs[db].data.get(key).map(|o| o.lru)
    }

    /// Sets the key's access clock, if it exists (RESTORE's IDLETIME/FREQ).
    pub fn set_access_clock(&mut self, db: usize, key: &[u8], lru: u32) {
        if let Some(o) = self.dbs[db].data.get_mut(key) {
            o.lru = lru;
        }
    }

    /// Redis' lookupKey: expires the key if due, then, when it exists,
    /// updates its access clock (`touch`, unless a snapshot child shares
    /// the pages); counts it as `count` says.
    fn lookup(&mut self, db: usize, key: &[u8], touch: bool, count: Count) -> Option<&Value> {
        let counted = count != Count::No;
        if self.expire_paused && self.is_expired(db, key) {
            if counted {
                self.stat_keyspace_misses += 1;
            }
            return None;
        }
        self.expire_if_needed(db, key);
        // One hash probe: the index is looked up once and then dereferenced
        // (returning a borrow from one branch would need a second probe).
        match self.dbs[db].data.get_index_of(key) {
            Some(i) => {
                if counted {
                    self.stat_keyspace_hits += 1;
                }
                if touch {
                    self.touch(db, i, false);
                }
                self.dbs[db].data.get_index(i).map(|(_, o)| &o.value)
            }
            None => {
                match count {
                    Count::StatsAndKeymiss => self.count_miss(db, key),
                    Count::Stats => self.stat_keyspace_misses += 1,
                    Count::No => {}
                }
                None
            }
        }
    }

    /// Looks a key up for writing (expired keys are deleted first); an
    /// access of the key.
    pub fn get_mut(&mut self, db: usize, key: &[u8]) -> Option<&mut Value> {
        self.expire_if_needed(db, key);
        let i = self.dbs[db].data.get_index_of(key)?;
        self.touch(db, i, true);
        self.dbs[db]
            .data
            .get_index_mut(i)
            .map(|(_, o)| &mut o.value)
    }

    /// Records an access of entry `i` of `db` in its clock: a `write`
    /// right after the command's lookup of the same key is that one access
    /// (Redis looks a key up once and then writes it; memlog's write paths
    /// find the key again), each read counts (MGET k k looks k up twice in
    /// Redis too). Not while a forked snapshot child shares the pages,
    /// unless the entry is written anyway. An LRU clock changes once a
    /// second: the same value is not stored again (no cache line or page
    /// dirtied).
    fn touch(&mut self, db: usize, i: usize, write: bool) {
        // Replay (recovery, rebuilds) accesses nothing: a snapshot's
        // clocks stay as it set them.
        if self.applying || (self.forked_child && !write) {
            return;
        }
        if self.access.lfu {
            let again = self.last_touch == Some((db, i));
            self.last_touch = Some((db, i));
            if write && again {
                return;
            }
        }
        let (access, now) = (self.access, self.now_ms);
        if let Some((_, o)) = self.dbs[db].data.get_index_mut(i) {
            let lru = access.touched(o.lru, now);
            if lru != o.lru {
                o.lru = lru;
            }
        }
    }

    /// A key the command just created: in Redis it starts at its initial
    /// count, and writing it again in the same command is no access.
    fn created(&mut self, db: usize, i: usize) {
        if self.access.lfu {
            self.last_touch = Some((db, i));
        }
    }

    /// The next write of the key last looked up counts as an access of
    /// its own, where Redis looks the key up again to write it (GETSET,
    /// SET ... GET, PFMERGE, BZPOPMIN).
    pub fn access_again(&mut self) {
        self.last_touch = None;
    }

    /// The next write of `key` is part of an access already counted (a
    /// command that looked it up, then another key, and now writes it:
    /// Redis writes through its first lookup).
    pub fn accessed(&mut self, db: usize, key: &[u8]) {
        if self.access.lfu {
            if let Some(i) = self.dbs[db].data.get_index_of(key) {
                self.last_touch = Some((db, i));
            }
        }
    }

    /// Starts a command: counters and the access memo are its own.
    pub fn begin_command(&mut self) {
        self.cmd_dirty = 0;
        self.last_touch = None;
    }

    /// A new key's [`Object`], its access clock started now.
    pub fn new_object(&self, value: Value) -> Object {
        Object::new(value, self.access.fresh(self.now_ms))
    }

    pub fn exists(&mut self, db: usize, key: &[u8]) -> bool {
        self.get(db, key).is_some()
    }

    /// Sets `key` to `value`, dropping any TTL (SET semantics without KEEPTTL).
    /// Returns whether the key is new.
    pub fn set(&mut self, db: usize, key: &[u8], value: Value) -> bool {
        self.expire_if_needed(db, key);
        let d = &mut self.dbs[db];
        if !d.expires.is_empty() {
            d.expires.swap_remove(key);
        }
        match d.data.get_index_of(key) {
            Some(i) => {
                d.data[i].value = value;
                self.touch(db, i, true);
                false
            }
            None => {
                let o = self.new_object(value);
                let i = self.dbs[db].data.insert_full(key.into(), o).0;
                self.created(db, i);
                if self.notify_flags & notify::NEW != 0 {
                    self.notify(db, notify::NEW, "new", key);
                }
                true
            }
        }
    }

    /// Sets `key` to `value` keeping its TTL (KEEPTTL, in-place updates).
    pub fn set_keep_ttl(&mut self, db: usize, key: &[u8], value: Value) {
        self.expire_if_needed(db, key);
        let d = &mut self.dbs[db];
        match d.data.get_index_of(key) {
            Some(i) => {
                d.data[i].value = value;
                self.touch(db, i, true);
            }
            None => {
                let o = self.new_object(value);
                let i = self.dbs[db].data.insert_full(key.into(), o).0;
                self.created(db, i);
                if self.notify_flags & notify::NEW != 0 {
                    self.notify(db, notify::NEW, "new", key);
                }
            }
        }
    }

    /// Returns the value at `key`, creating it with `make` if missing, or
    /// `None` if it exists with another type than `make` would create... the
    /// caller checks the type; this only creates.
    pub fn get_or_insert_with(
        &mut self,
        db: usize,
        key: &[u8],
        make: impl FnOnce() -> Value,
    ) -> &mut Value {
        self.expire_if_needed(db, key);
        let notify_new =
            self.notify_flags & notify::NEW != 0 && !self.dbs[db].data.contains_key(key);
        if notify_new {
            self.notify(db, notify::NEW, "new", key);
        }
        let i = match self.dbs[db].data.get_index_of(key) {
            Some(i) => {
                self.touch(db, i, true);
                i
            }
            None => {
                let o = self.new_object(make());
                let i = self.dbs[db].data.insert_full(key.into(), o).0;
                self.created(db, i);
                i
            }
        };
        &mut self.dbs[db].data[i].value
    }

    /// Removes `key` and its TTL; returns the value if it existed.
    pub fn remove(&mut self, db: usize, key: &[u8]) -> Option<Value> {
        self.expire_if_needed(db, key);
        self.remove_as_is(db, key)
    }

    /// Removes `key` and its TTL as they are, expired or not (an eviction:
    /// Redis evicts an expired key as any other, without an expiry).
    pub fn remove_as_is(&mut self, db: usize, key: &[u8]) -> Option<Value> {
        let d = &mut self.dbs[db];
        let o = d.data.swap_remove(key);
        if !d.expires.is_empty() {
            d.expires.swap_remove(key);
        }
        o.map(|o| o.value)
    }

    /// Removes `key` if its collection became empty (after a pop/remove).
    /// Returns whether it was removed.
    pub fn remove_if_empty(&mut self, db: usize, key: &[u8]) -> bool {
        let d = &mut self.dbs[db];
        if d.value(key).is_some_and(|v| v.is_empty_collection()) {
            d.data.swap_remove(key);
            d.expires.swap_remove(key);
            return true;
        }
        false
    }

    /// Sets an absolute expiry (Unix ms) on an existing key.
    pub fn set_expire(&mut self, db: usize, key: &[u8], at_ms: i64) {
        let d = &mut self.dbs[db];
        // A TTL without its key would be a volatile policy's candidate
        // that can never be evicted.
        if !d.data.contains_key(key) {
            return;
        }
        if let Some(v) = d.expires.get_mut(key) {
            *v = at_ms;
        } else {
            d.expires.insert(key.into(), at_ms);
        }
    }

    /// Removes the TTL; returns whether there was one.
    pub fn persist(&mut self, db: usize, key: &[u8]) -> bool {
        self.dbs[db].expires.swap_remove(key).is_some()
    }

    /// Records that the command changed `key`: WATCH invalidation, blocked
    /// client wake-up, dirty counters. Every mutation calls this.
    pub fn modified(&mut self, db: usize, key: &[u8]) {
        self.dirty += 1;
        self.cmd_dirty += 1;
        self.touch_watched(db, key);
        if self.tracking_on {
            self.tracking_changes
                .push((Bytes::copy_from_slice(key), true));
        }
        if !self.blocked_keys.is_empty() && self.blocked_keys.contains_key(&(db, Elem::from(key))) {
            self.ready_keys.push((db, key.into()));
        }
    }

    /// Counts a change that touches no single key (FLUSHDB, SWAPDB, ...).
    pub fn modified_many(&mut self, n: u64) {
        self.dirty += n;
        self.cmd_dirty += n.max(1);
    }

    /// Queues a keyspace notification; it is published after the command.
    pub fn notify(&mut self, db: usize, class: u32, event: &str, key: &[u8]) {
        let f = self.notify_flags;
        if f & class == 0 || f & (notify::KEYSPACE | notify::KEYEVENT) == 0 || self.applying {
            return;
        }
        self.pending_events.push(KeyEvent {
            db,
            event: Bytes::copy_from_slice(event.as_bytes()),
            key: Bytes::copy_from_slice(key),
        });
    }

    /// Records an effect command explicitly (a handler that rewrites itself).
    pub fn propagate(&mut self, db: usize, argv: Vec<Bytes>) {
        if !self.applying {
            self.effects.push_explicit(db, argv);
        }
    }

    // --- WATCH ---

    pub fn watch(&mut self, client: ClientId, db: usize, key: &[u8]) {
        let expired_at_watch = self.is_expired(db, key);
        let list = self.watched.entry((db, key.into())).or_default();
        if !list.iter().any(|w| w.client == client) {
            list.push(WatchEntry {
                client,
                expired_at_watch,
            });
        }
    }

    /// Drops every WATCH of `client`, looking through all of them (for a
    /// client whose own list was lost to a panic).
    pub fn forget_watcher(&mut self, client: ClientId) {
        self.watched.retain(|_, list| {
            list.retain(|w| w.client != client);
            !list.is_empty()
        });
        self.dirty_cas.remove(&client);
    }

    pub fn unwatch_all(&mut self, client: ClientId, keys: &[(usize, Elem)]) {
        for k in keys {
            if let Some(list) = self.watched.get_mut(k) {
                list.retain(|w| w.client != client);
                if list.is_empty() {
                    self.watched.remove(k);
                }
            }
        }
        self.dirty_cas.remove(&client);
    }

    fn touch_watched(&mut self, db: usize, key: &[u8]) {
        if self.watched.is_empty() {
            return;
        }
        if let Some(list) = self.watched.get(&(db, Elem::from(key))) {
            let gone = !self.dbs[db].data.contains_key(key);
            for w in list {
                // A key already expired when watched and now deleted is,
                // logically, unchanged.
                if w.expired_at_watch && gone {
                    continue;
                }
                self.dirty_cas.insert(w.client);
            }
        }
    }

    /// Invalidates every watcher of a key of `db` (FLUSHDB, SWAPDB). With
    /// `only_existing`, only keys that exist in `db` count.
    pub fn touch_all_watched_in_db(&mut self, db: usize, other: Option<usize>) {
        if self.watched.is_empty() {
            return;
        }
        let mut hit = Vec::new();
        for ((wdb, key), list) in &self.watched {
            if *wdb != db {
                continue;
            }
            let exists_here = self.dbs[db].data.contains_key(&key[..]);
            let exists_there = other.is_some_and(|o| self.dbs[o].data.contains_key(&key[..]));
            if exists_here || exists_there {
                hit.extend(list.iter().map(|w| w.client));
            }
        }
        self.dirty_cas.extend(hit);
    }

    /// At EXEC: whether any key `client` watches expired since WATCH.
    pub fn watched_key_expired(&self, client: ClientId, keys: &[(usize, Elem)]) -> bool {
        keys.iter().any(|(db, key)| {
            self.watched.get(&(*db, key.clone())).is_some_and(|list| {
                list.iter()
                    .any(|w| w.client == client && !w.expired_at_watch && self.is_expired(*db, key))
            })
        })
    }
}

macro_rules! typed_access {
    ($get:ident, $get_read:ident, $get_mut:ident, $variant:ident, $ty:ty) => {
        /// Typed read access: `Ok(None)` if missing, WRONGTYPE if another type.
        pub fn $get(&mut self, db: usize, key: &[u8]) -> Result<Option<&$ty>, crate::CmdError> {
            match self.get(db, key) {
                None => Ok(None),
                Some(Value::$variant(v)) => Ok(Some(v)),
                Some(_) => Err(crate::CmdError::WrongType),
            }
        }

        /// Typed read access for a read command, once per key: counted as a
        /// keyspace hit or miss (a miss is a `keymiss` event), as Redis'
        /// lookupKeyRead counts it.
        pub fn $get_read(
            &mut self,
            db: usize,
            key: &[u8],
        ) -> Result<Option<&$ty>, crate::CmdError> {
            match self.get_counted(db, key) {
                None => Ok(None),
                Some(Value::$variant(v)) => Ok(Some(v)),
                Some(_) => Err(crate::CmdError::WrongType),
            }
        }

        /// Typed write access: `Ok(None)` if missing, WRONGTYPE if another type.
        pub fn $get_mut(
            &mut self,
            db: usize,
            key: &[u8],
        ) -> Result<Option<&mut $ty>, crate::CmdError> {
            match self.get_mut(db, key) {
                None => Ok(None),
                Some(Value::$variant(v)) => Ok(Some(v)),
                Some(_) => Err(crate::CmdError::WrongType),
            }
        }
    };
}

impl Keyspace {
    typed_access!(get_str, get_str_read, get_str_mut, Str, Elem);
    typed_access!(
        get_list,
        get_list_read,
        get_list_mut,
        List,
        std::collections::VecDeque<Elem>
    );
    typed_access!(get_hash, get_hash_read, get_hash_mut, Hash, Map<Elem, Elem>);
    typed_access!(get_set, get_set_read, get_set_mut, Set, Set<Elem>);
    typed_access!(get_zset, get_zset_read, get_zset_mut, ZSet, ZSet);
    typed_access!(get_stream, get_stream_read, get_stream_mut, Stream, Stream);

    /// Checks the type of `key` without borrowing it: WRONGTYPE if it exists
    /// with another type than `t`.
    pub fn check_type(
        &mut self,
        db: usize,
        key: &[u8],
        t: ValueType,
    ) -> Result<bool, crate::CmdError> {
        match self.get(db, key) {
            None => Ok(false),
            Some(v) if v.value_type() == t => Ok(true),
            Some(_) => Err(crate::CmdError::WrongType),
        }
    }
}

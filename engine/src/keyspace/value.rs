//! The values a key can hold, one variant per Redis type.
//!
//! Strings are a boxed byte slice (16 bytes, allocation sized exactly), the
//! collections are boxed so that `Value` stays 24 bytes: memory per key is a
//! product goal (no more RSS than Redis for the same data set).

use std::collections::VecDeque;

use super::stream::Stream;
use super::zset::ZSet;

/// A hash map with a randomly seeded fast hasher, in insertion order, with
/// O(1) access by index (random sampling, SCAN cursors).
pub type Map<K, V> = indexmap::IndexMap<K, V, hashbrown::DefaultHashBuilder>;
/// The set counterpart of [`Map`].
pub type Set<K> = indexmap::IndexSet<K, hashbrown::DefaultHashBuilder>;

/// An element of a collection (and a string value).
pub type Elem = Box<[u8]>;

/// A key of the keyspace. Keys up to 24 bytes (most keys) live inside the
/// map entry: no allocation of their own, and a lookup compares them without
/// chasing a pointer, which is a cache miss per GET on a large data set.
/// Hashes and compares as its bytes, so maps are looked up with `&[u8]`.
pub type Key = smallvec::SmallVec<[u8; 24]>;

/// A Redis value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Elem),
    List(Box<VecDeque<Elem>>),
    Hash(Box<Map<Elem, Elem>>),
    Set(Box<Set<Elem>>),
    ZSet(Box<ZSet>),
    Stream(Box<Stream>),
}

/// What a key maps to: its value and its access clock (the `lru` field of
/// Redis' `robj`, see `access`).
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub value: Value,
    /// LRU seconds or LFU minutes and counter, by `AccessClock`.
    pub lru: u32,
}

impl Object {
    pub fn new(value: Value, lru: u32) -> Self {
        Self { value, lru }
    }
}

/// The Redis type of a value, as TYPE and SCAN TYPE name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    String,
    List,
    Hash,
    Set,
    ZSet,
    Stream,
}

impl ValueType {
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::List => "list",
            ValueType::Hash => "hash",
            ValueType::Set => "set",
            ValueType::ZSet => "zset",
            ValueType::Stream => "stream",
        }
    }

    pub fn from_name(s: &[u8]) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_slice() {
            b"string" => ValueType::String,
            b"list" => ValueType::List,
            b"hash" => ValueType::Hash,
            b"set" => ValueType::Set,
            b"zset" => ValueType::ZSet,
            b"stream" => ValueType::Stream,
            _ => return None,
        })
    }
}

impl Value {
    pub fn str(b: &[u8]) -> Self {
        Value::Str(b.into())
    }

    pub fn new_list() -> Self {
        Value::List(Box::default())
    }

    pub fn new_hash() -> Self {
        Value::Hash(Box::default())
    }

    pub fn new_set() -> Self {
        Value::Set(Box::default())
    }

    pub fn new_zset() -> Self {
        Value::ZSet(Box::default())
    }

    pub fn new_stream() -> Self {
        Value::Stream(Box::default())
    }

    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Str(_) => ValueType::String,
            Value::List(_) => ValueType::List,
            Value::Hash(_) => ValueType::Hash,
            Value::Set(_) => ValueType::Set,
            Value::ZSet(_) => ValueType::ZSet,
            Value::Stream(_) => ValueType::Stream,
        }
    }

    pub fn type_name(&self) -> &'static str {
        self.value_type().name()
    }

    /// Whether a collection has become empty (and its key must be removed).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
            // An empty stream stays (XDEL, XTRIM and groups keep it).
            Value::Stream(_) => false,
        }
    }

    /// Approximate heap bytes held by the value (MEMORY USAGE, used_memory).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::List(l) => l.iter().map(|e| e.len() + 16).sum::<usize>() + 32,
            Value::Hash(h) => h.iter().map(|(k, v)| k.len() + v.len() + 48).sum::<usize>() + 64,
            Value::Set(s) => s.iter().map(|e| e.len() + 32).sum::<usize>() + 64,
            Value::ZSet(z) => z.heap_size(),
            Value::Stream(s) => s.heap_size(),
        }
    }
}

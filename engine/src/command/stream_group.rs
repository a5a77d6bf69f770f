//! Stream consumer groups and introspection (t_stream.c): XGROUP,
//! XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM and XINFO, with Redis
//! 7.0's replies and errors.
//!
//! Effects are Redis' own propagation, made exact: a delivery or claim is
//! logged as `XCLAIM key group consumer 0 id TIME t RETRYCOUNT n FORCE
//! JUSTID LASTID last` (an entry gone from the stream the same way, which
//! replays as its removal from the pending lists), a new consumer as
//! `XGROUP CREATECONSUMER`, and a moved group position as `XGROUP SETID
//! ... ENTRIESREAD n`, so replay needs no clock and rebuilds the same
//! groups. Consumers' seen-times are not logged (a Redis replica's differ
//! too).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::flags::*;
use super::server::{subcommand, subcommand_syntax_error, write_help};
use super::stream::{block_on_streams, parse_read_args, reply_entry, xread_keys, ReadArgs};
use super::CommandSpec;
use crate::argv;
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::keyspace::stream::{Consumer, Group, PendingEntry};
use crate::keyspace::{notify, unix_ms, Elem, Stream, StreamId, Value, ValueType};
use crate::numbers::parse_i64;
use crate::resp::ReplyBuf;

const XGROUP_SUBS: &[(&str, i32)] = &[
    ("create", -5),
    ("setid", -5),
    ("destroy", 4),
    ("createconsumer", 5),
    ("delconsumer", 5),
    ("help", 2),
];

const XINFO_SUBS: &[(&str, i32)] = &[("consumers", 4), ("groups", 3), ("stream", -3), ("help", 2)];

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xgroup", -2, WRITE, (2, 2, 1), "stream", xgroup)
        .with_subcommands(XGROUP_SUBS),
    CommandSpec::new(
        "xreadgroup",
        -7,
        WRITE | BLOCKING,
        (0, 0, 0),
        "stream",
        xreadgroup,
    )
    .with_keys_fn(xread_keys),
    CommandSpec::new("xack", -4, WRITE | FAST, (1, 1, 1), "stream", xack),
    CommandSpec::new("xpending", -3, READONLY, (1, 1, 1), "stream", xpending),
    CommandSpec::new("xclaim", -6, WRITE | FAST, (1, 1, 1), "stream", xclaim),
    CommandSpec::new(
        "xautoclaim",
        -6,
        WRITE | FAST,
        (1, 1, 1),
        "stream",
        xautoclaim,
    ),
    CommandSpec::new("xinfo", -2, READONLY, (2, 2, 1), "stream", xinfo)
        .with_subcommands(XINFO_SUBS),
];

fn parse_strict_id(arg: &[u8]) -> Result<StreamId, CmdError> {
    super::stream::parse_strict_id(arg)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn nogroup_key(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::coded(
        "NOGROUP",
        format!(
            "No such key '{}' or consumer group '{}'",
            lossy(key),
            lossy(group)
        ),
    )
}

fn nogroup_for_key(group: &[u8], key: &[u8]) -> CmdError {
    CmdError::coded(
        "NOGROUP",
        format!(
            "No such consumer group '{}' for key name '{}'",
            lossy(group),
            lossy(key)
        ),
    )
}

/// The effect that moves a group to where it is (`XGROUP SETID ... ENTRIESREAD`).
fn setid_effect(key: &[u8], group: &[u8], g: &Group) -> Vec<Bytes> {
    let read = g.entries_read.map_or(-1, |n| n as i64);
    argv![
        b"XGROUP",
        b"SETID",
        key,
        group,
        g.last_id.to_bytes(),
        b"ENTRIESREAD",
        read.to_string()
    ]
}

/// The effect of a delivery or claim (see the module doc).
fn xclaim_effect(
    key: &[u8],
    group: &[u8],
    id: StreamId,
    nack: &PendingEntry,
    last: StreamId,
) -> Vec<Bytes> {
    argv![
        b"XCLAIM",
        key,
        group,
        nack.consumer,
        b"0",
        id.to_bytes(),
        b"TIME",
        nack.delivery_time.to_string(),
        b"RETRYCOUNT",
        nack.delivery_count.to_string(),
        b"FORCE",
        b"JUSTID",
        b"LASTID",
        last.to_bytes()
    ]
}

/// Creates a consumer if missing; true if created.
fn create_consumer(g: &mut Group, name: &[u8], now: i64) -> bool {
    if g.consumers.contains_key(name) {
        return false;
    }
    g.consumers.insert(
        Elem::from(name),
        Consumer {
            seen_time: now,
            pending: Default::default(),
        },
    );
    true
}

/// Gives pending entry `id` to `consumer`, creating the consumer (then
/// returns true).
fn assign(g: &mut Group, id: StreamId, consumer: &[u8], now: i64) -> bool {
    let created = create_consumer(g, consumer, now);
    let Some(nack) = g.pending.get_mut(&id) else {
        return created;
    };
    if &nack.consumer[..] != consumer {
        if let Some(old) = g.consumers.get_mut(&nack.consumer) {
            old.pending.remove(&id);
        }
        nack.consumer = Elem::from(consumer);
    }
    if let Some(c) = g.consumers.get_mut(consumer) {
        c.pending.insert(id);
    }
    created
}

/// Whether `key` holds a stream with consumer group `group` (WRONGTYPE
/// for another type).
fn has_group(ctx: &mut Ctx, db: usize, key: &[u8], group: &[u8]) -> Result<bool, CmdError> {
    Ok(ctx
        .ks
        .get_stream(db, key)?
        .is_some_and(|s| s.groups.contains_key(group)))
}

/// A stream's entries by ID.
type Entries = BTreeMap<StreamId, Box<[Elem]>>;

/// A group's stream entries and the group, for XCLAIM / XAUTOCLAIM
/// (NOGROUP when either is missing).
fn group_mut<'a>(
    ks: &'a mut crate::keyspace::Keyspace,
    db: usize,
    key: &[u8],
    gname: &[u8],
) -> Result<(&'a mut Entries, &'a mut Group), CmdError> {
    let Some(s) = ks.get_stream_mut(db, key)? else {
        return Err(nogroup_key(key, gname));
    };
    let Stream {
        entries, groups, ..
    } = s;
    match groups.get_mut(gname) {
        Some(g) => Ok((entries, g)),
        None => Err(nogroup_key(key, gname)),
    }
}

/// How a claim sets the delivery count.
#[derive(Clone, Copy)]
enum Retries {
    /// Set to this (XCLAIM RETRYCOUNT).
    Set(u64),
    /// One more delivery.
    Increment,
    /// Unchanged (JUSTID without RETRYCOUNT).
    Keep,
}

/// Gives the pending entry `id` (of a live stream entry) to `consumer` as a
/// claim delivered at `time`, writes the entry (or with `justid` its ID) to
/// `out`, and returns the claim's effect and whether the consumer was
/// created; None if `id` is not pending.
#[allow(clippy::too_many_arguments)]
fn claim_one(
    g: &mut Group,
    entries: &std::collections::BTreeMap<StreamId, Box<[Elem]>>,
    (key, gname, consumer): (&[u8], &[u8], &[u8]),
    id: StreamId,
    now: i64,
    time: i64,
    retries: Retries,
    justid: bool,
    out: &mut ReplyBuf,
) -> Option<(Vec<Bytes>, bool)> {
    g.pending.get(&id)?;
    let created = assign(g, id, consumer, now);
    if let Some(c) = g.consumers.get_mut(consumer) {
        c.seen_time = now;
    }
    let last = g.last_id;
    let nack = g.pending.get_mut(&id)?;
    nack.delivery_time = time;
    match retries {
        Retries::Set(r) => nack.delivery_count = r,
        Retries::Increment => nack.delivery_count = nack.delivery_count.wrapping_add(1),
        Retries::Keep => {}
    }
    if justid {
        out.bulk(&id.to_bytes());
    } else if let Some(fields) = entries.get(&id) {
        reply_entry(out, id, fields);
    }
    Some((xclaim_effect(key, gname, id, nack, last), created))
}

/// The end of XCLAIM and XAUTOCLAIM: the event for a created consumer, and
/// the claims' effects (none: nothing to replay).
fn finish_claims(
    ctx: &mut Ctx,
    db: usize,
    key: &[u8],
    created_consumer: bool,
    effects: Vec<Vec<Bytes>>,
) {
    if created_consumer {
        ctx.ks
            .notify(db, notify::STREAM, "xgroup-createconsumer", key);
    }
    if effects.is_empty() {
        ctx.ks.effects.suppress();
        return;
    }
    ctx.ks.modified(db, key);
    for e in effects {
        ctx.ks.propagate(db, e);
    }
}

/// Drops pending entry `id` from the group and its consumer.
fn unpend(g: &mut Group, id: StreamId) -> Option<PendingEntry> {
    let nack = g.pending.remove(&id)?;
    if let Some(c) = g.consumers.get_mut(&nack.consumer) {
        c.pending.remove(&id);
    }
    Some(nack)
}

// ---------------------------------------------------------------- XGROUP

fn xgroup(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let sub = subcommand(args, "xgroup", XGROUP_SUBS)?;
    if sub == "help" {
        write_help(
            ctx.out,
            "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
CREATE <key> <groupname> <id|$> [option]
    Create a new consumer group. Options are:
    * MKSTREAM
      Create the empty stream if it does not exist.
    * ENTRIESREAD entries_read
      Set the group's entries_read counter (internal use).
CREATECONSUMER <key> <groupname> <consumer>
    Create a new consumer in the specified group.
DELCONSUMER <key> <groupname> <consumer>
    Remove the specified consumer.
DESTROY <key> <groupname>
    Remove the specified group.
SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]
    Set the current group ID and entries_read counter.
HELP
    Prints this help.",
        );
        return Ok(());
    }
    let mut mkstream = false;
    let mut entries_read: Option<u64> = None;
    let mut i = 5;
    while i < args.len() {
        if sub == "create" && args[i].eq_ignore_ascii_case(b"mkstream") {
            mkstream = true;
            i += 1;
        } else if (sub == "create" || sub == "setid")
            && args[i].eq_ignore_ascii_case(b"entriesread")
            && i + 1 < args.len()
        {
            let n = parse_i64(&args[i + 1]).ok_or(CmdError::NotInteger)?;
            if n < -1 {
                return Err(CmdError::err(
                    "value for ENTRIESREAD must be positive or -1",
                ));
            }
            entries_read = u64::try_from(n).ok();
            i += 2;
        } else {
            return Err(subcommand_syntax_error(args, "xgroup"));
        }
    }
    let db = ctx.db();
    let key = &args[2];
    let name = &args[3];
    let exists = ctx.ks.check_type(db, key, ValueType::Stream)?;
    if !mkstream {
        let Some(s) = ctx.ks.get_stream(db, key)? else {
            return Err(CmdError::err(
                "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
            ));
        };
        if !s.groups.contains_key(&name[..])
            && matches!(sub, "setid" | "createconsumer" | "delconsumer")
        {
            return Err(nogroup_for_key(name, key));
        }
    }
    let now = unix_ms();
    match sub {
        "create" if args.len() <= 8 => {
            let id = if &args[4][..] == b"$" {
                ctx.ks
                    .get_stream(db, key)?
                    .map_or(StreamId::MIN, |s| s.last_id)
            } else {
                parse_strict_id(&args[4])?
            };
            if !exists {
                ctx.ks.set(db, key, Value::new_stream());
            }
            let Some(s) = ctx.ks.get_stream_mut(db, key)? else {
                return Err(CmdError::WrongType);
            };
            if s.groups.contains_key(&name[..]) {
                if !exists {
                    ctx.ks.modified(db, key);
                }
                return Err(CmdError::coded(
                    "BUSYGROUP",
                    "Consumer Group name already exists",
                ));
            }
            s.groups.insert(
                Elem::from(&name[..]),
                Group {
                    last_id: id,
                    entries_read,
                    ..Default::default()
                },
            );
            ctx.ks.modified(db, key);
            ctx.ks.notify(db, notify::STREAM, "xgroup-create", key);
            ctx.out.ok();
        }
        "setid" if args.len() == 5 || args.len() == 7 => {
            let Some(s) = ctx.ks.get_stream_mut(db, key)? else {
                return Err(CmdError::WrongType);
            };
            let id = if &args[4][..] == b"$" {
                s.last_id
            } else {
                super::stream::parse_any_id(&args[4])?
            };
            if let Some(g) = s.groups.get_mut(&name[..]) {
                g.last_id = id;
                g.entries_read = entries_read;
            }
            ctx.ks.modified(db, key);
            ctx.ks.notify(db, notify::STREAM, "xgroup-setid", key);
            ctx.out.ok();
        }
        "destroy" => {
            let Some(s) = ctx.ks.get_stream_mut(db, key)? else {
                return Err(CmdError::WrongType);
            };
            if s.groups.remove(&name[..]).is_some() {
                ctx.ks.modified(db, key);
                ctx.ks.notify(db, notify::STREAM, "xgroup-destroy", key);
                ctx.out.int(1);
            } else {
                ctx.out.int(0);
            }
        }
        "createconsumer" => {
            let Some(g) = ctx
                .ks
                .get_stream_mut(db, key)?
                .and_then(|s| s.groups.get_mut(&name[..]))
            else {
                return Err(CmdError::WrongType);
            };
            let created = create_consumer(g, &args[4], now);
            if created {
                ctx.ks.modified(db, key);
                ctx.ks
                    .notify(db, notify::STREAM, "xgroup-createconsumer", key);
            }
            ctx.out.int(created as i64);
        }
        "delconsumer" => {
            let Some(g) = ctx
                .ks
                .get_stream_mut(db, key)?
                .and_then(|s| s.groups.get_mut(&name[..]))
            else {
                return Err(CmdError::WrongType);
            };
            match g.consumers.remove(&args[4][..]) {
                Some(c) => {
                    for id in &c.pending {
                        g.pending.remove(id);
                    }
                    ctx.ks.modified(db, key);
                    ctx.ks.notify(db, notify::STREAM, "xgroup-delconsumer", key);
                    ctx.out.int(c.pending.len() as i64);
                }
                None => ctx.out.int(0),
            }
        }
        _ => return Err(subcommand_syntax_error(args, "xgroup")),
    }
    Ok(())
}

// ---------------------------------------------------------------- XREADGROUP

/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] [NOACK] STREAMS key ... id ...
fn xreadgroup(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let ReadArgs {
        timeout,
        count,
        streams_arg,
        noack,
        group_at,
    } = parse_read_args(ctx, true)?;
    let Some(group_at) = group_at else {
        return Err(CmdError::err("Missing GROUP option for XREADGROUP"));
    };
    let (gname, cname) = (&args[group_at], &args[group_at + 1]);
    let n = (args.len() - streams_arg) / 2;
    let db = ctx.db();
    // None: ">" (new entries).
    let mut ids: Vec<Option<StreamId>> = Vec::with_capacity(n);
    // Retried for a blocked client: the stream or the group went away.
    let retry = ctx.srv.serving_key.is_some();
    for k in 0..n {
        let key = &args[streams_arg + k];
        let id_arg = &args[streams_arg + n + k][..];
        if retry {
            match ctx.ks.get_stream(db, key) {
                Ok(Some(s)) if s.groups.contains_key(&gname[..]) => {}
                Ok(Some(_)) => {
                    return Err(CmdError::coded(
                        "NOGROUP",
                        "the consumer group this client was blocked on no longer exists",
                    ))
                }
                _ => {
                    return Err(CmdError::coded(
                        "UNBLOCKED",
                        "the stream key no longer exists",
                    ))
                }
            }
        }
        // Counted as a read (Redis' xreadCommand looks each key up with
        // lookupKeyRead, here and again to serve it).
        let found = ctx
            .ks
            .get_stream_read(db, key)?
            .is_some_and(|s| s.groups.contains_key(&gname[..]));
        if !found {
            return Err(CmdError::coded(
                "NOGROUP",
                format!(
                    "No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    lossy(key),
                    lossy(gname)
                ),
            ));
        }
        if id_arg == b"$" {
            return Err(CmdError::err(
                "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
            ));
        } else if id_arg == b">" {
            ids.push(None);
        } else {
            // Redis marks ">" with the last possible ID: that ID means ">".
            ids.push(Some(parse_strict_id(id_arg)?).filter(|id| *id != StreamId::MAX));
        }
    }
    let now = unix_ms();
    let mut out = ReplyBuf::new(ctx.out.resp3);
    let mut served = 0usize;
    let mut effects: Vec<Vec<Bytes>> = Vec::new();
    let mut changed = false;
    let mut created_consumers: Vec<usize> = Vec::new();
    let limit = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    for (k, gt) in ids.iter().enumerate() {
        let key = &args[streams_arg + k];
        if !retry {
            ctx.ks.get_counted(db, key);
        }
        let Some(s) = ctx.ks.get_stream_mut(db, key)? else {
            continue;
        };
        // Where to read from: the consumer's history from an ID, or the
        // entries after the group's position when there are any.
        let start = match gt {
            // After the given ID (Redis wraps past the last ID to 0-0).
            Some(id) => id.incr().unwrap_or(StreamId::MIN),
            None => {
                let Some(g) = s.groups.get(&gname[..]) else {
                    continue;
                };
                match s.entries.keys().next_back() {
                    Some(max) if *max > g.last_id => match g.last_id.incr() {
                        Some(id) => id,
                        None => continue,
                    },
                    _ => continue,
                }
            }
        };
        served += 1;
        if !out.resp3 {
            out.array(2);
        }
        out.bulk(key);
        // New entries, and the group's entries-read as each is delivered.
        let mut new: Vec<(StreamId, Option<u64>)> = Vec::new();
        if gt.is_none() {
            let Some(g) = s.groups.get(&gname[..]) else {
                continue;
            };
            let mut read = g.entries_read;
            for id in s.entries.range(start..).take(limit).map(|(id, _)| *id) {
                if read.is_some() && !s.range_has_tombstones(Some(id), None) {
                    read = read.map(|r| r.wrapping_add(1));
                } else if s.entries_added > 0 {
                    read = s.distance_from_first_ever(id);
                }
                new.push((id, read));
            }
        }
        let Stream {
            entries, groups, ..
        } = s;
        let Some(g) = groups.get_mut(&gname[..]) else {
            continue;
        };
        if create_consumer(g, cname, now) {
            effects.push(argv![b"XGROUP", b"CREATECONSUMER", key, gname, cname]);
            created_consumers.push(k);
            changed = true;
        }
        if let Some(c) = g.consumers.get_mut(&cname[..]) {
            c.seen_time = now;
        }
        if gt.is_some() {
            let pend: Vec<StreamId> = g
                .consumers
                .get(&cname[..])
                .map(|c| c.pending.range(start..).take(limit).copied().collect())
                .unwrap_or_default();
            out.array(pend.len());
            for id in pend {
                match entries.get(&id) {
                    Some(fields) => {
                        reply_entry(&mut out, id, fields);
                        if let Some(nack) = g.pending.get_mut(&id) {
                            nack.delivery_time = now;
                            nack.delivery_count = nack.delivery_count.wrapping_add(1);
                            effects.push(xclaim_effect(key, gname, id, nack, g.last_id));
                            changed = true;
                        }
                    }
                    None => {
                        out.array(2);
                        out.bulk(&id.to_bytes());
                        out.null_array();
                    }
                }
            }
            continue;
        }
        out.array(new.len());
        for (id, read) in new {
            if let Some(fields) = entries.get(&id) {
                reply_entry(&mut out, id, fields);
            }
            g.last_id = id;
            g.entries_read = read;
            changed = true;
            if noack {
                continue;
            }
            unpend(g, id);
            let nack = PendingEntry {
                consumer: Elem::from(&cname[..]),
                delivery_time: now,
                delivery_count: 1,
            };
            effects.push(xclaim_effect(key, gname, id, &nack, id));
            g.pending.insert(id, nack);
            if let Some(c) = g.consumers.get_mut(&cname[..]) {
                c.pending.insert(id);
            }
        }
        effects.push(setid_effect(key, gname, g));
    }
    if served > 0 {
        if ctx.out.resp3 {
            ctx.out.map(served);
        } else {
            ctx.out.array(served);
        }
        ctx.out.buf.extend_from_slice(&out.buf);
    }
    for k in created_consumers {
        ctx.ks.notify(
            db,
            notify::STREAM,
            "xgroup-createconsumer",
            &args[streams_arg + k],
        );
    }
    if changed {
        for k in 0..n {
            ctx.ks.modified(db, &args[streams_arg + k]);
        }
        for e in effects {
            ctx.ks.propagate(db, e);
        }
    }
    if served > 0 {
        return Ok(());
    }
    let Some(timeout) = timeout else {
        ctx.out.null_array();
        return Ok(());
    };
    let mut head: Vec<Bytes> = argv![b"XREADGROUP", b"GROUP", gname, cname];
    if noack {
        head.push(Bytes::from_static(b"NOACK"));
    }
    let ids = args[streams_arg + n..].to_vec();
    block_on_streams(ctx, timeout, head, count, streams_arg, ids);
    Ok(())
}

// ---------------------------------------------------------------- XACK

fn xack(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    let key = &args[1];
    if !has_group(ctx, db, key, &args[2])? {
        ctx.out.int(0);
        return Ok(());
    }
    let ids = args[3..]
        .iter()
        .map(|a| parse_strict_id(a))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(g) = ctx
        .ks
        .get_stream_mut(db, key)?
        .and_then(|s| s.groups.get_mut(&args[2][..]))
    else {
        ctx.out.int(0);
        return Ok(());
    };
    let acked = ids
        .into_iter()
        .filter(|id| unpend(g, *id).is_some())
        .count();
    if acked > 0 {
        ctx.ks.modified(db, key);
    }
    ctx.out.int(acked as i64);
    Ok(())
}

// ---------------------------------------------------------------- XPENDING

/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
fn xpending(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(CmdError::Syntax);
    }
    let mut range = None;
    let mut minidle = 0i64;
    let mut consumer = None;
    if argc >= 6 {
        let mut at = 3;
        if args[3].eq_ignore_ascii_case(b"idle") {
            minidle = parse_i64(&args[4]).ok_or(CmdError::NotInteger)?;
            if argc < 8 {
                return Err(CmdError::Syntax);
            }
            at += 2;
        }
        let count = parse_i64(&args[at + 2]).ok_or(CmdError::NotInteger)?.max(0);
        let (mut start, startex) = super::stream::parse_interval_id(&args[at], 0)?;
        if startex {
            start = start
                .incr()
                .ok_or_else(|| CmdError::err("invalid start ID for the interval"))?;
        }
        let (mut end, endex) = super::stream::parse_interval_id(&args[at + 1], u64::MAX)?;
        if endex {
            end = end
                .decr()
                .ok_or_else(|| CmdError::err("invalid end ID for the interval"))?;
        }
        if at + 3 < argc {
            consumer = Some(&args[at + 3]);
        }
        range = Some((start, end, count as usize));
    }
    let db = ctx.db();
    let (key, gname) = (&args[1], &args[2]);
    let Some(g) = ctx
        .ks
        .get_stream_read(db, key)?
        .and_then(|s| s.groups.get(&gname[..]))
    else {
        return Err(nogroup_key(key, gname));
    };
    let out = &mut *ctx.out;
    let Some((start, end, count)) = range else {
        out.array(4);
        out.int(g.pending.len() as i64);
        match (g.pending.keys().next(), g.pending.keys().next_back()) {
            (Some(first), Some(last)) => {
                out.bulk(&first.to_bytes());
                out.bulk(&last.to_bytes());
                let with: Vec<(&Elem, &Consumer)> = g
                    .consumers
                    .iter()
                    .filter(|(_, c)| !c.pending.is_empty())
                    .collect();
                out.array(with.len());
                for (name, c) in with {
                    out.array(2);
                    out.bulk(name);
                    out.bulk(c.pending.len().to_string().as_bytes());
                }
            }
            _ => {
                out.null();
                out.null();
                out.null_array();
            }
        }
        return Ok(());
    };
    let now = unix_ms();
    let ids: Vec<StreamId> = match consumer {
        Some(name) => match g.consumers.get(&name[..]) {
            Some(c) => c.pending.iter().copied().collect(),
            None => {
                out.array(0);
                return Ok(());
            }
        },
        None => g.pending.keys().copied().collect(),
    };
    let mut rows = Vec::new();
    if start <= end {
        for id in ids.into_iter().filter(|id| *id >= start && *id <= end) {
            if rows.len() >= count {
                break;
            }
            let Some(nack) = g.pending.get(&id) else {
                continue;
            };
            if minidle != 0 && now.saturating_sub(nack.delivery_time) < minidle {
                continue;
            }
            rows.push((id, nack));
        }
    }
    out.array(rows.len());
    for (id, nack) in rows {
        out.array(4);
        out.bulk(&id.to_bytes());
        out.bulk(&nack.consumer);
        out.int((now.saturating_sub(nack.delivery_time)).max(0));
        out.int(nack.delivery_count as i64);
    }
    Ok(())
}

// ---------------------------------------------------------------- XCLAIM

/// XCLAIM key group consumer min-idle-time id ... [IDLE ms] [TIME unix-ms]
/// [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]
fn xclaim(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    let (key, gname, cname) = (&args[1], &args[2], &args[3]);
    if !has_group(ctx, db, key, gname)? {
        return Err(nogroup_key(key, gname));
    }
    let minidle = parse_i64(&args[4])
        .ok_or_else(|| CmdError::err("Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_strict_id(&args[j]) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let now = unix_ms();
    let (mut force, mut justid) = (false, false);
    let mut retrycount: Option<u64> = None;
    let mut deliverytime: Option<i64> = None;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j][..];
        let is = |w: &str| opt.eq_ignore_ascii_case(w.as_bytes());
        if is("force") {
            force = true;
        } else if is("justid") {
            justid = true;
        } else if is("idle") && more > 0 {
            j += 1;
            let v = parse_i64(&args[j])
                .ok_or_else(|| CmdError::err("Invalid IDLE option argument for XCLAIM"))?;
            deliverytime = Some(now.wrapping_sub(v));
        } else if is("time") && more > 0 {
            j += 1;
            deliverytime = Some(
                parse_i64(&args[j])
                    .ok_or_else(|| CmdError::err("Invalid TIME option argument for XCLAIM"))?,
            );
        } else if is("retrycount") && more > 0 {
            j += 1;
            // A delivery count past i64::MAX (one more delivery after
            // RETRYCOUNT 9223372036854775807) is logged as it is: replay
            // takes it back whole.
            let logged = ctx
                .ks
                .applying
                .then(|| std::str::from_utf8(&args[j]).ok()?.parse::<u64>().ok())
                .flatten();
            retrycount = match logged {
                Some(v) => Some(v),
                None => {
                    let v = parse_i64(&args[j]).ok_or_else(|| {
                        CmdError::err("Invalid RETRYCOUNT option argument for XCLAIM")
                    })?;
                    u64::try_from(v).ok()
                }
            };
        } else if is("lastid") && more > 0 {
            j += 1;
            last_id = parse_strict_id(&args[j])?;
        } else {
            return Err(CmdError::err(format!(
                "Unrecognized XCLAIM option '{}'",
                lossy(opt)
            )));
        }
        j += 1;
    }
    let deliverytime = match deliverytime {
        Some(t) if (0..=now).contains(&t) => t,
        _ => now,
    };
    let (entries, g) = group_mut(ctx.ks, db, key, gname)?;
    let mut effects = Vec::new();
    let mut created_consumer = false;
    let mut propagate_last_id = false;
    if last_id > g.last_id {
        g.last_id = last_id;
        propagate_last_id = true;
    }
    let mut out = ReplyBuf::new(ctx.out.resp3);
    let mut n = 0;
    for id in ids {
        if !entries.contains_key(&id) {
            if let Some(nack) = unpend(g, id) {
                effects.push(xclaim_effect(key, gname, id, &nack, g.last_id));
                propagate_last_id = false;
            }
            continue;
        }
        // Created here: claimed whatever its idle time, as Redis claims a
        // NACK FORCE made (it has no consumer; "" marks that here, and a
        // consumer really named "" made it look owned and fresh, so it was
        // left behind, unlogged and in no consumer's list).
        let forced = force && !g.pending.contains_key(&id);
        if forced {
            g.pending.insert(
                id,
                PendingEntry {
                    consumer: Elem::from(&b""[..]),
                    delivery_time: now,
                    delivery_count: 1,
                },
            );
        }
        let Some(nack) = g.pending.get(&id) else {
            continue;
        };
        let owned = !forced && (!nack.consumer.is_empty() || g.consumers.contains_key(&b""[..]));
        if owned && minidle != 0 && now.saturating_sub(nack.delivery_time) < minidle {
            continue;
        }
        let retries = match retrycount {
            Some(r) => Retries::Set(r),
            None if justid => Retries::Keep,
            None => Retries::Increment,
        };
        let names = (&key[..], &gname[..], &cname[..]);
        if let Some((effect, created)) = claim_one(
            g,
            entries,
            names,
            id,
            now,
            deliverytime,
            retries,
            justid,
            &mut out,
        ) {
            created_consumer |= created;
            n += 1;
            effects.push(effect);
            propagate_last_id = false;
        }
    }
    if propagate_last_id {
        effects.push(setid_effect(key, gname, g));
    }
    ctx.out.array(n);
    ctx.out.buf.extend_from_slice(&out.buf);
    finish_claims(ctx, db, key, created_consumer, effects);
    Ok(())
}

// ---------------------------------------------------------------- XAUTOCLAIM

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
fn xautoclaim(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let minidle = parse_i64(&args[4])
        .ok_or_else(|| CmdError::err("Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let (mut start, startex) = super::stream::parse_interval_id(&args[5], 0)?;
    if startex {
        start = start
            .incr()
            .ok_or_else(|| CmdError::err("invalid start ID for the interval"))?;
    }
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if args[j].eq_ignore_ascii_case(b"count") && more > 0 {
            let max = i64::MAX / 16;
            count = parse_i64(&args[j + 1])
                .filter(|c| (1..=max).contains(c))
                .ok_or_else(|| CmdError::err("COUNT must be > 0"))?;
            j += 1;
        } else if args[j].eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let db = ctx.db();
    let (key, gname, cname) = (&args[1], &args[2], &args[3]);
    if !has_group(ctx, db, key, gname)? {
        return Err(nogroup_key(key, gname));
    }
    let (entries, g) = group_mut(ctx.ks, db, key, gname)?;
    let now = unix_ms();
    let mut attempts = count.saturating_mul(10);
    let mut effects = Vec::new();
    let mut created_consumer = false;
    let mut deleted = Vec::new();
    let mut out = ReplyBuf::new(ctx.out.resp3);
    let mut n = 0;
    let candidates: Vec<StreamId> = g.pending.range(start..).map(|(id, _)| *id).collect();
    let mut next = None;
    let mut it = candidates.into_iter();
    loop {
        if attempts == 0 || count == 0 {
            next = it.next();
            break;
        }
        attempts -= 1;
        let Some(id) = it.next() else { break };
        if !entries.contains_key(&id) {
            if let Some(nack) = unpend(g, id) {
                effects.push(xclaim_effect(key, gname, id, &nack, g.last_id));
            }
            deleted.push(id);
            count -= 1;
            continue;
        }
        let Some(nack) = g.pending.get(&id) else {
            continue;
        };
        if minidle != 0 && now.saturating_sub(nack.delivery_time) < minidle {
            continue;
        }
        let retries = if justid {
            Retries::Keep
        } else {
            Retries::Increment
        };
        let names = (&key[..], &gname[..], &cname[..]);
        if let Some((effect, created)) =
            claim_one(g, entries, names, id, now, now, retries, justid, &mut out)
        {
            created_consumer |= created;
            n += 1;
            count -= 1;
            effects.push(effect);
        }
    }
    let next = next.unwrap_or(StreamId::MIN);
    ctx.out.array(3);
    ctx.out.bulk(&next.to_bytes());
    ctx.out.array(n);
    ctx.out.buf.extend_from_slice(&out.buf);
    ctx.out.array(deleted.len());
    for id in deleted {
        ctx.out.bulk(&id.to_bytes());
    }
    finish_claims(ctx, db, key, created_consumer, effects);
    Ok(())
}

// ---------------------------------------------------------------- XINFO

fn xinfo(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let sub = subcommand(args, "xinfo", XINFO_SUBS)?;
    if sub == "help" {
        write_help(
            ctx.out,
            "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
CONSUMERS <key> <groupname>
    Show consumers of <groupname>.
GROUPS <key>
    Show the stream consumer groups.
STREAM <key> [FULL [COUNT <count>]
    Show information about the stream.
HELP
    Prints this help.",
        );
        return Ok(());
    }
    let db = ctx.db();
    let key = &args[2];
    let Some(s) = ctx.ks.get_stream_read(db, key)? else {
        return Err(CmdError::NoSuchKey);
    };
    let out = &mut *ctx.out;
    let now = unix_ms();
    match sub {
        "consumers" => {
            let Some(g) = s.groups.get(&args[3][..]) else {
                return Err(nogroup_for_key(&args[3], key));
            };
            out.array(g.consumers.len());
            for (name, c) in &g.consumers {
                out.map(3);
                out.bulk(b"name");
                out.bulk(name);
                out.bulk(b"pending");
                out.int(c.pending.len() as i64);
                out.bulk(b"idle");
                out.int(now.saturating_sub(c.seen_time).max(0));
            }
        }
        "groups" => {
            out.array(s.groups.len());
            for (name, g) in &s.groups {
                out.map(6);
                out.bulk(b"name");
                out.bulk(name);
                out.bulk(b"consumers");
                out.int(g.consumers.len() as i64);
                out.bulk(b"pending");
                out.int(g.pending.len() as i64);
                out.bulk(b"last-delivered-id");
                out.bulk(&g.last_id.to_bytes());
                write_group_counters(out, s, g);
            }
        }
        _ => xinfo_stream(out, args, s)?,
    }
    Ok(())
}

/// entries-read and lag of a group.
fn write_group_counters(out: &mut ReplyBuf, s: &Stream, g: &Group) {
    out.bulk(b"entries-read");
    match g.entries_read {
        Some(n) => out.int(n as i64),
        None => out.null(),
    }
    out.bulk(b"lag");
    match s.group_lag(g) {
        Some(n) => out.int(n),
        None => out.null(),
    }
}

fn xinfo_stream(out: &mut ReplyBuf, args: &[Bytes], s: &Stream) -> CmdResult {
    let opts = &args[3..];
    let mut count: i64 = 10;
    let full = !opts.is_empty();
    if full {
        if (opts.len() != 1 && opts.len() != 3) || !opts[0].eq_ignore_ascii_case(b"full") {
            return Err(subcommand_syntax_error(args, "xinfo"));
        }
        if opts.len() == 3 {
            if !opts[1].eq_ignore_ascii_case(b"count") {
                return Err(subcommand_syntax_error(args, "xinfo"));
            }
            count = parse_i64(&opts[2]).ok_or(CmdError::NotInteger)?;
            if count < 0 {
                count = 10;
            }
        }
    }
    let limit = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    out.map(if full { 9 } else { 10 });
    out.bulk(b"length");
    out.int(s.len() as i64);
    out.bulk(b"radix-tree-keys");
    out.int(s.nodes.len() as i64);
    out.bulk(b"radix-tree-nodes");
    out.int(s.rax_nodes() as i64);
    out.bulk(b"last-generated-id");
    out.bulk(&s.last_id.to_bytes());
    out.bulk(b"max-deleted-entry-id");
    out.bulk(&s.max_deleted_id.to_bytes());
    out.bulk(b"entries-added");
    out.int(s.entries_added as i64);
    out.bulk(b"recorded-first-entry-id");
    out.bulk(&s.first_id().to_bytes());
    if !full {
        out.bulk(b"groups");
        out.int(s.groups.len() as i64);
        out.bulk(b"first-entry");
        match s.entries.iter().next() {
            Some((id, f)) => reply_entry(out, *id, f),
            None => out.null(),
        }
        out.bulk(b"last-entry");
        match s.entries.iter().next_back() {
            Some((id, f)) => reply_entry(out, *id, f),
            None => out.null(),
        }
        return Ok(());
    }
    out.bulk(b"entries");
    let shown: Vec<_> = s.entries.iter().take(limit).collect();
    out.array(shown.len());
    for (id, f) in shown {
        reply_entry(out, *id, f);
    }
    out.bulk(b"groups");
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        out.map(7);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"last-delivered-id");
        out.bulk(&g.last_id.to_bytes());
        write_group_counters(out, s, g);
        out.bulk(b"pel-count");
        out.int(g.pending.len() as i64);
        out.bulk(b"pending");
        let pel: Vec<_> = g.pending.iter().take(limit).collect();
        out.array(pel.len());
        for (id, nack) in pel {
            out.array(4);
            out.bulk(&id.to_bytes());
            out.bulk(&nack.consumer);
            out.int(nack.delivery_time);
            out.int(nack.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            out.map(4);
            out.bulk(b"name");
            out.bulk(cname);
            out.bulk(b"seen-time");
            out.int(c.seen_time);
            out.bulk(b"pel-count");
            out.int(c.pending.len() as i64);
            out.bulk(b"pending");
            let pel: Vec<_> = c.pending.iter().take(limit).collect();
            out.array(pel.len());
            for id in pel {
                let nack = g.pending.get(id);
                out.array(3);
                out.bulk(&id.to_bytes());
                out.int(nack.map_or(0, |n| n.delivery_time));
                out.int(nack.map_or(0, |n| n.delivery_count as i64));
            }
        }
    }
    Ok(())
}

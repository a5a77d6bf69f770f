//! CLIENT: connection introspection and control (ID, SETNAME, LIST, KILL,
//! UNBLOCK, REPLY, ...). An engine-level handler: it reaches other clients
//! and the blocked-client registry.

use std::fmt::Write as _;

use bytes::Bytes;

use super::flags::*;
use super::server::{subcommand, validate_client_name, write_help};
use super::{help, CommandSpec, Handler};
use crate::client::{ClientState, Push, ReplyMode};
use crate::engine::{Ctx, Engine};
use crate::error::{CmdError, CmdResult};
use crate::resp::ReplyBuf;
use crate::tracking::ClientTracking;

fn unused(_: &mut Ctx) -> CmdResult {
    Ok(())
}

pub static COMMANDS: &[CommandSpec] = &[CommandSpec {
    handler: Handler::Engine(client),
    ..CommandSpec::new(
        "client",
        -2,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        unused,
    )
    .with_subcommands(SUBS)
}];

const SUBS: &[(&str, i32)] = &[
    ("caching", 3),
    ("getname", 2),
    ("getredir", 2),
    ("help", 2),
    ("id", 2),
    ("info", 2),
    ("kill", -3),
    ("list", -2),
    ("no-evict", 3),
    ("pause", -3),
    ("reply", 3),
    ("setinfo", 4),
    ("setname", 3),
    ("tracking", -3),
    ("trackinginfo", 2),
    ("unblock", -3),
    ("unpause", 2),
];

/// Client types for CLIENT LIST/KILL TYPE.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Replica,
    Master,
    PubSub,
}

fn parse_type(b: &[u8]) -> Result<ClientType, CmdError> {
    Ok(match b.to_ascii_lowercase().as_slice() {
        b"normal" => ClientType::Normal,
        b"slave" | b"replica" => ClientType::Replica,
        b"master" => ClientType::Master,
        b"pubsub" => ClientType::PubSub,
        _ => {
            return Err(CmdError::err(format!(
                "Unknown client type '{}'",
                String::from_utf8_lossy(b)
            )))
        }
    })
}

fn type_of(c: &ClientState) -> ClientType {
    if c.subscribes() {
        ClientType::PubSub
    } else {
        ClientType::Normal
    }
}

/// One CLIENT LIST line (without the trailing newline), in Redis 7.0's
/// format; `current_cmd` and `argv`: the command the client is running,
/// when it is the one asking.
pub fn client_line(
    c: &ClientState,
    tracking: Option<&ClientTracking>,
    now_ms: i64,
    current_cmd: Option<&str>,
    argv: &[Bytes],
) -> String {
    let mut flags = String::new();
    if c.monitor {
        flags.push('O');
    }
    if c.blocked_on.is_some() {
        flags.push('b');
    }
    if c.subscribes() {
        flags.push('P');
    }
    if c.multi.is_some() {
        flags.push('x');
    }
    if c.no_evict {
        flags.push('e');
    }
    if c.killed {
        flags.push('A');
    }
    if c.unix_socket {
        flags.push('U');
    }
    if let Some(t) = tracking {
        flags.push('t');
        if t.broken_redirect {
            flags.push('R');
        }
        if t.bcast {
            flags.push('B');
        }
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let multi = c
        .multi
        .as_ref()
        .map(|m| m.queued.len() as i64)
        .unwrap_or(-1);
    let cmd = current_cmd.unwrap_or(c.last_cmd);
    use std::sync::atomic::Ordering::Relaxed;
    let (fd, qbuf, qbuf_free, obl) = c.buffers.as_ref().map_or((-1, 0, 0, 0), |b| {
        (
            b.fd,
            b.query.load(Relaxed),
            b.query_free.load(Relaxed),
            b.output.load(Relaxed),
        )
    });
    // Redis' argv_len_sum: the arguments of the command it runs.
    let argv_mem: u64 = if current_cmd.is_some() {
        argv.iter().map(|a| a.len() as u64).sum()
    } else {
        0
    };
    let multi_mem: u64 = c.multi.as_ref().map_or(0, |m| {
        m.queued.iter().flatten().map(|a| a.len() as u64 + 16).sum()
    });
    let omem = c.push_queue.queued();
    // What the client holds: its buffers, its arguments and transaction,
    // its pushes, and its own state.
    let tot_mem = qbuf
        + qbuf_free
        + argv_mem
        + multi_mem
        + obl
        + omem
        + std::mem::size_of::<ClientState>() as u64;
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={qbuf} qbuf-free={qbuf_free} argv-mem={argv_mem} multi-mem={multi_mem} rbs=16384 rbp=0 obl={obl} oll=0 omem={omem} tot-mem={tot_mem} events=r cmd={} user=default redir={} resp={}",
        c.id,
        c.addr,
        c.laddr,
        fd,
        c.name
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default(),
        (now_ms - c.created_ms).max(0) / 1000,
        if current_cmd.is_some() {
            0
        } else {
            (now_ms - c.last_cmd_ms).max(0) / 1000
        },
        flags,
        c.db,
        c.channels.len(),
        c.patterns.len(),
        c.shard_channels.len(),
        multi,
        cmd,
        tracking.map_or(-1, |t| t.redirect as i64),
        if c.resp3 { 3 } else { 2 },
    );
    s
}

fn client(e: &mut Engine, me: &mut ClientState, args: &[Bytes], out: &mut ReplyBuf) -> CmdResult {
    let sub = subcommand(args, "client", SUBS)?;
    let now = crate::keyspace::unix_ms();
    let arg_is = |i: usize, w: &str| {
        args.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(w.as_bytes()))
    };
    match sub {
        "id" => out.int(me.id as i64),
        "getname" => match &me.name {
            Some(n) => out.bulk(n),
            None => out.null(),
        },
        "setname" => {
            validate_client_name(&args[2])?;
            // A copy: a slice of the argument would hold the connection's
            // whole read buffer for as long as the name lasts.
            me.name = if args[2].is_empty() {
                None
            } else {
                Some(Bytes::copy_from_slice(&args[2]))
            };
            out.ok();
        }
        "setinfo" => {
            let value = &args[3];
            let which = if arg_is(2, "LIB-NAME") {
                "lib-name"
            } else if arg_is(2, "LIB-VER") {
                "lib-ver"
            } else {
                return Err(CmdError::err(format!(
                    "Unrecognized option '{}'",
                    String::from_utf8_lossy(&args[2])
                )));
            };
            if value.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
                return Err(CmdError::err(format!(
                    "{which} cannot contain spaces, newlines or special characters."
                )));
            }
            let v = (!value.is_empty()).then(|| Bytes::copy_from_slice(value));
            if which == "lib-name" {
                me.lib_name = v;
            } else {
                me.lib_ver = v;
            }
            out.ok();
        }
        "info" => {
            let mut line = client_line(
                me,
                e.srv.tracking.clients.get(&me.id),
                now,
                Some("client|info"),
                args,
            );
            line.push('\n');
            out.verbatim(line.as_bytes());
        }
        "list" => {
            let mut filter_type = None;
            let mut filter_ids: Option<Vec<u64>> = None;
            if args.len() > 2 {
                if arg_is(2, "TYPE") && args.len() == 4 {
                    filter_type = Some(parse_type(&args[3])?);
                } else if arg_is(2, "ID") && args.len() >= 4 {
                    let mut ids = Vec::new();
                    for a in &args[3..] {
                        match crate::numbers::parse_i64(a) {
                            Some(n) if n > 0 => ids.push(n as u64),
                            _ => return Err(CmdError::err("Invalid client ID")),
                        }
                    }
                    filter_ids = Some(ids);
                } else {
                    return Err(CmdError::Syntax);
                }
            }
            let mut all: Vec<&ClientState> = e.clients.values().collect();
            all.push(me);
            all.sort_by_key(|c| c.id);
            let mut text = String::new();
            for c in all {
                if filter_type.is_some_and(|t| t != type_of(c)) {
                    continue;
                }
                if filter_ids.as_ref().is_some_and(|ids| !ids.contains(&c.id)) {
                    continue;
                }
                let cur = (c.id == me.id).then_some("client|list");
                text.push_str(&client_line(
                    c,
                    e.srv.tracking.clients.get(&c.id),
                    now,
                    cur,
                    args,
                ));
                text.push('\n');
            }
            out.verbatim(text.as_bytes());
        }
        "kill" => return client_kill(e, me, args, out),
        "unblock" => {
            // Redis' order: the argument count, the reason, then the id.
            let with_error = match args.len() {
                3 => false,
                4 if arg_is(3, "TIMEOUT") => false,
                4 if arg_is(3, "ERROR") => true,
                4 => {
                    return Err(CmdError::err(
                        "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
                    ))
                }
                _ => {
                    return Err(crate::command::server::subcommand_syntax_error(
                        args, "client",
                    ))
                }
            };
            let id = crate::numbers::parse_i64(&args[2]).ok_or(CmdError::NotInteger)?;
            let ok = id > 0 && id as u64 != me.id && e.unblock_client(id as u64, with_error);
            out.int(ok as i64);
        }
        "reply" => {
            if arg_is(2, "ON") {
                me.reply_mode = ReplyMode::On;
                out.ok();
            } else if arg_is(2, "OFF") {
                me.reply_mode = ReplyMode::Off;
            } else if arg_is(2, "SKIP") {
                if me.reply_mode != ReplyMode::Off {
                    me.reply_mode = ReplyMode::Skip;
                }
            } else {
                return Err(CmdError::Syntax);
            }
        }
        "no-evict" => {
            if arg_is(2, "ON") {
                me.no_evict = true;
            } else if arg_is(2, "OFF") {
                me.no_evict = false;
            } else {
                return Err(CmdError::Syntax);
            }
            out.ok();
        }
        "pause" => {
            let t = crate::numbers::parse_i64(&args[2])
                .ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
            if t < 0 {
                return Err(CmdError::err("timeout is negative"));
            }
            let all = match args.len() {
                3 => true,
                4 if arg_is(3, "WRITE") => false,
                4 if arg_is(3, "ALL") => true,
                4 => return Err(CmdError::err("CLIENT PAUSE mode must be WRITE or ALL")),
                _ => return Err(CmdError::Syntax),
            };
            e.srv.pause.pause(now.saturating_add(t), all);
            out.ok();
        }
        "unpause" => {
            e.srv.pause.unpause();
            e.ks.expire_paused = false;
            out.ok();
        }
        "tracking" => client_tracking(e, me, args, out)?,
        "caching" => {
            let Some(t) = e.srv.tracking.clients.get_mut(&me.id) else {
                return Err(CmdError::err("CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
            };
            if arg_is(2, "YES") {
                if !t.optin {
                    return Err(CmdError::err(
                        "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
                    ));
                }
            } else if arg_is(2, "NO") {
                if !t.optout {
                    return Err(CmdError::err(
                        "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
                    ));
                }
            } else {
                return Err(CmdError::Syntax);
            }
            t.caching = true;
            out.ok();
        }
        "getredir" => match e.srv.tracking.clients.get(&me.id) {
            Some(t) => out.int(t.redirect as i64),
            None => out.int(-1),
        },
        "trackinginfo" => {
            let t = e.srv.tracking.clients.get(&me.id);
            let mut flags = vec![if t.is_some() { "on" } else { "off" }];
            if let Some(t) = t {
                let named = [
                    (t.bcast, "bcast"),
                    (t.optin, "optin"),
                    (t.optin && t.caching, "caching-yes"),
                    (t.optout, "optout"),
                    (t.optout && t.caching, "caching-no"),
                    (t.noloop, "noloop"),
                    (t.broken_redirect, "broken_redirect"),
                ];
                flags.extend(named.iter().filter(|(on, _)| *on).map(|(_, n)| *n));
            }
            out.map(3);
            out.bulk_str("flags");
            out.set(flags.len());
            for f in flags {
                out.bulk_str(f);
            }
            out.bulk_str("redirect");
            out.int(t.map_or(-1, |t| t.redirect as i64));
            out.bulk_str("prefixes");
            let prefixes: Vec<&Bytes> = t.map(|t| t.prefixes.iter().collect()).unwrap_or_default();
            out.array(prefixes.len());
            for p in prefixes {
                out.bulk(p);
            }
        }
        _ => write_help(out, help::CLIENT),
    }
    Ok(())
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
/// [OPTOUT] [NOLOOP], with Redis' checks in Redis' order.
fn client_tracking(
    e: &mut Engine,
    me: &mut ClientState,
    args: &[Bytes],
    out: &mut ReplyBuf,
) -> CmdResult {
    let mut mode = ClientTracking::default();
    let mut prefixes = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let a = &args[j];
        let more = j + 1 < args.len();
        if a.eq_ignore_ascii_case(b"redirect") && more {
            j += 1;
            if mode.redirect != 0 {
                return Err(CmdError::err(
                    "A client can only redirect to a single other client",
                ));
            }
            let id = crate::numbers::parse_i64(&args[j]).ok_or(CmdError::NotInteger)?;
            let exists = id > 0 && (id as u64 == me.id || e.clients.contains_key(&(id as u64)));
            if !exists {
                return Err(CmdError::err(
                    "The client ID you want redirect to does not exist",
                ));
            }
            mode.redirect = id as u64;
        } else if a.eq_ignore_ascii_case(b"bcast") {
            mode.bcast = true;
        } else if a.eq_ignore_ascii_case(b"optin") {
            mode.optin = true;
        } else if a.eq_ignore_ascii_case(b"optout") {
            mode.optout = true;
        } else if a.eq_ignore_ascii_case(b"noloop") {
            mode.noloop = true;
        } else if a.eq_ignore_ascii_case(b"prefix") && more {
            j += 1;
            prefixes.push(args[j].clone());
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let tracking = &mut e.srv.tracking;
    if args[2].eq_ignore_ascii_case(b"on") {
        if !mode.bcast && !prefixes.is_empty() {
            return Err(CmdError::err(
                "PREFIX option requires BCAST mode to be enabled",
            ));
        }
        let old = tracking.clients.get(&me.id);
        if old.is_some_and(|o| o.bcast != mode.bcast) {
            return Err(CmdError::err("You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
        }
        if mode.bcast && (mode.optin || mode.optout) {
            return Err(CmdError::err(
                "OPTIN and OPTOUT are not compatible with BCAST",
            ));
        }
        if mode.optin && mode.optout {
            return Err(CmdError::err(
                "You can't specify both OPTIN mode and OPTOUT mode",
            ));
        }
        if old.is_some_and(|o| (mode.optin && o.optout) || (mode.optout && o.optin)) {
            return Err(CmdError::err("You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
        }
        if mode.bcast {
            if let Some(msg) = tracking.prefix_collision(me.id, &prefixes) {
                return Err(CmdError::Other(msg));
            }
        }
        tracking.enable(me.id, mode, &prefixes);
    } else if args[2].eq_ignore_ascii_case(b"off") {
        tracking.disable(me.id);
    } else {
        return Err(CmdError::Syntax);
    }
    e.ks.tracking_on = e.srv.tracking.is_on();
    out.ok();
    Ok(())
}

/// CLIENT KILL, old form (`CLIENT KILL addr`) and filter form.
fn client_kill(
    e: &mut Engine,
    me: &mut ClientState,
    args: &[Bytes],
    out: &mut ReplyBuf,
) -> CmdResult {
    let mut id = None;
    let mut ctype = None;
    let mut addr: Option<&[u8]> = None;
    let mut laddr: Option<&[u8]> = None;
    let mut user: Option<&[u8]> = None;
    let mut skipme = true;
    let old_form = args.len() == 3;
    if old_form {
        addr = Some(&args[2]);
        skipme = false;
    } else {
        let mut i = 2;
        while i < args.len() {
            let more = i + 1 < args.len();
            let opt = args[i].to_ascii_lowercase();
            if !more {
                return Err(CmdError::Syntax);
            }
            let v = &args[i + 1];
            match opt.as_slice() {
                b"id" => match crate::numbers::parse_i64(v) {
                    Some(n) if n >= 1 => id = Some(n as u64),
                    _ => return Err(CmdError::err("client-id should be greater than 0")),
                },
                b"type" => ctype = Some(parse_type(v)?),
                b"addr" => addr = Some(v),
                b"laddr" => laddr = Some(v),
                b"user" => {
                    if &v[..] != b"default" {
                        return Err(CmdError::err(format!(
                            "No such user '{}'",
                            String::from_utf8_lossy(v)
                        )));
                    }
                    user = Some(v);
                }
                b"skipme" => {
                    if v.eq_ignore_ascii_case(b"yes") {
                        skipme = true;
                    } else if v.eq_ignore_ascii_case(b"no") {
                        skipme = false;
                    } else {
                        return Err(CmdError::Syntax);
                    }
                }
                _ => return Err(CmdError::Syntax),
            }
            i += 2;
        }
    }
    let matches = |c: &ClientState| {
        id.is_none_or(|i| c.id == i)
            && ctype.is_none_or(|t| type_of(c) == t)
            && addr.is_none_or(|a| c.addr.as_bytes() == a)
            && laddr.is_none_or(|a| c.laddr.as_bytes() == a)
            && user.is_none_or(|_| true)
    };
    let mut killed = 0;
    for c in e.clients.values_mut() {
        if matches(c) {
            c.killed = true;
            c.push(Push::Kill);
            killed += 1;
        }
    }
    let kill_me = !skipme && matches(me);
    if kill_me {
        killed += 1;
    }
    if old_form {
        if killed == 0 {
            return Err(CmdError::err("No such client"));
        }
        out.ok();
    } else {
        out.int(killed);
    }
    if kill_me {
        // Closes once this reply is written.
        me.killed = true;
    }
    Ok(())
}

//! GEO commands (geo.c): GEOADD, GEODIST, GEOHASH, GEOPOS, GEORADIUS,
//! GEORADIUSBYMEMBER (and their _RO forms), GEOSEARCH, GEOSEARCHSTORE,
//! with Redis 7.0's replies and errors. A geo index is a sorted set whose
//! scores are 52-bit geohashes ([`crate::geohash`]), so every sorted set
//! command works on it too.
//!
//! Effects: each command's own arguments replay to the same data (the
//! geometry is deterministic), so GEOADD and the STORE forms log
//! themselves; the STORE destination is a key of the record through
//! [`georadius_keys`].

use bytes::Bytes;

use super::flags::*;
use super::zset::{store_result, zadd_with};
use super::CommandSpec;
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::geohash::{self, Shape, ShapeKind};
use crate::keyspace::ZSet;
use crate::numbers::{parse_f64, parse_i64};
use crate::resp::ReplyBuf;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("geoadd", -5, WRITE | DENYOOM, (1, 1, 1), "geo", geoadd),
    CommandSpec::new("geodist", -4, READONLY, (1, 1, 1), "geo", geodist),
    CommandSpec::new("geohash", -2, READONLY, (1, 1, 1), "geo", geohash_cmd),
    CommandSpec::new("geopos", -2, READONLY, (1, 1, 1), "geo", geopos),
    CommandSpec::new(
        "georadius",
        -6,
        WRITE | DENYOOM,
        (1, 1, 1),
        "geo",
        georadius,
    )
    .with_keys_fn(georadius_keys),
    CommandSpec::new(
        "georadiusbymember",
        -5,
        WRITE | DENYOOM,
        (1, 1, 1),
        "geo",
        georadiusbymember,
    )
    .with_keys_fn(georadius_keys),
    CommandSpec::new("georadius_ro", -6, READONLY, (1, 1, 1), "geo", georadius_ro),
    CommandSpec::new(
        "georadiusbymember_ro",
        -5,
        READONLY,
        (1, 1, 1),
        "geo",
        georadiusbymember_ro,
    ),
    CommandSpec::new("geosearch", -7, READONLY, (1, 1, 1), "geo", geosearch),
    CommandSpec::new(
        "geosearchstore",
        -8,
        WRITE | DENYOOM,
        (1, 2, 1),
        "geo",
        geosearchstore,
    ),
];

/// georadiusGetKeys: the source key, plus the last STORE/STOREDIST
/// destination.
fn georadius_keys(argv: &[Bytes]) -> Result<Vec<usize>, CmdError> {
    let mut keys = vec![1];
    let mut stored = None;
    let mut i = 5;
    while i < argv.len() {
        let a = &argv[i];
        if (a.eq_ignore_ascii_case(b"store") || a.eq_ignore_ascii_case(b"storedist"))
            && i + 1 < argv.len()
        {
            stored = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    keys.extend(stored);
    Ok(keys)
}

/// getDoubleFromObjectOrReply with Redis' message for this argument.
fn parse_double(arg: &[u8], msg: Option<&str>) -> Result<f64, CmdError> {
    parse_f64(arg).ok_or_else(|| match msg {
        Some(m) => CmdError::err(m),
        None => CmdError::NotFloat,
    })
}

/// extractLongLatOrReply: `[longitude, latitude]` from two arguments.
fn long_lat(args: &[Bytes]) -> Result<[f64; 2], CmdError> {
    let lon = parse_double(&args[0], None)?;
    let lat = parse_double(&args[1], None)?;
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&lon)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&lat)
    {
        return Err(CmdError::err(format!(
            "invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok([lon, lat])
}

/// extractUnitOrReply: meters per unit.
fn unit(arg: &[u8]) -> Result<f64, CmdError> {
    let u = arg.to_ascii_lowercase();
    Ok(match &u[..] {
        b"m" => 1.0,
        b"km" => 1000.0,
        b"ft" => 0.3048,
        b"mi" => 1609.34,
        _ => {
            return Err(CmdError::err(
                "unsupported unit provided. please use M, KM, FT, MI",
            ))
        }
    })
}

/// extractDistanceOrReply: `radius unit` → (radius, meters per unit).
fn radius(args: &[Bytes]) -> Result<(f64, f64), CmdError> {
    let r = parse_double(&args[0], Some("need numeric radius"))?;
    if r < 0.0 {
        return Err(CmdError::err("radius cannot be negative"));
    }
    Ok((r, unit(&args[1])?))
}

/// extractBoxOrReply: `width height unit` → (width, height, meters per unit).
fn box_size(args: &[Bytes]) -> Result<(f64, f64, f64), CmdError> {
    let w = parse_double(&args[0], Some("need numeric width"))?;
    let h = parse_double(&args[1], Some("need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        return Err(CmdError::err("height or width cannot be negative"));
    }
    Ok((w, h, unit(&args[2])?))
}

/// longLatFromMember.
fn member_position(z: &ZSet, member: &[u8]) -> Result<[f64; 2], CmdError> {
    z.score(member)
        .map(geohash::decode_score)
        .ok_or_else(|| CmdError::err("could not decode requested zset member"))
}

/// GEOADD key [NX|XX] [CH] longitude latitude member ...: a ZADD of the
/// members' geohashes.
fn geoadd(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let (mut nx, mut xx) = (false, false);
    let mut idx = 2;
    while idx < args.len() {
        let a = &args[idx];
        if a.eq_ignore_ascii_case(b"nx") {
            nx = true;
        } else if a.eq_ignore_ascii_case(b"xx") {
            xx = true;
        } else if !a.eq_ignore_ascii_case(b"ch") {
            break;
        }
        idx += 1;
    }
    if !(args.len() - idx).is_multiple_of(3) || (nx && xx) {
        return Err(CmdError::Syntax);
    }
    let mut zadd: Vec<Bytes> = Vec::with_capacity(idx + (args.len() - idx) / 3 * 2);
    zadd.push(Bytes::from_static(b"zadd"));
    zadd.extend(args[1..idx].iter().cloned());
    for triple in args[idx..].chunks_exact(3) {
        let [lon, lat] = long_lat(&triple[..2])?;
        let score = geohash::encode_score(lon, lat).unwrap_or(0);
        zadd.push(Bytes::from(score.to_string()));
        zadd.push(triple[2].clone());
    }
    zadd_with(ctx, &zadd, false)
}

/// GEODIST key member1 member2 [unit].
fn geodist(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let to_meter = match args.len() {
        5 => unit(&args[4])?,
        n if n > 5 => return Err(CmdError::Syntax),
        _ => 1.0,
    };
    let db = ctx.db();
    let positions = ctx.ks.get_zset_read(db, &args[1])?.and_then(|z| {
        let a = z.score(&args[2])?;
        let b = z.score(&args[3])?;
        Some((geohash::decode_score(a), geohash::decode_score(b)))
    });
    match positions {
        Some((a, b)) => {
            let d = geohash::distance(a[0], a[1], b[0], b[1]) / to_meter;
            ctx.out.bulk(geohash::fmt_distance(d).as_bytes());
        }
        None => ctx.out.null(),
    }
    Ok(())
}

/// GEOHASH key member ...: standard 11-character geohashes.
fn geohash_cmd(ctx: &mut Ctx) -> CmdResult {
    reply_per_member(ctx, |out, score| match score {
        Some(s) => out.bulk(&geohash::geohash_string(s)),
        None => out.null(),
    })
}

/// GEOPOS key member ...: `[longitude, latitude]` of each member.
fn geopos(ctx: &mut Ctx) -> CmdResult {
    reply_per_member(ctx, |out, score| match score {
        Some(s) => {
            let [lon, lat] = geohash::decode_score(s);
            out.array(2);
            human_double(out, lon);
            human_double(out, lat);
        }
        None => out.null_array(),
    })
}

/// An array with one reply per member argument (from index 2), written by
/// `reply` from the member's score (None: no such member or key).
fn reply_per_member(ctx: &mut Ctx, reply: impl Fn(&mut ReplyBuf, Option<f64>)) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    let z = ctx.ks.get_zset_read(db, &args[1])?;
    ctx.out.array(args.len() - 2);
    for m in &args[2..] {
        reply(ctx.out, z.and_then(|z| z.score(m)));
    }
    Ok(())
}

/// addReplyHumanLongDouble: `%.17Lf` trimmed, a bulk string in RESP2 and a
/// double in RESP3.
fn human_double(out: &mut ReplyBuf, d: f64) {
    out.double_text(&crate::long_double::LongDouble::from_f64(d).to_human_string());
}

// Search variants (georadiusGeneric's flags).
const RADIUS_COORDS: u8 = 1;
const RADIUS_MEMBER: u8 = 1 << 1;
const RADIUS_NOSTORE: u8 = 1 << 2;
const GEOSEARCH: u8 = 1 << 3;
const GEOSEARCHSTORE: u8 = 1 << 4;

fn georadius(ctx: &mut Ctx) -> CmdResult {
    search(ctx, 1, RADIUS_COORDS)
}

fn georadiusbymember(ctx: &mut Ctx) -> CmdResult {
    search(ctx, 1, RADIUS_MEMBER)
}

fn georadius_ro(ctx: &mut Ctx) -> CmdResult {
    search(ctx, 1, RADIUS_COORDS | RADIUS_NOSTORE)
}

fn georadiusbymember_ro(ctx: &mut Ctx) -> CmdResult {
    search(ctx, 1, RADIUS_MEMBER | RADIUS_NOSTORE)
}

fn geosearch(ctx: &mut Ctx) -> CmdResult {
    search(ctx, 1, GEOSEARCH)
}

fn geosearchstore(ctx: &mut Ctx) -> CmdResult {
    search(ctx, 2, GEOSEARCH | GEOSEARCHSTORE)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A member found by a search.
struct Point {
    member: Bytes,
    xy: [f64; 2],
    /// In meters until the reply converts it.
    dist: f64,
    score: f64,
}

/// The parsed search, all but the shape.
struct Options {
    store: Option<Bytes>,
    storedist: bool,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    sort: Sort,
    any: bool,
    count: i64,
}

/// georadiusGeneric: every search command.
fn search(ctx: &mut Ctx, src: usize, flags: u8) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    let (shape, opts) = {
        let z = ctx.ks.get_zset_read(db, &args[src])?;
        parse_search(args, z, flags)?
    };
    let event = if flags & GEOSEARCH != 0 {
        "geosearchstore"
    } else {
        "georadiusstore"
    };
    // A missing source: an empty answer (and the destination deleted).
    let Some(shape) = shape else {
        match &opts.store {
            Some(dst) => store_result(ctx, dst, ZSet::default(), event),
            None => ctx.out.array(0),
        }
        return Ok(());
    };
    let mut sort = opts.sort;
    if opts.count != 0 && sort == Sort::None && !opts.any {
        sort = Sort::Asc;
    }
    let limit = if opts.any { opts.count as usize } else { 0 };
    let mut found = match ctx.ks.get_zset(db, &args[src])? {
        Some(z) => members_in_shape(z, &shape, limit),
        None => Vec::new(),
    };
    if found.is_empty() && opts.store.is_none() {
        ctx.out.array(0);
        return Ok(());
    }
    let returned = if opts.count == 0 {
        found.len()
    } else {
        found.len().min(opts.count as usize)
    };
    if sort != Sort::None {
        let cmp = |a: &Point, b: &Point| {
            let o = a
                .dist
                .partial_cmp(&b.dist)
                .unwrap_or(std::cmp::Ordering::Equal);
            if sort == Sort::Desc {
                o.reverse()
            } else {
                o
            }
        };
        if returned == found.len() {
            // glibc's qsort is a merge sort: stable, like this one.
            found.sort_by(cmp);
        } else {
            geohash::pqsort(&mut found, &cmp, 0, returned - 1);
        }
    }
    found.truncate(returned);
    if let Some(dst) = &opts.store {
        let mut z = ZSet::default();
        for p in &found {
            let score = if opts.storedist {
                p.dist / shape.conversion
            } else {
                p.score
            };
            z.insert(&p.member, score);
        }
        store_result(ctx, dst, z, event);
        return Ok(());
    }
    let options =
        usize::from(opts.withdist) + usize::from(opts.withhash) + usize::from(opts.withcoord);
    ctx.out.array(returned);
    for p in &found {
        if options > 0 {
            ctx.out.array(options + 1);
        }
        ctx.out.bulk(&p.member);
        if opts.withdist {
            ctx.out
                .bulk(geohash::fmt_distance(p.dist / shape.conversion).as_bytes());
        }
        if opts.withhash {
            ctx.out.int(p.score as i64);
        }
        if opts.withcoord {
            ctx.out.array(2);
            human_double(ctx.out, p.xy[0]);
            human_double(ctx.out, p.xy[1]);
        }
    }
    Ok(())
}

/// The search's shape (None when the source key is missing) and options,
/// with Redis' checks in Redis' order.
fn parse_search(
    args: &[Bytes],
    z: Option<&ZSet>,
    flags: u8,
) -> Result<(Option<Shape>, Options), CmdError> {
    let mut xy = None;
    let mut kind = None;
    let mut conversion = 1.0;
    let base: usize;
    let mut opts = Options {
        store: None,
        storedist: false,
        withdist: false,
        withhash: false,
        withcoord: false,
        sort: Sort::None,
        any: false,
        count: 0,
    };
    if flags & RADIUS_COORDS != 0 {
        base = 6;
        xy = Some(long_lat(&args[2..4])?);
        let (r, c) = radius(&args[4..6])?;
        kind = Some(ShapeKind::Circle(r));
        conversion = c;
    } else if flags & RADIUS_MEMBER != 0 {
        base = 5;
        // Without a source the options are still parsed, for the reply's
        // kind (STORE or not).
        if let Some(z) = z {
            xy = Some(member_position(z, &args[2])?);
            let (r, c) = radius(&args[3..5])?;
            kind = Some(ShapeKind::Circle(r));
            conversion = c;
        }
    } else {
        base = if flags & GEOSEARCHSTORE != 0 { 3 } else { 2 };
        if flags & GEOSEARCHSTORE != 0 {
            opts.store = Some(args[1].clone());
        }
    }
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let remaining = args.len().saturating_sub(base);
    let mut i = 0;
    while i < remaining {
        let arg = &args[base + i][..];
        let is = |w: &str| arg.eq_ignore_ascii_case(w.as_bytes());
        let search = flags & GEOSEARCH != 0;
        let may_store = flags & (RADIUS_NOSTORE | GEOSEARCH) == 0;
        if is("withdist") {
            opts.withdist = true;
        } else if is("withhash") {
            opts.withhash = true;
        } else if is("withcoord") {
            opts.withcoord = true;
        } else if is("any") {
            opts.any = true;
        } else if is("asc") {
            opts.sort = Sort::Asc;
        } else if is("desc") {
            opts.sort = Sort::Desc;
        } else if is("count") && i + 1 < remaining {
            let n = parse_i64(&args[base + i + 1]).ok_or(CmdError::NotInteger)?;
            if n <= 0 {
                return Err(CmdError::err("COUNT must be > 0"));
            }
            opts.count = n;
            i += 1;
        } else if (is("store") || is("storedist")) && i + 1 < remaining && may_store {
            opts.storedist = is("storedist");
            opts.store = Some(args[base + i + 1].clone());
            i += 1;
        } else if is("storedist") && flags & GEOSEARCHSTORE != 0 {
            opts.storedist = true;
        } else if is("frommember") && i + 1 < remaining && search && !fromloc {
            if let Some(z) = z {
                xy = Some(member_position(z, &args[base + i + 1])?);
            }
            frommember = true;
            i += 1;
        } else if is("fromlonlat") && i + 2 < remaining && search && !frommember {
            xy = Some(long_lat(&args[base + i + 1..base + i + 3])?);
            fromloc = true;
            i += 2;
        } else if is("byradius") && i + 2 < remaining && search && !bybox {
            let (r, c) = radius(&args[base + i + 1..base + i + 3])?;
            kind = Some(ShapeKind::Circle(r));
            conversion = c;
            byradius = true;
            i += 2;
        } else if is("bybox") && i + 3 < remaining && search && !byradius {
            let (w, h, c) = box_size(&args[base + i + 1..base + i + 4])?;
            kind = Some(ShapeKind::Box(w, h));
            conversion = c;
            bybox = true;
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if opts.store.is_some() && (opts.withdist || opts.withhash || opts.withcoord) {
        let what = if flags & GEOSEARCHSTORE != 0 {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(CmdError::err(format!(
            "{what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    let name = String::from_utf8_lossy(&args[0]);
    if flags & GEOSEARCH != 0 && !(frommember || fromloc) {
        return Err(CmdError::err(format!(
            "exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    if flags & GEOSEARCH != 0 && !(byradius || bybox) {
        return Err(CmdError::err(format!(
            "exactly one of BYRADIUS and BYBOX can be specified for {name}"
        )));
    }
    if opts.any && opts.count == 0 {
        return Err(CmdError::err("the ANY argument requires COUNT argument"));
    }
    let shape = match (z, xy, kind) {
        (Some(_), Some(xy), Some(kind)) => Some(Shape {
            xy,
            conversion,
            kind,
        }),
        _ => None,
    };
    Ok((shape, opts))
}

/// membersOfAllNeighbors: the members inside the shape, box by box in
/// Redis' order, each box in score order; with `limit` (ANY) it stops once
/// that many are found.
fn members_in_shape(z: &ZSet, shape: &Shape, limit: usize) -> Vec<Point> {
    let boxes = shape.search_boxes();
    let mut found = Vec::new();
    let mut last: Option<usize> = None;
    for (i, b) in boxes.iter().enumerate() {
        if b.bits == 0 && b.step == 0 {
            continue;
        }
        // Huge radii make neighbours coincide: skip a repeat of the last.
        if last.is_some_and(|l| l != 0 && boxes[l] == *b) {
            continue;
        }
        if !found.is_empty() && limit > 0 && found.len() >= limit {
            break;
        }
        let (min, max) = geohash::score_range(*b);
        for (member, score) in z.iter_from_score(min) {
            if score >= max {
                break;
            }
            let xy = geohash::decode_score(score);
            if let Some(dist) = shape.distance_if_within(xy) {
                found.push(Point {
                    member: Bytes::copy_from_slice(member),
                    xy,
                    dist,
                    score,
                });
            }
            if !found.is_empty() && limit > 0 && found.len() >= limit {
                break;
            }
        }
        last = Some(i);
    }
    found
}

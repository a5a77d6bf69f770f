//! SORT and SORT_RO, following Redis 7.0's sort.c: BY patterns (with
//! `->field` hash dereferences), LIMIT, GET (`#` for the element itself),
//! ASC/DESC, ALPHA and STORE.

use std::cmp::Ordering;

use bytes::Bytes;

use super::flags::*;
use super::CommandSpec;
use crate::argv;
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{notify, Elem, Keyspace, Value};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sort", -2, WRITE | DENYOOM, (1, 1, 1), "generic", sort)
        .with_keys_fn(sort_keys),
    // Movable in Redis: BY and GET patterns name keys the spec cannot.
    CommandSpec::new(
        "sort_ro",
        -2,
        READONLY | MOVABLE_KEYS,
        (1, 1, 1),
        "generic",
        sort_ro,
    ),
];

/// sortGetKeys: the sorted key, plus the last STORE destination.
fn sort_keys(argv: &[Bytes]) -> Result<Vec<usize>, CmdError> {
    let mut keys = vec![1];
    let mut store = None;
    let mut i = 2;
    while i < argv.len() {
        let a = &argv[i];
        if a.eq_ignore_ascii_case(b"limit") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"store") && i + 1 < argv.len() {
            store = Some(i + 1);
        } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
            i += 1;
        }
        i += 1;
    }
    keys.extend(store);
    Ok(keys)
}

fn sort(ctx: &mut Ctx) -> CmdResult {
    sort_generic(ctx, false)
}

fn sort_ro(ctx: &mut Ctx) -> CmdResult {
    sort_generic(ctx, true)
}

/// lookupKeyByPattern: `#` is the element itself; otherwise the first `*`
/// is replaced by the element, and `key->field` reads a hash field.
fn lookup_by_pattern(ks: &mut Keyspace, db: usize, pattern: &[u8], subst: &[u8]) -> Option<Elem> {
    if pattern == b"#" {
        return Some(subst.into());
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let after = &pattern[star + 1..];
    let arrow = after
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&f| f + 2 < after.len());
    let (postfix, field) = match arrow {
        Some(f) => (&after[..f], Some(&after[f + 2..])),
        None => (after, None),
    };
    let mut key = Vec::with_capacity(pattern.len() + subst.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(subst);
    key.extend_from_slice(postfix);
    match (ks.get_counted(db, &key)?, field) {
        (Value::Hash(h), Some(f)) => h.get(f).cloned(),
        (Value::Str(s), None) => Some(s.clone()),
        _ => None,
    }
}

/// strtod over the whole string, as SORT reads scores: leading spaces are
/// skipped, the empty string is 0, NaN and out-of-range values fail.
fn sort_score(s: &[u8]) -> Option<f64> {
    if s.is_empty() {
        return Some(0.0);
    }
    let t = match s.iter().position(|c| !b" \t\n\x0b\x0c\r".contains(c)) {
        Some(i) => &s[i..],
        None => return None,
    };
    let st = std::str::from_utf8(t).ok()?;
    let lower = st.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    let v: f64 = if body.starts_with("0x") {
        crate::numbers::parse_f64(t)?
    } else {
        if body.starts_with('_') || st.contains('_') {
            return None;
        }
        st.parse().ok()?
    };
    if v.is_nan() {
        return None;
    }
    if v.is_infinite() && !lower.contains("inf") {
        return None; // ERANGE (overflow)
    }
    if (v == 0.0 || v.is_subnormal()) && {
        let mant = body.split('e').next().unwrap_or("");
        mant.bytes().any(|c| (b'1'..=b'9').contains(&c))
    } {
        return None; // ERANGE (underflow)
    }
    Some(v)
}

struct SortItem {
    obj: Elem,
    score: f64,
    cmp: Option<Elem>,
}

fn sort_generic(ctx: &mut Ctx, readonly: bool) -> CmdResult {
    let args = ctx.args;
    let mut desc = false;
    let mut alpha = false;
    let mut limit_start: i64 = 0;
    let mut limit_count: i64 = -1;
    let mut store: Option<&[u8]> = None;
    let mut sortby: Option<&[u8]> = None;
    let mut dontsort = false;
    let mut gets: Vec<&[u8]> = Vec::new();
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        if ctx.arg_is(j, "ASC") {
            desc = false;
        } else if ctx.arg_is(j, "DESC") {
            desc = true;
        } else if ctx.arg_is(j, "ALPHA") {
            alpha = true;
        } else if ctx.arg_is(j, "LIMIT") && left >= 2 {
            limit_start = ctx.int_arg(j + 1)?;
            limit_count = ctx.int_arg(j + 2)?;
            j += 2;
        } else if !readonly && ctx.arg_is(j, "STORE") && left >= 1 {
            store = Some(&args[j + 1]);
            j += 1;
        } else if ctx.arg_is(j, "BY") && left >= 1 {
            sortby = Some(&args[j + 1]);
            if !args[j + 1].contains(&b'*') {
                dontsort = true;
            }
            j += 1;
        } else if ctx.arg_is(j, "GET") && left >= 1 {
            gets.push(&args[j + 1]);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }

    let db = ctx.db();
    let (is_set, ordered): (bool, Vec<Elem>) = match ctx.ks.get_counted(db, &args[1]) {
        None => (false, Vec::new()),
        Some(Value::List(l)) => (false, l.iter().cloned().collect()),
        Some(Value::ZSet(z)) => (false, z.iter().map(|(m, _)| Elem::from(m)).collect()),
        Some(Value::Set(s)) => (true, s.iter().cloned().collect()),
        Some(_) => return Err(CmdError::WrongType),
    };

    // A set with nothing to sort by is sorted anyway when stored or when a
    // script asks, so that the result is deterministic.
    if dontsort && is_set && (store.is_some() || ctx.client.in_script) {
        dontsort = false;
        alpha = true;
        sortby = None;
    }

    let len = ordered.len() as i64;
    let mut start = limit_start.max(0);
    let mut end = if limit_count < 0 {
        len - 1
    } else {
        start.saturating_add(limit_count) - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }

    let mut items: Vec<SortItem> = if dontsort && !is_set {
        // Lists and sorted sets keep their own order (reversed by DESC);
        // LIMIT selects the range directly.
        let mut v = ordered;
        if desc {
            v.reverse();
        }
        let picked = if end >= start {
            v.into_iter()
                .skip(start as usize)
                .take((end - start + 1) as usize)
                .collect()
        } else {
            Vec::new()
        };
        end -= start;
        start = 0;
        picked
    } else {
        ordered
    }
    .into_iter()
    .map(|obj| SortItem {
        obj,
        score: 0.0,
        cmp: None,
    })
    .collect();

    let mut conversion_error = false;
    if !dontsort {
        for it in items.iter_mut() {
            let byval = match sortby {
                Some(p) => match lookup_by_pattern(ctx.ks, db, p, &it.obj) {
                    Some(v) => v,
                    None => continue,
                },
                None => it.obj.clone(),
            };
            if alpha {
                if sortby.is_some() {
                    it.cmp = Some(byval);
                }
            } else {
                match sort_score(&byval) {
                    Some(s) => it.score = s,
                    None => conversion_error = true,
                }
            }
        }
        let by = sortby.is_some();
        items.sort_by(|a, b| {
            let c = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.obj.cmp(&b.obj))
            } else if by {
                match (&a.cmp, &b.cmp) {
                    (Some(x), Some(y)) => x.cmp(y),
                    (None, None) => Ordering::Equal,
                    (None, _) => Ordering::Less,
                    (_, None) => Ordering::Greater,
                }
            } else {
                a.obj.cmp(&b.obj)
            };
            if desc {
                c.reverse()
            } else {
                c
            }
        });
    }

    if conversion_error {
        return Err(CmdError::err(
            "One or more scores can't be converted into double",
        ));
    }
    let range: Vec<&SortItem> = if end >= start {
        items[start as usize..=end as usize].iter().collect()
    } else {
        Vec::new()
    };
    let per = if gets.is_empty() { 1 } else { gets.len() };
    let outputlen = range.len() * per;

    match store {
        None => {
            ctx.out.array(outputlen);
            for it in range {
                if gets.is_empty() {
                    ctx.out.bulk(&it.obj);
                }
                for g in &gets {
                    match lookup_by_pattern(ctx.ks, db, g, &it.obj) {
                        Some(v) => ctx.out.bulk(&v),
                        None => ctx.out.null(),
                    }
                }
            }
        }
        Some(dst) => {
            let mut list = std::collections::VecDeque::with_capacity(outputlen);
            for it in range {
                if gets.is_empty() {
                    list.push_back(it.obj.clone());
                }
                for g in &gets {
                    let v = lookup_by_pattern(ctx.ks, db, g, &it.obj);
                    list.push_back(v.unwrap_or_else(|| Elem::from(&b""[..])));
                }
            }
            if outputlen > 0 {
                let mut eff = argv![b"RPUSH", dst];
                eff.extend(list.iter().map(|e| Bytes::copy_from_slice(e)));
                ctx.ks.set(db, dst, Value::List(Box::new(list)));
                ctx.ks.modified(db, dst);
                ctx.ks.notify(db, notify::LIST, "sortstore", dst);
                ctx.ks.propagate(db, argv![b"DEL", dst]);
                ctx.ks.propagate(db, eff);
            } else if ctx.ks.remove(db, dst).is_some() {
                ctx.ks.modified(db, dst);
                ctx.ks.notify(db, notify::GENERIC, "del", dst);
                ctx.ks.propagate(db, argv![b"DEL", dst]);
            }
            ctx.out.int(outputlen as i64);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_parse_like_strtod() {
        assert_eq!(sort_score(b""), Some(0.0));
        assert_eq!(sort_score(b" 1.5"), Some(1.5));
        assert_eq!(sort_score(b"+5"), Some(5.0));
        assert_eq!(sort_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(sort_score(b"1 "), None);
        assert_eq!(sort_score(b"  "), None);
        assert_eq!(sort_score(b"nan"), None);
        assert_eq!(sort_score(b"1e400"), None);
        assert_eq!(sort_score(b"1e-400"), None);
        assert_eq!(sort_score(b"abc"), None);
    }

    #[test]
    fn store_key_positions() {
        let a = |v: &[&str]| -> Vec<Bytes> {
            v.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect()
        };
        assert_eq!(sort_keys(&a(&["SORT", "k"])).unwrap(), vec![1]);
        assert_eq!(
            sort_keys(&a(&["SORT", "k", "LIMIT", "0", "1", "STORE", "d"])).unwrap(),
            vec![1, 6]
        );
        assert_eq!(
            sort_keys(&a(&["SORT", "k", "GET", "store", "STORE", "d"])).unwrap(),
            vec![1, 5]
        );
    }
}

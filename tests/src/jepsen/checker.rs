//! Linearizability checking: Wing & Gong's search with Lowe's memoization, as
//! Porcupine implements it, on a history split per key (P-compositionality:
//! a history of independent objects is linearizable iff each object's is).
//!
//! - `fail` operations are dropped (they did not happen).
//! - `info` operations get an infinite completion time: the search may
//!   linearize them anywhere after their invocation, including after every
//!   other operation, which is the same as "never happened". Unknown reads
//!   constrain nothing and are dropped.
//! - A step and time budget makes the answer [`Verdict::Unknown`] instead of
//!   letting a pathological history hang the run.

use super::history::{ModelKind, Op, OpType, Res, F};
use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// A sequential specification of one object.
pub trait Model {
    type State: Clone + Eq + Hash;
    fn init(&self) -> Self::State;
    /// The state after `op` if `op` may take effect in `s` with the outcome it
    /// reported (any outcome for `info` ops), else None.
    fn step(&self, s: &Self::State, op: &Op) -> Option<Self::State>;
}

fn arg(op: &Op, i: usize) -> i64 {
    op.arg.get(i).copied().unwrap_or(0)
}

/// A register with read, write and compare-and-set; None = key missing.
pub struct RegisterModel;

impl Model for RegisterModel {
    type State = Option<i64>;
    fn init(&self) -> Self::State {
        None
    }
    fn step(&self, s: &Self::State, op: &Op) -> Option<Self::State> {
        let info = op.kind == OpType::Info;
        match op.f {
            F::Read => {
                if info {
                    return Some(*s);
                }
                let seen = match &op.result {
                    Res::Nil => None,
                    Res::Int(v) => Some(*v),
                    Res::List(_) => return None,
                };
                (seen == *s).then_some(*s)
            }
            F::Write => Some(Some(arg(op, 0))),
            F::Cas => {
                if *s == Some(arg(op, 0)) {
                    Some(Some(arg(op, 1)))
                } else if info {
                    Some(*s)
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

/// A counter: INCRBY returns the new value; a missing key reads as 0.
pub struct CounterModel;

impl Model for CounterModel {
    type State = i64;
    fn init(&self) -> i64 {
        0
    }
    fn step(&self, s: &i64, op: &Op) -> Option<i64> {
        let info = op.kind == OpType::Info;
        match op.f {
            F::Read => {
                if info {
                    return Some(*s);
                }
                let seen = match &op.result {
                    Res::Nil => 0,
                    Res::Int(v) => *v,
                    Res::List(_) => return None,
                };
                (seen == *s).then_some(*s)
            }
            F::Incr => {
                let n = s.wrapping_add(arg(op, 0));
                match (&op.result, info) {
                    (_, true) | (Res::Nil, false) => Some(n),
                    (Res::Int(r), false) => (*r == n).then_some(n),
                    (Res::List(_), false) => None,
                }
            }
            _ => None,
        }
    }
}

/// A list that only grows by appends; a read returns the whole list.
pub struct ListModel;

impl Model for ListModel {
    type State = Vec<i64>;
    fn init(&self) -> Vec<i64> {
        Vec::new()
    }
    fn step(&self, s: &Vec<i64>, op: &Op) -> Option<Vec<i64>> {
        let info = op.kind == OpType::Info;
        match op.f {
            F::Read => {
                if info {
                    return Some(s.clone());
                }
                let ok = match &op.result {
                    Res::Nil => s.is_empty(),
                    Res::List(v) => v == s,
                    Res::Int(_) => false,
                };
                ok.then(|| s.clone())
            }
            F::Append => {
                let mut n = s.clone();
                n.push(arg(op, 0));
                Some(n)
            }
            _ => None,
        }
    }
}

/// The answer for one key (or a whole history).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    NotLinearizable,
    /// The budget ran out first.
    Unknown,
}

/// How long one search may run.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub deadline: Instant,
    pub max_steps: u64,
}

impl Budget {
    pub fn new(time: Duration, max_steps: u64) -> Self {
        Self {
            deadline: Instant::now() + time,
            max_steps,
        }
    }
}

const NIL: usize = usize::MAX;

/// Whether `ops` (one object's, already filtered by [`prepare`]) is
/// linearizable with respect to `model`.
pub fn check_ops<M: Model>(model: &M, ops: &[Op], budget: &Budget) -> Verdict {
    let n = ops.len();
    if n == 0 {
        return Verdict::Linearizable;
    }
    // Events sorted by time; a call sorts before a return at the same time
    // (touching operations count as concurrent).
    let mut evs: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        evs.push((op.invoke_ns, 0, i));
        let ret = match op.kind {
            OpType::Info => u64::MAX,
            _ => op.complete_ns.unwrap_or(u64::MAX),
        };
        evs.push((ret.max(op.invoke_ns), 1, i));
    }
    evs.sort_unstable();
    // Doubly linked list of events; node 0 is the head sentinel.
    let len = evs.len() + 1;
    let mut next: Vec<usize> = (1..=len).map(|k| if k < len { k } else { NIL }).collect();
    let mut prev: Vec<usize> = (0..len).map(|k| if k == 0 { NIL } else { k - 1 }).collect();
    let mut is_call = vec![false; len];
    let mut opid = vec![0usize; len];
    let mut ret_node = vec![0usize; n];
    for (k, &(_, c, i)) in evs.iter().enumerate() {
        is_call[k + 1] = c == 0;
        opid[k + 1] = i;
        if c == 1 {
            ret_node[i] = k + 1;
        }
    }
    let mut mat = vec![NIL; len];
    for node in 1..len {
        if is_call[node] {
            mat[node] = ret_node[opid[node]];
        }
    }
    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let mut calls: Vec<(usize, M::State)> = Vec::new();
    let mut state = model.init();
    let mut entry = next[0];
    let mut steps: u64 = 0;
    while next[0] != NIL {
        steps += 1;
        if steps.is_multiple_of(512)
            && (steps > budget.max_steps || Instant::now() > budget.deadline)
        {
            return Verdict::Unknown;
        }
        if entry == NIL {
            // Cannot happen (the list always ends with a return), but never
            // index out of bounds.
            return Verdict::Unknown;
        }
        if is_call[entry] {
            let id = opid[entry];
            if let Some(ns) = model.step(&state, &ops[id]) {
                let mut nl = linearized.clone();
                nl[id / 64] |= 1u64 << (id % 64);
                if cache.insert((nl.clone(), ns.clone())) {
                    calls.push((entry, std::mem::replace(&mut state, ns)));
                    linearized = nl;
                    // lift entry and its return
                    let m = mat[entry];
                    next[prev[entry]] = next[entry];
                    prev[next[entry]] = prev[entry];
                    next[prev[m]] = next[m];
                    if next[m] != NIL {
                        prev[next[m]] = prev[m];
                    }
                    entry = next[0];
                    continue;
                }
            }
            entry = next[entry];
        } else {
            let Some((e, s)) = calls.pop() else {
                return Verdict::NotLinearizable;
            };
            state = s;
            let id = opid[e];
            linearized[id / 64] &= !(1u64 << (id % 64));
            // unlift: the return first, then the call
            let m = mat[e];
            next[prev[m]] = m;
            if next[m] != NIL {
                prev[next[m]] = m;
            }
            next[prev[e]] = e;
            prev[next[e]] = e;
            entry = next[e];
        }
    }
    Verdict::Linearizable
}

/// Checks one object's operations with the model of its kind.
pub fn check_kind(kind: ModelKind, ops: &[Op], budget: &Budget) -> Verdict {
    match kind {
        ModelKind::Register => check_ops(&RegisterModel, ops, budget),
        ModelKind::Counter => check_ops(&CounterModel, ops, budget),
        ModelKind::List => check_ops(&ListModel, ops, budget),
        ModelKind::Nemesis => Verdict::Linearizable,
    }
}

/// Splits a history per (model, key), keeping only what the search needs:
/// no nemesis events, no `fail` ops, no `info` reads.
pub fn prepare(ops: &[Op]) -> BTreeMap<(ModelKind, String), Vec<Op>> {
    let mut out: BTreeMap<(ModelKind, String), Vec<Op>> = BTreeMap::new();
    for op in ops {
        if op.model == ModelKind::Nemesis || op.kind == OpType::Fail {
            continue;
        }
        if op.kind == OpType::Info && op.f == F::Read {
            continue;
        }
        out.entry((op.model, op.key.clone()))
            .or_default()
            .push(op.clone());
    }
    out
}

/// The verdict for one key.
#[derive(Clone, Debug)]
pub struct KeyResult {
    pub model: ModelKind,
    pub key: String,
    pub ops: usize,
    pub verdict: Verdict,
}

/// Checks every key of a history; `time` bounds the whole check, `max_steps`
/// each key.
pub fn check_history(ops: &[Op], time: Duration, max_steps: u64) -> Vec<KeyResult> {
    let deadline = Instant::now() + time;
    let keys = prepare(ops);
    // Each key gets a fair share of the time (at least 2 s), so that one
    // pathological key cannot starve the others.
    let slice = (time / keys.len().max(1) as u32).max(Duration::from_secs(2));
    keys.into_iter()
        .map(|((model, key), kops)| {
            let budget = Budget {
                deadline: deadline.min(Instant::now() + slice),
                max_steps,
            };
            let verdict = check_kind(model, &kops, &budget);
            KeyResult {
                model,
                key,
                ops: kops.len(),
                verdict,
            }
        })
        .collect()
}

/// Combines per-key verdicts: any violation wins, then any unknown.
pub fn overall(results: &[KeyResult]) -> Verdict {
    if results
        .iter()
        .any(|r| r.verdict == Verdict::NotLinearizable)
    {
        Verdict::NotLinearizable
    } else if results.iter().any(|r| r.verdict == Verdict::Unknown) {
        Verdict::Unknown
    } else {
        Verdict::Linearizable
    }
}

/// Whether removing `op` keeps every remaining read explainable (a removed
/// write must not be the source of a value someone still observes).
fn removable(kind: ModelKind, op: &Op, rest: &[&Op]) -> bool {
    match (kind, op.f) {
        (_, F::Read) => true,
        (ModelKind::Register, F::Write | F::Cas) => {
            let v = if op.f == F::Write {
                arg(op, 0)
            } else {
                arg(op, 1)
            };
            !rest.iter().any(|o| {
                (o.f == F::Read && o.result == Res::Int(v)) || (o.f == F::Cas && arg(o, 0) == v)
            })
        }
        (ModelKind::List, F::Append) => {
            let v = arg(op, 0);
            !rest.iter().any(|o| match &o.result {
                Res::List(l) => l.contains(&v),
                _ => false,
            })
        }
        _ => false,
    }
}

/// A smaller sub-history of one key's non-linearizable `ops` that is still not
/// linearizable: the shortest failing prefix (by invocation), then greedy
/// removal of operations nothing remaining depends on. Bounded by `time`.
pub fn minimize(kind: ModelKind, ops: &[Op], time: Duration) -> Vec<Op> {
    let end = Instant::now() + time;
    let fails = |sub: &[Op]| {
        let left = end.saturating_duration_since(Instant::now());
        let b = Budget::new(left.min(Duration::from_millis(500)), 2_000_000);
        check_kind(kind, sub, &b) == Verdict::NotLinearizable
    };
    let mut cur: Vec<Op> = ops.to_vec();
    cur.sort_by_key(|o| o.invoke_ns);
    if !fails(&cur) {
        return cur;
    }
    // Shortest failing prefix: invariant: cur[..hi] fails, cur[..lo] passes.
    let (mut lo, mut hi) = (0usize, cur.len());
    while hi - lo > 1 && Instant::now() < end {
        let mid = (lo + hi) / 2;
        if fails(&cur[..mid]) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    cur.truncate(hi);
    // Greedy removal, big chunks first, from the end backwards (so that a
    // chain of CASes unravels from its last link in one pass).
    let mut chunk = (cur.len() / 2).max(1);
    loop {
        let mut j = cur.len();
        while j > 0 && Instant::now() < end {
            let i = j.saturating_sub(chunk);
            let rest: Vec<&Op> = cur[..i].iter().chain(cur[j..].iter()).collect();
            let all_removable = cur[i..j].iter().all(|o| removable(kind, o, &rest));
            if all_removable {
                let cand: Vec<Op> = rest.into_iter().cloned().collect();
                if fails(&cand) {
                    cur = cand;
                    j = i.min(cur.len());
                    continue;
                }
            }
            j = i;
        }
        if chunk == 1 || Instant::now() >= end {
            break;
        }
        chunk /= 2;
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jepsen::history::{ModelKind as K, OpType as T};

    fn op(model: K, f: F, arg: &[i64], result: Res, kind: T, t: (u64, u64)) -> Op {
        Op {
            index: 0,
            process: 0,
            model,
            f,
            key: "k".into(),
            arg: arg.to_vec(),
            result,
            kind,
            invoke_ns: t.0,
            complete_ns: if kind == T::Info { None } else { Some(t.1) },
            note: None,
        }
    }
    fn w(v: i64, t: (u64, u64)) -> Op {
        op(K::Register, F::Write, &[v], Res::Nil, T::Ok, t)
    }
    fn winfo(v: i64, t0: u64) -> Op {
        op(K::Register, F::Write, &[v], Res::Nil, T::Info, (t0, 0))
    }
    fn r(v: Option<i64>, t: (u64, u64)) -> Op {
        let res = v.map(Res::Int).unwrap_or(Res::Nil);
        op(K::Register, F::Read, &[], res, T::Ok, t)
    }
    fn cas(a: i64, b: i64, t: (u64, u64)) -> Op {
        op(K::Register, F::Cas, &[a, b], Res::Nil, T::Ok, t)
    }
    fn inc(d: i64, res: i64, t: (u64, u64)) -> Op {
        op(K::Counter, F::Incr, &[d], Res::Int(res), T::Ok, t)
    }
    fn app(v: i64, t: (u64, u64)) -> Op {
        op(K::List, F::Append, &[v], Res::Nil, T::Ok, t)
    }
    fn lr(v: &[i64], t: (u64, u64)) -> Op {
        op(K::List, F::Read, &[], Res::List(v.to_vec()), T::Ok, t)
    }
    fn check(h: &[Op]) -> Verdict {
        overall(&check_history(h, Duration::from_secs(10), 10_000_000))
    }
    use Verdict::{Linearizable as LIN, NotLinearizable as NOT};

    #[test]
    fn sequential_register() {
        assert_eq!(check(&[w(1, (0, 10)), r(Some(1), (20, 30))]), LIN);
        assert_eq!(check(&[r(None, (0, 5)), w(1, (10, 20))]), LIN);
    }

    #[test]
    fn stale_read() {
        let h = [w(1, (0, 10)), w(2, (20, 30)), r(Some(1), (40, 50))];
        assert_eq!(check(&h), NOT);
    }

    #[test]
    fn lost_write() {
        assert_eq!(check(&[w(1, (0, 10)), r(None, (20, 30))]), NOT);
    }

    #[test]
    fn read_of_unacknowledged_value_that_vanished() {
        // An info write may or may not happen, but once read it happened.
        let h = [winfo(3, 0), r(Some(3), (10, 20)), r(None, (30, 40))];
        assert_eq!(check(&h), NOT);
        // Never observed: fine either way.
        assert_eq!(check(&[winfo(3, 0), r(None, (30, 40))]), LIN);
        assert_eq!(check(&[winfo(3, 0), r(Some(3), (30, 40))]), LIN);
        // A value nobody wrote.
        assert_eq!(check(&[w(1, (0, 10)), r(Some(7), (20, 30))]), NOT);
    }

    #[test]
    fn info_write_may_land_late() {
        let h = [
            w(1, (0, 10)),
            winfo(2, 20),
            r(Some(1), (30, 40)),
            r(Some(2), (50, 60)),
            r(Some(2), (70, 80)),
        ];
        assert_eq!(check(&h), LIN);
        // ...but not flip back.
        let h = [
            w(1, (0, 10)),
            winfo(2, 20),
            r(Some(2), (30, 40)),
            r(Some(1), (50, 60)),
        ];
        assert_eq!(check(&h), NOT);
    }

    #[test]
    fn concurrent_overlaps() {
        // Read concurrent with the write may see either value.
        let h = [w(1, (0, 100)), r(None, (10, 20)), r(Some(1), (30, 40))];
        assert_eq!(check(&h), LIN);
        let h = [w(1, (0, 100)), r(Some(1), (10, 20)), r(None, (30, 40))];
        assert_eq!(check(&h), NOT);
        let h = [w(1, (0, 100)), r(None, (10, 50)), r(Some(1), (10, 50))];
        assert_eq!(check(&h), LIN);
        // Two concurrent writes, reads must agree on one order.
        let h = [
            w(1, (0, 50)),
            w(2, (0, 50)),
            r(Some(1), (60, 70)),
            r(Some(2), (80, 90)),
        ];
        assert_eq!(check(&h), NOT);
        let h = [
            w(1, (0, 50)),
            w(2, (0, 50)),
            r(Some(2), (10, 20)),
            r(Some(1), (30, 40)),
        ];
        assert_eq!(check(&h), LIN);
    }

    #[test]
    fn compare_and_set() {
        let h = [w(1, (0, 10)), cas(1, 2, (20, 30)), r(Some(2), (40, 50))];
        assert_eq!(check(&h), LIN);
        let h = [w(1, (0, 10)), cas(1, 2, (20, 30)), cas(1, 3, (40, 50))];
        assert_eq!(check(&h), NOT);
        // Concurrent CASes from the same value: only one can succeed.
        let h = [w(1, (0, 10)), cas(1, 2, (20, 60)), cas(1, 3, (20, 60))];
        assert_eq!(check(&h), NOT);
    }

    #[test]
    fn counters() {
        let h = [
            inc(1, 1, (0, 10)),
            inc(2, 3, (20, 30)),
            op(K::Counter, F::Read, &[], Res::Int(3), T::Ok, (40, 50)),
        ];
        assert_eq!(check(&h), LIN);
        assert_eq!(check(&[inc(1, 1, (0, 10)), inc(1, 1, (20, 30))]), NOT);
        assert_eq!(check(&[inc(1, 2, (0, 30)), inc(1, 1, (10, 40))]), LIN);
        // Increment lost by a restart: the next one starts from 0 again.
        let h = [inc(5, 5, (0, 10)), inc(1, 1, (20, 30))];
        assert_eq!(check(&h), NOT);
        // An unknown increment may count...
        let h = [
            op(K::Counter, F::Incr, &[4], Res::Nil, T::Info, (0, 0)),
            inc(1, 5, (20, 30)),
        ];
        assert_eq!(check(&h), LIN);
    }

    #[test]
    fn lists() {
        let base = [app(1, (0, 10)), app(2, (20, 30))];
        let with = |read: Op| {
            let mut h = base.to_vec();
            h.push(read);
            check(&h)
        };
        assert_eq!(with(lr(&[1, 2], (40, 50))), LIN);
        assert_eq!(with(lr(&[2, 1], (40, 50))), NOT, "reordered");
        assert_eq!(with(lr(&[1, 1, 2], (40, 50))), NOT, "duplicated");
        assert_eq!(with(lr(&[1], (40, 50))), NOT, "lost");
        assert_eq!(with(lr(&[1], (25, 50))), LIN, "concurrent with append 2");
    }

    #[test]
    fn keys_are_independent() {
        let mut a = w(1, (0, 10));
        a.key = "a".into();
        let mut b = r(None, (20, 30));
        b.key = "b".into();
        assert_eq!(check(&[a.clone(), b]), LIN);
        let mut c = r(None, (20, 30));
        c.key = "a".into();
        assert_eq!(check(&[a, c]), NOT);
    }

    #[test]
    fn fail_ops_are_ignored() {
        let mut f = w(9, (0, 10));
        f.kind = T::Fail;
        assert_eq!(check(&[f, r(None, (20, 30))]), LIN);
    }

    #[test]
    fn budget_gives_unknown() {
        // Many concurrent unknown writes and an impossible read: the search
        // has to try every order before saying no.
        let mut h: Vec<Op> = (0..40).map(|i| winfo(i, 0)).collect();
        h.push(r(Some(1000), (10, 20)));
        let v = overall(&check_history(&h, Duration::from_secs(5), 2_000));
        assert_eq!(v, Verdict::Unknown);
    }

    #[test]
    fn minimize_keeps_the_violation_small() {
        let mut h = Vec::new();
        for i in 0..200u64 {
            h.push(w(i as i64, (i * 100, i * 100 + 10)));
            h.push(r(Some(i as i64), (i * 100 + 20, i * 100 + 30)));
        }
        // A restart: everything gone.
        h.push(r(None, (30_000, 30_010)));
        for i in 300..320u64 {
            h.push(w(i as i64, (i * 100, i * 100 + 10)));
        }
        assert_eq!(check(&h), NOT);
        let m = minimize(K::Register, &h, Duration::from_secs(10));
        assert_eq!(check(&m), NOT);
        assert!(m.len() <= 3, "minimized to {} ops: {m:?}", m.len());
        assert!(m.iter().any(|o| o.f == F::Read && o.result == Res::Nil));
    }
}

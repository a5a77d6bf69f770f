//! Lost acknowledged writes, judged against the final reads taken after the
//! cluster healed (process -2 in the history), and the list anomalies of
//! Jepsen's Redis-Raft append test (duplicated, unknown, reordered elements).

use super::history::{ModelKind, Op, OpType, Res, F};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What the final-state checks found.
#[derive(Debug, Default, Clone)]
pub struct LostReport {
    /// Acknowledged writes missing from the final state.
    pub lost_acked: usize,
    /// One line per lost write or anomaly.
    pub details: Vec<String>,
    /// Anomalies other than lost writes (duplicates, phantoms, reordering).
    pub anomalies: usize,
    /// Keys with writes but no successful final read.
    pub unread_keys: usize,
}

pub const FINAL_PROCESS: i64 = -2;

/// Runs every final-state check on a whole history.
pub fn check_lost(ops: &[Op]) -> LostReport {
    let mut by_key: BTreeMap<(ModelKind, &str), Vec<&Op>> = BTreeMap::new();
    for op in ops {
        if op.model != ModelKind::Nemesis {
            by_key.entry((op.model, &op.key)).or_default().push(op);
        }
    }
    let mut rep = LostReport::default();
    for ((model, key), kops) in by_key {
        let fin = kops
            .iter()
            .rev()
            .find(|o| o.process == FINAL_PROCESS && o.kind == OpType::Ok && o.f == F::Read);
        let writes = kops.iter().any(|o| o.f != F::Read && o.kind == OpType::Ok);
        if model == ModelKind::List {
            list_anomalies(key, &kops, &mut rep);
        }
        let Some(fin) = fin else {
            if writes {
                rep.unread_keys += 1;
            }
            continue;
        };
        match model {
            ModelKind::Register => register(key, &kops, fin, &mut rep),
            ModelKind::Counter => counter(key, &kops, fin, &mut rep),
            ModelKind::List => list_final(key, &kops, fin, &mut rep),
            ModelKind::Nemesis => {}
        }
    }
    rep
}

fn written(op: &Op) -> Option<i64> {
    match op.f {
        F::Write => op.arg.first().copied(),
        F::Cas => op.arg.get(1).copied(),
        _ => None,
    }
}

fn register(key: &str, kops: &[&Op], fin: &Op, rep: &mut LostReport) {
    let acked: Vec<&&Op> = kops
        .iter()
        .filter(|o| o.kind == OpType::Ok && written(o).is_some())
        .collect();
    match &fin.result {
        Res::Int(v) => {
            let source = kops
                .iter()
                .filter(|o| o.kind != OpType::Fail && written(o) == Some(*v))
                .map(|o| o.complete_ns.unwrap_or(u64::MAX))
                .max();
            let Some(done) = source else {
                rep.anomalies += 1;
                rep.details
                    .push(format!("register {key}: final value {v} was never written"));
                return;
            };
            let later: Vec<&&&Op> = acked.iter().filter(|o| o.invoke_ns > done).collect();
            if !later.is_empty() {
                rep.lost_acked += later.len();
                rep.details.push(format!(
                    "register {key}: final value {v}, but {} acknowledged write(s) began after it was written (last: {})",
                    later.len(),
                    later.last().map(|o| o.describe()).unwrap_or_default()
                ));
            }
        }
        _ => {
            if let Some(last) = acked.last() {
                rep.lost_acked += 1;
                rep.details.push(format!(
                    "register {key}: key missing at the end after {} acknowledged write(s) (last: {})",
                    acked.len(),
                    last.describe()
                ));
            }
        }
    }
}

fn counter(key: &str, kops: &[&Op], fin: &Op, rep: &mut LostReport) {
    let sum = |t: OpType| -> i64 {
        kops.iter()
            .filter(|o| o.f == F::Incr && o.kind == t)
            .map(|o| o.arg.first().copied().unwrap_or(0))
            .sum()
    };
    let (acked, unknown) = (sum(OpType::Ok), sum(OpType::Info));
    let n_acked = kops
        .iter()
        .filter(|o| o.f == F::Incr && o.kind == OpType::Ok)
        .count();
    let v = match fin.result {
        Res::Int(v) => v,
        _ => 0,
    };
    if v < acked {
        rep.lost_acked += 1;
        rep.details.push(format!(
            "counter {key}: final value {v} < {acked}, the sum of {n_acked} acknowledged increments (+{unknown} unknown)"
        ));
    } else if v > acked + unknown {
        rep.anomalies += 1;
        rep.details.push(format!(
            "counter {key}: final value {v} > {acked} acknowledged + {unknown} unknown increments"
        ));
    }
}

fn list_final(key: &str, kops: &[&Op], fin: &Op, rep: &mut LostReport) {
    let fl: HashSet<i64> = match &fin.result {
        Res::List(l) => l.iter().copied().collect(),
        _ => HashSet::new(),
    };
    let missing: Vec<i64> = kops
        .iter()
        .filter(|o| o.f == F::Append && o.kind == OpType::Ok)
        .filter_map(|o| o.arg.first().copied())
        .filter(|v| !fl.contains(v))
        .collect();
    if !missing.is_empty() {
        rep.lost_acked += missing.len();
        let shown: Vec<String> = missing.iter().take(10).map(|v| v.to_string()).collect();
        rep.details.push(format!(
            "list {key}: {} acknowledged append(s) missing from the final read: {}{}",
            missing.len(),
            shown.join(" "),
            if missing.len() > 10 { " ..." } else { "" }
        ));
    }
}

fn list_anomalies(key: &str, kops: &[&Op], rep: &mut LostReport) {
    let appended: HashSet<i64> = kops
        .iter()
        .filter(|o| o.f == F::Append && o.kind != OpType::Fail)
        .filter_map(|o| o.arg.first().copied())
        .collect();
    let mut reads: Vec<(&Op, &Vec<i64>)> = Vec::new();
    for o in kops {
        if let (F::Read, OpType::Ok, Res::List(l)) = (o.f, o.kind, &o.result) {
            reads.push((o, l));
        }
    }
    for (o, l) in &reads {
        let mut seen: HashMap<i64, usize> = HashMap::new();
        for v in l.iter() {
            *seen.entry(*v).or_default() += 1;
        }
        let dups = seen.values().filter(|c| **c > 1).count();
        if dups > 0 {
            rep.anomalies += 1;
            rep.details.push(format!(
                "list {key}: {dups} duplicated element(s) in {}",
                o.describe()
            ));
        }
        let phantom = l.iter().filter(|v| !appended.contains(v)).count();
        if phantom > 0 {
            rep.anomalies += 1;
            rep.details.push(format!(
                "list {key}: {phantom} element(s) never appended in {}",
                o.describe()
            ));
        }
    }
    // The list only grows: every read is a prefix of every longer one.
    // Reads in invocation order: a later read that is not an extension of
    // an earlier, completed one lost or reordered elements.
    reads.sort_by_key(|(o, _)| o.invoke_ns);
    let mut broken = 0;
    let mut example = None;
    for pair in reads.windows(2) {
        let ((a, la), (b, lb)) = (pair[0], pair[1]);
        let done_before = a.complete_ns.is_some_and(|c| c < b.invoke_ns);
        let (short, long) = if la.len() <= lb.len() {
            (la, lb)
        } else {
            (lb, la)
        };
        let prefix = long.starts_with(short);
        let shrank = done_before && lb.len() < la.len();
        if !prefix || shrank {
            broken += 1;
            if example.is_none() {
                example = Some(format!("{}\n      then {}", a.describe(), b.describe()));
            }
        }
    }
    if broken > 0 {
        rep.anomalies += 1;
        rep.details.push(format!(
            "list {key}: {broken} read(s) not extending the previous one (lost or reordered elements), e.g.\n      {}",
            example.unwrap_or_default()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(model: ModelKind, f: F, arg: &[i64], result: Res, kind: OpType, t: u64, p: i64) -> Op {
        Op {
            index: 0,
            process: p,
            model,
            f,
            key: "k".into(),
            arg: arg.to_vec(),
            result,
            kind,
            invoke_ns: t,
            complete_ns: (kind != OpType::Info).then_some(t + 5),
            note: None,
        }
    }
    use ModelKind::*;
    use OpType::*;

    #[test]
    fn register_lost_and_kept() {
        let h = [
            op(Register, F::Write, &[1], Res::Nil, Ok, 0, 0),
            op(Register, F::Write, &[2], Res::Nil, Ok, 10, 0),
            op(Register, F::Read, &[], Res::Int(2), Ok, 20, FINAL_PROCESS),
        ];
        assert_eq!(check_lost(&h).lost_acked, 0);
        let mut h2 = h.clone();
        h2[2].result = Res::Int(1);
        assert_eq!(check_lost(&h2).lost_acked, 1);
        h2[2].result = Res::Nil;
        assert_eq!(check_lost(&h2).lost_acked, 1);
    }

    #[test]
    fn counter_lost() {
        let h = [
            op(Counter, F::Incr, &[3], Res::Int(3), Ok, 0, 0),
            op(Counter, F::Incr, &[4], Res::Nil, Info, 10, 0),
            op(Counter, F::Read, &[], Res::Int(7), Ok, 20, FINAL_PROCESS),
        ];
        assert_eq!(check_lost(&h).lost_acked, 0);
        let mut h2 = h.clone();
        h2[2].result = Res::Int(0);
        assert_eq!(check_lost(&h2).lost_acked, 1);
        h2[2].result = Res::Int(8);
        let r = check_lost(&h2);
        assert_eq!((r.lost_acked, r.anomalies), (0, 1));
    }

    #[test]
    fn list_lost_duplicated_reordered() {
        let h = [
            op(List, F::Append, &[1], Res::Nil, Ok, 0, 0),
            op(List, F::Append, &[2], Res::Nil, Ok, 10, 0),
            op(List, F::Read, &[], Res::List(vec![1, 2]), Ok, 20, 1),
            op(
                List,
                F::Read,
                &[],
                Res::List(vec![1, 2]),
                Ok,
                30,
                FINAL_PROCESS,
            ),
        ];
        let r = check_lost(&h);
        assert_eq!((r.lost_acked, r.anomalies), (0, 0), "{:?}", r.details);
        let mut h2 = h.clone();
        h2[3].result = Res::List(vec![2]);
        let r = check_lost(&h2);
        assert_eq!((r.lost_acked, r.anomalies), (1, 1), "{:?}", r.details);
        h2[3].result = Res::List(vec![1, 2, 2]);
        assert_eq!(check_lost(&h2).anomalies, 1);
        h2[3].result = Res::List(vec![2, 1]);
        let r = check_lost(&h2);
        assert_eq!((r.lost_acked, r.anomalies), (0, 1));
    }
}

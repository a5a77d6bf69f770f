//! The sorted set: members ordered by (score, member), with O(1) score lookup.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use super::value::{Elem, Map};

/// An f64 score with a total order (scores are never NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A sorted set.
#[derive(Debug, Clone, Default)]
pub struct ZSet {
    scores: Map<Elem, f64>,
    order: BTreeSet<(Score, Elem)>,
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.order == other.order
    }
}

impl ZSet {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets `member`'s score; returns the previous score, if any.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let old = self.scores.insert(member.into(), score);
        if let Some(o) = old {
            self.order.remove(&(Score(o), Elem::from(member)));
        }
        self.order.insert((Score(score), member.into()));
        old
    }

    /// Removes `member`; returns its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let old = self.scores.swap_remove(member)?;
        self.order.remove(&(Score(old), Elem::from(member)));
        Some(old)
    }

    /// Members in ascending (score, member) order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], f64)> {
        self.order.iter().map(|(s, m)| (&m[..], s.0))
    }

    /// 0-based ascending rank of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(
            self.order
                .range(..(Score(score), Elem::from(member)))
                .count(),
        )
    }

    /// The member at index `i` of the hash part (for random sampling).
    pub fn get_index(&self, i: usize) -> Option<(&[u8], f64)> {
        self.scores.get_index(i).map(|(m, s)| (&m[..], *s))
    }

    pub fn heap_size(&self) -> usize {
        self.scores.keys().map(|m| 2 * m.len() + 64).sum::<usize>() + 64
    }
}

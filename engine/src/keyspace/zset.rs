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
        // As in Redis, -0 and 0 compare equal (then by member).
        self.0.partial_cmp(&other.0).unwrap_or(Ordering::Equal)
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
        // Redis' compact encoding stores -0 as the integer 0.
        let score = if score == 0.0 { 0.0 } else { score };
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

    /// Members in ascending order starting at ascending rank `start`.
    pub fn iter_from_rank(&self, start: usize) -> impl Iterator<Item = (&[u8], f64)> {
        self.iter().skip(start)
    }

    /// Members in descending order starting at descending rank `start`.
    pub fn iter_rev_from_rank(&self, start: usize) -> impl Iterator<Item = (&[u8], f64)> {
        self.iter().rev().skip(start)
    }

    /// Members in ascending order from the first with score >= `min`.
    pub fn iter_from_score(&self, min: f64) -> impl Iterator<Item = (&[u8], f64)> {
        let lo: (Score, Elem) = (Score(min), Elem::default());
        self.order.range(lo..).map(|(s, m)| (&m[..], s.0))
    }

    /// The first (lowest) member.
    pub fn first(&self) -> Option<(&[u8], f64)> {
        self.order.first().map(|(s, m)| (&m[..], s.0))
    }

    /// The last (highest) member.
    pub fn last(&self) -> Option<(&[u8], f64)> {
        self.order.last().map(|(s, m)| (&m[..], s.0))
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

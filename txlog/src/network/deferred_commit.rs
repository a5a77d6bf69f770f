//! Holds back the leader's commit-only AppendEntries for a moment, so the
//! next batch of entries carries the new commit index instead.
//!
//! Once a batch commits, openraft's replication stream sends every follower
//! an entry-less AppendEntries that only moves its commit index forward, and
//! it sends it before the leader has answered the appender: two messages, two
//! replies and the wake-ups of three processes, in front of the reply that
//! the appender waits for, once per batch. A follower needs the commit index
//! only to apply and to serve `Tail`; Raft's safety never rests on it (a new
//! leader commits everything before its own first entry). So an entry-less
//! request waits up to [`COMMIT_HOLD`]: a request with entries that comes
//! in that time is read later, carries a commit index at least as new, and
//! replaces it; otherwise the held one goes out. openraft does not need a
//! reply per request: it matches replies to what it sent by log id, and the
//! reply to the later request acknowledges the skipped one too.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use openraft::raft::AppendEntriesRequest;
use tokio::time::{sleep_until, Instant, Sleep};

use crate::types::TypeConfig;

/// How long a commit-only request waits for a request with entries: longer
/// than the gap between a busy leader's batches (well under a millisecond),
/// short against anything that waits for a follower to learn a commit.
pub const COMMIT_HOLD: Duration = Duration::from_millis(2);

type Request = AppendEntriesRequest<TypeConfig>;

/// openraft's request stream, with commit-only requests deferred.
pub struct DeferredCommits<S> {
    input: S,
    hold: Duration,
    /// The newest commit-only request not yet sent. It must go out by the
    /// deadline of `timer`, set by the first of a run of them (so a steady
    /// run of commits still reaches the follower every `hold`).
    held: Option<Request>,
    /// One timer for the stream's life, not one per held request: a new
    /// tokio timer due before every one the runtime already waits for
    /// makes tokio wake its own driver (an eventfd write and one more turn
    /// of the event loop), which a busy leader paid twice per batch, on the
    /// way to answering the appender. Moved later while requests with
    /// entries keep replacing the held one, it stays the runtime's next
    /// timer and never needs that wake-up.
    timer: Option<Pin<Box<Sleep>>>,
    done: bool,
}

impl<S> DeferredCommits<S> {
    pub fn new(input: S, hold: Duration) -> Self {
        Self {
            input,
            hold,
            held: None,
            timer: None,
            done: false,
        }
    }
}

impl<S> Stream for DeferredCommits<S>
where
    S: Stream<Item = Request> + Unpin,
{
    type Item = Request;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Request>> {
        let this = self.get_mut();
        while !this.done {
            match Pin::new(&mut this.input).poll_next(cx) {
                Poll::Ready(Some(req)) if req.entries.is_empty() => {
                    // The newer request carries the newer commit index.
                    if this.held.replace(req).is_none() {
                        let deadline = Instant::now() + this.hold;
                        match &mut this.timer {
                            Some(t) => t.as_mut().reset(deadline),
                            None => this.timer = Some(Box::pin(sleep_until(deadline))),
                        }
                    }
                }
                Poll::Ready(Some(req)) => {
                    // Its timer is left as it is (see `timer`).
                    this.held = None;
                    return Poll::Ready(Some(req));
                }
                Poll::Ready(None) => this.done = true,
                Poll::Pending => break,
            }
        }
        if this.done {
            return Poll::Ready(this.held.take());
        }
        let due = match (&this.held, &mut this.timer) {
            (Some(_), Some(t)) => t.as_mut().poll(cx).is_ready(),
            _ => false,
        };
        if due {
            return Poll::Ready(this.held.take());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use openraft::EntryPayload;
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::UnboundedReceiverStream;

    use super::*;
    use crate::types::{test_log_id, Entry, Request as Batch, Vote};

    /// A request up to `last` (entries `first..=last`, none if `first > last`)
    /// that carries commit index `commit`.
    fn request(first: u64, last: u64, commit: u64) -> Request {
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: Some(test_log_id(first - 1)),
            entries: (first..=last)
                .map(|i| Entry {
                    log_id: test_log_id(i),
                    payload: EntryPayload::Normal(Batch { ops: vec![] }),
                })
                .collect(),
            leader_commit: Some(test_log_id(commit)),
        }
    }

    fn shape(r: &Request) -> (usize, u64) {
        (r.entries.len(), r.leader_commit.map_or(0, |c| c.index))
    }

    const HOLD: Duration = Duration::from_millis(200);

    fn deferred() -> (
        mpsc::UnboundedSender<Request>,
        DeferredCommits<UnboundedReceiverStream<Request>>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            tx,
            DeferredCommits::new(UnboundedReceiverStream::new(rx), HOLD),
        )
    }

    #[tokio::test]
    async fn requests_with_entries_pass_at_once_and_replace_a_held_commit() {
        let (tx, mut out) = deferred();
        tx.send(request(1, 2, 0)).unwrap();
        assert_eq!(out.next().await.as_ref().map(shape), Some((2, 0)));
        tx.send(request(3, 2, 2)).unwrap();
        tx.send(request(3, 3, 2)).unwrap();
        let started = Instant::now();
        assert_eq!(out.next().await.as_ref().map(shape), Some((1, 2)));
        assert!(started.elapsed() < HOLD);
    }

    #[tokio::test]
    async fn a_commit_alone_goes_out_after_the_hold() {
        let (tx, mut out) = deferred();
        tx.send(request(2, 1, 1)).unwrap();
        let started = Instant::now();
        assert_eq!(out.next().await.as_ref().map(shape), Some((0, 1)));
        assert!(started.elapsed() >= HOLD);
    }

    #[tokio::test]
    async fn each_run_of_commits_waits_its_own_hold_on_the_one_timer() {
        let (tx, mut out) = deferred();
        tx.send(request(2, 1, 1)).unwrap();
        tx.send(request(2, 2, 1)).unwrap();
        assert_eq!(out.next().await.as_ref().map(shape), Some((1, 1)));
        // The timer the replaced commit set runs out with nothing held.
        tokio::time::sleep(HOLD * 3 / 2).await;
        tx.send(request(3, 2, 2)).unwrap();
        let started = Instant::now();
        assert_eq!(out.next().await.as_ref().map(shape), Some((0, 2)));
        let waited = started.elapsed();
        assert!(waited >= HOLD && waited < HOLD * 3, "{waited:?}");
    }

    #[tokio::test]
    async fn a_run_of_commits_sends_the_newest_one_hold_after_the_first() {
        let (tx, mut out) = deferred();
        let started = Instant::now();
        let feeder = tokio::spawn(async move {
            for commit in 1..=20 {
                if tx.send(request(5, 4, commit)).is_err() {
                    return;
                }
                tokio::time::sleep(HOLD / 5).await;
            }
        });
        let first = out.next().await;
        let waited = started.elapsed();
        assert!(waited >= HOLD && waited < HOLD * 3, "{waited:?}");
        let commit = first.as_ref().map_or(0, |r| shape(r).1);
        assert!((2..=8).contains(&commit), "sent commit {commit}");
        feeder.abort();
    }

    #[tokio::test]
    async fn a_held_commit_goes_out_at_once_when_the_stream_ends() {
        let (tx, mut out) = deferred();
        tx.send(request(2, 1, 1)).unwrap();
        drop(tx);
        let started = Instant::now();
        assert_eq!(out.next().await.as_ref().map(shape), Some((0, 1)));
        assert!(started.elapsed() < HOLD);
        assert!(out.next().await.is_none());
    }
}

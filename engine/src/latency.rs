//! Latency monitoring, as Redis 7.0 keeps it: a latency histogram per
//! command (LATENCY HISTOGRAM, INFO latencystats; `latency-tracking`), and
//! latency events (LATENCY LATEST / HISTORY / RESET / GRAPH / DOCTOR):
//! each time a command or an expire cycle takes at least
//! `latency-monitor-threshold` milliseconds, a sample of the event.
//!
//! Like SLOWLOG this times the engine's own work; the wait for the log to
//! commit a write is not part of it.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::resp::ReplyBuf;

/// Redis' LATENCY_HISTOGRAM_MIN_VALUE / MAX_VALUE (ns) and precision.
const MIN_NS: u64 = 1;
const MAX_NS: u64 = 1_000_000_000;
const SIGFIGS: u8 = 2;

/// One command's durations, in nanoseconds.
#[derive(Debug, Clone)]
pub struct CommandHistogram(Histogram<u64>);

impl CommandHistogram {
    pub fn new() -> Option<Self> {
        Histogram::new_with_bounds(MIN_NS, MAX_NS, SIGFIGS)
            .ok()
            .map(Self)
    }

    /// Durations out of range are clamped, as Redis does.
    pub fn record(&mut self, ns: u64) {
        let _ = self.0.record(ns.clamp(MIN_NS, MAX_NS));
    }

    pub fn calls(&self) -> u64 {
        self.0.len()
    }

    /// `calls N histogram_usec {bucket: cumulative count}`, with buckets
    /// doubling from 1024 ns and the empty ones left out (Redis'
    /// fillCommandCDF).
    pub fn write(&self, out: &mut ReplyBuf) {
        let total = self.0.len();
        let mut buckets = Vec::new();
        let mut previous = 0;
        let mut level: u64 = 1024;
        while previous < total {
            let top = self.0.highest_equivalent(level);
            let cumulative = self.0.count_between(0, top);
            if cumulative > previous {
                buckets.push((top / 1000, cumulative));
            }
            previous = cumulative;
            if level > MAX_NS {
                break;
            }
            level *= 2;
        }
        out.map(2);
        out.bulk_str("calls");
        out.int(total as i64);
        out.bulk_str("histogram_usec");
        out.map(buckets.len());
        for (us, n) in buckets {
            out.int(us as i64);
            out.int(n as i64);
        }
    }

    /// INFO latencystats: `p50=1.003,p99=...` in microseconds.
    pub fn percentiles(&self, which: &[f64]) -> String {
        which
            .iter()
            .map(|p| {
                let v = self.0.value_at_percentile(*p) as f64 / 1000.0;
                format!("p{}={v:.3}", crate::numbers::fmt_double(*p))
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Samples kept per event (Redis' LATENCY_TS_LEN).
const HISTORY_LEN: usize = 160;

#[derive(Debug, Clone, Copy)]
struct Sample {
    unix_s: i64,
    ms: u64,
}

#[derive(Debug, Default)]
struct Event {
    /// Oldest first; one sample per second (the largest).
    samples: std::collections::VecDeque<Sample>,
    max_ms: u64,
}

/// The latency events (LATENCY LATEST & co).
#[derive(Debug, Default)]
pub struct LatencyEvents {
    events: BTreeMap<&'static str, Event>,
}

impl LatencyEvents {
    /// Records `ms` for `event` if the threshold (0: off) asks for it.
    pub fn add_if_needed(&mut self, event: &'static str, ms: u64, threshold_ms: i64, unix_s: i64) {
        if threshold_ms <= 0 || ms < threshold_ms as u64 {
            return;
        }
        let e = self.events.entry(event).or_default();
        e.max_ms = e.max_ms.max(ms);
        if let Some(last) = e.samples.back_mut().filter(|s| s.unix_s == unix_s) {
            last.ms = last.ms.max(ms);
            return;
        }
        if e.samples.len() == HISTORY_LEN {
            e.samples.pop_front();
        }
        e.samples.push_back(Sample { unix_s, ms });
    }

    /// LATENCY LATEST: `[event, time, latest ms, max ms]` per event.
    pub fn write_latest(&self, out: &mut ReplyBuf) {
        out.array(self.events.len());
        for (name, e) in &self.events {
            let last = e
                .samples
                .back()
                .copied()
                .unwrap_or(Sample { unix_s: 0, ms: 0 });
            out.array(4);
            out.bulk_str(name);
            out.int(last.unix_s);
            out.int(last.ms as i64);
            out.int(e.max_ms as i64);
        }
    }

    /// LATENCY HISTORY event: `[time, ms]`, oldest first.
    pub fn write_history(&self, event: &[u8], out: &mut ReplyBuf) {
        let Some(e) = self.find(event) else {
            out.array(0);
            return;
        };
        out.array(e.samples.len());
        for s in &e.samples {
            out.array(2);
            out.int(s.unix_s);
            out.int(s.ms as i64);
        }
    }

    /// LATENCY RESET [event ...]: how many events were dropped.
    pub fn reset(&mut self, events: &[bytes::Bytes]) -> usize {
        if events.is_empty() {
            let n = self.events.len();
            self.events.clear();
            return n;
        }
        let mut n = 0;
        for e in events {
            let name = self
                .events
                .keys()
                .find(|k| k.as_bytes() == e.as_ref())
                .copied();
            if let Some(k) = name {
                self.events.remove(k);
                n += 1;
            }
        }
        n
    }

    fn find(&self, event: &[u8]) -> Option<&Event> {
        self.events
            .iter()
            .find(|(k, _)| k.as_bytes() == event)
            .map(|(_, e)| e)
    }

    /// LATENCY GRAPH event: one bar per sample, oldest first, scaled to
    /// the largest, each labeled with how long ago it was.
    pub fn graph(&self, event: &[u8], now_s: i64) -> Option<String> {
        let e = self.find(event)?;
        let name = String::from_utf8_lossy(event);
        e.samples.back()?;
        let mut s = format!(
            "{name} - high {} ms, low {} ms (all time high {} ms)\n",
            e.samples.iter().map(|x| x.ms).max().unwrap_or(0),
            e.samples.iter().map(|x| x.ms).min().unwrap_or(0),
            e.max_ms
        );
        s.push_str(&"-".repeat(80));
        s.push('\n');
        let top = e.max_ms.max(1);
        for x in &e.samples {
            let width = ((x.ms * 60).div_ceil(top)) as usize;
            s.push_str(&format!(
                "{:>8} {:>6}ms |{}\n",
                ago(now_s - x.unix_s),
                x.ms,
                "#".repeat(width.max(1))
            ));
        }
        Some(s)
    }

    /// LATENCY DOCTOR: a plain report of the events seen.
    pub fn doctor(&self, threshold_ms: i64) -> String {
        if threshold_ms <= 0 {
            return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
        }
        if self.events.is_empty() {
            return format!(
                "Dave, no latency spike was observed during the lifetime of this memlog instance (threshold {threshold_ms} ms), not in the slightest bit.\n"
            );
        }
        let mut s = format!(
            "Dave, I have observed latency spikes in this memlog instance (threshold {threshold_ms} ms):\n\n"
        );
        for (i, (name, e)) in self.events.iter().enumerate() {
            let n = e.samples.len() as u64;
            let avg = e.samples.iter().map(|x| x.ms).sum::<u64>() / n.max(1);
            let first = e.samples.front().map_or(0, |x| x.unix_s);
            let last = e.samples.back().map_or(0, |x| x.unix_s);
            s.push_str(&format!(
                "{}. {name}: {n} latency spikes (average {avg}ms, worst {}ms), over {} seconds.\n",
                i + 1,
                e.max_ms,
                last - first
            ));
        }
        s.push_str("\n\"command\" and \"fast-command\" spikes are commands that took long to run: see SLOWLOG GET. \"expire-cycle\" spikes are the active expiry of many keys at once.\n");
        s
    }
}

fn ago(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s => format!("{}h ago", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_match_redis() {
        let mut h = CommandHistogram::new().expect("histogram");
        for ns in [500, 900, 1500, 40_105_000, 5_000_000_000] {
            h.record(ns);
        }
        let mut out = ReplyBuf::new(false);
        h.write(&mut out);
        // 1 µs: 2, 2 µs: 3, 67633 µs (40 ms): 4, 1082130 µs (>= 1 s): 5.
        assert_eq!(
            String::from_utf8_lossy(&out.buf),
            "*4\r\n$5\r\ncalls\r\n:5\r\n$14\r\nhistogram_usec\r\n*8\r\n:1\r\n:2\r\n:2\r\n:3\r\n:67633\r\n:4\r\n:1082130\r\n:5\r\n"
        );
    }

    #[test]
    fn events_keep_one_sample_per_second() {
        let mut ev = LatencyEvents::default();
        ev.add_if_needed("command", 50, 0, 1);
        ev.add_if_needed("command", 5, 10, 1);
        assert!(ev.events.is_empty());
        ev.add_if_needed("command", 30, 10, 1);
        ev.add_if_needed("command", 40, 10, 1);
        ev.add_if_needed("command", 20, 10, 2);
        let e = &ev.events["command"];
        assert_eq!(e.samples.len(), 2);
        assert_eq!((e.samples[0].ms, e.samples[1].ms, e.max_ms), (40, 20, 40));
        for t in 3..400 {
            ev.add_if_needed("expire-cycle", 11, 10, t);
        }
        assert_eq!(ev.events["expire-cycle"].samples.len(), HISTORY_LEN);
        assert!(ev.graph(b"command", 10).is_some());
        assert_eq!(ev.reset(&[bytes::Bytes::from_static(b"nope")]), 0);
        assert_eq!(ev.reset(&[]), 2);
    }
}

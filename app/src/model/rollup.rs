//! A connection's heartbeat history as the dashboard reads it, so that a read costs the same
//! however many heartbeats a day holds: per hour, how many heartbeats ran and were answered,
//! each one's health counted, and the round trips in a histogram whose buckets grow about 1.5×
//! (p50/p95 over 24 hours come from 24 rows, not from every heartbeat). And each direction's
//! current Down streak (since when, how many heartbeats in a row), kept with the last heartbeat,
//! so the issue a Down direction opens needs no history at all.
use chrono::{DateTime, Utc};

use super::health::Health;
use super::state::LinkStatus;

/// The round-trip histogram's bucket upper bounds in ms (a bucket holds (previous, bound]); one
/// more bucket holds everything above the last. The database has a column per bucket
/// (`rtt_00` … `rtt_27`, migration 0019): changing these needs a migration.
pub const RTT_BOUNDS_MS: [i64; 27] = [
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1_000, 1_500, 2_000,
    3_000, 5_000, 7_000, 10_000, 15_000, 20_000, 30_000,
];
pub const RTT_BUCKETS: usize = RTT_BOUNDS_MS.len() + 1;

/// The bucket a round trip of `ms` is counted in.
pub fn rtt_bucket(ms: i64) -> usize {
    RTT_BOUNDS_MS.partition_point(|&bound| bound < ms)
}

/// The histogram column a bucket is stored in.
pub fn rtt_column(bucket: usize) -> String {
    format!("rtt_{bucket:02}")
}

/// What one heartbeat adds to its hour: one heartbeat, answered or not, one of its health (when
/// it showed one), and its round trip's bucket when answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub answered: bool,
    pub health: Option<Health>,
    pub bucket: Option<usize>,
}

impl Counted {
    pub fn of(outbound_ms: Option<i64>, outbound: LinkStatus, inbound: LinkStatus) -> Self {
        Counted {
            answered: outbound_ms.is_some(),
            health: Health::of(outbound, inbound),
            bucket: outbound_ms.map(rtt_bucket),
        }
    }
}

/// One connection's heartbeats in one hour (or, summed up by the database, over several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourRollup {
    pub hour: DateTime<Utc>,
    pub beats: i64,
    /// Heartbeats the provider answered (they have a round trip).
    pub answered: i64,
    /// Heartbeats by the health they showed (both directions together).
    pub up: i64,
    pub slow: i64,
    pub down: i64,
    pub min_ms: Option<i64>,
    pub max_ms: Option<i64>,
    /// Answered heartbeats per round-trip bucket (`RTT_BOUNDS_MS`).
    pub rtt: [i64; RTT_BUCKETS],
}

impl HourRollup {
    pub fn empty(hour: DateTime<Utc>) -> Self {
        HourRollup {
            hour,
            beats: 0,
            answered: 0,
            up: 0,
            slow: 0,
            down: 0,
            min_ms: None,
            max_ms: None,
            rtt: [0; RTT_BUCKETS],
        }
    }

    /// Counts one heartbeat in (the database does the same with one upsert, `Counted`'s columns).
    pub fn count(&mut self, outbound_ms: Option<i64>, outbound: LinkStatus, inbound: LinkStatus) {
        let counted = Counted::of(outbound_ms, outbound, inbound);
        self.beats += 1;
        self.answered += i64::from(counted.answered);
        match counted.health {
            Some(Health::Up) => self.up += 1,
            Some(Health::Slow) => self.slow += 1,
            Some(Health::Down) => self.down += 1,
            None => {}
        }
        if let (Some(bucket), Some(ms)) = (counted.bucket, outbound_ms) {
            if let Some(n) = self.rtt.get_mut(bucket) {
                *n += 1;
            }
            self.min_ms = combine(self.min_ms, Some(ms), i64::min);
            self.max_ms = combine(self.max_ms, Some(ms), i64::max);
        }
    }

    /// The worst health a heartbeat showed in it; None when none showed one.
    pub fn worst(&self) -> Option<Health> {
        [
            (self.down, Health::Down),
            (self.slow, Health::Slow),
            (self.up, Health::Up),
        ]
        .into_iter()
        .find(|(n, _)| *n > 0)
        .map(|(_, h)| h)
    }

    /// The round trips' nearest-rank percentile `p` (0–100), placed linearly within its bucket
    /// and kept within the smallest and largest seen (so a steady round trip reads exactly);
    /// None when no heartbeat was answered.
    pub fn percentile(&self, p: u8) -> Option<i64> {
        let total: i64 = self.rtt.iter().sum();
        if total == 0 {
            return None;
        }
        // Signed div_ceil is unstable; the product is never negative.
        let rank = ((i64::from(p.min(100)) * total + 99) / 100).max(1);
        let mut before = 0;
        for (bucket, &count) in self.rtt.iter().enumerate() {
            if count == 0 || before + count < rank {
                before += count;
                continue;
            }
            let lower = bucket
                .checked_sub(1)
                .and_then(|b| RTT_BOUNDS_MS.get(b))
                .copied()
                .unwrap_or(0);
            let upper = RTT_BOUNDS_MS
                .get(bucket)
                .copied()
                .or(self.max_ms)
                .unwrap_or(lower)
                .max(lower);
            let within = (upper - lower) * (rank - before) / count;
            let value = lower + within;
            let value = self.max_ms.map_or(value, |max| value.min(max));
            return Some(self.min_ms.map_or(value, |min| value.max(min)));
        }
        None
    }
}

fn combine(a: Option<i64>, b: Option<i64>, pick: fn(i64, i64) -> i64) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

/// A direction Down for every heartbeat since `since`: `beats` of them, the last at `last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownStreak {
    pub since: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub beats: i64,
}

/// A connection's latest heartbeat and what follows from its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatestBeat {
    pub at: Option<DateTime<Utc>>,
    /// Its round trip, None when the provider did not answer it.
    pub round_trip_ms: Option<i64>,
    /// The last heartbeat the provider answered, however long ago.
    pub answered_at: Option<DateTime<Utc>>,
    pub outbound_down: Option<DownStreak>,
    pub inbound_down: Option<DownStreak>,
}

impl LatestBeat {
    /// After a heartbeat at `at` that showed these statuses: it is the latest, answered or not,
    /// and a direction Down carries on its streak (or starts one); Up or Slow ends it.
    pub fn after(
        self,
        at: DateTime<Utc>,
        round_trip_ms: Option<i64>,
        (outbound, inbound): (LinkStatus, LinkStatus),
    ) -> LatestBeat {
        let streak = |before: Option<DownStreak>, now: LinkStatus| {
            (now == LinkStatus::Down).then(|| DownStreak {
                since: before.map_or(at, |s| s.since),
                last: at,
                beats: before.map_or(0, |s| s.beats) + 1,
            })
        };
        LatestBeat {
            at: Some(at),
            round_trip_ms,
            answered_at: if round_trip_ms.is_some() {
                Some(at)
            } else {
                self.answered_at
            },
            outbound_down: streak(self.outbound_down, outbound),
            inbound_down: streak(self.inbound_down, inbound),
        }
    }
}

#[cfg(test)]
mod tests;

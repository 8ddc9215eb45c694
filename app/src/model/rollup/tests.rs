use chrono::TimeZone;

use super::*;

fn hour() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0)
        .single()
        .expect("time")
}

/// An hour of answered heartbeats with these round trips, all Up.
fn answered(round_trips: &[i64]) -> HourRollup {
    let mut r = HourRollup::empty(hour());
    for &ms in round_trips {
        r.count(Some(ms), LinkStatus::Up, LinkStatus::Up);
    }
    r
}

#[test]
fn buckets_hold_previous_bound_exclusive_to_bound_inclusive() {
    assert_eq!(rtt_bucket(0), 0);
    assert_eq!(rtt_bucket(1), 0);
    assert_eq!(rtt_bucket(2), 1);
    assert_eq!(rtt_bucket(11), 6);
    assert_eq!(rtt_bucket(15), 6);
    assert_eq!(rtt_bucket(30_000), RTT_BUCKETS - 2);
    assert_eq!(rtt_bucket(30_001), RTT_BUCKETS - 1);
    assert_eq!(rtt_bucket(i64::MAX), RTT_BUCKETS - 1);
    assert_eq!(rtt_column(7), "rtt_07");
    assert_eq!(rtt_column(RTT_BUCKETS - 1), "rtt_27");
}

#[test]
fn a_steady_round_trip_reads_exactly() {
    let r = answered(&[12; 100]);
    assert_eq!(r.percentile(50), Some(12));
    assert_eq!(r.percentile(95), Some(12));
}

#[test]
fn percentiles_land_in_the_right_bucket_and_stay_within_what_was_seen() {
    // 90 fast (8 ms) and 10 slow (1,200 ms): p50 in the fast bucket, p95 in the slow one.
    let mut trips = vec![8; 90];
    trips.extend([1_200; 10]);
    let r = answered(&trips);
    let p50 = r.percentile(50).expect("p50");
    let p95 = r.percentile(95).expect("p95");
    assert!((8..=10).contains(&p50), "p50 {p50}");
    assert!((1_000..=1_200).contains(&p95), "p95 {p95}");
    assert_eq!(r.percentile(100), Some(1_200));
    assert_eq!(r.percentile(0), Some(8));
}

#[test]
fn percentiles_are_close_to_exact_ones_over_a_spread() {
    // 1..=1000 ms evenly: exact p50 500, p95 950; the histogram's within a bucket's width.
    let trips: Vec<i64> = (1..=1000).collect();
    let r = answered(&trips);
    let p50 = r.percentile(50).expect("p50");
    let p95 = r.percentile(95).expect("p95");
    assert!((300..=700).contains(&p50), "p50 {p50}");
    assert!((700..=1_000).contains(&p95), "p95 {p95}");
    assert!(p50 < p95);
}

#[test]
fn above_the_last_bound_reads_up_to_the_largest_seen() {
    let r = answered(&[45_000, 50_000]);
    let p95 = r.percentile(95).expect("p95");
    assert!((30_000..=50_000).contains(&p95), "p95 {p95}");
}

#[test]
fn no_answer_no_percentile() {
    let mut r = HourRollup::empty(hour());
    for _ in 0..5 {
        r.count(None, LinkStatus::Down, LinkStatus::Up);
    }
    assert_eq!((r.beats, r.answered, r.down), (5, 0, 5));
    assert_eq!(r.percentile(50), None);
    assert_eq!(r.worst(), Some(Health::Down));
}

#[test]
fn an_hour_counts_each_heartbeat_and_the_worst_wins() {
    let mut r = answered(&[5, 5]);
    assert_eq!(r.worst(), Some(Health::Up));
    r.count(Some(2_000), LinkStatus::Slow, LinkStatus::Up);
    assert_eq!((r.beats, r.answered), (3, 3));
    assert_eq!((r.min_ms, r.max_ms), (Some(5), Some(2_000)));
    assert_eq!(r.worst(), Some(Health::Slow));
    assert_eq!(r.percentile(50), Some(5));
    r.count(None, LinkStatus::Down, LinkStatus::Down);
    assert_eq!(r.worst(), Some(Health::Down));
    assert_eq!((r.beats, r.answered), (4, 3));
    assert_eq!(r.hour, hour());
    assert_eq!(HourRollup::empty(hour()).worst(), None);
}

#[test]
fn a_heartbeat_before_onboarding_counts_without_a_health() {
    let counted = Counted::of(Some(40), LinkStatus::NotOnboarded, LinkStatus::Up);
    assert_eq!(counted.health, None);
    assert_eq!(counted.bucket, Some(rtt_bucket(40)));
    assert!(counted.answered);
}

fn minute(m: i64) -> DateTime<Utc> {
    hour() + chrono::Duration::minutes(m)
}

#[test]
fn a_down_streak_runs_from_the_first_missed_heartbeat_and_an_answer_ends_it() {
    use LinkStatus::{Down, Slow, Up};
    let mut latest = LatestBeat::default();
    latest = latest.after(minute(1), Some(20), (Up, Up));
    assert_eq!(latest.answered_at, Some(minute(1)));
    assert_eq!(latest.outbound_down, None);
    latest = latest.after(minute(2), None, (Down, Down));
    latest = latest.after(minute(3), None, (Down, Up));
    latest = latest.after(minute(4), None, (Down, Down));
    let out = latest.outbound_down.expect("outbound down");
    assert_eq!((out.since, out.last, out.beats), (minute(2), minute(4), 3));
    // Inbound came back at 3 and went again at 4: its streak starts anew.
    let inbound = latest.inbound_down.expect("inbound down");
    assert_eq!((inbound.since, inbound.beats), (minute(4), 1));
    // No answer since 1; the latest has no round trip.
    assert_eq!(latest.answered_at, Some(minute(1)));
    assert_eq!((latest.at, latest.round_trip_ms), (Some(minute(4)), None));
    // Answered, even late (Slow): both streaks end.
    latest = latest.after(minute(5), Some(3_000), (Slow, Up));
    assert_eq!((latest.outbound_down, latest.inbound_down), (None, None));
    assert_eq!(latest.answered_at, Some(minute(5)));
}

#[test]
fn the_migration_fills_the_same_buckets() {
    // Migration 0019 fills the roll-ups from the heartbeats kept before it, with its own copy of
    // the bounds (SQL): both backends' copies must say what `RTT_BOUNDS_MS` says.
    for sql in [
        include_str!("../../../migrations/sqlite/0019_heartbeat_rollups.sql"),
        include_str!("../../../migrations/postgres/0019_heartbeat_rollups.sql"),
    ] {
        assert!(sql.contains(&format!("outbound_ms <= {}", RTT_BOUNDS_MS[0])));
        for pair in RTT_BOUNDS_MS.windows(2) {
            let bucket = format!("outbound_ms > {} AND outbound_ms <= {}", pair[0], pair[1]);
            assert!(sql.contains(&bucket), "{bucket}");
        }
        let last = RTT_BOUNDS_MS[RTT_BOUNDS_MS.len() - 1];
        assert!(sql.contains(&format!("{} BIGINT", rtt_column(RTT_BUCKETS - 1))));
        assert!(sql.contains(&format!("outbound_ms > {last} THEN")));
    }
}

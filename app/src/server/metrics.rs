//! What the app records for Prometheus, named in one place: recorded here through the `metrics`
//! facade, rendered by the server at `/metrics` (`server::edge::metrics`, which installs the
//! recorder; with none installed, as in unit tests, recording does nothing). Every label value
//! comes from a closed set (check ids, outcomes, error kinds), never from what a client or a
//! provider sent.
use std::time::Duration;

use crate::model::{CheckId, CheckStatus, LinkStatus};

use super::provider_error::ProviderError;

/// Requests answered, by route template, method and status (recorded by the server).
pub const HTTP_REQUESTS: &str = "impact_http_requests_total";
/// Time to answer, by route template, method and status (recorded by the server).
pub const HTTP_DURATION: &str = "impact_http_request_duration_seconds";
/// Event streams open now.
pub const STREAMS_OPEN: &str = "impact_event_streams_open";
/// Events published to this replica's live channel (each connection's sequence number once).
pub const EVENTS_PUBLISHED: &str = "impact_events_published_total";
/// From an event's timestamp on another replica (taken as it is written, just before its
/// transaction commits) to its publication here, read from the log on that replica's
/// announcement (or on catching up after the listening connection was lost): what delivery
/// across replicas adds, and any wait of the writing transaction on the other replica.
pub const RELAY_LAG: &str = "impact_relay_lag_seconds";
/// Scan checks run (or skipped), by check id and outcome.
pub const CHECKS: &str = "impact_scan_checks_total";
/// How long each scan check took, by check id.
pub const CHECK_DURATION: &str = "impact_scan_check_duration_seconds";
/// Connection health checks (heartbeats) run, by the Outbound and Inbound they found.
pub const HEARTBEATS: &str = "impact_heartbeats_total";
/// A heartbeat's round trip to the provider's answer (answered ones only).
pub const HEARTBEAT_ROUND_TRIP: &str = "impact_heartbeat_round_trip_seconds";
/// Provider calls that failed, by kind.
pub const PROVIDER_ERRORS: &str = "impact_provider_errors_total";
/// Database connections: open in the pool, and of those idle (sampled at each scrape).
pub const DB_POOL_SIZE: &str = "impact_db_pool_connections";
pub const DB_POOL_IDLE: &str = "impact_db_pool_idle_connections";
/// Requests waiting for a turn at the admission gate (recorded by the server).
pub const ADMISSION_QUEUE: &str = "impact_admission_queue_length";

/// One check's verdict and how long it took (0 for a skipped one).
pub fn check_done(check: CheckId, outcome: CheckStatus, took: Duration) {
    ::metrics::counter!(CHECKS, "check" => check.as_str(), "outcome" => outcome.as_db())
        .increment(1);
    if outcome != CheckStatus::Skipped {
        ::metrics::histogram!(CHECK_DURATION, "check" => check.as_str()).record(took.as_secs_f64());
    }
}

/// One heartbeat: what it found, and its round trip when the provider answered.
pub fn heartbeat_done(outbound: LinkStatus, inbound: LinkStatus, round_trip: Option<Duration>) {
    ::metrics::counter!(HEARTBEATS, "outbound" => outbound.as_db(), "inbound" => inbound.as_db())
        .increment(1);
    if let Some(took) = round_trip {
        ::metrics::histogram!(HEARTBEAT_ROUND_TRIP).record(took.as_secs_f64());
    }
}

/// A provider call that failed.
pub fn provider_error(e: &ProviderError) {
    ::metrics::counter!(PROVIDER_ERRORS, "kind" => e.kind()).increment(1);
}

/// `n` events went out on the live channel.
pub fn events_published(n: u64) {
    if n > 0 {
        ::metrics::counter!(EVENTS_PUBLISHED).increment(n);
    }
}

/// An event committed on another replica went out here this long after its commit.
pub fn relayed(lag: Duration) {
    ::metrics::histogram!(RELAY_LAG).record(lag.as_secs_f64());
}

/// An event stream opened (`1.0`) or ended (`-1.0`).
pub fn streams_open_changed(by: f64) {
    ::metrics::gauge!(STREAMS_OPEN).increment(by);
}

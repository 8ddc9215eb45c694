//! `GET /metrics`: the Prometheus text format, for operators only.
//!
//! The recorder (metrics-exporter-prometheus, without its own HTTP listener) is installed once
//! per process (`handle`): the code records through the `metrics` facade, here and in the app
//! (`app::server::metrics` names every series), and this handler renders what it holds.
//!
//! Who may read it: whoever sends `Authorization: Bearer <IMPACT_METRICS_TOKEN>`. Without the
//! setting, `/metrics` answers 404 (there is nothing to read, and no token that could open it);
//! with it, a missing or wrong token is 401. A session, whatever its roles, is not the token:
//! metrics describe the whole server, not one person's view of it. The session guard lets the
//! path through (`policy`), this handler decides.
use std::{sync::OnceLock, time::Duration};

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sha2::{Digest, Sha256};

use app::server::{metrics as names, AppState};

use super::json::json_error;

pub const PATH: &str = "/metrics";

/// Bounds of the latency histograms, in seconds: from a cached page (5 ms) to a provider call
/// at its time limit (the default is 5 s) and beyond.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// IMPACT_METRICS_TOKEN: checked on construction, never shown (its `Debug` is redacted).
#[derive(Clone)]
pub struct MetricsToken(String);

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

impl MetricsToken {
    /// 16 to 256 visible ASCII characters (it travels in an HTTP header); the refusal does not
    /// repeat the value.
    pub fn from_setting(raw: &str) -> anyhow::Result<Self> {
        let ok = (16..=256).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            anyhow::bail!(
                "IMPACT_METRICS_TOKEN must be 16 to 256 characters without spaces \
                 (letters, digits, punctuation)"
            );
        }
        Ok(Self(raw.to_string()))
    }

    /// Whether `presented` is the token, in time that does not depend on where they differ:
    /// both are hashed first, so even their lengths are compared only as digests.
    fn is(&self, presented: &[u8]) -> bool {
        let (a, b) = (Sha256::digest(self.0.as_bytes()), Sha256::digest(presented));
        let differing = a
            .iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y));
        std::hint::black_box(differing) == 0
    }
}

/// The process's recorder, installed by the first call (the tests start many servers in one
/// process; all share it, as all code in a process shares the `metrics` facade). `None` when
/// another recorder was installed first, which nothing in this program does.
pub fn handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the metrics recorder could not be installed");
                    None
                }
            }
        })
        .clone()
}

/// The HELP line of each series.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        names::HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        names::HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request (for an event stream: to its start)"
    );
    describe_gauge!(names::STREAMS_OPEN, "Event streams open now");
    describe_counter!(
        names::EVENTS_PUBLISHED,
        "Connection events published to this server's live streams"
    );
    describe_counter!(
        names::CHECKS,
        "Scan checks by check id and outcome (passed, failed, error, skipped)"
    );
    describe_histogram!(
        names::CHECK_DURATION,
        Unit::Seconds,
        "Time a scan check took, by check id"
    );
    describe_counter!(names::PROVIDER_ERRORS, "Failed provider calls, by kind");
    describe_gauge!(
        names::DB_POOL_SIZE,
        "Database connections open in the pool (at the last scrape)"
    );
    describe_gauge!(
        names::DB_POOL_IDLE,
        "Database connections idle in the pool (at the last scrape)"
    );
    describe_gauge!(
        names::ADMISSION_QUEUE,
        "Requests waiting for a turn at the admission gate"
    );
    // The gauges that move by steps are shown from the start, at 0.
    metrics::gauge!(names::STREAMS_OPEN).increment(0.0);
    metrics::gauge!(names::ADMISSION_QUEUE).increment(0.0);
}

/// Histograms are kept in buckets between scrapes; drained now and then even when nobody
/// scrapes, so they cannot grow without bound. Ends when the returned task is aborted.
pub fn spawn_upkeep() -> Option<tokio::task::JoinHandle<()>> {
    let handle = handle()?;
    Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            handle.run_upkeep();
        }
    }))
}

/// What the handler needs.
#[derive(Clone)]
pub struct Metrics {
    pub token: Option<MetricsToken>,
    pub state: AppState,
}

/// `GET /metrics`.
pub async fn metrics(State(m): State<Metrics>, headers: HeaderMap) -> Response {
    let Some(token) = &m.token else {
        return json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Metrics are not served: IMPACT_METRICS_TOKEN is not set.",
        );
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    if !presented.is_some_and(|p| token.is(p)) {
        let mut res = json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Send the metrics token: Authorization: Bearer <IMPACT_METRICS_TOKEN>.",
        );
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
        return res;
    }
    let Some(handle) = handle() else {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The metrics recorder is not installed.",
        );
    };
    // Sampled now: what the pool holds at this moment.
    let pool = &m.state.db.pool;
    metrics::gauge!(names::DB_POOL_SIZE).set(f64::from(pool.size()));
    metrics::gauge!(names::DB_POOL_IDLE).set(pool.num_idle() as f64);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_must_be_long_and_plain_and_is_never_shown() {
        let token = MetricsToken::from_setting("0123456789abcdef").expect("16 characters");
        assert_eq!(format!("{token:?}"), "MetricsToken(..)");
        for bad in ["short", "with spaces in the token", &"x".repeat(257)] {
            let e = MetricsToken::from_setting(bad).expect_err(bad).to_string();
            assert!(e.starts_with("IMPACT_METRICS_TOKEN must be"), "{e}");
            assert!(!e.contains(bad), "{e}");
        }
    }

    #[test]
    fn only_the_token_itself_opens() {
        let token = MetricsToken::from_setting("0123456789abcdef").expect("token");
        assert!(token.is(b"0123456789abcdef"));
        for wrong in [
            &b""[..],
            b"0123456789abcdeF",
            b"0123456789abcdef0",
            b"0123456789abcde",
        ] {
            assert!(!token.is(wrong), "{wrong:?}");
        }
    }
}

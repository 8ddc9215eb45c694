//! `/metrics`: the operators' Prometheus text, behind their token; what a request, a scan, a
//! failing provider and an open event stream do to it. The series are process-wide and the
//! tests of this binary run side by side, so each check is "went up by at least what this test
//! did", never an exact count.
use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{spawn_with, Backend, TestApp, METRICS_TOKEN};

/// One sample line: the metric's name, its labels, its value.
type Sample = (String, BTreeMap<String, String>, f64);

/// The samples of a Prometheus text page (comments skipped). Label values are read as quoted
/// strings with their escapes, so a `}` inside one (a route template) is not taken for the end.
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| parse_line(line).unwrap_or_else(|| panic!("not a sample line: {line:?}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices();
        let mut key = String::new();
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => {
                    rest = &after[i + 1..];
                    break;
                }
                ',' => {}
                '=' => {
                    let (_, quote) = chars.next()?;
                    if quote != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        let (_, c) = chars.next()?;
                        match c {
                            '\\' => {
                                let (_, e) = chars.next()?;
                                value.push(if e == 'n' { '\n' } else { e });
                            }
                            '"' => break,
                            c => value.push(c),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                c => key.push(c),
            }
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some((name, labels, value))
}

/// The sum of `name`'s samples whose labels include all of `want`.
fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

async fn scrape_with(app: &TestApp, auth: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(format!("{}/metrics", app.base));
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    req.send().await.expect("scrape")
}

async fn scrape(app: &TestApp) -> (String, Vec<Sample>) {
    let r = scrape_with(app, Some(&format!("Bearer {METRICS_TOKEN}"))).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.headers()
    );
    let text = r.text().await.expect("text");
    let parsed = samples(&text);
    (text, parsed)
}

both_backends!(
    metrics_count_requests_by_route_and_a_scans_checks_by_outcome,
    |app: TestApp| async move {
        let (_, before) = scrape(&app).await;
        let route = [
            ("method", "GET"),
            ("route", "/api/connections/{id}"),
            ("status", "404"),
        ];
        let passed = [("check", "reachable"), ("outcome", "passed")];

        // A request for a connection that does not exist, by its template.
        assert_eq!(app.get("/api/connections/987654").await.status, 404);
        // A scan: Save on a registration link starts the checks.
        let token = app.invite("metrics@example.com", "ServiceNow Impact").await;
        let id = app.create_from_link(&token).await;
        app.wait_for_state(id, "validated").await;
        // An open event stream.
        let stream = app
            .client
            .get(format!("{}/api/connections/{id}/events", app.base))
            .send()
            .await
            .expect("stream");
        assert_eq!(stream.status(), 200);

        let (text, after) = scrape(&app).await;
        let grew = |name: &str, labels: &[(&str, &str)]| {
            value(&after, name, labels) - value(&before, name, labels)
        };
        assert!(
            grew("impact_http_requests_total", &route) >= 1.0,
            "the request is not counted:\n{text}"
        );
        assert!(
            grew("impact_http_request_duration_seconds_count", &route) >= 1.0,
            "the request's latency is not recorded:\n{text}"
        );
        // Buckets suited to web latencies, not the exporter's defaults.
        assert!(
            text.contains("impact_http_request_duration_seconds_bucket{")
                && text.contains("le=\"0.005\""),
            "{text}"
        );
        assert!(
            !text.contains("987654"),
            "a raw path (with its id) is a label"
        );
        assert!(
            grew("impact_scan_checks_total", &passed) >= 1.0,
            "the scan's checks are not counted:\n{text}"
        );
        assert!(
            grew(
                "impact_scan_check_duration_seconds_count",
                &[("check", "reachable")]
            ) >= 1.0,
            "{text}"
        );
        assert!(grew("impact_events_published_total", &[]) >= 1.0, "{text}");
        assert!(
            value(&after, "impact_event_streams_open", &[]) >= 1.0,
            "the open stream is not counted:\n{text}"
        );
        assert!(
            value(&after, "impact_db_pool_connections", &[]) >= 1.0,
            "{text}"
        );
        assert!(
            text.contains("impact_db_pool_idle_connections ")
                && text.contains("impact_admission_queue_length "),
            "{text}"
        );
        drop(stream);
    }
);

both_backends!(
    a_failing_provider_is_counted_by_the_kind_of_failure,
    |app: TestApp| async move {
        let kind = [("kind", "status")];
        let (_, before) = scrape(&app).await;
        let token = app.invite("down@example.com", "ServiceNow Impact").await;
        app.faults(json!({ "http_5xx": true })).await;
        let id = app.create_from_link(&token).await;
        app.wait_for_state(id, "validation_failed").await;
        let (text, after) = scrape(&app).await;
        assert!(
            value(&after, "impact_provider_errors_total", &kind)
                - value(&before, "impact_provider_errors_total", &kind)
                >= 1.0,
            "{text}"
        );
    }
);

both_backends!(
    metrics_need_the_operators_token,
    |app: TestApp| async move {
        for auth in [
            None,
            Some("Bearer wrong-token-of-some-length".to_string()),
            Some(format!("Bearer {METRICS_TOKEN}x")),
            Some(format!("Basic {METRICS_TOKEN}")),
            Some(METRICS_TOKEN.to_string()),
        ] {
            let r = scrape_with(&app, auth.as_deref()).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
            assert_eq!(
                r.headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer realm=\"metrics\"")
            );
            assert!(!r.text().await.unwrap_or_default().contains("impact_"));
        }
        // The administrator's session is not the token.
        let r = app
            .client
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .expect("scrape");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
);

#[tokio::test]
async fn without_a_token_configured_metrics_are_not_served() {
    let app = spawn_with(Backend::Sqlite, |c| c.metrics_token = None).await;
    for auth in [None, Some(format!("Bearer {METRICS_TOKEN}"))] {
        let r = scrape_with(&app, auth.as_deref()).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{auth:?}");
        assert!(!r.text().await.unwrap_or_default().contains("impact_"));
    }
}

#[test]
fn a_sample_line_is_read_with_braces_inside_its_labels() {
    let line =
        r#"impact_http_requests_total{method="GET",route="/api/connections/{id}",status="404"} 3"#;
    let (name, labels, v) = parse_line(line).expect("parsed");
    assert_eq!(name, "impact_http_requests_total");
    assert_eq!(labels["route"], "/api/connections/{id}");
    assert_eq!(labels["status"], "404");
    assert_eq!(v, 3.0);
    assert_eq!(parse_line("up 1").map(|s| s.2), Some(1.0));
}

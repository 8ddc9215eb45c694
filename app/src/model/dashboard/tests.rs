use chrono::TimeZone;

use super::*;
use crate::model::rollup::LatestBeat;
use crate::model::ConnectionState;

fn at(mins: i64) -> DateTime<Utc> {
    // 2026-11-28 12:00 UTC, plus minutes.
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap() + Duration::minutes(mins)
}

fn conn(id: i64, outbound: LinkStatus, inbound: LinkStatus) -> ConnectionView {
    ConnectionView {
        id,
        company: format!("Company {id}"),
        url: "http://idi.example.com".into(),
        state: ConnectionState::Validated,
        registered: true,
        onboarding: Onboarding::Complete,
        outbound,
        inbound,
        version: 1,
        created_at: at(0),
        updated_at: at(0),
    }
}

/// A connection's latest heartbeat after these, oldest first.
fn beats(oldest_first: &[(i64, LinkStatus, LinkStatus)]) -> LatestBeat {
    oldest_first.iter().fold(
        LatestBeat::default(),
        |latest, &(mins, outbound, inbound)| {
            latest.after(
                at(mins),
                (outbound != LinkStatus::Down).then_some(20),
                (outbound, inbound),
            )
        },
    )
}

fn result(check: CheckId, status: CheckStatus, mins: i64) -> CheckResult {
    CheckResult {
        check_id: check.as_str().into(),
        name: check.spec().name.into(),
        severity: check.spec().severity,
        status,
        message: format!("{status:?} at {mins}"),
        resolution: vec![],
        article: String::new(),
        duration_ms: 5,
        retryable: false,
        at: at(mins),
    }
}

use LinkStatus::{Blank, Down, NotOnboarded, Slow, Up};

#[test]
fn health_is_the_worse_direction_and_none_before_onboarding() {
    assert_eq!(Health::of(Up, Up), Some(Health::Up));
    assert_eq!(Health::of(Up, Slow), Some(Health::Slow));
    assert_eq!(Health::of(Slow, Down), Some(Health::Down));
    assert_eq!(Health::of(Down, Up), Some(Health::Down));
    assert_eq!(Health::of(Blank, Blank), None);
    assert_eq!(Health::of(NotOnboarded, Up), None);
}

#[test]
fn an_old_answer_makes_an_up_connection_slow_but_not_a_down_one_up() {
    let limit = Duration::minutes(15);
    let up = conn(1, Up, Up);
    assert_eq!(
        current_health(&up, Some(at(0)), at(10), limit),
        Some(Health::Up)
    );
    assert_eq!(
        current_health(&up, Some(at(0)), at(16), limit),
        Some(Health::Slow)
    );
    assert_eq!(current_health(&up, None, at(16), limit), Some(Health::Up));
    let down = conn(1, Down, Up);
    assert_eq!(
        current_health(&down, Some(at(0)), at(60), limit),
        Some(Health::Down)
    );
}

#[test]
fn each_hour_counts_each_connection_once_at_its_worst() {
    let now = at(30); // 12:30: the chart runs from 13:00 the day before to 12:00 today.
                      // Each connection's worst per hour (A: Down at 11:10, Up at 12:10; B: Slow at 11:20, Up at
                      // 12:20, Down a day before).
    let worst = [
        (at(-60), Health::Down),
        (at(0), Health::Up),
        (at(-60), Health::Slow),
        (at(0), Health::Up),
        (at(-25 * 60), Health::Down),
    ];
    let hours = hourly_health(now, worst);
    assert_eq!(hours.len(), 24);
    assert_eq!(hours[0].start, at(-23 * 60));
    assert_eq!(hours[23].start, at(0));
    // 11:00–12:00: A was Down once, B Slow.
    assert_eq!((hours[22].up, hours[22].slow, hours[22].down), (0, 1, 1));
    // 12:00–12:30: both Up.
    assert_eq!((hours[23].up, hours[23].slow, hours[23].down), (2, 0, 0));
    // Older than 24 hours: not on the chart.
    assert!(hours.iter().take(22).all(|h| h.up + h.slow + h.down == 0));
}

#[test]
fn a_repeated_finding_is_one_issue_counted_back_to_the_last_pass() {
    let c = conn(3, Up, Up);
    // Newest first: credentials failed three times in a row after a pass; the URL check passes.
    let results = vec![
        result(CheckId::Credentials, CheckStatus::Failed, 30),
        result(CheckId::Url, CheckStatus::Passed, 30),
        result(CheckId::Credentials, CheckStatus::Skipped, 25),
        result(CheckId::Credentials, CheckStatus::Error, 20),
        result(CheckId::Credentials, CheckStatus::Failed, 10),
        result(CheckId::Credentials, CheckStatus::Passed, 5),
        result(CheckId::Credentials, CheckStatus::Failed, 1),
        result(CheckId::Url, CheckStatus::Failed, 1),
    ];
    let issues = open_issues(&c, &results);
    assert_eq!(issues.len(), 1, "{issues:?}");
    let i = &issues[0];
    assert_eq!(i.check_id, "credentials");
    assert_eq!(
        (i.first_seen, i.last_seen, i.times_seen),
        (at(10), at(30), 3)
    );
    assert_eq!(i.category, "Registration");
    assert_eq!(i.status, "Failed");
    assert_eq!(i.href, "/connections/3/issues/credentials");
    // Everything passing: no issue.
    assert!(open_issues(&c, &results[1..2]).is_empty());
}

#[test]
fn a_down_direction_is_an_issue_since_the_first_missed_heartbeat() {
    let c = conn(4, Down, Up);
    let latest = beats(&[
        (26, Down, Up),
        (27, Up, Up),
        (28, Down, Down),
        (29, Down, Up),
        (30, Down, Up),
    ]);
    let issues = heartbeat_issues(&c, &latest);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].check_id, OUTBOUND_DOWN);
    assert_eq!(
        (
            issues[0].first_seen,
            issues[0].last_seen,
            issues[0].times_seen
        ),
        (at(28), at(30), 3)
    );
    assert_eq!(issues[0].category, "Connectivity");
    assert_eq!(issues[0].severity, Severity::Critical);
    // Recovered: no issue, whatever the history says.
    assert!(heartbeat_issues(&conn(4, Up, Up), &latest).is_empty());
}

#[test]
fn a_connections_issues_are_its_checks_and_once_onboarded_its_heartbeats() {
    let mut c = conn(5, Down, Up);
    let results = vec![result(CheckId::Credentials, CheckStatus::Failed, 30)];
    let beats = beats(&[(31, Down, Up)]);
    let ids = |issues: Vec<OpenIssue>| -> Vec<String> {
        issues.into_iter().map(|i| i.check_id).collect()
    };
    assert_eq!(
        ids(connection_issues(&c, &results, &beats)),
        vec!["credentials".to_string(), OUTBOUND_DOWN.to_string()]
    );
    // Off-boarded or re-onboarding: the heartbeat history no longer opens an issue.
    c.onboarding = Onboarding::NotStarted;
    assert_eq!(
        ids(connection_issues(&c, &results, &beats)),
        vec!["credentials".to_string()]
    );
}

#[test]
fn issues_sort_by_severity_then_most_recent() {
    let c = conn(1, Down, Down);
    let mut issues = open_issues(
        &c,
        &[
            result(CheckId::Clock, CheckStatus::Failed, 50),
            result(CheckId::Entitlements, CheckStatus::Failed, 40),
            result(CheckId::Reachable, CheckStatus::Failed, 10),
        ],
    );
    issues.extend(heartbeat_issues(&c, &beats(&[(60, Down, Down)])));
    sort_issues(&mut issues);
    let order: Vec<(Severity, &str)> = issues
        .iter()
        .map(|i| (i.severity, i.check_id.as_str()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort_by_key(|(s, _)| *s);
    assert_eq!(
        order.iter().map(|o| o.0).collect::<Vec<_>>(),
        sorted.iter().map(|o| o.0).collect::<Vec<_>>()
    );
    // Among the critical ones, the newest first.
    assert_eq!(issues[0].last_seen, at(60));
}

fn card(id: i64, health: Option<Health>, score: i64) -> ConnectionCard {
    ConnectionCard {
        connection: conn(id, Up, Up),
        health,
        last_heartbeat: None,
        round_trip_ms: None,
        p50_ms: None,
        p95_ms: None,
        heartbeats_24h: 0,
        outbound: Traffic::default(),
        inbound: Traffic::default(),
        open_issues: 0,
        score,
    }
}

#[test]
fn a_connection_scores_its_checks_weighted_by_its_health() {
    assert_eq!(connection_score(100, Some(Health::Up)), 100);
    assert_eq!(
        connection_score(100, None),
        100,
        "not onboarded: its checks alone"
    );
    assert_eq!(connection_score(100, Some(Health::Slow)), 75);
    assert_eq!(connection_score(100, Some(Health::Down)), 25);
    assert_eq!(connection_score(50, Some(Health::Down)), 12);
}

#[test]
fn the_dashboards_score_averages_the_live_connections_scores() {
    assert_eq!(dashboard_score(&[]), 100);
    assert_eq!(dashboard_score(&[card(1, Some(Health::Up), 100)]), 100);
    assert_eq!(
        dashboard_score(&[card(1, Some(Health::Slow), 75), card(2, None, 50)]),
        62
    );
    let mut gone = card(3, Some(Health::Down), 0);
    gone.connection.state = ConnectionState::OffBoarded;
    assert_eq!(dashboard_score(&[card(1, Some(Health::Up), 80), gone]), 80);
}

#[test]
fn categories_cover_every_check_and_the_heartbeat() {
    for spec in crate::model::CHECKS {
        assert_ne!(category(spec.id.as_str()), "Unknown", "{:?}", spec.id);
    }
    assert_eq!(category(OUTBOUND_DOWN), "Connectivity");
    assert_eq!(category("something_new"), "Unknown");
}

#[test]
fn schedules_say_when_each_suite_runs() {
    assert!(schedule(Suite::ConnectionHealth, Onboarding::Complete, 60).contains("every 60 s"));
    assert!(schedule(Suite::PreOnboarding, Onboarding::NotStarted, 60).contains("On Save"));
    assert!(schedule(Suite::ConnectionHealth, Onboarding::Started, 60).contains("onboarded"));
}

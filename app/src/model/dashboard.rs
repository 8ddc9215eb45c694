//! The health dashboard across connections: the rules behind its three tabs, pure so the server
//! and the page agree. Resolution center: a score weighted by each connection's health and its
//! issues' severity, how many connections are Up / Slow / Down now and hour by hour over the last
//! 24 hours, and the open issues, one per finding however often it repeats. Connection health: a
//! card per connection (heartbeat age and round trip p50/p95, messages each way over 24 hours).
//! Scan suites: each connection's suites with their schedule and runs.
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};

use super::checks::{check_spec, CheckId, CheckResult, CheckStatus, ScanRunView, Severity, Suite};
use super::dto::ConnectionView;
pub use super::health::Health;
use super::rollup::{DownStreak, LatestBeat};
use super::state::{LinkStatus, Onboarding};

/// A connection's health now: what its record says, but Slow when the last heartbeat answer is
/// older than `slow_after` (no answer for that long means the watch itself is behind, as the
/// product classes it), and Down stays Down.
pub fn current_health(
    conn: &ConnectionView,
    last_answer: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    slow_after: Duration,
) -> Option<Health> {
    let health = Health::of(conn.outbound, conn.inbound)?;
    let stale = last_answer.is_some_and(|at| now - at > slow_after);
    Some(if stale && health == Health::Up {
        Health::Slow
    } else {
        health
    })
}

/// One hour of the 24-hour chart: how many connections were, at their worst that hour, Up,
/// Slow or Down (a connection with no heartbeat in the hour is not counted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HourHealth {
    #[serde(with = "crate::model::time")]
    pub start: DateTime<Utc>,
    pub up: u32,
    pub slow: u32,
    pub down: u32,
}

/// The last 24 hours up to `now`, oldest hour first, from each connection's worst health in
/// each hour it had a heartbeat (`rollup::HourRollup::worst`).
pub fn hourly_health(
    now: DateTime<Utc>,
    worst: impl IntoIterator<Item = (DateTime<Utc>, Health)>,
) -> Vec<HourHealth> {
    let this_hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let first = this_hour - Duration::hours(23);
    let mut hours: Vec<HourHealth> = (0..24)
        .map(|i| HourHealth {
            start: first + Duration::hours(i),
            up: 0,
            slow: 0,
            down: 0,
        })
        .collect();
    for (at, health) in worst {
        if at < first {
            continue;
        }
        let Some(hour) = usize::try_from((at - first).num_hours())
            .ok()
            .and_then(|i| hours.get_mut(i))
        else {
            continue;
        };
        match health {
            Health::Up => hour.up += 1,
            Health::Slow => hour.slow += 1,
            Health::Down => hour.down += 1,
        }
    }
    hours
}

/// Messages one way over the last 24 hours, and the last one's time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Traffic {
    pub messages: i64,
    #[serde(with = "crate::model::time::option", default)]
    pub last_at: Option<DateTime<Utc>>,
}

/// The Connection health tab's card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConnectionCard {
    pub connection: ConnectionView,
    /// None before onboarding.
    pub health: Option<Health>,
    #[serde(with = "crate::model::time::option", default)]
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// The last heartbeat's round trip, and p50/p95 over 24 hours of answered heartbeats.
    pub round_trip_ms: Option<i64>,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
    pub heartbeats_24h: i64,
    pub outbound: Traffic,
    pub inbound: Traffic,
    pub open_issues: usize,
    /// 0–100: `connection_score`, as the connection's own health page shows it.
    pub score: i64,
}

/// What kind of problem a check finds, for the issue list's Category column.
pub fn category(check_id: &str) -> &'static str {
    match check_spec(check_id).map(|s| s.id) {
        Some(CheckId::Url | CheckId::Reachable | CheckId::Tls | CheckId::TlsExpiry) => "Network",
        Some(CheckId::BaseUrl | CheckId::KeyManagement | CheckId::CompanyUnique) => "Configuration",
        Some(CheckId::Protocol | CheckId::Clock | CheckId::AppVersions) => "Compatibility",
        Some(CheckId::Registration | CheckId::Credentials) => "Registration",
        Some(CheckId::Entitlements | CheckId::EntitlementIdentity) => "Entitlements",
        Some(CheckId::Inbound | CheckId::Heartbeat) => "Connectivity",
        None if check_id.starts_with(HEARTBEAT_ISSUE) => "Connectivity",
        None => "Unknown",
    }
}

/// Ids of the issues the scheduled heartbeat opens (not checks of a suite).
pub const HEARTBEAT_ISSUE: &str = "heartbeat:";
pub const OUTBOUND_DOWN: &str = "heartbeat:outbound";
pub const INBOUND_DOWN: &str = "heartbeat:inbound";

/// One open issue: one finding, however many times it was seen in a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OpenIssue {
    pub connection_id: i64,
    pub company: String,
    pub check_id: String,
    pub name: String,
    pub severity: Severity,
    pub category: String,
    /// "Failed", or "Error" when the check could not tell (unknown).
    pub status: String,
    pub message: String,
    #[serde(with = "crate::model::time")]
    pub first_seen: DateTime<Utc>,
    #[serde(with = "crate::model::time")]
    pub last_seen: DateTime<Utc>,
    pub times_seen: u32,
    /// Where it is fixed.
    pub href: String,
}

/// The open issues of one connection from its check results, newest first: a check whose
/// latest result is an issue is one open issue, counted back over its results until one passed.
pub fn open_issues(conn: &ConnectionView, results_newest_first: &[CheckResult]) -> Vec<OpenIssue> {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for latest in results_newest_first {
        if seen.contains(&latest.check_id.as_str()) {
            continue;
        }
        seen.push(&latest.check_id);
        if !latest.status.is_issue() {
            continue;
        }
        let streak: Vec<&CheckResult> = results_newest_first
            .iter()
            .filter(|r| r.check_id == latest.check_id && r.status != CheckStatus::Skipped)
            .take_while(|r| r.status.is_issue())
            .collect();
        let first = streak.last().map_or(latest.at, |r| r.at);
        out.push(OpenIssue {
            connection_id: conn.id,
            company: conn.company.clone(),
            check_id: latest.check_id.clone(),
            name: latest.name.clone(),
            severity: latest.severity,
            category: category(&latest.check_id).to_string(),
            status: latest.status.label().to_string(),
            message: latest.message.clone(),
            first_seen: first,
            last_seen: latest.at,
            times_seen: u32::try_from(streak.len()).unwrap_or(u32::MAX),
            href: format!("/connections/{}/issues/{}", conn.id, latest.check_id),
        });
    }
    out
}

/// One direction's heartbeat issue: its id and words, its streak, how it is now.
struct Direction {
    id: &'static str,
    name: &'static str,
    streak: Option<DownStreak>,
    now: LinkStatus,
    message: &'static str,
}

/// The issues the heartbeats open: a direction Down now, since the first heartbeat of its
/// current Down streak, counted per heartbeat of it.
pub fn heartbeat_issues(conn: &ConnectionView, latest: &LatestBeat) -> Vec<OpenIssue> {
    let mut out = Vec::new();
    let directions = [
        Direction {
            id: OUTBOUND_DOWN,
            name: "Provider answers the heartbeat",
            streak: latest.outbound_down,
            now: conn.outbound,
            message: "The provider did not answer this instance's heartbeat: Outbound is Down. Check that the provider is up and reachable; the connection's health checks (Run now) say more.",
        },
        Direction {
            id: INBOUND_DOWN,
            name: "Provider's heartbeat call reaches this instance",
            streak: latest.inbound_down,
            now: conn.inbound,
            message: "No heartbeat call from the provider reached this instance: Inbound is Down. Check that the provider can reach this instance's base URL (firewall, proxy).",
        },
    ];
    for Direction {
        id,
        name,
        streak,
        now,
        message,
    } in directions
    {
        let Some(streak) = streak.filter(|_| now == LinkStatus::Down) else {
            continue;
        };
        out.push(OpenIssue {
            connection_id: conn.id,
            company: conn.company.clone(),
            check_id: id.to_string(),
            name: name.to_string(),
            severity: Severity::Critical,
            category: category(id).to_string(),
            status: CheckStatus::Failed.label().to_string(),
            message: message.to_string(),
            first_seen: streak.since,
            last_seen: streak.last,
            times_seen: u32::try_from(streak.beats).unwrap_or(u32::MAX),
            href: format!("/connections/{}/issues/{id}", conn.id),
        });
    }
    out
}

/// Every open issue of one connection, as the dashboard and an issue's own page both read them:
/// its checks' (from their latest results) and, once onboarded, its heartbeats' (a connection
/// not onboarded has no heartbeat to miss, whatever an older history holds).
pub fn connection_issues(
    conn: &ConnectionView,
    results_newest_first: &[CheckResult],
    latest: &LatestBeat,
) -> Vec<OpenIssue> {
    let mut out = open_issues(conn, results_newest_first);
    if conn.onboarding == Onboarding::Complete {
        out.extend(heartbeat_issues(conn, latest));
    }
    out
}

/// The issue list's order: severity first, then the most recently seen.
pub fn sort_issues(issues: &mut [OpenIssue]) {
    issues.sort_by(|a, b| {
        (a.severity, std::cmp::Reverse(a.last_seen), a.connection_id).cmp(&(
            b.severity,
            std::cmp::Reverse(b.last_seen),
            b.connection_id,
        ))
    });
}

/// A connection's health score: its checks' score (`health_score`) weighted by its health
/// (Down counts a quarter, Slow three quarters), so a connection whose heartbeat is Down does
/// not read 100 because its last checks passed. Its card and its own health page show this.
pub fn connection_score(checks_score: i64, health: Option<Health>) -> i64 {
    match health {
        Some(Health::Down) => checks_score / 4,
        Some(Health::Slow) => checks_score * 3 / 4,
        Some(Health::Up) | None => checks_score,
    }
}

/// The dashboard's score: the live connections' scores (`connection_score`, on their cards)
/// averaged; 100 with no connection.
pub fn dashboard_score(cards: &[ConnectionCard]) -> i64 {
    let live: Vec<&ConnectionCard> = cards
        .iter()
        .filter(|c| c.connection.state.is_live())
        .collect();
    if live.is_empty() {
        return 100;
    }
    let sum: i64 = live.iter().map(|c| c.score).sum();
    sum / live.len() as i64
}

/// A connection's suites on the Scan suites tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SuiteView {
    pub connection_id: i64,
    pub company: String,
    pub suite: Suite,
    /// When it runs, in words.
    pub schedule: String,
    /// Whether "Run now" applies to this suite now (it is the one a Rescan runs).
    pub runnable: bool,
    /// The connection's record version, for "Run now" (a Rescan).
    pub version: i64,
    pub runs: Vec<ScanRunView>,
}

/// When `suite` runs for a connection at this onboarding stage.
pub fn schedule(suite: Suite, onboarding: Onboarding, interval_secs: u64) -> String {
    match (suite, onboarding == Onboarding::Complete) {
        (Suite::PreOnboarding, false) => {
            "On Save and on every Rescan until the connection is onboarded.".into()
        }
        (Suite::PreOnboarding, true) => "Done: it ran before onboarding.".into(),
        (Suite::ConnectionHealth, true) => format!(
            "Heartbeat every {interval_secs} s (IMPACT_HEALTH_INTERVAL_SECONDS); the whole suite on Run now."
        ),
        (Suite::ConnectionHealth, false) => "Once the connection is onboarded.".into(),
    }
}

/// The whole dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DashboardView {
    pub score: i64,
    pub up: usize,
    pub slow: usize,
    pub down: usize,
    pub hours: Vec<HourHealth>,
    /// Every open issue counted by severity, whatever the filter.
    pub issue_counts: Vec<SeverityCount>,
    /// One page of the open issues of the connections the filter matches, most severe first.
    pub issues: Vec<OpenIssue>,
    pub issue_paging: super::dashboard_page::Paging,
    /// One page of the connections the filter matches (`dashboard_page`), worst first.
    pub cards: Vec<ConnectionCard>,
    /// The suites of the connections on that page.
    pub suites: Vec<SuiteView>,
    /// Where that page stands, and the filter it was read with.
    pub paging: super::dashboard_page::Paging,
    pub query: super::dashboard_page::DashboardQuery,
    /// A heartbeat answer older than this makes a connection Slow.
    pub slow_after_secs: i64,
    /// How often an open dashboard reads itself again: the heartbeat interval, within 1–10 s.
    pub refresh_secs: u64,
}

/// How many open issues there are of one severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SeverityCount {
    pub severity: Severity,
    pub count: usize,
}

/// Issue counts by severity, most severe first, for the severities that have any.
pub fn count_by_severity(issues: &[OpenIssue]) -> Vec<SeverityCount> {
    let mut counts: Vec<SeverityCount> = Vec::new();
    for i in issues {
        match counts.iter_mut().find(|c| c.severity == i.severity) {
            Some(c) => c.count += 1,
            None => counts.push(SeverityCount {
                severity: i.severity,
                count: 1,
            }),
        }
    }
    counts.sort_by_key(|c| c.severity);
    counts
}

#[cfg(test)]
mod tests;

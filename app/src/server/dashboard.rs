//! The health dashboard across connections (rules: `model::dashboard`): read from the checks'
//! results, the heartbeats' hourly roll-ups and latest (`heartbeat_history`) and the message
//! counts (`traffic`), a few queries for all connections together (`scan::across`), however
//! many there are and however many heartbeats they had.
use std::collections::HashMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use sqlx::Row;

use super::{clock, connections, error::ServiceError, heartbeat_history, scan, traffic, AppState};
use crate::model::{
    dashboard::{
        connection_issues, connection_score, count_by_severity, current_health, dashboard_score,
        hourly_health, schedule, sort_issues, ConnectionCard, DashboardView, Health, HourHealth,
        OpenIssue, SuiteView, Traffic,
    },
    dashboard_page::{page_of, DashboardQuery},
    health_score,
    rollup::HourRollup,
    CheckId, ConnectionView, ScanRunView, Suite,
};

/// How many of a connection's latest check results are read to count repeated findings.
pub const RESULTS_READ: i64 = 300;

/// Messages each way per connection in the hours from `since`.
async fn traffic_since(
    state: &AppState,
    since: DateTime<Utc>,
) -> Result<HashMap<(i64, String), Traffic>, ServiceError> {
    let rows = sqlx::query(
        "SELECT connection_id, direction, CAST(SUM(messages) AS BIGINT) AS n, MAX(last_at) AS last_at \
         FROM link_traffic WHERE hour >= $1 GROUP BY connection_id, direction",
    )
    .bind(clock::to_db(since))
    .fetch_all(&state.db.pool)
    .await?;
    let mut out = HashMap::new();
    for r in &rows {
        let last: Option<String> = r.try_get("last_at")?;
        out.insert(
            (r.try_get("connection_id")?, r.try_get("direction")?),
            Traffic {
                messages: r.try_get("n")?,
                last_at: last.as_deref().map(clock::from_db).transpose()?,
            },
        );
    }
    Ok(out)
}

/// The suite a single-check run ("check:<id>") belongs to: the connection's current one when it
/// holds the check, else the other.
fn suite_of(run: &ScanRunView, now: Suite) -> Option<Suite> {
    if let Some(check) = run.suite.strip_prefix("check:") {
        let id = CheckId::parse(check)?;
        return Some(if now.includes(id) {
            now
        } else {
            match now {
                Suite::PreOnboarding => Suite::ConnectionHealth,
                Suite::ConnectionHealth => Suite::PreOnboarding,
            }
        });
    }
    Suite::parse(&run.suite)
}

fn suites(state: &AppState, conn: &ConnectionView, runs: &[ScanRunView]) -> Vec<SuiteView> {
    let now = Suite::for_onboarding(conn.onboarding);
    Suite::ALL
        .into_iter()
        .map(|suite| SuiteView {
            connection_id: conn.id,
            company: conn.company.clone(),
            suite,
            schedule: schedule(
                suite,
                conn.onboarding,
                state.settings.health_interval.as_secs(),
            ),
            runnable: suite == now
                && crate::model::transition(conn.status(), crate::model::Action::Rescan).is_ok(),
            version: conn.version,
            runs: runs
                .iter()
                .filter(|r| suite_of(r, now) == Some(suite))
                .map(|r| r.clone().brief())
                .collect(),
        })
        .collect()
}

/// Every live connection's card and open issues, worst first, and the 24-hour chart: what the
/// dashboard's pages and the digest are cut from.
pub struct Whole {
    pub cards: Vec<ConnectionCard>,
    pub issues: Vec<OpenIssue>,
    pub hours: Vec<HourHealth>,
}

/// Reads the whole dashboard now: a few queries for every connection together.
#[tracing::instrument(skip(state))]
pub async fn whole(state: &AppState) -> Result<Whole, ServiceError> {
    let now = clock::now();
    let hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let day_ago = hour - Duration::hours(23);
    let slow_after = state.settings.slow_after_age();
    let list: Vec<ConnectionView> = connections::list(&state.db)
        .await?
        .into_iter()
        .filter(|c| c.state.is_live())
        .collect();
    let live: std::collections::HashSet<i64> = list.iter().map(|c| c.id).collect();
    let mut days = heartbeat_history::summed_since(&state.db, day_ago).await?;
    let worst_hours = heartbeat_history::worst_by_hour(&state.db, day_ago).await?;
    let mut latest_beats = heartbeat_history::latest_all(&state.db).await?;
    let traffic = traffic_since(state, day_ago).await?;
    let mut latest = scan::across::latest(state).await?;
    let mut recent = scan::across::recent_results(state, RESULTS_READ).await?;
    let mut cards = Vec::with_capacity(list.len());
    let mut issues = Vec::new();
    for conn in list {
        let checks = latest.remove(&conn.id).unwrap_or_default();
        let results = recent.remove(&conn.id).unwrap_or_default();
        let latest = latest_beats.remove(&conn.id).unwrap_or_default();
        let mine = connection_issues(&conn, &results, &latest);
        let day = days
            .remove(&conn.id)
            .unwrap_or_else(|| HourRollup::empty(day_ago));
        let way = |d: traffic::Direction| {
            traffic
                .get(&(conn.id, d.as_str().to_string()))
                .cloned()
                .unwrap_or_default()
        };
        let health = current_health(&conn, latest.answered_at, now, slow_after);
        cards.push(ConnectionCard {
            health,
            last_heartbeat: latest.at,
            round_trip_ms: latest.round_trip_ms,
            p50_ms: day.percentile(50),
            p95_ms: day.percentile(95),
            heartbeats_24h: day.beats,
            outbound: way(traffic::Direction::Outbound),
            inbound: way(traffic::Direction::Inbound),
            open_issues: mine.len(),
            score: connection_score(health_score(&checks), health),
            connection: conn,
        });
        issues.extend(mine);
    }
    sort_issues(&mut issues);
    // Worst first, then by company.
    cards.sort_by(|a, b| {
        (a.health.is_none(), a.health, &a.connection.company).cmp(&(
            b.health.is_none(),
            b.health,
            &b.connection.company,
        ))
    });
    Ok(Whole {
        cards,
        issues,
        // The live connections' hours (an off-boarded one's past is not on the chart).
        hours: hourly_health(
            now,
            worst_hours
                .into_iter()
                .filter(|(id, _, _)| live.contains(id))
                .map(|(_, hour, health)| (hour, health)),
        ),
    })
}

/// The dashboard now: the Resolution center's score, counts and chart over every connection;
/// the open issues, cards and suites of the connections `query` matches, a page of each.
#[tracing::instrument(skip(state))]
pub async fn view(state: &AppState, query: &DashboardQuery) -> Result<DashboardView, ServiceError> {
    query.validate()?;
    let Whole {
        cards,
        issues,
        hours,
    } = whole(state).await?;
    let count = |h: Health| cards.iter().filter(|c| c.health == Some(h)).count();
    let (score, up, slow, down) = (
        dashboard_score(&cards),
        count(Health::Up),
        count(Health::Slow),
        count(Health::Down),
    );
    let issue_counts = count_by_severity(&issues);
    // An issue matches when its connection does.
    let matching_ids: std::collections::HashSet<i64> = cards
        .iter()
        .filter(|c| query.matches(&c.connection.company, c.health))
        .map(|c| c.connection.id)
        .collect();
    let total_issues = issues.len();
    let matching_issues: Vec<OpenIssue> = issues
        .into_iter()
        .filter(|i| matching_ids.contains(&i.connection_id))
        .collect();
    let (issues, issue_paging) = page_of(matching_issues, query.page, total_issues);
    let total = cards.len();
    let matching: Vec<ConnectionCard> = cards
        .into_iter()
        .filter(|c| matching_ids.contains(&c.connection.id))
        .collect();
    let (cards, paging) = page_of(matching, query.page, total);
    // Runs only for the page's connections: their suites are all it shows.
    let shown: Vec<i64> = cards.iter().map(|c| c.connection.id).collect();
    let mut runs = scan::across::runs(state, scan::RUNS_SHOWN, &shown).await?;
    let suites = cards
        .iter()
        .flat_map(|c| {
            let conn_runs = runs.remove(&c.connection.id).unwrap_or_default();
            suites(state, &c.connection, &conn_runs)
        })
        .collect();
    Ok(DashboardView {
        score,
        up,
        slow,
        down,
        hours,
        issues,
        issue_counts,
        issue_paging,
        cards,
        suites,
        paging,
        query: query.clone(),
        slow_after_secs: state.settings.slow_after_age().num_seconds(),
        refresh_secs: state.settings.health_interval.as_secs().clamp(1, 10),
    })
}

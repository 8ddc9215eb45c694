//! The health dashboard across connections (rules: `model::dashboard`): read from the checks'
//! results, the heartbeat history and the message counts (`traffic`), a few queries for all
//! connections together (`scan::across`), however many there are.
use std::collections::HashMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use sqlx::Row;

use super::{clock, connections, error::ServiceError, scan, traffic, AppState};
use crate::model::{
    dashboard::{
        connection_issues, current_health, dashboard_score, hourly_health, percentile, schedule,
        sort_issues, ConnectionCard, DashboardView, Health, HeartbeatSample, SuiteView, Traffic,
    },
    health_score, CheckId, ConnectionView, LinkStatus, ScanRunView, Suite,
};

/// How many of a connection's latest check results are read to count repeated findings.
pub const RESULTS_READ: i64 = 300;

fn link(raw: &str) -> LinkStatus {
    LinkStatus::from_db(raw).unwrap_or(LinkStatus::Blank)
}

/// One connection's heartbeats since `since`, newest first.
pub async fn connection_heartbeats(
    state: &AppState,
    connection_id: i64,
    since: DateTime<Utc>,
) -> Result<Vec<HeartbeatSample>, ServiceError> {
    let rows = sqlx::query(
        "SELECT at, outbound_ms, outbound, inbound FROM heartbeats \
         WHERE connection_id = $1 AND at >= $2 ORDER BY at DESC",
    )
    .bind(connection_id)
    .bind(clock::to_db(since))
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter().map(sample).collect()
}

fn sample(r: &sqlx::any::AnyRow) -> Result<HeartbeatSample, ServiceError> {
    Ok(HeartbeatSample {
        at: clock::from_db(&r.try_get::<String, _>("at")?)?,
        outbound_ms: r.try_get("outbound_ms")?,
        outbound: link(&r.try_get::<String, _>("outbound")?),
        inbound: link(&r.try_get::<String, _>("inbound")?),
    })
}

/// Every connection's heartbeats since `since`, newest first.
async fn heartbeats(
    state: &AppState,
    since: DateTime<Utc>,
) -> Result<HashMap<i64, Vec<HeartbeatSample>>, ServiceError> {
    let rows = sqlx::query(
        "SELECT connection_id, at, outbound_ms, outbound, inbound FROM heartbeats \
         WHERE at >= $1 ORDER BY at DESC",
    )
    .bind(clock::to_db(since))
    .fetch_all(&state.db.pool)
    .await?;
    let mut out: HashMap<i64, Vec<HeartbeatSample>> = HashMap::new();
    for r in &rows {
        out.entry(r.try_get("connection_id")?)
            .or_default()
            .push(sample(r)?);
    }
    Ok(out)
}

/// Each connection's last answered heartbeat, however old (within the history kept).
async fn last_answers(state: &AppState) -> Result<HashMap<i64, DateTime<Utc>>, ServiceError> {
    let rows = sqlx::query(
        "SELECT connection_id, MAX(at) AS at FROM heartbeats WHERE outbound_ms IS NOT NULL \
         GROUP BY connection_id",
    )
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("connection_id")?,
                clock::from_db(&r.try_get::<String, _>("at")?)?,
            ))
        })
        .collect()
}

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

/// The whole dashboard, now.
#[tracing::instrument(skip(state))]
pub async fn view(state: &AppState) -> Result<DashboardView, ServiceError> {
    let now = clock::now();
    let hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let day_ago = hour - Duration::hours(23);
    let slow_after = Duration::from_std(state.settings.slow_after).unwrap_or(Duration::minutes(15));
    let list: Vec<ConnectionView> = connections::list(&state.db)
        .await?
        .into_iter()
        .filter(|c| c.state.is_live())
        .collect();
    let mut beats = heartbeats(state, day_ago).await?;
    let answers = last_answers(state).await?;
    let traffic = traffic_since(state, day_ago).await?;
    let mut latest = scan::across::latest(state).await?;
    let mut recent = scan::across::recent_results(state, RESULTS_READ).await?;
    let mut runs = scan::across::runs(state, scan::RUNS_SHOWN).await?;
    let mut cards = Vec::with_capacity(list.len());
    let mut issues = Vec::new();
    let mut all_suites = Vec::new();
    let mut samples_per_connection = Vec::with_capacity(list.len());
    for conn in list {
        let checks = latest.remove(&conn.id).unwrap_or_default();
        let results = recent.remove(&conn.id).unwrap_or_default();
        let conn_runs = runs.remove(&conn.id).unwrap_or_default();
        let samples = beats.remove(&conn.id).unwrap_or_default();
        let mine = connection_issues(&conn, &results, &samples);
        let round_trips: Vec<i64> = samples.iter().filter_map(|s| s.outbound_ms).collect();
        let way = |d: traffic::Direction| {
            traffic
                .get(&(conn.id, d.as_str().to_string()))
                .cloned()
                .unwrap_or_default()
        };
        all_suites.extend(suites(state, &conn, &conn_runs));
        cards.push(ConnectionCard {
            health: current_health(&conn, answers.get(&conn.id).copied(), now, slow_after),
            last_heartbeat: samples.first().map(|s| s.at),
            round_trip_ms: samples.first().and_then(|s| s.outbound_ms),
            p50_ms: percentile(&round_trips, 50),
            p95_ms: percentile(&round_trips, 95),
            heartbeats_24h: samples.len() as i64,
            outbound: way(traffic::Direction::Outbound),
            inbound: way(traffic::Direction::Inbound),
            open_issues: mine.len(),
            score: health_score(&checks),
            connection: conn,
        });
        issues.extend(mine);
        samples_per_connection.push(samples);
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
    let count = |h: Health| cards.iter().filter(|c| c.health == Some(h)).count();
    Ok(DashboardView {
        score: dashboard_score(&cards),
        up: count(Health::Up),
        slow: count(Health::Slow),
        down: count(Health::Down),
        hours: hourly_health(now, &samples_per_connection),
        issues,
        cards,
        suites: all_suites,
        slow_after_secs: slow_after.num_seconds(),
        refresh_secs: state.settings.health_interval.as_secs().clamp(1, 10),
    })
}

//! The issue workflow's records (rules: `model::issue_work`): assignee and mute per issue, its
//! followers, its notes; every change audited. And an issue's diagnostic report: the connection,
//! its recent checks, heartbeats and events, with nothing secret in it.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Any, Row, Transaction};

use super::{audit, clock, connections, error::ServiceError, scan, AppState, Db};
use crate::model::{
    check_spec,
    dashboard::{category, connection_issues},
    heartbeat_issue, valid_issue_id, Access, CurrentUser, IssueCommand, IssueDetail, IssueNote,
    IssueWork,
};

fn unknown_issue(issue: &str) -> ServiceError {
    ServiceError::NotFound(format!(
        "There is no issue \"{}\": an issue is a check's id (as the dashboard names it) or heartbeat:outbound / heartbeat:inbound.",
        issue.chars().take(64).collect::<String>()
    ))
}

/// Every issue of the connection that has any workflow, by issue id.
pub async fn of_connection(
    db: &Db,
    connection_id: i64,
) -> Result<HashMap<String, IssueWork>, ServiceError> {
    let mut out: HashMap<String, IssueWork> = HashMap::new();
    for r in sqlx::query(
        "SELECT issue, assignee, muted_until FROM issue_states WHERE connection_id = $1",
    )
    .bind(connection_id)
    .fetch_all(&db.pool)
    .await?
    {
        let muted: Option<String> = r.try_get("muted_until")?;
        let w = out.entry(r.try_get("issue")?).or_default();
        w.assignee = r.try_get("assignee")?;
        w.muted_until = muted.as_deref().map(clock::from_db).transpose()?;
    }
    for r in sqlx::query(
        "SELECT issue, email FROM issue_followers WHERE connection_id = $1 ORDER BY email",
    )
    .bind(connection_id)
    .fetch_all(&db.pool)
    .await?
    {
        out.entry(r.try_get("issue")?)
            .or_default()
            .followers
            .push(r.try_get("email")?);
    }
    for r in sqlx::query(
        "SELECT issue, author, at, body FROM issue_notes WHERE connection_id = $1 ORDER BY id",
    )
    .bind(connection_id)
    .fetch_all(&db.pool)
    .await?
    {
        out.entry(r.try_get("issue")?)
            .or_default()
            .notes
            .push(IssueNote {
                author: r.try_get("author")?,
                at: clock::from_db(&r.try_get::<String, _>("at")?)?,
                text: r.try_get("body")?,
            });
    }
    let now = clock::now();
    for w in out.values_mut() {
        w.muted = w.is_muted(now);
    }
    Ok(out)
}

/// One issue's workflow (empty when nobody touched it).
pub async fn work(db: &Db, connection_id: i64, issue: &str) -> Result<IssueWork, ServiceError> {
    Ok(of_connection(db, connection_id)
        .await?
        .remove(issue)
        .unwrap_or_default())
}

async fn set_state(
    tx: &mut Transaction<'static, Any>,
    connection_id: i64,
    issue: &str,
    column: &str,
    value: Option<String>,
) -> Result<(), ServiceError> {
    // `column` is one of two fixed names, never input.
    let sql = format!(
        "INSERT INTO issue_states (connection_id, issue, {column}) VALUES ($1, $2, $3) \
         ON CONFLICT (connection_id, issue) DO UPDATE SET {column} = excluded.{column}"
    );
    sqlx::query(&sql)
        .bind(connection_id)
        .bind(issue)
        .bind(value)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Does `command` to the issue as `user`, audited. Following is anyone's who may look; the rest
/// changes the issue for everyone and needs the IDI admin's role.
#[tracing::instrument(skip(state, user, command), fields(user = %user.email))]
pub async fn act(
    state: &AppState,
    connection_id: i64,
    issue: &str,
    command: IssueCommand,
    user: &CurrentUser,
) -> Result<IssueWork, ServiceError> {
    if !valid_issue_id(issue) {
        return Err(unknown_issue(issue));
    }
    let needed = if command.is_personal() {
        Access::View
    } else {
        Access::ManageConnection
    };
    if !user.may(needed) {
        return Err(ServiceError::Forbidden(needed.refusal().into()));
    }
    connections::get(&state.db, connection_id).await?;
    let command = command.checked()?;
    let now = clock::now();
    let mut tx = state.db.begin().await?;
    match &command {
        IssueCommand::AssignToMe => {
            set_state(
                &mut tx,
                connection_id,
                issue,
                "assignee",
                Some(user.email.clone()),
            )
            .await?
        }
        IssueCommand::Unassign => {
            set_state(&mut tx, connection_id, issue, "assignee", None).await?
        }
        IssueCommand::Mute { minutes } => {
            let until = IssueCommand::mute_until(*minutes, now);
            set_state(
                &mut tx,
                connection_id,
                issue,
                "muted_until",
                Some(clock::to_db(until)),
            )
            .await?
        }
        IssueCommand::Unmute => {
            set_state(&mut tx, connection_id, issue, "muted_until", None).await?
        }
        IssueCommand::Follow => {
            sqlx::query(
                "INSERT INTO issue_followers (connection_id, issue, email) VALUES ($1, $2, $3) \
                 ON CONFLICT (connection_id, issue, email) DO NOTHING",
            )
            .bind(connection_id)
            .bind(issue)
            .bind(user.email.to_lowercase())
            .execute(&mut *tx)
            .await?;
        }
        IssueCommand::Unfollow => {
            sqlx::query(
                "DELETE FROM issue_followers WHERE connection_id = $1 AND issue = $2 AND email = $3",
            )
            .bind(connection_id)
            .bind(issue)
            .bind(user.email.to_lowercase())
            .execute(&mut *tx)
            .await?;
        }
        IssueCommand::Note { text } => {
            sqlx::query(
                "INSERT INTO issue_notes (connection_id, issue, author, at, body) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(connection_id)
            .bind(issue)
            .bind(&user.email)
            .bind(clock::to_db(now))
            .bind(text)
            .execute(&mut *tx)
            .await?;
        }
    }
    audit::record(
        &mut tx,
        &user.email,
        &format!("Issue {}", command.describe()),
        Some(connection_id),
        issue,
    )
    .await?;
    tx.commit().await?;
    work(&state.db, connection_id, issue).await
}

/// Whether the issue is muted now.
pub async fn muted(
    tx: &mut Transaction<'static, Any>,
    connection_id: i64,
    issue: &str,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    let row =
        sqlx::query("SELECT muted_until FROM issue_states WHERE connection_id = $1 AND issue = $2")
            .bind(connection_id)
            .bind(issue)
            .fetch_optional(&mut **tx)
            .await?;
    let until: Option<String> = match row {
        Some(r) => r.try_get("muted_until")?,
        None => None,
    };
    Ok(until
        .as_deref()
        .and_then(|u| clock::from_db(u).ok())
        .is_some_and(|u| u > now))
}

/// The followers of the connection's issues that are not muted now (lowercase, once each).
pub async fn followers(
    tx: &mut Transaction<'static, Any>,
    connection_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<String>, ServiceError> {
    let rows = sqlx::query(
        "SELECT DISTINCT f.email AS email FROM issue_followers f \
         LEFT JOIN issue_states s ON s.connection_id = f.connection_id AND s.issue = f.issue \
         WHERE f.connection_id = $1 AND (s.muted_until IS NULL OR s.muted_until <= $2) ORDER BY f.email",
    )
    .bind(connection_id)
    .bind(clock::to_db(now))
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("email")?))
        .collect()
}

/// The diagnostic report of an issue: what a support engineer needs, as JSON, with no secret
/// (credentials, registration code and contact are named as held, never shown).
#[tracing::instrument(skip(state))]
pub async fn report(
    state: &AppState,
    connection_id: i64,
    issue: &str,
) -> Result<serde_json::Value, ServiceError> {
    if !valid_issue_id(issue) {
        return Err(unknown_issue(issue));
    }
    let conn = connections::get(&state.db, connection_id).await?;
    let health = scan::health(state, connection_id).await?;
    let held = connections::credentials(state, connection_id)
        .await?
        .is_some();
    let beats = sqlx::query(
        "SELECT at, outbound_ms, outbound, inbound FROM heartbeats WHERE connection_id = $1 ORDER BY id DESC LIMIT 100",
    )
    .bind(connection_id)
    .fetch_all(&state.db.pool)
    .await?
    .iter()
    .map(|r| {
        Ok(serde_json::json!({
            "at": r.try_get::<String, _>("at")?,
            "outbound_ms": r.try_get::<Option<i64>, _>("outbound_ms")?,
            "outbound": r.try_get::<String, _>("outbound")?,
            "inbound": r.try_get::<String, _>("inbound")?,
        }))
    })
    .collect::<Result<Vec<_>, ServiceError>>()?;
    let events = sqlx::query(
        "SELECT seq, at, body FROM connection_events WHERE connection_id = $1 ORDER BY seq DESC LIMIT 100",
    )
    .bind(connection_id)
    .fetch_all(&state.db.pool)
    .await?
    .iter()
    .map(|r| {
        let body: String = r.try_get("body")?;
        Ok(serde_json::json!({
            "seq": r.try_get::<i64, _>("seq")?,
            "at": r.try_get::<String, _>("at")?,
            "body": serde_json::from_str::<serde_json::Value>(&body).unwrap_or(serde_json::Value::String(body)),
        }))
    })
    .collect::<Result<Vec<_>, ServiceError>>()?;
    let spec = check_spec(issue);
    let current = health.checks.iter().find(|c| c.check_id == issue).cloned();
    Ok(serde_json::json!({
        "report": "Impact Connect diagnostic report",
        "generated_at": clock::to_db(clock::now()),
        "issue": {
            "id": issue,
            "name": spec.map(|s| s.name),
            "article": spec.map(|s| s.article),
            "resolution": spec.map(|s| s.resolution),
            "latest_result": current,
        },
        "workflow": work(&state.db, connection_id, issue).await?,
        "connection": conn,
        "secrets": {
            "credentials": if held { "held (redacted)" } else { "none" },
            "registration_code": "redacted",
            "contact": "redacted",
        },
        "health_score": health.score,
        "checks": health.checks,
        "runs": health.runs,
        "heartbeats": beats,
        "events": events,
    }))
}

/// An issue's detail page: the issue, open or not, how to fix it, and its workflow.
#[tracing::instrument(skip(state))]
pub async fn detail(
    state: &AppState,
    connection_id: i64,
    issue: &str,
) -> Result<IssueDetail, ServiceError> {
    if !valid_issue_id(issue) {
        return Err(unknown_issue(issue));
    }
    let conn = connections::get(&state.db, connection_id).await?;
    let results =
        scan::recent_results(state, connection_id, super::dashboard::RESULTS_READ).await?;
    let latest = super::heartbeat_history::latest_of(&state.db, connection_id).await?;
    let open = connection_issues(&conn, &results, &latest)
        .into_iter()
        .find(|i| i.check_id == issue);
    let (name, severity, resolution, article) = match check_spec(issue) {
        Some(spec) => (
            spec.name.to_string(),
            spec.severity,
            spec.resolution.iter().map(|s| s.to_string()).collect(),
            Some(spec.article.to_string()),
        ),
        None => {
            let (name, steps) = heartbeat_issue(issue).ok_or_else(|| unknown_issue(issue))?;
            (
                name.to_string(),
                crate::model::Severity::Critical,
                steps.iter().map(|s| s.to_string()).collect(),
                None,
            )
        }
    };
    Ok(IssueDetail {
        work: work(&state.db, connection_id, issue).await?,
        category: category(issue).to_string(),
        issue: issue.to_string(),
        connection: conn,
        name,
        severity,
        resolution,
        article,
        open,
    })
}

//! Guided Setup progress: completions are recorded per activity (who, when) and every status is
//! recomputed from them, the followed connection and the latest verification runs, so progress
//! survives reloads, is the same for every user, and follows the connection's true state.
use sqlx::{any::AnyRow, Row};

use super::{audit, clock, connections, error::ServiceError, AppState, Db};
use crate::model::{
    guided_connection, mark_complete_check, Access, ActivityId, ActivityStatus, Completion,
    ConnectionView, CurrentUser, GuidedSetupView, LinkStatus, TableSample, VerificationView,
};

/// `verification_results.kind` of "Verify the connection".
pub const KIND_CONNECTION: &str = "connection";
/// `verification_results.kind` of "Verify Impact data connection".
pub const KIND_DATA: &str = "data";

/// What `verification_results.detail` holds (JSON text).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Detail {
    pub message: String,
    #[serde(default)]
    pub outbound: Option<LinkStatus>,
    #[serde(default)]
    pub inbound: Option<LinkStatus>,
    #[serde(default)]
    pub tables: Vec<TableSample>,
    /// The provider's own measure of its call back to us, for diagnosis.
    #[serde(default)]
    pub provider_round_trip_ms: Option<u64>,
}

/// The activity's name in a URL: `verify_connection` or `verify-connection`.
pub fn parse_activity(raw: &str) -> Result<ActivityId, ServiceError> {
    ActivityId::parse(&raw.replace('-', "_")).ok_or_else(|| {
        let known: Vec<&str> = ActivityId::ALL.iter().map(|a| a.as_str()).collect();
        ServiceError::NotFound(format!(
            "There is no Guided Setup activity \"{raw}\". The activities are: {}.",
            known.join(", ")
        ))
    })
}

async fn completions(db: &Db) -> Result<Vec<Completion>, ServiceError> {
    let rows = sqlx::query(
        "SELECT activity, completed_by, completed_at FROM guided_completions ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let activity: String = r.try_get("activity")?;
        // An id a later version dropped is ignored rather than failing the whole page.
        let Some(activity) = ActivityId::parse(&activity) else {
            tracing::warn!(activity, "unknown Guided Setup activity in the database");
            continue;
        };
        out.push(Completion {
            activity,
            completed_by: r.try_get("completed_by")?,
            completed_at: clock::from_db(&r.try_get::<String, _>("completed_at")?)?,
        });
    }
    Ok(out)
}

fn verification_from_row(r: &AnyRow) -> Result<VerificationView, ServiceError> {
    let raw: String = r.try_get("detail")?;
    // Written by us; an unreadable one still shows, as its raw text.
    let detail: Detail = serde_json::from_str(&raw).unwrap_or_else(|_| Detail {
        message: raw.clone(),
        ..Detail::default()
    });
    Ok(VerificationView {
        ok: r.try_get::<i64, _>("ok")? != 0,
        latency_ms: r.try_get("latency_ms")?,
        detail: detail.message,
        outbound: detail.outbound,
        inbound: detail.inbound,
        tables: detail.tables,
        run_by: r.try_get("run_by")?,
        at: clock::from_db(&r.try_get::<String, _>("at")?)?,
    })
}

async fn latest_check(
    db: &Db,
    connection_id: i64,
    kind: &str,
) -> Result<Option<VerificationView>, ServiceError> {
    let row = sqlx::query(
        "SELECT ok, latency_ms, detail, run_by, at FROM verification_results \
         WHERE connection_id = $1 AND kind = $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(connection_id)
    .bind(kind)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(verification_from_row).transpose()
}

/// The registration section as it stands now.
#[tracing::instrument(skip(state))]
pub async fn view(state: &AppState) -> Result<GuidedSetupView, ServiceError> {
    view_of(state, &connections::list(&state.db).await?).await
}

/// The same, for a caller that has just read the connections (the home overview).
pub async fn view_of(
    state: &AppState,
    list: &[ConnectionView],
) -> Result<GuidedSetupView, ServiceError> {
    let connection = guided_connection(list, &state.settings.provider_url).cloned();
    let completions = completions(&state.db).await?;
    let (connection_check, data_check) = match &connection {
        Some(c) => (
            latest_check(&state.db, c.id, KIND_CONNECTION).await?,
            latest_check(&state.db, c.id, KIND_DATA).await?,
        ),
        None => (None, None),
    };
    let migration = match &connection {
        Some(c) => super::migration::store::latest(&state.db, c.id).await?,
        None => None,
    };
    Ok(
        GuidedSetupView::build(&completions, connection, connection_check, data_check)
            .with_migration(&completions, migration),
    )
}

/// "Mark Complete": Impact app admins only; refused with the reason while the activity is locked,
/// the connection is not onboarded, or a verification has not succeeded. Marking an activity
/// that is already complete changes nothing.
#[tracing::instrument(skip(state, user), fields(user = %user.email))]
pub async fn mark_complete(
    state: &AppState,
    activity: &str,
    user: &CurrentUser,
) -> Result<GuidedSetupView, ServiceError> {
    if !user.may(Access::Administer) {
        return Err(ServiceError::Forbidden(
            "Mark Complete needs the Impact app admin role. Ask an Impact app admin to mark it, or to give you the role."
                .into(),
        ));
    }
    let activity = parse_activity(activity)?;
    let setup = view(state).await?;
    if let Some(reason) = mark_complete_check(&setup, activity) {
        return Err(ServiceError::Conflict(reason));
    }
    if setup.status(activity) == ActivityStatus::Complete {
        return Ok(setup);
    }
    let mut tx = state.db.begin().await?;
    record_completion(
        &mut tx,
        activity,
        &user.email,
        setup.connection.as_ref().map(|c| c.id),
    )
    .await?;
    tx.commit().await?;
    view(state).await
}

/// Records who completed `activity`, now, in the audit log too.
pub(crate) async fn record_completion(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    activity: ActivityId,
    actor: &str,
    connection_id: Option<i64>,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO guided_completions (activity, completed_by, completed_at) VALUES ($1, $2, $3)",
    )
    .bind(activity.as_str())
    .bind(actor)
    .bind(clock::to_db(clock::now()))
    .execute(&mut **tx)
    .await?;
    audit::record(
        tx,
        actor,
        "Guided Setup activity completed",
        connection_id,
        activity.title(),
    )
    .await
}

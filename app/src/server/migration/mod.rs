//! "Start data migration": after both verifications, the provider's Impact tables are copied into
//! this instance's database, page by page, each page with its progress and its live event in one
//! transaction, under a lease. A migration cut short by a crash or a stop is carried on by the
//! sweep from its last stored page; a cancel takes effect at the next page (the page in flight is
//! not recorded); the end counts every table here against the provider's count.
mod run;
pub mod store;

use super::{
    audit, connections,
    error::ServiceError,
    events, guided,
    lease::{Lease, Work},
    AppState,
};
use crate::model::{
    cancel_refusal, grouped, onboarding_gaps, start_refusal, Access, ActivityId, ConnectionView,
    CurrentUser, EventBody, MigrationState, MigrationView, TableProgress, MAX_RECORDS_PER_TABLE,
    MAX_TABLES,
};

/// The connection a migration is about: Guided Setup's, with the activity unlocked and the
/// connection onboarded and Up.
async fn target(state: &AppState, user: &CurrentUser) -> Result<ConnectionView, ServiceError> {
    let (conn, _) = super::verify::target(state, ActivityId::MigrateData, user).await?;
    let gaps = onboarding_gaps(&conn);
    if !gaps.is_empty() {
        return Err(ServiceError::Conflict(format!(
            "The connection is not onboarded and Up: {}. Fix it on the Provider connection form first.",
            gaps.join("; ")
        )));
    }
    Ok(conn)
}

/// A table name we store: what the protocol allows, nothing a person could mistake.
fn usable_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The provider's table list, checked before anything is recorded.
fn checked_tables(list: Vec<super::provider::DataTable>) -> Result<Vec<TableProgress>, String> {
    if list.is_empty() {
        return Err("it lists no tables: no Impact data is shared with this instance yet".into());
    }
    if list.len() > MAX_TABLES {
        return Err(format!(
            "it lists {} tables, more than the {MAX_TABLES} a migration takes",
            list.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for t in list {
        if !usable_name(&t.name) || !seen.insert(t.name.clone()) {
            return Err(format!(
                "the table name {:?} is not usable (lowercase letters, digits and _, at most 64, each once)",
                t.name.chars().take(80).collect::<String>()
            ));
        }
        if !(0..=MAX_RECORDS_PER_TABLE).contains(&t.rows) {
            return Err(format!(
                "the table {} announces {} records (at most {} are taken)",
                t.name,
                t.rows,
                grouped(MAX_RECORDS_PER_TABLE)
            ));
        }
        out.push(TableProgress {
            name: t.name,
            total: t.rows,
            copied: 0,
            done: false,
            stored: None,
        });
    }
    Ok(out)
}

fn event(
    migration_id: i64,
    state: MigrationState,
    tables: Vec<TableProgress>,
    message: &str,
    started_by: &str,
) -> EventBody {
    EventBody::Migration {
        migration_id,
        state,
        tables,
        message: message.to_string(),
        started_by: started_by.to_string(),
    }
}

/// Starts a migration. The provider's table list is read first: a provider that cannot answer
/// changes nothing. The migration, its tables, its lease, its first event and the audit line are
/// one transaction; of two starts racing, one wins (one running migration per connection).
#[tracing::instrument(skip(state, user), fields(user = %user.email))]
pub async fn start(state: &AppState, user: &CurrentUser) -> Result<MigrationView, ServiceError> {
    let conn = target(state, user).await?;
    if let Some(reason) = start_refusal(store::latest(&state.db, conn.id).await?.as_ref()) {
        return Err(ServiceError::Conflict(reason));
    }
    let creds = connections::credentials(state, conn.id)
        .await?
        .ok_or_else(|| {
            ServiceError::Conflict(
                "This connection holds no provider credentials, so nothing can be asked of the provider."
                    .into(),
            )
        })?;
    let listed = state
        .provider_at(&conn.provider_url())
        .data_tables(&creds)
        .await
        .map_err(|e| {
            ServiceError::Provider(format!(
                "The provider did not list its tables: {}. Nothing was started; try again once it answers.",
                e.clause()
            ))
        })?;
    let tables = checked_tables(listed.tables).map_err(|why| {
        ServiceError::Provider(format!(
            "The provider's table list cannot be used: {why}. Nothing was started."
        ))
    })?;
    let total: i64 = tables.iter().map(|t| t.total).sum();
    let message = format!(
        "Data migration started: {} tables, {} records.",
        tables.len(),
        grouped(total)
    );
    let mut tx = state.db.begin().await?;
    let id = match store::insert(&mut tx, conn.id, &user.email, &tables, &message).await {
        Ok(id) => id,
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            return Err(ServiceError::Conflict(
                "A data migration was just started for this connection. Wait for it to finish, or cancel it first."
                    .into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let Some(lease) = state
        .work
        .leases
        .claim_in(&mut tx, Work::Migration(conn.id))
        .await?
    else {
        return Err(ServiceError::Conflict(
            "The previous data migration is still stopping. Try again in a few seconds.".into(),
        ));
    };
    let started = events::append(
        &mut tx,
        conn.id,
        event(id, MigrationState::Running, tables, &message, &user.email),
    )
    .await?;
    audit::record(
        &mut tx,
        &user.email,
        "Data migration started",
        Some(conn.id),
        &message,
    )
    .await?;
    tx.commit().await?;
    state.hub.publish(vec![started]);
    spawn(state.clone(), conn.id, id, lease);
    latest_of(state, conn.id).await
}

async fn latest_of(state: &AppState, connection_id: i64) -> Result<MigrationView, ServiceError> {
    store::latest(&state.db, connection_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("There is no data migration.".into()))
}

/// Cancels the running migration at once; its runner stops before recording another page. The
/// records copied so far stay (starting again copies every table anew, replacing them).
#[tracing::instrument(skip(state, user), fields(user = %user.email))]
pub async fn cancel(state: &AppState, user: &CurrentUser) -> Result<MigrationView, ServiceError> {
    if !user.may(Access::ManageConnection) {
        return Err(ServiceError::Forbidden(
            Access::ManageConnection.refusal().into(),
        ));
    }
    let setup = guided::view(state).await?;
    let conn = setup.connection.ok_or_else(|| {
        ServiceError::Conflict("There is no provider connection, so no data migration.".into())
    })?;
    let latest = store::latest(&state.db, conn.id).await?;
    if let Some(reason) = cancel_refusal(latest.as_ref()) {
        return Err(ServiceError::Conflict(reason));
    }
    let Some(m) = latest else {
        return Err(ServiceError::Conflict(
            "No data migration has been started.".into(),
        ));
    };
    let mut tx = state.db.begin().await?;
    // The migration's row first: a page being stored holds it until it commits (PostgreSQL;
    // SQLite's write transaction waits as a whole), so the counts read next include that page
    // and the cancel's words and event match what is stored.
    if !store::still_running(&mut tx, m.id, "Cancelling.").await? {
        return Err(ServiceError::Conflict(
            "The data migration ended just now; nothing to cancel.".into(),
        ));
    }
    let tables = store::tables_in(&mut tx, m.id).await?;
    let copied: i64 = tables.iter().map(|t| t.copied).sum();
    let total: i64 = tables.iter().map(|t| t.total).sum();
    let message = format!(
        "Data migration cancelled by {} after {} of {} records. The records copied so far are kept; starting again copies every table anew.",
        user.email,
        grouped(copied),
        grouped(total)
    );
    if !store::end(&mut tx, m.id, MigrationState::Cancelled, &message).await? {
        return Err(ServiceError::Conflict(
            "The data migration ended just now; nothing to cancel.".into(),
        ));
    }
    let ended = events::append(
        &mut tx,
        conn.id,
        event(
            m.id,
            MigrationState::Cancelled,
            tables,
            &message,
            &m.started_by,
        ),
    )
    .await?;
    audit::record(
        &mut tx,
        &user.email,
        "Data migration cancelled",
        Some(conn.id),
        &message,
    )
    .await?;
    tx.commit().await?;
    state.hub.publish(vec![ended]);
    latest_of(state, conn.id).await
}

/// The connection's latest migration, for the REST API.
pub async fn latest(
    state: &AppState,
    connection_id: i64,
) -> Result<Option<MigrationView>, ServiceError> {
    store::latest(&state.db, connection_id).await
}

fn spawn(state: AppState, connection_id: i64, migration_id: i64, lease: Lease) {
    let work = state.work.clone();
    work.spawn(lease, move |lease| async move {
        run::run(&state, connection_id, migration_id, &lease).await;
    });
}

/// A running migration that no replica holds (its holder died or stopped): claims it and carries
/// it on after its last stored page. False when another replica holds it or it has ended.
pub async fn take_over(
    state: &AppState,
    connection_id: i64,
    migration_id: i64,
) -> Result<bool, ServiceError> {
    let Some(lease) = state
        .work
        .leases
        .claim(Work::Migration(connection_id))
        .await?
    else {
        return Ok(false);
    };
    // It may have ended between our look and our claim.
    let latest = store::latest(&state.db, connection_id).await?;
    let Some(m) = latest.filter(|m| m.id == migration_id && m.state == MigrationState::Running)
    else {
        lease.release().await;
        return Ok(false);
    };
    tracing::info!(
        connection = connection_id,
        migration = migration_id,
        "carrying on an interrupted data migration"
    );
    let message = format!(
        "Data migration carried on after a restart: {}.",
        m.summary()
    );
    let mut tx = state.db.begin().await?;
    let resumed = if store::still_running(&mut tx, m.id, &message).await? {
        let e = events::append(
            &mut tx,
            connection_id,
            event(
                m.id,
                MigrationState::Running,
                m.tables,
                &message,
                &m.started_by,
            ),
        )
        .await?;
        lease.hold_in(&mut tx).await?;
        tx.commit().await?;
        Some(e)
    } else {
        None
    };
    let Some(resumed) = resumed else {
        lease.release().await;
        return Ok(false);
    };
    state.hub.publish(vec![resumed]);
    spawn(state.clone(), connection_id, migration_id, lease);
    Ok(true)
}

/// Whether a migration runs for this connection now (off-boarding waits for it).
pub async fn is_running(state: &AppState, connection_id: i64) -> Result<bool, ServiceError> {
    Ok(store::latest(&state.db, connection_id)
        .await?
        .is_some_and(|m| m.state == MigrationState::Running))
}

//! The migration's runner: table after table, page after page from the cursor the record holds,
//! then the count. Each page is checked before it is stored; a provider that stops answering is
//! asked again twice, then the migration fails with what was copied and what to do.
use std::{collections::HashSet, time::Duration};

use super::{
    super::{
        audit, connections,
        error::ServiceError,
        events, guided,
        lease::Lease,
        provider::{Credentials, DataPage, ProviderClient},
        provider_error::ProviderError,
        traffic, AppState,
    },
    event,
    store::{self, Record},
};
use crate::model::{
    end_message, grouped, ActivityId, Actor, MigrationState, TableProgress, PAGE_SIZE,
};

/// The longest record id and record we keep: bounds on what a provider can make us store.
const MAX_ID_CHARS: usize = 128;
const MAX_RECORD_BYTES: usize = 64 * 1024;
const MAX_CURSOR_CHARS: usize = 256;
/// Waits before asking for a page again after a failure.
const RETRY_AFTER: [Duration; 2] = [Duration::from_millis(500), Duration::from_millis(1500)];

/// Why the run stopped without finishing.
enum Stop {
    /// Cancelled, or another replica holds it now: nothing more to record here.
    Quietly,
    /// The migration fails, with these words.
    Failed(String),
}

impl From<sqlx::Error> for Stop {
    fn from(e: sqlx::Error) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<ServiceError> for Stop {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::LeaseLost(_) => Stop::Quietly,
            other => {
                tracing::warn!(error = ?other, "data migration step failed");
                Stop::Failed(format!(
                    "The data migration stopped on this instance's side: {}",
                    other.to_api().message
                ))
            }
        }
    }
}

pub(super) async fn run(state: &AppState, connection_id: i64, migration_id: i64, lease: &Lease) {
    let stopped = match copy_all(state, connection_id, migration_id, lease).await {
        Ok(()) => finish(state, connection_id, migration_id, lease).await,
        Err(stop) => Err(stop),
    };
    match stopped {
        Ok(()) | Err(Stop::Quietly) => {}
        Err(Stop::Failed(why)) => {
            if let Err(e) = fail(state, connection_id, migration_id, lease, &why).await {
                tracing::warn!(error = %e, "recording the data migration's failure failed");
            }
        }
    }
}

async fn copy_all(
    state: &AppState,
    connection_id: i64,
    migration_id: i64,
    lease: &Lease,
) -> Result<(), Stop> {
    let conn = connections::get(&state.db, connection_id).await?;
    let creds = connections::credentials(state, connection_id)
        .await?
        .ok_or_else(|| {
            Stop::Failed("The connection no longer holds provider credentials.".into())
        })?;
    let client = state.provider_at(&conn.provider_url());
    while let Some((table, after)) = store::next_table(&state.db, migration_id).await? {
        traffic::count(&state.db, connection_id, traffic::Direction::Outbound).await;
        let page = fetch(&client, &creds, &table, after.as_deref())
            .await
            .map_err(|e| stopped_at(&table, &e))?;
        let records = checked(&page, after.as_deref()).map_err(|why| {
            Stop::Failed(format!(
                "The provider sent a page of {table} that cannot be stored: {why}. The records copied so far are kept; contact the Customer Service Manager if it happens again."
            ))
        })?;
        if !store_page(
            state,
            connection_id,
            migration_id,
            lease,
            &table,
            &records,
            page.next.as_deref(),
        )
        .await?
        {
            return Err(Stop::Quietly);
        }
    }
    Ok(())
}

/// The failure's words (each table's progress travels with the failure's event).
fn stopped_at(table: &str, e: &ProviderError) -> Stop {
    Stop::Failed(format!(
        "The provider stopped sending {table}: {}. The records copied so far are kept; select \"Start data migration again\" once the provider answers.",
        e.clause()
    ))
}

/// A page, asked for again after a failure the provider may get over (not a refusal).
async fn fetch(
    client: &ProviderClient,
    creds: &Credentials,
    table: &str,
    after: Option<&str>,
) -> Result<DataPage, ProviderError> {
    let mut waits = RETRY_AFTER.iter();
    loop {
        match client.data_page(creds, table, after, PAGE_SIZE).await {
            Ok(page) => return Ok(page),
            Err(e) => match waits.next() {
                Some(wait) if retriable(&e) => {
                    tracing::info!(table, error = %e, "a data page failed; asking again");
                    tokio::time::sleep(*wait).await;
                }
                _ => return Err(e),
            },
        }
    }
}

/// Unreachable, timed out or a 5xx: worth asking again. A 4xx is an answer.
fn retriable(e: &ProviderError) -> bool {
    match e {
        ProviderError::Status { status, .. } => *status >= 500,
        ProviderError::Malformed(_) | ProviderError::TooLarge(_) => false,
        _ => true,
    }
}

/// The page's records as we store them, or why it cannot be stored.
fn checked(page: &DataPage, after: Option<&str>) -> Result<Vec<Record>, String> {
    if page.records.len() > PAGE_SIZE {
        return Err(format!(
            "{} records where at most {PAGE_SIZE} were asked for",
            page.records.len()
        ));
    }
    if let Some(next) = &page.next {
        if next.is_empty() || next.len() > MAX_CURSOR_CHARS {
            return Err(format!(
                "its next-page cursor is empty or longer than {MAX_CURSOR_CHARS} characters"
            ));
        }
        // A page that does not move on would be asked for for ever.
        if page.records.is_empty() || Some(next.as_str()) == after {
            return Err("it is empty or repeats the cursor, yet says more follows".into());
        }
    }
    let mut ids = HashSet::with_capacity(page.records.len());
    page.records
        .iter()
        .map(|r| {
            let id = match &r["id"] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return Err("a record without an \"id\"".to_string()),
            };
            if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
                return Err(format!(
                    "a record id that is empty or longer than {MAX_ID_CHARS} characters"
                ));
            }
            if !ids.insert(id.clone()) {
                return Err(format!("the record {id} appears twice"));
            }
            let body = r.to_string();
            if body.len() > MAX_RECORD_BYTES {
                return Err(format!(
                    "the record {id} is larger than {} KiB",
                    MAX_RECORD_BYTES / 1024
                ));
            }
            Ok(Record { id, body })
        })
        .collect()
}

/// One page as one transaction: the records, the table's progress, the event, the lease. False
/// when the migration was cancelled meanwhile (nothing of the page is recorded).
async fn store_page(
    state: &AppState,
    connection_id: i64,
    migration_id: i64,
    lease: &Lease,
    table: &str,
    records: &[Record],
    next: Option<&str>,
) -> Result<bool, ServiceError> {
    let mut tx = state.db.begin().await?;
    // Read again after the page is stored (below), not added up here: the table's row is what
    // the event reports.
    let (copied_before, total) = store::tables_in(&mut tx, migration_id)
        .await?
        .iter()
        .find(|t| t.name == table)
        .map_or((0, 0), |t| (t.copied, t.total));
    let message = format!(
        "Copying {table}: {} of {} records.",
        grouped(copied_before + records.len() as i64),
        grouped(total)
    );
    if !store::still_running(&mut tx, migration_id, &message).await? {
        return Ok(false);
    }
    store::store_page(&mut tx, connection_id, migration_id, table, records, next).await?;
    let tables = store::tables_in(&mut tx, migration_id).await?;
    let started_by = started_by(&mut tx, migration_id).await?;
    let moved = events::append(
        &mut tx,
        connection_id,
        event(
            migration_id,
            MigrationState::Running,
            tables,
            &message,
            &started_by,
        ),
    )
    .await?;
    lease.hold_in(&mut tx).await?;
    tx.commit().await?;
    state.hub.publish(vec![moved]);
    Ok(true)
}

async fn started_by(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    migration_id: i64,
) -> Result<String, ServiceError> {
    use sqlx::Row;
    Ok(
        sqlx::query("SELECT started_by FROM data_migrations WHERE id = $1")
            .bind(migration_id)
            .fetch_one(&mut **tx)
            .await?
            .try_get("started_by")?,
    )
}

/// Every page stored: counts each table here, ends the migration as the counts say, and on a
/// match records the activity complete (by whoever started it).
async fn finish(
    state: &AppState,
    connection_id: i64,
    migration_id: i64,
    lease: &Lease,
) -> Result<(), Stop> {
    let counts = store::stored_counts(&state.db, connection_id).await?;
    let mut tables: Vec<TableProgress> = store::tables(&state.db, migration_id).await?;
    for t in &mut tables {
        t.stored = Some(counts.get(&t.name).copied().unwrap_or(0));
    }
    let (outcome, message) = end_message(&tables);
    let mut tx = state.db.begin().await?;
    if !store::end(&mut tx, migration_id, outcome, &message).await? {
        return Err(Stop::Quietly);
    }
    let started_by = started_by(&mut tx, migration_id).await?;
    if outcome == MigrationState::Completed {
        guided::record_completion(
            &mut tx,
            ActivityId::MigrateData,
            &started_by,
            Some(connection_id),
        )
        .await?;
    }
    let verdict = if outcome == MigrationState::Completed {
        "completed"
    } else {
        "failed"
    };
    audit::record(
        &mut tx,
        Actor::System.as_str(),
        &format!("Data migration {verdict}"),
        Some(connection_id),
        &message,
    )
    .await?;
    // Events never carry the counts made here (the page reads them): `stored` stays None.
    for t in &mut tables {
        t.stored = None;
    }
    let ended = events::append(
        &mut tx,
        connection_id,
        event(migration_id, outcome, tables, &message, &started_by),
    )
    .await?;
    lease.hold_in(&mut tx).await?;
    tx.commit().await?;
    state.hub.publish(vec![ended]);
    tracing::info!(connection = connection_id, migration = migration_id, %message, "data migration ended");
    Ok(())
}

async fn fail(
    state: &AppState,
    connection_id: i64,
    migration_id: i64,
    lease: &Lease,
    why: &str,
) -> Result<(), ServiceError> {
    let mut tx = state.db.begin().await?;
    if !store::end(&mut tx, migration_id, MigrationState::Failed, why).await? {
        return Ok(());
    }
    let tables = store::tables_in(&mut tx, migration_id).await?;
    let started_by = started_by(&mut tx, migration_id).await?;
    audit::record(
        &mut tx,
        Actor::System.as_str(),
        "Data migration failed",
        Some(connection_id),
        why,
    )
    .await?;
    let ended = events::append(
        &mut tx,
        connection_id,
        event(
            migration_id,
            MigrationState::Failed,
            tables,
            why,
            &started_by,
        ),
    )
    .await?;
    lease.hold_in(&mut tx).await?;
    tx.commit().await?;
    state.hub.publish(vec![ended]);
    Ok(())
}

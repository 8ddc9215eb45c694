//! What a data migration keeps in the database: the migration, its tables with where each stands
//! (the provider's cursor after the last page stored), and the records themselves. A page, its
//! progress and its event are one transaction, so a migration cut short carries on exactly after
//! the last page that was recorded, and no record is counted twice.
use sqlx::{any::AnyRow, Any, Row, Transaction};

use super::super::{clock, error::ServiceError, Db};
use crate::model::{MigrationState, MigrationView, TableProgress};

fn table_from_row(r: &AnyRow) -> Result<TableProgress, ServiceError> {
    Ok(TableProgress {
        name: r.try_get("name")?,
        total: r.try_get("total")?,
        copied: r.try_get("copied")?,
        done: r.try_get::<i64, _>("done")? != 0,
        stored: None,
    })
}

const TABLES: &str = "SELECT name, total, copied, done FROM data_migration_tables \
                      WHERE migration_id = $1 ORDER BY ord";

/// The migration's tables, in order, as they stand.
pub async fn tables(db: &Db, migration_id: i64) -> Result<Vec<TableProgress>, ServiceError> {
    let rows = sqlx::query(TABLES)
        .bind(migration_id)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(table_from_row).collect()
}

/// The same, inside a transaction (what the step's event reports).
pub async fn tables_in(
    tx: &mut Transaction<'static, Any>,
    migration_id: i64,
) -> Result<Vec<TableProgress>, ServiceError> {
    let rows = sqlx::query(TABLES)
        .bind(migration_id)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(table_from_row).collect()
}

/// The next table to copy: its name and the cursor after its last stored page.
pub async fn next_table(
    db: &Db,
    migration_id: i64,
) -> Result<Option<(String, Option<String>)>, ServiceError> {
    let row = sqlx::query(
        "SELECT name, after_cursor FROM data_migration_tables \
         WHERE migration_id = $1 AND done = 0 ORDER BY ord LIMIT 1",
    )
    .bind(migration_id)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| Ok((r.try_get("name")?, r.try_get("after_cursor")?)))
        .transpose()
}

/// How many records of each table this connection holds now, counted here.
pub async fn stored_counts(
    db: &Db,
    connection_id: i64,
) -> Result<std::collections::HashMap<String, i64>, ServiceError> {
    let rows = sqlx::query(
        "SELECT tbl, COUNT(*) AS n FROM impact_records WHERE connection_id = $1 GROUP BY tbl",
    )
    .bind(connection_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("tbl")?, r.try_get("n")?)))
        .collect()
}

/// The connection's latest migration; once it has ended, each table with the records counted
/// here.
pub async fn latest(db: &Db, connection_id: i64) -> Result<Option<MigrationView>, ServiceError> {
    let row = sqlx::query(
        "SELECT id, state, started_by, started_at, finished_at, detail FROM data_migrations \
         WHERE connection_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(connection_id)
    .fetch_optional(&db.pool)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let id: i64 = r.try_get("id")?;
    let raw_state: String = r.try_get("state")?;
    let state = MigrationState::from_db(&raw_state).ok_or_else(|| {
        ServiceError::Unexpected(anyhow::anyhow!("unknown migration state {raw_state:?}"))
    })?;
    let mut tables = tables(db, id).await?;
    if state.is_final() {
        let counts = stored_counts(db, connection_id).await?;
        for t in &mut tables {
            t.stored = Some(counts.get(&t.name).copied().unwrap_or(0));
        }
    }
    let finished: Option<String> = r.try_get("finished_at")?;
    Ok(Some(MigrationView {
        id,
        connection_id,
        state,
        tables,
        started_by: r.try_get("started_by")?,
        started_at: clock::from_db(&r.try_get::<String, _>("started_at")?)?,
        finished_at: finished.as_deref().map(clock::from_db).transpose()?,
        detail: r.try_get("detail")?,
    }))
}

/// Connections with a migration running (for the sweep: a running one nobody holds is carried
/// on), with that migration's id.
pub async fn running(db: &Db) -> Result<Vec<(i64, i64)>, ServiceError> {
    let rows = sqlx::query("SELECT connection_id, id FROM data_migrations WHERE state = 'running'")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("connection_id")?, r.try_get("id")?)))
        .collect()
}

/// Records a new running migration and its tables; returns its id.
pub async fn insert(
    tx: &mut Transaction<'static, Any>,
    connection_id: i64,
    started_by: &str,
    tables: &[TableProgress],
    detail: &str,
) -> Result<i64, sqlx::Error> {
    let id: i64 = sqlx::query(
        "INSERT INTO data_migrations (connection_id, state, started_by, started_at, detail) \
         VALUES ($1, 'running', $2, $3, $4) RETURNING id",
    )
    .bind(connection_id)
    .bind(started_by)
    .bind(clock::to_db(clock::now()))
    .bind(detail)
    .fetch_one(&mut **tx)
    .await?
    .try_get("id")?;
    for (ord, t) in tables.iter().enumerate() {
        sqlx::query(
            "INSERT INTO data_migration_tables (migration_id, ord, name, total, copied, after_cursor, done) \
             VALUES ($1, $2, $3, $4, 0, NULL, 0)",
        )
        .bind(id)
        .bind(ord as i64)
        .bind(&t.name)
        .bind(t.total)
        .execute(&mut **tx)
        .await?;
    }
    Ok(id)
}

/// Marks the step as the running migration's, with `detail` as its latest words. False when the
/// migration is no longer running (cancelled meanwhile): the step must not be recorded.
pub async fn still_running(
    tx: &mut Transaction<'static, Any>,
    migration_id: i64,
    detail: &str,
) -> Result<bool, ServiceError> {
    let n =
        sqlx::query("UPDATE data_migrations SET detail = $1 WHERE id = $2 AND state = 'running'")
            .bind(detail)
            .bind(migration_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    Ok(n == 1)
}

/// Ends the running migration in `state`. False when it had already ended (a cancel and the
/// last page racing: the first to commit decides).
pub async fn end(
    tx: &mut Transaction<'static, Any>,
    migration_id: i64,
    state: MigrationState,
    detail: &str,
) -> Result<bool, ServiceError> {
    let n = sqlx::query(
        "UPDATE data_migrations SET state = $1, finished_at = $2, detail = $3 \
         WHERE id = $4 AND state = 'running'",
    )
    .bind(state.as_db())
    .bind(clock::to_db(clock::now()))
    .bind(detail)
    .bind(migration_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// One record of a page: the provider's id for it and the record as JSON text.
pub struct Record {
    pub id: String,
    pub body: String,
}

/// Rows per INSERT statement: 6 parameters each stays far below either backend's limit.
const ROWS_PER_STATEMENT: usize = 250;

/// Stores a page: its records (a record already here is replaced), the table's progress, and,
/// on the table's last page, drops the records the provider no longer has (written by an earlier
/// migration, not this one), so the table here is the provider's.
pub async fn store_page(
    tx: &mut Transaction<'static, Any>,
    connection_id: i64,
    migration_id: i64,
    table: &str,
    records: &[Record],
    next: Option<&str>,
) -> Result<(), ServiceError> {
    let now = clock::to_db(clock::now());
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO impact_records (connection_id, tbl, record_id, body, migration_id, migrated_at) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 6;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6
            ));
        }
        sql.push_str(
            " ON CONFLICT (connection_id, tbl, record_id) DO UPDATE SET body = excluded.body, \
             migration_id = excluded.migration_id, migrated_at = excluded.migrated_at",
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(connection_id)
                .bind(table)
                .bind(&r.id)
                .bind(&r.body)
                .bind(migration_id)
                .bind(&now);
        }
        q.execute(&mut **tx).await?;
    }
    sqlx::query(
        "UPDATE data_migration_tables SET copied = copied + $1, after_cursor = $2, done = $3 \
         WHERE migration_id = $4 AND name = $5",
    )
    .bind(records.len() as i64)
    .bind(next)
    .bind(i64::from(next.is_none()))
    .bind(migration_id)
    .bind(table)
    .execute(&mut **tx)
    .await?;
    if next.is_none() {
        sqlx::query(
            "DELETE FROM impact_records WHERE connection_id = $1 AND tbl = $2 AND migration_id <> $3",
        )
        .bind(connection_id)
        .bind(table)
        .bind(migration_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

//! One database handle over SQLite or PostgreSQL. All SQL is written to run on both; each
//! backend has its own migrations only where DDL differs.
use anyhow::Context;
use sqlx::{any::AnyPoolOptions, AnyPool};

use super::error::ServiceError;

/// A stored fixed string read back as its value (`parse` is the type's `from_db`). One this
/// build does not know is an unexpected error naming `what`, never passed on as it is.
pub fn decode<T>(
    value: String,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Result<T, ServiceError> {
    parse(&value).ok_or_else(|| {
        ServiceError::Unexpected(anyhow::anyhow!("stored {what} {value:?} is unknown"))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Db {
    /// Tells the other replicas (their relays `LISTEN`, see `relay`) on PostgreSQL, outside any
    /// transaction; with SQLite there is one process and nobody else to tell.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite:// or postgres://");
        };
        let mut options = AnyPoolOptions::new().max_connections(8);
        if backend == Backend::Sqlite {
            // WAL + a busy timeout let readers and the writer share the file.
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout = 5000")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = options
            .connect(url)
            .await
            .with_context(|| format!("cannot open the database ({})", redact(url)))?;
        match backend {
            Backend::Sqlite => migrate_sqlite(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS
                .run(&pool)
                .await
                .context("database migration failed")?,
        }
        Ok(Self { pool, backend })
    }

    /// A transaction that will write. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`, waiting up to the busy timeout): a deferred one that read first fails without
    /// waiting when another writer (a heartbeat, say) commits before its first write.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

/// SQLite's migrations, on one connection with foreign keys off: rebuilding a table others refer
/// to (SQLite's way to change a column's constraints) needs them off, and SQLite ignores the
/// setting inside the transaction each migration runs in. They are checked before they are
/// turned back on: a migration that broke a reference fails the start.
async fn migrate_sqlite(pool: &sqlx::AnyPool) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await?;
    let migrated = SQLITE_MIGRATIONS.run(&mut *conn).await;
    let broken = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&mut *conn)
        .await;
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await?;
    migrated.context("database migration failed")?;
    let broken = broken?.len();
    anyhow::ensure!(
        broken == 0,
        "database migration failed: {broken} rows refer to rows that do not exist"
    );
    Ok(())
}

/// Database URLs can carry a password: keep it out of logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

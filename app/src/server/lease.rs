//! Leases on background work, kept in the database so that every replica on it agrees: a piece
//! of work runs where its lease is held, a holder that dies loses it when it expires, and one
//! that stops hands it back. A claim is one conditional upsert (atomic on SQLite and PostgreSQL
//! alike: of two claimers exactly one writes the row), and each step of the work renews the
//! lease in the step's own transaction, so a holder that lost its lease cannot record anything.
use std::{sync::Arc, time::Duration};

use sqlx::{Any, Transaction};

use super::{error::ServiceError, Db};

/// What is leased: one connection's scan or onboarding run, or the email delivery pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Work {
    Scan(i64),
    Onboarding(i64),
    Outbox,
    /// Rotating a connection's credentials (see `rotate`).
    Rotation(i64),
    /// A connection's data migration (see `migration`).
    Migration(i64),
}

impl Work {
    pub fn key(&self) -> String {
        match self {
            Work::Scan(id) => format!("scan:{id}"),
            Work::Onboarding(id) => format!("onboarding:{id}"),
            Work::Outbox => "outbox".into(),
            Work::Rotation(id) => format!("rotation:{id}"),
            Work::Migration(id) => format!("migration:{id}"),
        }
    }
}

/// This process's leases: who it is (a fresh id per start, so a restarted replica never takes
/// its dead predecessor's leases for its own) and how long a lease lasts without renewal.
#[derive(Clone, Debug)]
pub struct Leases {
    db: Db,
    owner: Arc<str>,
    ttl: Duration,
}

fn now_ms() -> i64 {
    super::clock::now().timestamp_millis()
}

impl Leases {
    pub fn new(db: Db, ttl: Duration) -> Self {
        let tag = super::random::hex_string::<8>();
        Self {
            db,
            owner: format!("{}-{tag}", std::process::id()).into(),
            ttl,
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn expiry(&self) -> i64 {
        now_ms().saturating_add(self.ttl.as_millis() as i64)
    }

    /// Claims `work` unless a live lease (this process's included) holds it.
    pub async fn claim(&self, work: Work) -> Result<Option<Lease>, ServiceError> {
        let mut tx = self.db.begin().await?;
        let lease = self.claim_in(&mut tx, work).await?;
        tx.commit().await?;
        Ok(lease)
    }

    /// `claim` inside the caller's transaction: the work and what starts it commit together.
    pub async fn claim_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        work: Work,
    ) -> Result<Option<Lease>, ServiceError> {
        let claimed = sqlx::query(
            "INSERT INTO work_leases (work, owner, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (work) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE work_leases.expires_at < $4",
        )
        .bind(work.key())
        .bind(&*self.owner)
        .bind(self.expiry())
        .bind(now_ms())
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1;
        Ok(claimed.then(|| Lease {
            work,
            leases: self.clone(),
        }))
    }

    /// Hands back every lease this process holds (a graceful stop), so that other replicas
    /// take the work over at once instead of after expiry.
    pub async fn release_all(&self) -> Result<u64, ServiceError> {
        Ok(sqlx::query("DELETE FROM work_leases WHERE owner = $1")
            .bind(&*self.owner)
            .execute(&self.db.pool)
            .await?
            .rows_affected())
    }
}

/// A held lease on one piece of work.
#[derive(Debug)]
pub struct Lease {
    work: Work,
    leases: Leases,
}

impl Lease {
    pub fn work(&self) -> Work {
        self.work
    }

    /// The renewal: pushes the expiry forward if this process still holds the lease.
    fn renewal(&self) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments<'static>> {
        sqlx::query("UPDATE work_leases SET expires_at = $1 WHERE work = $2 AND owner = $3")
            .bind(self.leases.expiry())
            .bind(self.work.key())
            .bind(self.leases.owner.to_string())
    }

    /// Pushes the expiry forward. False when the lease is no longer this process's (it expired
    /// and another replica claimed it): the work must stop.
    pub async fn renew(&self) -> Result<bool, ServiceError> {
        let renewed = self.renewal().execute(&self.leases.db.pool).await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Renews the lease inside a step's transaction, or refuses the step: what a holder that
    /// lost its lease (paused past the expiry, say) would write is rolled back with it.
    pub async fn hold_in(&self, tx: &mut Transaction<'static, Any>) -> Result<(), ServiceError> {
        match self.renewal().execute(&mut **tx).await?.rows_affected() == 1 {
            true => Ok(()),
            false => Err(ServiceError::LeaseLost(self.work.key())),
        }
    }

    /// Gives the lease up once the work is done (a no-op when another replica holds it now).
    pub async fn release(&self) {
        let gone = sqlx::query("DELETE FROM work_leases WHERE work = $1 AND owner = $2")
            .bind(self.work.key())
            .bind(&*self.leases.owner)
            .execute(&self.leases.db.pool)
            .await;
        if let Err(e) = gone {
            // It expires on its own; until then no other replica takes the (finished) work.
            tracing::warn!(work = %self.work.key(), error = %e, "releasing a lease failed");
        }
    }
}

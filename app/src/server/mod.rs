//! Server-only code: persistence and services. Compiled only with the `ssr` feature, so
//! sqlx and friends never reach the WASM bundle.
pub mod accounts;
pub mod audit;
pub mod clock;
pub mod companies;
pub mod connections;
pub mod db;
pub mod error;
pub mod events;
pub mod guided;
pub mod invitations;
pub mod links;
pub mod onboarding;
pub mod outbox;
pub mod provider;
pub mod scan;
pub mod sealed;
pub mod signing;
pub mod verify;

use anyhow::Context;
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use rand::RngCore;
use sqlx::Row;

pub use db::Db;
pub use error::ServiceError;
use links::LinkSigner;

/// Settings that come from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL of this app as the administrator reaches it; registration links point here.
    pub public_url: String,
    /// The provider (IDI) instance URL put on new invitations.
    pub provider_url: String,
    /// How long a registration link stays valid.
    pub link_ttl_hours: i64,
    /// Time limit for each provider call and each health check.
    pub provider_timeout: std::time::Duration,
    /// `smtp://host:port`: emails are also delivered through it (the outbox keeps them anyway).
    pub smtp_url: Option<String>,
    pub mail_from: String,
}

/// Everything a request handler or server function needs, handed to axum and to Leptos.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    pub settings: Settings,
    pub signer: LinkSigner,
    pub hub: events::Hub,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db({:?})", self.backend)
    }
}

impl AppState {
    pub async fn connect(database_url: &str, settings: Settings) -> anyhow::Result<Self> {
        let db = Db::connect(database_url).await?;
        let key = link_key(&db).await?;
        Ok(Self {
            db,
            settings,
            signer: LinkSigner::new(key),
            hub: events::Hub::new(4096),
        })
    }
}

/// The registration-link signing key: IMPACT_LINK_KEY if set, else one generated at first start
/// and kept in the database so links survive restarts.
async fn link_key(db: &Db) -> anyhow::Result<Vec<u8>> {
    if let Ok(k) = std::env::var("IMPACT_LINK_KEY") {
        if k.len() >= 32 {
            return Ok(k.into_bytes());
        }
        anyhow::bail!("IMPACT_LINK_KEY must be at least 32 characters");
    }
    let mut fresh = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut fresh);
    // Insert-if-absent, then read back: two processes starting together agree on one key.
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ('link_key', $1) ON CONFLICT (key) DO NOTHING",
    )
    .bind(B64.encode(fresh))
    .execute(&db.pool)
    .await
    .context("cannot store the link signing key")?;
    let row = sqlx::query("SELECT value FROM settings WHERE key = 'link_key'")
        .fetch_one(&db.pool)
        .await?;
    let stored: String = row.try_get("value")?;
    B64.decode(stored)
        .context("the stored link signing key is corrupt")
}

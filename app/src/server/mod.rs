//! Server-only code: persistence and services. Compiled only with the `ssr` feature, so
//! sqlx and friends never reach the WASM bundle.
pub mod accounts;
pub mod activate;
pub mod audit;
pub mod background;
pub mod clock;
pub mod commands;
pub mod companies;
pub mod connections;
pub mod dashboard;
pub mod db;
pub mod digest;
pub mod error;
pub mod events;
pub mod guided;
pub mod heartbeat;
pub mod heartbeat_history;
pub mod html;
pub mod hub;
pub mod invitations;
pub mod issues;
pub mod key_source;
pub mod lease;
pub mod links;
pub mod metrics;
pub mod migration;
pub mod offboard;
pub mod onboarding;
pub mod outbound;
pub mod outbox;
pub mod overview;
pub mod provider;
pub mod provider_error;
pub mod random;
pub mod relay;
pub mod replay;
pub mod request_id;
pub mod reregister;
pub mod revocations;
pub mod rotate;
pub mod scan;
pub mod sealed;
pub mod signing;
pub mod smtp;
pub mod stream_slots;
pub mod streams;
pub mod sweep;
pub mod synced;
pub mod throttle;
pub mod tls_problem;
pub mod traffic;
pub mod verify;

use anyhow::Context;
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use rand::RngCore;
use sqlx::Row;

use crate::model::{FieldError, ProviderUrl};
pub use db::Db;
pub use error::ServiceError;
use links::LinkSigner;
use sealed::Keyring;

/// Settings that come from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL of this app as the administrator reaches it; registration links point here.
    pub public_url: String,
    /// This instance's identity for the provider (`signing::HEADER_INSTANCE`): IMPACT_PUBLIC_URL
    /// when it is set, as it is on every replica behind a balancer (the same on each). A default
    /// address (each process its own port) is no identity, so nothing is sent then.
    pub identity: Option<String>,
    /// The provider (IDI) instance URL put on new invitations.
    pub provider_url: String,
    /// How long a registration link stays valid.
    pub link_ttl_hours: i64,
    /// Time limit for each provider call and each health check.
    pub provider_timeout: std::time::Duration,
    /// The relay from IMPACT_SMTP_URL (see `smtp`): emails are also delivered through it (the
    /// outbox keeps them anyway).
    pub smtp_url: Option<smtp::SmtpRelay>,
    pub mail_from: String,
    /// Which provider addresses may be called, and the TLS roots trusted for them.
    pub outbound: outbound::Outbound,
    /// The registration-link signing key (IMPACT_LINK_KEY); `None`: the one kept in the database.
    pub link_key: Option<String>,
    /// How long a replica's claim on background work lasts without renewal (see `lease`): the
    /// longest a dead replica's work waits before another takes it over.
    pub lease: std::time::Duration,
    /// How often an onboarded connection's health is checked (see `heartbeat`).
    pub health_interval: std::time::Duration,
    /// A heartbeat slower than this (ms) makes Outbound Slow.
    pub slow_ms: u64,
    /// No heartbeat answer for this long makes a connection Slow on the dashboard.
    pub slow_after: std::time::Duration,
    /// How often the digest of open issues goes out (see `digest`).
    pub digest_every: std::time::Duration,
    /// How long the old secret is honoured after credentials are rotated (see `rotate`).
    pub rotation_grace: std::time::Duration,
}

impl Settings {
    /// `slow_after` as the dashboard's rule takes it (`model::dashboard::current_health`).
    pub fn slow_after_age(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.slow_after).unwrap_or(chrono::Duration::minutes(15))
    }
}

/// Everything a request handler or server function needs, handed to axum and to Leptos. One
/// shared allocation: the state is cloned several times per request (extractors, layers), so a
/// clone is one reference count, not one per part.
#[derive(Clone, Debug)]
pub struct AppState(std::sync::Arc<State>);

/// What `AppState` shares (its fields are read through it).
#[derive(Debug)]
pub struct State {
    pub db: Db,
    pub settings: Settings,
    pub signer: LinkSigner,
    pub hub: events::Hub,
    /// Open event streams per user (capped; ended on sign-out or a change of the user).
    pub streams: streams::OpenStreams,
    /// This replica's side of the replicas' shared stream count (PostgreSQL).
    pub stream_places: stream_slots::Places,
    /// Seals and opens the secrets stored in the database (see `sealed`); shared, so the rare
    /// task that holds it does not copy the keys.
    pub keys: std::sync::Arc<Keyring>,
    /// Background work run here under leases (see `background`).
    pub work: background::Background,
}

impl std::ops::Deref for AppState {
    type Target = State;

    fn deref(&self) -> &State {
        &self.0
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db({:?})", self.backend)
    }
}

impl AppState {
    /// A client for the provider at `url`, under the outbound policy and time limit.
    pub fn provider(&self, url: &ProviderUrl) -> provider::ProviderClient {
        let client = provider::ProviderClient::new(
            url,
            self.settings.provider_timeout,
            &self.settings.outbound,
        );
        match &self.settings.identity {
            Some(identity) => client.from_instance(identity),
            None => client,
        }
    }

    /// A client for a connection's stored URL. One that no longer parses gives a client whose
    /// every call fails saying so, as a URL refused by policy does.
    pub fn provider_at(&self, url: &Result<ProviderUrl, FieldError>) -> provider::ProviderClient {
        match url {
            Ok(url) => self.provider(url),
            Err(e) => provider::ProviderClient::unusable(
                provider::ProviderError::InvalidUrl(e.message.clone()),
                self.settings.provider_timeout,
            ),
        }
    }

    /// Opens the database and brings every stored secret under the current key first (a wrong
    /// key is an error here, at start-up, naming the key id that is needed).
    pub async fn connect(
        database_url: &str,
        settings: Settings,
        keys: Keyring,
    ) -> anyhow::Result<Self> {
        let db = Db::connect(database_url).await?;
        seal_stored_secrets(&db, &keys).await?;
        let key = link_key(&db, &keys, settings.link_key.as_deref()).await?;
        let work = background::Background::new(lease::Leases::new(db.clone(), settings.lease));
        let stream_places = stream_slots::Places::new(db.clone(), work.leases.owner());
        Ok(Self(std::sync::Arc::new(State {
            db,
            settings,
            signer: LinkSigner::new(key),
            hub: events::Hub::new(4096),
            streams: streams::OpenStreams::default(),
            stream_places,
            keys: std::sync::Arc::new(keys),
            work,
        })))
    }
}

/// The registration-link signing key: IMPACT_LINK_KEY if set, else one generated at first start
/// and kept in the database (sealed) so links survive restarts.
async fn link_key(db: &Db, keys: &Keyring, configured: Option<&str>) -> anyhow::Result<Vec<u8>> {
    if let Some(k) = configured {
        if k.len() >= 32 {
            return Ok(k.as_bytes().to_vec());
        }
        anyhow::bail!("IMPACT_LINK_KEY must be at least 32 characters");
    }
    let mut fresh = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut fresh);
    // Insert-if-absent, then read back: two processes starting together agree on one key.
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ('link_key', $1) ON CONFLICT (key) DO NOTHING",
    )
    .bind(keys.seal(sealed::LINK_KEY_CONTEXT, &fresh))
    .execute(&db.pool)
    .await
    .context("cannot store the link signing key")?;
    let row = sqlx::query("SELECT value FROM settings WHERE key = 'link_key'")
        .fetch_one(&db.pool)
        .await?;
    let stored: String = row.try_get("value")?;
    opened(
        keys,
        sealed::LINK_KEY_CONTEXT,
        &stored,
        "the link signing key",
    )
}

/// At start-up, in one transaction: values stored in plain base64 by an older version are
/// sealed, and values sealed under a previous key are re-sealed under the current one. A value
/// no configured key opens stops the start with an error that says which key it needs.
async fn seal_stored_secrets(db: &Db, keys: &Keyring) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    let link_key: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'link_key'")
            .fetch_optional(&mut *tx)
            .await?;
    let mut resealed = 0;
    if let Some(stored) = link_key {
        if let Some(value) = resealed_value(
            keys,
            sealed::LINK_KEY_CONTEXT,
            &stored,
            "the link signing key",
        )? {
            sqlx::query("UPDATE settings SET value = $1 WHERE key = 'link_key'")
                .bind(value)
                .execute(&mut *tx)
                .await?;
            resealed += 1;
        }
    }
    for (id, column, stored) in connections::sealed_secrets(&mut tx).await? {
        let what = format!("the provider secret of connection {id}");
        let context = sealed::connection_secret_context(id);
        if let Some(value) = resealed_value(keys, &context, &stored, &what)? {
            connections::replace_sealed_secret(&mut tx, id, column, &value).await?;
            resealed += 1;
        }
    }
    tx.commit().await?;
    if resealed > 0 {
        tracing::info!(
            resealed,
            key_id = keys.current_id(),
            "stored secrets sealed under the current key"
        );
    }
    Ok(())
}

/// The value to store instead of `stored`, if it is not already sealed under the current key.
fn resealed_value(
    keys: &Keyring,
    context: &str,
    stored: &str,
    what: &str,
) -> anyhow::Result<Option<String>> {
    if sealed::is_sealed(stored) && keys.is_current(stored) {
        // Opened anyway, so damage shows now rather than at the first provider call.
        opened(keys, context, stored, what)?;
        return Ok(None);
    }
    let plain = if sealed::is_sealed(stored) {
        opened(keys, context, stored, what)?
    } else {
        // Written before secrets were sealed: plain base64.
        B64.decode(stored.trim())
            .with_context(|| format!("{what} is stored neither sealed nor as base64"))?
    };
    Ok(Some(keys.seal(context, &plain)))
}

/// A stored sealed value, opened; the error says which key is needed, never any key material.
pub fn opened(keys: &Keyring, context: &str, stored: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    keys.open(context, stored).map_err(|e| match e {
        sealed::OpenError::UnknownKey(id) => anyhow::anyhow!(
            "cannot open {what}: it is sealed under key id {id}, and the configured secret keys \
             are {} (current: IMPACT_SECRET_KEY, or the key file when it is unset) and {} \
             (IMPACT_SECRET_KEY_PREVIOUS). Start with the key it was sealed under, as \
             IMPACT_SECRET_KEY, or as IMPACT_SECRET_KEY_PREVIOUS to rotate to a new key",
            keys.current_id(),
            match keys.previous_ids() {
                ids if ids.is_empty() => "none".to_string(),
                ids => ids.join(", "),
            }
        ),
        other => anyhow::anyhow!("cannot open {what}: {other}"),
    })
}

//! What only the server sees of a connection: the contact, its registration code and the
//! provider credentials, the secret sealed at rest under the connection's own context.
use sqlx::{Any, Row, Transaction};

use crate::server::{
    clock, error::ServiceError, opened, provider::Credentials, sealed, AppState, Db,
};

/// The server-only columns of one connection, the secret opened.
pub struct Private {
    pub company_id: i64,
    pub contact_email: String,
    pub registration_code: Option<String>,
    pub credentials: Option<Credentials>,
}

pub async fn private(state: &AppState, id: i64) -> Result<Private, ServiceError> {
    let row = sqlx::query(
        "SELECT company_id, contact_email, registration_code, consumer_id, secret FROM connections WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| super::read::not_found(id))?;
    let consumer_id: Option<String> = row.try_get("consumer_id")?;
    let secret: Option<String> = row.try_get("secret")?;
    let credentials = match (consumer_id, secret) {
        (Some(consumer_id), Some(secret)) => Some(Credentials {
            consumer_id,
            secret: opened(
                &state.keys,
                &sealed::connection_secret_context(id),
                &secret,
                "the provider secret",
            )?,
        }),
        _ => None,
    };
    Ok(Private {
        company_id: row.try_get("company_id")?,
        contact_email: row.try_get("contact_email")?,
        registration_code: row.try_get("registration_code")?,
        credentials,
    })
}

/// The connection's provider credentials, for the onboarding and verification steps.
pub async fn credentials(state: &AppState, id: i64) -> Result<Option<Credentials>, ServiceError> {
    Ok(private(state, id).await?.credentials)
}

/// Keeps the credentials the provider issued at registration, the secret sealed.
pub async fn store_credentials(
    state: &AppState,
    id: i64,
    consumer_id: &str,
    secret: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE connections SET consumer_id = $1, secret = $2 WHERE id = $3")
        .bind(consumer_id)
        .bind(
            state
                .keys
                .seal(&sealed::connection_secret_context(id), secret),
        )
        .bind(id)
        .execute(&state.db.pool)
        .await
        .map(|_| ())
}

/// Forgets everything the link was made of, inside the off-boarding transaction: the
/// credentials (so a call signed with them is refused like a stranger's), the unused
/// registration code, an authorisation round in flight, the next heartbeat and the last one's
/// Down streaks (a new onboarding starts with none).
pub(crate) async fn erase(tx: &mut Transaction<'static, Any>, id: i64) -> Result<(), sqlx::Error> {
    crate::server::heartbeat_history::forget_latest(tx, id).await?;
    sqlx::query(
        "UPDATE connections SET consumer_id = NULL, secret = NULL, previous_secret = NULL, \
         previous_secret_until = NULL, registration_code = NULL, auth_state = NULL, \
         health_due_at = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// Re-registering, inside its transaction: the old credentials go and the fresh link's
/// registration code and named contact take their place (the scan exchanges the code).
pub(crate) async fn replace_registration(
    tx: &mut Transaction<'static, Any>,
    id: i64,
    invitation_id: i64,
    code: Option<&str>,
    contact_email: &str,
) -> Result<(), sqlx::Error> {
    erase(tx, id).await?;
    sqlx::query(
        "UPDATE connections SET registration_code = $1, invitation_id = $2, contact_email = $3 \
         WHERE id = $4",
    )
    .bind(code)
    .bind(invitation_id)
    .bind(contact_email)
    .bind(id)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// A connection a provider's signed call names, with its secrets as stored (sealed): the
/// inbound check opens them itself, to answer every failure alike.
pub struct StoredSecrets {
    pub id: i64,
    pub secret: Option<String>,
    /// The secret before the last rotation, while its grace lasts.
    pub previous: Option<String>,
}

pub async fn by_consumer(db: &Db, consumer_id: &str) -> Result<Option<StoredSecrets>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, secret, previous_secret, previous_secret_until FROM connections \
         WHERE consumer_id = $1",
    )
    .bind(consumer_id)
    .fetch_optional(&db.pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let until: Option<String> = r.try_get("previous_secret_until")?;
    // Past its grace it is refused at once, whether or not the sweep has retired it yet.
    let in_grace = until
        .and_then(|u| clock::from_db(&u).ok())
        .is_some_and(|u| clock::now() < u);
    Ok(Some(StoredSecrets {
        id: r.try_get("id")?,
        secret: r.try_get("secret")?,
        previous: if in_grace {
            r.try_get("previous_secret")?
        } else {
            None
        },
    }))
}

/// After a rotation, in its transaction: the new secret sealed, the old one kept until `until`.
pub(crate) async fn store_rotated(
    tx: &mut Transaction<'static, Any>,
    keys: &crate::server::Keyring,
    id: i64,
    fresh: &[u8],
    old: &[u8],
    until: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    let context = sealed::connection_secret_context(id);
    sqlx::query(
        "UPDATE connections SET secret = $1, previous_secret = $2, previous_secret_until = $3 \
         WHERE id = $4",
    )
    .bind(keys.seal(&context, fresh))
    .bind(keys.seal(&context, old))
    .bind(clock::to_db(until))
    .bind(id)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// Retires the old secrets whose grace is over; how many.
pub async fn retire_previous_secrets(db: &Db) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE connections SET previous_secret = NULL, previous_secret_until = NULL \
         WHERE previous_secret_until IS NOT NULL AND previous_secret_until <= $1",
    )
    .bind(clock::to_db(clock::now()))
    .execute(&db.pool)
    .await?
    .rows_affected())
}

/// A sealed column of a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SecretColumn {
    Current,
    Previous,
}

impl SecretColumn {
    fn name(self) -> &'static str {
        match self {
            SecretColumn::Current => "secret",
            SecretColumn::Previous => "previous_secret",
        }
    }
}

/// Every stored secret as sealed, for re-sealing under a new key at start-up.
pub(crate) async fn sealed_secrets(
    tx: &mut Transaction<'static, Any>,
) -> Result<Vec<(i64, SecretColumn, String)>, sqlx::Error> {
    let mut all = Vec::new();
    for column in [SecretColumn::Current, SecretColumn::Previous] {
        let name = column.name();
        let rows = sqlx::query(&format!(
            "SELECT id, {name} AS sealed FROM connections WHERE {name} IS NOT NULL"
        ))
        .fetch_all(&mut **tx)
        .await?;
        for r in &rows {
            all.push((r.try_get("id")?, column, r.try_get("sealed")?));
        }
    }
    Ok(all)
}

pub(crate) async fn replace_sealed_secret(
    tx: &mut Transaction<'static, Any>,
    id: i64,
    column: SecretColumn,
    sealed: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE connections SET {} = $1 WHERE id = $2",
        column.name()
    ))
    .bind(sealed)
    .bind(id)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

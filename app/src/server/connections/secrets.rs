//! What only the server sees of a connection: the contact, its registration code and the
//! provider credentials, the secret sealed at rest under the connection's own context.
use sqlx::{Any, Row, Transaction};

use crate::server::{error::ServiceError, opened, provider::Credentials, sealed, AppState, Db};

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
/// registration code, an authorisation round in flight, and the next heartbeat.
pub(crate) async fn erase(tx: &mut Transaction<'static, Any>, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE connections SET consumer_id = NULL, secret = NULL, registration_code = NULL, \
         auth_state = NULL, health_due_at = NULL WHERE id = $1",
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

/// The connection a provider's signed call names by its consumer id, with the secret as
/// stored (sealed): the inbound check opens it itself, to answer every failure alike.
pub async fn by_consumer(
    db: &Db,
    consumer_id: &str,
) -> Result<Option<(i64, Option<String>)>, sqlx::Error> {
    let row = sqlx::query("SELECT id, secret FROM connections WHERE consumer_id = $1")
        .bind(consumer_id)
        .fetch_optional(&db.pool)
        .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("secret")?)))
        .transpose()
}

/// Every stored secret as sealed, for re-sealing under a new key at start-up.
pub(crate) async fn sealed_secrets(
    tx: &mut Transaction<'static, Any>,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, secret FROM connections WHERE secret IS NOT NULL")
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("secret")?)))
        .collect()
}

pub(crate) async fn replace_sealed_secret(
    tx: &mut Transaction<'static, Any>,
    id: i64,
    sealed: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE connections SET secret = $1 WHERE id = $2")
        .bind(sealed)
        .bind(id)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

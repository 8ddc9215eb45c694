//! The connection under scan as only the server sees it: the record plus its registration code
//! and provider credentials, opened from (and sealed into) the `connections` table.
use sqlx::Row;

use crate::model::ConnectionView;
use crate::server::{
    connections, error::ServiceError, opened, provider::Credentials, sealed, AppState,
};

/// The record plus what only the server sees (credentials, registration code).
pub(super) struct Target {
    pub view: ConnectionView,
    pub company_id: i64,
    pub contact_email: String,
    pub registration_code: Option<String>,
    pub credentials: Option<Credentials>,
}

pub(super) async fn load(state: &AppState, id: i64) -> Result<Target, ServiceError> {
    let view = connections::get(&state.db, id).await?;
    let row = sqlx::query(
        "SELECT company_id, contact_email, registration_code, consumer_id, secret FROM connections WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&state.db.pool)
    .await?;
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
    Ok(Target {
        view,
        company_id: row.try_get("company_id")?,
        contact_email: row.try_get("contact_email")?,
        registration_code: row.try_get("registration_code")?,
        credentials,
    })
}

/// The connection's provider credentials, for the onboarding and verification steps.
pub async fn credentials(state: &AppState, id: i64) -> Result<Option<Credentials>, ServiceError> {
    Ok(load(state, id).await?.credentials)
}

/// Keeps the credentials the provider issued at registration, the secret sealed.
pub(super) async fn store_credentials(
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

//! Registration invitations (the provider side's "Initiate registration", which an admin screen of
//! ours stands in for): each one emails the named contact a single-use, expiring, signed
//! "Connect with Impact IDI" link.
use chrono::{DateTime, Duration, Utc};
use sqlx::{Any, Row, Transaction};

use super::{clock, db::decode, error::ServiceError, links::LinkClaims, outbox, AppState};
use crate::model::{
    CompanyName, EmailAddress, InvitationView, ProviderUrl, RegistrationLinkView,
    RegistrationStatus as Status,
};

/// Why a registration link cannot be used, each with what to do about it.
pub fn link_error(code: &'static str) -> ServiceError {
    let message = match code {
        "link_tampered" => "This registration link is not valid: it is incomplete or has been altered. \
             Open the link from your welcome email again, or request a fresh link below; if that does \
             not help, ask your Impact Squad to resend the registration email.",
        "link_expired" => "This registration link has expired. Request a fresh link below, or ask your \
             Impact Squad to resend the registration email.",
        "link_used" => "This registration link has already been used to create a provider connection. \
             Open the connection from the Connections list, or request a fresh link below.",
        _ => "A newer registration link has been sent for this registration: use the link in the most \
             recent welcome email, or request a fresh link below.",
    };
    ServiceError::Gone {
        code,
        message: message.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: i64,
    pub email: String,
    pub company: String,
    pub provider_url: String,
    pub nonce: String,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The provider's registration code, exchanged for credentials by the scan.
    pub registration_code: Option<String>,
}

impl Invitation {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<Self, ServiceError> {
        Ok(Self {
            id: r.try_get("id")?,
            email: r.try_get("email")?,
            company: r.try_get("company")?,
            provider_url: r.try_get("provider_url")?,
            nonce: r.try_get("nonce")?,
            status: decode(r.try_get("status")?, Status::from_db, "registration status")?,
            created_at: clock::from_db(&r.try_get::<String, _>("created_at")?)?,
            expires_at: clock::from_db(&r.try_get::<String, _>("expires_at")?)?,
            registration_code: r.try_get("registration_code")?,
        })
    }

    /// The admin view; `link` is set for a registration that can still be used.
    pub fn view(&self, state: &AppState, now: DateTime<Utc>) -> InvitationView {
        let status = self.status.shown(self.expires_at, now);
        let link = status.is_open().then(|| link_for(state, self));
        InvitationView {
            id: self.id,
            email: self.email.clone(),
            company: self.company.clone(),
            provider_url: self.provider_url.clone(),
            status,
            created_at: self.created_at,
            expires_at: self.expires_at,
            link,
        }
    }
}

const COLUMNS: &str =
    "id, email, company, provider_url, nonce, status, created_at, expires_at, registration_code";

pub fn link_for(state: &AppState, inv: &Invitation) -> String {
    let token = state.signer.sign(&LinkClaims {
        i: inv.id,
        n: inv.nonce.clone(),
        e: inv.expires_at.timestamp(),
    });
    format!("{}/connect?token={token}", state.settings.public_url)
}

/// Issues an invitation and queues its welcome email, in one transaction.
#[tracing::instrument(skip(state), fields(company = %company))]
pub async fn issue(
    state: &AppState,
    email: &str,
    company: &str,
    provider_url: Option<&str>,
    actor: &str,
) -> Result<InvitationView, ServiceError> {
    let email = EmailAddress::parse(email)?;
    let company = CompanyName::parse(company)?;
    let provider_url = match provider_url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(u) => ProviderUrl::parse(u)?,
        None => ProviderUrl::parse(&state.settings.provider_url)?,
    };
    // The provider side initiates the registration and issues its code (no transaction is
    // open while we wait on the network).
    state.settings.outbound.vet(&provider_url).await?;
    let client = state.provider(&provider_url);
    let code = client.initiate_registration(company.as_str(), email.as_str()).await.map_err(|e| {
        ServiceError::Provider(format!(
            "The provider at {provider_url} could not initiate the registration: {e}. Nothing was sent; try again once it is reachable."
        ))
    })?;
    let mut tx = state.db.begin().await?;
    let inv = insert(&mut tx, state, &email, &company, &provider_url, Some(&code)).await?;
    send_welcome(&mut tx, state, &inv).await?;
    let detail = format!("{} for {} at {}", inv.email, inv.company, inv.provider_url);
    super::audit::record(&mut tx, actor, "Registration initiated", None, &detail).await?;
    tx.commit().await?;
    outbox::deliver_pending(state);
    Ok(inv.view(state, clock::now()))
}

async fn insert(
    tx: &mut Transaction<'static, Any>,
    state: &AppState,
    email: &EmailAddress,
    company: &CompanyName,
    provider_url: &ProviderUrl,
    registration_code: Option<&str>,
) -> Result<Invitation, ServiceError> {
    let now = clock::now();
    let expires_at = now + Duration::hours(state.settings.link_ttl_hours);
    let nonce = super::random::hex_string::<16>();
    let row = sqlx::query(&format!(
        "INSERT INTO invitations (email, company, provider_url, nonce, status, created_at, expires_at, registration_code) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    ))
    .bind(email.as_str())
    .bind(company.as_str())
    .bind(provider_url.as_str())
    .bind(&nonce)
    .bind(Status::Pending.as_db())
    .bind(clock::to_db(now))
    .bind(clock::to_db(expires_at))
    .bind(registration_code)
    .fetch_one(&mut **tx)
    .await?;
    Invitation::from_row(&row)
}

async fn send_welcome(
    tx: &mut Transaction<'static, Any>,
    state: &AppState,
    inv: &Invitation,
) -> Result<(), ServiceError> {
    let link = link_for(state, inv);
    let body = format!(
        "Hello,\n\nYou are the named contact administrator for connecting {company} Impact Store App \
         to its provider, the Impact Delivery Instance at {url}.\n\nSelect \"Connect with Impact IDI\" \
         to open the Provider connection form. The link can be used once and expires on {expires}.\n\n\
         If you did not expect this email, reach out to your Impact Squad.\n",
        company = crate::model::possessive(&inv.company),
        url = inv.provider_url,
        expires = inv.expires_at.format("%Y-%m-%d %H:%M UTC"),
    );
    outbox::queue(
        tx,
        &inv.email,
        "Welcome to Impact: connect your instance to the Impact Delivery Instance",
        &body,
        Some(&link),
    )
    .await
}

#[tracing::instrument(skip(state))]
pub async fn list(state: &AppState) -> Result<Vec<InvitationView>, ServiceError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM invitations ORDER BY id DESC"
    ))
    .fetch_all(&state.db.pool)
    .await?;
    let now = clock::now();
    rows.iter()
        .map(|r| Ok(Invitation::from_row(r)?.view(state, now)))
        .collect()
}

/// Checks a link and returns its invitation, or says exactly why it cannot be used.
pub async fn check(state: &AppState, token: &str) -> Result<Invitation, ServiceError> {
    let claims = state
        .signer
        .verify(token)
        .map_err(|_| link_error("link_tampered"))?;
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM invitations WHERE id = $1"))
        .bind(claims.i)
        .fetch_optional(&state.db.pool)
        .await?;
    let inv = match row {
        Some(r) => Invitation::from_row(&r)?,
        // Signed by us but unknown here: the database was reset. Treat as altered.
        None => return Err(link_error("link_tampered")),
    };
    if inv.nonce != claims.n {
        return Err(link_error("link_tampered"));
    }
    match inv.status {
        Status::Used => return Err(link_error("link_used")),
        Status::Superseded => return Err(link_error("link_superseded")),
        Status::Pending | Status::Expired => {}
    }
    if inv.expires_at <= clock::now() || claims.e <= clock::now().timestamp() {
        return Err(link_error("link_expired"));
    }
    Ok(inv)
}

/// What a valid link opens.
#[tracing::instrument(skip_all)]
pub async fn open(state: &AppState, token: &str) -> Result<RegistrationLinkView, ServiceError> {
    let inv = check(state, token).await?;
    Ok(RegistrationLinkView {
        company: inv.company,
        provider_url: inv.provider_url,
        email: inv.email,
    })
}

/// Marks the link used inside the caller's transaction; fails if someone else used it first.
pub(crate) async fn consume(
    tx: &mut Transaction<'static, Any>,
    inv: &Invitation,
) -> Result<(), ServiceError> {
    let done = sqlx::query(
        "UPDATE invitations SET status = $1, used_at = $2 WHERE id = $3 AND status = $4",
    )
    .bind(Status::Used.as_db())
    .bind(clock::to_db(clock::now()))
    .bind(inv.id)
    .bind(Status::Pending.as_db())
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(link_error("link_used"))
    }
}

/// "Request a fresh link": re-issues the newest open invitation for this address, superseding the
/// old link. The answer is the same whether or not the address has one, so it reveals nothing.
#[tracing::instrument(skip(state))]
pub async fn resend(state: &AppState, email: &str) -> Result<(), ServiceError> {
    let email = EmailAddress::parse(email)?;
    let mut tx = state.db.begin().await?;
    // The newest pending invitation is superseded by the transaction's first statement, a write:
    // on SQLite a transaction that read first and then writes fails at once (not after waiting)
    // when another writer committed in between, as heartbeats often do.
    let row = sqlx::query(&format!(
        "UPDATE invitations SET status = $1 WHERE id = (SELECT id FROM invitations \
         WHERE LOWER(email) = LOWER($2) AND status = $3 ORDER BY id DESC LIMIT 1) \
         RETURNING {COLUMNS}"
    ))
    .bind(Status::Superseded.as_db())
    .bind(email.as_str())
    .bind(Status::Pending.as_db())
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = row {
        let old = Invitation::from_row(&row)?;
        let company = CompanyName::parse(&old.company)?;
        let url = ProviderUrl::parse(&old.provider_url)?;
        // Send to the address as the provider recorded it.
        let recorded = EmailAddress::parse(&old.email)?;
        // The provider's code is still unused while the invitation was pending: carry it over.
        let fresh = insert(
            &mut tx,
            state,
            &recorded,
            &company,
            &url,
            old.registration_code.as_deref(),
        )
        .await?;
        send_welcome(&mut tx, state, &fresh).await?;
    }
    tx.commit().await?;
    outbox::deliver_pending(state);
    Ok(())
}

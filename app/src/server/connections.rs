//! Provider connection records. Every change goes through the shared state machine
//! (`model::transition`), checks the caller's version (optimistic concurrency) and appends to the
//! history in the same transaction.
use chrono::{DateTime, Utc};
use sqlx::{any::AnyRow, Any, Row, Transaction};

use super::{clock, companies, error::ServiceError, events, invitations, scan, AppState, Db};
use crate::model::{
    transition, Action, CompanyName, ConnectionAction, ConnectionState, ConnectionStatus,
    ConnectionView, CreateConnection, EventBody, HistoryEntry, LinkStatus, Onboarding,
    UpdateConnection,
};

const SELECT: &str =
    "SELECT c.id, co.name AS company, c.url, c.state, c.registered, c.onboarding, \
    c.outbound, c.inbound, c.version, c.created_at, c.updated_at \
    FROM connections c JOIN companies co ON co.id = c.company_id";

fn decode<T>(
    value: String,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Result<T, ServiceError> {
    parse(&value).ok_or_else(|| {
        ServiceError::Unexpected(anyhow::anyhow!("stored {what} {value:?} is unknown"))
    })
}

fn time(r: &AnyRow, col: &str) -> Result<DateTime<Utc>, ServiceError> {
    Ok(clock::from_db(&r.try_get::<String, _>(col)?)?)
}

fn from_row(r: &AnyRow) -> Result<ConnectionView, ServiceError> {
    Ok(ConnectionView {
        id: r.try_get("id")?,
        company: r.try_get("company")?,
        url: r.try_get("url")?,
        state: decode(r.try_get("state")?, ConnectionState::from_db, "state")?,
        registered: r.try_get::<i64, _>("registered")? != 0,
        onboarding: decode(r.try_get("onboarding")?, Onboarding::from_db, "onboarding")?,
        outbound: decode(
            r.try_get("outbound")?,
            LinkStatus::from_db,
            "outbound status",
        )?,
        inbound: decode(r.try_get("inbound")?, LinkStatus::from_db, "inbound status")?,
        version: r.try_get("version")?,
        created_at: time(r, "created_at")?,
        updated_at: time(r, "updated_at")?,
    })
}

fn not_found(id: i64) -> ServiceError {
    ServiceError::NotFound(format!("There is no provider connection #{id}. It may have been removed; open the Connections list."))
}

#[tracing::instrument(skip(db))]
pub async fn get(db: &Db, id: i64) -> Result<ConnectionView, ServiceError> {
    let row = sqlx::query(&format!("{SELECT} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or_else(|| not_found(id))?;
    from_row(&row)
}

#[tracing::instrument(skip(db))]
pub async fn list(db: &Db) -> Result<Vec<ConnectionView>, ServiceError> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY c.id"))
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(from_row).collect()
}

/// The connection to this provider URL, if one exists (a second one is never created).
pub async fn find_by_url(db: &Db, url: &str) -> Result<Option<ConnectionView>, ServiceError> {
    let row = sqlx::query(&format!("{SELECT} WHERE c.url = $1"))
        .bind(url)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

async fn ensure_company_free(
    tx: &mut Transaction<'static, Any>,
    company_id: i64,
    except: Option<i64>,
) -> Result<(), ServiceError> {
    let row = sqlx::query("SELECT id FROM connections WHERE company_id = $1")
        .bind(company_id)
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(r) = row {
        let other: i64 = r.try_get("id")?;
        if Some(other) != except {
            return Err(ServiceError::Conflict(format!(
                "This company already has a provider connection (#{other}). Each instance needs its own \
                 company: select another company or add a new one."
            )));
        }
    }
    Ok(())
}

async fn record_history(
    tx: &mut Transaction<'static, Any>,
    id: i64,
    actor: &str,
    action: &str,
    from: ConnectionState,
    to: ConnectionState,
    reason: &str,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO connection_history (connection_id, at, actor, action, from_state, to_state, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(clock::to_db(clock::now()))
    .bind(actor)
    .bind(action)
    .bind(from.as_db())
    .bind(to.as_db())
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// "Save" on the new record opened from a registration link: creates the connection, consumes
/// the link, and records the first history entry, all or nothing.
#[tracing::instrument(skip(state, req), fields(actor))]
pub async fn create(
    state: &AppState,
    req: &CreateConnection,
    actor: &str,
) -> Result<ConnectionView, ServiceError> {
    let company = CompanyName::parse(&req.company)?;
    let token = req.registration_token.as_deref().unwrap_or("").trim();
    if token.is_empty() {
        return Err(crate::model::FieldError::new(
            "registration_token",
            "A provider connection is created from the registration link: open \"Connect with Impact IDI\" in your welcome email.",
        )
        .into());
    }
    let inv = invitations::check(state, token).await?;
    // The policy may have changed since the invitation: nothing is created for a refused URL.
    let url = crate::model::ProviderUrl::parse(&inv.provider_url)?;
    state.settings.outbound.vet(&url).await?;
    if let Some(existing) = find_by_url(&state.db, &inv.provider_url).await? {
        return Err(ServiceError::Conflict(format!(
            "A connection to {} already exists (#{}, {}): open it to continue instead of creating another.",
            existing.url, existing.id, existing.company
        )));
    }
    let mut tx = state.db.pool.begin().await?;
    let company = companies::find_or_insert(&mut tx, &company).await?;
    ensure_company_free(&mut tx, company.id, None).await?;
    invitations::consume(&mut tx, &inv).await?;
    let status = ConnectionStatus::new_record();
    let now = clock::to_db(clock::now());
    let inserted = sqlx::query(
        "INSERT INTO connections (company_id, url, invitation_id, contact_email, state, registered, onboarding, \
         outbound, inbound, version, created_at, updated_at, registration_code) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10, $11) RETURNING id",
    )
    .bind(company.id)
    .bind(&inv.provider_url)
    .bind(inv.id)
    .bind(&inv.email)
    .bind(status.state.as_db())
    .bind(i64::from(status.registered))
    .bind(status.onboarding.as_db())
    .bind(status.outbound.as_db())
    .bind(status.inbound.as_db())
    .bind(&now)
    .bind(&inv.registration_code)
    .fetch_one(&mut *tx)
    .await;
    let id: i64 = match inserted {
        Ok(row) => row.try_get("id")?,
        // Lost a race with another Save for the same provider or company.
        Err(e) if is_unique_violation(&e) => {
            return Err(ServiceError::Conflict(
                "A connection for this provider or company was just created by someone else: open it from the Connections list.".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    record_history(
        &mut tx,
        id,
        actor,
        "Created",
        status.state,
        status.state,
        "Saved from the registration link",
    )
    .await?;
    tx.commit().await?;
    // Save starts validation at once (the domain reference's reading of the procedure).
    revalidate(state, id, actor).await
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn stale(id: i64, expected: i64, current: i64) -> ServiceError {
    ServiceError::Conflict(format!(
        "Provider connection #{id} was changed by someone else since you opened it (you have version \
         {expected}, it is now at version {current}). Reload to see the changes; nothing was saved."
    ))
}

/// Writes a new status if the version still matches; appends the history entry.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write_transition(
    tx: &mut Transaction<'static, Any>,
    current: &ConnectionView,
    expected_version: i64,
    next: ConnectionStatus,
    company_id: Option<i64>,
    actor: &str,
    action: Action,
    reason: &str,
) -> Result<crate::model::ConnectionEvent, ServiceError> {
    let now = clock::to_db(clock::now());
    let done = sqlx::query(
        "UPDATE connections SET state = $1, registered = $2, onboarding = $3, outbound = $4, inbound = $5, \
         company_id = COALESCE($6, company_id), version = version + 1, updated_at = $7 \
         WHERE id = $8 AND version = $9",
    )
    .bind(next.state.as_db())
    .bind(i64::from(next.registered))
    .bind(next.onboarding.as_db())
    .bind(next.outbound.as_db())
    .bind(next.inbound.as_db())
    .bind(company_id)
    .bind(now)
    .bind(current.id)
    .bind(expected_version)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(stale(current.id, expected_version, current.version));
    }
    record_history(
        tx,
        current.id,
        actor,
        action.label(),
        current.state,
        next.state,
        reason,
    )
    .await?;
    let snapshot = get_in(tx, current.id).await?;
    events::append(
        tx,
        current.id,
        EventBody::Connection {
            connection: snapshot,
        },
    )
    .await
}

async fn get_in(
    tx: &mut Transaction<'static, Any>,
    id: i64,
) -> Result<ConnectionView, ServiceError> {
    let row = sqlx::query(&format!("{SELECT} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| not_found(id))?;
    from_row(&row)
}

/// Applies an action under the state machine: checks it against the record as it is now, writes
/// it with its history entry and a live event in one transaction, then publishes the event.
/// The system's `action` on `current` as it was read, inside `tx`: the caller retries on a
/// `Conflict` (a concurrent change moved the version) along with its own writes in `tx`.
pub(crate) async fn write_system_transition(
    tx: &mut Transaction<'static, Any>,
    current: &ConnectionView,
    action: Action,
    reason: &str,
) -> Result<crate::model::ConnectionEvent, ServiceError> {
    let next = transition(current.status(), action)?;
    write_transition(
        tx,
        current,
        current.version,
        next,
        None,
        crate::model::Actor::System.as_str(),
        action,
        reason,
    )
    .await
}

/// System actions retry if a concurrent change got there first; user actions carry the version
/// the user saw and get 409 if it moved.
#[tracing::instrument(skip(state))]
pub async fn apply(
    state: &AppState,
    id: i64,
    action: Action,
    actor: &str,
    reason: &str,
    expected_version: Option<i64>,
) -> Result<ConnectionView, ServiceError> {
    let mut attempts = 0;
    loop {
        let current = get(&state.db, id).await?;
        let version = expected_version.unwrap_or(current.version);
        if version != current.version {
            return Err(stale(id, version, current.version));
        }
        let next = transition(current.status(), action)?;
        let mut tx = state.db.pool.begin().await?;
        match write_transition(
            &mut tx, &current, version, next, None, actor, action, reason,
        )
        .await
        {
            Ok(event) => {
                tx.commit().await?;
                state.hub.publish(vec![event]);
                return get(&state.db, id).await;
            }
            Err(ServiceError::Conflict(_)) if expected_version.is_none() && attempts < 3 => {
                attempts += 1;
                continue;
            }
            Err(e) => return Err(e),
        }
    }
}

/// "Save" on an existing record: change its company.
#[tracing::instrument(skip(state, req))]
pub async fn update(
    state: &AppState,
    id: i64,
    req: &UpdateConnection,
    actor: &str,
) -> Result<ConnectionView, ServiceError> {
    let company = CompanyName::parse(&req.company)?;
    let current = get(&state.db, id).await?;
    if current.version != req.version {
        return Err(stale(id, req.version, current.version));
    }
    let next = transition(current.status(), Action::Save)?;
    let mut tx = state.db.pool.begin().await?;
    let company = companies::find_or_insert(&mut tx, &company).await?;
    ensure_company_free(&mut tx, company.id, Some(id)).await?;
    let reason = format!("Company set to {}", company.name);
    let event = write_transition(
        &mut tx,
        &current,
        req.version,
        next,
        Some(company.id),
        actor,
        Action::Save,
        &reason,
    )
    .await?;
    tx.commit().await?;
    state.hub.publish(vec![event]);
    // Saving starts validation again (a new company needs new checks).
    revalidate(state, id, actor).await
}

/// Starts the pre-onboarding suite if the state allows: Pending → Awaiting validation (after a
/// Save), or a Rescan from Validation failed / Validated.
pub async fn revalidate(
    state: &AppState,
    id: i64,
    actor: &str,
) -> Result<ConnectionView, ServiceError> {
    let current = get(&state.db, id).await?;
    let action = if transition(current.status(), Action::SubmitForValidation).is_ok() {
        Action::SubmitForValidation
    } else if transition(current.status(), Action::Rescan).is_ok() {
        Action::Rescan
    } else {
        return Ok(current);
    };
    let view = apply(
        state,
        id,
        action,
        actor,
        "Pre-onboarding checks started",
        None,
    )
    .await?;
    scan::spawn_suite(state.clone(), id, actor.to_string());
    Ok(view)
}

/// A user action from the form's buttons. The state machine decides whether it is allowed now;
/// actions that need the provider are refused until the provider protocol exists.
#[tracing::instrument(skip(state, req), fields(action = ?req.action))]
pub async fn act(
    state: &AppState,
    id: i64,
    req: &ConnectionAction,
    actor: &str,
) -> Result<ConnectionView, ServiceError> {
    let current = get(&state.db, id).await?;
    if current.version != req.version {
        return Err(stale(id, req.version, current.version));
    }
    if !req.action.is_user_action() {
        return Err(crate::model::FieldError::new(
            "action",
            format!(
                "\"{}\" is recorded by the system and cannot be requested.",
                req.action.label()
            ),
        )
        .into());
    }
    if req.action == Action::Save {
        return Err(crate::model::FieldError::new(
            "action",
            "To save, send the company with PUT on the connection.",
        )
        .into());
    }
    // Ask the state machine first, so the refusal names what the state requires.
    transition(current.status(), req.action)?;
    match req.action {
        Action::Rescan => {
            let view = apply(state, id, Action::Rescan, actor, "Rescan requested", Some(req.version)).await?;
            scan::spawn_suite(state.clone(), id, actor.to_string());
            Ok(view)
        }
        // Authorisation was granted on the first attempt: Retry starts the run again.
        Action::Retry => super::onboarding::start(state, id, actor).await,
        // "Connect to provider" goes through the provider's authorisation page first.
        _ => Err(ServiceError::Conflict(
            "\"Connect to provider\" sends the named contact to the provider to authorise: use POST /api/connections/{id}/connect and open the authorize_url it returns.".into(),
        )),
    }
}

#[tracing::instrument(skip(db))]
pub async fn history(db: &Db, id: i64) -> Result<Vec<HistoryEntry>, ServiceError> {
    get(db, id).await?;
    let rows = sqlx::query(
        "SELECT at, actor, action, from_state, to_state, reason FROM connection_history \
         WHERE connection_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HistoryEntry {
                at: time(r, "at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                from_state: decode(r.try_get("from_state")?, ConnectionState::from_db, "state")?,
                to_state: decode(r.try_get("to_state")?, ConnectionState::from_db, "state")?,
                reason: r.try_get("reason")?,
            })
        })
        .collect()
}

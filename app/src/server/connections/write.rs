//! Changing connection records. Every change of status goes through the shared state machine
//! (`model::transition`), checks the caller's version (optimistic concurrency) and appends to the
//! history and the event log in the same transaction.
use sqlx::{Any, Row, Transaction};

use super::read::{find_by_url, get, get_in};
use crate::model::{
    transition, Action, CompanyName, ConnectionState, ConnectionStatus, ConnectionView,
    CreateConnection, EventBody, UpdateConnection,
};
use crate::server::{clock, companies, error::ServiceError, events, invitations, AppState, Db};

async fn ensure_company_free(
    tx: &mut Transaction<'static, Any>,
    company_id: i64,
    except: Option<i64>,
) -> Result<(), ServiceError> {
    let row =
        sqlx::query("SELECT id FROM connections WHERE company_id = $1 AND state <> 'off_boarded'")
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
    let mut tx = state.db.begin().await?;
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
    get(&state.db, id).await
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub(crate) fn stale(id: i64, expected: i64, current: i64) -> ServiceError {
    ServiceError::Conflict(format!(
        "Provider connection #{id} was changed by someone else since you opened it (you have version \
         {expected}, it is now at version {current}). Reload to see the changes; nothing was saved."
    ))
}

/// The record as it is now, if it is still at `version`, the one the person acted on; otherwise
/// the stale-version conflict, and nothing is changed.
pub async fn at_version(db: &Db, id: i64, version: i64) -> Result<ConnectionView, ServiceError> {
    let current = get(db, id).await?;
    if current.version != version {
        return Err(stale(id, version, current.version));
    }
    Ok(current)
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

/// Applies an action under the state machine: checks it against the record as it is now, writes
/// it with its history entry and a live event in one transaction, then publishes the event.
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
        let mut tx = state.db.begin().await?;
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

/// The writes an action brings with it, made in the transaction that records it.
pub(crate) type Alongside<'a> = dyn for<'t> Fn(
        &'t mut Transaction<'static, Any>,
    ) -> futures::future::BoxFuture<'t, Result<(), ServiceError>>
    + Send
    + Sync
    + 'a;

/// Writes `action` on the record as it is now, with `alongside`'s writes, in one transaction,
/// and publishes the event. For a step whose outside effect (the provider told) is already done
/// once the person's version was checked: a heartbeat's change since is no reason to stop, so a
/// moved version is read again and retried.
async fn apply_after_provider(
    state: &AppState,
    id: i64,
    action: Action,
    actor: &str,
    reason: &str,
    alongside: &Alongside<'_>,
) -> Result<ConnectionView, ServiceError> {
    let mut attempts = 0;
    loop {
        let current = get(&state.db, id).await?;
        let next = transition(current.status(), action)?;
        let mut tx = state.db.begin().await?;
        alongside(&mut tx).await?;
        match write_transition(
            &mut tx,
            &current,
            current.version,
            next,
            None,
            actor,
            action,
            reason,
        )
        .await
        {
            Ok(event) => {
                tx.commit().await?;
                state.hub.publish(vec![event]);
                return get(&state.db, id).await;
            }
            Err(ServiceError::Conflict(_)) if attempts < 3 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

/// "Rotate credentials", once the provider issued the new secret: stored with the transition
/// (which changes no status), retried over a heartbeat's change like the others.
pub(crate) async fn apply_rotation(
    state: &AppState,
    id: i64,
    actor: &str,
    reason: &str,
    alongside: &Alongside<'_>,
) -> Result<ConnectionView, ServiceError> {
    apply_after_provider(
        state,
        id,
        Action::RotateCredentials,
        actor,
        reason,
        alongside,
    )
    .await
}

/// "Off-board", once the provider has let go: the credentials erased with the transition.
#[tracing::instrument(skip(state))]
pub async fn off_board(
    state: &AppState,
    id: i64,
    actor: &str,
    reason: &str,
) -> Result<ConnectionView, ServiceError> {
    apply_after_provider(state, id, Action::OffBoard, actor, reason, &|tx| {
        Box::pin(async move { Ok(super::secrets::erase(tx, id).await?) })
    })
    .await
}

/// "Re-register", once the provider was asked to retire the old credentials: the fresh link
/// consumed and the registration replaced with the transition.
#[tracing::instrument(skip(state, inv))]
pub async fn re_register(
    state: &AppState,
    id: i64,
    inv: &invitations::Invitation,
    actor: &str,
    reason: &str,
) -> Result<ConnectionView, ServiceError> {
    apply_after_provider(state, id, Action::ReRegister, actor, reason, &|tx| {
        // Owned: each attempt's writes outlive nothing but their transaction.
        let inv = inv.clone();
        Box::pin(async move {
            invitations::consume(tx, &inv).await?;
            super::secrets::replace_registration(
                tx,
                id,
                inv.id,
                inv.registration_code.as_deref(),
                &inv.email,
            )
            .await?;
            Ok(())
        })
    })
    .await
}

/// "Save" on an existing record: change its company.
#[tracing::instrument(skip(state, req))]
pub async fn set_company(
    state: &AppState,
    id: i64,
    req: &UpdateConnection,
    actor: &str,
) -> Result<ConnectionView, ServiceError> {
    let company = CompanyName::parse(&req.company)?;
    let current = at_version(&state.db, id, req.version).await?;
    let next = transition(current.status(), Action::Save)?;
    let mut tx = state.db.begin().await?;
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
    get(&state.db, id).await
}

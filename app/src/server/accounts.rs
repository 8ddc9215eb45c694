//! Local accounts and server-side sessions. Passwords are argon2id hashes; session tokens are
//! random, sent once in an HttpOnly cookie, and stored only as a SHA-256 hash.
use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::{any::AnyRow, Row};

use super::{audit, clock, error::ServiceError, Db};
use crate::model::{CurrentUser, EmailAddress, FieldError, NewUser, Role, UserChange, UserView};

/// Session lifetimes: idle (since the last request) and absolute (since sign-in).
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
        }
    }
}

pub const MIN_PASSWORD_CHARS: usize = 12;

fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_token()).unwrap_or_default())
}

/// Password hashes computed at once (argon2 takes tens of milliseconds of CPU and memory each).
static HASHING: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();

/// At most `n` (at least 1) password hashes or checks run at once in this process. The first
/// call decides (start-up); without one, as many as the machine has cores.
pub fn limit_hashing(n: usize) {
    let _ = HASHING.set(tokio::sync::Semaphore::new(n.max(1)));
}

/// Runs argon2 work on the blocking pool, behind the hashing semaphore: a burst of sign-ins
/// waits its turn there instead of stalling the async workers every other request needs.
async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServiceError> {
    let turns = HASHING.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    let _turn = turns
        .acquire()
        .await
        .map_err(|e| ServiceError::Unexpected(anyhow::anyhow!("hashing closed: {e}")))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServiceError::Unexpected(anyhow::anyhow!("password work failed: {e}")))
}

/// The session's key as stored: the SHA-256 of its token (streams are registered under it).
pub fn session_key(token: &str) -> String {
    hash_token(token)
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn random_token() -> String {
    super::random::hex_string::<32>()
}

fn encode_roles(roles: &[Role]) -> String {
    let mut r: Vec<&str> = roles.iter().map(|r| r.as_db()).collect();
    r.sort_unstable();
    r.dedup();
    r.join(",")
}

fn decode_roles(s: &str) -> Vec<Role> {
    s.split(',').filter_map(Role::from_db).collect()
}

pub fn hash_password(password: &str) -> Result<String, ServiceError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Unexpected(anyhow::anyhow!("password hashing failed: {e}")))
}

fn check_password_rules(password: &str) -> Result<(), FieldError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(FieldError::new(
            "password",
            format!("Choose a password of at least {MIN_PASSWORD_CHARS} characters."),
        ));
    }
    Ok(())
}

fn user_from_row(r: &AnyRow) -> Result<UserView, ServiceError> {
    Ok(UserView {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        roles: decode_roles(&r.try_get::<String, _>("roles")?),
        disabled: r.try_get::<i64, _>("disabled")? != 0,
    })
}

/// The Impact app admins who can sign in: whom connection alerts go to.
pub(crate) async fn admin_emails_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
) -> Result<Vec<String>, ServiceError> {
    let rows =
        sqlx::query("SELECT id, email, roles, disabled FROM users WHERE disabled = 0 ORDER BY id")
            .fetch_all(&mut **tx)
            .await?;
    let users = rows
        .iter()
        .map(user_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(users
        .into_iter()
        .filter(|u| u.roles.contains(&Role::ImpactAdmin))
        .map(|u| u.email)
        .collect())
}

pub async fn count_users(db: &Db) -> Result<i64, ServiceError> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM users")
        .fetch_one(&db.pool)
        .await?
        .try_get("n")?)
}

#[tracing::instrument(skip(db, new), fields(email = %new.email))]
pub async fn create_user(db: &Db, new: &NewUser, actor: &str) -> Result<UserView, ServiceError> {
    let email = EmailAddress::parse(&new.email)?;
    check_password_rules(&new.password)?;
    if new.roles.is_empty() {
        return Err(FieldError::new("roles", "Give the user at least one role.").into());
    }
    let password = new.password.clone();
    let hash = off_the_workers(move || hash_password(&password)).await??;
    let mut tx = db.begin().await?;
    let row = sqlx::query(
        "INSERT INTO users (email, password_hash, roles, disabled, created_at) VALUES ($1, $2, $3, 0, $4) \
         RETURNING id, email, roles, disabled",
    )
    .bind(email.as_str().to_lowercase())
    .bind(hash)
    .bind(encode_roles(&new.roles))
    .bind(clock::to_db(clock::now()))
    .fetch_one(&mut *tx)
    .await;
    let user = match row {
        Ok(r) => user_from_row(&r)?,
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            return Err(ServiceError::Conflict(format!(
                "A user with the email {email} already exists."
            )))
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        &mut tx,
        actor,
        "User created",
        None,
        &format!("{} with roles {}", user.email, encode_roles(&user.roles)),
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

#[tracing::instrument(skip(db))]
pub async fn list_users(db: &Db) -> Result<Vec<UserView>, ServiceError> {
    let rows = sqlx::query("SELECT id, email, roles, disabled FROM users ORDER BY email")
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(user_from_row).collect()
}

/// Changes roles or disables; disabling ends the user's sessions at once.
#[tracing::instrument(skip(db, change))]
pub async fn change_user(
    db: &Db,
    id: i64,
    change: &UserChange,
    actor: &CurrentUser,
) -> Result<UserView, ServiceError> {
    if id == actor.id && (change.disabled || !change.roles.contains(&Role::ImpactAdmin)) {
        return Err(ServiceError::Conflict(
            "You cannot disable yourself or remove your own Impact app admin role: ask another admin.".into(),
        ));
    }
    if change.roles.is_empty() {
        return Err(FieldError::new("roles", "Give the user at least one role.").into());
    }
    let mut tx = db.begin().await?;
    let row = sqlx::query("UPDATE users SET roles = $1, disabled = $2 WHERE id = $3 RETURNING id, email, roles, disabled")
        .bind(encode_roles(&change.roles))
        .bind(i64::from(change.disabled))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("There is no user #{id}.")))?;
    let user = user_from_row(&row)?;
    if change.disabled {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    let detail = format!(
        "{}: roles {}{}",
        user.email,
        encode_roles(&user.roles),
        if user.disabled { ", disabled" } else { "" }
    );
    audit::record(&mut tx, &actor.email, "User changed", None, &detail).await?;
    tx.commit().await?;
    Ok(user)
}

/// `change_user`, then ends the user's open event streams: they were authorised for the roles
/// the user had, and a disabled user must stop receiving at once. (Their page reconnects and is
/// authorised afresh, or refused.)
pub async fn change_user_and_streams(
    state: &super::AppState,
    id: i64,
    change: &UserChange,
    actor: &CurrentUser,
) -> Result<UserView, ServiceError> {
    let user = change_user(&state.db, id, change, actor).await?;
    let ended =
        super::revocations::everywhere(state, super::revocations::Revocation::User(id)).await;
    tracing::info!(user = id, ended, "user changed: open streams ended");
    Ok(user)
}

/// Checks a password. The same error for an unknown email and a wrong password, and the hash
/// work is done either way, so the answer's timing does not reveal which.
#[tracing::instrument(skip(db, password))]
pub async fn verify_login(
    db: &Db,
    email: &str,
    password: &str,
) -> Result<CurrentUser, ServiceError> {
    let refused = || ServiceError::Unauthorized("The email or password is not right.".into());
    let row =
        sqlx::query("SELECT id, email, roles, disabled, password_hash FROM users WHERE email = $1")
            .bind(email.trim().to_lowercase())
            .fetch_optional(&db.pool)
            .await?;
    let stored = match &row {
        Some(r) => Some(r.try_get::<String, _>("password_hash")?),
        None => None,
    };
    let password = password.to_string();
    let ok = off_the_workers(move || {
        // Verify against a throwaway hash, so unknown emails cost the same.
        let stored = stored.unwrap_or_else(|| dummy_hash().to_string());
        PasswordHash::new(&stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await?;
    let Some(row) = row.filter(|_| ok) else {
        return Err(refused());
    };
    let user = user_from_row(&row)?;
    if user.disabled {
        return Err(ServiceError::Forbidden(
            "This account is disabled. Ask an Impact app admin.".into(),
        ));
    }
    Ok(CurrentUser {
        id: user.id,
        email: user.email,
        roles: user.roles,
    })
}

/// Starts a session (a new token every time, so a fixated id is useless) and returns its token.
pub async fn start_session(
    db: &Db,
    user: &CurrentUser,
    policy: SessionPolicy,
) -> Result<String, ServiceError> {
    let token = random_token();
    let now = clock::now();
    sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $3, $4)")
        .bind(hash_token(&token))
        .bind(user.id)
        .bind(clock::to_db(now))
        .bind(clock::to_db(now + policy.absolute))
        .execute(&db.pool)
        .await?;
    Ok(token)
}

/// The user behind a session token, if the session is alive and the user enabled. Refreshes
/// the idle clock.
pub async fn resolve_session(
    db: &Db,
    token: &str,
    policy: SessionPolicy,
) -> Result<Option<CurrentUser>, ServiceError> {
    let key = hash_token(token);
    let row = sqlx::query(
        "SELECT u.id, u.email, u.roles, u.disabled, s.last_seen_at, s.expires_at FROM sessions s \
         JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
    )
    .bind(&key)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let now = clock::now();
    let last_seen: DateTime<Utc> = clock::from_db(&row.try_get::<String, _>("last_seen_at")?)?;
    let expires: DateTime<Utc> = clock::from_db(&row.try_get::<String, _>("expires_at")?)?;
    let user = user_from_row(&row)?;
    if user.disabled || now >= expires || now - last_seen >= policy.idle {
        end_session(db, token).await?;
        return Ok(None);
    }
    // Touch at most once a minute: most requests then read only.
    if now - last_seen > Duration::minutes(1) {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(clock::to_db(now))
            .bind(&key)
            .execute(&db.pool)
            .await?;
    }
    Ok(Some(CurrentUser {
        id: user.id,
        email: user.email,
        roles: user.roles,
    }))
}

pub async fn end_session(db: &Db, token: &str) -> Result<(), ServiceError> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(hash_token(token))
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The first administrator: from IMPACT_ADMIN_EMAIL / IMPACT_ADMIN_PASSWORD when set and no user
/// exists yet. Returns whether one was created.
pub async fn bootstrap_admin(db: &Db, email: &str, password: &str) -> Result<bool, ServiceError> {
    if count_users(db).await? > 0 {
        return Ok(false);
    }
    let new = NewUser {
        email: email.into(),
        password: password.into(),
        roles: Role::ALL.to_vec(),
    };
    match create_user(db, &new, "configuration").await {
        Ok(_) => Ok(true),
        // Replicas starting together on a fresh database: another one created it first.
        Err(ServiceError::Conflict(_)) if count_users(db).await? > 0 => Ok(false),
        Err(e) => Err(e),
    }
}

//! Companies: one per configured instance; names are unique regardless of case.
use sqlx::{Any, Row, Transaction};

use super::{clock, error::ServiceError, Db};
use crate::model::{CompanyName, CompanyView};

/// Case- and space-insensitive key, so "ACME  Ltd" and "acme ltd" are the same company.
pub fn name_key(name: &CompanyName) -> String {
    name.as_str()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[tracing::instrument(skip(db))]
pub async fn list(db: &Db) -> Result<Vec<CompanyView>, ServiceError> {
    let rows = sqlx::query("SELECT id, name FROM companies ORDER BY name_key")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(CompanyView {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
            })
        })
        .collect()
}

#[tracing::instrument(skip(db))]
pub async fn create(db: &Db, name: &str) -> Result<CompanyView, ServiceError> {
    let name = CompanyName::parse(name)?;
    let mut tx = db.begin().await?;
    if let Some(existing) = find(&mut tx, &name).await? {
        return Err(ServiceError::Conflict(format!(
            "A company named \"{}\" already exists: select it instead.",
            existing.name
        )));
    }
    let company = insert(&mut tx, &name).await?;
    tx.commit().await?;
    Ok(company)
}

pub(crate) async fn find(
    tx: &mut Transaction<'static, Any>,
    name: &CompanyName,
) -> Result<Option<CompanyView>, ServiceError> {
    let row = sqlx::query("SELECT id, name FROM companies WHERE name_key = $1")
        .bind(name_key(name))
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        Some(r) => Some(CompanyView {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
        }),
        None => None,
    })
}

pub(crate) async fn insert(
    tx: &mut Transaction<'static, Any>,
    name: &CompanyName,
) -> Result<CompanyView, ServiceError> {
    let id: i64 = sqlx::query(
        "INSERT INTO companies (name, name_key, created_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(name.as_str())
    .bind(name_key(name))
    .bind(clock::to_db(clock::now()))
    .fetch_one(&mut **tx)
    .await?
    .try_get("id")?;
    Ok(CompanyView {
        id,
        name: name.as_str().to_string(),
    })
}

/// The company with this name, created if absent (the form's "add a new company").
pub(crate) async fn find_or_insert(
    tx: &mut Transaction<'static, Any>,
    name: &CompanyName,
) -> Result<CompanyView, ServiceError> {
    match find(tx, name).await? {
        Some(c) => Ok(c),
        None => insert(tx, name).await,
    }
}

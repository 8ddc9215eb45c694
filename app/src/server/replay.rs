//! Replay protection for the provider's signed calls: a verified call's signature is recorded
//! in the database until its timestamp leaves the clock window, and a call whose signature is
//! already there is a replay. In the database rather than in each process's memory, so a call
//! captured on its way to one replica cannot be played again to another, nor to the same one
//! after a restart; and nothing is forgotten to make room (the rows stay as long as they must,
//! pruned by the sweep once they are past).
use super::Db;

/// Records `signature` (hex, read in either case) as used until `expires_at` (unix seconds);
/// `false` if it was already used and is still within its window at `now`.
pub async fn first_use(
    db: &Db,
    signature: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    // A row whose window has passed may be taken again (it would be pruned soon anyway); one
    // still inside it is left as it is, and nothing is written: the replay.
    let recorded = sqlx::query(
        "INSERT INTO inbound_signatures (signature, expires_at) VALUES ($1, $2) \
         ON CONFLICT (signature) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE inbound_signatures.expires_at < $3",
    )
    .bind(signature.to_ascii_lowercase())
    .bind(expires_at)
    .bind(now)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(recorded == 1)
}

/// Forgets the signatures whose window has passed; returns how many.
pub async fn prune(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM inbound_signatures WHERE expires_at < $1")
            .bind(now)
            .execute(&db.pool)
            .await?
            .rows_affected(),
    )
}

//! Replay protection for the provider's signed calls: a verified call's signature is recorded
//! in the database until its timestamp leaves the clock window, and a call whose signature is
//! already there is a replay. In the database rather than in each process's memory, so a call
//! captured on its way to one replica cannot be played again to another, nor to the same one
//! after a restart; and nothing is forgotten to make room (the rows stay as long as they must,
//! pruned by the sweep once they are past).
use super::{
    traffic::{self, Direction},
    Db,
};

/// Takes a verified call of `connection_id`: records its `signature` (hex, read in either case)
/// as used until `expires_at` (unix seconds) and counts it as an inbound message, in one
/// transaction (every heartbeat's echo is such a call: one commit each, not two). `false`, and
/// nothing written, if the signature was already used and is still within its window at `now`.
pub async fn take(
    db: &Db,
    connection_id: i64,
    signature: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    // A row whose window has passed may be taken again (it would be pruned soon anyway); one
    // still inside it is left as it is: the replay.
    let recorded = sqlx::query(
        "INSERT INTO inbound_signatures (signature, expires_at) VALUES ($1, $2) \
         ON CONFLICT (signature) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE inbound_signatures.expires_at < $3",
    )
    .bind(signature.to_ascii_lowercase())
    .bind(expires_at)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if recorded != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    traffic::record(&mut *tx, connection_id, Direction::Inbound).await?;
    tx.commit().await?;
    Ok(true)
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

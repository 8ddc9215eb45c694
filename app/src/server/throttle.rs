//! Slows repeated failed sign-ins.
//!
//! Who is counted: failures are keyed by (email, client address) and by client address, never
//! by email alone. A per-email counter would let anyone lock the real administrator out by
//! failing on their email from anywhere; keyed with the address, a guesser locks out only
//! themselves, and the administrator signing in from their own address is unaffected. A
//! guesser spreading over many addresses gets a few tries per address per window; each try
//! costs an argon2 check (behind a small semaphore), and IPv6 addresses count per /64 (what
//! one subscriber usually holds). The address key allows more failures than the pair (an office
//! behind one NAT shares it), but still stops one machine trying many emails.
//!
//! When: an attempt reserves its slot before the password is checked (it counts as a failure
//! until it succeeds), so parallel guesses cannot all pass the check while the first ones are
//! still being verified.
//!
//! Where: in the database (`sign_in_failures`), so every replica counts the same failures: a
//! guesser spreading attempts over the replicas behind a balancer gets no more tries than
//! against one. A reservation is one transaction with the keys' rows locked (`FOR UPDATE` on
//! PostgreSQL; SQLite has one writer at a time), so two replicas cannot both let a guess
//! through on the same count.
//!
//! How many rows: expired ones are deleted as attempts come; beyond `capacity` rows the stalest
//! go first.
use std::net::IpAddr;

use sqlx::Row;

use super::{clock, db::Backend, error::ServiceError, Db};

/// Failures of one email from one address before attempts must wait.
pub const FREE_PER_ACCOUNT: u32 = 5;
/// Failures from one address (any email) before attempts must wait.
pub const FREE_PER_ADDRESS: u32 = 4 * FREE_PER_ACCOUNT;
/// Failures are forgotten this long after the last one (milliseconds).
const WINDOW_MS: i64 = 15 * 60 * 1000;

/// The keys of one sign-in attempt, each with the failures it allows for free.
#[derive(Debug, Clone)]
pub struct Keys(Vec<(String, u32)>);

impl Keys {
    pub fn new(email: &str, ip: Option<IpAddr>) -> Self {
        let email = email.trim().to_lowercase();
        match ip.map(address) {
            Some(a) => Self(vec![
                (format!("account:{a}:{email}"), FREE_PER_ACCOUNT),
                (format!("address:{a}"), FREE_PER_ADDRESS),
            ]),
            // No address (not over TCP): the email is all there is.
            None => Self(vec![(format!("account:{email}"), FREE_PER_ACCOUNT)]),
        }
    }

    /// The account key (email from this address): what a success clears.
    pub fn account(&self) -> &str {
        self.0.first().map_or("", |(k, _)| k.as_str())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

/// The client as counted: an IPv4 address, or an IPv6 /64.
fn address(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Seconds still to wait after `failures` (the last `since_ms` ago) on a key allowing `free`:
/// none within the free failures, then 2 s doubling to 15 minutes after the last failure.
pub fn wait(failures: u32, free: u32, since_ms: i64) -> Option<u64> {
    if failures < free || since_ms > WINDOW_MS {
        return None;
    }
    let delay_ms = 2i64.saturating_pow(failures - free + 1).min(900) * 1000;
    let left = delay_ms - since_ms.max(0);
    (left > 0).then(|| ((left + 999) / 1000).max(1) as u64)
}

/// The shared sign-in throttle.
#[derive(Clone, Debug)]
pub struct Throttle {
    db: Db,
    capacity: usize,
}

impl Throttle {
    pub fn new(db: Db, capacity: usize) -> Self {
        Self {
            db,
            capacity: capacity.max(2),
        }
    }

    /// Reserves an attempt: counted as a failure now, before the password is checked. The
    /// inner `Err` holds the seconds to wait first (nothing is counted then).
    pub async fn reserve(&self, keys: &Keys) -> Result<Result<(), u64>, ServiceError> {
        let now = clock::now().timestamp_millis();
        let mut tx = self.db.begin().await?;
        for (k, _) in &keys.0 {
            sqlx::query(
                "INSERT INTO sign_in_failures (key, failures, last_ms) VALUES ($1, 0, $2) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(k)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let lock = match self.db.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let mut longest = None;
        for (k, free) in &keys.0 {
            let row = sqlx::query(&format!(
                "SELECT failures, last_ms FROM sign_in_failures WHERE key = $1{lock}"
            ))
            .bind(k)
            .fetch_one(&mut *tx)
            .await?;
            let failures: i64 = row.try_get("failures")?;
            let last: i64 = row.try_get("last_ms")?;
            let failures = u32::try_from(failures).unwrap_or(u32::MAX);
            longest = longest.max(wait(failures, *free, now - last));
        }
        if let Some(wait) = longest {
            // Rolled back: a refused attempt counts nothing.
            return Ok(Err(wait));
        }
        for (k, _) in &keys.0 {
            sqlx::query(
                "UPDATE sign_in_failures SET failures = CASE WHEN last_ms < $1 THEN 1 ELSE failures + 1 END, \
                 last_ms = $2 WHERE key = $3",
            )
            .bind(now - WINDOW_MS)
            .bind(now)
            .bind(k)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.prune(now).await?;
        Ok(Ok(()))
    }

    /// Expired rows go; beyond the capacity, the stalest.
    async fn prune(&self, now: i64) -> Result<(), ServiceError> {
        sqlx::query("DELETE FROM sign_in_failures WHERE last_ms < $1")
            .bind(now - WINDOW_MS)
            .execute(&self.db.pool)
            .await?;
        let rows: i64 = sqlx::query("SELECT COUNT(*) AS n FROM sign_in_failures")
            .fetch_one(&self.db.pool)
            .await?
            .try_get("n")?;
        let excess = rows - self.capacity as i64;
        if excess > 0 {
            sqlx::query(
                "DELETE FROM sign_in_failures WHERE key IN \
                 (SELECT key FROM sign_in_failures ORDER BY last_ms, key LIMIT $1)",
            )
            .bind(excess)
            .execute(&self.db.pool)
            .await?;
        }
        Ok(())
    }

    /// The attempt succeeded: the account's failures from this address are forgotten. (Not the
    /// address's: signing in to an account of one's own must not buy more guesses at others.)
    pub async fn succeeded(&self, keys: &Keys) -> Result<(), ServiceError> {
        sqlx::query("DELETE FROM sign_in_failures WHERE key = $1")
            .bind(keys.account())
            .execute(&self.db.pool)
            .await?;
        // The address keeps the failures of other emails, but this attempt was not one: its
        // reservation is given back (else every success from an office's one address would
        // count towards its limit, and twenty sign-ins would lock it out).
        for k in keys.names().filter(|k| *k != keys.account()) {
            sqlx::query(
                "UPDATE sign_in_failures SET failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END WHERE key = $1",
            )
            .bind(k)
            .execute(&self.db.pool)
            .await?;
        }
        Ok(())
    }

    /// The attempt failed for another reason than the credentials (the database, a disabled
    /// account): its reservation is given back.
    pub async fn release(&self, keys: &Keys) -> Result<(), ServiceError> {
        for k in keys.names() {
            sqlx::query(
                "UPDATE sign_in_failures SET failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END WHERE key = $1",
            )
            .bind(k)
            .execute(&self.db.pool)
            .await?;
        }
        Ok(())
    }

    /// Rows kept now (for tests and operators).
    pub async fn rows(&self) -> Result<i64, ServiceError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM sign_in_failures")
            .fetch_one(&self.db.pool)
            .await?
            .try_get("n")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn within_the_free_failures_nothing_waits_then_the_wait_doubles_to_fifteen_minutes() {
        assert_eq!(wait(4, 5, 0), None);
        assert_eq!(wait(5, 5, 0), Some(2));
        assert_eq!(wait(5, 5, 1500), Some(1));
        assert_eq!(wait(5, 5, 2000), None, "waited out");
        assert_eq!(wait(6, 5, 0), Some(4));
        assert_eq!(wait(30, 5, 0), Some(900), "capped");
        assert_eq!(wait(30, 5, WINDOW_MS + 1), None, "forgotten");
    }

    #[test]
    fn keys_pair_the_email_with_the_address_and_count_ipv6_per_64() {
        let k = Keys::new(" Admin@Example.com ", ip("10.0.0.1"));
        assert_eq!(k.account(), "account:10.0.0.1:admin@example.com");
        assert_eq!(k.names().nth(1), Some("address:10.0.0.1"));
        let a = Keys::new("x@example.com", ip("2001:db8:1:2::1"));
        let b = Keys::new("x@example.com", ip("2001:db8:1:2:ffff::9"));
        assert_eq!(a.account(), b.account());
        assert_eq!(
            Keys::new("x@example.com", ip("::ffff:10.0.0.1")).account(),
            "account:10.0.0.1:x@example.com",
            "a v4-mapped address is the v4 address"
        );
        assert_eq!(
            Keys::new("x@example.com", None).account(),
            "account:x@example.com"
        );
    }
}

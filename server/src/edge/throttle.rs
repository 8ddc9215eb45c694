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
//! How much memory: at most `capacity` keys; expired ones are pruned when it is reached, then
//! the stalest are dropped.
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

/// Failures of one email from one address before attempts must wait.
const FREE_PER_ACCOUNT: u32 = 5;
/// Failures from one address (any email) before attempts must wait.
const FREE_PER_ADDRESS: u32 = 4 * FREE_PER_ACCOUNT;
/// Failures are forgotten this long after the last one.
const WINDOW: Duration = Duration::from_secs(15 * 60);

struct Entry {
    failures: u32,
    last: Instant,
    free: u32,
}

pub struct Throttle {
    entries: Mutex<HashMap<String, Entry>>,
    capacity: usize,
}

/// The keys of one sign-in attempt.
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

impl Default for Throttle {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl Throttle {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::default(),
            capacity: capacity.max(2),
        }
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Each critical section leaves the map whole, so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves an attempt: counted as a failure now, before the password is checked. `Err`
    /// holds the seconds to wait first (nothing is counted then).
    pub fn reserve(&self, keys: &Keys) -> Result<(), u64> {
        let mut map = self.entries();
        let now = Instant::now();
        let wait = keys
            .0
            .iter()
            .filter_map(|(k, _)| map.get(k))
            .filter_map(|e| e.wait(now))
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        for (k, free) in &keys.0 {
            if !map.contains_key(k) && map.len() >= self.capacity {
                make_room(&mut map, now, self.capacity);
            }
            let e = map.entry(k.clone()).or_insert(Entry {
                failures: 0,
                last: now,
                free: *free,
            });
            if now.duration_since(e.last) > WINDOW {
                e.failures = 0;
            }
            e.failures += 1;
            e.last = now;
        }
        Ok(())
    }

    /// The attempt succeeded: the account's failures from this address are forgotten. (Not the
    /// address's: signing in to an account of one's own must not buy more guesses at others.)
    pub fn succeeded(&self, keys: &Keys) {
        if let Some((account, _)) = keys.0.first() {
            self.entries().remove(account);
        }
    }

    /// The attempt failed for another reason than the credentials (the database, a disabled
    /// account): its reservation is given back.
    pub fn release(&self, keys: &Keys) {
        let mut map = self.entries();
        for (k, _) in &keys.0 {
            if let Some(e) = map.get_mut(k) {
                e.failures = e.failures.saturating_sub(1);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Entry {
    /// Seconds still to wait: none within the free failures, then 2 s doubling to 15 minutes
    /// after the last failure.
    fn wait(&self, now: Instant) -> Option<u64> {
        let since = now.duration_since(self.last);
        if self.failures < self.free || since > WINDOW {
            return None;
        }
        let delay =
            Duration::from_secs(2u64.saturating_pow(self.failures - self.free + 1).min(900));
        delay.checked_sub(since).map(|d| d.as_secs().max(1))
    }
}

/// Drops expired keys; if none had expired, the stalest tenth.
fn make_room(map: &mut HashMap<String, Entry>, now: Instant, capacity: usize) {
    map.retain(|_, e| now.duration_since(e.last) <= WINDOW);
    if map.len() < capacity {
        return;
    }
    let mut by_age: Vec<(Instant, String)> = map.iter().map(|(k, e)| (e.last, k.clone())).collect();
    by_age.sort_unstable();
    for (_, k) in by_age.into_iter().take(capacity / 10 + 1) {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn after_the_free_failures_an_attempt_must_wait_and_is_not_counted() {
        let t = Throttle::default();
        let keys = Keys::new("Admin@Example.com ", ip("10.0.0.1"));
        for _ in 0..FREE_PER_ACCOUNT {
            assert_eq!(t.reserve(&keys), Ok(()));
        }
        let wait = t.reserve(&keys).expect_err("throttled");
        assert!((1..=2).contains(&wait), "{wait}");
        assert!(t
            .reserve(&Keys::new("admin@example.com", ip("10.0.0.1")))
            .is_err());
    }

    #[test]
    fn failures_from_another_address_do_not_lock_the_account_out_here() {
        let t = Throttle::default();
        let attacker = Keys::new("admin@example.com", ip("203.0.113.9"));
        for _ in 0..FREE_PER_ACCOUNT {
            let _ = t.reserve(&attacker);
        }
        assert!(t.reserve(&attacker).is_err());
        assert_eq!(
            t.reserve(&Keys::new("admin@example.com", ip("198.51.100.7"))),
            Ok(())
        );
    }

    #[test]
    fn one_address_trying_many_emails_is_stopped_too() {
        let t = Throttle::default();
        for n in 0..FREE_PER_ADDRESS {
            let keys = Keys::new(&format!("user{n}@example.com"), ip("203.0.113.9"));
            assert_eq!(t.reserve(&keys), Ok(()));
        }
        let fresh = Keys::new("someone-else@example.com", ip("203.0.113.9"));
        assert!(t.reserve(&fresh).is_err());
        // The same /64 is the same client.
        let a = Keys::new("x@example.com", ip("2001:db8:1:2::1"));
        let b = Keys::new("x@example.com", ip("2001:db8:1:2:ffff::9"));
        for _ in 0..FREE_PER_ACCOUNT {
            let _ = t.reserve(&a);
        }
        assert!(t.reserve(&b).is_err());
    }

    #[test]
    fn success_clears_and_a_released_reservation_is_not_counted() {
        let t = Throttle::default();
        let keys = Keys::new("a@example.com", ip("10.0.0.2"));
        for _ in 0..FREE_PER_ACCOUNT {
            let _ = t.reserve(&keys);
            t.release(&keys);
        }
        assert_eq!(t.reserve(&keys), Ok(()));
        t.succeeded(&keys);
        assert!(!t.entries().contains_key(&keys.0[0].0));
        assert_eq!(t.len(), 1, "the address's count stays");
    }

    #[test]
    fn the_table_stays_within_its_capacity() {
        let t = Throttle::new(100);
        for n in 0..1000u32 {
            let addr = IpAddr::from(n.to_be_bytes());
            let _ = t.reserve(&Keys::new("a@example.com", Some(addr)));
            assert!(t.len() <= 100, "{} keys", t.len());
        }
        // The newest are kept.
        let newest = Keys::new("a@example.com", Some(IpAddr::from(999u32.to_be_bytes())));
        assert!(t.entries().contains_key(&newest.0[0].0));
    }
}

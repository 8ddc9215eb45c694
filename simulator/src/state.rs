//! The simulator's memory: one `Instance` per `/i/{instance}` prefix, created on first use.
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, TimeDelta, Utc};
use rand::{distributions::Alphanumeric, Rng};
use serde::Serialize;

use super::faults::Faults;

/// How long an authorisation code from the browser page can be exchanged.
pub const AUTH_CODE_TTL_SECS: i64 = 600;
/// Time limit of every call the simulator makes to a consumer.
pub const OUTBOUND_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct SimState {
    instances: Arc<Mutex<HashMap<String, Instance>>>,
    pub client: reqwest::Client,
}

impl std::fmt::Debug for SimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimState")
    }
}

impl Default for SimState {
    fn default() -> Self {
        Self::new()
    }
}

impl SimState {
    pub fn new() -> Self {
        // No proxy: the consumer is usually on this machine, and an HTTP_PROXY in the environment
        // must not reroute the callbacks. Redirects are not followed: a callback either answers
        // or fails. Building can only fail when TLS cannot initialise (there is none here).
        let client = reqwest::Client::builder()
            .timeout(OUTBOUND_TIMEOUT)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            instances: Arc::default(),
            client,
        }
    }

    /// Runs `f` on the named instance, creating it on first use. The lock is never held across
    /// an await: callers copy out what they need.
    pub fn with<R>(&self, instance: &str, f: impl FnOnce(&mut Instance) -> R) -> R {
        // A panic while holding the lock cannot leave an instance half-updated in a way that
        // matters to a simulator: keep serving rather than poisoning every later request.
        let mut map = self.instances.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(instance.to_string()).or_default())
    }

    pub fn faults(&self, instance: &str) -> Faults {
        self.with(instance, |i| i.faults.clone())
    }

    /// Forgets an instance; the next request recreates it fresh.
    pub fn reset(&self, instance: &str) {
        self.instances
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(instance);
    }
}

#[derive(Debug, Default)]
pub struct Instance {
    pub faults: Faults,
    pub registrations: HashMap<String, Registration>,
    pub consumers: HashMap<String, Consumer>,
    pub counters: Counters,
}

/// What the instance served, for tests to check what a consumer asked for (`GET
/// /sim/instances/{instance}`). Counts answers handed to the handler's caller, after `slow_ms`
/// (a request abandoned during the delay is not counted).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    /// `POST …/onboarding` calls answered.
    pub onboarding_starts: u64,
    /// Settings groups answered with their settings (not the failed ones), by group.
    pub settings_served: BTreeMap<String, u64>,
    /// Onboarding steps repeated with a key already used, answered from the record and not done
    /// (or counted above) again.
    pub replayed: u64,
    /// `POST …/echo` calls answered ("Verify the connection" and every heartbeat).
    pub echoes: u64,
    /// Consumers off-boarded (`DELETE …/consumers/{id}`), by id, in order: each is forgotten,
    /// its credentials with it.
    pub off_boarded: Vec<String>,
    /// Credentials rotated (`POST …/credentials/rotate`).
    pub rotations: u64,
    /// Consumers re-activated for a (new) instance (`POST …/activate`).
    pub activations: u64,
    /// Data migration pages answered (`POST …/data/tables/{table}/page`), and the records in them.
    pub data_pages: u64,
    pub data_records: u64,
    /// The `X-Request-Id` of the latest `/idi` requests that carried one, oldest first (at most
    /// `REQUEST_IDS_KEPT`, each cut to `REQUEST_ID_MAX` characters).
    pub request_ids: std::collections::VecDeque<String>,
}

/// How many request ids an instance remembers.
pub const REQUEST_IDS_KEPT: usize = 64;
/// The longest request id remembered whole.
pub const REQUEST_ID_MAX: usize = 128;

impl Counters {
    /// Remembers a request's id, forgetting the oldest beyond `REQUEST_IDS_KEPT`.
    pub fn saw_request_id(&mut self, id: &str) {
        if self.request_ids.len() == REQUEST_IDS_KEPT {
            self.request_ids.pop_front();
        }
        self.request_ids
            .push_back(id.chars().take(REQUEST_ID_MAX).collect());
    }
}

impl Instance {
    /// The provider's clock: the real one, off by `clock_skew_secs`.
    pub fn now(&self) -> DateTime<Utc> {
        skewed_now(self.faults.clock_skew_secs)
    }
}

pub fn skewed_now(skew_secs: i64) -> DateTime<Utc> {
    let now = Utc::now();
    // The skew is bounded when set (faults::MAX_CLOCK_SKEW_SECS), so this stays in range.
    TimeDelta::try_seconds(skew_secs)
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(now)
}

#[derive(Debug, Clone)]
pub struct Registration {
    pub company: String,
    pub contact_email: String,
    pub used: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsumerStatus {
    Registered,
    Authorised,
    Onboarded,
}

#[derive(Debug, Clone)]
pub struct Consumer {
    pub secret: Vec<u8>,
    pub company: String,
    pub contact_email: String,
    pub consumer_url: String,
    pub status: ConsumerStatus,
    /// Authorisation codes handed out by the browser page, by code.
    pub auth_codes: HashMap<String, AuthCode>,
    pub onboarding: Onboarding,
    /// Answers to the onboarding steps it named with an idempotency key.
    pub answers: super::idempotent::Answers,
    /// The secret before the last rotation, still honoured until its time (provider clock).
    pub previous: Option<Previous>,
    /// The provider wants this consumer to rotate its credentials: echo answers say so.
    pub rotation_asked: bool,
}

#[derive(Debug, Clone)]
pub struct Previous {
    pub secret: Vec<u8>,
    /// Unix seconds on the provider's clock.
    pub until: i64,
}

impl Consumer {
    /// The secret a request may also be signed with now: the previous one, inside its grace.
    pub fn previous_secret(&self, now: i64) -> Option<Vec<u8>> {
        self.previous
            .as_ref()
            .filter(|p| now < p.until)
            .map(|p| p.secret.clone())
    }
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    /// Unix seconds on the provider's clock.
    pub expires_at: i64,
    pub used: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Onboarding {
    pub started: bool,
    pub synced_groups: BTreeSet<String>,
}

/// A random token of letters and digits: safe in URLs and JSON as is.
pub fn token(prefix: &str, len: usize) -> String {
    let body: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    format!("{prefix}{body}")
}

/// A fresh 32-byte connection secret.
pub fn secret() -> Vec<u8> {
    rand::random::<[u8; 32]>().to_vec()
}

//! Idempotent onboarding steps (docs/PROVIDER_PROTOCOL.md, "Idempotent steps"): a consumer names
//! each step with an `Idempotency-Key`; a repeat of a key it already used on the same endpoint is
//! answered from this record, and the step is not done again (nor counted). Only successful
//! answers are kept: a failed step had no effect and is done again when repeated.
use std::collections::{HashMap, VecDeque};

use axum::http::HeaderMap;
use serde_json::Value;

use app::server::signing::{HEADER_IDEMPOTENCY, MAX_IDEMPOTENCY_KEY};

use super::error::SimError;

/// Keys remembered per consumer; the oldest goes first (a run uses a handful).
const KEPT: usize = 256;

/// A validated key: printable ASCII, at most `MAX_IDEMPOTENCY_KEY` long.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    /// The request's key, if it sent one.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, SimError> {
        let Some(raw) = headers.get(HEADER_IDEMPOTENCY) else {
            return Ok(None);
        };
        let text = raw.to_str().ok().filter(|t| {
            !t.is_empty()
                && t.len() <= MAX_IDEMPOTENCY_KEY
                && t.chars().all(|c| c.is_ascii_graphic())
        });
        match text {
            Some(t) => Ok(Some(Self(t.to_string()))),
            None => Err(SimError::BadRequest(format!(
                "The {HEADER_IDEMPOTENCY} header must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters."
            ))),
        }
    }
}

/// One consumer's remembered answers, by key.
#[derive(Debug, Default, Clone)]
pub struct Answers {
    by_key: HashMap<Key, (&'static str, Value)>,
    order: VecDeque<Key>,
}

impl Answers {
    /// The answer recorded for `key` on `endpoint`. A key used before on another endpoint is a
    /// consumer's mistake, refused rather than guessed at.
    pub fn replay(&self, key: &Key, endpoint: &'static str) -> Result<Option<Value>, SimError> {
        match self.by_key.get(key) {
            None => Ok(None),
            Some((e, answer)) if *e == endpoint => Ok(Some(answer.clone())),
            Some((e, _)) => Err(SimError::BadRequest(format!(
                "This {HEADER_IDEMPOTENCY} was already used for {e}; use a new key for each step."
            ))),
        }
    }

    pub fn remember(&mut self, key: Key, endpoint: &'static str, answer: Value) {
        if self
            .by_key
            .insert(key.clone(), (endpoint, answer))
            .is_none()
        {
            self.order.push_back(key);
        }
        while self.order.len() > KEPT {
            if let Some(old) = self.order.pop_front() {
                self.by_key.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(k: &str) -> Key {
        let mut h = HeaderMap::new();
        h.insert(HEADER_IDEMPOTENCY, k.parse().expect("header"));
        Key::from_headers(&h).expect("valid").expect("present")
    }

    #[test]
    fn a_repeat_gets_the_first_answer_and_another_endpoint_is_refused() {
        let mut a = Answers::default();
        assert_eq!(a.replay(&key("k1"), "start").ok(), Some(None));
        a.remember(key("k1"), "start", json!({"groups": ["x"]}));
        assert_eq!(
            a.replay(&key("k1"), "start").ok(),
            Some(Some(json!({"groups": ["x"]})))
        );
        assert!(a.replay(&key("k1"), "complete").is_err());
    }

    #[test]
    fn only_the_newest_keys_are_kept() {
        let mut a = Answers::default();
        for i in 0..KEPT + 10 {
            a.remember(key(&format!("k{i}")), "start", json!(i));
        }
        assert_eq!(a.replay(&key("k0"), "start").ok(), Some(None));
        assert_eq!(
            a.replay(&key(&format!("k{}", KEPT + 9)), "start").ok(),
            Some(Some(json!(KEPT + 9)))
        );
    }

    #[test]
    fn bad_keys_are_refused_and_none_is_fine() {
        assert!(matches!(Key::from_headers(&HeaderMap::new()), Ok(None)));
        let mut h = HeaderMap::new();
        h.insert(HEADER_IDEMPOTENCY, "a b".parse().expect("header"));
        assert!(Key::from_headers(&h).is_err());
        h.insert(
            HEADER_IDEMPOTENCY,
            "k".repeat(MAX_IDEMPOTENCY_KEY + 1).parse().expect("header"),
        );
        assert!(Key::from_headers(&h).is_err());
    }
}

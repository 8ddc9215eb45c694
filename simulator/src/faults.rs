//! The faults an instance can be told to show (docs/PROVIDER_PROTOCOL.md, "Simulator
//! administration"). A PUT replaces them all: fields left out take their defaults.
use serde::{Deserialize, Serialize};

use super::catalog::SETTINGS_GROUPS;

/// Longest `slow_ms` accepted: slower than any consumer's time limit, yet short enough that a
/// typo cannot park requests for hours.
pub const MAX_SLOW_MS: u64 = 300_000;
/// Largest `clock_skew_secs` accepted (about ten years): keeps the clock arithmetic in range.
pub const MAX_CLOCK_SKEW_SECS: i64 = 315_360_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    pub down: bool,
    pub slow_ms: u64,
    /// The provider acts at once but its answer leaves this much later (a slow way back): a
    /// consumer that goes away meanwhile has had its step done without learning so.
    pub late_answer_ms: u64,
    pub http_5xx: bool,
    pub malformed_json: bool,
    pub protocol_version: i64,
    pub bad_credentials: bool,
    pub entitlement: EntitlementFault,
    pub inbound_blocked: bool,
    /// Completing onboarding answers `inbound_ok: true` without calling the consumer: a
    /// provider's word the consumer must not take for an inbound call.
    pub inbound_unsent: bool,
    /// Every signed request but `activate` answers `409 instance_changed`, as if this consumer's
    /// instance had been cloned, until the consumer re-activates (which clears it).
    pub instance_changed: bool,
    pub clock_skew_secs: i64,
    pub fail_settings_group: Option<String>,
    /// Every provider endpoint answers `307` to this address instead.
    pub redirect_to: Option<String>,
    /// Every provider endpoint answers a body larger than any consumer accepts (2 MiB).
    pub oversized_answer: bool,
    /// Each page of a data migration's records takes this long (the rest answers at once): a
    /// migration that runs long enough to watch, cancel, or kill mid-way.
    pub data_page_ms: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            down: false,
            slow_ms: 0,
            late_answer_ms: 0,
            http_5xx: false,
            malformed_json: false,
            protocol_version: 1,
            bad_credentials: false,
            entitlement: EntitlementFault::Active,
            inbound_blocked: false,
            inbound_unsent: false,
            instance_changed: false,
            clock_skew_secs: 0,
            fail_settings_group: None,
            redirect_to: None,
            oversized_answer: false,
            data_page_ms: 0,
        }
    }
}

/// What the consumer's entitlements look like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntitlementFault {
    #[default]
    Active,
    Pending,
    Inactive,
    /// No entitlements at all: an empty list.
    Missing,
}

impl EntitlementFault {
    /// The status every entitlement shows, or None for no entitlements at all.
    pub fn status(self) -> Option<&'static str> {
        match self {
            EntitlementFault::Active => Some("active"),
            EntitlementFault::Pending => Some("pending"),
            EntitlementFault::Inactive => Some("inactive"),
            EntitlementFault::Missing => None,
        }
    }
}

impl Faults {
    /// Parses a PUT body. Unknown fields are refused so that a typo ("slow": 500) does not
    /// silently leave the fault off.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let faults: Faults =
            serde_json::from_slice(body).map_err(|e| format!("Invalid faults: {e}"))?;
        faults.validate()?;
        Ok(faults)
    }

    fn validate(&self) -> Result<(), String> {
        if self.slow_ms > MAX_SLOW_MS {
            return Err(format!("slow_ms must be at most {MAX_SLOW_MS}."));
        }
        if self.data_page_ms > MAX_SLOW_MS {
            return Err(format!("data_page_ms must be at most {MAX_SLOW_MS}."));
        }
        if self.late_answer_ms > MAX_SLOW_MS {
            return Err(format!("late_answer_ms must be at most {MAX_SLOW_MS}."));
        }
        // unsigned_abs: i64::MIN has no positive counterpart.
        if self.clock_skew_secs.unsigned_abs() > MAX_CLOCK_SKEW_SECS.unsigned_abs() {
            return Err(format!(
                "clock_skew_secs must be within ±{MAX_CLOCK_SKEW_SECS}."
            ));
        }
        if let Some(group) = &self.fail_settings_group {
            if !SETTINGS_GROUPS.contains(&group.as_str()) {
                return Err(format!(
                    "fail_settings_group must be null or one of {}.",
                    SETTINGS_GROUPS.join(", ")
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_body_keeps_the_defaults() {
        let f = Faults::parse(br#"{"down": true}"#).unwrap();
        assert_eq!(
            f,
            Faults {
                down: true,
                ..Faults::default()
            }
        );
        assert_eq!(Faults::parse(b"{}").unwrap(), Faults::default());
    }

    #[test]
    fn typos_and_out_of_range_values_are_refused() {
        assert!(Faults::parse(br#"{"slow": 5}"#).is_err());
        assert!(Faults::parse(br#"{"entitlement": "expired"}"#).is_err());
        assert!(Faults::parse(br#"{"fail_settings_group": "exchange"}"#).is_err());
        assert!(Faults::parse(br#"{"clock_skew_secs": -9223372036854775808}"#).is_err());
        assert!(Faults::parse(b"not json").is_err());
        let ok = Faults::parse(br#"{"fail_settings_group": "entitlements"}"#).unwrap();
        assert_eq!(ok.fail_settings_group.as_deref(), Some("entitlements"));
    }
}

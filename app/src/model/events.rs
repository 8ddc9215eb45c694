//! What the live stream carries: every event is stored with a per-connection sequence number and
//! sent as the SSE `id`, so a client resumes exactly where it left off.
use serde::{Deserialize, Serialize};

use super::{CheckResult, ConnectionView};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// The record changed: a fresh snapshot of state and statuses.
    Connection { connection: ConnectionView },
    /// A scan run started or finished (`outcome` "passed" / "failed" when finished).
    Scan {
        run_id: i64,
        suite: String,
        outcome: Option<String>,
    },
    /// A check started (`result` None) or finished.
    Check {
        run_id: i64,
        check_id: String,
        name: String,
        result: Option<CheckResult>,
    },
    /// An onboarding status message, as the product words it.
    Onboarding {
        step: String,
        message: String,
        failed: bool,
    },
}

impl EventBody {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            EventBody::Connection { .. } => "connection",
            EventBody::Scan { .. } => "scan",
            EventBody::Check { .. } => "check",
            EventBody::Onboarding { .. } => "onboarding",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionEvent {
    pub connection_id: i64,
    pub seq: i64,
    #[serde(with = "crate::model::time")]
    pub at: chrono::DateTime<chrono::Utc>,
    pub body: EventBody,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SSE event names the browser's live panel listens for.
    #[test]
    fn each_event_has_the_stream_name_the_page_listens_for() {
        let onboarding = EventBody::Onboarding {
            step: "started".into(),
            message: "Provider onboarding started".into(),
            failed: false,
        };
        let scan = EventBody::Scan {
            run_id: 1,
            suite: "pre_onboarding".into(),
            outcome: None,
        };
        let check = EventBody::Check {
            run_id: 1,
            check_id: "tls".into(),
            name: "TLS".into(),
            result: None,
        };
        assert_eq!(onboarding.name(), "onboarding");
        assert_eq!(scan.name(), "scan");
        assert_eq!(check.name(), "check");
    }
}

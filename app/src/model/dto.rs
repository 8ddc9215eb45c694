//! The shapes the API sends and receives, shared by the server and the browser.
//!
//! Requests carry plain strings: the server parses them into the model's newtypes, so a bad
//! value comes back as an [`ApiError`] naming the field instead of a generic JSON error.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::field::FieldError;
use super::state::{Action, ConnectionState, ConnectionStatus, LinkStatus, Onboarding, Refusal};

/// Every error response's body. `message` is for the person; `code` is for code and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[error("{message}")]
pub struct ApiError {
    pub code: String,
    pub message: String,
    /// The form field to show the message next to, when one is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// `code` for a value a person typed that was refused.
    pub const INVALID_FIELD: &'static str = "invalid_field";
    /// `code` for an action the connection's current state does not allow.
    pub const ACTION_REFUSED: &'static str = "action_refused";

    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            field: None,
        }
    }

    /// The message, when it is about the form field `field` (to show next to that field).
    pub fn field_message(&self, field: &str) -> Option<&str> {
        (self.field.as_deref() == Some(field)).then_some(self.message.as_str())
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self {
            code: Self::INVALID_FIELD.to_owned(),
            message: e.message,
            field: Some(e.field),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        Self::new(Self::ACTION_REFUSED, r.reason)
    }
}

/// A provider connection record as the form shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConnectionView {
    pub id: i64,
    pub company: String,
    pub url: String,
    pub state: ConnectionState,
    pub registered: bool,
    pub onboarding: Onboarding,
    pub outbound: LinkStatus,
    pub inbound: LinkStatus,
    /// Optimistic-concurrency token: echo it back with every change.
    pub version: i64,
    #[serde(with = "crate::model::time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::model::time")]
    pub updated_at: DateTime<Utc>,
}

impl ConnectionView {
    /// The stored provider URL under today's rules (the server's; the browser only shows it).
    pub fn provider_url(&self) -> Result<super::ProviderUrl, super::FieldError> {
        super::ProviderUrl::parse(&self.url)
    }

    /// The part the state machine works on.
    pub fn status(&self) -> ConnectionStatus {
        ConnectionStatus {
            state: self.state,
            registered: self.registered,
            onboarding: self.onboarding,
            outbound: self.outbound,
            inbound: self.inbound,
        }
    }
}

/// Create a connection (from the registration link, which carries the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreateConnection {
    pub company: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_token: Option<String>,
}

/// Change the company ("Save").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UpdateConnection {
    pub company: String,
    pub version: i64,
}

/// Ask for a state-machine action on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConnectionAction {
    pub action: Action,
    pub version: i64,
}

/// One line of a connection's timeline: who did what, and where it left the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    #[serde(with = "crate::model::time")]
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub from_state: ConnectionState,
    pub to_state: ConnectionState,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CompanyView {
    pub id: i64,
    pub name: String,
}

/// Add a company (name only, as the form allows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreateCompany {
    pub name: String,
}

/// Provider side: initiate a registration for a named contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct InvitationRequest {
    pub email: String,
    pub company: String,
    /// The provider instance to register with; this app's configured provider when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_url: Option<String>,
}

/// Provider side: an initiated registration, as the instance registration tab lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct InvitationView {
    pub id: i64,
    pub email: String,
    pub company: String,
    pub provider_url: String,
    pub status: super::RegistrationStatus,
    #[serde(with = "crate::model::time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::model::time")]
    pub expires_at: DateTime<Utc>,
    /// The "Connect with Impact IDI" link, while the registration is still pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// An email we would have sent (the welcome email), kept for people and tests to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OutboxMessage {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// The "Connect with Impact IDI" link, when the message carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(with = "crate::model::time")]
    pub created_at: DateTime<Utc>,
}

/// What a valid registration link opens: the connection form's pre-populated values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RegistrationLinkView {
    pub company: String,
    pub provider_url: String,
    pub email: String,
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_field_error_is_placed_at_its_field_only() {
        let e: ApiError = FieldError::new("company", "Enter a company name.").into();
        assert_eq!(e.field_message("company"), Some("Enter a company name."));
        assert_eq!(e.field_message("url"), None);
        // An error about no field belongs to no field.
        assert_eq!(ApiError::new("x", "Nope.").field_message("company"), None);
    }
    use chrono::TimeZone;

    use super::*;
    use crate::model::CompanyName;

    fn time(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    fn round_trip<T>(value: &T) -> String
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        let json = serde_json::to_string(value).unwrap();
        assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), value, "{json}");
        json
    }

    #[test]
    fn api_error_omits_absent_field() {
        let e = ApiError::new("not_found", "No such connection.");
        assert_eq!(
            round_trip(&e),
            r#"{"code":"not_found","message":"No such connection."}"#
        );
        assert_eq!(e.to_string(), "No such connection.");
        let from_field: ApiError = CompanyName::parse("").unwrap_err().into();
        assert_eq!(
            round_trip(&from_field),
            r#"{"code":"invalid_field","message":"Enter a company name.","field":"company"}"#
        );
        let refusal =
            crate::model::transition(ConnectionStatus::new_record(), Action::Onboard).unwrap_err();
        let from_refusal = ApiError::from(refusal.clone());
        assert_eq!(from_refusal.code, "action_refused");
        assert_eq!(from_refusal.message, refusal.reason);
    }

    #[test]
    fn connection_view_round_trip_and_status() {
        let view = ConnectionView {
            id: 7,
            company: "ServiceNow Impact".into(),
            url: "https://idi.example.com".into(),
            state: ConnectionState::Validated,
            registered: true,
            onboarding: Onboarding::Syncing,
            outbound: LinkStatus::Up,
            inbound: LinkStatus::NotOnboarded,
            version: 3,
            created_at: time(1_750_000_000),
            updated_at: time(1_750_000_100),
        };
        let json = round_trip(&view);
        assert!(json.contains(r#""state":"validated""#), "{json}");
        assert!(json.contains(r#""inbound":"not_onboarded""#), "{json}");
        assert!(
            json.contains(r#""created_at":"2025-06-15T15:06:40Z""#),
            "{json}"
        );
        let status = view.status();
        assert_eq!(status.state, ConnectionState::Validated);
        assert_eq!(status.onboarding, Onboarding::Syncing);
        assert_eq!(
            (status.outbound, status.inbound),
            (LinkStatus::Up, LinkStatus::NotOnboarded)
        );
        assert!(status.registered);
        let bad = json.replace(r#""state":"validated""#, r#""state":"Validated""#);
        assert!(serde_json::from_str::<ConnectionView>(&bad).is_err());
    }

    #[test]
    fn requests_round_trip() {
        let create = CreateConnection {
            company: "Acme".into(),
            registration_token: None,
        };
        assert_eq!(round_trip(&create), r#"{"company":"Acme"}"#);
        round_trip(&CreateConnection {
            company: "Acme".into(),
            registration_token: Some("tok".into()),
        });
        round_trip(&UpdateConnection {
            company: "Acme".into(),
            version: 2,
        });
        let action = ConnectionAction {
            action: Action::SubmitForValidation,
            version: 1,
        };
        assert_eq!(
            round_trip(&action),
            r#"{"action":"submit_for_validation","version":1}"#
        );
        assert!(
            serde_json::from_str::<ConnectionAction>(r#"{"action":"launch","version":1}"#).is_err()
        );
        assert!(serde_json::from_str::<ConnectionAction>(r#"{"action":"save"}"#).is_err());
        round_trip(&CreateCompany {
            name: "Acme".into(),
        });
        round_trip(&CompanyView {
            id: 1,
            name: "Acme".into(),
        });
        round_trip(&InvitationRequest {
            email: "ada@example.com".into(),
            company: "Acme".into(),
            provider_url: None,
        });
        round_trip(&InvitationRequest {
            email: "ada@example.com".into(),
            company: "Acme".into(),
            provider_url: Some("http://127.0.0.1:3001/i/x".into()),
        });
    }

    #[test]
    fn records_round_trip() {
        round_trip(&HistoryEntry {
            at: time(1_750_000_000),
            actor: "ada@example.com".into(),
            action: Action::Rescan.as_db().into(),
            from_state: ConnectionState::ValidationFailed,
            to_state: ConnectionState::AwaitingValidation,
            reason: String::new(),
        });
        round_trip(&InvitationView {
            id: 1,
            email: "ada@example.com".into(),
            company: "Acme".into(),
            provider_url: "https://idi.example.com".into(),
            status: crate::model::RegistrationStatus::Pending,
            created_at: time(1_750_000_000),
            expires_at: time(1_750_086_400),
            link: Some("https://app.example.com/connect?token=x".into()),
        });
        let message = OutboxMessage {
            id: 1,
            to: "ada@example.com".into(),
            subject: "Welcome".into(),
            body: "Hello".into(),
            link: None,
            created_at: time(1_750_000_000),
        };
        assert!(!round_trip(&message).contains("link"));
        round_trip(&OutboxMessage {
            link: Some("https://app.example.com/register?token=x".into()),
            ..message
        });
        round_trip(&RegistrationLinkView {
            company: "ServiceNow Impact".into(),
            provider_url: "http://localhost:3001".into(),
            email: "ada@example.com".into(),
        });
    }
}

//! The rules of a connection's later life that are not state-machine edges: what a person must
//! type to off-board one, and what the request carries.
use serde::{Deserialize, Serialize};

use super::FieldError;

/// The word an IDI admin types to confirm off-boarding (the seed's own confirmation).
pub const OFF_BOARD_CONFIRMATION: &str = "Delete";

/// "Off-board": the version the admin saw, the typed confirmation, and whether to go ahead
/// without telling a provider that cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OffBoardConnection {
    pub version: i64,
    /// Exactly "Delete".
    pub confirm: String,
    /// Off-board even though the provider cannot be told (it is gone for good). The provider
    /// keeps its side of the link until someone there removes it.
    #[serde(default)]
    pub without_provider: bool,
}

impl OffBoardConnection {
    pub const CONFIRM_FIELD: &'static str = "confirm";
}

/// "Re-register this connection": the version the admin saw and the fresh registration link's
/// token, whose new code replaces the old one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReRegisterConnection {
    pub version: i64,
    pub registration_token: String,
}

impl ReRegisterConnection {
    pub const TOKEN_FIELD: &'static str = "registration_token";
}

/// Whether `typed` confirms off-boarding: "Delete", as written (spaces around it ignored). The
/// button stays disabled until it does; the server asks again.
pub fn check_off_board_confirmation(typed: &str) -> Result<(), FieldError> {
    if typed.trim() == OFF_BOARD_CONFIRMATION {
        Ok(())
    } else {
        Err(FieldError::new(
            OffBoardConnection::CONFIRM_FIELD,
            format!(
                "Type {OFF_BOARD_CONFIRMATION} (capital D) to confirm off-boarding; nothing was changed."
            ),
        ))
    }
}

/// What the form says while the provider reports a cloned instance.
pub const INSTANCE_CHANGED_NOTICE: &str = "The provider reports that this instance changed (a clone of the instance): it refuses the connection from here. If this instance is the one to keep, select Validate and Activate to re-establish the connection for it; its history stays.";

/// What an off-boarded record's form says above it.
pub fn off_boarded_notice(company: &str) -> String {
    format!(
        "This connection is off-boarded: the provider was told and its credentials erased. It is kept here to read, with its history. To connect {company} again, an IDI admin opens a fresh registration link (Instance registration)."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_word_itself_confirms() {
        assert!(check_off_board_confirmation("Delete").is_ok());
        assert!(check_off_board_confirmation("  Delete\n").is_ok());
        for typed in [
            "",
            "delete",
            "DELETE",
            "Delet",
            "Delete it",
            "Dele te",
            "Yes",
        ] {
            let e = check_off_board_confirmation(typed).unwrap_err();
            assert_eq!(e.field, "confirm", "{typed:?}");
            assert!(
                e.message.contains("Type Delete"),
                "{typed:?}: {}",
                e.message
            );
        }
    }

    #[test]
    fn the_request_round_trips_and_defaults_to_telling_the_provider() {
        let req: OffBoardConnection =
            serde_json::from_str(r#"{"version":3,"confirm":"Delete"}"#).unwrap();
        assert_eq!(
            req,
            OffBoardConnection {
                version: 3,
                confirm: "Delete".into(),
                without_provider: false
            }
        );
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(
            serde_json::from_str::<OffBoardConnection>(&json).unwrap(),
            req
        );
        assert!(serde_json::from_str::<OffBoardConnection>(r#"{"confirm":"Delete"}"#).is_err());
    }
}

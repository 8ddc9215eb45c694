//! The error every parser in the model returns: which form field is wrong and what to do about it.

use serde::{Deserialize, Serialize};

/// A value a person typed was refused. `message` is shown next to the field named `field`, so it
/// says what to change, not what went wrong internally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_only_the_message() {
        let e = FieldError::new("company", "Enter a company name.");
        assert_eq!(e.field, "company");
        assert_eq!(e.to_string(), "Enter a company name.");
    }

    #[test]
    fn serde_round_trip() {
        let e = FieldError::new("url", "Bad.");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"field":"url","message":"Bad."}"#);
        assert_eq!(serde_json::from_str::<FieldError>(&json).unwrap(), e);
    }
}

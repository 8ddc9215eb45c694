//! The company a provider connection is configured for (the form's only required field).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::field::FieldError;

/// Pre-populated from the registration link, as the product does.
pub const DEFAULT_COMPANY: &str = "ServiceNow Impact";

/// A trimmed, non-empty company name of at most [`CompanyName::MAX_CHARS`] characters.
///
/// Deserializing validates too, so an invalid name cannot slip in through JSON.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CompanyName(String);

impl CompanyName {
    /// The form field errors are reported against.
    pub const FIELD: &'static str = "company";
    pub const MAX_CHARS: usize = 100;

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let name = input.trim();
        if name.is_empty() {
            return Err(FieldError::new(Self::FIELD, "Enter a company name."));
        }
        // Control characters would break list layouts and log lines, and are never intended.
        if name.chars().any(char::is_control) {
            return Err(FieldError::new(
                Self::FIELD,
                "The company name must not contain control characters such as tabs or line breaks.",
            ));
        }
        // Count characters, not bytes: the limit is what the person sees.
        let count = name.chars().count();
        if count > Self::MAX_CHARS {
            return Err(FieldError::new(
                Self::FIELD,
                format!(
                    "The company name must be at most {} characters; it has {count}.",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for CompanyName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CompanyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CompanyName {
    type Error = FieldError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl TryFrom<&str> for CompanyName {
    type Error = FieldError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<CompanyName> for String {
    fn from(value: CompanyName) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(input: &str) -> String {
        let err = CompanyName::parse(input).unwrap_err();
        assert_eq!(err.field, "company");
        err.message
    }

    #[test]
    fn accepts_and_trims() {
        assert_eq!(CompanyName::parse("Acme").unwrap().as_str(), "Acme");
        assert_eq!(
            CompanyName::parse("  Acme Ltd  ").unwrap().as_str(),
            "Acme Ltd"
        );
        assert_eq!(
            CompanyName::parse(DEFAULT_COMPANY).unwrap().to_string(),
            "ServiceNow Impact"
        );
        assert_eq!(
            CompanyName::parse("Société Générale").unwrap().as_str(),
            "Société Générale"
        );
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(message(""), "Enter a company name.");
        assert_eq!(message("   \t "), "Enter a company name.");
    }

    #[test]
    fn length_limit_counts_characters() {
        assert!(CompanyName::parse(&"a".repeat(100)).is_ok());
        // 100 two-byte characters are still 100 characters.
        assert!(CompanyName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(
            message(&"a".repeat(101)),
            "The company name must be at most 100 characters; it has 101."
        );
    }

    #[test]
    fn rejects_control_characters() {
        for bad in ["Ac\nme", "Ac\tme", "Ac\u{0}me", "Ac\u{7f}me"] {
            assert_eq!(
                message(bad),
                "The company name must not contain control characters such as tabs or line breaks.",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn serde_is_a_validated_string() {
        let name = CompanyName::parse("Acme").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), r#""Acme""#);
        assert_eq!(
            serde_json::from_str::<CompanyName>(r#""Acme""#).unwrap(),
            name
        );
        // Deserializing normalises like parse does.
        assert_eq!(
            serde_json::from_str::<CompanyName>(r#"" Acme ""#).unwrap(),
            name
        );
        let err = serde_json::from_str::<CompanyName>(r#""  ""#).unwrap_err();
        assert!(err.to_string().contains("Enter a company name."), "{err}");
        assert!(serde_json::from_str::<CompanyName>("42").is_err());
        assert!(serde_json::from_str::<CompanyName>("null").is_err());
    }

    #[test]
    fn the_name_is_carried_as_entered_without_the_spaces_around_it() {
        let name = CompanyName::parse("  Acme Stores ").expect("valid");
        assert_eq!(name.as_ref(), "Acme Stores");
        assert_eq!(name.as_str(), "Acme Stores");
    }
}

//! An email address, as used for the named contact administrator.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::field::FieldError;

/// A trimmed address with exactly one '@', a non-empty local part and a lowercased domain.
///
/// Deliberately loose: the only real check is that mail arrives. The domain is lowercased
/// (domains are case-insensitive) but the local part is kept as typed (it may not be).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// The form field errors are reported against.
    pub const FIELD: &'static str = "email";
    pub const MAX_CHARS: usize = 254;

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let err = |message: &str| FieldError::new(Self::FIELD, message);
        let raw = input.trim();
        if raw.is_empty() {
            return Err(err("Enter an email address."));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(
                "The email address must not contain spaces or line breaks.",
            ));
        }
        let (local, domain) = match raw.split_once('@') {
            Some((local, domain)) if !domain.contains('@') => (local, domain),
            _ => {
                return Err(err(
                    "The email address must contain exactly one @, as in name@example.com.",
                ))
            }
        };
        if local.is_empty() {
            return Err(err(
                "The email address needs a name before the @, as in name@example.com.",
            ));
        }
        if domain.is_empty() {
            return Err(err(
                "The email address needs a domain after the @, as in name@example.com.",
            ));
        }
        let domain = domain.to_lowercase();
        // "localhost" is allowed for mail caught on this machine in development.
        let full_domain = domain.contains('.') && domain.split('.').all(|label| !label.is_empty());
        if domain != "localhost" && !full_domain {
            return Err(err(
                "The email address needs a full domain after the @, such as example.com.",
            ));
        }
        let address = format!("{local}@{domain}");
        if address.chars().count() > Self::MAX_CHARS {
            return Err(err("The email address must be at most 254 characters."));
        }
        Ok(Self(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the '@'.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(local, _)| local)
    }

    /// The lowercased part after the '@'.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, domain)| domain)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = FieldError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl TryFrom<&str> for EmailAddress {
    type Error = FieldError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(input: &str) -> String {
        let err = EmailAddress::parse(input).unwrap_err();
        assert_eq!(err.field, "email");
        err.message
    }

    #[test]
    fn accepts_trims_and_lowercases_the_domain() {
        for (input, expected) in [
            ("ada@example.com", "ada@example.com"),
            ("  Ada.Lovelace@Example.COM ", "Ada.Lovelace@example.com"),
            ("ops+idi@mail.example.co.uk", "ops+idi@mail.example.co.uk"),
            ("admin@localhost", "admin@localhost"),
            ("admin@LocalHost", "admin@localhost"),
        ] {
            let email = EmailAddress::parse(input).unwrap();
            assert_eq!(email.as_str(), expected, "{input:?}");
        }
        let email = EmailAddress::parse("Ada@Example.com").unwrap();
        assert_eq!(email.local_part(), "Ada");
        assert_eq!(email.domain(), "example.com");
    }

    #[test]
    fn rejects_with_actionable_messages() {
        for (input, expected) in [
            ("", "Enter an email address."),
            ("   ", "Enter an email address."),
            (
                "ada lovelace@example.com",
                "The email address must not contain spaces or line breaks.",
            ),
            (
                "ada@exa\tmple.com",
                "The email address must not contain spaces or line breaks.",
            ),
            (
                "ada.example.com",
                "The email address must contain exactly one @, as in name@example.com.",
            ),
            (
                "ada@@example.com",
                "The email address must contain exactly one @, as in name@example.com.",
            ),
            (
                "a@b@example.com",
                "The email address must contain exactly one @, as in name@example.com.",
            ),
            (
                "@example.com",
                "The email address needs a name before the @, as in name@example.com.",
            ),
            (
                "ada@",
                "The email address needs a domain after the @, as in name@example.com.",
            ),
            (
                "ada@example",
                "The email address needs a full domain after the @, such as example.com.",
            ),
            (
                "ada@example.",
                "The email address needs a full domain after the @, such as example.com.",
            ),
            (
                "ada@.example.com",
                "The email address needs a full domain after the @, such as example.com.",
            ),
            (
                "ada@example..com",
                "The email address needs a full domain after the @, such as example.com.",
            ),
        ] {
            assert_eq!(message(input), expected, "{input:?}");
        }
    }

    #[test]
    fn length_limit() {
        let domain = "@example.com";
        let at_limit = format!("{}{domain}", "a".repeat(254 - domain.len()));
        assert!(EmailAddress::parse(&at_limit).is_ok());
        assert_eq!(
            message(&format!("a{at_limit}")),
            "The email address must be at most 254 characters."
        );
    }

    #[test]
    fn serde_is_a_validated_string() {
        let email = EmailAddress::parse("ada@example.com").unwrap();
        assert_eq!(
            serde_json::to_string(&email).unwrap(),
            r#""ada@example.com""#
        );
        assert_eq!(
            serde_json::from_str::<EmailAddress>(r#""ada@EXAMPLE.com""#).unwrap(),
            email
        );
        let err = serde_json::from_str::<EmailAddress>(r#""ada""#).unwrap_err();
        assert!(err.to_string().contains("exactly one @"), "{err}");
        assert!(serde_json::from_str::<EmailAddress>("1").is_err());
    }

    #[test]
    fn the_address_is_carried_and_shown_as_normalised() {
        let email = EmailAddress::parse(" Ada@Example.COM ").expect("valid");
        let as_ref: &str = email.as_ref();
        assert_eq!(as_ref, email.as_str());
        assert_eq!(email.to_string(), email.as_str());
        assert_eq!(email.domain(), "example.com");
        assert_eq!(email.local_part(), "Ada");
    }
}

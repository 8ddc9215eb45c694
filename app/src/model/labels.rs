//! One macro for the enums that are stored, shown and listed, so each is one table of (variant,
//! fixed string, label) instead of four hand-written matches that must agree with each other.

/// Implements, from one table, an enum's `ALL` (every value, in table order), its fixed string,
/// the way back from that string, its label for people, and `Display` (the label). The method
/// names come first, so every enum keeps the names its callers use:
///
/// ```ignore
/// labelled_enum! {
///     ConnectionState { as_db, from_db, label }
///     Pending => "pending", "Pending";
///     Validated => "validated", "Validated";
/// }
/// ```
///
/// The fixed string is what the database stores, what serde sends (the enums'
/// `rename_all = "snake_case"` names; a test checks they agree) and what URLs and CSS classes
/// use: never change one. The compiler holds the table to the enum: a variant left out is a
/// non-exhaustive match, a string or variant written twice an unreachable pattern.
macro_rules! labelled_enum {
    (
        $ty:ident { $as_db:ident, $from_db:ident, $label:ident }
        $($variant:ident => $db:literal, $text:literal;)+
    ) => {
        impl $ty {
            /// Every value, in order.
            pub const ALL: [Self; [$(stringify!($variant)),+].len()] = [$(Self::$variant),+];

            /// The fixed string: stored, sent (serde's name), used in URLs and classes.
            pub fn $as_db(self) -> &'static str {
                match self {
                    $(Self::$variant => $db,)+
                }
            }

            /// The value whose fixed string is `value`, if any.
            pub fn $from_db(value: &str) -> Option<Self> {
                match value {
                    $($db => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// In the product's words, as people read it.
            pub fn $label(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.$label())
            }
        }
    };
}

pub(crate) use labelled_enum;

#[cfg(test)]
mod tests {
    use std::{collections::HashSet, fmt::Debug};

    use serde::{de::DeserializeOwned, Serialize};

    use crate::model::{
        Action, ActivityId, ActivityStatus, CheckStatus, ConnectionState, LinkStatus, Onboarding,
        RegistrationStatus, Role, Severity, Suite,
    };

    /// Every value's string parses back to it and is serde's name; strings and labels are
    /// distinct; nothing else parses; `Display` is the label.
    fn table_holds<T>(
        all: &[T],
        as_db: fn(T) -> &'static str,
        from_db: fn(&str) -> Option<T>,
        label: fn(T) -> &'static str,
    ) where
        T: Copy + PartialEq + Debug + std::fmt::Display + Serialize + DeserializeOwned,
    {
        assert!(!all.is_empty());
        for &v in all {
            let db = as_db(v);
            assert_eq!(from_db(db), Some(v), "{db}");
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{db}\""));
            assert_eq!(serde_json::from_str::<T>(&format!("\"{db}\"")).unwrap(), v);
            assert_eq!(v.to_string(), label(v));
        }
        let strings: HashSet<_> = all.iter().map(|v| as_db(*v)).collect();
        assert_eq!(strings.len(), all.len(), "fixed strings must be distinct");
        let labels: HashSet<_> = all.iter().map(|v| label(*v)).collect();
        assert_eq!(labels.len(), all.len(), "labels must be distinct");
        assert_eq!(from_db(""), None);
        assert_eq!(from_db("nonsense"), None);
        // Labels are for people, not storage (unless a label happens to be the string).
        for &v in all {
            if label(v) != as_db(v) {
                assert_ne!(from_db(label(v)), Some(v), "{v:?}");
            }
        }
    }

    #[test]
    fn every_table_round_trips_with_distinct_strings_and_labels() {
        table_holds(&Suite::ALL, Suite::as_str, Suite::parse, Suite::label);
        table_holds(
            &ConnectionState::ALL,
            ConnectionState::as_db,
            ConnectionState::from_db,
            ConnectionState::label,
        );
        table_holds(
            &LinkStatus::ALL,
            LinkStatus::as_db,
            LinkStatus::from_db,
            LinkStatus::label,
        );
        table_holds(
            &Onboarding::ALL,
            Onboarding::as_db,
            Onboarding::from_db,
            Onboarding::label,
        );
        table_holds(&Action::ALL, Action::as_db, Action::from_db, Action::label);
        table_holds(&Role::ALL, Role::as_db, Role::from_db, Role::label);
        table_holds(
            &RegistrationStatus::ALL,
            RegistrationStatus::as_db,
            RegistrationStatus::from_db,
            RegistrationStatus::label,
        );
        table_holds(
            &CheckStatus::ALL,
            CheckStatus::as_db,
            CheckStatus::from_db,
            CheckStatus::label,
        );
        table_holds(
            &Severity::ALL,
            Severity::as_db,
            Severity::from_db,
            Severity::label,
        );
        table_holds(
            &ActivityId::ALL,
            ActivityId::as_str,
            ActivityId::parse,
            ActivityId::title,
        );
        table_holds(
            &ActivityStatus::ALL,
            ActivityStatus::as_str,
            ActivityStatus::parse,
            ActivityStatus::label,
        );
    }

    #[test]
    fn all_lists_every_value_in_declaration_order() {
        assert_eq!(
            Role::ALL,
            [Role::ImpactAdmin, Role::ImpactUser, Role::IdiAdmin]
        );
        assert_eq!(
            CheckStatus::ALL,
            [
                CheckStatus::Passed,
                CheckStatus::Failed,
                CheckStatus::Error,
                CheckStatus::Skipped
            ]
        );
        assert_eq!(
            Severity::ALL,
            [
                Severity::Critical,
                Severity::High,
                Severity::Medium,
                Severity::Low
            ]
        );
        assert_eq!(Action::ALL.len(), 17);
        assert_eq!(ActivityStatus::ALL.len(), 4);
    }
}

//! An initiated registration's status: what is stored, and what the instance registration tab
//! shows (a waiting link past its expiry reads Expired; stored, it stays pending).
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::labels::labelled_enum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    /// The link is waiting for the named contact.
    Pending,
    /// The link created a provider connection.
    Used,
    /// A fresh link was requested; this one no longer opens.
    Superseded,
    /// Shown only: a pending link past its expiry.
    Expired,
}

labelled_enum! {
    RegistrationStatus { as_db, from_db, label }
    Pending => "pending", "Waiting for the named contact";
    Used => "used", "Used: connection created";
    Superseded => "superseded", "Replaced by a newer link";
    Expired => "expired", "Expired";
}

impl RegistrationStatus {
    /// What the list shows for a registration stored as `self`, expiring at `expires_at`.
    pub fn shown(self, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        if self == Self::Pending && expires_at <= now {
            Self::Expired
        } else {
            self
        }
    }

    /// Whether its link can still be opened.
    pub fn is_open(self) -> bool {
        self == Self::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::RegistrationStatus as S;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn a_waiting_link_past_its_expiry_shows_expired_and_nothing_else_changes() {
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap();
        let later = now + Duration::days(1);
        assert_eq!(S::Pending.shown(later, now), S::Pending);
        assert_eq!(S::Pending.shown(now, now), S::Expired);
        assert_eq!(
            S::Pending.shown(now - Duration::seconds(1), now),
            S::Expired
        );
        // A used or replaced link says so, expired or not.
        for s in [S::Used, S::Superseded] {
            assert_eq!(s.shown(now - Duration::days(9), now), s);
            assert_eq!(s.shown(later, now), s);
        }
        assert!(S::Pending.shown(later, now).is_open());
        assert!(!S::Pending.shown(now, now).is_open());
        assert!(!S::Used.is_open() && !S::Superseded.is_open());
    }

    #[test]
    fn people_read_words_and_the_wire_keeps_the_stored_strings() {
        assert_eq!(S::Pending.label(), "Waiting for the named contact");
        assert_eq!(S::Used.to_string(), "Used: connection created");
        assert_eq!(
            serde_json::to_string(&S::Superseded).unwrap(),
            "\"superseded\""
        );
        assert_eq!(S::from_db("expired"), Some(S::Expired));
    }
}

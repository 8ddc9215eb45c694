//! The issue workflow: who is on an issue (Assign to me), who hears about it (Follow), quiet for a
//! while (Mute), and its activity notes. Keyed by connection and issue id (a check's id, or a
//! heartbeat direction's). The commands and their bounds are checked here, without IO.
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::field::FieldError;

/// Longest mute: a week. Longer hides a problem for good.
pub const MAX_MUTE_MINUTES: i64 = 7 * 24 * 60;
/// The mute lengths the page offers, in minutes, with their words.
pub const MUTE_CHOICES: [(i64, &str); 4] = [
    (60, "1 hour"),
    (8 * 60, "8 hours"),
    (24 * 60, "1 day"),
    (MAX_MUTE_MINUTES, "7 days"),
];
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;
/// Longest issue id accepted in a path.
pub const MAX_ISSUE_ID_CHARS: usize = 64;

/// One activity note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IssueNote {
    pub author: String,
    #[serde(with = "crate::model::time")]
    pub at: DateTime<Utc>,
    pub text: String,
}

/// Where an issue's workflow stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IssueWork {
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub followers: Vec<String>,
    #[serde(with = "crate::model::time::option", default)]
    pub muted_until: Option<DateTime<Utc>>,
    /// Muted when it was read (the server's clock decides, not the browser's).
    #[serde(default)]
    pub muted: bool,
    /// Oldest first.
    #[serde(default)]
    pub notes: Vec<IssueNote>,
}

impl IssueWork {
    /// Muted now: alerts and the digest leave it out.
    pub fn is_muted(&self, now: DateTime<Utc>) -> bool {
        self.muted_until.is_some_and(|until| until > now)
    }

    pub fn follows(&self, email: &str) -> bool {
        self.followers.iter().any(|f| f.eq_ignore_ascii_case(email))
    }
}

/// What a person does to an issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum IssueCommand {
    AssignToMe,
    Unassign,
    Follow,
    Unfollow,
    Mute {
        #[serde(deserialize_with = "number_or_text")]
        minutes: i64,
    },
    Unmute,
    Note {
        text: String,
    },
}

/// A whole number given as a number (JSON) or as text (a server function's form encoding, which
/// a tagged enum reads through a buffer that keeps every value as text).
fn number_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(i64),
        Text(String),
    }
    match Either::deserialize(d)? {
        Either::Number(n) => Ok(n),
        Either::Text(t) => t.trim().parse().map_err(serde::de::Error::custom),
    }
}

impl IssueCommand {
    /// Follow and Unfollow concern only the person (anyone who may look may follow); the others
    /// change the issue for everyone.
    pub fn is_personal(&self) -> bool {
        matches!(self, IssueCommand::Follow | IssueCommand::Unfollow)
    }

    /// The command with its input checked: a mute within a week, a note not blank and bounded
    /// (trimmed).
    pub fn checked(self) -> Result<Self, FieldError> {
        match self {
            IssueCommand::Mute { minutes } if !(1..=MAX_MUTE_MINUTES).contains(&minutes) => {
                Err(FieldError::new(
                    "minutes",
                    format!("Mute for 1 minute to 7 days ({MAX_MUTE_MINUTES} minutes); {minutes} is outside that."),
                ))
            }
            IssueCommand::Note { text } => {
                let text = text.trim().to_string();
                if text.is_empty() {
                    return Err(FieldError::new("text", "Write the note first: it is empty."));
                }
                if text.chars().count() > MAX_NOTE_CHARS {
                    return Err(FieldError::new(
                        "text",
                        format!("A note holds at most {MAX_NOTE_CHARS} characters; this one has {}.", text.chars().count()),
                    ));
                }
                Ok(IssueCommand::Note { text })
            }
            other => Ok(other),
        }
    }

    /// When a mute given now ends.
    pub fn mute_until(minutes: i64, now: DateTime<Utc>) -> DateTime<Utc> {
        now + Duration::minutes(minutes.clamp(1, MAX_MUTE_MINUTES))
    }

    /// The audit line's words.
    pub fn describe(&self) -> String {
        match self {
            IssueCommand::AssignToMe => "assigned to themselves".into(),
            IssueCommand::Unassign => "unassigned".into(),
            IssueCommand::Follow => "followed".into(),
            IssueCommand::Unfollow => "stopped following".into(),
            IssueCommand::Mute { minutes } => format!("muted for {minutes} minutes"),
            IssueCommand::Unmute => "unmuted".into(),
            IssueCommand::Note { .. } => "added a note".into(),
        }
    }
}

/// An issue's detail page: what it is, whether it is open now, how to fix it, its workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IssueDetail {
    pub connection: super::ConnectionView,
    pub issue: String,
    pub name: String,
    pub severity: super::Severity,
    pub category: String,
    pub resolution: Vec<String>,
    /// The knowledge article's reference, when the issue is a check's.
    #[serde(default)]
    pub article: Option<String>,
    /// The open issue as the dashboard lists it; None once resolved.
    #[serde(default)]
    pub open: Option<super::dashboard::OpenIssue>,
    pub work: IssueWork,
}

/// A heartbeat direction's issue: its name and how to fix it.
pub fn heartbeat_issue(id: &str) -> Option<(&'static str, [&'static str; 3])> {
    match id {
        super::dashboard::OUTBOUND_DOWN => Some((
            "Provider answers the heartbeat",
            [
                "Check that the provider's instance is up: its status page, or ask your Impact Squad.",
                "Check that this instance can reach the provider's URL (firewall, proxy, DNS).",
                "Run the connection health suite (Run now) to see which check fails.",
            ],
        )),
        super::dashboard::INBOUND_DOWN => Some((
            "Provider's heartbeat call reaches this instance",
            [
                "Check that this instance's base URL (IMPACT_PUBLIC_URL) is reachable from the provider.",
                "Check the firewall or proxy in front of this instance for calls to /inbound/.",
                "Run the connection health suite (Run now) to see which check fails.",
            ],
        )),
        _ => None,
    }
}

/// A knowledge article's id as it appears in a path: the reference's first word (`KB-IC-1001`).
pub fn article_id(article: &str) -> &str {
    article.split_whitespace().next().unwrap_or("")
}

/// The checks a knowledge article covers.
pub fn article_checks(id: &str) -> Vec<&'static super::CheckSpec> {
    super::CHECKS
        .iter()
        .filter(|c| !id.is_empty() && article_id(c.article) == id)
        .collect()
}

/// An issue id as it may appear in a path: a check's id or a heartbeat direction's, nothing else.
pub fn valid_issue_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= MAX_ISSUE_ID_CHARS
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b':')
        && (crate::model::check_spec(raw).is_some()
            || raw == super::dashboard::OUTBOUND_DOWN
            || raw == super::dashboard::INBOUND_DOWN)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(mins: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap() + Duration::minutes(mins)
    }

    #[test]
    fn a_mute_lasts_until_its_end() {
        let work = IssueWork {
            muted_until: Some(at(60)),
            ..IssueWork::default()
        };
        assert!(work.is_muted(at(0)));
        assert!(work.is_muted(at(59)));
        assert!(!work.is_muted(at(60)));
        assert!(!IssueWork::default().is_muted(at(0)));
        assert_eq!(IssueCommand::mute_until(60, at(0)), at(60));
        assert_eq!(
            IssueCommand::mute_until(10_000_000, at(0)),
            at(MAX_MUTE_MINUTES)
        );
    }

    #[test]
    fn commands_are_bounded() {
        assert!(IssueCommand::Mute { minutes: 0 }.checked().is_err());
        assert!(IssueCommand::Mute {
            minutes: MAX_MUTE_MINUTES + 1
        }
        .checked()
        .is_err());
        assert!(IssueCommand::Mute { minutes: 60 }.checked().is_ok());
        let blank = IssueCommand::Note { text: "   ".into() }
            .checked()
            .unwrap_err();
        assert_eq!(blank.field, "text");
        let long = IssueCommand::Note {
            text: "x".repeat(MAX_NOTE_CHARS + 1),
        }
        .checked();
        assert!(long.unwrap_err().message.contains("2001"));
        assert_eq!(
            IssueCommand::Note {
                text: "  fixed the firewall  ".into()
            }
            .checked(),
            Ok(IssueCommand::Note {
                text: "fixed the firewall".into()
            })
        );
        assert!(IssueCommand::Follow.is_personal());
        assert!(!IssueCommand::AssignToMe.is_personal());
    }

    #[test]
    fn commands_read_as_json_by_name() {
        let c: IssueCommand = serde_json::from_str(r#"{"command":"mute","minutes":60}"#).unwrap();
        assert_eq!(c, IssueCommand::Mute { minutes: 60 });
        // As a server function's form encoding delivers it: the number as text.
        let c: IssueCommand =
            serde_json::from_str(r#"{"command":"mute","minutes":"480"}"#).unwrap();
        assert_eq!(c, IssueCommand::Mute { minutes: 480 });
        assert!(
            serde_json::from_str::<IssueCommand>(r#"{"command":"mute","minutes":"soon"}"#).is_err()
        );
        let c: IssueCommand = serde_json::from_str(r#"{"command":"assign_to_me"}"#).unwrap();
        assert_eq!(c, IssueCommand::AssignToMe);
        assert!(serde_json::from_str::<IssueCommand>(r#"{"command":"delete"}"#).is_err());
    }

    #[test]
    fn only_known_issue_ids_are_accepted() {
        assert!(valid_issue_id("credentials"));
        assert!(valid_issue_id("heartbeat:outbound"));
        assert!(!valid_issue_id("heartbeat:sideways"));
        assert!(!valid_issue_id(""));
        assert!(!valid_issue_id("../etc"));
        assert!(!valid_issue_id("Credentials"));
    }

    #[test]
    fn every_check_has_its_own_article_and_the_heartbeat_issues_their_fixes() {
        for c in crate::model::CHECKS {
            let id = article_id(c.article);
            assert!(id.starts_with("KB-"), "{id}");
            assert!(article_checks(id).iter().any(|s| s.id == c.id));
        }
        assert!(article_checks("").is_empty());
        assert!(article_checks("KB-NOPE").is_empty());
        assert!(heartbeat_issue(super::super::dashboard::OUTBOUND_DOWN).is_some());
        assert!(heartbeat_issue("credentials").is_none());
    }

    #[test]
    fn following_ignores_case() {
        let work = IssueWork {
            followers: vec!["Ada@Example.com".into()],
            ..IssueWork::default()
        };
        assert!(work.follows("ada@example.com"));
        assert!(!work.follows("bob@example.com"));
    }
}

//! Guided Setup's registration section: its activities in order, how each one's status follows
//! from what is recorded and from the connection's true state, and when "Mark Complete" is
//! allowed. Pure: the server and the page compute the same answers.
//!
//! Titles are the product's own labels; keep them exact.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::dto::ConnectionView;
use super::labels::labelled_enum;
use super::migration::{MigrationState, MigrationView};
use super::state::{ConnectionState, LinkStatus, Onboarding};

/// The registration section's activities, in the order they must be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActivityId {
    Learn,
    Register,
    Establish,
    VerifyConnection,
    VerifyData,
    MigrateData,
}

// In order: each is locked until the one before it is complete. The strings are stored in the
// database and used in URLs; titles are the product's own labels.
labelled_enum! {
    ActivityId { as_str, parse, title }
    Learn => "learn", "Learn about registering your instance";
    Register => "register", "Register your instance";
    Establish => "establish", "Establish the connection to the provider instance";
    VerifyConnection => "verify_connection", "Verify the connection";
    VerifyData => "verify_data", "Verify Impact data connection";
    MigrateData => "migrate_data", "Start data migration";
}

impl ActivityId {
    /// The short "Learn about …" overview shown under the title.
    pub fn summary(self) -> &'static str {
        match self {
            Self::Learn => "Your Impact Store App receives its data from the provider's Impact Delivery Instance (IDI). Registering connects the two: the provider initiates a registration for your named contact administrator, who completes the Provider connection form and connects to the provider.",
            Self::Register => "Registering tells the provider about this instance and gives its named contact administrator the link that starts the connection. Automated registration is the alternative where the provider offers it; manual registration is described below.",
            Self::Establish => "Complete the Provider connection form, select Save and wait for \"Validated\", then select \"Connect to provider\". When it reads \"Onboarding Complete\" and Outbound and Inbound status read \"Up\", return here and select Mark Complete.",
            Self::VerifyConnection => "Sends a test message to the provider, which echoes it back to this instance's inbound endpoint, and measures the round trip. It passes when both directions are Up.",
            Self::VerifyData => "Pulls a small sample of Impact data from the provider and shows what arrived: each table's record count and its newest record.",
            Self::MigrateData => "Copies the provider's Impact tables into this instance's database, every record, table by table, with live progress. It can be cancelled, carries on by itself after a restart, and ends by counting each table here against the provider's count. It completes when every count matches.",
        }
    }

    pub fn previous(self) -> Option<Self> {
        let i = Self::ALL.iter().position(|a| *a == self)?;
        i.checked_sub(1).map(|p| Self::ALL[p])
    }

    /// Completed by a successful run rather than by a person's word alone.
    pub fn is_verification(self) -> bool {
        matches!(self, Self::VerifyConnection | Self::VerifyData)
    }

    /// Completed by its own work, recorded as it ends: never by "Mark Complete".
    pub fn completes_itself(self) -> bool {
        self == Self::MigrateData
    }

    /// A refusal of this activity is fixed on the Provider connection form: everything from
    /// "Establish the connection…" on depends on the connection.
    pub fn fixed_on_connection_form(self) -> bool {
        !matches!(self, Self::Learn | Self::Register)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActivityStatus {
    Locked,
    NotStarted,
    InProgress,
    Complete,
}

// The strings are for CSS classes and test selectors.
labelled_enum! {
    ActivityStatus { as_str, parse, label }
    Locked => "locked", "Locked";
    NotStarted => "not_started", "Not started";
    InProgress => "in_progress", "In progress";
    Complete => "complete", "Complete";
}

impl ActivityStatus {
    /// Unlocked: the activity before it is complete, so this one shows what it offers.
    pub fn is_open(self) -> bool {
        self != Self::Locked
    }
}

/// A recorded "Mark Complete" (or successful verification run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    pub activity: ActivityId,
    pub completed_by: String,
    #[serde(with = "crate::model::time")]
    pub completed_at: DateTime<Utc>,
}

/// One table of the provider's data sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TableSample {
    pub name: String,
    pub count: i64,
    /// The newest record's time, when the table has any.
    #[serde(with = "crate::model::time::option", default)]
    pub newest: Option<DateTime<Utc>>,
}

/// The latest run of a verification, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VerificationView {
    pub ok: bool,
    /// The measured time: the echo's full round trip, or the data sample's answer time.
    #[serde(default)]
    pub latency_ms: Option<i64>,
    /// What happened, in words a person can act on.
    pub detail: String,
    /// "Verify the connection": what the run observed of each direction.
    #[serde(default)]
    pub outbound: Option<LinkStatus>,
    #[serde(default)]
    pub inbound: Option<LinkStatus>,
    /// "Verify Impact data connection": what arrived.
    #[serde(default)]
    pub tables: Vec<TableSample>,
    pub run_by: String,
    #[serde(with = "crate::model::time")]
    pub at: DateTime<Utc>,
}

impl VerificationView {
    /// The round trip to show: measured by a run that succeeded, and only then.
    pub fn round_trip_ms(&self) -> Option<i64> {
        self.latency_ms.filter(|_| self.ok)
    }
}

/// What "Verify the connection" shows for each direction. `None` is "Not tested": the latest
/// run never got to that direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservedLinks {
    pub outbound: Option<LinkStatus>,
    pub inbound: Option<LinkStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ActivityView {
    pub id: ActivityId,
    pub title: String,
    pub summary: String,
    pub status: ActivityStatus,
    /// Who completed it and when, while it stands complete.
    #[serde(default)]
    pub completed_by: Option<String>,
    #[serde(with = "crate::model::time::option", default)]
    pub completed_at: Option<DateTime<Utc>>,
}

/// The whole registration section, as the Guided Setup page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GuidedSetupView {
    pub activities: Vec<ActivityView>,
    /// The provider connection the section follows, if one exists.
    #[serde(default)]
    pub connection: Option<ConnectionView>,
    #[serde(default)]
    pub connection_check: Option<VerificationView>,
    #[serde(default)]
    pub data_check: Option<VerificationView>,
    /// The followed connection's latest data migration.
    #[serde(default)]
    pub migration: Option<MigrationView>,
}

impl GuidedSetupView {
    /// Computes every activity's status from what is recorded and the connection's state.
    pub fn build(
        completions: &[Completion],
        connection: Option<ConnectionView>,
        connection_check: Option<VerificationView>,
        data_check: Option<VerificationView>,
    ) -> Self {
        let activities = activity_views(
            completions,
            connection.as_ref(),
            connection_check.as_ref(),
            data_check.as_ref(),
            None,
        );
        Self {
            activities,
            connection,
            connection_check,
            data_check,
            migration: None,
        }
    }

    /// The same, with the connection's latest data migration, which decides the last
    /// activity's status.
    pub fn with_migration(
        self,
        completions: &[Completion],
        migration: Option<MigrationView>,
    ) -> Self {
        let activities = activity_views(
            completions,
            self.connection.as_ref(),
            self.connection_check.as_ref(),
            self.data_check.as_ref(),
            migration.as_ref(),
        );
        Self {
            activities,
            migration,
            ..self
        }
    }

    pub fn status(&self, activity: ActivityId) -> ActivityStatus {
        self.activities
            .iter()
            .find(|a| a.id == activity)
            .map(|a| a.status)
            .unwrap_or(ActivityStatus::Locked)
    }

    /// How many activities stand complete.
    pub fn completed_count(&self) -> usize {
        self.activities
            .iter()
            .filter(|a| a.status == ActivityStatus::Complete)
            .count()
    }

    /// Whether the page offers "Mark Complete" on `activity` (to a user who may administer; the
    /// server decides with [`mark_complete_check`]). Offered on an open activity not yet
    /// complete; on a verification only once its latest run succeeded, since verifications
    /// complete by succeeding and the button remains for a success not yet counted. "Establish"
    /// is offered before the connection is onboarded: the refusal then names what is missing.
    pub fn offers_mark_complete(&self, activity: ActivityId) -> bool {
        let status = self.status(activity);
        status.is_open()
            && status != ActivityStatus::Complete
            && !activity.completes_itself()
            && (!activity.is_verification() || self.check(activity).is_some_and(|c| c.ok))
    }

    /// What keeps "Establish the connection…" from being marked complete, named, while it is not
    /// complete; None once it is, or when nothing is missing.
    pub fn establish_missing(&self) -> Option<String> {
        if self.status(ActivityId::Establish) == ActivityStatus::Complete {
            return None;
        }
        mark_complete_refusal(ActivityId::Establish, self.connection.as_ref())
    }

    /// Each direction as "Verify the connection" shows it: the latest run's observation when
    /// there is a run; before any run, what the connection record says (blank without one).
    pub fn observed_links(&self) -> ObservedLinks {
        match (&self.connection_check, &self.connection) {
            (Some(run), _) => ObservedLinks {
                outbound: run.outbound,
                inbound: run.inbound,
            },
            (None, Some(c)) => ObservedLinks {
                outbound: Some(c.outbound),
                inbound: Some(c.inbound),
            },
            (None, None) => ObservedLinks {
                outbound: Some(LinkStatus::Blank),
                inbound: Some(LinkStatus::Blank),
            },
        }
    }

    fn check(&self, activity: ActivityId) -> Option<&VerificationView> {
        match activity {
            ActivityId::VerifyConnection => self.connection_check.as_ref(),
            ActivityId::VerifyData => self.data_check.as_ref(),
            _ => None,
        }
    }
}

/// The most recent completion of `activity`.
fn completion(completions: &[Completion], activity: ActivityId) -> Option<&Completion> {
    completions
        .iter()
        .filter(|c| c.activity == activity)
        .max_by_key(|c| c.completed_at)
}

/// Each activity's status, in order. An activity is locked until the previous one is complete;
/// verifications stand complete only while their latest run succeeded, so a connection that
/// stops working shows again once verification is re-run.
pub fn activity_views(
    completions: &[Completion],
    connection: Option<&ConnectionView>,
    connection_check: Option<&VerificationView>,
    data_check: Option<&VerificationView>,
    migration: Option<&MigrationView>,
) -> Vec<ActivityView> {
    let mut out: Vec<ActivityView> = Vec::with_capacity(ActivityId::ALL.len());
    for id in ActivityId::ALL {
        let previous_done = out
            .last()
            .is_none_or(|prev| prev.status == ActivityStatus::Complete);
        let done = completion(completions, id);
        let status = if !previous_done {
            ActivityStatus::Locked
        } else {
            match id {
                ActivityId::Learn => done_or(done, ActivityStatus::NotStarted),
                ActivityId::Register => done_or(
                    done,
                    if connection.is_some() {
                        ActivityStatus::InProgress
                    } else {
                        ActivityStatus::NotStarted
                    },
                ),
                // Completion is about this connection: without one there is nothing to stand on.
                ActivityId::Establish => match connection {
                    None => ActivityStatus::NotStarted,
                    Some(_) => done_or(done, ActivityStatus::InProgress),
                },
                ActivityId::VerifyConnection | ActivityId::VerifyData => {
                    let check = if id == ActivityId::VerifyConnection {
                        connection_check
                    } else {
                        data_check
                    };
                    match (check, done) {
                        (Some(c), Some(_)) if c.ok => ActivityStatus::Complete,
                        (Some(_), _) => ActivityStatus::InProgress,
                        (None, _) => ActivityStatus::NotStarted,
                    }
                }
                // Complete while the latest migration completed (the end records it).
                ActivityId::MigrateData => match (migration, done) {
                    (Some(m), Some(_)) if m.state == MigrationState::Completed => {
                        ActivityStatus::Complete
                    }
                    (Some(_), _) => ActivityStatus::InProgress,
                    (None, _) => ActivityStatus::NotStarted,
                },
            }
        };
        let (completed_by, completed_at) = match (status, done) {
            (ActivityStatus::Complete, Some(c)) => {
                (Some(c.completed_by.clone()), Some(c.completed_at))
            }
            _ => (None, None),
        };
        out.push(ActivityView {
            id,
            title: id.title().to_string(),
            summary: id.summary().to_string(),
            status,
            completed_by,
            completed_at,
        });
    }
    out
}

fn done_or(done: Option<&Completion>, otherwise: ActivityStatus) -> ActivityStatus {
    if done.is_some() {
        ActivityStatus::Complete
    } else {
        otherwise
    }
}

fn link_label(status: LinkStatus) -> &'static str {
    match status {
        LinkStatus::Blank => "blank",
        other => other.label(),
    }
}

/// What keeps a connection from counting as onboarded (Validated, "Onboarding Complete",
/// Outbound and Inbound "Up"), each named with its current value; empty when nothing does.
pub fn onboarding_gaps(connection: &ConnectionView) -> Vec<String> {
    let mut gaps = Vec::new();
    if connection.state != ConnectionState::Validated {
        gaps.push(format!("State is {}", connection.state.label()));
    }
    if connection.onboarding != Onboarding::Complete {
        gaps.push(match connection.onboarding {
            Onboarding::NotStarted => {
                "onboarding has not started (select \"Connect to provider\")".to_string()
            }
            other => format!("onboarding reads \"{}\"", other.label()),
        });
    }
    if connection.outbound != LinkStatus::Up {
        gaps.push(format!(
            "Outbound status is {}",
            link_label(connection.outbound)
        ));
    }
    if connection.inbound != LinkStatus::Up {
        gaps.push(format!(
            "Inbound status is {}",
            link_label(connection.inbound)
        ));
    }
    gaps
}

/// Why "Mark Complete" on `activity` must be refused because of the connection, or None.
/// Only "Establish the connection…" depends on it: it needs the connection really onboarded.
pub fn mark_complete_refusal(
    activity: ActivityId,
    connection: Option<&ConnectionView>,
) -> Option<String> {
    if activity != ActivityId::Establish {
        return None;
    }
    let Some(c) = connection else {
        return Some(
            "There is no provider connection yet. Open the \"Connect with Impact IDI\" link in the welcome email to create it on the Provider connection form, then connect to the provider."
                .to_string(),
        );
    };
    let gaps = onboarding_gaps(c);
    if gaps.is_empty() {
        return None;
    }
    Some(format!(
        "The connection is not onboarded yet: {}. It needs to be Validated with \"Onboarding Complete\" and Outbound and Inbound status \"Up\". Finish it on the Provider connection form, then select Mark Complete.",
        gaps.join("; ")
    ))
}

fn locked_reason(setup: &GuidedSetupView, activity: ActivityId) -> Option<String> {
    if setup.status(activity) != ActivityStatus::Locked {
        return None;
    }
    let blocking = ActivityId::ALL
        .into_iter()
        .find(|a| setup.status(*a) != ActivityStatus::Complete)
        .unwrap_or(activity);
    Some(format!(
        "\"{}\" is locked until \"{}\" is complete.",
        activity.title(),
        blocking.title()
    ))
}

/// Why "Mark Complete" on `activity` is refused now, or None when it may be recorded (an
/// activity already complete is accepted again and changes nothing).
pub fn mark_complete_check(setup: &GuidedSetupView, activity: ActivityId) -> Option<String> {
    if let Some(reason) = locked_reason(setup, activity) {
        return Some(reason);
    }
    if setup.status(activity) == ActivityStatus::Complete {
        return None;
    }
    if let Some(reason) = mark_complete_refusal(activity, setup.connection.as_ref()) {
        return Some(reason);
    }
    if activity.completes_itself() {
        return Some(format!(
            "\"{}\" completes by itself when a data migration ends with every count matching the provider's: select \"Start data migration\".",
            activity.title()
        ));
    }
    if activity.is_verification() {
        return Some(match setup.check(activity) {
            None => format!(
                "Run \"{}\" first: it completes when it succeeds.",
                activity.title()
            ),
            Some(c) if c.ok => return None,
            Some(c) => format!(
                "The last run of \"{}\" failed: {} Run it again once that is fixed.",
                activity.title(),
                c.detail
            ),
        });
    }
    None
}

/// Why a verification may not run now (its activity is locked), or None.
pub fn run_refusal(setup: &GuidedSetupView, activity: ActivityId) -> Option<String> {
    locked_reason(setup, activity).map(|r| {
        if activity == ActivityId::VerifyConnection {
            format!("{r} Select Mark Complete there once the connection is onboarded.")
        } else if activity == ActivityId::MigrateData {
            format!("{r} Run \"Verify Impact data connection\" until it succeeds.")
        } else {
            format!("{r} Run it until it succeeds.")
        }
    })
}

/// The connection Guided Setup follows: an onboarded one first, then the one to the configured
/// provider URL, then the newest. Off-boarded connections are never followed.
pub fn guided_connection<'a>(
    connections: &'a [ConnectionView],
    provider_url: &str,
) -> Option<&'a ConnectionView> {
    let wanted = provider_url.trim_end_matches('/');
    connections
        .iter()
        .filter(|c| c.state.is_live())
        .max_by_key(|c| {
            (
                c.onboarding == Onboarding::Complete,
                c.url.trim_end_matches('/') == wanted,
                c.id,
            )
        })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn time(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
    }

    fn connection(
        state: ConnectionState,
        onboarding: Onboarding,
        outbound: LinkStatus,
        inbound: LinkStatus,
    ) -> ConnectionView {
        ConnectionView {
            id: 1,
            company: "ServiceNow Impact".into(),
            url: "http://idi.example.com".into(),
            state,
            registered: true,
            onboarding,
            outbound,
            inbound,
            version: 1,
            created_at: time(0),
            updated_at: time(0),
        }
    }

    fn onboarded() -> ConnectionView {
        connection(
            ConnectionState::Validated,
            Onboarding::Complete,
            LinkStatus::Up,
            LinkStatus::Up,
        )
    }

    fn done(activity: ActivityId, at: i64) -> Completion {
        Completion {
            activity,
            completed_by: "ada@example.com".into(),
            completed_at: time(at),
        }
    }

    fn check(ok: bool) -> VerificationView {
        VerificationView {
            ok,
            latency_ms: Some(12),
            detail: if ok {
                "Round trip in 12 ms.".into()
            } else {
                "The provider did not answer.".into()
            },
            outbound: None,
            inbound: None,
            tables: vec![],
            run_by: "ada@example.com".into(),
            at: time(100),
        }
    }

    fn statuses(setup: &GuidedSetupView) -> Vec<ActivityStatus> {
        setup.activities.iter().map(|a| a.status).collect()
    }

    use ActivityStatus::{Complete as C, InProgress as P, Locked as L, NotStarted as N};

    #[test]
    fn ids_round_trip_and_are_in_order() {
        for a in ActivityId::ALL {
            assert_eq!(ActivityId::parse(a.as_str()), Some(a));
            assert_eq!(
                serde_json::to_string(&a).unwrap(),
                format!("\"{}\"", a.as_str())
            );
            assert!(!a.summary().is_empty());
        }
        assert_eq!(ActivityId::parse("nope"), None);
        assert_eq!(ActivityId::Learn.previous(), None);
        assert_eq!(
            ActivityId::VerifyConnection.previous(),
            Some(ActivityId::Establish)
        );
        assert_eq!(
            ActivityId::VerifyConnection.title(),
            "Verify the connection"
        );
        assert_eq!(
            ActivityId::VerifyData.title(),
            "Verify Impact data connection"
        );
        assert_eq!(ActivityStatus::NotStarted.label(), "Not started");
    }

    #[test]
    fn a_fresh_setup_has_only_the_first_activity_available() {
        let setup = GuidedSetupView::build(&[], None, None, None);
        assert_eq!(statuses(&setup), [N, L, L, L, L, L]);
        assert!(setup.activities.iter().all(|a| a.completed_by.is_none()));
    }

    #[test]
    fn each_completion_unlocks_the_next_and_establish_follows_the_connection() {
        let learnt = [done(ActivityId::Learn, 1)];
        let setup = GuidedSetupView::build(&learnt, None, None, None);
        assert_eq!(statuses(&setup), [C, N, L, L, L, L]);
        assert_eq!(
            setup.activities[0].completed_by.as_deref(),
            Some("ada@example.com")
        );
        assert_eq!(setup.activities[0].completed_at, Some(time(1)));

        let pending = connection(
            ConnectionState::Pending,
            Onboarding::NotStarted,
            LinkStatus::Blank,
            LinkStatus::Blank,
        );
        let setup = GuidedSetupView::build(&learnt, Some(pending.clone()), None, None);
        assert_eq!(statuses(&setup), [C, P, L, L, L, L]);

        let registered = [done(ActivityId::Learn, 1), done(ActivityId::Register, 2)];
        let setup = GuidedSetupView::build(&registered, None, None, None);
        assert_eq!(statuses(&setup), [C, C, N, L, L, L]);
        // A connection that is not onboarded yet: establishing is in progress.
        let setup = GuidedSetupView::build(&registered, Some(pending), None, None);
        assert_eq!(statuses(&setup), [C, C, P, L, L, L]);
        // Onboarded but not yet marked: still in progress, Mark Complete is what is left.
        let setup = GuidedSetupView::build(&registered, Some(onboarded()), None, None);
        assert_eq!(statuses(&setup), [C, C, P, L, L, L]);

        let established = [
            registered[0].clone(),
            registered[1].clone(),
            done(ActivityId::Establish, 3),
        ];
        let setup = GuidedSetupView::build(&established, Some(onboarded()), None, None);
        assert_eq!(statuses(&setup), [C, C, C, N, L, L]);
    }

    #[test]
    fn verifications_complete_while_their_latest_run_succeeds() {
        let mut log = vec![
            done(ActivityId::Learn, 1),
            done(ActivityId::Register, 2),
            done(ActivityId::Establish, 3),
        ];
        let setup = GuidedSetupView::build(&log, Some(onboarded()), Some(check(false)), None);
        assert_eq!(statuses(&setup), [C, C, C, P, L, L]);

        log.push(done(ActivityId::VerifyConnection, 4));
        let setup = GuidedSetupView::build(&log, Some(onboarded()), Some(check(true)), None);
        assert_eq!(statuses(&setup), [C, C, C, C, N, L]);
        assert_eq!(setup.activities[3].completed_at, Some(time(4)));

        log.push(done(ActivityId::VerifyData, 5));
        let setup = GuidedSetupView::build(
            &log,
            Some(onboarded()),
            Some(check(true)),
            Some(check(true)),
        );
        assert_eq!(statuses(&setup), [C, C, C, C, C, N]);

        // The connection stopped working and verification was re-run: it says so, and what
        // depends on it is locked again until it passes.
        let setup = GuidedSetupView::build(
            &log,
            Some(onboarded()),
            Some(check(false)),
            Some(check(true)),
        );
        assert_eq!(statuses(&setup), [C, C, C, P, L, L]);
        assert_eq!(setup.activities[3].completed_by, None);
    }

    #[test]
    fn mark_complete_on_establish_names_what_is_missing() {
        assert!(mark_complete_refusal(ActivityId::Learn, None).is_none());
        let none = mark_complete_refusal(ActivityId::Establish, None).unwrap();
        assert!(none.contains("no provider connection"), "{none}");

        let validated = connection(
            ConnectionState::Validated,
            Onboarding::NotStarted,
            LinkStatus::NotOnboarded,
            LinkStatus::NotOnboarded,
        );
        let why = mark_complete_refusal(ActivityId::Establish, Some(&validated)).unwrap();
        assert!(why.contains("Outbound status is Not onboarded"), "{why}");
        assert!(why.contains("Inbound status is Not onboarded"), "{why}");
        assert!(why.contains("Connect to provider"), "{why}");
        assert!(!why.contains("State is"), "{why}");

        let half = connection(
            ConnectionState::Validated,
            Onboarding::Syncing,
            LinkStatus::Up,
            LinkStatus::NotOnboarded,
        );
        let why = mark_complete_refusal(ActivityId::Establish, Some(&half)).unwrap();
        assert!(
            why.contains("Syncing settings to complete onboarding"),
            "{why}"
        );
        assert!(!why.contains("Outbound status is"), "{why}");
        assert!(why.contains("Inbound status is Not onboarded"), "{why}");

        let failed = connection(
            ConnectionState::ValidationFailed,
            Onboarding::NotStarted,
            LinkStatus::Blank,
            LinkStatus::Blank,
        );
        let why = mark_complete_refusal(ActivityId::Establish, Some(&failed)).unwrap();
        assert!(why.contains("State is Validation failed"), "{why}");
        assert!(why.contains("Outbound status is blank"), "{why}");

        let down = connection(
            ConnectionState::Validated,
            Onboarding::Complete,
            LinkStatus::Up,
            LinkStatus::Down,
        );
        let why = mark_complete_refusal(ActivityId::Establish, Some(&down)).unwrap();
        assert!(why.contains("Inbound status is Down"), "{why}");

        assert_eq!(
            mark_complete_refusal(ActivityId::Establish, Some(&onboarded())),
            None
        );
    }

    #[test]
    fn mark_complete_check_follows_locks_connection_and_runs() {
        let fresh = GuidedSetupView::build(&[], None, None, None);
        assert_eq!(mark_complete_check(&fresh, ActivityId::Learn), None);
        let locked = mark_complete_check(&fresh, ActivityId::Establish).unwrap();
        assert!(
            locked.contains("until \"Learn about registering your instance\" is complete"),
            "{locked}"
        );

        let log = [done(ActivityId::Learn, 1), done(ActivityId::Register, 2)];
        let not_up = connection(
            ConnectionState::Validated,
            Onboarding::NotStarted,
            LinkStatus::NotOnboarded,
            LinkStatus::NotOnboarded,
        );
        let setup = GuidedSetupView::build(&log, Some(not_up), None, None);
        let why = mark_complete_check(&setup, ActivityId::Establish).unwrap();
        assert!(why.contains("Outbound status is Not onboarded"), "{why}");
        let setup = GuidedSetupView::build(&log, Some(onboarded()), None, None);
        assert_eq!(mark_complete_check(&setup, ActivityId::Establish), None);
        let why = run_refusal(&setup, ActivityId::VerifyConnection).unwrap();
        assert!(why.contains("Mark Complete"), "{why}");

        let log = [
            log[0].clone(),
            log[1].clone(),
            done(ActivityId::Establish, 3),
        ];
        let setup = GuidedSetupView::build(&log, Some(onboarded()), None, None);
        assert_eq!(run_refusal(&setup, ActivityId::VerifyConnection), None);
        assert!(run_refusal(&setup, ActivityId::VerifyData).is_some());
        let why = mark_complete_check(&setup, ActivityId::VerifyConnection).unwrap();
        assert!(why.contains("Run \"Verify the connection\" first"), "{why}");
        let setup = GuidedSetupView::build(&log, Some(onboarded()), Some(check(false)), None);
        let why = mark_complete_check(&setup, ActivityId::VerifyConnection).unwrap();
        assert!(why.contains("The provider did not answer."), "{why}");
        // A success not yet recorded as a completion may be marked.
        let setup = GuidedSetupView::build(&log, Some(onboarded()), Some(check(true)), None);
        assert_eq!(
            mark_complete_check(&setup, ActivityId::VerifyConnection),
            None
        );
        // Already complete: accepted again, whatever the connection does now.
        let setup = GuidedSetupView::build(&log, None, None, None);
        assert_eq!(setup.status(ActivityId::Establish), N);
        assert!(mark_complete_check(&setup, ActivityId::Learn).is_none());
    }

    #[test]
    fn the_followed_connection_prefers_onboarded_then_the_configured_provider() {
        let mut a = connection(
            ConnectionState::Pending,
            Onboarding::NotStarted,
            LinkStatus::Blank,
            LinkStatus::Blank,
        );
        a.id = 1;
        a.url = "http://sim/i/one".into();
        let mut b = a.clone();
        b.id = 2;
        b.url = "http://sim/i/two".into();
        let list = vec![a.clone(), b.clone()];
        assert_eq!(
            guided_connection(&list, "http://sim/i/one/").map(|c| c.id),
            Some(1)
        );
        assert_eq!(
            guided_connection(&list, "http://elsewhere").map(|c| c.id),
            Some(2)
        );
        let mut a_on = onboarded();
        a_on.id = 1;
        let list = vec![a_on, b];
        assert_eq!(
            guided_connection(&list, "http://sim/i/two").map(|c| c.id),
            Some(1)
        );
        assert_eq!(guided_connection(&[], "x"), None);
        // An off-boarded connection is never followed, even onboarded-looking or newest.
        let mut gone = onboarded();
        gone.id = 9;
        gone.state = ConnectionState::OffBoarded;
        assert_eq!(guided_connection(&[gone.clone()], "x"), None);
        let mut b = a.clone();
        b.id = 2;
        assert_eq!(guided_connection(&[b, gone], "x").map(|c| c.id), Some(2));
    }

    #[test]
    fn the_view_round_trips() {
        let setup = GuidedSetupView::build(
            &[done(ActivityId::Learn, 1)],
            Some(onboarded()),
            Some(VerificationView {
                outbound: Some(LinkStatus::Up),
                inbound: Some(LinkStatus::Down),
                tables: vec![TableSample {
                    name: "impact_account".into(),
                    count: 42,
                    newest: Some(time(5)),
                }],
                ..check(false)
            }),
            None,
        );
        let json = serde_json::to_string(&setup).unwrap();
        assert!(json.contains(r#""status":"in_progress""#), "{json}");
        assert!(json.contains(r#""id":"verify_connection""#), "{json}");
        assert_eq!(
            serde_json::from_str::<GuidedSetupView>(&json).unwrap(),
            setup
        );
    }

    #[test]
    fn activities_and_statuses_read_as_the_page_shows_them() {
        assert_eq!(
            ActivityId::VerifyConnection.to_string(),
            "Verify the connection"
        );
        assert!(ActivityId::Establish.summary().contains("Mark Complete"));
        assert!(ActivityId::VerifyData.summary().contains("record count"));
        assert_eq!(ActivityStatus::NotStarted.to_string(), "Not started");
        assert_eq!(
            [
                ActivityStatus::Locked,
                ActivityStatus::NotStarted,
                ActivityStatus::InProgress,
                ActivityStatus::Complete
            ]
            .map(ActivityStatus::as_str),
            ["locked", "not_started", "in_progress", "complete"]
        );
    }

    #[test]
    fn mark_complete_is_offered_on_open_activities_not_yet_complete() {
        let offered =
            |setup: &GuidedSetupView| ActivityId::ALL.map(|a| setup.offers_mark_complete(a));
        // A fresh setup: only the first activity; everything after it is locked.
        let fresh = GuidedSetupView::build(&[], None, None, None);
        assert_eq!(offered(&fresh), [true, false, false, false, false, false]);
        // No activities at all (nothing read yet): nothing is offered.
        let empty = GuidedSetupView {
            activities: vec![],
            connection: None,
            connection_check: None,
            data_check: None,
            migration: None,
        };
        assert_eq!(offered(&empty), [false; 6]);

        // Establish is offered as soon as it is open, onboarded connection or not (the server's
        // refusal then names what is missing).
        let log = [done(ActivityId::Learn, 1), done(ActivityId::Register, 2)];
        let pending = connection(
            ConnectionState::Pending,
            Onboarding::NotStarted,
            LinkStatus::Blank,
            LinkStatus::Blank,
        );
        let setup = GuidedSetupView::build(&log, Some(pending), None, None);
        assert_eq!(offered(&setup), [false, false, true, false, false, false]);
        let setup = GuidedSetupView::build(&log, None, None, None);
        assert_eq!(offered(&setup), [false, false, true, false, false, false]);

        // A verification: not before a run, not after a failed one, yes for a success not yet
        // counted, no once counted.
        let mut log = log.to_vec();
        log.push(done(ActivityId::Establish, 3));
        let setup = GuidedSetupView::build(&log, Some(onboarded()), None, None);
        assert_eq!(offered(&setup), [false, false, false, false, false, false]);
        let setup = GuidedSetupView::build(&log, Some(onboarded()), Some(check(false)), None);
        assert_eq!(offered(&setup), [false; 6]);
        let setup = GuidedSetupView::build(&log, Some(onboarded()), Some(check(true)), None);
        assert_eq!(offered(&setup), [false, false, false, true, false, false]);
        log.push(done(ActivityId::VerifyConnection, 4));
        let setup = GuidedSetupView::build(&log, Some(onboarded()), Some(check(true)), None);
        assert_eq!(offered(&setup), [false; 6]);
        // The data check's own run decides, not the connection check's.
        let setup = GuidedSetupView::build(
            &log,
            Some(onboarded()),
            Some(check(true)),
            Some(check(true)),
        );
        assert_eq!(offered(&setup), [false, false, false, false, true, false]);
        assert_eq!(setup.completed_count(), 4);
        assert_eq!(fresh.completed_count(), 0);
        // Wherever it is offered, the server accepts it or names what is missing.
        for a in ActivityId::ALL
            .into_iter()
            .filter(|a| setup.offers_mark_complete(*a))
        {
            assert_eq!(mark_complete_check(&setup, a), None);
        }
    }

    #[test]
    fn establish_names_what_is_missing_until_it_is_complete() {
        let log = [done(ActivityId::Learn, 1), done(ActivityId::Register, 2)];
        let none = GuidedSetupView::build(&log, None, None, None);
        assert!(none
            .establish_missing()
            .is_some_and(|m| m.contains("no provider connection")));
        let validated = connection(
            ConnectionState::Validated,
            Onboarding::NotStarted,
            LinkStatus::NotOnboarded,
            LinkStatus::NotOnboarded,
        );
        let setup = GuidedSetupView::build(&log, Some(validated.clone()), None, None);
        assert!(setup
            .establish_missing()
            .is_some_and(|m| m.contains("Outbound status is Not onboarded")));
        let setup = GuidedSetupView::build(&log, Some(onboarded()), None, None);
        assert_eq!(setup.establish_missing(), None);
        // Once complete, nothing is missing whatever the connection does now.
        let log = [
            log[0].clone(),
            log[1].clone(),
            done(ActivityId::Establish, 3),
        ];
        let setup = GuidedSetupView::build(&log, Some(onboarded()), None, None);
        assert_eq!(setup.status(ActivityId::Establish), C);
        assert_eq!(setup.establish_missing(), None);
        // Locked (nothing before it done): still names what is missing, as the page shows it.
        let fresh = GuidedSetupView::build(&[], Some(validated), None, None);
        assert!(fresh.establish_missing().is_some());
    }

    #[test]
    fn the_connection_check_shows_the_run_then_the_record() {
        let both = |outbound, inbound| ObservedLinks { outbound, inbound };
        // Nothing at all: blank.
        let setup = GuidedSetupView::build(&[], None, None, None);
        assert_eq!(
            setup.observed_links(),
            both(Some(LinkStatus::Blank), Some(LinkStatus::Blank))
        );
        // Before any run: the record.
        let half = connection(
            ConnectionState::Validated,
            Onboarding::Syncing,
            LinkStatus::Up,
            LinkStatus::NotOnboarded,
        );
        let setup = GuidedSetupView::build(&[], Some(half.clone()), None, None);
        assert_eq!(
            setup.observed_links(),
            both(Some(LinkStatus::Up), Some(LinkStatus::NotOnboarded))
        );
        // After a run: the run's observation, even where the record says more; a direction it
        // never got to is not tested.
        let run = VerificationView {
            outbound: Some(LinkStatus::Down),
            inbound: None,
            ..check(false)
        };
        let setup = GuidedSetupView::build(&[], Some(half), Some(run), None);
        assert_eq!(setup.observed_links(), both(Some(LinkStatus::Down), None));
        let setup = GuidedSetupView::build(&[], None, Some(check(true)), None);
        assert_eq!(setup.observed_links(), both(None, None));
    }

    fn migration(state: crate::model::MigrationState) -> MigrationView {
        MigrationView {
            id: 1,
            connection_id: 1,
            state,
            tables: vec![],
            started_by: "ada@example.com".into(),
            started_at: time(10),
            finished_at: None,
            detail: String::new(),
        }
    }

    #[test]
    fn data_migration_unlocks_after_the_data_check_and_completes_by_itself() {
        use crate::model::MigrationState as M;
        let mut log = vec![
            done(ActivityId::Learn, 1),
            done(ActivityId::Register, 2),
            done(ActivityId::Establish, 3),
            done(ActivityId::VerifyConnection, 4),
        ];
        let before = GuidedSetupView::build(&log, Some(onboarded()), Some(check(true)), None)
            .with_migration(&log, None);
        assert_eq!(before.status(ActivityId::MigrateData), L);
        assert!(run_refusal(&before, ActivityId::MigrateData)
            .unwrap()
            .contains("Verify Impact data connection"));
        log.push(done(ActivityId::VerifyData, 5));
        let setup = |m: Option<MigrationView>, log: &[Completion]| {
            GuidedSetupView::build(log, Some(onboarded()), Some(check(true)), Some(check(true)))
                .with_migration(log, m)
        };
        assert_eq!(setup(None, &log).status(ActivityId::MigrateData), N);
        for state in [M::Running, M::Cancelled, M::Failed] {
            assert_eq!(
                setup(Some(migration(state)), &log).status(ActivityId::MigrateData),
                P
            );
        }
        // Completed but its completion not (yet) recorded: still in progress.
        assert_eq!(
            setup(Some(migration(M::Completed)), &log).status(ActivityId::MigrateData),
            P
        );
        log.push(done(ActivityId::MigrateData, 6));
        let complete = setup(Some(migration(M::Completed)), &log);
        assert_eq!(complete.status(ActivityId::MigrateData), C);
        assert_eq!(complete.completed_count(), 6);
        // A later migration that is running or failed takes it back to in progress.
        assert_eq!(
            setup(Some(migration(M::Running)), &log).status(ActivityId::MigrateData),
            P
        );
        // Never offered "Mark Complete", and refused it with the way to complete it.
        let open = setup(Some(migration(M::Failed)), &log);
        assert!(!open.offers_mark_complete(ActivityId::MigrateData));
        assert!(mark_complete_check(&open, ActivityId::MigrateData)
            .unwrap()
            .contains("Start data migration"));
        assert_eq!(
            mark_complete_check(&complete, ActivityId::MigrateData),
            None
        );
    }

    #[test]
    fn the_round_trip_shows_only_for_a_run_that_succeeded() {
        assert_eq!(check(true).round_trip_ms(), Some(12));
        assert_eq!(check(false).round_trip_ms(), None);
        let unmeasured = VerificationView {
            latency_ms: None,
            ..check(true)
        };
        assert_eq!(unmeasured.round_trip_ms(), None);
    }

    #[test]
    fn refusals_from_establish_on_are_fixed_on_the_connection_form() {
        assert_eq!(
            ActivityId::ALL.map(ActivityId::fixed_on_connection_form),
            [false, false, true, true, true, true]
        );
        assert!(!ActivityStatus::Locked.is_open());
        assert!([
            ActivityStatus::NotStarted,
            ActivityStatus::InProgress,
            ActivityStatus::Complete
        ]
        .iter()
        .all(|s| s.is_open()));
    }

    #[test]
    fn verify_data_is_marked_complete_by_its_own_run() {
        let log = [
            done(ActivityId::Learn, 1),
            done(ActivityId::Register, 2),
            done(ActivityId::Establish, 3),
            done(ActivityId::VerifyConnection, 4),
        ];
        let setup = GuidedSetupView::build(&log, Some(onboarded()), Some(check(true)), None);
        let why = mark_complete_check(&setup, ActivityId::VerifyData).unwrap();
        assert!(
            why.contains("Run \"Verify Impact data connection\" first"),
            "{why}"
        );
        let setup = GuidedSetupView::build(
            &log,
            Some(onboarded()),
            Some(check(true)),
            Some(check(false)),
        );
        let why = mark_complete_check(&setup, ActivityId::VerifyData).unwrap();
        assert!(why.contains("The provider did not answer."), "{why}");
        // The connection check's success is not the data check's.
        let setup = GuidedSetupView::build(
            &log,
            Some(onboarded()),
            Some(check(true)),
            Some(check(true)),
        );
        assert_eq!(mark_complete_check(&setup, ActivityId::VerifyData), None);
    }
}

//! The home page's overview: each connection's state, statuses and open issues, and the one next
//! step an administrator should take. Pure, so the rule is unit-tested and the page only shows it.
use serde::{Deserialize, Serialize};

use super::{ConnectionState, ConnectionView, LinkStatus, Onboarding};

/// A connection as the overview lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConnectionSummary {
    pub connection: ConnectionView,
    /// Checks whose latest result is an issue (the health dashboard's open issues).
    pub open_issues: usize,
}

/// What the home page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HomeView {
    pub connections: Vec<ConnectionSummary>,
    /// Guided Setup's "Establish the connection…" stands complete (Mark Complete was done).
    pub establish_complete: bool,
    /// Guided Setup's "Verify the connection" stands complete.
    pub connection_verified: bool,
}

/// The one thing to do next, with where to do it and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextStep {
    /// The link's words (the product's own where it has them).
    pub label: &'static str,
    pub href: String,
    pub why: String,
}

impl ConnectionSummary {
    /// Something is wrong that the health dashboard explains: a failed validation, an open
    /// issue, onboarding that failed, or a link that is Down or Slow once onboarded. An
    /// off-boarded connection is history: nothing about it needs anyone.
    pub fn needs_attention(&self) -> bool {
        let c = &self.connection;
        if !c.state.is_live() {
            return false;
        }
        c.state == ConnectionState::ValidationFailed
            || self.open_issues > 0
            || c.onboarding == Onboarding::Failed
            || (c.onboarding == Onboarding::Complete
                && (c.outbound != LinkStatus::Up || c.inbound != LinkStatus::Up))
    }

    /// How urgent its trouble is, most urgent first: a live link Down (users are affected now),
    /// then failed onboarding, then failed validation or open issues, then a Slow link.
    fn urgency(&self) -> u8 {
        let c = &self.connection;
        let live = c.onboarding == Onboarding::Complete;
        if live && (c.outbound == LinkStatus::Down || c.inbound == LinkStatus::Down) {
            0
        } else if c.onboarding == Onboarding::Failed {
            1
        } else if c.state == ConnectionState::ValidationFailed || self.open_issues > 0 {
            2
        } else {
            3
        }
    }

    /// What is wrong, in a few words, for the next step's reason.
    fn trouble(&self) -> String {
        let c = &self.connection;
        let mut parts = Vec::new();
        if c.state == ConnectionState::ValidationFailed {
            parts.push(format!("its state is {}", c.state.label()));
        }
        if c.onboarding == Onboarding::Failed {
            parts.push("onboarding failed".to_string());
        }
        if c.onboarding == Onboarding::Complete {
            for (direction, status) in [("Outbound", c.outbound), ("Inbound", c.inbound)] {
                if status != LinkStatus::Up {
                    parts.push(format!("{direction} is {}", status.label()));
                }
            }
        }
        if self.open_issues > 0 {
            parts.push(match self.open_issues {
                1 => "1 open issue".to_string(),
                n => format!("{n} open issues"),
            });
        }
        parts.join(", ")
    }
}

/// The next step, from the first rule that applies: connect when there is no connection; fix
/// what is wrong (the health dashboard); carry on with a connection under way (the Provider
/// connection form); then Guided Setup's Mark Complete and the verification. Off-boarded
/// connections are left out: with only those, the step is to connect again.
pub fn next_step(home: &HomeView) -> NextStep {
    let form = |c: &ConnectionView| format!("/connections/{}", c.id);
    let live: Vec<&ConnectionSummary> = home
        .connections
        .iter()
        .filter(|s| s.connection.state.is_live())
        .collect();
    let Some(first) = live.first() else {
        return NextStep {
            label: "Connect with Impact IDI",
            href: "/registrations".into(),
            why: format!("No connection yet. Open the registration link from your welcome email, or start one from Instance registration. {}", super::NO_WELCOME_EMAIL),
        };
    };
    // A cloned instance: the provider refuses it until someone re-activates it, on the form.
    if let Some(c) = live
        .iter()
        .map(|s| &s.connection)
        .find(|c| c.state == ConnectionState::InstanceChanged)
    {
        return NextStep {
            label: "Validate and Activate",
            href: form(c),
            why: format!("{}: the provider reports that this instance changed (a clone of the instance) and refuses the link until you select Validate and Activate.", c.company),
        };
    }
    // The most urgent trouble first; among equals, the first listed.
    let troubled = live
        .iter()
        .filter(|s| s.needs_attention())
        .min_by_key(|s| s.urgency());
    if let Some(s) = troubled {
        return NextStep {
            label: "Open the health dashboard",
            href: format!("/connections/{}/health", s.connection.id),
            why: format!("{}: {}.", s.connection.company, s.trouble()),
        };
    }
    let under_way = |c: &ConnectionView| c.onboarding != Onboarding::Complete;
    if let Some(c) = live.iter().map(|s| &s.connection).find(|c| under_way(c)) {
        let (label, why) = match (c.state, c.onboarding) {
            (ConnectionState::Validated, Onboarding::NotStarted) => (
                "Connect to provider",
                format!("{} is Validated: connect it to the provider.", c.company),
            ),
            (ConnectionState::Validated, _) => (
                "Follow onboarding",
                format!("{}: {}.", c.company, c.onboarding.label()),
            ),
            (ConnectionState::Pending, _) => (
                "Open the Provider connection",
                format!("{} is Pending: select Save to validate it.", c.company),
            ),
            _ => (
                "Open the Provider connection",
                format!(
                    "{} is {}: the checks are running.",
                    c.company,
                    c.state.label()
                ),
            ),
        };
        return NextStep {
            label,
            href: form(c),
            why,
        };
    }
    if !home.establish_complete {
        return NextStep {
            label: "Mark Complete in Guided Setup",
            href: "/guided-setup".into(),
            why: "Onboarding is complete and both directions are Up: mark \"Establish the connection to the provider instance\" complete.".into(),
        };
    }
    if !home.connection_verified {
        return NextStep {
            label: "Verify the connection",
            href: "/guided-setup".into(),
            why: "Send a test message through the provider and back, in Guided Setup.".into(),
        };
    }
    NextStep {
        label: "Open the health dashboard",
        href: format!("/connections/{}/health", first.connection.id),
        why: "All set: every connection is Up and checked on a schedule.".into(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn summary(
        id: i64,
        state: ConnectionState,
        onboarding: Onboarding,
        links: (LinkStatus, LinkStatus),
        open_issues: usize,
    ) -> ConnectionSummary {
        let at = chrono::Utc.timestamp_opt(1_750_000_000, 0).unwrap();
        ConnectionSummary {
            connection: ConnectionView {
                id,
                company: format!("Company {id}"),
                url: "https://idi.example.com".into(),
                state,
                registered: state != ConnectionState::Pending,
                onboarding,
                outbound: links.0,
                inbound: links.1,
                version: 1,
                created_at: at,
                updated_at: at,
            },
            open_issues,
        }
    }

    fn home(connections: Vec<ConnectionSummary>, establish: bool, verified: bool) -> HomeView {
        HomeView {
            connections,
            establish_complete: establish,
            connection_verified: verified,
        }
    }

    use ConnectionState::*;
    use LinkStatus::{Blank, Down, NotOnboarded, Slow, Up};

    const UP: (LinkStatus, LinkStatus) = (Up, Up);

    #[test]
    fn without_a_connection_the_step_is_to_connect() {
        let step = next_step(&home(vec![], false, false));
        assert_eq!(step.label, "Connect with Impact IDI");
        assert_eq!(step.href, "/registrations");
        assert!(step.why.contains("Ask your Impact Squad"), "{}", step.why);
    }

    #[test]
    fn a_cloned_instance_leads_to_validate_and_activate_first() {
        let down = summary(1, Validated, Onboarding::Complete, (Down, Down), 0);
        let cloned = summary(2, InstanceChanged, Onboarding::Complete, (Down, Down), 0);
        assert!(cloned.needs_attention());
        let step = next_step(&home(vec![down, cloned], true, true));
        assert_eq!(step.label, "Validate and Activate");
        assert_eq!(step.href, "/connections/2");
        assert!(step.why.contains("a clone of the instance"), "{}", step.why);
    }

    #[test]
    fn off_boarded_connections_are_history_not_next_steps() {
        let gone = || summary(1, OffBoarded, Onboarding::NotStarted, (Blank, Blank), 2);
        assert!(!gone().needs_attention());
        let step = next_step(&home(vec![gone()], true, true));
        assert_eq!(step.label, "Connect with Impact IDI");
        // With a live connection beside it, the live one decides.
        let live = summary(2, Validated, Onboarding::Complete, UP, 0);
        let step = next_step(&home(vec![gone(), live], true, true));
        assert_eq!(step.href, "/connections/2/health");
        assert!(step.why.contains("All set"), "{}", step.why);
    }

    #[test]
    fn something_wrong_leads_to_the_health_dashboard_naming_it() {
        let failed = summary(
            3,
            ValidationFailed,
            Onboarding::NotStarted,
            (Blank, Blank),
            2,
        );
        let step = next_step(&home(vec![failed], false, false));
        assert_eq!(
            (step.label, step.href.as_str()),
            ("Open the health dashboard", "/connections/3/health")
        );
        assert_eq!(
            step.why,
            "Company 3: its state is Validation failed, 2 open issues."
        );
        let down = summary(4, Validated, Onboarding::Complete, (Down, Up), 0);
        assert_eq!(
            next_step(&home(vec![down], true, true)).why,
            "Company 4: Outbound is Down."
        );
        let slow = summary(5, Validated, Onboarding::Complete, (Slow, Up), 0);
        assert!(slow.needs_attention());
        let onboarding_failed = summary(
            6,
            Validated,
            Onboarding::Failed,
            (NotOnboarded, NotOnboarded),
            0,
        );
        assert_eq!(
            next_step(&home(vec![onboarding_failed], false, false)).why,
            "Company 6: onboarding failed."
        );
        // Trouble anywhere comes before carrying on with another connection.
        let fine = summary(
            7,
            Validated,
            Onboarding::NotStarted,
            (NotOnboarded, NotOnboarded),
            0,
        );
        let down = summary(8, Validated, Onboarding::Complete, (Up, Down), 0);
        assert_eq!(
            next_step(&home(vec![fine, down], false, false)).href,
            "/connections/8/health"
        );
    }

    #[test]
    fn a_connection_under_way_leads_to_its_form() {
        let validated = summary(
            2,
            Validated,
            Onboarding::NotStarted,
            (NotOnboarded, NotOnboarded),
            0,
        );
        let step = next_step(&home(vec![validated], false, false));
        assert_eq!(
            (step.label, step.href.as_str()),
            ("Connect to provider", "/connections/2")
        );
        let syncing = summary(2, Validated, Onboarding::Syncing, (Up, NotOnboarded), 0);
        assert_eq!(
            next_step(&home(vec![syncing], false, false)).why,
            "Company 2: Syncing settings to complete onboarding."
        );
        let awaiting = summary(
            2,
            AwaitingValidation,
            Onboarding::NotStarted,
            (Blank, Blank),
            0,
        );
        assert_eq!(
            next_step(&home(vec![awaiting], false, false)).label,
            "Open the Provider connection"
        );
    }

    #[test]
    fn once_onboarded_guided_setup_comes_next_then_all_is_set() {
        let onboarded = || summary(1, Validated, Onboarding::Complete, UP, 0);
        let step = next_step(&home(vec![onboarded()], false, false));
        assert_eq!(
            (step.label, step.href.as_str()),
            ("Mark Complete in Guided Setup", "/guided-setup")
        );
        assert_eq!(
            next_step(&home(vec![onboarded()], true, false)).label,
            "Verify the connection"
        );
        let done = next_step(&home(vec![onboarded()], true, true));
        assert_eq!(
            (done.label, done.href.as_str()),
            ("Open the health dashboard", "/connections/1/health")
        );
        assert!(done.why.starts_with("All set"), "{}", done.why);
    }
}

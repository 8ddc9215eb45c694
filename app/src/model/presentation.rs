//! How a page names itself and how a status reads at a glance: view rules, kept here so every
//! page asks the same question and the answers are unit-tested.

use crate::model::{ActivityStatus, CheckStatus, ConnectionState, LinkStatus};

/// The product's name, last in every page title.
pub const PRODUCT: &str = "Impact Connect";

/// Where an administrator waits for the welcome email (Connections, Guided Setup, a link that
/// cannot be used, the home page): the seed's advice when it does not come.
pub const NO_WELCOME_EMAIL: &str =
    "No welcome email? Ask your Impact Squad to initiate the registration for your instance.";

/// A document title: what the page shows first, then whose it is, then the product, so a
/// browser tab or a screen reader's window list tells pages apart
/// ("Provider connection · ServiceNow Impact · Impact Connect"). Empty parts are left out.
pub fn page_title(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .chain(std::iter::once(PRODUCT))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// A count with its noun, singular for one: "1 issue", "3 issues", "0 issues" (never "issue(s)").
pub fn counted<N: std::fmt::Display + PartialEq + From<u8>>(n: N, one: &str, many: &str) -> String {
    let noun = if n == N::from(1) { one } else { many };
    format!("{n} {noun}")
}

/// A name's possessive: "Acme's", and "Failing Stores'" for a name that ends in s.
pub fn possessive(name: &str) -> String {
    if name.ends_with(['s', 'S']) {
        format!("{name}'")
    } else {
        format!("{name}'s")
    }
}

/// What a status means for the person reading it. Each tone has its colour *and* its shape
/// (the stylesheet's `tone-*` classes: ✓, ✕, ◷, –), so a status never reads by colour alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Working as it should.
    Good,
    /// Broken: someone has to act.
    Bad,
    /// On its way; nothing to do but wait.
    Waiting,
    /// Neither: not started, not applicable.
    Neutral,
}

impl Tone {
    /// The CSS class that gives the tone its colour and shape.
    pub fn class(self) -> &'static str {
        match self {
            Tone::Good => "tone-good",
            Tone::Bad => "tone-bad",
            Tone::Waiting => "tone-waiting",
            Tone::Neutral => "tone-neutral",
        }
    }
}

impl ConnectionState {
    pub fn tone(self) -> Tone {
        match self {
            ConnectionState::Validated => Tone::Good,
            ConnectionState::ValidationFailed | ConnectionState::InstanceChanged => Tone::Bad,
            ConnectionState::AwaitingValidation => Tone::Waiting,
            ConnectionState::Pending | ConnectionState::OffBoarded => Tone::Neutral,
        }
    }
}

impl LinkStatus {
    pub fn tone(self) -> Tone {
        match self {
            LinkStatus::Up => Tone::Good,
            LinkStatus::Down => Tone::Bad,
            LinkStatus::Slow => Tone::Waiting,
            LinkStatus::NotOnboarded | LinkStatus::Blank => Tone::Neutral,
        }
    }
}

impl CheckStatus {
    pub fn tone(self) -> Tone {
        match self {
            CheckStatus::Passed => Tone::Good,
            CheckStatus::Failed | CheckStatus::Error => Tone::Bad,
            CheckStatus::Skipped => Tone::Neutral,
        }
    }
}

impl ActivityStatus {
    pub fn tone(self) -> Tone {
        match self {
            ActivityStatus::Complete => Tone::Good,
            ActivityStatus::InProgress => Tone::Waiting,
            ActivityStatus::NotStarted | ActivityStatus::Locked => Tone::Neutral,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_says_its_noun_in_the_singular_for_one_only() {
        assert_eq!(counted(1u32, "issue", "issues"), "1 issue");
        assert_eq!(counted(0usize, "issue", "issues"), "0 issues");
        assert_eq!(counted(2i64, "time", "times"), "2 times");
        assert_eq!(counted(-1i64, "day", "days"), "-1 days");
    }

    #[test]
    fn a_possessive_takes_only_an_apostrophe_after_an_s() {
        assert_eq!(possessive("Acme"), "Acme's");
        assert_eq!(possessive("Failing Stores"), "Failing Stores'");
        assert_eq!(possessive("ACME GLASS"), "ACME GLASS'");
    }

    #[test]
    fn a_title_reads_from_the_page_to_the_product() {
        assert_eq!(
            page_title(&["Provider connection", "ServiceNow Impact"]),
            "Provider connection · ServiceNow Impact · Impact Connect"
        );
        assert_eq!(page_title(&["Connections"]), "Connections · Impact Connect");
        // A company not known yet leaves no empty slot behind.
        assert_eq!(
            page_title(&["Health Dashboard", " "]),
            "Health Dashboard · Impact Connect"
        );
        assert_eq!(page_title(&[]), PRODUCT);
    }

    #[test]
    fn failures_read_bad_and_success_good_in_every_status_family() {
        assert_eq!(ConnectionState::ValidationFailed.tone(), Tone::Bad);
        assert_eq!(ConnectionState::Validated.tone(), Tone::Good);
        assert_eq!(ConnectionState::AwaitingValidation.tone(), Tone::Waiting);
        assert_eq!(LinkStatus::Down.tone(), Tone::Bad);
        assert_eq!(LinkStatus::Up.tone(), Tone::Good);
        assert_eq!(LinkStatus::Slow.tone(), Tone::Waiting);
        assert_eq!(CheckStatus::Error.tone(), Tone::Bad);
        assert_eq!(CheckStatus::Failed.tone(), Tone::Bad);
        assert_eq!(CheckStatus::Passed.tone(), Tone::Good);
        assert_eq!(ActivityStatus::Complete.tone(), Tone::Good);
        // Each tone has its own class (and so its own shape in the stylesheet).
        let classes = [Tone::Good, Tone::Bad, Tone::Waiting, Tone::Neutral].map(Tone::class);
        for (i, c) in classes.iter().enumerate() {
            assert!(!classes[i + 1..].contains(c), "{c} used twice");
        }
    }
}

//! A connection's health as the dashboard classes it (Up, Slow, Down): both directions together.
use serde::{Deserialize, Serialize};

use super::labels::labelled_enum;
use super::presentation::Tone;
use super::state::LinkStatus;

/// A connection's health as the dashboard classes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Health {
    // Worst first: the order cards are grouped in.
    Down,
    Slow,
    Up,
}

labelled_enum! {
    Health { as_str, parse, label }
    Down => "down", "Down";
    Slow => "slow", "Slow";
    Up => "up", "Up";
}

impl Health {
    pub fn tone(self) -> Tone {
        match self {
            Health::Down => Tone::Bad,
            Health::Slow => Tone::Waiting,
            Health::Up => Tone::Good,
        }
    }

    /// Both directions together: Down if either is, Slow if either is, Up when both are; None
    /// before onboarding (blank, Not onboarded).
    pub fn of(outbound: LinkStatus, inbound: LinkStatus) -> Option<Health> {
        let one = |s: LinkStatus| match s {
            LinkStatus::Down => Some(Health::Down),
            LinkStatus::Slow => Some(Health::Slow),
            LinkStatus::Up => Some(Health::Up),
            LinkStatus::Blank | LinkStatus::NotOnboarded => None,
        };
        Some(one(outbound)?.min(one(inbound)?))
    }
}

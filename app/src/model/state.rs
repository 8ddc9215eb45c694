//! The provider connection's lifecycle: the form's read-only statuses, the actions that move it,
//! and the one function that decides whether an action is allowed.
//!
//! Labels are the product's own words (users and their runbooks know them): keep them exact.
//! `as_db` strings are what the database stores and match the serde names; never change them.

use serde::{Deserialize, Serialize};

use super::labels::labelled_enum;

/// The form's "State" field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Connection in progress: created, not yet checked.
    Pending,
    /// The pre-onboarding health checks are running.
    AwaitingValidation,
    /// The checks passed; "Connect to provider" is available.
    Validated,
    /// The checks failed; the health dashboard says why.
    ValidationFailed,
    /// An IDI admin off-boarded it: the provider was told, the credentials erased. The record
    /// and its history stay to read; nothing more happens to it.
    OffBoarded,
    /// The provider reports that this instance's identity changed (a clone of the instance):
    /// it refuses the link until an IDI admin selects "Validate and Activate".
    InstanceChanged,
}

labelled_enum! {
    ConnectionState { as_db, from_db, label }
    Pending => "pending", "Pending";
    AwaitingValidation => "awaiting_validation", "Awaiting validation";
    Validated => "validated", "Validated";
    ValidationFailed => "validation_failed", "Validation failed";
    OffBoarded => "off_boarded", "Off-boarded";
    InstanceChanged => "instance_changed", "Instance changed";
}

impl ConnectionState {
    /// Still a connection (anything but Off-boarded): it holds its company and provider URL, so
    /// no second live connection may take them.
    pub fn is_live(self) -> bool {
        self != Self::OffBoarded
    }
}

/// The form's "Outbound status" (we call the provider) and "Inbound status" (it calls us).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    /// Nothing yet: the field shows empty.
    Blank,
    /// Validated, but onboarding has not brought this direction up.
    NotOnboarded,
    Up,
    /// Up, but the heartbeat's answer came late (round trip above the slow threshold).
    Slow,
    Down,
}

labelled_enum! {
    LinkStatus { as_db, from_db, label }
    // Empty for `Blank`: the product shows an empty field, not a word.
    Blank => "blank", "";
    NotOnboarded => "not_onboarded", "Not onboarded";
    Up => "up", "Up";
    Slow => "slow", "Slow";
    Down => "down", "Down";
}

/// Where "Connect to provider" stands; the label is the status message shown while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Onboarding {
    NotStarted,
    Started,
    Syncing,
    Complete,
    Failed,
}

labelled_enum! {
    Onboarding { as_db, from_db, label }
    // Empty for `NotStarted`: no status message shows before onboarding.
    NotStarted => "not_started", "";
    Started => "started", "Provider onboarding started";
    Syncing => "syncing", "Syncing settings to complete onboarding";
    Complete => "complete", "Onboarding Complete";
    Failed => "failed", "Onboarding failed";
}

impl Onboarding {
    /// Onboarding work is under way in the background.
    pub fn is_running(self) -> bool {
        matches!(self, Self::Started | Self::Syncing)
    }

    /// Whether onboarding, now at `self`, has reached `step` of its progress (Started, Syncing,
    /// Complete): the page marks those steps done. Before it starts and after it fails, none is.
    pub fn has_reached(self, step: Onboarding) -> bool {
        let order = |o: Onboarding| match o {
            Self::NotStarted | Self::Failed => 0,
            Self::Started => 1,
            Self::Syncing => 2,
            Self::Complete => 3,
        };
        order(self) >= order(step) && !matches!(self, Self::NotStarted | Self::Failed)
    }
}

/// Everything the state machine looks at; what the form's read-only fields show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConnectionStatus {
    pub state: ConnectionState,
    /// The registration token has been exchanged with the provider for credentials.
    pub registered: bool,
    pub onboarding: Onboarding,
    pub outbound: LinkStatus,
    pub inbound: LinkStatus,
}

impl ConnectionStatus {
    /// A record just created from the registration link.
    pub fn new_record() -> Self {
        Self {
            state: ConnectionState::Pending,
            registered: false,
            onboarding: Onboarding::NotStarted,
            outbound: LinkStatus::Blank,
            inbound: LinkStatus::Blank,
        }
    }

    /// Background work (checks or onboarding) is running, so the view should keep listening.
    pub fn is_in_progress(self) -> bool {
        self.state == ConnectionState::AwaitingValidation || self.onboarding.is_running()
    }

    /// Both directions are Up: what "Verify the connection" requires.
    pub fn links_up(self) -> bool {
        self.outbound == LinkStatus::Up && self.inbound == LinkStatus::Up
    }
}

impl Default for ConnectionStatus {
    fn default() -> Self {
        Self::new_record()
    }
}

/// Something that moves a connection: a person's button, or a background job reporting back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Save the record's company.
    Save,
    /// The registration code exchanged with the provider for credentials (first check of the scan).
    Register,
    /// Start the pre-onboarding checks.
    SubmitForValidation,
    ValidationPassed,
    ValidationFailed,
    /// Run the checks again once the causes of a failure are fixed.
    Rescan,
    /// "Connect to provider": start onboarding.
    Onboard,
    OnboardingSyncing,
    OnboardingComplete,
    OnboardingFailed,
    /// Start onboarding again after it failed.
    Retry,
    /// The scheduled connection health check (heartbeat) found the link changed.
    Heartbeat,
    /// "Off-board": the provider is told, the credentials erased, the record kept to read. Asked
    /// for with the typed confirmation (`check_off_board_confirmation`), not from `act`.
    OffBoard,
    /// "Re-register this connection" from a fresh registration link: its new code replaces the
    /// old one and the old credentials, and the checks run again (registering first). The repair
    /// for a used registration code or revoked credentials.
    ReRegister,
    /// "Rotate credentials": a new secret from the provider, the old one honoured for a grace
    /// period then retired; on demand, or when the provider asks. The link stays as it is.
    RotateCredentials,
    /// The provider reported that this instance's identity changed (a clone).
    InstanceChanged,
    /// "Validate and Activate": the provider re-establishes the link for this instance, and the
    /// connection health checks run (their findings set the statuses).
    ValidateAndActivate,
}

// Labels: button text for user actions (the product's labels); a description for system events,
// as history shows it.
labelled_enum! {
    Action { as_db, from_db, label }
    Save => "save", "Save";
    Register => "register", "Registered with the provider";
    SubmitForValidation => "submit_for_validation", "Submitted for validation";
    ValidationPassed => "validation_passed", "Validation checks passed";
    ValidationFailed => "validation_failed", "Validation checks failed";
    Rescan => "rescan", "Rescan";
    Onboard => "onboard", "Connect to provider";
    OnboardingSyncing => "onboarding_syncing", "Onboarding began syncing settings";
    OnboardingComplete => "onboarding_complete", "Onboarding completed";
    OnboardingFailed => "onboarding_failed", "Onboarding attempt failed";
    Retry => "retry", "Retry";
    Heartbeat => "heartbeat", "Connection health check";
    OffBoard => "off_board", "Off-board";
    ReRegister => "re_register", "Re-register";
    RotateCredentials => "rotate_credentials", "Rotate credentials";
    InstanceChanged => "instance_changed", "The provider reports this instance changed";
    ValidateAndActivate => "validate_and_activate", "Validate and Activate";
}

impl Action {
    /// A person may ask for it; the others are reported by background jobs only.
    pub fn is_user_action(self) -> bool {
        matches!(
            self,
            Self::Save
                | Self::Rescan
                | Self::Onboard
                | Self::Retry
                | Self::OffBoard
                | Self::RotateCredentials
                | Self::ValidateAndActivate
        )
    }
}

/// An action that is not allowed now; `reason` says why and what to do, naming the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    pub action: Action,
    pub state: ConnectionState,
    pub reason: String,
}

/// The whole lifecycle: what `action` does to `current`, or why it may not happen now.
pub fn transition(current: ConnectionStatus, action: Action) -> Result<ConnectionStatus, Refusal> {
    use ConnectionState as S;
    use Onboarding as O;

    let s = current;
    let state = s.state.label();
    let refuse = |reason: String| {
        Err(Refusal {
            action,
            state: s.state,
            reason,
        })
    };
    let mut next = s;

    let off_boarded = || {
        let what = if action == Action::OffBoard {
            "It is already off-boarded".to_owned()
        } else {
            format!("\"{}\" is not available", action.label())
        };
        refuse(format!(
            "{what}: the connection is {state}, kept only to read with its history. To connect this company again, open a fresh registration link."
        ))
    };
    if s.state == S::OffBoarded {
        return off_boarded();
    }

    match action {
        Action::Save => {
            if s.state == S::AwaitingValidation {
                return refuse(format!(
                    "Save is not available while the checks run; the connection is {state}. Wait until it is Validated or Validation failed."
                ));
            }
            if s.onboarding.is_running() {
                return refuse(format!(
                    "Save is not available while onboarding runs (\"{}\"); the connection is {state}. Wait for onboarding to finish.",
                    s.onboarding.label()
                ));
            }
            if s.onboarding == O::Complete {
                return refuse(format!(
                    "Save is not available once onboarding is complete; the connection is {state} and onboarded, so its company can no longer change."
                ));
            }
            // A new company invalidates the checks: the record must be validated again.
            if s.state == S::Validated {
                next.state = S::Pending;
                next.outbound = LinkStatus::Blank;
                next.inbound = LinkStatus::Blank;
            }
        }
        Action::Register => {
            if s.registered {
                return refuse(format!(
                    "The connection is already registered with the provider; it is {state}."
                ));
            }
            // Registration is the first pre-onboarding check, so it happens during validation.
            if s.state != S::AwaitingValidation {
                return refuse(format!(
                    "Registration with the provider happens while the checks run (Awaiting validation); the connection is {state}."
                ));
            }
            next.registered = true;
        }
        Action::SubmitForValidation => match s.state {
            // Save starts validation at once; registering is the suite's first check.
            S::Pending => next.state = S::AwaitingValidation,
            S::AwaitingValidation => {
                return refuse(format!(
                    "The connection is already {state}; wait for the checks to finish."
                ));
            }
            S::ValidationFailed => {
                return refuse(format!(
                    "Submit for validation is available only while the connection is Pending; it is {state}. Fix the issues shown on the health dashboard, then use Rescan."
                ));
            }
            S::Validated => {
                return refuse(format!(
                    "Submit for validation is available only while the connection is Pending; it is {state}."
                ));
            }
            S::OffBoarded => return off_boarded(),
            S::InstanceChanged => {
                return refuse(format!(
                    "Submit for validation is available only while the connection is Pending; it is {state}. Select Validate and Activate."
                ));
            }
        },
        Action::ValidationPassed | Action::ValidationFailed => {
            if s.state != S::AwaitingValidation {
                return refuse(format!(
                    "\"{}\" can be recorded only while the connection is Awaiting validation; it is {state}.",
                    action.label()
                ));
            }
            if action == Action::ValidationPassed && !s.registered {
                return refuse(format!(
                    "The checks cannot pass before the connection is registered with the provider; it is {state}."
                ));
            }
            if action == Action::ValidationPassed {
                next.state = S::Validated;
                next.outbound = LinkStatus::NotOnboarded;
                next.inbound = LinkStatus::NotOnboarded;
            } else {
                next.state = S::ValidationFailed;
                next.outbound = LinkStatus::Blank;
                next.inbound = LinkStatus::Blank;
            }
        }
        Action::Rescan => match (s.state, s.onboarding) {
            // Link statuses stay as they were: a scan only observes, its result sets them.
            (S::ValidationFailed, _) | (S::Validated, O::NotStarted | O::Failed) => {
                next.state = S::AwaitingValidation;
            }
            (S::OffBoarded, _) => return off_boarded(),
            (S::InstanceChanged, _) => {
                return refuse(format!(
                    "Rescan is not available while the connection is {state}: the provider refuses this instance until you select Validate and Activate, which runs the checks."
                ));
            }
            (S::Pending, _) => {
                return refuse(format!(
                    "Rescan is available only after the checks have run once; the connection is {state}."
                ));
            }
            (S::AwaitingValidation, _) => {
                return refuse(format!(
                    "Rescan is not available while the checks run; the connection is {state}."
                ));
            }
            // Onboarded: the connection health suite runs; the record stays Validated and its
            // findings set Outbound and Inbound (`heartbeat::after_heartbeat`).
            (S::Validated, O::Complete) => {}
            (S::Validated, O::Started | O::Syncing) => {
                return refuse(format!(
                    "Rescan is not available while onboarding runs (\"{}\"); the connection is {state}.",
                    s.onboarding.label()
                ));
            }
        },
        Action::Onboard => {
            if s.state != S::Validated {
                return refuse(format!(
                    "Connect to provider is available only once the connection is Validated; it is {state}."
                ));
            }
            match s.onboarding {
                O::NotStarted => next.onboarding = O::Started,
                O::Failed => {
                    return refuse(format!(
                        "Onboarding failed on the last attempt; use Retry to start it again. The connection is {state}."
                    ));
                }
                O::Started | O::Syncing => {
                    return refuse(format!(
                        "Onboarding is already running (\"{}\"); the connection is {state}.",
                        s.onboarding.label()
                    ));
                }
                O::Complete => {
                    return refuse(format!(
                        "The connection is already onboarded (\"Onboarding Complete\"); it is {state}."
                    ));
                }
            }
        }
        Action::OnboardingSyncing | Action::OnboardingComplete | Action::OnboardingFailed => {
            if s.state != S::Validated {
                return refuse(format!(
                    "\"{}\" can be recorded only once the connection is Validated; it is {state}.",
                    action.label()
                ));
            }
            match (action, s.onboarding) {
                (Action::OnboardingSyncing, O::Started) => {
                    next.onboarding = O::Syncing;
                    // Reaching the syncing phase means our calls to the provider worked.
                    next.outbound = LinkStatus::Up;
                }
                (Action::OnboardingComplete, O::Syncing) => {
                    next.onboarding = O::Complete;
                    next.outbound = LinkStatus::Up;
                    next.inbound = LinkStatus::Up;
                }
                (Action::OnboardingFailed, O::Started | O::Syncing) => {
                    next.onboarding = O::Failed;
                    // A direction that came up did work; the rest never got that far.
                    next.outbound = up_or_not_onboarded(s.outbound);
                    next.inbound = up_or_not_onboarded(s.inbound);
                }
                (Action::OnboardingSyncing, _) => {
                    return refuse(format!(
                        "Onboarding can start syncing only after \"Provider onboarding started\"; {} and the connection is {state}.",
                        onboarding_phrase(s.onboarding)
                    ));
                }
                (Action::OnboardingComplete, _) => {
                    return refuse(format!(
                        "Onboarding can complete only after \"Syncing settings to complete onboarding\"; {} and the connection is {state}.",
                        onboarding_phrase(s.onboarding)
                    ));
                }
                _ => {
                    return refuse(format!(
                        "Onboarding can fail only while it runs; {} and the connection is {state}.",
                        onboarding_phrase(s.onboarding)
                    ));
                }
            }
        }
        Action::Retry => {
            if s.onboarding != O::Failed {
                return refuse(format!(
                    "Retry is available only after onboarding has failed; {} and the connection is {state}.",
                    onboarding_phrase(s.onboarding)
                ));
            }
            if s.state != S::Validated {
                return refuse(format!(
                    "Retry is available once the connection is Validated again; it is {state}."
                ));
            }
            next.onboarding = O::Started;
        }
        Action::OffBoard => {
            if s.state == S::AwaitingValidation {
                return refuse(format!(
                    "Off-board is not available while the checks run; the connection is {state}. Wait until they finish."
                ));
            }
            if s.onboarding.is_running() {
                return refuse(format!(
                    "Off-board is not available while onboarding runs (\"{}\"); the connection is {state}. Wait for onboarding to finish.",
                    s.onboarding.label()
                ));
            }
            // Nothing of the link remains: no credentials, no onboarding, blank statuses.
            next = ConnectionStatus {
                state: S::OffBoarded,
                registered: false,
                onboarding: O::NotStarted,
                outbound: LinkStatus::Blank,
                inbound: LinkStatus::Blank,
            };
        }
        Action::ReRegister => {
            if s.state == S::AwaitingValidation {
                return refuse(format!(
                    "Re-register is not available while the checks run; the connection is {state}. Wait until they finish."
                ));
            }
            if s.onboarding.is_running() {
                return refuse(format!(
                    "Re-register is not available while onboarding runs (\"{}\"); the connection is {state}. Wait for onboarding to finish.",
                    s.onboarding.label()
                ));
            }
            // New credentials are a new consumer on the provider: validated, then onboarded, anew.
            next = ConnectionStatus {
                state: S::AwaitingValidation,
                registered: false,
                onboarding: O::NotStarted,
                outbound: LinkStatus::Blank,
                inbound: LinkStatus::Blank,
            };
        }
        // Changes no status: the same link, signed with a new secret.
        Action::RotateCredentials => {
            if !s.registered {
                return refuse(format!(
                    "Rotate credentials needs credentials, which the connection gets when it registers with the provider; it is {state} and not registered yet."
                ));
            }
            if s.state == S::AwaitingValidation {
                return refuse(format!(
                    "Rotate credentials is not available while the checks run; the connection is {state}. Wait until they finish."
                ));
            }
            if s.state == S::InstanceChanged {
                return refuse(format!(
                    "Rotate credentials is not available while the connection is {state}: the provider refuses this instance until you select Validate and Activate."
                ));
            }
            if s.onboarding.is_running() {
                return refuse(format!(
                    "Rotate credentials is not available while onboarding runs (\"{}\"); the connection is {state}. Wait for onboarding to finish.",
                    s.onboarding.label()
                ));
            }
        }
        // Allowed once onboarded; the statuses it sets come from what the heartbeat found
        // (`heartbeat::after_heartbeat`), not from the action alone.
        Action::Heartbeat => {
            if s.onboarding != O::Complete {
                return refuse(format!(
                    "The connection health check runs only once onboarding is complete; {} and the connection is {state}.",
                    onboarding_phrase(s.onboarding)
                ));
            }
            if s.state != S::Validated {
                return refuse(format!(
                    "The connection health check runs only on a Validated connection; it is {state}."
                ));
            }
        }
        Action::InstanceChanged => {
            if s.state != S::Validated || s.onboarding != O::Complete {
                return refuse(format!(
                    "An instance change is recorded only on an onboarded, Validated connection; it is {state} and {}.",
                    onboarding_phrase(s.onboarding)
                ));
            }
            // The provider refuses this instance in both directions until it is re-activated.
            next.state = S::InstanceChanged;
            next.outbound = LinkStatus::Down;
            next.inbound = LinkStatus::Down;
        }
        Action::ValidateAndActivate => {
            if s.state != S::InstanceChanged {
                return refuse(format!(
                    "Validate and Activate is for a connection the provider reports as changed (a cloned instance); it is {state}."
                ));
            }
            // Statuses stay until the connection health checks that follow find them.
            next.state = S::Validated;
        }
    }
    Ok(next)
}

/// The buttons to show: every user action that `transition` would accept now.
pub fn allowed_user_actions(s: ConnectionStatus) -> Vec<Action> {
    Action::ALL
        .into_iter()
        .filter(|a| a.is_user_action() && transition(s, *a).is_ok())
        .collect()
}

fn up_or_not_onboarded(link: LinkStatus) -> LinkStatus {
    if link == LinkStatus::Up {
        LinkStatus::Up
    } else {
        LinkStatus::NotOnboarded
    }
}

/// Onboarding's position in words, for refusals ("not started" has an empty label).
fn onboarding_phrase(onboarding: Onboarding) -> String {
    match onboarding {
        Onboarding::NotStarted => "onboarding has not started".to_owned(),
        other => format!("onboarding reads \"{}\"", other.label()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet, VecDeque};
    use std::fmt;

    use super::*;
    use Action as A;
    use ConnectionState::*;
    use LinkStatus::{Blank as B, Down, NotOnboarded as NO, Up};
    use Onboarding::{Complete, Failed, NotStarted as NS, Started, Syncing};

    /// The buttons a person may press, written out rather than taken from `is_user_action`.
    const USER_ACTIONS: [Action; 7] = [
        A::Save,
        A::Rescan,
        A::Onboard,
        A::Retry,
        A::OffBoard,
        A::RotateCredentials,
        A::ValidateAndActivate,
    ];

    fn st(
        state: ConnectionState,
        registered: bool,
        onboarding: Onboarding,
        outbound: LinkStatus,
        inbound: LinkStatus,
    ) -> ConnectionStatus {
        ConnectionStatus {
            state,
            registered,
            onboarding,
            outbound,
            inbound,
        }
    }

    fn step(s: ConnectionStatus, a: Action) -> ConnectionStatus {
        transition(s, a).unwrap_or_else(|r| panic!("{a:?} refused in {s:?}: {r}"))
    }

    /// Every reachable status, with the actions it accepts and where each leads; every action
    /// not listed must be refused. Written from the rules, not from the code's output.
    fn table() -> Vec<(ConnectionStatus, Vec<(Action, ConnectionStatus)>)> {
        // Not yet registered: Save submits at once, registering is the scan's first check.
        let r0 = ConnectionStatus::new_record();
        let r1 = st(AwaitingValidation, false, NS, B, B);
        let r2 = st(ValidationFailed, false, NS, B, B);
        // Registered.
        let r3 = st(AwaitingValidation, true, NS, B, B);
        let r4 = st(Validated, true, NS, NO, NO);
        let r5 = st(ValidationFailed, true, NS, B, B);
        let r6 = st(Pending, true, NS, B, B);
        let r7 = st(AwaitingValidation, true, NS, NO, NO);
        // Onboarding.
        let r8 = st(Validated, true, Started, NO, NO);
        let r9 = st(Validated, true, Syncing, Up, NO);
        let r10 = st(Validated, true, Failed, NO, NO);
        let r11 = st(Validated, true, Complete, Up, Up);
        let r12 = st(Validated, true, Failed, Up, NO);
        let r13 = st(Pending, true, Failed, B, B);
        let r14 = st(AwaitingValidation, true, Failed, NO, NO);
        let r15 = st(AwaitingValidation, true, Failed, Up, NO);
        let r16 = st(Validated, true, Started, Up, NO);
        let r17 = st(AwaitingValidation, true, Failed, B, B);
        let r18 = st(ValidationFailed, true, Failed, B, B);
        // Off-boarded: nothing of the link remains, and nothing more can happen to it.
        let ob = st(OffBoarded, false, NS, B, B);
        let off = (A::OffBoard, ob);
        // Re-registering from a fresh link: the checks again, from registration on.
        let rr = (A::ReRegister, r1);
        let ic = st(InstanceChanged, true, Complete, Down, Down);
        let va = st(Validated, true, Complete, Down, Down);
        vec![
            (
                r0,
                vec![(A::Save, r0), (A::SubmitForValidation, r1), off, rr],
            ),
            // The checks cannot pass before registration; they can fail.
            (r1, vec![(A::Register, r3), (A::ValidationFailed, r2)]),
            (r2, vec![(A::Save, r2), (A::Rescan, r1), off, rr]),
            (
                r3,
                vec![(A::ValidationPassed, r4), (A::ValidationFailed, r5)],
            ),
            (
                r4,
                vec![
                    (A::Save, r6),
                    (A::Rescan, r7),
                    (A::Onboard, r8),
                    off,
                    rr,
                    (A::RotateCredentials, r4),
                ],
            ),
            (
                r5,
                vec![
                    (A::Save, r5),
                    (A::Rescan, r3),
                    off,
                    rr,
                    (A::RotateCredentials, r5),
                ],
            ),
            (
                r6,
                vec![
                    (A::Save, r6),
                    (A::SubmitForValidation, r3),
                    off,
                    rr,
                    (A::RotateCredentials, r6),
                ],
            ),
            (
                r7,
                vec![(A::ValidationPassed, r4), (A::ValidationFailed, r5)],
            ),
            (
                r8,
                vec![(A::OnboardingSyncing, r9), (A::OnboardingFailed, r10)],
            ),
            (
                r9,
                vec![(A::OnboardingComplete, r11), (A::OnboardingFailed, r12)],
            ),
            (
                r10,
                vec![
                    (A::Save, r13),
                    (A::Rescan, r14),
                    (A::Retry, r8),
                    off,
                    rr,
                    (A::RotateCredentials, r10),
                ],
            ),
            // Onboarded: the scheduled health check and Rescan, which runs the connection health
            // suite (the statuses they find: `heartbeat`).
            (
                r11,
                vec![
                    (A::Rescan, r11),
                    (A::Heartbeat, r11),
                    off,
                    rr,
                    (A::RotateCredentials, r11),
                    (A::InstanceChanged, ic),
                ],
            ),
            // The provider reports a cloned instance: Validate and Activate, off-board or
            // re-register; Validated again, the health checks' findings set the statuses.
            (ic, vec![(A::ValidateAndActivate, va), off, rr]),
            (
                va,
                vec![
                    (A::Rescan, va),
                    (A::Heartbeat, va),
                    off,
                    rr,
                    (A::RotateCredentials, va),
                    (A::InstanceChanged, ic),
                ],
            ),
            (
                r12,
                vec![
                    (A::Save, r13),
                    (A::Rescan, r15),
                    (A::Retry, r16),
                    off,
                    rr,
                    (A::RotateCredentials, r12),
                ],
            ),
            (
                r13,
                vec![
                    (A::Save, r13),
                    (A::SubmitForValidation, r17),
                    off,
                    rr,
                    (A::RotateCredentials, r13),
                ],
            ),
            (
                r14,
                vec![(A::ValidationPassed, r10), (A::ValidationFailed, r18)],
            ),
            (
                r15,
                vec![(A::ValidationPassed, r10), (A::ValidationFailed, r18)],
            ),
            (
                r16,
                vec![(A::OnboardingSyncing, r9), (A::OnboardingFailed, r12)],
            ),
            (
                r17,
                vec![(A::ValidationPassed, r10), (A::ValidationFailed, r18)],
            ),
            (
                r18,
                vec![
                    (A::Save, r18),
                    (A::Rescan, r17),
                    off,
                    rr,
                    (A::RotateCredentials, r18),
                ],
            ),
            (ob, vec![]),
        ]
    }

    fn reachable() -> HashSet<ConnectionStatus> {
        let mut seen = HashSet::from([ConnectionStatus::new_record()]);
        let mut queue = VecDeque::from([ConnectionStatus::new_record()]);
        while let Some(s) = queue.pop_front() {
            for a in Action::ALL {
                if let Ok(next) = transition(s, a) {
                    if seen.insert(next) {
                        queue.push_back(next);
                    }
                }
            }
        }
        seen
    }

    #[test]
    fn table_covers_exactly_the_reachable_statuses() {
        let rows = table();
        let table: HashSet<_> = rows.iter().map(|(s, _)| *s).collect();
        assert_eq!(table.len(), 22, "duplicate rows in the table");
        assert_eq!(rows.len(), 22);
        // The table is closed and every row is reachable along its own edges.
        let mut from_table = HashSet::from([ConnectionStatus::new_record()]);
        let mut queue = VecDeque::from([ConnectionStatus::new_record()]);
        while let Some(s) = queue.pop_front() {
            let (_, edges) = rows.iter().find(|(row, _)| *row == s).unwrap();
            for (_, to) in edges {
                assert!(table.contains(to), "{to:?} has no row");
                if from_table.insert(*to) {
                    queue.push_back(*to);
                }
            }
        }
        assert_eq!(from_table, table);
        assert_eq!(reachable(), table);
    }

    #[test]
    fn every_reachable_status_and_action_pair() {
        for (s, allowed) in table() {
            for a in Action::ALL {
                let expected = allowed.iter().find(|(x, _)| *x == a).map(|(_, to)| *to);
                match (transition(s, a), expected) {
                    (Ok(got), Some(want)) => assert_eq!(got, want, "{a:?} from {s:?}"),
                    (Err(r), None) => {
                        assert_eq!(r.action, a);
                        assert_eq!(r.state, s.state);
                        assert!(!r.reason.trim().is_empty());
                        assert!(
                            r.reason.contains(s.state.label()),
                            "{a:?} from {s:?}: reason {:?} does not name the state",
                            r.reason
                        );
                        assert_eq!(r.to_string(), r.reason);
                    }
                    (got, want) => panic!("{a:?} from {s:?}: got {got:?}, want {want:?}"),
                }
            }
            // The buttons shown are exactly the table's user actions, in declaration order.
            let buttons: Vec<_> = Action::ALL
                .into_iter()
                .filter(|a| USER_ACTIONS.contains(a) && allowed.iter().any(|(x, _)| x == a))
                .collect();
            assert_eq!(allowed_user_actions(s), buttons, "{s:?}");
        }
    }

    #[test]
    fn every_refusal_in_the_whole_space_names_the_state() {
        // Also covers unreachable combinations: transition must be total and explain itself.
        for state in ConnectionState::ALL {
            for registered in [false, true] {
                for onboarding in Onboarding::ALL {
                    for outbound in LinkStatus::ALL {
                        for inbound in LinkStatus::ALL {
                            let s = st(state, registered, onboarding, outbound, inbound);
                            for a in Action::ALL {
                                if let Err(r) = transition(s, a) {
                                    assert!(r.reason.contains(state.label()), "{a:?} {s:?}");
                                    assert!(
                                        !r.reason.contains("\"\""),
                                        "{a:?} {s:?}: {}",
                                        r.reason
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn register_and_validation_rules_hold_in_the_whole_space() {
        for state in ConnectionState::ALL {
            for registered in [false, true] {
                for onboarding in Onboarding::ALL {
                    for outbound in LinkStatus::ALL {
                        for inbound in LinkStatus::ALL {
                            let s = st(state, registered, onboarding, outbound, inbound);
                            // Register: only while the checks run and not yet registered; it
                            // changes nothing but `registered`.
                            match transition(s, A::Register) {
                                Ok(next) => {
                                    assert!(state == AwaitingValidation && !registered, "{s:?}");
                                    assert_eq!(
                                        next,
                                        ConnectionStatus {
                                            registered: true,
                                            ..s
                                        }
                                    );
                                }
                                Err(_) => {
                                    assert!(state != AwaitingValidation || registered, "{s:?}")
                                }
                            }
                            // Submit: Pending -> Awaiting validation, registered or not.
                            match transition(s, A::SubmitForValidation) {
                                Ok(next) => {
                                    assert_eq!(state, Pending, "{s:?}");
                                    assert_eq!(
                                        next,
                                        ConnectionStatus {
                                            state: AwaitingValidation,
                                            ..s
                                        }
                                    );
                                }
                                Err(_) => assert_ne!(state, Pending, "{s:?}"),
                            }
                            // Passing needs registration; failing does not.
                            assert_eq!(
                                transition(s, A::ValidationPassed).is_ok(),
                                state == AwaitingValidation && registered,
                                "{s:?}"
                            );
                            assert_eq!(
                                transition(s, A::ValidationFailed).is_ok(),
                                state == AwaitingValidation,
                                "{s:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn invariants_hold_in_every_reachable_status() {
        for s in reachable() {
            // Onboarding only ever runs on a Validated connection; once complete, the record is
            // Validated or, when the provider reports a cloned instance, Instance changed.
            if s.onboarding.is_running() {
                assert_eq!(s.state, Validated, "{s:?}");
            }
            if s.onboarding == Complete {
                assert!(matches!(s.state, Validated | InstanceChanged), "{s:?}");
            }
            if s.state == InstanceChanged {
                assert_eq!(s, st(InstanceChanged, true, Complete, Down, Down));
            }
            // The checks cannot pass without credentials.
            if s.state == Validated {
                assert!(s.registered, "{s:?}");
            }
            // Before registration nothing has been validated or onboarded.
            if !s.registered {
                assert_ne!(s.state, Validated, "{s:?}");
                assert_eq!(s.onboarding, NS, "{s:?}");
                assert_eq!((s.outbound, s.inbound), (B, B), "{s:?}");
            }
            if s.links_up() {
                assert_eq!(s.onboarding, Complete, "{s:?}");
            }
            // Links show only once validated; Pending and failed records show empty fields.
            if s.state == Pending || s.state == ValidationFailed {
                assert_eq!((s.outbound, s.inbound), (B, B), "{s:?}");
            }
            if s.state == Validated {
                assert!(s.outbound != B && s.inbound != B, "{s:?}");
            }
            if s.state == AwaitingValidation {
                assert!(s.is_in_progress(), "{s:?}");
            }
            // Off-boarded keeps nothing of the link, and is the only state that is not live.
            if s.state == OffBoarded {
                assert_eq!(s, st(OffBoarded, false, NS, B, B));
                assert!(!s.state.is_live());
                assert!(allowed_user_actions(s).is_empty());
            } else {
                assert!(s.state.is_live());
            }
        }
    }

    #[test]
    fn re_registering_an_onboarded_connection_validates_and_onboards_it_anew() {
        let mut s = st(Validated, true, Complete, Up, Up);
        assert!(
            !A::ReRegister.is_user_action(),
            "it comes from a registration link"
        );
        s = step(s, A::ReRegister);
        assert_eq!(s, st(AwaitingValidation, false, NS, B, B));
        // The scan registers with the new code first, then passes; onboarding comes next.
        s = step(s, A::Register);
        s = step(s, A::ValidationPassed);
        assert_eq!(s, st(Validated, true, NS, NO, NO));
        assert!(allowed_user_actions(s).contains(&A::Onboard));
        // Not while work runs, and not once off-boarded.
        for busy in [
            st(AwaitingValidation, true, NS, B, B),
            st(Validated, true, Syncing, Up, NO),
        ] {
            let r = transition(busy, A::ReRegister).unwrap_err();
            assert!(r.reason.contains("Wait"), "{}", r.reason);
        }
        let r = transition(st(OffBoarded, false, NS, B, B), A::ReRegister).unwrap_err();
        assert!(r.reason.contains("fresh registration link"), "{}", r.reason);
    }

    #[test]
    fn off_board_is_refused_only_while_work_runs_and_after_it() {
        for s in reachable() {
            let busy = s.is_in_progress();
            match transition(s, A::OffBoard) {
                Ok(next) => {
                    assert!(!busy && s.state != OffBoarded, "{s:?}");
                    assert_eq!(next, st(OffBoarded, false, NS, B, B));
                }
                Err(r) if s.state == OffBoarded => {
                    assert!(r.reason.contains("already off-boarded"), "{}", r.reason);
                    assert!(r.reason.contains("fresh registration link"), "{}", r.reason);
                }
                Err(r) => {
                    assert!(busy, "{s:?}");
                    assert!(r.reason.contains("Wait"), "{}", r.reason);
                }
            }
        }
        let ob = st(OffBoarded, false, NS, B, B);
        for a in Action::ALL {
            let r = transition(ob, a).unwrap_err();
            assert!(r.reason.contains("Off-boarded"), "{a:?}: {}", r.reason);
        }
    }

    #[test]
    fn happy_path() {
        let mut s = ConnectionStatus::new_record();
        assert_eq!(allowed_user_actions(s), vec![A::Save, A::OffBoard]);
        s = step(s, A::Save);
        assert_eq!(s, ConnectionStatus::new_record());
        // The server submits right after Save; the record is not registered yet.
        s = step(s, A::SubmitForValidation);
        assert_eq!(s, st(AwaitingValidation, false, NS, B, B));
        assert_eq!(s.state.label(), "Awaiting validation");
        assert!(s.is_in_progress());
        assert!(allowed_user_actions(s).is_empty());
        let early = transition(s, A::ValidationPassed).unwrap_err();
        assert!(
            early.reason.contains("registered with the provider"),
            "{}",
            early.reason
        );
        // The scan's first check registers.
        s = step(s, A::Register);
        assert_eq!(s, st(AwaitingValidation, true, NS, B, B));
        assert!(s.is_in_progress());
        assert!(allowed_user_actions(s).is_empty());
        s = step(s, A::ValidationPassed);
        assert_eq!(s.state.label(), "Validated");
        assert_eq!(
            (s.outbound.label(), s.inbound.label()),
            ("Not onboarded", "Not onboarded")
        );
        assert!(!s.is_in_progress());
        assert_eq!(
            allowed_user_actions(s),
            vec![
                A::Save,
                A::Rescan,
                A::Onboard,
                A::OffBoard,
                A::RotateCredentials
            ]
        );
        s = step(s, A::Onboard);
        assert_eq!(s.onboarding.label(), "Provider onboarding started");
        assert!(s.is_in_progress());
        assert!(allowed_user_actions(s).is_empty());
        s = step(s, A::OnboardingSyncing);
        assert_eq!(
            s.onboarding.label(),
            "Syncing settings to complete onboarding"
        );
        assert_eq!(s.outbound, Up);
        s = step(s, A::OnboardingComplete);
        assert_eq!(s.onboarding.label(), "Onboarding Complete");
        assert_eq!((s.outbound.label(), s.inbound.label()), ("Up", "Up"));
        assert!(s.links_up());
        assert!(!s.is_in_progress());
        // Onboarded: Rescan runs the connection health suite; it can be off-boarded.
        assert_eq!(
            allowed_user_actions(s),
            vec![A::Rescan, A::OffBoard, A::RotateCredentials]
        );
        let again = transition(s, A::Onboard).unwrap_err();
        assert!(
            again.reason.contains("already onboarded"),
            "{}",
            again.reason
        );
    }

    #[test]
    fn validation_failure_before_registration_then_rescan() {
        let mut s = ConnectionStatus::new_record();
        for a in [A::Save, A::SubmitForValidation, A::ValidationFailed] {
            s = step(s, a);
        }
        assert_eq!(s, st(ValidationFailed, false, NS, B, B));
        assert_eq!(s.state.label(), "Validation failed");
        assert_eq!(
            allowed_user_actions(s),
            vec![A::Save, A::Rescan, A::OffBoard]
        );
        let onboard = transition(s, A::Onboard).unwrap_err();
        assert_eq!(
            onboard.reason,
            "Connect to provider is available only once the connection is Validated; it is Validation failed."
        );
        let register = transition(s, A::Register).unwrap_err();
        assert!(register.reason.contains("Validation failed"));
        s = step(s, A::Save);
        assert_eq!(
            s.state, ValidationFailed,
            "saving does not by itself re-validate"
        );
        s = step(s, A::Rescan);
        assert_eq!(s, st(AwaitingValidation, false, NS, B, B));
        assert!(transition(s, A::ValidationPassed).is_err());
        s = step(s, A::Register);
        s = step(s, A::ValidationPassed);
        assert_eq!(s, st(Validated, true, NS, NO, NO));
    }

    #[test]
    fn validation_failure_after_registration_then_rescan() {
        let mut s = ConnectionStatus::new_record();
        for a in [A::SubmitForValidation, A::Register, A::ValidationFailed] {
            s = step(s, a);
        }
        assert_eq!(s, st(ValidationFailed, true, NS, B, B));
        assert_eq!(
            allowed_user_actions(s),
            vec![A::Save, A::Rescan, A::OffBoard, A::RotateCredentials]
        );
        s = step(s, A::Rescan);
        assert_eq!(s, st(AwaitingValidation, true, NS, B, B));
        // Already registered: the rescan does not register again.
        let again = transition(s, A::Register).unwrap_err();
        assert!(
            again.reason.contains("already registered"),
            "{}",
            again.reason
        );
        s = step(s, A::ValidationPassed);
        assert_eq!(s, st(Validated, true, NS, NO, NO));
    }

    #[test]
    fn onboarding_failure_then_retry() {
        let mut s = ConnectionStatus::new_record();
        for a in [
            A::SubmitForValidation,
            A::Register,
            A::ValidationPassed,
            A::Onboard,
        ] {
            s = step(s, a);
        }
        s = step(s, A::OnboardingSyncing);
        s = step(s, A::OnboardingFailed);
        // Outbound had come up and stays Up; inbound never did.
        assert_eq!(s, st(Validated, true, Failed, Up, NO));
        assert_eq!(s.onboarding.label(), "Onboarding failed");
        assert_eq!(
            allowed_user_actions(s),
            vec![
                A::Save,
                A::Rescan,
                A::Retry,
                A::OffBoard,
                A::RotateCredentials
            ]
        );
        let onboard = transition(s, A::Onboard).unwrap_err();
        assert!(onboard.reason.contains("use Retry"), "{}", onboard.reason);
        s = step(s, A::Retry);
        assert_eq!(s.onboarding, Started);
        s = step(s, A::OnboardingSyncing);
        s = step(s, A::OnboardingComplete);
        assert_eq!(s, st(Validated, true, Complete, Up, Up));
    }

    #[test]
    fn saving_a_validated_record_requires_validation_again() {
        let s = st(Validated, true, NS, NO, NO);
        let saved = step(s, A::Save);
        assert_eq!(saved, st(Pending, true, NS, B, B));
        // Registration is kept: the next scan goes straight to the remaining checks.
        let submitted = step(saved, A::SubmitForValidation);
        assert_eq!(submitted, st(AwaitingValidation, true, NS, B, B));
        assert!(transition(submitted, A::Register).is_err());
        assert_eq!(
            step(submitted, A::ValidationPassed),
            st(Validated, true, NS, NO, NO)
        );
        let waiting = transition(st(AwaitingValidation, true, NS, B, B), A::Save).unwrap_err();
        assert!(waiting.reason.contains("Awaiting validation"));
        let running = transition(st(Validated, true, Syncing, Up, NO), A::Save).unwrap_err();
        assert!(running
            .reason
            .contains("Syncing settings to complete onboarding"));
    }

    #[test]
    fn register_and_submit_refusals_say_what_to_do() {
        // Registering outside a scan.
        let r = transition(ConnectionStatus::new_record(), A::Register).unwrap_err();
        assert_eq!(
            r.reason,
            "Registration with the provider happens while the checks run (Awaiting validation); the connection is Pending."
        );
        let r = transition(st(AwaitingValidation, true, NS, B, B), A::Register).unwrap_err();
        assert!(r.reason.contains("already registered"), "{}", r.reason);
        let r = transition(st(Pending, true, NS, B, B), A::Register).unwrap_err();
        assert!(r.reason.contains("already registered"), "{}", r.reason);
        // Passing before registering.
        let r =
            transition(st(AwaitingValidation, false, NS, B, B), A::ValidationPassed).unwrap_err();
        assert_eq!(
            r.reason,
            "The checks cannot pass before the connection is registered with the provider; it is Awaiting validation."
        );
        // Submitting outside Pending.
        let r = transition(
            st(AwaitingValidation, false, NS, B, B),
            A::SubmitForValidation,
        )
        .unwrap_err();
        assert!(
            r.reason.contains("already Awaiting validation"),
            "{}",
            r.reason
        );
        let r = transition(
            st(ValidationFailed, false, NS, B, B),
            A::SubmitForValidation,
        )
        .unwrap_err();
        assert!(r.reason.contains("use Rescan"), "{}", r.reason);
        let r = transition(st(Validated, true, Started, NO, NO), A::Onboard).unwrap_err();
        assert!(r.reason.contains("already running"), "{}", r.reason);
    }

    #[test]
    fn allowed_user_actions_are_user_actions_that_transition_accepts() {
        for a in Action::ALL {
            assert_eq!(a.is_user_action(), USER_ACTIONS.contains(&a), "{a:?}");
        }
        for s in reachable() {
            let allowed = allowed_user_actions(s);
            for a in Action::ALL {
                let expected = a.is_user_action() && transition(s, a).is_ok();
                assert_eq!(allowed.contains(&a), expected, "{a:?} in {s:?}");
            }
            // Registering and submitting are the system's doing, never a button.
            assert!(!allowed.contains(&A::Register), "{s:?}");
            assert!(!allowed.contains(&A::SubmitForValidation), "{s:?}");
        }
    }

    #[test]
    fn labels_are_the_products_words() {
        let states: Vec<_> = ConnectionState::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(
            states,
            [
                "Pending",
                "Awaiting validation",
                "Validated",
                "Validation failed",
                "Off-boarded",
                "Instance changed"
            ]
        );
        let links: Vec<_> = LinkStatus::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(links, ["", "Not onboarded", "Up", "Slow", "Down"]);
        let onboarding: Vec<_> = Onboarding::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(
            onboarding,
            [
                "",
                "Provider onboarding started",
                "Syncing settings to complete onboarding",
                "Onboarding Complete",
                "Onboarding failed"
            ]
        );
        let buttons: Vec<_> = Action::ALL
            .iter()
            .filter(|a| a.is_user_action())
            .map(|a| a.label())
            .collect();
        assert_eq!(
            buttons,
            [
                "Save",
                "Rescan",
                "Connect to provider",
                "Retry",
                "Off-board",
                "Rotate credentials",
                "Validate and Activate"
            ]
        );
        assert_eq!(A::Register.label(), "Registered with the provider");
        assert_eq!(A::SubmitForValidation.label(), "Submitted for validation");
        let all: BTreeSet<_> = Action::ALL.iter().map(|a| a.label()).collect();
        assert_eq!(all.len(), Action::ALL.len(), "labels must be distinct");
        assert_eq!(Validated.to_string(), "Validated");
        assert_eq!(A::Register.to_string(), "Registered with the provider");
    }

    fn db_and_serde_agree<T>(
        all: &[T],
        as_db: fn(&T) -> &'static str,
        from_db: fn(&str) -> Option<T>,
    ) where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug,
    {
        for v in all {
            let db = as_db(v);
            assert_eq!(from_db(db).as_ref(), Some(v));
            assert_eq!(serde_json::to_string(v).unwrap(), format!("\"{db}\""));
            assert_eq!(&serde_json::from_str::<T>(&format!("\"{db}\"")).unwrap(), v);
        }
        assert!(from_db("nonsense").is_none());
        assert!(from_db("").is_none());
        assert!(serde_json::from_str::<T>("\"nonsense\"").is_err());
        assert!(serde_json::from_str::<T>("1").is_err());
    }

    #[test]
    fn db_strings_match_serde_and_round_trip() {
        db_and_serde_agree(
            &ConnectionState::ALL,
            |v| v.as_db(),
            ConnectionState::from_db,
        );
        db_and_serde_agree(&LinkStatus::ALL, |v| v.as_db(), LinkStatus::from_db);
        db_and_serde_agree(&Onboarding::ALL, |v| v.as_db(), Onboarding::from_db);
        db_and_serde_agree(&Action::ALL, |v| v.as_db(), Action::from_db);
        // Labels are for people, not storage.
        assert_eq!(ConnectionState::from_db("Validated"), None);
        assert_eq!(
            ConnectionState::AwaitingValidation.as_db(),
            "awaiting_validation"
        );
        assert_eq!(LinkStatus::NotOnboarded.as_db(), "not_onboarded");
    }

    #[test]
    fn status_and_refusal_serde_round_trip() {
        let s = st(Validated, true, Syncing, Up, NO);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"state":"validated","registered":true,"onboarding":"syncing","outbound":"up","inbound":"not_onboarded"}"#
        );
        assert_eq!(serde_json::from_str::<ConnectionStatus>(&json).unwrap(), s);
        assert!(serde_json::from_str::<ConnectionStatus>(r#"{"state":"validated"}"#).is_err());
        let r = transition(s, A::Retry).unwrap_err();
        let back: Refusal = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn the_progress_marks_the_steps_onboarding_has_reached() {
        let steps = [Started, Syncing, Complete];
        let reached = |now: Onboarding| steps.map(|s| now.has_reached(s));
        assert_eq!(reached(NS), [false, false, false]);
        assert_eq!(reached(Started), [true, false, false]);
        assert_eq!(reached(Syncing), [true, true, false]);
        assert_eq!(reached(Complete), [true, true, true]);
        // A failed attempt shows no step done, whatever it had reached.
        assert_eq!(reached(Failed), [false, false, false]);
    }

    #[test]
    fn onboarding_steps_out_of_order_are_refused_naming_the_step_that_must_come_first() {
        let validated = st(Validated, true, NS, NO, NO);
        let early_sync = transition(validated, A::OnboardingSyncing).unwrap_err();
        assert!(
            early_sync
                .reason
                .contains("only after \"Provider onboarding started\"; onboarding has not started"),
            "{early_sync}"
        );
        let started = st(Validated, true, Started, NO, NO);
        let early_done = transition(started, A::OnboardingComplete).unwrap_err();
        assert!(
            early_done.reason.contains(
                "only after \"Syncing settings to complete onboarding\"; onboarding reads \"Provider onboarding started\""
            ),
            "{early_done}"
        );
        assert_eq!(Up.to_string(), "Up");
        assert_eq!(NO.to_string(), "Not onboarded");
        assert_eq!(Complete.to_string(), "Onboarding Complete");
    }
}

//! The connection health check after onboarding: what one heartbeat found, and the Outbound
//! and Inbound statuses that follow from it.
//!
//! A heartbeat goes out to the provider (its round trip times Outbound) and asks the provider to
//! call this instance back; Inbound is Up only when that call arrived here with a valid
//! signature. One missed heartbeat makes a direction Down at once: the check runs every interval,
//! so a person learns within one interval, and the next answered heartbeat brings it back.

use super::{transition, Action, CheckId, ConnectionStatus, LinkStatus, Refusal};

/// What one heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    /// The provider's answer's round trip in ms, or None when it did not answer (down, refused,
    /// an error, the time limit).
    pub outbound_ms: Option<u64>,
    /// The provider's call back reached our inbound endpoint and its signature checked out.
    pub inbound_arrived: bool,
}

/// Outbound and Inbound as `beat` shows them. A round trip above `slow_ms` is Slow.
pub fn link_statuses(beat: Beat, slow_ms: u64) -> (LinkStatus, LinkStatus) {
    let outbound = match beat.outbound_ms {
        None => LinkStatus::Down,
        Some(ms) if ms > slow_ms => LinkStatus::Slow,
        Some(_) => LinkStatus::Up,
    };
    let inbound = if beat.inbound_arrived {
        LinkStatus::Up
    } else {
        LinkStatus::Down
    };
    (outbound, inbound)
}

/// The record after `beat`: `Ok(None)` when nothing changed (no event, no history entry), the new
/// status when a direction changed, a refusal when the connection is not onboarded (a heartbeat
/// that raced an off-board or a new onboarding run writes nothing).
pub fn after_heartbeat(
    current: ConnectionStatus,
    beat: Beat,
    slow_ms: u64,
) -> Result<Option<ConnectionStatus>, Refusal> {
    let mut next = transition(current, Action::Heartbeat)?;
    (next.outbound, next.inbound) = link_statuses(beat, slow_ms);
    Ok((next != current).then_some(next))
}

/// A sentence for the history and the audit log: which direction changed, to what, and why.
pub fn change_reason(before: ConnectionStatus, after: ConnectionStatus, beat: Beat) -> String {
    let mut parts = Vec::new();
    if before.outbound != after.outbound {
        let why = match beat.outbound_ms {
            None => "the provider did not answer the heartbeat".to_string(),
            Some(ms) => format!("the heartbeat's round trip took {ms} ms"),
        };
        parts.push(format!(
            "Outbound {} → {} ({why})",
            before.outbound.label(),
            after.outbound.label()
        ));
    }
    if before.inbound != after.inbound {
        let why = if beat.inbound_arrived {
            "the provider's heartbeat call reached this instance"
        } else {
            "no heartbeat call from the provider reached this instance"
        };
        parts.push(format!(
            "Inbound {} → {} ({why})",
            before.inbound.label(),
            after.inbound.label()
        ));
    }
    parts.join("; ")
}

/// What a health change tells the admins: a direction went Down, or none is Down any more.
/// The connection health suite's checks whose failure means this instance cannot reach or use
/// the provider: Outbound is Down when one of them did not pass.
pub const OUTBOUND_CHECKS: [CheckId; 5] = [
    CheckId::Reachable,
    CheckId::Tls,
    CheckId::Protocol,
    CheckId::Credentials,
    CheckId::Heartbeat,
];

/// What a connection health scan found, as one heartbeat: the heartbeat check's own exchange
/// (None when it could not run: a check before it did not pass), with no answer when a check the
/// outbound direction needs found a problem, and no call back when the inbound check did.
/// `issue` says whether a check of the run found a problem (Failed, or could not tell); a check
/// that did not apply (TLS on a plain-HTTP address) is not one.
pub fn scan_beat(heartbeat: Option<Beat>, issue: impl Fn(CheckId) -> bool) -> Beat {
    let mut beat = heartbeat.unwrap_or(Beat {
        outbound_ms: None,
        inbound_arrived: false,
    });
    if OUTBOUND_CHECKS.iter().any(|c| issue(*c)) {
        beat.outbound_ms = None;
    }
    if issue(CheckId::Inbound) {
        beat.inbound_arrived = false;
    }
    beat
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alert {
    Down,
    Recovered,
}

/// The alert a change from `before` to `after` calls for, if any: one when the link goes Down
/// (either direction, from neither), one when it recovers (neither Down, from either); none for
/// Up ↔ Slow or for a change while it stays Down, so each change alerts at most once.
pub fn alert(before: ConnectionStatus, after: ConnectionStatus) -> Option<Alert> {
    let down =
        |s: ConnectionStatus| s.outbound == LinkStatus::Down || s.inbound == LinkStatus::Down;
    match (down(before), down(after)) {
        (false, true) => Some(Alert::Down),
        (true, false) => Some(Alert::Recovered),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConnectionState, Onboarding};

    fn onboarded() -> ConnectionStatus {
        ConnectionStatus {
            state: ConnectionState::Validated,
            registered: true,
            onboarding: Onboarding::Complete,
            outbound: LinkStatus::Up,
            inbound: LinkStatus::Up,
        }
    }

    const ANSWERED: Beat = Beat {
        outbound_ms: Some(40),
        inbound_arrived: true,
    };

    #[test]
    fn a_healthy_beat_on_a_healthy_link_changes_nothing() {
        assert_eq!(after_heartbeat(onboarded(), ANSWERED, 1000), Ok(None));
    }

    #[test]
    fn no_answer_is_down_both_ways_and_the_next_answer_brings_it_back() {
        let silent = Beat {
            outbound_ms: None,
            inbound_arrived: false,
        };
        let down = after_heartbeat(onboarded(), silent, 1000).unwrap().unwrap();
        assert_eq!(
            (down.outbound, down.inbound),
            (LinkStatus::Down, LinkStatus::Down)
        );
        // Nothing else moves: still Validated and onboarded.
        assert_eq!(down.state, ConnectionState::Validated);
        assert_eq!(down.onboarding, Onboarding::Complete);
        let back = after_heartbeat(down, ANSWERED, 1000).unwrap().unwrap();
        assert_eq!(back, onboarded());
        assert!(change_reason(down, back, ANSWERED).contains("Outbound Down → Up"));
    }

    #[test]
    fn a_late_answer_is_slow_and_the_threshold_itself_is_not() {
        let at = |ms| {
            link_statuses(
                Beat {
                    outbound_ms: Some(ms),
                    inbound_arrived: true,
                },
                1000,
            )
            .0
        };
        assert_eq!(at(1000), LinkStatus::Up);
        assert_eq!(at(1001), LinkStatus::Slow);
    }

    #[test]
    fn a_blocked_way_back_is_inbound_down_with_outbound_up() {
        let blocked = Beat {
            outbound_ms: Some(30),
            inbound_arrived: false,
        };
        let next = after_heartbeat(onboarded(), blocked, 1000)
            .unwrap()
            .unwrap();
        assert_eq!(
            (next.outbound, next.inbound),
            (LinkStatus::Up, LinkStatus::Down)
        );
        assert_eq!(
            change_reason(onboarded(), next, blocked),
            "Inbound Up → Down (no heartbeat call from the provider reached this instance)"
        );
    }

    #[test]
    fn the_admins_hear_once_when_it_goes_down_and_once_when_it_recovers() {
        let with = |outbound, inbound| ConnectionStatus {
            outbound,
            inbound,
            ..onboarded()
        };
        use LinkStatus::{Down, Slow, Up};
        assert_eq!(alert(with(Up, Up), with(Down, Down)), Some(Alert::Down));
        assert_eq!(alert(with(Up, Up), with(Up, Down)), Some(Alert::Down));
        // Still down, in another way: no second alert.
        assert_eq!(alert(with(Down, Down), with(Up, Down)), None);
        assert_eq!(alert(with(Up, Down), with(Up, Up)), Some(Alert::Recovered));
        assert_eq!(
            alert(with(Down, Down), with(Slow, Up)),
            Some(Alert::Recovered)
        );
        // Slow is not Down.
        assert_eq!(alert(with(Up, Up), with(Slow, Up)), None);
        assert_eq!(alert(with(Slow, Up), with(Up, Up)), None);
    }

    #[test]
    fn no_heartbeat_before_onboarding_is_complete() {
        let mut s = onboarded();
        for o in [
            Onboarding::NotStarted,
            Onboarding::Started,
            Onboarding::Syncing,
            Onboarding::Failed,
        ] {
            s.onboarding = o;
            assert!(after_heartbeat(s, ANSWERED, 1000).is_err(), "{o:?}");
        }
    }

    #[test]
    fn a_health_scan_is_read_as_a_beat_its_failed_checks_take_down() {
        let no_issue = |_: CheckId| false;
        assert_eq!(scan_beat(Some(ANSWERED), no_issue), ANSWERED);
        // The heartbeat could not run (a check before it failed): nothing is known to work.
        assert_eq!(
            scan_beat(None, no_issue),
            Beat {
                outbound_ms: None,
                inbound_arrived: false
            }
        );
        // Credentials refused: Outbound Down even if an echo got through.
        let creds_failed = |c: CheckId| c == CheckId::Credentials;
        assert_eq!(scan_beat(Some(ANSWERED), creds_failed).outbound_ms, None);
        assert!(scan_beat(Some(ANSWERED), creds_failed).inbound_arrived);
        // The provider cannot reach us: Inbound Down alone.
        let inbound_failed = |c: CheckId| c == CheckId::Inbound;
        assert_eq!(
            scan_beat(Some(ANSWERED), inbound_failed),
            Beat {
                outbound_ms: Some(40),
                inbound_arrived: false
            }
        );
        // A check that does not bear on the link (entitlements) leaves both Up.
        let entitlements_failed = |c: CheckId| c == CheckId::Entitlements;
        assert_eq!(scan_beat(Some(ANSWERED), entitlements_failed), ANSWERED);
        let (out, inb) = link_statuses(scan_beat(Some(ANSWERED), creds_failed), 1000);
        assert_eq!((out, inb), (LinkStatus::Down, LinkStatus::Up));
    }
}

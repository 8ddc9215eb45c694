//! What the live stream carries: every event is stored with a per-connection sequence number and
//! sent as the SSE `id`, so a client resumes exactly where it left off. And what the pages read
//! from the log they hold: pure folds over the events, so the panel's rules are tested here.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CheckResult, CheckStatus, ConnectionView};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// The record changed: a fresh snapshot of state and statuses.
    Connection { connection: ConnectionView },
    /// A scan run started or finished (`outcome` "passed" / "failed" when finished).
    Scan {
        run_id: i64,
        suite: String,
        outcome: Option<String>,
    },
    /// A check started (`result` None) or finished.
    Check {
        run_id: i64,
        check_id: String,
        name: String,
        result: Option<CheckResult>,
    },
    /// An onboarding status message, as the product words it.
    Onboarding {
        step: String,
        message: String,
        failed: bool,
    },
    /// A data migration started, moved on (a page of a table stored) or ended: every table's
    /// progress as it then stood, so the newest event alone says where it is.
    Migration {
        migration_id: i64,
        state: super::migration::MigrationState,
        tables: Vec<super::migration::TableProgress>,
        message: String,
        started_by: String,
    },
}

impl EventBody {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            EventBody::Connection { .. } => "connection",
            EventBody::Scan { .. } => "scan",
            EventBody::Check { .. } => "check",
            EventBody::Onboarding { .. } => "onboarding",
            EventBody::Migration { .. } => "migration",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConnectionEvent {
    pub connection_id: i64,
    pub seq: i64,
    #[serde(with = "crate::model::time")]
    pub at: chrono::DateTime<chrono::Utc>,
    pub body: EventBody,
}

/// Adds `e` to a log kept in sequence order, unless an event with its sequence number is already
/// there (a replay after reconnecting). An event older than the newest is put in its place.
pub fn insert_event(log: &mut Vec<ConnectionEvent>, e: ConnectionEvent) {
    if log.last().is_none_or(|last| e.seq > last.seq) {
        log.push(e);
    } else if !log.iter().any(|x| x.seq == e.seq) {
        log.push(e);
        log.sort_by_key(|x| x.seq);
    }
}

/// The newest sequence number held (0 for none): where a reconnect resumes.
pub fn last_seq(log: &[ConnectionEvent]) -> i64 {
    log.last().map_or(0, |e| e.seq)
}

/// The latest snapshot of the record the log carries, if any.
fn latest_snapshot(log: &[ConnectionEvent]) -> Option<&ConnectionView> {
    log.iter().rev().find_map(|e| match &e.body {
        EventBody::Connection { connection } => Some(connection),
        _ => None,
    })
}

/// The record as the page should show it: the log's latest snapshot when it is at least as new
/// as `loaded` (what the page read when it opened), `loaded` otherwise.
pub fn current_connection(log: &[ConnectionEvent], loaded: &ConnectionView) -> ConnectionView {
    latest_snapshot(log)
        .filter(|c| c.version >= loaded.version)
        .unwrap_or(loaded)
        .clone()
}

/// The record's version in the newest snapshot the log holds (None before any): a page reads
/// the record's history again when it moves, whoever made the change (a person, a scan, a
/// heartbeat, another replica).
pub fn latest_version(log: &[ConnectionEvent]) -> Option<i64> {
    latest_snapshot(log).map(|c| c.version)
}

/// How many events in the log say the health dashboard's data changed (a scan finished, or the
/// record changed): the dashboard reads again whenever this grows.
pub fn health_changes(log: &[ConnectionEvent]) -> usize {
    log.iter()
        .filter(|e| {
            matches!(
                &e.body,
                EventBody::Scan {
                    outcome: Some(_),
                    ..
                } | EventBody::Connection { .. }
            )
        })
        .count()
}

/// One onboarding status message, as the live panel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnboardingMessage {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub step: String,
    pub message: String,
    pub failed: bool,
}

/// The onboarding messages in the log, in its order.
pub fn onboarding_messages(log: &[ConnectionEvent]) -> Vec<OnboardingMessage> {
    log.iter()
        .filter_map(|e| match &e.body {
            EventBody::Onboarding {
                step,
                message,
                failed,
            } => Some(OnboardingMessage {
                seq: e.seq,
                at: e.at,
                step: step.clone(),
                message: message.clone(),
                failed: *failed,
            }),
            _ => None,
        })
        .collect()
}

/// One check of the latest scan run, as the live panel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckProgress {
    pub check_id: String,
    pub name: String,
    /// None while it runs.
    pub status: Option<CheckStatus>,
}

/// The checks of the latest scan run in the log, in the order they first reported; each shows
/// its latest report. Checks of earlier runs, or with no run announced, are left out.
pub fn latest_run_checks(log: &[ConnectionEvent]) -> Vec<CheckProgress> {
    let last_run = log.iter().rev().find_map(|e| match &e.body {
        EventBody::Scan { run_id, .. } => Some(*run_id),
        _ => None,
    });
    let mut rows: Vec<CheckProgress> = Vec::new();
    for e in log {
        let EventBody::Check {
            run_id,
            check_id,
            name,
            result,
        } = &e.body
        else {
            continue;
        };
        if Some(*run_id) != last_run {
            continue;
        }
        let status = result.as_ref().map(|r| r.status);
        match rows.iter_mut().find(|r| &r.check_id == check_id) {
            Some(row) => row.status = status,
            None => rows.push(CheckProgress {
                check_id: check_id.clone(),
                name: name.clone(),
                status,
            }),
        }
    }
    rows
}

/// After this many pre-onboarding runs failed in a row, the advice is to contact the Customer
/// Service Manager (the fixes on the dashboard have not been enough).
pub const CSM_AFTER_FAILED_RUNS: usize = 3;

/// The advice once validation has failed `in_a_row` times in a row; None before that.
pub fn csm_advice(in_a_row: usize) -> Option<String> {
    (in_a_row >= CSM_AFTER_FAILED_RUNS).then(|| {
        format!(
            "Validation has failed {in_a_row} times in a row. If the fixes on the Health Dashboard do not help, contact your Customer Service Manager."
        )
    })
}

/// How many of the latest finished pre-onboarding runs in the log failed, counting back from
/// the newest until one passed.
pub fn failed_validations_in_a_row(log: &[ConnectionEvent]) -> usize {
    log.iter()
        .rev()
        .filter_map(|e| match &e.body {
            EventBody::Scan {
                suite,
                outcome: Some(outcome),
                ..
            } if suite.as_str() == super::Suite::PreOnboarding.as_str() => Some(outcome.as_str()),
            _ => None,
        })
        .take_while(|o| *o == "failed")
        .count()
}

// The migration panel's fold: here, with the other folds over the log (migration's own module
// stays free of the log's types, which name it).
impl super::migration::MigrationView {
    /// The view after `event`, if it is about this migration or a newer one. Events carry every
    /// table's progress as it then stood (absolute counts, never increments), so applying them
    /// in sequence order, a replay included, always ends at the latest.
    pub fn apply(current: Option<Self>, event: &ConnectionEvent) -> Option<Self> {
        let EventBody::Migration {
            migration_id,
            state,
            tables,
            message,
            started_by,
        } = &event.body
        else {
            return current;
        };
        match current {
            Some(view) if view.id > *migration_id => Some(view),
            Some(view) if view.id == *migration_id && view.state.is_final() => Some(view),
            other => {
                let same = other.filter(|v| v.id == *migration_id);
                Some(Self {
                    id: *migration_id,
                    connection_id: event.connection_id,
                    state: *state,
                    // Counted here only by a server read: events never carry `stored`.
                    tables: tables.clone(),
                    started_by: started_by.clone(),
                    started_at: same.as_ref().map_or(event.at, |v| v.started_at),
                    finished_at: state.is_final().then_some(event.at),
                    detail: message.clone(),
                })
            }
        }
    }

    /// The latest read of the migration brought up to date with the live log.
    pub fn live(read: Option<Self>, log: &[ConnectionEvent]) -> Option<Self> {
        log.iter().fold(read, Self::apply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Onboarding;

    /// The SSE event names the browser's live panel listens for.
    #[test]
    fn each_event_has_the_stream_name_the_page_listens_for() {
        let onboarding = EventBody::Onboarding {
            step: "started".into(),
            message: "Provider onboarding started".into(),
            failed: false,
        };
        let scan = EventBody::Scan {
            run_id: 1,
            suite: "pre_onboarding".into(),
            outcome: None,
        };
        let check = EventBody::Check {
            run_id: 1,
            check_id: "tls".into(),
            name: "TLS".into(),
            result: None,
        };
        assert_eq!(onboarding.name(), "onboarding");
        assert_eq!(scan.name(), "scan");
        assert_eq!(check.name(), "check");
    }

    use crate::model::{ConnectionState, LinkStatus, Severity};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000 + secs, 0).unwrap()
    }

    fn event(seq: i64, body: EventBody) -> ConnectionEvent {
        ConnectionEvent {
            connection_id: 1,
            seq,
            at: at(seq),
            body,
        }
    }

    fn record(version: i64, onboarding: Onboarding) -> ConnectionView {
        ConnectionView {
            id: 1,
            company: "ServiceNow Impact".into(),
            url: "http://idi.example.com".into(),
            state: ConnectionState::Validated,
            registered: true,
            onboarding,
            outbound: LinkStatus::NotOnboarded,
            inbound: LinkStatus::NotOnboarded,
            version,
            created_at: at(0),
            updated_at: at(0),
        }
    }

    fn snapshot(seq: i64, version: i64, onboarding: Onboarding) -> ConnectionEvent {
        event(
            seq,
            EventBody::Connection {
                connection: record(version, onboarding),
            },
        )
    }

    fn said(seq: i64, message: &str) -> ConnectionEvent {
        event(
            seq,
            EventBody::Onboarding {
                step: "syncing".into(),
                message: message.into(),
                failed: false,
            },
        )
    }

    fn scan(seq: i64, run_id: i64, outcome: Option<&str>) -> ConnectionEvent {
        event(
            seq,
            EventBody::Scan {
                run_id,
                suite: "pre_onboarding".into(),
                outcome: outcome.map(str::to_string),
            },
        )
    }

    fn check(seq: i64, run_id: i64, id: &str, status: Option<CheckStatus>) -> ConnectionEvent {
        event(
            seq,
            EventBody::Check {
                run_id,
                check_id: id.into(),
                name: id.to_uppercase(),
                result: status.map(|status| CheckResult {
                    check_id: id.into(),
                    name: id.to_uppercase(),
                    severity: Severity::High,
                    status,
                    message: String::new(),
                    resolution: vec![],
                    article: String::new(),
                    duration_ms: 1,
                    retryable: false,
                    at: at(seq),
                }),
            },
        )
    }

    fn seqs(log: &[ConnectionEvent]) -> Vec<i64> {
        log.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn the_log_keeps_each_event_once_in_sequence_order() {
        let mut log = Vec::new();
        assert_eq!(last_seq(&log), 0);
        for seq in [1, 2, 3, 2, 5, 4, 5, 1] {
            insert_event(&mut log, said(seq, &format!("m{seq}")));
        }
        assert_eq!(seqs(&log), [1, 2, 3, 4, 5]);
        assert_eq!(last_seq(&log), 5);
        // The first copy of a sequence number is the one kept.
        insert_event(&mut log, said(3, "again"));
        assert_eq!(onboarding_messages(&log)[2].message, "m3");
    }

    #[test]
    fn the_record_shown_is_the_latest_snapshot_unless_the_page_read_a_newer_one() {
        let loaded = record(3, Onboarding::NotStarted);
        assert_eq!(current_connection(&[], &loaded), loaded);
        let log = [
            snapshot(1, 4, Onboarding::Started),
            said(2, "Provider onboarding started"),
            snapshot(3, 5, Onboarding::Syncing),
        ];
        assert_eq!(current_connection(&log, &loaded).version, 5);
        // An older snapshot than the page read (a replay of the backlog) changes nothing.
        let newer = record(7, Onboarding::Complete);
        assert_eq!(current_connection(&log, &newer), newer);
        // As new as the page read: the stream's copy.
        assert_eq!(
            current_connection(&log[..1], &record(4, Onboarding::NotStarted)).onboarding,
            Onboarding::Started
        );
    }

    #[test]
    fn the_latest_version_is_the_newest_snapshots() {
        assert_eq!(latest_version(&[]), None);
        assert_eq!(latest_version(&[said(1, "Onboarding Complete")]), None);
        assert_eq!(
            latest_version(&[
                snapshot(1, 4, Onboarding::Syncing),
                snapshot(2, 5, Onboarding::Complete),
                said(3, "Onboarding Complete"),
            ]),
            Some(5)
        );
    }

    #[test]
    fn onboarding_messages_are_listed_in_log_order_with_their_times() {
        assert!(onboarding_messages(&[]).is_empty());
        let mut log = Vec::new();
        for e in [
            said(4, "Syncing settings to complete onboarding"),
            snapshot(1, 2, Onboarding::Started),
            said(2, "Provider onboarding started"),
            event(
                5,
                EventBody::Onboarding {
                    step: "failed".into(),
                    message: "Onboarding failed".into(),
                    failed: true,
                },
            ),
            said(2, "Provider onboarding started"),
        ] {
            insert_event(&mut log, e);
        }
        let messages = onboarding_messages(&log);
        assert_eq!(
            messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
            [2, 4, 5]
        );
        assert_eq!(messages[0].message, "Provider onboarding started");
        assert_eq!(messages[0].at, at(2));
        assert_eq!(messages[1].step, "syncing");
        assert!(messages[2].failed && !messages[1].failed);
    }

    #[test]
    fn the_panel_shows_the_latest_runs_checks_each_at_its_latest_report() {
        use CheckStatus::{Failed, Passed};
        assert!(latest_run_checks(&[]).is_empty());
        // Checks with no run announced are not shown.
        assert!(latest_run_checks(&[check(1, 1, "url", None)]).is_empty());
        let log = [
            scan(1, 1, None),
            check(2, 1, "url", Some(Failed)),
            scan(3, 1, Some("failed")),
            scan(4, 2, None),
            check(5, 2, "url", None),
            check(6, 2, "tls", None),
            check(7, 2, "url", Some(Passed)),
            // A late report from the earlier run does not mix in.
            check(8, 1, "clock", Some(Failed)),
        ];
        let rows = latest_run_checks(&log);
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.check_id.as_str(), r.status))
            .collect();
        assert_eq!(got, [("url", Some(Passed)), ("tls", None)]);
        assert_eq!(rows[1].name, "TLS");
        // The run's finish does not clear its checks.
        let mut finished = log.to_vec();
        finished.push(scan(9, 2, Some("passed")));
        assert_eq!(latest_run_checks(&finished), rows);
    }

    #[test]
    fn the_dashboard_reads_again_on_each_finished_scan_or_record_change() {
        assert_eq!(health_changes(&[]), 0);
        let log = [
            scan(1, 1, None),
            check(2, 1, "url", Some(CheckStatus::Passed)),
            said(3, "Provider onboarding started"),
            scan(4, 1, Some("passed")),
            snapshot(5, 2, Onboarding::NotStarted),
        ];
        assert_eq!(health_changes(&log), 2);
    }

    #[test]
    fn the_customer_service_manager_is_named_after_three_failed_validations_in_a_row() {
        let failed = |seq, run| scan(seq, run, Some("failed"));
        assert_eq!(failed_validations_in_a_row(&[]), 0);
        let mut log = vec![failed(1, 1), failed(2, 2)];
        assert_eq!(failed_validations_in_a_row(&log), 2);
        assert_eq!(csm_advice(2), None);
        // A run still going does not count either way.
        log.push(scan(3, 3, None));
        assert_eq!(failed_validations_in_a_row(&log), 2);
        log.push(failed(4, 3));
        assert_eq!(failed_validations_in_a_row(&log), 3);
        let advice = csm_advice(3).expect("advice after three");
        assert!(
            advice.contains("3 times in a row") && advice.contains("Customer Service Manager"),
            "{advice}"
        );
        // A pass starts the count again; a connection health run is not a validation.
        log.push(scan(5, 4, Some("passed")));
        log.push(failed(6, 5));
        log.push(event(
            7,
            EventBody::Scan {
                run_id: 6,
                suite: "connection_health".into(),
                outcome: Some("failed".into()),
            },
        ));
        assert_eq!(failed_validations_in_a_row(&log), 1);
    }
}

#[cfg(test)]
mod migration_fold_tests {
    use super::*;
    use crate::model::migration::tests::{at, table, view};
    use crate::model::{MigrationState, MigrationView, TableProgress};

    fn event(
        seq: i64,
        id: i64,
        state: MigrationState,
        tables: Vec<TableProgress>,
    ) -> ConnectionEvent {
        ConnectionEvent {
            connection_id: 1,
            seq,
            at: at(seq),
            body: EventBody::Migration {
                migration_id: id,
                state,
                tables,
                message: format!("step {seq}"),
                started_by: "ada@example.com".into(),
            },
        }
    }
    #[test]
    fn events_move_the_view_on_and_a_replay_changes_nothing() {
        let read = view(3, MigrationState::Running, vec![table("a", 1000, 0, false)]);
        let log = vec![
            event(
                10,
                3,
                MigrationState::Running,
                vec![table("a", 1000, 500, false)],
            ),
            event(
                11,
                3,
                MigrationState::Running,
                vec![table("a", 1000, 1000, true)],
            ),
        ];
        let live = MigrationView::live(Some(read.clone()), &log).unwrap();
        assert_eq!(live.copied(), 1000);
        assert_eq!(
            live.started_at, read.started_at,
            "the start stays the read's"
        );
        // The same events again (a reconnect's replay) end at the same place.
        let twice: Vec<_> = log.iter().chain(log.iter()).cloned().collect();
        assert_eq!(MigrationView::live(Some(read), &twice).unwrap(), live);
    }

    #[test]
    fn an_older_migrations_events_do_not_touch_a_newer_one() {
        let read = view(5, MigrationState::Running, vec![table("a", 10, 0, false)]);
        let old = event(
            2,
            4,
            MigrationState::Completed,
            vec![table("a", 10, 10, true)],
        );
        assert_eq!(MigrationView::live(Some(read.clone()), &[old]), Some(read));
    }

    #[test]
    fn a_newer_migration_replaces_the_read_and_a_final_state_is_not_undone() {
        let read = view(1, MigrationState::Completed, vec![table("a", 10, 10, true)]);
        let newer = event(
            20,
            2,
            MigrationState::Running,
            vec![table("a", 10, 0, false)],
        );
        let live = MigrationView::live(Some(read.clone()), &[newer]).unwrap();
        assert_eq!((live.id, live.state), (2, MigrationState::Running));
        assert_eq!(live.finished_at, None);
        // A progress event replayed after the read saw the end does not bring it back to life.
        let stale = event(
            9,
            1,
            MigrationState::Running,
            vec![table("a", 10, 5, false)],
        );
        assert_eq!(
            MigrationView::live(Some(read.clone()), &[stale]),
            Some(read)
        );
        // Without a read, the log alone shows it.
        let cancelled = event(
            21,
            2,
            MigrationState::Cancelled,
            vec![table("a", 10, 5, false)],
        );
        let v = MigrationView::live(None, &[cancelled]).unwrap();
        assert_eq!(v.state, MigrationState::Cancelled);
        assert_eq!(v.finished_at, Some(at(21)));
    }
}

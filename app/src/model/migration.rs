//! Data migration: the provider's Impact tables copied into this instance's database, table by
//! table and page by page. The rules the server and the page share: what a migration's progress
//! reads as, which events move it on, and what may be done to it now. Pure.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::labels::labelled_enum;
use super::presentation::Tone;

/// Where a migration stands. Only a running one moves; the other three are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    Running,
    Completed,
    Cancelled,
    Failed,
}

// Stored in `data_migrations.state`; never change a string.
labelled_enum! {
    MigrationState { as_db, from_db, label }
    Running => "running", "Running";
    Completed => "completed", "Completed";
    Cancelled => "cancelled", "Cancelled";
    Failed => "failed", "Failed";
}

impl MigrationState {
    pub fn is_final(self) -> bool {
        self != Self::Running
    }

    pub fn tone(self) -> Tone {
        match self {
            Self::Running => Tone::Waiting,
            Self::Completed => Tone::Good,
            Self::Cancelled => Tone::Neutral,
            Self::Failed => Tone::Bad,
        }
    }
}

/// Records of one provider table read per page: large enough that a table of thousands takes a
/// handful of pages, small enough that each page's transaction stays short.
pub const PAGE_SIZE: usize = 500;
/// The most tables a provider may offer for migration, and the most records per table: bounds
/// on what a provider can make us store.
pub const MAX_TABLES: usize = 32;
pub const MAX_RECORDS_PER_TABLE: i64 = 1_000_000;

/// One table's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TableProgress {
    /// The provider's table name (`impact_account`).
    pub name: String,
    /// How many records the provider said the table holds when the migration started.
    pub total: i64,
    /// Records copied by this migration so far.
    pub copied: i64,
    /// Every page of it has been copied.
    pub done: bool,
    /// Records of this table now in this instance's database, counted there (not told): set
    /// once the migration has ended, so the admin can check it against `total`.
    #[serde(default)]
    pub stored: Option<i64>,
}

impl TableProgress {
    /// Whole percent copied (100 for an empty table that is done).
    pub fn percent(&self) -> u8 {
        percent(self.copied, self.total, self.done)
    }

    /// Counted here and equal to the provider's count.
    pub fn counts_match(&self) -> Option<bool> {
        self.stored.map(|s| s == self.total)
    }
}

fn percent(copied: i64, total: i64, done: bool) -> u8 {
    if total <= 0 {
        return if done { 100 } else { 0 };
    }
    let p = (copied.clamp(0, total) * 100) / total;
    // 100 % only once it is really done, never rounded up to it.
    u8::try_from(p)
        .unwrap_or(100)
        .min(if done { 100 } else { 99 })
}

/// A migration as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MigrationView {
    pub id: i64,
    pub connection_id: i64,
    pub state: MigrationState,
    pub tables: Vec<TableProgress>,
    pub started_by: String,
    #[serde(with = "crate::model::time")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::model::time::option", default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// What happened, in words a person can act on (the latest step's message).
    pub detail: String,
}

impl MigrationView {
    pub fn copied(&self) -> i64 {
        self.tables.iter().map(|t| t.copied).sum()
    }

    pub fn total(&self) -> i64 {
        self.tables.iter().map(|t| t.total).sum()
    }

    pub fn percent(&self) -> u8 {
        percent(
            self.copied(),
            self.total(),
            self.tables.iter().all(|t| t.done),
        )
    }

    /// Every table counted here equals the provider's count; None until counted.
    pub fn counts_match(&self) -> Option<bool> {
        self.tables
            .iter()
            .map(TableProgress::counts_match)
            .try_fold(true, |all, m| m.map(|m| all && m))
    }

    /// The table being copied now: the first one not done.
    pub fn current_table(&self) -> Option<&TableProgress> {
        if self.state.is_final() {
            return None;
        }
        self.tables.iter().find(|t| !t.done)
    }

    /// "2,400 of 9,800 records (24%)".
    pub fn summary(&self) -> String {
        format!(
            "{} of {} records ({}%)",
            grouped(self.copied()),
            grouped(self.total()),
            self.percent()
        )
    }
}

/// 9800 reads "9,800".
pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// Why a new migration may not start now, or None. `latest` is the connection's latest one.
pub fn start_refusal(latest: Option<&MigrationView>) -> Option<String> {
    latest
        .filter(|m| m.state == MigrationState::Running)
        .map(|m| {
            format!(
                "A data migration is already running ({}). Wait for it to finish, or cancel it first.",
                m.summary()
            )
        })
}

/// Why "Cancel" must be refused now, or None.
pub fn cancel_refusal(latest: Option<&MigrationView>) -> Option<String> {
    match latest {
        Some(m) if m.state == MigrationState::Running => None,
        Some(m) => Some(format!(
            "No data migration is running: the latest one is {}.",
            m.state.label().to_lowercase()
        )),
        None => Some("No data migration has been started.".into()),
    }
}

/// The words of a migration's end, from what it counted.
pub fn end_message(tables: &[TableProgress]) -> (MigrationState, String) {
    let mismatched: Vec<String> = tables
        .iter()
        .filter(|t| t.counts_match() == Some(false))
        .map(|t| {
            format!(
                "{} holds {} here but {} at the provider",
                t.name,
                grouped(t.stored.unwrap_or(0)),
                grouped(t.total)
            )
        })
        .collect();
    let total: i64 = tables.iter().map(|t| t.total).sum();
    if mismatched.is_empty() {
        (
            MigrationState::Completed,
            format!(
                "Data migration complete: {} tables, {} records, every count matches the provider's.",
                tables.len(),
                grouped(total)
            ),
        )
    } else {
        (
            MigrationState::Failed,
            format!(
                "Data migration finished, but the counts differ: {}. Start the data migration again; if they still differ, contact the Customer Service Manager.",
                mismatched.join("; ")
            ),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::TimeZone;

    use super::*;

    pub(crate) fn table(name: &str, total: i64, copied: i64, done: bool) -> TableProgress {
        TableProgress {
            name: name.into(),
            total,
            copied,
            done,
            stored: None,
        }
    }

    pub(crate) fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
    }

    pub(crate) fn view(
        id: i64,
        state: MigrationState,
        tables: Vec<TableProgress>,
    ) -> MigrationView {
        MigrationView {
            id,
            connection_id: 1,
            state,
            tables,
            started_by: "ada@example.com".into(),
            started_at: at(0),
            finished_at: None,
            detail: String::new(),
        }
    }

    #[test]
    fn states_round_trip() {
        for s in MigrationState::ALL {
            assert_eq!(MigrationState::from_db(s.as_db()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_db())
            );
        }
        assert!(!MigrationState::Running.is_final());
        assert!(MigrationState::Cancelled.is_final());
    }

    #[test]
    fn percent_reaches_100_only_when_done() {
        assert_eq!(table("a", 1000, 0, false).percent(), 0);
        assert_eq!(table("a", 1000, 250, false).percent(), 25);
        assert_eq!(table("a", 1000, 999, false).percent(), 99);
        assert_eq!(table("a", 1000, 1000, false).percent(), 99);
        assert_eq!(table("a", 1000, 1000, true).percent(), 100);
        assert_eq!(table("a", 0, 0, true).percent(), 100);
        assert_eq!(table("a", 0, 0, false).percent(), 0);
        // A provider that sends more than it announced never shows more than 100.
        assert_eq!(table("a", 10, 50, true).percent(), 100);
    }

    #[test]
    fn a_view_sums_its_tables() {
        let v = view(
            1,
            MigrationState::Running,
            vec![table("a", 2400, 2400, true), table("b", 7400, 100, false)],
        );
        assert_eq!(v.copied(), 2500);
        assert_eq!(v.total(), 9800);
        assert_eq!(v.summary(), "2,500 of 9,800 records (25%)");
        assert_eq!(v.current_table().map(|t| t.name.as_str()), Some("b"));
        assert_eq!(v.counts_match(), None);
    }

    #[test]
    fn grouped_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(grouped(-4200), "-4,200");
    }

    #[test]
    fn only_a_running_migration_refuses_a_start_and_allows_a_cancel() {
        let running = view(1, MigrationState::Running, vec![table("a", 10, 5, false)]);
        assert!(start_refusal(Some(&running))
            .unwrap()
            .contains("already running (5 of 10 records (50%))"));
        assert_eq!(cancel_refusal(Some(&running)), None);
        for s in [
            MigrationState::Completed,
            MigrationState::Cancelled,
            MigrationState::Failed,
        ] {
            let ended = view(1, s, vec![]);
            assert_eq!(start_refusal(Some(&ended)), None);
            assert!(cancel_refusal(Some(&ended))
                .unwrap()
                .contains(&s.label().to_lowercase()));
        }
        assert_eq!(start_refusal(None), None);
        assert!(cancel_refusal(None).is_some());
    }

    #[test]
    fn the_end_says_whether_every_count_matches() {
        let mut a = table("impact_account", 2400, 2400, true);
        a.stored = Some(2400);
        let mut b = table("impact_success_plan", 1800, 1800, true);
        b.stored = Some(1800);
        let (state, msg) = end_message(&[a.clone(), b.clone()]);
        assert_eq!(state, MigrationState::Completed);
        assert_eq!(
            msg,
            "Data migration complete: 2 tables, 4,200 records, every count matches the provider's."
        );
        b.stored = Some(1799);
        let (state, msg) = end_message(&[a, b]);
        assert_eq!(state, MigrationState::Failed);
        assert!(
            msg.contains("impact_success_plan holds 1,799 here but 1,800 at the provider"),
            "{msg}"
        );
    }
}

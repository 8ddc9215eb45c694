//! What the simulated provider serves: settings groups, entitlements and the data sample. Fixed
//! values, so that tests and screens can rely on them.
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Value};

/// The groups onboarding syncs, in order.
pub const SETTINGS_GROUPS: [&str; 3] = ["exchange_settings", "entitlements", "sync_definitions"];

/// What the authorisation page asks for, as shown to the named contact, and the scopes granted.
pub const ACCESS_ASKED: [(&str, &str); 3] = [
    ("Read exchange settings", "exchange_settings:read"),
    ("Replicate entitlements", "entitlements:replicate"),
    (
        "Send and receive sync messages",
        "sync_messages:send_receive",
    ),
];

pub fn scopes() -> Vec<&'static str> {
    ACCESS_ASKED.iter().map(|(_, scope)| *scope).collect()
}

/// The consumer's entitlements, each with `status`; none when `status` is None (the
/// `entitlement` fault decides which, `EntitlementFault::status`).
pub fn entitlements(status: Option<&str>, company: &str, consumer_id: &str) -> Vec<Value> {
    let Some(status) = status else {
        return Vec::new();
    };
    [("ent-impact-core", "Impact Core"), ("ent-service-exchange", "Service Exchange")]
        .into_iter()
        .map(|(id, name)| {
            json!({"id": id, "name": name, "status": status, "entity": company, "identity": consumer_id})
        })
        .collect()
}

/// One settings group's `settings` object, or None for a group that does not exist.
pub fn settings(group: &str, entitlements: Vec<Value>) -> Option<Value> {
    match group {
        "exchange_settings" => Some(json!({
            "auto_activate_new_items": true,
            "restrict_authorised_users": false,
            "max_authorised_users": 25,
            "auto_approval": true,
        })),
        "entitlements" => Some(json!({ "entitlements": entitlements })),
        "sync_definitions" => Some(json!({ "sync_definitions": [
            {"name": "Impact accounts", "table": "impact_account", "direction": "provider_to_consumer", "active": true},
            {"name": "Success plans", "table": "impact_success_plan", "direction": "provider_to_consumer", "active": true},
            {"name": "Engagement requests", "table": "impact_engagement_request", "direction": "bidirectional", "active": true},
        ]})),
        _ => None,
    }
}

/// The Impact tables the provider shares: name, record count, and how long ago the newest
/// record changed. Fixed, so tests and screens can rely on the numbers.
pub const TABLES: [(&str, u64, i64); 3] = [
    ("impact_account", 2_400, 5),
    ("impact_success_plan", 1_800, 60),
    ("impact_engagement_request", 5_600, 2),
];

/// The most records one page may ask for.
pub const MAX_PAGE: u64 = 1_000;

/// Each table's count and its newest record's time, a fixed time before the provider's clock,
/// so a freshness check sees recent data. The migration's counts are the same numbers.
pub fn data_sample(now: DateTime<Utc>) -> Value {
    let tables: Vec<Value> = TABLES
        .into_iter()
        .map(|(name, count, minutes_ago)| {
            let newest = now - TimeDelta::minutes(minutes_ago);
            json!({"name": name, "count": count, "newest": rfc3339(newest)})
        })
        .collect();
    json!({ "tables": tables })
}

/// What a migration may copy: every table with its record count.
pub fn data_tables() -> Value {
    let tables: Vec<Value> = TABLES
        .into_iter()
        .map(|(name, rows, _)| json!({"name": name, "rows": rows}))
        .collect();
    json!({ "tables": tables })
}

/// The records of `table` after the cursor `after` (the last record's position, as text), at
/// most `limit`, and the cursor of the next page (None after the last). None for a table that
/// does not exist or a cursor that is not one of ours.
pub fn data_page(
    table: &str,
    after: Option<&str>,
    limit: u64,
    now: DateTime<Utc>,
) -> Option<(Vec<Value>, Option<String>)> {
    let (_, rows, minutes_ago) = TABLES.into_iter().find(|(name, _, _)| *name == table)?;
    let start: u64 = match after {
        None => 0,
        Some(c) => c.parse().ok().filter(|n| *n <= rows)?,
    };
    let end = start.saturating_add(limit.clamp(1, MAX_PAGE)).min(rows);
    let newest = now - TimeDelta::minutes(minutes_ago);
    let records = (start..end)
        .map(|i| record(table, i + 1, rows, newest))
        .collect();
    let next = (end < rows).then(|| end.to_string());
    Some((records, next))
}

/// Record `n` (1-based) of `table`: plausible fields, the same every time. The last record is
/// the newest.
fn record(table: &str, n: u64, rows: u64, newest: DateTime<Utc>) -> Value {
    let age = i64::try_from(rows - n).unwrap_or(0);
    let updated = rfc3339(newest - TimeDelta::minutes(age * 7));
    let account = format!("ACC-{:05}", (n * 7919) % 2_400 + 1);
    let pick = |options: &[&'static str]| options[(n as usize) % options.len()];
    match table {
        "impact_account" => json!({
            "id": format!("ACC-{n:05}"),
            "name": format!("Account {n}"),
            "tier": pick(&["Gold", "Silver", "Bronze"]),
            "region": pick(&["EMEA", "AMER", "APJ"]),
            "updated_at": updated,
        }),
        "impact_success_plan" => json!({
            "id": format!("SP-{n:05}"),
            "account": account,
            "title": format!("Success plan {n}"),
            "status": pick(&["Draft", "Active", "Closed"]),
            "updated_at": updated,
        }),
        _ => json!({
            "id": format!("ER-{n:05}"),
            "account": account,
            "subject": format!("Engagement request {n}"),
            "state": pick(&["New", "In progress", "Resolved", "Closed"]),
            "updated_at": updated,
        }),
    }
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_has_settings_and_missing_entitlements_are_empty() {
        for group in SETTINGS_GROUPS {
            assert!(settings(group, vec![]).is_some(), "{group}");
        }
        assert!(settings("nope", vec![]).is_none());
        assert!(entitlements(None, "Acme", "c1").is_empty());
        let pending = entitlements(Some("pending"), "Acme", "c1");
        assert!(pending.iter().all(|e| e["status"] == "pending"));
    }

    #[test]
    fn pages_cover_a_table_once_in_order() {
        let now = Utc::now();
        for (table, rows, _) in TABLES {
            let mut ids = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let (records, next) = data_page(table, after.as_deref(), 700, now).unwrap();
                ids.extend(
                    records
                        .iter()
                        .map(|r| r["id"].as_str().unwrap().to_string()),
                );
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            assert_eq!(ids.len() as u64, rows, "{table}");
            let mut unique = ids.clone();
            unique.dedup();
            assert_eq!(unique.len(), ids.len(), "{table}: no record twice");
        }
        assert!(data_page("nope", None, 10, now).is_none());
        assert!(data_page("impact_account", Some("x"), 10, now).is_none());
        assert!(data_page("impact_account", Some("999999"), 10, now).is_none());
        // The end of the table is a valid cursor: an empty last page.
        let (records, next) = data_page("impact_account", Some("2400"), 10, now).unwrap();
        assert!(records.is_empty() && next.is_none());
        // The limit is bounded both ways.
        assert_eq!(
            data_page("impact_account", None, 0, now).unwrap().0.len(),
            1
        );
        assert_eq!(
            data_page("impact_account", None, 5_000, now)
                .unwrap()
                .0
                .len(),
            MAX_PAGE as usize
        );
    }
}

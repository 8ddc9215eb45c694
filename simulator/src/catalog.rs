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

/// Tables with fixed counts; the newest record is a fixed time before the provider's clock, so a
/// freshness check sees recent data.
pub fn data_sample(now: DateTime<Utc>) -> Value {
    let tables: Vec<Value> = [
        ("impact_account", 42, 5),
        ("impact_success_plan", 7, 60),
        ("impact_engagement_request", 128, 2),
    ]
    .into_iter()
    .map(|(name, count, minutes_ago)| {
        let newest = now - TimeDelta::minutes(minutes_ago);
        json!({"name": name, "count": count, "newest": rfc3339(newest)})
    })
    .collect();
    json!({ "tables": tables })
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
}

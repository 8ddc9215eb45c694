//! "Review synced settings": what onboarding pulled from the provider, group by group, read as
//! rows a person can scan (a setting's name in words and its value), whatever the group's shape.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One settings group as onboarding stored it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SyncedGroup {
    /// The provider's name for the group (`exchange_settings`).
    pub group: String,
    /// The same in words ("Exchange settings").
    pub title: String,
    #[serde(with = "crate::model::time")]
    pub synced_at: DateTime<Utc>,
    pub rows: Vec<SettingRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SettingRow {
    pub name: String,
    pub value: String,
}

/// A provider's key in words: "auto_activate_new_items" reads "Auto activate new items".
pub fn in_words(key: &str) -> String {
    let spaced = key.replace(['_', '-'], " ");
    let mut chars = spaced.trim().chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A value as one line: scalars as they read, "Yes"/"No" for booleans, an object as its fields
/// ("name: Impact accounts · active: Yes"), a list as its items.
fn one_line(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::Bool(true) => "Yes".into(),
        Value::Bool(false) => "No".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "None".into(),
        Value::Array(items) => items.iter().map(one_line).collect::<Vec<_>>().join(", "),
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| format!("{}: {}", in_words(k), one_line(v)))
            .collect::<Vec<_>>()
            .join(" · "),
    }
}

/// The rows of a stored group answer (`{"group", "settings": {…}}`, or the settings object
/// itself): one per setting, and one per item of a list of records ("Entitlements 2").
pub fn setting_rows(stored: &Value) -> Vec<SettingRow> {
    let settings = stored.get("settings").unwrap_or(stored);
    let Value::Object(fields) = settings else {
        return vec![SettingRow {
            name: "Settings".into(),
            value: one_line(settings),
        }];
    };
    let mut rows = Vec::new();
    for (key, value) in fields {
        match value {
            Value::Array(items) if items.iter().any(Value::is_object) => {
                for (i, item) in items.iter().enumerate() {
                    rows.push(SettingRow {
                        name: format!("{} {}", in_words(key), i + 1),
                        value: one_line(item),
                    });
                }
            }
            other => rows.push(SettingRow {
                name: in_words(key),
                value: one_line(other),
            }),
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(name: &str, value: &str) -> SettingRow {
        SettingRow {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn keys_read_as_words() {
        assert_eq!(
            in_words("auto_activate_new_items"),
            "Auto activate new items"
        );
        assert_eq!(in_words("sync-definitions"), "Sync definitions");
        assert_eq!(in_words(""), "");
    }

    #[test]
    fn scalar_settings_are_one_row_each() {
        let stored = json!({"group": "exchange_settings", "settings": {
            "auto_approval": true, "max_authorised_users": 25, "restrict_authorised_users": false
        }});
        assert_eq!(
            setting_rows(&stored),
            vec![
                row("Auto approval", "Yes"),
                row("Max authorised users", "25"),
                row("Restrict authorised users", "No"),
            ]
        );
    }

    #[test]
    fn a_list_of_records_is_one_row_per_record() {
        let stored = json!({"settings": {"sync_definitions": [
            {"active": true, "name": "Impact accounts"},
            {"active": false, "name": "Success plans"}
        ], "entitlements": []}});
        assert_eq!(
            setting_rows(&stored),
            vec![
                row("Entitlements", "None"),
                row("Sync definitions 1", "Active: Yes · Name: Impact accounts"),
                row("Sync definitions 2", "Active: No · Name: Success plans"),
            ]
        );
    }

    #[test]
    fn an_unexpected_shape_still_shows() {
        assert_eq!(
            setting_rows(&json!("plain")),
            vec![row("Settings", "plain")]
        );
        assert_eq!(
            setting_rows(&json!({"settings": {"tags": ["a", "b"], "none": null}})),
            vec![row("None", "—"), row("Tags", "a, b")]
        );
    }
}

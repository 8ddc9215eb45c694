//! "Review synced settings": the settings groups onboarding pulled from the provider, as stored,
//! read into rows by the model (`model::synced`).
use sqlx::Row;

use super::{clock, connections, error::ServiceError, AppState};
use crate::model::{in_words, setting_rows, SettingRow, SyncedGroup};

#[tracing::instrument(skip(state))]
pub async fn list(state: &AppState, id: i64) -> Result<Vec<SyncedGroup>, ServiceError> {
    // An unknown connection is a 404, not an empty list.
    connections::get(&state.db, id).await?;
    let rows = sqlx::query(
        "SELECT grp, body, synced_at FROM synced_settings WHERE connection_id = $1 \
         ORDER BY synced_at, grp",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let group: String = r.try_get("grp")?;
            let body: String = r.try_get("body")?;
            let rows = match serde_json::from_str(&body) {
                Ok(stored) => setting_rows(&stored),
                Err(e) => {
                    tracing::warn!(connection = id, %group, error = %e, "a stored settings group does not read as JSON");
                    vec![SettingRow {
                        name: "Settings".into(),
                        value: "Stored in a form this page cannot read; onboarding again replaces it.".into(),
                    }]
                }
            };
            Ok(SyncedGroup {
                title: in_words(&group),
                group,
                synced_at: clock::from_db(&r.try_get::<String, _>("synced_at")?)?,
                rows,
            })
        })
        .collect()
}

//! The digest of open issues, every `IMPACT_DIGEST_MINUTES` (60): one replica sends it per period
//! (it claims the period by moving its due time, as the heartbeats do). Each Impact app admin gets
//! every open issue that is not muted; each follower the open, unmuted issues they follow. Nobody
//! gets an empty digest.
use std::collections::BTreeMap;

use super::{accounts, clock, dashboard, error::ServiceError, issues, outbox, AppState};
use crate::model::dashboard::OpenIssue;

const NAME: &str = "digest";

/// Claims the period if it is due; the first call only sets the first due time.
async fn claim(state: &AppState) -> Result<bool, ServiceError> {
    let now = clock::now();
    let next = now
        + chrono::Duration::from_std(state.settings.digest_every)
            .unwrap_or_else(|_| chrono::Duration::hours(1));
    let created = sqlx::query(
        "INSERT INTO schedules (name, due_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(NAME)
    .bind(clock::to_db(next))
    .execute(&state.db.pool)
    .await?
    .rows_affected();
    if created == 1 {
        return Ok(false);
    }
    let moved = sqlx::query("UPDATE schedules SET due_at = $1 WHERE name = $2 AND due_at <= $3")
        .bind(clock::to_db(next))
        .bind(NAME)
        .bind(clock::to_db(now))
        .execute(&state.db.pool)
        .await?
        .rows_affected();
    Ok(moved == 1)
}

fn line(i: &OpenIssue, base: &str) -> String {
    format!(
        "- {} ({}, {} severity): {}; first detected {}, seen {}. {base}{}",
        i.name,
        i.company,
        i.severity.label().to_lowercase(),
        i.message,
        i.first_seen.format("%Y-%m-%d %H:%M UTC"),
        crate::model::counted(i.times_seen, "time", "times"),
        i.href
    )
}

/// Sends the digest if its period is due; returns how many emails were queued.
#[tracing::instrument(skip(state))]
pub async fn run_due(state: &AppState) -> Result<usize, ServiceError> {
    if !claim(state).await? {
        return Ok(0);
    }
    let now = clock::now();
    let view = dashboard::whole(state).await?;
    let mut work = BTreeMap::new();
    let mut open: Vec<(OpenIssue, Vec<String>)> = Vec::new();
    for i in view.issues {
        if let std::collections::btree_map::Entry::Vacant(slot) = work.entry(i.connection_id) {
            slot.insert(issues::of_connection(&state.db, i.connection_id).await?);
        }
        let w = work
            .get(&i.connection_id)
            .and_then(|m| m.get(&i.check_id))
            .cloned()
            .unwrap_or_default();
        if !w.is_muted(now) {
            open.push((i, w.followers));
        }
    }
    let mut tx = state.db.begin().await?;
    let mut to: BTreeMap<String, Vec<&OpenIssue>> = BTreeMap::new();
    for admin in accounts::admin_emails_in(&mut tx).await? {
        to.entry(admin.to_lowercase())
            .or_default()
            .extend(open.iter().map(|(i, _)| i));
    }
    for (i, followers) in &open {
        for f in followers {
            let list = to.entry(f.to_lowercase()).or_default();
            if !list.iter().any(|x| std::ptr::eq(*x, i)) {
                list.push(i);
            }
        }
    }
    let base = &state.settings.public_url;
    let mut sent = 0;
    for (email, list) in to.iter().filter(|(_, l)| !l.is_empty()) {
        let body = format!(
            "Hello,\n\n{} open on the Impact connections you watch:\n\n{}\n\nThe Health Dashboard: {base}/health\n\nMuted issues are left out until their mute ends.\n",
            crate::model::counted(list.len(), "issue", "issues"),
            list.iter().map(|i| line(i, base)).collect::<Vec<_>>().join("\n")
        );
        outbox::queue(
            &mut tx,
            email,
            &format!("Open issues digest: {} open", list.len()),
            &body,
            None,
        )
        .await?;
        sent += 1;
    }
    tx.commit().await?;
    if sent > 0 {
        outbox::deliver_pending(state);
    }
    tracing::info!(sent, "issues digest");
    Ok(sent)
}

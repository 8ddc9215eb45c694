//! Guided Setup's "Start data migration": the latest migration as read, kept up to date by the
//! connection's live stream (each event carries every table's progress), with Start and Cancel.
//! When the stream says it ended, the section is read again for the counts made here.
use leptos::prelude::*;

use crate::{
    api::{cancel_migration, start_migration},
    components::{
        live::{LinkNotice, Live},
        status::{fmt_time, ErrorBanner},
        table::TableScroll,
    },
    model::{grouped, ApiError, MigrationState, MigrationView, TableProgress},
};

/// The panel's two buttons, and the latest refusal of either.
#[derive(Clone, Copy)]
pub struct MigrationActions {
    pub start: Action<(), Result<MigrationView, ApiError>>,
    pub cancel: Action<(), Result<MigrationView, ApiError>>,
    pub refused: RwSignal<Option<ApiError>>,
}

impl MigrationActions {
    /// Made with the page (they outlive every reading of the section): a success has the
    /// section read again through `changed`; a refusal stays shown until the next answer.
    pub fn new(changed: RwSignal<u32>) -> Self {
        let this = Self {
            start: Action::new(|_: &()| start_migration()),
            cancel: Action::new(|_: &()| cancel_migration()),
            refused: RwSignal::new(None),
        };
        for action in [this.start, this.cancel] {
            Effect::new(move |_| {
                if let Some(answer) = action.value().get() {
                    let ok = answer.is_ok();
                    this.refused.set(answer.err());
                    if ok {
                        changed.update(|n| *n += 1);
                    }
                }
            });
        }
        this
    }
}

#[component]
pub fn MigrationPanel(
    read: Option<MigrationView>,
    manage: bool,
    live: Live,
    actions: MigrationActions,
    /// Bumped to read the section again.
    changed: RwSignal<u32>,
) -> impl IntoView {
    let was = read.as_ref().map(|m| (m.id, m.state));
    let current = Memo::new(move |_| {
        live.events
            .with(|log| MigrationView::live(read.clone(), log))
    });
    // The stream says it started or ended where the read did not: read again (counts, status).
    Effect::new(move |_| {
        let now = current.with(|m| m.as_ref().map(|m| (m.id, m.state)));
        if now != was && now.is_some_and(|(_, s)| s.is_final()) {
            changed.update(|n| *n += 1);
        }
    });
    let error = move || {
        actions
            .refused
            .get()
            .map(|error| view! { <ErrorBanner error/> })
    };
    view! {
        <LinkNotice link=live.link/>
        {move || current.get().map(|m| view! { <Progress m/> })}
        {error}
        {move || buttons(manage, current.with(|m| m.as_ref().map(|m| m.state)), actions)}
    }
}

fn buttons(
    manage: bool,
    state: Option<MigrationState>,
    actions: MigrationActions,
) -> impl IntoView {
    if !manage {
        return view! { <p class="muted">"An IDI admin starts the data migration."</p> }.into_any();
    }
    let busy = move || actions.start.pending().get() || actions.cancel.pending().get();
    if state == Some(MigrationState::Running) {
        view! {
            <div class="actions">
                <button type="button" class="secondary" data-action="cancel-migration" disabled=busy
                    on:click=move |_| { actions.cancel.dispatch(()); }>
                    "Cancel data migration"
                </button>
            </div>
        }
        .into_any()
    } else {
        let label = if state.is_some() {
            "Start data migration again"
        } else {
            "Start data migration"
        };
        view! {
            <div class="actions">
                <button type="button" data-action="start-migration" disabled=busy
                    on:click=move |_| { actions.start.dispatch(()); }>
                    {move || if actions.start.pending().get() { "Starting…" } else { label }}
                </button>
            </div>
        }
        .into_any()
    }
}

#[component]
fn Progress(m: MigrationView) -> impl IntoView {
    let state = m.state;
    let banner_class = match state {
        MigrationState::Completed => "banner ok",
        MigrationState::Failed => "banner error",
        _ => "banner",
    };
    let role = if state == MigrationState::Failed {
        "alert"
    } else {
        "status"
    };
    let when = match m.finished_at {
        Some(end) => format!(
            "Started by {} on {}; ended {}.",
            m.started_by,
            fmt_time(m.started_at),
            fmt_time(end)
        ),
        None => format!("Started by {} on {}.", m.started_by, fmt_time(m.started_at)),
    };
    let counted = m.tables.iter().any(|t| t.stored.is_some());
    let rows = m
        .tables
        .iter()
        .map(|t| table_row(t, counted))
        .collect_view();
    view! {
        <div class="migration" data-testid="migration" data-state=state.as_db() data-id=m.id>
            <p>
                <span class=format!("pill {} {}", state.as_db(), state.tone().class()) data-testid="migration-state">{state.label()}</span>
                " "
                <span data-testid="migration-summary">{m.summary()}</span>
            </p>
            <progress max="100" value=m.percent() aria-label="Data migration progress"></progress>
            <TableScroll label="Tables being migrated">
                <table data-testid="migration-tables">
                    <thead><tr>
                        <th>"Table"</th><th class="num">"At the provider"</th><th class="num">"Copied"</th><th>"Progress"</th>
                        {counted.then(|| view! { <th class="num">"In this instance"</th> })}
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </TableScroll>
            <div class=banner_class role=role data-testid="migration-detail">{m.detail.clone()}</div>
            <p class="muted">{when}</p>
        </div>
    }
}

fn table_row(t: &TableProgress, counted: bool) -> impl IntoView {
    let stored = counted.then(|| {
        let (text, class) = match (t.stored, t.counts_match()) {
            (Some(n), Some(true)) => (format!("{} ✓", grouped(n)), "num ok"),
            (Some(n), _) => (format!("{} ✗", grouped(n)), "num bad"),
            (None, _) => ("—".to_string(), "num"),
        };
        view! { <td class=class data-label="In this instance" data-testid="stored">{text}</td> }
    });
    view! {
        <tr data-table=t.name.clone() data-done=t.done.to_string()>
            <td data-label="Table">{t.name.clone()}</td>
            <td class="num" data-label="At the provider" data-testid="total">{grouped(t.total)}</td>
            <td class="num" data-label="Copied" data-testid="copied">{grouped(t.copied)}</td>
            <td data-label="Progress"><progress max="100" value=t.percent() aria-label=format!("{} progress", t.name)></progress>{format!(" {}%", t.percent())}</td>
            {stored}
        </tr>
    }
}

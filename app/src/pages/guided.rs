//! Guided Setup, registration section: the activities in order with their status, who completed
//! each and when, "Mark Complete" (Impact app admins), and the two verifications with their
//! results. Everything shown comes from one server read, so the server-rendered page and the
//! hydrated one are identical; after any change the read is simply repeated.
use leptos::prelude::*;
use leptos_meta::Title;

use super::migration::{MigrationActions, MigrationPanel};
use crate::{
    api::{guided_setup, mark_complete, me, verify_connection, verify_data},
    components::live::{self, Live},
    components::status::{fmt_time, ErrorBanner, LinkPill, StatePill},
    model::{
        Access, ActivityId, ActivityView, ApiError, ConnectionView, GuidedSetupView, LinkStatus,
        VerificationView,
    },
};

/// What the page may offer this user (the server checks again). Travels with the page's data
/// from SSR to hydration, so both render the same buttons.
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Rights {
    /// Impact app admin: Mark Complete.
    admin: bool,
    /// IDI admin: run the verifications, open the registration screens.
    manage: bool,
}

/// The page's three buttons.
#[derive(Clone, Copy)]
struct Actions {
    /// Carries the activity back with the answer, to say where a refusal is fixed.
    mark: Action<ActivityId, (ActivityId, Result<GuidedSetupView, ApiError>)>,
    verify_connection: Action<(), Result<VerificationView, ApiError>>,
    verify_data: Action<(), Result<VerificationView, ApiError>>,
    /// The activity an action just succeeded on: it takes focus when the list shows it again,
    /// so the person lands on its new status (and result) instead of a button that is gone.
    focus: RwSignal<Option<ActivityId>>,
    /// "Start data migration" and its live progress.
    migration: MigrationActions,
    live: Live,
    changed: RwSignal<u32>,
}

/// The Provider connection form for this connection, or the list when there is none yet.
fn form_href(connection: Option<&ConnectionView>) -> String {
    connection
        .map(|c| format!("/connections/{}", c.id))
        .unwrap_or_else(|| "/connections".to_string())
}

#[component]
pub fn GuidedSetup() -> impl IntoView {
    // Bumped after every change made here, so the section is read again.
    let changed = RwSignal::new(0u32);
    let data = Resource::new(
        move || changed.get(),
        |_| async move {
            let setup = guided_setup().await?;
            let user = me().await?;
            let rights = Rights {
                admin: user.as_ref().is_some_and(|u| u.may(Access::Administer)),
                manage: user
                    .as_ref()
                    .is_some_and(|u| u.may(Access::ManageConnection)),
            };
            Ok::<_, ApiError>((setup, rights))
        },
    );
    // The last refusal, with the activity it concerns (to say where to fix it).
    let refusal = RwSignal::new(None::<(ActivityId, ApiError)>);
    let actions = Actions {
        mark: Action::new(|activity: &ActivityId| {
            let activity = *activity;
            async move { (activity, mark_complete(activity.as_str().to_string()).await) }
        }),
        verify_connection: Action::new(|_: &()| async move { verify_connection().await }),
        verify_data: Action::new(|_: &()| async move { verify_data().await }),
        focus: RwSignal::new(None),
        migration: MigrationActions::new(changed),
        live: Live::new(),
        changed,
    };
    // The followed connection's live stream: a data migration's progress arrives on it.
    // (A memo: the effect re-runs, closing the stream, only when the followed connection changes,
    // not on every reading of the section.)
    let followed = Memo::new(move |_| {
        data.get()
            .and_then(|r| r.ok())
            .and_then(|(setup, _)| setup.connection.map(|c| c.id))
            .unwrap_or(0)
    });
    Effect::new(move |prev: Option<i64>| {
        let id = followed.get();
        if prev != Some(id) && id > 0 {
            live::connect(id, actions.live);
        }
        id
    });
    let settle = move |activity: ActivityId, error: Option<ApiError>| {
        // A refusal's banner takes focus instead.
        actions.focus.set(error.is_none().then_some(activity));
        refusal.set(error.map(|e| (activity, e)));
        changed.update(|n| *n += 1);
    };
    Effect::new(move |_| {
        if let Some((activity, r)) = actions.mark.value().get() {
            settle(activity, r.err());
        }
    });
    Effect::new(move |_| {
        if let Some(r) = actions.verify_connection.value().get() {
            settle(ActivityId::VerifyConnection, r.err());
        }
    });
    Effect::new(move |_| {
        if let Some(r) = actions.verify_data.value().get() {
            settle(ActivityId::VerifyData, r.err());
        }
    });
    view! {
        <section class="card" data-testid="guided-setup">
            <Title text=crate::model::page_title(&["Guided Setup"])/>
            <h1>"Guided Setup"</h1>
            <Transition fallback=|| view! { <p class="muted">"Loading Guided Setup…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok((setup, rights)) => view! { <Registration setup rights actions refusal/> }.into_any(),
                        Err(e) => view! { <ErrorBanner error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Registration(
    setup: GuidedSetupView,
    rights: Rights,
    actions: Actions,
    refusal: RwSignal<Option<(ActivityId, ApiError)>>,
) -> impl IntoView {
    let done = setup.completed_count();
    let total = setup.activities.len();
    let fix_href = form_href(setup.connection.as_ref());
    let banner = move || {
        refusal.get().map(|(activity, error)| {
            let fix = activity
                .fixed_on_connection_form()
                .then(|| fix_href.clone());
            view! {
                <ErrorBanner error/>
                {fix.map(|href| view! {
                    <p data-testid="refusal-fix">
                        <a href=href>"Open the Provider connection form"</a>
                        " to fix it, then come back here."
                    </p>
                })}
            }
        })
    };
    let items = setup
        .activities
        .iter()
        .cloned()
        .map(|activity| view! { <Activity activity setup=setup.clone() rights actions/> })
        .collect_view();
    view! {
        <h2>"Registration"</h2>
        <p class="muted" data-testid="progress">{format!("{done} of {total} activities complete. Activities are done in order; each one unlocks the next.")}</p>
        {banner}
        <ol class="activities" data-testid="activities">{items}</ol>
    }
}

#[component]
fn Activity(
    activity: ActivityView,
    setup: GuidedSetupView,
    rights: Rights,
    actions: Actions,
) -> impl IntoView {
    let id = activity.id;
    let status = activity.status;
    let open = status.is_open();
    let completed = activity
        .completed_by
        .clone()
        .zip(activity.completed_at)
        .map(|(who, at)| {
            view! { <p class="muted" data-testid="completed">{format!("Completed by {who} on {}", fmt_time(at))}</p> }
        });
    let markable = rights.admin && setup.offers_mark_complete(id);
    let mark = actions.mark;
    let mark_button = markable.then(|| {
        view! {
            <button type="button" data-action="mark-complete" disabled=move || mark.pending().get()
                on:click=move |_| { mark.dispatch(id); }>
                "Mark Complete"
            </button>
        }
    });
    let body = if open {
        details(id, &setup, rights, actions).into_any()
    } else {
        ().into_any()
    };
    // The item is named by its title and described by its status, so it reads as
    // "Verify the connection, Complete".
    let node = NodeRef::<leptos::html::Li>::new();
    Effect::new(move |_| {
        if actions.focus.get() == Some(id) {
            if let Some(el) = node.get() {
                let _ = el.focus();
            }
        }
    });
    let title_id = format!("activity-{}-title", id.as_str());
    let status_id = format!("activity-{}-status", id.as_str());
    view! {
        <li class=format!("activity {}", status.as_str()) id=format!("activity-{}", id.as_str()) tabindex="-1" node_ref=node
            data-testid=format!("activity-{}", id.as_str()) data-status=status.as_str()
            aria-labelledby=title_id.clone() aria-describedby=status_id.clone()>
            <div class="activity-head">
                <h3 id=title_id.clone()>{activity.title.clone()}</h3>
                <span class=format!("pill {} {}", status.as_str(), status.tone().class()) id=status_id.clone() data-testid="activity-status">{status.label()}</span>
            </div>
            <p class="summary">{activity.summary.clone()}</p>
            {completed}
            {(!open).then(|| view! { <p class="muted">"Complete the activity before this one to unlock it."</p> })}
            {body}
            {mark_button.map(|b| view! { <div class="actions">{b}</div> })}
        </li>
    }
}

/// What each unlocked activity offers besides its summary.
fn details(
    id: ActivityId,
    setup: &GuidedSetupView,
    rights: Rights,
    actions: Actions,
) -> impl IntoView {
    match id {
        ActivityId::Learn => ().into_any(),
        ActivityId::Register => view! {
            <dl class="fields options">
                <dt>"Automated registration"</dt>
                <dd>"The preferred way where the provider offers it: it creates the registration link, checks the registration status and creates the provider connection. This provider instance uses manual registration."</dd>
                <dt>"Manual registration"</dt>
                <dd>
                    "The provider initiates a registration for the named contact administrator, who receives the welcome email with its \"Connect with Impact IDI\" link. "
                    {crate::model::NO_WELCOME_EMAIL} " "
                    {if rights.manage {
                        view! { <a class="button secondary" href="/registrations" data-testid="start-register">"Start"</a> }.into_any()
                    } else {
                        view! { <span class="muted">"An IDI admin initiates it on the Instance registration screen."</span> }.into_any()
                    }}
                </dd>
            </dl>
        }
        .into_any(),
        ActivityId::Establish => establish(setup).into_any(),
        ActivityId::VerifyConnection => {
            connection_check(setup, rights.manage, actions.verify_connection).into_any()
        }
        ActivityId::VerifyData => data_check(setup, rights.manage, actions.verify_data).into_any(),
        ActivityId::MigrateData => view! {
            <MigrationPanel read=setup.migration.clone() manage=rights.manage live=actions.live
                actions=actions.migration changed=actions.changed/>
        }
        .into_any(),
    }
}

fn establish(setup: &GuidedSetupView) -> impl IntoView {
    let href = form_href(setup.connection.as_ref());
    // What is still missing, named, until the activity is complete.
    let missing = setup.establish_missing();
    let record = setup.connection.clone().map(|c| {
        view! {
            <table class="compact" data-testid="establish-connection">
                <tbody>
                    <tr><th scope="row">"Company"</th><td>{c.company.clone()}</td></tr>
                    <tr><th scope="row">"State"</th><td><StatePill state=c.state/></td></tr>
                    <tr><th scope="row">"Outbound status"</th><td><LinkPill status=c.outbound testid="establish-outbound"/></td></tr>
                    <tr><th scope="row">"Inbound status"</th><td><LinkPill status=c.inbound testid="establish-inbound"/></td></tr>
                </tbody>
            </table>
        }
    });
    let label = if setup.connection.is_some() {
        "Open the Provider connection form"
    } else {
        "Start"
    };
    view! {
        {record}
        {missing.map(|m| view! { <div class="banner warn" data-testid="establish-missing">{m}</div> })}
        <div class="actions">
            <a class="button secondary" href=href data-testid="start-establish">{label}</a>
        </div>
    }
}

fn run_button(
    manage: bool,
    run: Action<(), Result<VerificationView, ApiError>>,
    label: &'static str,
    action: &'static str,
) -> impl IntoView {
    if manage {
        view! {
            <div class="actions">
                <button type="button" class="secondary" data-action=action disabled=move || run.pending().get()
                    on:click=move |_| { run.dispatch(()); }>
                    {move || if run.pending().get() { "Running…" } else { label }}
                </button>
            </div>
        }
        .into_any()
    } else {
        view! { <p class="muted">"An IDI admin runs this verification."</p> }.into_any()
    }
}

fn outcome_banner(check: &VerificationView, testid: &'static str) -> impl IntoView {
    let class = if check.ok {
        "banner ok"
    } else {
        "banner error"
    };
    let role = if check.ok { "status" } else { "alert" };
    view! { <div class=class role=role data-testid=testid data-ok=check.ok.to_string()>{check.detail.clone()}</div> }
}

fn checked_line(check: &VerificationView) -> impl IntoView {
    view! { <p class="muted">{format!("Last run {} by {}.", fmt_time(check.at), check.run_by)}</p> }
}

fn connection_check(
    setup: &GuidedSetupView,
    manage: bool,
    run: Action<(), Result<VerificationView, ApiError>>,
) -> impl IntoView {
    let check = setup.connection_check.clone();
    let observed = |status: Option<LinkStatus>, testid: &'static str| match status {
        Some(status) => view! { <LinkPill status testid/> }.into_any(),
        None => view! { <span class="muted" data-testid=testid>"Not tested"</span> }.into_any(),
    };
    let links = setup.observed_links();
    let outbound = observed(links.outbound, "check-outbound");
    let inbound = observed(links.inbound, "check-inbound");
    let round_trip = check
        .as_ref()
        .and_then(VerificationView::round_trip_ms)
        .map(|ms| format!("{ms} ms"))
        .unwrap_or_else(|| "—".to_string());
    view! {
        <table class="compact" data-testid="connection-check">
            <tbody>
                <tr><th scope="row">"Outbound status"</th><td>{outbound}</td></tr>
                <tr><th scope="row">"Inbound status"</th><td>{inbound}</td></tr>
                <tr><th scope="row">"Round trip"</th><td data-testid="round-trip">{round_trip}</td></tr>
            </tbody>
        </table>
        {check.as_ref().map(|c| view! { {outcome_banner(c, "connection-check-result")} {checked_line(c)} })}
        {run_button(manage, run, "Verify the connection", "verify-connection")}
    }
}

fn data_check(
    setup: &GuidedSetupView,
    manage: bool,
    run: Action<(), Result<VerificationView, ApiError>>,
) -> impl IntoView {
    let check = setup.data_check.clone();
    let tables = check.as_ref().filter(|c| !c.tables.is_empty()).map(|c| {
        let rows = c
            .tables
            .iter()
            .map(|t| {
                view! {
                    <tr data-table=t.name.clone()>
                        <td>{t.name.clone()}</td>
                        <td class="num">{t.count}</td>
                        <td>{t.newest.map(fmt_time).unwrap_or_else(|| "—".to_string())}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table data-testid="data-sample">
                <thead><tr><th>"Table"</th><th class="num">"Records"</th><th>"Newest record"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
    });
    view! {
        {tables}
        {check.as_ref().map(|c| view! { {outcome_banner(c, "data-check-result")} {checked_line(c)} })}
        {run_button(manage, run, "Verify Impact data connection", "verify-data")}
    }
}

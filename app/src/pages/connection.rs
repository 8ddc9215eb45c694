//! An existing Provider connection: the form, the actions the state allows, the live status
//! panel (checks, onboarding messages) and the history.
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::{connection_form::CompanyPicker, off_board::OffBoardConfirm};
use crate::{
    api::{
        act_on_connection, connect_to_provider, connection_history, get_connection, list_companies,
        save_connection,
    },
    components::{
        live::{self, LinkNotice, Live},
        outcome::unplaced,
        status::{fmt_time, ErrorBanner, LinkPill, StatePill},
        table::TableScroll,
    },
    model::{
        allowed_user_actions, csm_advice, current_connection, failed_validations_in_a_row,
        latest_run_checks, latest_version, off_boarded_notice, onboarding_messages, transition,
        Action as Step, ApiError, CompanyName, ConnectionAction, ConnectionState, ConnectionView,
        Onboarding, UpdateConnection,
    },
};

#[component]
pub fn Connection() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(super::connection_id);
    // Bumped after a change made on this page, so the record is read again.
    let changed = RwSignal::new(0u32);
    let data = Resource::new(
        move || (id(), changed.get()),
        |(id, _)| async move {
            let conn = get_connection(id).await?;
            let companies = list_companies().await?;
            let manage = crate::api::me()
                .await?
                .is_some_and(|u| u.may(crate::model::Access::ManageConnection));
            Ok::<_, ApiError>((conn, companies, manage))
        },
    );
    let live = Live::new();
    Effect::new(move |prev: Option<i64>| {
        let id = id();
        if prev != Some(id) && id > 0 {
            live::connect(id, live);
        }
        id
    });
    // The history is read again whenever the record changes, whoever changed it: a change made
    // here, or one the live stream reports (a scan, a heartbeat, another person or replica).
    let moved = Memo::new(move |_| live.events.with(|log| latest_version(log)));
    let history = Resource::new(
        move || (id(), changed.get(), moved.get()),
        |(id, _, _)| connection_history(id),
    );
    // Made here with the others, not inside the resolved view, so the server's render and the
    // browser's hydration create the page's resources in the same order.
    let synced = Resource::new(
        move || (id(), moved.get()),
        |(id, _)| crate::api::synced_settings(id),
    );
    view! {
        <Suspense fallback=|| view! { <section class="card"><p class="muted">"Loading the connection…"</p></section> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok((conn, companies, manage)) => view! {
                        <ConnectionEditor conn companies changed manage live/>
                        <super::synced::SyncedSettings groups=synced/>
                        <section class="card">
                            <h2 id="history-title">"History"</h2>
                            <Transition fallback=|| view! { <p class="muted">"Loading the history…"</p> }>
                                {move || Suspend::new(async move {
                                    match history.await {
                                        Ok(history) => view! { <HistoryTable history/> }.into_any(),
                                        Err(e) => view! { <ErrorBanner error=e/> }.into_any(),
                                    }
                                })}
                            </Transition>
                        </section>
                    }.into_any(),
                    Err(e) => view! {
                        <section class="card">
                            <Title text=crate::model::page_title(&["Provider connection"])/>
                            <h1>"Provider connection"</h1>
                            <ErrorBanner error=e/>
                            <p><a href="/connections">"Back to the Connections list"</a></p>
                        </section>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn HistoryTable(history: Vec<crate::model::HistoryEntry>) -> impl IntoView {
    view! {
        <TableScroll label="History">
            <table data-testid="history" aria-labelledby="history-title">
                <thead><tr><th>"When"</th><th>"Who"</th><th>"What"</th><th>"From"</th><th>"To"</th><th>"Why"</th></tr></thead>
                <tbody>
                    {history.into_iter().map(|h| view! {
                        <tr>
                            <td data-label="When">{fmt_time(h.at)}</td>
                            <td data-label="Who">{h.actor}</td>
                            <td data-label="What">{h.action}</td>
                            <td data-label="From">{h.from_state.label()}</td>
                            <td data-label="To">{h.to_state.label()}</td>
                            <td data-label="Why" class="long">{h.reason}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </TableScroll>
    }
}

#[component]
fn ConnectionEditor(
    conn: ConnectionView,
    companies: Vec<crate::model::CompanyView>,
    changed: RwSignal<u32>,
    /// The user may change the connection (IDI admin).
    manage: bool,
    live: Live,
) -> impl IntoView {
    let id = conn.id;
    let confirming = RwSignal::new(false);
    let initial_company = conn.company.clone();
    let url = conn.url.clone();
    // The record as the live stream last described it (starts as loaded).
    let loaded = conn.clone();
    let current = Memo::new(move |_| live.events.with(|log| current_connection(log, &loaded)));
    let company = RwSignal::new(conn.company.clone());
    let query = use_query_map();
    let error = RwSignal::new(query.with_untracked(|q| q.get("error")).map(|m| ApiError {
        code: "authorisation".into(),
        message: m,
        field: None,
    }));
    let save = Action::new(move |(company, version): &(String, i64)| {
        let req = UpdateConnection {
            company: company.clone(),
            version: *version,
        };
        async move { save_connection(id, req).await }
    });
    let act = Action::new(move |(action, version): &(Step, i64)| {
        let req = ConnectionAction {
            action: *action,
            version: *version,
        };
        async move { act_on_connection(id, req).await }
    });
    let connect = Action::new(move |_: &()| async move { connect_to_provider(id).await });
    // After Save or an action, focus goes to the State it changed (the outcome). The page reads
    // the record again after a change, which renders this editor anew: the new one takes focus.
    let state_field = NodeRef::<leptos::html::Output>::new();
    let after_change = changed.get_untracked() > 0;
    Effect::new(move |done: Option<bool>| {
        if done == Some(true) || !after_change {
            return true;
        }
        state_field.get().map(|el| el.focus()).is_some()
    });
    let settle = move |r: Option<Result<ConnectionView, ApiError>>| match r {
        Some(Ok(_)) => {
            error.set(None);
            changed.update(|n| *n += 1);
        }
        Some(Err(e)) => error.set(Some(e)),
        None => {}
    };
    Effect::new(move |_| settle(save.value().get()));
    Effect::new(move |_| settle(act.value().get()));
    Effect::new(move |_| match connect.value().get() {
        // Off to the provider: the named contact authorises there and is sent back.
        // (Effects run only in the browser, so `window()` is there.)
        Some(Ok(url)) => {
            let _ = window().location().set_href(&url);
        }
        Some(Err(e)) => error.set(Some(e)),
        None => {}
    });

    // The shared state machine and the user's roles decide which buttons exist; the server
    // checks both again.
    let buttons = move || {
        let c = current.get();
        let status = c.status();
        let version = c.version;
        let mut out = Vec::new();
        if manage && transition(status, Step::Save).is_ok() {
            out.push(view! {
                <button type="submit" data-action="save" disabled=move || save.pending().get()>"Save"</button>
            }.into_any());
        }
        for a in allowed_user_actions(status)
            .into_iter()
            .filter(|a| manage && *a != Step::Save)
        {
            let view = if a == Step::OffBoard {
                // Opens the typed confirmation; nothing is sent from here.
                view! {
                    <button type="button" class="danger" data-action=a.as_db()
                        aria-expanded=move || confirming.get().to_string()
                        on:click=move |_| confirming.update(|open| *open = !*open)>
                        {a.label()}
                    </button>
                }
                .into_any()
            } else if a == Step::Onboard {
                view! {
                    <button type="button" data-action="onboard" disabled=move || connect.pending().get()
                        on:click=move |_| { connect.dispatch(()); }>
                        {a.label()}
                    </button>
                }.into_any()
            } else {
                view! {
                    <button type="button" class="secondary" data-action=a.as_db()
                        disabled=move || act.pending().get()
                        on:click=move |_| { act.dispatch((a, version)); }>
                        {a.label()}
                    </button>
                }
                .into_any()
            };
            out.push(view);
        }
        out
    };
    view! {
        <section class="card">
            <Title text=move || crate::model::page_title(&["Provider connection", &current.get().company])/>
            <h1 id="connection-title">"Provider connection"</h1>
            {move || (current.get().state == ConnectionState::InstanceChanged).then(|| view! {
                <div class="banner error" role="status" data-testid="instance-changed">
                    <p>{crate::model::INSTANCE_CHANGED_NOTICE}</p>
                </div>
            })}
            {move || (current.get().state == ConnectionState::OffBoarded).then(|| view! {
                <div class="banner warn" role="status" data-testid="off-boarded">
                    <p>{off_boarded_notice(&current.get().company)}</p>
                </div>
            })}
            {move || (current.get().state == ConnectionState::ValidationFailed).then(|| view! {
                <div class="banner error" role="alert" data-testid="validation-failed">
                    <p>
                        "Validation failed: some health scan checks did not pass. See the "
                        <a href=format!("/connections/{id}/health")>"Health Dashboard"</a>
                        " for each issue and how to fix it."
                    </p>
                    {move || csm_advice(live.events.with(|log| failed_validations_in_a_row(log)))
                        .map(|advice| view! { <p data-testid="csm-advice">{advice}</p> })}
                </div>
            })}
            <form
                class="fields"
                data-testid="connection-form"
                aria-labelledby="connection-title"
                on:submit=move |ev| {
                    ev.prevent_default();
                    save.dispatch((company.get_untracked(), current.get_untracked().version));
                }
            >
                <CompanyPicker companies initial=initial_company company error=error.into() disabled=Signal::derive(move || !manage || !current.get().state.is_live())/>
                <label for="url">"URL"</label>
                <input id="url" type="text" readonly value=url data-testid="url"/>
                <label for="conn-state">"State"</label>
                <output id="conn-state" tabindex="-1" node_ref=state_field>{move || { let c = current.get(); view! { <StatePill state=c.state version=c.version/> } }}</output>
                <label for="conn-outbound">"Outbound status"</label>
                <output id="conn-outbound">{move || view! { <LinkPill status=current.get().outbound testid="outbound"/> }}</output>
                <label for="conn-inbound">"Inbound status"</label>
                <output id="conn-inbound">{move || view! { <LinkPill status=current.get().inbound testid="inbound"/> }}</output>
                <span></span>
                <div class="actions">
                    {buttons}
                    <a class="button secondary" href=format!("/connections/{id}/health")>"Health Dashboard"</a>
                </div>
            </form>
            {move || unplaced(error.get(), &[CompanyName::FIELD]).map(|e| view! { <ErrorBanner error=e/> })}
        </section>
        <Show when=move || confirming.get() && current.get().state.is_live()>
            <OffBoardConfirm id current open=confirming changed/>
        </Show>
        <StatusPanel live current/>
    }
}

/// Live status: the running scan's checks, and the onboarding messages with their times.
#[component]
fn StatusPanel(live: Live, current: Memo<ConnectionView>) -> impl IntoView {
    let onboarding = move || live.events.with(|log| onboarding_messages(log));
    // The latest run's checks, in the order they report.
    let checks = move || live.events.with(|log| latest_run_checks(log));
    let phase = move || current.get().onboarding;
    let step_class = move |step: Onboarding| {
        if phase().has_reached(step) {
            "step done"
        } else {
            "step"
        }
    };
    view! {
        <section class="card" data-testid="status-panel" aria-live="polite">
            <h2>"Status"</h2>
            <LinkNotice link=live.link/>
            <Show when=move || !checks().is_empty()>
                <h3 id="live-checks-title">"Health scan checks"</h3>
                <ul class="checks" data-testid="live-checks" aria-labelledby="live-checks-title">
                    {move || checks().into_iter().map(|c| {
                        let label = c.status.map(|s| s.label()).unwrap_or("Running…");
                        let class = format!("check {}", c.status.map(|s| s.as_db()).unwrap_or("running"));
                        let tone = c.status.map_or(crate::model::Tone::Waiting, |s| s.tone()).class();
                        view! { <li class=class data-check=c.check_id><span>{c.name}</span><span class=tone>{label}</span></li> }
                    }).collect_view()}
                </ul>
            </Show>
            <Show when=move || phase() != Onboarding::NotStarted || !onboarding().is_empty()>
                <h3>"Onboarding"</h3>
                <ol class="progress" data-testid="onboarding-progress">
                    <li class=move || step_class(Onboarding::Started)>"Started"<span class="visually-hidden">{move || phase().has_reached(Onboarding::Started).then_some(", done")}</span></li>
                    <li class=move || step_class(Onboarding::Syncing)>"Syncing settings"<span class="visually-hidden">{move || phase().has_reached(Onboarding::Syncing).then_some(", done")}</span></li>
                    <li class=move || step_class(Onboarding::Complete)>"Complete"<span class="visually-hidden">{move || phase().has_reached(Onboarding::Complete).then_some(", done")}</span></li>
                </ol>
                <ul class="messages" data-testid="onboarding-messages" aria-label="Onboarding messages">
                    {move || onboarding().into_iter().map(|m| view! {
                        <li data-seq=m.seq data-step=m.step class:failed=m.failed>
                            <time>{crate::components::status::fmt_clock(m.at)}</time>
                            " "
                            <span class="message">{m.message}</span>
                        </li>
                    }).collect_view()}
                </ul>
                <Show when=move || phase() == Onboarding::Complete>
                    <div class="actions">
                        <a class="button" href="/guided-setup" data-testid="close">"Close"</a>
                    </div>
                </Show>
            </Show>
        </section>
    }
}

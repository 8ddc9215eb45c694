//! An existing Provider connection: the form, the actions the state allows, and its history.
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::connection_form::{CompanyPicker, ReadOnlyFields};
use crate::{
    api::{act_on_connection, connection_history, get_connection, list_companies, save_connection},
    components::status::{fmt_time, ErrorBanner},
    model::{
        allowed_user_actions, transition, Action as Step, ApiError, ConnectionAction,
        ConnectionView, UpdateConnection,
    },
};

#[component]
pub fn Connection() -> impl IntoView {
    let params = use_params_map();
    let id = move || {
        params.with(|p| {
            p.get("id")
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(-1)
        })
    };
    // Bumped after every successful change so the record and history reload.
    let changed = RwSignal::new(0u32);
    let data = Resource::new(
        move || (id(), changed.get()),
        |(id, _)| async move {
            let conn = get_connection(id).await?;
            let companies = list_companies().await?;
            let history = connection_history(id).await?;
            let manage = crate::api::me()
                .await?
                .is_some_and(|u| u.may(crate::model::Access::ManageConnection));
            Ok::<_, ApiError>((conn, companies, history, manage))
        },
    );
    view! {
        <Suspense fallback=|| view! { <section class="card"><p class="muted">"Loading the connection…"</p></section> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok((conn, companies, history, manage)) => view! {
                        <ConnectionEditor conn companies changed manage/>
                        <section class="card">
                            <h2>"History"</h2>
                            <table data-testid="history">
                                <thead><tr><th>"When"</th><th>"Who"</th><th>"What"</th><th>"From"</th><th>"To"</th><th>"Why"</th></tr></thead>
                                <tbody>
                                    {history.into_iter().map(|h| view! {
                                        <tr>
                                            <td>{fmt_time(h.at)}</td>
                                            <td>{h.actor}</td>
                                            <td>{h.action}</td>
                                            <td>{h.from_state.label()}</td>
                                            <td>{h.to_state.label()}</td>
                                            <td>{h.reason}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </section>
                    }.into_any(),
                    Err(e) => view! {
                        <section class="card">
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
fn ConnectionEditor(
    conn: ConnectionView,
    companies: Vec<crate::model::CompanyView>,
    changed: RwSignal<u32>,
    /// The user may change the connection (IDI admin).
    manage: bool,
) -> impl IntoView {
    let id = conn.id;
    let version = conn.version;
    let status = conn.status();
    let company = RwSignal::new(conn.company.clone());
    let error = RwSignal::new(None::<ApiError>);
    let save = Action::new(move |company: &String| {
        let req = UpdateConnection {
            company: company.clone(),
            version,
        };
        async move { save_connection(id, req).await }
    });
    let act = Action::new(move |action: &Step| {
        let req = ConnectionAction {
            action: *action,
            version,
        };
        async move { act_on_connection(id, req).await }
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

    // The shared state machine and the user's roles decide which buttons exist; the server
    // checks both again.
    let can_save = manage && transition(status, Step::Save).is_ok();
    let buttons = allowed_user_actions(status)
        .into_iter()
        .filter(|a| manage && *a != Step::Save)
        .map(|a| {
            view! {
                <button type="button" class="secondary" data-action=a.as_db()
                    disabled=move || act.pending().get()
                    on:click=move |_| { act.dispatch(a); }>
                    {a.label()}
                </button>
            }
        })
        .collect_view();
    view! {
        <section class="card">
            <h1>"Provider connection"</h1>
            <form
                class="fields"
                data-testid="connection-form"
                data-version=version
                on:submit=move |ev| {
                    ev.prevent_default();
                    save.dispatch(company.get_untracked());
                }
            >
                <CompanyPicker companies initial=conn.company.clone() company/>
                <ReadOnlyFields url=conn.url.clone() connection=Some(conn.clone())/>
                <span></span>
                <div class="actions">
                    {can_save.then(|| view! {
                        <button type="submit" disabled=move || save.pending().get()>"Save"</button>
                    })}
                    {buttons}
                </div>
            </form>
            {move || error.get().map(|e| view! { <ErrorBanner error=e/> })}
        </section>
    }
}

//! The audit page: who did what, when, to which connection, from which state to which.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::list_audit,
    components::{
        status::{fmt_time, ErrorBanner},
        table::TableScroll,
    },
    model::ConnectionState,
};

fn state_label(s: &Option<String>) -> &'static str {
    s.as_deref()
        .and_then(ConnectionState::from_db)
        .map(|s| s.label())
        .unwrap_or("")
}

#[component]
pub fn Audit() -> impl IntoView {
    let entries = Resource::new(|| (), |_| list_audit());
    view! {
        <section class="card">
            <Title text=crate::model::page_title(&["Audit"])/>
            <h1>"Audit"</h1>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match entries.await {
                        Ok(list) => view! {
                            <TableScroll label="Audit log">
                                <table data-testid="audit">
                                <thead><tr><th>"When"</th><th>"Who"</th><th>"What"</th><th>"Connection"</th><th>"From"</th><th>"To"</th><th>"Detail"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|e| view! {
                                        <tr>
                                            <td data-label="When">{fmt_time(e.at)}</td>
                                            <td data-label="Who">{e.actor.clone()}</td>
                                            <td data-label="What">{e.action.clone()}</td>
                                            <td data-label="Connection">{e.connection_id.map(|id| view! { <a href=format!("/connections/{id}")>{format!("#{id}")}</a> })}</td>
                                            <td data-label="From">{state_label(&e.from_state)}</td>
                                            <td data-label="To">{state_label(&e.to_state)}</td>
                                            <td data-label="Detail" class="long">{e.detail.clone()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                                </table>
                            </TableScroll>
                        }.into_any(),
                        Err(e) => view! { <ErrorBanner error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

//! All provider connections.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::list_connections,
    components::{
        status::{fmt_time, ErrorBanner, LinkPill, StatePill},
        table::TableScroll,
    },
};

#[component]
pub fn Connections() -> impl IntoView {
    let list = Resource::new(|| (), |_| list_connections());
    view! {
        <section class="card">
            <Title text=crate::model::page_title(&["Connections"])/>
            <h1 id="connections-title">"Connections"</h1>
            <p class="muted">{crate::model::NO_WELCOME_EMAIL}</p>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(list) if list.is_empty() => view! {
                            <p class="muted">"No provider connections yet. Open \"Connect with Impact IDI\" from your welcome email to start one."</p>
                        }.into_any(),
                        Ok(list) => view! {
                            <TableScroll label="Connections">
                                <table data-testid="connections" aria-labelledby="connections-title">
                                <thead><tr><th>"Company"</th><th>"URL"</th><th>"State"</th><th>"Outbound status"</th><th>"Inbound status"</th><th>"Updated"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|c| view! {
                                        <tr>
                                            <td data-label="Company"><a href=format!("/connections/{}", c.id)>{c.company.clone()}</a></td>
                                            <td data-label="URL" class="long">{c.url.clone()}</td>
                                            <td data-label="State"><StatePill state=c.state/></td>
                                            <td data-label="Outbound status"><LinkPill status=c.outbound testid="outbound"/></td>
                                            <td data-label="Inbound status"><LinkPill status=c.inbound testid="inbound"/></td>
                                            <td data-label="Updated">{fmt_time(c.updated_at)}</td>
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

//! The start page: an overview of every connection (state, statuses, open issues) and the one
//! next step, decided by the model (`model::home::next_step`).
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::home_overview,
    components::{
        status::{ErrorBanner, LinkPill, StatePill},
        table::TableScroll,
    },
    model::{next_step, HomeView},
};

#[component]
pub fn Home() -> impl IntoView {
    let overview = Resource::new(|| (), |_| home_overview());
    view! {
        <section class="card">
            <Title text=crate::model::page_title(&["Connect with Impact IDI"])/>
            <h1>"Connect with Impact IDI"</h1>
            <p>
                "Connect this Impact Store App instance to its provider, the Impact Delivery Instance (IDI), and keep the connection healthy."
            </p>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match overview.await {
                        Ok(home) => view! { <Overview home/> }.into_any(),
                        Err(e) => view! { <ErrorBanner error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn Overview(home: HomeView) -> impl IntoView {
    let step = next_step(&home);
    let table = (!home.connections.is_empty()).then(|| {
        view! {
            <TableScroll label="Connections overview">
                <table data-testid="overview" aria-labelledby="overview-title">
                <thead><tr><th>"Company"</th><th>"State"</th><th>"Outbound status"</th><th>"Inbound status"</th><th>"Open issues"</th></tr></thead>
                <tbody>
                    {home.connections.into_iter().map(|s| {
                        let c = s.connection;
                        view! {
                            <tr>
                                <td data-label="Company"><a href=format!("/connections/{}", c.id)>{c.company}</a></td>
                                <td data-label="State"><StatePill state=c.state/></td>
                                <td data-label="Outbound status"><LinkPill status=c.outbound testid="outbound"/></td>
                                <td data-label="Inbound status"><LinkPill status=c.inbound testid="inbound"/></td>
                                <td data-label="Open issues"><a href=format!("/connections/{}/health", c.id) aria-label=format!("{} open: the health dashboard", crate::model::counted(s.open_issues, "issue", "issues"))>{s.open_issues}</a></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
                </table>
            </TableScroll>
        }
    });
    view! {
        <div class="next-step" data-testid="next-step">
            <h2>"Next step"</h2>
            <p>{step.why}</p>
            <a class="button" href=step.href>{step.label}</a>
        </div>
        <h2 id="overview-title">"Connections"</h2>
        {match table {
            Some(t) => t.into_any(),
            None => view! { <p class="muted">"No provider connections yet."</p> }.into_any(),
        }}
    }
}

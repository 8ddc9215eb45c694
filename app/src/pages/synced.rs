//! "Synced settings" on the Provider connection page: what onboarding pulled from the provider,
//! group by group, read again whenever the record changes (a finished onboarding, a Retry).
use leptos::prelude::*;

use crate::{
    components::{
        status::{fmt_time, ErrorBanner},
        table::TableScroll,
    },
    model::{ApiError, SyncedGroup},
};

/// `groups`: the page's resource for them (made with the page's other resources).
#[component]
pub fn SyncedSettings(groups: Resource<Result<Vec<SyncedGroup>, ApiError>>) -> impl IntoView {
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match groups.await {
                    Ok(groups) if groups.is_empty() => ().into_any(),
                    Ok(groups) => view! { <Groups groups/> }.into_any(),
                    Err(e) => view! { <section class="card"><ErrorBanner error=e/></section> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Groups(groups: Vec<SyncedGroup>) -> impl IntoView {
    view! {
        <section class="card" data-testid="synced-settings" aria-labelledby="synced-title">
            <h2 id="synced-title">"Synced settings"</h2>
            <p class="muted">"What onboarding pulled from the provider."</p>
            {groups.into_iter().map(|g| {
                let title_id = format!("synced-{}", g.group);
                view! {
                    <h3 id=title_id.clone()>{g.title.clone()}</h3>
                    <p class="muted">{format!("Synced {}", fmt_time(g.synced_at))}</p>
                    <TableScroll label=g.title.clone()>
                        <table aria-labelledby=title_id data-group=g.group.clone()>
                            <thead><tr><th>"Setting"</th><th>"Value"</th></tr></thead>
                            <tbody>
                                {g.rows.into_iter().map(|r| view! { <tr><td data-label="Setting">{r.name}</td><td data-label="Value">{r.value}</td></tr> }).collect_view()}
                            </tbody>
                        </table>
                    </TableScroll>
                }
            }).collect_view()}
        </section>
    }
}

//! The outbox: every email the app has sent, readable without a mail server.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::list_outbox,
    components::status::{fmt_time, ErrorBanner},
};

#[component]
pub fn Outbox() -> impl IntoView {
    let messages = Resource::new(|| (), |_| list_outbox());
    view! {
        <section class="card">
            <Title text=crate::model::page_title(&["Outbox"])/>
            <h1>"Outbox"</h1>
            <p class="muted">"Emails sent by this instance, newest first."</p>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match messages.await {
                        Ok(list) if list.is_empty() => view! { <p class="muted">"No emails yet."</p> }.into_any(),
                        Ok(list) => list.into_iter().map(|m| view! {
                            <article class="card" data-testid="email">
                                <h2>{m.subject.clone()}</h2>
                                <p class="muted">{format!("To {} · {}", m.to, fmt_time(m.created_at))}</p>
                                <pre class="mail">{m.body.clone()}</pre>
                                {m.link.clone().map(|l| view! { <a class="button" href=l>"Connect with Impact IDI"</a> })}
                            </article>
                        }).collect_view().into_any(),
                        Err(e) => view! { <ErrorBanner error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

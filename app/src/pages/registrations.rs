//! "Instance registration": the provider side's list of registrations, where an admin initiates one
//! for a named contact. Stands in for the IDI's own tab.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::{issue_invitation, list_invitations},
    components::{
        outcome::{described_by, invalid, unplaced, FieldMessage, Kind, Outcome},
        status::{fmt_time, ErrorBanner},
        table::TableScroll,
    },
    model::DEFAULT_COMPANY,
};

#[component]
pub fn Registrations() -> impl IntoView {
    let (email, set_email) = signal(String::new());
    let (company, set_company) = signal(DEFAULT_COMPANY.to_string());
    let (provider, set_provider) = signal(String::new());
    let issue = Action::new(|(email, company, provider): &(String, String, String)| {
        let (email, company) = (email.clone(), company.clone());
        let provider = (!provider.trim().is_empty()).then(|| provider.clone());
        async move { issue_invitation(email, company, provider).await }
    });
    let invitations = Resource::new(move || issue.version().get(), |_| list_invitations());
    let error = Signal::derive(move || issue.value().get().and_then(|r| r.err()));
    const FIELDS: [&str; 3] = ["email", "company", "url"];

    view! {
        <section class="card">
            <Title text=crate::model::page_title(&["Instance registration"])/>
            <h1>"Instance registration"</h1>
            <p class="muted">
                "Initiate a registration: the named contact receives a welcome email with a \"Connect with Impact IDI\" link."
            </p>
            <form
                class="fields"
                on:submit=move |ev| {
                    ev.prevent_default();
                    issue.dispatch((email.get_untracked(), company.get_untracked(), provider.get_untracked()));
                }
            >
                <label for="inv-email">"Named contact email"</label>
                <input id="inv-email" type="email" required prop:value=email
                    aria-describedby=described_by(error, "email", "inv-email") aria-invalid=move || invalid(error, "email")().to_string()
                    on:input=move |ev| set_email.set(event_target_value(&ev))/>
                <FieldMessage error field="email" input="inv-email"/>
                <label for="inv-company">"Company"</label>
                <input id="inv-company" type="text" required prop:value=company
                    aria-describedby=described_by(error, "company", "inv-company") aria-invalid=move || invalid(error, "company")().to_string()
                    on:input=move |ev| set_company.set(event_target_value(&ev))/>
                <FieldMessage error field="company" input="inv-company"/>
                <label for="inv-provider">"Provider instance URL (optional)"</label>
                <input id="inv-provider" type="url" placeholder="This app's provider" prop:value=provider
                    aria-describedby=described_by(error, "url", "inv-provider") aria-invalid=move || invalid(error, "url")().to_string()
                    on:input=move |ev| set_provider.set(event_target_value(&ev))/>
                <FieldMessage error field="url" input="inv-provider"/>
                <span></span>
                <div>
                    <button type="submit" disabled=move || issue.pending().get()>"Initiate registration"</button>
                </div>
            </form>
            {move || match issue.value().get() {
                Some(Ok(inv)) => view! {
                    <Outcome kind=Kind::Ok testid="issued">
                        {format!("Registration initiated: a welcome email went to {}.", inv.email)}
                        " " <a href="/outbox">"Open the outbox"</a>
                    </Outcome>
                }.into_any(),
                Some(Err(e)) => unplaced(Some(e), &FIELDS).map(|e| view! { <ErrorBanner error=e/> }).into_any(),
                None => ().into_any(),
            }}
        </section>
        <section class="card">
            <h2>"Registrations"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Loading registrations…"</p> }>
                {move || Suspend::new(async move {
                    match invitations.await {
                        Ok(list) if list.is_empty() => view! { <p class="muted">"No registrations yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <TableScroll label="Registrations">
                                <table data-testid="registrations">
                                <thead><tr><th>"Named contact"</th><th>"Company"</th><th>"Provider URL"</th><th>"Status"</th><th>"Expires"</th><th><span class="visually-hidden">"Link"</span></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|inv| view! {
                                        <tr>
                                            <td data-label="Named contact">{inv.email.clone()}</td>
                                            <td data-label="Company">{inv.company.clone()}</td>
                                            <td data-label="Provider URL" class="long">{inv.provider_url.clone()}</td>
                                            <td data-label="Status">{inv.status.label()}</td>
                                            <td data-label="Expires">{fmt_time(inv.expires_at)}</td>
                                            <td>{inv.link.clone().map(|l| view! { <a class="button" href=l>"Connect with Impact IDI"</a> })}</td>
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

//! Where "Connect with Impact IDI" lands: checks the registration link, then opens the Provider
//! connection form pre-filled from it, or says why the link cannot be used and offers a fresh one.
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

use super::connection_form::{CompanyPicker, ReadOnlyFields};
use crate::{
    api::{
        connection_for_url, list_companies, open_registration, re_register_connection,
        resend_registration, save_new_connection,
    },
    components::{
        outcome::{described_by, invalid, unplaced, FieldMessage, Kind, Outcome},
        status::ErrorBanner,
    },
    model::{
        transition, Access, Action as Step, ApiError, CompanyName, ConnectionView,
        CreateConnection, EmailAddress, ReRegisterConnection, RegistrationLinkView,
    },
};

#[component]
pub fn Connect() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.with(|q| q.get("token").unwrap_or_default());
    let link = Resource::new(token, |t| async move {
        let link = open_registration(t).await?;
        let existing = connection_for_url(link.provider_url.clone()).await?;
        let companies = list_companies().await?;
        let manage = crate::api::me()
            .await?
            .is_some_and(|u| u.may(Access::ManageConnection));
        Ok::<_, ApiError>((link, existing, companies, manage))
    });
    view! {
        <Suspense fallback=|| view! { <section class="card"><p class="muted">"Checking your registration link…"</p></section> }>
            {move || Suspend::new(async move {
                match link.await {
                    Ok((_, Some(existing), _, manage)) => view! { <ExistingConnection existing manage token=token()/> }.into_any(),
                    Ok((link, None, companies, _)) => view! { <NewConnection link companies token=token()/> }.into_any(),
                    Err(e) => view! { <LinkProblem error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The link's provider already has a live connection: resume it, or (an IDI admin, when its state
/// allows) re-register it with this link, the repair for a used code or revoked credentials.
#[component]
fn ExistingConnection(existing: ConnectionView, manage: bool, token: String) -> impl IntoView {
    let id = existing.id;
    let offered = manage && transition(existing.status(), Step::ReRegister).is_ok();
    let req = ReRegisterConnection {
        version: existing.version,
        registration_token: token,
    };
    let send = Action::new(move |req: &ReRegisterConnection| {
        let req = req.clone();
        async move { re_register_connection(id, req).await }
    });
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(_)) = send.value().get() {
            navigate(&format!("/connections/{id}"), Default::default());
        }
    });
    view! {
        <section class="card">
            <Title text=crate::model::page_title(&["Provider connection", &existing.company])/>
            <h1>"Provider connection"</h1>
            <div class="banner warn" role="status" data-testid="resume">
                {format!("{} already has a connection to {} ({}). ", existing.company, existing.url, existing.state.label())}
                <a href=format!("/connections/{id}")>"Resume the existing connection"</a>
            </div>
            <Show when=move || offered>
                <h2>"Re-register it with this link"</h2>
                <p>
                    "If its registration code was used or its credentials were revoked, this link repairs it: its new registration code replaces the old one and the old credentials, and the health scan checks run again. "
                    "A connection that was onboarded is connected to the provider again afterwards."
                </p>
                <div class="actions">
                    <button type="button" data-action="re_register"
                        disabled=move || send.pending().get()
                        on:click={
                            let req = req.clone();
                            move |_| { send.dispatch(req.clone()); }
                        }>
                        "Re-register this connection"
                    </button>
                </div>
            </Show>
            {move || send.value().get().and_then(Result::err).map(|e| view! { <ErrorBanner error=e/> })}
        </section>
    }
}

#[component]
fn NewConnection(
    link: RegistrationLinkView,
    companies: Vec<crate::model::CompanyView>,
    token: String,
) -> impl IntoView {
    let company = RwSignal::new(link.company.clone());
    let save = Action::new(move |company: &String| {
        let req = CreateConnection {
            company: company.clone(),
            registration_token: Some(token.clone()),
        };
        async move { save_new_connection(req).await }
    });
    let error = Signal::derive(move || save.value().get().and_then(|r| r.err()));
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(created)) = save.value().get() {
            navigate(&format!("/connections/{}", created.id), Default::default());
        }
    });
    view! {
        <section class="card">
            <Title text=crate::model::page_title(&["Provider connection", &link.company])/>
            <h1 id="connection-title">"Provider connection"</h1>
            <p class="muted">{format!("Named contact: {}", link.email)}</p>
            <form
                class="fields"
                data-testid="connection-form"
                aria-labelledby="connection-title"
                on:submit=move |ev| {
                    ev.prevent_default();
                    save.dispatch(company.get_untracked());
                }
            >
                <CompanyPicker companies initial=link.company.clone() company error/>
                <ReadOnlyFields url=link.provider_url.clone() connection=None/>
                <span></span>
                <div class="actions">
                    <button type="submit" disabled=move || save.pending().get()>"Save"</button>
                </div>
            </form>
            {move || unplaced(error.get(), &[CompanyName::FIELD]).map(|e| view! { <ErrorBanner error=e/> })}
        </section>
    }
}

#[component]
fn LinkProblem(error: ApiError) -> impl IntoView {
    let title = match error.code.as_str() {
        "link_expired" => "This registration link has expired",
        "link_used" => "This registration link has already been used",
        "link_superseded" => "A newer registration link has been sent",
        "link_tampered" => "This registration link is not valid",
        _ => "This registration link cannot be used",
    };
    let (email, set_email) = signal(String::new());
    let resend = Action::new(|email: &String| {
        let email = email.clone();
        async move { resend_registration(email).await }
    });
    let resend_error = Signal::derive(move || resend.value().get().and_then(|r| r.err()));
    view! {
        <section class="card" data-testid="link-problem" data-code=error.code.clone()>
            <Title text=crate::model::page_title(&[title])/>
            <h1>{title}</h1>
            <div class="banner error" role="alert">{error.message.clone()}</div>
            <h2>"Request a fresh link"</h2>
            <p class="muted">{crate::model::NO_WELCOME_EMAIL}</p>
            <form class="fields" on:submit=move |ev| {
                ev.prevent_default();
                resend.dispatch(email.get_untracked());
            }>
                <label for="resend-email">"Your email address"</label>
                <input id="resend-email" type="email" required prop:value=email
                    aria-describedby=described_by(resend_error, EmailAddress::FIELD, "resend-email")
                    aria-invalid=move || invalid(resend_error, EmailAddress::FIELD)().to_string()
                    on:input=move |ev| set_email.set(event_target_value(&ev))/>
                <FieldMessage error=resend_error field=EmailAddress::FIELD input="resend-email"/>
                <span></span>
                <div><button type="submit" disabled=move || resend.pending().get()>"Request a fresh link"</button></div>
            </form>
            {move || match resend.value().get() {
                Some(Ok(msg)) => view! { <Outcome kind=Kind::Ok>{msg}</Outcome> }.into_any(),
                Some(Err(e)) => unplaced(Some(e), &[EmailAddress::FIELD]).map(|e| view! { <ErrorBanner error=e/> }).into_any(),
                None => ().into_any(),
            }}
        </section>
    }
}

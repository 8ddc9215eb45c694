//! Pieces of the Provider connection form shared by the new-record and existing-record screens.
use leptos::prelude::*;

use crate::{
    components::{
        outcome::{described_by, invalid, FieldMessage},
        status::{LinkPill, StatePill},
    },
    model::{ApiError, CompanyName, CompanyView, ConnectionState, ConnectionView},
};

const ADD_NEW: &str = "__add_new__";

/// Company: the existing companies plus the pre-selected one, with "Add a new company…" (name only).
/// Writes the chosen or typed name into `company`.
#[component]
pub fn CompanyPicker(
    companies: Vec<CompanyView>,
    initial: String,
    company: RwSignal<String>,
    /// The last refusal: shown under the field when it is about the company.
    error: Signal<Option<ApiError>>,
    /// Read-only for people who may not change the connection, and once it is off-boarded.
    #[prop(optional, into)]
    disabled: Signal<bool>,
) -> impl IntoView {
    let adding = RwSignal::new(false);
    let new_name = RwSignal::new(String::new());
    let mut names: Vec<String> = companies.into_iter().map(|c| c.name).collect();
    if !initial.is_empty() && !names.iter().any(|n| n.eq_ignore_ascii_case(&initial)) {
        names.insert(0, initial.clone());
    }
    let options = names
        .into_iter()
        .map(|n| {
            let selected = n.eq_ignore_ascii_case(&initial);
            view! { <option value=n.clone() selected=selected>{n.clone()}</option> }
        })
        .collect_view();
    view! {
        <label for="company">"Company"</label>
        <div>
            <select
                id="company"
                name="company"
                data-testid="company-select"
                disabled=move || disabled.get()
                aria-describedby=described_by(error, CompanyName::FIELD, "company")
                aria-invalid=move || invalid(error, CompanyName::FIELD)().to_string()
                on:change=move |ev| {
                    let v = event_target_value(&ev);
                    if v == ADD_NEW {
                        adding.set(true);
                        company.set(new_name.get_untracked());
                    } else {
                        adding.set(false);
                        company.set(v);
                    }
                }
            >
                {options}
                <option value=ADD_NEW>"Add a new company…"</option>
            </select>
            <Show when=move || adding.get()>
                <input
                    type="text"
                    id="new-company"
                    aria-label="New company name"
                    aria-describedby=described_by(error, CompanyName::FIELD, "company")
                    aria-invalid=move || invalid(error, CompanyName::FIELD)().to_string()
                    data-testid="new-company"
                    placeholder="New company name"
                    class="below"
                    prop:value=new_name
                    on:input=move |ev| {
                        let v = event_target_value(&ev);
                        new_name.set(v.clone());
                        company.set(v);
                    }
                />
            </Show>
            <FieldMessage error field=CompanyName::FIELD input="company"/>
        </div>
    }
}

/// URL, State, Outbound and Inbound: read-only; State Pending and the statuses blank until the
/// record exists. Each value is an
/// `<output>` named by its label, so it is read as "State: Validated" and announced when it changes.
#[component]
pub fn ReadOnlyFields(url: String, connection: Option<ConnectionView>) -> impl IntoView {
    let (state, outbound, inbound) = match &connection {
        Some(c) => (
            view! { <StatePill state=c.state/> }.into_any(),
            view! { <LinkPill status=c.outbound testid="outbound"/> }.into_any(),
            view! { <LinkPill status=c.inbound testid="inbound"/> }.into_any(),
        ),
        // A new record reads Pending until Save creates it (the seed's first state).
        None => (
            view! { <StatePill state=ConnectionState::Pending/> }.into_any(),
            view! { <span data-testid="outbound"></span> }.into_any(),
            view! { <span data-testid="inbound"></span> }.into_any(),
        ),
    };
    view! {
        <label for="url">"URL"</label>
        <input id="url" type="text" readonly value=url data-testid="url"/>
        <label for="conn-state">"State"</label>
        <output id="conn-state">{state}</output>
        <label for="conn-outbound">"Outbound status"</label>
        <output id="conn-outbound">{outbound}</output>
        <label for="conn-inbound">"Inbound status"</label>
        <output id="conn-inbound">{inbound}</output>
    }
}

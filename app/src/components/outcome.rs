//! Where an action leaves the person: its result is focused when it appears, and a refused
//! value's message sits under its field, tied to it with `aria-describedby`, with the field
//! focused, so keyboard and screen-reader users land on what changed instead of the button.
use leptos::{html, prelude::*, wasm_bindgen::JsCast};

use crate::model::ApiError;

/// How the result reads: its banner colour and whether it is announced as an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ok,
    Warn,
    Error,
}

/// An action's result. Focused when it appears (tabindex -1: by script only, not in the tab
/// order). Only the browser runs effects, so the server render is untouched.
#[component]
pub fn Outcome(
    kind: Kind,
    #[prop(optional)] testid: &'static str,
    children: Children,
) -> impl IntoView {
    let node = NodeRef::<html::Div>::new();
    Effect::new(move |_| {
        if let Some(el) = node.get() {
            let _ = el.focus();
        }
    });
    let (class, role) = match kind {
        Kind::Ok => ("banner ok", "status"),
        Kind::Warn => ("banner warn", "status"),
        Kind::Error => ("banner error", "alert"),
    };
    view! {
        <div class=class role=role tabindex="-1" node_ref=node data-testid=(!testid.is_empty()).then_some(testid)>
            {children()}
        </div>
    }
}

/// The refused value's message under the field whose input has the id `input`, when `error`
/// names `field`; the input itself is focused then. Its id is [`message_id`]`(input)`.
#[component]
pub fn FieldMessage(
    error: Signal<Option<ApiError>>,
    field: &'static str,
    input: &'static str,
) -> impl IntoView {
    let message = move || {
        error.with(|e| {
            e.as_ref()
                .and_then(|e| e.field_message(field))
                .map(str::to_owned)
        })
    };
    Effect::new(move |_| {
        if message().is_some() {
            let el = document().get_element_by_id(input);
            if let Some(el) = el.and_then(|e| e.dyn_into::<leptos::web_sys::HtmlElement>().ok()) {
                let _ = el.focus();
            }
        }
    });
    view! {
        {move || message().map(|m| view! { <p class="field-error" id=message_id(input)>{m}</p> })}
    }
}

/// The id of the message [`FieldMessage`] shows for the input `input`.
pub fn message_id(input: &str) -> String {
    format!("{input}-error")
}

/// `aria-describedby` for the input `input` of `field`: its message while there is one.
pub fn described_by(
    error: Signal<Option<ApiError>>,
    field: &'static str,
    input: &'static str,
) -> impl Fn() -> Option<String> + Copy {
    move || invalid(error, field)().then(|| message_id(input))
}

/// `aria-invalid` for `field`'s input: "true" while its value stands refused.
pub fn invalid(error: Signal<Option<ApiError>>, field: &'static str) -> impl Fn() -> bool + Copy {
    move || error.with(|e| e.as_ref().is_some_and(|e| e.field_message(field).is_some()))
}

/// An error the form's fields do not show (none of `fields` is to blame), for the banner.
pub fn unplaced(error: Option<ApiError>, fields: &[&str]) -> Option<ApiError> {
    error.filter(|e| !fields.iter().any(|f| e.field_message(f).is_some()))
}

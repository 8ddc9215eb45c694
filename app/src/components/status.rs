use leptos::prelude::*;

use super::outcome::{Kind, Outcome};
use crate::model::{ApiError, ConnectionState, LinkStatus};

/// `version`: the record version shown, so tests and the latency benchmark can tell which change
/// reached the page.
#[component]
pub fn StatePill(state: ConnectionState, #[prop(optional)] version: Option<i64>) -> impl IntoView {
    view! {
        <span class=format!("pill {} {}", state.as_db(), state.tone().class()) data-testid="state" data-version=version>
            {state.label()}
        </span>
    }
}

/// Outbound/Inbound status; blank shows as an empty pill-less cell, as in the product.
#[component]
pub fn LinkPill(status: LinkStatus, #[prop(into)] testid: String) -> impl IntoView {
    view! { <span class=format!("pill {} {}", status.as_db(), status.tone().class()) data-testid=testid>{status.label()}</span> }
}

/// A refusal or failure, in words a person can act on; focused as it appears.
#[component]
pub fn ErrorBanner(error: ApiError) -> impl IntoView {
    view! { <Outcome kind=Kind::Error testid="error-banner">{error.message}</Outcome> }
}

pub use crate::model::time::{fmt_clock, fmt_time};

use leptos::prelude::*;

use crate::model::{ApiError, ConnectionState, LinkStatus};

/// `version`: the record version shown, so tests and the latency benchmark can tell which change
/// reached the page.
#[component]
pub fn StatePill(state: ConnectionState, #[prop(optional)] version: Option<i64>) -> impl IntoView {
    view! {
        <span class=format!("pill {}", state.as_db()) data-testid="state" data-version=version>
            {state.label()}
        </span>
    }
}

/// Outbound/Inbound status; blank shows as an empty pill-less cell, as in the product.
#[component]
pub fn LinkPill(status: LinkStatus, #[prop(into)] testid: String) -> impl IntoView {
    view! { <span class=format!("pill {}", status.as_db()) data-testid=testid>{status.label()}</span> }
}

/// A refusal or failure, in words a person can act on.
#[component]
pub fn ErrorBanner(error: ApiError) -> impl IntoView {
    view! { <div class="banner error" role="alert" data-testid="error-banner">{error.message}</div> }
}

pub use crate::model::time::{fmt_clock, fmt_time};

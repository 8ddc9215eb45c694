//! A data table that scrolls inside its card on a narrow screen, so the page itself never
//! scrolls sideways and the columns stay readable.
use leptos::prelude::*;

/// The scrolling box is a named region that takes keyboard focus (tabindex 0), so a keyboard
/// user can scroll it too (axe's scrollable-region-focusable).
#[component]
pub fn TableScroll(#[prop(into)] label: String, children: Children) -> impl IntoView {
    view! {
        <div class="table-scroll" role="region" aria-label=label tabindex="0">
            {children()}
        </div>
    }
}

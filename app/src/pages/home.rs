use leptos::prelude::*;
use leptos_meta::Title;

/// Start page. The "Show details" toggle only works once the WASM has hydrated the page,
/// which is what the first end-to-end test relies on.
#[component]
pub fn Home() -> impl IntoView {
    let (open, set_open) = signal(false);
    view! {
        <section class="card">
            <Title text=crate::model::page_title(&["Connect with Impact IDI"])/>
            <h1>"Connect with Impact IDI"</h1>
            <p>
                "Connect this Impact Store App instance to its provider, the Impact Delivery Instance (IDI)."
            </p>
            <button
                type="button"
                data-testid="details-toggle"
                aria-expanded=move || open.get().to_string()
                on:click=move |_| set_open.update(|o| *o = !*o)
            >
                {move || if open.get() { "Hide details" } else { "Show details" }}
            </button>
            <Show when=move || open.get()>
                <p data-testid="details">
                    "The named contact administrator opens the registration link, saves the Provider connection, waits for validation, then connects to the provider."
                </p>
            </Show>
        </section>
    }
}

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <section class="card">
            <Title text=crate::model::page_title(&["Page not found"])/>
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. Go back to " <a href="/">"the start page"</a> "."</p>
        </section>
    }
}

//! The browser entry point: hydrates the server-rendered page.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Pages are lazy routes (split out of the main module, app/src/lib.rs): hydration waits for
    // the page's code to arrive, so it runs as a task (what `leptos::mount::hydrate_lazy` does),
    // and the marker is set only once it is done.
    _ = any_spawner::Executor::init_wasm_bindgen();
    leptos::task::spawn_local(async {
        let body = leptos::tachys::dom::body();
        let owner = leptos::mount::hydrate_from_async(body, app::App).await;
        owner.forget();
        // A marker for end-to-end tests: the WASM has taken over the page.
        if let Some(w) = web_sys::window() {
            let _ = js_sys::Reflect::set(&w, &"__hydrated".into(), &true.into());
        }
    });
}

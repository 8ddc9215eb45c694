//! The browser entry point: hydrates the server-rendered page.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // A marker for end-to-end tests: the WASM has taken over the page.
    if let Some(w) = web_sys::window() {
        let _ = js_sys::Reflect::set(&w, &"__hydrated".into(), &true.into());
    }
}

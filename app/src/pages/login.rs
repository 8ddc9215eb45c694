//! Sign-in and first-start setup. Plain HTML forms posted to the server, so they work before
//! (and without) the WASM.
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn Login() -> impl IntoView {
    let q = use_query_map();
    let error = move || q.with(|q| q.get("error"));
    let next = move || q.with(|q| q.get("next").unwrap_or_else(|| "/".into()));
    view! {
        <section class="card narrow">
            <Title text=crate::model::page_title(&["Sign in"])/>
            <h1>"Sign in"</h1>
            {move || error().map(|e| view! { <div class="banner error" role="alert">{e}</div> })}
            <form class="fields" method="post" action="/auth/login">
                <input type="hidden" name="next" value=next/>
                <label for="login-email">"Email"</label>
                <input id="login-email" name="email" type="email" autocomplete="username" required/>
                <label for="login-password">"Password"</label>
                <input id="login-password" name="password" type="password" autocomplete="current-password" required/>
                <span></span>
                <div><button type="submit">"Sign in"</button></div>
            </form>
        </section>
    }
}

#[component]
pub fn Setup() -> impl IntoView {
    let q = use_query_map();
    let token = move || q.with(|q| q.get("token").unwrap_or_default());
    let error = move || q.with(|q| q.get("error"));
    view! {
        <section class="card narrow">
            <Title text=crate::model::page_title(&["Create the first administrator"])/>
            <h1>"Create the first administrator"</h1>
            <p class="muted">"This one-time page creates the first account, with every role. Later users are added under Users."</p>
            {move || error().map(|e| view! { <div class="banner error" role="alert">{e}</div> })}
            <form class="fields" method="post" action="/auth/setup">
                <input type="hidden" name="token" value=token/>
                <label for="setup-email">"Email"</label>
                <input id="setup-email" name="email" type="email" required/>
                <label for="setup-password">"Password (12 characters or more)"</label>
                <input id="setup-password" name="password" type="password" minlength="12" required/>
                <span></span>
                <div><button type="submit">"Create administrator"</button></div>
            </form>
        </section>
    }
}

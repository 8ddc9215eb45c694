//! impact-connect: the shared model, the UI, and (behind `ssr`) the server-side service layer.
#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod model;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    path,
};

/// The HTML document the server renders around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/impact-connect.css"/>
        <Title text="Impact Connect"/>
        <Router>
            <header class="topbar">
                <A href="/">"Impact Store App"</A>
                <nav>
                    <A href="/connections">"Connections"</A>
                    <A href="/registrations">"Instance registration"</A>
                    <A href="/outbox">"Outbox"</A>
                </nav>
            </header>
            <main>
                <Routes fallback=|| view! { <pages::not_found::NotFound/> }>
                    <Route path=path!("/") view=pages::home::Home/>
                    <Route path=path!("/connections") view=pages::connections::Connections/>
                    <Route path=path!("/connections/:id") view=pages::connection::Connection/>
                    <Route path=path!("/connect") view=pages::connect::Connect/>
                    <Route path=path!("/registrations") view=pages::registrations::Registrations/>
                    <Route path=path!("/outbox") view=pages::outbox::Outbox/>
                </Routes>
            </main>
        </Router>
    }
}

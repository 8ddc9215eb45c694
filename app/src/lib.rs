//! impact-connect: the shared model, the UI, and (behind `ssr`) the server-side service layer.
#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod model;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet};
use leptos_router::{
    components::{Route, Router, Routes, A},
    lazy_route, path, Lazy, LazyRoute, SsrMode,
};

use crate::model::{Access, CurrentUser};

/// The stylesheet every page links: site-pkg-dir and output-name of the site the root Cargo.toml
/// declares (`[[workspace.metadata.leptos]]`; a server test holds the two together).
pub const STYLESHEET: &str = "/pkg/impact-connect.css";

/// The signed-in user for this page load (None on the sign-in pages).
pub type Me = Resource<Result<Option<CurrentUser>, model::ApiError>>;

/// The HTML document the server renders around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                // Scripts only from us or carrying this response's nonce (the hydration script).
                <meta
                    http-equiv="Content-Security-Policy"
                    content=leptos::nonce::use_nonce()
                        .map(|n| {
                            format!(
                                "default-src 'self'; script-src 'self' 'nonce-{n}' 'wasm-unsafe-eval'; \
                                 style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'"
                            )
                        })
                        .unwrap_or_default()
                />
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
    let me: Me = Resource::new(|| (), |_| api::me());
    provide_context(me);
    view! {
        <Stylesheet id="leptos" href=STYLESHEET/>
        <Router>
            <TopBar me/>
            <main>
                <Routes fallback=|| view! { <pages::not_found::NotFound/> }>
                    <Route ssr=SsrMode::Async path=path!("/") view={Lazy::<HomePage>::new()}/>
                    <Route ssr=SsrMode::Async path=path!("/connections") view={Lazy::<ConnectionsPage>::new()}/>
                    <Route ssr=SsrMode::Async path=path!("/connections/:id") view={Lazy::<ConnectionPage>::new()}/>
                    <Route ssr=SsrMode::Async path=path!("/connections/:id/health") view={Lazy::<HealthPage>::new()}/>
                    <Route ssr=SsrMode::Async path=path!("/connect") view={Lazy::<ConnectPage>::new()}/>
                    <Route ssr=SsrMode::Async path=path!("/registrations") view={Lazy::<RegistrationsPage>::new()}/>
                    <Route ssr=SsrMode::Async path=path!("/outbox") view={Lazy::<OutboxPage>::new()}/>
                    <Route ssr=SsrMode::Async path=path!("/login") view={Lazy::<LoginPage>::new()}/>
                    <Route ssr=SsrMode::Async path=path!("/setup") view={Lazy::<SetupPage>::new()}/>
                    <Route ssr=SsrMode::Async path=path!("/users") view={Lazy::<UsersPage>::new()}/>
                    <Route ssr=SsrMode::Async path=path!("/audit") view={Lazy::<AuditPage>::new()}/>
                    <Route ssr=SsrMode::Async path=path!("/guided-setup") view={Lazy::<GuidedSetupPage>::new()}/>
                    <Route ssr=SsrMode::Async path=path!("/health") view={Lazy::<DashboardPage>::new()}/>
                    <Route ssr=SsrMode::Async path=path!("/connections/:id/issues/:issue") view={Lazy::<IssuePage>::new()}/>
                    <Route ssr=SsrMode::Async path=path!("/help/:article") view={Lazy::<HelpPage>::new()}/>
                </Routes>
            </main>
        </Router>
    }
}

/// A page whose code is split out of the main bundle and fetched when the route is first shown
/// (scripts/build.sh splits the bundle at these points; the server renders it as usual).
macro_rules! lazy_page {
    ($route:ident, $($component:ident)::+) => {
        struct $route;
        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }
            fn view(_this: Self) -> AnyView {
                view! { <$($component)::+/> }.into_any()
            }
        }
    };
}
lazy_page!(HomePage, pages::home::Home);
lazy_page!(ConnectionsPage, pages::connections::Connections);
lazy_page!(ConnectionPage, pages::connection::Connection);
lazy_page!(HealthPage, pages::health::Health);
lazy_page!(ConnectPage, pages::connect::Connect);
lazy_page!(RegistrationsPage, pages::registrations::Registrations);
lazy_page!(OutboxPage, pages::outbox::Outbox);
lazy_page!(LoginPage, pages::login::Login);
lazy_page!(SetupPage, pages::login::Setup);
lazy_page!(UsersPage, pages::users::Users);
lazy_page!(AuditPage, pages::audit::Audit);
lazy_page!(GuidedSetupPage, pages::guided::GuidedSetup);
lazy_page!(DashboardPage, pages::dashboard::Dashboard);
lazy_page!(IssuePage, pages::issue::Issue);
lazy_page!(HelpPage, pages::help::Help);

/// The top bar. On a phone-width screen the navigation folds behind a "Menu" button; it folds
/// only once the WASM runs (`data-menu` is set by an effect), so the server-rendered page, and a
/// browser without scripts, still shows every link.
#[component]
fn TopBar(me: Me) -> impl IntoView {
    // None until hydrated: no `data-menu`, nothing folded.
    let open = RwSignal::new(None::<bool>);
    Effect::new(move |_| open.set(Some(false)));
    let state = move || open.get().map(|o| if o { "open" } else { "closed" });
    view! {
        <header class="topbar" data-menu=state>
            <A href="/">"Impact Store App"</A>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match me.await {
                        Ok(Some(user)) => view! {
                            <button type="button" class="menu-toggle" aria-controls="site-nav"
                                aria-expanded=move || (open.get() == Some(true)).to_string()
                                on:click=move |_| open.update(|o| *o = Some(!o.unwrap_or(false)))>
                                "Menu"
                            </button>
                            <Nav user open/>
                        }.into_any(),
                        _ => ().into_any(),
                    }
                })}
            </Suspense>
        </header>
    }
}

#[component]
fn Nav(user: CurrentUser, open: RwSignal<Option<bool>>) -> impl IntoView {
    let manage = user.may(Access::ManageConnection);
    let admin = user.may(Access::Administer);
    view! {
        // A followed link folds the menu again (a click anywhere in it: the links are its items).
        <nav id="site-nav" aria-label="Main" on:click=move |_| {
            if open.get_untracked().is_some() {
                open.set(Some(false));
            }
        }>
            <A href="/guided-setup">"Guided Setup"</A>
            <A href="/connections">"Connections"</A>
            <A href="/health">"Health Dashboard"</A>
            {manage.then(|| view! { <A href="/registrations">"Instance registration"</A> <A href="/outbox">"Outbox"</A> })}
            <A href="/audit">"Audit"</A>
            {admin.then(|| view! { <A href="/users">"Users"</A> })}
        </nav>
        <div class="who">
            <span data-testid="whoami">{user.email.clone()}</span>
            <form method="post" action="/auth/logout">
                <button type="submit">"Sign out"</button>
            </form>
        </div>
    }
}

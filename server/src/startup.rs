use std::net::SocketAddr;

use axum::http::{header, HeaderValue};
use axum::{
    middleware,
    routing::{get, post},
    Router,
};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tower_http::{services::ServeDir, set_header::SetResponseHeader};

use app::{
    server::{db::Backend, AppState},
    shell, App,
};

use crate::{
    config::{self, Config, EdgeLimits},
    edge::{
        api,
        auth::{self, Auth, HeaderPolicy},
        body::{self, BodyLimits},
        fn_status, inbound, metrics, observe, openapi, ops,
        routes::{Recorder, RouteSpec},
        stream,
    },
    net::{
        admission::{self, Gate},
        coalesce::CoalescingListener,
        serve,
    },
    setup,
};

/// A bound, ready-to-run server. `build` binds (port 0 works), `run_until_stopped` serves.
pub struct Application {
    listener: TcpListener,
    router: Router,
    address: SocketAddr,
    pub state: AppState,
    /// Set when the server started with no users: the one-time first-administrator link.
    pub setup_link: Option<String>,
    /// Every route the router serves (for the access tests).
    pub route_table: Vec<RouteSpec>,
    /// The admission gate every request passes (tests wait on its queue instead of sleeping).
    pub gate: Gate,
    limits: EdgeLimits,
    /// PostgreSQL: where the event relay listens for what other replicas commit.
    relay_from: Option<String>,
}

/// How many connections the kernel may hold for the accept loop (capped by
/// `net.core.somaxconn`, 4,096 on the benchmark's machine; tokio's `bind` asks for 1,024).
/// Browsers come back all at once: when a replica stops, its event streams reconnect through
/// the balancer to the others. At 1,024 a busy replica's kernel dropped the connects beyond it,
/// nginx's timed out, and nginx marked the replica down for every browser (BENCHMARKS, issue 13,
/// twentieth session).
const ACCEPT_BACKLOG: u32 = 16 * 1024;

/// The listening socket, as `TcpListener::bind` makes it but with `ACCEPT_BACKLOG`.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As `bind` does on Unix: a restarted server takes its port back at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

impl Application {
    #[tracing::instrument(skip_all, fields(addr = %config.addr))]
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // Before anything records (the first build in a process installs it).
        metrics::handle();
        let listener = listen(config.addr)?;
        let address = listener.local_addr()?;
        let mut settings = config.settings.clone();
        settings.identity = (!settings.public_url.is_empty()).then(|| settings.public_url.clone());
        if settings.public_url.is_empty() {
            settings.public_url = format!("http://{address}");
        }
        let secure_cookies = settings.public_url.starts_with("https://");
        let keys = config.secret_keys.load(&config.database_url)?;
        let state = AppState::connect(&config.database_url, settings, keys).await?;
        let inbound_state = inbound::Inbound::new(state.clone());
        let setup_token = setup::first_administrator(&state, &config).await?;
        let limits = config.limits.clone();
        let gate = Gate::new(config.max_in_flight).queue_bound(limits.max_queued);
        app::server::accounts::limit_hashing(limits.hash_concurrency);
        state.streams.set_limit(limits.max_streams_per_user);
        let site_origin = auth::origin_of(&state.settings.public_url).ok_or_else(|| {
            anyhow::anyhow!(
                "IMPACT_PUBLIC_URL={:?} is not an http:// or https:// address",
                state.settings.public_url
            )
        })?;
        let auth = Auth {
            state: state.clone(),
            sessions: config.sessions,
            throttle: app::server::throttle::Throttle::new(
                state.db.clone(),
                limits.throttle_entries,
            ),
            secure_cookies,
            site_origin,
            trusted_proxies: config.trusted_proxies.clone().into(),
        };

        // Names from the site Cargo.toml declares; where it is and listens, from the config.
        let site = config::declared_site()?;
        let pkg_dir = site.site_pkg_dir.to_string();
        let leptos_options = LeptosOptions::builder()
            .output_name(site.output_name)
            .site_root(config.site_root.clone())
            .site_pkg_dir(site.site_pkg_dir)
            .site_addr(address)
            .build();
        let routes = route_list();

        let app_state = state.clone();
        use axum::http::Method as M;
        let fixed = Recorder::<LeptosOptions>::new("")
            .route("/healthz", &[M::GET], get(ops::healthz))
            .route(
                metrics::PATH,
                &[M::GET],
                get(metrics::metrics).with_state(metrics::Metrics {
                    token: config.metrics_token.clone(),
                    state: state.clone(),
                }),
            )
            .route(
                "/readyz",
                &[M::GET],
                get(ops::readyz).with_state(state.clone()),
            )
            .route(
                "/auth/login",
                &[M::POST],
                post(auth::login_form).with_state(auth.clone()),
            )
            .route(
                "/auth/logout",
                &[M::POST],
                post(auth::logout).with_state(auth.clone()),
            )
            .route(
                "/auth/setup",
                &[M::POST],
                post(setup::create_first_admin).with_state((auth.clone(), setup_token.clone())),
            )
            .route(
                "/api/auth/login",
                &[M::POST],
                post(auth::login_json).with_state(auth.clone()),
            )
            .route(
                "/api/auth/logout",
                &[M::POST],
                post(auth::logout).with_state(auth.clone()),
            )
            .route("/api/auth/me", &[M::GET], get(auth::me))
            .route(openapi::DOCUMENT_PATH, &[M::GET], get(openapi::document))
            .route(openapi::REFERENCE_PATH, &[M::GET], get(openapi::reference))
            .route(
                "/api/connections/{id}/events",
                &[M::GET],
                get(stream::events_stream).with_state(state.clone()),
            )
            .route(
                "/api/health-dashboard/events",
                &[M::GET],
                get(stream::changes_stream).with_state(state.clone()),
            )
            .route(
                "/connections/{id}/authorized",
                &[M::GET],
                get(api::authorized).with_state(state.clone()),
            )
            .route(
                "/inbound/v1/ping",
                &[M::POST],
                post(inbound::ping).with_state(inbound_state.clone()),
            )
            .route(
                "/inbound/v1/onboarded",
                &[M::POST],
                post(inbound::onboarded).with_state(inbound_state.clone()),
            )
            .route(
                "/inbound/v1/echo",
                &[M::POST],
                post(inbound::echo).with_state(inbound_state.clone()),
            );
        let (api_router, api_table) = api::routes(state.clone());
        let mut table = fixed.table;
        table.extend(api_table);
        for listing in &routes {
            for m in listing.methods() {
                let method = match m {
                    leptos_router::Method::Get => M::GET,
                    leptos_router::Method::Post => M::POST,
                    leptos_router::Method::Put => M::PUT,
                    leptos_router::Method::Delete => M::DELETE,
                    leptos_router::Method::Patch => M::PATCH,
                };
                table.push(RouteSpec {
                    method,
                    path: listing.path().to_string(),
                });
            }
        }
        for (path, method) in leptos::server_fn::axum::server_fn_paths() {
            table.push(RouteSpec {
                method: method.clone(),
                path: path.to_string(),
            });
        }
        let router = fixed
            .router
            .nest("/api", api_router)
            .leptos_routes_with_context(
                &leptos_options,
                routes,
                move || provide_context(app_state.clone()),
                {
                    let options = leptos_options.clone();
                    move || shell(options.clone())
                },
            )
            // A file of the site (favicon), or else the app's own "Page not found" with a 404:
            // a mistyped address gets a page with a way back, not the browser's error page.
            .fallback(leptos_axum::file_and_error_handler_with_context(
                {
                    let state = state.clone();
                    move || provide_context(state.clone())
                },
                shell,
            ))
            .with_state(leptos_options)
            .layer(middleware::from_fn_with_state(auth, auth::guard))
            // The bundle (WASM, JS, CSS) is public and needs no session lookup per file: it is
            // added after the guard, so only the security headers apply to it.
            .nest_service(
                &format!("/{pkg_dir}"),
                // A file is sent gzipped (its FILE.gz) or not depending on Accept-Encoding, so
                // caches must key on it.
                SetResponseHeader::if_not_present(
                    ServeDir::new(format!("{}/{pkg_dir}", config.site_root)).precompressed_gzip(),
                    header::VARY,
                    HeaderValue::from_static("accept-encoding"),
                ),
            )
            .layer(middleware::from_fn(fn_status::statuses))
            .layer(middleware::from_fn_with_state(
                HeaderPolicy {
                    https: secure_cookies,
                },
                auth::security_headers,
            ))
            // A request waiting for its turn has built none of the stack above.
            .layer(middleware::from_fn_with_state(
                gate.clone(),
                admission::admit,
            ))
            // Outermost: the body arrives (in time, within its size) before the request queues.
            .layer(middleware::from_fn_with_state(
                BodyLimits {
                    max_bytes: limits.max_body_bytes,
                    timeout: limits.body_read,
                },
                body::read_whole,
            ))
            // Around everything: the request's id, span, access-log line and metrics, so that
            // refusals by the layers above (413, 408, 503) are counted and logged too.
            .layer(middleware::from_fn(observe::requests));

        let setup_link = setup_token
            .lock()
            .ok()
            .and_then(|t| t.clone())
            .map(|t| format!("{}/setup?token={t}", state.settings.public_url));
        let relay_from =
            (state.db.backend == Backend::Postgres).then(|| config.database_url.clone());
        Ok(Self {
            listener,
            router,
            address,
            state,
            setup_link,
            route_table: table,
            gate,
            limits,
            relay_from,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until SIGTERM or Ctrl-C.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then shuts down gracefully: open connections are closed
    /// once their request is answered (the tests stop and restart an app on one address so).
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let hub = self.state.hub.clone();
        hub.spawn_keep_alive(crate::edge::stream::KEEP_ALIVE);
        if let Some(url) = self.relay_from {
            tokio::spawn(app::server::relay::run(self.state.clone(), url));
        }
        // Work a crash or another replica left unheld is carried on (runs are recorded step by
        // step); the first sweep is now.
        // Alive before the first stream is counted (see stream_slots).
        app::server::stream_slots::heartbeat(&self.state)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let sweep = tokio::spawn(app::server::sweep::run(self.state.clone()));
        let health = tokio::spawn(app::server::heartbeat::run(self.state.clone()));
        let upkeep = metrics::spawn_upkeep();
        let work = self.state.work.clone();
        let state = self.state.clone();
        serve::serve(
            CoalescingListener(self.listener),
            self.router,
            &self.limits,
            async move {
                stop.await;
                // End the live streams, or the server would wait on them for ever.
                hub.close();
                // No new claims, then the work here stops and its leases go back, so another
                // replica carries it on at once.
                sweep.abort();
                health.abort();
                let _ = sweep.await;
                let _ = health.await;
                if let Some(upkeep) = upkeep {
                    upkeep.abort();
                }
                work.stop_all().await;
                app::server::stream_slots::release_all(&state).await;
            },
        )
        .await;
        Ok(())
    }
}

/// The app's page routes, generated once per process. Generating them runs the app with a
/// process-wide "suppress resource loads" flag set, and a page render whose resource is first
/// polled meanwhile waits for ever (leptos issue #4773): a process that starts several apps (the
/// tests) saw a page request hang. Once generated, no later start sets the flag again.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// More connections than tokio's `bind` lets wait (1,024) complete their handshake while
    /// nothing accepts them: a burst of browsers coming back waits in the queue instead of
    /// having its connects dropped.
    #[tokio::test]
    async fn connects_beyond_tokios_default_queue_wait_to_be_accepted() {
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        assert!(
            somaxconn > 1_100,
            "net.core.somaxconn is {somaxconn}: raise it above 1,100 (the kernel caps the \
             accept queue there; README, Several replicas)"
        );
        let listener = listen("127.0.0.1:0".parse().expect("addr")).expect("listen");
        let addr = listener.local_addr().expect("addr");
        let n = 1_100;
        let connects = (0..n).map(|_| tokio::net::TcpStream::connect(addr));
        // A connect beyond a full queue is dropped and sent again after a second.
        let all = tokio::time::timeout(
            Duration::from_millis(900),
            futures::future::join_all(connects),
        )
        .await
        .expect("some connects waited for a place in the accept queue");
        assert_eq!(all.iter().filter(|c| c.is_ok()).count(), n);
        drop(listener);
    }
}

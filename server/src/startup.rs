use std::net::SocketAddr;

use axum::{routing::get, Router};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tower_http::services::ServeDir;

use app::{server::AppState, shell, App};

use crate::{api, config::Config, ops};

/// A bound, ready-to-run server. `build` binds (port 0 works), `run_until_stopped` serves.
pub struct Application {
    listener: TcpListener,
    router: Router,
    address: SocketAddr,
    pub state: AppState,
}

impl Application {
    #[tracing::instrument(skip_all, fields(addr = %config.addr))]
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.addr).await?;
        let address = listener.local_addr()?;
        let mut settings = config.settings.clone();
        if settings.public_url.is_empty() {
            settings.public_url = format!("http://{address}");
        }
        let state = AppState::connect(&config.database_url, settings).await?;

        let leptos_options = LeptosOptions::builder()
            .output_name("impact-connect")
            .site_root(config.site_root.clone())
            .site_pkg_dir("pkg")
            .site_addr(address)
            .build();
        let routes = generate_route_list(App);

        let app_state = state.clone();
        let router = Router::<LeptosOptions>::new()
            .route("/healthz", get(ops::healthz))
            .route("/readyz", get(ops::readyz).with_state(state.clone()))
            .nest("/api", api::router(state.clone()))
            .leptos_routes_with_context(
                &leptos_options,
                routes,
                move || provide_context(app_state.clone()),
                {
                    let options = leptos_options.clone();
                    move || shell(options.clone())
                },
            )
            .nest_service("/pkg", ServeDir::new(format!("{}/pkg", config.site_root)))
            .fallback_service(ServeDir::new(config.site_root.clone()))
            .with_state(leptos_options);

        Ok(Self { listener, router, address, state })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

//! The provider simulator: the provider (IDI) side of docs/PROVIDER_PROTOCOL.md, several
//! instances under `/i/{instance}`, each with faults set at run time through `/sim/…`.
//!
//! Routes are declared with their full paths (no `nest`) so that the path a handler sees is the
//! path the consumer signed.
mod admin;
mod authorize;
mod callback;
mod catalog;
mod consumer;
mod error;
mod extract;
mod faults;
mod idempotent;
mod registration;
mod signed;
mod state;
mod tls;

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use axum::{
    extract::{DefaultBodyLimit, Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post, put},
    Router,
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tower_http::trace::TraceLayer;

pub use faults::{EntitlementFault, Faults};
pub use tls::SimCert;

use error::SimError;
use extract::Params;
use state::SimState;

/// Protocol payloads are tiny; anything bigger is a mistake.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// The `oversized_answer` fault's body: twice what a consumer reads from a provider.
const OVERSIZED_BYTES: usize = 2 * 1024 * 1024;

/// A simulator serving in a background task. Dropping it leaves the server running until the
/// runtime ends; `stop` shuts it down gracefully.
#[derive(Debug)]
pub struct Simulator {
    address: SocketAddr,
    /// Set when it serves https.
    certificate: Option<tls::Certificate>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Simulator {
    /// Binds (port 0 allowed) and serves in a background tokio task.
    pub async fn spawn(addr: SocketAddr) -> anyhow::Result<Simulator> {
        Self::start(addr, None).await
    }

    /// Like `spawn`, over https with this certificate (which `set_certificate` can swap).
    pub async fn spawn_tls(addr: SocketAddr, cert: &SimCert) -> anyhow::Result<Simulator> {
        Self::start(addr, Some(tls::Certificate::new(cert)?)).await
    }

    async fn start(
        addr: SocketAddr,
        certificate: Option<tls::Certificate>,
    ) -> anyhow::Result<Simulator> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the provider simulator to {addr}"))?;
        let address = listener.local_addr()?;
        let (shutdown, stop) = oneshot::channel::<()>();
        let served = certificate.clone();
        let task = tokio::spawn(async move {
            // Only an explicit `stop` ends the server; a dropped handle does not.
            let stopped = async {
                if stop.await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            match served {
                Some(certificate) => tls::serve(listener, router(), certificate, stopped).await,
                None => {
                    if let Err(e) = axum::serve(listener, router())
                        .with_graceful_shutdown(stopped)
                        .await
                    {
                        tracing::error!(error = %e, "the provider simulator stopped");
                    }
                }
            }
        });
        tracing::info!(%address, https = certificate.is_some(), "provider simulator started");
        Ok(Simulator {
            address,
            certificate,
            shutdown,
            task,
        })
    }

    /// The certificate presented from the next handshake on (an https simulator only).
    pub fn set_certificate(&self, cert: &SimCert) -> anyhow::Result<()> {
        self.certificate
            .as_ref()
            .context("this simulator serves plain http")?
            .set(cert)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Base URL of one simulated instance.
    pub fn instance_url(&self, instance: &str) -> String {
        let scheme = if self.certificate.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/i/{instance}", self.address)
    }

    /// Stops accepting connections and waits for requests in flight to finish.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the provider simulator task failed");
        }
    }
}

/// The whole simulator app, its state inside.
pub fn router() -> Router {
    let state = SimState::new();
    Router::new()
        .merge(idi_routes(state.clone()))
        .route(
            "/sim/instances/{instance}/faults",
            put(admin::put_faults).get(admin::get_faults),
        )
        .route(
            "/sim/instances/{instance}",
            axum::routing::delete(admin::reset).get(admin::counters),
        )
        .route(
            "/sim/instances/{instance}/revoke",
            axum::routing::post(admin::revoke),
        )
        .route(
            "/sim/instances/{instance}/ask-rotation",
            axum::routing::post(admin::ask_rotation),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The provider endpoints of every instance, behind the `down` and `slow_ms` faults.
fn idi_routes(state: SimState) -> Router<SimState> {
    const C: &str = "/i/{instance}/idi/v1/consumers/{id}";
    Router::new()
        .route("/i/{instance}/idi/v1/info", get(registration::info))
        .route(
            "/i/{instance}/idi/v1/admin/registrations",
            post(registration::initiate),
        )
        .route(
            "/i/{instance}/idi/v1/registrations",
            post(registration::exchange),
        )
        .route(
            "/i/{instance}/idi/authorize",
            get(authorize::show).post(authorize::decide),
        )
        .route(C, get(consumer::get).delete(consumer::off_board))
        .route(&format!("{C}/entitlements"), get(consumer::entitlements))
        .route(&format!("{C}/callback-test"), post(consumer::callback_test))
        .route(
            &format!("{C}/authorizations"),
            post(consumer::authorizations),
        )
        .route(&format!("{C}/onboarding"), post(consumer::start_onboarding))
        .route(
            &format!("{C}/onboarding/complete"),
            post(consumer::complete_onboarding),
        )
        .route(&format!("{C}/settings/{{group}}"), get(consumer::settings))
        .route(&format!("{C}/echo"), post(consumer::echo))
        .route(&format!("{C}/credentials/rotate"), post(consumer::rotate))
        .route(&format!("{C}/activate"), post(consumer::activate))
        .route(&format!("{C}/data-sample"), get(consumer::data_sample))
        .route(&format!("{C}/data/tables"), get(consumer::data_tables))
        .route(
            &format!("{C}/data/tables/{{table}}/page"),
            post(consumer::data_page),
        )
        .route_layer(middleware::from_fn_with_state(state, instance_faults))
}

/// `slow_ms` delays every answer, then `down` answers 503 before anything else runs;
/// `late_answer_ms` holds the answer back after the endpoint has acted.
async fn instance_faults(
    State(state): State<SimState>,
    params: Params,
    req: Request,
    next: Next,
) -> Response {
    let instance = params.instance();
    if let Some(id) = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
    {
        state.with(&instance, |i| i.counters.saw_request_id(id));
    }
    let slow_ms = state.faults(&instance).slow_ms;
    if slow_ms > 0 {
        tokio::time::sleep(Duration::from_millis(slow_ms)).await;
    }
    let faults = state.faults(&instance);
    if faults.down {
        return SimError::Unavailable.into_response();
    }
    if let Some(to) = faults.redirect_to {
        return (
            axum::http::StatusCode::TEMPORARY_REDIRECT,
            [(axum::http::header::LOCATION, to)],
        )
            .into_response();
    }
    if faults.oversized_answer {
        // Valid JSON, padded: only its size is wrong.
        let body = format!("{{\"padding\": \"{}\"}}", "x".repeat(OVERSIZED_BYTES));
        return (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
    }
    let answer = next.run(req).await;
    if faults.late_answer_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.late_answer_ms)).await;
    }
    answer
}

async fn not_found() -> SimError {
    SimError::NotFound("There is no provider endpoint at this address.".into())
}

async fn method_not_allowed() -> SimError {
    SimError::MethodNotAllowed
}

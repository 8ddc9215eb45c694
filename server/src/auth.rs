//! Sign-in, sessions, the per-route guard, CSRF protection, login throttling and security
//! headers.
use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Query, Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
    Form,
};
use serde::Deserialize;

use app::{
    model::{Access, ApiError, CurrentUser},
    server::{accounts, AppState, ServiceError},
};

use crate::policy::{self, Surface};

pub const COOKIE: &str = "impact_session";

/// Shared by the guard and the sign-in handlers.
#[derive(Clone)]
pub struct Auth {
    pub state: AppState,
    pub sessions: accounts::SessionPolicy,
    pub throttle: Arc<Throttle>,
    /// Cookies get `Secure` when the app is served over https.
    pub secure_cookies: bool,
}

/// Slows repeated failed sign-ins: after `FREE_FAILURES` failures for one email (or one client
/// address) within the window, each further attempt must wait, doubling up to 15 minutes.
#[derive(Default)]
pub struct Throttle {
    entries: Mutex<HashMap<String, (u32, Instant)>>,
}

const FREE_FAILURES: u32 = 5;
const WINDOW: Duration = Duration::from_secs(15 * 60);

impl Throttle {
    /// Seconds to wait before another attempt is accepted, if any.
    pub fn wait(&self, keys: &[String]) -> Option<u64> {
        let map = self.entries.lock().ok()?;
        keys.iter()
            .filter_map(|k| map.get(k))
            .filter_map(|(n, last)| {
                if *n < FREE_FAILURES || last.elapsed() > WINDOW {
                    return None;
                }
                let delay =
                    Duration::from_secs(2u64.saturating_pow(n - FREE_FAILURES + 1).min(900));
                delay
                    .checked_sub(last.elapsed())
                    .map(|d| d.as_secs().max(1))
            })
            .max()
    }

    pub fn failed(&self, keys: &[String]) {
        if let Ok(mut map) = self.entries.lock() {
            for k in keys {
                let e = map.entry(k.clone()).or_insert((0, Instant::now()));
                if e.1.elapsed() > WINDOW {
                    e.0 = 0;
                }
                e.0 += 1;
                e.1 = Instant::now();
            }
        }
    }

    pub fn succeeded(&self, keys: &[String]) {
        if let Ok(mut map) = self.entries.lock() {
            for k in keys {
                map.remove(k);
            }
        }
    }
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(ApiError {
            code: code.into(),
            message: message.into(),
            field: None,
        }),
    )
        .into_response()
}

/// A state-changing request from another site is refused: the browser says where it came from.
fn cross_origin(req: &Request) -> bool {
    if req.method() == Method::GET
        || req.method() == Method::HEAD
        || req.method() == Method::OPTIONS
    {
        return false;
    }
    let headers = req.headers();
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
        return origin == "null" || origin_host != host;
    }
    // No Origin: only a cross-site fetch metadata header can still tell us.
    matches!(
        headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
        Some("cross-site")
    )
}

/// Resolves the session, refuses cross-site writes, and checks the route's access level.
pub async fn guard(State(auth): State<Auth>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let surface = policy::surface(&path);
    if cross_origin(&req) {
        tracing::warn!(%path, "cross-origin request refused");
        return json_error(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "Cross-site requests are refused. Use the app itself.",
        );
    }
    let access = policy::access_for(req.method(), &path);
    let user = match session_token(req.headers()) {
        Some(token) => match accounts::resolve_session(&auth.state.db, &token, auth.sessions).await
        {
            Ok(u) => u,
            // Public routes (health, readiness, sign-in) still answer when the database does not.
            Err(_) if access == Access::Public => None,
            Err(e) => return e.into_response(),
        },
        None => None,
    };
    if access != Access::Public {
        match (&user, surface) {
            (None, Surface::Api) => {
                return json_error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Sign in first: this needs a session.",
                )
            }
            (None, Surface::Page) => {
                let next = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                return Redirect::to(&format!("/login?next={}", urlencode(next))).into_response();
            }
            (Some(u), Surface::Api) if !u.may(access) => {
                return json_error(StatusCode::FORBIDDEN, "forbidden", access.refusal())
            }
            (Some(u), Surface::Page) if !u.may(access) => return forbidden_page(access),
            _ => {}
        }
    }
    if let Some(u) = user {
        req.extensions_mut().insert(u);
    }
    next.run(req).await
}

fn forbidden_page(access: Access) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not allowed</title>\
         <link rel=\"stylesheet\" href=\"/pkg/impact-connect.css\"></head><body><main><section class=\"card\">\
         <h1>Not allowed</h1><p>{}</p><p><a href=\"/\">Back to the start page</a></p></section></main></body></html>",
        access.refusal()
    );
    (StatusCode::FORBIDDEN, Html(body)).into_response()
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Only same-site paths are followed after sign-in (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

/// Security headers on every response. Scripts are governed by the page's own CSP (with the
/// per-response nonce); this header adds what a meta CSP cannot: frame-ancestors.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "frame-ancestors 'none'; object-src 'none'; base-uri 'self'",
        ));
    res
}

pub fn set_cookie(auth: &Auth, token: &str, max_age: i64) -> HeaderValue {
    let secure = if auth.secure_cookies { "; Secure" } else { "" };
    let v = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(Deserialize)]
pub struct LoginForm {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub next: Option<String>,
}

enum LoginOutcome {
    Ok(CurrentUser, String),
    Throttled(u64),
    Refused(ServiceError),
}

async fn attempt(
    auth: &Auth,
    peer: Option<SocketAddr>,
    email: &str,
    password: &str,
) -> LoginOutcome {
    let mut keys = vec![format!("email:{}", email.trim().to_lowercase())];
    if let Some(p) = peer {
        keys.push(format!("ip:{}", p.ip()));
    }
    if let Some(wait) = auth.throttle.wait(&keys) {
        return LoginOutcome::Throttled(wait);
    }
    match accounts::verify_login(&auth.state.db, email, password).await {
        Ok(user) => {
            auth.throttle.succeeded(&keys);
            match accounts::start_session(&auth.state.db, &user, auth.sessions).await {
                Ok(token) => {
                    tracing::info!(user = %user.email, "signed in");
                    LoginOutcome::Ok(user, token)
                }
                Err(e) => LoginOutcome::Refused(e),
            }
        }
        Err(e) => {
            if matches!(e, ServiceError::Unauthorized(_)) {
                auth.throttle.failed(&keys);
            }
            tracing::info!("sign-in refused");
            LoginOutcome::Refused(e)
        }
    }
}

fn throttled_message(wait: u64) -> String {
    format!("Too many failed sign-ins. Wait {wait} seconds and try again.")
}

/// The sign-in form's POST (works without JavaScript): a cookie and a redirect.
#[tracing::instrument(skip_all)]
pub async fn login_form(
    State(auth): State<Auth>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let back = |msg: &str| {
        Redirect::to(&format!(
            "/login?error={}&next={}",
            urlencode(msg),
            urlencode(&next)
        ))
        .into_response()
    };
    match attempt(&auth, Some(peer), &form.email, &form.password).await {
        LoginOutcome::Ok(_, token) => {
            let mut res = Redirect::to(&next).into_response();
            res.headers_mut().insert(
                header::SET_COOKIE,
                set_cookie(&auth, &token, auth.sessions.absolute.num_seconds()),
            );
            res
        }
        LoginOutcome::Throttled(wait) => back(&throttled_message(wait)),
        LoginOutcome::Refused(e) => back(&e.to_api().message),
    }
}

/// JSON sign-in for API clients and tests.
#[tracing::instrument(skip_all)]
pub async fn login_json(
    State(auth): State<Auth>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    crate::api::Json(form): crate::api::Json<LoginForm>,
) -> Response {
    match attempt(&auth, Some(peer), &form.email, &form.password).await {
        LoginOutcome::Ok(user, token) => {
            let mut res = axum::Json(user).into_response();
            res.headers_mut().insert(
                header::SET_COOKIE,
                set_cookie(&auth, &token, auth.sessions.absolute.num_seconds()),
            );
            res
        }
        LoginOutcome::Throttled(wait) => {
            let mut res = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                &throttled_message(wait),
            );
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            res
        }
        LoginOutcome::Refused(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    pub next: Option<String>,
}

/// Ends the session (POST, so a link elsewhere cannot sign you out).
#[tracing::instrument(skip_all)]
pub async fn logout(
    State(auth): State<Auth>,
    headers: HeaderMap,
    Query(_q): Query<NextQuery>,
) -> Response {
    if let Some(token) = session_token(&headers) {
        if let Err(e) = accounts::end_session(&auth.state.db, &token).await {
            return e.into_response();
        }
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&auth, "", 0));
    res
}

pub async fn me(user: Option<axum::Extension<CurrentUser>>) -> Response {
    match user {
        Some(axum::Extension(u)) => axum::Json(u).into_response(),
        None => json_error(StatusCode::UNAUTHORIZED, "unauthorized", "Not signed in."),
    }
}

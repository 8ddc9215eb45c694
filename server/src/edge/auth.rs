//! Sign-in, sessions, the per-route guard, CSRF protection, login throttling and security
//! headers.
use std::{net::SocketAddr, sync::Arc};

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
    server::{
        accounts,
        throttle::{Keys, Throttle},
        AppState, ServiceError,
    },
};

use super::{
    json::json_error,
    policy::{self, Surface},
};

pub const COOKIE: &str = "impact_session";

/// Shared by the guard and the sign-in handlers.
#[derive(Clone)]
pub struct Auth {
    pub state: AppState,
    pub sessions: accounts::SessionPolicy,
    pub throttle: Throttle,
    /// Cookies get `Secure` when the app is served over https.
    pub secure_cookies: bool,
    /// The public URL's origin (`scheme://host[:port]`): a browser's write must come from it.
    pub site_origin: String,
    /// Proxies whose X-Forwarded-For names the client (see `client_addr`).
    pub trusted_proxies: Arc<[std::net::IpAddr]>,
}

/// The signed-in session's key, put on the request by the guard (its streams are registered
/// under it, so signing out can end them).
#[derive(Clone, Debug)]
pub struct SessionKey(pub String);

/// `scheme://host[:port]` of a URL or an Origin header, lowercased, without a default port.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let authority = match scheme.as_str() {
        "http" => authority.strip_suffix(":80").unwrap_or(&authority),
        "https" => authority.strip_suffix(":443").unwrap_or(&authority),
        _ => return None,
    };
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
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

/// A state-changing request from another site is refused: the browser says where it came from.
/// Compared with the public URL's origin, not the Host header: behind a proxy Host is the
/// proxy's upstream name, and over HTTP/2 there is no Host at all.
fn cross_origin(req: &Request, site_origin: &str) -> bool {
    if req.method() == Method::GET
        || req.method() == Method::HEAD
        || req.method() == Method::OPTIONS
    {
        return false;
    }
    let headers = req.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().ok().and_then(origin_of);
        return origin.as_deref() != Some(site_origin);
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
    if cross_origin(&req, &auth.site_origin) {
        tracing::warn!(%path, "cross-origin request refused");
        return json_error(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "Cross-site requests are refused. Use the app itself.",
        );
    }
    let access = policy::access_for(req.method(), &path);
    let token = session_token(req.headers());
    let user = match &token {
        Some(token) => {
            match accounts::resolve_session(&auth.state.db, token, auth.sessions).await {
                Ok(u) => u,
                // Public routes (health, readiness, sign-in) still answer when the database does not.
                Err(_) if access == Access::Public => None,
                Err(e) => return e.into_response(),
            }
        }
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
    if let (Some(u), Some(token)) = (user, token) {
        req.extensions_mut().insert(u);
        req.extensions_mut()
            .insert(SessionKey(accounts::session_key(&token)));
    }
    next.run(req).await
}

fn forbidden_page(access: Access) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not allowed</title>\
         <link rel=\"stylesheet\" href=\"{css}\"></head><body><main><section class=\"card\">\
         <h1>Not allowed</h1><p>{}</p><p><a href=\"/\">Back to the start page</a></p></section></main></body></html>",
        access.refusal(),
        css = app::STYLESHEET,
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

/// Only same-site paths are followed after sign-in (no open redirect; the rule is
/// `app::model::safe_next`).
fn safe_next(next: Option<&str>) -> String {
    next.and_then(app::model::safe_next)
        .unwrap_or("/")
        .to_string()
}

/// What `security_headers` adds beyond the fixed set.
#[derive(Clone, Copy)]
pub struct HeaderPolicy {
    /// Served over https: browsers are told to use nothing else (HSTS).
    pub https: bool,
}

/// Security headers on every response. Scripts are governed by the page's own CSP (with the
/// per-response nonce); this header adds what a meta CSP cannot: frame-ancestors. Answers of the
/// API and the server functions carry a user's data: no cache may keep them.
pub async fn security_headers(
    State(policy): State<HeaderPolicy>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let private = path.starts_with("/api/") || path.starts_with("/fn/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if private {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if policy.https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
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

#[derive(Deserialize, utoipa::ToSchema)]
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
    peer: SocketAddr,
    headers: &HeaderMap,
    email: &str,
    password: &str,
) -> LoginOutcome {
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client = super::client_addr::client_ip(peer.ip(), forwarded, &auth.trusted_proxies);
    let keys = Keys::new(email, Some(client));
    // Reserved before the (slow) password check, so parallel guesses cannot all pass.
    match auth.throttle.reserve(&keys).await {
        Ok(Ok(())) => {}
        Ok(Err(wait)) => return LoginOutcome::Throttled(wait),
        Err(e) => return LoginOutcome::Refused(e),
    }
    match accounts::verify_login(&auth.state.db, email, password).await {
        Ok(user) => {
            if let Err(e) = auth.throttle.succeeded(&keys).await {
                tracing::warn!(error = %e, "clearing the sign-in failures failed; they expire");
            }
            match accounts::start_session(&auth.state.db, &user, auth.sessions).await {
                Ok(token) => {
                    tracing::info!(user = %user.email, "signed in");
                    LoginOutcome::Ok(user, token)
                }
                Err(e) => LoginOutcome::Refused(e),
            }
        }
        Err(e) => {
            if !matches!(e, ServiceError::Unauthorized(_)) {
                if let Err(e) = auth.throttle.release(&keys).await {
                    tracing::warn!(error = %e, "giving back a sign-in reservation failed");
                }
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
    headers: HeaderMap,
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
    match attempt(&auth, peer, &headers, &form.email, &form.password).await {
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

/// JSON sign-in for API clients and tests: sets the session cookie (`impact_session`).
///
/// Failed attempts are throttled per email and address and per address: 429 with
/// `Retry-After`.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginForm,
    responses(
        (status = 200, description = "Signed in: the session cookie is set", body = CurrentUser,
            headers(("set-cookie" = String, description = "impact_session=...; HttpOnly; SameSite=Lax"))),
        (status = 401, description = "Wrong email or password", body = ApiError),
        (status = 429, description = "Too many failed attempts: wait `Retry-After` seconds", body = ApiError),
    ))]
#[tracing::instrument(skip_all)]
pub async fn login_json(
    State(auth): State<Auth>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    super::json::Json(form): super::json::Json<LoginForm>,
) -> Response {
    match attempt(&auth, peer, &headers, &form.email, &form.password).await {
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

/// Ends the session (POST, so a link elsewhere cannot sign you out) and its event streams.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 303, description = "Signed out (the cookie is cleared); on to the sign-in page")))]
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
        // Its open event streams end too, on every replica (within a moment: they are woken).
        app::server::revocations::everywhere(
            &auth.state,
            app::server::revocations::Revocation::Session(accounts::session_key(&token)),
        )
        .await;
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&auth, "", 0));
    res
}

/// Who is signed in.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth",
    responses(
        (status = 200, description = "The signed-in user", body = CurrentUser),
        (status = 401, description = "Not signed in", body = ApiError),
    ))]
pub async fn me(user: Option<axum::Extension<CurrentUser>>) -> Response {
    match user {
        Some(axum::Extension(u)) => axum::Json(u).into_response(),
        None => json_error(StatusCode::UNAUTHORIZED, "unauthorized", "Not signed in."),
    }
}

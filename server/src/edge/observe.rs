//! What every request leaves behind for operators (outermost middleware): its id, a span around
//! its handling that carries the id into every log line, one access-log line, and its count and
//! latency in the metrics.
//!
//! The id is the client's `X-Request-Id` when it is a plain short one (see
//! `app::server::request_id::accept`), else a fresh one; it is returned in the response's
//! `X-Request-Id` and sent on the provider calls the request makes (`request_id::scope`).
//!
//! Routes are named by their template (`/api/connections/{id}`), never by the path itself, so
//! the metrics' labels are a closed set and no id, token or query string reaches a log line.
use std::{sync::Arc, time::Instant};

use axum::{
    body::Body,
    extract::{MatchedPath, Request},
    http::{header, HeaderName, HeaderValue, Method},
    middleware::Next,
    response::Response,
};
use http_body_util::BodyExt;
use tracing::Instrument;

use app::server::{metrics as names, request_id};

/// The label and log name of a request no route matched (static files, 404s).
const UNMATCHED: &str = "unmatched";

/// Middleware: see the module's description.
pub async fn requests(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id: Arc<str> = req
        .headers()
        .get(request_id::HEADER)
        .and_then(|v| request_id::accept(v.as_bytes()))
        .map(Arc::from)
        .unwrap_or_else(|| request_id::fresh().into());
    let route = route_template(&req);
    let method = method_label(req.method());
    let span = tracing::info_span!("request", request_id = %id, method, route = %route);
    let mut res = request_id::scope(id.clone(), next.run(req))
        .instrument(span.clone())
        .await;
    let status = res.status().as_u16();
    let took = started.elapsed();
    let labels = || {
        [
            ("method", method.to_string()),
            ("route", route.clone()),
            ("status", status.to_string()),
        ]
    };
    metrics::counter!(names::HTTP_REQUESTS, &labels()[..]).increment(1);
    metrics::histogram!(names::HTTP_DURATION, &labels()[..]).record(took.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            target: "access",
            request_id = %id,
            method,
            route = %route,
            status,
            latency_ms = took.as_secs_f64() * 1000.0,
            "answered"
        )
    });
    // Only the characters `accept` lets through, or hex: always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static(request_id::HEADER), value);
    }
    if is_event_stream(&res) {
        res = logged_until_it_ends(res, span, started);
    }
    res
}

/// The route's template as the router matched it; nested services (the bundle under `/pkg`)
/// by their prefix (`/pkg/*`).
fn route_template(req: &Request) -> String {
    match req.extensions().get::<MatchedPath>() {
        Some(p) => match p.as_str().split_once("/{*") {
            Some((prefix, _)) => format!("{prefix}/*"),
            None => p.as_str().to_string(),
        },
        None => UNMATCHED.to_string(),
    }
}

/// The method as a label: the standard ones by name, any other (a client may send anything) as
/// `other`, so the labels stay a closed set.
fn method_label(m: &Method) -> &'static str {
    static KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|k| *k == m)
        .map_or("other", Method::as_str)
}

fn is_event_stream(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// An event stream's answer is logged when it starts (the access line); this logs its end, in
/// the same request span, when the body is dropped (the stream ended or the client left).
fn logged_until_it_ends(res: Response, span: tracing::Span, started: Instant) -> Response {
    struct Ends(tracing::Span, Instant);
    impl Drop for Ends {
        fn drop(&mut self) {
            let seconds = self.1.elapsed().as_secs_f64();
            self.0
                .in_scope(|| tracing::info!(target: "access", seconds, "event stream ended"));
        }
    }
    let ends = Ends(span, started);
    res.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _held = &ends;
            frame
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standard_methods_are_labels_of_their_own() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let odd = Method::from_bytes(b"BREW").expect("an extension method");
        assert_eq!(method_label(&odd), "other");
    }
}

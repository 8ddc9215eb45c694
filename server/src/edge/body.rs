//! Request bodies are read whole, within a time and a size limit, before the request waits for
//! its turn (`admission`) or reaches a handler. A client trickling its body therefore holds
//! only its own connection and the few bytes it sent, never one of the turns every other
//! request needs; one that is too slow gets 408, one too large 413.
use std::time::Duration;

use axum::{
    body::{Body, HttpBody},
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode, Version},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::json::json_error;

#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// Middleware (outside the admission gate): reads the body or refuses the request.
pub async fn read_whole(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let http1 = req.version() <= Version::HTTP_11;
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return closing(http1, too_large(limits.max_bytes));
    }
    let (parts, body) = req.into_parts();
    if HttpBody::is_end_stream(&body) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let read = tokio::time::timeout(
        limits.timeout,
        Limited::new(body, limits.max_bytes).collect(),
    );
    match read.await {
        Ok(Ok(collected)) => {
            next.run(Request::from_parts(parts, Body::from(collected.to_bytes())))
                .await
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            closing(http1, too_large(limits.max_bytes))
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "request body could not be read");
            closing(
                http1,
                json_error(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    "The request body could not be read.",
                ),
            )
        }
        Err(_) => {
            tracing::debug!(path = %parts.uri.path(), "request body too slow");
            closing(
                http1,
                json_error(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    &format!(
                        "The request body did not arrive within {} seconds.",
                        limits.timeout.as_secs_f32()
                    ),
                ),
            )
        }
    }
}

fn too_large(max: usize) -> Response {
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &format!("The request body is larger than {max} bytes."),
    )
}

/// The rest of the body was not read: an HTTP/1.1 connection cannot carry another request
/// (HTTP/2 resets just the stream, and has no Connection header).
fn closing(http1: bool, mut res: Response) -> Response {
    if http1 {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res.into_response()
}

//! Server functions (`/fn/…`) answer every error with 500: that is how the server_fn crate
//! sends them, whatever went wrong. The error itself says what kind it is (its `code`), so here
//! the status is put right: arguments the server could not read are 400, a refusal or a missing
//! thing its 4xx, and only an unexpected failure stays 500. The body is unchanged (the page's
//! client reads any 4xx or 5xx the same way).
use axum::{
    body::Body,
    extract::Request,
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt;

use app::model::ApiError;

/// Error bodies are small; a larger one is passed on as it is.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// The status an error with this code stands for (None: leave it).
fn status_for(code: &str) -> Option<StatusCode> {
    Some(match code {
        app::api::BAD_ARGUMENTS => StatusCode::BAD_REQUEST,
        "invalid" => StatusCode::UNPROCESSABLE_ENTITY,
        "not_found" => StatusCode::NOT_FOUND,
        "conflict" | "refused" => StatusCode::CONFLICT,
        "unauthorized" => StatusCode::UNAUTHORIZED,
        "forbidden" => StatusCode::FORBIDDEN,
        "provider_unavailable" => StatusCode::BAD_GATEWAY,
        _ => return None,
    })
}

pub async fn statuses(req: Request, next: Next) -> Response {
    let is_fn = req.uri().path().starts_with("/fn/");
    let res = next.run(req).await;
    if !is_fn || res.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_ERROR_BYTES)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    if let Some(status) = serde_json::from_slice::<ApiError>(&bytes)
        .ok()
        .and_then(|e| status_for(&e.code))
    {
        parts.status = status;
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unexpected_error_stays_a_server_error() {
        assert_eq!(
            status_for(app::api::BAD_ARGUMENTS),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(status_for("not_found"), Some(StatusCode::NOT_FOUND));
        assert_eq!(status_for("unexpected"), None);
        assert_eq!(status_for("transport"), None);
    }
}

//! The API's JSON bodies: in and out, and a body that does not parse answered in the same
//! `{code, message}` shape as every other client mistake.
use axum::{
    extract::{rejection::JsonRejection, FromRequest},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{de::DeserializeOwned, Serialize};

use app::model::ApiError;

/// Largest request body accepted; the API's payloads are tiny.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// JSON in and out; a body that does not parse becomes the same error shape as everything else.
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> Response {
    let (status, code, message) = match &rejection {
        JsonRejection::MissingJsonContentType(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the request body as JSON with Content-Type: application/json.".to_string(),
        ),
        JsonRejection::JsonSyntaxError(_) => (
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "The request body is not valid JSON.".to_string(),
        ),
        JsonRejection::JsonDataError(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!(
                "The request body does not have the expected fields: {}",
                e.body_text()
            ),
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
        ),
        other => (other.status(), "bad_request", other.body_text()),
    };
    (
        status,
        axum::Json(ApiError {
            code: code.into(),
            message,
            field: None,
        }),
    )
        .into_response()
}

pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
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

/// What a REST handler answers: its JSON, or the service's error (a 4xx with `{code, message}`).
pub type ApiResult<T> = Result<Json<T>, app::server::ServiceError>;

//! Every non-2xx JSON answer of the simulator: `{"code", "message"}` with the protocol's codes.
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0}")]
    BadRequest(String),
    #[error("There is no registration with this code on this provider instance.")]
    UnknownRegistration,
    #[error(
        "This registration code has already been used. Ask the provider for a new registration."
    )]
    RegistrationUsed,
    #[error("There is no consumer \"{0}\" on this provider instance.")]
    UnknownConsumer(String),
    #[error("{0}")]
    BadSignature(String),
    #[error("The request timestamp is more than 300 seconds away from the provider's clock.")]
    ClockSkew,
    /// The `down` fault: an outage behind a load balancer.
    #[error("The provider instance is unavailable.")]
    Unavailable,
    /// A simulated server failure (`http_5xx`, `fail_settings_group`).
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("This endpoint does not accept this HTTP method.")]
    MethodNotAllowed,
    /// The request comes from another instance than the one registered (a clone).
    #[error("{0}")]
    InstanceChanged(String),
}

impl SimError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::UnknownRegistration => (StatusCode::NOT_FOUND, "unknown_registration"),
            Self::RegistrationUsed => (StatusCode::CONFLICT, "registration_used"),
            Self::UnknownConsumer(_) => (StatusCode::NOT_FOUND, "unknown_consumer"),
            Self::BadSignature(_) => (StatusCode::UNAUTHORIZED, "bad_signature"),
            Self::ClockSkew => (StatusCode::UNAUTHORIZED, "clock_skew"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            // The protocol has no code of its own for a server failure: "unavailable" with 500.
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "unavailable"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "bad_request"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "bad_request"),
            Self::InstanceChanged(_) => (StatusCode::CONFLICT, "instance_changed"),
        }
    }
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::warn!(code, error = %self, "simulated provider failure");
        }
        (
            status,
            Json(json!({"code": code, "message": self.to_string()})),
        )
            .into_response()
    }
}

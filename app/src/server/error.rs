//! The service layer's one error type. Variants a person can act on carry a safe message and map
//! to 4xx; everything else is `Unexpected`, logged with its cause chain and shown only as a
//! generic message.
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};

use crate::model::{ApiError, FieldError, Refusal};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Invalid(#[from] FieldError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// The provider could not be reached or refused; the message says which, and what to do.
    #[error("{0}")]
    Provider(String),
    /// Background work whose lease another replica now holds (see `lease`): it stops there.
    #[error("This work was taken over by another server ({0}); it carries on there.")]
    LeaseLost(String),
    #[error("something went wrong")]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        ServiceError::Unexpected(anyhow::Error::new(e))
    }
}

impl ServiceError {
    pub fn status(&self) -> StatusCode {
        match self {
            ServiceError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) | ServiceError::Refused(_) | ServiceError::LeaseLost(_) => {
                StatusCode::CONFLICT
            }
            ServiceError::Gone { .. } => StatusCode::GONE,
            ServiceError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::Provider(_) => StatusCode::BAD_GATEWAY,
            ServiceError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the user sees. Never includes an unexpected error's internals.
    pub fn to_api(&self) -> ApiError {
        let (code, field) = match self {
            ServiceError::Invalid(f) => ("invalid", Some(f.field.clone())),
            ServiceError::NotFound(_) => ("not_found", None),
            ServiceError::Conflict(_) => ("conflict", None),
            ServiceError::Refused(_) => ("refused", None),
            ServiceError::LeaseLost(_) => ("lease_lost", None),
            ServiceError::Gone { code, .. } => (*code, None),
            ServiceError::Unauthorized(_) => ("unauthorized", None),
            ServiceError::Forbidden(_) => ("forbidden", None),
            ServiceError::Provider(_) => ("provider_unavailable", None),
            ServiceError::Unexpected(_) => ("unexpected", None),
        };
        let message = match self {
            ServiceError::Unexpected(_) => {
                "Something went wrong on our side. Nothing was changed; please try again."
                    .to_string()
            }
            other => other.to_string(),
        };
        ApiError {
            code: code.to_string(),
            message,
            field,
        }
    }

    fn log(&self) {
        if let ServiceError::Unexpected(e) = self {
            tracing::error!(error = format!("{e:#}"), "unexpected error");
        }
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        self.log();
        (self.status(), Json(self.to_api())).into_response()
    }
}

/// For server functions: the user-facing error travels as the inner `Err`, and the response
/// carries the same status as the REST API's (a refusal is a 4xx, not a 500). During
/// server-side rendering the status is the page's: a missing connection renders as a 404.
pub fn to_user(e: ServiceError) -> ApiError {
    e.log();
    if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(e.status());
    }
    e.to_api()
}

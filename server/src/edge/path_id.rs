//! The `{id}` of a connection route, parsed once for every handler: a path id that is not a
//! connection id is a 404 like any unknown id.
use axum::{
    extract::{FromRequestParts, Path},
    http::request::Parts,
};

use app::{model::ConnectionId, server::ServiceError};

pub struct ConnectionPath(pub ConnectionId);

// Handler spans record the id as the number it is.
impl std::fmt::Debug for ConnectionPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl ConnectionPath {
    pub fn get(&self) -> i64 {
        self.0.get()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ConnectionPath {
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // By name, so routes with more parameters (`/connections/{id}/checks/{check}`) work too.
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| not_found(""))?;
        let raw = params
            .iter()
            .find_map(|(name, value)| (name == "id").then_some(value.as_str()))
            .unwrap_or("");
        ConnectionId::parse(raw)
            .map(ConnectionPath)
            .ok_or_else(|| not_found(raw))
    }
}

fn not_found(raw: &str) -> ServiceError {
    ServiceError::NotFound(format!("There is no provider connection \"{raw}\"."))
}

//! Extractors whose rejections keep the protocol's JSON error shape.
use std::collections::HashMap;

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Request},
    http::{request::Parts, StatusCode},
};
use serde::de::DeserializeOwned;

use super::error::SimError;

/// The path parameters of the matched route (`instance`, `id`, `group`).
#[derive(Debug, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// A parameter of the route; routes always declare the ones their handlers ask for.
    pub fn get(&self, name: &str) -> String {
        self.0.get(name).cloned().unwrap_or_default()
    }

    pub fn instance(&self) -> String {
        self.get("instance")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = SimError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Path(map)| Params(map))
            .map_err(|e| SimError::BadRequest(format!("Invalid path: {e}")))
    }
}

/// A JSON body parsed whatever its Content-Type (curl-friendly); anything unreadable is a
/// `400 bad_request`.
#[derive(Debug)]
pub struct SimJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for SimJson<T> {
    type Rejection = SimError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = read_body(req, state).await?;
        parse_json(&body).map(SimJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, SimError> {
    serde_json::from_slice(body).map_err(|e| {
        SimError::BadRequest(format!("The request body is not the expected JSON: {e}"))
    })
}

/// The raw body; a rejection (too large, broken stream) keeps the JSON error shape.
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, SimError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            SimError::PayloadTooLarge("The request body is too large.".into())
        } else {
            SimError::BadRequest(format!("The request body could not be read: {rejection}"))
        }
    })
}

/// The raw body, with the JSON error shape on rejection.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = SimError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_body(req, state).await.map(RawBody)
    }
}

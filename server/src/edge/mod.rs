//! The HTTP edge: the route table and its policy, sessions and sign-in, the REST handlers and
//! their JSON, bodies read within limits, the event stream, the provider's signed calls, the
//! operator endpoints (health, readiness, metrics), every request's id, access-log line and
//! metrics, the API's OpenAPI document and reference page.
pub mod api;
pub mod api_reference;
pub mod auth;
pub mod body;
pub mod client_addr;
pub mod dashboard;
pub mod fn_status;
pub mod guided;
pub mod inbound;
pub mod issues;
pub mod json;
pub mod lifecycle;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod ops;
pub mod path_id;
pub mod policy;
pub mod routes;
pub mod stream;

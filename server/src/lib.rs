//! The axum server: configuration, start-up, HTTP routes.
pub mod admission;
pub mod api;
pub mod auth;
pub mod coalesce;
pub mod config;
pub mod inbound;
pub mod ops;
pub mod policy;
pub mod routes;
pub mod setup;
pub mod simulator;
pub mod startup;
pub mod stream;
pub mod telemetry;

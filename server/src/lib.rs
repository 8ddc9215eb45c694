//! The axum server: configuration, start-up, HTTP routes.
pub mod api;
pub mod config;
pub mod ops;
pub mod simulator;
pub mod startup;
pub mod telemetry;

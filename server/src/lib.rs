//! The axum server: configuration, start-up, HTTP routes.
//!
//! `edge/` is what a request meets as HTTP (routes, guards, handlers, bodies, the event stream,
//! the provider's inbound calls); `net/` is the plumbing under it (the accept loop, admission
//! turns, write coalescing). `startup` puts the two together.
pub mod config;
pub mod edge;
pub mod net;
pub mod settings;
pub mod setup;
pub mod startup;
pub mod telemetry;

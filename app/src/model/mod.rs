//! The shared domain model: validated values, the connection state machine and the API's data
//! shapes. Pure Rust (no IO, no Leptos), so the server and the browser build agree on every rule.

pub mod access;
pub mod address;
pub mod checks;
pub mod company;
pub mod dashboard;
pub mod dashboard_page;
pub mod dto;
pub mod email;
pub mod events;
pub mod field;
pub mod guided;
pub mod health;
pub mod heartbeat;
pub mod home;
pub mod ids;
pub mod issue_work;
mod labels;
pub mod lifecycle;
pub mod migration;
pub mod presentation;
pub mod provider_url;
pub mod redirect;
pub mod rollup;
pub mod state;
pub mod synced;
pub mod time;

pub use access::*;
pub use address::*;
pub use checks::*;
pub use company::*;
pub use dto::*;
pub use email::*;
pub use events::*;
pub use field::*;
pub use guided::*;
pub use home::{next_step, ConnectionSummary, HomeView, NextStep};
pub use ids::*;
pub use issue_work::*;
pub use lifecycle::*;
pub use migration::*;
pub use presentation::{page_title, Tone, NO_WELCOME_EMAIL};
pub use provider_url::*;
pub use redirect::*;
pub use state::*;
pub use synced::*;

//! One module per screen.
pub mod audit;
pub mod connect;
pub mod connection;
pub mod connection_form;
pub mod connections;
pub mod dashboard;
pub mod guided;
pub mod health;
pub mod help;
pub mod home;
pub mod issue;
pub mod login;
pub mod migration;
pub mod not_found;
pub mod off_board;
pub mod outbox;
pub mod registrations;
pub mod synced;
pub mod users;

use leptos_router::params::ParamsMap;

use crate::model::ConnectionId;

/// The `{id}` of a connection route. What is not a connection id becomes -1, which no record
/// has, so the page shows the server's "There is no provider connection" like for any unknown id.
fn connection_id(params: &ParamsMap) -> i64 {
    params
        .get("id")
        .and_then(|s| ConnectionId::parse(&s))
        .map_or(-1, ConnectionId::get)
}

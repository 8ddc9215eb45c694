//! One module per screen.
pub mod audit;
pub mod connect;
pub mod connection;
pub mod connection_form;
pub mod connections;
pub mod guided;
pub mod health;
pub mod home;
pub mod login;
pub mod not_found;
pub mod outbox;
pub mod registrations;
pub mod users;

mod at_rest;
mod auth;
mod connections;
mod dashboard;
mod edge;
mod guided;
mod heartbeat;
mod heartbeat_history;
mod helpers;
mod inbound;
mod issues;
mod leases;
mod lifecycle;
mod live;
mod metrics;
mod migration;
mod onboarding;
mod openapi;
mod ops;
mod overview;
mod registration;
mod scan;
mod setup;
mod smtp;
// Shared with the tests that start server processes.
#[path = "../process/provider.rs"]
mod provider;
#[path = "../process/sse.rs"]
mod sse;
mod throttle;
mod tls;

/// Runs one async test body against SQLite and against PostgreSQL. (Used only inside this test
/// crate, where `crate::helpers` is the right path.)
#[macro_export]
#[allow(clippy::crate_in_macro_def)]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                ($body)(crate::helpers::spawn(crate::helpers::Backend::Sqlite).await).await
            }
            #[tokio::test]
            async fn postgres() {
                ($body)(crate::helpers::spawn(crate::helpers::Backend::Postgres).await).await
            }
        }
    };
}

/// `both_backends!` for an app started with its configuration changed by `$configure` first.
#[macro_export]
#[allow(clippy::crate_in_macro_def)]
macro_rules! both_backends_with {
    ($name:ident, $configure:expr, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                ($body)(
                    crate::helpers::spawn_with(crate::helpers::Backend::Sqlite, $configure).await,
                )
                .await
            }
            #[tokio::test]
            async fn postgres() {
                ($body)(
                    crate::helpers::spawn_with(crate::helpers::Backend::Postgres, $configure).await,
                )
                .await
            }
        }
    };
}

/// A test run once per backend, given only the backend (it starts what it needs itself).
#[macro_export]
#[allow(clippy::crate_in_macro_def)]
macro_rules! per_backend {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                ($body)(crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                ($body)(crate::helpers::Backend::Postgres).await
            }
        }
    };
}

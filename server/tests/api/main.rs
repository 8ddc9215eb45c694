mod auth;
mod connections;
mod guided;
mod helpers;
mod onboarding;
mod ops;
mod registration;
mod scan;

/// Runs one async test body against SQLite and against PostgreSQL.
#[macro_export]
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

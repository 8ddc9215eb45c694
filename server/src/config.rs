use std::net::SocketAddr;

use anyhow::Context;

/// Everything the server needs to start, read once from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port (tests).
    pub addr: SocketAddr,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// The folder holding `pkg/` (WASM, JS, CSS) and public assets.
    pub site_root: String,
    pub settings: app::server::Settings,
    pub sessions: app::server::accounts::SessionPolicy,
    /// The first administrator, from IMPACT_ADMIN_EMAIL / IMPACT_ADMIN_PASSWORD.
    pub admin: Option<(String, String)>,
    /// Requests handled at once (IMPACT_MAX_IN_FLIGHT); the rest wait (see `admission`).
    pub max_in_flight: usize,
    /// The key that seals secrets at rest, and previous ones (IMPACT_SECRET_KEY…; see
    /// `app::server::sealed`). The default is the key file beside the database.
    pub secret_keys: app::server::sealed::KeySource,
}

/// Far above what eight database connections can serve at once, far below what a burst of
/// subscribers would hold in memory if all were handled together.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let addr = std::env::var("LEPTOS_SITE_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
        let addr: SocketAddr = addr.parse().with_context(|| {
            format!("LEPTOS_SITE_ADDR={addr:?} is not an address like 127.0.0.1:3000")
        })?;
        let database_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "sqlite://impact-connect.db?mode=rwc".into());
        let site_root = std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into());
        let public_url = std::env::var("IMPACT_PUBLIC_URL").ok();
        // Empty: the built-in provider simulator is started and used.
        let provider_url = std::env::var("IMPACT_PROVIDER_URL").unwrap_or_default();
        let link_ttl_hours = positive("IMPACT_LINK_TTL_HOURS", 72, "a positive number of hours")?;
        Ok(Self {
            addr,
            database_url,
            site_root,
            settings: app::server::Settings {
                // Filled in from the bound address when not set (port 0 is only known after bind).
                public_url: public_url.unwrap_or_default(),
                provider_url,
                link_ttl_hours,
                provider_timeout: std::time::Duration::from_millis(positive(
                    "IMPACT_PROVIDER_TIMEOUT_MS",
                    5000,
                    "a positive number",
                )?),
                smtp_url: std::env::var("IMPACT_SMTP_URL")
                    .ok()
                    .filter(|u| !u.trim().is_empty()),
                mail_from: std::env::var("IMPACT_MAIL_FROM")
                    .unwrap_or_else(|_| "Impact Store App <no-reply@impact.invalid>".into()),
            },
            sessions: app::server::accounts::SessionPolicy {
                idle: chrono::Duration::minutes(positive(
                    "IMPACT_SESSION_IDLE_MINUTES",
                    30,
                    "a positive number of minutes",
                )?),
                absolute: chrono::Duration::minutes(positive(
                    "IMPACT_SESSION_MAX_MINUTES",
                    12 * 60,
                    "a positive number of minutes",
                )?),
            },
            admin: match (
                std::env::var("IMPACT_ADMIN_EMAIL"),
                std::env::var("IMPACT_ADMIN_PASSWORD"),
            ) {
                (Ok(e), Ok(p)) => Some((e, p)),
                _ => None,
            },
            max_in_flight: positive(
                "IMPACT_MAX_IN_FLIGHT",
                DEFAULT_MAX_IN_FLIGHT,
                "a positive number of requests",
            )?,
            secret_keys: app::server::sealed::KeySource::from_env()?,
        })
    }
}

/// `var` as a number above zero, or `default` when unset; `what` names what it must be.
fn positive<T>(var: &str, default: T, what: &str) -> anyhow::Result<T>
where
    T: std::str::FromStr + PartialOrd + Default,
{
    match std::env::var(var) {
        Ok(v) => v
            .parse::<T>()
            .ok()
            .filter(|n| *n > T::default())
            .with_context(|| format!("{var}={v:?} is not {what}")),
        Err(_) => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_must_be_a_number_above_zero_and_says_what_it_should_be() {
        // Names of their own: the environment is shared by the tests running at once.
        assert_eq!(
            positive("IMPACT_TEST_UNSET_SETTING", 7u64, "x").ok(),
            Some(7)
        );
        std::env::set_var("IMPACT_TEST_GOOD_SETTING", "12");
        assert_eq!(
            positive("IMPACT_TEST_GOOD_SETTING", 7i64, "x").ok(),
            Some(12)
        );
        for (var, value) in [
            ("IMPACT_TEST_ZERO_SETTING", "0"),
            ("IMPACT_TEST_WORD_SETTING", "ten"),
        ] {
            std::env::set_var(var, value);
            let e = positive(var, 7usize, "a positive number of requests").expect_err(value);
            assert_eq!(
                e.to_string(),
                format!("{var}={value:?} is not a positive number of requests")
            );
        }
    }
}

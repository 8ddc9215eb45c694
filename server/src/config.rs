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
        let link_ttl_hours = match std::env::var("IMPACT_LINK_TTL_HOURS") {
            Ok(v) => v.parse::<i64>().ok().filter(|h| *h > 0).with_context(|| {
                format!("IMPACT_LINK_TTL_HOURS={v:?} is not a positive number of hours")
            })?,
            Err(_) => 72,
        };
        Ok(Self {
            addr,
            database_url,
            site_root,
            settings: app::server::Settings {
                // Filled in from the bound address when not set (port 0 is only known after bind).
                public_url: public_url.unwrap_or_default(),
                provider_url,
                link_ttl_hours,
                provider_timeout: std::time::Duration::from_millis(
                    match std::env::var("IMPACT_PROVIDER_TIMEOUT_MS") {
                        Ok(v) => v.parse::<u64>().ok().filter(|m| *m > 0).with_context(|| {
                            format!("IMPACT_PROVIDER_TIMEOUT_MS={v:?} is not a positive number")
                        })?,
                        Err(_) => 5000,
                    },
                ),
                smtp_url: std::env::var("IMPACT_SMTP_URL")
                    .ok()
                    .filter(|u| !u.trim().is_empty()),
                mail_from: std::env::var("IMPACT_MAIL_FROM")
                    .unwrap_or_else(|_| "Impact Store App <no-reply@impact.invalid>".into()),
            },
            sessions: app::server::accounts::SessionPolicy {
                idle: chrono::Duration::minutes(minutes("IMPACT_SESSION_IDLE_MINUTES", 30)?),
                absolute: chrono::Duration::minutes(minutes(
                    "IMPACT_SESSION_MAX_MINUTES",
                    12 * 60,
                )?),
            },
            admin: match (
                std::env::var("IMPACT_ADMIN_EMAIL"),
                std::env::var("IMPACT_ADMIN_PASSWORD"),
            ) {
                (Ok(e), Ok(p)) => Some((e, p)),
                _ => None,
            },
            max_in_flight: match std::env::var("IMPACT_MAX_IN_FLIGHT") {
                Ok(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .with_context(|| {
                        format!("IMPACT_MAX_IN_FLIGHT={v:?} is not a positive number of requests")
                    })?,
                Err(_) => DEFAULT_MAX_IN_FLIGHT,
            },
        })
    }
}

fn minutes(var: &str, default: i64) -> anyhow::Result<i64> {
    match std::env::var(var) {
        Ok(v) => v
            .parse::<i64>()
            .ok()
            .filter(|m| *m > 0)
            .with_context(|| format!("{var}={v:?} is not a positive number of minutes")),
        Err(_) => Ok(default),
    }
}

use std::{net::SocketAddr, time::Duration};

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
    /// What slow or abusive clients may hold (time limits, sizes, caps).
    pub limits: EdgeLimits,
    /// The key that seals secrets at rest, and previous ones (IMPACT_SECRET_KEY…; see
    /// `app::server::sealed`). The default is the key file beside the database.
    pub secret_keys: app::server::key_source::KeySource,
    /// Proxies whose `X-Forwarded-For` names the client (IMPACT_TRUSTED_PROXIES, addresses
    /// separated by commas; default none): the sign-in throttle then counts the client, not the
    /// proxy (`edge::client_addr`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// The edge's limits on what one client may hold. Each has its own IMPACT_… setting.
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    /// A request's header must arrive within this (IMPACT_HEADER_TIMEOUT_MS); the connection
    /// is closed otherwise. Also how long an idle HTTP/1.1 keep-alive connection is kept.
    pub header_read: Duration,
    /// A request's whole body must arrive within this (IMPACT_BODY_TIMEOUT_MS): 408 otherwise.
    pub body_read: Duration,
    /// Largest request body (IMPACT_MAX_BODY_BYTES): 413 beyond it.
    pub max_body_bytes: usize,
    /// Requests waiting for a turn (IMPACT_MAX_QUEUED); beyond it, 503 with Retry-After.
    pub max_queued: usize,
    /// Open connections from one IP address (IMPACT_MAX_CONNECTIONS_PER_IP); more are closed
    /// as they arrive. Behind a proxy that opens one connection per client, raise it.
    pub max_connections_per_ip: usize,
    /// Open event streams per user (IMPACT_MAX_STREAMS_PER_USER): 429 beyond it.
    pub max_streams_per_user: usize,
    /// Password hashes or checks at once (IMPACT_HASH_CONCURRENCY).
    pub hash_concurrency: usize,
    /// Addresses and sign-in names the login throttle remembers (IMPACT_THROTTLE_ENTRIES).
    pub throttle_entries: usize,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(15),
            max_body_bytes: 64 * 1024,
            max_queued: 2048,
            max_connections_per_ip: 256,
            max_streams_per_user: app::server::streams::DEFAULT_STREAMS_PER_USER,
            hash_concurrency: 2,
            throttle_entries: 10_000,
        }
    }
}

impl EdgeLimits {
    pub fn from_env() -> anyhow::Result<Self> {
        let d = Self::default();
        let ms = |var, default: Duration| -> anyhow::Result<Duration> {
            positive(
                var,
                default.as_millis() as u64,
                "a positive number of milliseconds",
            )
            .map(Duration::from_millis)
        };
        Ok(Self {
            header_read: ms("IMPACT_HEADER_TIMEOUT_MS", d.header_read)?,
            body_read: ms("IMPACT_BODY_TIMEOUT_MS", d.body_read)?,
            max_body_bytes: positive(
                "IMPACT_MAX_BODY_BYTES",
                d.max_body_bytes,
                "a positive number of bytes",
            )?,
            max_queued: positive("IMPACT_MAX_QUEUED", d.max_queued, "a positive number")?,
            max_connections_per_ip: positive(
                "IMPACT_MAX_CONNECTIONS_PER_IP",
                d.max_connections_per_ip,
                "a positive number",
            )?,
            max_streams_per_user: positive(
                "IMPACT_MAX_STREAMS_PER_USER",
                d.max_streams_per_user,
                "a positive number",
            )?,
            hash_concurrency: positive(
                "IMPACT_HASH_CONCURRENCY",
                d.hash_concurrency,
                "a positive number",
            )?,
            throttle_entries: positive(
                "IMPACT_THROTTLE_ENTRIES",
                d.throttle_entries,
                "a positive number",
            )?,
        })
    }
}

/// Far above what eight database connections can serve at once, far below what a burst of
/// subscribers would hold in memory if all were handled together.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

impl Config {
    /// A server for the tests and benchmarks: a free port on loopback, `database_url`, the
    /// provider at `provider_url` called under `outbound`, every other setting its default.
    /// Callers change what their case needs.
    pub fn on_loopback(
        database_url: String,
        provider_url: String,
        outbound: app::server::outbound::Outbound,
    ) -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url,
            site_root: "target/site".into(),
            settings: app::server::Settings {
                public_url: String::new(),
                provider_url,
                link_ttl_hours: 72,
                provider_timeout: Duration::from_secs(5),
                smtp_url: None,
                mail_from: "Impact <no-reply@example.com>".into(),
                outbound,
                lease: Duration::from_secs(10),
            },
            sessions: Default::default(),
            admin: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            limits: Default::default(),
            secret_keys: Default::default(),
            trusted_proxies: Vec::new(),
        }
    }

    pub fn from_env() -> anyhow::Result<Self> {
        // Checked here for a plain message; the declared site reads it again as its override.
        if let Ok(addr) = std::env::var("LEPTOS_SITE_ADDR") {
            addr.parse::<SocketAddr>().with_context(|| {
                format!("LEPTOS_SITE_ADDR={addr:?} is not an address like 127.0.0.1:3000")
            })?;
        }
        // LEPTOS_SITE_ADDR and LEPTOS_SITE_ROOT, or the Cargo.toml's site-addr and site-root.
        let site = declared_site()?;
        let addr = site.site_addr;
        let site_root = site.site_root.to_string();
        let database_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "sqlite://impact-connect.db?mode=rwc".into());
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
                provider_timeout: Duration::from_millis(positive(
                    "IMPACT_PROVIDER_TIMEOUT_MS",
                    5000,
                    "a positive number",
                )?),
                smtp_url: smtp_relay()?,
                mail_from: std::env::var("IMPACT_MAIL_FROM")
                    .unwrap_or_else(|_| "Impact Store App <no-reply@impact.invalid>".into()),
                outbound: app::server::outbound::Outbound::from_settings(
                    &std::env::var("IMPACT_ALLOW_PROVIDER_HOSTS").unwrap_or_default(),
                    std::env::var("IMPACT_PROVIDER_CA_FILE")
                        .ok()
                        .filter(|f| !f.trim().is_empty())
                        .as_deref(),
                )?,
                lease: Duration::from_millis(positive(
                    "IMPACT_LEASE_MS",
                    10_000,
                    "a positive number of milliseconds",
                )?),
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
            limits: EdgeLimits::from_env()?,
            secret_keys: app::server::key_source::KeySource::from_env()?,
            trusted_proxies: trusted_proxies()?,
        })
    }
}

/// IMPACT_TRUSTED_PROXIES: IP addresses separated by commas (unset or empty: none).
fn trusted_proxies() -> anyhow::Result<Vec<std::net::IpAddr>> {
    let raw = std::env::var("IMPACT_TRUSTED_PROXIES").unwrap_or_default();
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().with_context(|| {
                format!("IMPACT_TRUSTED_PROXIES: {s:?} is not an IP address (like 127.0.0.1)")
            })
        })
        .collect()
}

/// The site as the root Cargo.toml's `[[workspace.metadata.leptos]]` declares it (output name,
/// pkg dir, site root, address), read as leptos's `get_configuration` reads it: each `LEPTOS_*`
/// variable that is set (LEPTOS_SITE_ROOT, LEPTOS_SITE_ADDR, …) overrides its key. The table is
/// compiled in, so the binary needs no Cargo.toml where it runs.
pub fn declared_site() -> anyhow::Result<leptos::config::LeptosOptions> {
    leptos::config::get_config_from_str(include_str!("../../Cargo.toml"))
        .context("reading [[workspace.metadata.leptos]] in the root Cargo.toml")
}

/// The relay from IMPACT_SMTP_URL (unset or empty: none) and IMPACT_SMTP_CA_FILE, checked now so
/// that a bad URL or CA file stops start-up.
fn smtp_relay() -> anyhow::Result<Option<app::server::smtp::SmtpRelay>> {
    let set = |var| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    let Some(url) = set("IMPACT_SMTP_URL") else {
        return Ok(None);
    };
    let ca_file = set("IMPACT_SMTP_CA_FILE");
    Ok(Some(app::server::smtp::SmtpRelay::from_settings(
        url.trim(),
        ca_file.as_deref(),
    )?))
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
    fn the_pages_link_the_stylesheet_of_the_site_cargo_toml_declares() {
        // (Under cargo-leptos, LEPTOS_OUTPUT_NAME and LEPTOS_SITE_PKG_DIR carry the same values.)
        let site = declared_site().unwrap();
        assert_eq!(
            app::STYLESHEET,
            format!("/{}/{}.css", site.site_pkg_dir, site.output_name)
        );
    }

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

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;

use crate::settings::{defaults, Settings};

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
    /// Where the built-in provider simulator listens when no provider is configured
    /// (IMPACT_SIMULATOR_ADDR).
    pub simulator_addr: SocketAddr,
    /// How log lines are written (IMPACT_LOG_FORMAT): read by `main` before logging starts.
    pub log_format: crate::telemetry::LogFormat,
    /// The token `/metrics` requires (IMPACT_METRICS_TOKEN); none: `/metrics` answers 404.
    pub metrics_token: Option<crate::edge::metrics::MetricsToken>,
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
            header_read: Duration::from_millis(defaults::HEADER_TIMEOUT_MS),
            body_read: Duration::from_millis(defaults::BODY_TIMEOUT_MS),
            max_body_bytes: defaults::MAX_BODY_BYTES,
            max_queued: defaults::MAX_QUEUED,
            max_connections_per_ip: defaults::MAX_CONNECTIONS_PER_IP,
            max_streams_per_user: defaults::MAX_STREAMS_PER_USER,
            hash_concurrency: defaults::HASH_CONCURRENCY,
            throttle_entries: defaults::THROTTLE_ENTRIES,
        }
    }
}

impl EdgeLimits {
    pub fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        let ms = |var, raw: &str| -> anyhow::Result<Duration> {
            positive::<u64>(var, raw, "a positive number of milliseconds")
                .map(Duration::from_millis)
        };
        Ok(Self {
            header_read: ms("IMPACT_HEADER_TIMEOUT_MS", &s.header_timeout_ms)?,
            body_read: ms("IMPACT_BODY_TIMEOUT_MS", &s.body_timeout_ms)?,
            max_body_bytes: positive(
                "IMPACT_MAX_BODY_BYTES",
                &s.max_body_bytes,
                "a positive number of bytes",
            )?,
            max_queued: positive("IMPACT_MAX_QUEUED", &s.max_queued, "a positive number")?,
            max_connections_per_ip: positive(
                "IMPACT_MAX_CONNECTIONS_PER_IP",
                &s.max_connections_per_ip,
                "a positive number",
            )?,
            max_streams_per_user: positive(
                "IMPACT_MAX_STREAMS_PER_USER",
                &s.max_streams_per_user,
                "a positive number",
            )?,
            hash_concurrency: positive(
                "IMPACT_HASH_CONCURRENCY",
                &s.hash_concurrency,
                "a positive number",
            )?,
            throttle_entries: positive(
                "IMPACT_THROTTLE_ENTRIES",
                &s.throttle_entries,
                "a positive number",
            )?,
        })
    }
}

/// Far above what eight database connections can serve at once, far below what a burst of
/// subscribers would hold in memory if all were handled together.
pub const DEFAULT_MAX_IN_FLIGHT: usize = defaults::MAX_IN_FLIGHT;

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
                identity: None,
                provider_url,
                link_ttl_hours: defaults::LINK_TTL_HOURS,
                provider_timeout: Duration::from_millis(defaults::PROVIDER_TIMEOUT_MS),
                smtp_url: None,
                mail_from: "Impact <no-reply@example.com>".into(),
                outbound,
                link_key: None,
                lease: Duration::from_millis(defaults::LEASE_MS),
                health_interval: Duration::from_secs(defaults::HEALTH_INTERVAL_SECONDS),
                slow_ms: defaults::SLOW_MS,
                slow_after: Duration::from_secs(defaults::SLOW_AFTER_SECONDS),
                digest_every: Duration::from_secs(defaults::DIGEST_MINUTES * 60),
                rotation_grace: Duration::from_secs(defaults::ROTATION_GRACE_SECONDS),
            },
            sessions: Default::default(),
            admin: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            limits: Default::default(),
            secret_keys: Default::default(),
            trusted_proxies: Vec::new(),
            simulator_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log_format: Default::default(),
            metrics_token: None,
        }
    }

    /// From the environment (and the defaults): what `impact-connect` with no flags reads.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_settings(&Settings::from_env()?)
    }

    /// Every setting parsed and checked; the first bad one is the error, naming its variable.
    pub fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        // Checked here for a plain message; the declared site reads LEPTOS_SITE_ADDR again as
        // its override.
        let addr = s
            .site_addr
            .as_deref()
            .map(|addr| {
                addr.parse::<SocketAddr>().with_context(|| {
                    format!("LEPTOS_SITE_ADDR={addr:?} is not an address like 127.0.0.1:3000")
                })
            })
            .transpose()?;
        // LEPTOS_SITE_ADDR and LEPTOS_SITE_ROOT, or the Cargo.toml's site-addr and site-root.
        let site = declared_site()?;
        let addr = addr.unwrap_or(site.site_addr);
        let site_root = s
            .site_root
            .clone()
            .unwrap_or_else(|| site.site_root.to_string());
        // Unset: filled in from the bound address (port 0 is only known after bind).
        let public_url = set(&s.public_url).unwrap_or_default();
        if !public_url.is_empty() && crate::edge::auth::origin_of(&public_url).is_none() {
            anyhow::bail!("IMPACT_PUBLIC_URL={public_url:?} is not an http:// or https:// address");
        }
        let link_key = set(&s.link_key);
        if link_key.as_ref().is_some_and(|k| k.len() < 32) {
            anyhow::bail!("IMPACT_LINK_KEY must be at least 32 characters");
        }
        app::server::smtp::check_sender(&s.mail_from).map_err(|e| {
            anyhow::anyhow!(
                "IMPACT_MAIL_FROM={:?} is not a sender like \"Impact <no-reply@example.com>\" ({e})",
                s.mail_from
            )
        })?;
        let simulator_addr = s.simulator_addr.parse::<SocketAddr>().with_context(|| {
            format!(
                "IMPACT_SIMULATOR_ADDR={:?} is not an address like 127.0.0.1:3001",
                s.simulator_addr
            )
        })?;
        Ok(Self {
            addr,
            database_url: s.database_url.clone(),
            site_root,
            settings: app::server::Settings {
                public_url,
                identity: None,
                // Empty: the built-in provider simulator is started and used.
                provider_url: set(&s.provider_url).unwrap_or_default(),
                link_ttl_hours: positive(
                    "IMPACT_LINK_TTL_HOURS",
                    &s.link_ttl_hours,
                    "a positive number of hours",
                )?,
                provider_timeout: Duration::from_millis(positive(
                    "IMPACT_PROVIDER_TIMEOUT_MS",
                    &s.provider_timeout_ms,
                    "a positive number",
                )?),
                smtp_url: smtp_relay(s)?,
                mail_from: s.mail_from.clone(),
                outbound: app::server::outbound::Outbound::from_settings(
                    s.allow_provider_hosts.as_deref().unwrap_or_default(),
                    set(&s.provider_ca_file).as_deref(),
                )?,
                link_key,
                lease: Duration::from_millis(positive(
                    "IMPACT_LEASE_MS",
                    &s.lease_ms,
                    "a positive number of milliseconds",
                )?),
                health_interval: Duration::from_secs(positive(
                    "IMPACT_HEALTH_INTERVAL_SECONDS",
                    &s.health_interval_seconds,
                    "a positive number of seconds",
                )?),
                slow_ms: positive(
                    "IMPACT_SLOW_MS",
                    &s.slow_ms,
                    "a positive number of milliseconds",
                )?,
                slow_after: Duration::from_secs(positive(
                    "IMPACT_SLOW_AFTER_SECONDS",
                    &s.slow_after_seconds,
                    "a positive number of seconds",
                )?),
                digest_every: Duration::from_secs(
                    positive::<u64>(
                        "IMPACT_DIGEST_MINUTES",
                        &s.digest_minutes,
                        "a positive number of minutes",
                    )?
                    .saturating_mul(60),
                ),
                rotation_grace: Duration::from_secs(positive(
                    "IMPACT_ROTATION_GRACE_SECONDS",
                    &s.rotation_grace_seconds,
                    "a positive number of seconds",
                )?),
            },
            sessions: app::server::accounts::SessionPolicy {
                idle: chrono::Duration::minutes(positive(
                    "IMPACT_SESSION_IDLE_MINUTES",
                    &s.session_idle_minutes,
                    "a positive number of minutes",
                )?),
                absolute: chrono::Duration::minutes(positive(
                    "IMPACT_SESSION_MAX_MINUTES",
                    &s.session_max_minutes,
                    "a positive number of minutes",
                )?),
            },
            admin: match (set(&s.admin_email), s.admin_password.clone()) {
                (Some(e), Some(p)) => Some((e, p)),
                (None, None) => None,
                // One without the other used to be ignored: the server started without the
                // administrator the operator meant to create.
                _ => anyhow::bail!(
                    "IMPACT_ADMIN_EMAIL and IMPACT_ADMIN_PASSWORD go together: set both or neither"
                ),
            },
            max_in_flight: positive(
                "IMPACT_MAX_IN_FLIGHT",
                &s.max_in_flight,
                "a positive number of requests",
            )?,
            limits: EdgeLimits::from_settings(s)?,
            secret_keys: app::server::key_source::KeySource::from_settings(
                s.secret_key.as_deref(),
                s.secret_key_previous.as_deref(),
                s.secret_key_file.as_deref(),
            )?,
            trusted_proxies: trusted_proxies(s.trusted_proxies.as_deref().unwrap_or_default())?,
            simulator_addr,
            log_format: crate::telemetry::LogFormat::from_setting(&s.log_format)?,
            metrics_token: set(&s.metrics_token)
                .map(|t| crate::edge::metrics::MetricsToken::from_setting(&t))
                .transpose()?,
        })
    }
}

/// A text setting's value, `None` when unset or blank.
fn set(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.trim().is_empty())
}

/// IMPACT_TRUSTED_PROXIES: IP addresses separated by commas (unset or empty: none).
fn trusted_proxies(raw: &str) -> anyhow::Result<Vec<std::net::IpAddr>> {
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
fn smtp_relay(s: &Settings) -> anyhow::Result<Option<app::server::smtp::SmtpRelay>> {
    let Some(url) = set(&s.smtp_url) else {
        return Ok(None);
    };
    let ca_file = set(&s.smtp_ca_file);
    Ok(Some(app::server::smtp::SmtpRelay::from_settings(
        url.trim(),
        ca_file.as_deref(),
    )?))
}

/// `raw` (the value of `var`) as a number above zero; `what` names what it must be.
fn positive<T>(var: &str, raw: &str, what: &str) -> anyhow::Result<T>
where
    T: std::str::FromStr + PartialOrd + Default,
{
    raw.parse::<T>()
        .ok()
        .filter(|n| *n > T::default())
        .with_context(|| format!("{var}={raw:?} is not {what}"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

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
        assert_eq!(positive("IMPACT_X", "12", "x").ok(), Some(12i64));
        for value in ["0", "ten", "", "-3"] {
            let e = positive::<usize>("IMPACT_X", value, "a positive number of requests")
                .expect_err(value);
            assert_eq!(
                e.to_string(),
                format!("IMPACT_X={value:?} is not a positive number of requests")
            );
        }
    }

    #[test]
    fn the_defaults_in_the_help_are_the_defaults_in_force() {
        // Parsed as the command line would be, with no flag and (these tests set none) no
        // IMPACT_* variable, the limits are those the tests' configurations start from.
        let cli = crate::settings::Cli::try_parse_from(["impact-connect"]).unwrap();
        let limits = EdgeLimits::from_settings(&cli.settings).unwrap();
        let d = EdgeLimits::default();
        assert_eq!(
            (
                limits.header_read,
                limits.body_read,
                limits.max_body_bytes,
                limits.max_queued
            ),
            (d.header_read, d.body_read, d.max_body_bytes, d.max_queued)
        );
    }
}

//! Every setting of the server, one field each: its flag, its environment variable, its default
//! and its help text, which `impact-connect --help` prints. Values stay as written here (text);
//! `config` parses and checks them, so every refusal names the variable and what it must be.
//! A new setting is a new field here and its reading in `config`.
use clap::{Args, Parser, Subcommand};

/// Defaults shared by the help text and the configurations built without the environment
/// (`Config::on_loopback`, `EdgeLimits::default`).
pub mod defaults {
    pub const DATABASE_URL: &str = "sqlite://impact-connect.db?mode=rwc";
    pub const SIMULATOR_ADDR: &str = "127.0.0.1:0";
    pub const PROVIDER_TIMEOUT_MS: u64 = 5000;
    pub const LINK_TTL_HOURS: i64 = 72;
    pub const MAIL_FROM: &str = "Impact Store App <no-reply@impact.invalid>";
    pub const SESSION_IDLE_MINUTES: i64 = 30;
    pub const SESSION_MAX_MINUTES: i64 = 12 * 60;
    /// Far above what eight database connections can serve at once, far below what a burst of
    /// subscribers would hold in memory if all were handled together.
    pub const MAX_IN_FLIGHT: usize = 256;
    pub const HEADER_TIMEOUT_MS: u64 = 10_000;
    pub const BODY_TIMEOUT_MS: u64 = 15_000;
    pub const MAX_BODY_BYTES: usize = 64 * 1024;
    pub const MAX_QUEUED: usize = 2048;
    pub const MAX_CONNECTIONS_PER_IP: usize = 256;
    pub const MAX_STREAMS_PER_USER: usize = app::server::streams::DEFAULT_STREAMS_PER_USER;
    pub const HASH_CONCURRENCY: usize = 2;
    pub const THROTTLE_ENTRIES: usize = 10_000;
    pub const LEASE_MS: u64 = 10_000;
    pub const HEALTH_INTERVAL_SECONDS: u64 = 60;
    pub const SLOW_MS: u64 = 1_000;
    /// The product's own threshold: no heartbeat answer for 15 minutes is Slow.
    pub const SLOW_AFTER_SECONDS: u64 = 900;
    pub const DIGEST_MINUTES: u64 = 60;
    /// Five minutes: longer than any call in flight when credentials are rotated.
    pub const ROTATION_GRACE_SECONDS: u64 = 300;
    pub const LOG_FORMAT: &str = "text";
}

/// `impact-connect`: the command line.
#[derive(Parser, Debug)]
#[command(
    name = "impact-connect",
    version,
    about = "Impact Connect: connects an Impact Store App instance to its provider (IDI).",
    long_about = "Impact Connect: connects an Impact Store App instance to its provider (IDI).\n\n\
        With no command it serves the app. Every setting below is read from its flag, else \
        from its environment variable, else its default. Secrets (keys, passwords, URLs with \
        credentials) belong in the environment: a command line is visible to other users of \
        the machine, and their values are never printed here."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Serve the app (the same as no command).
    Serve,
    /// Apply the database migrations to DATABASE_URL and exit.
    Migrate,
    /// Check every setting and exit: 0 when all are valid, 1 with the reason otherwise.
    /// Nothing is created or connected to.
    CheckConfig,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Settings")]
pub struct Settings {
    /// Where to listen [default: site-addr of the root Cargo.toml's [[workspace.metadata.leptos]],
    /// 127.0.0.1:3000]
    #[arg(long, env = "LEPTOS_SITE_ADDR", value_name = "ADDR")]
    pub site_addr: Option<String>,

    /// The folder holding pkg/ (WASM, JS, CSS) and the public assets [default: site-root of the
    /// root Cargo.toml, target/site]
    #[arg(long, env = "LEPTOS_SITE_ROOT", value_name = "DIR")]
    pub site_root: Option<String>,

    /// The database: sqlite://FILE?mode=rwc or postgres://USER:PASSWORD@HOST/NAME
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true,
        default_value = defaults::DATABASE_URL)]
    pub database_url: String,

    /// This instance's address as browsers and the provider reach it [default:
    /// http://LEPTOS_SITE_ADDR, as bound]
    #[arg(long, env = "IMPACT_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// A real provider (IDI) instance; unset or empty, the built-in provider simulator is started
    #[arg(long, env = "IMPACT_PROVIDER_URL", value_name = "URL")]
    pub provider_url: Option<String>,

    /// Where the built-in provider simulator listens (when IMPACT_PROVIDER_URL is unset)
    #[arg(long, env = "IMPACT_SIMULATOR_ADDR", value_name = "ADDR",
        default_value = defaults::SIMULATOR_ADDR)]
    pub simulator_addr: String,

    /// Time limit of each provider call and health check, in milliseconds
    #[arg(long, env = "IMPACT_PROVIDER_TIMEOUT_MS", value_name = "MS",
        default_value_t = defaults::PROVIDER_TIMEOUT_MS.to_string())]
    pub provider_timeout_ms: String,

    /// Comma-separated host or host:port entries that may be called although they are not
    /// public https services (private network, loopback) [default: none]
    #[arg(long, env = "IMPACT_ALLOW_PROVIDER_HOSTS", value_name = "HOSTS")]
    pub allow_provider_hosts: Option<String>,

    /// A PEM file of extra certificate authorities trusted for providers [default: the web's
    /// roots only]
    #[arg(long, env = "IMPACT_PROVIDER_CA_FILE", value_name = "FILE")]
    pub provider_ca_file: Option<String>,

    /// How long a registration link stays valid, in hours
    #[arg(long, env = "IMPACT_LINK_TTL_HOURS", value_name = "HOURS",
        default_value_t = defaults::LINK_TTL_HOURS.to_string())]
    pub link_ttl_hours: String,

    /// The registration links' signing key, at least 32 characters [default: generated once and
    /// kept sealed in the database]
    #[arg(
        long,
        env = "IMPACT_LINK_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub link_key: Option<String>,

    /// A session ends after this many minutes without a request
    #[arg(long, env = "IMPACT_SESSION_IDLE_MINUTES", value_name = "MINUTES",
        default_value_t = defaults::SESSION_IDLE_MINUTES.to_string())]
    pub session_idle_minutes: String,

    /// A session ends this many minutes after signing in, whatever happens
    #[arg(long, env = "IMPACT_SESSION_MAX_MINUTES", value_name = "MINUTES",
        default_value_t = defaults::SESSION_MAX_MINUTES.to_string())]
    pub session_max_minutes: String,

    /// The first administrator's email, created at start when there are no users (with
    /// IMPACT_ADMIN_PASSWORD) [default: none: a one-time setup link is printed]
    #[arg(long, env = "IMPACT_ADMIN_EMAIL", value_name = "EMAIL")]
    pub admin_email: Option<String>,

    /// The first administrator's password (with IMPACT_ADMIN_EMAIL)
    #[arg(
        long,
        env = "IMPACT_ADMIN_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub admin_password: Option<String>,

    /// Requests handled at once; the rest wait their turn in arrival order
    #[arg(long, env = "IMPACT_MAX_IN_FLIGHT", value_name = "N",
        default_value_t = defaults::MAX_IN_FLIGHT.to_string())]
    pub max_in_flight: String,

    /// A request's header must arrive within this many milliseconds (also the keep-alive idle
    /// time)
    #[arg(long, env = "IMPACT_HEADER_TIMEOUT_MS", value_name = "MS",
        default_value_t = defaults::HEADER_TIMEOUT_MS.to_string())]
    pub header_timeout_ms: String,

    /// A request's whole body must arrive within this many milliseconds, else 408
    #[arg(long, env = "IMPACT_BODY_TIMEOUT_MS", value_name = "MS",
        default_value_t = defaults::BODY_TIMEOUT_MS.to_string())]
    pub body_timeout_ms: String,

    /// Largest request body in bytes, else 413
    #[arg(long, env = "IMPACT_MAX_BODY_BYTES", value_name = "BYTES",
        default_value_t = defaults::MAX_BODY_BYTES.to_string())]
    pub max_body_bytes: String,

    /// Requests waiting for a turn; beyond it 503 with Retry-After
    #[arg(long, env = "IMPACT_MAX_QUEUED", value_name = "N",
        default_value_t = defaults::MAX_QUEUED.to_string())]
    pub max_queued: String,

    /// Open connections per client address (raise it behind a proxy)
    #[arg(long, env = "IMPACT_MAX_CONNECTIONS_PER_IP", value_name = "N",
        default_value_t = defaults::MAX_CONNECTIONS_PER_IP.to_string())]
    pub max_connections_per_ip: String,

    /// Open event streams per user, else 429
    #[arg(long, env = "IMPACT_MAX_STREAMS_PER_USER", value_name = "N",
        default_value_t = defaults::MAX_STREAMS_PER_USER.to_string())]
    pub max_streams_per_user: String,

    /// Password hashes computed at once, off the async workers
    #[arg(long, env = "IMPACT_HASH_CONCURRENCY", value_name = "N",
        default_value_t = defaults::HASH_CONCURRENCY.to_string())]
    pub hash_concurrency: String,

    /// Rows the sign-in throttle keeps in the database (failures per email and address, and per
    /// address), shared by every replica
    #[arg(long, env = "IMPACT_THROTTLE_ENTRIES", value_name = "N",
        default_value_t = defaults::THROTTLE_ENTRIES.to_string())]
    pub throttle_entries: String,

    /// How long a replica's claim on background work (scans, onboarding, the email pass) lasts
    /// without renewal, in milliseconds: the longest a dead replica's work waits for another
    #[arg(long, env = "IMPACT_LEASE_MS", value_name = "MS",
        default_value_t = defaults::LEASE_MS.to_string())]
    pub lease_ms: String,

    /// How often an onboarded connection's health is checked (an outbound heartbeat and the
    /// provider's call back), in seconds
    #[arg(long, env = "IMPACT_HEALTH_INTERVAL_SECONDS", value_name = "SECONDS",
        default_value_t = defaults::HEALTH_INTERVAL_SECONDS.to_string())]
    pub health_interval_seconds: String,

    /// A heartbeat answered later than this many milliseconds makes Outbound "Slow"
    #[arg(long, env = "IMPACT_SLOW_MS", value_name = "MS",
        default_value_t = defaults::SLOW_MS.to_string())]
    pub slow_ms: String,

    /// A connection whose last heartbeat answer is older than this many seconds reads "Slow" on
    /// the health dashboard (the watch itself is behind)
    #[arg(long, env = "IMPACT_SLOW_AFTER_SECONDS", value_name = "SECONDS",
        default_value_t = defaults::SLOW_AFTER_SECONDS.to_string())]
    pub slow_after_seconds: String,

    /// How often the digest of open issues is emailed to Impact app admins and to each issue's
    /// followers, in minutes
    #[arg(long, env = "IMPACT_DIGEST_MINUTES", value_name = "MINUTES",
        default_value_t = defaults::DIGEST_MINUTES.to_string())]
    pub digest_minutes: String,

    /// After credentials are rotated, how long the old secret is still honoured (by the provider
    /// and by this instance's inbound endpoint) before it is retired, in seconds
    #[arg(long, env = "IMPACT_ROTATION_GRACE_SECONDS", value_name = "SECONDS",
        default_value_t = defaults::ROTATION_GRACE_SECONDS.to_string())]
    pub rotation_grace_seconds: String,
    /// How log lines are written to stderr: text (for people) or json (one JSON object per
    /// line, for a log collector)
    #[arg(long, env = "IMPACT_LOG_FORMAT", value_name = "FORMAT",
        default_value = defaults::LOG_FORMAT)]
    pub log_format: String,

    /// The bearer token that GET /metrics (Prometheus) requires, 16 to 256 characters without
    /// spaces [default: none: /metrics answers 404]
    #[arg(
        long,
        env = "IMPACT_METRICS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,

    /// Proxies (comma-separated IP addresses) whose X-Forwarded-For names the client the
    /// sign-in throttle counts [default: none]
    #[arg(long, env = "IMPACT_TRUSTED_PROXIES", value_name = "IPS")]
    pub trusted_proxies: Option<String>,

    /// The mail relay: smtps://USER:PASS@HOST:465, smtp://USER:PASS@HOST:587?tls=required,
    /// smtp://HOST:25 [default: none: emails stay in the Outbox]
    #[arg(
        long,
        env = "IMPACT_SMTP_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub smtp_url: Option<String>,

    /// PEM certificates trusted for the mail relay besides the Mozilla roots
    #[arg(long, env = "IMPACT_SMTP_CA_FILE", value_name = "FILE")]
    pub smtp_ca_file: Option<String>,

    /// The sender of the emails
    #[arg(long, env = "IMPACT_MAIL_FROM", value_name = "ADDRESS",
        default_value = defaults::MAIL_FROM)]
    pub mail_from: String,

    /// The key sealing the secrets in the database: 32 bytes as 64 hex digits or base64
    /// [default: the key file, IMPACT_SECRET_KEY_FILE]
    #[arg(
        long,
        env = "IMPACT_SECRET_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<String>,

    /// The key file used when IMPACT_SECRET_KEY is unset, created with mode 0600 at first
    /// start [default: the SQLite database's path with .key, else ./impact-connect.key]
    #[arg(long, env = "IMPACT_SECRET_KEY_FILE", value_name = "FILE")]
    pub secret_key_file: Option<String>,

    /// Earlier keys (comma-separated) whose sealed values are re-sealed under the current key at
    /// start [default: none]
    #[arg(
        long,
        env = "IMPACT_SECRET_KEY_PREVIOUS",
        value_name = "KEYS",
        hide_env_values = true
    )]
    pub secret_key_previous: Option<String>,
}

impl Settings {
    /// The settings from the environment and the defaults alone, without a command line.
    pub fn from_env() -> anyhow::Result<Self> {
        Cli::try_parse_from(["impact-connect"])
            .map(|cli| cli.settings)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

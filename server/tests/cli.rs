//! The built binary's command line: `--help`, `migrate`, `check-config`, and a start refused
//! for a bad setting. Each run gets a clean environment, so only what a case sets is read.
use std::process::{Command, Output};

/// Every setting the server reads, by its environment variable.
const SETTINGS: &[&str] = &[
    "LEPTOS_SITE_ADDR",
    "LEPTOS_SITE_ROOT",
    "DATABASE_URL",
    "IMPACT_PUBLIC_URL",
    "IMPACT_PROVIDER_URL",
    "IMPACT_SIMULATOR_ADDR",
    "IMPACT_PROVIDER_TIMEOUT_MS",
    "IMPACT_ALLOW_PROVIDER_HOSTS",
    "IMPACT_PROVIDER_CA_FILE",
    "IMPACT_LINK_TTL_HOURS",
    "IMPACT_LINK_KEY",
    "IMPACT_SESSION_IDLE_MINUTES",
    "IMPACT_SESSION_MAX_MINUTES",
    "IMPACT_ADMIN_EMAIL",
    "IMPACT_ADMIN_PASSWORD",
    "IMPACT_MAX_IN_FLIGHT",
    "IMPACT_HEADER_TIMEOUT_MS",
    "IMPACT_BODY_TIMEOUT_MS",
    "IMPACT_MAX_BODY_BYTES",
    "IMPACT_MAX_QUEUED",
    "IMPACT_MAX_CONNECTIONS_PER_IP",
    "IMPACT_MAX_STREAMS_PER_USER",
    "IMPACT_HASH_CONCURRENCY",
    "IMPACT_THROTTLE_ENTRIES",
    "IMPACT_TRUSTED_PROXIES",
    "IMPACT_LEASE_MS",
    "IMPACT_HEALTH_INTERVAL_SECONDS",
    "IMPACT_SLOW_MS",
    "IMPACT_SLOW_AFTER_SECONDS",
    "IMPACT_DIGEST_MINUTES",
    "IMPACT_LOG_FORMAT",
    "IMPACT_METRICS_TOKEN",
    "IMPACT_SMTP_URL",
    "IMPACT_SMTP_CA_FILE",
    "IMPACT_MAIL_FROM",
    "IMPACT_SECRET_KEY",
    "IMPACT_SECRET_KEY_FILE",
    "IMPACT_SECRET_KEY_PREVIOUS",
];

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_impact-connect"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "impact_cli_{name}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn help_lists_every_setting_with_its_variable_and_default() {
    let out = run(
        &["--help"],
        &[
            ("IMPACT_SECRET_KEY", "a secret that is never shown"),
            ("IMPACT_METRICS_TOKEN", "a secret that is never shown"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let help = text(&out.stdout);
    for var in SETTINGS {
        assert!(
            help.contains(&format!("[env: {var}")),
            "--help lacks {var}:\n{help}"
        );
    }
    for default in [
        "[default: sqlite://impact-connect.db?mode=rwc]",
        "[default: 5000]",
        "[default: 72]",
        "[default: 256]",
        "[default: 65536]",
        "[default: text]",
    ] {
        assert!(help.contains(default), "--help lacks {default}:\n{help}");
    }
    for command in ["migrate", "check-config"] {
        assert!(help.contains(command), "--help lacks {command}:\n{help}");
    }
    assert!(
        !help.contains("a secret that is never shown"),
        "a secret's value is printed:\n{help}"
    );
}

#[test]
fn migrate_creates_the_schema_and_exits() {
    let dir = temp_dir("migrate");
    let file = dir.join("fresh.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    for round in ["fresh", "again"] {
        let out = run(&["migrate"], &[("DATABASE_URL", &url)]);
        assert!(
            out.status.success(),
            "{round}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("migrated"), "{round}: {out:?}");
    }
    // The schema is there: the migrations' own table and the app's.
    let tables = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             print(' '.join(r[0] for r in c.execute(\"select name from sqlite_master where type='table'\")))",
        ])
        .arg(&file)
        .output()
        .expect("python3 reads the file");
    let tables = text(&tables.stdout);
    assert!(
        tables.contains("_sqlx_migrations") && tables.contains("connections"),
        "tables: {tables}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_config_accepts_good_settings_and_touches_nothing() {
    let dir = temp_dir("check_good");
    let file = dir.join("never.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let out = run(
        &["check-config"],
        &[
            ("DATABASE_URL", &url),
            ("IMPACT_MAX_IN_FLIGHT", "64"),
            ("IMPACT_PUBLIC_URL", "https://impact.example.com"),
            ("IMPACT_TRUSTED_PROXIES", "10.0.0.1, ::1"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("valid"), "{out:?}");
    assert!(!file.exists(), "check-config opened the database");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_config_refuses_a_bad_setting_naming_it() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("IMPACT_MAX_IN_FLIGHT", "0")],
            "IMPACT_MAX_IN_FLIGHT=\"0\" is not a positive number of requests",
        ),
        (
            &[("IMPACT_HEADER_TIMEOUT_MS", "soon")],
            "IMPACT_HEADER_TIMEOUT_MS=\"soon\" is not a positive number of milliseconds",
        ),
        (
            &[("LEPTOS_SITE_ADDR", "localhost")],
            "LEPTOS_SITE_ADDR=\"localhost\" is not an address like 127.0.0.1:3000",
        ),
        (
            &[("IMPACT_TRUSTED_PROXIES", "proxy.example")],
            "IMPACT_TRUSTED_PROXIES: \"proxy.example\" is not an IP address",
        ),
        (
            &[("IMPACT_PUBLIC_URL", "impact.example.com")],
            "IMPACT_PUBLIC_URL=\"impact.example.com\" is not an http:// or https:// address",
        ),
        (
            &[("IMPACT_ADMIN_EMAIL", "admin@example.com")],
            "IMPACT_ADMIN_EMAIL and IMPACT_ADMIN_PASSWORD go together",
        ),
        (
            &[("IMPACT_LINK_KEY", "short")],
            "IMPACT_LINK_KEY must be at least 32 characters",
        ),
        (
            &[("IMPACT_SECRET_KEY", "not a key")],
            "IMPACT_SECRET_KEY is malformed",
        ),
        (
            &[("IMPACT_MAIL_FROM", "Impact Store App")],
            "IMPACT_MAIL_FROM=\"Impact Store App\" is not a sender",
        ),
        (
            &[("IMPACT_SMTP_URL", "http://relay.example")],
            "IMPACT_SMTP_URL must start with smtp:// or smtps://",
        ),
        (
            &[("IMPACT_LOG_FORMAT", "yaml")],
            "IMPACT_LOG_FORMAT=\"yaml\" is not text or json",
        ),
        (
            &[("IMPACT_METRICS_TOKEN", "short")],
            "IMPACT_METRICS_TOKEN must be 16 to 256 characters",
        ),
        (
            &[("IMPACT_METRICS_TOKEN", "a token with spaces in it")],
            "IMPACT_METRICS_TOKEN must be 16 to 256 characters",
        ),
    ];
    for (env, message) in cases {
        let out = run(&["check-config"], env);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{env:?}: {stderr}");
        assert!(
            stderr.contains("invalid setting") && stderr.contains(message),
            "{env:?}: {stderr}"
        );
    }
    // A flag is checked the same way as its variable.
    let out = run(&["--max-queued=-1", "check-config"], &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("IMPACT_MAX_QUEUED=\"-1\""),
        "{out:?}"
    );
}

#[test]
fn the_server_refuses_to_start_with_a_bad_setting() {
    // Refused before anything listens or is created: no database, no simulator, exit 1.
    let dir = temp_dir("refused");
    let file = dir.join("never.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let out = run(
        &[],
        &[
            ("DATABASE_URL", &url),
            ("LEPTOS_SITE_ADDR", "127.0.0.1:0"),
            ("IMPACT_BODY_TIMEOUT_MS", "0"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("IMPACT_BODY_TIMEOUT_MS=\"0\" is not a positive number"),
        "{out:?}"
    );
    assert!(!file.exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_readme_settings_table_has_a_row_for_every_setting() {
    let readme = include_str!("../../README.md");
    for var in SETTINGS {
        assert!(
            readme.contains(&format!("\n| `{var}` |")),
            "README.md's settings table lacks {var}"
        );
    }
}

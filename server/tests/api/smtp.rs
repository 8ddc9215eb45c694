//! Email delivered through a real SMTP relay over TLS with AUTH: aiosmtpd (Debian's
//! python3-aiosmtpd, see `smtp_relay.py`) on 127.0.0.1, with a CA and a server certificate for
//! localhost / 127.0.0.1 made by the test.
use std::{path::PathBuf, process::Stdio, time::Duration};

use app::server::smtp::SmtpRelay;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};

use crate::helpers::{spawn_with_relay, Backend, TestApp};

const SUBJECT: &str = "Welcome to Impact: connect your instance to the Impact Delivery Instance";
const USER: &str = "mailer@impact";
/// Percent-encoded in the URLs below: the relay must see it decoded.
const PASSWORD: &str = "p@ss word:1";
const PASSWORD_IN_URL: &str = "p%40ss%20word%3A1";

/// A test CA, a server certificate it signed, and the server's key, as PEM files.
struct Pki {
    dir: PathBuf,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "impact-connect test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("server key");
    let mut server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = server.signed_by(&key, &issuer).expect("server certificate");

    let dir = std::env::temp_dir().join(format!(
        "impact_smtp_{}_{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("write PEM");
        path
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        cert: write("cert.pem", cert.pem()),
        key: write("key.pem", key.serialize_pem()),
        dir,
    }
}

/// The aiosmtpd relay, stopped when dropped (its standard input closes; killed as well).
struct Relay {
    port: u16,
    messages: Lines<BufReader<tokio::process::ChildStdout>>,
    _child: tokio::process::Child,
}

#[derive(Clone, Copy)]
enum Mode {
    StartTls,
    Implicit,
}

async fn relay(mode: Mode, pki: &Pki) -> Relay {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/smtp_relay.py");
    // Debian's interpreter, where python3-aiosmtpd is installed (scripts/setup.sh test).
    let mut child = tokio::process::Command::new("/usr/bin/python3")
        .arg(script)
        .arg(match mode {
            Mode::StartTls => "starttls",
            Mode::Implicit => "implicit",
        })
        .args([&pki.cert, &pki.key])
        .args([USER, PASSWORD])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect(
            "start the SMTP relay (/usr/bin/python3 with python3-aiosmtpd: scripts/setup.sh test)",
        );
    let mut messages = BufReader::new(child.stdout.take().expect("relay stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), messages.next_line())
        .await
        .expect("the SMTP relay starts within 20 s")
        .expect("relay output")
        .expect("the SMTP relay printed its port (is python3-aiosmtpd installed?)");
    let port = first
        .strip_prefix("PORT ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from the relay: {first:?}"));
    Relay {
        port,
        messages,
        _child: child,
    }
}

impl Relay {
    /// The next message the relay accepted: {"user", "mail_from", "rcpt_tos", "data"}.
    async fn message(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(20), self.messages.next_line())
            .await
            .expect("a message within 20 s")
            .expect("relay output")
            .expect("the relay is still running");
        serde_json::from_str(&line).expect("a JSON line")
    }

    /// Nothing more arrives within a short while.
    async fn nothing_more(&mut self) {
        let next =
            tokio::time::timeout(Duration::from_millis(300), self.messages.next_line()).await;
        assert!(next.is_err(), "unexpected message: {next:?}");
    }
}

fn relay_with_ca(url: &str, pki: &Pki) -> SmtpRelay {
    let ca = pki.ca.to_str().expect("UTF-8 path");
    SmtpRelay::from_settings(url, Some(ca)).expect("relay settings")
}

/// The newest outbox row's (sent_at, send_error) once delivery has settled one way or the other.
async fn outcome(app: &TestApp) -> (Option<String>, Option<String>) {
    for _ in 0..600 {
        let row = sqlx::query_as::<_, (Option<String>, Option<String>)>(
            "SELECT sent_at, send_error FROM outbox ORDER BY id DESC LIMIT 1",
        )
        .fetch_one(&app.state.db.pool)
        .await
        .expect("outbox row");
        if row.0.is_some() || row.1.is_some() {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the email was neither sent nor marked failed within 30 s");
}

/// What the relay received is the welcome email, to the invited address, from the signed-in
/// relay user.
fn assert_is_the_welcome_email(mail: &Value) {
    assert_eq!(mail["user"], USER, "{mail}");
    assert_eq!(mail["rcpt_tos"], serde_json::json!(["ada@example.com"]));
    assert_eq!(mail["mail_from"], "no-reply@example.com");
    let data = mail["data"].as_str().expect("data");
    // Headers may be folded over several lines.
    let unfolded = data.replace("\r\n ", " ").replace("\r\n\t", " ");
    assert!(unfolded.contains(&format!("Subject: {SUBJECT}")), "{data}");
    assert!(unfolded.contains("To: ada@example.com"), "{data}");
}

#[tokio::test]
async fn starttls_with_auth_delivers_and_marks_the_email_sent() {
    let pki = pki();
    let mut relay = relay(Mode::StartTls, &pki).await;
    let url = format!(
        "smtp://mailer%40impact:{PASSWORD_IN_URL}@localhost:{}?tls=required",
        relay.port
    );
    let app = spawn_with_relay(Backend::Sqlite, Some(relay_with_ca(&url, &pki))).await;
    app.invite("ada@example.com", "ServiceNow Impact").await;

    assert_is_the_welcome_email(&relay.message().await);
    let (sent, error) = outcome(&app).await;
    assert!(sent.is_some() && error.is_none(), "{sent:?} {error:?}");
}

#[tokio::test]
async fn implicit_tls_with_auth_delivers_and_marks_the_email_sent() {
    let pki = pki();
    let mut relay = relay(Mode::Implicit, &pki).await;
    let url = format!(
        "smtps://mailer%40impact:{PASSWORD_IN_URL}@127.0.0.1:{}",
        relay.port
    );
    let app = spawn_with_relay(Backend::Sqlite, Some(relay_with_ca(&url, &pki))).await;
    app.invite("ada@example.com", "ServiceNow Impact").await;

    assert_is_the_welcome_email(&relay.message().await);
    let (sent, error) = outcome(&app).await;
    assert!(sent.is_some() && error.is_none(), "{sent:?} {error:?}");
}

#[tokio::test]
async fn a_wrong_password_is_recorded_as_the_send_error() {
    let pki = pki();
    let mut relay = relay(Mode::StartTls, &pki).await;
    let url = format!(
        "smtp://mailer%40impact:not-the-password@127.0.0.1:{}?tls=required",
        relay.port
    );
    let app = spawn_with_relay(Backend::Sqlite, Some(relay_with_ca(&url, &pki))).await;
    app.invite("ada@example.com", "ServiceNow Impact").await;

    let (sent, error) = outcome(&app).await;
    assert_eq!(sent, None);
    let error = error.expect("send_error");
    assert!(
        error.contains(&format!("SMTP relay 127.0.0.1:{}", relay.port))
            && error.contains("535")
            && error.contains("Authentication credentials invalid"),
        "{error}"
    );
    assert!(!error.contains("not-the-password"), "{error}");
    relay.nothing_more().await;
    // The app carries on; the email stays readable in the outbox.
    let outbox = app.get("/api/outbox").await;
    assert_eq!(
        (outbox.status, outbox.body.as_array().map(Vec::len)),
        (200, Some(1))
    );
}

#[tokio::test]
async fn a_relay_certificate_from_an_unknown_ca_is_recorded_as_the_send_error() {
    let pki = pki();
    let mut relay = relay(Mode::Implicit, &pki).await;
    // No IMPACT_SMTP_CA_FILE: the test CA is not among the trusted roots.
    let url = format!(
        "smtps://mailer%40impact:{PASSWORD_IN_URL}@127.0.0.1:{}",
        relay.port
    );
    let relay_settings = SmtpRelay::from_settings(&url, None).expect("relay settings");
    let app = spawn_with_relay(Backend::Sqlite, Some(relay_settings)).await;
    app.invite("ada@example.com", "ServiceNow Impact").await;

    let (sent, error) = outcome(&app).await;
    assert_eq!(sent, None);
    let error = error.expect("send_error");
    assert!(
        error.starts_with(&format!("SMTP relay 127.0.0.1:{}: ", relay.port))
            && error.contains("invalid peer certificate: UnknownIssuer")
            && error.contains("IMPACT_SMTP_CA_FILE"),
        "{error}"
    );
    relay.nothing_more().await;
    assert_eq!(app.get("/api/outbox").await.status, 200);
}

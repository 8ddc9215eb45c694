//! The provider over real https, with certificates made here: a good one validates; an expired,
//! wrong-host or unknown-CA certificate fails the TLS check with its own reason. And provider
//! URLs on this machine are refused before anything is called (loopback only: the refusals of
//! private and metadata ranges are unit-tested on addresses as data in `app::model::address`).
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::{json, Value};

use crate::helpers::{spawn_with_provider, Backend, TestApp};
use app::server::outbound::Outbound;
use simulator::{SimCert, Simulator};

/// A certificate authority of the test's own.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for these names (DNS names or IP addresses), valid between the two
    /// years given.
    fn server_cert(&self, names: &[&str], from: i32, until: i32) -> SimCert {
        self.server_cert_until(names, from, (until, 1, 1))
    }

    /// The same, ending on a given day (year, month, day).
    fn server_cert_until(&self, names: &[&str], from: i32, until: (i32, u8, u8)) -> SimCert {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "provider");
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        SimCert {
            chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

const GOOD_NAMES: &[&str] = &["localhost", "127.0.0.1"];

/// An app whose provider is an https simulator presenting `cert`, trusting `ca` as the
/// operator's private CA and allowing the simulator's loopback address.
async fn https_app(ca: &TestCa, cert: &SimCert) -> TestApp {
    let sim = Simulator::spawn_tls("127.0.0.1:0".parse().expect("addr"), cert)
        .await
        .expect("https simulator");
    let outbound = Outbound::new(&sim.address().to_string(), Some(ca.pem().as_bytes()))
        .expect("outbound policy");
    let app = spawn_with_provider(Backend::Sqlite, sim, outbound, None).await;
    assert!(
        app.provider_url.starts_with("https://127.0.0.1:"),
        "{}",
        app.provider_url
    );
    app
}

fn check<'a>(health: &'a Value, id: &str) -> &'a Value {
    health["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check_id"] == id)
        .unwrap_or_else(|| panic!("no {id} check in {health}"))
}

#[tokio::test]
async fn a_provider_over_https_with_a_good_certificate_validates() {
    let ca = TestCa::new("Test private CA");
    let app = https_app(&ca, &ca.server_cert(GOOD_NAMES, 2020, 2090)).await;
    let token = app.invite("ada@example.com", "ServiceNow Impact").await;
    let id = app.create_from_link(&token).await;
    app.wait_for_state(id, "validated").await;
    let health = app.get(&format!("/api/connections/{id}/health")).await.body;
    let tls = check(&health, "tls");
    assert_eq!(tls["status"], "passed", "{tls}");
    assert!(
        tls["message"]
            .as_str()
            .unwrap_or("")
            .contains("valid for its host name"),
        "{tls}"
    );
}

#[tokio::test]
async fn each_bad_certificate_fails_the_tls_check_with_its_own_reason() {
    let ca = TestCa::new("Test private CA");
    let stranger = TestCa::new("Nobody trusts this CA");
    let cases = [
        (
            "expired",
            ca.server_cert(GOOD_NAMES, 2019, 2021),
            "has expired",
        ),
        (
            "not yet valid",
            ca.server_cert(GOOD_NAMES, 2080, 2090),
            "not valid yet",
        ),
        (
            "wrong host",
            ca.server_cert(&["idi.example.com"], 2020, 2090),
            "not issued for the host",
        ),
        (
            "unknown CA",
            stranger.server_cert(GOOD_NAMES, 2020, 2090),
            "unknown authority",
        ),
    ];
    for (case, bad, reason) in cases {
        let app = https_app(&ca, &ca.server_cert(GOOD_NAMES, 2020, 2090)).await;
        // The registration is initiated while the certificate is good; then it goes bad.
        let token = app.invite("ada@example.com", "ServiceNow Impact").await;
        app.sim.set_certificate(&bad).expect("swap certificate");
        let id = app.create_from_link(&token).await;
        app.wait_for_state(id, "validation_failed").await;
        let health = app.get(&format!("/api/connections/{id}/health")).await.body;
        let tls = check(&health, "tls");
        assert_eq!(tls["status"], "failed", "{case}: {tls}");
        let message = tls["message"].as_str().unwrap_or("");
        assert!(message.contains(reason), "{case}: {message}");
    }
}

#[tokio::test]
async fn an_invitation_to_a_provider_whose_certificate_fails_is_refused_with_the_reason() {
    let ca = TestCa::new("Test private CA");
    let app = https_app(&ca, &ca.server_cert(GOOD_NAMES, 2019, 2021)).await;
    let r = app
        .post(
            "/api/invitations",
            json!({ "email": "ada@example.com", "company": "ServiceNow Impact" }),
        )
        .await;
    assert!(
        (400..600).contains(&r.status) && r.status != 500,
        "{} {:?}",
        r.status,
        r.body
    );
    let message = r.body["message"].as_str().unwrap_or("");
    assert!(message.contains("has expired"), "{message}");
    assert_eq!(app.get("/api/outbox").await.body, json!([]), "nothing sent");
}

/// Every spelling of an address on this machine is refused before any call; the app's answer
/// says why without telling what listens there.
#[tokio::test]
async fn provider_urls_on_this_machine_are_refused_at_invitation_without_a_call() {
    let app = crate::helpers::spawn(Backend::Sqlite).await;
    let cases = [
        ("http://127.0.0.1:22/", "plain http"),
        ("https://127.0.0.2:3999/", "loopback"),
        ("https://2130706433:22/", "loopback"),
        ("https://0177.0.0.1:22/", "loopback"),
        ("https://[::1]:22/", "loopback"),
        ("https://[::ffff:127.0.0.1]:22/", "loopback"),
        // A name that resolves to this machine.
        ("https://localhost:22/", "loopback"),
    ];
    for (url, why) in cases {
        let r = app
            .post(
                "/api/invitations",
                json!({ "email": "ada@example.com", "company": "ServiceNow Impact", "provider_url": url }),
            )
            .await;
        assert_eq!(r.status, 422, "{url}: {:?}", r.body);
        assert_eq!(r.body["field"], "url", "{url}: {:?}", r.body);
        let message = r.body["message"].as_str().unwrap_or("");
        assert!(message.contains("refused"), "{url}: {message}");
        assert!(message.contains(why), "{url}: {message}");
        assert!(!message.to_lowercase().contains("ssh"), "{url}: {message}");
    }
    assert_eq!(app.get("/api/outbox").await.body, json!([]), "nothing sent");
    assert_eq!(
        app.get("/api/invitations").await.body,
        json!([]),
        "nothing stored"
    );
}

/// A provider's redirect is never followed (it could lead past the address check), and an answer
/// larger than any protocol answer is cut off: each fails validation saying so.
#[tokio::test]
async fn redirects_are_not_followed_and_oversized_answers_are_refused() {
    let cases = [
        (
            json!({ "redirect_to": "http://127.0.0.1:9/elsewhere" }),
            "redirects are not followed",
        ),
        (
            json!({ "oversized_answer": true }),
            "larger than 1048576 bytes",
        ),
    ];
    for (faults, said) in cases {
        let app = crate::helpers::spawn(Backend::Sqlite).await;
        let token = app.invite("ada@example.com", "ServiceNow Impact").await;
        app.faults(faults.clone()).await;
        let id = app.create_from_link(&token).await;
        app.wait_for_state(id, "validation_failed").await;
        let health = app.get(&format!("/api/connections/{id}/health")).await.body;
        let reachable = check(&health, "reachable");
        assert_ne!(reachable["status"], "passed", "{faults}: {reachable}");
        let message = reachable["message"].as_str().unwrap_or("");
        assert!(message.contains(said), "{faults}: {message}");
    }
}

/// A URL already stored (the policy may have changed since it was entered) is checked again on
/// every scan: the URL check fails, and nothing that depends on it calls the address.
#[tokio::test]
async fn a_stored_url_the_policy_refuses_fails_the_url_check_and_is_not_called() {
    let app = crate::helpers::spawn(Backend::Sqlite).await;
    let token = app.invite("ada@example.com", "ServiceNow Impact").await;
    let id = app.create_from_link(&token).await;
    app.wait_for_state(id, "validated").await;
    app.repoint_and_rescan(id, "https://127.0.0.2:9").await;
    app.wait_for_state(id, "validation_failed").await;
    let health = app.get(&format!("/api/connections/{id}/health")).await.body;
    let url = check(&health, "url");
    assert_eq!(url["status"], "failed", "{url}");
    let message = url["message"].as_str().unwrap_or("");
    assert!(
        message.contains("is refused") && message.contains("loopback"),
        "{message}"
    );
    let reachable = check(&health, "reachable");
    assert!(
        !reachable["message"]
            .as_str()
            .unwrap_or("")
            .contains("refused the connection"),
        "the address was called: {reachable}"
    );
}

/// Rescans an onboarded connection (the connection health suite) and waits until its
/// certificate check reads `status`; returns that check.
async fn rescanned_expiry(app: &TestApp, id: i64, status: &str) -> Value {
    // A scan still finishing (the previous Rescan's last checks) refuses a new one: try again.
    crate::helpers::eventually("a Rescan started", async || {
        let version = app.get(&format!("/api/connections/{id}")).await.body["version"].clone();
        let r = app
            .post(
                &format!("/api/connections/{id}/actions"),
                json!({ "action": "rescan", "version": version }),
            )
            .await;
        assert!(r.status == 200 || r.status == 409, "{:?}", r.body);
        r.status == 200
    })
    .await;
    let mut last = Value::Null;
    crate::helpers::eventually(&format!("tls_expiry {status}"), async || {
        let health = app.get(&format!("/api/connections/{id}/health")).await.body;
        last = health["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["check_id"] == "tls_expiry"))
            .cloned()
            .unwrap_or(Value::Null);
        last["status"] == status
    })
    .await;
    last
}

#[tokio::test]
async fn a_certificate_that_expires_soon_is_reported_ahead_by_the_connection_health_suite() {
    let ca = TestCa::new("Test private CA");
    let app = https_app(&ca, &ca.server_cert(GOOD_NAMES, 2020, 2090)).await;
    let id = crate::onboarding::onboarded(&app).await;
    let good = rescanned_expiry(&app, id, "passed").await;
    assert!(
        good["message"]
            .as_str()
            .unwrap_or("")
            .contains("valid until 2090-01-01"),
        "{good}"
    );
    // The provider's certificate now ends in five days: still valid, reported with its date.
    let end = chrono::Utc::now() + chrono::Duration::days(5);
    let soon = {
        use chrono::Datelike;
        ca.server_cert_until(
            GOOD_NAMES,
            2020,
            (end.year(), end.month() as u8, end.day() as u8),
        )
    };
    app.sim.set_certificate(&soon).expect("swap certificate");
    let warned = rescanned_expiry(&app, id, "failed").await;
    let message = warned["message"].as_str().unwrap_or("");
    assert!(
        message.contains(&format!("expires on {}", end.format("%Y-%m-%d"))),
        "{message}"
    );
    assert_eq!(warned["severity"], "medium");
    // A warning ahead, not a broken link: Outbound and Inbound stay Up.
    let c = app.get(&format!("/api/connections/{id}")).await.body;
    assert_eq!(
        (c["outbound"].as_str(), c["inbound"].as_str()),
        (Some("up"), Some("up")),
        "{c}"
    );
}

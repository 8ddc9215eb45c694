//! The provider simulator over real HTTP: each test spawns its own simulator on port 0 and, when
//! the provider must call back, a small consumer of its own that checks the signatures.
use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use app::server::signing::{self, VerifyError};
use axum::{
    body::Bytes,
    extract::{OriginalUri, State},
    http::{HeaderMap, StatusCode},
    routing::post,
    Json, Router,
};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use reqwest::{Method, Url};
use serde_json::{json, Value};
use simulator::Simulator;

const CONTACT: &str = "alice@example.com";

// ---------------------------------------------------------------------------------------------
// Helpers

struct TestSim {
    sim: Simulator,
    client: reqwest::Client,
    instance: String,
}

#[derive(Clone)]
struct Creds {
    consumer_id: String,
    secret: Vec<u8>,
}

async fn start() -> TestSim {
    let sim = Simulator::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    TestSim {
        sim,
        client,
        instance: "test".into(),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl TestSim {
    fn base(&self) -> String {
        self.sim.instance_url(&self.instance)
    }

    fn url(&self, rel: &str) -> String {
        format!("{}{rel}", self.base())
    }

    fn faults_url(&self) -> String {
        format!(
            "http://{}/sim/instances/{}/faults",
            self.sim.address(),
            self.instance
        )
    }

    async fn set_faults(&self, faults: Value) {
        let r = self
            .client
            .put(self.faults_url())
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }

    async fn info(&self) -> reqwest::Response {
        self.client
            .get(self.url("/idi/v1/info"))
            .send()
            .await
            .unwrap()
    }

    async fn new_registration(&self) -> String {
        let r = self
            .client
            .post(self.url("/idi/v1/admin/registrations"))
            .json(&json!({"company": "Acme Corp", "contact_email": CONTACT}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        body["registration_code"].as_str().unwrap().to_string()
    }

    async fn exchange(&self, code: &str, consumer_url: &str) -> reqwest::Response {
        self.client
            .post(self.url("/idi/v1/registrations"))
            .json(&json!({
                "registration_code": code,
                "company": "Acme Corp",
                "contact_email": CONTACT,
                "consumer_url": consumer_url,
            }))
            .send()
            .await
            .unwrap()
    }

    async fn register(&self, consumer_url: &str) -> Creds {
        let code = self.new_registration().await;
        let r = self.exchange(&code, consumer_url).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        Creds {
            consumer_id: body["consumer_id"].as_str().unwrap().to_string(),
            secret: B64.decode(body["secret"].as_str().unwrap()).unwrap(),
        }
    }

    /// A signed request to `{base}/idi/v1/consumers/{id}{rel}`.
    async fn signed(
        &self,
        method: Method,
        creds: &Creds,
        rel: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        self.signed_with(method, creds, &creds.secret, rel, body, now())
            .await
    }

    async fn signed_with(
        &self,
        method: Method,
        creds: &Creds,
        secret: &[u8],
        rel: &str,
        body: Option<Value>,
        timestamp: i64,
    ) -> reqwest::Response {
        self.signed_request(method, creds, secret, rel, body, timestamp)
            .send()
            .await
            .unwrap()
    }

    fn signed_request(
        &self,
        method: Method,
        creds: &Creds,
        secret: &[u8],
        rel: &str,
        body: Option<Value>,
        timestamp: i64,
    ) -> reqwest::RequestBuilder {
        let url = Url::parse(&self.url(&format!("/idi/v1/consumers/{}{rel}", creds.consumer_id)))
            .unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default().into_bytes();
        let signature = signing::sign(secret, method.as_str(), url.path(), timestamp, &body);
        self.client
            .request(method, url)
            .header(signing::HEADER_CONSUMER, &creds.consumer_id)
            .header(signing::HEADER_TIMESTAMP, timestamp.to_string())
            .header(signing::HEADER_SIGNATURE, signature)
            .body(body)
    }

    /// A signed onboarding step named by an idempotency key.
    async fn keyed(
        &self,
        method: Method,
        creds: &Creds,
        rel: &str,
        body: Option<Value>,
        key: &str,
    ) -> (StatusCode, Value) {
        let r = self
            .signed_request(method, creds, &creds.secret, rel, body, now())
            .header(signing::HEADER_IDEMPOTENCY, key)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }

    async fn get_json(&self, creds: &Creds, rel: &str) -> (StatusCode, Value) {
        let r = self.signed(Method::GET, creds, rel, None).await;
        (r.status(), r.json().await.unwrap())
    }

    async fn post_json(&self, creds: &Creds, rel: &str, body: Value) -> (StatusCode, Value) {
        let r = self.signed(Method::POST, creds, rel, Some(body)).await;
        (r.status(), r.json().await.unwrap())
    }
}

async fn error_of(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].is_string(), "{body}");
    (status, body["code"].as_str().unwrap().to_string())
}

/// One call the simulator made to the test consumer.
#[derive(Debug, Clone)]
struct Call {
    path: String,
    consumer: String,
    timestamp: i64,
    verified: Result<(), VerifyError>,
    body: Value,
}

/// A consumer's inbound endpoints under a path prefix (`/app`), checking each signature with
/// the connection's secret and this machine's clock.
#[derive(Clone, Default)]
struct Inbound {
    secret: Arc<Mutex<Vec<u8>>>,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Inbound {
    async fn start() -> (Inbound, String) {
        let inbound = Inbound::default();
        let app = Router::new()
            .route("/app/inbound/v1/{endpoint}", post(inbound_endpoint))
            .with_state(inbound.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (inbound, format!("http://{addr}/app"))
    }

    fn trust(&self, creds: &Creds) {
        *self.secret.lock().unwrap() = creds.secret.clone();
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

async fn inbound_endpoint(
    State(inbound): State<Inbound>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let timestamp: i64 = header(signing::HEADER_TIMESTAMP).parse().unwrap_or(0);
    let secret = inbound.secret.lock().unwrap().clone();
    let verified = signing::verify(
        &secret,
        "POST",
        uri.path(),
        timestamp,
        &body,
        &header(signing::HEADER_SIGNATURE),
        now(),
    );
    inbound.calls.lock().unwrap().push(Call {
        path: uri.path().to_string(),
        consumer: header(signing::HEADER_CONSUMER),
        timestamp,
        verified,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    match verified {
        Ok(()) => (StatusCode::OK, Json(json!({"ok": true}))),
        Err(VerifyError::ClockSkew) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": "clock_skew", "message": "clock"})),
        ),
        Err(VerifyError::BadSignature) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": "bad_signature", "message": "sig"})),
        ),
    }
}

/// A consumer registered with a running inbound server.
async fn connected() -> (TestSim, Creds, Inbound) {
    let sim = start().await;
    let (inbound, url) = Inbound::start().await;
    let creds = sim.register(&url).await;
    inbound.trust(&creds);
    (sim, creds, inbound)
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

// ---------------------------------------------------------------------------------------------
// info, registration, signatures

#[tokio::test]
async fn info_describes_the_instance_on_the_providers_clock() {
    let sim = start().await;
    let r = sim.info().await;
    assert_eq!(r.status(), StatusCode::OK);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["protocol_version"], 1);
    assert_eq!(info["min_consumer_version"], 1);
    assert_eq!(info["instance"], "test");
    assert_eq!(info["applications"]["impact_core"], "3.4.0");
    assert_eq!(info["applications"]["service_exchange"], "2.6.1");
    let server_time =
        chrono::DateTime::parse_from_rfc3339(info["server_time"].as_str().unwrap()).unwrap();
    assert!((server_time.timestamp() - now()).abs() <= 2);
    assert_eq!(
        sim.sim.instance_url("x"),
        format!("http://{}/i/x", sim.sim.address())
    );
}

#[tokio::test]
async fn a_registration_code_works_once_and_unknown_codes_are_refused() {
    let sim = start().await;
    let code = sim.new_registration().await;

    let r = sim.exchange(&code, "http://127.0.0.1:9/").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let creds: Value = r.json().await.unwrap();
    assert!(creds["consumer_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert_eq!(
        B64.decode(creds["secret"].as_str().unwrap()).unwrap().len(),
        32
    );
    assert_eq!(creds["protocol_version"], 1);

    assert_eq!(
        error_of(sim.exchange(&code, "http://127.0.0.1:9").await).await,
        (StatusCode::CONFLICT, "registration_used".into())
    );
    assert_eq!(
        error_of(sim.exchange("reg_nope", "http://127.0.0.1:9").await).await,
        (StatusCode::NOT_FOUND, "unknown_registration".into())
    );
    // Codes belong to one instance.
    let code = sim.new_registration().await;
    let r = sim
        .client
        .post(format!(
            "{}/idi/v1/registrations",
            sim.sim.instance_url("other")
        ))
        .json(&json!({"registration_code": code, "consumer_url": "http://127.0.0.1:9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.1, "unknown_registration");
}

#[tokio::test]
async fn bad_registration_bodies_are_400() {
    let sim = start().await;
    let post = |rel: &'static str, body: &'static str| {
        sim.client
            .post(sim.url(rel))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (rel, body) in [
        ("/idi/v1/admin/registrations", "not json"),
        (
            "/idi/v1/admin/registrations",
            r#"{"company": "", "contact_email": "a@example.com"}"#,
        ),
        (
            "/idi/v1/admin/registrations",
            r#"{"company": "Acme", "contact_email": "nobody"}"#,
        ),
        ("/idi/v1/registrations", r#"{"registration_code": "x"}"#),
        (
            "/idi/v1/registrations",
            r#"{"registration_code": "x", "consumer_url": "ftp://x"}"#,
        ),
    ] {
        assert_eq!(
            error_of(post(rel, body).await.unwrap()).await,
            (StatusCode::BAD_REQUEST, "bad_request".into()),
            "{body}"
        );
    }
    // A failed exchange does not use up the code.
    let code = sim.new_registration().await;
    assert_eq!(
        sim.exchange(&code, "not a url").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        sim.exchange(&code, "http://127.0.0.1:9").await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn signed_requests_are_checked() {
    let sim = start().await;
    let creds = sim.register("http://127.0.0.1:9").await;

    let (status, me) = sim.get_json(&creds, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["consumer_id"], creds.consumer_id.as_str());
    assert_eq!(me["company"], "Acme Corp");
    assert_eq!(me["contact_email"], CONTACT);
    assert_eq!(me["status"], "registered");

    let wrong = sim
        .signed_with(Method::GET, &creds, &[7; 32], "", None, now())
        .await;
    assert_eq!(
        error_of(wrong).await,
        (StatusCode::UNAUTHORIZED, "bad_signature".into())
    );

    let late = sim
        .signed_with(Method::GET, &creds, &creds.secret, "", None, now() - 400)
        .await;
    assert_eq!(
        error_of(late).await,
        (StatusCode::UNAUTHORIZED, "clock_skew".into())
    );
    let absurd = sim
        .signed_with(Method::GET, &creds, &creds.secret, "", None, i64::MIN)
        .await;
    assert_eq!(
        error_of(absurd).await,
        (StatusCode::UNAUTHORIZED, "clock_skew".into())
    );

    let unsigned = sim
        .client
        .get(sim.url(&format!("/idi/v1/consumers/{}", creds.consumer_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(unsigned).await,
        (StatusCode::UNAUTHORIZED, "bad_signature".into())
    );

    // The body is signed too.
    let url = sim.url(&format!("/idi/v1/consumers/{}/echo", creds.consumer_id));
    let path = Url::parse(&url).unwrap().path().to_string();
    let ts = now();
    let sig = signing::sign(&creds.secret, "POST", &path, ts, br#"{"nonce":"a"}"#);
    let tampered = sim
        .client
        .post(url)
        .header(signing::HEADER_CONSUMER, &creds.consumer_id)
        .header(signing::HEADER_TIMESTAMP, ts.to_string())
        .header(signing::HEADER_SIGNATURE, sig)
        .body(r#"{"nonce":"b"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(tampered).await,
        (StatusCode::UNAUTHORIZED, "bad_signature".into())
    );

    let ghost = Creds {
        consumer_id: "con_ghost".into(),
        secret: creds.secret.clone(),
    };
    assert_eq!(
        error_of(sim.signed(Method::GET, &ghost, "", None).await).await,
        (StatusCode::NOT_FOUND, "unknown_consumer".into())
    );
}

#[tokio::test]
async fn unknown_paths_answer_json() {
    let sim = start().await;
    let r = sim
        .client
        .get(sim.url("/idi/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    let r = sim
        .client
        .delete(sim.url("/idi/v1/info"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::METHOD_NOT_ALLOWED);
}

// ---------------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn faults_are_set_partially_validated_and_reset() {
    let sim = start().await;
    let defaults = json!({"down": false, "slow_ms": 0, "late_answer_ms": 0, "http_5xx": false, "malformed_json": false,
        "protocol_version": 1, "bad_credentials": false, "entitlement": "active",
        "inbound_blocked": false, "inbound_unsent": false, "instance_changed": false,
        "clock_skew_secs": 0, "fail_settings_group": null, "redirect_to": null,
        "oversized_answer": false, "data_page_ms": 0});
    let get = || async {
        sim.client
            .get(sim.faults_url())
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    assert_eq!(get().await, defaults);

    let r = sim
        .client
        .put(sim.faults_url())
        .json(&json!({"protocol_version": 2, "entitlement": "pending"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut expected = defaults.clone();
    expected["protocol_version"] = json!(2);
    expected["entitlement"] = json!("pending");
    assert_eq!(r.json::<Value>().await.unwrap(), expected);
    assert_eq!(get().await, expected);

    for bad in [
        "{\"slow\": 5}",
        "{\"entitlement\": \"expired\"}",
        "{\"fail_settings_group\": \"x\"}",
        "{\"down\": 1}",
        "nope",
    ] {
        let r = sim
            .client
            .put(sim.faults_url())
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(r).await,
            (StatusCode::BAD_REQUEST, "bad_request".into()),
            "{bad}"
        );
    }
    assert_eq!(get().await, expected, "a refused PUT changes nothing");

    let other = format!("http://{}/sim/instances/other/faults", sim.sim.address());
    assert_eq!(
        sim.client
            .get(other)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
        defaults
    );

    let reset = format!("http://{}/sim/instances/test", sim.sim.address());
    assert_eq!(
        sim.client.delete(reset).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(get().await, defaults);
}

#[tokio::test]
async fn reset_forgets_registrations_and_consumers() {
    let sim = start().await;
    let creds = sim.register("http://127.0.0.1:9").await;
    let code = sim.new_registration().await;
    sim.client
        .delete(format!("http://{}/sim/instances/test", sim.sim.address()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(sim.signed(Method::GET, &creds, "", None).await)
            .await
            .1,
        "unknown_consumer"
    );
    assert_eq!(
        error_of(sim.exchange(&code, "http://127.0.0.1:9").await)
            .await
            .1,
        "unknown_registration"
    );
}

#[tokio::test]
async fn down_answers_503_on_every_idi_endpoint() {
    let sim = start().await;
    let creds = sim.register("http://127.0.0.1:9").await;
    sim.set_faults(json!({"down": true})).await;
    // Every provider endpoint of docs/PROVIDER_PROTOCOL.md, written out here; the consumer
    // endpoints are called signed, as the app calls them, so a 503 is the fault, not a refusal.
    let open = [
        (Method::GET, "/idi/v1/info"),
        (Method::POST, "/idi/v1/admin/registrations"),
        (Method::POST, "/idi/v1/registrations"),
        (Method::GET, "/idi/authorize"),
        (Method::POST, "/idi/authorize"),
    ];
    for (method, rel) in open {
        let r = sim
            .client
            .request(method.clone(), sim.url(rel))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(r).await,
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into()),
            "{method} {rel}"
        );
    }
    let consumer = [
        (Method::GET, ""),
        (Method::GET, "/entitlements"),
        (Method::POST, "/callback-test"),
        (Method::POST, "/authorizations"),
        (Method::POST, "/onboarding"),
        (Method::POST, "/onboarding/complete"),
        (Method::GET, "/settings/exchange_settings"),
        (Method::POST, "/echo"),
        (Method::GET, "/data-sample"),
        (Method::GET, "/data/tables"),
        (Method::POST, "/data/tables/impact_account/page"),
    ];
    for (method, rel) in consumer {
        let body = (method == Method::POST).then(|| json!({}));
        let r = sim.signed(method.clone(), &creds, rel, body).await;
        assert_eq!(
            error_of(r).await,
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into()),
            "{method} consumers/{{id}}{rel}"
        );
    }
    // The simulator's own administration still answers.
    sim.set_faults(json!({})).await;
    assert_eq!(sim.info().await.status(), StatusCode::OK);
    assert_eq!(
        sim.get_json(&creds, "/entitlements").await.0,
        StatusCode::OK,
        "and the provider answers again once up"
    );
}

#[tokio::test]
async fn slow_ms_delays_answers() {
    let sim = start().await;
    sim.set_faults(json!({"slow_ms": 400})).await;
    let started = Instant::now();
    assert_eq!(sim.info().await.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    sim.set_faults(json!({"slow_ms": 400, "down": true})).await;
    let started = Instant::now();
    assert_eq!(sim.info().await.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn http_5xx_breaks_signed_endpoints_only() {
    let sim = start().await;
    let creds = sim.register("http://127.0.0.1:9").await;
    sim.set_faults(json!({"http_5xx": true})).await;
    let r = sim.signed(Method::GET, &creds, "/entitlements", None).await;
    assert_eq!(error_of(r).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(sim.info().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn malformed_json_and_protocol_version_show_in_info() {
    let sim = start().await;
    sim.set_faults(json!({"malformed_json": true})).await;
    let r = sim.info().await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(serde_json::from_str::<Value>(&r.text().await.unwrap()).is_err());

    sim.set_faults(json!({"protocol_version": 2})).await;
    let info: Value = sim.info().await.json().await.unwrap();
    assert_eq!(info["protocol_version"], 2);
}

#[tokio::test]
async fn bad_credentials_refuses_good_signatures() {
    let sim = start().await;
    let creds = sim.register("http://127.0.0.1:9").await;
    sim.set_faults(json!({"bad_credentials": true})).await;
    assert_eq!(
        error_of(sim.signed(Method::GET, &creds, "", None).await).await,
        (StatusCode::UNAUTHORIZED, "bad_signature".into())
    );
}

#[tokio::test]
async fn the_entitlement_fault_shapes_the_entitlements() {
    let sim = start().await;
    let creds = sim.register("http://127.0.0.1:9").await;
    let (status, body) = sim.get_json(&creds, "/entitlements").await;
    assert_eq!(status, StatusCode::OK);
    let list = body["entitlements"].as_array().unwrap();
    assert!(!list.is_empty());
    for e in list {
        assert_eq!(e["status"], "active");
        for field in ["id", "name", "entity", "identity"] {
            assert!(
                e[field].as_str().is_some_and(|v| !v.is_empty()),
                "{field} in {e}"
            );
        }
    }
    for status in ["pending", "inactive"] {
        sim.set_faults(json!({"entitlement": status})).await;
        let (_, body) = sim.get_json(&creds, "/entitlements").await;
        assert!(body["entitlements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == status));
        let (_, group) = sim.get_json(&creds, "/settings/entitlements").await;
        assert!(group["settings"]["entitlements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == status));
    }
    sim.set_faults(json!({"entitlement": "missing"})).await;
    let (_, body) = sim.get_json(&creds, "/entitlements").await;
    assert_eq!(body, json!({"entitlements": []}));
}

#[tokio::test]
async fn clock_skew_moves_the_providers_clock_everywhere() {
    let (sim, creds, inbound) = connected().await;
    sim.set_faults(json!({"clock_skew_secs": 3600})).await;

    let info: Value = sim.info().await.json().await.unwrap();
    let server_time =
        chrono::DateTime::parse_from_rfc3339(info["server_time"].as_str().unwrap()).unwrap();
    assert!((server_time.timestamp() - now() - 3600).abs() <= 2);

    // Our clock is an hour behind the provider's: refused as such.
    assert_eq!(
        error_of(sim.signed(Method::GET, &creds, "", None).await).await,
        (StatusCode::UNAUTHORIZED, "clock_skew".into())
    );
    let on_its_clock = sim
        .signed_with(Method::GET, &creds, &creds.secret, "", None, now() + 3600)
        .await;
    assert_eq!(on_its_clock.status(), StatusCode::OK);

    // Its callbacks carry its clock, which our consumer refuses.
    let r = sim
        .signed_with(
            Method::POST,
            &creds,
            &creds.secret,
            "/callback-test",
            None,
            now() + 3600,
        )
        .await;
    let outcome: Value = r.json().await.unwrap();
    assert_eq!(outcome["ok"], false);
    assert!(
        outcome["error"].as_str().unwrap().contains("401"),
        "{outcome}"
    );
    let calls = inbound.calls();
    assert_eq!(calls.len(), 1);
    assert!((calls[0].timestamp - now() - 3600).abs() <= 2);
    assert_eq!(calls[0].verified, Err(VerifyError::ClockSkew));
}

#[tokio::test]
async fn fail_settings_group_fails_that_group_only() {
    let sim = start().await;
    let creds = sim.register("http://127.0.0.1:9").await;
    sim.set_faults(json!({"fail_settings_group": "entitlements"}))
        .await;
    let r = sim
        .signed(Method::GET, &creds, "/settings/entitlements", None)
        .await;
    assert_eq!(error_of(r).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        sim.get_json(&creds, "/settings/exchange_settings").await.0,
        StatusCode::OK
    );
    assert_eq!(
        sim.get_json(&creds, "/settings/sync_definitions").await.0,
        StatusCode::OK
    );
    let (status, _) = sim.get_json(&creds, "/settings/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------------
// Authorisation page

fn authorize_url(sim: &TestSim, consumer_id: &str) -> String {
    let mut url = Url::parse(&sim.url("/idi/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("consumer_id", consumer_id)
        .append_pair(
            "redirect_uri",
            "http://127.0.0.1:3000/connections/7/authorised?x=1",
        )
        .append_pair("state", "st&ate=1");
    url.to_string()
}

async fn submit(
    sim: &TestSim,
    consumer_id: &str,
    email: &str,
    decision: &str,
) -> reqwest::Response {
    sim.client
        .post(sim.url("/idi/authorize"))
        .form(&[
            ("consumer_id", consumer_id),
            (
                "redirect_uri",
                "http://127.0.0.1:3000/connections/7/authorised?x=1",
            ),
            ("state", "st&ate=1"),
            ("email", email),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap()
}

fn location(r: &reqwest::Response) -> Url {
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    Url::parse(r.headers()["location"].to_str().unwrap()).unwrap()
}

fn query(url: &Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn the_authorisation_page_shows_who_asks_for_what() {
    let sim = start().await;
    let creds = sim.register("http://127.0.0.1:9").await;
    let r = sim
        .client
        .get(authorize_url(&sim, &creds.consumer_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    for text in [
        "<title>Impact Delivery Instance — Authorise connection</title>",
        "Acme Corp",
        "Read exchange settings",
        "Replicate entitlements",
        "Send and receive sync messages",
        "Your email",
        ">Allow</button>",
        ">Deny</button>",
        r#"method="post" action="/i/test/idi/authorize""#,
        r#"value="st&amp;ate=1""#,
    ] {
        assert!(html.contains(text), "missing {text} in {html}");
    }
    assert!(
        !html.contains(CONTACT),
        "the page does not reveal the contact"
    );

    let r = sim
        .client
        .get(authorize_url(&sim, "con_ghost"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = sim
        .client
        .get(format!(
            "{}?consumer_id={}",
            sim.url("/idi/authorize"),
            creds.consumer_id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn only_the_named_contact_can_allow_and_the_code_works_once() {
    let sim = start().await;
    let creds = sim.register("http://127.0.0.1:9").await;

    let refused = submit(&sim, &creds.consumer_id, "mallory@example.com", "allow").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let html = refused.text().await.unwrap();
    assert!(
        html.contains("You are not the authorised contact for this connection"),
        "{html}"
    );
    assert!(html.contains("a***@example.com"));
    assert!(!html.contains(CONTACT));

    let denied = submit(&sim, &creds.consumer_id, "", "deny").await;
    let to = location(&denied);
    assert_eq!(query(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&to, "state").as_deref(), Some("st&ate=1"));
    assert_eq!(query(&to, "code"), None);

    let allowed = submit(&sim, &creds.consumer_id, "  ALICE@Example.com ", "allow").await;
    let to = location(&allowed);
    assert_eq!(to.path(), "/connections/7/authorised");
    assert_eq!(query(&to, "x").as_deref(), Some("1"));
    assert_eq!(query(&to, "state").as_deref(), Some("st&ate=1"));
    let code = query(&to, "code").unwrap();

    let (status, grant) = sim
        .post_json(&creds, "/authorizations", json!({"code": code}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(grant["granted"], true);
    assert_eq!(grant["scopes"].as_array().unwrap().len(), 3);
    assert_eq!(sim.get_json(&creds, "").await.1["status"], "authorised");

    let (status, again) = sim
        .post_json(&creds, "/authorizations", json!({"code": code}))
        .await;
    assert_eq!(
        (status, again["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (status, _) = sim
        .post_json(&creds, "/authorizations", json!({"code": "az_unknown"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Another consumer cannot use someone else's code.
    let other = sim.register("http://127.0.0.1:9").await;
    let code = query(
        &location(&submit(&sim, &creds.consumer_id, CONTACT, "allow").await),
        "code",
    )
    .unwrap();
    assert_eq!(
        sim.post_json(&other, "/authorizations", json!({"code": code}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    assert_eq!(
        submit(&sim, "con_ghost", CONTACT, "allow").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        submit(&sim, "con_ghost", CONTACT, "deny").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_authorisation_code_expires_after_ten_minutes() {
    let sim = start().await;
    let creds = sim.register("http://127.0.0.1:9").await;
    let code = query(
        &location(&submit(&sim, &creds.consumer_id, CONTACT, "allow").await),
        "code",
    )
    .unwrap();
    // Eleven minutes pass on the provider's clock; we sign on its clock so only expiry matters.
    sim.set_faults(json!({"clock_skew_secs": 660})).await;
    let r = sim
        .signed_with(
            Method::POST,
            &creds,
            &creds.secret,
            "/authorizations",
            Some(json!({"code": code})),
            now() + 660,
        )
        .await;
    let (status, body) = (r.status(), r.json::<Value>().await.unwrap());
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------------
// Onboarding and callbacks

/// A step repeated with its idempotency key is answered from the record and not done again; a
/// new key does it again; a key reused on another endpoint is refused.
#[tokio::test]
async fn onboarding_steps_repeated_with_their_key_are_done_once() {
    let (sim, creds, _inbound) = connected().await;
    let counters = || async {
        let r = sim
            .client
            .get(format!("http://{}/sim/instances/test", sim.sim.address()))
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()
    };
    let start_with =
        |key: &'static str| sim.keyed(Method::POST, &creds, "/onboarding", Some(json!({})), key);
    let start = start_with("run-1-start").await;
    assert_eq!(start.0, StatusCode::OK);
    let again = start_with("run-1-start").await;
    assert_eq!(again, start, "the repeat gets the first answer");
    for _ in 0..2 {
        let (status, _) = sim
            .keyed(
                Method::GET,
                &creds,
                "/settings/entitlements",
                None,
                "run-1-ent",
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let c = counters().await;
    assert_eq!(c["onboarding_starts"], 1, "{c}");
    assert_eq!(c["settings_served"]["entitlements"], 1, "{c}");
    assert_eq!(c["replayed"], 2, "{c}");

    let (status, body) = sim
        .keyed(
            Method::GET,
            &creds,
            "/settings/exchange_settings",
            None,
            "run-1-start",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("already used"),
        "{body}"
    );
    let (status, _) = start_with("run-2-start").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        counters().await["onboarding_starts"],
        2,
        "a new key is a new start"
    );
    let (status, _) = start_with("bad key").await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a key with a space is refused"
    );
}

#[tokio::test]
async fn onboarding_syncs_each_group_and_completes_with_a_signed_callback() {
    let (sim, creds, inbound) = connected().await;

    let (status, start) = sim.post_json(&creds, "/onboarding", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        start,
        json!({"groups": ["exchange_settings", "entitlements", "sync_definitions"]})
    );
    assert_eq!(
        sim.post_json(&creds, "/onboarding", json!({})).await.1,
        start,
        "restart is idempotent"
    );

    let (status, exchange) = sim.get_json(&creds, "/settings/exchange_settings").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        exchange,
        json!({"group": "exchange_settings", "settings": {"auto_activate_new_items": true,
            "restrict_authorised_users": false, "max_authorised_users": 25, "auto_approval": true}})
    );
    let (_, entitlements) = sim.get_json(&creds, "/settings/entitlements").await;
    assert_eq!(entitlements["group"], "entitlements");
    assert!(!entitlements["settings"]["entitlements"]
        .as_array()
        .unwrap()
        .is_empty());
    let (_, sync) = sim.get_json(&creds, "/settings/sync_definitions").await;
    assert_eq!(sync["group"], "sync_definitions");
    assert!(
        sync["settings"]["sync_definitions"]
            .as_array()
            .unwrap()
            .len()
            >= 2
    );
    assert_eq!(
        sim.get_json(&creds, "/settings/sync_definitions").await.1,
        sync,
        "idempotent"
    );

    let (status, done) = sim
        .post_json(&creds, "/onboarding/complete", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(done, json!({"inbound_ok": true}));
    assert_eq!(sim.get_json(&creds, "").await.1["status"], "onboarded");

    let calls = inbound.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].path, "/app/inbound/v1/onboarded");
    assert_eq!(calls[0].consumer, creds.consumer_id);
    assert_eq!(calls[0].verified, Ok(()));
}

#[tokio::test]
async fn callback_test_and_echo_reach_the_consumer() {
    let (sim, creds, inbound) = connected().await;

    let (status, ping) = sim.post_json(&creds, "/callback-test", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ping["ok"], true, "{ping}");
    assert!(ping["round_trip_ms"].is_u64());
    assert!(ping.get("error").is_none());

    let (_, echo) = sim
        .post_json(&creds, "/echo", json!({"nonce": "n-42"}))
        .await;
    assert_eq!(echo["ok"], true, "{echo}");
    assert!(echo["round_trip_ms"].is_u64());
    let (status, _) = sim.post_json(&creds, "/echo", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let calls = inbound.calls();
    let paths: Vec<_> = calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["/app/inbound/v1/ping", "/app/inbound/v1/echo"]);
    assert!(calls
        .iter()
        .all(|c| c.verified.is_ok() && c.consumer == creds.consumer_id));
    assert_eq!(calls[1].body, json!({"nonce": "n-42"}));
}

#[tokio::test]
async fn inbound_blocked_reports_failure_without_calling() {
    let (sim, creds, inbound) = connected().await;
    sim.set_faults(json!({"inbound_blocked": true})).await;
    let blocked = "the provider cannot reach the consumer's inbound endpoint";

    let (_, ping) = sim.post_json(&creds, "/callback-test", json!({})).await;
    assert_eq!(
        (ping["ok"].clone(), ping["error"].clone()),
        (json!(false), json!(blocked))
    );
    let (_, echo) = sim.post_json(&creds, "/echo", json!({"nonce": "x"})).await;
    assert_eq!(echo["ok"], false);
    let (status, done) = sim
        .post_json(&creds, "/onboarding/complete", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(done, json!({"inbound_ok": false, "error": blocked}));
    assert!(inbound.calls().is_empty());
}

#[tokio::test]
async fn an_unreachable_consumer_is_reported_not_raised() {
    let sim = start().await;
    let creds = sim
        .register(&format!("http://{}", closed_port().await))
        .await;
    let (status, ping) = sim.post_json(&creds, "/callback-test", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ping["ok"], false);
    assert!(
        ping["error"].as_str().unwrap().contains("inbound/v1/ping"),
        "{ping}"
    );
}

#[tokio::test]
async fn data_sample_lists_tables() {
    let sim = start().await;
    let creds = sim.register("http://127.0.0.1:9").await;
    let (status, sample) = sim.get_json(&creds, "/data-sample").await;
    assert_eq!(status, StatusCode::OK);
    let tables = sample["tables"].as_array().unwrap();
    let names: Vec<_> = tables.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "impact_account",
            "impact_success_plan",
            "impact_engagement_request"
        ]
    );
    // The same numbers a data migration copies.
    assert_eq!(tables[0]["count"], 2400);
    for t in tables {
        let newest = chrono::DateTime::parse_from_rfc3339(t["newest"].as_str().unwrap()).unwrap();
        assert!(newest.timestamp() <= now() && newest.timestamp() > now() - 2 * 3600);
    }
}

#[tokio::test]
async fn stop_shuts_the_simulator_down() {
    let sim = start().await;
    let addr = sim.sim.address();
    sim.sim.stop().await;
    assert!(reqwest::get(format!("http://{addr}/i/x/idi/v1/info"))
        .await
        .is_err());
}

#[tokio::test]
async fn data_tables_are_served_page_by_page_once_each() {
    let sim = start().await;
    let creds = sim.register("http://127.0.0.1:9").await;
    let (status, listed) = sim.get_json(&creds, "/data/tables").await;
    assert_eq!(status, StatusCode::OK);
    let tables: Vec<(String, u64)> = listed["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tables,
        [
            ("impact_account".to_string(), 2400),
            ("impact_success_plan".to_string(), 1800),
            ("impact_engagement_request".to_string(), 5600)
        ]
    );
    let mut pages = 0;
    for (table, rows) in &tables {
        let mut ids = std::collections::HashSet::new();
        let mut after = Value::Null;
        loop {
            let (status, page) = sim
                .post_json(
                    &creds,
                    &format!("/data/tables/{table}/page"),
                    json!({"after": after, "limit": 500}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            pages += 1;
            for r in page["records"].as_array().unwrap() {
                assert!(ids.insert(r["id"].as_str().unwrap().to_string()), "{r}");
                assert!(r["updated_at"].is_string(), "{r}");
            }
            if page["next"].is_null() {
                break;
            }
            after = page["next"].clone();
        }
        assert_eq!(ids.len() as u64, *rows, "{table}");
    }
    assert_eq!(pages, 5 + 4 + 12);
    let counters: Value = sim
        .client
        .get(format!("http://{}/sim/instances/test", sim.sim.address()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["data_pages"], 21);
    assert_eq!(counters["data_records"], 9800);

    // What is not a table, not a cursor of ours, or not the protocol's body is refused.
    let (status, _) = sim
        .post_json(&creds, "/data/tables/passwords/page", json!({"limit": 10}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = sim
        .post_json(
            &creds,
            "/data/tables/impact_account/page",
            json!({"after": "x", "limit": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = sim
        .post_json(
            &creds,
            "/data/tables/impact_account/page",
            json!({"limit": 10, "extra": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

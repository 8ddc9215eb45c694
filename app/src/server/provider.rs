//! The HTTP client for the provider protocol (docs/PROVIDER_PROTOCOL.md). Every call has its own
//! connect and total time limits, and failures are told apart: a DNS failure is not "check your
//! credentials".
use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub use super::provider_error::ProviderError;
pub use super::tls_problem::TlsProblem;
use super::{outbound::Outbound, signing};
use crate::model::ProviderUrl;

pub const PROTOCOL_VERSION: i64 = 1;

/// The connection's credentials, issued by the provider at registration.
#[derive(Clone)]
pub struct Credentials {
    pub consumer_id: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <secret>)", self.consumer_id)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Info {
    pub protocol_version: i64,
    #[serde(default)]
    pub min_consumer_version: Option<i64>,
    #[serde(default)]
    pub instance: String,
    pub server_time: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub applications: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Registered {
    pub consumer_id: String,
    pub secret: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Entitlement {
    pub id: String,
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub entity: Option<String>,
    #[serde(default)]
    pub identity: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Entitlements {
    pub entitlements: Vec<Entitlement>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CallbackResult {
    pub ok: bool,
    /// The provider asks the consumer to rotate its credentials (on a heartbeat's answer).
    #[serde(default)]
    pub rotate: bool,
    #[serde(default)]
    pub round_trip_ms: Option<u64>,
    #[serde(default)]
    pub error: Option<String>,
}

/// The provider's answer to a rotation: the new secret (base64) and when the old one stops
/// being honoured.
#[derive(Debug, Clone, Deserialize)]
pub struct Rotated {
    pub secret: String,
    pub grace_until: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The most a provider answer may hold; the protocol's answers are a few kilobytes.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// An onboarding step's idempotency key: the run's number and the step, so a step repeated by
/// whichever replica carries the run on has the key the first attempt had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotent(String);

impl Idempotent {
    pub fn step(run: i64, step: &str) -> Self {
        let key: String = format!("onboarding-{run}-{step}")
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(signing::MAX_IDEMPOTENCY_KEY)
            .collect();
        Self(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone)]
pub struct ProviderClient {
    /// Or why no call may be made to this provider (the URL is refused by policy).
    http: Result<reqwest::Client, ProviderError>,
    base: String,
    /// The URL's path part (any instance prefix), as requests are signed.
    prefix: String,
    timeout: Duration,
    /// This instance's base URL, sent on signed requests (`signing::HEADER_INSTANCE`).
    instance: Option<String>,
}

impl ProviderClient {
    /// `timeout` bounds each call from connect to last byte. A URL the outbound policy refuses
    /// gives a client whose every call fails with the refusal.
    pub fn new(url: &ProviderUrl, timeout: Duration, outbound: &Outbound) -> Self {
        Self {
            http: outbound.client(url, timeout),
            base: url.as_str().to_string(),
            prefix: url.path().to_string(),
            timeout,
            instance: None,
        }
    }

    /// Names this instance (its base URL) on every signed request, so the provider can tell a
    /// cloned instance from the registered one.
    pub fn from_instance(mut self, public_url: &str) -> Self {
        self.instance = Some(public_url.to_string());
        self
    }

    /// A client for a stored URL that no longer parses: every call fails with `why`.
    pub fn unusable(why: ProviderError, timeout: Duration) -> Self {
        Self {
            http: Err(why),
            base: String::new(),
            prefix: String::new(),
            timeout,
            instance: None,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let http = self.http.as_ref().map_err(Clone::clone)?;
        Ok(http.request(method, self.url(path)))
    }

    /// Every call goes out here: it carries the id of the request (or background work) it is
    /// made for (`request_id`), and a failure is counted by kind.
    async fn send<T: DeserializeOwned>(
        &self,
        req: Result<reqwest::RequestBuilder, ProviderError>,
    ) -> Result<T, ProviderError> {
        let req = req.map(|r| match super::request_id::current() {
            Some(id) => r.header(super::request_id::HEADER, &*id),
            None => r,
        });
        let answer = self.exchange(req).await;
        if let Err(e) = &answer {
            super::metrics::provider_error(e);
        }
        answer
    }

    async fn exchange<T: DeserializeOwned>(
        &self,
        req: Result<reqwest::RequestBuilder, ProviderError>,
    ) -> Result<T, ProviderError> {
        let ms = self.timeout.as_millis() as u64;
        let mut res = req?
            .send()
            .await
            .map_err(|e| ProviderError::classify(e, ms))?;
        let status = res.status();
        if status.is_redirection() {
            return Err(ProviderError::Redirected(status.as_u16()));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| ProviderError::classify(e, ms))?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ProviderError::TooLarge(MAX_ANSWER_BYTES));
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            // Only the protocol's own error body is repeated, and only its bounded fields: an
            // answer from something that is not a provider is not echoed back to the caller.
            let body: ErrorBody = serde_json::from_slice(&bytes).unwrap_or(ErrorBody {
                code: format!("http_{}", status.as_u16()),
                message: "no error description in the protocol's format".into(),
            });
            return Err(ProviderError::Status {
                status: status.as_u16(),
                code: body.code.chars().take(64).collect(),
                message: body.message.chars().take(300).collect(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            tracing::debug!(error = %e, "provider answer is not the expected JSON");
            ProviderError::Malformed(e.to_string())
        })
    }

    fn signed(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
        creds: &Credentials,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap_or_default())
            .unwrap_or_default();
        let ts = chrono::Utc::now().timestamp();
        let sig = signing::sign(
            &creds.secret,
            method.as_str(),
            &format!("{}{path}", self.prefix),
            ts,
            &bytes,
        );
        let mut req = self
            .request(method, path)?
            .header(signing::HEADER_CONSUMER, &creds.consumer_id)
            .header(signing::HEADER_TIMESTAMP, ts.to_string())
            .header(signing::HEADER_SIGNATURE, sig);
        if let Some(instance) = &self.instance {
            req = req.header(signing::HEADER_INSTANCE, instance);
        }
        if body.is_some() {
            req = req.header("content-type", "application/json").body(bytes);
        }
        Ok(req)
    }

    /// When the certificate the provider presents ends (None over plain http, or when the
    /// connection carried none): read from a `GET /idi/v1/info`, whose answer is not used.
    #[tracing::instrument(skip(self), fields(base = %self.base))]
    pub async fn certificate_expiry(
        &self,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, ProviderError> {
        let ms = self.timeout.as_millis() as u64;
        let res = self
            .request(reqwest::Method::GET, "/idi/v1/info")?
            .send()
            .await
            .map_err(|e| ProviderError::classify(e, ms))?;
        let Some(der) = res
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|t| t.peer_certificate())
        else {
            return Ok(None);
        };
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| ProviderError::Malformed(format!("the provider's certificate: {e}")))?;
        Ok(chrono::DateTime::from_timestamp(
            cert.validity().not_after.timestamp(),
            0,
        ))
    }

    #[tracing::instrument(skip(self), fields(base = %self.base))]
    pub async fn info(&self) -> Result<Info, ProviderError> {
        self.send(self.request(reqwest::Method::GET, "/idi/v1/info"))
            .await
    }

    /// The provider side's "Initiate registration" (our admin screen stands in for it).
    #[tracing::instrument(skip(self), fields(base = %self.base))]
    pub async fn initiate_registration(
        &self,
        company: &str,
        contact_email: &str,
    ) -> Result<String, ProviderError> {
        #[derive(Deserialize)]
        struct Code {
            registration_code: String,
        }
        let body = serde_json::json!({ "company": company, "contact_email": contact_email });
        let code: Code = self
            .send(
                self.request(reqwest::Method::POST, "/idi/v1/admin/registrations")
                    .map(|r| r.json(&body)),
            )
            .await?;
        Ok(code.registration_code)
    }

    #[tracing::instrument(skip(self, code), fields(base = %self.base))]
    pub async fn register(
        &self,
        code: &str,
        company: &str,
        contact_email: &str,
        consumer_url: &str,
    ) -> Result<Registered, ProviderError> {
        let body = serde_json::json!({
            "registration_code": code, "company": company,
            "contact_email": contact_email, "consumer_url": consumer_url,
        });
        self.send(
            self.request(reqwest::Method::POST, "/idi/v1/registrations")
                .map(|r| r.json(&body)),
        )
        .await
    }

    /// A signed call on this consumer's resource `/idi/v1/consumers/{id}{suffix}`; a body makes
    /// it a POST.
    async fn consumer_call<T: DeserializeOwned>(
        &self,
        creds: &Credentials,
        suffix: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, ProviderError> {
        let path = format!("/idi/v1/consumers/{}{suffix}", creds.consumer_id);
        let method = if body.is_some() {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        self.send(self.signed(method, &path, body.as_ref(), creds))
            .await
    }

    pub async fn consumer(&self, creds: &Credentials) -> Result<serde_json::Value, ProviderError> {
        self.consumer_call(creds, "", None).await
    }

    pub async fn entitlements(&self, creds: &Credentials) -> Result<Entitlements, ProviderError> {
        self.consumer_call(creds, "/entitlements", None).await
    }

    pub async fn callback_test(
        &self,
        creds: &Credentials,
    ) -> Result<CallbackResult, ProviderError> {
        self.consumer_call(creds, "/callback-test", Some(serde_json::json!({})))
            .await
    }

    pub async fn authorize_code(
        &self,
        creds: &Credentials,
        code: &str,
    ) -> Result<serde_json::Value, ProviderError> {
        self.consumer_call(
            creds,
            "/authorizations",
            Some(serde_json::json!({ "code": code })),
        )
        .await
    }

    /// An onboarding step: `key` names the run and the step (`signing::HEADER_IDEMPOTENCY`), so the
    /// provider answers a repeat (after a takeover) from its record instead of doing it again.
    async fn onboarding_step(
        &self,
        creds: &Credentials,
        suffix: &str,
        body: Option<serde_json::Value>,
        key: &Idempotent,
    ) -> Result<serde_json::Value, ProviderError> {
        let path = format!("/idi/v1/consumers/{}{suffix}", creds.consumer_id);
        let method = if body.is_some() {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let req = self
            .signed(method, &path, body.as_ref(), creds)
            .map(|r| r.header(signing::HEADER_IDEMPOTENCY, key.as_str()));
        self.send(req).await
    }

    pub async fn start_onboarding(
        &self,
        creds: &Credentials,
        key: &Idempotent,
    ) -> Result<serde_json::Value, ProviderError> {
        self.onboarding_step(creds, "/onboarding", Some(serde_json::json!({})), key)
            .await
    }

    pub async fn settings_group(
        &self,
        creds: &Credentials,
        group: &str,
        key: &Idempotent,
    ) -> Result<serde_json::Value, ProviderError> {
        self.onboarding_step(creds, &format!("/settings/{group}"), None, key)
            .await
    }

    pub async fn complete_onboarding(
        &self,
        creds: &Credentials,
        key: &Idempotent,
    ) -> Result<serde_json::Value, ProviderError> {
        self.onboarding_step(
            creds,
            "/onboarding/complete",
            Some(serde_json::json!({})),
            key,
        )
        .await
    }

    pub async fn echo(
        &self,
        creds: &Credentials,
        nonce: &str,
    ) -> Result<CallbackResult, ProviderError> {
        self.consumer_call(creds, "/echo", Some(serde_json::json!({ "nonce": nonce })))
            .await
    }

    /// Rotating: a new secret now, the old one honoured for `grace_seconds`.
    pub async fn rotate(
        &self,
        creds: &Credentials,
        grace_seconds: u64,
    ) -> Result<Rotated, ProviderError> {
        self.consumer_call(
            creds,
            "/credentials/rotate",
            Some(serde_json::json!({ "grace_seconds": grace_seconds })),
        )
        .await
    }

    /// Re-activation after a clone: the provider registers `consumer_url` as this consumer's
    /// instance from now on.
    pub async fn activate(
        &self,
        creds: &Credentials,
        consumer_url: &str,
    ) -> Result<serde_json::Value, ProviderError> {
        self.consumer_call(
            creds,
            "/activate",
            Some(serde_json::json!({ "consumer_url": consumer_url })),
        )
        .await
    }

    /// Off-boarding: the provider forgets this consumer and its credentials.
    pub async fn off_board(&self, creds: &Credentials) -> Result<serde_json::Value, ProviderError> {
        let path = format!("/idi/v1/consumers/{}", creds.consumer_id);
        self.send(self.signed(reqwest::Method::DELETE, &path, None, creds))
            .await
    }

    pub async fn data_sample(
        &self,
        creds: &Credentials,
    ) -> Result<serde_json::Value, ProviderError> {
        self.consumer_call(creds, "/data-sample", None).await
    }

    /// The tables a data migration may copy, with their record counts.
    pub async fn data_tables(&self, creds: &Credentials) -> Result<DataTables, ProviderError> {
        self.consumer_call(creds, "/data/tables", None).await
    }

    /// One page of `table`'s records after `after` (None: from the start).
    pub async fn data_page(
        &self,
        creds: &Credentials,
        table: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<DataPage, ProviderError> {
        self.consumer_call(
            creds,
            &format!("/data/tables/{table}/page"),
            Some(serde_json::json!({ "after": after, "limit": limit })),
        )
        .await
    }
}

/// The provider's tables for a data migration.
#[derive(Debug, Deserialize)]
pub struct DataTables {
    pub tables: Vec<DataTable>,
}

#[derive(Debug, Deserialize)]
pub struct DataTable {
    pub name: String,
    pub rows: i64,
}

/// A page of records; `next` is the cursor of the following page, None after the last.
#[derive(Debug, Deserialize)]
pub struct DataPage {
    pub records: Vec<serde_json::Value>,
    #[serde(default)]
    pub next: Option<String>,
}

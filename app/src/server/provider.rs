//! The HTTP client for the provider protocol (docs/PROVIDER_PROTOCOL.md). Every call has its own
//! connect and total time limits, and failures are told apart: a DNS failure is not "check your
//! credentials".
use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::signing;

pub const PROTOCOL_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider's host name could not be resolved (DNS)")]
    Dns,
    #[error("the provider refused the connection (nothing is listening at that address)")]
    Refused,
    #[error("the provider did not answer within {0} ms")]
    Timeout(u64),
    #[error("the TLS handshake with the provider failed (certificate or protocol)")]
    Tls,
    #[error("the provider answered HTTP {status}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the provider's answer is not the expected JSON: {0}")]
    Malformed(String),
    #[error("the connection to the provider failed: {0}")]
    Network(String),
}

impl ProviderError {
    /// Whether trying again later may help (the provider was down or slow), as opposed to a
    /// configuration problem that needs fixing first.
    pub fn retryable(&self) -> bool {
        match self {
            ProviderError::Refused | ProviderError::Timeout(_) | ProviderError::Network(_) => true,
            ProviderError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            ProviderError::Dns => "dns",
            ProviderError::Refused => "refused",
            ProviderError::Timeout(_) => "timeout",
            ProviderError::Tls => "tls",
            ProviderError::Status { code, .. } => code,
            ProviderError::Malformed(_) => "malformed",
            ProviderError::Network(_) => "network",
        }
    }

    fn classify(e: reqwest::Error, total_ms: u64) -> Self {
        if e.is_timeout() {
            return ProviderError::Timeout(total_ms);
        }
        // reqwest folds the cause into its source chain: read it to tell failures apart.
        let mut chain = String::new();
        let mut src: Option<&dyn std::error::Error> = Some(&e);
        while let Some(s) = src {
            chain.push_str(&s.to_string().to_lowercase());
            chain.push(' ');
            src = s.source();
        }
        if chain.contains("dns error")
            || chain.contains("failed to lookup address")
            || chain.contains("name or service not known")
        {
            ProviderError::Dns
        } else if chain.contains("connection refused") {
            ProviderError::Refused
        } else if chain.contains("certificate") || chain.contains("tls") || chain.contains("ssl") {
            ProviderError::Tls
        } else if chain.contains("timed out") {
            ProviderError::Timeout(total_ms)
        } else if e.is_decode() {
            ProviderError::Malformed(e.to_string())
        } else {
            ProviderError::Network(chain.trim().to_string())
        }
    }
}

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
    #[serde(default)]
    pub round_trip_ms: Option<u64>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Clone)]
pub struct ProviderClient {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
}

impl ProviderClient {
    /// `timeout` bounds each call from connect to last byte.
    pub fn new(base: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            timeout,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Path as signed: the URL's path part (with any instance prefix) plus the endpoint.
    fn signed_path(&self, path: &str) -> String {
        let prefix = reqwest::Url::parse(&self.base)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        format!("{prefix}{path}")
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        let ms = self.timeout.as_millis() as u64;
        let res = req
            .send()
            .await
            .map_err(|e| ProviderError::classify(e, ms))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| ProviderError::classify(e, ms))?;
        if !status.is_success() {
            let body: ErrorBody = serde_json::from_slice(&bytes).unwrap_or(ErrorBody {
                code: format!("http_{}", status.as_u16()),
                message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            });
            return Err(ProviderError::Status {
                status: status.as_u16(),
                code: body.code,
                message: body.message,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ProviderError::Malformed(e.to_string()))
    }

    fn signed(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
        creds: &Credentials,
    ) -> reqwest::RequestBuilder {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap_or_default())
            .unwrap_or_default();
        let ts = chrono::Utc::now().timestamp();
        let sig = signing::sign(
            &creds.secret,
            method.as_str(),
            &self.signed_path(path),
            ts,
            &bytes,
        );
        let mut req = self
            .http
            .request(method, self.url(path))
            .header(signing::HEADER_CONSUMER, &creds.consumer_id)
            .header(signing::HEADER_TIMESTAMP, ts.to_string())
            .header(signing::HEADER_SIGNATURE, sig);
        if body.is_some() {
            req = req.header("content-type", "application/json").body(bytes);
        }
        req
    }

    #[tracing::instrument(skip(self), fields(base = %self.base))]
    pub async fn info(&self) -> Result<Info, ProviderError> {
        self.send(self.http.get(self.url("/idi/v1/info"))).await
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
                self.http
                    .post(self.url("/idi/v1/admin/registrations"))
                    .json(&body),
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
            self.http
                .post(self.url("/idi/v1/registrations"))
                .json(&body),
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

    pub async fn start_onboarding(
        &self,
        creds: &Credentials,
    ) -> Result<serde_json::Value, ProviderError> {
        self.consumer_call(creds, "/onboarding", Some(serde_json::json!({})))
            .await
    }

    pub async fn settings_group(
        &self,
        creds: &Credentials,
        group: &str,
    ) -> Result<serde_json::Value, ProviderError> {
        self.consumer_call(creds, &format!("/settings/{group}"), None)
            .await
    }

    pub async fn complete_onboarding(
        &self,
        creds: &Credentials,
    ) -> Result<serde_json::Value, ProviderError> {
        self.consumer_call(creds, "/onboarding/complete", Some(serde_json::json!({})))
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

    pub async fn data_sample(
        &self,
        creds: &Credentials,
    ) -> Result<serde_json::Value, ProviderError> {
        self.consumer_call(creds, "/data-sample", None).await
    }
}

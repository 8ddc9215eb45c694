//! Calls from the provider to the consumer's inbound endpoints (`{consumer_url}/inbound/v1/…`),
//! signed with the connection's secret and the provider's possibly skewed clock. Every failure
//! is reported in the outcome, never raised.
use std::time::Instant;

use reqwest::{header::CONTENT_TYPE, Url};
use serde::Serialize;
use serde_json::Value;

use app::server::signing;

use super::{
    error::SimError,
    state::{skewed_now, SimState, OUTBOUND_TIMEOUT},
};

/// What `inbound_blocked` reports.
pub const BLOCKED: &str = "the provider cannot reach the consumer's inbound endpoint";

/// Everything needed to call one consumer, copied out of the state so no lock is held while
/// the call is in flight.
#[derive(Debug, Clone)]
pub struct Callback {
    consumer_id: String,
    secret: Vec<u8>,
    consumer_url: String,
    skew_secs: i64,
    blocked: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub ok: bool,
    pub round_trip_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Outcome {
    fn failed(round_trip_ms: u64, error: String) -> Self {
        Self {
            ok: false,
            round_trip_ms,
            error: Some(error),
        }
    }
}

impl Callback {
    pub fn load(state: &SimState, instance: &str, consumer_id: &str) -> Result<Self, SimError> {
        state.with(instance, |i| {
            let c = i
                .consumers
                .get(consumer_id)
                .ok_or_else(|| SimError::UnknownConsumer(consumer_id.to_string()))?;
            Ok(Self {
                consumer_id: consumer_id.to_string(),
                secret: c.secret.clone(),
                consumer_url: c.consumer_url.clone(),
                skew_secs: i.faults.clock_skew_secs,
                blocked: i.faults.inbound_blocked,
            })
        })
    }

    /// POSTs `body` to `{consumer_url}/inbound/v1/{endpoint}`; success is a 2xx `{"ok": true}`.
    #[tracing::instrument(skip(self, client, body), fields(consumer_id = %self.consumer_id))]
    pub async fn call(&self, client: &reqwest::Client, endpoint: &str, body: &Value) -> Outcome {
        if self.blocked {
            return Outcome::failed(0, BLOCKED.to_string());
        }
        let raw = format!(
            "{}/inbound/v1/{endpoint}",
            self.consumer_url.trim_end_matches('/')
        );
        let url = match Url::parse(&raw) {
            Ok(url) => url,
            Err(e) => {
                return Outcome::failed(0, format!("the consumer URL {raw} is not valid: {e}"))
            }
        };
        // Each call unique, as the protocol asks: the consumer refuses a request identical to
        // one it already accepted (its replay protection), and two pings in the same second
        // would otherwise be byte for byte the same. An echo is made unique by its nonce.
        let mut body = body.clone();
        if let Some(fields) = body.as_object_mut().filter(|f| !f.contains_key("nonce")) {
            fields.insert(
                "request_id".into(),
                Value::String(format!("{:016x}", rand::random::<u64>())),
            );
        }
        let body = body.to_string().into_bytes();
        let timestamp = skewed_now(self.skew_secs).timestamp();
        let signature = signing::sign(&self.secret, "POST", url.path(), timestamp, &body);

        let started = Instant::now();
        let sent = client
            .post(url.clone())
            .timeout(OUTBOUND_TIMEOUT)
            .header(CONTENT_TYPE, "application/json")
            .header(signing::HEADER_CONSUMER, &self.consumer_id)
            .header(signing::HEADER_TIMESTAMP, timestamp.to_string())
            .header(signing::HEADER_SIGNATURE, signature)
            .body(body)
            .send()
            .await;
        let outcome = match sent {
            Err(e) => Err(describe(&e, &url)),
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                judge(status, &text, &url)
            }
        };
        let round_trip_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(()) => Outcome {
                ok: true,
                round_trip_ms,
                error: None,
            },
            Err(error) => {
                tracing::info!(%error, "inbound call failed");
                Outcome::failed(round_trip_ms, error)
            }
        }
    }
}

fn judge(status: reqwest::StatusCode, text: &str, url: &Url) -> Result<(), String> {
    let json: Option<Value> = serde_json::from_str(text).ok();
    if !status.is_success() {
        let detail = json
            .as_ref()
            .map(|j| {
                format!(
                    ": {} {}",
                    j["code"].as_str().unwrap_or(""),
                    j["message"].as_str().unwrap_or("")
                )
            })
            .unwrap_or_default();
        return Err(format!(
            "the consumer's inbound endpoint {url} answered HTTP {}{}",
            status.as_u16(),
            detail.trim_end()
        ));
    }
    match json {
        Some(j) if j["ok"] == Value::Bool(true) => Ok(()),
        _ => Err(format!(
            "the consumer's inbound endpoint {url} did not answer {{\"ok\": true}}"
        )),
    }
}

fn describe(e: &reqwest::Error, url: &Url) -> String {
    if e.is_timeout() {
        return format!(
            "the consumer's inbound endpoint {url} did not answer within {} seconds",
            OUTBOUND_TIMEOUT.as_secs()
        );
    }
    // reqwest's own message is terse ("error sending request"): add the causes, which say what
    // actually happened (connection refused, DNS failure…).
    let mut message = format!("could not call the consumer's inbound endpoint {url}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

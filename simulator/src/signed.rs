//! The `Signed` extractor: a request to a signed endpoint that passed the faults and the HMAC
//! check (docs/PROVIDER_PROTOCOL.md, "Signed requests").
use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, OriginalUri, Request},
    http::HeaderMap,
};

use app::server::signing::{self, VerifyError};

use super::{
    error::SimError,
    extract::{read_body, Params},
    faults::Faults,
    idempotent::Key,
    state::{skewed_now, SimState},
};

/// An authenticated request to `/i/{instance}/idi/v1/consumers/{id}/…`.
#[derive(Debug)]
pub struct Signed {
    pub instance: String,
    pub consumer_id: String,
    pub params: Params,
    pub body: Bytes,
    /// The step's idempotency key, when the consumer sent one (`idempotent`).
    pub key: Option<Key>,
}

impl FromRequest<SimState> for Signed {
    type Rejection = SimError;

    async fn from_request(req: Request, state: &SimState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let params = Params::from_request_parts(&mut parts, state).await?;
        let (instance, consumer_id) = (params.instance(), params.get("id"));
        // The sender signed the path as it sent it, prefix included, even if this router is
        // nested under another one.
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.path().to_owned(), |u| u.path().to_owned());
        let method = parts.method.clone();
        let headers = parts.headers.clone();
        let body = read_body(Request::from_parts(parts, body), state).await?;

        let (faults, secret, previous, registered_url) = state.with(&instance, |i| {
            let now = i.now().timestamp();
            let consumer = i.consumers.get(&consumer_id);
            (
                i.faults.clone(),
                consumer.map(|c| c.secret.clone()),
                consumer.and_then(|c| c.previous_secret(now)),
                consumer.map(|c| c.consumer_url.clone()),
            )
        });
        let request = Unverified {
            consumer_id: &consumer_id,
            method: method.as_str(),
            path: &path,
            headers: &headers,
            body: &body,
        };
        // After a rotation the old secret is honoured for its grace period too.
        authenticate(&faults, secret.as_deref(), &request).or_else(|e| match (e, &previous) {
            (SimError::BadSignature(_), Some(old)) => authenticate(&faults, Some(old), &request),
            (e, _) => Err(e),
        })?;
        // A request from another instance than the registered one (a clone) is refused, except
        // the re-activation that makes it the registered one.
        if !path.ends_with("/activate") {
            let from = headers
                .get(signing::HEADER_INSTANCE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim_end_matches('/').to_string());
            let registered = registered_url.unwrap_or_default();
            let other = from
                .as_deref()
                .is_some_and(|f| f != registered.trim_end_matches('/'));
            if faults.instance_changed || other {
                return Err(SimError::InstanceChanged(format!(
                    "This consumer is registered for the instance at {registered}; this request comes from {}. If the instance was cloned, re-activate it for the new instance.",
                    from.as_deref().unwrap_or("another instance")
                )));
            }
        }
        let key = Key::from_headers(&headers)?;
        Ok(Signed {
            instance,
            consumer_id,
            params,
            body,
            key,
        })
    }
}

struct Unverified<'a> {
    consumer_id: &'a str,
    method: &'a str,
    path: &'a str,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

/// Faults first (a broken provider answers before looking at anything), then the consumer, the
/// clock and the MAC, with the provider's possibly skewed clock.
fn authenticate(
    faults: &Faults,
    secret: Option<&[u8]>,
    req: &Unverified<'_>,
) -> Result<(), SimError> {
    if faults.http_5xx {
        return Err(SimError::Internal(
            "The provider failed to answer (simulated HTTP 500).".into(),
        ));
    }
    if faults.bad_credentials {
        return Err(SimError::BadSignature(
            "The provider does not accept this connection's credentials.".into(),
        ));
    }
    let secret = secret.ok_or_else(|| SimError::UnknownConsumer(req.consumer_id.to_string()))?;
    let header = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .ok_or_else(|| {
                SimError::BadSignature(format!("The request has no valid {name} header."))
            })
    };
    if header(signing::HEADER_CONSUMER)? != req.consumer_id {
        return Err(SimError::BadSignature(
            "X-Impact-Consumer does not name the consumer in the path.".into(),
        ));
    }
    let timestamp: i64 = header(signing::HEADER_TIMESTAMP)?.parse().map_err(|_| {
        SimError::BadSignature("X-Impact-Timestamp is not a number of seconds.".into())
    })?;
    let signature = header(signing::HEADER_SIGNATURE)?;
    let now = skewed_now(faults.clock_skew_secs).timestamp();
    // Checked here too: `verify` subtracts without overflow checks, and the timestamp is the
    // sender's to choose.
    let too_far = now
        .checked_sub(timestamp)
        .is_none_or(|d| d.unsigned_abs() > signing::MAX_SKEW_SECS.unsigned_abs());
    if too_far {
        return Err(SimError::ClockSkew);
    }
    signing::verify(
        secret, req.method, req.path, timestamp, req.body, signature, now,
    )
    .map_err(|e| match e {
        VerifyError::ClockSkew => SimError::ClockSkew,
        VerifyError::BadSignature => SimError::BadSignature(
            "The request signature does not match this connection's secret.".into(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use chrono::Utc;

    use super::*;

    fn headers(consumer: &str, ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            signing::HEADER_CONSUMER,
            HeaderValue::from_str(consumer).unwrap(),
        );
        h.insert(
            signing::HEADER_TIMESTAMP,
            HeaderValue::from_str(ts).unwrap(),
        );
        h.insert(
            signing::HEADER_SIGNATURE,
            HeaderValue::from_str(sig).unwrap(),
        );
        h
    }

    fn check(faults: &Faults, h: &HeaderMap) -> Result<(), SimError> {
        let req = Unverified {
            consumer_id: "c1",
            method: "GET",
            path: "/i/x/idi/v1/consumers/c1",
            headers: h,
            body: b"",
        };
        authenticate(faults, Some(b"k"), &req)
    }

    #[test]
    fn a_good_signature_passes_and_absurd_timestamps_are_clock_skew() {
        let now = Utc::now().timestamp();
        let sig = signing::sign(b"k", "GET", "/i/x/idi/v1/consumers/c1", now, b"");
        let ok = headers("c1", &now.to_string(), &sig);
        assert!(check(&Faults::default(), &ok).is_ok());
        assert!(matches!(
            check(&Faults::default(), &headers("c2", &now.to_string(), &sig)),
            Err(SimError::BadSignature(_))
        ));
        let min = headers("c1", &i64::MIN.to_string(), &sig);
        assert!(matches!(
            check(&Faults::default(), &min),
            Err(SimError::ClockSkew)
        ));
        let broken = Faults {
            http_5xx: true,
            ..Faults::default()
        };
        assert!(matches!(check(&broken, &ok), Err(SimError::Internal(_))));
    }
}

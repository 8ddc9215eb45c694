//! The unsigned provider endpoints: `info`, the provider admin's registrations, and the
//! consumer's exchange of a registration code for credentials.
use axum::{
    extract::State,
    http::{header::CONTENT_TYPE, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use reqwest::Url;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    catalog::rfc3339,
    error::SimError,
    extract::{Params, SimJson},
    state::{secret, token, Consumer, ConsumerStatus, Onboarding, Registration, SimState},
};

/// The lowest consumer protocol version this provider serves.
const MIN_CONSUMER_VERSION: i64 = 1;

#[tracing::instrument(skip(state))]
pub async fn info(State(state): State<SimState>, params: Params) -> Response {
    let instance = params.instance();
    let (faults, now) = state.with(&instance, |i| (i.faults.clone(), i.now()));
    if faults.malformed_json {
        // Claims to be JSON and is cut short: what a misconfigured proxy or a crash mid-write
        // looks like to the consumer.
        let broken = format!(
            "{{\"protocol_version\": {}, \"instance\": \"{instance}",
            faults.protocol_version
        );
        return ([(CONTENT_TYPE, "application/json")], broken).into_response();
    }
    Json(json!({
        "protocol_version": faults.protocol_version,
        "min_consumer_version": MIN_CONSUMER_VERSION,
        "instance": instance,
        "server_time": rfc3339(now),
        "applications": {"impact_core": "3.4.0", "service_exchange": "2.6.1"},
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct NewRegistration {
    #[serde(default)]
    company: String,
    #[serde(default)]
    contact_email: String,
}

/// The provider admin initiates a registration for a named contact.
#[tracing::instrument(skip(state))]
pub async fn initiate(
    State(state): State<SimState>,
    params: Params,
    SimJson(body): SimJson<NewRegistration>,
) -> Result<(StatusCode, Json<Value>), SimError> {
    let company = body.company.trim().to_string();
    let contact_email = body.contact_email.trim().to_string();
    if company.is_empty() {
        return Err(SimError::BadRequest("company is required.".into()));
    }
    if !looks_like_email(&contact_email) {
        return Err(SimError::BadRequest(
            "contact_email must be the named contact's email address.".into(),
        ));
    }
    let code = token("reg_", 24);
    let registration = Registration {
        company,
        contact_email,
        used: false,
    };
    state.with(&params.instance(), |i| {
        i.registrations.insert(code.clone(), registration)
    });
    Ok((
        StatusCode::CREATED,
        Json(json!({ "registration_code": code })),
    ))
}

#[derive(Debug, Deserialize)]
pub struct Exchange {
    registration_code: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    contact_email: String,
    consumer_url: String,
}

/// The consumer exchanges a registration code, once, for its `consumer_id` and `secret`.
#[tracing::instrument(skip(state), fields(registration_code = %body.registration_code))]
pub async fn exchange(
    State(state): State<SimState>,
    params: Params,
    SimJson(body): SimJson<Exchange>,
) -> Result<(StatusCode, Json<Value>), SimError> {
    let consumer_url = parse_consumer_url(&body.consumer_url)?;
    let consumer_id = token("con_", 16);
    let secret = secret();
    let protocol_version = state.with(&params.instance(), |i| {
        let registration = i
            .registrations
            .get_mut(body.registration_code.trim())
            .ok_or(SimError::UnknownRegistration)?;
        if registration.used {
            return Err(SimError::RegistrationUsed);
        }
        registration.used = true;
        // The company may be renamed on the consumer's form; the contact is whoever the
        // provider named on the registration, which is who may authorise the connection.
        let company = Some(body.company.trim()).filter(|c| !c.is_empty()).unwrap_or(&registration.company);
        if !body.contact_email.trim().is_empty()
            && !body.contact_email.trim().eq_ignore_ascii_case(&registration.contact_email)
        {
            tracing::info!("the consumer sent another contact email than the registration's; keeping the registration's");
        }
        let consumer = Consumer {
            secret: secret.clone(),
            company: company.to_string(),
            contact_email: registration.contact_email.clone(),
            consumer_url,
            status: ConsumerStatus::Registered,
            auth_codes: Default::default(),
            onboarding: Onboarding::default(),
            answers: Default::default(),
            previous: None,
            rotation_asked: false,
        };
        i.consumers.insert(consumer_id.clone(), consumer);
        Ok(i.faults.protocol_version)
    })?;
    let body = json!({
        "consumer_id": consumer_id,
        "secret": B64.encode(&secret),
        "protocol_version": protocol_version,
    });
    Ok((StatusCode::CREATED, Json(body)))
}

/// The provider will call `{consumer_url}/inbound/v1/…`: it must be an absolute http(s) URL.
pub(crate) fn parse_consumer_url(raw: &str) -> Result<String, SimError> {
    let raw = raw.trim();
    let url = Url::parse(raw)
        .map_err(|e| SimError::BadRequest(format!("consumer_url is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(SimError::BadRequest(
            "consumer_url must be an http or https URL.".into(),
        ));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

fn looks_like_email(s: &str) -> bool {
    s.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !s.contains(char::is_whitespace)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_urls_and_emails_are_checked() {
        assert_eq!(
            parse_consumer_url(" http://127.0.0.1:3000/ ").unwrap(),
            "http://127.0.0.1:3000"
        );
        assert!(parse_consumer_url("ftp://x").is_err());
        assert!(parse_consumer_url("not a url").is_err());
        assert!(looks_like_email("a@example.com"));
        assert!(!looks_like_email("a@"));
        assert!(!looks_like_email("@example.com"));
        assert!(!looks_like_email("a b@example.com"));
    }
}

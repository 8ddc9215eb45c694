//! The provider's browser authorisation page, `/i/{instance}/idi/authorize`: the named contact
//! signs in with their email and allows (or denies) the access the consumer asks for.
use axum::{
    extract::{rejection::FormRejection, rejection::QueryRejection, OriginalUri, Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
    Form,
};
use reqwest::Url;
use serde::Deserialize;

use super::{
    catalog::ACCESS_ASKED,
    extract::Params,
    state::{token, AuthCode, SimState, AUTH_CODE_TTL_SECS},
};
use app::server::html::escape;

const TITLE: &str = "Impact Delivery Instance — Authorise connection";

/// Both the link's query and the form's fields; all optional so a bad link gets a readable page.
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeParams {
    consumer_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    email: Option<String>,
    decision: Option<String>,
}

/// A request that names a known consumer and a usable redirect.
struct Request {
    consumer_id: String,
    redirect: Url,
    state: Option<String>,
    company: String,
    contact_email: String,
}

#[tracing::instrument(skip(sim))]
pub async fn show(
    State(sim): State<SimState>,
    params: Params,
    OriginalUri(uri): OriginalUri,
    query: Result<Query<AuthorizeParams>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return page(
            StatusCode::BAD_REQUEST,
            "Invalid link",
            "<p>This authorisation link is malformed.</p>",
        );
    };
    let req = match resolve(&sim, &params.instance(), query) {
        Ok(req) => req,
        Err(refusal) => return refusal.into_response(),
    };
    let asked: String = ACCESS_ASKED
        .iter()
        .map(|(label, _)| format!("<li>{label}</li>"))
        .collect();
    let body = format!(
        r#"<p><strong>{company}</strong> asks to connect its Impact Store App to this Impact Delivery Instance.</p>
<p>If you allow it, the app will be able to:</p>
<ul>{asked}</ul>
<p>Only the named contact for this connection can allow it.</p>
<form method="post" action="{action}">
<input type="hidden" name="consumer_id" value="{consumer_id}">
<input type="hidden" name="redirect_uri" value="{redirect}">
<input type="hidden" name="state" value="{state}">
<p><label for="email">Your email</label><br>
<input id="email" name="email" type="email" autocomplete="email"></p>
<p><button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></p>
</form>"#,
        company = escape(&req.company),
        action = escape(uri.path()),
        consumer_id = escape(&req.consumer_id),
        redirect = escape(req.redirect.as_str()),
        state = escape(req.state.as_deref().unwrap_or("")),
    );
    page(StatusCode::OK, "Authorise connection", &body)
}

#[tracing::instrument(skip(sim))]
pub async fn decide(
    State(sim): State<SimState>,
    params: Params,
    OriginalUri(uri): OriginalUri,
    form: Result<Form<AuthorizeParams>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return page(
            StatusCode::BAD_REQUEST,
            "Invalid form",
            "<p>The form could not be read. Go back and try again.</p>",
        );
    };
    let instance = params.instance();
    let decision = form.decision.clone().unwrap_or_default();
    let email = form.email.clone().unwrap_or_default();
    let req = match resolve(&sim, &instance, form) {
        Ok(req) => req,
        Err(refusal) => return refusal.into_response(),
    };
    match decision.as_str() {
        "deny" => redirect(
            req.redirect,
            &[("error", "access_denied")],
            req.state.as_deref(),
        ),
        "allow" if email.trim().eq_ignore_ascii_case(req.contact_email.trim()) => {
            let code = token("az_", 32);
            let granted = sim.with(&instance, |i| {
                let expires_at = i.now().timestamp() + AUTH_CODE_TTL_SECS;
                let consumer = i.consumers.get_mut(&req.consumer_id)?;
                consumer.auth_codes.insert(
                    code.clone(),
                    AuthCode {
                        expires_at,
                        used: false,
                    },
                );
                Some(())
            });
            if granted.is_none() {
                return unknown_consumer(&req.consumer_id);
            }
            redirect(req.redirect, &[("code", &code)], req.state.as_deref())
        }
        "allow" => {
            tracing::info!("authorisation refused: not the named contact");
            let again = retry_link(uri.path(), &req);
            let body = format!(
                r#"<p role="alert">You are not the authorised contact for this connection.</p>
<p>Only the named contact, {masked}, can authorise the connection of {company}. Ask them to sign in, or contact your Impact Squad to change the named contact.</p>
<p><a href="{again}">Try again with another email</a></p>"#,
                masked = escape(&mask_email(&req.contact_email)),
                company = escape(&req.company),
                again = escape(&again),
            );
            page(StatusCode::FORBIDDEN, "Not the authorised contact", &body)
        }
        _ => page(
            StatusCode::BAD_REQUEST,
            "Invalid form",
            "<p>Choose Allow or Deny.</p>",
        ),
    }
}

/// Checks the link: a known consumer and an absolute http(s) redirect. Refusals are pages, not
/// redirects: an unchecked redirect would make this page an open redirector.
fn resolve(sim: &SimState, instance: &str, p: AuthorizeParams) -> Result<Request, Refusal> {
    let consumer_id = p.consumer_id.unwrap_or_default().trim().to_string();
    if consumer_id.is_empty() {
        return Err(Refusal::Incomplete(
            "it does not say which connection to authorise.",
        ));
    }
    let redirect = p
        .redirect_uri
        .as_deref()
        .and_then(|r| Url::parse(r.trim()).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    let Some(redirect) = redirect else {
        return Err(Refusal::Incomplete(
            "it does not say where to return afterwards. Start again from your Impact Store App.",
        ));
    };
    let found = sim.with(instance, |i| {
        i.consumers
            .get(&consumer_id)
            .map(|c| (c.company.clone(), c.contact_email.clone()))
    });
    let Some((company, contact_email)) = found else {
        return Err(Refusal::UnknownConsumer(consumer_id));
    };
    // The form posts an empty state when the link had none: the same thing.
    let state = p.state.filter(|s| !s.is_empty());
    Ok(Request {
        consumer_id,
        redirect,
        state,
        company,
        contact_email,
    })
}

/// Why a link or form cannot be acted on: shown as a page, never redirected.
enum Refusal {
    Incomplete(&'static str),
    UnknownConsumer(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Incomplete(why) => page(
                StatusCode::BAD_REQUEST,
                "Invalid link",
                &format!("<p>This authorisation link is incomplete: {why}</p>"),
            ),
            Refusal::UnknownConsumer(id) => unknown_consumer(&id),
        }
    }
}

fn unknown_consumer(id: &str) -> Response {
    let body = format!(
        "<p>There is no connection \"{}\" on this Impact Delivery Instance. It may have been removed: start the connection again from your Impact Store App.</p>",
        escape(id)
    );
    page(StatusCode::NOT_FOUND, "Unknown connection", &body)
}

/// 303 to the consumer's redirect with `pairs` and the state appended, properly encoded.
fn redirect(mut url: Url, pairs: &[(&str, &str)], state: Option<&str>) -> Response {
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    Redirect::to(url.as_str()).into_response()
}

/// The same page again, with the same link parameters.
fn retry_link(path: &str, req: &Request) -> String {
    let mut url = match Url::parse("http://provider.invalid/") {
        Ok(url) => url,
        Err(_) => return path.to_string(),
    };
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("consumer_id", &req.consumer_id);
        query.append_pair("redirect_uri", req.redirect.as_str());
        if let Some(state) = &req.state {
            query.append_pair("state", state);
        }
    }
    format!("{path}?{}", url.query().unwrap_or(""))
}

/// Enough of the address to recognise it, not enough to harvest it: `a***@example.com`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

fn page(status: StatusCode, heading: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{TITLE}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5; color: #1d2733; }}
header {{ color: #52606d; font-size: .9rem; }}
input[type=email] {{ width: 100%; padding: .4rem; font-size: 1rem; }}
button {{ padding: .4rem 1.2rem; font-size: 1rem; margin-right: .5rem; }}
[role=alert] {{ color: #a61b1b; font-weight: 600; }}
</style>
</head>
<body>
<header>Impact Delivery Instance</header>
<main>
<h1>{heading}</h1>
{body}
</main>
</body>
</html>
"#,
        heading = escape(heading),
    );
    (status, Html(html)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_masked_and_html_is_escaped() {
        assert_eq!(mask_email("alice@example.com"), "a***@example.com");
        assert_eq!(mask_email("nobody"), "***");
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn redirects_keep_existing_query_and_encode_values() {
        let url = Url::parse("http://app.test/cb?x=1").unwrap();
        let r = redirect(url, &[("code", "a b&c")], Some("s/1"));
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let location = r.headers()["location"].to_str().unwrap();
        assert_eq!(location, "http://app.test/cb?x=1&code=a+b%26c&state=s%2F1");
    }
}

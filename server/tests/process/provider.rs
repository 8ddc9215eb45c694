//! The named contact's side of "Connect to provider", as a test plays it: the provider's
//! authorisation page, and the answers a browser brings back (raced, as tabs and replays do).
use std::collections::HashMap;

use reqwest::redirect::Policy;

/// Answers "Allow" as `email` on the provider's page at `authorize_url` (what Connect returned).
/// Returns where the provider sends the browser back (code and state in its query), or the
/// page's refusal (status, page).
pub async fn allow(authorize_url: &str, email: &str) -> Result<String, (u16, String)> {
    let url = reqwest::Url::parse(authorize_url).expect("authorize_url");
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    // The named contact's browser, not the app under test: on this machine's https simulator it
    // trusts the test's own certificate authority as a person who installed it would (the app's
    // own calls verify certificates; tests/api/tls.rs holds it to that).
    let loopback = url
        .host_str()
        .and_then(|h| h.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback());
    let browser = reqwest::Client::builder()
        .redirect(Policy::none())
        .danger_accept_invalid_certs(loopback)
        .build()
        .expect("client");
    let page = browser.get(url.clone()).send().await.expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("Allow"));
    let mut action = url.clone();
    action.set_query(None);
    let answer = browser
        .post(action)
        .form(&[
            ("consumer_id", q["consumer_id"].as_str()),
            ("redirect_uri", q["redirect_uri"].as_str()),
            ("state", q["state"].as_str()),
            ("email", email),
            ("decision", "allow"),
        ])
        .send()
        .await
        .expect("answer");
    if answer.status() != 303 {
        let status = answer.status().as_u16();
        return Err((status, answer.text().await.unwrap_or_default()));
    }
    Ok(answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("location")
        .to_string())
}

/// Sends every GET at the same moment (a barrier), each with its own client: the answers'
/// status, Location and body, in no particular order.
pub async fn race(gets: Vec<(reqwest::Client, String)>) -> Vec<(u16, String, String)> {
    let go = std::sync::Arc::new(tokio::sync::Barrier::new(gets.len()));
    let mut set = tokio::task::JoinSet::new();
    for (client, url) in gets {
        let go = go.clone();
        set.spawn(async move {
            go.wait().await;
            let r = client.get(url).send().await.expect("answer");
            let status = r.status().as_u16();
            let location = r
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (status, location, r.text().await.unwrap_or_default())
        });
    }
    set.join_all().await
}

use serde_json::json;

use crate::{both_backends, helpers::TestApp};

both_backends!(
    a_welcome_email_link_opens_the_registration,
    |app: TestApp| async move {
        let token = app.invite("ada@example.com", "ServiceNow Impact").await;
        let r = app.get(&format!("/api/registration?token={token}")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["company"], "ServiceNow Impact");
        assert_eq!(r.body["provider_url"], app.provider_url.as_str());
        assert_eq!(r.body["email"], "ada@example.com");
        let list = app.get("/api/invitations").await;
        assert_eq!(list.body[0]["status"], "pending");
        assert!(list.body[0]["link"].as_str().unwrap_or("").contains(&token));
    }
);

both_backends!(
    a_tampered_link_is_refused_and_nothing_is_created,
    |app: TestApp| async move {
        let token = app.invite("ada@example.com", "ServiceNow Impact").await;
        let mut forged = token.clone();
        forged.insert(3, 'x');
        for bad in [forged.as_str(), "garbage", "", "a.b"] {
            let r = app.get(&format!("/api/registration?token={bad}")).await;
            assert_eq!(
                (r.status, r.body["code"].as_str()),
                (410, Some("link_tampered")),
                "{bad}"
            );
            assert!(r.body["message"]
                .as_str()
                .unwrap_or("")
                .contains("Impact Squad"));
            let r = app
                .post(
                    "/api/connections",
                    json!({ "company": "ServiceNow Impact", "registration_token": bad }),
                )
                .await;
            // An empty token is a missing field rather than an altered link.
            let expected = if bad.is_empty() {
                (422, Some("invalid"))
            } else {
                (410, Some("link_tampered"))
            };
            assert_eq!((r.status, r.body["code"].as_str()), expected, "{bad}");
        }
        assert_eq!(app.get("/api/connections").await.body, json!([]));
        assert_eq!(app.get("/api/companies").await.body, json!([]));
    }
);

both_backends!(an_expired_link_is_refused, |app: TestApp| async move {
    let token = app.invite("ada@example.com", "ServiceNow Impact").await;
    sqlx::query("UPDATE invitations SET expires_at = '2000-01-01T00:00:00.000000Z'")
        .execute(&app.state.db.pool)
        .await
        .expect("age the invitation");
    let r = app.get(&format!("/api/registration?token={token}")).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (410, Some("link_expired"))
    );
    assert!(r.body["message"]
        .as_str()
        .unwrap_or("")
        .contains("fresh link"));
    // Posting the expired link (Save on a form opened before it expired) is refused too, and
    // creates nothing.
    let r = app
        .post(
            "/api/connections",
            json!({ "company": "ServiceNow Impact", "registration_token": token }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (410, Some("link_expired")),
        "{:?}",
        r.body
    );
    assert_eq!(app.get("/api/connections").await.body, json!([]));
    assert_eq!(
        app.get("/api/invitations").await.body[0]["status"],
        "expired"
    );
});

both_backends!(a_link_is_single_use, |app: TestApp| async move {
    let token = app.invite("ada@example.com", "ServiceNow Impact").await;
    let body = json!({ "company": "ServiceNow Impact", "registration_token": token });
    assert_eq!(app.post("/api/connections", body.clone()).await.status, 201);
    let r = app.post("/api/connections", body).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (410, Some("link_used"))
    );
    let r = app.get(&format!("/api/registration?token={token}")).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (410, Some("link_used"))
    );
    assert_eq!(
        app.get("/api/connections")
            .await
            .body
            .as_array()
            .map(Vec::len),
        Some(1)
    );
});

both_backends!(
    a_fresh_link_supersedes_the_old_one,
    |app: TestApp| async move {
        let old = app.invite("ada@example.com", "ServiceNow Impact").await;
        let r = app
            .post(
                "/api/registration/resend",
                json!({ "email": "ADA@example.com " }),
            )
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        let r = app.get(&format!("/api/registration?token={old}")).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (410, Some("link_superseded"))
        );
        let outbox = app.get("/api/outbox").await;
        assert_eq!(outbox.body.as_array().map(Vec::len), Some(2));
        let link = outbox.body[0]["link"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let fresh = link
            .split_once("token=")
            .map(|(_, t)| t.to_string())
            .unwrap_or_default();
        assert_eq!(
            app.get(&format!("/api/registration?token={fresh}"))
                .await
                .status,
            200
        );
        // An unknown address gets the same answer and no email.
        let r = app
            .post(
                "/api/registration/resend",
                json!({ "email": "nobody@example.com" }),
            )
            .await;
        assert_eq!(r.status, 202);
        assert_eq!(
            app.get("/api/outbox").await.body.as_array().map(Vec::len),
            Some(2)
        );
    }
);

both_backends!(
    an_invitation_needs_a_valid_email_and_company,
    |app: TestApp| async move {
        let r = app
            .post(
                "/api/invitations",
                json!({ "email": "not-an-email", "company": "Acme" }),
            )
            .await;
        assert_eq!((r.status, r.body["field"].as_str()), (422, Some("email")));
        assert!(!r.body["message"].as_str().unwrap_or("").is_empty());
        let r = app
            .post(
                "/api/invitations",
                json!({ "email": "a@example.com", "company": "   " }),
            )
            .await;
        assert_eq!((r.status, r.body["field"].as_str()), (422, Some("company")));
        assert_eq!(app.get("/api/invitations").await.body, json!([]));
        assert_eq!(app.get("/api/outbox").await.body, json!([]));
    }
);

/// A minimal SMTP server on loopback that records each message's DATA.
async fn smtp_sink() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("smtp://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 sink ready\r\n").await;
                let mut data = None::<String>;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(d) = data.as_mut() {
                        if line == "." {
                            let _ = tx.send(data.take().unwrap_or_default());
                            let _ = w.write_all(b"250 queued\r\n").await;
                        } else {
                            d.push_str(&line);
                            d.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split_whitespace().next().unwrap_or("").to_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn the_welcome_email_is_also_sent_through_smtp_when_configured() {
    let (url, mut mails) = smtp_sink().await;
    let app = crate::helpers::spawn_with_smtp(crate::helpers::Backend::Sqlite, Some(url)).await;
    let token = app.invite("ada@example.com", "ServiceNow Impact").await;
    let mail = tokio::time::timeout(std::time::Duration::from_secs(30), mails.recv())
        .await
        .expect("an email within 10 s")
        .expect("email");
    assert!(mail.contains("To: ada@example.com"), "{mail}");
    assert!(mail.contains("Connect with Impact IDI"), "{mail}");
    assert!(
        mail.replace("=\n", "").contains(&token[..20]),
        "the link is in the email: {mail}"
    );
    // Delivered mail is marked sent, and stays readable in the outbox.
    crate::helpers::eventually("the welcome email is marked sent", async || {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT sent_at FROM outbox ORDER BY id DESC LIMIT 1",
        )
        .fetch_one(&app.state.db.pool)
        .await
        .expect("row")
        .is_some()
    })
    .await;
    assert_eq!(
        app.get("/api/outbox").await.body.as_array().map(Vec::len),
        Some(1)
    );
}

//! The one-time first-administrator link, offered when the server starts with no users and no
//! configured administrator.
use reqwest::redirect::Policy;

use app::model::{NewUser, Role};
use app::server::accounts;

use crate::helpers::{spawn, spawn_with, Backend, TestApp};

const PASSWORD: &str = "a long enough password";

/// An app started with nobody to sign in as, and its setup token.
async fn unconfigured(backend: Backend) -> (TestApp, String) {
    let app = spawn_with(backend, |config| config.admin = None).await;
    let link = app
        .setup_link
        .clone()
        .expect("a server with no users offers the setup link");
    let token = link
        .split_once("token=")
        .expect("token in the link")
        .1
        .to_string();
    assert_eq!(users(&app).await, Vec::<String>::new());
    (app, token)
}

async fn users(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar::<_, String>("SELECT email FROM users ORDER BY email")
        .fetch_all(&app.state.db.pool)
        .await
        .expect("users")
}

/// Posts the setup form as a browser would; returns (status, Location, whether a session
/// cookie was set).
async fn post_setup(app: &TestApp, token: &str, email: &str) -> (u16, String, bool) {
    let browser = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let r = browser
        .post(format!("{}/auth/setup", app.base))
        .form(&[("token", token), ("email", email), ("password", PASSWORD)])
        .send()
        .await
        .expect("setup");
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let cookie = r.headers().get("set-cookie").is_some();
    (r.status().as_u16(), location, cookie)
}

fn refused((status, location, cookie): &(u16, String, bool)) -> bool {
    *status == 303 && location.starts_with("/setup?") && location.contains("error=") && !cookie
}

async fn the_setup_link_works_once_and_only_with_its_token(backend: Backend) {
    let (app, token) = unconfigured(backend).await;

    let wrong = post_setup(&app, "not-the-token", "eve@example.com").await;
    assert!(refused(&wrong), "a wrong token: {wrong:?}");
    assert_eq!(users(&app).await, Vec::<String>::new(), "nothing created");

    let first = post_setup(&app, &token, "first@example.com").await;
    assert_eq!(
        (first.0, first.1.as_str(), first.2),
        (303, "/", true),
        "the first use signs the new administrator in"
    );
    assert_eq!(users(&app).await, vec!["first@example.com".to_string()]);

    let again = post_setup(&app, &token, "second@example.com").await;
    assert!(refused(&again), "the same token again: {again:?}");
    assert_eq!(
        users(&app).await,
        vec!["first@example.com".to_string()],
        "nothing created by the second use"
    );
}

async fn the_setup_link_is_refused_once_a_user_exists(backend: Backend) {
    // A user made after start-up (from the command line, say): the link no longer works.
    let (app, token) = unconfigured(backend).await;
    accounts::create_user(
        &app.state.db,
        &NewUser {
            email: "cli@example.com".into(),
            password: PASSWORD.into(),
            roles: vec![Role::ImpactAdmin],
        },
        "command line",
    )
    .await
    .expect("create user");
    let late = post_setup(&app, &token, "late@example.com").await;
    assert!(refused(&late), "{late:?}");
    assert_eq!(users(&app).await, vec!["cli@example.com".to_string()]);

    // A server that started with a user offers no link, and takes no token.
    let app = spawn(backend).await;
    assert_eq!(app.setup_link, None);
    let before = users(&app).await;
    let guess = post_setup(&app, "", "guess@example.com").await;
    assert!(refused(&guess), "{guess:?}");
    assert_eq!(users(&app).await, before);
}

async fn racing_setup_posts_make_one_administrator(backend: Backend) {
    let (app, token) = unconfigured(backend).await;
    let app = std::sync::Arc::new(app);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (app, token) = (app.clone(), token.clone());
        set.spawn(async move { post_setup(&app, &token, &format!("racer{i}@example.com")).await });
    }
    let answers = set.join_all().await;
    let won = answers.iter().filter(|a| a.0 == 303 && a.1 == "/").count();
    assert_eq!(won, 1, "{answers:?}");
    assert_eq!(
        answers.iter().filter(|a| refused(a)).count(),
        9,
        "{answers:?}"
    );
    assert_eq!(users(&app).await.len(), 1);
}

macro_rules! on_both_backends {
    ($($name:ident),*) => {$(
        mod $name {
            use crate::helpers::Backend;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(Backend::Postgres).await
            }
        }
    )*};
}

on_both_backends!(
    the_setup_link_works_once_and_only_with_its_token,
    the_setup_link_is_refused_once_a_user_exists,
    racing_setup_posts_make_one_administrator
);

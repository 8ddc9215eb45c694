//! The first administrator: from configuration, or through a one-time link printed at first start.
use std::sync::{Arc, Mutex};

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Redirect, Response},
    Form,
};
use serde::Deserialize;

use app::{
    model::{NewUser, Role},
    server::{accounts, AppState},
};

use crate::{config::Config, edge::auth::Auth};

pub type SetupToken = Arc<Mutex<Option<String>>>;

/// Creates the configured administrator, or, when there are no users and none is configured,
/// returns a one-time setup token.
pub async fn first_administrator(state: &AppState, config: &Config) -> anyhow::Result<SetupToken> {
    if let Some((email, password)) = &config.admin {
        if accounts::bootstrap_admin(&state.db, email, password)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
        {
            tracing::info!(%email, "first administrator created from configuration");
        }
    }
    let none_yet = accounts::count_users(&state.db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        == 0;
    Ok(Arc::new(Mutex::new(none_yet.then(accounts::random_token))))
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    email: String,
    password: String,
}

#[tracing::instrument(skip_all)]
pub async fn create_first_admin(
    State((auth, token)): State<(Auth, SetupToken)>,
    Form(form): Form<SetupForm>,
) -> Response {
    let back = |msg: &str| {
        Redirect::to(&format!(
            "/setup?token={}&error={}",
            crate::edge::auth::urlencode(&form.token),
            crate::edge::auth::urlencode(msg)
        ))
        .into_response()
    };
    // Taken, not just compared: of two posts with the token, one proceeds.
    let taken = token.lock().ok().and_then(|mut t| match t.as_deref() {
        Some(expected) if expected == form.token => t.take(),
        _ => None,
    });
    let Some(taken) = taken else {
        return back("This setup link has already been used or is not valid. Sign in instead.");
    };
    // A user made since start-up (by the command line, say) ends the link too.
    match accounts::count_users(&auth.state.db).await {
        Ok(0) => {}
        Ok(_) => {
            return back("An administrator already exists. Sign in instead.");
        }
        Err(e) => {
            restore(&token, taken);
            return e.into_response();
        }
    }
    let new = NewUser {
        email: form.email.clone(),
        password: form.password.clone(),
        roles: Role::ALL.to_vec(),
    };
    let user = match accounts::create_user(&auth.state.db, &new, "first start").await {
        Ok(u) => u,
        Err(e) => {
            // Nothing was created (a short password, say): the link still works.
            restore(&token, taken);
            return back(&e.to_api().message);
        }
    };
    let current = app::model::CurrentUser {
        id: user.id,
        email: user.email,
        roles: user.roles,
    };
    match accounts::start_session(&auth.state.db, &current, auth.sessions).await {
        Ok(session) => {
            let mut res = Redirect::to("/").into_response();
            let cookie = crate::edge::auth::set_cookie(
                &auth,
                &session,
                auth.sessions.absolute.num_seconds(),
            );
            res.headers_mut().insert(header::SET_COOKIE, cookie);
            res
        }
        Err(e) => e.into_response(),
    }
}

fn restore(token: &SetupToken, value: String) {
    if let Ok(mut t) = token.lock() {
        *t = Some(value);
    }
}

//! The simulator's own administration, `/sim/instances/{instance}/…`: set faults at run time and
//! reset an instance. Not part of the protocol; meant for loopback use by tests and operators.
use axum::{extract::State, http::StatusCode, Json};

use super::{
    error::SimError,
    extract::{Params, RawBody},
    faults::Faults,
    state::{Counters, SimState},
};

#[tracing::instrument(skip(state))]
pub async fn get_faults(State(state): State<SimState>, params: Params) -> Json<Faults> {
    Json(state.faults(&params.instance()))
}

/// Replaces the instance's faults; fields left out take their defaults.
#[tracing::instrument(skip(state, body))]
pub async fn put_faults(
    State(state): State<SimState>,
    params: Params,
    RawBody(body): RawBody,
) -> Result<Json<Faults>, SimError> {
    let faults = Faults::parse(&body).map_err(SimError::BadRequest)?;
    tracing::info!(?faults, "faults set");
    state.with(&params.instance(), |i| i.faults = faults.clone());
    Ok(Json(faults))
}

/// What the instance has served so far (`state::Counters`), for tests.
#[tracing::instrument(skip(state))]
pub async fn counters(State(state): State<SimState>, params: Params) -> Json<Counters> {
    Json(state.with(&params.instance(), |i| i.counters.clone()))
}

/// Revokes every consumer's credentials, as a provider's admin would: anything signed with them
/// is refused from now on (`unknown_consumer`). Answers how many were revoked.
#[tracing::instrument(skip(state))]
pub async fn revoke(State(state): State<SimState>, params: Params) -> Json<serde_json::Value> {
    let revoked = state.with(&params.instance(), |i| {
        let n = i.consumers.len();
        i.consumers.clear();
        n
    });
    tracing::info!(revoked, "credentials revoked");
    Json(serde_json::json!({ "revoked": revoked }))
}

/// The provider asks every consumer of the instance to rotate its credentials: the next echo
/// (heartbeat) answer of each says `"rotate": true` until it does. Answers how many were asked.
#[tracing::instrument(skip(state))]
pub async fn ask_rotation(
    State(state): State<SimState>,
    params: Params,
) -> Json<serde_json::Value> {
    let asked = state.with(&params.instance(), |i| {
        i.consumers
            .values_mut()
            .map(|c| c.rotation_asked = true)
            .count()
    });
    Json(serde_json::json!({ "asked": asked }))
}

#[tracing::instrument(skip(state))]
pub async fn reset(State(state): State<SimState>, params: Params) -> StatusCode {
    state.reset(&params.instance());
    StatusCode::NO_CONTENT
}

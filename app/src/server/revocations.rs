//! Ending event streams on every replica. A sign-out or a change of a user (disabled, other
//! roles) ends the matching streams here at once, and, on PostgreSQL, is announced with `NOTIFY`
//! so every other replica ends its own (their relays listen: `relay`); a browser's stream may be
//! on any replica behind the balancer.
use super::AppState;

/// Where revocations are announced (payload `s:<session key>` or `u:<user id>`; the session key
/// is the stored hash of the token, never the token).
pub const REVOCATIONS: &str = "impact_revocations";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The streams opened with this session (its key, as stored).
    Session(String),
    /// Every stream of this user.
    User(i64),
}

impl Revocation {
    fn payload(&self) -> String {
        match self {
            Revocation::Session(key) => format!("s:{key}"),
            Revocation::User(id) => format!("u:{id}"),
        }
    }

    pub fn parse(payload: &str) -> Option<Self> {
        match payload.split_once(':')? {
            ("s", key) if !key.is_empty() => Some(Revocation::Session(key.to_string())),
            ("u", id) => id.parse().ok().map(Revocation::User),
            _ => None,
        }
    }
}

/// Ends the matching streams here. Returns how many.
pub fn apply(state: &AppState, r: &Revocation) -> usize {
    match r {
        Revocation::Session(key) => state.streams.revoke_session(key),
        Revocation::User(id) => state.streams.revoke_user(*id),
    }
}

/// Ends the matching streams here and on every other replica. Returns how many ended here.
pub async fn everywhere(state: &AppState, r: Revocation) -> usize {
    let ended = apply(state, &r);
    if let Err(e) = state.db.notify(REVOCATIONS, &r.payload()).await {
        // The other replicas' streams still end at their next reconnect, refused then.
        tracing::warn!(error = %e, "announcing a stream revocation failed");
    }
    ended
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_junk_is_refused() {
        for r in [Revocation::Session("abc123".into()), Revocation::User(42)] {
            assert_eq!(Revocation::parse(&r.payload()), Some(r));
        }
        for junk in ["", "s:", "u:x", "x:1", "u"] {
            assert_eq!(Revocation::parse(junk), None, "{junk:?}");
        }
    }
}

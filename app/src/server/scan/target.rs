//! The connection under scan: the record as people see it plus what only the server sees
//! (`connections::Private`: contact, registration code, credentials).
use crate::model::{ConnectionView, FieldError, ProviderUrl};
use crate::server::{connections, error::ServiceError, AppState};

pub(super) struct Target {
    pub view: ConnectionView,
    /// The stored URL under today's rules, read once for the whole run.
    pub url: Result<ProviderUrl, FieldError>,
    pub private: connections::Private,
}

pub(super) async fn load(state: &AppState, id: i64) -> Result<Target, ServiceError> {
    let view = connections::get(&state.db, id).await?;
    Ok(Target {
        url: view.provider_url(),
        view,
        private: connections::private(state, id).await?,
    })
}

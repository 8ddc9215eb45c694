//! The connection under scan: the record as people see it plus what only the server sees
//! (`connections::Private`: contact, registration code, credentials).
use crate::model::ConnectionView;
use crate::server::{connections, error::ServiceError, AppState};

pub(super) struct Target {
    pub view: ConnectionView,
    pub private: connections::Private,
}

pub(super) async fn load(state: &AppState, id: i64) -> Result<Target, ServiceError> {
    Ok(Target {
        view: connections::get(&state.db, id).await?,
        private: connections::private(state, id).await?,
    })
}

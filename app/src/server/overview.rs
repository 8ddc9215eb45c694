//! The home page's overview: every connection with its open issues, and where Guided Setup
//! stands (the next step itself is the model's rule, `model::home::next_step`).
use super::{connections, error::ServiceError, guided, scan, AppState};
use crate::model::{ActivityId, ActivityStatus, ConnectionSummary, HomeView};

#[tracing::instrument(skip(state))]
pub async fn home(state: &AppState) -> Result<HomeView, ServiceError> {
    let list = connections::list(&state.db).await?;
    // Guided Setup follows one of these; read once for both.
    let setup = guided::view_of(state, &list).await?;
    let mut summaries = Vec::new();
    for connection in list {
        let open_issues = scan::latest(state, connection.id)
            .await?
            .iter()
            .filter(|r| r.status.is_issue())
            .count();
        summaries.push(ConnectionSummary {
            connection,
            open_issues,
        });
    }
    Ok(HomeView {
        connections: summaries,
        establish_complete: setup.status(ActivityId::Establish) == ActivityStatus::Complete,
        connection_verified: setup.status(ActivityId::VerifyConnection) == ActivityStatus::Complete,
    })
}

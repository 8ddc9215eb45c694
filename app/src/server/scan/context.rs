//! What the checks of one run share: the target, one provider client, the provider's
//! information (fetched once) and the credentials (which registration may fill in mid-run).
use std::time::Instant;

use tokio::sync::{Mutex, OnceCell};

use super::target::Target;
use crate::model::heartbeat::Beat;
use crate::server::{
    provider::{Credentials, Info, ProviderClient, ProviderError},
    AppState,
};

pub(super) struct Ctx<'a> {
    pub state: &'a AppState,
    pub target: Target,
    pub client: ProviderClient,
    info: OnceCell<Result<(Info, u64), ProviderError>>,
    credentials: Mutex<Option<Credentials>>,
    /// What the heartbeat check's exchange found (connection health suite), for the statuses.
    beat: std::sync::Mutex<Option<Beat>>,
}

impl<'a> Ctx<'a> {
    pub fn new(state: &'a AppState, target: Target) -> Self {
        Ctx {
            state,
            client: state.provider_at(&target.url),
            credentials: Mutex::new(target.private.credentials.clone()),
            target,
            info: OnceCell::new(),
            beat: std::sync::Mutex::new(None),
        }
    }

    pub fn set_beat(&self, beat: Beat) {
        if let Ok(mut b) = self.beat.lock() {
            *b = Some(beat);
        }
    }

    pub fn beat(&self) -> Option<Beat> {
        self.beat.lock().ok().and_then(|b| *b)
    }

    /// The provider's information and how long it took to answer, asked once per run.
    pub async fn info(&self) -> &Result<(Info, u64), ProviderError> {
        self.info
            .get_or_init(|| async {
                let started = Instant::now();
                self.client
                    .info()
                    .await
                    .map(|i| (i, started.elapsed().as_millis() as u64))
            })
            .await
    }

    pub async fn creds(&self) -> Option<Credentials> {
        self.credentials.lock().await.clone()
    }

    /// Registration obtained credentials: the checks after it use them.
    pub async fn set_creds(&self, credentials: Credentials) {
        *self.credentials.lock().await = Some(credentials);
    }
}

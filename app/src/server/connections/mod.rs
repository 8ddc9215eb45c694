//! The `connections` table's one owner: records as people see them and their history (`read`),
//! changes under the state machine (`write`), what only the server sees, credentials included
//! (`secrets`), and the columns background work keeps (`progress`). What a person asks for
//! (create, save, act) is composed from these in `server::commands`.
pub(crate) mod progress;
mod read;
mod secrets;
mod write;

pub use progress::{
    awaiting_validation, count_for_company, inbound_seen_in_run, mark_inbound_seen,
    next_onboarding_run, onboarding_in_progress, onboarding_run, set_auth_state, take_auth_state,
};
pub use read::{find_by_url, get, history, list};
pub use secrets::{
    by_consumer, credentials, private, retire_previous_secrets, store_credentials, Private,
    StoredSecrets,
};
pub(crate) use secrets::{replace_sealed_secret, sealed_secrets, store_rotated};
pub use write::{apply, at_version, create, off_board, re_register, set_company};
pub(crate) use write::{apply_rotation, write_system_transition, write_transition};

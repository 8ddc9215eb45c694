//! What one check found, and the words for it.
use crate::model::CheckStatus;
use crate::server::provider::ProviderError;

/// What a check found.
pub(super) struct Found {
    pub status: CheckStatus,
    pub message: String,
    pub retryable: bool,
}

pub(super) fn passed(message: impl Into<String>) -> Found {
    Found {
        status: CheckStatus::Passed,
        message: message.into(),
        retryable: false,
    }
}

pub(super) fn failed(message: impl Into<String>, retryable: bool) -> Found {
    Found {
        status: CheckStatus::Failed,
        message: message.into(),
        retryable,
    }
}

/// The check could not tell (our side failed, or an answer we cannot use).
pub(super) fn unknown(message: impl Into<String>, retryable: bool) -> Found {
    Found {
        status: CheckStatus::Error,
        message: message.into(),
        retryable,
    }
}

/// Not applicable here, or not run because a check it depends on did not pass.
pub(super) fn not_applicable(message: impl Into<String>) -> Found {
    Found {
        status: CheckStatus::Skipped,
        message: message.into(),
        retryable: false,
    }
}

/// A provider failure, worded for the check that met it.
pub(super) fn provider_failure(what: &str, e: &ProviderError) -> Found {
    let retry = e.retryable();
    let status = match e {
        // An answer we do not understand is an unknown error, not a verdict.
        ProviderError::Malformed(_) | ProviderError::Network(_) => CheckStatus::Error,
        _ => CheckStatus::Failed,
    };
    Found {
        status,
        message: format!("{what}: {e}."),
        retryable: retry,
    }
}

/// A provider's message inside our sentence, without its own closing full stop.
pub(super) fn sentence(message: &str) -> &str {
    message.trim().trim_end_matches('.')
}

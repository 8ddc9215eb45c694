//! Why a provider call failed, told apart (a DNS failure is not "check your credentials"):
//! shared by the address check (`outbound`) and the protocol client (`provider`).
use super::tls_problem::TlsProblem;

/// Why a provider call failed. Messages name what failed and what to do; they never repeat what
/// a foreign host sent beyond the protocol's own error message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider's host name could not be resolved (DNS)")]
    Dns,
    #[error("the provider refused the connection (nothing is listening at that address)")]
    Refused,
    #[error("the provider did not answer within {0} ms")]
    Timeout(u64),
    #[error("{0}")]
    Tls(TlsProblem),
    #[error("{0}")]
    AddressRefused(crate::model::AddressRefused),
    #[error(
        "the provider URL uses plain http, which is only allowed for the built-in simulator and \
         hosts in IMPACT_ALLOW_PROVIDER_HOSTS; use https"
    )]
    PlainHttp,
    #[error("the provider URL is not usable: {0}")]
    InvalidUrl(String),
    #[error("the provider answered HTTP {status}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the provider's answer is not the expected JSON")]
    Malformed(String),
    #[error("the provider's answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the provider redirected the call elsewhere (HTTP {0}); redirects are not followed")]
    Redirected(u16),
    #[error("the connection to the provider failed")]
    Network(String),
}

impl ProviderError {
    /// The message as the middle of a sentence (no closing full stop), for the sentences that
    /// tell a person what failed and what to do.
    pub fn clause(&self) -> String {
        self.to_string().trim_end_matches('.').to_string()
    }

    /// Whether trying again later may help (the provider was down or slow), as opposed to a
    /// configuration problem that needs fixing first.
    pub fn retryable(&self) -> bool {
        match self {
            ProviderError::Refused | ProviderError::Timeout(_) | ProviderError::Network(_) => true,
            ProviderError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// Which kind of failure, one word per variant (a metric's label: a closed set, unlike
    /// `code`, which carries the provider's own error code).
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::Dns => "dns",
            ProviderError::Refused => "refused",
            ProviderError::Timeout(_) => "timeout",
            ProviderError::Tls(_) => "tls",
            ProviderError::AddressRefused(_) => "address_refused",
            ProviderError::PlainHttp => "plain_http",
            ProviderError::InvalidUrl(_) => "invalid_url",
            ProviderError::Status { .. } => "status",
            ProviderError::Malformed(_) => "malformed",
            ProviderError::TooLarge(_) => "too_large",
            ProviderError::Redirected(_) => "redirected",
            ProviderError::Network(_) => "network",
        }
    }

    /// The error's code: its kind, or for an error answer the provider's own code.
    pub fn code(&self) -> &str {
        match self {
            ProviderError::Status { code, .. } => code,
            other => other.kind(),
        }
    }

    /// Whether the URL itself is refused by policy (a 4xx for whoever entered it).
    pub fn is_policy(&self) -> bool {
        matches!(
            self,
            ProviderError::AddressRefused(_)
                | ProviderError::PlainHttp
                | ProviderError::InvalidUrl(_)
        )
    }

    pub(super) fn classify(e: reqwest::Error, total_ms: u64) -> Self {
        if e.is_timeout() {
            return ProviderError::Timeout(total_ms);
        }
        if let Some(tls) = TlsProblem::find(&e) {
            return ProviderError::Tls(tls);
        }
        // The address check runs inside the client's resolver: find its refusal.
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = src {
            if let Some(r) = s.downcast_ref::<crate::model::AddressRefused>() {
                return ProviderError::AddressRefused(r.clone());
            }
            src = s.source();
        }
        // reqwest folds the cause into its source chain: read it to tell failures apart.
        let mut chain = String::new();
        let mut src: Option<&dyn std::error::Error> = Some(&e);
        while let Some(s) = src {
            chain.push_str(&s.to_string().to_lowercase());
            chain.push(' ');
            src = s.source();
        }
        if chain.contains("dns error")
            || chain.contains("failed to lookup address")
            || chain.contains("name or service not known")
        {
            ProviderError::Dns
        } else if chain.contains("connection refused") {
            ProviderError::Refused
        } else if chain.contains("certificate") || chain.contains("tls") || chain.contains("ssl") {
            ProviderError::Tls(TlsProblem::Other("the handshake did not complete".into()))
        } else if chain.contains("timed out") {
            ProviderError::Timeout(total_ms)
        } else if e.is_decode() {
            ProviderError::Malformed(e.to_string())
        } else {
            ProviderError::Network(chain.trim().to_string())
        }
    }
}

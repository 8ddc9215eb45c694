//! What went wrong with a provider's TLS certificate or handshake, found in an error's cause
//! chain (the TLS library's own error, not its text) and worded for the health scan's finding.

/// What went wrong with the provider's TLS certificate or handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsProblem {
    Expired,
    NotYetValid,
    WrongHost,
    UnknownIssuer,
    Revoked,
    /// Any other handshake failure, as our TLS library words it.
    Other(String),
}

impl std::fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsProblem::Expired => "the provider's certificate has expired",
            TlsProblem::NotYetValid => "the provider's certificate is not valid yet",
            TlsProblem::WrongHost => {
                "the provider's certificate is not issued for the host in the provider URL"
            }
            TlsProblem::UnknownIssuer => {
                "the provider's certificate is issued by an unknown authority (for a private CA, \
                 set IMPACT_PROVIDER_CA_FILE)"
            }
            TlsProblem::Revoked => "the provider's certificate has been revoked",
            TlsProblem::Other(reason) => return write!(f, "the TLS handshake failed ({reason})"),
        })
    }
}

impl TlsProblem {
    /// Finds the TLS library's own error in a cause chain. An `io::Error` hides what it wraps
    /// from `source()` (and the client wraps one io::Error in another), so those are opened.
    pub(super) fn find(e: &(dyn std::error::Error + 'static)) -> Option<Self> {
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = src {
            if let Some(t) = s.downcast_ref::<rustls::Error>() {
                return Some(Self::from_rustls(t));
            }
            src = match s
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => s.source(),
            };
        }
        None
    }

    fn from_rustls(e: &rustls::Error) -> Self {
        use rustls::CertificateError as C;
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                C::Expired | C::ExpiredContext { .. } => TlsProblem::Expired,
                C::NotValidYet | C::NotValidYetContext { .. } => TlsProblem::NotYetValid,
                C::NotValidForName | C::NotValidForNameContext { .. } => TlsProblem::WrongHost,
                C::UnknownIssuer => TlsProblem::UnknownIssuer,
                C::Revoked => TlsProblem::Revoked,
                other => TlsProblem::Other(format!("{other:?}")),
            },
            other => TlsProblem::Other(other.to_string()),
        }
    }
}

//! How the app reaches a provider: which addresses it may call (no SSRF), over what (https, with
//! the web's roots plus an operator's private CA), and the HTTP client that does it.
//!
//! An admin-supplied provider URL is checked when it is entered (invitation, save) and again on
//! every connection: a host name is resolved once, every address it resolves to is checked, and
//! the client connects to the addresses it checked (no second resolution, so a DNS answer that
//! changes between check and call cannot swap in an internal address).
use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{error::ServiceError, provider_error::ProviderError, tls_problem::TlsProblem};
use crate::model::{check_address, AddressRefused, FieldError, ProviderUrl};

/// A host (and optionally a port) the operator allows to be called even though it is not a
/// public https service: the built-in simulator, a test provider, a provider on a private network.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    fn parse(entry: &str) -> anyhow::Result<Self> {
        let entry = entry.trim().to_ascii_lowercase();
        // Reuse the URL parser so "[::1]:3001", "localhost" and "idi.corp:8443" read alike.
        let url = url::Url::parse(&format!("http://{entry}/"))
            .ok()
            .filter(|u| u.path() == "/" && u.username().is_empty())
            .with_context(|| {
                format!("IMPACT_ALLOW_PROVIDER_HOSTS: {entry:?} is not a host or host:port")
            })?;
        Ok(Self {
            host: url.host_str().unwrap_or_default().to_string(),
            port: url.port(),
        })
    }

    fn matches(&self, url: &ProviderUrl) -> bool {
        self.host.eq_ignore_ascii_case(url.host()) && self.port.is_none_or(|p| p == url.port())
    }
}

/// The outbound policy, built once from the settings.
#[derive(Clone, Default)]
pub struct Outbound {
    allowed: Vec<AllowedHost>,
    /// Extra trust anchors (IMPACT_PROVIDER_CA_FILE), on top of the web's (webpki) roots.
    extra_roots: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("allowed", &self.allowed)
            .field("extra_roots", &self.extra_roots.len())
            .finish()
    }
}

impl Outbound {
    /// `allow` is a comma-separated list of `host` or `host:port`; `ca_pem` one or more PEM
    /// certificates to trust besides the public roots.
    pub fn new(allow: &str, ca_pem: Option<&[u8]>) -> anyhow::Result<Self> {
        let mut this = Self::default();
        for entry in allow.split(',').filter(|e| !e.trim().is_empty()) {
            this.allowed.push(AllowedHost::parse(entry)?);
        }
        if let Some(pem) = ca_pem {
            this.extra_roots = reqwest::Certificate::from_pem_bundle(pem)
                .context("IMPACT_PROVIDER_CA_FILE holds no readable PEM certificate")?;
            if this.extra_roots.is_empty() {
                anyhow::bail!("IMPACT_PROVIDER_CA_FILE holds no PEM certificate");
            }
        }
        Ok(this)
    }

    /// Reads the CA file named by `ca_file`, if any.
    pub fn from_settings(allow: &str, ca_file: Option<&str>) -> anyhow::Result<Self> {
        let pem = match ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("IMPACT_PROVIDER_CA_FILE={path:?} cannot be read"))?,
            ),
            None => None,
        };
        Self::new(allow, pem.as_deref())
    }

    /// Adds one allowed `host:port` (the built-in simulator, once its port is known).
    pub fn allow(&mut self, host_port: &str) -> anyhow::Result<()> {
        self.allowed.push(AllowedHost::parse(host_port)?);
        Ok(())
    }

    pub fn allows(&self, url: &ProviderUrl) -> bool {
        self.allowed.iter().any(|a| a.matches(url))
    }

    /// What may be checked without any network: plain http only to an allowed host; an IP
    /// address in the URL must be public unless allowed.
    fn check_statically(&self, url: &ProviderUrl) -> Result<bool, ProviderError> {
        if self.allows(url) {
            return Ok(true);
        }
        if !url.is_https() {
            return Err(ProviderError::PlainHttp);
        }
        if let Some(ip) = url.ip() {
            check_address(ip).map_err(ProviderError::AddressRefused)?;
        }
        Ok(false)
    }

    /// Checks a provider URL before anything is stored or sent: its host is resolved and every
    /// address must be public (unless the host is allowed).
    #[tracing::instrument(skip(self), fields(host = %url.host()))]
    pub async fn check(&self, url: &ProviderUrl) -> Result<(), ProviderError> {
        if self.check_statically(url)? || url.ip().is_some() {
            return Ok(());
        }
        CheckedResolver::lookup(url.host())
            .await
            .map(|_| ())
            .map_err(|e| match e {
                LookupError::Refused(r) => ProviderError::AddressRefused(r),
                LookupError::Dns(_) => ProviderError::Dns,
            })
    }

    /// `check` for a URL an administrator entered: a policy refusal is a 4xx on the URL field.
    /// A host that does not resolve now is left to the call itself to report (and checked again
    /// there), so a provider's passing DNS trouble does not block saving.
    pub async fn vet(&self, url: &ProviderUrl) -> Result<(), ServiceError> {
        match self.check(url).await {
            Err(e) if e.is_policy() => Err(FieldError::new(
                ProviderUrl::FIELD,
                format!("This provider URL is refused: {e}."),
            )
            .into()),
            _ => Ok(()),
        }
    }

    /// The HTTP client for calls to `url`, or why no call may be made.
    pub fn client(
        &self,
        url: &ProviderUrl,
        timeout: Duration,
    ) -> Result<reqwest::Client, ProviderError> {
        let allowed = self.check_statically(url)?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .timeout(timeout)
            // A redirect could lead anywhere, past every check above.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!allowed)
            .no_proxy()
            .use_rustls_tls()
            // The peer's certificate travels with the answer: its end date is checked ahead.
            .tls_info(true)
            .tls_built_in_webpki_certs(true);
        for root in &self.extra_roots {
            builder = builder.add_root_certificate(root.clone());
        }
        if !allowed {
            builder = builder.dns_resolver(Arc::new(CheckedResolver));
        }
        builder
            .build()
            .map_err(|e| ProviderError::Tls(TlsProblem::Other(e.to_string())))
    }
}

/// Resolves a provider host and refuses the whole answer if any address is not public (a mix
/// of public and internal addresses is how rebinding attacks look).
struct CheckedResolver;

#[derive(Debug, thiserror::Error)]
enum LookupError {
    #[error("{0}")]
    Refused(AddressRefused),
    #[error("DNS lookup failed: {0}")]
    Dns(std::io::Error),
}

impl CheckedResolver {
    async fn lookup(host: &str) -> Result<Vec<SocketAddr>, LookupError> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(LookupError::Dns)?
            .collect();
        for a in &addrs {
            check_address(a.ip()).map_err(LookupError::Refused)?;
        }
        Ok(addrs)
    }
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            match CheckedResolver::lookup(&host).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as Addrs),
                Err(LookupError::Refused(r)) => Err(Box::new(r) as _),
                Err(LookupError::Dns(e)) => Err(Box::new(e) as _),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> ProviderUrl {
        ProviderUrl::parse(s).expect(s)
    }

    #[test]
    fn allow_list_entries_match_host_and_port() {
        let o = Outbound::new("127.0.0.1:3001, LOCALHOST , [::1]:9", None).expect("parse");
        assert!(o.allows(&url("http://127.0.0.1:3001/idi/x")));
        assert!(!o.allows(&url("http://127.0.0.1:22")));
        assert!(o.allows(&url("https://localhost:8443")));
        assert!(o.allows(&url("http://localhost")));
        assert!(o.allows(&url("http://[::1]:9")));
        assert!(!o.allows(&url("http://[::1]:10")));
        assert!(Outbound::new("http://x/", None).is_err());
        assert!(Outbound::new("a b", None).is_err());
    }

    #[test]
    fn plain_http_and_internal_literals_are_refused_unless_allowed() {
        let o = Outbound::new("127.0.0.1:3001", None).expect("parse");
        assert!(matches!(
            o.check_statically(&url("http://127.0.0.1:22")),
            Err(ProviderError::PlainHttp)
        ));
        for u in [
            "https://127.0.0.2:3999",
            "https://2130706433:22",
            "https://[::1]:443",
        ] {
            assert!(
                matches!(
                    o.check_statically(&url(u)),
                    Err(ProviderError::AddressRefused(_))
                ),
                "{u}"
            );
        }
        assert!(matches!(
            o.check_statically(&url("http://127.0.0.1:3001")),
            Ok(true)
        ));
        assert!(matches!(
            o.check_statically(&url("https://idi.example.com")),
            Ok(false)
        ));
        assert!(matches!(
            o.check_statically(&url("https://8.8.8.8")),
            Ok(false)
        ));
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        assert!(Outbound::new("", Some(b"not a pem")).is_err());
    }
}

//! The simulator over https, as a real provider is: tests hand it a certificate they made, and
//! can swap it at run time (an expired or wrong-host certificate is a provider fault too).
use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use anyhow::Context;
use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// A certificate chain (leaf first) and its private key, both PEM.
#[derive(Clone)]
pub struct SimCert {
    pub chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for SimCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimCert(<pem>)")
    }
}

/// The server configuration presented to the next handshake; swapped by `set`.
#[derive(Clone)]
pub struct Certificate(Arc<RwLock<Arc<rustls::ServerConfig>>>);

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Certificate")
    }
}

impl Certificate {
    pub fn new(cert: &SimCert) -> anyhow::Result<Self> {
        Ok(Self(Arc::new(RwLock::new(Arc::new(server_config(cert)?)))))
    }

    pub fn set(&self, cert: &SimCert) -> anyhow::Result<()> {
        let config = Arc::new(server_config(cert)?);
        let mut slot = self
            .0
            .write()
            .map_err(|_| anyhow::anyhow!("certificate lock poisoned"))?;
        *slot = config;
        Ok(())
    }

    fn current(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.0.read().ok().map(|c| c.clone())
    }
}

fn server_config(cert: &SimCert) -> anyhow::Result<rustls::ServerConfig> {
    let chain = CertificateDer::pem_slice_iter(cert.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("simulator certificate chain is not PEM")?;
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())
        .context("simulator private key is not PEM")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("simulator certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts TLS connections and serves `app` on each until `stopped` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    certificate: Certificate,
    stopped: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stopped);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(error = %e, "simulator accept failed");
                    continue;
                }
            },
        };
        let Some(config) = certificate.current() else {
            return;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(HANDSHAKE_LIMIT, TlsAcceptor::from(config).accept(tcp))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    // A client refusing our certificate is what the bad-certificate tests expect.
                    Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                };
            let service = TowerToHyperService::new(app);
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "simulator connection ended");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_certificate() {
        let bad = SimCert {
            chain_pem: "nope".into(),
            key_pem: "nope".into(),
        };
        assert!(Certificate::new(&bad).is_err());
    }
}

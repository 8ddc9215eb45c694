//! The SMTP relay the outbox delivers through, parsed once at start-up from `IMPACT_SMTP_URL`
//! (and `IMPACT_SMTP_CA_FILE`), so a bad setting stops the server instead of failing each send.
//!
//! | URL                                        | connection                                  |
//! | ------------------------------------------ | ------------------------------------------- |
//! | `smtps://user:pass@host[:465]`             | TLS from the first byte (implicit TLS)      |
//! | `smtp://user:pass@host[:587]?tls=required` | STARTTLS, and no mail if the relay lacks it |
//! | `smtp://host[:587]?tls=opportunistic`      | STARTTLS when offered, plain otherwise      |
//! | `smtp://host[:25]`                         | plain SMTP (a local relay or mail catcher)  |
//!
//! User and password are percent-decoded. They are accepted only with `smtps://` or
//! `?tls=required`, so a password never crosses the network in clear text, and never appear in
//! `Debug` output or logs. Certificates are checked against the Mozilla roots (webpki-roots)
//! plus, when set, the PEM certificates in `IMPACT_SMTP_CA_FILE` (a private relay's CA).
use std::{fmt, time::Duration};

use lettre::transport::smtp::{
    authentication::Credentials,
    client::{Certificate, Tls, TlsParameters},
};
use lettre::{AsyncSmtpTransport, Tokio1Executor};

/// How the connection to the relay is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// `smtps://`: TLS from the first byte.
    ImplicitTls,
    /// `smtp://…?tls=required`: STARTTLS, refused if the relay does not offer it.
    StartTlsRequired,
    /// `smtp://…?tls=opportunistic`: STARTTLS if offered (not safe against an active attacker).
    StartTlsOpportunistic,
    /// `smtp://host:port`: no encryption.
    Plain,
}

/// A validated relay; see the module documentation for the accepted URLs.
#[derive(Clone)]
pub struct SmtpRelay {
    host: String,
    port: u16,
    security: Security,
    /// User and password, percent-decoded.
    credentials: Option<(String, String)>,
    /// Number of extra trusted certificates (from `IMPACT_SMTP_CA_FILE`).
    extra_roots: usize,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SmtpRelayError {
    #[error("IMPACT_SMTP_URL is not a URL ({0}); expected smtps://user:pass@host:465, smtp://user:pass@host:587?tls=required or smtp://host:25")]
    NotAUrl(String),
    #[error("IMPACT_SMTP_URL must start with smtp:// or smtps://, not {0}://")]
    Scheme(String),
    #[error("IMPACT_SMTP_URL has no host name")]
    NoHost,
    #[error("IMPACT_SMTP_URL: tls={0:?} is not one of tls=required, tls=opportunistic")]
    TlsMode(String),
    #[error("IMPACT_SMTP_URL: ?tls= only applies to smtp://; smtps:// is always TLS")]
    TlsOnSmtps,
    #[error("IMPACT_SMTP_URL: unknown parameter {0:?} (only tls= is understood)")]
    Parameter(String),
    #[error("IMPACT_SMTP_URL: a path ({0:?}) is not supported")]
    Path(String),
    #[error("IMPACT_SMTP_URL: the user name or password is not valid UTF-8 once percent-decoded")]
    Encoding,
    #[error("IMPACT_SMTP_URL: a password needs a user name")]
    PasswordWithoutUser,
    #[error("IMPACT_SMTP_URL carries a user name but the connection would not be encrypted: use smtps://… or smtp://…?tls=required")]
    CredentialsInClear,
    #[error("IMPACT_SMTP_CA_FILE={path:?}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("IMPACT_SMTP_CA_FILE is set but IMPACT_SMTP_URL uses no TLS")]
    CaWithoutTls,
    #[error("IMPACT_SMTP_URL: TLS set-up failed: {0}")]
    Tls(String),
}

impl SmtpRelay {
    /// The relay from `IMPACT_SMTP_URL` and, if set, `IMPACT_SMTP_CA_FILE` (read here).
    pub fn from_settings(url: &str, ca_file: Option<&str>) -> Result<Self, SmtpRelayError> {
        let ca = match ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| SmtpRelayError::CaFile {
                path: path.into(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        Self::parse(
            url,
            ca.as_deref().map(|pem| (ca_file.unwrap_or_default(), pem)),
        )
    }

    /// The relay from its URL, trusting also the certificates of `extra_ca` (the name of their
    /// file, for messages, and its PEM text).
    pub fn parse(url: &str, extra_ca: Option<(&str, &[u8])>) -> Result<Self, SmtpRelayError> {
        let u = url::Url::parse(url).map_err(|e| SmtpRelayError::NotAUrl(e.to_string()))?;
        let mut tls_mode = None;
        for (k, v) in u.query_pairs() {
            match &*k {
                "tls" => tls_mode = Some(v.into_owned()),
                other => return Err(SmtpRelayError::Parameter(other.into())),
            }
        }
        let security = match (u.scheme(), tls_mode.as_deref()) {
            ("smtps", None) => Security::ImplicitTls,
            ("smtps", Some(_)) => return Err(SmtpRelayError::TlsOnSmtps),
            ("smtp", None) => Security::Plain,
            ("smtp", Some("required")) => Security::StartTlsRequired,
            ("smtp", Some("opportunistic")) => Security::StartTlsOpportunistic,
            ("smtp", Some(other)) => return Err(SmtpRelayError::TlsMode(other.into())),
            (other, _) => return Err(SmtpRelayError::Scheme(other.into())),
        };
        let host = match u.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(SmtpRelayError::NoHost),
        };
        if !matches!(u.path(), "" | "/") {
            return Err(SmtpRelayError::Path(u.path().into()));
        }
        let port = u.port().unwrap_or(match security {
            Security::ImplicitTls => 465,
            Security::StartTlsRequired | Security::StartTlsOpportunistic => 587,
            Security::Plain => 25,
        });
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| SmtpRelayError::Encoding)
        };
        let credentials = match (u.username(), u.password()) {
            ("", None) => None,
            ("", Some(_)) => return Err(SmtpRelayError::PasswordWithoutUser),
            (user, password) => Some((decode(user)?, decode(password.unwrap_or_default())?)),
        };
        let encrypted = matches!(security, Security::ImplicitTls | Security::StartTlsRequired);
        if credentials.is_some() && !encrypted {
            return Err(SmtpRelayError::CredentialsInClear);
        }

        let mut tls = TlsParameters::builder(host.clone());
        let mut extra_roots = 0;
        if let Some((path, pem)) = extra_ca {
            if security == Security::Plain {
                return Err(SmtpRelayError::CaWithoutTls);
            }
            let ca_error = |reason: &str| SmtpRelayError::CaFile {
                path: path.into(),
                reason: reason.into(),
            };
            extra_roots = String::from_utf8_lossy(pem)
                .matches("-----BEGIN CERTIFICATE-----")
                .count();
            if extra_roots == 0 {
                return Err(ca_error(
                    "no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
                ));
            }
            let certificate = Certificate::from_pem(pem).map_err(|e| ca_error(&e.to_string()))?;
            tls = tls.add_root_certificate(certificate);
        }
        // Built now, so an unusable certificate stops start-up rather than every delivery.
        let tls = tls
            .build_rustls()
            .map_err(|e| SmtpRelayError::Tls(error_chain(&e)))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .timeout(Some(Duration::from_secs(10)))
            .tls(match security {
                Security::ImplicitTls => Tls::Wrapper(tls),
                Security::StartTlsRequired => Tls::Required(tls),
                Security::StartTlsOpportunistic => Tls::Opportunistic(tls),
                Security::Plain => Tls::None,
            });
        if let Some((user, password)) = &credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            host,
            port,
            security,
            credentials,
            extra_roots,
            transport: builder.build(),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn security(&self) -> Security {
        self.security
    }

    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(u, _)| u.as_str())
    }

    /// The transport, built once; it opens a connection per message.
    pub fn transport(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        &self.transport
    }
}

impl fmt::Debug for SmtpRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpRelay")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user())
            .field("password", &self.credentials.as_ref().map(|_| "<redacted>"))
            .field("extra_roots", &self.extra_roots)
            .finish()
    }
}

impl SmtpRelay {
    /// Why a message could not be sent, for the outbox's `send_error`: the relay, lettre's error
    /// with its causes, and a hint when the relay's certificate was not trusted.
    pub fn describe_send_error(&self, e: &lettre::transport::smtp::Error) -> String {
        let mut text = format!("SMTP relay {}:{}: {}", self.host, self.port, error_chain(e));
        if text.contains("invalid peer certificate") {
            text.push_str(
                " (the relay's certificate is not trusted: is its CA in IMPACT_SMTP_CA_FILE?)",
            );
        }
        text
    }
}

/// An error and its causes on one line. lettre's errors already print their source, sometimes
/// wrapped twice ("Connection error: Connection error: …"): repeated parts are dropped.
/// Checks the sender (IMPACT_MAIL_FROM) as a delivery would read it, so a bad one stops the start
/// instead of failing every email later.
pub fn check_sender(from: &str) -> Result<(), String> {
    from.parse::<lettre::message::Mailbox>()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let line = s.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = s.source();
    }
    let mut parts: Vec<&str> = text.split(": ").collect();
    parts.dedup();
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_accepted_form_gives_its_security_port_and_decoded_user() {
        let r = SmtpRelay::parse(
            "smtps://mailer%40impact:p%40ss%3Aw0rd@smtp.example.com",
            None,
        )
        .expect("smtps");
        assert_eq!(
            (r.host(), r.port(), r.security(), r.user()),
            (
                "smtp.example.com",
                465,
                Security::ImplicitTls,
                Some("mailer@impact")
            )
        );
        assert_eq!(
            r.credentials.as_ref().map(|(_, p)| p.as_str()),
            Some("p@ss:w0rd")
        );
        let r =
            SmtpRelay::parse("smtp://u:p@relay.example:2525?tls=required", None).expect("starttls");
        assert_eq!((r.port(), r.security()), (2525, Security::StartTlsRequired));
        let r = SmtpRelay::parse("smtp://relay.example?tls=opportunistic", None).expect("opp");
        assert_eq!(
            (r.port(), r.security()),
            (587, Security::StartTlsOpportunistic)
        );
        let r = SmtpRelay::parse("smtp://127.0.0.1:1025", None).expect("plain");
        assert_eq!(
            (r.host(), r.port(), r.security(), r.user()),
            ("127.0.0.1", 1025, Security::Plain, None)
        );
        let r = SmtpRelay::parse("smtp://[::1]", None).expect("ipv6");
        assert_eq!((r.host(), r.port()), ("::1", 25));
    }

    #[test]
    fn a_bad_url_is_refused_with_a_reason() {
        for (url, error) in [
            ("relay.example", "is not a URL"),
            ("relay.example:25", "must start with smtp:// or smtps://"),
            (
                "http://relay.example",
                "must start with smtp:// or smtps://",
            ),
            (
                "smtp://relay.example?tls=always",
                "tls=\"always\" is not one of",
            ),
            (
                "smtps://relay.example?tls=required",
                "smtps:// is always TLS",
            ),
            (
                "smtp://relay.example?timeout=3",
                "unknown parameter \"timeout\"",
            ),
            ("smtp://relay.example/ehlo", "a path"),
            ("smtp://u:p@relay.example", "would not be encrypted"),
            (
                "smtp://u:p@relay.example?tls=opportunistic",
                "would not be encrypted",
            ),
            ("smtp://:p@relay.example?tls=required", "needs a user name"),
            ("smtps://u:%FF@relay.example", "not valid UTF-8"),
        ] {
            let e = SmtpRelay::parse(url, None).expect_err(url);
            assert!(e.to_string().contains(error), "{url}: {e}");
        }
    }

    #[test]
    fn the_extra_ca_must_hold_a_certificate_and_needs_tls() {
        let e = SmtpRelay::parse("smtps://relay.example", Some(("ca.pem", b"hello")))
            .expect_err("no certificate");
        assert!(
            e.to_string()
                .contains("IMPACT_SMTP_CA_FILE=\"ca.pem\": no PEM certificate"),
            "{e}"
        );
        let e = SmtpRelay::from_settings("smtps://relay.example", Some("/nonexistent/ca.pem"))
            .expect_err("missing file");
        assert!(
            e.to_string()
                .starts_with("IMPACT_SMTP_CA_FILE=\"/nonexistent/ca.pem\": "),
            "{e}"
        );
        let e = SmtpRelay::parse(
            "smtp://relay.example",
            Some(("ca.pem", b"-----BEGIN CERTIFICATE-----\n")),
        )
        .expect_err("plain");
        assert_eq!(e, SmtpRelayError::CaWithoutTls);
    }

    #[test]
    fn an_error_chain_reads_once_per_cause() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl fmt::Display for E {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let e = E(
            "Connection error: Connection error: bad certificate",
            Some(Box::new(E(
                "bad certificate",
                Some(Box::new(E("UnknownIssuer", None))),
            ))),
        );
        assert_eq!(
            error_chain(&e),
            "Connection error: bad certificate: UnknownIssuer"
        );
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let r =
            SmtpRelay::parse("smtps://mailer:s3cr3t-pa55@smtp.example.com", None).expect("smtps");
        let shown = format!("{r:?}");
        assert!(!shown.contains("s3cr3t-pa55"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("mailer"),
            "{shown}"
        );
    }
}

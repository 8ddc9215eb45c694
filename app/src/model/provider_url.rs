//! The address of the provider instance (the IDI) a connection talks to.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use url::{Host, Url};

use super::field::FieldError;

/// An absolute provider URL, safe to call and to show.
///
/// - https, or http only for a loopback host: the provider simulator runs on this machine, and
///   anything else would send credentials in clear text.
/// - No user name or password (credentials come from the registration, never the URL), no query
///   and no fragment (we append API paths to it).
/// - Normalised without a trailing `/`, so the same provider always has the same string; a second
///   connection for the same provider URL must be recognised as the existing one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderUrl {
    url: String,
    host: String,
    /// The host when it is an IP address, however it was spelled (decimal, octal, hex).
    ip: Option<IpAddr>,
    port: u16,
    loopback: bool,
    /// The path part without a trailing `/` (an instance prefix such as `/i/acme`), or empty.
    path: String,
}

const EXAMPLE: &str = "https://idi.example.com";
const HTTPS_ONLY: &str =
    "The provider URL must use https (http is only allowed for a provider on this machine).";
const NO_USERINFO: &str =
    "The provider URL must not contain a user name or password; remove the part before '@'.";

impl ProviderUrl {
    /// The form field errors are reported against.
    pub const FIELD: &'static str = "url";
    pub const MAX_LEN: usize = 2048;

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let err = |message: String| FieldError::new(Self::FIELD, message);
        let raw = input.trim();
        if raw.is_empty() {
            return Err(err(format!("Enter the provider URL, such as {EXAMPLE}.")));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(err(Self::too_long()));
        }
        // The URL parser silently drops tabs and line breaks; refuse them so what is stored is
        // what the person typed.
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(
                "The provider URL must not contain spaces or line breaks.".to_owned(),
            ));
        }
        let url = Url::parse(raw).map_err(|e| {
            err(match e {
                url::ParseError::RelativeUrlWithoutBase => format!(
                    "The provider URL must be a full address starting with https://, such as {EXAMPLE}."
                ),
                url::ParseError::EmptyHost => {
                    format!("The provider URL must name a host, such as {EXAMPLE}.")
                }
                url::ParseError::InvalidPort => {
                    "The provider URL has an invalid port number.".to_owned()
                }
                other => format!("The provider URL is not a valid address ({other})."),
            })
        })?;

        // Scheme first: "localhost:3001" parses with scheme "localhost" and no host, and the
        // useful advice for it is the missing "http://".
        if !matches!(url.scheme(), "https" | "http") {
            return Err(err(format!(
                "The provider URL must start with https://, such as {EXAMPLE} (http:// is only allowed for a provider on this machine)."
            )));
        }
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        let loopback = match url.host() {
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            None => {
                return Err(err(format!(
                    "The provider URL must name a host, such as {EXAMPLE}."
                )))
            }
        };
        if url.scheme() == "http" && !loopback {
            return Err(err(HTTPS_ONLY.to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err(NO_USERINFO.to_owned()));
        }
        if url.query().is_some() {
            return Err(err(
                "The provider URL must not contain a query; remove the part from '?'.".to_owned(),
            ));
        }
        if url.fragment().is_some() {
            return Err(err(
                "The provider URL must not contain a fragment; remove the part from '#'."
                    .to_owned(),
            ));
        }
        let host = url.host_str().unwrap_or_default().to_owned();
        // Without query or fragment the serialisation ends with the path, so trimming '/' only
        // touches the path (the host is never empty for http/https).
        let normalized = url.as_str().trim_end_matches('/').to_owned();
        // Re-check: percent-encoding and punycode can lengthen the input.
        if normalized.len() > Self::MAX_LEN {
            return Err(err(Self::too_long()));
        }
        Ok(Self {
            url: normalized,
            host,
            ip,
            port: url.port_or_known_default().unwrap_or(443),
            loopback,
            path: url.path().trim_end_matches('/').to_owned(),
        })
    }

    fn too_long() -> String {
        format!(
            "The provider URL must be at most {} characters.",
            Self::MAX_LEN
        )
    }

    /// The normalised URL, without a trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The host name or address (IPv6 in brackets), without the port.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The host as an IP address, when the URL names one instead of a host name.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// The port calls go to (443 or 80 unless the URL names one).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether calls are made over https.
    pub fn is_https(&self) -> bool {
        self.url.starts_with("https://")
    }

    /// Whether the provider runs on this machine (the simulator), which is what allows http.
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }

    /// The path part without a trailing `/` (an instance prefix such as `/i/acme`), or empty:
    /// what a signed request's path starts with.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The URL of an API path on this provider: `endpoint("/api/x")` → `<url>/api/x`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}/{}", self.url, path.trim_start_matches('/'))
    }
}

impl AsRef<str> for ProviderUrl {
    fn as_ref(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for ProviderUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl TryFrom<String> for ProviderUrl {
    type Error = FieldError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl TryFrom<&str> for ProviderUrl {
    type Error = FieldError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<ProviderUrl> for String {
    fn from(value: ProviderUrl) -> Self {
        value.url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> ProviderUrl {
        ProviderUrl::parse(input).unwrap_or_else(|e| panic!("{input:?} refused: {e}"))
    }

    #[test]
    fn the_path_is_the_instance_prefix_signed_requests_start_with() {
        assert_eq!(ok("https://idi.example.com").path(), "");
        assert_eq!(ok("https://idi.example.com/").path(), "");
        assert_eq!(ok("http://127.0.0.1:3001/i/acme/").path(), "/i/acme");
        assert_eq!(
            ok("https://idi.example.com/i/acme").endpoint("/idi/authorize"),
            "https://idi.example.com/i/acme/idi/authorize"
        );
    }

    fn message(input: &str) -> String {
        let err = ProviderUrl::parse(input).unwrap_err();
        assert_eq!(err.field, "url");
        err.message
    }

    #[test]
    fn accepts_https_and_normalises() {
        for (input, expected, host) in [
            (
                "https://idi.example.com",
                "https://idi.example.com",
                "idi.example.com",
            ),
            (
                "https://idi.example.com/",
                "https://idi.example.com",
                "idi.example.com",
            ),
            (
                "  https://IDI.Example.com/  ",
                "https://idi.example.com",
                "idi.example.com",
            ),
            (
                "https://idi.example.com:8443/",
                "https://idi.example.com:8443",
                "idi.example.com",
            ),
            // The default port is dropped, so both spellings are the same provider.
            (
                "https://idi.example.com:443",
                "https://idi.example.com",
                "idi.example.com",
            ),
            (
                "https://idi.example.com/now/",
                "https://idi.example.com/now",
                "idi.example.com",
            ),
            (
                "https://idi.example.com/now//",
                "https://idi.example.com/now",
                "idi.example.com",
            ),
            ("https://10.0.0.5", "https://10.0.0.5", "10.0.0.5"),
        ] {
            let url = ok(input);
            assert_eq!(url.as_str(), expected, "{input:?}");
            assert_eq!(url.host(), host, "{input:?}");
            assert!(!url.is_loopback(), "{input:?}");
        }
    }

    #[test]
    fn http_only_on_loopback() {
        for (input, expected, host) in [
            (
                "http://localhost:3001",
                "http://localhost:3001",
                "localhost",
            ),
            (
                "http://LOCALHOST:3001/",
                "http://localhost:3001",
                "localhost",
            ),
            (
                "http://127.0.0.1:3001/",
                "http://127.0.0.1:3001",
                "127.0.0.1",
            ),
            ("http://127.10.20.30", "http://127.10.20.30", "127.10.20.30"),
            ("http://[::1]:3001", "http://[::1]:3001", "[::1]"),
            (
                "https://localhost:3001",
                "https://localhost:3001",
                "localhost",
            ),
        ] {
            let url = ok(input);
            assert_eq!(url.as_str(), expected, "{input:?}");
            assert_eq!(url.host(), host, "{input:?}");
            assert!(url.is_loopback(), "{input:?}");
        }
        for bad in [
            "http://idi.example.com",
            "http://10.0.0.5",
            "http://128.0.0.1",
            "http://[::2]",
            "http://localhost.example.com",
            "http://mylocalhost",
        ] {
            assert_eq!(message(bad), HTTPS_ONLY, "{bad:?}");
        }
    }

    #[test]
    fn rejects_other_schemes_and_relative_addresses() {
        for bad in [
            "ftp://idi.example.com",
            "ws://localhost",
            "localhost:3001",
            "file:///etc",
        ] {
            assert!(
                message(bad).starts_with("The provider URL must start with https://"),
                "{bad:?}"
            );
        }
        for bad in ["idi.example.com", "/api", "//idi.example.com"] {
            assert_eq!(
                message(bad),
                "The provider URL must be a full address starting with https://, such as https://idi.example.com.",
                "{bad:?}"
            );
        }
        assert_eq!(
            message("https://"),
            "The provider URL must name a host, such as https://idi.example.com."
        );
        assert_eq!(
            message("https://idi.example.com:99999"),
            "The provider URL has an invalid port number."
        );
        assert!(message("https://exa mple.com").contains("spaces"));
        assert!(message("https://idi.exa\nmple.com").contains("line breaks"));
        assert!(message("https://[::1").starts_with("The provider URL is not a valid address ("));
    }

    #[test]
    fn rejects_empty_userinfo_query_fragment() {
        assert_eq!(
            message("  "),
            "Enter the provider URL, such as https://idi.example.com."
        );
        for bad in [
            "https://admin@idi.example.com",
            "https://admin:pw@idi.example.com",
            "https://:pw@idi.example.com",
        ] {
            assert!(message(bad).contains("user name or password"), "{bad:?}");
        }
        for bad in ["https://idi.example.com/?x=1", "https://idi.example.com?"] {
            assert!(message(bad).contains("must not contain a query"), "{bad:?}");
        }
        for bad in ["https://idi.example.com/#top", "https://idi.example.com#"] {
            assert!(
                message(bad).contains("must not contain a fragment"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn length_limit() {
        let base = "https://idi.example.com/";
        let at_limit = format!("{base}{}", "a".repeat(ProviderUrl::MAX_LEN - base.len()));
        assert_eq!(ok(&at_limit).as_str().len(), ProviderUrl::MAX_LEN);
        let over = format!("{at_limit}a");
        assert_eq!(
            message(&over),
            "The provider URL must be at most 2048 characters."
        );
        // Percent-encoding lengthens the path past the limit.
        let encoded = format!("{base}{}", "é".repeat(1000));
        assert!(encoded.len() <= ProviderUrl::MAX_LEN);
        assert_eq!(
            message(&encoded),
            "The provider URL must be at most 2048 characters."
        );
    }

    #[test]
    fn endpoint_joins_one_slash() {
        let url = ok("https://idi.example.com/base/");
        assert_eq!(
            url.endpoint("/api/register"),
            "https://idi.example.com/base/api/register"
        );
        assert_eq!(url.endpoint("api"), "https://idi.example.com/base/api");
    }

    #[test]
    fn serde_is_a_validated_string() {
        let url = ok("https://idi.example.com/");
        assert_eq!(
            serde_json::to_string(&url).unwrap(),
            r#""https://idi.example.com""#
        );
        assert_eq!(
            serde_json::from_str::<ProviderUrl>(r#""https://idi.example.com/""#).unwrap(),
            url
        );
        let err = serde_json::from_str::<ProviderUrl>(r#""http://idi.example.com""#).unwrap_err();
        assert!(err.to_string().contains(HTTPS_ONLY), "{err}");
        assert!(serde_json::from_str::<ProviderUrl>(r#""""#).is_err());
        assert!(serde_json::from_str::<ProviderUrl>("{}").is_err());
    }

    #[test]
    fn the_url_says_where_calls_go() {
        let tls = ok("https://idi.example.com/i/acme");
        assert!(tls.is_https());
        assert_eq!(tls.port(), 443);
        assert_eq!(tls.as_ref(), "https://idi.example.com/i/acme");
        assert_eq!(tls.to_string(), "https://idi.example.com/i/acme");
        let plain = ok("http://127.0.0.1:8080/i/acme");
        assert!(!plain.is_https());
        assert_eq!(plain.port(), 8080);
        assert_eq!(ok("http://127.0.0.1/i/acme").port(), 80);
        assert_eq!(ok("https://idi.example.com:8443").port(), 8443);
    }
}

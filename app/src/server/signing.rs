//! Request signing for the provider protocol (docs/PROVIDER_PROTOCOL.md): both sides sign with
//! the connection's shared secret; the receiver checks the MAC and the clock.
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const HEADER_CONSUMER: &str = "x-impact-consumer";
pub const HEADER_TIMESTAMP: &str = "x-impact-timestamp";
pub const HEADER_SIGNATURE: &str = "x-impact-signature";
/// The consumer instance's own base URL, on every signed request: the provider compares it with
/// the one it registered, which is how it tells a cloned instance apart.
pub const HEADER_INSTANCE: &str = "x-impact-instance";
/// Names a step of an onboarding run; a repeat with the same key is answered from the
/// provider's record, not done again (docs/PROVIDER_PROTOCOL.md, "Idempotent steps").
pub const HEADER_IDEMPOTENCY: &str = "idempotency-key";
/// Longest idempotency key a provider keeps.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;
/// Largest accepted difference between the sender's timestamp and the receiver's clock.
pub const MAX_SKEW_SECS: i64 = 300;

fn mac_for(secret: &[u8], method: &str, path: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    let body_hash = hex::encode(Sha256::digest(body));
    mac.update(
        format!(
            "{}\n{path}\n{timestamp}\n{body_hash}",
            method.to_ascii_uppercase()
        )
        .as_bytes(),
    );
    mac
}

/// The `X-Impact-Signature` value for a request.
pub fn sign(secret: &[u8], method: &str, path: &str, timestamp: i64, body: &[u8]) -> String {
    hex::encode(
        mac_for(secret, method, path, timestamp, body)
            .finalize()
            .into_bytes(),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the request signature does not match")]
    BadSignature,
    #[error("the request timestamp is too far from this server's clock")]
    ClockSkew,
}

/// Checks a received request. The clock is checked first: a skewed sender is told so even when
/// its signature is right.
pub fn verify(
    secret: &[u8],
    method: &str,
    path: &str,
    timestamp: i64,
    body: &[u8],
    signature_hex: &str,
    now: i64,
) -> Result<(), VerifyError> {
    // Saturating: a hostile timestamp (i64::MIN) must not overflow.
    if now.saturating_sub(timestamp).saturating_abs() > MAX_SKEW_SECS {
        return Err(VerifyError::ClockSkew);
    }
    let sig = hex::decode(signature_hex).map_err(|_| VerifyError::BadSignature)?;
    mac_for(secret, method, path, timestamp, body)
        .verify_slice(&sig)
        .map_err(|_| VerifyError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let s = sign(b"secret", "post", "/idi/v1/x", 1000, b"{}");
        assert_eq!(
            verify(b"secret", "POST", "/idi/v1/x", 1000, b"{}", &s, 1000),
            Ok(())
        );
        // Each row changes one thing from what was signed.
        type Signed<'a> = (&'a [u8], &'a str, &'a str, i64, &'a [u8], &'a str);
        let changed: [Signed; 6] = [
            (b"other", "POST", "/idi/v1/x", 1000, b"{}", &s),
            (b"secret", "GET", "/idi/v1/x", 1000, b"{}", &s),
            (b"secret", "POST", "/idi/v1/y", 1000, b"{}", &s),
            (b"secret", "POST", "/idi/v1/x", 1001, b"{}", &s),
            (b"secret", "POST", "/idi/v1/x", 1000, b"{ }", &s),
            (b"secret", "POST", "/idi/v1/x", 1000, b"{}", "zz"),
        ];
        for (key, method, path, ts, body, sig) in changed {
            assert_eq!(
                verify(key, method, path, ts, body, sig, 1000),
                Err(VerifyError::BadSignature),
                "{method} {path} at {ts}"
            );
        }
    }

    #[test]
    fn extreme_timestamps_are_refused_not_a_panic() {
        assert_eq!(
            verify(b"k", "GET", "/p", i64::MIN, b"", "00", 0),
            Err(VerifyError::ClockSkew)
        );
        assert_eq!(
            verify(b"k", "GET", "/p", i64::MAX, b"", "00", -5),
            Err(VerifyError::ClockSkew)
        );
    }

    #[test]
    fn a_skewed_clock_is_refused_as_such() {
        let s = sign(b"k", "GET", "/p", 0, b"");
        assert_eq!(verify(b"k", "GET", "/p", 0, b"", &s, MAX_SKEW_SECS), Ok(()));
        assert_eq!(
            verify(b"k", "GET", "/p", 0, b"", &s, MAX_SKEW_SECS + 1),
            Err(VerifyError::ClockSkew)
        );
        assert_eq!(
            verify(b"k", "GET", "/p", 0, b"", &s, -MAX_SKEW_SECS - 1),
            Err(VerifyError::ClockSkew)
        );
    }
}

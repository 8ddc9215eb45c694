//! Registration links: `<payload>.<mac>`, both base64url. The payload names the invitation and its
//! nonce and expiry; the MAC is HMAC-SHA256 under the server's link key. Whether a link was already
//! used is the database's business (single use), not the token's.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    /// Invitation id.
    pub i: i64,
    /// Nonce stored with the invitation: a re-issued link has a new one.
    pub n: String,
    /// Expiry, unix seconds.
    pub e: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is malformed or was altered")]
    Tampered,
}

#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(<redacted>)")
    }
}

impl LinkSigner {
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }

    pub fn key_len(&self) -> usize {
        self.key.len()
    }

    pub fn sign(&self, claims: &LinkClaims) -> String {
        let payload = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        format!("{payload}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// Checks the MAC (in constant time) and decodes the claims. Expiry is checked by the caller,
    /// which knows the time.
    pub fn verify(&self, token: &str) -> Result<LinkClaims, LinkError> {
        let (payload, sig) = token.trim().split_once('.').ok_or(LinkError::Tampered)?;
        let sig = B64.decode(sig).map_err(|_| LinkError::Tampered)?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&sig).map_err(|_| LinkError::Tampered)?;
        let bytes = B64.decode(payload).map_err(|_| LinkError::Tampered)?;
        serde_json::from_slice(&bytes).map_err(|_| LinkError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> LinkClaims {
        LinkClaims {
            i: 7,
            n: "abc".into(),
            e: 1_900_000_000,
        }
    }

    #[test]
    fn a_signed_link_verifies_to_its_claims() {
        let s = LinkSigner::new(b"k1".to_vec());
        assert_eq!(s.verify(&s.sign(&claims())), Ok(claims()));
    }

    #[test]
    fn a_changed_payload_or_signature_or_key_is_tampered() {
        let s = LinkSigner::new(b"k1".to_vec());
        let token = s.sign(&claims());
        let (payload, sig) = token.split_once('.').unwrap();
        let other = LinkClaims { i: 8, ..claims() };
        let forged_payload = B64.encode(serde_json::to_vec(&other).unwrap());
        assert_eq!(
            s.verify(&format!("{forged_payload}.{sig}")),
            Err(LinkError::Tampered)
        );
        assert_eq!(
            s.verify(&format!("{payload}.AAAA")),
            Err(LinkError::Tampered)
        );
        assert_eq!(s.verify(payload), Err(LinkError::Tampered));
        assert_eq!(s.verify(""), Err(LinkError::Tampered));
        assert_eq!(
            LinkSigner::new(b"k2".to_vec()).verify(&token),
            Err(LinkError::Tampered)
        );
    }
}

//! Secrets at rest: the provider shared secrets and the registration-link signing key are stored
//! sealed (XChaCha20-Poly1305, a random 24-byte nonce per value), so a copy of the database alone
//! reveals none of them.
//!
//! A sealed value reads `v1:<key id>:<base64(nonce || ciphertext+tag)>`. The key id (8 hex digits
//! of a SHA-256 of the key) says which key sealed it, so the app can still open values sealed
//! under a previous key and re-seal them under the current one at start-up (key rotation). Each
//! value is bound to where it is stored (its `context`, the associated data): a value copied to
//! another row or setting does not open.
//!
//! The key comes from `IMPACT_SECRET_KEY` (32 bytes as 64 hex digits or base64), else from a key
//! file created at first start with mode 0600 (`IMPACT_SECRET_KEY_FILE`, by default the SQLite
//! database's path with the extension `.key`, or `./impact-connect.key` for PostgreSQL).

use base64::{
    engine::general_purpose::{STANDARD as B64, STANDARD_NO_PAD as B64_NO_PAD},
    Engine,
};
use chacha20poly1305::{
    aead::{Aead, KeyInit, Payload},
    XChaCha20Poly1305, XNonce,
};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 24;

/// Where the registration-link signing key is stored (`settings.link_key`).
pub const LINK_KEY_CONTEXT: &str = "settings.link_key";

/// Where a connection's provider secret is stored (`connections.secret` of that row).
pub fn connection_secret_context(id: i64) -> String {
    format!("connections.secret/{id}")
}

/// A 32-byte sealing key. Its bytes are wiped when dropped and never printed: `Debug` shows the
/// key id only.
#[derive(Clone)]
pub struct SecretKey {
    bytes: Zeroizing<[u8; 32]>,
    id: String,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(id {})", self.id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expected 32 bytes written as 64 hex digits or as base64")]
pub struct MalformedKey;

impl SecretKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"impact-connect secret key id\n")
            .chain_update(bytes)
            .finalize();
        let id = hex::encode(&digest[..4]);
        Self {
            bytes: Zeroizing::new(bytes),
            id,
        }
    }

    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut bytes[..]);
        Self::from_bytes(*bytes)
    }

    /// 64 hex digits, or base64 (standard alphabet, padded or not) of exactly 32 bytes;
    /// surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, MalformedKey> {
        let text = text.trim();
        let decoded: Zeroizing<Vec<u8>> = Zeroizing::new(
            if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                hex::decode(text).map_err(|_| MalformedKey)?
            } else {
                B64.decode(text)
                    .or_else(|_| B64_NO_PAD.decode(text))
                    .map_err(|_| MalformedKey)?
            },
        );
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| MalformedKey)?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key id written into every value this key seals; not secret.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as base64 (what a key file holds).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(&self.bytes[..]))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        let key: &[u8; 32] = &self.bytes;
        XChaCha20Poly1305::new(key.into())
    }
}

/// Why a stored value did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the value is not sealed")]
    NotSealed,
    #[error("the value is sealed under key id {0}, which is not one of the configured keys")]
    UnknownKey(String),
    #[error("the value does not open under key id {0}: it was changed, damaged or moved")]
    Tampered(String),
}

/// The current key, which seals, and the previous ones, which only open (until start-up has
/// re-sealed everything under the current key).
#[derive(Clone)]
pub struct Keyring {
    current: SecretKey,
    previous: Vec<SecretKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Keyring(current {}, previous {:?})",
            self.current.id,
            self.previous_ids()
        )
    }
}

/// Whether a stored value is in the sealed format (else it is from before sealing: plain base64).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// The key id a sealed value names.
pub fn key_id_of(stored: &str) -> Option<&str> {
    stored
        .strip_prefix(PREFIX)?
        .split_once(':')
        .map(|(id, _)| id)
}

impl Keyring {
    pub fn new(current: SecretKey, previous: Vec<SecretKey>) -> Self {
        Self { current, previous }
    }

    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    pub fn previous_ids(&self) -> Vec<&str> {
        self.previous.iter().map(SecretKey::id).collect()
    }

    /// `plain` sealed under the current key, bound to `context`.
    pub fn seal(&self, context: &str, plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encrypting into a Vec cannot fail (the only error is a message beyond 256 GiB).
        let sealed = self
            .current
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .unwrap_or_else(|_| unreachable!("XChaCha20-Poly1305 encryption into a Vec"));
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", self.current.id, B64.encode(out))
    }

    /// Opens a value sealed under the current or a previous key for this `context`.
    pub fn open(&self, context: &str, stored: &str) -> Result<Vec<u8>, OpenError> {
        let rest = stored.strip_prefix(PREFIX).ok_or(OpenError::NotSealed)?;
        let (id, body) = rest.split_once(':').ok_or(OpenError::NotSealed)?;
        let mut candidates = std::iter::once(&self.current)
            .chain(&self.previous)
            .filter(|k| k.id == id)
            .peekable();
        if candidates.peek().is_none() {
            return Err(OpenError::UnknownKey(id.to_string()));
        }
        let tampered = || OpenError::Tampered(id.to_string());
        let bytes = B64.decode(body).map_err(|_| tampered())?;
        if bytes.len() < NONCE_LEN {
            return Err(tampered());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        candidates
            .find_map(|k| {
                k.cipher()
                    .decrypt(
                        XNonce::from_slice(nonce),
                        Payload {
                            msg: sealed,
                            aad: context.as_bytes(),
                        },
                    )
                    .ok()
            })
            .ok_or_else(tampered)
    }

    /// Whether a stored value is sealed under the current key (nothing to re-seal).
    pub fn is_current(&self, stored: &str) -> bool {
        key_id_of(stored) == Some(self.current.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> (Keyring, SecretKey) {
        let k = SecretKey::generate();
        (Keyring::new(k.clone(), vec![]), k)
    }

    #[test]
    fn a_sealed_value_opens_to_what_was_sealed_and_hides_it() {
        let (keys, k) = ring();
        let plain = b"the provider's shared secret, 32b";
        let sealed = keys.seal("ctx", plain);
        assert!(sealed.starts_with(&format!("v1:{}:", k.id())), "{sealed}");
        assert!(is_sealed(&sealed));
        assert_eq!(key_id_of(&sealed), Some(k.id()));
        assert!(keys.is_current(&sealed));
        assert!(!sealed.contains(&B64.encode(plain)));
        assert_eq!(keys.open("ctx", &sealed).as_deref(), Ok(&plain[..]));
        // A fresh nonce each time: the same secret never seals to the same text.
        assert_ne!(keys.seal("ctx", plain), sealed);
        assert_eq!(keys.open("ctx", &keys.seal("ctx", b"")), Ok(vec![]));
    }

    #[test]
    fn a_changed_or_moved_value_does_not_open() {
        let (keys, k) = ring();
        let sealed = keys.seal("connections.secret/1", b"secret");
        let tampered = Err(OpenError::Tampered(k.id().to_string()));
        // Moved to another row.
        assert_eq!(keys.open("connections.secret/2", &sealed), tampered);
        // Any byte of nonce, ciphertext or tag flipped.
        let body = sealed.rsplit_once(':').map(|(_, b)| b).unwrap_or_default();
        let raw = B64.decode(body).expect("base64");
        for i in [0, NONCE_LEN, raw.len() - 1] {
            let mut bad = raw.clone();
            bad[i] ^= 1;
            let forged = format!("v1:{}:{}", k.id(), B64.encode(&bad));
            assert_eq!(
                keys.open("connections.secret/1", &forged),
                tampered,
                "byte {i}"
            );
        }
        // Cut short, or not base64.
        let short = format!("v1:{}:{}", k.id(), B64.encode(&raw[..10]));
        assert_eq!(keys.open("connections.secret/1", &short), tampered);
        let junk = format!("v1:{}:not base64!", k.id());
        assert_eq!(keys.open("connections.secret/1", &junk), tampered);
        assert_eq!(
            keys.open("x", "c2VjcmV0"),
            Err(OpenError::NotSealed),
            "plain base64 from an older database"
        );
    }

    #[test]
    fn another_key_does_not_open_it_and_says_which_key_is_needed() {
        let (a, ka) = ring();
        let (b, _) = ring();
        let sealed = a.seal("ctx", b"secret");
        assert_eq!(
            b.open("ctx", &sealed),
            Err(OpenError::UnknownKey(ka.id().to_string()))
        );
        // A forged key id naming the wrong key: still refused, never garbage.
        let (b2, kb) = ring();
        let renamed = sealed.replacen(ka.id(), kb.id(), 1);
        assert_eq!(
            b2.open("ctx", &renamed),
            Err(OpenError::Tampered(kb.id().to_string()))
        );
    }

    #[test]
    fn after_rotation_old_values_open_and_new_ones_use_the_new_key() {
        let (a, ka) = ring();
        let old = a.seal("ctx", b"secret");
        let kb = SecretKey::generate();
        let rotated = Keyring::new(kb.clone(), vec![ka.clone()]);
        assert_eq!(rotated.open("ctx", &old), Ok(b"secret".to_vec()));
        assert!(!rotated.is_current(&old));
        let new = rotated.seal("ctx", b"secret");
        assert_eq!(key_id_of(&new), Some(kb.id()));
        assert!(rotated.is_current(&new));
        // The old key alone cannot read what the new key sealed.
        assert!(matches!(a.open("ctx", &new), Err(OpenError::UnknownKey(_))));
        assert_eq!(
            format!("{rotated:?}"),
            format!("Keyring(current {}, previous [\"{}\"])", kb.id(), ka.id())
        );
    }

    #[test]
    fn keys_are_read_as_hex_or_base64_of_32_bytes_and_never_printed() {
        let bytes: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        let hex = hex::encode(bytes);
        let from_hex = SecretKey::parse(&hex).expect("hex");
        let from_b64 = SecretKey::parse(&format!(" {}\n", B64.encode(bytes))).expect("base64");
        let unpadded = SecretKey::parse(&B64_NO_PAD.encode(bytes)).expect("unpadded");
        assert_eq!(from_hex.id(), from_b64.id());
        assert_eq!(from_hex.id(), unpadded.id());
        assert_eq!(from_hex.id().len(), 8);
        assert_eq!(from_hex.to_base64().as_str(), B64.encode(bytes));
        assert_ne!(from_hex.id(), SecretKey::generate().id());
        for bad in [
            "",
            "short",
            &hex[..62],
            &B64.encode([0u8; 31]),
            &format!("{hex}00"),
        ] {
            assert_eq!(SecretKey::parse(bad).err(), Some(MalformedKey), "{bad:?}");
        }
        let shown = format!("{from_hex:?}");
        assert_eq!(shown, format!("SecretKey(id {})", from_hex.id()));
        assert!(!shown.contains(&hex) && !shown.contains(&B64.encode(bytes)));
        assert!(!format!("{:?}", Keyring::new(from_hex, vec![])).contains(&hex));
    }
}

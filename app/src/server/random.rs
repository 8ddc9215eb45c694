//! Random values as lowercase hex (session tokens, nonces, owner tags), from the thread's CSPRNG.
use rand::RngCore;

/// `N` random bytes as `2 * N` lowercase hex digits.
pub fn hex_string<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_two_lowercase_hex_digits_per_byte_and_differs_each_time() {
        let a = hex_string::<16>();
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(a, hex_string::<16>());
        assert_eq!(hex_string::<8>().len(), 16);
    }
}

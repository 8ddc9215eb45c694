//! Where a sign-in may send the browser afterwards: only a path on this site.
//!
//! Browsers are lenient with `Location`: they drop tabs and newlines, read `\` as `/`, and take
//! `//host` as another site. So `next` is followed only when it is a plain same-site path, and
//! stays one however often it is percent-decoded (a proxy or a later redirect may decode it).

/// Longer values are refused (a path of our own is never this long).
pub const MAX_NEXT_LEN: usize = 2048;

/// `next` when it is a same-site path: starts with one `/` (not `//`), holds no control
/// character, whitespace or backslash, and still satisfies all that after percent-decoding,
/// once or repeatedly. Anything else: `None` (the caller goes to `/`).
pub fn safe_next(next: &str) -> Option<&str> {
    if next.len() > MAX_NEXT_LEN {
        return None;
    }
    let mut current = next.as_bytes().to_vec();
    // Each round removes at least one level of encoding; a handful covers any real path.
    for _ in 0..4 {
        if !plain_path(&current) {
            return None;
        }
        let decoded = percent_decode(&current);
        if decoded == current {
            return Some(next);
        }
        current = decoded;
    }
    // Still decoding after that many rounds: encoded on purpose, not a path of ours.
    None
}

/// A single leading `/`, then no control, whitespace or backslash byte.
fn plain_path(p: &[u8]) -> bool {
    p.first() == Some(&b'/')
        && p.get(1) != Some(&b'/')
        && !p
            .iter()
            .any(|&b| b.is_ascii_control() || b.is_ascii_whitespace() || b == b'\\' || b >= 0x80)
}

fn percent_decode(p: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        match (
            p[i],
            p.get(i + 1).copied().and_then(hex),
            p.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_site_paths_are_kept_as_they_are() {
        for ok in [
            "/",
            "/connections/1",
            "/connections/1?tab=history&after=3",
            "/guided-setup#step-2",
            "/search?q=a+b",
            "/a%2Fb",
        ] {
            assert_eq!(safe_next(ok), Some(ok), "{ok}");
        }
    }

    #[test]
    fn other_sites_and_what_browsers_read_as_them_are_refused() {
        for bad in [
            "",
            "connections",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/%09/evil.example",
            "/%2F%2Fevil.example",
            "/%2f/evil.example",
            "/%5Cevil.example",
            "/%0d%0aSet-Cookie:x=y",
            "/%252F%252Fevil.example",
            "/ /evil.example",
            "/%20/evil.example",
            "/\u{7f}",
            "/caf\u{e9}",
            "/%25252525252F",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
        assert_eq!(safe_next(&format!("/{}", "a".repeat(MAX_NEXT_LEN))), None);
        // The limit itself is still accepted.
        let longest = format!("/{}", "a".repeat(MAX_NEXT_LEN - 1));
        assert_eq!(safe_next(&longest), Some(longest.as_str()));
    }

    #[test]
    fn a_stray_percent_is_not_an_encoding() {
        assert_eq!(safe_next("/100%"), Some("/100%"));
        assert_eq!(safe_next("/%zz"), Some("/%zz"));
    }
}

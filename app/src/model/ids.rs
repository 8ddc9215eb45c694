//! Record ids as they arrive in a path (`/connections/{id}`): parsed once, at the edge.
use std::fmt;

/// A provider connection's id: a positive whole number. Anything else in its place (`abc`, `0`,
/// `-3`, `1.5`) names no connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(i64);

impl ConnectionId {
    pub fn parse(raw: &str) -> Option<Self> {
        // Digits only: `+5` and ` 5` are not how the app writes an id.
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        raw.parse::<i64>().ok().filter(|&n| n > 0).map(Self)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_whole_numbers_are_ids() {
        assert_eq!(ConnectionId::parse("1").map(ConnectionId::get), Some(1));
        assert_eq!(
            ConnectionId::parse("42").map(|c| c.to_string()),
            Some("42".into())
        );
        assert_eq!(
            ConnectionId::parse("9223372036854775807").map(ConnectionId::get),
            Some(i64::MAX)
        );
    }

    #[test]
    fn anything_else_names_no_connection() {
        for raw in [
            "",
            "0",
            "-3",
            "+5",
            " 5",
            "5 ",
            "1.5",
            "abc",
            "1e3",
            "0x10",
            "9223372036854775808",
        ] {
            assert_eq!(ConnectionId::parse(raw), None, "{raw:?}");
        }
    }
}

//! Timestamps on the wire and on screen, without chrono's strftime and parser in the browser.
//!
//! The server writes every `DateTime<Utc>` with chrono's own serde (RFC 3339, `Z`, a fraction
//! only when there is one: `2025-06-15T15:06:40.25Z`). The browser only ever reads what the
//! server wrote, so it parses exactly that shape by hand; chrono's general parser and its format
//! machinery (some 18 KB of the bundle) stay on the server. The server keeps chrono's parser, so
//! what it accepts is unchanged. Use on a field: `#[serde(with = "crate::model::time")]`, or
//! `time::option` (with `#[serde(default)]`) for an `Option`.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    t.serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    if let Some(t) = parse_utc(&s) {
        return Ok(t);
    }
    #[cfg(feature = "ssr")]
    return s.parse::<DateTime<Utc>>().map_err(serde::de::Error::custom);
    #[cfg(not(feature = "ssr"))]
    Err(serde::de::Error::custom(
        "expected a UTC timestamp such as 2025-06-15T15:06:40Z",
    ))
}

/// The same for an `Option<DateTime<Utc>>` (`null` is `None`).
pub mod option {
    use super::*;

    #[derive(Deserialize)]
    struct Wire(#[serde(deserialize_with = "super::deserialize")] DateTime<Utc>);

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        t.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Ok(Option::<Wire>::deserialize(d)?.map(|w| w.0))
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (also `+00:00`), the shape chrono's serde writes for UTC.
pub fn parse_utc(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let sep = |at: usize, c: u8| b.get(at) == Some(&c);
    if !(sep(4, b'-')
        && sep(7, b'-')
        && (sep(10, b'T') || sep(10, b't'))
        && sep(13, b':')
        && sep(16, b':'))
    {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 2)?, num(8, 2)?)?;
    let mut at = 19;
    let mut nanos = 0u32;
    if sep(at, b'.') {
        at += 1;
        let digits = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = num(at, digits)? * 10u32.pow(9 - digits as u32);
        at += digits;
    }
    if !matches!(&s[at..], "Z" | "z" | "+00:00") {
        return None;
    }
    let time = date.and_hms_nano_opt(num(11, 2)?, num(14, 2)?, num(17, 2)?, nanos)?;
    Some(time.and_utc())
}

/// `2025-06-15 15:06:40 UTC`: a moment as every screen shows it.
pub fn fmt_time(t: DateTime<Utc>) -> String {
    format!(
        "{:04}-{:02}-{:02} {} UTC",
        t.year(),
        t.month(),
        t.day(),
        fmt_clock(t)
    )
}

/// `15:06:40`: the time of day, for a log line.
pub fn fmt_clock(t: DateTime<Utc>) -> String {
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn samples() -> Vec<DateTime<Utc>> {
        let mut v = vec![Utc.timestamp_opt(0, 0).unwrap()];
        for (secs, nanos) in [
            (1_750_000_000, 0),
            (1_750_000_000, 250_000_000),
            (1_750_000_001, 123_456_000),
            (1_750_000_002, 123_456_789),
            (1_750_000_003, 1),
            (4_102_444_799, 999_999_999),
            (951_782_400, 0), // 2000-02-29
        ] {
            v.push(Utc.timestamp_opt(secs, nanos).unwrap());
        }
        v
    }

    #[test]
    fn reads_back_what_chrono_writes() {
        for t in samples() {
            let json = serde_json::to_string(&t).unwrap();
            let back = parse_utc(json.trim_matches('"'));
            assert_eq!(back, Some(t), "{json}");
        }
    }

    #[test]
    fn refuses_other_shapes() {
        for s in [
            "",
            "2025-06-15",
            "2025-06-15T15:06:40",
            "2025-06-15T15:06:40+02:00",
            "2025-06-15 15:06:40Z",
            "2025-02-30T15:06:40Z",
            "2025-06-15T25:06:40Z",
            "2025-06-15T15:06:40.Z",
            "2025-06-15T15:06:40.1234567890Z",
            "2025-06-15T15:06:40ZZ",
            "+2025-06-15T15:06:40Z",
        ] {
            assert_eq!(parse_utc(s), None, "{s}");
        }
    }

    #[test]
    fn fields_round_trip_through_the_serde_helpers() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct T {
            #[serde(with = "super")]
            at: DateTime<Utc>,
            #[serde(with = "super::option", default)]
            maybe: Option<DateTime<Utc>>,
        }
        for t in samples() {
            for maybe in [None, Some(t)] {
                let v = T { at: t, maybe };
                let json = serde_json::to_string(&v).unwrap();
                assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v, "{json}");
            }
        }
        let missing: T = serde_json::from_str(r#"{"at":"2025-06-15T15:06:40Z"}"#).unwrap();
        assert_eq!(missing.maybe, None);
        assert!(serde_json::from_str::<T>(r#"{"at":"yesterday"}"#).is_err());
    }

    #[test]
    fn shows_times_as_chrono_formatted_them() {
        for t in samples() {
            assert_eq!(fmt_time(t), t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
            assert_eq!(fmt_clock(t), t.format("%H:%M:%S").to_string());
        }
    }
}

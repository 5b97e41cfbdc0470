//! Date and time glue over `jiff`: timestamps as nanoseconds since the Unix epoch (an `i64`), parsed with
//! jiff's Temporal (RFC 3339) and `strtime` parsers.
//!
//! Only explicit offsets (`Z`, `±HH:MM`, `±HHMM`, `±HH`) are understood, no named zones (there is no time-zone
//! database); a timestamp without an offset is UTC. What jiff does not do is here: pinning RFC 3339 to its
//! `YYYY-MM-DD[T ]HH:MM:SS` layout (jiff's Temporal grammar also takes basic, minute-precision and six-digit-year
//! forms), fractions of a second with a `,` or more than nine digits, and unix numbers of unknown unit.

use jiff::civil::DateTime;
use jiff::fmt::strtime::{self, BrokenDownTime};
use jiff::fmt::temporal::Pieces;
use jiff::tz::Offset;
use jiff::Timestamp;
use std::borrow::Cow;

/// Length of `YYYY-MM-DDTHH:MM:SS`.
const RFC3339_HEAD: usize = 19;
/// Most fraction digits jiff reads: nanoseconds.
const MAX_FRACTION_DIGITS: usize = 9;

pub use sightline_model::now_ns;

/// Nanoseconds since the epoch of a civil date and time at `offset` east of UTC; `None` when the result
/// does not fit in an `i64` (before 1677 or after 2262).
pub fn to_ns(dt: DateTime, offset: Offset) -> Option<i64> {
    let ts = offset.to_timestamp(dt).ok()?;
    i64::try_from(ts.as_nanosecond()).ok()
}

/// The UTC year of a timestamp.
pub fn year_of(ts_ns: i64) -> Option<i16> {
    let ts = Timestamp::from_nanosecond(i128::from(ts_ns)).ok()?;
    Some(Offset::UTC.to_datetime(ts).year())
}

/// Parses a whole string as an RFC 3339 timestamp, surrounding whitespace ignored (see
/// [`parse_rfc3339_bytes`]).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    parse_rfc3339_bytes(s.trim().as_bytes())
}

/// Parses all of `b` as an RFC 3339 / ISO 8601 timestamp: `YYYY-MM-DD[Tt ]HH:MM:SS[.frac][zone]`, the fraction
/// with `.` or `,` (digits past the nanosecond dropped), the zone `Z` or a numeric offset (none = UTC).
pub fn parse_rfc3339_bytes(b: &[u8]) -> Option<i64> {
    let fixed =
        b.len() >= RFC3339_HEAD && b[4] == b'-' && b[7] == b'-' && b[13] == b':' && b[16] == b':';
    // `[…]` would be an RFC 9557 time zone annotation, which jiff accepts and a log timestamp is not.
    if !fixed || b.contains(&b'[') {
        return None;
    }
    let b = clip_fraction(b);
    let pieces = Pieces::parse(&*b).ok()?;
    let offset = match pieces.to_numeric_offset() {
        Some(o) => whole_minutes(o)?,
        None => Offset::UTC,
    };
    to_ns(pieces.date().to_datetime(pieces.time()?), offset)
}

/// An RFC 3339 timestamp at the start of `b` (see [`parse_rfc3339_bytes`]), ending at the first space after
/// its time of day or at the end of `b`: the time in ns and the number of bytes read.
pub fn parse_rfc3339_prefix(b: &[u8]) -> Option<(i64, usize)> {
    let end = b
        .iter()
        .skip(RFC3339_HEAD)
        .position(|&c| c == b' ')
        .map_or(b.len(), |i| RFC3339_HEAD + i);
    Some((parse_rfc3339_bytes(&b[..end])?, end))
}

/// Parses a prefix of `b` in the `strtime` `format`, which ends in `%H:%M:%S`, then an optional fraction of
/// a second (`.123` or `,123`, digits past the nanosecond dropped): the broken-down time and the number of
/// bytes read. The clock time must have two digits per field (`strtime` also takes one).
pub fn strptime_prefix(format: &str, b: &[u8]) -> Option<(BrokenDownTime, usize)> {
    let (mut tm, n) = BrokenDownTime::parse_prefix(format, b).ok()?;
    let clock = b.get(n.checked_sub(8)?..n)?;
    let two_digits = clock.iter().enumerate().all(|(i, c)| match i % 3 {
        2 => *c == b':',
        _ => c.is_ascii_digit(),
    });
    if !two_digits {
        return None;
    }
    let (nanos, k) = fraction(b.get(n..).unwrap_or_default());
    if k > 0 {
        tm.set_subsec_nanosecond(Some(nanos)).ok()?;
    }
    Some((tm, n + k))
}

/// A whole UTC offset: `Z`, `±HHMM` (`%z`) or `±HH[:MM]` (`%:::z`), under 24 hours.
pub fn parse_offset(b: &[u8]) -> Option<Offset> {
    if b.eq_ignore_ascii_case(b"z") {
        return Some(Offset::UTC);
    }
    ["%z", "%:::z"]
        .into_iter()
        .find_map(|f| strtime::parse(f, b).ok()?.offset())
        .and_then(whole_minutes)
}

/// `offset` if it is a whole number of minutes under 24 hours (jiff goes to ±25:59:59).
fn whole_minutes(offset: Offset) -> Option<Offset> {
    let s = offset.seconds();
    (s % 60 == 0 && s.abs() < 86_400).then_some(offset)
}

/// A unix timestamp of unknown unit, guessed by magnitude: below 10^11 seconds (until the year 5138),
/// below 10^14 milliseconds, below 10^17 microseconds, else nanoseconds. Negative, NaN and infinite
/// values are refused.
pub fn unix_number_to_ns(v: f64) -> Option<i64> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let ns = if v < 1e11 {
        v * 1e9
    } else if v < 1e14 {
        v * 1e6
    } else if v < 1e17 {
        v * 1e3
    } else {
        v
    };
    if ns >= 9.2e18 {
        return None;
    }
    Some(ns as i64)
}

/// Like [`unix_number_to_ns`] for integers, exactly.
pub fn unix_int_to_ns(v: i64) -> Option<i64> {
    if v < 0 {
        None
    } else if v < 100_000_000_000 {
        v.checked_mul(1_000_000_000)
    } else if v < 100_000_000_000_000 {
        v.checked_mul(1_000_000)
    } else if v < 100_000_000_000_000_000 {
        v.checked_mul(1_000)
    } else {
        Some(v)
    }
}

/// A `.123` or `,123` fraction of a second at the start of `b`, as nanoseconds (jiff's `%f`) and the number of
/// bytes read, `(0, 0)` when there is none. jiff's `%.f` takes neither `,` nor more than nine digits.
fn fraction(b: &[u8]) -> (i32, usize) {
    let digits = b.iter().skip(1).take_while(|c| c.is_ascii_digit()).count();
    if !matches!(b.first(), Some(b'.' | b',')) || digits == 0 {
        return (0, 0);
    }
    let nanos = strtime::parse("%f", &b[1..1 + digits.min(MAX_FRACTION_DIGITS)])
        .ok()
        .and_then(|tm| tm.subsec_nanosecond())
        .unwrap_or(0);
    (nanos, 1 + digits)
}

/// `b` without the fraction digits past the nanosecond of an RFC 3339 timestamp, which jiff refuses.
fn clip_fraction(b: &[u8]) -> Cow<'_, [u8]> {
    let start = RFC3339_HEAD + 1;
    if !matches!(b.get(RFC3339_HEAD), Some(b'.' | b',')) {
        return Cow::Borrowed(b);
    }
    let digits = b
        .iter()
        .skip(start)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits <= MAX_FRACTION_DIGITS {
        return Cow::Borrowed(b);
    }
    let keep = start + MAX_FRACTION_DIGITS;
    Cow::Owned([&b[..keep], &b[start + digits..]].concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn rfc3339_table() {
        fn check(input: &str, expected: Option<i64>) {
            assert_eq!(parse_rfc3339(input), expected, "{input:?}");
        }
        check("1970-01-01T00:00:00Z", Some(0));
        check("2003-10-11T22:14:15.003Z", Some(1_065_910_455_003_000_000));
        check(
            "2003-08-24T05:14:15.000003-07:00",
            Some(1_061_727_255_000_003_000),
        );
        check("2003-08-24T05:14:15-0700", Some(1_061_727_255_000_000_000));
        check("2003-10-11 22:14:15", Some(1_065_910_455_000_000_000));
        check(
            "2003-10-11t22:14:15.1234567891z",
            Some(1_065_910_455_123_456_789),
        );
        check("2003-13-11T22:14:15Z", None);
        check("2003-10-11T25:14:15Z", None);
        check("2003-10-11", None);
        check("2003-10-11T22:14:15Zjunk", None);
        check("", None);
        // Beyond the original table: what jiff alone would take or refuse.
        check("2003-10-11T22:14:15,5Z", Some(1_065_910_455_500_000_000));
        check("2003-08-24T05:14:15-07", Some(1_061_727_255_000_000_000));
        check(" 2003-10-11T22:14:15Z\n", Some(1_065_910_455_000_000_000));
        check("2003-02-29T00:00:00Z", None);
        check("2003-10-11T22:14:15.Z", None);
        check("2003-10-11T22:14:15+23:60", None);
        check("2003-10-11T22:14:15+24:00", None);
        check("2003-10-11T22:14:15+05:30:15", None);
        check("2003-10-11T22:14Z", None);
        check("2003-10-11T22Z", None);
        check("20031011T221415Z", None);
        check("+002003-10-11T22:14:15Z", None);
        check("2003-10-11T22:14:15Z[UTC]", None);
        check("1600-01-01T00:00:00Z", None);
        check("2003-10-11é22:14:15Z", None);
    }

    #[test]
    fn rfc3339_prefix() {
        let b = b"2003-10-11 22:14:15.5+01:00 host app: x";
        assert_eq!(
            parse_rfc3339_prefix(b),
            Some((1_065_906_855_500_000_000, 27))
        );
        assert_eq!(
            parse_rfc3339_prefix(b"2003-10-11T22:14:15Z"),
            Some((1_065_910_455_000_000_000, 20))
        );
        assert_eq!(parse_rfc3339_prefix(b"2003-10-11T22:14:15Zx y"), None);
        assert_eq!(parse_rfc3339_prefix(b"2003-10-11"), None);
    }

    #[test]
    fn strptime_with_fraction() {
        let (tm, n) = strptime_prefix("%b %e %H:%M:%S", b"Mar  1 18:46:11,1234567891 sw1").unwrap();
        assert_eq!(n, 26);
        assert_eq!(tm.subsec_nanosecond(), Some(123_456_789));
        let (tm, n) = strptime_prefix("%d/%b/%Y:%H:%M:%S", b"10/Oct/2000:13:55:36 -0700").unwrap();
        assert_eq!(n, 20);
        assert_eq!(
            tm.to_datetime().ok(),
            Some(date(2000, 10, 10).at(13, 55, 36, 0))
        );
        assert!(strptime_prefix("%b %e %H:%M:%S", b"Foo  1 18:46:11").is_none());
        assert!(strptime_prefix("%b %e %H:%M:%S", b"Mar  1 8:46:11").is_none());
        assert!(strptime_prefix("%b %e %H:%M:%S", b"Mar  1 18:46:1 x").is_none());
    }

    #[test]
    fn offsets() {
        let hours = |h: i8| Some(jiff::tz::offset(h));
        assert_eq!(parse_offset(b"Z"), hours(0));
        assert_eq!(parse_offset(b"z"), hours(0));
        assert_eq!(parse_offset(b"-0700"), hours(-7));
        assert_eq!(parse_offset(b"-07:00"), hours(-7));
        assert_eq!(parse_offset(b"+05"), hours(5));
        assert_eq!(parse_offset(b"+05:30").map(Offset::seconds), Some(19_800));
        assert_eq!(parse_offset(b""), None);
        assert_eq!(parse_offset(b"-07:0"), None);
        assert_eq!(parse_offset(b"+0700 "), None);
        assert_eq!(parse_offset(b"UTC"), None);
        assert_eq!(parse_offset(b"+2400"), None);
        assert_eq!(parse_offset(b"+053015"), None);
    }

    #[test]
    fn conversions() {
        let dt = date(2000, 3, 1).at(0, 0, 0, 0);
        assert_eq!(
            to_ns(dt, Offset::UTC),
            Some(11_017 * 86_400 * 1_000_000_000)
        );
        assert_eq!(to_ns(date(1600, 1, 1).at(0, 0, 0, 0), Offset::UTC), None);
        assert_eq!(year_of(0), Some(1970));
        assert_eq!(year_of(-1), Some(1969));
        assert_eq!(year_of(1_795_926_900_000_000_000), Some(2026));
        assert!(now_ns() > 1_700_000_000_000_000_000);
    }

    #[test]
    fn unix_numbers() {
        assert_eq!(
            unix_int_to_ns(1_700_000_000),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(
            unix_int_to_ns(1_700_000_000_123),
            Some(1_700_000_000_123_000_000)
        );
        assert_eq!(
            unix_int_to_ns(1_700_000_000_123_456),
            Some(1_700_000_000_123_456_000)
        );
        assert_eq!(
            unix_int_to_ns(1_700_000_000_123_456_789),
            Some(1_700_000_000_123_456_789)
        );
        assert_eq!(unix_int_to_ns(-1), None);
        assert_eq!(
            unix_number_to_ns(1_700_000_000.5),
            Some(1_700_000_000_500_000_000)
        );
        assert_eq!(unix_number_to_ns(f64::NAN), None);
        assert_eq!(unix_number_to_ns(1e30), None);
    }
}

//! DogStatsD datagram parser: a pure function from bytes to lines (metrics, events, service checks).
//!
//! Protocol v1.1–v1.6 (<https://docs.datadoghq.com/developers/dogstatsd/datagram_shell/>):
//! `<name>:<value>[:<value>…]|<c|g|ms|h|s|d>[|@<rate>][|#<tags>][|c:<container>][|T<unix s>]`, events
//! `_e{<tlen>,<xlen>}:<title>|<text>|d:|h:|k:|p:|s:|t:|#` and service checks `_sc|<name>|<0-3>|d:|h:|#|m:`.
//! Extension fields may come in any order; unknown ones (`|e:…`, `|card:…`) are ignored, as the Agent does.

use sightline_model::MAX_UNIX_SECS;
use sightline_model::{Event, EventPriority, ServiceCheck, TagError, TagSet};
use std::fmt;

/// Longest excerpt of the offending input quoted in an error message.
const MAX_QUOTE: usize = 120;

/// A DogStatsD metric type (the field after the first `|`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `c`
    Count,
    /// `g`
    Gauge,
    /// `ms`
    Timer,
    /// `h`
    Histogram,
    /// `s`
    Set,
    /// `d`
    Distribution,
}

impl MetricType {
    /// The wire spelling of this type.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Count => "c",
            MetricType::Gauge => "g",
            MetricType::Timer => "ms",
            MetricType::Histogram => "h",
            MetricType::Set => "s",
            MetricType::Distribution => "d",
        }
    }

    fn parse(s: &str) -> Option<MetricType> {
        Some(match s {
            "c" => MetricType::Count,
            "g" => MetricType::Gauge,
            "ms" => MetricType::Timer,
            "h" => MetricType::Histogram,
            "s" => MetricType::Set,
            "d" => MetricType::Distribution,
            _ => return None,
        })
    }
}

/// One value of a metric line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue<'a> {
    /// A number (counts, absolute gauges, timers, histograms, distributions).
    Number(f64),
    /// An Etsy-style gauge delta: `+N` or `-N` on a `g` line adds to the gauge's current value.
    GaugeDelta(f64),
    /// A set member: any string (the whole value field, colons included).
    Set(&'a str),
}

/// A parsed metric line, borrowing from the datagram.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricLine<'a> {
    pub name: &'a str,
    pub kind: MetricType,
    /// One or more values (several only with protocol v1.1 packing; sets always have one).
    pub values: Vec<MetricValue<'a>>,
    /// `@rate`, in (0, 1]; 1 when absent.
    pub sample_rate: f64,
    /// Raw tags from every `#` field, in order, not yet normalized (see [`MetricLine::tag_set`]).
    pub tags: Vec<&'a str>,
    /// `c:<container id>`.
    pub container_id: Option<&'a str>,
    /// `T<unix seconds>`: the point bypasses aggregation.
    pub timestamp: Option<i64>,
}

impl MetricLine<'_> {
    /// Normalizes the tags (plus `container_id:<id>` when given) into a tag set within the limits.
    pub fn tag_set(&self, max_tags: usize, max_tag_len: usize) -> Result<TagSet, ParseError> {
        let container = self
            .container_id
            .filter(|c| !c.is_empty())
            .map(|c| format!("container_id:{c}"));
        let raw = self.tags.iter().copied().chain(container.as_deref());
        TagSet::parse(raw, max_tags, max_tag_len)
            .map_err(|e| ParseError::from_tag_error(self.name, e))
    }
}

/// One line of a datagram.
#[derive(Debug, Clone, PartialEq)]
pub enum Line<'a> {
    Metric(MetricLine<'a>),
    Event(Event),
    ServiceCheck(ServiceCheck),
}

/// Why a line was refused. [`ParseError::reason`] is the `reason` label of
/// `sightline_statsd_parse_errors_total`; the message names the offending input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The line is not UTF-8.
    BadUtf8 { line: String },
    /// Neither a metric (`name:value|type`), an event nor a service check.
    BadFormat { line: String },
    /// Nothing before the first `:`.
    EmptyName { line: String },
    /// A value that is not a finite number (or an empty set member).
    BadValue { value: String, line: String },
    /// A type other than `c`, `g`, `ms`, `h`, `s`, `d`.
    BadType { kind: String, line: String },
    /// `@rate` that is not a number in (0, 1].
    BadSampleRate { rate: String, line: String },
    /// `T<ts>` that is not a positive integer.
    BadTimestamp { timestamp: String, line: String },
    /// `T<ts>` at or above 1e11 (year 5138 or later): not unix seconds, most likely milliseconds.
    /// Counted as `bad_timestamp`.
    TimestampTooLarge { timestamp: i64, line: String },
    /// A malformed `_e{…}` event.
    BadEvent { detail: String, line: String },
    /// A malformed `_sc|…` service check.
    BadServiceCheck { detail: String, line: String },
    /// More tags than `limits.max_tags_per_point`.
    TooManyTags {
        metric: String,
        count: usize,
        max: usize,
    },
    /// A tag longer than `limits.max_tag_length`.
    TagTooLong {
        metric: String,
        tag: String,
        len: usize,
        max: usize,
    },
    /// The datagram was longer than the receive buffer; its last, partial line was dropped.
    Truncated { max: usize },
}

impl ParseError {
    /// A short, stable label for counting errors by kind.
    pub fn reason(&self) -> &'static str {
        match self {
            ParseError::BadUtf8 { .. } => "bad_utf8",
            ParseError::BadFormat { .. } => "bad_format",
            ParseError::EmptyName { .. } => "empty_name",
            ParseError::BadValue { .. } => "bad_value",
            ParseError::BadType { .. } => "bad_type",
            ParseError::BadSampleRate { .. } => "bad_sample_rate",
            ParseError::BadTimestamp { .. } | ParseError::TimestampTooLarge { .. } => {
                "bad_timestamp"
            }
            ParseError::BadEvent { .. } => "bad_event",
            ParseError::BadServiceCheck { .. } => "bad_service_check",
            ParseError::TooManyTags { .. } => "too_many_tags",
            ParseError::TagTooLong { .. } => "tag_too_long",
            ParseError::Truncated { .. } => "truncated",
        }
    }

    /// Turns a tag-set error on metric `metric` into a parse error.
    pub fn from_tag_error(metric: &str, e: TagError) -> ParseError {
        match e {
            TagError::TooMany { count, max } => ParseError::TooManyTags {
                metric: quote(metric),
                count,
                max,
            },
            TagError::TooLong { tag, len, max } => ParseError::TagTooLong {
                metric: quote(metric),
                tag,
                len,
                max,
            },
            // `TagSet::parse` skips empty tags, so this is not reached; count it as a bad tag anyway.
            TagError::Empty => ParseError::TagTooLong {
                metric: quote(metric),
                tag: String::new(),
                len: 0,
                max: 0,
            },
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::BadUtf8 { line } => write!(f, "line {line:?} is not utf-8"),
            ParseError::BadFormat { line } => {
                write!(
                    f,
                    "malformed line {line:?}: expected <name>:<value>|<type>, _e{{…}} or _sc|…"
                )
            }
            ParseError::EmptyName { line } => write!(f, "empty metric name in line {line:?}"),
            ParseError::BadValue { value, line } => {
                write!(f, "bad value {value:?} in line {line:?}")
            }
            ParseError::BadType { kind, line } => {
                write!(
                    f,
                    "bad metric type {kind:?} in line {line:?}: expected c, g, ms, h, s or d"
                )
            }
            ParseError::BadSampleRate { rate, line } => {
                write!(
                    f,
                    "bad sample rate {rate:?} in line {line:?}: expected a number in (0, 1]"
                )
            }
            ParseError::BadTimestamp { timestamp, line } => {
                write!(
                    f,
                    "bad timestamp {timestamp:?} in line {line:?}: expected positive unix seconds"
                )
            }
            ParseError::TimestampTooLarge { timestamp, line } => {
                write!(
                    f,
                    "bad timestamp {timestamp} in line {line:?}: too large for unix seconds (it \
                     looks like milliseconds); expected seconds below {MAX_UNIX_SECS}"
                )
            }
            ParseError::BadEvent { detail, line } => write!(f, "bad event {line:?}: {detail}"),
            ParseError::BadServiceCheck { detail, line } => {
                write!(f, "bad service check {line:?}: {detail}")
            }
            ParseError::TooManyTags { metric, count, max } => {
                write!(
                    f,
                    "metric {metric:?}: {count} tags on one point; the limit is {max}"
                )
            }
            ParseError::TagTooLong {
                metric,
                tag,
                len,
                max,
            } => {
                write!(
                    f,
                    "metric {metric:?}: tag {tag:?} is {len} characters long; the limit is {max}"
                )
            }
            ParseError::Truncated { max } => {
                write!(
                    f,
                    "datagram longer than max_datagram_bytes ({max}); its last line was dropped"
                )
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// The start of `s`, cut at a character boundary, for quoting in messages.
fn quote(s: &str) -> String {
    if s.len() <= MAX_QUOTE {
        return s.to_string();
    }
    let mut end = MAX_QUOTE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn quote_bytes(b: &[u8]) -> String {
    quote(&String::from_utf8_lossy(&b[..b.len().min(MAX_QUOTE + 4)]))
}

/// Splits a datagram into lines (`\n`, a trailing `\r` removed, empty lines skipped) and parses each.
pub fn parse_datagram(datagram: &[u8]) -> impl Iterator<Item = Result<Line<'_>, ParseError>> {
    datagram_lines(datagram).map(parse_line)
}

/// The non-empty lines of a datagram (split at `\n`, a trailing `\r` removed).
pub fn datagram_lines(datagram: &[u8]) -> impl Iterator<Item = &[u8]> {
    datagram.split(|b| *b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        (!line.is_empty()).then_some(line)
    })
}

/// The common line `name:value|type[|@rate][|#tags][|c:container]` with one numeric value, read over bytes
/// without a UTF-8 pass or any allocation: the aggregator's fast path for series its cache already knows.
/// Everything else (packed values, sets, `T` timestamps, events, service checks, several `#` fields, other
/// fields, bad numbers) gives `None`, and the caller falls back to [`parse_line`], which accepts or refuses
/// the line exactly as before. Every byte this accepts is either validated here (value, rate) or part of a
/// cache key the full parser validated, so an accepted line is valid UTF-8.
pub(crate) fn parse_fast(line: &[u8]) -> Option<FastLine<'_>> {
    let colon = line.iter().position(|b| *b == b':')?;
    let (name, rest) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || name[0] == b'_' {
        return None;
    }
    let bar = rest.iter().position(|b| *b == b'|')?;
    let raw_value = &rest[..bar];
    let mut fields = rest[bar + 1..].split(|b| *b == b'|');
    let kind = match fields.next()? {
        b"c" => MetricType::Count,
        b"g" => MetricType::Gauge,
        b"ms" => MetricType::Timer,
        b"h" => MetricType::Histogram,
        b"d" => MetricType::Distribution,
        _ => return None,
    };
    let value: f64 = std::str::from_utf8(raw_value).ok()?.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    let delta = kind == MetricType::Gauge && matches!(raw_value.first(), Some(b'+' | b'-'));
    let mut out = FastLine {
        name,
        kind,
        value,
        delta,
        sample_rate: 1.0,
        tags: &[],
        container: &[],
    };
    let mut seen_tags = false;
    for f in fields {
        match f {
            [b'@', rate @ ..] => {
                let r: f64 = std::str::from_utf8(rate).ok()?.parse().ok()?;
                if !(r > 0.0 && r <= 1.0) {
                    return None;
                }
                out.sample_rate = r;
            }
            [b'#', tags @ ..] if !seen_tags => {
                seen_tags = true;
                out.tags = tags;
            }
            [b'c', b':', id @ ..] => out.container = id,
            _ => return None,
        }
    }
    Some(out)
}

/// A line read by [`parse_fast`]: raw series bytes (for the cache key) and the one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FastLine<'a> {
    pub name: &'a [u8],
    pub kind: MetricType,
    pub value: f64,
    /// A gauge value with a leading sign: an Etsy delta.
    pub delta: bool,
    pub sample_rate: f64,
    /// The raw `#` field, without the `#`.
    pub tags: &'a [u8],
    /// The raw `c:` field, without the `c:`.
    pub container: &'a [u8],
}

/// Parses one line (without its `\n`).
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::BadUtf8 {
        line: quote_bytes(line),
    })?;
    if line.starts_with("_e{") {
        parse_event(line).map(Line::Event)
    } else if line.starts_with("_sc|") {
        parse_service_check(line).map(Line::ServiceCheck)
    } else {
        parse_metric(line).map(Line::Metric)
    }
}

fn parse_number(raw: &str, line: &str) -> Result<f64, ParseError> {
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(ParseError::BadValue {
            value: quote(raw),
            line: quote(line),
        }),
    }
}

fn parse_metric(line: &str) -> Result<MetricLine<'_>, ParseError> {
    let mut fields = line.split('|');
    let name_value = fields.next().unwrap_or_default();
    let Some((name, raw_value)) = name_value.split_once(':') else {
        return Err(ParseError::BadFormat { line: quote(line) });
    };
    let Some(raw_kind) = fields.next() else {
        return Err(ParseError::BadFormat { line: quote(line) });
    };
    if name.is_empty() {
        return Err(ParseError::EmptyName { line: quote(line) });
    }
    let kind = MetricType::parse(raw_kind).ok_or_else(|| ParseError::BadType {
        kind: quote(raw_kind),
        line: quote(line),
    })?;

    let values = match kind {
        MetricType::Set if raw_value.is_empty() => {
            return Err(ParseError::BadValue {
                value: String::new(),
                line: quote(line),
            })
        }
        MetricType::Set => vec![MetricValue::Set(raw_value)],
        MetricType::Gauge => raw_value
            .split(':')
            .map(|v| {
                let n = parse_number(v, line)?;
                Ok(if v.starts_with(['+', '-']) {
                    MetricValue::GaugeDelta(n)
                } else {
                    MetricValue::Number(n)
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => raw_value
            .split(':')
            .map(|v| parse_number(v, line).map(MetricValue::Number))
            .collect::<Result<_, _>>()?,
    };

    let mut out = MetricLine {
        name,
        kind,
        values,
        sample_rate: 1.0,
        tags: Vec::new(),
        container_id: None,
        timestamp: None,
    };
    for field in fields {
        if let Some(rate) = field.strip_prefix('@') {
            out.sample_rate = match rate.parse::<f64>() {
                Ok(r) if r > 0.0 && r <= 1.0 => r,
                _ => {
                    return Err(ParseError::BadSampleRate {
                        rate: quote(rate),
                        line: quote(line),
                    })
                }
            };
        } else if let Some(tags) = field.strip_prefix('#') {
            out.tags.extend(tags.split(',').filter(|t| !t.is_empty()));
        } else if let Some(id) = field.strip_prefix("c:") {
            out.container_id = Some(id);
        } else if let Some(ts) = field.strip_prefix('T') {
            out.timestamp = match ts.parse::<i64>() {
                Ok(t) if t >= MAX_UNIX_SECS => {
                    return Err(ParseError::TimestampTooLarge {
                        timestamp: t,
                        line: quote(line),
                    })
                }
                Ok(t) if t > 0 => Some(t),
                _ => {
                    return Err(ParseError::BadTimestamp {
                        timestamp: quote(ts),
                        line: quote(line),
                    })
                }
            };
        }
        // Anything else (`e:` external data, `card:` cardinality, future fields) is ignored.
    }
    Ok(out)
}

/// Unescapes `\n` (a backslash and an `n`) into a newline.
fn unescape_newlines(s: &str) -> String {
    s.replace("\\n", "\n")
}

fn split_tags(raw: &str) -> impl Iterator<Item = String> + '_ {
    raw.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn parse_event(line: &str) -> Result<Event, ParseError> {
    let bad = |detail: String| ParseError::BadEvent {
        detail,
        line: quote(line),
    };
    // `_e{` is known to be there.
    let rest = &line[3..];
    let close = rest
        .find('}')
        .ok_or_else(|| bad("missing '}' after the lengths".into()))?;
    let (lens, rest) = (&rest[..close], &rest[close + 1..]);
    let (tlen, xlen) = lens
        .split_once(',')
        .ok_or_else(|| bad(format!("lengths {lens:?} are not <tlen>,<xlen>")))?;
    let tlen: usize = tlen
        .trim()
        .parse()
        .map_err(|_| bad(format!("title length {tlen:?} is not a number")))?;
    let xlen: usize = xlen
        .trim()
        .parse()
        .map_err(|_| bad(format!("text length {xlen:?} is not a number")))?;
    let rest = rest
        .strip_prefix(':')
        .ok_or_else(|| bad("missing ':' after the lengths".into()))?;
    if tlen == 0 {
        return Err(bad("empty title".into()));
    }
    let title = rest.get(..tlen).ok_or_else(|| {
        bad(format!(
            "title length {tlen} does not match the {} bytes that follow",
            rest.len()
        ))
    })?;
    let rest = rest[tlen..]
        .strip_prefix('|')
        .ok_or_else(|| bad(format!("no '|' after the {tlen}-byte title")))?;
    let text = rest.get(..xlen).ok_or_else(|| {
        bad(format!(
            "text length {xlen} does not match the {} bytes that follow",
            rest.len()
        ))
    })?;
    let rest = &rest[xlen..];
    if !rest.is_empty() && !rest.starts_with('|') {
        return Err(bad(format!("no '|' after the {xlen}-byte text")));
    }

    let mut ev = Event {
        title: title.to_string(),
        text: unescape_newlines(text),
        timestamp: None,
        hostname: None,
        aggregation_key: None,
        priority: None,
        source_type: None,
        alert_type: None,
        tags: Vec::new(),
    };
    for field in rest.split('|').skip(1) {
        if let Some(ts) = field.strip_prefix("d:") {
            ev.timestamp = Some(
                ts.parse()
                    .map_err(|_| bad(format!("timestamp {ts:?} is not unix seconds")))?,
            );
        } else if let Some(h) = field.strip_prefix("h:") {
            ev.hostname = Some(h.to_string());
        } else if let Some(k) = field.strip_prefix("k:") {
            ev.aggregation_key = Some(k.to_string());
        } else if let Some(p) = field.strip_prefix("p:") {
            ev.priority = Some(match p {
                "normal" => EventPriority::Normal,
                "low" => EventPriority::Low,
                _ => return Err(bad(format!("priority {p:?} is not low or normal"))),
            });
        } else if let Some(s) = field.strip_prefix("s:") {
            ev.source_type = Some(s.to_string());
        } else if let Some(t) = field.strip_prefix("t:") {
            if !matches!(t, "error" | "warning" | "info" | "success") {
                return Err(bad(format!(
                    "alert type {t:?} is not error, warning, info or success"
                )));
            }
            ev.alert_type = Some(t.to_string());
        } else if let Some(tags) = field.strip_prefix('#') {
            ev.tags.extend(split_tags(tags));
        }
    }
    Ok(ev)
}

fn parse_service_check(line: &str) -> Result<ServiceCheck, ParseError> {
    let bad = |detail: String| ParseError::BadServiceCheck {
        detail,
        line: quote(line),
    };
    // `_sc|<name>|<status>` then optional fields; the message (`m:`) must be the last one and may itself
    // contain '|'.
    let mut head = line.splitn(4, '|').skip(1);
    let name = head.next().unwrap_or_default();
    if name.is_empty() {
        return Err(bad("empty name".into()));
    }
    let status = head.next().ok_or_else(|| bad("missing status".into()))?;
    let optional = head.next().unwrap_or_default();
    let (optional, message) = match optional.strip_prefix("m:") {
        Some(m) => ("", Some(m)),
        None => match optional.find("|m:") {
            Some(i) => (&optional[..i], Some(&optional[i + 3..])),
            None => (optional, None),
        },
    };
    // Clients append metadata after the message (`|c:<container>`, `|card:<cardinality>`, `|e:<external>`):
    // those trailing fields are not part of it.
    let message = message.map(|mut m| {
        while let Some(i) = m.rfind('|') {
            let tail = &m[i + 1..];
            if ["c:", "card:", "e:"].iter().any(|p| tail.starts_with(p)) {
                m = &m[..i];
            } else {
                break;
            }
        }
        unescape_newlines(m)
    });
    let fields = optional.split('|');
    let status = match status {
        "0" | "1" | "2" | "3" => status.as_bytes()[0] - b'0',
        _ => return Err(bad(format!("status {status:?} is not 0, 1, 2 or 3"))),
    };
    let mut sc = ServiceCheck {
        name: name.to_string(),
        status,
        timestamp: None,
        hostname: None,
        message,
        tags: Vec::new(),
    };
    for field in fields {
        if let Some(ts) = field.strip_prefix("d:") {
            sc.timestamp = Some(
                ts.parse()
                    .map_err(|_| bad(format!("timestamp {ts:?} is not unix seconds")))?,
            );
        } else if let Some(h) = field.strip_prefix("h:") {
            sc.hostname = Some(h.to_string());
        } else if let Some(tags) = field.strip_prefix('#') {
            sc.tags.extend(split_tags(tags));
        }
    }
    Ok(sc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use MetricValue::{GaugeDelta, Number, Set};

    fn metric<'a>(name: &'a str, kind: MetricType, values: Vec<MetricValue<'a>>) -> Line<'a> {
        Line::Metric(MetricLine {
            name,
            kind,
            values,
            sample_rate: 1.0,
            tags: vec![],
            container_id: None,
            timestamp: None,
        })
    }

    fn with(line: Line<'_>, f: impl FnOnce(&mut MetricLine<'_>)) -> Line<'_> {
        let Line::Metric(mut m) = line else {
            panic!("not a metric")
        };
        f(&mut m);
        Line::Metric(m)
    }

    /// Parses `input` and compares with `expected`; for errors, compares the reason and checks the message
    /// is lower-case and quotes part of the input.
    fn check(input: &str, expected: Result<Line<'_>, &str>) {
        let got = parse_line(input.as_bytes());
        match (got, expected) {
            (Ok(g), Ok(e)) => assert_eq!(g, e, "input {input:?}"),
            (Err(g), Err(reason)) => {
                assert_eq!(g.reason(), reason, "input {input:?}: {g}");
                let msg = g.to_string();
                assert!(
                    msg.starts_with(|c: char| c.is_lowercase()),
                    "message {msg:?}"
                );
            }
            (g, e) => panic!("input {input:?}: got {g:?}, expected {e:?}"),
        }
    }

    fn event(title: &str, text: &str) -> Event {
        Event::new(title, text)
    }

    fn sc(name: &str, status: u8) -> ServiceCheck {
        ServiceCheck {
            name: name.into(),
            status,
            timestamp: None,
            hostname: None,
            message: None,
            tags: vec![],
        }
    }

    #[test]
    fn metric_table() {
        use MetricType::*;
        check(
            "page.views:1|c",
            Ok(metric("page.views", Count, vec![Number(1.0)])),
        );
        check("fuel:0.5|g", Ok(metric("fuel", Gauge, vec![Number(0.5)])));
        check(
            "fuel:+3|g",
            Ok(metric("fuel", Gauge, vec![GaugeDelta(3.0)])),
        );
        check(
            "fuel:-3.5|g",
            Ok(metric("fuel", Gauge, vec![GaugeDelta(-3.5)])),
        );
        check(
            "fuel:1:+2:-1|g",
            Ok(metric(
                "fuel",
                Gauge,
                vec![Number(1.0), GaugeDelta(2.0), GaugeDelta(-1.0)],
            )),
        );
        check("neg:-3|c", Ok(metric("neg", Count, vec![Number(-3.0)])));
        check("lat:320|ms", Ok(metric("lat", Timer, vec![Number(320.0)])));
        check(
            "lat:1:2:3|h",
            Ok(metric(
                "lat",
                Histogram,
                vec![Number(1.0), Number(2.0), Number(3.0)],
            )),
        );
        check(
            "size:1e3|d",
            Ok(metric("size", Distribution, vec![Number(1000.0)])),
        );
        check(
            "users:alice|s",
            Ok(metric("users", Set, vec![MetricValue::Set("alice")])),
        );
        check(
            "users:a:b|s",
            Ok(metric("users", Set, vec![MetricValue::Set("a:b")])),
        );
        check(
            "users:42|s",
            Ok(metric("users", Set, vec![MetricValue::Set("42")])),
        );
        check(
            "a.b:2|c|@0.5|#env:prod,bare|c:abc123|T1700000000",
            Ok(with(metric("a.b", Count, vec![Number(2.0)]), |m| {
                m.sample_rate = 0.5;
                m.tags = vec!["env:prod", "bare"];
                m.container_id = Some("abc123");
                m.timestamp = Some(1_700_000_000);
            })),
        );
        // Extension fields in any order; unknown ones ignored; several `#` fields append; empty tags skipped.
        check(
            "a:1|c|T17|e:it-false,cn-x|#a,,b|card:high|@1|#c|x",
            Ok(with(metric("a", Count, vec![Number(1.0)]), |m| {
                m.tags = vec!["a", "b", "c"];
                m.timestamp = Some(17);
            })),
        );
        check("a:1|c|", Ok(metric("a", Count, vec![Number(1.0)])));
    }

    #[test]
    fn metric_errors() {
        check("a:1", Err("bad_format"));
        check("a1|c", Err("bad_format"));
        check("just text", Err("bad_format"));
        check(":1|c", Err("empty_name"));
        check("a:|c", Err("bad_value"));
        check("a:x|c", Err("bad_value"));
        check("a:1::2|h", Err("bad_value"));
        check("a:NaN|g", Err("bad_value"));
        check("a:inf|d", Err("bad_value"));
        check("a:|s", Err("bad_value"));
        check("a:1|x", Err("bad_type"));
        check("a:1|", Err("bad_type"));
        check("a:1|C", Err("bad_type"));
        check("a:1|c|@", Err("bad_sample_rate"));
        check("a:1|c|@0", Err("bad_sample_rate"));
        check("a:1|c|@-0.5", Err("bad_sample_rate"));
        check("a:1|c|@1.5", Err("bad_sample_rate"));
        check("a:1|c|@x", Err("bad_sample_rate"));
        check("a:1|c|T", Err("bad_timestamp"));
        check("a:1|c|T-5", Err("bad_timestamp"));
        check("a:1|c|T12.5", Err("bad_timestamp"));
        // At or above 1e11 is not unix seconds (year 5138 or later): most likely milliseconds.
        check("a:1|c|T1700000000000", Err("bad_timestamp"));
        check("a:1|c|T100000000000", Err("bad_timestamp"));
        check("a:1|c|T9223372036854775807", Err("bad_timestamp"));
        check("a:1|c|T99999999999999999999", Err("bad_timestamp"));
        check(
            "a:1|c|T99999999999",
            Ok(with(
                metric("a", MetricType::Count, vec![Number(1.0)]),
                |m| {
                    m.timestamp = Some(99_999_999_999);
                },
            )),
        );
        let e = parse_line(b"a:1|c|T1700000000000").unwrap_err();
        assert_eq!(e.reason(), "bad_timestamp");
        let msg = e.to_string();
        assert!(msg.contains("1700000000000"), "{msg}");
        assert!(msg.contains("milliseconds"), "{msg}");
        let e = parse_line(b"a:1|zz").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad metric type \"zz\" in line \"a:1|zz\": expected c, g, ms, h, s or d"
        );
        let e = parse_line(b"a:\xff|c").unwrap_err();
        assert_eq!(e.reason(), "bad_utf8");
        assert!(e.to_string().contains("a:"), "{e}");
    }

    #[test]
    fn event_table() {
        check(
            "_e{5,4}:title|text",
            Ok(Line::Event(event("title", "text"))),
        );
        check("_e{5,0}:title|", Ok(Line::Event(event("title", ""))));
        check(
            "_e{3,7}:a|b|line\\n2",
            Ok(Line::Event(event("a|b", "line\n2"))),
        );
        // Lengths are bytes.
        check("_e{2,3}:é|日", Ok(Line::Event(event("é", "日"))));
        let full = Event {
            timestamp: Some(1_700_000_000),
            hostname: Some("web-1".into()),
            aggregation_key: Some("deploy".into()),
            priority: Some(EventPriority::Low),
            source_type: Some("jenkins".into()),
            alert_type: Some("warning".into()),
            tags: vec!["env:prod".into(), "team:x".into()],
            ..event("Deploy", "v2")
        };
        check(
            "_e{6,2}:Deploy|v2|d:1700000000|h:web-1|k:deploy|p:low|s:jenkins|t:warning|#env:prod,team:x|zz:ignored",
            Ok(Line::Event(full)),
        );
        check(
            "_e{1,1}:a|b|p:normal",
            Ok(Line::Event(Event {
                priority: Some(EventPriority::Normal),
                ..event("a", "b")
            })),
        );

        check("_e{5,4}:title|tex", Err("bad_event"));
        check("_e{9,4}:title|text", Err("bad_event"));
        check("_e{5,2}:title|text", Err("bad_event"));
        check("_e{0,4}:|text", Err("bad_event"));
        check("_e{5,4}title|text", Err("bad_event"));
        check("_e{x,4}:title|text", Err("bad_event"));
        check("_e{5}:title|text", Err("bad_event"));
        check("_e{5,4:title|text", Err("bad_event"));
        check("_e{1,2}:é|ab", Err("bad_event"));
        check("_e{1,1}:a|b|p:urgent", Err("bad_event"));
        check("_e{1,1}:a|b|t:fatal", Err("bad_event"));
        check("_e{1,1}:a|b|d:soon", Err("bad_event"));
    }

    #[test]
    fn service_check_table() {
        check("_sc|db.up|0", Ok(Line::ServiceCheck(sc("db.up", 0))));
        check("_sc|db.up|3|", Ok(Line::ServiceCheck(sc("db.up", 3))));
        check(
            "_sc|m:x|1|m:hi",
            Ok(Line::ServiceCheck(ServiceCheck {
                message: Some("hi".into()),
                ..sc("m:x", 1)
            })),
        );
        let full = ServiceCheck {
            timestamp: Some(1_700_000_000),
            hostname: Some("db-1".into()),
            message: Some("down | since\nnoon".into()),
            tags: vec!["env:prod".into(), "a".into()],
            ..sc("db.up", 2)
        };
        check(
            "_sc|db.up|2|d:1700000000|h:db-1|#env:prod,a|m:down | since\\nnoon",
            Ok(Line::ServiceCheck(full)),
        );
        // Metadata the datadog clients append after the message is not part of it.
        check(
            "_sc|db.up|1|m:slow|c:abc123|card:low",
            Ok(Line::ServiceCheck(ServiceCheck {
                message: Some("slow".into()),
                ..sc("db.up", 1)
            })),
        );
        check(
            "_sc|db.up|1|m:a|b|c:1",
            Ok(Line::ServiceCheck(ServiceCheck {
                message: Some("a|b".into()),
                ..sc("db.up", 1)
            })),
        );
        check("_sc||0", Err("bad_service_check"));
        check("_sc|db.up", Err("bad_service_check"));
        check("_sc|db.up|4", Err("bad_service_check"));
        check("_sc|db.up|ok", Err("bad_service_check"));
        check("_sc|db.up|0|d:x", Err("bad_service_check"));
    }

    #[test]
    fn datagram_lines() {
        let got: Vec<_> = parse_datagram(b"a:1|c\r\n\nb:x|c\n\n_sc|s|1\nc:2|g\n")
            .map(|r| r.map_err(|e| e.reason()))
            .collect();
        assert_eq!(
            got,
            vec![
                Ok(metric("a", MetricType::Count, vec![Number(1.0)])),
                Err("bad_value"),
                Ok(Line::ServiceCheck(sc("s", 1))),
                Ok(metric("c", MetricType::Gauge, vec![Number(2.0)])),
            ]
        );
        assert_eq!(parse_datagram(b"").count(), 0);
        assert_eq!(parse_datagram(b"\n\r\n").count(), 0);
    }

    #[test]
    fn tag_set_limits_and_container() {
        let Ok(Line::Metric(m)) = parse_line(b"a:1|c|#B:x,a|c:ctr") else {
            panic!()
        };
        let tags = m.tag_set(10, 200).unwrap();
        assert_eq!(tags.as_slice(), ["a", "b:x", "container_id:ctr"]);
        assert_eq!(m.tag_set(2, 200).unwrap_err().reason(), "too_many_tags");
        let e = m.tag_set(10, 3).unwrap_err();
        assert_eq!(e.reason(), "tag_too_long");
        assert!(e.to_string().starts_with("metric \"a\": tag"), "{e}");
    }

    #[test]
    fn long_input_is_quoted_briefly() {
        let line = format!("a:1|{}", "x".repeat(10_000));
        let e = parse_line(line.as_bytes()).unwrap_err();
        assert!(e.to_string().len() < 400, "{e}");
    }

    /// What the fast path read, as plain values for table tests.
    type Fast = (
        &'static str,
        MetricType,
        f64,
        bool,
        f64,
        &'static str,
        &'static str,
    );

    fn check_fast(input: &str, expected: Option<Fast>) {
        let got = parse_fast(input.as_bytes()).map(|f| {
            (
                String::from_utf8(f.name.to_vec()).unwrap(),
                f.kind,
                f.value,
                f.delta,
                f.sample_rate,
                String::from_utf8(f.tags.to_vec()).unwrap(),
                String::from_utf8(f.container.to_vec()).unwrap(),
            )
        });
        let want = expected
            .map(|(n, k, v, d, r, t, c)| (n.to_string(), k, v, d, r, t.to_string(), c.to_string()));
        assert_eq!(got, want, "input {input:?}");
    }

    #[test]
    fn fast_path_table() {
        use MetricType::*;
        check_fast("a.b:1|c", Some(("a.b", Count, 1.0, false, 1.0, "", "")));
        check_fast(
            "a:2.5|ms|@0.5|#x:1,y|c:abc",
            Some(("a", Timer, 2.5, false, 0.5, "x:1,y", "abc")),
        );
        check_fast("a:-3|g", Some(("a", Gauge, -3.0, true, 1.0, "", "")));
        check_fast("a:+3|g|#t", Some(("a", Gauge, 3.0, true, 1.0, "t", "")));
        check_fast("a:-3|c", Some(("a", Count, -3.0, false, 1.0, "", "")));
        check_fast(
            "a:1e3|d|c:|#k:v",
            Some(("a", Distribution, 1000.0, false, 1.0, "k:v", "")),
        );
        check_fast("a:1|h|@1", Some(("a", Histogram, 1.0, false, 1.0, "", "")));
        // Everything unusual goes to the full parser.
        for input in [
            "a:1:2|c",           // packed values
            "a:x|s",             // sets
            "a:1|c|T1700000000", // timestamps
            "a:1|c|#x|#y",       // several tag fields
            "a:1|c|e:ext",       // other fields
            "a:1|c|@0",          // bad rate
            "a:1|c|@2",          // bad rate
            "a:nan|c",           // not finite
            "a:inf|g",           // not finite
            "a:|c",              // no value
            "a:1|x",             // bad type
            "a:1",               // no type
            ":1|c",              // no name
            "_e{1,1}:a|b",       // event
            "_sc|a|0",           // service check
            "a|c:1",             // no name:value
            "a:\u{ff}|c",        // value not a number
        ] {
            check_fast(input, None);
        }
    }

    fn statsd_noise() -> impl Strategy<Value = String> {
        "[a-c_:|#@,.+\\-0-9eETn ]{0,24}"
    }

    proptest! {
        /// Whatever the fast path accepts, the full parser accepts with the same meaning: it may never
        /// change what a line says, only how fast it is read.
        #[test]
        fn fast_path_agrees_with_full_parser(
            line in prop_oneof![
                statsd_noise(),
                (name_strategy(), -1e6f64..1e6, "[cgd]|ms|h", proptest::option::of(0.01f64..=1.0),
                 proptest::collection::vec("[a-z][a-z0-9:]{0,6}", 0..3), proptest::option::of("[a-f0-9]{0,4}"))
                    .prop_map(|(n, v, k, r, t, c)| {
                        let mut l = format!("{n}:{v}|{k}");
                        if let Some(r) = r { l.push_str(&format!("|@{r}")); }
                        if !t.is_empty() { l.push_str(&format!("|#{}", t.join(","))); }
                        if let Some(c) = c { l.push_str(&format!("|c:{c}")); }
                        l
                    }),
            ]
        ) {
            if let Some(f) = parse_fast(line.as_bytes()) {
                let Ok(Line::Metric(m)) = parse_line(line.as_bytes()) else {
                    return Err(TestCaseError::fail(format!("fast path accepted {line:?}, full parser did not")));
                };
                prop_assert_eq!(m.name.as_bytes(), f.name);
                prop_assert_eq!(m.kind, f.kind);
                let v = if f.delta { GaugeDelta(f.value) } else { Number(f.value) };
                prop_assert_eq!(&m.values, &vec![v]);
                prop_assert_eq!(m.sample_rate, f.sample_rate);
                prop_assert_eq!(m.timestamp, None);
                prop_assert_eq!(m.container_id.unwrap_or("").as_bytes(), f.container);
                let fast_tags: Vec<&[u8]> = f.tags.split(|b| *b == b',').filter(|t| !t.is_empty()).collect();
                let full_tags: Vec<&[u8]> = m.tags.iter().map(|t| t.as_bytes()).collect();
                prop_assert_eq!(fast_tags, full_tags);
            }
        }
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        "[a-zA-Z_][a-zA-Z0-9_.]{0,30}".prop_filter("not an event or service check", |n| {
            !n.starts_with("_e") && !n.starts_with("_sc")
        })
    }

    fn kind_strategy() -> impl Strategy<Value = MetricType> {
        prop_oneof![
            Just(MetricType::Count),
            Just(MetricType::Gauge),
            Just(MetricType::Timer),
            Just(MetricType::Histogram),
            Just(MetricType::Set),
            Just(MetricType::Distribution),
        ]
    }

    proptest! {
        #[test]
        fn formatted_line_parses_back(
            name in name_strategy(),
            kind in kind_strategy(),
            nums in proptest::collection::vec((any::<bool>(), -1e9f64..1e9), 1..=3),
            set_value in "[^|\n\r]{1,20}",
            rate in proptest::option::of(0.001f64..=1.0),
            tags in proptest::collection::vec("[a-z][a-z0-9_.:/-]{0,15}", 0..4),
            container in proptest::option::of("[a-f0-9]{1,64}"),
            ts in proptest::option::of(1i64..4_000_000_000),
            order in Just(vec![0usize, 1, 2, 3]).prop_shuffle(),
        ) {
            let values: Vec<MetricValue<'_>> = match kind {
                MetricType::Set => vec![Set(&set_value)],
                MetricType::Gauge => nums.iter().map(|(delta, v)| if *delta { GaugeDelta(*v) } else { Number(v.abs()) }).collect(),
                _ => nums.iter().map(|(_, v)| Number(*v)).collect(),
            };
            let wire_values: Vec<String> = values.iter().map(|v| match v {
                Number(n) => format!("{n}"),
                GaugeDelta(n) if *n >= 0.0 && n.is_sign_positive() => format!("+{n}"),
                GaugeDelta(n) => format!("{n}"),
                Set(s) => s.to_string(),
            }).collect();
            let mut ext = [String::new(), String::new(), String::new(), String::new()];
            if let Some(r) = rate { ext[0] = format!("|@{r}"); }
            if !tags.is_empty() { ext[1] = format!("|#{}", tags.join(",")); }
            if let Some(c) = &container { ext[2] = format!("|c:{c}"); }
            if let Some(t) = ts { ext[3] = format!("|T{t}"); }
            let mut line = format!("{name}:{}|{}", wire_values.join(":"), kind.as_str());
            for i in order { line.push_str(&ext[i]); }

            let expected = Line::Metric(MetricLine {
                name: &name,
                kind,
                values,
                sample_rate: rate.unwrap_or(1.0),
                tags: tags.iter().map(String::as_str).collect(),
                container_id: container.as_deref(),
                timestamp: ts,
            });
            prop_assert_eq!(parse_line(line.as_bytes()).unwrap(), expected, "line {}", line);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for r in parse_datagram(&bytes) {
                if let Err(e) = r { let _ = (e.reason(), e.to_string()); }
            }
        }

        #[test]
        fn arbitrary_statsd_like_text_never_panics(s in "[_a-z0-9:|@#,.{}+\\-eTcsgdmh\n]{0,200}") {
            for r in parse_datagram(s.as_bytes()) {
                if let Err(e) = r { let _ = (e.reason(), e.to_string()); }
            }
        }
    }
}

//! One raw log line to a `LogRecord`, its format auto-detected: RFC 5424/3164 syslog, a JSON object, logfmt,
//! Common/Combined Log Format, else plain text. Pure and panic-free on any input; invalid UTF-8 is replaced.
//!
//! [`parse_line`] returns a [`ParsedLine`]: the record, plus `unparsed`, the format the line looked like
//! (`"syslog"`, `"json"`, `"logfmt"`, `"clf"`) when it failed to parse as such and was kept as plain text (message
//! = the whole line), so the caller can count it, and `truncated` when the line was cut at `max_line_bytes`
//! (the record then carries the tag `sightline.truncated:true`).
//!
//! Field mapping for JSON and logfmt ([`record_from_object`], also used by the Datadog logs intake), first
//! usable field wins and is moved out of the attributes:
//! message `message`, `msg`, `log`; status `status`, `level`, `severity`, `lvl`, `log.level`, `loglevel` (names,
//! syslog numbers 0–7, pino/bunyan numbers 10–60); timestamp `timestamp`, `@timestamp`, `time`, `ts`, `date` (RFC
//! 3339 strings or unix s/ms/µs/ns numbers, guessed by magnitude); `service`, `dd.service`; host `hostname`,
//! `host`, `host.name`; source `ddsource`, `source`; tags `ddtags` (comma-separated); `trace_id`,
//! `dd.trace_id`, `traceId`; `span_id`, `dd.span_id`, `spanId`. A dotted name is looked up as a flat key, then
//! as a path into nested objects (read, not moved). Every other field stays an attribute, nested as sent.

use super::syslog;
use super::time;
use jiff::tz::Offset;
use serde_json::{Map, Value as Json};
use sightline_model::{normalize_status, normalize_tag, LogRecord};
use std::borrow::Cow;

/// The tag put on records whose line was cut at `max_line_bytes`.
pub const TRUNCATED_TAG: &str = "sightline.truncated:true";
/// Longest tag kept, in characters (Datadog's limit); longer `ddtags` entries are cut.
const MAX_TAG_CHARS: usize = 200;

/// What [`parse_line`] made of a line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine {
    pub record: LogRecord,
    /// The format used: `"syslog"`, `"json"`, `"logfmt"`, `"clf"` or `"plain"`.
    pub format: &'static str,
    /// The format the line looked like but failed to parse as; the record is then plain text.
    pub unparsed: Option<&'static str>,
    /// The line was longer than `max_line_bytes` and was cut (the record is tagged [`TRUNCATED_TAG`]).
    pub truncated: bool,
}

/// Tags a record as truncated.
pub fn mark_truncated(r: &mut LogRecord) {
    if !r.tags.iter().any(|t| t == TRUNCATED_TAG) {
        r.tags.push(TRUNCATED_TAG.to_string());
        r.normalize_tags();
    }
}

/// Parses one line (a trailing CR, LF or NUL is ignored), auto-detecting its format. A line longer than
/// `max_line_bytes` keeps its first `max_line_bytes` bytes (cut at a character boundary) and is tagged.
/// Records without a timestamp of their own get `received_ns`.
pub fn parse_line(line: &[u8], received_ns: i64, max_line_bytes: usize) -> ParsedLine {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r' | 0) {
        end -= 1;
    }
    let mut line = &line[..end];
    let truncated = line.len() > max_line_bytes;
    if truncated {
        line = &line[..char_boundary(line, max_line_bytes)];
    }
    let mut parsed = detect(line, received_ns);
    parsed.truncated = truncated;
    if truncated {
        mark_truncated(&mut parsed.record);
    }
    parsed
}

/// The largest cut at most `max` bytes into `b` that does not split a UTF-8 sequence.
fn char_boundary(b: &[u8], max: usize) -> usize {
    let mut cut = max.min(b.len());
    let floor = cut.saturating_sub(3);
    while cut > floor && cut < b.len() && (b[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    if cut < b.len() && (b[cut] & 0xC0) == 0x80 {
        // Not UTF-8 anyway: cut where asked.
        return max.min(b.len());
    }
    cut
}

fn detect(line: &[u8], received_ns: i64) -> ParsedLine {
    let ok = |record, format| ParsedLine {
        record,
        format,
        unparsed: None,
        truncated: false,
    };
    if syslog::looks_like_syslog(line) {
        return match syslog::parse_syslog(line, received_ns) {
            Some(r) => ok(r, "syslog"),
            None => plain(line, received_ns, Some("syslog")),
        };
    }
    let text = String::from_utf8_lossy(line);
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        return match serde_json::from_str::<Map<String, Json>>(trimmed) {
            Ok(map) => ok(record_from_object(map, received_ns), "json"),
            Err(_) => plain_text(text, received_ns, Some("json")),
        };
    }
    if looks_like_clf(&text) {
        return match parse_clf(&text) {
            Some(r) => ok(r, "clf"),
            None => plain_text(text, received_ns, Some("clf")),
        };
    }
    match parse_logfmt(&text) {
        Logfmt::Pairs(map) => ok(record_from_object(map, received_ns), "logfmt"),
        Logfmt::Broken => plain_text(text, received_ns, Some("logfmt")),
        Logfmt::No => plain_text(text, received_ns, None),
    }
}

fn plain(line: &[u8], received_ns: i64, unparsed: Option<&'static str>) -> ParsedLine {
    plain_text(String::from_utf8_lossy(line), received_ns, unparsed)
}

/// A plain-text record: the whole line as message, status guessed from a leading level word.
fn plain_text(text: Cow<'_, str>, received_ns: i64, unparsed: Option<&'static str>) -> ParsedLine {
    let mut r = LogRecord::new(received_ns, text.into_owned());
    if let Some(s) = guess_level(&r.message) {
        r.status = s.to_string();
    }
    ParsedLine {
        record: r,
        format: "plain",
        unparsed,
        truncated: false,
    }
}

/// A level among the first words of a plain line: `ERROR …`, `[warn] …`, `level=debug …`,
/// `2024-01-01 12:00:00 WARN …`. Words starting with a digit (dates, times) are skipped; the first other
/// word decides.
fn guess_level(msg: &str) -> Option<&'static str> {
    for word in msg.split_ascii_whitespace().take(4) {
        let w = word
            .strip_prefix("level=")
            .or_else(|| word.strip_prefix("lvl="))
            .unwrap_or(word);
        let w = w.trim_matches(|c: char| {
            matches!(c, '[' | ']' | '(' | ')' | '<' | '>' | ':' | ',' | '"')
        });
        if w.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        if w.is_empty() || w.len() > 13 || !w.bytes().all(|c| c.is_ascii_alphabetic()) {
            return None;
        }
        return match normalize_status(w) {
            Some("ok") | None => None,
            s => s,
        };
    }
    None
}

/// The status of a numeric level: syslog severities 0–7, pino/bunyan levels 10–60.
fn status_from_number(n: f64) -> Option<&'static str> {
    if n.fract() != 0.0 {
        return None;
    }
    Some(match n as i64 {
        0 => "emergency",
        1 => "alert",
        2 => "critical",
        3 => "error",
        4 => "warning",
        5 => "notice",
        6 => "info",
        7 => "debug",
        10 | 20 => "debug",
        30 => "info",
        40 => "warning",
        50 => "error",
        60 => "critical",
        _ => return None,
    })
}

/// Looks `name` up as a flat key (moved out of `map`) or, when it is dotted, as a path into nested objects
/// (cloned, the nested value stays). Only values `accept` maps to `Some` count.
fn take_field<T>(
    map: &mut Map<String, Json>,
    name: &str,
    accept: impl Fn(&Json) -> Option<T>,
) -> Option<T> {
    if let Some(v) = map.get(name) {
        if let Some(t) = accept(v) {
            map.remove(name);
            return Some(t);
        }
    }
    if name.contains('.') {
        let mut parts = name.split('.');
        let mut cur = map.get(parts.next()?)?;
        for p in parts {
            cur = cur.as_object()?.get(p)?;
        }
        return accept(cur);
    }
    None
}

/// The first of `names` that [`take_field`] accepts.
fn take_first<T>(
    map: &mut Map<String, Json>,
    names: &[&str],
    accept: impl Fn(&Json) -> Option<T>,
) -> Option<T> {
    names.iter().find_map(|n| take_field(map, n, &accept))
}

fn non_empty_string(v: &Json) -> Option<String> {
    match v {
        Json::String(s) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn any_string(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Ids come as strings or (Datadog's decimal ids) numbers.
fn id_value(v: &Json) -> Option<String> {
    match v {
        Json::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn status_value(v: &Json) -> Option<&'static str> {
    match v {
        Json::String(s) => {
            normalize_status(s).or_else(|| s.trim().parse().ok().and_then(status_from_number))
        }
        Json::Number(n) => n.as_f64().and_then(status_from_number),
        _ => None,
    }
}

fn timestamp_value(v: &Json) -> Option<i64> {
    match v {
        Json::String(s) => time::parse_rfc3339(s).or_else(|| {
            let t = s.trim();
            match t.parse::<i64>() {
                Ok(i) => time::unix_int_to_ns(i),
                Err(_) => t.parse::<f64>().ok().and_then(time::unix_number_to_ns),
            }
        }),
        Json::Number(n) => match n.as_i64() {
            Some(i) => time::unix_int_to_ns(i),
            None => n.as_f64().and_then(time::unix_number_to_ns),
        },
        _ => None,
    }
}

/// Tags from a comma-separated string (or an array of strings), normalized; over-long ones are cut.
pub fn parse_tags(raw: &str, out: &mut Vec<String>) {
    for t in raw.split(',') {
        push_tag(t, out);
    }
}

fn push_tag(t: &str, out: &mut Vec<String>) {
    let t = t.trim();
    if t.is_empty() {
        return;
    }
    let cut: Cow<'_, str> = if t.chars().count() > MAX_TAG_CHARS {
        Cow::Owned(t.chars().take(MAX_TAG_CHARS).collect())
    } else {
        Cow::Borrowed(t)
    };
    if let Ok(tag) = normalize_tag(&cut, MAX_TAG_CHARS) {
        out.push(tag);
    }
}

/// Maps a JSON object (a JSON log line, logfmt pairs, a Datadog intake entry) onto a record with the fields
/// listed in the module documentation; the rest become attributes. `received_ns` when there is no usable
/// timestamp field.
pub fn record_from_object(mut map: Map<String, Json>, received_ns: i64) -> LogRecord {
    let mut r = LogRecord::new(received_ns, "");
    if let Some(m) = take_first(&mut map, &["message", "msg", "log"], any_string) {
        r.message = m;
    }
    if let Some(s) = take_first(
        &mut map,
        &[
            "status",
            "level",
            "severity",
            "lvl",
            "log.level",
            "loglevel",
        ],
        status_value,
    ) {
        r.status = s.to_string();
    }
    if let Some(ts) = take_first(
        &mut map,
        &["timestamp", "@timestamp", "time", "ts", "date"],
        timestamp_value,
    ) {
        r.ts_ns = ts;
    }
    r.service = take_first(&mut map, &["service", "dd.service"], non_empty_string);
    r.host = take_first(
        &mut map,
        &["hostname", "host", "host.name"],
        non_empty_string,
    );
    r.source = take_first(&mut map, &["ddsource", "source"], non_empty_string);
    r.trace_id = take_first(&mut map, &["trace_id", "dd.trace_id", "traceId"], id_value);
    r.span_id = take_first(&mut map, &["span_id", "dd.span_id", "spanId"], id_value);
    match map.remove("ddtags") {
        Some(Json::String(s)) => parse_tags(&s, &mut r.tags),
        Some(Json::Array(a)) => {
            for t in &a {
                match t.as_str() {
                    Some(s) => push_tag(s, &mut r.tags),
                    None => {
                        map.insert("ddtags".into(), Json::Array(a));
                        break;
                    }
                }
            }
        }
        Some(other) => {
            map.insert("ddtags".into(), other);
        }
        None => {}
    }
    r.normalize_tags();
    r.attributes = map;
    r
}

/// Whether a line starts like a Common Log Format line: three words, then `[dd/`.
fn looks_like_clf(s: &str) -> bool {
    let b = s.as_bytes();
    let mut pos = 0;
    for _ in 0..3 {
        let n = b[pos..].iter().position(|&c| c == b' ').unwrap_or(0);
        if n == 0 {
            return false;
        }
        pos += n + 1;
    }
    b.get(pos..pos + 4).is_some_and(|w| {
        w[0] == b'[' && w[1].is_ascii_digit() && w[2].is_ascii_digit() && w[3] == b'/'
    })
}

/// A Common or Combined Log Format line:
/// `host ident user [dd/Mon/yyyy:hh:mm:ss ±zzzz] "METHOD url VERSION" status bytes ["referer" "agent"]`.
fn parse_clf(s: &str) -> Option<LogRecord> {
    let mut rest = s;
    let mut word = || -> Option<&str> {
        let (w, r) = rest.split_once(' ')?;
        rest = r;
        Some(w)
    };
    let client = word()?;
    let ident = word()?;
    let user = word()?;
    let (date, after) = rest.strip_prefix('[')?.split_once(']')?;
    let ts_ns = clf_date(date)?;
    let (request, after) = quoted(after.strip_prefix(' ')?)?;
    let mut fields = after.strip_prefix(' ')?.splitn(3, ' ');
    let status = fields.next()?;
    let bytes = fields.next()?;
    let tail = fields.next().unwrap_or("");
    let status_code: Option<u16> = match status {
        "-" => None,
        s if s.len() == 3 && s.bytes().all(|c| c.is_ascii_digit()) => s.parse().ok(),
        _ => return None,
    };
    let bytes: Option<u64> = match bytes {
        "-" => None,
        b => Some(b.parse().ok()?),
    };
    // Combined: two more quoted fields; anything after them (response times …) is ignored.
    let (referer, agent) = match quoted(tail) {
        Some((referer, after)) => match after.strip_prefix(' ').and_then(quoted) {
            Some((agent, _)) => (Some(referer), Some(agent)),
            None => (Some(referer), None),
        },
        None => (None, None),
    };

    let mut http = Map::new();
    let mut parts = request.split(' ').filter(|p| !p.is_empty());
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(u), v, None) if m.bytes().all(|c| c.is_ascii_uppercase()) => {
            http.insert("method".into(), Json::from(m));
            http.insert("url".into(), Json::from(u));
            if let Some(v) = v {
                http.insert(
                    "version".into(),
                    Json::from(v.strip_prefix("HTTP/").unwrap_or(v)),
                );
            }
        }
        _ if request != "-" && !request.is_empty() => {
            http.insert("request".into(), Json::from(request.as_str()));
        }
        _ => {}
    }
    if let Some(code) = status_code {
        http.insert("status_code".into(), Json::from(code));
    }
    if ident != "-" {
        http.insert("ident".into(), Json::from(ident));
    }
    if user != "-" {
        http.insert("auth".into(), Json::from(user));
    }
    if let Some(r) = referer.filter(|r| r != "-" && !r.is_empty()) {
        http.insert("referer".into(), Json::from(r));
    }
    if let Some(a) = agent.filter(|a| a != "-" && !a.is_empty()) {
        http.insert("useragent".into(), Json::from(a));
    }
    let mut network = Map::new();
    network.insert("client".into(), serde_json::json!({ "ip": client }));
    if let Some(b) = bytes {
        network.insert("bytes_written".into(), Json::from(b));
    }

    let mut r = LogRecord::new(ts_ns, s);
    r.status = match status_code {
        Some(500..=599) => "error",
        Some(400..=499) => "warning",
        _ => "info",
    }
    .to_string();
    r.attributes.insert("http".into(), Json::Object(http));
    r.attributes.insert("network".into(), Json::Object(network));
    Some(r)
}

/// `10/Oct/2000:13:55:36 -0700` (no zone = UTC).
fn clf_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    // `%d` also takes one digit.
    (b.get(2) == Some(&b'/')).then_some(())?;
    let (tm, n) = time::strptime_prefix("%d/%b/%Y:%H:%M:%S", b)?;
    let offset = match b.get(n..)? {
        [] => Offset::UTC,
        [b' ', zone @ ..] => time::parse_offset(zone)?,
        _ => return None,
    };
    time::to_ns(tm.to_datetime().ok()?, offset)
}

/// A `"…"` string at the start of `s` (backslash escapes `\"` and `\\` undone): its content and the rest.
fn quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => out.push(e),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, o)) => {
                    out.push('\\');
                    out.push(o);
                }
                None => return None,
            },
            '"' => return Some((out, &body[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// What [`parse_logfmt`] found.
enum Logfmt {
    /// At least two `key=value` pairs and nothing else.
    Pairs(Map<String, Json>),
    /// Started like logfmt (two pairs, or a pair and an unterminated quote) but then failed.
    Broken,
    /// Not logfmt.
    No,
}

/// `key=value key2="quoted value" …`: every word must be a pair, at least two of them. Unquoted values that
/// are JSON numbers become numbers; the rest are strings.
fn parse_logfmt(s: &str) -> Logfmt {
    let mut map = Map::new();
    let mut pairs = 0;
    let mut rest = s.trim();
    let broken = |pairs: usize| {
        if pairs >= 2 {
            Logfmt::Broken
        } else {
            Logfmt::No
        }
    };
    while !rest.is_empty() {
        let key_len = rest
            .find(|c: char| c == '=' || c == '"' || c.is_whitespace())
            .unwrap_or(rest.len());
        if key_len == 0 || !rest[key_len..].starts_with('=') {
            return broken(pairs);
        }
        let key = &rest[..key_len];
        rest = &rest[key_len + 1..];
        let value = if rest.starts_with('"') {
            match quoted(rest) {
                Some((v, after)) => {
                    rest = after;
                    Json::String(v)
                }
                None => {
                    return if pairs >= 1 {
                        Logfmt::Broken
                    } else {
                        Logfmt::No
                    }
                }
            }
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let v = &rest[..end];
            rest = &rest[end..];
            if v.contains('"') {
                return broken(pairs);
            }
            match serde_json::from_str::<serde_json::Number>(v) {
                Ok(n) if !v.is_empty() => Json::Number(n),
                _ => Json::String(v.to_string()),
            }
        };
        if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
            return broken(pairs);
        }
        rest = rest.trim_start();
        map.insert(key.to_string(), value);
        pairs += 1;
    }
    if pairs >= 2 {
        Logfmt::Pairs(map)
    } else {
        Logfmt::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000_000_000;

    /// What a test expects of a parsed line; `attributes` is compared whole.
    struct Want {
        format: &'static str,
        unparsed: Option<&'static str>,
        ts_ns: i64,
        status: &'static str,
        message: &'static str,
        service: Option<&'static str>,
        host: Option<&'static str>,
        source: Option<&'static str>,
        tags: &'static [&'static str],
        attributes: Json,
        trace: (Option<&'static str>, Option<&'static str>),
    }

    impl Default for Want {
        fn default() -> Self {
            Want {
                format: "plain",
                unparsed: None,
                ts_ns: NOW,
                status: "info",
                message: "",
                service: None,
                host: None,
                source: None,
                tags: &[],
                attributes: json!({}),
                trace: (None, None),
            }
        }
    }

    fn check_max(input: &[u8], max: usize, w: Want) {
        let name = String::from_utf8_lossy(input);
        let p = parse_line(input, NOW, max);
        let r = &p.record;
        assert_eq!(p.format, w.format, "format of {name:?}");
        assert_eq!(p.unparsed, w.unparsed, "unparsed of {name:?}");
        assert_eq!(r.message, w.message, "message of {name:?}");
        assert_eq!(r.ts_ns, w.ts_ns, "timestamp of {name:?}");
        assert_eq!(r.status, w.status, "status of {name:?}");
        assert_eq!(r.service.as_deref(), w.service, "service of {name:?}");
        assert_eq!(r.host.as_deref(), w.host, "host of {name:?}");
        assert_eq!(r.source.as_deref(), w.source, "source of {name:?}");
        assert_eq!(r.tags, w.tags, "tags of {name:?}");
        assert_eq!(
            Json::Object(r.attributes.clone()),
            w.attributes,
            "attributes of {name:?}"
        );
        assert_eq!(
            (r.trace_id.as_deref(), r.span_id.as_deref()),
            w.trace,
            "ids of {name:?}"
        );
        assert_eq!(
            p.truncated,
            r.tags.iter().any(|t| t == TRUNCATED_TAG),
            "{name:?}"
        );
    }

    fn check(input: &[u8], w: Want) {
        check_max(input, 256 * 1024, w)
    }

    fn ts(s: &str) -> i64 {
        time::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn detect_table() {
        // JSON, nested attributes kept, reserved fields mapped.
        check(
            br#"{"message":"payment failed","level":"ERROR","timestamp":"2023-11-14T22:13:20.5Z","service":"billing","host":"web-1","ddsource":"java","ddtags":"env:Prod, Team:pay,,solo","dd":{"trace_id":"123","span_id":456},"http":{"status_code":502,"url":"/pay"},"user":{"id":7}}"#,
            Want {
                format: "json",
                ts_ns: ts("2023-11-14T22:13:20.5Z"),
                status: "error",
                message: "payment failed",
                service: Some("billing"),
                host: Some("web-1"),
                source: Some("java"),
                tags: &["env:Prod", "solo", "team:pay"],
                attributes: json!({"dd": {"trace_id": "123", "span_id": 456},
                    "http": {"status_code": 502, "url": "/pay"}, "user": {"id": 7}}),
                trace: (Some("123"), Some("456")),
                ..Want::default()
            },
        );
        // JSON with msg/lvl/ts in unix ms, flat dotted ids, leading spaces, CRLF.
        check(
            b"  {\"msg\":\"hi\",\"lvl\":\"warn\",\"ts\":1700000001234,\"dd.trace_id\":99,\"hostname\":\"h\",\"count\":3}\r\n",
            Want {
                format: "json",
                ts_ns: 1_700_000_001_234_000_000,
                status: "warning",
                message: "hi",
                host: Some("h"),
                attributes: json!({"count": 3}),
                trace: (Some("99"), None),
                ..Want::default()
            },
        );
        // pino: numeric level, time in ms, `log` as message alternative not needed.
        check(
            br#"{"level":50,"time":1700000000000,"pid":1,"hostname":"box","msg":"boom"}"#,
            Want {
                format: "json",
                status: "error",
                message: "boom",
                host: Some("box"),
                attributes: json!({"pid": 1}),
                ..Want::default()
            },
        );
        // ECS-style: @timestamp, log.level flat key, host.name nested (read, left in place), unix seconds as
        // a float string elsewhere is an ordinary attribute.
        check(
            br#"{"@timestamp":"2023-11-14T23:13:20+01:00","log.level":"debug","log":"x","host":{"name":"n1"},"status":200}"#,
            Want {
                format: "json",
                status: "debug",
                message: "x",
                host: Some("n1"),
                attributes: json!({"host": {"name": "n1"}, "status": 200}),
                ..Want::default()
            },
        );
        // Unrecognised level and timestamp stay attributes; message not a string stays an attribute.
        check(
            br#"{"message":{"a":1},"level":"verbose","time":"yesterday","ts":1700000000.5}"#,
            Want {
                format: "json",
                ts_ns: 1_700_000_000_500_000_000,
                attributes: json!({"message": {"a": 1}, "level": "verbose", "time": "yesterday"}),
                ..Want::default()
            },
        );
        // Broken JSON is kept as plain text and reported.
        check(
            br#"{"message":"unterminated"#,
            Want {
                unparsed: Some("json"),
                message: r#"{"message":"unterminated"#,
                ..Want::default()
            },
        );
        check(
            br#"{"a":1} trailing"#,
            Want {
                unparsed: Some("json"),
                message: r#"{"a":1} trailing"#,
                ..Want::default()
            },
        );
        // logfmt: quoted values, numbers, escapes.
        check(
            br#"time=2023-11-14T22:13:21Z level=warn msg="disk \"sda\" almost full" used=0.93 count=12 host=db-2 path=/var"#,
            Want {
                format: "logfmt",
                ts_ns: ts("2023-11-14T22:13:21Z"),
                status: "warning",
                message: r#"disk "sda" almost full"#,
                host: Some("db-2"),
                attributes: json!({"used": 0.93, "count": 12, "path": "/var"}),
                ..Want::default()
            },
        );
        check(
            b"service=api trace_id=abc empty= code=007",
            Want {
                format: "logfmt",
                service: Some("api"),
                attributes: json!({"empty": "", "code": "007"}),
                trace: (Some("abc"), None),
                ..Want::default()
            },
        );
        // One pair is not logfmt: plain text, level guessed from `level=`.
        check(
            b"level=error something broke",
            Want {
                status: "error",
                message: "level=error something broke",
                ..Want::default()
            },
        );
        // Two pairs then a bare word: looked like logfmt.
        check(
            b"a=1 b=2 oops",
            Want {
                unparsed: Some("logfmt"),
                message: "a=1 b=2 oops",
                ..Want::default()
            },
        );
        check(
            b"a=1 msg=\"never closed",
            Want {
                unparsed: Some("logfmt"),
                message: "a=1 msg=\"never closed",
                ..Want::default()
            },
        );
        // Common Log Format.
        check(
            br#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
            Want {
                format: "clf",
                ts_ns: ts("2000-10-10T20:55:36Z"),
                message: r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
                attributes: json!({
                    "http": {"method": "GET", "url": "/apache_pb.gif", "version": "1.0", "status_code": 200, "auth": "frank"},
                    "network": {"client": {"ip": "127.0.0.1"}, "bytes_written": 2326}
                }),
                ..Want::default()
            },
        );
        // Combined Log Format, 5xx, escaped quote in the agent, extra trailing field.
        check(
            br#"10.0.0.5 - - [01/Jan/2024:00:00:00 +0000] "POST /api/v1/pay?x=1 HTTP/1.1" 503 - "https://shop/" "curl/8.0 \"x\"" 0.012"#,
            Want {
                format: "clf",
                ts_ns: ts("2024-01-01T00:00:00Z"),
                status: "error",
                message: r#"10.0.0.5 - - [01/Jan/2024:00:00:00 +0000] "POST /api/v1/pay?x=1 HTTP/1.1" 503 - "https://shop/" "curl/8.0 \"x\"" 0.012"#,
                attributes: json!({
                    "http": {"method": "POST", "url": "/api/v1/pay?x=1", "version": "1.1", "status_code": 503,
                        "referer": "https://shop/", "useragent": "curl/8.0 \"x\""},
                    "network": {"client": {"ip": "10.0.0.5"}}
                }),
                ..Want::default()
            },
        );
        check(
            br#"::1 id - [10/Oct/2000:13:55:36 +0000] "-" 404 0 "-" "-""#,
            Want {
                format: "clf",
                ts_ns: ts("2000-10-10T13:55:36Z"),
                status: "warning",
                message: r#"::1 id - [10/Oct/2000:13:55:36 +0000] "-" 404 0 "-" "-""#,
                attributes: json!({
                    "http": {"status_code": 404, "ident": "id"},
                    "network": {"client": {"ip": "::1"}, "bytes_written": 0}
                }),
                ..Want::default()
            },
        );
        // Looks like CLF, bad date.
        check(
            br#"1.2.3.4 - - [99/Foo/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1"#,
            Want {
                unparsed: Some("clf"),
                message: r#"1.2.3.4 - - [99/Foo/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1"#,
                ..Want::default()
            },
        );
        // Syslog goes to the syslog parser; broken RFC 5424 is kept as plain text.
        check(
            b"<11>Nov 14 22:13:20 web nginx[3]: upstream timed out",
            Want {
                format: "syslog",
                ts_ns: ts("2023-11-14T22:13:20Z"),
                status: "error",
                message: "upstream timed out",
                service: Some("nginx"),
                host: Some("web"),
                source: Some("syslog"),
                attributes: json!({"syslog": {"facility": 1, "severity": 3, "appname": "nginx", "procid": "3"}}),
                ..Want::default()
            },
        );
        check(
            b"<11>1 2023-99-14T22:13:20Z web nginx - - - x",
            Want {
                unparsed: Some("syslog"),
                message: "<11>1 2023-99-14T22:13:20Z web nginx - - - x",
                ..Want::default()
            },
        );
        // Plain text with level words.
        check(
            b"ERROR: connection refused",
            Want {
                status: "error",
                message: "ERROR: connection refused",
                ..Want::default()
            },
        );
        check(
            b"2024-01-01 12:00:00,123 [warn] pool exhausted",
            Want {
                status: "warning",
                message: "2024-01-01 12:00:00,123 [warn] pool exhausted",
                ..Want::default()
            },
        );
        check(
            b"ok then, starting up",
            Want {
                message: "ok then, starting up",
                ..Want::default()
            },
        );
        check(
            b"Starting up the [server] now",
            Want {
                message: "Starting up the [server] now",
                ..Want::default()
            },
        );
        check(b"", Want::default());
        // Invalid UTF-8 is replaced.
        check(
            b"bad \xff\xfe bytes",
            Want {
                message: "bad \u{FFFD}\u{FFFD} bytes",
                ..Want::default()
            },
        );
        // Truncation: cut at max bytes, not inside a character, tagged; JSON cut short is plain text.
        check_max(
            "warn héllo world".as_bytes(),
            7,
            Want {
                status: "warning",
                message: "warn h",
                tags: &[TRUNCATED_TAG],
                ..Want::default()
            },
        );
        check_max(
            br#"{"message":"a long message"}"#,
            10,
            Want {
                unparsed: Some("json"),
                message: r#"{"message""#,
                tags: &[TRUNCATED_TAG],
                ..Want::default()
            },
        );
        check_max(
            b"0123456789\n",
            10,
            Want {
                message: "0123456789",
                ..Want::default()
            },
        );
    }

    #[test]
    fn truncation_keeps_existing_tags() {
        let p = parse_line(br#"{"ddtags":"z:1,a","message":"0123456789"}"#, NOW, 1000);
        let mut r = p.record;
        mark_truncated(&mut r);
        mark_truncated(&mut r);
        assert_eq!(r.tags, vec!["a", TRUNCATED_TAG, "z:1"]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_random_bytes(
            prefix in proptest::sample::select(vec![&b""[..], b"<13>", b"<13>1 ", b"{", b"a=1 b=", b"1.2.3.4 - - [10/"]),
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            max in 0usize..300,
        ) {
            let mut line = prefix.to_vec();
            line.extend_from_slice(&bytes);
            let p = parse_line(&line, NOW, max);
            proptest::prop_assert!(p.record.message.len() <= max.max(line.len()) * 3);
            proptest::prop_assert!(sightline_model::STATUSES.contains(&p.record.status.as_str()));
        }
    }

    #[test]
    fn never_panics() {
        let inputs: [&[u8]; 6] = [
            br#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 200 2326 "r" "a""#,
            br#"{"a":[1,{"b":"c"}],"level":3,"ts":"1700000000"}"#,
            br#"a=1 b="x\"y" c=3"#,
            b"<13>1 2026-11-29T04:34:48.716298+00:00 vm myapp - - [a b=\"c\"] m",
            "é€𝄞 ünïcödé".as_bytes(),
            b"\xff\xfe\xfd{\xc3",
        ];
        for input in inputs {
            for n in 0..=input.len() {
                for max in [0, 1, 2, 3, 5, 1000] {
                    let _ = parse_line(&input[..n], NOW, max);
                }
            }
        }
    }
}

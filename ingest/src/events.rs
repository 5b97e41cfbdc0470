//! Events and service checks as log records (SPEC §2): pure conversions used by the DogStatsD receiver (`_e`,
//! `_sc`) and the Datadog HTTP intake (`POST /api/v1/events`, `POST /api/v1/check_run`).
//!
//! An [`Event`] becomes a record with:
//! - `source` = `event`, `host` = the event's hostname (none when empty), `tags` = the event's tags
//!   (normalised like log tags: trimmed, keys lower-cased, cut at 200 characters, empty ones dropped, sorted
//!   and de-duplicated);
//! - `message` = `"{title}"`, or `"{title}\n{text}"` when the text is not empty (so free text finds both);
//! - `status` from the alert type: `error`→`error`, `warning`→`warning`, `success`→`ok`, anything else or
//!   none→`info`;
//! - attributes `title` and `text` (always), and `aggregation_key`, `priority` (`normal`/`low`),
//!   `source_type_name` and `alert_type` when the event has them;
//! - the timestamp from the event's `timestamp` (unix seconds), else `now_ns`.
//!
//! A [`ServiceCheck`] becomes a record with `source` = `service_check`, the check's message (or
//! `"{name}: OK|WARNING|CRITICAL|UNKNOWN"` when it has none), status `ok`/`warning`/`critical`/`info`
//! (unknown) for codes 0/1/2/3 (any other code counts as unknown), attributes `check` and `status_code`, and
//! host, tags and timestamp as for events.
//!
//! Ids: callers that need an event id (the HTTP intake answers with one; `GET /api/v1/events` lists them) take
//! one from [`next_event_id`] and store it in the [`EVENT_ID_ATTR`] attribute.

use sightline_model::{normalize_tag, Event, EventPriority, LogRecord, ServiceCheck};
use std::sync::atomic::{AtomicU64, Ordering};

/// `source` of an event's record.
pub const EVENT_SOURCE: &str = "event";
/// `source` of a service check's record.
pub const SERVICE_CHECK_SOURCE: &str = "service_check";
/// Attribute holding an event's numeric id.
pub const EVENT_ID_ATTR: &str = "event_id";
/// Longest tag kept, in characters (longer ones are cut), as for log tags.
const MAX_TAG_CHARS: usize = 200;
/// Nanoseconds in a second.
const NS: i64 = 1_000_000_000;

/// The record of an event (see the module documentation for the mapping).
pub fn event_record(e: &Event, now_ns: i64) -> LogRecord {
    let message = if e.text.is_empty() {
        e.title.clone()
    } else {
        format!("{}\n{}", e.title, e.text)
    };
    let mut r = base_record(
        EVENT_SOURCE,
        message,
        e.timestamp,
        e.hostname.as_deref(),
        &e.tags,
        now_ns,
    );
    r.status = match e.alert_type.as_deref() {
        Some("error") => "error",
        Some("warning") => "warning",
        Some("success") => "ok",
        _ => "info",
    }
    .to_string();
    let a = &mut r.attributes;
    a.insert("title".into(), e.title.clone().into());
    a.insert("text".into(), e.text.clone().into());
    if let Some(k) = &e.aggregation_key {
        a.insert("aggregation_key".into(), k.clone().into());
    }
    if let Some(p) = e.priority {
        a.insert("priority".into(), priority_name(p).into());
    }
    if let Some(s) = &e.source_type {
        a.insert("source_type_name".into(), s.clone().into());
    }
    if let Some(t) = &e.alert_type {
        a.insert("alert_type".into(), t.clone().into());
    }
    r
}

/// The record of a service check (see the module documentation for the mapping).
pub fn service_check_record(c: &ServiceCheck, now_ns: i64) -> LogRecord {
    let (status, name) = match c.status {
        0 => ("ok", "OK"),
        1 => ("warning", "WARNING"),
        2 => ("critical", "CRITICAL"),
        _ => ("info", "UNKNOWN"),
    };
    let message = match c.message.as_deref() {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => format!("{}: {name}", c.name),
    };
    let mut r = base_record(
        SERVICE_CHECK_SOURCE,
        message,
        c.timestamp,
        c.hostname.as_deref(),
        &c.tags,
        now_ns,
    );
    r.status = status.to_string();
    r.attributes.insert("check".into(), c.name.clone().into());
    r.attributes
        .insert("status_code".into(), u64::from(c.status).into());
    r
}

/// `normal` or `low`.
pub fn priority_name(p: EventPriority) -> &'static str {
    match p {
        EventPriority::Normal => "normal",
        EventPriority::Low => "low",
    }
}

/// A new event id: unique within the process, increasing, and below 2^53 (exact in JavaScript clients) until
/// the year 2255. It is the unix time in milliseconds times 1000, plus a counter for ids taken in the same
/// millisecond.
pub fn next_event_id(now_ns: i64) -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let base = (now_ns.max(0) / 1_000_000) as u64 * 1000;
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(base.max(last + 1))
        })
        .unwrap_or_default();
    base.max(prev + 1)
}

/// Nanoseconds of a unix-seconds timestamp, or `now_ns` when there is none or it is out of range.
fn timestamp_ns(secs: Option<i64>, now_ns: i64) -> i64 {
    secs.filter(|s| *s >= 0)
        .and_then(|s| s.checked_mul(NS))
        .unwrap_or(now_ns)
}

/// Normalised tags: trimmed, cut at [`MAX_TAG_CHARS`], keys lower-cased, empty ones dropped, sorted, unique.
fn normalize_tags(raw: &[String]) -> Vec<String> {
    let mut out: Vec<String> = raw
        .iter()
        .filter_map(|t| {
            let t = t.trim();
            if t.chars().count() > MAX_TAG_CHARS {
                let cut: String = t.chars().take(MAX_TAG_CHARS).collect();
                normalize_tag(&cut, MAX_TAG_CHARS).ok()
            } else {
                normalize_tag(t, MAX_TAG_CHARS).ok()
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn base_record(
    source: &str,
    message: String,
    timestamp: Option<i64>,
    host: Option<&str>,
    tags: &[String],
    now_ns: i64,
) -> LogRecord {
    let mut r = LogRecord::new(timestamp_ns(timestamp, now_ns), message);
    r.source = Some(source.to_string());
    r.host = host
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string);
    r.tags = normalize_tags(tags);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value as Json};

    const NOW: i64 = 1_700_000_000_000_000_000;

    /// (ts_ns, message, status, host, source, tags, attributes) of a record.
    type Shape<'a> = (
        i64,
        &'a str,
        &'a str,
        Option<&'a str>,
        &'a str,
        Vec<&'a str>,
        Json,
    );

    fn check(got: LogRecord, want: Shape<'_>) {
        let shape = (
            got.ts_ns,
            got.message.as_str(),
            got.status.as_str(),
            got.host.as_deref(),
            got.source.as_deref().unwrap_or(""),
            got.tags.iter().map(String::as_str).collect::<Vec<_>>(),
            Json::Object(got.attributes.clone()),
        );
        assert_eq!(shape, want);
        assert!(got.service.is_none() && got.trace_id.is_none() && got.span_id.is_none());
        assert!(sightline_model::STATUSES.contains(&got.status.as_str()));
    }

    fn event(title: &str, text: &str) -> Event {
        Event::new(title, text)
    }

    fn sc(name: &str, status: u8, message: Option<&str>) -> ServiceCheck {
        ServiceCheck {
            name: name.into(),
            status,
            timestamp: None,
            hostname: None,
            message: message.map(str::to_string),
            tags: Vec::new(),
        }
    }

    #[test]
    fn events() {
        check(
            event_record(&event("deploy", ""), NOW),
            (
                NOW,
                "deploy",
                "info",
                None,
                "event",
                vec![],
                json!({"title": "deploy", "text": ""}),
            ),
        );
        let full = Event {
            timestamp: Some(1_600_000_000),
            hostname: Some("web-1".into()),
            aggregation_key: Some("agg".into()),
            priority: Some(EventPriority::Low),
            source_type: Some("jenkins".into()),
            alert_type: Some("error".into()),
            tags: vec![
                "Env:Prod".into(),
                " team:a ".into(),
                "".into(),
                "env:Prod".into(),
                "x".repeat(250),
            ],
            ..event("build failed", "line 1\nline 2")
        };
        let long = "x".repeat(200);
        check(
            event_record(&full, NOW),
            (
                1_600_000_000 * NS,
                "build failed\nline 1\nline 2",
                "error",
                Some("web-1"),
                "event",
                vec!["env:Prod", "team:a", &long],
                json!({"title": "build failed", "text": "line 1\nline 2", "aggregation_key": "agg",
                       "priority": "low", "source_type_name": "jenkins", "alert_type": "error"}),
            ),
        );
        for (alert, status) in [
            ("warning", "warning"),
            ("success", "ok"),
            ("info", "info"),
            ("user_update", "info"),
        ] {
            let e = Event {
                alert_type: Some(alert.into()),
                priority: Some(EventPriority::Normal),
                hostname: Some("  ".into()),
                // Out of range: the arrival time is used.
                timestamp: Some(i64::MAX / 10),
                ..event("t", "x")
            };
            check(
                event_record(&e, NOW),
                (
                    NOW,
                    "t\nx",
                    status,
                    None,
                    "event",
                    vec![],
                    json!({"title": "t", "text": "x", "priority": "normal", "alert_type": alert}),
                ),
            );
        }
        let e = Event {
            timestamp: Some(-5),
            ..event("t", "")
        };
        assert_eq!(event_record(&e, NOW).ts_ns, NOW);
    }

    #[test]
    fn service_checks() {
        check(
            service_check_record(&sc("db.up", 0, None), NOW),
            (
                NOW,
                "db.up: OK",
                "ok",
                None,
                "service_check",
                vec![],
                json!({"check": "db.up", "status_code": 0}),
            ),
        );
        for (code, status, word) in [
            (1, "warning", "WARNING"),
            (2, "critical", "CRITICAL"),
            (3, "info", "UNKNOWN"),
            (9, "info", "UNKNOWN"),
        ] {
            check(
                service_check_record(&sc("q", code, Some("")), NOW),
                (
                    NOW,
                    &format!("q: {word}"),
                    status,
                    None,
                    "service_check",
                    vec![],
                    json!({"check": "q", "status_code": code}),
                ),
            );
        }
        let full = ServiceCheck {
            timestamp: Some(1_600_000_001),
            hostname: Some("db-1".into()),
            tags: vec!["Role:db".into(), "a".into()],
            ..sc("db.up", 2, Some("connection refused"))
        };
        check(
            service_check_record(&full, NOW),
            (
                1_600_000_001 * NS,
                "connection refused",
                "critical",
                Some("db-1"),
                "service_check",
                vec!["a", "role:db"],
                json!({"check": "db.up", "status_code": 2}),
            ),
        );
    }

    #[test]
    fn event_ids_are_unique_and_increasing() {
        let a = next_event_id(NOW);
        let b = next_event_id(NOW);
        let c = next_event_id(NOW - NS);
        assert!((1_700_000_000_000_000..1 << 53).contains(&a), "{a}");
        assert!(b > a && c > b, "{a} {b} {c}");
        assert!(next_event_id(NOW + NS) >= 1_700_000_001_000_000);
        assert!(next_event_id(-1) > 0);
    }
}

//! OTLP log records → Sightline log records (SPEC §2): severity → status, body → message, resource mapping,
//! attributes, trace and span ids (lower-case hex, so `trace_id:<hex>` finds a trace's logs).

use super::attrs::{any_to_json, attrs_to_map, json_text, ResourceInfo};
use crate::logs::detect::mark_truncated;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord as OtlpLog;
use serde_json::{Map, Value as Json};
use sightline_model::{hex, normalize_status, LogBatch, LogRecord, MAX_UNIX_SECS};

/// Log records converted from one request, and what was refused.
#[derive(Debug, Default)]
pub struct ConvertedLogs {
    pub batch: LogBatch,
    pub rejected: usize,
    pub errors: Vec<String>,
    /// Records whose message was cut at `max_line_bytes`.
    pub truncated: usize,
}

/// Datadog's status for an OTLP severity number (1–4 trace, 5–8 debug, 9–12 info, 13–16 warn, 17–20 error,
/// 21–24 fatal); `None` for 0 (unspecified) or out of range.
pub fn severity_status(n: i32) -> Option<&'static str> {
    Some(match n {
        1..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warning",
        17..=20 => "error",
        21..=24 => "critical",
        _ => return None,
    })
}

/// Converts every record of a request. `now_ns` stamps records without a time; messages longer than
/// `max_line_bytes` are cut and tagged `sightline.truncated:true`.
pub fn convert_logs(
    req: &ExportLogsServiceRequest,
    now_ns: i64,
    max_line_bytes: usize,
) -> ConvertedLogs {
    let mut out = ConvertedLogs::default();
    for rl in &req.resource_logs {
        for sl in &rl.scope_logs {
            let info = ResourceInfo::new(rl.resource.as_ref(), sl.scope.as_ref());
            if let Err(msg) = info.check_size() {
                out.rejected += sl.log_records.len();
                if !sl.log_records.is_empty() && !out.errors.contains(&msg) {
                    out.errors.push(msg);
                }
                continue;
            }
            let mut tags = info.reserved_tags();
            tags.retain(|t| t.starts_with("env:") || t.starts_with("version:"));
            for l in &sl.log_records {
                match convert_log(l, &info, &tags, now_ns) {
                    Ok(mut r) => {
                        if r.message.len() > max_line_bytes {
                            let mut cut = max_line_bytes;
                            while !r.message.is_char_boundary(cut) {
                                cut -= 1;
                            }
                            r.message.truncate(cut);
                            mark_truncated(&mut r);
                            out.truncated += 1;
                        }
                        out.batch.records.push(r);
                    }
                    Err(msg) => {
                        out.rejected += 1;
                        if out.errors.len() < 10 && !out.errors.contains(&msg) {
                            out.errors.push(msg);
                        }
                    }
                }
            }
        }
    }
    out
}

fn convert_log(
    l: &OtlpLog,
    info: &ResourceInfo,
    tags: &[String],
    now_ns: i64,
) -> Result<LogRecord, String> {
    let time = if l.time_unix_nano != 0 {
        l.time_unix_nano
    } else {
        l.observed_time_unix_nano
    };
    let ts_ns = match i64::try_from(time) {
        Ok(0) => now_ns,
        Ok(t) if t / 1_000_000_000 < MAX_UNIX_SECS => t,
        _ => return Err(format!("log record time {time} is out of range")),
    };
    let trace_id = match l.trace_id.len() {
        0 => None,
        16 => Some(hex(&l.trace_id)),
        n => return Err(format!("log record trace id must be 16 bytes (got {n})")),
    };
    let span_id = match l.span_id.len() {
        0 => None,
        8 => Some(hex(&l.span_id)),
        n => return Err(format!("log record span id must be 8 bytes (got {n})")),
    };
    let mut attributes: Map<String, Json> = info.attributes.clone();
    attributes.extend(attrs_to_map(&l.attributes));
    if !l.event_name.is_empty() {
        attributes.insert("event.name".into(), Json::from(l.event_name.as_str()));
    }
    if !l.severity_text.is_empty() {
        attributes.insert(
            "otel.severity_text".into(),
            Json::from(l.severity_text.as_str()),
        );
    }
    if l.severity_number != 0 {
        attributes.insert("otel.severity_number".into(), Json::from(l.severity_number));
    }
    let message = l
        .body
        .as_ref()
        .map(any_to_json)
        .map(|b| json_text(&b))
        .unwrap_or_default();
    let status = severity_status(l.severity_number)
        .or_else(|| normalize_status(&l.severity_text))
        .unwrap_or("info");
    let source = attributes
        .get("source")
        .map(json_text)
        .filter(|s| !s.is_empty());
    let mut r = LogRecord::new(ts_ns, message);
    r.status = status.to_string();
    r.service = info.service.clone();
    r.host = info.host.clone();
    r.source = source;
    r.tags = tags.to_vec();
    r.attributes = attributes;
    r.trace_id = trace_id.filter(|t| t.bytes().any(|b| b != b'0'));
    r.span_id = span_id.filter(|t| t.bytes().any(|b| b != b'0'));
    r.normalize_tags();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn s(v: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        })
    }

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: s(v),
            ..Default::default()
        }
    }

    fn req(records: Vec<OtlpLog>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", "checkout"),
                        kv("host.name", "h1"),
                        kv("deployment.environment.name", "prod"),
                        kv("cloud.region", "eu"),
                    ],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn maps_fields_and_rejects_bad_ids() {
        let good = OtlpLog {
            time_unix_nano: 1_700_000_000_123_456_789,
            severity_number: 13,
            severity_text: "WARN".into(),
            body: s("payment retried"),
            attributes: vec![kv("order.id", "o-1")],
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            ..Default::default()
        };
        let bad = OtlpLog {
            trace_id: vec![1; 5],
            body: s("x"),
            ..Default::default()
        };
        let by_text = OtlpLog {
            severity_text: "ERROR".into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::IntValue(42)),
            }),
            ..Default::default()
        };
        let out = convert_logs(&req(vec![good, bad, by_text]), 99, 1024);
        assert_eq!(out.rejected, 1);
        assert_eq!(out.errors, ["log record trace id must be 16 bytes (got 5)"]);
        let r = &out.batch.records[0];
        assert_eq!(r.ts_ns, 1_700_000_000_123_456_789);
        assert_eq!(r.message, "payment retried");
        assert_eq!(r.status, "warning");
        assert_eq!(r.service.as_deref(), Some("checkout"));
        assert_eq!(r.host.as_deref(), Some("h1"));
        assert_eq!(r.tags, ["env:prod"]);
        assert_eq!(
            r.trace_id.as_deref(),
            Some("abababababababababababababababab")
        );
        assert_eq!(r.span_id.as_deref(), Some("cdcdcdcdcdcdcdcd"));
        assert_eq!(r.attributes.get("order.id"), Some(&Json::from("o-1")));
        assert_eq!(r.attributes.get("cloud.region"), Some(&Json::from("eu")));
        let t = &out.batch.records[1];
        assert_eq!(
            (t.ts_ns, t.status.as_str(), t.message.as_str()),
            (99, "error", "42")
        );
    }

    #[test]
    fn long_bodies_are_truncated_and_tagged() {
        let long = OtlpLog {
            body: s(&"é".repeat(100)),
            ..Default::default()
        };
        let out = convert_logs(&req(vec![long]), 1, 51);
        assert_eq!(out.truncated, 1);
        assert_eq!(out.batch.records[0].message.len(), 50);
        assert!(out.batch.records[0]
            .tags
            .iter()
            .any(|t| t == "sightline.truncated:true"));
    }

    #[test]
    fn severities() {
        for (n, want) in [
            (0, None),
            (1, Some("debug")),
            (9, Some("info")),
            (16, Some("warning")),
            (17, Some("error")),
            (24, Some("critical")),
            (25, None),
        ] {
            assert_eq!(severity_status(n), want, "{n}");
        }
    }
}

//! Datadog logs intake over HTTP: `POST /api/v2/logs` (<https://docs.datadoghq.com/api/latest/logs/#send-logs>).
//!
//! The body (gzip/deflate, under `Limits::max_body_bytes` after decompression) is a JSON log object or an array
//! of them, or with `Content-Type: text/plain` one log per line, each auto-detected like a raw line on the
//! syslog port. Fields of a JSON entry: `message`, `ddsource`, `ddtags`, `hostname`, `service`, `status`,
//! `timestamp` (unix ms, Datadog's convention; also RFC 3339), and the other usual ones (see
//! [`record_from_object`]); anything else becomes an attribute, so `@http.status_code` is searchable. A
//! `message` that is itself a JSON object is expanded, as Datadog does. The query parameters `ddsource`,
//! `ddtags`, `hostname` and `service` apply to every entry that lacks them.
//!
//! Answers 202 `{}` (Datadog's reply) once the sink holds the records, 400 `{"errors":[…]}` for a malformed
//! body, 413 for an oversized one, 503 with `Retry-After` when storage pushes back. Authentication is done by
//! the binary's middleware around the router.

use crate::body::{decode_and_parse, json_objects, raw_body, refuse_protobuf, ErrorsReply};
use crate::error::IngestError;
use crate::logs::detect::{mark_truncated, parse_line, parse_tags, record_from_object};
use crate::logs::time::now_ns;
use crate::logs::LogMetrics;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{Map, Value as Json};
use sightline_model::{Limits, LogBatch, LogRecord, LogSink, WriteOutcome};
use std::sync::Arc;

/// The intake's path.
pub const LOGS_PATH: &str = "/api/v2/logs";

/// What the logs intake handler shares.
pub struct LogIntakeState {
    pub sink: Arc<dyn LogSink>,
    pub limits: Limits,
    /// The registry's one [`LogMetrics`] (shared with the syslog-port receiver).
    pub metrics: LogMetrics,
}

/// A parsed body, with what the metrics count.
#[derive(Debug, Default)]
struct ParsedLogs {
    records: Vec<LogRecord>,
    /// Reasons of text lines kept as plain text after failing to parse as the format they looked like.
    unparsed: Vec<&'static str>,
    /// Records whose message or line was cut at `max_line_bytes`.
    truncated: usize,
}

/// Parses a logs intake body (already decompressed): `text/plain` (any `text/…` type) is one log per line;
/// anything else is JSON, an object or an array of objects. Entries without a timestamp get `now_ns`;
/// messages over `max_line_bytes` are cut and tagged `sightline.truncated:true`. A blank body is no logs.
pub fn parse_logs_body(
    body: &[u8],
    content_type: Option<&str>,
    now_ns: i64,
    max_line_bytes: usize,
) -> Result<Vec<LogRecord>, IngestError> {
    parse_detailed(body, content_type, now_ns, max_line_bytes).map(|p| p.records)
}

fn is_text(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.trim()
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("text/"))
    })
}

fn parse_detailed(
    body: &[u8],
    content_type: Option<&str>,
    now_ns: i64,
    max_line_bytes: usize,
) -> Result<ParsedLogs, IngestError> {
    let mut out = ParsedLogs::default();
    if is_text(content_type) {
        for line in body.split(|&c| c == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let p = parse_line(line, now_ns, max_line_bytes);
            out.unparsed.extend(p.unparsed);
            out.truncated += usize::from(p.truncated);
            out.records.push(p.record);
        }
        return Ok(out);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(out);
    }
    let entries = json_objects(body, "log entry", "a log object or an array of log objects")?;
    out.records.reserve(entries.len());
    for map in entries {
        let mut r = record_from_object(expand_message(map), now_ns);
        if r.message.len() > max_line_bytes {
            let mut cut = max_line_bytes;
            while !r.message.is_char_boundary(cut) {
                cut -= 1;
            }
            r.message.truncate(cut);
            mark_truncated(&mut r);
            out.truncated += 1;
        }
        out.records.push(r);
    }
    Ok(out)
}

/// A `message` holding a JSON object is replaced by that object's fields (the entry's own fields win).
fn expand_message(mut map: Map<String, Json>) -> Map<String, Json> {
    let inner = match map.get("message") {
        Some(Json::String(s)) if s.trim_start().starts_with('{') => {
            match serde_json::from_str::<Map<String, Json>>(s) {
                Ok(inner) => inner,
                Err(_) => return map,
            }
        }
        _ => return map,
    };
    map.remove("message");
    for (k, v) in inner {
        map.entry(k).or_insert(v);
    }
    map
}

/// `ddsource`, `ddtags`, `hostname`, `service` from the query string, applied to entries lacking them.
#[derive(Debug, Default, Clone, PartialEq)]
struct QueryDefaults {
    source: Option<String>,
    tags: Vec<String>,
    host: Option<String>,
    service: Option<String>,
}

impl QueryDefaults {
    fn parse(query: Option<&str>) -> QueryDefaults {
        let mut d = QueryDefaults::default();
        for pair in query.unwrap_or("").split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            if v.trim().is_empty() {
                continue;
            }
            match k {
                "ddsource" => d.source = Some(v),
                "ddtags" => parse_tags(&v, &mut d.tags),
                "hostname" => d.host = Some(v),
                "service" => d.service = Some(v),
                _ => {}
            }
        }
        d
    }

    fn apply(&self, r: &mut LogRecord) {
        if r.source.is_none() {
            r.source.clone_from(&self.source);
        }
        if r.host.is_none() {
            r.host.clone_from(&self.host);
        }
        if r.service.is_none() {
            r.service.clone_from(&self.service);
        }
        if !self.tags.is_empty() {
            r.tags.extend(self.tags.iter().cloned());
            r.normalize_tags();
        }
    }
}

/// Decodes `%XX` escapes and `+` (as a space) of a query value; invalid escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// The `POST /api/v2/logs` route, with a raw body limit of `limits.max_body_bytes`. Merge it into the HTTP
/// listener's router behind the auth middleware.
pub fn router(state: Arc<LogIntakeState>) -> Router {
    let body_limit = state.limits.max_body_bytes;
    Router::new()
        .route(LOGS_PATH, post(logs))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn logs(
    State(state): State<Arc<LogIntakeState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (status, resp) = match intake(&state, query.as_deref(), &headers, body).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            (StatusCode::ACCEPTED, axum::Json(serde_json::json!({}))).into_response(),
        ),
        Err(e) => {
            let reply = ErrorsReply::failed(LOGS_PATH, "logs intake", e);
            (reply.status, reply.into_response())
        }
    };
    state
        .metrics
        .intake_requests
        .get_or_create(&[("status", status.as_u16())])
        .inc();
    resp
}

/// Decodes, parses and stores one request; `Ok` once the sink holds the records.
async fn intake(
    state: &LogIntakeState,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(), IngestError> {
    let raw = raw_body(body, state.limits.max_body_bytes)?;
    let content_type = match headers.get(header::CONTENT_TYPE) {
        None => None,
        Some(v) => Some(v.to_str().map(str::to_string).map_err(|_| {
            IngestError::Invalid(format!(
                "{} header {:?} is not ascii",
                header::CONTENT_TYPE,
                String::from_utf8_lossy(v.as_bytes())
            ))
        })?),
    };
    refuse_protobuf(
        content_type.as_deref(),
        LOGS_PATH,
        "application/json or text/plain",
    )?;
    let max_line_bytes = state.limits.max_line_bytes;
    let now = now_ns();
    let parsed = decode_and_parse(
        LOGS_PATH,
        headers,
        raw,
        state.limits.max_body_bytes,
        move |body| parse_detailed(body, content_type.as_deref(), now, max_line_bytes),
    )
    .await?;
    let metrics = &state.metrics;
    for reason in &parsed.unparsed {
        metrics.count_line(Some(reason), false);
    }
    for _ in 0..parsed.truncated {
        metrics.count_line(None, true);
    }
    let mut records = parsed.records;
    if records.is_empty() {
        return Ok(());
    }
    let defaults = QueryDefaults::parse(query);
    if defaults != QueryDefaults::default() {
        records.iter_mut().for_each(|r| defaults.apply(r));
    }
    store(state, records).await?;
    Ok(())
}

/// Writes the records (if any) and counts them; the sink's outcome once it holds them.
pub(super) async fn store(
    state: &LogIntakeState,
    records: Vec<LogRecord>,
) -> Result<WriteOutcome, IngestError> {
    if records.is_empty() {
        return Ok(WriteOutcome::default());
    }
    state.metrics.count_received("http", records.len());
    let outcome = state.sink.write_logs(LogBatch { records }).await?;
    state.metrics.count_dropped("rejected", outcome.rejected);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::TRUNCATED_TAG;
    use crate::test_util::{
        assert_malformed_json, assert_overloaded, gzip, log_intake, metrics_text, post,
        stored_logs, Harness, OverloadedSink,
    };
    use prometheus_client::registry::Registry;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000_000_000;

    /// `expected`: `Ok` with (message, status, service, host, source, tags, attributes) per record, or `Err`
    /// with the HTTP status and a piece of the message.
    #[allow(clippy::type_complexity)]
    fn check(
        body: &str,
        content_type: Option<&str>,
        expected: Result<
            Vec<(
                &str,
                &str,
                Option<&str>,
                Option<&str>,
                Option<&str>,
                Vec<&str>,
                Json,
                i64,
            )>,
            (u16, &str),
        >,
    ) {
        let got = parse_logs_body(body.as_bytes(), content_type, NOW, 64);
        match (got, expected) {
            (Ok(records), Ok(want)) => {
                let got: Vec<_> = records
                    .iter()
                    .map(|r| {
                        (
                            r.message.as_str(),
                            r.status.as_str(),
                            r.service.as_deref(),
                            r.host.as_deref(),
                            r.source.as_deref(),
                            r.tags.iter().map(String::as_str).collect::<Vec<_>>(),
                            Json::Object(r.attributes.clone()),
                            r.ts_ns,
                        )
                    })
                    .collect();
                assert_eq!(got, want, "{body:?}");
            }
            (Err(e), Err((status, msg))) => {
                let text = e.to_string();
                assert_eq!(e.kind().http_status(), status, "{body:?}: {text}");
                assert!(
                    text.contains(msg),
                    "{body:?}: {text:?} does not contain {msg:?}"
                );
                assert_eq!(
                    text,
                    text.to_lowercase(),
                    "error messages are lowercase: {text}"
                );
            }
            (got, want) => panic!("{body:?}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn parse_table() {
        let json = Some("application/json");
        check(
            r#"{"message":"hello","ddsource":"nginx","ddtags":"env:staging,version:5.1","hostname":"i-012345678","service":"payment","status":"warn","timestamp":1700000001000,"http":{"status_code":404},"usr.id":"42"}"#,
            json,
            Ok(vec![(
                "hello",
                "warning",
                Some("payment"),
                Some("i-012345678"),
                Some("nginx"),
                vec!["env:staging", "version:5.1"],
                json!({"http": {"status_code": 404}, "usr.id": "42"}),
                1_700_000_001_000_000_000,
            )]),
        );
        check(
            r#"[{"message":"a"},{"message":"b","status":"error","date":"2023-11-14T22:13:21Z"}]"#,
            None,
            Ok(vec![
                ("a", "info", None, None, None, vec![], json!({}), NOW),
                (
                    "b",
                    "error",
                    None,
                    None,
                    None,
                    vec![],
                    json!({}),
                    1_700_000_001_000_000_000,
                ),
            ]),
        );
        // A JSON message is expanded; the entry's own fields win.
        check(
            r#"{"message":"{\"msg\":\"inner\",\"level\":\"debug\",\"service\":\"lost\",\"k\":1}","service":"outer"}"#,
            json,
            Ok(vec![(
                "inner",
                "debug",
                Some("outer"),
                None,
                None,
                vec![],
                json!({"k": 1}),
                NOW,
            )]),
        );
        // Long messages are cut and tagged.
        let long = format!(r#"{{"message":"{}"}}"#, "y".repeat(100));
        check(
            &long,
            json,
            Ok(vec![(
                &"y".repeat(64),
                "info",
                None,
                None,
                None,
                vec![TRUNCATED_TAG],
                json!({}),
                NOW,
            )]),
        );
        check("", json, Ok(vec![]));
        check(" \n", json, Ok(vec![]));
        check("[]", json, Ok(vec![]));
        // Text: one log per line, each auto-detected.
        check(
            "plain one\r\n\nlevel=error msg=two\n{\"message\":\"three\"}\n{broken\n",
            Some("text/plain; charset=utf-8"),
            Ok(vec![
                (
                    "plain one",
                    "info",
                    None,
                    None,
                    None,
                    vec![],
                    json!({}),
                    NOW,
                ),
                ("two", "error", None, None, None, vec![], json!({}), NOW),
                ("three", "info", None, None, None, vec![], json!({}), NOW),
                ("{broken", "info", None, None, None, vec![], json!({}), NOW),
            ]),
        );
        check(
            r#"{"message":"x""#,
            json,
            Err((
                400,
                "malformed json: end of input while parsing an object at line 1 column 14",
            )),
        );
        check("{\n\"a\": tru}", json, Err((400, "line 2 column")));
        check(
            r#"[{"message":"a"}, 3]"#,
            json,
            Err((
                400,
                "log entry [1] is a number; each entry must be an object",
            )),
        );
        check(
            r#""just a string""#,
            json,
            Err((400, "request body is a string")),
        );
        check(
            "plain text",
            json,
            Err((400, "malformed json: expected value at line 1 column 1")),
        );
    }

    #[test]
    fn query_defaults() {
        let d = QueryDefaults::parse(Some(
            "ddsource=my%20app&ddtags=Env:prod,team:a&hostname=h&service=s&x=1",
        ));
        assert_eq!(d.source.as_deref(), Some("my app"));
        assert_eq!(d.tags, ["env:prod", "team:a"]);
        let mut r = LogRecord::new(0, "m");
        r.service = Some("own".into());
        r.tags = vec!["z".into()];
        d.apply(&mut r);
        assert_eq!(r.service.as_deref(), Some("own"));
        assert_eq!(r.host.as_deref(), Some("h"));
        assert_eq!(r.tags, ["env:prod", "team:a", "z"]);
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz+%41"), "%zz A");
        assert_eq!(QueryDefaults::parse(None), QueryDefaults::default());
    }

    fn harness(limits: Limits) -> Harness {
        Harness::new(|sink, registry| router(log_intake(sink, limits, registry)))
    }

    #[tokio::test]
    async fn accepts_json_gzip_and_text() {
        let h = harness(Limits::default());
        let body = json!([
            {"message": "one", "ddsource": "python", "service": "web", "hostname": "h1", "status": "error",
             "ddtags": "env:prod", "http": {"status_code": 500}},
            {"message": "two"}
        ]);
        let (status, _, reply) = post(
            &h.app,
            LOGS_PATH,
            "application/json",
            None,
            body.to_string().into_bytes(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(reply, json!({}));

        let (status, _, _) = post(
            &h.app,
            "/api/v2/logs?ddsource=curl&ddtags=team:x&service=cli",
            "application/json",
            Some("gzip"),
            gzip(br#"{"message":"three","service":"own"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);

        let (status, _, _) = post(
            &h.app,
            LOGS_PATH,
            "text/plain",
            None,
            b"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 5\nfour\n".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);

        let got = stored_logs(&h.sink);
        assert_eq!(got.len(), 5);
        assert_eq!(got[0].status, "error");
        assert_eq!(got[0].service.as_deref(), Some("web"));
        assert_eq!(got[0].tags, ["env:prod"]);
        assert_eq!(got[0].attributes["http"]["status_code"], 500);
        assert_eq!(got[2].message, "three");
        assert_eq!(got[2].service.as_deref(), Some("own"));
        assert_eq!(got[2].source.as_deref(), Some("curl"));
        assert_eq!(got[2].tags, ["team:x"]);
        assert_eq!(got[3].attributes["http"]["method"], "GET");
        assert_eq!(got[4].message, "four");

        let text = metrics_text(&h.registry);
        assert!(
            text.contains("sightline_logs_received_total{transport=\"http\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("sightline_logs_intake_requests_total{status=\"202\"} 3"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn errors() {
        let h = harness(Limits {
            max_body_bytes: 1000,
            ..Limits::default()
        });
        let json = "application/json";
        let reply = post(
            &h.app,
            LOGS_PATH,
            json,
            None,
            br#"{"message": "x",}"#.to_vec(),
        )
        .await;
        assert_malformed_json(&reply);

        let (status, _, reply) = post(&h.app, LOGS_PATH, json, None, vec![b' '; 2000]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");
        assert!(
            reply["errors"][0].as_str().unwrap().contains("1000"),
            "{reply}"
        );

        let bomb = gzip(&[b' '; 5000]);
        let (status, _, _) = post(&h.app, LOGS_PATH, json, Some("gzip"), bomb).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

        let (status, _, _) = post(&h.app, LOGS_PATH, json, Some("br"), b"{}".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(stored_logs(&h.sink).is_empty());

        let app = router(log_intake(
            Arc::new(OverloadedSink),
            Limits::default(),
            &mut Registry::default(),
        ));
        let reply = post(&app, LOGS_PATH, json, None, br#"{"message":"x"}"#.to_vec()).await;
        assert_overloaded(&reply, LOGS_PATH);

        let text = metrics_text(&h.registry);
        assert!(
            text.contains("sightline_logs_intake_requests_total{status=\"400\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("sightline_logs_intake_requests_total{status=\"413\"} 2"),
            "{text}"
        );
    }
}

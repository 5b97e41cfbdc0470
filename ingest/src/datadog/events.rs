//! Datadog events and service checks intake over HTTP: `POST /api/v1/events`
//! (<https://docs.datadoghq.com/api/latest/events/#post-an-event>) and `POST /api/v1/check_run`
//! (<https://docs.datadoghq.com/api/latest/service-checks/>). Both are stored as log records
//! (`source:event` / `source:service_check`, SPEC §2) through the log sink; see [`crate::events`] for the
//! mapping.
//!
//! - `/api/v1/events` takes an `EventCreateRequest` object: `title` (required), `text`, `date_happened` (unix
//!   seconds), `priority` (`normal`/`low`), `host`, `tags` (array, or a comma-separated string),
//!   `alert_type` (`error`, `warning`, `info`, `success`, `user_update`, `recommendation`, `snapshot`),
//!   `aggregation_key` (at most 100 characters), `source_type_name`, `related_event_id`, `device_name`; other
//!   fields are ignored. `text` is at most 4000 characters, as Datadog's. The event gets a new id (attribute
//!   `event_id`, also `device_name` and `related_event_id` when given) and the answer is 202
//!   `{"status":"ok","event":{id, id_str, title, text, date_happened, priority, host, tags, alert_type, url}}`,
//!   the shape `EventsApi.create_event` of the Datadog clients reads.
//! - `/api/v1/check_run` takes an array of `{check, host_name, status (0–3), timestamp, message, tags}` (a
//!   single object is accepted too) and answers 202 `{"status":"ok"}`.
//!
//! Bodies may be gzip/deflate encoded (under `Limits::max_body_bytes` after decompression). Answers come once
//! the sink holds the records; a malformed body is a 400 `{"errors":[…]}` naming the field, storage pushback a
//! 503 with `Retry-After`. Authentication is done by the binary's middleware around the router.

use super::logs::{store, LogIntakeState};
use crate::body::{decode_and_parse, json_error, json_kind, json_objects, raw_body, ErrorsReply};
use crate::error::IngestError;
use crate::events::{event_record, next_event_id, service_check_record, EVENT_ID_ATTR};
use crate::logs::time::now_ns;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Map, Value as Json};
use sightline_model::{Event, EventPriority, LogRecord, ServiceCheck};
use std::sync::Arc;

/// The events intake's path.
pub const EVENTS_PATH: &str = "/api/v1/events";
/// The service checks intake's path.
pub const CHECK_RUN_PATH: &str = "/api/v1/check_run";
/// Longest event text, in characters (Datadog's limit).
pub const MAX_TEXT_CHARS: usize = 4000;
/// Longest aggregation key, in characters (Datadog's limit).
pub const MAX_AGGREGATION_KEY_CHARS: usize = 100;
/// The alert types Datadog accepts.
pub const ALERT_TYPES: [&str; 7] = [
    "error",
    "warning",
    "info",
    "success",
    "user_update",
    "recommendation",
    "snapshot",
];

/// A parsed `POST /api/v1/events` body.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRequest {
    pub event: Event,
    pub device_name: Option<String>,
    pub related_event_id: Option<u64>,
}

impl EventRequest {
    /// The record stored for the event, with its id in the `event_id` attribute.
    pub fn to_record(&self, id: u64, now_ns: i64) -> LogRecord {
        let mut r = event_record(&self.event, now_ns);
        r.attributes.insert(EVENT_ID_ATTR.into(), id.into());
        if let Some(d) = &self.device_name {
            r.attributes.insert("device_name".into(), d.clone().into());
        }
        if let Some(id) = self.related_event_id {
            r.attributes.insert("related_event_id".into(), id.into());
        }
        r
    }
}

/// Parses an `EventCreateRequest` body (already decompressed).
pub fn parse_event_request(body: &[u8]) -> Result<EventRequest, IngestError> {
    let value: Json = serde_json::from_slice(body).map_err(json_error)?;
    let Json::Object(mut map) = value else {
        return Err(IngestError::BadJson(format!(
            "request body is {}; send an event object",
            json_kind(&value)
        )));
    };
    let mut f = Fields {
        map: &mut map,
        what: "event",
    };
    let title = f
        .string("title")?
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| IngestError::Invalid("event has no \"title\"".into()))?;
    let text = f.string("text")?.unwrap_or_default();
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(IngestError::Invalid(format!(
            "event \"text\" is {chars} characters long; the limit is {MAX_TEXT_CHARS}"
        )));
    }
    let aggregation_key = f.string("aggregation_key")?;
    if let Some(k) = &aggregation_key {
        let chars = k.chars().count();
        if chars > MAX_AGGREGATION_KEY_CHARS {
            return Err(IngestError::Invalid(format!(
                "event \"aggregation_key\" is {chars} characters long; the limit is \
                 {MAX_AGGREGATION_KEY_CHARS}"
            )));
        }
    }
    let priority = match f.string("priority")?.as_deref() {
        None => None,
        Some("normal") => Some(EventPriority::Normal),
        Some("low") => Some(EventPriority::Low),
        Some(other) => {
            return Err(IngestError::Invalid(format!(
                "event \"priority\" {other:?} is not \"normal\" or \"low\""
            )))
        }
    };
    let alert_type = f.string("alert_type")?;
    if let Some(t) = &alert_type {
        if !ALERT_TYPES.contains(&t.as_str()) {
            return Err(IngestError::Invalid(format!(
                "event \"alert_type\" {t:?} is not one of {}",
                ALERT_TYPES.join(", ")
            )));
        }
    }
    let event = Event {
        title,
        text,
        timestamp: f.integer("date_happened")?,
        hostname: f.string("host")?,
        aggregation_key,
        priority,
        source_type: f.string("source_type_name")?,
        alert_type,
        tags: f.tags("tags")?,
    };
    let related_event_id = match f.integer("related_event_id")? {
        None => None,
        Some(id) => Some(u64::try_from(id).map_err(|_| {
            IngestError::Invalid(format!("event \"related_event_id\" {id} is negative"))
        })?),
    };
    Ok(EventRequest {
        event,
        device_name: f.string("device_name")?,
        related_event_id,
    })
}

/// Parses a `check_run` body (already decompressed): an array of service checks, or one.
pub fn parse_check_run(body: &[u8]) -> Result<Vec<ServiceCheck>, IngestError> {
    let entries = json_objects(body, "service check", "an array of service checks")?;
    entries
        .into_iter()
        .enumerate()
        .map(|(i, mut map)| {
            let what = format!("service check [{i}]");
            let mut f = Fields {
                map: &mut map,
                what: &what,
            };
            let name = f
                .string("check")?
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| IngestError::Invalid(format!("{what} has no \"check\"")))?;
            let status = f
                .integer("status")?
                .ok_or_else(|| IngestError::Invalid(format!("{what} has no \"status\"")))?;
            let status = u8::try_from(status)
                .ok()
                .filter(|s| *s <= 3)
                .ok_or_else(|| {
                    IngestError::Invalid(format!(
                        "{what} \"status\" is {status}; it must be 0 (ok), 1 (warning), 2 \
                         (critical) or 3 (unknown)"
                    ))
                })?;
            Ok(ServiceCheck {
                name,
                status,
                timestamp: f.integer("timestamp")?,
                hostname: f.string("host_name")?,
                message: f.string("message")?,
                tags: f.tags("tags")?,
            })
        })
        .collect()
}

/// Typed access to the fields of one JSON object, with errors naming the object and the field. A `null`
/// field counts as absent.
struct Fields<'a> {
    map: &'a mut Map<String, Json>,
    what: &'a str,
}

impl Fields<'_> {
    fn wrong(&self, key: &str, v: &Json, expected: &str) -> IngestError {
        IngestError::Invalid(format!(
            "{} \"{key}\" is {}; expected {expected}",
            self.what,
            json_kind(v)
        ))
    }

    fn string(&mut self, key: &str) -> Result<Option<String>, IngestError> {
        match self.map.remove(key) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong(key, &v, "a string")),
        }
    }

    /// An integer; a number with a fraction is cut to its integer part (timestamps from some clients).
    fn integer(&mut self, key: &str) -> Result<Option<i64>, IngestError> {
        match self.map.remove(key) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => match n.as_f64() {
                    Some(f) if f.is_finite() && f.abs() < 9.0e18 => Ok(Some(f.trunc() as i64)),
                    _ => Err(IngestError::Invalid(format!(
                        "{} \"{key}\" {n} is out of range",
                        self.what
                    ))),
                },
            },
            Some(v) => Err(self.wrong(key, &v, "an integer")),
        }
    }

    /// An array of strings, or one comma-separated string.
    fn tags(&mut self, key: &str) -> Result<Vec<String>, IngestError> {
        match self.map.remove(key) {
            None | Some(Json::Null) => Ok(Vec::new()),
            Some(Json::String(s)) => Ok(s.split(',').map(str::to_string).collect()),
            Some(Json::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, t)| match t {
                    Json::String(s) => Ok(s),
                    other => Err(IngestError::Invalid(format!(
                        "{} \"{key}\"[{i}] is {}; expected a string",
                        self.what,
                        json_kind(&other)
                    ))),
                })
                .collect(),
            Some(v) => Err(self.wrong(key, &v, "an array of strings")),
        }
    }
}

/// The `event` object of the create answer (Datadog's `Event`), from the stored record.
pub fn event_reply(r: &LogRecord, id: u64) -> Json {
    let attr = |k: &str| r.attributes.get(k).and_then(Json::as_str);
    let mut ev = json!({
        "id": id,
        "id_str": id.to_string(),
        "title": attr("title").unwrap_or_default(),
        "text": attr("text").unwrap_or_default(),
        "date_happened": r.ts_ns.div_euclid(1_000_000_000),
        "priority": attr("priority"),
        "tags": r.tags,
        "url": event_url(id),
    });
    if let Some(h) = &r.host {
        ev["host"] = json!(h);
    }
    for k in ["alert_type", "source_type_name", "device_name"] {
        if let Some(v) = attr(k) {
            ev[k] = json!(v);
        }
    }
    ev
}

/// Where the UI shows an event: the log explorer searching for it.
pub fn event_url(id: u64) -> String {
    format!("/logs?query=source%3Aevent%20%40{EVENT_ID_ATTR}%3A{id}")
}

/// The `POST /api/v1/events` and `POST /api/v1/check_run` routes, with a raw body limit of
/// `limits.max_body_bytes`. Merge them into the HTTP listener's router behind the auth middleware.
pub fn router(state: Arc<LogIntakeState>) -> Router {
    let body_limit = state.limits.max_body_bytes;
    Router::new()
        .route(EVENTS_PATH, post(create_event))
        .route(CHECK_RUN_PATH, post(check_run))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn create_event(
    State(state): State<Arc<LogIntakeState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let req = read_body(&state, EVENTS_PATH, &headers, body, parse_event_request).await?;
        let now = now_ns();
        let id = next_event_id(now);
        let record = req.to_record(id, now);
        let event = event_reply(&record, id);
        write(&state, vec![record]).await?;
        Ok(json!({"status": "ok", "event": event}))
    }
    .await;
    answer(EVENTS_PATH, result)
}

async fn check_run(
    State(state): State<Arc<LogIntakeState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let checks = read_body(&state, CHECK_RUN_PATH, &headers, body, parse_check_run).await?;
        let now = now_ns();
        let records = checks
            .iter()
            .map(|c| service_check_record(c, now))
            .collect();
        write(&state, records).await?;
        Ok(json!({"status": "ok"}))
    }
    .await;
    answer(CHECK_RUN_PATH, result)
}

/// 202 with the reply, or the error reply (logged).
fn answer(path: &'static str, result: Result<Json, IngestError>) -> Response {
    match result {
        Ok(reply) => (StatusCode::ACCEPTED, axum::Json(reply)).into_response(),
        Err(e) => ErrorsReply::failed(path, "events intake", e).into_response(),
    }
}

/// Reads, decodes (gzip/deflate, under the body limit) and parses a request body on `path`.
async fn read_body<T: Send + 'static>(
    state: &LogIntakeState,
    path: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    parse: fn(&[u8]) -> Result<T, IngestError>,
) -> Result<T, IngestError> {
    let limit = state.limits.max_body_bytes;
    decode_and_parse(path, headers, raw_body(body, limit)?, limit, parse).await
}

/// Writes the records (if any); `Ok` once the sink holds them, an error when it refused every one.
async fn write(state: &LogIntakeState, records: Vec<LogRecord>) -> Result<(), IngestError> {
    let outcome = store(state, records).await?;
    if outcome.accepted == 0 && outcome.rejected > 0 {
        return Err(IngestError::Invalid(format!(
            "storage refused the records: {}",
            outcome.errors.join("; ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{
        assert_malformed_json, assert_overloaded, gzip, log_intake, post, stored_logs,
        OverloadedSink,
    };
    use prometheus_client::registry::Registry;
    use sightline_model::{Limits, LogSink, MemorySink};

    /// Parses an event body; `expected` is `Ok` with (title, text, timestamp, host, priority, alert type,
    /// tags) or `Err` with a piece of the 400 message.
    #[allow(clippy::type_complexity)]
    fn check_event(
        body: &str,
        expected: Result<
            (
                &str,
                &str,
                Option<i64>,
                Option<&str>,
                Option<EventPriority>,
                Option<&str>,
                Vec<&str>,
            ),
            &str,
        >,
    ) {
        match (parse_event_request(body.as_bytes()), expected) {
            (Ok(req), Ok(want)) => {
                let e = &req.event;
                let got = (
                    e.title.as_str(),
                    e.text.as_str(),
                    e.timestamp,
                    e.hostname.as_deref(),
                    e.priority,
                    e.alert_type.as_deref(),
                    e.tags.iter().map(String::as_str).collect::<Vec<_>>(),
                );
                assert_eq!(got, want, "{body}");
            }
            (Err(e), Err(part)) => check_error(body, e, part),
            (got, want) => panic!("{body}: got {got:?}, expected {want:?}"),
        }
    }

    fn check_error(body: &str, e: IngestError, part: &str) {
        let text = e.to_string();
        assert_eq!(e.kind().http_status(), 400, "{body}: {text}");
        assert!(text.contains(part), "{body}: {text:?} lacks {part:?}");
        assert!(
            !text.starts_with(|c: char| c.is_uppercase()),
            "error messages are lowercase: {text}"
        );
    }

    #[test]
    fn event_bodies() {
        check_event(
            r#"{"title":"deploy","text":"v1.2 is out","date_happened":1700000000,"priority":"low",
                "host":"web-1","tags":["env:prod","team:a"],"alert_type":"success","unknown":1}"#,
            Ok((
                "deploy",
                "v1.2 is out",
                Some(1_700_000_000),
                Some("web-1"),
                Some(EventPriority::Low),
                Some("success"),
                vec!["env:prod", "team:a"],
            )),
        );
        check_event(
            r#"{"title":"t","priority":null,"tags":"a,b","date_happened":1700000000.7}"#,
            Ok((
                "t",
                "",
                Some(1_700_000_000),
                None,
                None,
                None,
                vec!["a", "b"],
            )),
        );
        check_event(r#"{"text":"x"}"#, Err("event has no \"title\""));
        check_event(r#"{"title":"  "}"#, Err("event has no \"title\""));
        check_event(
            r#"{"title":5}"#,
            Err("event \"title\" is a number; expected a string"),
        );
        check_event(
            r#"{"title":"t","priority":"urgent"}"#,
            Err("event \"priority\" \"urgent\" is not \"normal\" or \"low\""),
        );
        check_event(
            r#"{"title":"t","alert_type":"fatal"}"#,
            Err("event \"alert_type\" \"fatal\" is not one of error, warning"),
        );
        check_event(
            r#"{"title":"t","date_happened":"yesterday"}"#,
            Err("event \"date_happened\" is a string; expected an integer"),
        );
        check_event(
            r#"{"title":"t","tags":["a",3]}"#,
            Err("event \"tags\"[1] is a number; expected a string"),
        );
        check_event(
            r#"{"title":"t","related_event_id":-1}"#,
            Err("\"related_event_id\" -1 is negative"),
        );
        check_event(
            &format!(r#"{{"title":"t","text":"{}"}}"#, "x".repeat(4001)),
            Err("event \"text\" is 4001 characters long; the limit is 4000"),
        );
        check_event(
            &format!(r#"{{"title":"t","aggregation_key":"{}"}}"#, "k".repeat(101)),
            Err("\"aggregation_key\" is 101 characters long; the limit is 100"),
        );
        check_event("[1]", Err("request body is an array; send an event object"));
        check_event(r#"{"title":"#, Err("malformed json: end of input"));
    }

    #[test]
    fn check_run_bodies() {
        /// (check, status, timestamp, host) per service check.
        type Shape<'a> = Vec<(&'a str, u8, Option<i64>, Option<&'a str>)>;
        fn check(body: &str, expected: Result<Shape<'_>, &str>) {
            match (parse_check_run(body.as_bytes()), expected) {
                (Ok(checks), Ok(want)) => {
                    let got: Vec<_> = checks
                        .iter()
                        .map(|c| {
                            (
                                c.name.as_str(),
                                c.status,
                                c.timestamp,
                                c.hostname.as_deref(),
                            )
                        })
                        .collect();
                    assert_eq!(got, want, "{body}");
                }
                (Err(e), Err(part)) => check_error(body, e, part),
                (got, want) => panic!("{body}: got {got:?}, expected {want:?}"),
            }
        }
        check(
            r#"[{"check":"app.ok","host_name":"h1","status":0,"timestamp":1700000000,"tags":["a"]},
                {"check":"db.up","status":3,"message":"who knows"}]"#,
            Ok(vec![
                ("app.ok", 0, Some(1_700_000_000), Some("h1")),
                ("db.up", 3, None, None),
            ]),
        );
        check(
            r#"{"check":"one","status":2}"#,
            Ok(vec![("one", 2, None, None)]),
        );
        check("[]", Ok(vec![]));
        check(
            r#"[{"check":"x","status":4}]"#,
            Err("service check [0] \"status\" is 4; it must be 0 (ok)"),
        );
        check(r#"[{"check":"x","status":-1}]"#, Err("\"status\" is -1"));
        check(
            r#"[{"check":"x","status":0},{"status":0}]"#,
            Err("service check [1] has no \"check\""),
        );
        check(
            r#"[{"check":"x"}]"#,
            Err("service check [0] has no \"status\""),
        );
        check(
            r#"[{"check":"x","status":"ok"}]"#,
            Err("service check [0] \"status\" is a string; expected an integer"),
        );
        check(
            "[1]",
            Err("service check [0] is a number; each entry must be an object"),
        );
        check("\"x\"", Err("request body is a string"));
        check("", Err("malformed json"));
    }

    fn app(sink: Arc<dyn LogSink>, limits: Limits) -> Router {
        router(log_intake(sink, limits, &mut Registry::default()))
    }

    async fn send(
        app: &Router,
        uri: &str,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Json) {
        post(app, uri, "application/json", encoding, body).await
    }

    #[tokio::test]
    async fn create_event_answers_the_stored_event() {
        let sink = Arc::new(MemorySink::default());
        let app = app(sink.clone(), Limits::default());
        let body = json!({"title": "deploy", "text": "v1.2", "date_happened": 1_700_000_000,
                          "priority": "normal", "host": "web-1", "tags": ["Env:prod"],
                          "alert_type": "info", "aggregation_key": "deploys",
                          "source_type_name": "jenkins", "related_event_id": 7, "device_name": "sda"});
        let (status, _, reply) = send(&app, EVENTS_PATH, None, body.to_string().into_bytes()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
        assert_eq!(reply["status"], "ok");
        let ev = &reply["event"];
        let id = ev["id"].as_u64().unwrap();
        assert_eq!(ev["id_str"], id.to_string());
        assert_eq!(ev["title"], "deploy");
        assert_eq!(ev["text"], "v1.2");
        assert_eq!(ev["date_happened"], 1_700_000_000);
        assert_eq!(ev["priority"], "normal");
        assert_eq!(ev["host"], "web-1");
        assert_eq!(ev["tags"], json!(["env:prod"]));
        assert_eq!(ev["alert_type"], "info");
        assert_eq!(ev["url"], event_url(id));

        let (status, _, reply) = send(
            &app,
            EVENTS_PATH,
            Some("gzip"),
            gzip(br#"{"title":"second"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
        assert_eq!(reply["event"]["priority"], Json::Null);
        assert!(reply["event"]["id"].as_u64().unwrap() > id);
        assert!(reply["event"].get("host").is_none());

        let got = stored_logs(&sink);
        assert_eq!(got.len(), 2);
        let r = &got[0];
        assert_eq!(r.source.as_deref(), Some("event"));
        assert_eq!(r.message, "deploy\nv1.2");
        assert_eq!(r.ts_ns, 1_700_000_000_000_000_000);
        assert_eq!(r.attributes[EVENT_ID_ATTR], id);
        assert_eq!(r.attributes["related_event_id"], 7);
        assert_eq!(r.attributes["device_name"], "sda");
        assert_eq!(r.attributes["aggregation_key"], "deploys");
        assert_eq!(got[1].message, "second");
    }

    #[tokio::test]
    async fn check_run_stores_service_checks() {
        let sink = Arc::new(MemorySink::default());
        let app = app(sink.clone(), Limits::default());
        let body = json!([
            {"check": "app.ok", "host_name": "h1", "status": 0, "tags": ["env:prod"]},
            {"check": "db.up", "host_name": "db-1", "status": 2, "timestamp": 1_700_000_000,
             "message": "connection refused", "tags": []}
        ]);
        let (status, _, reply) =
            send(&app, CHECK_RUN_PATH, None, body.to_string().into_bytes()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
        assert_eq!(reply, json!({"status": "ok"}));
        let got = stored_logs(&sink);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (
                got[0].source.as_deref(),
                got[0].message.as_str(),
                got[0].status.as_str()
            ),
            (Some("service_check"), "app.ok: OK", "ok")
        );
        assert_eq!(got[0].tags, ["env:prod"]);
        assert_eq!(
            (
                got[1].message.as_str(),
                got[1].status.as_str(),
                got[1].ts_ns
            ),
            ("connection refused", "critical", 1_700_000_000_000_000_000)
        );
        assert_eq!(got[1].host.as_deref(), Some("db-1"));

        // An empty list is accepted and writes nothing.
        let (status, _, _) = send(&app, CHECK_RUN_PATH, None, b"[]".to_vec()).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(sink.logs.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn errors() {
        let sink = Arc::new(MemorySink::default());
        let app = app(
            sink.clone(),
            Limits {
                max_body_bytes: 1000,
                ..Limits::default()
            },
        );
        assert_malformed_json(&send(&app, EVENTS_PATH, None, br#"{"title": "x",}"#.to_vec()).await);

        let (status, _, reply) = send(
            &app,
            CHECK_RUN_PATH,
            None,
            br#"[{"check":"x","status":9}]"#.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            reply["errors"][0]
                .as_str()
                .unwrap()
                .contains("\"status\" is 9"),
            "{reply}"
        );

        let (status, _, _) = send(&app, EVENTS_PATH, None, vec![b' '; 2000]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let (status, _, _) = send(&app, CHECK_RUN_PATH, Some("gzip"), gzip(&[b' '; 5000])).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let (status, _, _) = send(&app, EVENTS_PATH, Some("br"), b"{}".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(stored_logs(&sink).is_empty());

        let app = app_overloaded();
        for (path, body) in [
            (EVENTS_PATH, r#"{"title":"x"}"#),
            (CHECK_RUN_PATH, r#"[{"check":"x","status":0}]"#),
        ] {
            assert_overloaded(&send(&app, path, None, body.into()).await, path);
        }
    }

    fn app_overloaded() -> Router {
        app(Arc::new(OverloadedSink), Limits::default())
    }
}

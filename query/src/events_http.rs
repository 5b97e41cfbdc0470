//! `GET /api/v1/events` (Datadog v1 "get a list of events"): events are log records with `source:event`
//! (SPEC §2), so this is a log search shaped like Datadog's `EventListResponse`.
//!
//! Parameters: `start` and `end` (unix seconds, both required, `end` inclusive); `priority` (`low`, or `normal`
//! meaning "not low", as an event without a priority is a normal one); `sources` (comma-separated, any of them,
//! matched against the events' `source_type_name`); `tags` (comma-separated, every one of them: `key:value` tags
//! are searched in the store, bare tags filter the page found); `page` (0-based, 1000 events per page, at most
//! [`MAX_PAGE`]). `unaggregated` and `exclude_aggregate` are accepted and ignored: events are never aggregated.
//!
//! The answer is `{"events":[{id, id_str, title, text, date_happened, priority, host, tags, alert_type, url,
//! source_type_name, device_name}], "status":"ok"}`, newest first, at most 1000 events. `id` is the event's
//! `event_id` attribute (set by the intake), else the record's id; `text` is cut at 4000 characters, as the
//! Datadog clients expect.

use crate::error::QueryError;
use crate::logsearch::parse_search;
use crate::LogQueryState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value as JsonValue};
use sightline_model::{Matcher, SearchExpr, SearchTerm, Span, Target};
use sightline_storage::{LogHit, LogSearch, SortOrder};
use std::collections::HashMap;
use std::sync::Arc;

/// The endpoint's path.
pub const EVENTS_PATH: &str = "/api/v1/events";
/// Events per answer (Datadog's page size).
pub const PAGE_SIZE: usize = 1000;
/// Highest `page` accepted.
pub const MAX_PAGE: u64 = 100;
/// Longest `text` answered, in characters (the Datadog clients refuse longer ones).
const MAX_TEXT_CHARS: usize = 4000;
/// Alert types the Datadog clients accept; anything else is answered as `info`.
const ALERT_TYPES: [&str; 7] = [
    "error",
    "warning",
    "info",
    "success",
    "user_update",
    "recommendation",
    "snapshot",
];
const NS: i64 = 1_000_000_000;

/// The events list route; merge it into the server's router (behind the read-key middleware).
pub fn events_router(state: Arc<LogQueryState>) -> Router {
    Router::new()
        .route(EVENTS_PATH, get(list_events))
        .with_state(state)
}

/// A list request, as the store runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventsRequest {
    pub search: LogSearch,
    /// Bare tags every event must carry (checked on the records found).
    pub bare_tags: Vec<String>,
    /// Pages of [`PAGE_SIZE`] to skip.
    pub page: u64,
}

fn term(target: Target, matcher: Matcher) -> SearchExpr {
    SearchExpr::Term(SearchTerm {
        target,
        matcher,
        span: Span::default(),
    })
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

/// Builds the search from the query parameters.
pub fn build_request(p: &HashMap<String, String>) -> Result<EventsRequest, QueryError> {
    let secs = |name: &str| -> Result<i64, QueryError> {
        let v = p.get(name).map(|v| v.trim()).ok_or_else(|| {
            QueryError::BadParam(format!("missing query parameter \"{name}\" (unix seconds)"))
        })?;
        v.parse::<i64>()
            .ok()
            .filter(|s| (0..i64::MAX / NS - 1).contains(s))
            .ok_or_else(|| {
                QueryError::BadParam(format!("invalid \"{name}\" {v:?}: expected unix seconds"))
            })
    };
    let start = secs("start")?;
    let end = secs("end")?;
    if end < start {
        return Err(QueryError::BadParam(format!(
            "\"end\" ({end}) is before \"start\" ({start})"
        )));
    }
    let mut all = vec![parse_search("source:event")?];
    match p.get("priority").map(|v| v.trim()) {
        None | Some("") => {}
        Some("low") => all.push(low()),
        Some("normal") => all.push(SearchExpr::Not(Box::new(low()))),
        Some(other) => {
            return Err(QueryError::BadParam(format!(
                "invalid \"priority\" {other:?}: expected \"low\" or \"normal\""
            )))
        }
    }
    if let Some(sources) = p.get("sources") {
        let any: Vec<SearchExpr> = split_list(sources)
            .map(|s| {
                term(
                    Target::Attr("source_type_name".into()),
                    Matcher::Exact(s.to_string()),
                )
            })
            .collect();
        if !any.is_empty() {
            all.push(SearchExpr::Or(any));
        }
    }
    let mut bare_tags = Vec::new();
    if let Some(tags) = p.get("tags") {
        for t in split_list(tags) {
            match t.split_once(':') {
                Some((k, v)) if !k.is_empty() => all.push(term(
                    Target::Key(k.to_lowercase()),
                    Matcher::Exact(v.to_string()),
                )),
                _ => bare_tags.push(t.to_string()),
            }
        }
    }
    let page = match p.get("page").map(|v| v.trim()) {
        None | Some("") => 0,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= MAX_PAGE)
            .ok_or_else(|| {
                QueryError::BadParam(format!("invalid \"page\" {v:?}: expected 0 to {MAX_PAGE}"))
            })?,
    };
    Ok(EventsRequest {
        search: LogSearch {
            expr: SearchExpr::And(all),
            from_ns: start * NS,
            to_ns: (end + 1) * NS,
            order: SortOrder::Desc,
            limit: PAGE_SIZE,
            after: None,
        },
        bare_tags,
        page,
    })
}

fn low() -> SearchExpr {
    term(
        Target::Attr("priority".into()),
        Matcher::Exact("low".into()),
    )
}

/// The Datadog `Event` of a stored record.
pub fn event_json(hit: &LogHit) -> JsonValue {
    let r = &hit.record;
    let attr = |k: &str| r.attributes.get(k).and_then(JsonValue::as_str);
    let id = r
        .attributes
        .get("event_id")
        .and_then(JsonValue::as_u64)
        .or_else(|| u64::from_str_radix(&hit.id, 16).ok())
        .unwrap_or_default();
    let (first, rest) = r.message.split_once('\n').unwrap_or((&r.message, ""));
    let title = attr("title").unwrap_or(first);
    let mut text = attr("text").unwrap_or(rest);
    if let Some((cut, _)) = text.char_indices().nth(MAX_TEXT_CHARS) {
        text = &text[..cut];
    }
    let priority = match attr("priority") {
        Some("low") => "low",
        _ => "normal",
    };
    let alert_type = attr("alert_type")
        .filter(|t| ALERT_TYPES.contains(t))
        .unwrap_or("info");
    let mut ev = json!({
        "id": id,
        "id_str": id.to_string(),
        "title": title,
        "text": text,
        "date_happened": r.ts_ns.div_euclid(NS),
        "priority": priority,
        "tags": r.tags,
        "alert_type": alert_type,
        "url": format!("/logs?query=source%3Aevent%20%40event_id%3A{id}"),
    });
    if let Some(h) = &r.host {
        ev["host"] = json!(h);
    }
    for k in ["source_type_name", "device_name"] {
        if let Some(v) = attr(k) {
            ev[k] = json!(v);
        }
    }
    ev
}

async fn list_events(
    State(st): State<Arc<LogQueryState>>,
    p: crate::http::Params,
) -> Result<Json<JsonValue>, QueryError> {
    let p = crate::http::params(p)?;
    let req = build_request(&p)?;
    let reader = st.reader.clone();
    let hits = tokio::task::spawn_blocking(move || -> Result<Vec<LogHit>, QueryError> {
        let mut search = req.search;
        for _ in 0..req.page {
            match reader.search(&search)?.next {
                Some(next) => search.after = Some(next),
                None => return Ok(Vec::new()),
            }
        }
        let mut hits = reader.search(&search)?.hits;
        hits.retain(|h| req.bare_tags.iter().all(|t| h.record.tags.contains(t)));
        Ok(hits)
    })
    .await
    .map_err(|e| QueryError::Internal(e.to_string()))??;
    let events: Vec<JsonValue> = hits.iter().map(event_json).collect();
    Ok(Json(json!({"events": events, "status": "ok"})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::log_store_with;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use sightline_model::LogRecord;
    use tower::ServiceExt;

    const T0: i64 = 1_700_000_000;

    /// A record shaped like the ones the ingest tier stores for an event.
    fn event(secs: i64, title: &str, text: &str, extra: JsonValue, tags: &[&str]) -> LogRecord {
        let mut r = LogRecord::new(secs * NS, format!("{title}\n{text}"));
        r.source = Some("event".into());
        r.host = Some("web-1".into());
        r.tags = tags.iter().map(|t| t.to_string()).collect();
        r.normalize_tags();
        let mut attrs = json!({"title": title, "text": text});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            attrs[k] = v;
        }
        r.attributes = attrs.as_object().cloned().unwrap();
        r
    }

    async fn app() -> (tempfile::TempDir, Router) {
        let mut other = LogRecord::new(T0 * NS, "deploy finished");
        other.source = Some("app".into());
        let mut check = LogRecord::new(T0 * NS, "db.up: OK");
        check.source = Some("service_check".into());
        let records = vec![
            event(
                T0,
                "deploy",
                "v1",
                json!({"event_id": 42, "priority": "low", "alert_type": "success",
                       "source_type_name": "jenkins"}),
                &["env:prod", "team:a"],
            ),
            event(
                T0 + 10,
                "disk full",
                &"x".repeat(5000),
                json!({"alert_type": "bogus"}),
                &["env:dev", "bare"],
            ),
            event(
                T0 + 20,
                "restart",
                "",
                json!({"event_id": 44, "priority": "normal", "source_type_name": "chef"}),
                &["env:prod"],
            ),
            other,
            check,
        ];
        let (dir, store) = log_store_with(records).await;
        let app = events_router(Arc::new(LogQueryState { reader: store }));
        (dir, app)
    }

    async fn get_json(app: &Router, uri: &str) -> (StatusCode, JsonValue) {
        let resp = app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn titles(body: &JsonValue) -> Vec<&str> {
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["title"].as_str().unwrap())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lists_filters_and_shapes_events() {
        let (_dir, app) = app().await;
        let (s, body) = get_json(&app, &format!("/api/v1/events?start={T0}&end={}", T0 + 60)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "ok");
        assert_eq!(titles(&body), ["restart", "disk full", "deploy"]);
        let ev = &body["events"][2];
        assert_eq!(
            *ev,
            json!({"id": 42, "id_str": "42", "title": "deploy", "text": "v1", "date_happened": T0,
                   "priority": "low", "host": "web-1", "tags": ["env:prod", "team:a"],
                   "alert_type": "success", "source_type_name": "jenkins",
                   "url": "/logs?query=source%3Aevent%20%40event_id%3A42"})
        );
        let disk = &body["events"][1];
        assert_eq!(disk["text"].as_str().unwrap().len(), 4000);
        assert_eq!(disk["alert_type"], "info");
        assert_eq!(disk["priority"], "normal");
        assert!(disk["id"].as_u64().is_some());

        let cases: &[(&str, &[&str])] = &[
            // `end` is inclusive; `start` too.
            (&format!("start={T0}&end={T0}"), &["deploy"]),
            (
                &format!("start={}&end={}", T0 + 10, T0 + 20),
                &["restart", "disk full"],
            ),
            (&format!("start={}&end={}", T0 + 21, T0 + 60), &[]),
            (
                &format!("start={T0}&end={}&priority=low", T0 + 60),
                &["deploy"],
            ),
            (
                &format!("start={T0}&end={}&priority=normal", T0 + 60),
                &["restart", "disk full"],
            ),
            (
                &format!("start={T0}&end={}&sources=chef,%20jenkins", T0 + 60),
                &["restart", "deploy"],
            ),
            (
                &format!("start={T0}&end={}&tags=env:prod,team:a", T0 + 60),
                &["deploy"],
            ),
            (
                &format!("start={T0}&end={}&tags=bare", T0 + 60),
                &["disk full"],
            ),
            (&format!("start={T0}&end={}&page=1", T0 + 60), &[]),
            (
                &format!("start={T0}&end={}&unaggregated=true", T0 + 60),
                &["restart", "disk full", "deploy"],
            ),
        ];
        for (q, want) in cases {
            let (s, body) = get_json(&app, &format!("/api/v1/events?{q}")).await;
            assert_eq!(s, StatusCode::OK, "{q}: {body}");
            assert_eq!(titles(&body), *want, "{q}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_parameters() {
        let (_dir, app) = app().await;
        let cases = [
            ("end=5", "missing query parameter \"start\" (unix seconds)"),
            ("start=5", "missing query parameter \"end\" (unix seconds)"),
            (
                "start=abc&end=5",
                "invalid \"start\" \"abc\": expected unix seconds",
            ),
            ("start=5&end=-1", "invalid \"end\" \"-1\""),
            ("start=9&end=5", "\"end\" (5) is before \"start\" (9)"),
            (
                "start=1&end=5&priority=high",
                "invalid \"priority\" \"high\"",
            ),
            (
                "start=1&end=5&page=x",
                "invalid \"page\" \"x\": expected 0 to 100",
            ),
            ("start=1&end=5&page=101", "invalid \"page\" \"101\""),
        ];
        for (q, want) in cases {
            let (s, body) = get_json(&app, &format!("/api/v1/events?{q}")).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {body}");
            let msg = body["errors"][0].as_str().unwrap();
            assert!(msg.contains(want), "{q}: {msg:?} lacks {want:?}");
        }
    }
}

//! Live tail (SPEC §4): `GET /api/ui/logs/tail?query=<search>` streams every newly acknowledged log record
//! that matches the search as server-sent events.
//!
//! Events:
//! - `event: log`, `data:` one JSON object `{id, timestamp, message, status, service, host, tags, attributes}`
//!   (the `attributes` of a search hit plus an `id` counting the events of this stream, as text);
//! - `event: lagged`, `data: {"skipped_batches": n}` when the client fell so far behind that the store's
//!   bounded tail buffer dropped `n` batches for it; the stream goes on with the oldest batch still buffered;
//! - a comment every 15 s to keep proxies from closing an idle connection.
//!
//! The search is validated as the search endpoint does (400 `{"errors":["… at position N"]}`), including the
//! checks the index makes when it compiles a search, then matched in memory with
//! [`crate::logsearch::matches`]. Memory per client is bounded: one batch at a time is held, the rest waits
//! in the store's bounded broadcast buffer.

use crate::error::QueryError;
use crate::logs_http::{page_response, LogQueryState, MAX_SEARCH_BYTES};
use crate::logsearch::{matches, parse_search};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value as JsonValue};
use sightline_model::{LogBatch, LogRecord, SearchExpr};
use sightline_storage::{Cursor, LogHit, LogPage};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{error::RecvError, Receiver};

/// Seconds between keep-alive comments.
pub const KEEP_ALIVE_SECS: u64 = 15;

/// The live tail route; merge it into the server's router.
pub fn tail_router(state: Arc<LogQueryState>) -> Router {
    Router::new()
        .route("/api/ui/logs/tail", get(tail))
        .with_state(state)
}

async fn tail(
    State(st): State<Arc<LogQueryState>>,
    p: crate::http::Params,
) -> Result<Response, QueryError> {
    let p = crate::http::params(p)?;
    let text = p.get("query").map_or("*", String::as_str).to_string();
    if text.len() > MAX_SEARCH_BYTES {
        return Err(QueryError::BadParam(format!(
            "the search is {} bytes long; the limit is {MAX_SEARCH_BYTES} bytes",
            text.len()
        )));
    }
    let expr = parse_search(&text)?;
    // The index's own checks (terms it cannot compile, invalid networks, oversized patterns), so a search
    // the search endpoint refuses is refused here too rather than silently matching nothing.
    let checked = expr.clone();
    tokio::task::spawn_blocking(move || {
        let (_, fields) = sightline_storage::logs::schema::schema();
        sightline_storage::logs::compile::compile(&fields, &checked).map(drop)
    })
    .await
    .map_err(|e| QueryError::Internal(e.to_string()))??;
    // Subscribe before answering: every batch acknowledged after the response starts is seen.
    let tail = Tail {
        rx: st.reader.subscribe(),
        expr,
        batch: None,
        sent: 0,
    };
    let stream = futures_util::stream::unfold(tail, |t| async move {
        let (event, t) = t.next_event().await?;
        Some((Ok::<Event, Infallible>(event), t))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(KEEP_ALIVE_SECS)))
        .into_response())
}

/// The state of one tail stream.
struct Tail {
    rx: Receiver<Arc<LogBatch>>,
    expr: SearchExpr,
    /// The batch being scanned and the index of its next record.
    batch: Option<(Arc<LogBatch>, usize)>,
    /// `log` events sent so far (the next event's id).
    sent: u64,
}

impl Tail {
    /// The next event, or `None` once the store is gone.
    async fn next_event(mut self) -> Option<(Event, Tail)> {
        loop {
            if let Some((batch, next)) = &mut self.batch {
                let found = batch.records[*next..]
                    .iter()
                    .position(|r| matches(&self.expr, r));
                match found {
                    Some(offset) => {
                        let i = *next + offset;
                        *next = i + 1;
                        let event = log_event(self.sent, &batch.records[i]);
                        self.sent += 1;
                        return Some((event, self));
                    }
                    None => self.batch = None,
                }
            }
            match self.rx.recv().await {
                Ok(batch) => self.batch = Some((batch, 0)),
                Err(RecvError::Lagged(n)) => {
                    let data = json!({ "skipped_batches": n }).to_string();
                    return Some((Event::default().event("lagged").data(data), self));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// The `log` event of a record: a search hit's attributes plus the stream's event id.
fn log_event(id: u64, r: &LogRecord) -> Event {
    let page = LogPage {
        hits: vec![LogHit {
            id: id.to_string(),
            cursor: Cursor {
                ts_ns: r.ts_ns,
                seq: id,
            },
            record: r.clone(),
        }],
        next: None,
    };
    let mut hit = page_response(&page, 0);
    let mut data = match hit["data"][0]["attributes"].take() {
        JsonValue::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    data.insert("id".into(), json!(id.to_string()));
    Event::default()
        .event("log")
        .id(id.to_string())
        .data(JsonValue::Object(data).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::open_log_store;
    use axum::body::{Body, Bytes};
    use axum::http::{Request, StatusCode};
    use futures_util::StreamExt;
    use sightline_storage::LogStore;
    use tower::ServiceExt;

    const T0: i64 = 1_700_000_000_123_000_000;

    fn record(message: &str, service: &str, status: &str) -> LogRecord {
        let mut r = LogRecord::new(T0, message);
        r.service = Some(service.into());
        r.status = status.into();
        r.source = Some("app".into());
        r.tags = vec!["env:prod".into()];
        r.attributes = json!({"http": {"status_code": 500}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        r
    }

    fn app(store: &Arc<LogStore>) -> Router {
        tail_router(Arc::new(LogQueryState {
            reader: store.clone(),
        }))
    }

    fn get(uri: &str) -> Request<Body> {
        Request::builder().uri(uri).body(Body::empty()).unwrap()
    }

    /// Reads the body until a whole event with a `data:` line has arrived; returns its text.
    async fn next_event(
        body: &mut (impl futures_util::Stream<Item = Result<Bytes, axum::Error>> + Unpin),
        buf: &mut String,
    ) -> String {
        loop {
            if let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                if event.contains("data:") {
                    return event;
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(2), body.next())
                .await
                .expect("an event within 2 s")
                .expect("the stream goes on")
                .expect("a body chunk");
            buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    fn data(event: &str) -> JsonValue {
        let line = event
            .lines()
            .find_map(|l| l.strip_prefix("data:"))
            .expect("a data line");
        serde_json::from_str(line.trim()).expect("json data")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_only_matching_records() {
        let (_dir, store) = open_log_store();
        let resp = app(&store)
            .oneshot(get(
                "/api/ui/logs/tail?query=service%3Aweb%20status%3Aerror%20%40http.status_code%3A%3E%3D500",
            ))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let mut body = resp.into_body().into_data_stream();
        let mut buf = String::new();
        for (msg, service, status) in [
            ("not me: wrong service", "worker", "error"),
            ("nor me: wrong status", "web", "info"),
            ("upstream timeout", "web", "error"),
        ] {
            store
                .write(LogBatch {
                    records: vec![record(msg, service, status)],
                })
                .await
                .unwrap();
        }
        let event = next_event(&mut body, &mut buf).await;
        assert!(event.contains("event: log"), "{event}");
        let d = data(&event);
        assert_eq!(d["message"], "upstream timeout");
        assert_eq!(d["id"], "0");
        assert_eq!(d["service"], "web");
        assert_eq!(d["status"], "error");
        assert_eq!(d["timestamp"], "2023-11-14T22:13:20.123Z");
        assert_eq!(d["tags"], json!(["env:prod"]));
        assert_eq!(d["attributes"]["http"]["status_code"], 500);
        assert_eq!(d["attributes"]["source"], "app");

        // A batch with several records: only the matching ones, in order, with increasing ids.
        store
            .write(LogBatch {
                records: vec![
                    record("first", "web", "error"),
                    record("skipped", "db", "error"),
                    record("second", "web", "error"),
                ],
            })
            .await
            .unwrap();
        for (id, msg) in [("1", "first"), ("2", "second")] {
            let d = data(&next_event(&mut body, &mut buf).await);
            assert_eq!(
                (d["id"].as_str(), d["message"].as_str()),
                (Some(id), Some(msg))
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lagging_clients_are_told() {
        let (_dir, store) = open_log_store();
        let resp = app(&store)
            .oneshot(get("/api/ui/logs/tail?query=needle"))
            .await
            .unwrap();
        let mut body = resp.into_body().into_data_stream();
        let mut buf = String::new();
        let extra = 5;
        for i in 0..sightline_storage::logs::TAIL_BUFFER_BATCHES + extra {
            store
                .write(LogBatch {
                    records: vec![record(&format!("needle {i}"), "web", "info")],
                })
                .await
                .unwrap();
        }
        let event = next_event(&mut body, &mut buf).await;
        assert!(event.contains("event: lagged"), "{event}");
        assert_eq!(data(&event)["skipped_batches"], extra);
        let d = data(&next_event(&mut body, &mut buf).await);
        assert_eq!(d["message"], format!("needle {extra}"));
    }

    #[tokio::test]
    async fn bad_searches_are_rejected() {
        let (_dir, store) = open_log_store();
        async fn check(app: Router, query: &str, part: &str) {
            let resp = app
                .oneshot(get(&format!("/api/ui/logs/tail?query={query}")))
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{query}");
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            let v: JsonValue = serde_json::from_slice(&body).unwrap();
            let msg = v["errors"][0].as_str().unwrap_or_default();
            assert!(msg.contains(part), "{query}: {msg}");
        }
        // `service:(web` — unbalanced parenthesis.
        check(app(&store), "service%3A(web", "at position").await;
        // `CIDR(@ip, nope)` — the index refuses the network.
        check(app(&store), "CIDR(%40ip%2C%20nope)", "at position").await;
        // `host:>5` — comparisons need an attribute.
        check(app(&store), "host%3A%3E5", "at position").await;
        let long = "a".repeat(MAX_SEARCH_BYTES + 1);
        check(app(&store), &long, "limit").await;
    }
}

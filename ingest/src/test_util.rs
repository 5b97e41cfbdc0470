//! Helpers shared by the receivers' tests: compressed bodies, a sink that pushes back, requests through a
//! router with `tower::ServiceExt::oneshot`, and what a `MemorySink` or a registry holds.

use crate::datadog::logs::LogIntakeState;
use crate::logs::LogMetrics;
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use flate2::Compression;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use serde_json::Value as Json;
use sightline_model::{
    BatchSink, Limits, LogBatch, LogRecord, LogSink, MemorySink, MetricBatch, SinkError,
    WriteOutcome,
};
use std::io::Write;
use std::sync::Arc;
use tower::ServiceExt;

fn compress<W: Write>(mut encoder: W, data: &[u8]) -> W {
    encoder.write_all(data).unwrap();
    encoder
}

/// `data` gzip-compressed.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    compress(GzEncoder::new(Vec::new(), Compression::default()), data)
        .finish()
        .unwrap()
}

/// `data` zlib-wrapped deflate (HTTP's `deflate`).
pub fn zlib(data: &[u8]) -> Vec<u8> {
    compress(ZlibEncoder::new(Vec::new(), Compression::default()), data)
        .finish()
        .unwrap()
}

/// `data` raw deflate, without the zlib header.
pub fn raw_deflate(data: &[u8]) -> Vec<u8> {
    compress(
        DeflateEncoder::new(Vec::new(), Compression::default()),
        data,
    )
    .finish()
    .unwrap()
}

/// Always answers that storage is overloaded, for metrics and logs alike.
pub struct OverloadedSink;

fn overloaded() -> SinkError {
    SinkError::Overloaded("write-ahead log queue is full".into())
}

#[async_trait::async_trait]
impl BatchSink for OverloadedSink {
    async fn write_metrics(&self, _batch: MetricBatch) -> Result<WriteOutcome, SinkError> {
        Err(overloaded())
    }
}

#[async_trait::async_trait]
impl LogSink for OverloadedSink {
    async fn write_logs(&self, _batch: LogBatch) -> Result<WriteOutcome, SinkError> {
        Err(overloaded())
    }
}

/// Every log record the sink was given, in order.
pub fn stored_logs(sink: &MemorySink) -> Vec<LogRecord> {
    sink.logs
        .lock()
        .unwrap()
        .iter()
        .flat_map(|b| b.records.clone())
        .collect()
}

/// The registry in the Prometheus text format.
pub fn metrics_text(registry: &Registry) -> String {
    let mut out = String::new();
    encode(&mut out, registry).unwrap();
    out
}

/// A router writing into a `MemorySink`, with the registry of its metrics.
pub struct Harness {
    pub app: Router,
    pub sink: Arc<MemorySink>,
    pub registry: Registry,
}

impl Harness {
    /// The router `app` builds over a new `MemorySink` and registry.
    pub fn new(app: impl FnOnce(Arc<MemorySink>, &mut Registry) -> Router) -> Harness {
        let sink = Arc::new(MemorySink::default());
        let mut registry = Registry::default();
        let app = app(sink.clone(), &mut registry);
        Harness {
            app,
            sink,
            registry,
        }
    }
}

/// The state of the Datadog logs, events and service checks intakes, its metrics in `registry`.
pub fn log_intake(
    sink: Arc<dyn LogSink>,
    limits: Limits,
    registry: &mut Registry,
) -> Arc<LogIntakeState> {
    Arc::new(LogIntakeState {
        sink,
        limits,
        metrics: LogMetrics::new(registry),
    })
}

/// POSTs `body` to `uri` (with a `DD-API-KEY`, which the routers ignore); returns the status, the headers and
/// the JSON reply.
pub async fn post(
    app: &Router,
    uri: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, Json) {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .header("DD-API-KEY", "ignored-here");
    if let Some(e) = encoding {
        req = req.header(header::CONTENT_ENCODING, e);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{uri}: reply {:?} is not json: {e}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, headers, body)
}

/// Asserts that `reply` (from [`post`]) is the 400 of a malformed JSON body: the message names the line and
/// column, and there is no `Retry-After`.
pub fn assert_malformed_json((status, headers, body): &(StatusCode, HeaderMap, Json)) {
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
    let msg = body["errors"][0].as_str().unwrap();
    assert!(
        msg.starts_with("malformed json: ") && msg.contains("line 1 column"),
        "{msg}"
    );
    assert!(headers.get(header::RETRY_AFTER).is_none());
}

/// Asserts that `reply` (from [`post`]) is the 503 of an overloaded sink, with `Retry-After: 1`.
pub fn assert_overloaded((status, headers, body): &(StatusCode, HeaderMap, Json), what: &str) {
    assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "1");
    assert!(
        body["errors"][0].as_str().unwrap().contains("overloaded"),
        "{body}"
    );
}

//! The OTLP receiver's shells (SPEC §3): HTTP on 4318 (`/v1/traces`, `/v1/metrics`, `/v1/logs`; protobuf or
//! JSON, answered in the request's content type) and gRPC on 4317 (tonic, gzip accepted), both around one core
//! that converts requests and writes them to the span, metric and log sinks.

use super::metrics::MetricsConverter;
use super::{json, logs, traces};
use crate::body::{decode_and_parse, raw_body};
use crate::IngestError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use prost::Message;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sightline_model::{now_ns, BatchSink, ErrorKind, Limits, LogSink, MetricBatch, SpanSink};
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::codec::CompressionEncoding;

/// The OTLP receiver's settings (`[otlp]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// Largest request after decompression, in bytes, on both transports (SPEC §3: 20 MiB). Larger
    /// requests get 413 / RESOURCE_EXHAUSTED; decompression stops at this size.
    pub max_body_bytes: usize,
    /// Cumulative metric streams remembered for differencing; the least recently seen are forgotten first
    /// (their next point is then a baseline again).
    pub max_metric_streams: usize,
    /// Benchmark ceiling only: decode every request, then discard it (nothing is stored).
    pub decode_only: bool,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            max_body_bytes: 20 * 1024 * 1024,
            max_metric_streams: 1_000_000,
            decode_only: false,
        }
    }
}

type Labels = [(&'static str, &'static str); 2];

/// The receiver's own metrics.
#[derive(Debug, Clone, Default)]
pub struct OtlpMetrics {
    /// `sightline_otlp_received_total{signal,transport}`: spans, data points and log records stored.
    pub received: Family<Labels, Counter>,
    /// `sightline_otlp_rejected_total{signal,transport}`: items refused (reported in `partial_success`).
    pub rejected: Family<Labels, Counter>,
    /// `sightline_otlp_failed_requests_total{signal,transport}`: whole requests refused (4xx/5xx).
    pub failed: Family<Labels, Counter>,
    /// `sightline_otlp_red_write_errors_total`: RED metric batches the metric store refused (spans kept).
    pub red_write_errors: Counter,
}

impl OtlpMetrics {
    pub fn new(registry: &mut Registry) -> OtlpMetrics {
        let m = OtlpMetrics::default();
        let r = registry.sub_registry_with_prefix("sightline_otlp");
        r.register(
            "received",
            "OTLP spans, data points and log records stored",
            m.received.clone(),
        );
        r.register(
            "rejected",
            "OTLP items refused and reported in partial_success",
            m.rejected.clone(),
        );
        r.register(
            "failed_requests",
            "OTLP requests refused as a whole",
            m.failed.clone(),
        );
        r.register(
            "red_write_errors",
            "RED metric batches the metric store refused",
            m.red_write_errors.clone(),
        );
        m
    }
}

/// The three signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }
}

/// What happened to one request's items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub accepted: usize,
    pub rejected: usize,
    /// Empty when nothing was rejected.
    pub message: String,
}

/// Checks a request's credentials (headers or gRPC metadata): `Err` with the kind (401/403) and a message.
pub type Authorize = Arc<dyn Fn(&HeaderMap) -> Result<(), (ErrorKind, String)> + Send + Sync>;

/// The receiver's core, shared by both transports.
pub struct Otlp {
    pub spans: Arc<dyn SpanSink>,
    pub metrics_sink: Arc<dyn BatchSink>,
    pub logs: Arc<dyn LogSink>,
    pub converter: MetricsConverter,
    pub cfg: OtlpConfig,
    pub limits: Limits,
    pub stats: OtlpMetrics,
    /// `None`: no keys configured.
    pub authorize: Option<Authorize>,
    /// RED metrics waiting for [`Otlp::flush_red`].
    pub red: traces::RedAggregator,
    /// Spans that start more than this many seconds ago are refused (partial_success), not acknowledged
    /// and then dropped by the span store's retention: `None` keeps every span. See [`Otlp::with_span_retention`].
    pub span_max_age_secs: Option<i64>,
}

fn join_errors(prior: Vec<String>, more: Vec<String>) -> String {
    let mut all = prior;
    for m in more {
        if !all.contains(&m) {
            all.push(m);
        }
    }
    all.join("; ")
}

impl Otlp {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        spans: Arc<dyn SpanSink>,
        metrics_sink: Arc<dyn BatchSink>,
        logs: Arc<dyn LogSink>,
        cfg: OtlpConfig,
        limits: Limits,
        stats: OtlpMetrics,
        authorize: Option<Authorize>,
    ) -> Otlp {
        Otlp {
            converter: MetricsConverter::new(now_ns(), cfg.max_metric_streams),
            spans,
            metrics_sink,
            logs,
            cfg,
            limits,
            stats,
            authorize,
            red: traces::RedAggregator::default(),
            span_max_age_secs: None,
        }
    }

    /// Refuses spans older than the span store keeps (`retention_days`), with a message naming the window.
    pub fn with_span_retention(mut self, retention_days: u32) -> Otlp {
        self.span_max_age_secs = Some(i64::from(retention_days) * 86_400);
        self
    }

    /// Writes the RED metrics accumulated since the last call to the metric store.
    pub async fn flush_red(&self) {
        let batch = self.red.take();
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.metrics_sink.write_metrics(batch).await {
            self.stats.red_write_errors.inc();
            tracing::warn!(error = %e, "the metric store refused RED metrics; the spans are stored");
        }
    }

    /// Flushes RED metrics every second (freshness: SPEC §3's 2 s) until `shutdown` resolves, then once more.
    pub async fn run_red_flusher(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush_red().await,
                _ = &mut shutdown => break,
            }
        }
        self.flush_red().await;
    }

    fn count(&self, signal: Signal, transport: &'static str, o: &Outcome) {
        let labels = [("signal", signal.name()), ("transport", transport)];
        self.stats
            .received
            .get_or_create(&labels)
            .inc_by(o.accepted as u64);
        self.stats
            .rejected
            .get_or_create(&labels)
            .inc_by(o.rejected as u64);
    }

    fn failed(&self, signal: Signal, transport: &'static str, e: &IngestError) {
        let labels = [("signal", signal.name()), ("transport", transport)];
        self.stats.failed.get_or_create(&labels).inc();
        if e.kind().http_status() >= 500 {
            tracing::warn!(signal = signal.name(), transport, error = %e, "otlp export failed");
        } else {
            tracing::debug!(signal = signal.name(), transport, error = %e, "otlp export refused");
        }
    }

    /// Stores a trace request's spans (and their RED metrics). `prior` are items already refused while
    /// decoding.
    pub async fn export_traces(
        &self,
        req: ExportTraceServiceRequest,
        prior: (usize, Vec<String>),
    ) -> Result<Outcome, IngestError> {
        if self.cfg.decode_only {
            return Ok(Outcome::default());
        }
        let mut conv = traces::convert_traces(req);
        if let Some(max_age) = self.span_max_age_secs {
            let window = format!("{} days", max_age / 86_400);
            traces::refuse_older_than(
                &mut conv,
                now_ns().saturating_sub(max_age.saturating_mul(1_000_000_000)),
                &window,
            );
        }
        let accepted = conv.batch.len();
        if !conv.batch.is_empty() {
            // RED metrics count only what was stored: they are added once the spans are durable.
            let red = traces::RedGroups::of(&conv.batch.spans);
            self.spans.write_spans(conv.batch).await?;
            self.red.merge(red);
        }
        Ok(Outcome {
            accepted,
            rejected: prior.0 + conv.rejected,
            message: join_errors(prior.1, conv.errors),
        })
    }

    /// Stores a metric request's data points.
    pub async fn export_metrics(
        &self,
        req: ExportMetricsServiceRequest,
        prior: (usize, Vec<String>),
    ) -> Result<Outcome, IngestError> {
        if self.cfg.decode_only {
            return Ok(Outcome::default());
        }
        let conv = self.converter.convert(&req);
        drop(req);
        let mut rejected = prior.0 + conv.rejected;
        let mut errors = conv.errors;
        let batch: MetricBatch = conv.batch;
        let mut accepted = batch.len();
        if !batch.is_empty() {
            let w = match self.metrics_sink.write_metrics(batch).await {
                Ok(w) => w,
                Err(e) => {
                    // Not stored: the client will retry, and its retry must be differenced again.
                    self.converter.rollback(conv.undo);
                    return Err(e.into());
                }
            };
            accepted = w.accepted;
            rejected += w.rejected;
            errors.extend(w.errors);
        }
        Ok(Outcome {
            accepted,
            rejected,
            message: join_errors(prior.1, errors),
        })
    }

    /// Stores a log request's records.
    pub async fn export_logs(
        &self,
        req: ExportLogsServiceRequest,
        prior: (usize, Vec<String>),
    ) -> Result<Outcome, IngestError> {
        if self.cfg.decode_only {
            return Ok(Outcome::default());
        }
        let conv = logs::convert_logs(&req, now_ns(), self.limits.max_line_bytes);
        drop(req);
        let accepted = conv.batch.len();
        if !conv.batch.is_empty() {
            self.logs.write_logs(conv.batch).await?;
        }
        Ok(Outcome {
            accepted,
            rejected: prior.0 + conv.rejected,
            message: join_errors(prior.1, conv.errors),
        })
    }
}

// ---------------------------------------------------------------------------------------------------------
// HTTP

/// Routes `POST /v1/traces`, `/v1/metrics` and `/v1/logs` (serve them on the OTLP HTTP listener).
pub fn http_router(otlp: Arc<Otlp>) -> Router {
    let limit = otlp.cfg.max_body_bytes;
    Router::new()
        .route("/v1/traces", post(http_traces))
        .route("/v1/metrics", post(http_metrics))
        .route("/v1/logs", post(http_logs))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(otlp)
}

/// The two encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// The request's encoding from its `Content-Type`; anything else is refused (415).
fn encoding(headers: &HeaderMap) -> Result<Encoding, Box<Response>> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mime = ct.split(';').next().unwrap_or("").trim();
    match mime {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        other => {
            let msg = format!(
                "content-type {other:?} is not supported; send application/x-protobuf or application/json"
            );
            Err(Box::new(status_reply(
                Encoding::Json,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                3,
                msg,
                None,
            )))
        }
    }
}

/// `google.rpc.Status`, the body of OTLP/HTTP error replies.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn status_reply(
    enc: Encoding,
    status: StatusCode,
    grpc_code: i32,
    message: String,
    retry_after: Option<u32>,
) -> Response {
    let body = match enc {
        Encoding::Protobuf => RpcStatus {
            code: grpc_code,
            message,
        }
        .encode_to_vec(),
        Encoding::Json => {
            serde_json::to_vec(&json!({"code": grpc_code, "message": message})).unwrap_or_default()
        }
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(enc.content_type()),
    );
    if let Some(secs) = retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn error_reply(enc: Encoding, e: &IngestError) -> Response {
    let kind = e.kind();
    let status =
        StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    status_reply(
        enc,
        status,
        kind.grpc_code(),
        e.to_string(),
        kind.retry_after_secs(),
    )
}

/// A signal's export response, built from an outcome: `partial_success` only when something was refused.
trait ExportResponse: Message + Default {
    /// The rejected count's name in OTLP/JSON.
    const REJECTED_KEY: &'static str;
    fn from_outcome(o: &Outcome) -> Self;
}

fn rejected_i64(o: &Outcome) -> i64 {
    i64::try_from(o.rejected).unwrap_or(i64::MAX)
}

impl ExportResponse for ExportTraceServiceResponse {
    const REJECTED_KEY: &'static str = "rejectedSpans";
    fn from_outcome(o: &Outcome) -> Self {
        ExportTraceServiceResponse {
            partial_success: (o.rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected_i64(o),
                error_message: o.message.clone(),
            }),
        }
    }
}

impl ExportResponse for ExportMetricsServiceResponse {
    const REJECTED_KEY: &'static str = "rejectedDataPoints";
    fn from_outcome(o: &Outcome) -> Self {
        ExportMetricsServiceResponse {
            partial_success: (o.rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: rejected_i64(o),
                error_message: o.message.clone(),
            }),
        }
    }
}

impl ExportResponse for ExportLogsServiceResponse {
    const REJECTED_KEY: &'static str = "rejectedLogRecords";
    fn from_outcome(o: &Outcome) -> Self {
        ExportLogsServiceResponse {
            partial_success: (o.rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected_i64(o),
                error_message: o.message.clone(),
            }),
        }
    }
}

/// The success reply: the export response in the request's encoding.
fn ok_reply<P: ExportResponse>(enc: Encoding, o: &Outcome) -> Response {
    let body = match enc {
        Encoding::Protobuf => P::from_outcome(o).encode_to_vec(),
        Encoding::Json => {
            let v = if o.rejected > 0 {
                json!({"partialSuccess": {P::REJECTED_KEY: o.rejected, "errorMessage": o.message}})
            } else {
                json!({})
            };
            serde_json::to_vec(&v).unwrap_or_default()
        }
    };
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(enc.content_type()),
    );
    resp
}

/// Decoded request plus the items refused while decoding.
type Parsed<R> = (R, (usize, Vec<String>));

async fn http_export<R, P, D, E, F>(
    otlp: &Arc<Otlp>,
    signal: Signal,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    decode_json: D,
    export: E,
) -> Response
where
    R: Message + Default + Send + 'static,
    P: ExportResponse,
    D: Fn(&[u8]) -> Result<json::Decoded<R>, IngestError> + Send + 'static,
    E: FnOnce(Arc<Otlp>, Parsed<R>) -> F,
    F: std::future::Future<Output = Result<Outcome, IngestError>>,
{
    let enc = match encoding(&headers) {
        Ok(e) => e,
        Err(resp) => return *resp,
    };
    if let Some(auth) = &otlp.authorize {
        if let Err((kind, msg)) = auth(&headers) {
            let status =
                StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
            return status_reply(enc, status, kind.grpc_code(), msg, None);
        }
    }
    let limit = otlp.cfg.max_body_bytes;
    let parsed = async {
        let raw = raw_body(body, limit)?;
        decode_and_parse(
            signal.name(),
            &headers,
            raw,
            limit,
            move |bytes| match enc {
                Encoding::Protobuf => R::decode(bytes).map(|r| (r, (0, Vec::new()))).map_err(|e| {
                    IngestError::Invalid(format!(
                        "malformed protobuf: {}",
                        e.to_string().to_lowercase()
                    ))
                }),
                Encoding::Json => decode_json(bytes).map(|d| (d.request, (d.rejected, d.errors))),
            },
        )
        .await
    }
    .await;
    let result = match parsed {
        Ok(p) => export(otlp.clone(), p).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(o) => {
            otlp.count(signal, "http", &o);
            ok_reply::<P>(enc, &o)
        }
        Err(e) => {
            otlp.failed(signal, "http", &e);
            error_reply(enc, &e)
        }
    }
}

async fn http_traces(
    State(otlp): State<Arc<Otlp>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    http_export::<_, ExportTraceServiceResponse, _, _, _>(
        &otlp,
        Signal::Traces,
        headers,
        body,
        json::traces,
        |o, (req, prior)| async move { o.export_traces(req, prior).await },
    )
    .await
}

async fn http_metrics(
    State(otlp): State<Arc<Otlp>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    http_export::<_, ExportMetricsServiceResponse, _, _, _>(
        &otlp,
        Signal::Metrics,
        headers,
        body,
        json::metrics,
        |o, (req, prior)| async move { o.export_metrics(req, prior).await },
    )
    .await
}

async fn http_logs(
    State(otlp): State<Arc<Otlp>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    http_export::<_, ExportLogsServiceResponse, _, _, _>(
        &otlp,
        Signal::Logs,
        headers,
        body,
        json::logs,
        |o, (req, prior)| async move { o.export_logs(req, prior).await },
    )
    .await
}

// ---------------------------------------------------------------------------------------------------------
// gRPC

/// The gRPC services over the shared core.
#[derive(Clone)]
pub struct OtlpGrpc(pub Arc<Otlp>);

fn grpc_status(e: &IngestError) -> tonic::Status {
    let code = tonic::Code::from_i32(e.kind().grpc_code());
    tonic::Status::new(code, e.to_string())
}

impl OtlpGrpc {
    fn check<T>(&self, req: &tonic::Request<T>) -> Result<(), tonic::Status> {
        match &self.0.authorize {
            None => Ok(()),
            Some(auth) => auth(&req.metadata().clone().into_headers()).map_err(|(kind, msg)| {
                tonic::Status::new(tonic::Code::from_i32(kind.grpc_code()), msg)
            }),
        }
    }

    fn finish(
        &self,
        signal: Signal,
        r: Result<Outcome, IngestError>,
    ) -> Result<Outcome, tonic::Status> {
        match r {
            Ok(o) => {
                self.0.count(signal, "grpc", &o);
                Ok(o)
            }
            Err(e) => {
                self.0.failed(signal, "grpc", &e);
                Err(grpc_status(&e))
            }
        }
    }
}

/// One gRPC service: check credentials, export through the core, answer with `partial_success`.
macro_rules! grpc_service {
    ($service:ident, $req:ty, $resp:ty, $signal:expr, $export:ident) => {
        #[tonic::async_trait]
        impl $service for OtlpGrpc {
            async fn export(
                &self,
                request: tonic::Request<$req>,
            ) -> Result<tonic::Response<$resp>, tonic::Status> {
                self.check(&request)?;
                let r = self.0.$export(request.into_inner(), (0, Vec::new())).await;
                let o = self.finish($signal, r)?;
                Ok(tonic::Response::new(<$resp>::from_outcome(&o)))
            }
        }
    };
}

grpc_service!(
    TraceService,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
    Signal::Traces,
    export_traces
);
grpc_service!(
    MetricsService,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
    Signal::Metrics,
    export_metrics
);
grpc_service!(
    LogsService,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
    Signal::Logs,
    export_logs
);

/// tonic refuses a message whose length prefix is over the limit with OUT_OF_RANGE, before reading it; OTLP
/// (SPEC §3) wants RESOURCE_EXHAUSTED, as it gets for a compressed message that inflates past the limit and as
/// grpc-go answers both. The refusal is a trailers-only reply, so its status is in the headers.
fn size_limit_status(
    mut resp: axum::http::Response<tonic::body::Body>,
) -> axum::http::Response<tonic::body::Body> {
    let h = resp.headers_mut();
    let too_large = h
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .is_some_and(|m| {
            m.contains("message length too large") || m.contains("message%20length%20too%20large")
        });
    if too_large && h.get("grpc-status").is_some_and(|v| v == "11") {
        h.insert("grpc-status", HeaderValue::from_static("8"));
    }
    resp
}

/// Serves the three gRPC services on `listener` until `shutdown` resolves. Requests may be gzip-compressed;
/// messages over `max_body_bytes` (after decompression, which stops at the limit) are refused.
pub async fn serve_grpc(
    otlp: Arc<Otlp>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), IngestError> {
    let limit = otlp.cfg.max_body_bytes;
    let g = OtlpGrpc(otlp);
    let local: Option<SocketAddr> = listener.local_addr().ok();
    tonic::transport::Server::builder()
        // Exports are large (a 512-span request is about 400 KB): windows that hold a whole request let it
        // arrive without waiting for WINDOW_UPDATE round trips.
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(16 << 20))
        .layer(tower::util::MapResponseLayer::new(size_limit_status))
        .add_service(
            TraceServiceServer::new(g.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(limit),
        )
        .add_service(
            MetricsServiceServer::new(g.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(limit),
        )
        .add_service(
            LogsServiceServer::new(g)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(limit),
        )
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
        .map_err(|e| IngestError::Internal(format!("otlp grpc server on {local:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::gzip;
    use axum::body::Body;
    use axum::http::Request;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use sightline_model::MemorySink;
    use tower::ServiceExt;

    fn otlp(sink: Arc<MemorySink>, cfg: OtlpConfig) -> Arc<Otlp> {
        Arc::new(Otlp::new(
            sink.clone(),
            sink.clone(),
            sink,
            cfg,
            Limits::default(),
            OtlpMetrics::default(),
            None,
        ))
    }

    fn span(id: u8) -> Span {
        Span {
            trace_id: vec![9; 16],
            span_id: vec![id; 8],
            name: format!("s{id}"),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_000_001_000,
            ..Default::default()
        }
    }

    async fn post(
        app: Router,
        path: &str,
        ct: &str,
        enc: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::post(path).header("content-type", ct);
        if let Some(e) = enc {
            req = req.header("content-encoding", e);
        }
        let resp = app
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        (status, headers, body)
    }

    #[tokio::test]
    async fn protobuf_traces_are_stored_and_answered_in_protobuf() {
        let sink = Arc::new(MemorySink::default());
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![
                        span(1),
                        span(2),
                        Span {
                            span_id: vec![],
                            ..span(3)
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let otlp_core = otlp(sink.clone(), OtlpConfig::default());
        let app = http_router(otlp_core.clone());
        let (status, headers, body) = post(
            app,
            "/v1/traces",
            "application/x-protobuf",
            Some("gzip"),
            gzip(&req.encode_to_vec()),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/x-protobuf");
        let resp = ExportTraceServiceResponse::decode(body.as_slice()).unwrap();
        let partial = resp.partial_success.unwrap();
        assert_eq!(partial.rejected_spans, 1);
        assert!(
            partial.error_message.contains("span id must be 8 bytes"),
            "{}",
            partial.error_message
        );
        assert_eq!(sink.spans.lock().unwrap()[0].spans.len(), 2);
        // RED metrics of the two root spans.
        otlp_core.flush_red().await;
        let names: Vec<String> = sink.batches.lock().unwrap()[0]
            .points
            .iter()
            .map(|p| p.series.name.clone())
            .collect();
        assert!(names.contains(&"trace.s1.hits".to_string()), "{names:?}");
    }

    #[tokio::test]
    async fn http_errors_are_statuses_in_the_request_encoding() {
        let sink = Arc::new(MemorySink::default());
        let app = http_router(otlp(
            sink.clone(),
            OtlpConfig {
                max_body_bytes: 1000,
                ..Default::default()
            },
        ));
        // Garbage protobuf → 400 with a google.rpc.Status body.
        let (status, _, body) = post(
            app.clone(),
            "/v1/traces",
            "application/x-protobuf",
            None,
            vec![0xff; 10],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let st = RpcStatus::decode(body.as_slice()).unwrap();
        assert_eq!(st.code, 3);
        assert!(
            st.message.starts_with("malformed protobuf"),
            "{}",
            st.message
        );
        // A gzip bomb → 413, JSON status.
        let bomb = gzip(&vec![b' '; 1_000_000]);
        let (status, _, body) = post(
            app.clone(),
            "/v1/logs",
            "application/json",
            Some("gzip"),
            bomb,
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], 8);
        // Unknown content type → 415.
        let (status, _, _) = post(
            app.clone(),
            "/v1/metrics",
            "text/plain",
            None,
            b"x".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // Empty request → success with an empty body object.
        let (status, _, body) =
            post(app, "/v1/metrics", "application/json", None, b"{}".to_vec()).await;
        assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"{}"[..]));
        assert!(sink.batches.lock().unwrap().is_empty());
    }

    /// A storage that always pushes back.
    struct Full;

    #[async_trait::async_trait]
    impl SpanSink for Full {
        async fn write_spans(
            &self,
            _: sightline_model::SpanBatch,
        ) -> Result<sightline_model::WriteOutcome, sightline_model::SinkError> {
            Err(sightline_model::SinkError::Overloaded(
                "span head is full".into(),
            ))
        }
    }

    #[tokio::test]
    async fn storage_pushback_is_503_with_retry_after_and_grpc_unavailable() {
        let sink = Arc::new(MemorySink::default());
        let core = Arc::new(Otlp::new(
            Arc::new(Full),
            sink.clone(),
            sink,
            OtlpConfig::default(),
            Limits::default(),
            OtlpMetrics::default(),
            None,
        ));
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span(1)],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let (status, headers, body) = post(
            http_router(core.clone()),
            "/v1/traces",
            "application/x-protobuf",
            None,
            req.encode_to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers["retry-after"], "1");
        let st = RpcStatus::decode(body.as_slice()).unwrap();
        assert_eq!(st.code, 14);
        assert!(st.message.contains("span head is full"), "{}", st.message);
        let err = TraceService::export(&OtlpGrpc(core), tonic::Request::new(req))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable);
    }

    #[tokio::test]
    async fn credentials_are_checked_on_both_transports() {
        let sink = Arc::new(MemorySink::default());
        let authorize: Authorize = Arc::new(|h: &HeaderMap| match h.get("dd-api-key") {
            Some(v) if v == "k1" => Ok(()),
            Some(_) => Err((ErrorKind::Forbidden, "invalid api key".into())),
            None => Err((ErrorKind::Unauthorized, "missing api key".into())),
        });
        let core = Arc::new(Otlp::new(
            sink.clone(),
            sink.clone(),
            sink,
            OtlpConfig::default(),
            Limits::default(),
            OtlpMetrics::default(),
            Some(authorize),
        ));
        let (status, _, _) = post(
            http_router(core.clone()),
            "/v1/logs",
            "application/json",
            None,
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let mut req = tonic::Request::new(ExportLogsServiceRequest::default());
        req.metadata_mut()
            .insert("dd-api-key", "nope".parse().unwrap());
        let err = LogsService::export(&OtlpGrpc(core.clone()), req)
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        let mut req = tonic::Request::new(ExportLogsServiceRequest::default());
        req.metadata_mut()
            .insert("dd-api-key", "k1".parse().unwrap());
        assert!(LogsService::export(&OtlpGrpc(core), req).await.is_ok());
    }

    #[tokio::test]
    async fn decode_only_stores_nothing() {
        let sink = Arc::new(MemorySink::default());
        let app = http_router(otlp(
            sink.clone(),
            OtlpConfig {
                decode_only: true,
                ..Default::default()
            },
        ));
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span(1)],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let (status, _, _) = post(
            app,
            "/v1/traces",
            "application/x-protobuf",
            None,
            req.encode_to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(sink.spans.lock().unwrap().is_empty());
    }
}

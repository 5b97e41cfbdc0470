//! Datadog metrics intake over HTTP: `/api/v2/series`, `/api/v1/series`, `/api/v1/distribution_points`.
//!
//! Each request is decoded (gzip/deflate, under `Limits::max_body_bytes` after decompression), parsed by the
//! pure functions of [`parse`], written to the `BatchSink`, and answered only once the sink says the points
//! are durable: 202 `{"errors":[]}`, or 202 with messages when some series were refused, or an error reply.
//! Authentication is not done here: the binary wraps the router in its API-key middleware.

pub mod events;
pub mod logs;
pub mod parse;

use crate::body::{decode_and_parse, raw_body, refuse_protobuf, ErrorsReply};
use crate::error::IngestError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use sightline_model::{BatchSink, Limits};
use std::sync::Arc;

pub use parse::{parse_distribution_points, parse_series_v1, parse_series_v2, Parsed};

/// What the intake handlers share.
pub struct IntakeState {
    pub sink: Arc<dyn BatchSink>,
    pub limits: Limits,
    pub metrics: IntakeMetrics,
}

/// Label set of the per-endpoint point counters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: &'static str,
}

/// Label set of the request counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
    pub status: u16,
}

/// The intake's own metrics. `endpoint` is the request path, e.g. `/api/v2/series`.
#[derive(Debug, Clone, Default)]
pub struct IntakeMetrics {
    /// `sightline_intake_points_total{endpoint}`: points stored.
    pub points: Family<EndpointLabels, Counter>,
    /// `sightline_intake_rejected_points_total{endpoint}`: points refused (bad series or storage limits).
    pub rejected_points: Family<EndpointLabels, Counter>,
    /// `sightline_intake_requests_total{endpoint,status}`: requests answered, by HTTP status.
    pub requests: Family<RequestLabels, Counter>,
}

impl IntakeMetrics {
    /// Creates the counters and registers them in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = IntakeMetrics::default();
        registry.register(
            "sightline_intake_points",
            "Metric points stored by the HTTP intake",
            m.points.clone(),
        );
        registry.register(
            "sightline_intake_rejected_points",
            "Metric points refused by the HTTP intake (invalid series or storage limits)",
            m.rejected_points.clone(),
        );
        registry.register(
            "sightline_intake_requests",
            "Requests answered by the HTTP intake, by endpoint and status",
            m.requests.clone(),
        );
        m
    }
}

/// One intake endpoint: its path and its parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    SeriesV2,
    SeriesV1,
    DistributionPoints,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::SeriesV2 => "/api/v2/series",
            Endpoint::SeriesV1 => "/api/v1/series",
            Endpoint::DistributionPoints => "/api/v1/distribution_points",
        }
    }

    fn parse(self, json: &[u8], limits: &Limits) -> Result<Parsed, IngestError> {
        match self {
            Endpoint::SeriesV2 => parse_series_v2(json, limits),
            Endpoint::SeriesV1 => parse_series_v1(json, limits),
            Endpoint::DistributionPoints => parse_distribution_points(json, limits),
        }
    }
}

/// The three intake routes, with a raw body limit of `limits.max_body_bytes` (axum's 2 MB default would
/// refuse big payloads). Merge it into the HTTP listener's router behind the auth middleware.
pub fn router(state: Arc<IntakeState>) -> Router {
    let body_limit = state.limits.max_body_bytes;
    Router::new()
        .route(Endpoint::SeriesV2.path(), post(series_v2))
        .route(Endpoint::SeriesV1.path(), post(series_v1))
        .route(
            Endpoint::DistributionPoints.path(),
            post(distribution_points),
        )
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn series_v2(
    State(state): State<Arc<IntakeState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(state, Endpoint::SeriesV2, headers, body).await
}

async fn series_v1(
    State(state): State<Arc<IntakeState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(state, Endpoint::SeriesV1, headers, body).await
}

async fn distribution_points(
    State(state): State<Arc<IntakeState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(state, Endpoint::DistributionPoints, headers, body).await
}

/// Runs one request and counts it by status.
async fn handle(
    state: Arc<IntakeState>,
    endpoint: Endpoint,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let reply = match intake(&state, endpoint, &headers, body).await {
        Ok(reply) => reply,
        Err(e) => ErrorsReply::failed(endpoint.path(), "metrics intake", e),
    };
    let labels = RequestLabels {
        endpoint: endpoint.path(),
        status: reply.status.as_u16(),
    };
    state.metrics.requests.get_or_create(&labels).inc();
    reply.into_response()
}

/// Decodes, parses and stores one request; answers 202 once the sink has the points, or 400 when every
/// series was refused.
async fn intake(
    state: &IntakeState,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<ErrorsReply, IngestError> {
    let raw = raw_body(body, state.limits.max_body_bytes)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    refuse_protobuf(content_type, endpoint.path(), "application/json")?;
    let limits = state.limits.clone();
    let parsed = decode_and_parse(
        endpoint.path(),
        headers,
        raw,
        limits.max_body_bytes,
        move |json| endpoint.parse(json, &limits),
    )
    .await?;

    let Parsed {
        batch,
        mut errors,
        rejected_points,
    } = parsed;
    let mut rejected = rejected_points;
    let mut accepted = 0;
    if !batch.is_empty() {
        let outcome = state.sink.write_metrics(batch).await?;
        accepted = outcome.accepted;
        rejected += outcome.rejected;
        errors.extend(outcome.errors);
    }
    let labels = EndpointLabels {
        endpoint: endpoint.path(),
    };
    state
        .metrics
        .points
        .get_or_create(&labels)
        .inc_by(accepted as u64);
    if rejected > 0 {
        state
            .metrics
            .rejected_points
            .get_or_create(&labels)
            .inc_by(rejected as u64);
    }
    let status = if accepted == 0 && !errors.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::ACCEPTED
    };
    Ok(ErrorsReply::new(status, errors))
}

#[cfg(test)]
mod tests;

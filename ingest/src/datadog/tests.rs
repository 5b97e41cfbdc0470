//! Router tests: requests through `tower::ServiceExt::oneshot` into a `MemorySink` (or a sink that pushes back).

use super::*;
use crate::test_util::{gzip, metrics_text, post, zlib, Harness, OverloadedSink};
use axum::http::HeaderValue;
use serde_json::{json, Value as Json};
use sightline_model::{MemorySink, MetricBatch, MetricKind, SinkError, Value, WriteOutcome};

/// Keeps the first point of each batch and refuses the rest with a cardinality message.
struct RejectingSink;

#[async_trait::async_trait]
impl BatchSink for RejectingSink {
    async fn write_metrics(&self, batch: MetricBatch) -> Result<WriteOutcome, SinkError> {
        let n = batch.len();
        Ok(WriteOutcome {
            accepted: n.min(1),
            rejected: n.saturating_sub(1),
            errors: vec!["metric \"m\": 200000 series; the limit is 200000".into()],
        })
    }
}

fn app(sink: Arc<dyn BatchSink>, limits: Limits, registry: &mut Registry) -> Router {
    router(Arc::new(IntakeState {
        sink,
        limits,
        metrics: IntakeMetrics::new(registry),
    }))
}

fn harness(limits: Limits) -> Harness {
    Harness::new(|sink, registry| app(sink, limits, registry))
}

fn harness_with(sink: Arc<dyn BatchSink>) -> Router {
    app(sink, Limits::default(), &mut Registry::default())
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Json,
}

async fn send(app: &Router, path: &str, encoding: Option<&str>, body: Vec<u8>) -> Reply {
    let (status, headers, body) = post(app, path, "application/json", encoding, body).await;
    Reply {
        status,
        headers,
        body,
    }
}

fn stored(sink: &MemorySink) -> Vec<(String, Vec<String>, MetricKind, i64, f64)> {
    let batches: Vec<MetricBatch> = sink.batches.lock().unwrap().clone();
    batches
        .iter()
        .flat_map(|b| b.points.iter())
        .map(|p| {
            let v = match &p.value {
                Value::Scalar(v) => *v,
                Value::Sketch(s) => s.count() as f64,
            };
            (
                p.series.name.clone(),
                p.series.tags.as_slice().to_vec(),
                p.kind,
                p.timestamp,
                v,
            )
        })
        .collect()
}

fn v2_body() -> Vec<u8> {
    json!({"series": [
        {"metric": "app.requests", "type": 1, "interval": 10,
         "points": [{"timestamp": 1_700_000_000, "value": 12.0}],
         "resources": [{"name": "web1", "type": "host"}], "tags": ["env:prod"]},
        {"metric": "app.temp", "type": 3, "points": [{"timestamp": 1_700_000_000, "value": 21.5}]}
    ]})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn v2_accepted_and_stored() {
    let h = harness(Limits::default());
    let r = send(&h.app, "/api/v2/series", None, v2_body()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.body, json!({"errors": []}));
    assert_eq!(
        stored(&h.sink),
        [
            (
                "app.requests".into(),
                vec!["env:prod".into(), "host:web1".into()],
                MetricKind::Count,
                1_700_000_000,
                12.0
            ),
            (
                "app.temp".into(),
                vec![],
                MetricKind::Gauge,
                1_700_000_000,
                21.5
            ),
        ]
    );
    let text = metrics_text(&h.registry);
    assert!(
        text.contains(r#"sightline_intake_points_total{endpoint="/api/v2/series"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"sightline_intake_requests_total{endpoint="/api/v2/series",status="202"} 1"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn compressed_bodies() {
    for (encoding, body) in [("deflate", zlib(&v2_body())), ("gzip", gzip(&v2_body()))] {
        let h = harness(Limits::default());
        let r = send(&h.app, "/api/v2/series", Some(encoding), body).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{encoding}: {}", r.body);
        assert_eq!(stored(&h.sink).len(), 2, "{encoding}");
    }
}

#[tokio::test]
async fn malformed_json_names_the_position() {
    let h = harness(Limits::default());
    let r = send(&h.app, "/api/v2/series", None, b"{\"series\" [".to_vec()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        json!({"errors": ["malformed json: expected `:` at line 1 column 11"]})
    );
    assert!(h.sink.batches.lock().unwrap().is_empty());
    let text = metrics_text(&h.registry);
    assert!(
        text.contains(
            r#"sightline_intake_requests_total{endpoint="/api/v2/series",status="400"} 1"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn too_large_after_decompression_is_413() {
    let limits = Limits {
        max_body_bytes: 4096,
        ..Limits::default()
    };
    let h = harness(limits);
    let series: Vec<Json> = (0..200)
        .map(|i| json!({"metric": format!("m{i}"), "points": [{"timestamp": 10, "value": 1.0}]}))
        .collect();
    let plain = json!({ "series": series }).to_string().into_bytes();
    assert!(plain.len() > 4096);
    let compressed = gzip(&plain);
    assert!(compressed.len() < 4096);
    let r = send(&h.app, "/api/v2/series", Some("gzip"), compressed).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.body,
        json!({"errors": ["request body is over 4096 bytes after gzip decompression; the limit is 4096"]})
    );
    // A plain body over the limit is refused by the body limit layer, in the same shape.
    let r = send(&h.app, "/api/v2/series", None, plain).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.body,
        json!({"errors": ["request body is over the limit of 4096 bytes"]})
    );
    assert!(h.sink.batches.lock().unwrap().is_empty());
}

#[tokio::test]
async fn bodies_over_axum_default_limit_are_accepted() {
    let h = harness(Limits::default());
    let series: Vec<Json> = (0..40_000)
        .map(|i| json!({"metric": "big.metric", "tags": [format!("i:{i}")], "points": [{"timestamp": 10, "value": 1.0}]}))
        .collect();
    let plain = json!({ "series": series }).to_string().into_bytes();
    assert!(plain.len() > 2 * 1024 * 1024, "{} bytes", plain.len());
    let r = send(&h.app, "/api/v2/series", None, plain).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(stored(&h.sink).len(), 40_000);
}

#[tokio::test]
async fn too_many_tags_rejects_only_that_series() {
    let h = harness(Limits::default());
    let many: Vec<String> = (0..150).map(|i| format!("t{i}:x")).collect();
    let body = json!({"series": [
        {"metric": "good.one", "points": [{"timestamp": 10, "value": 1.0}]},
        {"metric": "a.b", "points": [{"timestamp": 10, "value": 1.0}], "tags": many},
        {"metric": "good.two", "points": [{"timestamp": 10, "value": 2.0}]}
    ]});
    let r = send(
        &h.app,
        "/api/v2/series",
        None,
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        r.body,
        json!({"errors": ["metric \"a.b\": 150 tags on one point; the limit is 100"]})
    );
    let names: Vec<String> = stored(&h.sink).into_iter().map(|p| p.0).collect();
    assert_eq!(names, ["good.one", "good.two"]);
    let text = metrics_text(&h.registry);
    assert!(
        text.contains(r#"sightline_intake_rejected_points_total{endpoint="/api/v2/series"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"sightline_intake_points_total{endpoint="/api/v2/series"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn everything_rejected_is_400() {
    let h = harness(Limits::default());
    let body = json!({"series": [{"metric": "", "points": [{"timestamp": 10, "value": 1.0}]}]});
    let r = send(
        &h.app,
        "/api/v2/series",
        None,
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        json!({"errors": ["metric \"\": empty metric name"]})
    );
    assert!(h.sink.batches.lock().unwrap().is_empty());
}

#[tokio::test]
async fn empty_series_list_is_accepted() {
    let h = harness(Limits::default());
    let r = send(&h.app, "/api/v2/series", None, br#"{"series":[]}"#.to_vec()).await;
    assert_eq!(
        (r.status, r.body),
        (StatusCode::ACCEPTED, json!({"errors": []}))
    );
    assert!(h.sink.batches.lock().unwrap().is_empty());
}

#[tokio::test]
async fn rate_is_stored_as_count_over_interval() {
    let h = harness(Limits::default());
    let body = json!({"series": [
        {"metric": "req.rate", "type": 2, "interval": 10, "points": [{"timestamp": 100, "value": 2.5}]}
    ]});
    let r = send(
        &h.app,
        "/api/v2/series",
        Some("deflate"),
        zlib(body.to_string().as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let batches = h.sink.batches.lock().unwrap().clone();
    let p = &batches[0].points[0];
    assert_eq!(
        (p.kind, p.interval, &p.value),
        (MetricKind::Rate, 10, &Value::Scalar(25.0))
    );
}

#[tokio::test]
async fn v1_series() {
    let h = harness(Limits::default());
    let body = json!({"series": [
        {"metric": "sys.load", "points": [[1_700_000_000, 0.7]], "host": "db1", "device": "sda", "tags": ["role:db"]},
        {"metric": "hits", "type": "rate", "interval": 20, "points": [[1_700_000_000.0, 1.5]]},
        {"metric": "jobs", "type": "count", "points": [[1_700_000_000, 3]]}
    ]});
    let r = send(
        &h.app,
        "/api/v1/series",
        Some("gzip"),
        gzip(body.to_string().as_bytes()),
    )
    .await;
    assert_eq!(
        (r.status, r.body),
        (StatusCode::ACCEPTED, json!({"errors": []}))
    );
    assert_eq!(
        stored(&h.sink),
        [
            (
                "sys.load".into(),
                vec!["device:sda".into(), "host:db1".into(), "role:db".into()],
                MetricKind::Gauge,
                1_700_000_000,
                0.7
            ),
            ("hits".into(), vec![], MetricKind::Rate, 1_700_000_000, 30.0),
            ("jobs".into(), vec![], MetricKind::Count, 1_700_000_000, 3.0),
        ]
    );
}

#[tokio::test]
async fn distribution_points() {
    let h = harness(Limits::default());
    let body = json!({"series": [
        {"metric": "latency", "points": [[1_700_000_000, [1.0, 2.0, 3.0, 250.0]]], "host": "h1", "tags": ["svc:api"], "type": "distribution"}
    ]});
    let r = send(
        &h.app,
        "/api/v1/distribution_points",
        None,
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        (r.status, r.body),
        (StatusCode::ACCEPTED, json!({"errors": []}))
    );
    let batches = h.sink.batches.lock().unwrap().clone();
    let p = &batches[0].points[0];
    assert_eq!(p.kind, MetricKind::Distribution);
    assert_eq!(p.series.tags.as_slice(), ["host:h1", "svc:api"]);
    let Value::Sketch(sk) = &p.value else {
        panic!("not a sketch: {:?}", p.value)
    };
    assert_eq!((sk.count(), sk.max()), (4, Some(250.0)));
    let text = metrics_text(&h.registry);
    assert!(
        text.contains(r#"sightline_intake_points_total{endpoint="/api/v1/distribution_points"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn overloaded_sink_is_503_with_retry_after() {
    let app = harness_with(Arc::new(OverloadedSink));
    let r = send(&app, "/api/v2/series", None, v2_body()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.headers.get(header::RETRY_AFTER),
        Some(&HeaderValue::from_static("1"))
    );
    assert_eq!(
        r.body,
        json!({"errors": ["storage is overloaded: write-ahead log queue is full"]})
    );
}

#[tokio::test]
async fn storage_rejections_are_reported() {
    let app = harness_with(Arc::new(RejectingSink));
    let r = send(&app, "/api/v2/series", None, v2_body()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        r.body,
        json!({"errors": ["metric \"m\": 200000 series; the limit is 200000"]})
    );
}

#[tokio::test]
async fn bad_encoding_and_content_type() {
    let h = harness(Limits::default());
    let r = send(&h.app, "/api/v2/series", Some("br"), v2_body()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        json!({"errors": ["unsupported content-encoding \"br\"; use gzip, deflate or identity"]})
    );
    let r = send(&h.app, "/api/v2/series", Some("gzip"), v2_body()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("malformed gzip body: "),
        "{}",
        r.body
    );

    let (status, _, body) = post(
        &h.app,
        "/api/v2/series",
        "application/x-protobuf",
        None,
        vec![0u8, 1, 2],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors": ["content-type \"application/x-protobuf\" is not supported on /api/v2/series; send application/json"]})
    );
}

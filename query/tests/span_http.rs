//! Router tests for the span query API (`spans_router`), through `tower::ServiceExt::oneshot`, over in-memory
//! spans, an on-disk log store in a temporary directory and an in-memory metric store. The trace view's full
//! body is a golden file, `golden/span_trace.json`; regenerate it with
//! `SIGHTLINE_UPDATE_GOLDEN=1 cargo test -p sightline-query --test span_http`, then review the diff.

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use sightline_model::{
    red_metric_prefix, Limits, LogRecord, MetricBatch, MetricKind, MetricPoint, SeriesKey, Sketch,
    SpanEvent, SpanKind, SpanLink, SpanRecord, TagSet, Value as MetricValue,
};
use sightline_query::{spans_router, SpanQueryState};
use sightline_storage::{MemMetricStore, MemorySpans};
use std::path::PathBuf;
use std::sync::Arc;
use tempfile::TempDir;
use tower::ServiceExt;

#[path = "../src/test_util.rs"]
mod test_util;

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000_000_000;
const MS: i64 = 1_000_000;
const TRACE: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];
const TRACE_HEX: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn id(i: u8) -> [u8; 8] {
    [0, 0, 0, 0, 0, 0, 0, i]
}

/// A checkout trace: a server root, a DB call, a failing payment call with a child in another service, and an
/// orphan whose parent never arrived; plus 30 unrelated spans of another trace, one per second.
fn spans() -> Vec<SpanRecord> {
    let mut out = Vec::new();
    let mut root = SpanRecord::new(TRACE, id(1), None, "shop", "http.request", T0, 120 * MS);
    root.resource = "POST /checkout".into();
    root.kind = SpanKind::Server;
    root.env = Some("prod".into());
    root.host = Some("web-1".into());
    root.version = Some("1.2.3".into());
    root.attributes = json!({"http.route": "/checkout", "http.status_code": 502})
        .as_object()
        .cloned()
        .unwrap();
    root.resource_attributes = json!({"k8s.pod.name": "shop-7d9"})
        .as_object()
        .cloned()
        .unwrap();
    root.error = true;
    root.status_message = "upstream failed".into();
    out.push(root);
    let mut db = SpanRecord::new(
        TRACE,
        id(2),
        Some(id(1)),
        "shop",
        "postgres.query",
        T0 + 5 * MS,
        20 * MS,
    );
    db.resource = "SELECT * FROM carts".into();
    db.kind = SpanKind::Client;
    db.env = Some("prod".into());
    db.attributes = json!({"db.system": "postgresql", "db.rows": 3})
        .as_object()
        .cloned()
        .unwrap();
    out.push(db);
    let mut pay = SpanRecord::new(
        TRACE,
        id(3),
        Some(id(1)),
        "shop",
        "http.client",
        T0 + 30 * MS,
        80 * MS,
    );
    pay.resource = "POST /charge".into();
    pay.kind = SpanKind::Client;
    pay.env = Some("prod".into());
    pay.error = true;
    pay.events.push(SpanEvent {
        ts_ns: T0 + 100 * MS,
        name: "exception".into(),
        attributes: json!({"exception.type": "Timeout"})
            .as_object()
            .cloned()
            .unwrap(),
    });
    out.push(pay);
    let mut charge = SpanRecord::new(
        TRACE,
        id(4),
        Some(id(3)),
        "payments",
        "charge",
        T0 + 35 * MS,
        70 * MS,
    );
    charge.kind = SpanKind::Server;
    charge.error = true;
    charge.links.push(SpanLink {
        trace_id: [9; 16],
        span_id: id(9),
        attributes: Default::default(),
    });
    out.push(charge);
    let orphan = SpanRecord::new(
        TRACE,
        id(5),
        Some(id(42)),
        "mailer",
        "send",
        T0 + 200 * MS,
        10 * MS,
    );
    out.push(orphan);
    for i in 0..30u8 {
        let mut s = SpanRecord::new(
            [0x11; 16],
            [0x20, 0, 0, 0, 0, 0, 0, i],
            None,
            if i % 3 == 0 { "search" } else { "catalog" },
            "http.request",
            T0 + i64::from(i) * 1_000_000_000,
            i64::from(i + 1) * MS,
        );
        s.kind = SpanKind::Server;
        s.attributes = json!({"http.status_code": if i % 10 == 9 { 500 } else { 200 }})
            .as_object()
            .cloned()
            .unwrap();
        out.push(s);
    }
    out
}

fn logs() -> Vec<LogRecord> {
    let mut out = Vec::new();
    for (dt, msg, span) in [(110, "charge timed out", 3u8), (6, "cart loaded", 2)] {
        let mut r = LogRecord::new(T0 + dt * MS, msg);
        r.service = Some("shop".into());
        r.status = if span == 3 { "error" } else { "info" }.into();
        r.trace_id = Some(TRACE_HEX.into());
        r.span_id = Some(format!("{:016x}", span));
        out.push(r);
    }
    let mut other = LogRecord::new(T0, "unrelated");
    other.trace_id = Some("11".repeat(16));
    out.push(other);
    out
}

fn metrics() -> MemMetricStore {
    let store = MemMetricStore::new(Limits::default());
    let mut points = Vec::new();
    let secs = T0 / 1_000_000_000;
    for (name, service, resource, n, errors, dur) in [
        ("http.request", "shop", "POST_/checkout", 40.0, 4.0, 0.120),
        ("http.request", "shop", "GET_/cart", 20.0, 0.0, 0.010),
        ("charge", "payments", "charge", 10.0, 5.0, 0.070),
    ] {
        let tags = TagSet::parse(
            [
                format!("service:{service}"),
                format!("resource:{resource}"),
                "span.kind:server".to_string(),
                "env:prod".to_string(),
            ],
            10,
            200,
        )
        .unwrap();
        let prefix = red_metric_prefix(name);
        let mut sk = Sketch::new();
        sk.add_n(dur, n as u64);
        for (suffix, kind, value) in [
            ("hits", MetricKind::Count, MetricValue::Scalar(n)),
            ("errors", MetricKind::Count, MetricValue::Scalar(errors)),
            (
                "duration",
                MetricKind::Distribution,
                MetricValue::Sketch(Box::new(sk)),
            ),
        ] {
            points.push(MetricPoint {
                series: SeriesKey::new(format!("{prefix}.{suffix}"), tags.clone()),
                kind,
                timestamp: secs,
                interval: 10,
                value,
            });
        }
    }
    store.apply(&MetricBatch { points });
    store
}

async fn app() -> (TempDir, axum::Router) {
    let (dir, logs) = test_util::log_store_with(logs()).await;
    let state = SpanQueryState {
        spans: Arc::new(MemorySpans::new(spans())),
        logs,
        metrics: Arc::new(metrics()),
    };
    (dir, spans_router(Arc::new(state)))
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let uri = req.uri().to_string();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = to_bytes(resp.into_body(), 1 << 22).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{uri}: {e}: {bytes:?}"));
    (status, body)
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    call(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post(app: &axum::Router, uri: &str, body: &str) -> (StatusCode, Value) {
    let req = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    call(app, req).await
}

fn search_body(query: &str, limit: i64, sort: &str, cursor: Option<&str>) -> String {
    json!({"data": {"type": "search_request", "attributes": {
        "filter": {"query": query, "from": "2023-11-14T22:00:00Z", "to": T0 / MS + 60_000},
        "page": {"limit": limit, "cursor": cursor},
        "sort": sort,
    }}})
    .to_string()
}

fn error_of(body: &Value) -> String {
    body["errors"][0].as_str().unwrap_or_default().to_string()
}

fn check_golden(name: &str, got: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let text = serde_json::to_string_pretty(got).unwrap() + "\n";
    if std::env::var_os("SIGHTLINE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set SIGHTLINE_UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    let want: Value = serde_json::from_str(&want).unwrap();
    assert_eq!(
        got, &want,
        "{name} differs; regenerate with SIGHTLINE_UPDATE_GOLDEN=1 and review"
    );
}

#[tokio::test]
async fn search_pages_with_cursor_and_next_link() {
    let (_dir, app) = app().await;
    let (status, body) = post(
        &app,
        "/api/v2/spans/events/search",
        &search_body("service:shop", 2, "timestamp", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let first = &data[0];
    assert_eq!(first["type"], "spans");
    assert_eq!(first["id"], "0000000000000001");
    let a = &first["attributes"];
    for (k, v) in [
        ("service", json!("shop")),
        ("resource_name", json!("POST /checkout")),
        ("operation_name", json!("http.request")),
        ("trace_id", json!(TRACE_HEX)),
        ("span_id", json!("0000000000000001")),
        ("parent_id", json!("0")),
        ("start_timestamp", json!("2023-11-14T22:13:20.000000000Z")),
        ("end_timestamp", json!("2023-11-14T22:13:20.120000000Z")),
        ("duration", json!(120 * MS)),
        ("env", json!("prod")),
        ("host", json!("web-1")),
        ("version", json!("1.2.3")),
        ("status", json!("error")),
        ("span_kind", json!("server")),
        ("status_message", json!("upstream failed")),
        (
            "tags",
            json!([
                "env:prod",
                "host:web-1",
                "k8s.pod.name:shop-7d9",
                "service:shop",
                "version:1.2.3"
            ]),
        ),
        (
            "attributes",
            json!({"http.route": "/checkout", "http.status_code": 502}),
        ),
        (
            "custom",
            json!({"http": {"route": "/checkout", "status_code": 502}, "k8s": {"pod": {"name": "shop-7d9"}},
                   "duration": 120 * MS}),
        ),
    ] {
        assert_eq!(a[k], v, "{k}");
    }
    assert_eq!(data[1]["attributes"]["parent_id"], "0000000000000001");
    let after = body["meta"]["page"]["after"].as_str().unwrap().to_string();
    assert_eq!(body["meta"]["status"], "done");
    // The next page through the POST cursor …
    let (_, page2) = post(
        &app,
        "/api/v2/spans/events/search",
        &search_body("service:shop", 2, "timestamp", Some(&after)),
    )
    .await;
    let ids: Vec<&str> = page2["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["0000000000000003"]);
    assert!(
        page2["meta"].get("page").is_none() && page2.get("links").is_none(),
        "{page2}"
    );
    // … and through links.next (the GET form).
    let next = body["links"]["next"].as_str().unwrap();
    assert!(next.starts_with("/api/v2/spans/events?"), "{next}");
    let (status, page2b) = get(&app, next).await;
    assert_eq!(status, StatusCode::OK, "{page2b}");
    assert_eq!(page2b["data"], page2["data"]);
    // Newest first by default, GET form with relative-free absolute times.
    let (_, desc) = get(
        &app,
        "/api/v2/spans/events?filter%5Bquery%5D=%40http.status_code%3A500&filter%5Bfrom%5D=1700000000000&filter%5Bto%5D=1700000060000",
    )
    .await;
    let ids: Vec<&str> = desc["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["200000000000001d", "2000000000000013", "2000000000000009"]
    );
    // The bare attributes form is accepted too.
    let (status, bare) = post(
        &app,
        "/api/v2/spans/events/search",
        &json!({"filter": {"query": "@duration:>=100ms", "from": T0 / MS, "to": T0 / MS + 60_000}})
            .to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{bare}");
    assert_eq!(bare["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_requests_name_the_problem() {
    let (_dir, app) = app().await;
    let search = "/api/v2/spans/events/search";
    for (body, part) in [
        ("{", "malformed request body"),
        ("[1]", "expected a JSON object"),
        (r#"{"data": 3}"#, "\"data\" must be an object"),
        (
            r#"{"data": {"type": "aggregate_request"}}"#,
            "invalid data.type",
        ),
        (
            r#"{"data": {"attributes": {"filter": {"query": "service:(a"}}}}"#,
            "at position 8",
        ),
        (
            r#"{"data": {"attributes": {"filter": {"query": "service:>3"}}}}"#,
            "at position 0: \"service\" is not numeric",
        ),
        (
            r#"{"data": {"attributes": {"sort": "duration"}}}"#,
            "invalid sort",
        ),
        (
            r#"{"data": {"attributes": {"page": {"limit": 0}}}}"#,
            "invalid page limit",
        ),
        (
            r#"{"data": {"attributes": {"page": {"cursor": "nope"}}}}"#,
            "invalid page cursor",
        ),
        (
            r#"{"data": {"attributes": {"filter": {"from": "yesterday"}}}}"#,
            "invalid time",
        ),
        (
            r#"{"data": {"attributes": {"filter": {"query": 5}}}}"#,
            "malformed request body",
        ),
    ] {
        let (status, resp) = post(&app, search, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert!(error_of(&resp).contains(part), "{body}: {resp}");
    }
    let (status, resp) = get(&app, "/api/v2/spans/events?page%5Blimit%5D=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&resp).contains("page[limit]"), "{resp}");
    let agg = "/api/v2/spans/analytics/aggregate";
    for (attrs, part) in [
        (
            json!({"compute": [{"aggregation": "pc101", "metric": "@duration"}]}),
            "invalid aggregation",
        ),
        (
            json!({"compute": [{"aggregation": "avg"}]}),
            "needs a \"metric\"",
        ),
        (
            json!({"compute": [{"aggregation": "avg", "metric": "duration"}]}),
            "must be @duration",
        ),
        (
            json!({"compute": [{"aggregation": "count", "type": "series"}]}),
            "invalid compute type",
        ),
        (
            json!({"compute": [{"aggregation": "count", "type": "timeseries", "interval": "1x"}]}),
            "invalid interval",
        ),
        (
            json!({"group_by": [{"facet": "service", "histogram": {"interval": 10}}]}),
            "histogram",
        ),
        (
            json!({"group_by": [{"facet": "service", "total": [1]}]}),
            "group_by[0].total",
        ),
        (json!({"group_by": [{"limit": 3}]}), "needs a \"facet\""),
        (
            json!({"filter": {"query": "a OR"}}),
            "expected a term after \"OR\"",
        ),
        // The widest range there is, with a time series: refused for its bucket count, no overflow.
        (
            json!({"compute": [{"aggregation": "count", "type": "timeseries", "interval": "1s"}],
                   "filter": {"from": -9_000_000_000_000i64, "to": 9_000_000_000_000i64}}),
            "time buckets",
        ),
    ] {
        let body = json!({"data": {"type": "aggregate_request", "attributes": attrs}}).to_string();
        let (status, resp) = post(&app, agg, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert!(error_of(&resp).contains(part), "{body}: {resp}");
    }
    for (uri, status, part) in [
        (
            "/api/ui/traces/xyz",
            StatusCode::BAD_REQUEST,
            "invalid trace id \"xyz\"",
        ),
        (
            "/api/ui/traces/00000000000000000000000000000bad",
            StatusCode::NOT_FOUND,
            "trace 00000000000000000000000000000bad not found",
        ),
        (
            "/api/ui/services?from=abc",
            StatusCode::BAD_REQUEST,
            "invalid parameter \"from\"",
        ),
        (
            "/api/ui/services?from=20&to=10",
            StatusCode::BAD_REQUEST,
            "must be before",
        ),
        (
            "/api/ui/services?to=-9223372036854775808",
            StatusCode::BAD_REQUEST,
            "invalid parameter \"to\"",
        ),
    ] {
        let (got, resp) = get(&app, uri).await;
        assert_eq!(got, status, "{uri}: {resp}");
        assert!(error_of(&resp).contains(part), "{uri}: {resp}");
    }
}

#[tokio::test]
async fn aggregate_spans() {
    let (_dir, app) = app().await;
    let body = json!({"data": {"type": "aggregate_request", "attributes": {
        "compute": [
            {"aggregation": "count"},
            {"aggregation": "pc99", "metric": "@duration"},
            {"aggregation": "cardinality", "metric": "service"},
        ],
        "filter": {"query": "span.kind:server", "from": T0 / MS, "to": T0 / MS + 60_000},
        "group_by": [{"facet": "service", "limit": 2, "sort": {"aggregation": "count", "order": "desc"}, "total": true}],
    }}})
    .to_string();
    let (status, resp) = post(&app, "/api/v2/spans/analytics/aggregate", &body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["meta"]["status"], "done");
    let data = resp["data"].as_array().unwrap();
    let rows: Vec<(Value, Value)> = data
        .iter()
        .map(|b| {
            (
                b["attributes"]["by"]["service"].clone(),
                b["attributes"]["computes"]["c0"].clone(),
            )
        })
        .collect();
    // Server spans: shop root, payments charge, 20 catalog, 10 search.
    assert_eq!(
        rows,
        [
            (json!("catalog"), json!(20.0)),
            (json!("search"), json!(10.0)),
            (json!("$facet_total"), json!(32.0)),
        ]
    );
    assert_eq!(data[0]["type"], "bucket");
    assert_eq!(data[0]["id"], r#"{"service":"catalog"}"#);
    assert_eq!(
        data[0]["attributes"]["compute"],
        data[0]["attributes"]["computes"]
    );
    assert_eq!(data[2]["attributes"]["computes"]["c2"], json!(4.0));
    // A time series of counts over 10 s buckets.
    let body = json!({"data": {"type": "aggregate_request", "attributes": {
        "compute": [{"aggregation": "count", "type": "timeseries", "interval": "10s"}],
        "filter": {"query": "service:catalog", "from": T0 / MS, "to": T0 / MS + 29_999},
    }}})
    .to_string();
    let (status, resp) = post(&app, "/api/v2/spans/analytics/aggregate", &body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(
        resp["data"][0]["attributes"]["computes"]["c0"],
        json!([
            {"time": "2023-11-14T22:13:20.000Z", "value": 6.0},
            {"time": "2023-11-14T22:13:30.000Z", "value": 7.0},
            {"time": "2023-11-14T22:13:40.000Z", "value": 7.0},
        ])
    );
}

#[tokio::test]
async fn trace_view_golden() {
    let (_dir, app) = app().await;
    let (status, body) = get(
        &app,
        &format!("/api/ui/traces/{}", TRACE_HEX.to_uppercase()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["span_count"], 5);
    assert_eq!(
        body["logs"].as_array().unwrap().len(),
        2,
        "{}",
        body["logs"]
    );
    check_golden("span_trace.json", &body);
}

#[tokio::test]
async fn services_red() {
    let (_dir, app) = app().await;
    let from = T0 / 1_000_000_000 - 50;
    let (status, body) = get(
        &app,
        &format!("/api/ui/services?from={from}&to={}", from + 100),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["from"], from);
    let services = body["services"].as_array().unwrap();
    assert_eq!(services.len(), 2);
    let shop = &services[0];
    assert_eq!(shop["service"], "shop");
    assert_eq!(shop["hits"], 60);
    assert_eq!(shop["errors"], 4);
    assert_eq!(shop["requests_per_sec"], 0.6);
    assert_eq!(shop["errors_per_sec"], 0.04);
    let rate = shop["error_rate"].as_f64().unwrap();
    assert!((rate - 4.0 / 60.0).abs() < 1e-12, "{rate}");
    let checkout = &shop["resources"][0];
    assert_eq!(checkout["resource"], "POST_/checkout");
    assert_eq!(checkout["operation"], "http.request");
    assert_eq!(checkout["span_kind"], "server");
    let p95 = checkout["p95"].as_f64().unwrap();
    assert!((p95 - 120e6).abs() / 120e6 < 0.011, "{p95}");
    assert_eq!(shop["resources"][1]["resource"], "GET_/cart");
    assert_eq!(services[1]["service"], "payments");
    assert_eq!(services[1]["error_rate"], 0.5);
    // The default range (the last hour) holds nothing from 2023.
    let (status, body) = get(&app, "/api/ui/services").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["services"], json!([]));
    let (_, body) = get(
        &app,
        &format!("/api/ui/services?from={from}&to={}&env=dev", from + 100),
    )
    .await;
    assert_eq!(body["services"], json!([]));
}

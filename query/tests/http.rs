//! Router tests for the query HTTP API, through `tower::ServiceExt::oneshot`.

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use sightline_model::{
    Limits, MetricBatch, MetricKind, MetricPoint, SeriesKey, TagSet, Value as V,
};
use sightline_query::{router, QueryState};
use sightline_storage::MemMetricStore;
use std::sync::Arc;
use tower::ServiceExt;

const T: i64 = 1_699_999_200;

fn app() -> axum::Router {
    let store = MemMetricStore::new(Limits::default());
    let mut points = Vec::new();
    for (name, tags, kind, dt, v) in [
        (
            "web.hits",
            vec!["host:a", "env:prod"],
            MetricKind::Rate,
            0,
            50.0,
        ),
        (
            "web.hits",
            vec!["host:b", "env:prod"],
            MetricKind::Rate,
            0,
            100.0,
        ),
        (
            "web.hits",
            vec!["host:b", "env:prod"],
            MetricKind::Rate,
            10,
            20.0,
        ),
        ("web.latency.avg", vec!["host:a"], MetricKind::Gauge, 0, 3.0),
        (
            "db.conns",
            vec!["host:db", "role:primary", "bare"],
            MetricKind::Gauge,
            0,
            7.0,
        ),
    ] {
        points.push(MetricPoint {
            series: SeriesKey::new(name, TagSet::parse(tags, 100, 200).unwrap()),
            kind,
            timestamp: T + dt,
            interval: 10,
            value: V::Scalar(v),
        });
    }
    store.apply(&MetricBatch { points });
    router(QueryState::new(Arc::new(store)))
}

async fn get(uri: &str) -> (StatusCode, Value) {
    let resp = app()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{uri}: {e}: {bytes:?}"));
    (status, body)
}

fn enc(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn query_answers_in_datadog_shape() {
    let q = "sum:web.hits{env:prod} by {host}.as_count()";
    let (status, body) = get(&format!(
        "/api/v1/query?from={T}&to={}&query={}",
        T + 30,
        enc(q)
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["res_type"], "time_series");
    assert_eq!(body["resp_version"], 1);
    assert_eq!(body["query"], q);
    assert_eq!(body["message"], "");
    assert_eq!(body["from_date"], T * 1000);
    assert_eq!(body["to_date"], (T + 30) * 1000);
    assert_eq!(body["group_by"], json!(["host"]));
    let series = body["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    let b = &series[1];
    assert_eq!(
        b,
        &json!({
            "metric": "web.hits",
            "display_name": "web.hits",
            "scope": "host:b,env:prod",
            "tag_set": ["host:b"],
            "expression": "sum:web.hits{host:b,env:prod}.as_count()",
            "aggr": "sum",
            "pointlist": [[(T * 1000) as f64, 100.0], [((T + 10) * 1000) as f64, 20.0], [((T + 20) * 1000) as f64, null]],
            "start": T * 1000,
            "end": (T + 30) * 1000 - 1,
            "interval": 10,
            "length": 3,
            "query_index": 0,
            "unit": null,
        })
    );
    // Timestamps are JSON floats, as the official clients expect.
    assert!(b["pointlist"][0][0].is_f64());
}

#[tokio::test]
async fn query_errors_name_the_problem() {
    let (status, body) = get(&format!(
        "/api/v1/query?from={T}&to={}&query={}",
        T + 30,
        enc("avg:x{env:prod")
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors": ["at position 14: expected \"}\" after scope, found end of query"]})
    );
    let (status, body) = get(&format!("/api/v1/query?to={}&query=avg:x{{*}}", T + 30)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"errors": ["missing parameter \"from\""]}));
    let (status, body) = get(&format!("/api/v1/query?from=yesterday&to={T}&query=avg:x")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors": ["invalid parameter \"from\": expected unix seconds, found \"yesterday\""]})
    );
    let (status, body) = get(&format!("/api/v1/query?from={T}&to={T}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"errors": ["missing parameter \"query\""]}));
    let (status, body) = get(&format!(
        "/api/v1/query?from={T}&to={}&query={}",
        T - 10,
        enc("avg:x{*}")
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("must be before"),
        "{body}"
    );
    let (status, body) = get(&format!(
        "/api/v1/query?from={T}&to={}&query={}",
        T + 30,
        enc("p99:web.latency.avg{*}")
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["errors"][0],
        "at position 4: percentile aggregator p99 needs a distribution, but metric \"web.latency.avg\" is a gauge"
    );
}

#[tokio::test]
async fn long_queries_are_refused_not_crashing() {
    // A 5,000-term chain (~10 KB) once overflowed the evaluator's stack; the parser now refuses it.
    let chain = vec!["1"; 5000].join("+");
    let (status, body) = get(&format!(
        "/api/v1/query?from={T}&to={}&query={}",
        T + 30,
        enc(&chain)
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors": ["at position 1000: query is too complex: more than 1000 terms and operators"]})
    );
    // Metric terms count too: 1,000 terms (under the length cap) stop at the 501st, at byte 8000.
    let chain = vec!["avg:web.hits{*}"; 1000].join("+");
    assert!(chain.len() < 16 * 1024);
    let (status, body) = get(&format!(
        "/api/v1/query?from={T}&to={}&query={}",
        T + 30,
        enc(&chain)
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors": ["at position 8000: query is too complex: more than 1000 terms and operators"]})
    );
    // Text over 16 KiB is refused before parsing, naming its length and the limit.
    let long = format!("avg:web.hits{{{}}}", "a".repeat(20_000));
    let (status, body) = get(&format!(
        "/api/v1/query?from={T}&to={}&query={}",
        T + 30,
        enc(&long)
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors": ["the query is 20014 bytes long; the limit is 16384 bytes"]})
    );
    // Just under the cap is parsed as usual.
    let (status, _) = get(&format!(
        "/api/v1/query?from={T}&to={}&query={}",
        T + 30,
        enc(&format!("avg:web.hits{{{}}}", "a".repeat(16_000)))
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn metric_listing_tags_and_search() {
    let (status, body) = get(&format!("/api/v1/metrics?from={}", T - 60)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"metrics": ["db.conns", "web.hits", "web.latency.avg"], "from": (T - 60).to_string()})
    );
    let (status, body) = get("/api/v1/metrics").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"errors": ["missing parameter \"from\""]})
        )
    );

    let (status, body) = get("/api/v2/metrics/db.conns/all-tags").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"data": {"type": "metrics", "id": "db.conns", "attributes": {"tags": ["bare", "host:db", "role:primary"]}}})
    );
    let (status, body) = get("/api/v2/metrics/nope/all-tags").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"errors": ["metric \"nope\" not found"]})
        )
    );

    let (status, body) = get("/api/v1/search?q=metrics:web.").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"results": {"metrics": ["web.hits", "web.latency.avg"]}})
    );
}

#[tokio::test]
async fn autocomplete() {
    let (_, body) = get("/api/ui/autocomplete?kind=metric&prefix=web").await;
    assert_eq!(
        body,
        json!({"kind": "metric", "values": ["web.hits", "web.latency.avg"]})
    );
    let (_, body) = get("/api/ui/autocomplete?kind=tag_key&metric=web.hits").await;
    assert_eq!(body, json!({"kind": "tag_key", "values": ["env", "host"]}));
    let (_, body) = get("/api/ui/autocomplete?kind=tag_key&prefix=r").await;
    assert_eq!(body, json!({"kind": "tag_key", "values": ["role"]}));
    let (_, body) = get("/api/ui/autocomplete?kind=tag_value&metric=web.hits&key=host").await;
    assert_eq!(
        body,
        json!({"kind": "tag_value", "values": ["host:a", "host:b"]})
    );
    let (_, body) = get(&format!(
        "/api/ui/autocomplete?kind=tag_value&prefix={}",
        enc("host:d")
    ))
    .await;
    assert_eq!(body, json!({"kind": "tag_value", "values": ["host:db"]}));
    let (status, body) = get("/api/ui/autocomplete?kind=facet&prefix=x").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"errors": ["facet completion arrives with logs"]})
        )
    );
    let (status, body) = get("/api/ui/autocomplete?kind=host").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0].as_str().unwrap().contains("\"host\""),
        "{body}"
    );
}

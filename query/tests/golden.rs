//! Golden files: full `/api/v1/query` response bodies for a few queries, in `tests/golden/*.json`.
//! Regenerate with `SIGHTLINE_UPDATE_GOLDEN=1 cargo test -p sightline-query --test golden`, then review the diff.

use sightline_model::{
    Limits, MetricBatch, MetricKind, MetricPoint, SeriesKey, Sketch, TagSet, Value,
};
use sightline_query::http::query_response;
use sightline_query::run_query;
use sightline_storage::MemMetricStore;
use std::path::PathBuf;

const T: i64 = 1_699_999_200;

fn store() -> MemMetricStore {
    let st = MemMetricStore::new(Limits::default());
    let mut points = Vec::new();
    let mut add = |name: &str, tags: &[&str], kind: MetricKind, dt: i64, value: Value| {
        points.push(MetricPoint {
            series: SeriesKey::new(name, TagSet::parse(tags.iter().copied(), 100, 200).unwrap()),
            kind,
            timestamp: T + dt,
            interval: 10,
            value,
        })
    };
    for (i, dt) in (0..60).step_by(10).enumerate() {
        let i = i as f64;
        let sc = Value::Scalar;
        add(
            "http.requests",
            &["host:a", "env:prod"],
            MetricKind::Rate,
            dt,
            sc(10.0 + i),
        );
        add(
            "http.requests",
            &["host:b", "env:prod"],
            MetricKind::Rate,
            dt,
            sc(20.0 * i),
        );
        add(
            "http.requests",
            &["host:c", "env:dev"],
            MetricKind::Rate,
            dt,
            sc(5.0),
        );
        add(
            "system.load.1",
            &["host:a"],
            MetricKind::Gauge,
            dt,
            sc(0.5 + i / 10.0),
        );
        if dt != 30 {
            add("system.load.1", &["host:b"], MetricKind::Gauge, dt, sc(2.0));
        }
        let mut sk = Sketch::new();
        for k in 1..=100 {
            sk.add(k as f64 * (1.0 + i));
        }
        add(
            "http.latency",
            &["host:a"],
            MetricKind::Distribution,
            dt,
            Value::Sketch(Box::new(sk)),
        );
    }
    st.apply(&MetricBatch { points });
    st
}

fn check(name: &str, query: &str) {
    let st = store();
    let out = run_query(query, T, T + 60, &st).unwrap_or_else(|e| panic!("{query}: {e}"));
    let got = serde_json::to_string_pretty(&query_response(query, &out)).unwrap() + "\n";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    if std::env::var_os("SIGHTLINE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with SIGHTLINE_UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert_eq!(
        got,
        want,
        "{name}: response differs from {}",
        path.display()
    );
}

#[test]
fn rate_grouped_by_host() {
    check("rate_by_host", "sum:http.requests{env:prod} by {host}");
}

#[test]
fn count_with_rollup() {
    check(
        "count_rollup",
        "sum:http.requests{*}.as_count().rollup(sum, 30)",
    );
}

#[test]
fn gauge_with_fill_and_arithmetic() {
    check(
        "gauge_fill_arith",
        "avg:system.load.1{*} by {host}.fill(last) * 100, max:system.load.1{host:b}",
    );
}

#[test]
fn distribution_percentile() {
    check(
        "percentile",
        "p90:http.latency{*}.rollup(30), avg:http.latency{host:a}.rollup(30)",
    );
}

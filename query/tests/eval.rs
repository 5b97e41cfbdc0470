//! Evaluator tests against the in-memory metric store, with exact expected pointlists.

use sightline_model::{
    Limits, MetricBatch, MetricKind, MetricPoint, SeriesKey, Sketch, TagSet, Value,
};
use sightline_query::eval::choose_step;
use sightline_query::{run_query, QueryOutput};
use sightline_storage::MemMetricStore;

/// A whole hour, so buckets of every nice step start here.
const T: i64 = 1_699_999_200;

fn store() -> MemMetricStore {
    MemMetricStore::new(Limits::default())
}

fn point(name: &str, tags: &[&str], kind: MetricKind, ts: i64, value: Value) -> MetricPoint {
    MetricPoint {
        series: SeriesKey::new(name, TagSet::parse(tags.iter().copied(), 100, 200).unwrap()),
        kind,
        timestamp: ts,
        interval: 10,
        value,
    }
}

/// Writes scalar points `(offset from T, value)` of one series.
fn put(s: &MemMetricStore, name: &str, tags: &[&str], kind: MetricKind, pts: &[(i64, f64)]) {
    let points = pts
        .iter()
        .map(|(dt, v)| point(name, tags, kind, T + dt, Value::Scalar(*v)))
        .collect();
    s.apply(&MetricBatch { points });
}

/// Writes one sketch point holding `vals` at `T + dt`.
fn put_sketch(
    s: &MemMetricStore,
    name: &str,
    tags: &[&str],
    kind: MetricKind,
    dt: i64,
    vals: &[f64],
) {
    let mut sk = Sketch::new();
    vals.iter().for_each(|v| sk.add(*v));
    s.apply(&MetricBatch {
        points: vec![point(name, tags, kind, T + dt, Value::Sketch(Box::new(sk)))],
    });
}

fn run(s: &MemMetricStore, q: &str, secs: i64) -> QueryOutput {
    run_query(q, T, T + secs, s).unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// The values of result series `i`, after checking the timestamps step by `interval` from T.
fn vals(out: &QueryOutput, i: usize) -> Vec<Option<f64>> {
    let s = &out.series[i];
    for (k, (ts, _)) in s.points.iter().enumerate() {
        assert_eq!(
            *ts,
            T + k as i64 * s.interval,
            "timestamp {k} of {}",
            s.expression
        );
    }
    s.points.iter().map(|(_, v)| *v).collect()
}

fn only(out: &QueryOutput) -> Vec<Option<f64>> {
    assert_eq!(out.series.len(), 1, "{:#?}", out.series);
    vals(out, 0)
}

const N: Option<f64> = None;

fn s(v: &[f64]) -> Vec<Option<f64>> {
    v.iter().map(|x| Some(*x)).collect()
}

#[test]
fn counts_as_count_and_as_rate() {
    let st = store();
    put(
        &st,
        "jobs",
        &["host:a"],
        MetricKind::Count,
        &[(0, 5.0), (10, 10.0), (20, 15.0)],
    );
    put(
        &st,
        "hits",
        &["host:a"],
        MetricKind::Rate,
        &[(0, 5.0), (10, 10.0), (20, 15.0)],
    );
    // Count: counts per interval by default; Rate: per second by default.
    assert_eq!(
        only(&run(&st, "sum:jobs{*}", 60)),
        vec![Some(5.0), Some(10.0), Some(15.0), N, N, N]
    );
    assert_eq!(
        only(&run(&st, "sum:jobs{*}.as_rate()", 60)),
        vec![Some(0.5), Some(1.0), Some(1.5), N, N, N]
    );
    assert_eq!(
        only(&run(&st, "sum:hits{*}", 60)),
        vec![Some(0.5), Some(1.0), Some(1.5), N, N, N]
    );
    assert_eq!(
        only(&run(&st, "sum:hits{*}.as_count()", 60)),
        vec![Some(5.0), Some(10.0), Some(15.0), N, N, N]
    );
    // Rolled up to 30 s: the counts sum; the rate is the total over 30 s.
    assert_eq!(
        only(&run(&st, "sum:hits{*}.as_count().rollup(sum, 30)", 60)),
        vec![Some(30.0), N]
    );
    assert_eq!(
        only(&run(&st, "sum:hits{*}.rollup(30)", 60)),
        vec![Some(1.0), N]
    );
    let out = run(&st, "sum:hits{*}.rollup(30)", 60);
    assert_eq!(out.series[0].interval, 30);
    assert_eq!(out.series[0].aggr.as_deref(), Some("sum"));
}

#[test]
fn grouped_sums_and_missing_group_key() {
    let st = store();
    put(
        &st,
        "req",
        &["env:prod", "host:a"],
        MetricKind::Count,
        &[(0, 1.0), (10, 2.0)],
    );
    put(
        &st,
        "req",
        &["env:prod", "host:a", "az:1"],
        MetricKind::Count,
        &[(0, 10.0)],
    );
    put(
        &st,
        "req",
        &["env:prod", "host:b"],
        MetricKind::Count,
        &[(0, 3.0)],
    );
    put(
        &st,
        "req",
        &["env:dev", "host:c"],
        MetricKind::Count,
        &[(0, 100.0)],
    );
    put(&st, "req", &["env:prod"], MetricKind::Count, &[(10, 7.0)]);
    let out = run(&st, "sum:req{env:prod} by {host}", 20);
    let groups: Vec<_> = out.series.iter().map(|s| s.tag_set.clone()).collect();
    assert_eq!(
        groups,
        vec![
            vec!["host:a".to_string()],
            vec!["host:b".into()],
            vec!["host:n/a".into()]
        ]
    );
    assert_eq!(vals(&out, 0), s(&[11.0, 2.0]));
    assert_eq!(vals(&out, 1), vec![Some(3.0), N]);
    assert_eq!(vals(&out, 2), vec![N, Some(7.0)]);
    assert_eq!(out.series[0].scope, "host:a,env:prod");
    assert_eq!(out.series[0].expression, "sum:req{host:a,env:prod}");
    assert_eq!(out.group_by, vec!["host".to_string()]);
    // No grouping: one series over every matching series.
    assert_eq!(only(&run(&st, "sum:req{*}", 20)), s(&[114.0, 9.0]));
    // Average across series, per bucket.
    assert_eq!(
        only(&run(&st, "avg:req{env:prod}", 20)),
        s(&[14.0 / 3.0, 4.5])
    );
    assert_eq!(only(&run(&st, "count:req{*}", 20)), s(&[4.0, 2.0]));
}

#[test]
fn gauges_average_and_sets() {
    let st = store();
    put(
        &st,
        "temp",
        &["host:a"],
        MetricKind::Gauge,
        &[(0, 10.0), (10, 20.0), (20, 30.0), (30, 40.0)],
    );
    put(
        &st,
        "temp",
        &["host:b"],
        MetricKind::Gauge,
        &[(0, 2.0), (10, 4.0)],
    );
    assert_eq!(
        only(&run(&st, "avg:temp{*}", 40)),
        s(&[6.0, 12.0, 30.0, 40.0])
    );
    assert_eq!(
        only(&run(&st, "max:temp{*}", 40)),
        s(&[10.0, 20.0, 30.0, 40.0])
    );
    assert_eq!(
        only(&run(&st, "min:temp{*}", 40)),
        s(&[2.0, 4.0, 30.0, 40.0])
    );
    // Time aggregation of a gauge averages; then space aggregation sums.
    assert_eq!(
        only(&run(&st, "sum:temp{*}.rollup(20)", 40)),
        s(&[18.0, 35.0])
    );
    // Sets are stored as gauges of their unique count.
    put(
        &st,
        "users.set",
        &["host:a"],
        MetricKind::Gauge,
        &[(0, 3.0), (10, 5.0)],
    );
    put(
        &st,
        "users.set",
        &["host:b"],
        MetricKind::Gauge,
        &[(0, 1.0)],
    );
    assert_eq!(only(&run(&st, "sum:users.set{*}", 20)), s(&[4.0, 5.0]));
}

#[test]
fn rollup_functions() {
    let st = store();
    put(
        &st,
        "g",
        &[],
        MetricKind::Gauge,
        &[(0, 1.0), (10, 5.0), (20, 3.0), (30, 8.0), (40, 2.0)],
    );
    assert_eq!(
        only(&run(&st, "avg:g{*}.rollup(max, 30)", 60)),
        s(&[5.0, 8.0])
    );
    assert_eq!(
        only(&run(&st, "avg:g{*}.rollup(min, 30)", 60)),
        s(&[1.0, 2.0])
    );
    assert_eq!(
        only(&run(&st, "avg:g{*}.rollup(sum, 30)", 60)),
        s(&[9.0, 10.0])
    );
    assert_eq!(
        only(&run(&st, "avg:g{*}.rollup(count, 30)", 60)),
        s(&[3.0, 2.0])
    );
    assert_eq!(
        only(&run(&st, "avg:g{*}.rollup(avg, 30)", 60)),
        s(&[3.0, 5.0])
    );
    assert_eq!(
        only(&run(&st, "avg:g{*}.rollup(max)", 30)),
        s(&[1.0, 5.0, 3.0])
    );
}

#[test]
fn fills() {
    let st = store();
    put(
        &st,
        "g",
        &[],
        MetricKind::Gauge,
        &[(0, 1.0), (40, 5.0), (100, 7.0)],
    );
    let q = |m: &str| only(&run(&st, &format!("avg:g{{*}}{m}"), 120));
    assert_eq!(
        q(""),
        vec![Some(1.0), N, N, N, Some(5.0), N, N, N, N, N, Some(7.0), N]
    );
    assert_eq!(q(".fill(null)"), q(""));
    assert_eq!(
        q(".fill(zero)"),
        s(&[1.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 7.0, 0.0])
    );
    assert_eq!(
        q(".fill(last)"),
        s(&[1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 7.0, 7.0])
    );
    assert_eq!(
        q(".fill(last, 20)"),
        vec![
            Some(1.0),
            Some(1.0),
            Some(1.0),
            N,
            Some(5.0),
            Some(5.0),
            Some(5.0),
            N,
            N,
            N,
            Some(7.0),
            Some(7.0)
        ]
    );
    let linear: Vec<Option<f64>> = (0..4)
        .map(|k| Some(1.0 + 4.0 * k as f64 / 4.0))
        .chain((0..6).map(|k| Some(5.0 + 2.0 * k as f64 / 6.0)))
        .chain([Some(7.0), N])
        .collect();
    assert_eq!(q(".fill(linear)"), linear);
    // A gap of 5 missing intervals (50 s) is over a 40 s limit: left empty.
    assert_eq!(
        q(".fill(linear, 40)"),
        vec![
            Some(1.0),
            Some(2.0),
            Some(3.0),
            Some(4.0),
            Some(5.0),
            N,
            N,
            N,
            N,
            N,
            Some(7.0),
            N
        ]
    );
}

#[test]
fn arithmetic() {
    let st = store();
    put(
        &st,
        "errors",
        &["host:a"],
        MetricKind::Count,
        &[(0, 2.0), (10, 3.0)],
    );
    put(&st, "errors", &["host:b"], MetricKind::Count, &[(0, 1.0)]);
    put(
        &st,
        "total",
        &["host:a"],
        MetricKind::Count,
        &[(0, 10.0), (10, 30.0)],
    );
    put(
        &st,
        "total",
        &["host:b"],
        MetricKind::Count,
        &[(0, 4.0), (10, 8.0)],
    );
    put(&st, "total", &["host:c"], MetricKind::Count, &[(0, 4.0)]);
    assert_eq!(
        only(&run(&st, "sum:errors{*} / sum:total{*} * 100", 20)),
        s(&[3.0 / 18.0 * 100.0, 3.0 / 38.0 * 100.0])
    );
    // Groups match by tags; unmatched groups drop out.
    let out = run(&st, "sum:errors{*} by {host} / sum:total{*} by {host}", 20);
    assert_eq!(out.series.len(), 2);
    assert_eq!(out.series[0].tag_set, vec!["host:a".to_string()]);
    assert_eq!(vals(&out, 0), s(&[0.2, 0.1]));
    assert_eq!(vals(&out, 1), vec![Some(0.25), N]);
    assert_eq!(
        out.series[0].expression,
        "sum:errors{host:a} / sum:total{host:a}"
    );
    // A scalar, or an ungrouped series, applies to every group.
    let out = run(&st, "2 * sum:total{*} by {host} - 1", 20);
    assert_eq!(vals(&out, 0), s(&[19.0, 59.0]));
    assert_eq!(vals(&out, 2), vec![Some(7.0), N]);
    let out = run(&st, "sum:total{*} by {host} / sum:total{*}", 20);
    assert_eq!(vals(&out, 1), s(&[4.0 / 18.0, 8.0 / 38.0]));
    assert_eq!(only(&run(&st, "(1 + 2) * 3", 20)), s(&[9.0, 9.0]));
    // Division by zero is a gap, not infinity.
    assert_eq!(only(&run(&st, "sum:errors{*} / 0", 20)), vec![N, N]);
    // Several queries: one series group each, tagged with its index.
    let out = run(&st, "sum:errors{*}, sum:total{*}", 20);
    assert_eq!(
        out.series.iter().map(|s| s.query_index).collect::<Vec<_>>(),
        vec![0, 1]
    );
}

/// A deterministic, heavily skewed sample.
fn skewed(n: usize, seed: u64) -> Vec<f64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            (u * 9.0).exp() * 0.25
        })
        .collect()
}

#[test]
fn percentiles_within_one_percent() {
    let st = store();
    let a = skewed(6000, 1);
    let b = skewed(4000, 2);
    put_sketch(
        &st,
        "lat",
        &["host:a"],
        MetricKind::Distribution,
        0,
        &a[..3000],
    );
    put_sketch(
        &st,
        "lat",
        &["host:a"],
        MetricKind::Distribution,
        20,
        &a[3000..],
    );
    put_sketch(&st, "lat", &["host:b"], MetricKind::Distribution, 50, &b);
    let mut all: Vec<f64> = a.iter().chain(&b).copied().collect();
    all.sort_by(f64::total_cmp);
    for (agg, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)] {
        let got = only(&run(&st, &format!("{agg}:lat{{*}}.rollup(60)"), 60))[0].unwrap();
        let exact = all[(q * (all.len() - 1) as f64).floor() as usize];
        assert!(
            (got - exact).abs() <= 0.01 * exact,
            "{agg}: got {got}, exact {exact}"
        );
    }
    // Non-percentile aggregators read the merged sketch's statistics.
    let sum: f64 = all.iter().sum();
    let got = only(&run(&st, "sum:lat{*}.rollup(60)", 60))[0].unwrap();
    assert!((got - sum).abs() < 1e-6 * sum, "{got} vs {sum}");
    assert_eq!(
        only(&run(&st, "count:lat{*}.rollup(60)", 60)),
        s(&[10_000.0])
    );
    assert_eq!(
        only(&run(&st, "max:lat{*}.rollup(60)", 60)),
        s(&[all[all.len() - 1]])
    );
    assert_eq!(only(&run(&st, "min:lat{*}.rollup(60)", 60)), s(&[all[0]]));
    let out = run(&st, "p99:lat{*} by {host}", 60);
    assert_eq!(out.series.len(), 2);
    assert_eq!(vals(&out, 1), vec![N, N, N, N, N, vals(&out, 1)[5]]);
    assert_eq!(out.series[0].aggr.as_deref(), Some("p99"));
}

#[test]
fn percentile_on_a_gauge_is_an_error() {
    let st = store();
    put(&st, "cpu", &[], MetricKind::Gauge, &[(0, 1.0)]);
    let e = run_query("avg:x{*} + p99:cpu{*}", T, T + 60, &st).unwrap_err();
    assert_eq!(
        e.to_string(),
        "at position 15: percentile aggregator p99 needs a distribution, but metric \"cpu\" is a gauge"
    );
    assert_eq!(e.kind().http_status(), 400);
}

#[test]
fn derived_histogram_series() {
    let st = store();
    put_sketch(
        &st,
        "req.time",
        &["host:a"],
        MetricKind::Histogram,
        0,
        &[1.0, 2.0, 3.0, 4.0, 10.0],
    );
    put_sketch(
        &st,
        "req.time",
        &["host:b"],
        MetricKind::Histogram,
        0,
        &[5.0, 7.0, 9.0],
    );
    put_sketch(
        &st,
        "req.time",
        &["host:a"],
        MetricKind::Histogram,
        10,
        &[6.0],
    );
    let one = |q: &str| only(&run(&st, q, 20));
    assert_eq!(one("avg:req.time.avg{host:a}"), s(&[4.0, 6.0]));
    assert_eq!(one("max:req.time.max{*}"), s(&[10.0, 6.0]));
    // `.count` is a rate (per second) like the Agent's; `.as_count()` gives totals.
    assert_eq!(one("sum:req.time.count{*}"), s(&[0.8, 0.1]));
    assert_eq!(one("sum:req.time.count{*}.as_count()"), s(&[8.0, 1.0]));
    let median = one("avg:req.time.median{host:b}")[0].unwrap();
    assert!((median - 7.0).abs() <= 0.07, "{median}");
    let p95 = one("max:req.time.95percentile{host:a}")[0].unwrap();
    // DDSketch's lower quantile: rank floor(0.95 * (5 - 1)) = 3 of [1, 2, 3, 4, 10].
    assert!((p95 - 4.0).abs() <= 0.04, "{p95}");
    // A derived series is not a distribution.
    let e = run_query("p99:req.time.avg{*}", T, T + 20, &st).unwrap_err();
    assert!(e.to_string().contains("derived histogram series"), "{e}");
    // The histogram itself answers percentiles.
    assert_eq!(one("p50:req.time{host:a}").len(), 2);
    // A stored metric with the suffix's name wins.
    put(&st, "req.time.max", &[], MetricKind::Gauge, &[(0, 42.0)]);
    assert_eq!(one("max:req.time.max{*}"), vec![Some(42.0), N]);
}

#[test]
fn scopes() {
    let st = store();
    for (host, env, extra) in [
        ("web-1", "prod", "canary"),
        ("web-2", "prod", "stable"),
        ("db-1", "prod", "stable"),
        ("web-3", "dev", "stable"),
    ] {
        put(
            &st,
            "m",
            &[&format!("host:{host}"), &format!("env:{env}"), extra],
            MetricKind::Gauge,
            &[(0, 1.0)],
        );
    }
    let count = |scope: &str| -> f64 {
        let out = run(&st, &format!("count:m{{{scope}}}"), 10);
        out.series
            .first()
            .and_then(|s| s.points[0].1)
            .unwrap_or(0.0)
    };
    assert_eq!(count("*"), 4.0);
    assert_eq!(count("env:prod"), 3.0);
    assert_eq!(count("env:prod,host:web-*"), 2.0);
    assert_eq!(count("host:*-1"), 2.0);
    assert_eq!(count("host:w*-*"), 3.0);
    assert_eq!(count("!env:prod"), 1.0);
    assert_eq!(count("-host:web-1"), 3.0);
    assert_eq!(count("canary"), 1.0);
    assert_eq!(count("!canary,env:prod"), 2.0);
    assert_eq!(count("env:prod AND (host:db-1 OR canary)"), 2.0);
    assert_eq!(count("env:dev OR host:db-1"), 2.0);
    assert_eq!(count("NOT env:prod"), 1.0);
    assert_eq!(count("host IN (web-1, web-3)"), 2.0);
    assert_eq!(count("host NOT IN (web-1,web-3)"), 2.0);
    assert_eq!(count("host IN (web-*) AND NOT env:dev"), 2.0);
    assert_eq!(count("env:staging"), 0.0);
    // A bare filter never matches a key:value tag.
    assert_eq!(count("prod"), 0.0);
    let out = run(&st, "count:m{env:prod,host:web-*}", 10);
    assert_eq!(out.series[0].scope, "env:prod,host:web-*");
}

#[test]
fn interval_is_raised_to_fit() {
    assert_eq!(choose_step(10, None, 3600, 300), 20);
    assert_eq!(choose_step(10, None, 600, 300), 10);
    assert_eq!(choose_step(10, None, 4 * 3600, 300), 60);
    assert_eq!(choose_step(10, None, 86_400, 300), 300);
    assert_eq!(choose_step(10, None, 7 * 86_400, 300), 3600);
    assert_eq!(choose_step(10, None, 30 * 86_400, 300), 14_400);
    assert_eq!(choose_step(10, None, 365 * 86_400, 300), 2 * 86_400);
    assert_eq!(choose_step(10, Some(45), 3600, 300), 45);
    assert_eq!(choose_step(10, Some(5), 86_400, 300), 300);
    assert_eq!(choose_step(60, None, 600, 300), 60);
    let st = store();
    put(
        &st,
        "g",
        &[],
        MetricKind::Gauge,
        &[(0, 1.0), (10, 3.0), (20, 5.0)],
    );
    let out = run(&st, "avg:g{*}", 3600);
    assert_eq!(out.series[0].interval, 20);
    assert_eq!(out.series[0].points.len(), 180);
    assert_eq!(&vals(&out, 0)[..2], &[Some(2.0), Some(5.0)]);
    let out = run(&st, "avg:g{*}", 86_400);
    assert_eq!(out.series[0].interval, 300);
    assert_eq!(out.series[0].points.len(), 288);
    assert_eq!(vals(&out, 0)[0], Some(3.0));
}

#[test]
fn functions() {
    let st = store();
    put(
        &st,
        "g",
        &["host:a"],
        MetricKind::Gauge,
        &[(0, 1.0), (10, 4.0), (20, 2.0), (40, 10.0)],
    );
    put(
        &st,
        "g",
        &["host:b"],
        MetricKind::Gauge,
        &[(0, -5.0), (10, -6.0)],
    );
    put(&st, "g", &["host:c"], MetricKind::Gauge, &[(0, 3.0)]);
    let a = |q: &str| only(&run(&st, &q.replace("G", "avg:g{host:a}"), 50));
    assert_eq!(a("diff(G)"), vec![N, Some(3.0), Some(-2.0), N, Some(8.0)]);
    assert_eq!(
        a("derivative(G)"),
        vec![N, Some(0.3), Some(-0.2), N, Some(0.4)]
    );
    assert_eq!(
        a("cumsum(G)"),
        vec![Some(1.0), Some(5.0), Some(7.0), N, Some(17.0)]
    );
    assert_eq!(a("default_zero(G)"), s(&[1.0, 4.0, 2.0, 0.0, 10.0]));
    assert_eq!(
        a("per_minute(G)"),
        vec![Some(6.0), Some(24.0), Some(12.0), N, Some(60.0)]
    );
    assert_eq!(
        a("per_second(G)"),
        vec![Some(0.1), Some(0.4), Some(0.2), N, Some(1.0)]
    );
    assert_eq!(
        a("log10(G * 10)"),
        vec![
            Some(1.0),
            Some(40f64.log10()),
            Some(20f64.log10()),
            N,
            Some(2.0)
        ]
    );
    assert_eq!(
        a("ewma_3(G)"),
        vec![Some(1.0), Some(2.5), Some(2.25), N, Some(6.125)]
    );
    assert_eq!(only(&run(&st, "abs(avg:g{host:b})", 20)), s(&[5.0, 6.0]));
    // Timeshift reads the past and shows it at the present's timestamps.
    let values = |out: &QueryOutput| out.series[0].points.iter().map(|p| p.1).collect::<Vec<_>>();
    let shifted = run_query("timeshift(avg:g{host:a}, -20)", T + 20, T + 50, &st).unwrap();
    let plain = run_query("avg:g{host:a}", T, T + 30, &st).unwrap();
    assert_eq!(values(&shifted), values(&plain));
    let shifted = run_query("timeshift(avg:g{host:a}, -20)", T + 20, T + 50, &st).unwrap();
    assert_eq!(shifted.series[0].points[0].0, T + 20);
    assert_eq!(
        shifted.series[0].expression,
        "timeshift(avg:g{host:a}, -20)"
    );
    // top and bottom rank groups.
    let names = |q: &str| -> Vec<String> {
        run(&st, q, 20)
            .series
            .iter()
            .map(|s| s.scope.clone())
            .collect()
    };
    assert_eq!(
        names("top(avg:g{*} by {host}, 2, 'mean', 'desc')"),
        vec!["host:c", "host:a"]
    );
    assert_eq!(
        names("top(avg:g{*} by {host}, 1, 'min', 'asc')"),
        vec!["host:b"]
    );
    assert_eq!(
        names("bottom(avg:g{*} by {host}, 2)"),
        vec!["host:b", "host:a"]
    );
    assert_eq!(
        names("top(avg:g{*} by {host}, 3, 'norm')"),
        vec!["host:b", "host:a", "host:c"]
    );
    assert_eq!(names("top(avg:g{*} by {host}, 1, 'last')"), vec!["host:a"]);
}

#[test]
fn unknown_metric_is_empty_and_limits_hold() {
    let st = store();
    assert!(run(&st, "avg:nothing{*}", 60).series.is_empty());
    assert!(run(&st, "avg:nothing{*} + 1", 60).series.is_empty());
    for i in 0..20 {
        put(
            &st,
            "wide",
            &[&format!("host:h{i}")],
            MetricKind::Gauge,
            &[(0, 1.0)],
        );
    }
    let q = sightline_query::parse("sum:wide{*}").unwrap();
    let opts = sightline_query::EvalOptions {
        max_series: 10,
        ..Default::default()
    };
    let e = sightline_query::evaluate(&q, T, T + 60, &st, &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the query reads 20 series of \"wide\"; the limit is 10 (narrow the scope)"
    );
    let e = run_query("sum:wide{*}", T, T, &st).unwrap_err();
    assert!(e.to_string().contains("must be before"), "{e}");
    let e = run_query("sum:wide{*}", T - 500 * 86_400, T, &st).unwrap_err();
    assert!(e.to_string().contains("the limit is"), "{e}");
}

#[test]
fn raw_point_budget_is_estimated_before_reading() {
    let st = store();
    // 20 series at 10 s and 5 at 60 s (one stored point each: the estimate uses intervals, not data).
    for i in 0..20 {
        put(
            &st,
            "fine",
            &[&format!("host:h{i}")],
            MetricKind::Gauge,
            &[(0, 1.0)],
        );
    }
    for i in 0..5 {
        st.apply(&MetricBatch {
            points: vec![MetricPoint {
                interval: 60,
                ..point(
                    "coarse",
                    &[&format!("host:h{i}")],
                    MetricKind::Gauge,
                    T,
                    Value::Scalar(1.0),
                )
            }],
        });
    }
    let opts = sightline_query::EvalOptions {
        max_raw_points: 1_000,
        ..Default::default()
    };
    let eval = |q: &str, secs: i64| {
        sightline_query::evaluate(&sightline_query::parse(q).unwrap(), T, T + secs, &st, &opts)
    };
    // 20 series x 3600 s / 10 s = 7200 points: refused, naming the metric, the estimate and the limit.
    let e = eval("sum:fine{*}", 3600).unwrap_err();
    assert_eq!(e.kind(), sightline_model::ErrorKind::BadInput);
    assert_eq!(
        e.to_string(),
        "the query would read about 7200 raw points of \"fine\"; the limit is 1000 (narrow the scope or the time range)"
    );
    // The estimate follows the scope filter: 2 series x 360 = 720 points fit.
    assert!(eval("sum:fine{host:h1 OR host:h2}", 3600).is_ok());
    // And the range: 20 series x 500 s / 10 s = 1000 points, exactly the limit.
    assert!(eval("sum:fine{*}", 500).is_ok());
    assert!(eval("sum:fine{*}", 510).is_err());
    // Each series counts at its own interval: 5 x 3600 / 60 = 300.
    assert!(eval("sum:coarse{*}", 3600).is_ok());
    // Every term is checked on its own, wherever it sits in the expression.
    let e = eval("sum:coarse{*} + abs(sum:fine{*})", 3600).unwrap_err();
    assert!(e.to_string().contains("of \"fine\""), "{e}");
    // The series limit still applies first.
    let e = sightline_query::evaluate(
        &sightline_query::parse("sum:fine{*}").unwrap(),
        T,
        T + 3600,
        &st,
        &sightline_query::EvalOptions {
            max_series: 10,
            max_raw_points: 1_000,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("series"), "{e}");
    // The default budget is 20 million points.
    assert_eq!(
        sightline_query::EvalOptions::default().max_raw_points,
        20_000_000
    );
}

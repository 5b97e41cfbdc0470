//! Tests of the log store: writes, searches by every kind of term, pages, replay without loss or
//! duplicates, WAL truncation and retention.

use super::*;
use serde_json::json;
use sightline_model::{CmpOp, Matcher, Number, RangeEnd, SearchTerm, Span, Target, WildPart};

const T0: i64 = 1_700_000_000_000_000_000;

fn rec(
    i: i64,
    msg: &str,
    status: &str,
    service: &str,
    attrs: serde_json::Value,
    tags: &[&str],
) -> LogRecord {
    let mut r = LogRecord::new(T0 + i * 1_000_000_000, msg);
    r.status = status.into();
    r.service = Some(service.into());
    r.host = Some(format!("host-{}", i % 2));
    r.attributes = attrs.as_object().cloned().unwrap_or_default();
    r.tags = tags.iter().map(|t| t.to_string()).collect();
    r.normalize_tags();
    r
}

fn corpus() -> Vec<LogRecord> {
    use serde_json::json;
    vec![
        rec(
            0,
            "GET /api/v1/users 200 user_id=apNjkATwdFGD",
            "info",
            "web",
            json!({"http": {"status_code": 200, "method": "GET"}, "network": {"client": {"ip": "10.1.2.3"}}, "duration": 12.5}),
            &["env:prod", "team:a"],
        ),
        rec(
            1,
            "POST /api/v1/orders 500 Internal error",
            "error",
            "web",
            json!({"http": {"status_code": 500, "method": "POST"}, "network": {"client": {"ip": "192.168.0.7"}}, "duration": 250}),
            &["env:prod"],
        ),
        rec(
            2,
            "Retrying connection to db-01 after timeout",
            "warning",
            "worker",
            json!({"attempt": 3, "db": {"host": "db-01"}}),
            &["env:staging", "team:b"],
        ),
        rec(
            3,
            "connection refused from 2001:db8::1",
            "error",
            "worker",
            json!({"network": {"client": {"ip": "2001:db8::1"}}}),
            &["env:prod"],
        ),
        rec(
            4,
            "snake_case_word and CamelCase here",
            "debug",
            "batch",
            json!({}),
            &["env:dev"],
        ),
    ]
}

fn term(target: Target, matcher: Matcher) -> SearchExpr {
    SearchExpr::Term(SearchTerm {
        target,
        matcher,
        span: Span::default(),
    })
}
fn word(w: &str) -> SearchExpr {
    term(Target::Message, Matcher::Exact(w.into()))
}
fn num(v: f64) -> Number {
    Number {
        value: v,
        duration: false,
    }
}

/// The corpus is dated November 2023: a retention long enough to keep it where it is.
fn cfg() -> LogStoreConfig {
    LogStoreConfig {
        retention_days: 36_500,
        ..LogStoreConfig::default()
    }
}

fn open(dir: &Path) -> Arc<LogStore> {
    LogStore::open(dir, cfg(), &mut Registry::default()).unwrap()
}

fn search(s: &LogStore, expr: SearchExpr) -> Vec<String> {
    let page = s
        .search(&LogSearch {
            expr,
            from_ns: T0 - 1,
            to_ns: T0 + 100_000_000_000,
            order: SortOrder::Asc,
            limit: 100,
            after: None,
        })
        .unwrap();
    page.hits.into_iter().map(|h| h.record.message).collect()
}

fn count(s: &LogStore, expr: SearchExpr) -> usize {
    search(s, expr).len()
}

async fn loaded(dir: &Path) -> Arc<LogStore> {
    let s = open(dir);
    s.write(LogBatch { records: corpus() }).await.unwrap();
    s.commit_blocking().unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_term() {
    let dir = tempfile::tempdir().unwrap();
    let s = loaded(dir.path()).await;
    use Matcher::*;
    use Target::*;
    let attr = |p: &str| Attr(p.to_string());
    let key = |k: &str| Key(k.to_string());
    let cases: Vec<(SearchExpr, usize)> = vec![
        (SearchExpr::All, 5),
        (word("connection"), 2),
        (word("CONNECTION"), 2),
        (word("apNjkATwdFGD"), 1),
        (word("snake_case_word"), 1),
        (word("snake"), 0),
        (word("/api/v1/users"), 1),
        (term(Message, Phrase("internal error".into())), 1),
        (term(Message, Phrase("error internal".into())), 0),
        (
            term(
                Message,
                Wildcard(vec![WildPart::Lit("retr".into()), WildPart::Star]),
            ),
            1,
        ),
        (
            term(
                Message,
                Wildcard(vec![WildPart::Star, WildPart::Lit("ction".into())]),
            ),
            2,
        ),
        (term(key("service"), Exact("web".into())), 2),
        (term(key("status"), Exact("ERROR".into())), 2),
        (
            term(
                key("service"),
                Wildcard(vec![WildPart::Lit("w".into()), WildPart::Star]),
            ),
            4,
        ),
        (term(key("env"), Exact("prod".into())), 3),
        (term(key("team"), Exists), 2),
        (
            term(
                key("env"),
                Wildcard(vec![WildPart::Lit("st".into()), WildPart::Star]),
            ),
            1,
        ),
        (term(attr("http.status_code"), Exact("500".into())), 1),
        (term(attr("http.method"), Exact("GET".into())), 1),
        (term(attr("http.method"), Exact("get".into())), 0),
        (
            term(attr("http.status_code"), Compare(CmpOp::Ge, num(400.0))),
            1,
        ),
        (
            term(attr("http.status_code"), Compare(CmpOp::Lt, num(400.0))),
            1,
        ),
        (term(attr("duration"), Compare(CmpOp::Gt, num(12.5))), 1),
        (
            term(
                attr("duration"),
                Range(
                    RangeEnd::Inclusive(num(12.5)),
                    RangeEnd::Inclusive(num(250.0)),
                ),
            ),
            2,
        ),
        (
            term(
                attr("duration"),
                Range(RangeEnd::Exclusive(num(12.5)), RangeEnd::Open),
            ),
            1,
        ),
        (term(attr("http"), Exists), 2),
        (term(attr("attempt"), Exists), 1),
        (
            term(
                attr("db.host"),
                Wildcard(vec![WildPart::Lit("db-".into()), WildPart::Star]),
            ),
            1,
        ),
        (
            term(attr("network.client.ip"), Cidr("10.0.0.0/8".into())),
            1,
        ),
        (
            term(attr("network.client.ip"), Cidr("192.168.0.0/16".into())),
            1,
        ),
        (
            term(attr("network.client.ip"), Cidr("2001:db8::/32".into())),
            1,
        ),
        (term(attr("network.client.ip"), Cidr("0.0.0.0/0".into())), 2),
        (term(Any, Exact("db-01".into())), 1),
        (term(Any, Exact("staging".into())), 1),
        (SearchExpr::Not(Box::new(term(attr("http"), Exists))), 3),
        (
            SearchExpr::Not(Box::new(term(key("env"), Exact("prod".into())))),
            2,
        ),
        (
            SearchExpr::And(vec![
                word("connection"),
                term(key("status"), Exact("error".into())),
            ]),
            1,
        ),
        (SearchExpr::Or(vec![word("retrying"), word("refused")]), 2),
        (
            SearchExpr::And(vec![
                term(key("service"), Exact("worker".into())),
                SearchExpr::Not(Box::new(word("refused"))),
            ]),
            1,
        ),
    ];
    for (expr, want) in cases {
        assert_eq!(count(&s, expr.clone()), want, "{expr:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_terms_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let s = loaded(dir.path()).await;
    let e = s
        .search(&LogSearch {
            expr: term(
                Target::Key("env".into()),
                Matcher::Compare(CmpOp::Gt, num(1.0)),
            ),
            from_ns: 0,
            to_ns: i64::MAX,
            order: SortOrder::Desc,
            limit: 10,
            after: None,
        })
        .unwrap_err();
    assert!(matches!(e, StorageError::BadQuery(_)), "{e}");
    assert!(e.to_string().contains("tag \"env\""), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_stable_while_logs_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    // 25 records, several at the same timestamp.
    let records: Vec<_> = (0..25)
        .map(|i| {
            let mut r = LogRecord::new(T0 + (i / 3) * 1_000, format!("m{i}"));
            r.service = Some("svc".into());
            r
        })
        .collect();
    s.write(LogBatch { records }).await.unwrap();
    s.commit_blocking().unwrap();
    for order in [SortOrder::Desc, SortOrder::Asc] {
        let mut seen = Vec::new();
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let page = s
                .search(&LogSearch {
                    expr: SearchExpr::All,
                    from_ns: T0,
                    to_ns: T0 + 1_000_000,
                    order,
                    limit: 4,
                    after,
                })
                .unwrap();
            seen.extend(page.hits.iter().map(|h| h.record.message.clone()));
            ids.extend(page.hits.iter().map(|h| h.id.clone()));
            // Newer logs arriving between pages do not shift the pages.
            s.write(LogBatch {
                records: vec![LogRecord::new(T0 + 500_000, "late")],
            })
            .await
            .unwrap();
            s.commit_blocking().unwrap();
            match page.next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        let mut uniq = ids.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), ids.len(), "{order:?}: duplicates in {seen:?}");
        let originals = seen.iter().filter(|m| m.starts_with('m')).count();
        assert_eq!(originals, 25, "{order:?}: {seen:?}");
        // Newest first never reaches the newer arrivals; oldest first reaches them at the end.
        if order == SortOrder::Asc {
            assert_eq!(seen[0], "m0");
        } else {
            assert_eq!(seen[0], "m24");
            assert!(!seen.contains(&"late".to_string()), "{seen:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_restores_uncommitted_records_once() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path());
        s.write(LogBatch {
            records: corpus()[..2].to_vec(),
        })
        .await
        .unwrap();
        s.commit_blocking().unwrap();
        // Acknowledged but never committed to the index: only the WAL has it.
        let cfg = LogStoreConfig {
            commit_interval_ms: 3_600_000,
            ..cfg()
        };
        drop(s);
        let s = LogStore::open(dir.path(), cfg, &mut Registry::default()).unwrap();
        assert_eq!(count(&s, SearchExpr::All), 2);
        s.write(LogBatch {
            records: corpus()[2..].to_vec(),
        })
        .await
        .unwrap();
        // A crash: the indexer never commits what it was given.
        s.abandon();
    }
    let s = open(dir.path());
    assert_eq!(count(&s, SearchExpr::All), 5);
    drop(s);
    let s = open(dir.path());
    assert_eq!(
        count(&s, SearchExpr::All),
        5,
        "a second replay must not add records twice"
    );
    // New records after the restart get higher ids than the old ones.
    s.write(LogBatch {
        records: vec![LogRecord::new(T0 + 50_000_000_000, "after restart")],
    })
    .await
    .unwrap();
    s.commit_blocking().unwrap();
    let page = s
        .search(&LogSearch {
            expr: SearchExpr::All,
            from_ns: 0,
            to_ns: i64::MAX,
            order: SortOrder::Desc,
            limit: 100,
            after: None,
        })
        .unwrap();
    let ids: std::collections::HashSet<_> = page.hits.iter().map(|h| h.id.clone()).collect();
    assert_eq!(ids.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_segments_go_once_committed_and_retention_drops_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogStoreConfig {
        wal_rotate_secs: 1,
        ..cfg()
    };
    let s = LogStore::open(dir.path(), cfg, &mut Registry::default()).unwrap();
    for round in 0..4 {
        s.write(LogBatch {
            records: vec![LogRecord::new(now_ns(), format!("r{round}"))],
        })
        .await
        .unwrap();
        s.commit_blocking().unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    s.commit_blocking().unwrap();
    let segments = std::fs::read_dir(dir.path().join("wal")).unwrap().count();
    assert!(segments <= 2, "{segments} wal segments left");
    // Old partition: written, then expired by retention.
    s.write(LogBatch {
        records: vec![LogRecord::new(T0, "ancient")],
    })
    .await
    .unwrap();
    s.commit_blocking().unwrap();
    assert_eq!(s.partitions(0, i64::MAX).len(), 2);
    drop(s);
    // Reopened with the default retention (15 days), which the 2023 partition is far beyond.
    let s = LogStore::open(
        dir.path(),
        LogStoreConfig::default(),
        &mut Registry::default(),
    )
    .unwrap();
    assert_eq!(
        count(&s, SearchExpr::All),
        1,
        "only the ancient one is in the test range"
    );
    let (tx, _rx) = mpsc::channel::<Msg>();
    drop(tx);
    let mut ix = Indexer {
        shared: s.shared.clone(),
        wal: None,
        writers: HashMap::new(),
        received: 0,
        rotation: None,
        ready_segment: None,
        last_rotation: Instant::now(),
        last_retention: Instant::now(),
        committed: HashMap::new(),
        stuck_at: None,
        slow_down: Duration::ZERO,
    };
    ix.apply_retention(now_ns());
    assert_eq!(s.partitions(0, i64::MAX).len(), 1);
    assert_eq!(count(&s, SearchExpr::All), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregations_are_exact() {
    use aggregate::{
        AggBucket, Compute, ComputeValue::*, GroupBy, GroupSort, LogAggregate, Measure::*,
    };
    let dir = tempfile::tempdir().unwrap();
    let s = loaded(dir.path()).await;
    let total = |m| Compute {
        measure: m,
        interval_ns: None,
    };
    let run = |computes: Vec<Compute>, group_by: Vec<GroupBy>| -> Vec<AggBucket> {
        s.aggregate(&LogAggregate {
            expr: SearchExpr::All,
            from_ns: T0,
            to_ns: T0 + 5_000_000_000,
            computes,
            group_by,
        })
        .unwrap()
    };
    let by = |facet: &str| GroupBy {
        facet: facet.into(),
        limit: 10,
        sort: GroupSort::Count { desc: true },
    };
    // Totals over the five records.
    let b = run(
        vec![
            total(Count),
            total(Sum("@duration".into())),
            total(Avg("@duration".into())),
            total(Min("@duration".into())),
            total(Max("@duration".into())),
            total(Cardinality("service".into())),
            total(Cardinality("host".into())),
        ],
        vec![],
    );
    assert_eq!(b.len(), 1);
    assert_eq!(
        b[0].computes,
        [
            Total(Some(5.0)),
            Total(Some(262.5)),
            Total(Some(131.25)),
            Total(Some(12.5)),
            Total(Some(250.0)),
            Total(Some(3.0)),
            Total(Some(2.0))
        ]
    );
    // Percentiles come from a sketch (1% relative error); with two samples, p99 is the lower one by the
    // sketch's rank rule (rank = q × (n − 1), rounded down) and p100 the upper one.
    let b = run(
        vec![
            total(Percentile(99.0, "@duration".into())),
            total(Percentile(100.0, "@duration".into())),
        ],
        vec![],
    );
    match (&b[0].computes[0], &b[0].computes[1]) {
        (Total(Some(lo)), Total(Some(hi))) => {
            assert!((lo - 12.5).abs() <= 0.125, "{lo}");
            assert!((hi - 250.0).abs() <= 2.5, "{hi}");
        }
        other => panic!("{other:?}"),
    }
    // Groups by a reserved facet, a tag key and an attribute, most first.
    let b = run(vec![total(Count)], vec![by("service")]);
    let got: Vec<_> = b
        .iter()
        .map(|b| (b.by[0].1.clone(), b.computes[0].clone()))
        .collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2], (json!("batch"), Total(Some(1.0))));
    let mut top: Vec<_> = got[..2].to_vec();
    top.sort_by_key(|a| a.0.to_string());
    assert_eq!(
        top,
        [
            (json!("web"), Total(Some(2.0))),
            (json!("worker"), Total(Some(2.0)))
        ]
    );
    let b = run(vec![total(Count)], vec![by("env")]);
    let got: Vec<_> = b
        .iter()
        .map(|b| (b.by[0].1.clone(), b.computes[0].clone()))
        .collect();
    assert_eq!(got[0], (json!("prod"), Total(Some(3.0))));
    assert_eq!(got.len(), 3);
    let b = run(
        vec![total(Avg("@duration".into()))],
        vec![by("@http.method")],
    );
    let mut got: Vec<_> = b
        .iter()
        .map(|b| (b.by[0].1.clone(), b.computes[0].clone()))
        .collect();
    got.sort_by_key(|a| a.0.to_string());
    assert_eq!(
        got,
        [
            (json!("GET"), Total(Some(12.5))),
            (json!("POST"), Total(Some(250.0)))
        ]
    );
    // Two levels, limited.
    let b = run(
        vec![total(Count)],
        vec![
            GroupBy {
                limit: 1,
                ..by("service")
            },
            by("status"),
        ],
    );
    assert!(
        b.iter()
            .all(|x| x.by.len() == 2 && x.by[0].1 == b[0].by[0].1),
        "{b:?}"
    );
    // A time series: one bucket per second, empty ones included.
    let b = run(
        vec![Compute {
            measure: Count,
            interval_ns: Some(1_000_000_000),
        }],
        vec![],
    );
    match &b[0].computes[0] {
        Series(points) => {
            assert_eq!(points.len(), 5, "{points:?}");
            assert!(points.iter().all(|(_, v)| *v == Some(1.0)), "{points:?}");
            assert_eq!(points[0].0, T0);
        }
        other => panic!("{other:?}"),
    }
    // A range that starts at an odd nanosecond (f64 cannot hold it): buckets still start exactly there.
    let from = T0 + 123_456_789;
    let b = s
        .aggregate(&LogAggregate {
            expr: SearchExpr::All,
            from_ns: from,
            to_ns: from + 5_000_000_000,
            computes: vec![Compute {
                measure: Count,
                interval_ns: Some(1_000_000_000),
            }],
            group_by: vec![],
        })
        .unwrap();
    let want: Vec<_> = (0..5)
        .map(|k| {
            (
                from + k * 1_000_000_000,
                Some(if k < 4 { 1.0 } else { 0.0 }),
            )
        })
        .collect();
    assert_eq!(b[0].computes[0], Series(want));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_paths_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let s = loaded(dir.path()).await;
    let paths = s.attribute_paths(T0, T0 + 10_000_000_000).unwrap();
    for p in [
        "http.status_code",
        "http.method",
        "network.client.ip",
        "duration",
        "attempt",
        "db.host",
    ] {
        assert!(paths.iter().any(|x| x == p), "{p} missing from {paths:?}");
    }
    assert!(s.attribute_paths(0, 1_000).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_outside_the_retention_window_are_stored_at_arrival() {
    let dir = tempfile::tempdir().unwrap();
    let s = LogStore::open(
        dir.path(),
        LogStoreConfig::default(),
        &mut Registry::default(),
    )
    .unwrap();
    let now = now_ns();
    let future = now + 7 * 86_400 * 1_000_000_000;
    s.write(LogBatch {
        records: vec![
            LogRecord::new(T0, "from 2023"),
            LogRecord::new(future, "next week"),
            LogRecord::new(now - 3_600_000_000_000, "an hour ago"),
        ],
    })
    .await
    .unwrap();
    s.commit_blocking().unwrap();
    let page = s
        .search(&LogSearch {
            expr: SearchExpr::All,
            from_ns: now - 7_200_000_000_000,
            to_ns: now + 60_000_000_000,
            order: SortOrder::Asc,
            limit: 10,
            after: None,
        })
        .unwrap();
    let got: Vec<_> = page
        .hits
        .iter()
        .map(|h| {
            let r = &h.record;
            let original = r
                .attributes
                .get("sightline")
                .map(|v| v["original_timestamp"].clone());
            (r.message.as_str(), r.ts_ns >= now, original)
        })
        .collect();
    assert_eq!(
        got,
        [
            ("an hour ago", false, None),
            ("from 2023", true, Some(json!(T0))),
            ("next week", true, Some(json!(future))),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlogged_indexer_pushes_back() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogStoreConfig {
        max_pending_bytes: 1000,
        backpressure_wait_ms: 200,
        ..cfg()
    };
    let s = LogStore::open(dir.path(), cfg, &mut Registry::default()).unwrap();
    let batch = || LogBatch {
        records: vec![LogRecord::new(T0, "x")],
    };
    // As if the indexer had 2000 bytes it has not added yet: a write waits, then gives up.
    s.shared
        .pending_bytes
        .fetch_add(2000, std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let e = s.write(batch()).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(matches!(e, StorageError::Overloaded(_)), "{e}");
    assert!(
        e.to_string()
            .contains("2000 bytes queued; the limit is 1000"),
        "{e}"
    );
    // A write that waits goes through once the backlog drains.
    let drain = {
        let s = s.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            s.shared
                .pending_bytes
                .fetch_sub(2000, std::sync::atomic::Ordering::Relaxed);
        })
    };
    s.write(batch()).await.unwrap();
    drain.await.unwrap();
    s.commit_blocking().unwrap();
    assert_eq!(
        s.shared
            .pending_bytes
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(count(&s, SearchExpr::All), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_keep_coming_while_the_indexer_never_runs_dry() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogStoreConfig {
        commit_interval_ms: 50,
        ..cfg()
    };
    let s = LogStore::open(dir.path(), cfg, &mut Registry::default()).unwrap();
    // 20 ms per batch: the writer below queues batches far faster, so the queue is never empty for ~2 s.
    s.slow_down(Duration::from_millis(20));
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..100 {
                s.write(LogBatch {
                    records: vec![LogRecord::new(T0 + i, format!("m{i}"))],
                })
                .await
                .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    let seen_while_busy = count(&s, SearchExpr::All);
    assert!(
        !writer.is_finished() || seen_while_busy > 0,
        "the writer ended too early to tell"
    );
    assert!(
        seen_while_busy > 0,
        "nothing searchable after 600 ms of a busy indexer: commits wait for an empty queue"
    );
    writer.await.unwrap();
    s.slow_down(Duration::ZERO);
    s.commit_blocking().unwrap();
    assert_eq!(count(&s, SearchExpr::All), 100);
}

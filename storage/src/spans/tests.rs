//! Tests of the span store on a real directory: visibility before and after flushes, exactly-once across
//! reopens and interrupted flushes, row-group pruning of trace lookups, retention, back-pressure, the
//! configuration, and (ignored, run by hand) size and speed figures.

use super::head::{encode_batch, index_payload, split_span};
use super::*;
use serde_json::json;
use sightline_model::{SpanEvent, SpanKind, SpanLink};
use std::collections::BTreeMap;

const NS: i64 = 1_000_000_000;

/// Two hours before the start of the current hour: spans at `t0() + k` fall in known, unexpired partitions.
fn t0() -> i64 {
    (now_ns() / NS / 3600 - 2) * 3600 * NS
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A random-looking trace id for trace number `t`.
fn tid(t: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&mix(t).to_be_bytes());
    id[8..].copy_from_slice(&mix(t ^ 0xdead_beef).to_be_bytes());
    id
}

fn sid(t: u64, i: u64) -> [u8; 8] {
    mix(t << 16 | i).to_be_bytes()
}

/// Span `i` of trace `t`, starting `offset_ns` after `t0()`.
fn span(t: u64, i: u64, offset_ns: i64) -> SpanRecord {
    let service = ["api", "db", "cache"][(t % 3) as usize];
    let mut s = SpanRecord::new(
        tid(t),
        sid(t, i),
        (i > 0).then(|| sid(t, 0)),
        service,
        &format!("op-{}", i % 4),
        t0() + offset_ns,
        1_000 + (t * 7 + i) as i64,
    );
    s.kind = SpanKind::from_otlp((i % 6) as i32);
    s.error = matches!((t + i) % 5, 0);
    s.attributes
        .insert("http.status_code".into(), json!(200 + i));
    s.attributes.insert("trace.n".into(), json!(t));
    s.resource_attributes
        .insert("k8s.pod.name".into(), json!(format!("{service}-0")));
    s.host = Some(format!("host-{}", t % 2));
    s
}

/// A span with every field set.
fn full_span() -> SpanRecord {
    let mut s = span(42, 1, 5 * NS);
    s.resource = "GET /users/:id".into();
    s.status_message = "boom".into();
    s.env = Some("prod".into());
    s.version = Some("1.2.3".into());
    s.attributes
        .insert("nested".into(), json!({"a": [1, 2.5, "x", null, true]}));
    s.events.push(SpanEvent {
        ts_ns: s.start_ns + 10,
        name: "exception".into(),
        attributes: json!({"exception.message": "bad"})
            .as_object()
            .cloned()
            .unwrap(),
    });
    s.links.push(SpanLink {
        trace_id: tid(7),
        span_id: sid(7, 0),
        attributes: json!({"k": "v"}).as_object().cloned().unwrap(),
    });
    s
}

/// `traces` traces of `per` spans each, trace `t` starting `t` ms after `t0() + base_ns`.
fn corpus(first: u64, traces: u64, per: u64, base_ns: i64) -> Vec<SpanRecord> {
    let mut out = Vec::new();
    for t in first..first + traces {
        for i in 0..per {
            out.push(span(
                t,
                i,
                base_ns + t as i64 * 1_000_000 + i as i64 * 1_000,
            ));
        }
    }
    out
}

fn cfg() -> SpanStoreConfig {
    SpanStoreConfig {
        // Nothing flushes on its own during a test.
        flush_interval_secs: 3600,
        ..SpanStoreConfig::default()
    }
}

fn open(dir: &Path, cfg: SpanStoreConfig) -> Arc<SpanStore> {
    SpanStore::open(dir, cfg, &mut Registry::default()).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Writes spans in batches of `batch`.
fn write(store: &SpanStore, spans: &[SpanRecord], batch: usize) {
    let rt = rt();
    for c in spans.chunks(batch) {
        let out = rt
            .block_on(store.write(SpanBatch { spans: c.to_vec() }))
            .unwrap();
        assert_eq!(out.accepted, c.len());
    }
}

fn key(s: &SpanRecord) -> ([u8; 16], [u8; 8]) {
    (s.trace_id, s.span_id)
}

fn sorted(mut v: Vec<SpanRecord>) -> Vec<SpanRecord> {
    v.sort_by_key(key);
    v
}

fn scan_all(store: &SpanStore, from: i64, to: i64) -> Vec<SpanRecord> {
    let mut out = Vec::new();
    store
        .scan(from, to, &mut |s| {
            out.push(s.clone());
            ControlFlow::Continue(())
        })
        .unwrap();
    out
}

/// Every trace comes back whole and exactly once by `trace()`, and every span exactly once by `scan()`.
fn assert_exactly(store: &SpanStore, want: &[SpanRecord]) {
    let mut by_trace: BTreeMap<[u8; 16], Vec<SpanRecord>> = BTreeMap::new();
    for s in want {
        by_trace.entry(s.trace_id).or_default().push(s.clone());
    }
    for (id, spans) in &by_trace {
        let got = store.trace(id).unwrap();
        assert!(
            got.windows(2).all(|w| w[0].start_ns <= w[1].start_ns),
            "sorted by start"
        );
        assert_eq!(sorted(got), sorted(spans.clone()), "trace {id:02x?}");
    }
    assert_eq!(
        sorted(scan_all(store, i64::MIN, i64::MAX)),
        sorted(want.to_vec()),
        "scan of everything"
    );
}

/// Bytes in WAL segments.
fn wal_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[test]
fn config_defaults_and_unknown_keys() {
    let cfg: SpanStoreConfig =
        serde_json::from_str(r#"{"retention_days": 3, "wal": {"fsync": "interval"}}"#).unwrap();
    assert_eq!(
        cfg,
        SpanStoreConfig {
            retention_days: 3,
            wal: WalConfig {
                fsync: crate::wal::FsyncPolicy::Interval,
                ..WalConfig::default()
            },
            ..SpanStoreConfig::default()
        }
    );
    let d = SpanStoreConfig::default();
    assert_eq!(
        (
            d.partition_secs,
            d.flush_interval_secs,
            d.flush_max_spans,
            d.row_group_spans,
            d.retention_days
        ),
        (3600, 60, 500_000, 16_384, 15)
    );
    for bad in [r#"{"retention": 3}"#, r#"{"wal": {"fsink": "always"}}"#] {
        let err = serde_json::from_str::<SpanStoreConfig>(bad).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{bad}: {err}");
    }
    // Under `[storage.spans]` of the server's configuration.
    let all: crate::StorageConfig =
        serde_json::from_str(r#"{"spans": {"partition_secs": 7200}}"#).unwrap();
    assert_eq!(all.spans.partition_secs, 7200);
    assert_eq!(all.logs, crate::LogStoreConfig::default());
}

#[test]
fn raw_view_matches_the_model() {
    // Runs of spans with equal resource attributes (their JSON is reused) and changes between them.
    let spans = vec![
        full_span(),
        span(1, 0, 0),
        span(1, 1, 0),
        span(4, 0, 9),
        span(2, 3, 7),
        span(3, 0, 7),
    ];
    let batch = SpanBatch {
        spans: spans.clone(),
    };
    let (payload, locs) = encode_batch(&batch);
    assert_eq!(
        payload,
        batch.encode(),
        "the WAL payload is SpanBatch::encode()"
    );
    assert_eq!(SpanBatch::decode(&payload).unwrap(), batch);
    assert_eq!(index_payload(&payload).unwrap(), locs);
    for (s, l) in spans.iter().zip(&locs) {
        let bytes = &payload[l.off as usize..(l.off + l.len) as usize];
        let (p, rest) = split_span(bytes).unwrap();
        assert!(rest.is_empty());
        let r = &p.span;
        assert_eq!(
            (
                r.trace_id,
                r.span_id,
                r.parent_id,
                r.start_ns,
                r.duration_ns
            ),
            (
                s.trace_id,
                s.span_id,
                s.parent_id,
                s.start_ns,
                s.duration_ns
            )
        );
        assert_eq!(
            (r.service, r.name, r.resource, r.status_message),
            (&*s.service, &*s.name, &*s.resource, &*s.status_message)
        );
        assert_eq!(
            (r.host, r.env, r.version),
            (s.host.as_deref(), s.env.as_deref(), s.version.as_deref())
        );
        assert_eq!((r.kind, r.error), (s.kind, s.error));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(r.attributes).unwrap(),
            json!(s.attributes)
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(r.resource_attributes).unwrap(),
            json!(s.resource_attributes)
        );
        assert_eq!(
            postcard::from_bytes::<Vec<SpanEvent>>(p.events).unwrap(),
            s.events
        );
        assert_eq!(
            postcard::from_bytes::<Vec<SpanLink>>(p.links).unwrap(),
            s.links
        );
    }
    assert!(index_payload(&payload[..payload.len() - 1]).is_err());
}

#[test]
fn visible_before_and_after_flush_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), cfg());
    let mut full = full_span();
    full.trace_id = tid(1_000);
    // A second partition (one hour later), and a trace that straddles both.
    let mut all = corpus(0, 50, 4, 0);
    all.extend(corpus(50, 20, 3, 3600 * NS));
    all.push(span(3, 9, 3600 * NS + 5));
    all.push(full);
    let (a, b) = all.split_at(150);
    let (b, c) = b.split_at(40);

    // step, spans written before the check, flush before the check
    let steps: &[(&str, &[SpanRecord], bool)] = &[
        ("head only", a, false),
        ("head, more batches", b, false),
        ("after a flush", &[], true),
        ("files and head", c, false),
        ("after a second flush", &[], true),
    ];
    let mut want = Vec::new();
    for (step, spans, flush) in steps {
        write(&store, spans, 7);
        want.extend_from_slice(spans);
        if *flush {
            store.flush_blocking().unwrap();
            assert_eq!(store.head_spans(), 0, "{step}");
        }
        assert_exactly(&store, &want);
        // A scan of one partition sees only it; a narrow scan only its spans.
        let (from, to) = (t0() + 3600 * NS, t0() + 7200 * NS);
        let in_range = |s: &SpanRecord| s.start_ns >= from && s.start_ns < to;
        assert_eq!(
            sorted(scan_all(&store, from, to)),
            sorted(want.iter().filter(|s| in_range(s)).cloned().collect()),
            "{step}"
        );
        let (from, to) = (t0() + 10_000_000, t0() + 20_000_000);
        let in_range = |s: &SpanRecord| s.start_ns >= from && s.start_ns < to;
        assert_eq!(
            sorted(scan_all(&store, from, to)),
            sorted(want.iter().filter(|s| in_range(s)).cloned().collect()),
            "{step}"
        );
        // A visitor that breaks stops the scan.
        let mut seen = 0;
        store
            .scan(i64::MIN, i64::MAX, &mut |_| {
                seen += 1;
                if seen == 5 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .unwrap();
        assert_eq!(seen, 5.min(want.len()), "{step}");
    }
    assert!(store.trace(&[9; 16]).unwrap().is_empty());
    // The first flush touched one partition, the second both: three files, listed and counted.
    assert_eq!(store.parquet_files().len(), 3);
    assert!(store.disk_bytes() > 0);
    let on_disk: u64 = store
        .parquet_files()
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(store.disk_bytes(), on_disk);
    // Every field survives Parquet.
    let got = store.trace(&tid(1_000)).unwrap();
    let mut want_full = full_span();
    want_full.trace_id = tid(1_000);
    assert_eq!(got, vec![want_full]);
}

#[test]
fn lookups_read_only_row_groups_that_can_hold_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        dir.path(),
        SpanStoreConfig {
            row_group_spans: 256,
            ..cfg()
        },
    );
    let spans = corpus(0, 400, 8, 0);
    write(&store, &spans, 500);
    store.flush_blocking().unwrap();
    let file = store
        .inner
        .state
        .read()
        .files
        .values()
        .flatten()
        .next()
        .unwrap()
        .clone();
    assert_eq!(file.rows, 3200);
    assert_eq!(file.groups.len(), 13);
    // Rows are sorted by trace id: the row groups cover ordered, non-overlapping ranges.
    assert!(file
        .groups
        .windows(2)
        .all(|w| w[0].max_trace <= w[1].min_trace));
    let read = || store.metrics().trace_row_groups_read.get();
    for t in 0..400 {
        let id = tid(t);
        let cands = file.candidate_groups(&id);
        assert!(
            (1..=2).contains(&cands.len()),
            "trace {t}: {cands:?} (two only when it straddles a boundary)"
        );
        let before = read();
        assert_eq!(store.trace(&id).unwrap().len(), 8);
        let n = read() - before;
        assert!(n >= 1 && n <= cands.len() as u64, "trace {t} read {n}");
    }
    // Unknown ids: the bloom filters turn almost all away before any row is read.
    let (before, skips) = (read(), store.metrics().trace_bloom_skips.get());
    for t in 10_000..10_200 {
        assert!(store.trace(&tid(t)).unwrap().is_empty());
    }
    let (reads, skipped) = (
        read() - before,
        store.metrics().trace_bloom_skips.get() - skips,
    );
    assert!(reads <= 10, "{reads} row groups read for absent ids");
    assert!(skipped >= 190, "{skipped} bloom skips");
    // Ids outside every row group's range are not even candidates.
    assert!(file.candidate_groups(&[0; 16]).len() <= 1);
}

#[test]
fn page_index_selects_only_pages_that_can_hold_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        dir.path(),
        SpanStoreConfig {
            row_group_spans: 8 * file::PAGE_ROWS,
            ..cfg()
        },
    );
    let spans = corpus(0, 1000, 8, 0);
    write(&store, &spans, 1000);
    store.flush_blocking().unwrap();
    let file = store
        .inner
        .state
        .read()
        .files
        .values()
        .flatten()
        .next()
        .unwrap()
        .clone();
    for t in (0..1000).step_by(37) {
        let id = tid(t);
        for rg in file.candidate_groups(&id) {
            let rows = file
                .selected_rows(rg, &id)
                .expect("the file has a page index");
            assert!(
                rows > 0 && rows <= 2 * file::PAGE_ROWS,
                "trace {t}: {rows} rows selected in row group {rg}"
            );
        }
        assert_eq!(store.trace(&id).unwrap().len(), 8);
    }
}

#[test]
fn reopen_without_flush_replays_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let spans = corpus(0, 30, 5, 0);
    {
        let store = open(dir.path(), cfg());
        write(&store, &spans, 11);
        // Dropped without shutdown: what the disk holds after `kill -9` (acknowledged = fsync'd).
    }
    let store = open(dir.path(), cfg());
    assert_eq!(store.head_spans(), spans.len());
    assert_exactly(&store, &spans);
    // And again, with a clean shutdown in between.
    store.shutdown();
    drop(store);
    let store = open(dir.path(), cfg());
    assert_exactly(&store, &spans);
}

#[test]
fn reopen_after_flush_and_more_writes_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = corpus(0, 30, 5, 0);
    let b = corpus(30, 30, 5, 3600 * NS);
    let mut both = a.clone();
    both.extend(b.iter().cloned());
    {
        let store = open(dir.path(), cfg());
        write(&store, &a, 10);
        store.flush_blocking().unwrap();
        assert_eq!(
            wal_bytes(dir.path()),
            0,
            "the flushed WAL segments are deleted"
        );
        write(&store, &b, 10);
        assert!(wal_bytes(dir.path()) > 0);
    }
    let store = open(dir.path(), cfg());
    assert_eq!(
        store.head_spans(),
        b.len(),
        "only the unflushed batches replay"
    );
    assert_exactly(&store, &both);
    store.flush_blocking().unwrap();
    drop(store);
    let store = open(dir.path(), cfg());
    assert_eq!(store.head_spans(), 0);
    assert_exactly(&store, &both);
    // New writes after a reopen get LSNs above the manifest's, so they are never skipped by a replay.
    let c = corpus(60, 3, 2, 0);
    write(&store, &c, 10);
    drop(store);
    let store = open(dir.path(), cfg());
    both.extend(c);
    assert_exactly(&store, &both);
}

#[test]
fn interrupted_flush_is_cleaned_up_and_replayed_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = corpus(0, 20, 5, 0);
    let b = corpus(20, 20, 5, 3600 * NS);
    let (stray, tmp) = {
        let store = open(dir.path(), cfg());
        write(&store, &a, 10);
        store.flush_blocking().unwrap();
        write(&store, &b, 10);
        // Files of the next flush reach the disk, its manifest never does; a temporary file is left too.
        let stray = store.write_uncommitted().unwrap();
        assert_eq!(stray.len(), 1);
        let tmp = stray[0].with_extension("parquet.tmp");
        std::fs::write(&tmp, b"half a file").unwrap();
        (stray, tmp)
    };
    assert!(stray[0].exists());
    let store = open(dir.path(), cfg());
    assert!(!stray[0].exists(), "the uncommitted file is deleted");
    assert!(!tmp.exists(), "temporary files are deleted");
    assert_eq!(store.head_spans(), b.len());
    let mut both = a.clone();
    both.extend(b);
    assert_exactly(&store, &both);
    store.flush_blocking().unwrap();
    drop(store);
    let store = open(dir.path(), cfg());
    assert_exactly(&store, &both);
}

#[test]
fn failed_flush_keeps_the_head_readable_and_retries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), cfg());
    let a = corpus(0, 10, 4, 0);
    write(&store, &a, 10);
    // A file where the partition directory should be: the flush cannot write there.
    let blocker = dir.path().join("parts").join((t0() / NS).to_string());
    std::fs::write(&blocker, b"in the way").unwrap();
    assert!(store.flush_blocking().is_err());
    assert_eq!(store.metrics().flush_errors.get(), 1);
    assert_eq!(
        store.head_spans(),
        a.len(),
        "the frozen head stays readable"
    );
    let b = corpus(10, 5, 4, 0);
    write(&store, &b, 10);
    let mut both = a.clone();
    both.extend(b);
    assert_exactly(&store, &both);
    std::fs::remove_file(&blocker).unwrap();
    store.flush_blocking().unwrap();
    assert_eq!(
        store.head_spans(),
        0,
        "the retry and the newer head are both flushed"
    );
    assert_exactly(&store, &both);
    drop(store);
    let store = open(dir.path(), cfg());
    assert_exactly(&store, &both);
}

#[test]
fn concurrent_writes_flushes_and_reads_see_each_span_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        dir.path(),
        SpanStoreConfig {
            row_group_spans: 128,
            ..cfg()
        },
    );
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flusher = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            let mut flushes = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                store.flush_blocking().unwrap();
                flushes += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            flushes
        })
    };
    let reader = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            let mut scans = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let spans = scan_all(&store, i64::MIN, i64::MAX);
                let keys: std::collections::HashSet<_> = spans.iter().map(key).collect();
                assert_eq!(keys.len(), spans.len(), "a span seen twice by one scan");
                for t in [0, 1001, 2002, 3003] {
                    let n = store.trace(&tid(t)).unwrap().len();
                    assert!(n == 0 || n == 3, "trace {t}: {n} spans");
                }
                scans += 1;
            }
            scans
        })
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let want: Vec<SpanRecord> = rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..4u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                for b in 0..40u64 {
                    // Whole traces per batch, so a lookup sees none or all of a trace.
                    let spans = corpus(w * 1000 + b * 5, 5, 3, 0);
                    store
                        .write(SpanBatch {
                            spans: spans.clone(),
                        })
                        .await
                        .unwrap();
                    mine.extend(spans);
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(flusher.join().unwrap() > 0);
    assert!(reader.join().unwrap() > 0);
    assert_exactly(&store, &want);
    store.flush_blocking().unwrap();
    assert_exactly(&store, &want);
    drop(store);
    let store = open(dir.path(), cfg());
    assert_exactly(&store, &want);
}

#[test]
fn crash_after_commit_before_wal_truncation_skips_flushed_records() {
    let dir = tempfile::tempdir().unwrap();
    let a = corpus(0, 20, 5, 0);
    let saved = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path(), cfg());
        write(&store, &a, 10);
        store.shutdown();
        for e in std::fs::read_dir(dir.path().join("wal")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), saved.path().join(e.file_name())).unwrap();
        }
    }
    {
        let store = open(dir.path(), cfg());
        store.flush_blocking().unwrap();
    }
    // The segments come back, as if the crash came between the manifest and their deletion.
    for e in std::fs::read_dir(saved.path()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join("wal").join(e.file_name())).unwrap();
    }
    let store = open(dir.path(), cfg());
    assert_eq!(
        store.head_spans(),
        0,
        "records at or below the manifest are skipped"
    );
    assert_exactly(&store, &a);
}

#[test]
fn retention_drops_old_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SpanStoreConfig {
        retention_days: 1,
        ..cfg()
    };
    let store = open(dir.path(), cfg.clone());
    let old = corpus(0, 10, 3, 0);
    let new = corpus(10, 10, 3, 3600 * NS);
    write(&store, &old, 10);
    write(&store, &new, 10);
    store.flush_blocking().unwrap();
    let parts = |d: &Path| std::fs::read_dir(d.join("parts")).unwrap().count();
    assert_eq!(parts(dir.path()), 2);
    let bytes = store.disk_bytes();
    // One day after the first partition ended, it is dropped (and nothing else).
    let now = t0() + 3600 * NS + 86_400 * NS;
    assert_eq!(store.apply_retention(now - 1).unwrap(), 0);
    assert_eq!(store.apply_retention(now).unwrap(), 1);
    assert_eq!(parts(dir.path()), 1, "the partition directory is gone");
    assert!(store.disk_bytes() < bytes);
    assert!(store.trace(&tid(0)).unwrap().is_empty());
    assert_exactly(&store, &new);
    assert_eq!(store.metrics().partitions_expired.get(), 1);
    drop(store);
    // Spans already past retention are not written by a flush; partitions past it are deleted at open.
    let store = open(dir.path(), cfg.clone());
    let ancient = corpus(100, 5, 2, -3 * 86_400 * NS);
    write(&store, &ancient, 10);
    assert_eq!(
        store.trace(&tid(100)).unwrap().len(),
        2,
        "readable until flushed"
    );
    store.flush_blocking().unwrap();
    assert!(store.trace(&tid(100)).unwrap().is_empty());
    assert_eq!(parts(dir.path()), 1);
    drop(store);
    let stale = dir.path().join("parts").join("3600");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join(file_name(1)), b"old").unwrap();
    let store = open(dir.path(), cfg);
    assert!(!stale.exists());
    assert_exactly(&store, &new);
}

#[test]
fn overloaded_when_flushing_is_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        dir.path(),
        SpanStoreConfig {
            flush_max_spans: 10,
            ..cfg()
        },
    );
    store.stop_flusher();
    write(&store, &corpus(0, 8, 5, 0), 5);
    let err = rt()
        .block_on(store.write(SpanBatch {
            spans: corpus(8, 1, 1, 0),
        }))
        .unwrap_err();
    assert!(matches!(err, StorageError::Overloaded(_)), "{err}");
    store.flush_blocking().unwrap();
    write(&store, &corpus(8, 1, 1, 0), 5);
}

#[test]
fn flusher_flushes_a_full_head() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        dir.path(),
        SpanStoreConfig {
            flush_max_spans: 20,
            ..cfg()
        },
    );
    let spans = corpus(0, 10, 3, 0);
    write(&store, &spans, 30);
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.parquet_files().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(store.parquet_files().len(), 1);
    assert_eq!(store.head_spans(), 0);
    assert_exactly(&store, &spans);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_metrics_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::default();
    let store = SpanStore::open(dir.path(), cfg(), &mut registry).unwrap();
    let sink: &dyn SpanSink = &*store;
    let out = sink
        .write_spans(SpanBatch {
            spans: corpus(0, 2, 3, 0),
        })
        .await
        .unwrap();
    assert_eq!(out.accepted, 6);
    assert_eq!(
        sink.write_spans(SpanBatch::default()).await.unwrap(),
        WriteOutcome::default()
    );
    store.flush().await.unwrap();
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for line in [
        "sightline_spans_spans_written_total 6",
        "sightline_spans_flushes_total 1",
        "sightline_spans_parquet_files 1",
        "sightline_spans_head_spans 0",
        "sightline_spans_wal_records_total 1",
    ] {
        assert!(text.contains(line), "{line:?} missing in\n{text}");
    }
    assert!(text.contains(&format!(
        "sightline_spans_disk_bytes {}",
        store.disk_bytes()
    )));
    store.shutdown();
    let err = sink
        .write_spans(SpanBatch {
            spans: corpus(5, 1, 1, 0),
        })
        .await
        .unwrap_err();
    assert_eq!(err, SinkError::Closed);
}

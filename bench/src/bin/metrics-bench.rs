//! In-process metrics benchmark: `p99` over 10M samples in `sightline_model::Sketch` (add and query time,
//! accuracy against the exact value), the merge of 1,000 sketches of ~1k samples each (median of repeated
//! runs), and through a real `sightline_storage::MetricStore` on a temp dir (flushed to Parquet, reopened):
//! bytes per stored gauge and count sample on disk, and a `by {host}` query over 1k series x 24 h at 10 s
//! resolution through `sightline_query`. Prints one JSON object on stdout.

use clap::Parser;
use sightline_bench::Rng;
use sightline_model::{
    Limits, MetricBatch, MetricKind, MetricPoint, SeriesKey, Sketch, TagSet, Value,
};
use sightline_storage::wal::{FsyncPolicy, WalConfig};
use sightline_storage::{MetricStore, StorageConfig};
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The allocator of the `sightline` binary, so allocation costs match the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "metrics-bench",
    about = "Sketch, storage and query micro-benchmarks for Sightline"
)]
struct Args {
    /// Samples in the single-sketch p99 test.
    #[arg(long, default_value_t = 10_000_000)]
    samples: usize,
    /// Sketches in the merge test.
    #[arg(long, default_value_t = 1_000)]
    sketches: usize,
    /// Samples per sketch in the merge test.
    #[arg(long, default_value_t = 1_000)]
    samples_per_sketch: usize,
    /// Repetitions of the merge and quantile timings (the median is reported).
    #[arg(long, default_value_t = 21)]
    repeats: usize,
    /// Seed of the deterministic generator.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Series per metric in the storage and query test (each of one gauge and one count metric).
    #[arg(long, default_value_t = 1_000)]
    series: usize,
    /// Hours of data per series in the storage and query test.
    #[arg(long, default_value_t = 24)]
    hours: i64,
    /// Seconds between points in the storage and query test.
    #[arg(long, default_value_t = 10)]
    step: i64,
    /// Distinct `host` values over the series (the `by {host}` groups).
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    /// Skip the storage and query test.
    #[arg(long)]
    no_store: bool,
}

/// A log-normal-ish latency in milliseconds, between ~0.1 ms and ~16 s.
fn latency(rng: &mut Rng) -> f64 {
    0.1 * (rng.unit() * 12.0).exp()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    if xs.is_empty() {
        return f64::NAN;
    }
    xs[xs.len() / 2]
}

fn main() {
    let args = Args::parse();
    let mut out = serde_json::Map::new();
    let mut rng = Rng(args.seed);
    let repeats = args.repeats.max(1);

    // 1. p99 over N samples in one sketch.
    let values: Vec<f64> = (0..args.samples).map(|_| latency(&mut rng)).collect();
    let t = Instant::now();
    let mut sk = Sketch::new();
    for &v in &values {
        sk.add(v);
    }
    let add_s = t.elapsed().as_secs_f64();
    let mut q_times = Vec::with_capacity(repeats);
    let mut p99 = None;
    for _ in 0..repeats {
        let t = Instant::now();
        p99 = black_box(&sk).quantile(black_box(0.99));
        q_times.push(t.elapsed().as_secs_f64());
    }
    let mut sorted = values;
    sorted.sort_by(f64::total_cmp);
    let exact = sorted
        .get((0.99 * (sorted.len().max(1) - 1) as f64).floor() as usize)
        .copied();
    let rel_err = match (p99, exact) {
        (Some(g), Some(e)) if e != 0.0 => Some((g - e).abs() / e.abs()),
        _ => None,
    };
    drop(sorted);
    let sketch_bytes = postcard_len(&sk);
    out.insert(
        "p99_single_sketch".into(),
        serde_json::json!({
            "samples": args.samples,
            "add_total_s": add_s,
            "add_ns_per_sample": add_s * 1e9 / args.samples.max(1) as f64,
            "p99_query_us_median": median(q_times) * 1e6,
            "p99": p99,
            "p99_exact": exact,
            "p99_relative_error": rel_err,
            "sketch_serialized_bytes": sketch_bytes,
        }),
    );

    // 2. Merge of many small sketches into one, then p99 of the result.
    let parts: Vec<Sketch> = (0..args.sketches)
        .map(|_| {
            let mut s = Sketch::new();
            for _ in 0..args.samples_per_sketch {
                s.add(latency(&mut rng));
            }
            s
        })
        .collect();
    let mut merge_times = Vec::with_capacity(repeats);
    let mut merged_p99 = None;
    let mut merged_count = 0;
    for _ in 0..repeats {
        let t = Instant::now();
        let mut m = Sketch::new();
        for p in &parts {
            m.merge(black_box(p));
        }
        merged_p99 = m.quantile(0.99);
        merge_times.push(t.elapsed().as_secs_f64());
        merged_count = m.count();
    }
    let mut sorted_times = merge_times.clone();
    sorted_times.sort_by(f64::total_cmp);
    out.insert(
        "merge_sketches".into(),
        serde_json::json!({
            "sketches": args.sketches,
            "samples_per_sketch": args.samples_per_sketch,
            "repeats": repeats,
            "merge_plus_p99_ms_median": median(merge_times) * 1e3,
            "merge_plus_p99_ms_min": sorted_times.first().map(|x| x * 1e3),
            "merged_count": merged_count,
            "merged_p99": merged_p99,
        }),
    );

    if !args.no_store {
        for kind in [MetricKind::Gauge, MetricKind::Count] {
            let key = format!("store_{}", kind.as_str());
            let v = store_bench(&args, kind, &mut rng)
                .unwrap_or_else(|e| serde_json::json!({ "error": e }));
            out.insert(key, v);
        }
    }

    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", serde_json::Value::Object(out));
}

/// Bytes of the regular files under `dir` whose name ends with `suffix` (all files for an empty suffix).
fn dir_bytes(dir: &Path, suffix: &str) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path(), suffix),
            Ok(t) if t.is_file() && e.file_name().to_string_lossy().ends_with(suffix) => {
                e.metadata().map_or(0, |m| m.len())
            }
            _ => 0,
        })
        .sum()
}

/// Writes `series` x `hours` of one metric kind into a fresh `MetricStore`, flushes it to Parquet, measures
/// the bytes per sample, reopens the store (so reads come from the blocks) and times a `by {host}` query.
fn store_bench(args: &Args, kind: MetricKind, rng: &mut Rng) -> Result<serde_json::Value, String> {
    let tmp = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let dir = tmp.path().join("metrics");
    let cfg = StorageConfig {
        // Bulk loading: one fsync per interval instead of per batch (the policy does not change the blocks).
        wal: WalConfig {
            fsync: FsyncPolicy::Interval,
            ..WalConfig::default()
        },
        flush_max_points: usize::MAX,
        ..StorageConfig::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let name = format!("bench.{}", kind.as_str());
    let step = args.step.max(1);
    let points_per_series = (args.hours.max(1) * 3600 / step) as usize;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // Start a day and a bit ago, on a 2 h boundary, so the range is well inside retention.
    let start = (now - args.hours.max(1) * 3600 - 7200).div_euclid(7200) * 7200;
    let hosts = args.hosts.max(1);
    let keys: Vec<SeriesKey> = (0..args.series)
        .map(|i| {
            let tags = vec![
                format!("host:h{}", i % hosts),
                format!("shard:{}", i / hosts),
                "env:prod".to_string(),
            ];
            SeriesKey::new(name.clone(), TagSet::from_normalized(tags))
        })
        .collect();
    // Gauges: a CPU-like random walk with one decimal; counts: small integers per 10 s.
    let mut level: Vec<f64> = (0..args.series).map(|_| 20.0 + 60.0 * unit(rng)).collect();
    let mut registry = prometheus_client::registry::Registry::default();
    let store = MetricStore::open(&dir, cfg.clone(), Limits::default(), &mut registry)
        .map_err(|e| format!("open: {e}"))?;
    let t_write = Instant::now();
    let ts_per_batch = (100_000 / args.series.max(1)).max(1);
    let mut written = 0usize;
    let mut rejected = 0usize;
    let mut k = 0usize;
    while k < points_per_series {
        let mut batch = MetricBatch::default();
        for t in k..(k + ts_per_batch).min(points_per_series) {
            let ts = start + t as i64 * step;
            for (i, key) in keys.iter().enumerate() {
                let v = match kind {
                    MetricKind::Gauge => {
                        level[i] = (level[i] + (unit(rng) - 0.5) * 2.0).clamp(0.0, 100.0);
                        (level[i] * 10.0).round() / 10.0
                    }
                    _ => (rng.next_u64() % 40) as f64,
                };
                batch.points.push(MetricPoint {
                    series: key.clone(),
                    kind,
                    timestamp: ts,
                    interval: step as u32,
                    value: Value::Scalar(v),
                });
            }
        }
        k += ts_per_batch;
        let o = rt
            .block_on(store.write(&batch))
            .map_err(|e| format!("write: {e}"))?;
        written += o.accepted;
        rejected += o.rejected;
    }
    let write_s = t_write.elapsed().as_secs_f64();
    let t_flush = Instant::now();
    let fs = store.flush_blocking().map_err(|e| format!("flush: {e}"))?;
    let flush_s = t_flush.elapsed().as_secs_f64();
    rt.block_on(store.shutdown());
    drop(store);
    let parquet = dir_bytes(&dir.join("blocks"), ".parquet");
    let index = dir_bytes(&dir.join("index"), "");
    let wal = dir_bytes(&dir.join("wal"), "");
    let files = std::fs::read_dir(dir.join("blocks"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
                .count()
        })
        .unwrap_or(0);

    // Reopen: nothing in the head, every read goes to the Parquet blocks.
    let t_open = Instant::now();
    let store: Arc<MetricStore> = MetricStore::open(
        &dir,
        cfg,
        Limits::default(),
        &mut prometheus_client::registry::Registry::default(),
    )
    .map_err(|e| format!("reopen: {e}"))?;
    let open_s = t_open.elapsed().as_secs_f64();
    let query = match kind {
        MetricKind::Gauge => format!("avg:{name}{{*}} by {{host}}"),
        _ => format!("sum:{name}{{*}} by {{host}}.as_count()"),
    };
    let (from, to) = (start, start + args.hours.max(1) * 3600);
    let mut times = Vec::new();
    let mut groups = 0;
    let mut points = 0;
    let mut first = None;
    for _ in 0..args.repeats.max(1) {
        let t = Instant::now();
        let out = sightline_query::run_query(&query, from, to, store.as_ref())
            .map_err(|e| format!("query {query}: {e}"))?;
        let body = sightline_query::http::query_response(&query, &out);
        black_box(body.to_string());
        let dt = t.elapsed().as_secs_f64();
        first.get_or_insert(dt);
        times.push(dt);
        groups = out.series.len();
        points = out.series.iter().map(|s| s.points.len()).sum::<usize>();
    }
    rt.block_on(store.shutdown());
    Ok(serde_json::json!({
        "series": args.series,
        "points_per_series": points_per_series,
        "samples_written": written,
        "samples_rejected": rejected,
        "write_s": write_s,
        "write_samples_per_s": written as f64 / write_s.max(1e-9),
        "flush_s": flush_s,
        "flushed_points": fs.points,
        "parquet_files": files,
        "parquet_bytes": parquet,
        "bytes_per_sample": parquet as f64 / written.max(1) as f64,
        "index_bytes": index,
        "wal_bytes_after_flush": wal,
        "reopen_s": open_s,
        "query": query,
        "query_range_s": to - from,
        "query_groups": groups,
        "query_points": points,
        "query_ms_first": first.map(|x| x * 1e3),
        "query_ms_median": median(times) * 1e3,
    }))
}

fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Serialized size of a sketch (what a stored sketch costs before compression).
fn postcard_len(s: &Sketch) -> usize {
    postcard::to_allocvec(s).map(|v| v.len()).unwrap_or(0)
}

//! Monitor evaluation benchmark (issue #5): `N` `metric alert` monitors with `by {host}` over `G` hosts each,
//! evaluated with the server's own `sightline_query::monitor::eval::evaluate_all` against the real on-disk
//! stores in a temp dir: a `MetricStore` (points in its in-memory head, WAL on disk), the monitor definitions
//! in a `MonitorStore` (`monitors.json`) and the group states in a `MonitorStateStore` (one JSON file per
//! monitor, rewritten atomically with fsyncs when it changes). Transition events go to a counting `LogSink`.
//!
//! Data: each monitor `i` queries `<agg>(last_5m):avg:bench.mon.m<i % metrics>{*} by {host} > T`, one series
//! per (metric, host), one point every 10 s. Each series is "high" (~100) or "low" (~0) per simulated minute;
//! a Markov chain flips it at each minute boundary, tuned so that `--alert-fraction` of the series are high
//! and `--flip-rate` of them change per minute: a realistic small share of the groups changes status per
//! cycle, so transitions, events and state persistence are exercised. The time aggregation varies over the
//! monitors (avg, max, min, sum), so do the thresholds.
//!
//! Cycles: the first one (every group new: every state is created), then `--cycles` steady cycles at simulated
//! 60 s steps (the next 60 s of points, 6 per series, are written before each, outside the measurement). CPU
//! time is the process's user+sys (`getrusage(RUSAGE_SELF)`) around `evaluate_all` only. After each steady
//! cycle, at the same `now`, two baselines over the same data: the same queries parsed and run through
//! `sightline_query::eval::evaluate` with the time aggregation applied (no state machine, no persistence),
//! and the same plus what `monitor::eval`'s `metric_values` adds (group names, the group -> value map). Optionally
//! (`--memory-states`) the same cycles with a `MemoryMonitorStates` instead of the on-disk store, which
//! isolates the cost of persistence. Prints one JSON object on stdout; progress on stderr.

use async_trait::async_trait;
use clap::Parser;
use serde_json::{json, Value as Json};
use sightline_bench::Rng;
use sightline_model::{
    Limits, LogBatch, LogSink, MetricBatch, MetricKind, MetricPoint, SeriesKey, SinkError, TagSet,
    Value, WriteOutcome,
};
use sightline_query::eval::{evaluate, EvalOptions};
use sightline_query::monitor::eval::{
    evaluate_all, metric_values, CycleReport, EvalContext, StateCache,
};
use sightline_query::monitor::model::{check_create, creator};
use sightline_query::monitor::TimeAgg;
use sightline_storage::wal::{FsyncPolicy, WalConfig};
use sightline_storage::{
    MemoryMonitorStates, MemoryMonitors, MetricStore, MonitorRepo, MonitorStateRepo,
    MonitorStateStore, MonitorStore, StorageConfig,
};
use std::hint::black_box;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The allocator of the `sightline` binary, so allocation costs match the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "monitor-bench",
    about = "CPU per monitor evaluation cycle: N metric monitors x G groups on the real stores"
)]
struct Args {
    /// Monitors.
    #[arg(long, default_value_t = 10_000)]
    monitors: usize,
    /// Hosts per metric: the groups of each monitor (`by {host}`).
    #[arg(long, default_value_t = 100)]
    groups: usize,
    /// Distinct metrics (each with `--groups` series); monitor `i` queries metric `i % metrics`. Default: one
    /// metric per monitor.
    #[arg(long)]
    metrics: Option<usize>,
    /// Steady cycles after the first one.
    #[arg(long, default_value_t = 6)]
    cycles: usize,
    /// Share of the series that are high (alerting) at any time.
    #[arg(long, default_value_t = 0.10)]
    alert_fraction: f64,
    /// Share of the series that flip high/low at each simulated minute.
    #[arg(long, default_value_t = 0.01)]
    flip_rate: f64,
    /// Seed of the deterministic generator.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Directory under which the temp data dir is made (default: the system temp dir). It must be on a real
    /// disk, not tmpfs, for the fsyncs of the state store to cost what they cost.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also run every cycle with in-memory states (`MemoryMonitorStates`) to isolate persistence.
    #[arg(long)]
    memory_states: bool,
    /// Skip the raw-query baselines.
    #[arg(long)]
    no_baseline: bool,
    /// A `perf record --control fifo:CTL,ACK` control FIFO: profiling is enabled around the steady cycles
    /// listed in `--profile-cycles` only (on-disk states).
    #[arg(long)]
    perf_ctl: Option<PathBuf>,
    /// The ack FIFO of `--perf-ctl`.
    #[arg(long)]
    perf_ack: Option<PathBuf>,
    /// Steady cycles (1-based) to profile with `--perf-ctl`.
    #[arg(long, value_delimiter = ',', default_value = "3")]
    profile_cycles: Vec<usize>,
}

const STEP: i64 = 10;
const MINUTE: i64 = 60;
const WINDOW: i64 = 300;
const AGGS: [(&str, TimeAgg); 4] = [
    ("avg", TimeAgg::Avg),
    ("max", TimeAgg::Max),
    ("min", TimeAgg::Min),
    ("sum", TimeAgg::Sum),
];

/// Counts the transition events instead of storing them.
#[derive(Default)]
struct CountingSink {
    records: AtomicUsize,
    batches: AtomicUsize,
}

#[async_trait]
impl LogSink for CountingSink {
    async fn write_logs(&self, batch: LogBatch) -> Result<WriteOutcome, SinkError> {
        let n = batch.records.len();
        black_box(&batch);
        self.records.fetch_add(n, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        Ok(WriteOutcome {
            accepted: n,
            ..WriteOutcome::default()
        })
    }
}

/// User + system CPU seconds of the whole process.
fn cpu_s() -> f64 {
    let (user, sys) = cpu_split();
    user + sys
}

/// (user, sys) CPU seconds of the process.
fn cpu_split() -> (f64, f64) {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(u.ru_utime), tv(u.ru_stime))
}

/// A numeric field of a `/proc/self/<file>` of `name: value` lines (`status`: `VmRSS`, `VmHWM` in KiB;
/// `io`: `wchar`, `write_bytes`); 0 if absent.
fn proc_field(file: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/self/{file}"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn status_kib(field: &str) -> u64 {
    proc_field("status", field)
}

fn proc_io(field: &str) -> u64 {
    proc_field("io", field)
}

fn dir_bytes(dir: &Path) -> (u64, usize) {
    let mut bytes = 0;
    let mut files = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(m) = e.metadata() {
                if m.is_file() {
                    bytes += m.len();
                    files += 1;
                }
            }
        }
    }
    (bytes, files)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    if xs.is_empty() {
        return f64::NAN;
    }
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// The series: one per (metric, host), each high or low per minute.
struct Data {
    keys: Vec<SeriesKey>,
    high: Vec<bool>,
    p_up: f64,
    p_down: f64,
    rng: Rng,
}

impl Data {
    fn new(args: &Args, metrics: usize) -> Data {
        let hosts: Vec<String> = (0..args.groups).map(|h| format!("host:h{h}")).collect();
        let mut keys = Vec::with_capacity(metrics * args.groups);
        for m in 0..metrics {
            let name = format!("bench.mon.m{m}");
            for h in &hosts {
                keys.push(SeriesKey::new(
                    name.clone(),
                    TagSet::from_normalized(vec![h.clone()]),
                ));
            }
        }
        let pi = args.alert_fraction.clamp(0.001, 0.999);
        let f = args.flip_rate.clamp(0.0, 1.0);
        let mut rng = Rng(args.seed);
        let high = (0..keys.len()).map(|_| rng.unit() < pi).collect();
        Data {
            keys,
            high,
            // Stationary share high = pi; flips per minute = 2 pi p_down = f.
            p_up: (f / (2.0 * (1.0 - pi))).min(1.0),
            p_down: (f / (2.0 * pi)).min(1.0),
            rng,
        }
    }

    /// Advances the chain one minute, then writes that minute's points (`[start, start + 60)`, every 10 s).
    /// Returns (points written, series that flipped).
    fn write_minute(
        &mut self,
        rt: &tokio::runtime::Runtime,
        store: &MetricStore,
        start: i64,
        advance: bool,
    ) -> Result<(usize, usize), String> {
        let mut flips = 0;
        if advance {
            for h in self.high.iter_mut() {
                let p = if *h { self.p_down } else { self.p_up };
                if self.rng.unit() < p {
                    *h = !*h;
                    flips += 1;
                }
            }
        }
        let per_batch = 100_000;
        let mut batch = MetricBatch::default();
        let mut written = 0;
        for (i, key) in self.keys.iter().enumerate() {
            let base = if self.high[i] { 100.0 } else { 0.0 };
            for k in 0..(MINUTE / STEP) {
                let noise = (self.rng.unit() * 50.0).round() / 10.0;
                batch.points.push(MetricPoint {
                    series: key.clone(),
                    kind: MetricKind::Gauge,
                    timestamp: start + k * STEP,
                    interval: STEP as u32,
                    value: Value::Scalar(base + noise),
                });
            }
            if batch.points.len() >= per_batch {
                written += write(rt, store, &batch)?;
                batch.points.clear();
            }
        }
        if !batch.points.is_empty() {
            written += write(rt, store, &batch)?;
        }
        Ok((written, flips))
    }
}

fn write(
    rt: &tokio::runtime::Runtime,
    store: &MetricStore,
    batch: &MetricBatch,
) -> Result<usize, String> {
    let o = rt
        .block_on(store.write(batch))
        .map_err(|e| format!("write: {e}"))?;
    if o.rejected > 0 {
        return Err(format!("{} points rejected: {:?}", o.rejected, o.errors));
    }
    Ok(o.accepted)
}

/// One monitor as the bench defines it.
struct Spec {
    query: String,
    metric_query: String,
    agg: TimeAgg,
}

fn specs(args: &Args, metrics: usize) -> Vec<Spec> {
    (0..args.monitors)
        .map(|i| {
            let m = i % metrics;
            // Vary the aggregation also among the monitors sharing a metric.
            let (agg_name, agg) = AGGS[(i + i / metrics) % AGGS.len()];
            let t = 45 + (i % 11) as i64;
            let threshold = if agg == TimeAgg::Sum {
                t * (WINDOW / STEP)
            } else {
                t
            };
            let metric_query = format!("avg:bench.mon.m{m}{{*}} by {{host}}");
            Spec {
                query: format!("{agg_name}(last_5m):{metric_query} > {threshold}"),
                metric_query,
                agg,
            }
        })
        .collect()
}

/// Creates the monitor definitions through the API's validation (`check_create`, `to_doc`) and the
/// `MonitorRepo::create` id allocation, then persists them as a version 1 `monitors.json` (one document)
/// that `MonitorStore::open` converts to its one-file-per-monitor layout. (Faster than 10,000
/// `MonitorStore::create`s, each two fsynced atomic writes; before the one-file-per-monitor layout a create
/// rewrote the whole document, ~30 GB for 10,000.)
fn make_monitors(specs: &[Spec], dir: &Path) -> Result<Arc<MonitorStore>, String> {
    let mem = MemoryMonitors::default();
    let now = sightline_query::monitor::model::timestamp_now();
    for (i, s) in specs.iter().enumerate() {
        let body = json!({
            "name": format!("bench monitor {i}"),
            "type": "metric alert",
            "query": s.query,
            "message": "{{#is_alert}}{{host.name}} is high: {{value}} > {{threshold}}{{/is_alert}}\
                        {{#is_recovery}}{{host.name}} recovered{{/is_recovery}} @webhook-bench",
            "tags": ["bench:monitors", format!("team:t{}", i % 10)],
            "options": {"notify_no_data": false},
        });
        let def = check_create(&body).map_err(|e| format!("monitor {i}: {e:?}"))?;
        mem.create(def.to_doc(&now, &now, &creator()))
            .map_err(|e| format!("create: {e}"))?;
    }
    let docs = mem.list();
    let next_id = docs.len() as u64 + 1;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let doc = json!({"version": 1, "next_id": next_id, "monitors": docs});
    let bytes = serde_json::to_vec(&doc).map_err(|e| e.to_string())?;
    std::fs::write(dir.join(sightline_storage::monitors::MONITORS_FILE), bytes)
        .map_err(|e| format!("monitors.json: {e}"))?;
    let store = MonitorStore::open(dir).map_err(|e| format!("MonitorStore::open: {e}"))?;
    if store.list().len() != specs.len() {
        return Err("the monitor store did not load every monitor".into());
    }
    Ok(Arc::new(store))
}

/// Perf control: enables or disables recording and waits for the ack.
struct PerfCtl {
    ctl: std::fs::File,
    ack: std::io::BufReader<std::fs::File>,
}

impl PerfCtl {
    fn open(ctl: &Path, ack: &Path) -> Result<PerfCtl, String> {
        let c = std::fs::OpenOptions::new()
            .write(true)
            .open(ctl)
            .map_err(|e| format!("{}: {e}", ctl.display()))?;
        let a = std::fs::File::open(ack).map_err(|e| format!("{}: {e}", ack.display()))?;
        Ok(PerfCtl {
            ctl: c,
            ack: std::io::BufReader::new(a),
        })
    }

    fn send(&mut self, cmd: &str) {
        let _ = self.ctl.write_all(format!("{cmd}\n").as_bytes());
        let _ = self.ctl.flush();
        let mut line = String::new();
        let _ = self.ack.read_line(&mut line);
    }
}

fn report_json(r: &CycleReport) -> Json {
    json!({
        "evaluated": r.evaluated, "skipped": r.skipped, "failed": r.failed,
        "transitions": r.transitions, "events": r.events,
        "notifications": r.notifications, "muted": r.muted, "saved": r.saved,
    })
}

/// Runs one cycle and measures it.
fn run_cycle(
    rt: &tokio::runtime::Runtime,
    ctx: &Arc<EvalContext>,
    now: i64,
    states_dir: Option<&Path>,
) -> (CycleReport, Json) {
    let wchar0 = proc_io("wchar");
    let wb0 = proc_io("write_bytes");
    let (u0, s0) = cpu_split();
    let t = Instant::now();
    let r = rt.block_on(evaluate_all(ctx, now));
    let wall = t.elapsed().as_secs_f64();
    let (u1, s1) = cpu_split();
    let wchar = proc_io("wchar") - wchar0;
    let wb = proc_io("write_bytes").saturating_sub(wb0);
    let mut j = json!({
        "now": now,
        "cpu_s": (u1 - u0) + (s1 - s0),
        "user_s": u1 - u0,
        "sys_s": s1 - s0,
        "wall_s": wall,
        "report": report_json(&r),
        "wchar_bytes": wchar,
        "disk_write_bytes": wb,
        "rss_mib": status_kib("VmRSS:") as f64 / 1024.0,
    });
    if let Some(d) = states_dir {
        let (bytes, files) = dir_bytes(d);
        j["state_dir_bytes"] = json!(bytes);
        j["state_files"] = json!(files);
    }
    (r, j)
}

/// The raw-query baseline: every monitor's metric query parsed and evaluated over the window, its series
/// reduced with the time aggregation; no group names, no states, no persistence.
fn baseline_raw(ctx: &EvalContext, specs: &[Spec], now: i64) -> Result<(f64, f64, usize), String> {
    let c0 = cpu_s();
    let t = Instant::now();
    let mut groups = 0usize;
    let mut acc = 0.0;
    for s in specs {
        let parsed = sightline_query::parse(&s.metric_query).map_err(|e| e.to_string())?;
        let out = evaluate(
            &parsed,
            now - WINDOW,
            now,
            ctx.metrics.as_ref(),
            &ctx.options,
        )
        .map_err(|e| e.to_string())?;
        for series in &out.series {
            groups += 1;
            let vals = series
                .points
                .iter()
                .filter_map(|(_, v)| *v)
                .filter(|v| !v.is_nan());
            acc += match s.agg {
                TimeAgg::Min => vals.fold(f64::INFINITY, f64::min),
                TimeAgg::Max => vals.fold(f64::NEG_INFINITY, f64::max),
                _ => vals.sum(),
            };
        }
    }
    black_box(acc);
    Ok((cpu_s() - c0, t.elapsed().as_secs_f64(), groups))
}

/// The raw queries plus what `monitor::eval::metric_values` adds (group names such as `host:h1`, the group
/// -> value map, the newest point per group), without the state machine and persistence.
fn baseline_values(
    ctx: &EvalContext,
    specs: &[Spec],
    now: i64,
) -> Result<(f64, f64, usize), String> {
    let c0 = cpu_s();
    let t = Instant::now();
    let mut groups = 0usize;
    for s in specs {
        let values = metric_values(ctx, s.agg, &s.metric_query, now - WINDOW, now, false)?;
        groups += values.values.len();
        black_box(values);
    }
    Ok((cpu_s() - c0, t.elapsed().as_secs_f64(), groups))
}

fn run(args: &Args) -> Result<Json, String> {
    let metrics = args
        .metrics
        .unwrap_or(args.monitors)
        .clamp(1, args.monitors);
    let series = metrics * args.groups;
    let tmp = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            tempfile::Builder::new()
                .prefix("monitor-bench.")
                .tempdir_in(d)
        }
        None => tempfile::Builder::new().prefix("monitor-bench.").tempdir(),
    }
    .map_err(|e| format!("temp dir: {e}"))?;
    let data_dir = tmp.path().to_path_buf();
    eprintln!(
        "monitor-bench: {} monitors, {} metrics x {} hosts = {series} series, data dir {}",
        args.monitors,
        metrics,
        args.groups,
        data_dir.display()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;

    // The metric store: bulk loading with one fsync per interval (the data writing is not measured), no
    // flush (every point of the window stays in the head), no background tasks.
    let cfg = StorageConfig {
        wal: WalConfig {
            fsync: FsyncPolicy::Interval,
            ..WalConfig::default()
        },
        flush_max_points: usize::MAX,
        ..StorageConfig::default()
    };
    let limits = Limits {
        max_series_total: Limits::default().max_series_total.max(series + 1),
        ..Limits::default()
    };
    let mut registry = prometheus_client::registry::Registry::default();
    let store = MetricStore::open(&data_dir.join("metrics"), cfg, limits, &mut registry)
        .map_err(|e| format!("MetricStore::open: {e}"))?;

    let now_wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // Start an hour ago on a minute boundary: the first cycle is at `base + 5 min`.
    let base = (now_wall - 3600).div_euclid(MINUTE) * MINUTE;
    let mut data = Data::new(args, metrics);
    let t_load = Instant::now();
    let c_load = cpu_s();
    let mut points = 0;
    for m in 0..(WINDOW / MINUTE) {
        let (n, _) = data.write_minute(&rt, &store, base + m * MINUTE, m > 0)?;
        points += n;
        eprintln!(
            "  loaded minute {}: {points} points, {:.1} s",
            m + 1,
            t_load.elapsed().as_secs_f64()
        );
    }
    let load = json!({
        "points": points,
        "wall_s": t_load.elapsed().as_secs_f64(),
        "cpu_s": cpu_s() - c_load,
        "rss_mib": status_kib("VmRSS:") as f64 / 1024.0,
    });

    let specs = specs(args, metrics);
    let t_mon = Instant::now();
    let monitors = make_monitors(&specs, &data_dir.join("monitors"))?;
    let (mon_bytes, _) = dir_bytes(&data_dir.join("monitors"));
    eprintln!(
        "  {} monitors created ({mon_bytes} bytes of monitors.json) in {:.1} s",
        specs.len(),
        t_mon.elapsed().as_secs_f64()
    );
    let states_dir = data_dir.join("monitors").join("states");
    let states =
        Arc::new(MonitorStateStore::open(&states_dir).map_err(|e| format!("states: {e}"))?);
    let store: Arc<MetricStore> = store;
    let sink = Arc::new(CountingSink::default());
    let ctx = Arc::new(EvalContext {
        monitors: monitors.clone(),
        states: states.clone() as Arc<dyn MonitorStateRepo>,
        metrics: store.clone(),
        logs: None,
        spans: None,
        events: sink.clone(),
        options: EvalOptions::default(),
        downtimes: None,
        notifier: None,
        cache: Arc::new(StateCache::default()),
    });
    let mem_ctx = args.memory_states.then(|| {
        Arc::new(EvalContext {
            monitors: monitors.clone(),
            states: Arc::new(MemoryMonitorStates::default()),
            metrics: store.clone(),
            logs: None,
            spans: None,
            events: Arc::new(CountingSink::default()),
            options: EvalOptions::default(),
            downtimes: None,
            notifier: None,
            cache: Arc::new(StateCache::default()),
        })
    });
    let mut perf = match (&args.perf_ctl, &args.perf_ack) {
        (Some(c), Some(a)) => Some(PerfCtl::open(c, a)?),
        _ => None,
    };

    let mut now = base + WINDOW;
    let mut cycles = Vec::new();
    let mut steady_cpu = Vec::new();
    let mut steady_wall = Vec::new();
    let mut steady_mem_cpu = Vec::new();
    let mut raw_cpu = Vec::new();
    let mut values_cpu = Vec::new();
    let mut ratios = Vec::new();
    let mut steady_transitions = Vec::new();
    for c in 0..=args.cycles {
        let mut flips = 0;
        let mut write_s = 0.0;
        if c > 0 {
            let t = Instant::now();
            let (n, f) = data.write_minute(&rt, &store, now, true)?;
            write_s = t.elapsed().as_secs_f64();
            flips = f;
            points += n;
            now += MINUTE;
        }
        let profile = c > 0 && perf.is_some() && args.profile_cycles.contains(&c);
        if profile {
            if let Some(p) = perf.as_mut() {
                p.send("enable");
            }
        }
        let (r, mut j) = run_cycle(&rt, &ctx, now, Some(&states_dir));
        if profile {
            if let Some(p) = perf.as_mut() {
                p.send("disable");
            }
        }
        j["cycle"] = json!(c);
        j["kind"] = json!(if c == 0 { "first" } else { "steady" });
        j["series_flipped_before"] = json!(flips);
        j["data_write_s"] = json!(write_s);
        j["budget_ratio"] = json!(j["cpu_s"].as_f64().unwrap_or(0.0) / 6.0);
        if r.failed > 0 || r.evaluated != specs.len() {
            return Err(format!("cycle {c}: {r:?}"));
        }
        if let Some(mc) = &mem_ctx {
            let (_, m) = run_cycle(&rt, mc, now, None);
            j["memory_states"] = m;
        }
        if c > 0 {
            steady_cpu.push(j["cpu_s"].as_f64().unwrap_or(0.0));
            steady_wall.push(j["wall_s"].as_f64().unwrap_or(0.0));
            steady_transitions.push(r.transitions as f64);
            if let Some(m) = j.get("memory_states") {
                steady_mem_cpu.push(m["cpu_s"].as_f64().unwrap_or(0.0));
            }
            if !args.no_baseline {
                let (rc, rw, rg) = baseline_raw(&ctx, &specs, now)?;
                let (vc, vw, vg) = baseline_values(&ctx, &specs, now)?;
                j["baseline_raw_queries"] = json!({"cpu_s": rc, "wall_s": rw, "groups": rg});
                j["baseline_metric_values"] = json!({"cpu_s": vc, "wall_s": vw, "groups": vg});
                let cyc = j["cpu_s"].as_f64().unwrap_or(0.0);
                j["cycle_vs_raw_queries"] = json!(cyc / rc.max(1e-9));
                raw_cpu.push(rc);
                values_cpu.push(vc);
                ratios.push(cyc / rc.max(1e-9));
            }
        }
        eprintln!("  cycle {c}: {j}");
        cycles.push(j);
    }
    let (state_bytes, state_files) = dir_bytes(&states_dir);
    let med = median(steady_cpu.clone());
    let summary = json!({
        "monitors": specs.len(),
        "groups_per_monitor": args.groups,
        "metrics": metrics,
        "series": series,
        "layout": if metrics == specs.len() { "one metric per monitor" } else { "metrics shared by several monitors" },
        "first_cycle_cpu_s": cycles[0]["cpu_s"],
        "first_cycle_wall_s": cycles[0]["wall_s"],
        "first_cycle_transitions": cycles[0]["report"]["transitions"],
        "steady_cycles": steady_cpu.len(),
        "steady_cpu_s": steady_cpu,
        "steady_median_cpu_s": med,
        "steady_median_wall_s": median(steady_wall),
        "steady_median_transitions": median(steady_transitions),
        "budget_cpu_s": 6.0,
        "steady_median_vs_budget": med / 6.0,
        "target_met": med <= 6.0,
        "baseline_raw_queries_median_cpu_s": median(raw_cpu),
        "baseline_metric_values_median_cpu_s": median(values_cpu),
        "cycle_vs_raw_queries_median": median(ratios),
        "memory_states_steady_median_cpu_s": median(steady_mem_cpu),
        "state_dir_bytes_end": state_bytes,
        "state_files_end": state_files,
        "events_recorded": sink.records.load(Ordering::Relaxed),
        "points_written": points,
        "max_rss_mib": status_kib("VmHWM:") as f64 / 1024.0,
    });
    rt.block_on(store.shutdown());
    Ok(json!({"load": load, "cycles": cycles, "summary": summary}))
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(out) => {
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        Err(e) => {
            eprintln!("monitor-bench: {e}");
            std::process::exit(1);
        }
    }
}

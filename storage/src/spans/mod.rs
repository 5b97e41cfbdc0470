//! The span store (SPEC §2, issue #4): spans through a write-ahead log (the same `Wal` as metrics and logs,
//! its own directory) into an in-memory head, flushed to Parquet files per time partition sorted by trace id.
//!
//! Layout of its directory: `wal/` (segments), `manifest.json` (`{"flushed_lsn": N}`: every WAL record up to
//! N is in committed Parquet files), `parts/<partition start, unix s>/<flush LSN, 20 digits>.parquet`.
//!
//! Write: encode the batch (the WAL payload), then under the state lock submit it to the WAL and append it to
//! the active head (so head order is WAL order and a flush cuts both at one point); outside the lock wait for
//! the WAL ticket and acknowledge. An acknowledged span is at once visible to `trace()` and `scan()`. If the
//! WAL fails a record, its spans are already in the head: the store then stops accepting writes and flushing
//! (see [`SpanStore::failure`]); a restart replays only what the WAL holds.
//!
//! Flush (the flusher thread, every `flush_interval_secs` or once the head passes `flush_max_spans` /
//! `flush_max_bytes`; or [`SpanStore::flush_blocking`]): under the lock, freeze the active head (it stays
//! readable) and rotate the WAL; outside it, write one Parquet file per partition the frozen head touches
//! (temporary file, fsync, rename, fsync of the directory), save the manifest with the frozen head's last
//! LSN, then under the lock publish the files and drop the frozen head together (readers see each span
//! exactly once), and delete the WAL segments before the rotation. Open deletes Parquet files whose LSN is
//! above the manifest's (a flush interrupted before its commit) and replays the WAL records above it: after
//! `kill -9` at any point no acknowledged span is lost and none is stored twice. A flush that fails keeps its
//! frozen head (still readable, retried with the same file names); one whose manifest could not be saved
//! stops flushing until a restart sorts out which side of the commit it is on.
//!
//! Retention (the flusher, every minute; and at open) drops whole partitions that end more than
//! `retention_days` ago; a flush does not write spans already that old.

mod file;
mod head;
pub mod reader;

pub use reader::{MemorySpans, SpanReader};

use crate::block::{sync_dir, write_atomic};
use crate::wal::{Lsn, RotateTicket, SegmentId, Wal, WalConfig};
use crate::StorageError;
use async_trait::async_trait;
use file::{corrupt, io_err, LookupStats, SpanFile};
use head::{encode_batch, index_payload, Head};
use parking_lot::{Condvar, Mutex, RwLock};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use sightline_model::{now_ns, SinkError, SpanBatch, SpanRecord, SpanSink, WriteOutcome};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The WAL record kind of a span batch (payload: `SpanBatch::encode()` bytes).
pub const WAL_KIND_SPANS: u8 = 3;

const NS_PER_SEC: i64 = 1_000_000_000;
/// Writes are refused (overloaded) once the active head holds this many times `flush_max_spans` or
/// `flush_max_bytes`: flushing is not keeping up.
const HEAD_LIMIT_FACTOR: usize = 4;
/// Seconds between retention passes of the flusher.
const RETENTION_EVERY: Duration = Duration::from_secs(60);
/// The flusher thread's nice value (Linux).
#[cfg(target_os = "linux")]
const FLUSHER_NICE: libc::c_int = 10;
/// After a failed flush, the next attempt waits at least this long.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// How the span store keeps, flushes and expires spans (`[storage.spans]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpanStoreConfig {
    /// Write-ahead log of the span store (its own directory; same settings as the metrics one).
    pub wal: WalConfig,
    /// Length of one time partition, in seconds (at least 60): a flush writes one Parquet file per partition
    /// its spans start in, and retention deletes whole partitions.
    pub partition_secs: i64,
    /// Seconds between flushes of the in-memory head to Parquet (the WAL is truncated after each).
    pub flush_interval_secs: u64,
    /// Flush early once the head holds this many spans. Writes are refused (overloaded) while the head holds
    /// four times as many (flushing is behind).
    pub flush_max_spans: usize,
    /// Flush early once the head holds this many bytes of encoded spans (about the OTLP size); writes are
    /// refused past four times as many.
    pub flush_max_bytes: usize,
    /// Spans per Parquet row group. Smaller groups make lookups by trace id read less; larger ones compress
    /// a little better.
    pub row_group_spans: usize,
    /// Days of spans kept; partitions that end before this are deleted.
    pub retention_days: u32,
}

impl Default for SpanStoreConfig {
    fn default() -> Self {
        SpanStoreConfig {
            wal: WalConfig::default(),
            partition_secs: 3600,
            flush_interval_secs: 60,
            flush_max_spans: 500_000,
            flush_max_bytes: 256 * 1024 * 1024,
            row_group_spans: 16 * 1024,
            retention_days: 15,
        }
    }
}

/// The store's own metrics (`sightline_spans_*`).
#[derive(Clone, Debug)]
pub struct SpanStoreMetrics {
    pub spans_written: Counter,
    pub flushes: Counter,
    pub flush_errors: Counter,
    pub flush_seconds: Histogram,
    pub head_spans: Gauge,
    pub parquet_files: Gauge,
    pub disk_bytes: Gauge,
    pub partitions_expired: Counter,
    pub trace_row_groups_read: Counter,
    pub trace_bloom_skips: Counter,
}

impl Default for SpanStoreMetrics {
    fn default() -> Self {
        SpanStoreMetrics {
            spans_written: Counter::default(),
            flushes: Counter::default(),
            flush_errors: Counter::default(),
            // 10 ms .. ~80 s
            flush_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            head_spans: Gauge::default(),
            parquet_files: Gauge::default(),
            disk_bytes: Gauge::default(),
            partitions_expired: Counter::default(),
            trace_row_groups_read: Counter::default(),
            trace_bloom_skips: Counter::default(),
        }
    }
}

impl SpanStoreMetrics {
    fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("sightline_spans");
        r.register(
            "spans_written",
            "Spans written to the span store (acknowledged)",
            self.spans_written.clone(),
        );
        r.register(
            "flushes",
            "Flushes of the span head to Parquet",
            self.flushes.clone(),
        );
        r.register(
            "flush_errors",
            "Span flushes that failed (retried)",
            self.flush_errors.clone(),
        );
        r.register(
            "flush_seconds",
            "Duration of span head flushes",
            self.flush_seconds.clone(),
        );
        r.register(
            "head_spans",
            "Spans in memory, not yet in Parquet",
            self.head_spans.clone(),
        );
        r.register(
            "parquet_files",
            "Parquet files of spans",
            self.parquet_files.clone(),
        );
        r.register(
            "disk_bytes",
            "Bytes of Parquet files of spans",
            self.disk_bytes.clone(),
        );
        r.register(
            "partitions_expired",
            "Span partitions deleted by retention",
            self.partitions_expired.clone(),
        );
        r.register(
            "trace_row_groups_read",
            "Parquet row groups decoded by lookups of a trace by id",
            self.trace_row_groups_read.clone(),
        );
        r.register(
            "trace_bloom_skips",
            "Row groups a lookup of a trace by id skipped on their bloom filter",
            self.trace_bloom_skips.clone(),
        );
    }
}

/// `manifest.json`: the highest LSN whose spans are all in committed Parquet files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    flushed_lsn: Lsn,
}

impl Manifest {
    fn load(path: &Path) -> Result<Manifest, StorageError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| corrupt(path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(io_err(path, e)),
        }
    }

    fn save(&self, path: &Path) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(self).expect("a manifest always serializes");
        write_atomic(path, &bytes)
    }
}

/// Committed files by partition start (unix seconds), each partition's files in flush order.
type Files = BTreeMap<i64, Vec<Arc<SpanFile>>>;

/// What readers and writers share, behind one lock never held across I/O or an await.
struct State {
    active: Head,
    /// The head being flushed (or whose flush failed and will be retried): readable until its files are
    /// published.
    frozen: Option<Arc<Head>>,
    files: Arc<Files>,
}

/// What flushes and retention hold while they work (they run one at a time).
struct Maint {
    /// The segment a rotation started when the frozen head was frozen: segments before it hold only records
    /// of the frozen head or older, deleted once it is committed.
    segment: Option<SegmentId>,
    rotation: Option<RotateTicket>,
}

/// Flusher thread control.
#[derive(Default)]
struct Ctl {
    stop: bool,
    kick: bool,
}

struct Inner {
    dir: PathBuf,
    parts_dir: PathBuf,
    cfg: SpanStoreConfig,
    wal: Wal,
    state: RwLock<State>,
    maint: Mutex<Maint>,
    metrics: SpanStoreMetrics,
    ctl: Mutex<Ctl>,
    wake: Condvar,
    last_flush: Mutex<Instant>,
    retry_after: Mutex<Option<Instant>>,
    /// Set when saving the manifest failed: whether that flush is committed is known only after a restart,
    /// so nothing more is flushed (the WAL keeps everything).
    stuck: Mutex<Option<String>>,
}

/// The span store. See the module documentation.
pub struct SpanStore {
    inner: Arc<Inner>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

/// A span of a head being flushed: its sort key (trace id, start) and where it is (chunk, index).
type SortRow = ([u8; 16], i64, u32, u32);

fn file_name(lsn: Lsn) -> String {
    format!("{lsn:020}.parquet")
}

impl Inner {
    fn psecs(&self) -> i64 {
        self.cfg.partition_secs.max(60)
    }

    fn partition_start(&self, start_ns: i64) -> i64 {
        let p = self.psecs();
        start_ns.div_euclid(NS_PER_SEC).div_euclid(p) * p
    }

    /// Partitions that end at or before this (unix seconds) are expired at `now_ns`.
    fn cutoff_secs(&self, now_ns: i64) -> i64 {
        now_ns.div_euclid(NS_PER_SEC) - i64::from(self.cfg.retention_days) * 86_400
    }

    fn failed_error(&self) -> Option<StorageError> {
        self.wal.failure().map(|cause| StorageError::Io {
            path: self.dir.join("wal").display().to_string(),
            source: std::io::Error::other(format!(
                "span store stopped accepting writes after a write-ahead log failure: {cause}; restart to recover"
            )),
        })
    }

    fn kick(&self) {
        self.ctl.lock().kick = true;
        self.wake.notify_one();
    }

    fn update_head_gauge(&self, st: &State) {
        let head = st.active.spans() + st.frozen.as_ref().map_or(0, |f| f.spans());
        self.metrics.head_spans.set(head as i64);
    }

    fn update_gauges(&self, st: &State) {
        self.update_head_gauge(st);
        let files = st.files.values().map(Vec::len).sum::<usize>();
        let bytes: u64 = st.files.values().flatten().map(|f| f.bytes).sum();
        self.metrics.parquet_files.set(files as i64);
        self.metrics.disk_bytes.set(bytes as i64);
    }

    /// Flushes a frozen head left by a failed flush, then the active head.
    fn flush(&self) -> Result<(), StorageError> {
        let mut m = self.maint.lock();
        *self.last_flush.lock() = Instant::now();
        if self.stuck.lock().is_some() || self.wal.failure().is_some() {
            // Logged when it happened; the WAL keeps everything for the restart.
            return Ok(());
        }
        let pending = self.state.read().frozen.clone();
        if let Some(frozen) = pending {
            self.flush_frozen(&mut m, frozen)?;
        }
        let frozen = {
            let mut st = self.state.write();
            if st.active.is_empty() || st.frozen.is_some() {
                return Ok(());
            }
            let ticket = self.wal.rotate()?;
            m.rotation = Some(ticket);
            m.segment = None;
            let frozen = Arc::new(std::mem::take(&mut st.active));
            st.frozen = Some(frozen.clone());
            frozen
        };
        self.flush_frozen(&mut m, frozen)
    }

    fn flush_frozen(&self, m: &mut Maint, frozen: Arc<Head>) -> Result<(), StorageError> {
        let started = Instant::now();
        if let Some(ticket) = m.rotation.take() {
            // The WAL answers every record submitted before the rotation first, and notes a failure before it
            // answers: a failed record of the frozen head shows below.
            match ticket.blocking_recv() {
                Ok(Ok(segment)) => m.segment = Some(segment),
                Ok(Err(e)) => tracing::error!("span wal rotation failed: {e}"),
                Err(_) => return Err(StorageError::Closed),
            }
        }
        if let Some(e) = self.failed_error() {
            // The frozen head may hold spans of a failed record: they must never reach a file.
            return Err(e);
        }
        let lsn = frozen.last_lsn;
        let res = self.write_head(&frozen, lsn);
        let files = match res {
            Ok(files) => files,
            Err(e) => {
                self.metrics.flush_errors.inc();
                return Err(e);
            }
        };
        let manifest_path = self.dir.join("manifest.json");
        if let Err(e) = (Manifest { flushed_lsn: lsn }).save(&manifest_path) {
            self.metrics.flush_errors.inc();
            let msg = format!(
                "saving the span manifest failed: {e}; span flushes are stopped until a restart"
            );
            tracing::error!("{msg}");
            *self.stuck.lock() = Some(msg);
            return Err(e);
        }
        let (n_files, bytes) = (files.len(), files.iter().map(|f| f.bytes).sum::<u64>());
        {
            let mut st = self.state.write();
            let mut map = (*st.files).clone();
            for f in files {
                map.entry(f.partition).or_default().push(f);
            }
            st.files = Arc::new(map);
            st.frozen = None;
            self.update_gauges(&st);
        }
        let mut removed = 0;
        if let Some(segment) = m.segment.take() {
            match self.wal.remove_before(segment) {
                Ok(n) => removed = n,
                Err(e) => tracing::error!("deleting span wal segments failed: {e}"),
            }
        }
        self.metrics.flushes.inc();
        self.metrics
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(
            spans = frozen.spans(),
            files = n_files,
            bytes,
            lsn,
            wal_segments_removed = removed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "flushed the span head"
        );
        Ok(())
    }

    /// Writes a head as one file per partition, rows sorted by trace id then start. Spans of partitions
    /// already past retention are left out.
    fn write_head(&self, head: &Head, lsn: Lsn) -> Result<Vec<Arc<SpanFile>>, StorageError> {
        let psecs = self.psecs();
        let cutoff = self.cutoff_secs(now_ns());
        let mut by_part: BTreeMap<i64, Vec<SortRow>> = BTreeMap::new();
        let mut expired = 0usize;
        for (ci, chunk) in head.chunks().iter().enumerate() {
            for (i, loc) in chunk.spans.iter().enumerate() {
                let p = self.partition_start(loc.start_ns);
                if p.saturating_add(psecs) <= cutoff {
                    expired += 1;
                    continue;
                }
                by_part.entry(p).or_default().push((
                    loc.trace_id,
                    loc.start_ns,
                    ci as u32,
                    i as u32,
                ));
            }
        }
        if expired > 0 {
            tracing::info!(
                spans = expired,
                "span flush left out spans already past retention"
            );
        }
        let chunks = head.chunks();
        let mut files = Vec::with_capacity(by_part.len());
        let mut new_dirs = false;
        for (p, mut rows) in by_part {
            rows.sort_unstable();
            let dir = self.parts_dir.join(p.to_string());
            if !dir.is_dir() {
                std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
                new_dirs = true;
            }
            let path = dir.join(file_name(lsn));
            file::write_file(
                &path,
                rows.iter()
                    .map(|r| chunks[r.2 as usize].bytes(r.3 as usize)),
                self.cfg.row_group_spans,
            )?;
            sync_dir(&dir)?;
            files.push(Arc::new(SpanFile::load(&path, p, lsn)?));
        }
        if new_dirs {
            sync_dir(&self.parts_dir)?;
        }
        Ok(files)
    }

    fn apply_retention(&self, now_ns: i64) -> Result<usize, StorageError> {
        let _m = self.maint.lock();
        let cutoff = self.cutoff_secs(now_ns);
        let psecs = self.psecs();
        let expired: Vec<(i64, Vec<Arc<SpanFile>>)> = {
            let mut st = self.state.write();
            let old: Vec<i64> = st
                .files
                .keys()
                .copied()
                .filter(|p| p.saturating_add(psecs) <= cutoff)
                .collect();
            if old.is_empty() {
                return Ok(0);
            }
            let mut map = (*st.files).clone();
            let out = old
                .iter()
                .filter_map(|p| map.remove(p).map(|f| (*p, f)))
                .collect();
            st.files = Arc::new(map);
            self.update_gauges(&st);
            out
        };
        for (p, files) in &expired {
            for f in files {
                // Deleted (with the directory, once empty) when the last reader lets go.
                f.mark_obsolete();
            }
            tracing::info!(partition = p, "retention deleted a span partition");
        }
        self.metrics.partitions_expired.inc_by(expired.len() as u64);
        Ok(expired.len())
    }

    fn run_flusher(self: Arc<Self>) {
        let interval = Duration::from_secs(self.cfg.flush_interval_secs.max(1));
        let mut last_retention = Instant::now();
        loop {
            {
                let mut c = self.ctl.lock();
                if !c.stop && !c.kick {
                    self.wake.wait_for(&mut c, Duration::from_secs(1));
                }
                if c.stop {
                    return;
                }
                c.kick = false;
            }
            let (spans, bytes, frozen) = {
                let st = self.state.read();
                (st.active.spans(), st.active.bytes(), st.frozen.is_some())
            };
            let full = spans >= self.cfg.flush_max_spans || bytes >= self.cfg.flush_max_bytes;
            let timed = (spans > 0 || frozen) && self.last_flush.lock().elapsed() >= interval;
            let may_retry = self.retry_after.lock().is_none_or(|t| Instant::now() >= t);
            if (full || timed) && may_retry {
                match self.flush() {
                    Ok(()) => *self.retry_after.lock() = None,
                    Err(e) => {
                        tracing::error!("span flush failed: {e}; retrying later");
                        *self.retry_after.lock() = Some(Instant::now() + RETRY_AFTER);
                    }
                }
            }
            if last_retention.elapsed() >= RETENTION_EVERY {
                last_retention = Instant::now();
                if let Err(e) = self.apply_retention(now_ns()) {
                    tracing::error!("span retention failed: {e}");
                }
            }
        }
    }
}

/// Loads the committed files under `parts_dir`; deletes files of interrupted flushes (LSN above
/// `flushed_lsn`), temporary files and partitions already past retention.
fn load_parts(
    parts_dir: &Path,
    flushed_lsn: Lsn,
    psecs: i64,
    cutoff: i64,
) -> Result<Files, StorageError> {
    let mut files = Files::new();
    let entries = std::fs::read_dir(parts_dir).map_err(|e| io_err(parts_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(parts_dir, e))?;
        let dir = entry.path();
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i64>().ok())
        else {
            continue;
        };
        if !dir.is_dir() {
            continue;
        }
        if p.saturating_add(psecs) <= cutoff {
            std::fs::remove_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
            tracing::info!(partition = p, "retention deleted a span partition at open");
            continue;
        }
        let mut part = Vec::new();
        let mut deleted = false;
        for f in std::fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
            let f = f.map_err(|e| io_err(&dir, e))?;
            let path = f.path();
            let name = f.file_name().to_string_lossy().into_owned();
            let lsn = name
                .strip_suffix(".parquet")
                .and_then(|s| s.parse::<Lsn>().ok());
            match lsn {
                Some(lsn) if lsn <= flushed_lsn => {
                    part.push(Arc::new(SpanFile::load(&path, p, lsn)?));
                }
                Some(lsn) => {
                    tracing::info!(file = %path.display(), lsn, flushed_lsn,
                        "deleting a span file of an interrupted flush");
                    std::fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
                    deleted = true;
                }
                None if name.ends_with(".tmp") => {
                    std::fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
                    deleted = true;
                }
                None => {}
            }
        }
        if deleted {
            // Durable before anything is replayed, so a deleted file never comes back under a later manifest.
            sync_dir(&dir)?;
        }
        if part.is_empty() {
            let _ = std::fs::remove_dir(&dir);
            continue;
        }
        part.sort_by_key(|f| f.lsn);
        files.insert(p, part);
    }
    Ok(files)
}

impl SpanStore {
    /// Opens (creating if needed) the store in `dir` (the server passes `<data dir>/spans`): loads the
    /// committed Parquet files (footers and page indexes), deletes what an interrupted flush left, replays the
    /// WAL past the manifest into the head, and starts the flusher thread (flushes and retention). Blocking:
    /// run it before serving or on a blocking thread. Once it returns, every acknowledged span is readable.
    pub fn open(
        dir: &Path,
        cfg: SpanStoreConfig,
        registry: &mut Registry,
    ) -> Result<Arc<SpanStore>, StorageError> {
        if cfg.partition_secs <= 0 || cfg.row_group_spans == 0 {
            return Err(StorageError::Corrupt {
                path: dir.display().to_string(),
                detail: format!(
                    "partition_secs and row_group_spans must be positive, not {} and {}",
                    cfg.partition_secs, cfg.row_group_spans
                ),
            });
        }
        let metrics = SpanStoreMetrics::default();
        metrics.register(registry);
        let parts_dir = dir.join("parts");
        std::fs::create_dir_all(&parts_dir).map_err(|e| io_err(&parts_dir, e))?;
        let manifest = Manifest::load(&dir.join("manifest.json"))?;
        let psecs = cfg.partition_secs.max(60);
        let cutoff = now_ns().div_euclid(NS_PER_SEC) - i64::from(cfg.retention_days) * 86_400;
        let files = load_parts(&parts_dir, manifest.flushed_lsn, psecs, cutoff)?;

        let mut wal = Wal::open_named(
            &dir.join("wal"),
            cfg.wal.clone(),
            registry,
            "sightline_spans_wal",
        )?;
        let mut active = Head::default();
        let mut bad_records = 0u64;
        let stats = wal.replay(manifest.flushed_lsn, |lsn, kind, payload| {
            if kind != WAL_KIND_SPANS {
                return Ok(());
            }
            match index_payload(payload) {
                Ok(locs) => active.push(lsn, payload.to_vec(), locs),
                Err(e) => {
                    bad_records += 1;
                    tracing::warn!(lsn, "skipping an undecodable span batch in the wal: {e}");
                }
            }
            Ok(())
        })?;
        tracing::info!(
            records = stats.records,
            head_spans = active.spans(),
            files = files.values().map(Vec::len).sum::<usize>(),
            file_spans = files.values().flatten().map(|f| f.rows).sum::<u64>(),
            flushed_lsn = manifest.flushed_lsn,
            bad_records,
            "span store opened"
        );
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            parts_dir,
            cfg,
            wal,
            state: RwLock::new(State {
                active,
                frozen: None,
                files: Arc::new(files),
            }),
            maint: Mutex::new(Maint {
                segment: None,
                rotation: None,
            }),
            metrics,
            ctl: Mutex::new(Ctl::default()),
            wake: Condvar::new(),
            last_flush: Mutex::new(Instant::now()),
            retry_after: Mutex::new(None),
            stuck: Mutex::new(None),
        });
        inner.update_gauges(&inner.state.read());
        let for_thread = inner.clone();
        let handle = std::thread::Builder::new()
            .name("sightline-spans".into())
            .spawn(move || {
                // Flushing is background work: at a lower priority it yields the CPU to the requests being
                // acknowledged (export latency) and still gets its share under sustained load.
                #[cfg(target_os = "linux")]
                // SAFETY: setpriority only reads its arguments; `0` is the calling thread on Linux.
                unsafe {
                    libc::setpriority(libc::PRIO_PROCESS, 0, FLUSHER_NICE);
                }
                for_thread.run_flusher()
            })
            .map_err(|e| io_err(dir, e))?;
        Ok(Arc::new(SpanStore {
            inner,
            flusher: Mutex::new(Some(handle)),
        }))
    }

    /// Writes a batch: resolves once it is in the WAL (by the fsync policy); its spans are then visible to
    /// `trace()` and `scan()`. `Overloaded` when the head is far over its flush thresholds (flushing is
    /// behind) or the WAL has too much pending.
    pub async fn write(&self, batch: SpanBatch) -> Result<WriteOutcome, StorageError> {
        let inner = &self.inner;
        if let Some(e) = inner.failed_error() {
            return Err(e);
        }
        let n = batch.len();
        if n == 0 {
            return Ok(WriteOutcome::default());
        }
        let (payload, locs) = encode_batch(&batch);
        drop(batch);
        let wal_payload = payload.clone();
        let (ticket, full) = {
            let mut st = inner.state.write();
            let (spans, bytes) = (st.active.spans(), st.active.bytes());
            let (max_spans, max_bytes) = (inner.cfg.flush_max_spans, inner.cfg.flush_max_bytes);
            if spans >= max_spans.max(1).saturating_mul(HEAD_LIMIT_FACTOR)
                || bytes >= max_bytes.max(1).saturating_mul(HEAD_LIMIT_FACTOR)
            {
                return Err(StorageError::Overloaded(format!(
                    "the span head holds {spans} spans ({bytes} bytes) waiting for a flush"
                )));
            }
            let (lsn, ticket) = inner.wal.submit(WAL_KIND_SPANS, wal_payload)?;
            st.active.push(lsn, payload, locs);
            let full = st.active.spans() >= max_spans || st.active.bytes() >= max_bytes;
            inner.update_head_gauge(&st);
            (ticket, full)
        };
        if full {
            inner.kick();
        }
        ticket.await.map_err(|_| StorageError::Closed)??;
        inner.metrics.spans_written.inc_by(n as u64);
        Ok(WriteOutcome {
            accepted: n,
            ..Default::default()
        })
    }

    /// Flushes the head to Parquet now (the flusher thread does it every `flush_interval_secs`). Blocking
    /// (file I/O, waiting for the WAL writer): do not call from an async task; see [`SpanStore::flush`].
    pub fn flush_blocking(&self) -> Result<(), StorageError> {
        self.inner.flush()
    }

    /// [`SpanStore::flush_blocking`] on a blocking thread.
    pub async fn flush(self: &Arc<Self>) -> Result<(), StorageError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.flush_blocking())
            .await
            .map_err(|_| StorageError::Closed)?
    }

    /// Deletes the partitions that end more than `retention_days` before `now_ns` (the flusher does this
    /// every minute with the current time). Returns how many. Readers still holding a file keep it until they
    /// finish.
    pub fn apply_retention(&self, now_ns: i64) -> Result<usize, StorageError> {
        self.inner.apply_retention(now_ns)
    }

    /// Bytes of the committed Parquet files.
    pub fn disk_bytes(&self) -> u64 {
        let files = self.inner.state.read().files.clone();
        files.values().flatten().map(|f| f.bytes).sum()
    }

    /// Spans in memory (not yet in Parquet).
    pub fn head_spans(&self) -> usize {
        let st = self.inner.state.read();
        st.active.spans() + st.frozen.as_ref().map_or(0, |f| f.spans())
    }

    /// The committed Parquet files, oldest partition first.
    pub fn parquet_files(&self) -> Vec<PathBuf> {
        let files = self.inner.state.read().files.clone();
        files.values().flatten().map(|f| f.path.clone()).collect()
    }

    /// The store's metrics.
    pub fn metrics(&self) -> &SpanStoreMetrics {
        &self.inner.metrics
    }

    /// Why the store stopped accepting writes, if it did (a WAL write failed; a restart recovers).
    pub fn failure(&self) -> Option<String> {
        self.inner.wal.failure()
    }

    /// Stops the flusher thread (waiting for a flush in progress) and closes the WAL (everything submitted is
    /// written and synced). Later writes answer `Closed`. The head is not flushed: the next `open` replays it.
    pub fn shutdown(&self) {
        self.stop_flusher();
        if let Err(e) = self.inner.wal.close() {
            tracing::error!("closing the span wal failed: {e}");
        }
    }

    fn stop_flusher(&self) {
        self.inner.ctl.lock().stop = true;
        self.inner.wake.notify_all();
        if let Some(h) = self.flusher.lock().take() {
            let _ = h.join();
        }
    }
}

impl Drop for SpanStore {
    fn drop(&mut self) {
        self.stop_flusher();
    }
}

impl SpanReader for SpanStore {
    fn trace(&self, trace_id: &[u8; 16]) -> Result<Vec<SpanRecord>, StorageError> {
        let (hits, files) = {
            let st = self.inner.state.read();
            let mut hits = st.active.trace(trace_id);
            if let Some(f) = &st.frozen {
                hits.extend(f.trace(trace_id));
            }
            (hits, st.files.clone())
        };
        let mut out = Vec::with_capacity(hits.len());
        for (chunk, i) in hits {
            out.push(
                chunk
                    .decode(i)
                    .map_err(|e| corrupt(Path::new("span head"), e))?,
            );
        }
        let m = &self.inner.metrics;
        let stats = LookupStats {
            row_groups_read: &m.trace_row_groups_read,
            bloom_skips: &m.trace_bloom_skips,
        };
        for f in files.values().flatten() {
            out.extend(f.trace(trace_id, &stats)?);
        }
        out.sort_by_key(|s| s.start_ns);
        Ok(out)
    }

    fn scan(
        &self,
        from_ns: i64,
        to_ns: i64,
        visit: &mut dyn FnMut(&SpanRecord) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        if from_ns >= to_ns {
            return Ok(());
        }
        let psecs = i128::from(self.inner.psecs());
        let ns = i128::from(NS_PER_SEC);
        let (files, chunks) = {
            let st = self.inner.state.read();
            let files: Vec<Arc<SpanFile>> = st
                .files
                .iter()
                .filter(|(p, _)| {
                    let start = i128::from(**p) * ns;
                    start < i128::from(to_ns) && start + psecs * ns > i128::from(from_ns)
                })
                .flat_map(|(_, f)| f.iter().cloned())
                .collect();
            let chunks: Vec<_> = st
                .frozen
                .iter()
                .flat_map(|f| f.chunks().iter())
                .chain(st.active.chunks().iter())
                .filter(|c| c.overlaps(from_ns, to_ns))
                .cloned()
                .collect();
            (files, chunks)
        };
        for f in &files {
            if f.scan(from_ns, to_ns, visit)?.is_break() {
                return Ok(());
            }
        }
        for c in &chunks {
            for (i, loc) in c.spans.iter().enumerate() {
                if loc.start_ns < from_ns || loc.start_ns >= to_ns {
                    continue;
                }
                let span = c
                    .decode(i)
                    .map_err(|e| corrupt(Path::new("span head"), e))?;
                if visit(&span).is_break() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl SpanSink for SpanStore {
    async fn write_spans(&self, batch: SpanBatch) -> Result<WriteOutcome, SinkError> {
        self.write(batch).await.map_err(crate::store::sink_err)
    }
}

#[cfg(test)]
impl SpanStore {
    /// Test hook: writes the active head's files without committing them, as a crash between the files and
    /// the manifest leaves them.
    fn write_uncommitted(&self) -> Result<Vec<PathBuf>, StorageError> {
        let st = self.inner.state.read();
        let files = self.inner.write_head(&st.active, st.active.last_lsn)?;
        Ok(files.iter().map(|f| f.path.clone()).collect())
    }
}

#[cfg(test)]
mod tests;

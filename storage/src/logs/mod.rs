//! The log store: the write-ahead log (the same `Wal` as metrics, its own directory) in front of tantivy
//! indexes, one per time partition.
//!
//! Layout of its directory: `wal/` (segments) and `parts/<partition start, unix s>/` (a tantivy index each).
//!
//! Write: under a small lock, submit the batch to the WAL and hand it (with its LSN) to the indexer thread, so
//! the indexer sees batches in LSN order; then wait for the WAL ticket and acknowledge. The indexer adds each
//! record to its partition's writer (`seq = lsn << 20 | index in batch`), and every `commit_interval_ms`
//! commits every partition it wrote, with the highest LSN in the commit as the commit payload, then reloads
//! the readers: a record is searchable within about a second of its acknowledgement. Open replays the WAL and
//! re-adds each record whose LSN is above its partition's committed LSN, so none is lost or added twice. Once
//! everything submitted before a WAL rotation is committed, the segments before the rotation are deleted.
//! Retention deletes whole partitions. Searches open only the partitions that overlap their time range.

pub mod aggregate;
pub mod compile;
pub mod schema;

use crate::wal::{Lsn, RotateTicket, Wal, WalConfig};
use crate::StorageError;
use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use schema::{register_tokenizers, to_document, LogFields};
use serde::{Deserialize, Serialize};
use sightline_model::{LogBatch, LogRecord, LogSink, SearchExpr, SinkError, WriteOutcome};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery};
use tantivy::schema::{Schema, Value};
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{
    DocAddress, DocId, Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, SegmentReader,
    TantivyDocument, Term,
};

/// The WAL record kind of a log batch.
pub const WAL_KIND_LOGS: u8 = 2;
/// Batches live tail keeps for slow readers.
pub const TAIL_BUFFER_BATCHES: usize = 1024;
/// Records per batch that fit in the low bits of `seq`.
const SEQ_INDEX_BITS: u32 = 20;

/// How the log store keeps, commits and expires logs (`[storage.logs]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogStoreConfig {
    /// Write-ahead log of the log store (its own directory; same settings as the metrics one).
    pub wal: WalConfig,
    /// Length of one partition (one tantivy index), in seconds.
    pub partition_secs: i64,
    /// Milliseconds between index commits: a log is searchable at most about this long after its ack.
    pub commit_interval_ms: u64,
    /// Indexing memory per partition being written, in MiB (tantivy's minimum is 15).
    pub writer_memory_mib: usize,
    /// Days of logs kept; partitions that end before this are deleted.
    pub retention_days: u32,
    /// Seconds between WAL rotations (segments before a rotation are deleted once committed).
    pub wal_rotate_secs: u64,
    /// Bytes of batches the indexer may have queued. Above this, writes wait for it to catch up (so a log is
    /// searchable within about `commit_interval_ms` plus the time to index this much after its ack).
    pub max_pending_bytes: usize,
    /// How long a write waits for the indexer before answering "overloaded" (HTTP 503 with Retry-After).
    pub backpressure_wait_ms: u64,
}

impl Default for LogStoreConfig {
    fn default() -> Self {
        LogStoreConfig {
            wal: WalConfig::default(),
            partition_secs: 86_400,
            commit_interval_ms: 1000,
            writer_memory_mib: 64,
            retention_days: 15,
            wal_rotate_secs: 60,
            max_pending_bytes: 4 * 1024 * 1024,
            backpressure_wait_ms: 10_000,
        }
    }
}

/// A page of a log search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    /// Newest first (`-timestamp`, the default).
    Desc,
    /// Oldest first (`timestamp`).
    Asc,
}

/// Where a page ends: the sort key of its last record. The next page starts strictly after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub ts_ns: i64,
    pub seq: u64,
}

impl Cursor {
    /// Opaque text form for APIs.
    pub fn encode(&self) -> String {
        format!("{:016x}{:016x}", self.ts_ns as u64, self.seq)
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        if s.len() != 32 || !s.is_ascii() {
            return None;
        }
        let ts = u64::from_str_radix(&s[..16], 16).ok()? as i64;
        let seq = u64::from_str_radix(&s[16..], 16).ok()?;
        Some(Cursor { ts_ns: ts, seq })
    }
}

/// A log search.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSearch {
    pub expr: SearchExpr,
    /// `[from_ns, to_ns)`.
    pub from_ns: i64,
    pub to_ns: i64,
    pub order: SortOrder,
    pub limit: usize,
    pub after: Option<Cursor>,
}

/// One record found.
#[derive(Debug, Clone, PartialEq)]
pub struct LogHit {
    /// Unique and stable: the record's `seq` in hex.
    pub id: String,
    pub cursor: Cursor,
    pub record: LogRecord,
}

/// A page of results; `next` is set when the page is full (there may be more).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogPage {
    pub hits: Vec<LogHit>,
    pub next: Option<Cursor>,
}

/// Read access to logs, used by the query tier.
pub trait LogReader: Send + Sync {
    fn search(&self, req: &LogSearch) -> Result<LogPage, StorageError>;
    /// Every batch acknowledged from now on (live tail).
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<LogBatch>>;
    /// Analytics: computes per group (and per time bucket).
    fn aggregate(
        &self,
        req: &aggregate::LogAggregate,
    ) -> Result<Vec<aggregate::AggBucket>, StorageError>;
    /// Attribute paths (`http.status_code`, without `@`) present in the partitions overlapping the range,
    /// sorted: the `@attribute` facets the UI can offer.
    fn attribute_paths(&self, from_ns: i64, to_ns: i64) -> Result<Vec<String>, StorageError>;
}

/// The store's own metrics.
#[derive(Clone, Debug, Default)]
pub struct LogStoreMetrics {
    pub records_written: Counter,
    pub commits: Counter,
    pub partitions: Gauge,
    pub index_errors: Counter,
}

impl LogStoreMetrics {
    fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("sightline_logs");
        r.register(
            "records_written",
            "Log records written to the log store",
            self.records_written.clone(),
        );
        r.register("commits", "Index commits", self.commits.clone());
        r.register(
            "partitions",
            "Log partitions on disk",
            self.partitions.clone(),
        );
        r.register(
            "index_errors",
            "Records the index refused (logged)",
            self.index_errors.clone(),
        );
    }
}

/// One time partition, as readers see it.
struct Partition {
    start: i64,
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
}

enum Msg {
    /// A batch, its LSN and its encoded size (counted in `pending_bytes` until added).
    Batch(Lsn, Arc<LogBatch>, usize),
    /// Commit now and answer when done (tests, shutdown).
    Commit(mpsc::Sender<Result<(), StorageError>>),
    Stop,
    /// Test hook: stop without committing, as a crash would.
    #[cfg(test)]
    Abandon,
    /// Test hook: spend this long on every batch from now on (a slow indexer).
    #[cfg(test)]
    SlowDown(Duration),
}

/// What `write_logs` holds while it submits: the last LSN handed to the indexer.
struct Submit {
    last_lsn: Lsn,
    tx: mpsc::Sender<Msg>,
}

/// Shared between the store handle and the indexer thread.
struct Shared {
    dir: PathBuf,
    cfg: LogStoreConfig,
    schema: Schema,
    fields: LogFields,
    parts: RwLock<BTreeMap<i64, Arc<Partition>>>,
    metrics: LogStoreMetrics,
    /// Encoded bytes of batches handed to the indexer and not yet added.
    pending_bytes: std::sync::atomic::AtomicUsize,
}

/// The log store.
pub struct LogStore {
    shared: Arc<Shared>,
    wal: Arc<Wal>,
    submit: Arc<Mutex<Submit>>,
    /// Every acknowledged batch, for live tail.
    tail: tokio::sync::broadcast::Sender<Arc<LogBatch>>,
    indexer: Mutex<Option<JoinHandle<()>>>,
}

fn tv(path: &Path, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

use sightline_model::now_ns;

impl Shared {
    fn partition_start(&self, ts_ns: i64) -> i64 {
        let p = self.cfg.partition_secs.max(60);
        ts_ns.div_euclid(1_000_000_000).div_euclid(p) * p
    }

    fn open_partition(&self, start: i64) -> Result<Arc<Partition>, StorageError> {
        if let Some(p) = self.parts.read().get(&start) {
            return Ok(p.clone());
        }
        let dir = self.dir.join("parts").join(start.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let mmap = tantivy::directory::MmapDirectory::open(&dir).map_err(|e| tv(&dir, e))?;
        let index = Index::builder()
            .schema(self.schema.clone())
            .settings(IndexSettings {
                docstore_compression: Compressor::Zstd(ZstdCompressor::default()),
                // Larger blocks compress log records (alike from one to the next) much better.
                docstore_blocksize: 64 * 1024,
                ..IndexSettings::default()
            })
            .open_or_create(mmap)
            .map_err(|e| tv(&dir, e))?;
        register_tokenizers(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| tv(&dir, e))?;
        let p = Arc::new(Partition {
            start,
            dir,
            index,
            reader,
        });
        let mut parts = self.parts.write();
        let p = parts.entry(start).or_insert(p).clone();
        self.metrics.partitions.set(parts.len() as i64);
        Ok(p)
    }
}

/// The indexer thread's state: writers of the partitions it writes.
struct Indexer {
    shared: Arc<Shared>,
    /// Set once replay is over (housekeeping needs it).
    wal: Option<Arc<Wal>>,
    writers: HashMap<i64, PartWriter>,
    /// Highest LSN received.
    received: Lsn,
    /// A rotation waiting for everything before it to be committed: (last LSN before it, ticket, segment).
    rotation: Option<(Lsn, RotateTicket)>,
    ready_segment: Option<(Lsn, u64)>,
    last_rotation: Instant,
    last_retention: Instant,
    /// Committed LSN per partition, as found at open (replay skips records at or below it).
    committed: HashMap<i64, Lsn>,
    /// The first LSN a batch of which could not be indexed: WAL segments are no longer deleted.
    stuck_at: Option<Lsn>,
    #[cfg(test)]
    slow_down: Duration,
}

struct PartWriter {
    writer: IndexWriter,
    max_lsn: Lsn,
    dirty: bool,
    last_write: Instant,
}

impl Indexer {
    fn writer(&mut self, start: i64) -> Result<&mut PartWriter, StorageError> {
        if !self.writers.contains_key(&start) {
            let p = self.shared.open_partition(start)?;
            let bytes = self.shared.cfg.writer_memory_mib.max(15) * 1024 * 1024;
            let writer = p
                .index
                .writer_with_num_threads(1, bytes)
                .map_err(|e| tv(&p.dir, e))?;
            self.writers.insert(
                start,
                PartWriter {
                    writer,
                    max_lsn: 0,
                    dirty: false,
                    last_write: Instant::now(),
                },
            );
        }
        Ok(self.writers.get_mut(&start).expect("just inserted"))
    }

    /// Adds a batch; records whose partition already committed `lsn` are skipped (replay).
    fn add(&mut self, lsn: Lsn, batch: &LogBatch) -> Result<(), StorageError> {
        self.received = self.received.max(lsn);
        let fields = self.shared.fields;
        // `write` splits batches so that every index fits in SEQ_INDEX_BITS bits.
        for (i, r) in batch.records.iter().enumerate() {
            let start = self.shared.partition_start(r.ts_ns);
            if self.committed.get(&start).is_some_and(|c| lsn <= *c) {
                continue;
            }
            let seq = (lsn << SEQ_INDEX_BITS) | i as u64;
            let doc = to_document(&fields, r, seq);
            let w = self.writer(start)?;
            if let Err(e) = w.writer.add_document(doc) {
                self.shared.metrics.index_errors.inc();
                tracing::error!("log index refused a record: {e}");
                continue;
            }
            w.max_lsn = w.max_lsn.max(lsn);
            w.dirty = true;
            w.last_write = Instant::now();
            self.shared.metrics.records_written.inc();
        }
        Ok(())
    }

    /// Commits every partition written since the last commit and reloads its reader.
    fn commit(&mut self) -> Result<(), StorageError> {
        let mut first_err = None;
        for (start, w) in self.writers.iter_mut().filter(|(_, w)| w.dirty) {
            let res = (|| -> tantivy::Result<()> {
                let mut prepared = w.writer.prepare_commit()?;
                prepared.set_payload(&w.max_lsn.to_string());
                prepared.commit()?;
                Ok(())
            })();
            match res {
                Ok(()) => {
                    w.dirty = false;
                    self.shared.metrics.commits.inc();
                    if let Some(p) = self.shared.parts.read().get(start) {
                        if let Err(e) = p.reader.reload() {
                            tracing::error!("reloading log partition {start} failed: {e}");
                        }
                    }
                }
                Err(e) => {
                    tracing::error!("committing log partition {start} failed: {e}");
                    first_err.get_or_insert(StorageError::Corrupt {
                        path: format!("log partition {start}"),
                        detail: e.to_string(),
                    });
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// After a successful commit: delete WAL segments whose records are all committed, start a rotation when
    /// due, close writers idle for a while and apply retention.
    fn housekeeping(&mut self, submit: &Mutex<Submit>) {
        let Some(wal) = self.wal.clone() else {
            return;
        };
        // Everything received is committed, unless a batch failed to index: then nothing is deleted any more.
        let committed_all = match self.stuck_at {
            Some(_) => 0,
            None => self.received,
        };
        if let Some((lsn, ticket)) = &mut self.rotation {
            match ticket.try_recv() {
                Ok(Ok(segment)) => {
                    self.ready_segment = Some((*lsn, segment));
                    self.rotation = None;
                }
                Ok(Err(e)) => {
                    tracing::error!("log wal rotation failed: {e}");
                    self.rotation = None;
                }
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
                Err(_) => self.rotation = None,
            }
        }
        if let Some((lsn, segment)) = self.ready_segment {
            if committed_all >= lsn {
                if let Err(e) = wal.remove_before(segment) {
                    tracing::error!("deleting log wal segments failed: {e}");
                }
                self.ready_segment = None;
            }
        }
        let rotate_every = Duration::from_secs(self.shared.cfg.wal_rotate_secs.max(1));
        if self.rotation.is_none()
            && self.ready_segment.is_none()
            && self.last_rotation.elapsed() >= rotate_every
        {
            let s = submit.lock();
            if let Ok(ticket) = wal.rotate() {
                self.rotation = Some((s.last_lsn, ticket));
            }
            self.last_rotation = Instant::now();
        }
        let idle = Duration::from_secs(300);
        self.writers
            .retain(|_, w| w.dirty || w.last_write.elapsed() < idle);
        if self.last_retention.elapsed() >= Duration::from_secs(60) {
            self.last_retention = Instant::now();
            self.apply_retention(now_ns());
        }
    }

    fn apply_retention(&mut self, now_ns: i64) {
        let keep = self.shared.cfg.retention_days as i64 * 86_400;
        let cutoff = now_ns / 1_000_000_000 - keep;
        let psecs = self.shared.cfg.partition_secs.max(60);
        let expired: Vec<Arc<Partition>> = {
            let mut parts = self.shared.parts.write();
            let old: Vec<i64> = parts
                .keys()
                .copied()
                .filter(|s| s + psecs <= cutoff)
                .collect();
            let out = old.iter().filter_map(|s| parts.remove(s)).collect();
            self.shared.metrics.partitions.set(parts.len() as i64);
            out
        };
        for p in expired {
            self.writers.remove(&p.start);
            if let Err(e) = std::fs::remove_dir_all(&p.dir) {
                tracing::warn!(
                    "deleting expired log partition {} failed: {e}",
                    p.dir.display()
                );
            } else {
                tracing::info!("deleted expired log partition {}", p.dir.display());
            }
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Msg>, submit: Arc<Mutex<Submit>>) {
        let every = Duration::from_millis(self.shared.cfg.commit_interval_ms.max(10));
        let mut deadline = Instant::now() + every;
        loop {
            // Commit when due, also while batches keep coming (the queue may never be empty under load).
            if Instant::now() >= deadline {
                deadline = Instant::now() + every;
                if self.commit().is_ok() {
                    self.housekeeping(&submit);
                }
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Msg::Batch(lsn, batch, bytes)) => {
                    #[cfg(test)]
                    std::thread::sleep(self.slow_down);
                    if let Err(e) = self.add(lsn, &batch) {
                        // Keep the WAL from here on: these records are acknowledged but not indexed, and a
                        // restart replays them.
                        self.stuck_at.get_or_insert(lsn);
                        tracing::error!(
                            "indexing logs failed at lsn {lsn}: {e}; the log wal is kept until a restart"
                        );
                    }
                    self.shared
                        .pending_bytes
                        .fetch_sub(bytes, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(Msg::Commit(done)) => {
                    let r = self.commit();
                    if r.is_ok() {
                        self.housekeeping(&submit);
                    }
                    let _ = done.send(r);
                }
                Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    if let Err(e) = self.commit() {
                        tracing::error!("final log commit failed: {e}");
                    }
                    return;
                }
                #[cfg(test)]
                Ok(Msg::Abandon) => return,
                #[cfg(test)]
                Ok(Msg::SlowDown(d)) => self.slow_down = d,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

impl LogStore {
    /// Opens (or creates) the store in `dir`, replays its WAL and starts the indexer thread.
    pub fn open(
        dir: &Path,
        cfg: LogStoreConfig,
        registry: &mut Registry,
    ) -> Result<Arc<LogStore>, StorageError> {
        let (schema, fields) = schema::schema();
        let metrics = LogStoreMetrics::default();
        metrics.register(registry);
        std::fs::create_dir_all(dir.join("parts")).map_err(|e| io_err(dir, e))?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            cfg: cfg.clone(),
            schema,
            fields,
            parts: RwLock::new(BTreeMap::new()),
            metrics,
            pending_bytes: std::sync::atomic::AtomicUsize::new(0),
        });
        // Existing partitions and what each has committed.
        let mut committed = HashMap::new();
        let parts_dir = dir.join("parts");
        for entry in std::fs::read_dir(&parts_dir).map_err(|e| io_err(&parts_dir, e))? {
            let entry = entry.map_err(|e| io_err(&parts_dir, e))?;
            let Some(start) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i64>().ok())
            else {
                continue;
            };
            let p = shared.open_partition(start)?;
            let metas = p.index.load_metas().map_err(|e| tv(&p.dir, e))?;
            let lsn = metas
                .payload
                .as_deref()
                .and_then(|s| s.parse::<Lsn>().ok())
                .unwrap_or(0);
            committed.insert(start, lsn);
        }
        let mut wal = Wal::open_named(
            &dir.join("wal"),
            cfg.wal.clone(),
            registry,
            "sightline_logs_wal",
        )?;
        let max_committed = committed.values().copied().max().unwrap_or(0);
        let mut indexer = Indexer {
            shared: shared.clone(),
            wal: None,
            writers: HashMap::new(),
            received: 0,
            rotation: None,
            ready_segment: None,
            last_rotation: Instant::now(),
            last_retention: Instant::now(),
            committed,
            stuck_at: None,
            #[cfg(test)]
            slow_down: Duration::ZERO,
        };
        let mut replay_err = None;
        wal.replay(0, |lsn, kind, payload| {
            if kind != WAL_KIND_LOGS {
                return Ok(());
            }
            match LogBatch::decode(payload) {
                Ok(b) => indexer.add(lsn, &b),
                Err(e) => {
                    replay_err.get_or_insert(format!("undecodable log batch at lsn {lsn}: {e}"));
                    Ok(())
                }
            }
        })?;
        if let Some(e) = replay_err {
            tracing::error!("log wal replay: {e}");
        }
        wal.advance_past(max_committed.max(indexer.received));
        indexer.commit()?;
        indexer.committed.clear();
        let wal = Arc::new(wal);
        indexer.wal = Some(wal.clone());
        let (tx, rx) = mpsc::channel();
        let submit = Arc::new(Mutex::new(Submit {
            last_lsn: indexer.received,
            tx,
        }));
        let for_indexer = submit.clone();
        let handle = std::thread::Builder::new()
            .name("sightline-logs".into())
            .spawn(move || indexer.run(rx, for_indexer))
            .map_err(|e| io_err(dir, e))?;
        Ok(Arc::new(LogStore {
            shared,
            wal,
            submit,
            tail: tokio::sync::broadcast::channel(TAIL_BUFFER_BATCHES).0,
            indexer: Mutex::new(Some(handle)),
        }))
    }

    /// Writes a batch: resolves once it is in the WAL (by the fsync policy); it is searchable after the next
    /// commit (within `commit_interval_ms`).
    pub async fn write(&self, mut batch: LogBatch) -> Result<WriteOutcome, StorageError> {
        if let Some(f) = self.wal.failure() {
            return Err(StorageError::Io {
                path: "log wal".into(),
                source: std::io::Error::other(f),
            });
        }
        let n = batch.len();
        if n == 0 {
            return Ok(WriteOutcome::default());
        }
        self.wait_for_indexer().await?;
        self.fix_timestamps(&mut batch);
        // `seq` numbers a record within its batch in SEQ_INDEX_BITS bits: larger batches go as several.
        let chunk = 1usize << SEQ_INDEX_BITS;
        let batches: Vec<LogBatch> = if n <= chunk {
            vec![batch]
        } else {
            batch
                .records
                .chunks(chunk)
                .map(|c| LogBatch {
                    records: c.to_vec(),
                })
                .collect()
        };
        let mut tickets = Vec::with_capacity(batches.len());
        for batch in batches {
            let payload = batch.encode();
            let bytes = payload.len();
            let batch = Arc::new(batch);
            let ticket = {
                let mut s = self.submit.lock();
                let (lsn, ticket) = self.wal.submit(WAL_KIND_LOGS, payload)?;
                s.last_lsn = lsn;
                self.shared
                    .pending_bytes
                    .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
                if s.tx.send(Msg::Batch(lsn, batch.clone(), bytes)).is_err() {
                    self.shared
                        .pending_bytes
                        .fetch_sub(bytes, std::sync::atomic::Ordering::Relaxed);
                    return Err(StorageError::Closed);
                }
                ticket
            };
            tickets.push((ticket, batch));
        }
        for (ticket, batch) in tickets {
            ticket.await.map_err(|_| StorageError::Closed)??;
            // Live tail sees what is acknowledged (no receivers is fine).
            let _ = self.tail.send(batch);
        }
        Ok(WriteOutcome {
            accepted: n,
            ..Default::default()
        })
    }

    /// Waits while the indexer's backlog is over `max_pending_bytes`, at most `backpressure_wait_ms`.
    async fn wait_for_indexer(&self) -> Result<(), StorageError> {
        let max = self.shared.cfg.max_pending_bytes;
        let deadline = Instant::now() + Duration::from_millis(self.shared.cfg.backpressure_wait_ms);
        loop {
            let pending = self
                .shared
                .pending_bytes
                .load(std::sync::atomic::Ordering::Relaxed);
            if pending <= max {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StorageError::Overloaded(format!(
                    "the log indexer has {pending} bytes queued; the limit is {max}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A record dated before the retention window or more than a day ahead would be expired at once or sit in
    /// a far partition: it is stored at the time it arrived, its own timestamp kept as the attribute
    /// `sightline.original_timestamp` (ns).
    fn fix_timestamps(&self, batch: &mut LogBatch) {
        let now = now_ns();
        let keep_ns = self.shared.cfg.retention_days as i64 * 86_400 * 1_000_000_000;
        let (lo, hi) = (
            now.saturating_sub(keep_ns),
            now.saturating_add(86_400 * 1_000_000_000),
        );
        for r in &mut batch.records {
            if r.ts_ns < lo || r.ts_ns > hi {
                let ours = r
                    .attributes
                    .entry("sightline")
                    .or_insert_with(|| serde_json::json!({}));
                if !ours.is_object() {
                    *ours = serde_json::json!({});
                }
                ours["original_timestamp"] = serde_json::json!(r.ts_ns);
                r.ts_ns = now;
            }
        }
    }

    /// Commits everything written so far and makes it searchable (for tests and benchmarks; the indexer
    /// also does this every `commit_interval_ms`).
    pub fn commit_blocking(&self) -> Result<(), StorageError> {
        let (done, result) = mpsc::channel();
        self.submit
            .lock()
            .tx
            .send(Msg::Commit(done))
            .map_err(|_| StorageError::Closed)?;
        result.recv().map_err(|_| StorageError::Closed)?
    }

    /// Stops the indexer (after a last commit) and closes the WAL. Later writes answer `Closed`.
    pub fn shutdown(&self) {
        let _ = self.submit.lock().tx.send(Msg::Stop);
        if let Some(h) = self.indexer.lock().take() {
            let _ = h.join();
        }
        if let Err(e) = self.wal.close() {
            tracing::error!("closing the log wal failed: {e}");
        }
    }

    /// Partitions overlapping `[from_ns, to_ns)`, oldest first.
    fn partitions(&self, from_ns: i64, to_ns: i64) -> Vec<Arc<Partition>> {
        let psecs = self.shared.cfg.partition_secs.max(60);
        let from_s = from_ns.div_euclid(1_000_000_000);
        let to_s = to_ns.div_euclid(1_000_000_000) + 1;
        self.shared
            .parts
            .read()
            .values()
            .filter(|p| p.start < to_s && p.start + psecs > from_s)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
impl LogStore {
    /// Makes the indexer spend `d` on every batch from now on.
    fn slow_down(&self, d: Duration) {
        let _ = self.submit.lock().tx.send(Msg::SlowDown(d));
    }

    /// Stops the indexer without committing (what a crash leaves: the WAL has the records, the index not).
    fn abandon(&self) {
        let _ = self.submit.lock().tx.send(Msg::Abandon);
        if let Some(h) = self.indexer.lock().take() {
            let _ = h.join();
        }
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        let _ = self.submit.lock().tx.send(Msg::Stop);
        if let Some(h) = self.indexer.lock().take() {
            let _ = h.join();
        }
    }
}

fn i64_term(f: tantivy::schema::Field, v: i64) -> Term {
    Term::from_field_i64(f, v)
}

/// Searches one partition through `searcher`; keys come back best first for the order. The addresses are
/// valid for that searcher only (a reload may renumber segments).
fn search_partition(
    searcher: &tantivy::Searcher,
    query: &dyn Query,
    limit: usize,
    order: SortOrder,
) -> tantivy::Result<Vec<(Cursor, DocAddress)>> {
    fn columns(
        seg: &SegmentReader,
    ) -> (
        Option<tantivy::columnar::Column<i64>>,
        Option<tantivy::columnar::Column<u64>>,
    ) {
        (
            seg.fast_fields().i64("ts").ok(),
            seg.fast_fields().u64("seq").ok(),
        )
    }
    fn key(
        c: &(
            Option<tantivy::columnar::Column<i64>>,
            Option<tantivy::columnar::Column<u64>>,
        ),
        doc: DocId,
    ) -> (i64, u64) {
        (
            c.0.as_ref().and_then(|c| c.first(doc)).unwrap_or(0),
            c.1.as_ref().and_then(|c| c.first(doc)).unwrap_or(0),
        )
    }
    let hits: Vec<((i64, u64), DocAddress)> = match order {
        SortOrder::Desc => searcher.search(
            query,
            &TopDocs::with_limit(limit).order_by(|seg: &SegmentReader| {
                let c = columns(seg);
                move |doc: DocId| key(&c, doc)
            }),
        )?,
        SortOrder::Asc => searcher
            .search(
                query,
                &TopDocs::with_limit(limit).order_by(|seg: &SegmentReader| {
                    let c = columns(seg);
                    move |doc: DocId| Reverse(key(&c, doc))
                }),
            )?
            .into_iter()
            .map(|(Reverse(k), a)| (k, a))
            .collect(),
    };
    Ok(hits
        .into_iter()
        .map(|((ts_ns, seq), a)| (Cursor { ts_ns, seq }, a))
        .collect())
}

impl LogReader for LogStore {
    fn attribute_paths(&self, from_ns: i64, to_ns: i64) -> Result<Vec<String>, StorageError> {
        let mut paths = std::collections::BTreeSet::new();
        for p in self.partitions(from_ns, to_ns) {
            // The attribute columns of each segment: `attrs.<path>` fast-field columns.
            let usage = p
                .reader
                .searcher()
                .space_usage()
                .map_err(|e| io_err(&p.dir, e))?;
            for seg in usage.segments() {
                for f in seg.fast_fields().fields() {
                    if let Some(path) = f.field_name().strip_prefix("attrs.") {
                        paths.insert(path.to_string());
                    }
                }
            }
        }
        Ok(paths.into_iter().collect())
    }

    fn aggregate(
        &self,
        req: &aggregate::LogAggregate,
    ) -> Result<Vec<aggregate::AggBucket>, StorageError> {
        let parts = self.partitions(req.from_ns, req.to_ns);
        let searchers: Vec<_> = parts
            .iter()
            .map(|p| (p.reader.searcher(), p.dir.clone()))
            .collect();
        let tokenizers = parts
            .first()
            .map(|p| p.index.tokenizers().clone())
            .unwrap_or_default();
        aggregate::aggregate(&self.shared.fields, &searchers, tokenizers, req)
    }

    /// A receiver that falls more than `TAIL_BUFFER_BATCHES` behind gets `Lagged` and skips ahead.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<LogBatch>> {
        self.tail.subscribe()
    }

    fn search(&self, req: &LogSearch) -> Result<LogPage, StorageError> {
        let f = &self.shared.fields;
        let limit = req.limit.max(1);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, compile::compile(f, &req.expr)?),
            (
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Included(i64_term(f.ts, req.from_ns)),
                    Bound::Excluded(i64_term(f.ts, req.to_ns)),
                )),
            ),
        ];
        if let Some(c) = req.after {
            // Strictly after the cursor in the sort order: ts beyond it, or the same ts and seq beyond it.
            let (ts_beyond, seq_beyond) = match req.order {
                SortOrder::Desc => (
                    (Bound::Unbounded, Bound::Excluded(c.ts_ns)),
                    (Bound::Unbounded, Bound::Excluded(c.seq)),
                ),
                SortOrder::Asc => (
                    (Bound::Excluded(c.ts_ns), Bound::Unbounded),
                    (Bound::Excluded(c.seq), Bound::Unbounded),
                ),
            };
            let ts_q = RangeQuery::new(
                ts_beyond.0.map(|v| i64_term(f.ts, v)),
                ts_beyond.1.map(|v| i64_term(f.ts, v)),
            );
            let same_ts = RangeQuery::new(
                Bound::Included(i64_term(f.ts, c.ts_ns)),
                Bound::Included(i64_term(f.ts, c.ts_ns)),
            );
            let seq_q = RangeQuery::new(
                seq_beyond.0.map(|v| Term::from_field_u64(f.seq, v)),
                seq_beyond.1.map(|v| Term::from_field_u64(f.seq, v)),
            );
            let tie: Box<dyn Query> = Box::new(BooleanQuery::intersection(vec![
                Box::new(same_ts),
                Box::new(seq_q),
            ]));
            clauses.push((
                Occur::Must,
                Box::new(BooleanQuery::union(vec![Box::new(ts_q), tie])),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let mut parts = self.partitions(req.from_ns, req.to_ns);
        if req.order == SortOrder::Desc {
            parts.reverse();
        }
        // Partitions do not overlap in time: once a page is full, later partitions cannot beat it.
        // One searcher per partition, for both the search and the fetch of its hits.
        let mut found: Vec<(Cursor, usize, DocAddress)> = Vec::new();
        let mut searchers = Vec::new();
        for p in &parts {
            if found.len() >= limit {
                break;
            }
            let searcher = p.reader.searcher();
            let hits = search_partition(&searcher, &query, limit - found.len(), req.order)
                .map_err(|e| tv(&p.dir, e))?;
            found.extend(hits.into_iter().map(|(c, a)| (c, searchers.len(), a)));
            searchers.push((searcher, p.dir.clone()));
        }
        let mut page = LogPage::default();
        for (cursor, i, addr) in found {
            let (searcher, dir) = &searchers[i];
            let doc: TantivyDocument = searcher.doc(addr).map_err(|e| tv(dir, e))?;
            let bytes = doc
                .get_first(f.doc)
                .and_then(|v| v.as_bytes())
                .ok_or_else(|| tv(dir, "a log document without its stored record"))?;
            let record: LogRecord = schema::decode_record(bytes).map_err(|e| tv(dir, e))?;
            page.hits.push(LogHit {
                id: format!("{:016x}", cursor.seq),
                cursor,
                record,
            });
        }
        if page.hits.len() >= limit {
            page.next = page.hits.last().map(|h| h.cursor);
        }
        Ok(page)
    }
}

#[async_trait]
impl LogSink for LogStore {
    async fn write_logs(&self, batch: LogBatch) -> Result<WriteOutcome, SinkError> {
        self.write(batch).await.map_err(crate::store::sink_err)
    }
}

#[cfg(test)]
mod tests;

//! The write-ahead log: segmented files, a checksum and a sequence number (LSN) per record, group commit
//! with an fsync policy, replay that cuts a torn or corrupt tail. One mechanism for metrics, logs and spans.
//!
//! Frame of a record: `[u32 len][u32 crc32][u64 lsn][u8 kind][payload]`, little-endian; `len` counts
//! `lsn + kind + payload`, the CRC covers the same bytes. Segments are `wal/<segment id, 20 digits>.wal`.

use crate::StorageError;
use parking_lot::{Condvar, Mutex};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Sequence number of a record, increasing by one per record, never reused.
pub type Lsn = u64;
/// Id of a segment file, increasing.
pub type SegmentId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// fsync before acknowledging (group-committed: concurrent appends share one fsync).
    #[default]
    Always,
    /// fsync every `fsync_interval_ms`; at most that much is lost on a power cut.
    Interval,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalConfig {
    pub fsync: FsyncPolicy,
    pub fsync_interval_ms: u64,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// Bytes submitted but not yet written above which `submit` answers `Overloaded`.
    pub max_pending_bytes: usize,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            fsync: FsyncPolicy::Always,
            fsync_interval_ms: 1000,
            segment_bytes: 64 * 1024 * 1024,
            max_pending_bytes: 256 * 1024 * 1024,
        }
    }
}

/// What replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub records: u64,
    pub bytes: u64,
    pub segments: u64,
    /// Records skipped because their LSN was at or below `after`.
    pub skipped: u64,
    /// Torn or corrupt tails cut.
    pub corrupt_tails: u64,
    /// The highest LSN seen (0 for an empty log).
    pub last_lsn: Lsn,
}

/// Resolves once a submitted record is durable according to the fsync policy.
pub type AppendTicket = tokio::sync::oneshot::Receiver<Result<(), StorageError>>;
/// Resolves to the id of the new segment once a rotation has happened.
pub type RotateTicket = tokio::sync::oneshot::Receiver<Result<SegmentId, StorageError>>;

/// `len + crc` in front of every frame.
const HEADER_BYTES: usize = 8;
/// `lsn + kind`: the smallest `len` of a valid frame.
const MIN_FRAME_LEN: usize = 9;
/// The largest `len` replay accepts; `submit` refuses records that would not fit.
const MAX_FRAME_LEN: usize = 256 * 1024 * 1024;
/// Above this the writer's batch buffer is shrunk back after use.
const KEEP_BUFFER_BYTES: usize = 16 * 1024 * 1024;

/// The write-ahead log. Writes go through one writer thread that batches everything submitted since its last
/// write into one `write` and (policy `always`) one `fsync`.
pub struct Wal {
    dir: PathBuf,
    cfg: WalConfig,
    shared: Arc<Shared>,
    metrics: Metrics,
    /// Segments found at open all have lower ids; this process writes only this one and later ones.
    first_new_segment: SegmentId,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// State shared by the submitters and the writer thread.
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// The segment the writer writes into, or creates next when none is open. Only ever grows; every segment
    /// the writer will still write has this id or a higher one, so `remove_before` never deletes below it.
    write_segment: AtomicU64,
    /// The first failed write or fsync since open. Set by the writer before it resolves the failed tickets
    /// (and so before any later rotation resolves); never cleared.
    failure: Mutex<Option<String>>,
    /// Test hook: the next write group fails with this message instead of touching the file.
    #[cfg(test)]
    inject: Mutex<Option<String>>,
}

struct Queue {
    ops: VecDeque<Op>,
    /// Frame bytes of queued records not yet written.
    pending_bytes: usize,
    next_lsn: Lsn,
    /// Set by `close` (or when the writer thread ends): nothing more is queued.
    closed: bool,
}

enum Op {
    Record {
        lsn: Lsn,
        kind: u8,
        payload: Vec<u8>,
        done: oneshot::Sender<Result<(), StorageError>>,
    },
    Rotate(oneshot::Sender<Result<SegmentId, StorageError>>),
    Close(std::sync::mpsc::Sender<Result<(), StorageError>>),
}

#[derive(Clone)]
struct Metrics {
    records: Counter,
    bytes: Counter,
    fsyncs: Counter,
    corrupt_tails: Counter,
    fsync_seconds: Histogram,
}

impl Metrics {
    fn register(registry: &mut Registry, prefix: &str) -> Metrics {
        let m = Metrics {
            records: Counter::default(),
            bytes: Counter::default(),
            fsyncs: Counter::default(),
            corrupt_tails: Counter::default(),
            // 100 µs .. ~3.3 s
            fsync_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        };
        registry.register(
            format!("{prefix}_records"),
            "Records written to the write-ahead log",
            m.records.clone(),
        );
        registry.register(
            format!("{prefix}_bytes"),
            "Bytes (frames) written to the write-ahead log",
            m.bytes.clone(),
        );
        registry.register(
            format!("{prefix}_fsyncs"),
            "fsync calls on write-ahead log segments",
            m.fsyncs.clone(),
        );
        registry.register(
            format!("{prefix}_corrupt_tails"),
            "Torn or corrupt write-ahead log tails cut during replay",
            m.corrupt_tails.clone(),
        );
        registry.register(
            format!("{prefix}_fsync_seconds"),
            "Duration of fsync calls on write-ahead log segments",
            m.fsync_seconds.clone(),
        );
        m
    }
}

impl Wal {
    /// Opens (creating if needed) the log in `dir`, its metrics named `sightline_wal_*`. Does not replay.
    pub fn open(dir: &Path, cfg: WalConfig, registry: &mut Registry) -> Result<Wal, StorageError> {
        Wal::open_named(dir, cfg, registry, "sightline_wal")
    }

    /// Opens the log in `dir`, its metrics named `<prefix>_*` (one log per store, each with its own names).
    pub fn open_named(
        dir: &Path,
        cfg: WalConfig,
        registry: &mut Registry,
        prefix: &str,
    ) -> Result<Wal, StorageError> {
        let existed = dir.is_dir();
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        if !existed {
            // The new directory's own entry, so that the first segment survives a power cut.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let existing = list_segments(dir)?;
        let first_new_segment = existing.last().map_or(1, |(id, _)| id + 1);
        let metrics = Metrics::register(registry, prefix);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                ops: VecDeque::new(),
                pending_bytes: 0,
                next_lsn: 1,
                closed: false,
            }),
            wake: Condvar::new(),
            write_segment: AtomicU64::new(first_new_segment),
            failure: Mutex::new(None),
            #[cfg(test)]
            inject: Mutex::new(None),
        });
        let writer = Writer {
            dir: dir.to_path_buf(),
            policy: cfg.fsync,
            interval: Duration::from_millis(cfg.fsync_interval_ms),
            segment_bytes: cfg.segment_bytes,
            shared: shared.clone(),
            metrics: metrics.clone(),
            next_id: first_new_segment,
            current: None,
            buf: Vec::new(),
            waiting: Vec::new(),
            dirty: false,
            last_sync: Instant::now(),
        };
        let handle = std::thread::Builder::new()
            .name("sightline-wal".into())
            .spawn(move || writer.run())
            .map_err(|e| io_err(dir, e))?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            cfg,
            shared,
            metrics,
            first_new_segment,
            writer: Mutex::new(Some(handle)),
        })
    }

    /// Calls `f(lsn, kind, payload)` for every valid record with `lsn > after`, in order. A torn or corrupt
    /// record cuts its segment there (the file is truncated, counted and logged) and replay goes on with the
    /// next segment. Logs one progress line. Call once, before the first `submit`.
    pub fn replay(
        &mut self,
        after: Lsn,
        mut f: impl FnMut(Lsn, u8, &[u8]) -> Result<(), StorageError>,
    ) -> Result<ReplayStats, StorageError> {
        let started = Instant::now();
        let mut stats = ReplayStats::default();
        for (id, path) in list_segments(&self.dir)? {
            if id >= self.first_new_segment {
                continue; // written by this process (rotate before replay); nothing old in there
            }
            stats.segments += 1;
            let seg = scan_segment(&path, |lsn, kind, payload| {
                stats.last_lsn = stats.last_lsn.max(lsn);
                if lsn > after {
                    stats.records += 1;
                    f(lsn, kind, payload)
                } else {
                    stats.skipped += 1;
                    Ok(())
                }
            })?;
            stats.bytes += seg.valid_bytes;
            if let Some(detail) = seg.damage {
                cut_segment(&path, seg.valid_bytes)?;
                stats.corrupt_tails += 1;
                self.metrics.corrupt_tails.inc();
                tracing::warn!(
                    file = %path.display(),
                    offset = seg.valid_bytes,
                    "wal: {detail} in {} at offset {}; the segment was cut there",
                    path.display(),
                    seg.valid_bytes
                );
            }
        }
        {
            // LSNs continue after everything the caller has seen or already covers, so they are never
            // reused even when the log was emptied by `remove_before`.
            let mut q = self.shared.queue.lock();
            q.next_lsn = q.next_lsn.max(stats.last_lsn.max(after) + 1);
        }
        let elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            records = stats.records,
            bytes = stats.bytes,
            segments = stats.segments,
            skipped = stats.skipped,
            corrupt_tails = stats.corrupt_tails,
            elapsed_ms,
            "wal replayed {} records ({} bytes) from {} segments in {elapsed_ms} ms",
            stats.records,
            stats.bytes,
            stats.segments,
        );
        Ok(stats)
    }

    /// Makes every later record's LSN higher than `lsn`: for a store whose own files remember positions that
    /// the log may no longer hold (its segments were deleted after those records were made durable elsewhere).
    pub fn advance_past(&self, lsn: Lsn) {
        let mut q = self.shared.queue.lock();
        q.next_lsn = q.next_lsn.max(lsn + 1);
    }

    /// Queues a record and returns its LSN and a ticket that resolves once it is durable. Never blocks; LSNs
    /// are assigned in call order. `Err(Overloaded)` when more than `max_pending_bytes` wait.
    pub fn submit(&self, kind: u8, payload: Vec<u8>) -> Result<(Lsn, AppendTicket), StorageError> {
        let frame_len = MIN_FRAME_LEN + payload.len();
        if frame_len > MAX_FRAME_LEN {
            return Err(StorageError::Overloaded(format!(
                "a wal record of {} bytes is larger than the limit of {MAX_FRAME_LEN}",
                payload.len()
            )));
        }
        let frame_bytes = HEADER_BYTES + frame_len;
        let (done, ticket) = oneshot::channel();
        let lsn = {
            let mut q = self.shared.queue.lock();
            if q.closed {
                return Err(StorageError::Closed);
            }
            let pending = q.pending_bytes.saturating_add(frame_bytes);
            if pending > self.cfg.max_pending_bytes {
                return Err(StorageError::Overloaded(format!(
                    "wal has {pending} bytes pending; the limit is {}",
                    self.cfg.max_pending_bytes
                )));
            }
            let lsn = q.next_lsn;
            q.next_lsn += 1;
            q.pending_bytes = pending;
            q.ops.push_back(Op::Record {
                lsn,
                kind,
                payload,
                done,
            });
            lsn
        };
        self.shared.wake.notify_one();
        Ok((lsn, ticket))
    }

    /// Submits and waits for durability.
    pub async fn append(&self, kind: u8, payload: Vec<u8>) -> Result<Lsn, StorageError> {
        let (lsn, ticket) = self.submit(kind, payload)?;
        ticket.await.map_err(|_| StorageError::Closed)??;
        Ok(lsn)
    }

    /// Queues a rotation: every record submitted before this call is in a segment with an id lower than the
    /// one the ticket resolves to; every record submitted after is in that segment or later.
    pub fn rotate(&self) -> Result<RotateTicket, StorageError> {
        let (done, ticket) = oneshot::channel();
        {
            let mut q = self.shared.queue.lock();
            if q.closed {
                return Err(StorageError::Closed);
            }
            q.ops.push_back(Op::Rotate(done));
        }
        self.shared.wake.notify_one();
        Ok(ticket)
    }

    /// Deletes every segment with an id lower than `id`; returns how many were deleted.
    pub fn remove_before(&self, id: SegmentId) -> Result<usize, StorageError> {
        // Never the segment the writer is on (or about to create): that would lose records.
        let limit = id.min(self.shared.write_segment.load(Ordering::SeqCst));
        let mut removed = 0;
        for (sid, path) in list_segments(&self.dir)? {
            if sid >= limit {
                break;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path, e)),
            }
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// The first write or fsync failure since open, if any. Its records were answered with the error, never
    /// acknowledged. It stays set: a caller that applied records before their outcome (the metric store) uses
    /// it to stop for good, even for records whose tickets nobody awaited.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.lock().clone()
    }

    /// Test hook: the next group of records fails with `msg` (nothing of it reaches the file).
    #[cfg(test)]
    pub(crate) fn inject_failure(&self, msg: &str) {
        *self.shared.inject.lock() = Some(msg.to_string());
    }

    /// Writes and syncs everything submitted, then stops the writer thread.
    pub fn close(&self) -> Result<(), StorageError> {
        let (done, result) = std::sync::mpsc::channel();
        let queued = {
            let mut q = self.shared.queue.lock();
            if q.closed {
                false
            } else {
                q.closed = true;
                q.ops.push_back(Op::Close(done));
                true
            }
        };
        let res = if queued {
            self.shared.wake.notify_one();
            result.recv().unwrap_or(Err(StorageError::Closed))
        } else {
            Ok(())
        };
        if let Some(handle) = self.writer.lock().take() {
            if handle.join().is_err() {
                tracing::error!("wal: the writer thread of {} panicked", self.dir.display());
                return Err(StorageError::Closed);
            }
        }
        res
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!("wal: closing {} failed: {e}", self.dir.display());
        }
    }
}

/// The segment the writer appends to.
struct Segment {
    id: SegmentId,
    path: PathBuf,
    file: File,
    size: u64,
}

/// The writer thread's state.
struct Writer {
    dir: PathBuf,
    policy: FsyncPolicy,
    interval: Duration,
    segment_bytes: u64,
    shared: Arc<Shared>,
    metrics: Metrics,
    /// Id of the next segment to create.
    next_id: SegmentId,
    current: Option<Segment>,
    /// Frames encoded but not yet written.
    buf: Vec<u8>,
    /// Tickets of the frames in `buf`.
    waiting: Vec<oneshot::Sender<Result<(), StorageError>>>,
    /// Written but not yet synced (policy `interval`).
    dirty: bool,
    last_sync: Instant,
}

/// Marks the log closed when the writer thread ends, however it ends, so that submitters get `Closed` (their
/// tickets are dropped) instead of waiting forever.
struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let mut q = self.0.queue.lock();
        q.closed = true;
        q.ops.clear();
        q.pending_bytes = 0;
    }
}

impl Writer {
    fn run(mut self) {
        let _guard = ExitGuard(self.shared.clone());
        let mut batch = VecDeque::new();
        loop {
            {
                let mut q = self.shared.queue.lock();
                while q.ops.is_empty() {
                    if self.dirty {
                        let deadline = self.last_sync + self.interval;
                        if Instant::now() >= deadline {
                            break;
                        }
                        self.shared.wake.wait_until(&mut q, deadline);
                    } else {
                        self.shared.wake.wait(&mut q);
                    }
                }
                std::mem::swap(&mut q.ops, &mut batch);
            }
            let mut close = None;
            for op in batch.drain(..) {
                match op {
                    Op::Record {
                        lsn,
                        kind,
                        payload,
                        done,
                    } => {
                        self.add_record(lsn, kind, &payload, done);
                    }
                    Op::Rotate(done) => {
                        self.flush();
                        let _ = done.send(self.rotate());
                    }
                    Op::Close(done) => close = Some(done),
                }
            }
            self.flush();
            if self.dirty && self.last_sync.elapsed() >= self.interval {
                if let Err(e) = self.sync_current() {
                    tracing::error!("wal: periodic fsync failed: {e}");
                    self.abandon_segment(None);
                }
            }
            if let Some(done) = close {
                let _ = done.send(self.close_segment());
                return;
            }
        }
    }

    fn add_record(
        &mut self,
        lsn: Lsn,
        kind: u8,
        payload: &[u8],
        done: oneshot::Sender<Result<(), StorageError>>,
    ) {
        encode_frame(&mut self.buf, lsn, kind, payload);
        self.waiting.push(done);
        let size = self.current.as_ref().map_or(0, |s| s.size);
        if size + self.buf.len() as u64 >= self.segment_bytes {
            self.flush(); // fills the segment and closes it; later records go to the next one
        }
    }

    /// Writes the buffered frames with one write, syncs them (policy `always`) and resolves their tickets.
    /// Closes the segment when it is full.
    fn flush(&mut self) {
        if !self.buf.is_empty() {
            let res = self.write_buf();
            {
                // Released before the tickets resolve, so an acknowledged writer sees the room it freed.
                let mut q = self.shared.queue.lock();
                q.pending_bytes = q.pending_bytes.saturating_sub(self.buf.len());
            }
            match res {
                Ok(()) => {
                    self.metrics.records.inc_by(self.waiting.len() as u64);
                    self.metrics.bytes.inc_by(self.buf.len() as u64);
                    for done in self.waiting.drain(..) {
                        let _ = done.send(Ok(()));
                    }
                }
                Err(e) => {
                    tracing::error!("wal: writing {} records failed: {e}", self.waiting.len());
                    self.shared
                        .failure
                        .lock()
                        .get_or_insert_with(|| e.to_string());
                    for done in self.waiting.drain(..) {
                        let _ = done.send(Err(copy_err(&e)));
                    }
                }
            }
            self.buf.clear();
            if self.buf.capacity() > KEEP_BUFFER_BYTES {
                self.buf.shrink_to(1024 * 1024);
            }
        }
        if self
            .current
            .as_ref()
            .is_some_and(|s| s.size >= self.segment_bytes)
        {
            if let Err(e) = self.close_segment() {
                tracing::error!("wal: closing a full segment failed: {e}");
            }
        }
    }

    fn write_buf(&mut self) -> Result<(), StorageError> {
        #[cfg(test)]
        if let Some(msg) = self.shared.inject.lock().take() {
            return Err(StorageError::Io {
                path: "injected".into(),
                source: io::Error::other(msg),
            });
        }
        self.ensure_segment()?;
        let seg = self.current.as_mut().expect("segment is open");
        let before = seg.size;
        if let Err(e) = seg.file.write_all(&self.buf) {
            let err = io_err(&seg.path, e);
            self.abandon_segment(Some(before));
            return Err(err);
        }
        seg.size += self.buf.len() as u64;
        self.dirty = true;
        if self.policy == FsyncPolicy::Always {
            if let Err(e) = self.sync_current() {
                self.abandon_segment(Some(before));
                return Err(e);
            }
        }
        Ok(())
    }

    fn sync_current(&mut self) -> Result<(), StorageError> {
        let Some(seg) = self.current.as_ref() else {
            self.dirty = false;
            return Ok(());
        };
        let started = Instant::now();
        let res = seg.file.sync_data();
        self.metrics
            .fsync_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.fsyncs.inc();
        self.last_sync = Instant::now();
        res.map_err(|e| io_err(&seg.path, e))?;
        self.dirty = false;
        Ok(())
    }

    fn ensure_segment(&mut self) -> Result<(), StorageError> {
        if self.current.is_some() {
            return Ok(());
        }
        let id = self.next_id;
        // Taken even if creating fails, so a failure never makes us reuse a half-made file.
        self.next_id += 1;
        let path = segment_path(&self.dir, id);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        if let Err(e) = sync_dir(&self.dir) {
            drop(file);
            let _ = std::fs::remove_file(&path);
            self.shared
                .write_segment
                .store(self.next_id, Ordering::SeqCst);
            return Err(e);
        }
        self.current = Some(Segment {
            id,
            path,
            file,
            size: 0,
        });
        self.dirty = false;
        Ok(())
    }

    /// Syncs what is unsynced and closes the current segment; the next write starts a new one.
    fn close_segment(&mut self) -> Result<(), StorageError> {
        let res = if self.dirty {
            self.sync_current()
        } else {
            Ok(())
        };
        self.current = None;
        self.dirty = false;
        self.shared
            .write_segment
            .store(self.next_id, Ordering::SeqCst);
        res
    }

    /// After a failed write or fsync: cuts the segment back to `keep` bytes if given (best effort) and leaves
    /// it, so no later record is written behind a possibly torn frame.
    fn abandon_segment(&mut self, keep: Option<u64>) {
        if let Some(seg) = self.current.take() {
            if let Some(keep) = keep {
                if seg
                    .file
                    .set_len(keep)
                    .and_then(|_| seg.file.sync_data())
                    .is_err()
                {
                    tracing::warn!(
                        "wal: could not cut {} back to {keep} bytes after a failed write",
                        seg.path.display()
                    );
                }
            }
        }
        self.dirty = false;
        self.shared
            .write_segment
            .store(self.next_id, Ordering::SeqCst);
    }

    /// Closes the current segment if it holds anything and opens the next; answers the id of the segment
    /// later records go to.
    fn rotate(&mut self) -> Result<SegmentId, StorageError> {
        if self.current.as_ref().is_some_and(|s| s.size > 0) {
            self.close_segment()?;
        }
        self.ensure_segment()?;
        Ok(self.current.as_ref().expect("segment is open").id)
    }
}

fn encode_frame(buf: &mut Vec<u8>, lsn: Lsn, kind: u8, payload: &[u8]) {
    let len = (MIN_FRAME_LEN + payload.len()) as u32;
    let start = buf.len();
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&lsn.to_le_bytes());
    buf.push(kind);
    buf.extend_from_slice(payload);
    let crc = crc32fast::hash(&buf[start + HEADER_BYTES..]);
    buf[start + 4..start + HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
}

/// What reading one segment found.
struct SegmentScan {
    /// Bytes of valid frames from the start of the file.
    valid_bytes: u64,
    /// Why reading stopped before the end of the file, if it did.
    damage: Option<String>,
}

/// Reads the valid frames of one segment, calling `f` for each, and stops at the first torn or corrupt one.
fn scan_segment(
    path: &Path,
    mut f: impl FnMut(Lsn, u8, &[u8]) -> Result<(), StorageError>,
) -> Result<SegmentScan, StorageError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let file_len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let mut reader = BufReader::with_capacity(1024 * 1024, file);
    let mut offset = 0u64;
    let mut body = Vec::new();
    let damage = loop {
        let left = file_len - offset;
        if left == 0 {
            break None;
        }
        if left < HEADER_BYTES as u64 {
            break Some(format!(
                "torn frame header ({left} of {HEADER_BYTES} bytes)"
            ));
        }
        let mut header = [0u8; HEADER_BYTES];
        reader
            .read_exact(&mut header)
            .map_err(|e| io_err(path, e))?;
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&len) {
            break Some(format!("frame length {len} out of range"));
        }
        let body_left = left - HEADER_BYTES as u64;
        if (len as u64) > body_left {
            break Some(format!(
                "torn frame ({len} bytes announced, {body_left} present)"
            ));
        }
        body.resize(len, 0);
        reader.read_exact(&mut body).map_err(|e| io_err(path, e))?;
        if crc32fast::hash(&body) != crc {
            break Some("checksum mismatch".to_string());
        }
        let lsn = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        f(lsn, body[8], &body[MIN_FRAME_LEN..])?;
        offset += (HEADER_BYTES + len) as u64;
    };
    Ok(SegmentScan {
        valid_bytes: offset,
        damage,
    })
}

/// Truncates a segment to its valid prefix and makes that durable.
fn cut_segment(path: &Path, len: u64) -> Result<(), StorageError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    file.set_len(len).map_err(|e| io_err(path, e))?;
    file.sync_all().map_err(|e| io_err(path, e))
}

fn segment_path(dir: &Path, id: SegmentId) -> PathBuf {
    dir.join(format!("{id:020}.wal"))
}

/// The segment files in `dir`, sorted by id. Other files are ignored.
fn list_segments(dir: &Path) -> Result<Vec<(SegmentId, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".wal")) else {
            continue;
        };
        if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(id) = stem.parse::<SegmentId>() {
            out.push((id, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(id, _)| *id);
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

fn io_err(path: &Path, source: io::Error) -> StorageError {
    StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One error for every ticket of a failed group (`StorageError` is not `Clone`). The writer only produces `Io`.
fn copy_err(e: &StorageError) -> StorageError {
    match e {
        StorageError::Io { path, source } => StorageError::Io {
            path: path.clone(),
            source: io::Error::new(source.kind(), source.to_string()),
        },
        other => StorageError::Io {
            path: String::new(),
            source: io::Error::other(other.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    type Rec = (Lsn, u8, Vec<u8>);

    fn config(segment_bytes: u64) -> WalConfig {
        WalConfig {
            segment_bytes,
            ..WalConfig::default()
        }
    }

    fn open(dir: &Path, cfg: WalConfig) -> Wal {
        Wal::open(dir, cfg, &mut Registry::default()).expect("open wal")
    }

    /// Opens the log and replays everything after `after`, as the server does at start.
    fn reopen(dir: &Path, cfg: WalConfig, after: Lsn) -> (Wal, Vec<Rec>, ReplayStats) {
        let mut wal = open(dir, cfg);
        let mut recs = Vec::new();
        let stats = wal
            .replay(after, |lsn, kind, payload| {
                recs.push((lsn, kind, payload.to_vec()));
                Ok(())
            })
            .expect("replay");
        (wal, recs, stats)
    }

    /// Submits every record, closes the log and checks every ticket resolved `Ok`; returns the records.
    fn write_and_close(wal: &Wal, records: &[(u8, Vec<u8>)]) -> Vec<Rec> {
        let mut out = Vec::new();
        let mut tickets = Vec::new();
        for (kind, payload) in records {
            let (lsn, ticket) = wal.submit(*kind, payload.clone()).expect("submit");
            out.push((lsn, *kind, payload.clone()));
            tickets.push(ticket);
        }
        wal.close().expect("close");
        for mut t in tickets {
            assert!(matches!(t.try_recv(), Ok(Ok(()))), "ticket not resolved ok");
        }
        out
    }

    fn segment_ids(dir: &Path) -> Vec<SegmentId> {
        list_segments(dir)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// The LSNs stored in each segment file.
    fn lsns_by_segment(dir: &Path) -> Vec<(SegmentId, Vec<Lsn>)> {
        list_segments(dir)
            .unwrap()
            .into_iter()
            .map(|(id, path)| {
                let mut lsns = Vec::new();
                let scan = scan_segment(&path, |lsn, _, _| {
                    lsns.push(lsn);
                    Ok(())
                })
                .unwrap();
                assert!(scan.damage.is_none(), "segment {id} damaged");
                (id, lsns)
            })
            .collect()
    }

    fn payload(session: usize, i: usize, len: usize) -> Vec<u8> {
        (0..len).map(|j| (session * 31 + i * 7 + j) as u8).collect()
    }

    #[test]
    fn round_trip_across_segments_and_reopen() {
        // name, segment_bytes, sessions, records per session, payload length, minimum number of segments
        let cases: &[(&str, u64, usize, usize, usize, usize)] = &[
            ("one segment per session", 1 << 20, 1, 50, 10, 1),
            ("many small segments", 256, 3, 40, 30, 20),
            ("a segment per record", 1, 2, 10, 0, 20),
            ("empty payloads", 64, 2, 20, 0, 4),
            ("large payloads", 4096, 2, 6, 10_000, 12),
        ];
        for &(name, segment_bytes, sessions, per_session, len, min_segments) in cases {
            check_round_trip(
                name,
                segment_bytes,
                sessions,
                per_session,
                len,
                min_segments,
            );
        }
    }

    fn check_round_trip(
        name: &str,
        segment_bytes: u64,
        sessions: usize,
        per_session: usize,
        len: usize,
        min_segments: usize,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut expected: Vec<Rec> = Vec::new();
        for session in 0..sessions {
            let (wal, seen, stats) = reopen(dir.path(), config(segment_bytes), 0);
            assert_eq!(seen, expected, "{name}: replay before session {session}");
            assert_eq!(stats.corrupt_tails, 0, "{name}");
            let records: Vec<(u8, Vec<u8>)> = (0..per_session)
                .map(|i| ((i % 3) as u8, payload(session, i, len)))
                .collect();
            expected.extend(write_and_close(&wal, &records));
        }
        let lsns: Vec<Lsn> = expected.iter().map(|r| r.0).collect();
        let want: Vec<Lsn> = (1..=(sessions * per_session) as u64).collect();
        assert_eq!(lsns, want, "{name}: lsns continue across reopen");
        let (_wal, seen, stats) = reopen(dir.path(), config(segment_bytes), 0);
        assert_eq!(seen, expected, "{name}: final replay");
        assert_eq!(stats.records, expected.len() as u64, "{name}");
        assert_eq!(stats.last_lsn, expected.len() as u64, "{name}");
        let bytes: usize = expected.iter().map(|r| 17 + r.2.len()).sum();
        assert_eq!(stats.bytes, bytes as u64, "{name}");
        assert!(
            stats.segments as usize >= min_segments,
            "{name}: {} segments, expected at least {min_segments}",
            stats.segments
        );
        assert_eq!(
            stats.segments as usize,
            segment_ids(dir.path()).len(),
            "{name}"
        );
    }

    #[test]
    fn lsns_continue_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        // A fresh log without replay starts at 1.
        let wal = open(dir.path(), config(1 << 20));
        let first = write_and_close(&wal, &[(1, b"a".to_vec()), (1, b"b".to_vec())]);
        assert_eq!(first.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2]);
        drop(wal);

        let (wal, seen, stats) = reopen(dir.path(), config(1 << 20), 0);
        assert_eq!(seen.len(), 2);
        assert_eq!(stats.last_lsn, 2);
        let second = write_and_close(&wal, &[(2, b"c".to_vec())]);
        assert_eq!(second[0].0, 3);
        drop(wal);

        // Everything removed (e.g. after a checkpoint at LSN 3): numbering still goes on after `after`.
        let wal = open(dir.path(), config(1 << 20));
        assert_eq!(wal.remove_before(SegmentId::MAX).unwrap(), 2);
        drop(wal);
        let (wal, seen, _) = reopen(dir.path(), config(1 << 20), 3);
        assert!(seen.is_empty());
        let third = write_and_close(&wal, &[(2, b"d".to_vec())]);
        assert_eq!(third[0].0, 4, "no lsn reused after the log was emptied");
    }

    #[derive(Clone, Copy, Debug)]
    enum Damage {
        /// Cut this many bytes off the end of the segment.
        Truncate(u64),
        /// Flip one bit in the middle of the last record's payload.
        FlipLastPayloadBit,
        /// Append zeros (a file extended but never written).
        AppendZeros(usize),
        /// Append a header announcing an absurd length.
        AppendHugeLength,
    }

    #[test]
    fn damaged_tail_is_cut_and_the_log_stays_usable() {
        // Records: 5 of 20-byte payloads, frame = 37 bytes.
        // name, segment_bytes, damaged segment (index), damage, records replayed after the damage
        let cases: &[(&str, u64, usize, Damage, &[Lsn])] = &[
            (
                "torn last byte",
                1 << 20,
                0,
                Damage::Truncate(1),
                &[1, 2, 3, 4],
            ),
            (
                "torn inside header",
                1 << 20,
                0,
                Damage::Truncate(34),
                &[1, 2, 3, 4],
            ),
            (
                "torn whole body",
                1 << 20,
                0,
                Damage::Truncate(29),
                &[1, 2, 3, 4],
            ),
            (
                "bit flip in the last record",
                1 << 20,
                0,
                Damage::FlipLastPayloadBit,
                &[1, 2, 3, 4],
            ),
            (
                "zero-filled tail",
                1 << 20,
                0,
                Damage::AppendZeros(100),
                &[1, 2, 3, 4, 5],
            ),
            (
                "huge length",
                1 << 20,
                0,
                Damage::AppendHugeLength,
                &[1, 2, 3, 4, 5],
            ),
            (
                "bit flip in an earlier segment",
                1,
                2,
                Damage::FlipLastPayloadBit,
                &[1, 2, 4, 5],
            ),
            (
                "torn earlier segment",
                1,
                1,
                Damage::Truncate(5),
                &[1, 3, 4, 5],
            ),
        ];
        for &(name, segment_bytes, index, damage, want) in cases {
            check_damage(name, segment_bytes, index, damage, want);
        }
    }

    fn check_damage(name: &str, segment_bytes: u64, index: usize, damage: Damage, want: &[Lsn]) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(segment_bytes);
        let wal = open(dir.path(), cfg.clone());
        let records: Vec<(u8, Vec<u8>)> = (0..5).map(|i| (7, payload(0, i, 20))).collect();
        let written = write_and_close(&wal, &records);
        drop(wal);

        let segments = list_segments(dir.path()).unwrap();
        let path = &segments[index].1;
        let mut bytes = std::fs::read(path).unwrap();
        let last_frame = bytes.len() - 37;
        match damage {
            Damage::Truncate(n) => bytes.truncate(bytes.len() - n as usize),
            Damage::FlipLastPayloadBit => bytes[last_frame + 17 + 10] ^= 0x10,
            Damage::AppendZeros(n) => bytes.extend(std::iter::repeat_n(0, n)),
            Damage::AppendHugeLength => {
                bytes.extend_from_slice(&u32::MAX.to_le_bytes());
                bytes.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
            }
        }
        std::fs::write(path, &bytes).unwrap();

        let mut wal = open(dir.path(), cfg.clone());
        let mut seen = Vec::new();
        let stats = wal
            .replay(0, |lsn, kind, p| {
                seen.push((lsn, kind, p.to_vec()));
                Ok(())
            })
            .unwrap();
        let want_recs: Vec<Rec> = written
            .iter()
            .filter(|r| want.contains(&r.0))
            .cloned()
            .collect();
        assert_eq!(seen, want_recs, "{name}: replayed records");
        assert_eq!(stats.corrupt_tails, 1, "{name}: counted in stats");
        assert_eq!(
            wal.metrics.corrupt_tails.get(),
            1,
            "{name}: counted in metric"
        );
        let cut_len = std::fs::metadata(path).unwrap().len();
        assert_eq!(cut_len % 37, 0, "{name}: file cut at a frame boundary");
        assert!(cut_len <= bytes.len() as u64, "{name}");
        // The server keeps going: later appends land and are readable.
        let later = write_and_close(&wal, &[(9, b"after".to_vec()), (9, b"again".to_vec())]);
        let last_valid = *want.last().unwrap();
        assert_eq!(later[0].0, last_valid + 1, "{name}: lsn after the cut");
        drop(wal);

        let (_wal, seen, stats) = reopen(dir.path(), cfg, 0);
        assert_eq!(stats.corrupt_tails, 0, "{name}: the cut is clean");
        let mut expect = want_recs;
        expect.extend(later);
        assert_eq!(
            seen, expect,
            "{name}: replay after the cut and later appends"
        );
    }

    #[test]
    fn replay_after_skips() {
        let dir = tempfile::tempdir().unwrap();
        let wal = open(dir.path(), config(200));
        let records: Vec<(u8, Vec<u8>)> = (0..10).map(|i| (1, payload(0, i, 12))).collect();
        write_and_close(&wal, &records);
        drop(wal);
        // after, records delivered, skipped, next lsn
        let cases: &[(Lsn, u64, u64, Lsn)] = &[
            (0, 10, 0, 11),
            (3, 7, 3, 11),
            (10, 0, 10, 11),
            (50, 0, 10, 51),
        ];
        for &(after, records, skipped, next) in cases {
            let (wal, seen, stats) = reopen(dir.path(), config(200), after);
            assert_eq!(stats.records, records, "after {after}");
            assert_eq!(stats.skipped, skipped, "after {after}");
            assert_eq!(stats.last_lsn, 10, "after {after}");
            assert!(seen.iter().all(|r| r.0 > after), "after {after}");
            assert_eq!(
                seen.first().map(|r| r.0),
                (records > 0).then_some(after + 1)
            );
            let (lsn, _) = wal.submit(1, vec![]).unwrap();
            assert_eq!(lsn, next, "after {after}");
            // Leave no record behind, so the next case sees the same log.
            drop(wal);
            let newest = *segment_ids(dir.path()).last().unwrap();
            std::fs::remove_file(segment_path(dir.path(), newest)).unwrap();
        }
    }

    #[test]
    fn rotate_orders_records_and_remove_before_drops_older_segments() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(100); // a few records per segment
        let wal = open(dir.path(), cfg.clone());
        let mut before = Vec::new();
        for i in 0..7 {
            before.push(wal.submit(1, payload(0, i, 20)).unwrap());
        }
        let rotated = wal.rotate().unwrap();
        let mut after = Vec::new();
        for i in 0..5 {
            after.push(wal.submit(2, payload(1, i, 20)).unwrap());
        }
        let id = rotated.blocking_recv().unwrap().unwrap();
        for (_, t) in before.into_iter().chain(after) {
            t.blocking_recv().unwrap().unwrap();
        }
        for (seg, lsns) in lsns_by_segment(dir.path()) {
            for lsn in lsns {
                assert_eq!(
                    seg < id,
                    lsn <= 7,
                    "lsn {lsn} in segment {seg}, rotation at {id}"
                );
            }
        }
        let older = segment_ids(dir.path()).iter().filter(|&&s| s < id).count();
        assert!(
            older >= 2,
            "records before the rotation span several segments"
        );
        assert_eq!(wal.remove_before(id).unwrap(), older);
        assert!(segment_ids(dir.path()).iter().all(|&s| s >= id));
        // A rotation with nothing written since answers the same, still empty, segment.
        let again = wal.rotate().unwrap().blocking_recv().unwrap().unwrap();
        assert!(again > id);
        let again2 = wal.rotate().unwrap().blocking_recv().unwrap().unwrap();
        assert_eq!(again2, again, "an empty segment is not rotated");
        drop(wal);

        let (_wal, seen, stats) = reopen(dir.path(), cfg, 0);
        assert_eq!(
            seen.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![8, 9, 10, 11, 12]
        );
        assert!(seen.iter().all(|r| r.1 == 2));
        assert_eq!(stats.corrupt_tails, 0);
    }

    #[test]
    fn remove_before_keeps_the_active_segment() {
        let dir = tempfile::tempdir().unwrap();
        let wal = open(dir.path(), config(1 << 20));
        for i in 0..3 {
            let (_, t) = wal.submit(1, payload(0, i, 8)).unwrap();
            t.blocking_recv().unwrap().unwrap();
        }
        assert_eq!(wal.remove_before(SegmentId::MAX).unwrap(), 0);
        let (_, t) = wal.submit(1, payload(0, 3, 8)).unwrap();
        t.blocking_recv().unwrap().unwrap();
        drop(wal);
        let (_wal, seen, _) = reopen(dir.path(), config(1 << 20), 0);
        assert_eq!(
            seen.len(),
            4,
            "acknowledged records survive remove_before(MAX)"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_are_durable_and_group_committed() {
        const N: usize = 200;
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(open(dir.path(), WalConfig::default()));
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let mut tasks = Vec::new();
        for i in 0..N {
            let wal = wal.clone();
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let lsn = wal
                    .append(3, format!("record {i}").into_bytes())
                    .await
                    .unwrap();
                (lsn, i)
            }));
        }
        let mut by_lsn = Vec::new();
        for t in tasks {
            by_lsn.push(t.await.unwrap());
        }
        let lsns: BTreeSet<Lsn> = by_lsn.iter().map(|(l, _)| *l).collect();
        assert_eq!(lsns, (1..=N as u64).collect::<BTreeSet<_>>());
        let fsyncs = wal.metrics.fsyncs.get();
        assert_eq!(wal.metrics.records.get(), N as u64);
        assert!(fsyncs >= 1, "policy always syncs");
        assert!(
            fsyncs < N as u64,
            "group commit: {fsyncs} fsyncs for {N} records"
        );
        wal.close().unwrap();
        drop(wal);

        let (_wal, seen, _) = reopen(dir.path(), WalConfig::default(), 0);
        assert_eq!(seen.len(), N);
        for (lsn, i) in by_lsn {
            assert_eq!(seen[lsn as usize - 1].2, format!("record {i}").into_bytes());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fsync_policies() {
        // policy, records appended one after another, fsyncs expected at least / at most right after
        for (policy, interval_ms) in [(FsyncPolicy::Always, 1000), (FsyncPolicy::Interval, 50)] {
            let dir = tempfile::tempdir().unwrap();
            let cfg = WalConfig {
                fsync: policy,
                fsync_interval_ms: interval_ms,
                ..WalConfig::default()
            };
            let wal = open(dir.path(), cfg.clone());
            for i in 0..10 {
                wal.append(1, payload(0, i, 16)).await.unwrap();
            }
            match policy {
                FsyncPolicy::Always => {
                    assert_eq!(
                        wal.metrics.fsyncs.get(),
                        10,
                        "one fsync per sequential append"
                    )
                }
                FsyncPolicy::Interval => {
                    assert!(
                        wal.metrics.fsyncs.get() < 10,
                        "appends do not wait for fsync"
                    );
                    // The periodic fsync comes without further appends.
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while wal.metrics.fsyncs.get() == 0 && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    assert!(wal.metrics.fsyncs.get() >= 1, "periodic fsync happened");
                    // Once idle and synced: no more fsyncs. (One may have come between the appends, with
                    // another still due, so let that one pass first.)
                    tokio::time::sleep(Duration::from_millis(3 * interval_ms)).await;
                    let n = wal.metrics.fsyncs.get();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    assert_eq!(
                        wal.metrics.fsyncs.get(),
                        n,
                        "no fsync when nothing is dirty"
                    );
                }
            }
            wal.close().unwrap();
            drop(wal);
            let (_wal, seen, _) = reopen(dir.path(), cfg, 0);
            assert_eq!(seen.len(), 10, "{policy:?}");
        }
    }

    #[test]
    fn overloaded_when_too_much_is_pending() {
        // max_pending_bytes, payload length, accepted
        let cases: &[(usize, usize, bool)] = &[
            (1, 0, false),
            (10, 100, false),
            (117, 100, true),
            (116, 100, false),
        ];
        for &(max, len, ok) in cases {
            let dir = tempfile::tempdir().unwrap();
            let cfg = WalConfig {
                max_pending_bytes: max,
                ..WalConfig::default()
            };
            let wal = open(dir.path(), cfg);
            match wal.submit(1, vec![0; len]) {
                Ok((lsn, t)) => {
                    assert!(ok, "max {max} len {len} accepted");
                    assert_eq!(lsn, 1);
                    t.blocking_recv().unwrap().unwrap();
                }
                Err(StorageError::Overloaded(msg)) => {
                    assert!(!ok, "max {max} len {len} refused");
                    assert_eq!(
                        msg,
                        format!("wal has {} bytes pending; the limit is {max}", len + 17)
                    );
                    // Nothing was queued and no LSN was used.
                    assert_eq!(wal.shared.queue.lock().pending_bytes, 0);
                    assert_eq!(wal.shared.queue.lock().next_lsn, 1);
                }
                Err(e) => panic!("unexpected error {e}"),
            }
        }
    }

    #[test]
    fn pending_bytes_are_released_after_writing() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = WalConfig {
            max_pending_bytes: 1000,
            ..WalConfig::default()
        };
        let wal = open(dir.path(), cfg);
        let mut refused = 0;
        let mut tickets = Vec::new();
        for _ in 0..200 {
            match wal.submit(1, vec![0; 183]) {
                Ok((_, t)) => tickets.push(t),
                Err(StorageError::Overloaded(_)) => refused += 1,
                Err(e) => panic!("{e}"),
            }
            assert!(wal.shared.queue.lock().pending_bytes <= 1000);
        }
        for t in tickets {
            t.blocking_recv().unwrap().unwrap();
        }
        assert!(refused < 200);
        // Everything written: the full budget is free again.
        assert_eq!(wal.shared.queue.lock().pending_bytes, 0);
        for _ in 0..5 {
            wal.submit(1, vec![0; 183])
                .expect("room after the writer caught up");
        }
    }

    #[test]
    fn replay_stops_at_a_callback_error() {
        let dir = tempfile::tempdir().unwrap();
        let wal = open(dir.path(), config(1 << 20));
        write_and_close(
            &wal,
            &[(1, b"a".to_vec()), (1, b"b".to_vec()), (1, b"c".to_vec())],
        );
        drop(wal);
        let size = |d: &Path| -> u64 {
            list_segments(d)
                .unwrap()
                .iter()
                .map(|(_, p)| std::fs::metadata(p).unwrap().len())
                .sum()
        };
        let before = size(dir.path());
        let mut wal = open(dir.path(), config(1 << 20));
        let mut calls = 0;
        let err = wal
            .replay(0, |lsn, _, _| {
                calls += 1;
                if lsn == 2 {
                    return Err(StorageError::Corrupt {
                        path: "test".into(),
                        detail: "bad record".into(),
                    });
                }
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
        assert_eq!(calls, 2, "replay stops at the failing record");
        assert_eq!(size(dir.path()), before, "nothing was cut");
    }

    #[test]
    fn closed_log_refuses_work() {
        let dir = tempfile::tempdir().unwrap();
        let wal = open(dir.path(), WalConfig::default());
        let (_, t) = wal.submit(1, b"x".to_vec()).unwrap();
        wal.close().unwrap();
        assert!(
            matches!(t.blocking_recv(), Ok(Ok(()))),
            "close writes what was queued"
        );
        assert!(matches!(wal.submit(1, vec![]), Err(StorageError::Closed)));
        assert!(matches!(wal.rotate(), Err(StorageError::Closed)));
        wal.close().expect("closing twice is fine");
    }

    #[test]
    fn segment_files_and_metrics() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data").join("wal");
        let mut registry = Registry::default();
        let wal = Wal::open(&dir, WalConfig::default(), &mut Registry::default())
            .expect("creates the directory");
        drop(wal);
        std::fs::write(dir.join("notes.txt"), b"not a segment").unwrap();
        std::fs::write(dir.join("12.wal"), b"wrong name").unwrap();
        let wal = Wal::open(&dir, WalConfig::default(), &mut registry).unwrap();
        write_and_close(&wal, &[(1, b"abc".to_vec()), (1, b"defg".to_vec())]);
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('0'))
            .collect();
        assert_eq!(names, vec!["00000000000000000001.wal".to_string()]);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "sightline_wal_records_total 2",
            "sightline_wal_bytes_total 41",
            "sightline_wal_corrupt_tails_total 0",
            "sightline_wal_fsync_seconds_count ",
        ] {
            assert!(text.contains(line), "{line:?} missing in\n{text}");
        }
        assert!(text.contains("sightline_wal_fsyncs_total "), "{text}");
        assert!(!text.contains("sightline_wal_fsyncs_total 0"), "{text}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn first_failure_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal =
            Wal::open(dir.path(), WalConfig::default(), &mut Registry::default()).unwrap();
        wal.replay(0, |_, _, _| Ok(())).unwrap();
        wal.append(1, b"ok".to_vec()).await.unwrap();
        assert_eq!(wal.failure(), None);
        wal.inject_failure("disk on fire");
        let err = wal.append(1, b"lost".to_vec()).await.unwrap_err();
        assert!(err.to_string().contains("disk on fire"), "{err}");
        // Later writes work again, but the failure stays reported.
        wal.append(1, b"after".to_vec()).await.unwrap();
        assert_eq!(
            wal.failure().as_deref(),
            Some("i/o error on injected: disk on fire")
        );
        wal.close().unwrap();
        let mut seen = Vec::new();
        let mut wal =
            Wal::open(dir.path(), WalConfig::default(), &mut Registry::default()).unwrap();
        wal.replay(0, |_, _, p| {
            seen.push(p.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [b"ok".to_vec(), b"after".to_vec()]);
    }

    #[test]
    fn wal_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Wal>();
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(open(dir.path(), WalConfig::default()));
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let wal = wal.clone();
                std::thread::spawn(move || {
                    (0..25)
                        .map(|i| wal.submit(t, payload(t as usize, i, 5)).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut lsns = BTreeSet::new();
        for h in handles {
            for (lsn, t) in h.join().unwrap() {
                t.blocking_recv().unwrap().unwrap();
                lsns.insert(lsn);
            }
        }
        assert_eq!(lsns, (1..=100).collect::<BTreeSet<_>>());
        drop(wal);
        // On disk in LSN order (= queue order).
        let on_disk: Vec<Lsn> = lsns_by_segment(dir.path())
            .into_iter()
            .flat_map(|(_, l)| l)
            .collect();
        assert_eq!(on_disk, (1..=100).collect::<Vec<_>>());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn random_records_round_trip(
            records in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..40),
            split in 0usize..40,
            segment_bytes in 1u64..2000,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let cfg = config(segment_bytes);
            let split = split.min(records.len());
            let (wal, _, _) = reopen(dir.path(), cfg.clone(), 0);
            let mut expected = write_and_close(&wal, &records[..split]);
            drop(wal);
            let (wal, seen, _) = reopen(dir.path(), cfg.clone(), 0);
            prop_assert_eq!(&seen, &expected);
            expected.extend(write_and_close(&wal, &records[split..]));
            drop(wal);
            let (_wal, seen, stats) = reopen(dir.path(), cfg, 0);
            prop_assert_eq!(&seen, &expected);
            prop_assert_eq!(stats.corrupt_tails, 0);
            prop_assert_eq!(stats.last_lsn, records.len() as u64);
        }
    }
}

//! Parquet blocks of metric points and their manifest.
//!
//! A block covers `block_secs` of time; a flush writes one file per block it has points for, so a block may
//! have several files until compaction merges them. Rows are sorted by series id then timestamp; columns
//! `series_id: UInt32` (dictionary/RLE: long runs), `ts: Int64` (delta-binary-packed), `value: Float64`
//! (dictionary, falling back to byte-stream-split; 0 for sketch rows), `sketch: Binary` (postcard `Sketch`, null for scalar rows); zstd; row groups of
//! [`ROW_GROUP_ROWS`] so their `series_id` statistics prune reads. `manifest.json` lists the files with their
//! time and series ranges and the write-ahead-log position already flushed.

use crate::head::{merge_data, Column, Head};
use crate::rollup::{Buckets, Collect, FoldedAcc};
use crate::{SeriesData, SeriesId, StorageError};
use arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, Float64Array, Int64Array, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnPath;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use sightline_model::{MetricKind, Sketch};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Rows per row group: small enough that `series_id` statistics skip most of a file for a narrow query.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

fn io_err(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn corrupt(path: &Path, detail: impl ToString) -> StorageError {
    StorageError::Corrupt {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

/// Reads the JSON document `file` in `dir` (creating `dir` if needed): `None` when the file does not exist yet;
/// a file that does not parse is an error, never silently replaced. The small stores (monitors, webhooks,
/// downtimes) load with this and write with [`write_atomic`].
pub fn read_json_doc<D: serde::de::DeserializeOwned>(
    dir: &Path,
    file: &str,
) -> Result<(PathBuf, Option<D>), StorageError> {
    let io = |p: &Path, e: std::io::Error| StorageError::Io {
        path: p.display().to_string(),
        source: e,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let path = dir.join(file);
    let doc = match std::fs::read(&path) {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&path, e)),
    };
    Ok((path, doc))
}

/// Every `<name>.json` document of `dir` (created if missing), by name, in name order; files with other
/// extensions are skipped. A document that does not parse is an error naming its file.
pub fn read_json_dir<D: serde::de::DeserializeOwned>(
    dir: &Path,
) -> Result<Vec<(String, D)>, StorageError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let path = entry.map_err(|e| io_err(dir, e))?.path();
        if let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        {
            names.push(name.to_string());
        }
    }
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(format!("{name}.json"));
        let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
        let doc = serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        out.push((name, doc));
    }
    Ok(out)
}

/// Writes `doc` as JSON to `path` with [`write_atomic`] (`what` names the document in errors): the partner of
/// [`read_json_doc`].
pub fn write_json_doc<D: serde::Serialize>(
    path: &Path,
    doc: &D,
    what: &str,
) -> Result<(), StorageError> {
    let bytes = serde_json::to_vec(doc).map_err(|e| StorageError::Corrupt {
        path: path.display().to_string(),
        detail: format!("cannot serialize the {what}: {e}"),
    })?;
    write_atomic(path, &bytes)
}

/// The in-memory state of a store kept as one JSON document (webhooks, downtimes): how it converts to and
/// from the document.
pub trait DocState: Clone + Default {
    type Document: serde::Serialize + serde::de::DeserializeOwned;
    /// Names the document in errors.
    const WHAT: &'static str;
    fn to_document(&self) -> Self::Document;
    fn from_document(doc: Self::Document, path: &Path) -> Result<Self, StorageError>;
}

/// A store held in memory and persisted as one JSON document rewritten atomically on every change: changes
/// are serialized, durable before they return, and applied in memory only once written.
#[derive(Debug)]
pub struct DocStore<S> {
    path: PathBuf,
    state: parking_lot::Mutex<S>,
}

impl<S: DocState> DocStore<S> {
    /// Opens (creating the directory if needed) and loads `<dir>/<file>`; a corrupt document is an error,
    /// never silently replaced.
    pub fn open(dir: &Path, file: &str) -> Result<DocStore<S>, StorageError> {
        let (path, doc) = read_json_doc::<S::Document>(dir, file)?;
        let state = match doc {
            Some(doc) => S::from_document(doc, &path)?,
            None => S::default(),
        };
        Ok(DocStore {
            path,
            state: parking_lot::Mutex::new(state),
        })
    }

    /// Reads the state.
    pub fn read<T>(&self, f: impl FnOnce(&S) -> T) -> T {
        f(&self.state.lock())
    }

    /// Applies `change` to a copy of the state; if it says to keep the copy (`true`), writes it, then keeps
    /// it.
    pub fn change<T>(&self, change: impl FnOnce(&mut S) -> (T, bool)) -> Result<T, StorageError> {
        let mut state = self.state.lock();
        let mut next = state.clone();
        let (out, keep) = change(&mut next);
        if keep {
            write_json_doc(&self.path, &next.to_document(), S::WHAT)?;
            *state = next;
        }
        Ok(out)
    }
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Deletes `path`; a file already gone is not an error.
pub fn remove_file_if_present(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(path, e)),
        _ => Ok(()),
    }
}

/// A document's `version` must be `expected`: otherwise the file is reported corrupt, naming both.
pub fn check_version(path: &Path, found: u32, expected: u32) -> Result<(), StorageError> {
    if found == expected {
        return Ok(());
    }
    Err(corrupt(
        path,
        format!("unsupported version {found} (expected {expected})"),
    ))
}

/// fsyncs a directory so that renames and deletions in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// One Parquet file as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// File name inside the blocks directory.
    pub file: String,
    /// Start of the block (unix seconds, a multiple of `block_secs`).
    pub block_start: i64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub min_series: SeriesId,
    pub max_series: SeriesId,
    pub rows: u64,
    pub bytes: u64,
    /// Write-ahead-log position of the newest data in the file: orders files from older to newer writes.
    pub lsn: u64,
}

/// The manifest: the files, the write-ahead-log position already in them, and the next file number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub flushed_lsn: u64,
    pub next_file: u64,
    pub files: Vec<BlockMeta>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest, StorageError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| corrupt(path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(io_err(path, e)),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        write_atomic(path, &bytes)
    }
}

/// A file in use. Once replaced (compaction) or expired (retention) it is marked obsolete and deleted when
/// the last reader holding it lets go.
#[derive(Debug)]
pub struct BlockFile {
    pub meta: BlockMeta,
    pub path: PathBuf,
    obsolete: AtomicBool,
    /// The Parquet footer, parsed on first read and kept.
    footer: OnceLock<ArrowReaderMetadata>,
}

impl BlockFile {
    pub fn new(meta: BlockMeta, dir: &Path) -> BlockFile {
        let path = dir.join(&meta.file);
        BlockFile {
            meta,
            path,
            obsolete: AtomicBool::new(false),
            footer: OnceLock::new(),
        }
    }

    /// Deletes the file once no reader holds it any more.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::SeqCst);
    }

    /// Reads the points in `[from, to)` of the series in `ids` (every series when None), like [`read_file`]
    /// but with the footer parsed once per file.
    pub fn read(
        &self,
        ids: Option<&RoaringBitmap>,
        from: i64,
        to: i64,
    ) -> Result<HashMap<SeriesId, SeriesData>, StorageError> {
        let mut out = HashMap::new();
        self.read_append(ids, from, to, &mut out)?;
        Ok(out)
    }

    /// Like [`BlockFile::read`], but appends each series' points to its entry in `out`: for reading files
    /// that follow each other in time into one list per series without copying.
    pub fn read_append(
        &self,
        ids: Option<&RoaringBitmap>,
        from: i64,
        to: i64,
        out: &mut HashMap<SeriesId, SeriesData>,
    ) -> Result<(), StorageError> {
        read_impl(
            &self.path,
            Some(&self.footer),
            ids,
            from,
            to,
            &new_data,
            out,
        )
    }

    /// Like [`BlockFile::read_append`], but folds each series' scalar points into the rollup buckets `b` (the
    /// read covers `[b.start, b.end())`) instead of keeping them: for files that follow each other in time,
    /// read in time order, so every bucket folds its points in time order.
    pub(crate) fn read_fold(
        &self,
        ids: Option<&RoaringBitmap>,
        b: Buckets,
        out: &mut HashMap<SeriesId, FoldedAcc>,
    ) -> Result<(), StorageError> {
        let make = |sketch: bool| FoldedAcc::new(sketch, b);
        read_impl(
            &self.path,
            Some(&self.footer),
            ids,
            b.start,
            b.end(),
            &make,
            out,
        )
    }

    /// Whether the file may hold points of these series in `[from, to)`.
    pub fn overlaps(&self, from: i64, to: i64, min_id: SeriesId, max_id: SeriesId) -> bool {
        self.meta.min_ts < to
            && self.meta.max_ts >= from
            && self.meta.min_series <= max_id
            && self.meta.max_series >= min_id
    }
}

impl Drop for BlockFile {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::SeqCst) {
            if let Err(e) = std::fs::remove_file(&self.path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(file = %self.path.display(), "could not delete an obsolete block: {e}");
                }
            }
        }
    }
}

/// The start of the block holding `ts`.
pub fn block_start(ts: i64, block_secs: i64) -> i64 {
    ts.div_euclid(block_secs) * block_secs
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("series_id", DataType::UInt32, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
        Field::new("sketch", DataType::Binary, true),
    ]))
}

fn writer_props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_column_dictionary_enabled(ColumnPath::from("ts"), false)
        .set_column_encoding(ColumnPath::from("ts"), Encoding::DELTA_BINARY_PACKED)
        // Values: a dictionary per column chunk (most gauges and counts repeat a few values within a row
        // group), falling back to byte-stream-split once it passes 64 KiB (8k distinct values).
        .set_column_dictionary_enabled(ColumnPath::from("value"), true)
        .set_column_dictionary_page_size_limit(ColumnPath::from("value"), 64 * 1024)
        .set_column_encoding(ColumnPath::from("value"), Encoding::BYTE_STREAM_SPLIT)
        .set_column_dictionary_enabled(ColumnPath::from("sketch"), false)
        .build()
}

/// Accumulates rows (already sorted by series id then timestamp) and writes them as one file.
pub struct BlockWriter {
    ids: Vec<u32>,
    ts: Vec<i64>,
    vals: Vec<f64>,
    sketches: BinaryBuilder,
    min_ts: i64,
    max_ts: i64,
}

impl Default for BlockWriter {
    fn default() -> Self {
        BlockWriter::new()
    }
}

impl BlockWriter {
    pub fn new() -> BlockWriter {
        BlockWriter {
            ids: Vec::new(),
            ts: Vec::new(),
            vals: Vec::new(),
            sketches: BinaryBuilder::new(),
            min_ts: i64::MAX,
            max_ts: i64::MIN,
        }
    }

    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    fn note(&mut self, id: SeriesId, ts: i64) {
        self.ids.push(id);
        self.ts.push(ts);
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
    }

    pub fn push_scalar(&mut self, id: SeriesId, ts: i64, v: f64) {
        self.note(id, ts);
        self.vals.push(v);
        self.sketches.append_null();
    }

    pub fn push_sketch(&mut self, id: SeriesId, ts: i64, s: &Sketch) {
        self.note(id, ts);
        self.vals.push(0.0);
        self.sketches
            .append_value(postcard::to_allocvec(s).expect("a sketch always serializes"));
    }

    /// Appends a series' points.
    pub fn push_data(&mut self, id: SeriesId, data: &SeriesData) {
        match data {
            SeriesData::Scalars(v) => v.iter().for_each(|(t, x)| self.push_scalar(id, *t, *x)),
            SeriesData::Sketches(v) => v.iter().for_each(|(t, s)| self.push_sketch(id, *t, s)),
        }
    }

    /// Writes the rows to `dir/file` (fsync'd) and describes the file. Nothing is written with no rows.
    pub fn finish(
        mut self,
        dir: &Path,
        file: String,
        block_start: i64,
        lsn: u64,
    ) -> Result<Option<BlockMeta>, StorageError> {
        if self.ids.is_empty() {
            return Ok(None);
        }
        let path = dir.join(&file);
        let (min_series, max_series) = (self.ids[0], *self.ids.last().unwrap());
        let rows = self.ids.len() as u64;
        let (min_ts, max_ts) = (self.min_ts, self.max_ts);
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from(std::mem::take(&mut self.ids))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.ts))),
            Arc::new(Float64Array::from(std::mem::take(&mut self.vals))),
            Arc::new(self.sketches.finish()),
        ];
        let batch = RecordBatch::try_new(schema(), cols).map_err(|e| corrupt(&path, e))?;
        let f = std::fs::File::create(&path).map_err(|e| io_err(&path, e))?;
        let mut w = ArrowWriter::try_new(f, schema(), Some(writer_props()))
            .map_err(|e| corrupt(&path, e))?;
        w.write(&batch).map_err(|e| corrupt(&path, e))?;
        let f = w.into_inner().map_err(|e| corrupt(&path, e))?;
        f.sync_all().map_err(|e| io_err(&path, e))?;
        let bytes = f.metadata().map_err(|e| io_err(&path, e))?.len();
        Ok(Some(BlockMeta {
            file,
            block_start,
            min_ts,
            max_ts,
            min_series,
            max_series,
            rows,
            bytes,
            lsn,
        }))
    }
}

/// Splits a head into one writer per block, rows sorted by series id then timestamp.
pub fn head_to_writers(head: &Head, block_secs: i64) -> BTreeMap<i64, BlockWriter> {
    let mut out: BTreeMap<i64, BlockWriter> = BTreeMap::new();
    for id in head.series_ids() {
        match head.column(id).expect("listed series") {
            Column::Scalars { ts, vals } => {
                for (t, v) in ts.iter().zip(vals) {
                    out.entry(block_start(*t, block_secs))
                        .or_default()
                        .push_scalar(id, *t, *v);
                }
            }
            Column::Sketches(pts) => {
                for (t, s) in pts {
                    out.entry(block_start(*t, block_secs))
                        .or_default()
                        .push_sketch(id, *t, s);
                }
            }
        }
    }
    out
}

/// An empty list of points of the shape a series' first row has.
fn new_data(sketch: bool) -> SeriesData {
    if sketch {
        SeriesData::Sketches(Vec::new())
    } else {
        SeriesData::Scalars(Vec::new())
    }
}

/// Reads the points in `[from, to)` of the series in `ids` (every series when None) from one file, skipping
/// row groups whose `series_id` or `ts` statistics exclude them.
pub fn read_file(
    path: &Path,
    ids: Option<&RoaringBitmap>,
    from: i64,
    to: i64,
) -> Result<HashMap<SeriesId, SeriesData>, StorageError> {
    let mut out = HashMap::new();
    read_impl(path, None, ids, from, to, &new_data, &mut out)?;
    Ok(out)
}

/// Reads the rows in `[from, to)` of the series in `ids` into `out`, in row order; a series' entry is made by
/// `make(holds_sketches)` at its first row in the range.
fn read_impl<C: Collect>(
    path: &Path,
    footer: Option<&OnceLock<ArrowReaderMetadata>>,
    ids: Option<&RoaringBitmap>,
    from: i64,
    to: i64,
    make: &dyn Fn(bool) -> C,
    out: &mut HashMap<SeriesId, C>,
) -> Result<(), StorageError> {
    let f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let meta = match footer.and_then(|c| c.get()) {
        Some(m) => m.clone(),
        None => {
            let m = ArrowReaderMetadata::load(&f, ArrowReaderOptions::default())
                .map_err(|e| corrupt(path, e))?;
            if let Some(c) = footer {
                let _ = c.set(m.clone());
            }
            m
        }
    };
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(f, meta);
    let (min_id, max_id) = match ids {
        Some(ids) => match (ids.min(), ids.max()) {
            (Some(a), Some(b)) => (a, b),
            _ => return Ok(()),
        },
        None => (0, u32::MAX),
    };
    let mut groups = Vec::new();
    for (i, rg) in builder.metadata().row_groups().iter().enumerate() {
        let keep_ids = match rg.column(0).statistics() {
            Some(Statistics::Int32(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(lo), Some(hi)) => {
                    let (lo, hi) = (*lo as u32, *hi as u32);
                    lo <= max_id
                        && hi >= min_id
                        && ids.is_none_or(|ids| ids.range_cardinality(lo..=hi) > 0)
                }
                _ => true,
            },
            _ => true,
        };
        let keep_ts = match rg.column(1).statistics() {
            Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(lo), Some(hi)) => *lo < to && *hi >= from,
                _ => true,
            },
            _ => true,
        };
        if keep_ids && keep_ts {
            groups.push(i);
        }
    }
    if groups.is_empty() {
        return Ok(());
    }
    let reader = builder
        .with_row_groups(groups)
        .with_batch_size(16 * 1024)
        .build()
        .map_err(|e| corrupt(path, e))?;
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(path, e))?;
        let sid = batch
            .column(0)
            .as_any()
            .downcast_ref::<UInt32Array>()
            .ok_or_else(|| corrupt(path, "series_id"))?;
        let ts = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| corrupt(path, "ts"))?;
        let val = batch
            .column(2)
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| corrupt(path, "value"))?;
        let sk = batch
            .column(3)
            .as_any()
            .downcast_ref::<BinaryArray>()
            .ok_or_else(|| corrupt(path, "sketch"))?;
        // Rows are sorted by series id: take each run of one id at once, so the id filter and the map lookup
        // happen once per run, not once per row (the loop stays correct for unsorted rows too).
        let n = batch.num_rows();
        let mut start = 0;
        while start < n {
            let id = sid.value(start);
            let mut end = start + 1;
            while end < n && sid.value(end) == id {
                end += 1;
            }
            let run = start..end;
            start = end;
            if ids.is_some_and(|ids| !ids.contains(id)) {
                continue;
            }
            let mixed = || corrupt(path, format!("series {id} mixes shapes"));
            // The entry is made at the first row in the time range, so a series with none gets no entry.
            let in_range = |r: usize| (from..to).contains(&ts.value(r));
            let Some(first) = run.clone().find(|r| in_range(*r)) else {
                continue;
            };
            let data = out.entry(id).or_insert_with(|| make(!sk.is_null(first)));
            // A batch without sketches: take the run's in-range rows straight from the column slices.
            if sk.null_count() == n {
                let (t, x) = (&ts.values()[first..run.end], &val.values()[first..run.end]);
                if !data.push_scalars(t, x, from..to) {
                    return Err(mixed());
                }
                continue;
            }
            for r in first..run.end {
                let t = ts.value(r);
                if !in_range(r) {
                    continue;
                }
                let ok = if sk.is_null(r) {
                    data.push_scalars(&[t], &[val.value(r)], from..to)
                } else {
                    let s: Sketch =
                        postcard::from_bytes(sk.value(r)).map_err(|e| corrupt(path, e))?;
                    data.push_sketch(t, s)
                };
                if !ok {
                    return Err(mixed());
                }
            }
        }
    }
    Ok(())
}

/// Merges several files of one block (ordered older to newer) into one writer, with the merge rules of each
/// series' kind (`kind_of`).
pub fn merge_files(
    files: &[Arc<BlockFile>],
    kind_of: impl Fn(SeriesId) -> MetricKind,
) -> Result<BlockWriter, StorageError> {
    let mut all: BTreeMap<SeriesId, SeriesData> = BTreeMap::new();
    for f in files {
        for (id, data) in f.read(None, i64::MIN, i64::MAX)? {
            let merged = match all.remove(&id) {
                Some(old) => merge_data(kind_of(id), old, data),
                None => data,
            };
            all.insert(id, merged);
        }
    }
    let mut w = BlockWriter::new();
    for (id, data) in &all {
        w.push_data(*id, data);
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_prune() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = BlockWriter::new();
        // 200k rows: several row groups.
        for id in 0..200u32 {
            for i in 0..1000i64 {
                w.push_scalar(id, 1000 + i * 10, (id as i64 * i) as f64);
            }
        }
        let mut s = Sketch::new();
        s.add(4.0);
        w.push_sketch(300, 1500, &s);
        let meta = w
            .finish(dir.path(), "b.parquet".into(), 0, 7)
            .unwrap()
            .unwrap();
        assert_eq!(
            (meta.min_series, meta.max_series, meta.rows),
            (0, 300, 200_001)
        );
        assert_eq!((meta.min_ts, meta.max_ts), (1000, 10990));
        let mut ids = RoaringBitmap::new();
        ids.insert(5);
        ids.insert(300);
        let got = read_file(&dir.path().join("b.parquet"), Some(&ids), 1010, 1040).unwrap();
        assert_eq!(
            got[&5],
            SeriesData::Scalars(vec![(1010, 5.0), (1020, 10.0), (1030, 15.0)])
        );
        assert!(!got.contains_key(&6));
        let all = read_file(&dir.path().join("b.parquet"), None, 0, i64::MAX).unwrap();
        assert_eq!(all.len(), 201);
        assert_eq!(all[&300], SeriesData::Sketches(vec![(1500, s)]));
        let empty = read_file(
            &dir.path().join("b.parquet"),
            Some(&RoaringBitmap::new()),
            0,
            i64::MAX,
        )
        .unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn obsolete_file_deleted_on_last_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = BlockWriter::new();
        w.push_scalar(1, 10, 1.0);
        let meta = w
            .finish(dir.path(), "x.parquet".into(), 0, 1)
            .unwrap()
            .unwrap();
        let f = Arc::new(BlockFile::new(meta, dir.path()));
        let reader = f.clone();
        f.mark_obsolete();
        drop(f);
        assert!(dir.path().join("x.parquet").exists());
        drop(reader);
        assert!(!dir.path().join("x.parquet").exists());
    }

    /// Writes a head of `series` × `points` gauge samples (10 s apart, from `gen(series, i)`) as blocks and
    /// returns the bytes on disk per sample.
    fn bytes_per_sample(series: u32, points: i64, gen: impl Fn(u32, i64) -> f64) -> f64 {
        let dir = tempfile::tempdir().unwrap();
        let mut head = Head::new();
        let t0 = 250_000 * 7200; // a block boundary
        for id in 0..series {
            for i in 0..points {
                head.insert(
                    id,
                    MetricKind::Gauge,
                    t0 + i * 10,
                    crate::head::PointValue::Scalar(gen(id, i)),
                );
            }
        }
        let mut bytes = 0;
        for (n, (start, w)) in head_to_writers(&head, 7200).into_iter().enumerate() {
            bytes += w
                .finish(dir.path(), format!("{n}.parquet"), start, 1)
                .unwrap()
                .unwrap()
                .bytes;
        }
        bytes as f64 / (series as i64 * points) as f64
    }

    /// A deterministic hash of (series, step) in [0, 1).
    fn noise(id: u32, i: i64) -> f64 {
        let mut x = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (i as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        x ^= x >> 32;
        x = x.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        x ^= x >> 29;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn bytes_per_sample_1k_series_one_day() {
        // 1k series × 8640 points (one day at 10 s): a third each of rarely-changing gauges (up, limits), small
        // integer gauges (connections, queue depth), and two-decimal gauges (cpu %, load).
        let gen = |id: u32, i: i64| match id % 3 {
            0 => ((i / 720) % 3) as f64 + id as f64,
            1 => {
                (50.0 + 20.0 * ((i as f64 / 300.0 + id as f64).sin()) + 5.0 * noise(id, i)).round()
            }
            _ => {
                let v = 30.0 + 25.0 * ((i as f64 / 500.0 + id as f64).sin()) + 3.0 * noise(id, i);
                (v * 100.0).round() / 100.0
            }
        };
        let mixed = bytes_per_sample(1000, 8640, gen);
        let two_decimals = bytes_per_sample(100, 8640, |id, i| gen(id * 3 + 2, i));
        let constant = bytes_per_sample(100, 8640, |id, _| id as f64);
        let random = bytes_per_sample(100, 8640, |id, i| noise(id, i) * 1e3);
        println!(
            "bytes per gauge sample on disk: mixed {mixed:.3}, two-decimal {two_decimals:.3}, constant \
             {constant:.3}, full-precision random {random:.3}"
        );
        assert!(mixed < 1.4, "mixed gauges take {mixed:.3} bytes per sample");
        assert!(
            two_decimals < 2.5,
            "two-decimal gauges take {two_decimals:.3} bytes per sample"
        );
        assert!(
            constant < 0.2,
            "constant gauges take {constant:.3} bytes per sample"
        );
        assert!(
            random < 8.0,
            "random gauges take {random:.3} bytes per sample"
        );
    }
}

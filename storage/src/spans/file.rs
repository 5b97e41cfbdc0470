//! Parquet files of spans: the schema, the writer (rows sorted by trace id then start), and a file as readers
//! see it, with what makes a lookup by trace id cheap.
//!
//! Columns: `trace_id` FixedSizeBinary(16) (dictionary; page-level statistics, so the page index brackets an
//! id to its pages; a bloom filter per row group), `span_id`/`parent_id` FixedSizeBinary(8), `service`,
//! `name`, `resource` (dictionary), `start_ns` Int64 (delta-binary-packed, row-group statistics for scans),
//! `duration_ns` Int64, `kind` UInt8 (the OTLP number), `error` Boolean, `status_message`, `host`, `env`,
//! `version`, `attributes` and `resource_attributes` (JSON text; the latter is shared by every span of a
//! resource, so its dictionary makes it nearly free), `events` and `links` (postcard of the model's
//! `Vec<SpanEvent>` / `Vec<SpanLink>`, null when empty). zstd; row groups of `row_group_spans` rows; data
//! pages of at most [`PAGE_ROWS`] rows.
//!
//! A lookup by trace id ([`SpanFile::trace`]) uses, in order: the per-row-group min/max trace id kept in
//! memory (rows are sorted, so row groups cover disjoint id ranges), the row group's bloom filter (read from
//! the file: a few KiB), then the page index of `trace_id` to select only the pages whose range holds the id,
//! which the reader fetches and decodes for every column (the offset index lets it skip the others).

use super::head::RawParts;
use crate::wal::Lsn;
use crate::StorageError;
use arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, BooleanArray, BooleanBuilder,
    FixedSizeBinaryArray, FixedSizeBinaryBuilder, Int64Array, Int64Builder, StringArray,
    StringBuilder, UInt8Array, UInt8Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{ColumnChunkMask, PageIndexPolicy, ParquetMetaData, SortingColumn};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnPath;
use serde_json::{Map, Value};
use sightline_model::{SpanEvent, SpanKind, SpanLink, SpanRecord};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Rows per data page at most: a trace lookup decodes about this many rows per column of a file that holds
/// the trace.
pub const PAGE_ROWS: usize = 1024;
/// zstd level of span files. On spans of 20 attributes level 1 was faster than 3 and no larger (40.3 against
/// 42.5 bytes per span: the pages are small).
const ZSTD_LEVEL: i32 = 1;
/// Target false-positive rate of the per-row-group bloom filters on `trace_id`.
const BLOOM_FPP: f64 = 0.01;

/// Column numbers.
const C_TRACE: usize = 0;
const C_START: usize = 6;

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(crate) fn corrupt(path: &Path, detail: impl ToString) -> StorageError {
    StorageError::Corrupt {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

/// The Arrow schema of span files.
pub(crate) fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("trace_id", DataType::FixedSizeBinary(16), false),
                Field::new("span_id", DataType::FixedSizeBinary(8), false),
                Field::new("parent_id", DataType::FixedSizeBinary(8), true),
                Field::new("service", DataType::Utf8, false),
                Field::new("name", DataType::Utf8, false),
                Field::new("resource", DataType::Utf8, false),
                Field::new("start_ns", DataType::Int64, false),
                Field::new("duration_ns", DataType::Int64, false),
                Field::new("kind", DataType::UInt8, false),
                Field::new("error", DataType::Boolean, false),
                Field::new("status_message", DataType::Utf8, false),
                Field::new("host", DataType::Utf8, true),
                Field::new("env", DataType::Utf8, true),
                Field::new("version", DataType::Utf8, true),
                Field::new("attributes", DataType::Utf8, false),
                Field::new("resource_attributes", DataType::Utf8, false),
                Field::new("events", DataType::Binary, true),
                Field::new("links", DataType::Binary, true),
            ]))
        })
        .clone()
}

fn writer_props(row_group_spans: usize) -> WriterProperties {
    let col = |c: &str| ColumnPath::from(c);
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(ZSTD_LEVEL).expect("valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(row_group_spans))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_column_statistics_enabled(col("trace_id"), EnabledStatistics::Page)
        .set_column_statistics_enabled(col("start_ns"), EnabledStatistics::Chunk)
        .set_column_bloom_filter_enabled(col("trace_id"), true)
        .set_column_bloom_filter_fpp(col("trace_id"), BLOOM_FPP)
        .set_column_bloom_filter_max_ndv(col("trace_id"), row_group_spans as u64)
        .set_column_encoding(col("start_ns"), Encoding::DELTA_BINARY_PACKED)
        .set_sorting_columns(Some(vec![
            SortingColumn {
                column_idx: C_TRACE as i32,
                descending: false,
                nulls_first: false,
            },
            SortingColumn {
                column_idx: C_START as i32,
                descending: false,
                nulls_first: false,
            },
        ]));
    // Mostly distinct per span: a dictionary would only cost.
    for c in [
        "span_id",
        "parent_id",
        "start_ns",
        "duration_ns",
        "attributes",
        "events",
        "links",
    ] {
        b = b.set_column_dictionary_enabled(col(c), false);
    }
    b.build()
}

/// Column builders for one row group's worth of spans.
struct Builders {
    trace: FixedSizeBinaryBuilder,
    span: FixedSizeBinaryBuilder,
    parent: FixedSizeBinaryBuilder,
    service: StringBuilder,
    name: StringBuilder,
    resource: StringBuilder,
    start: Int64Builder,
    duration: Int64Builder,
    kind: UInt8Builder,
    error: BooleanBuilder,
    status: StringBuilder,
    host: StringBuilder,
    env: StringBuilder,
    version: StringBuilder,
    attrs: StringBuilder,
    res_attrs: StringBuilder,
    events: BinaryBuilder,
    links: BinaryBuilder,
    rows: usize,
}

impl Builders {
    fn new(cap: usize) -> Builders {
        let s = |bytes: usize| StringBuilder::with_capacity(cap, cap * bytes);
        Builders {
            trace: FixedSizeBinaryBuilder::with_capacity(cap, 16),
            span: FixedSizeBinaryBuilder::with_capacity(cap, 8),
            parent: FixedSizeBinaryBuilder::with_capacity(cap, 8),
            service: s(16),
            name: s(24),
            resource: s(32),
            start: Int64Builder::with_capacity(cap),
            duration: Int64Builder::with_capacity(cap),
            kind: UInt8Builder::with_capacity(cap),
            error: BooleanBuilder::with_capacity(cap),
            status: s(0),
            host: s(16),
            env: s(8),
            version: s(8),
            attrs: s(512),
            res_attrs: s(256),
            events: BinaryBuilder::with_capacity(cap, 0),
            links: BinaryBuilder::with_capacity(cap, 0),
            rows: 0,
        }
    }

    fn push(&mut self, p: &RawParts) {
        let s = &p.span;
        let fixed = "fixed-size ids have the builder's width";
        self.trace.append_value(s.trace_id).expect(fixed);
        self.span.append_value(s.span_id).expect(fixed);
        match s.parent_id {
            Some(id) => self.parent.append_value(id).expect(fixed),
            None => self.parent.append_null(),
        }
        self.service.append_value(s.service);
        self.name.append_value(s.name);
        self.resource.append_value(s.resource);
        self.start.append_value(s.start_ns);
        self.duration.append_value(s.duration_ns);
        self.kind.append_value(s.kind.as_u8());
        self.error.append_value(s.error);
        self.status.append_value(s.status_message);
        self.host.append_option(s.host);
        self.env.append_option(s.env);
        self.version.append_option(s.version);
        self.attrs.append_value(s.attributes);
        self.res_attrs.append_value(s.resource_attributes);
        // An empty list encodes as its length, one zero byte.
        let non_empty = |b: &[u8]| (b != [0]).then_some(b.to_vec());
        self.events.append_option(non_empty(p.events));
        self.links.append_option(non_empty(p.links));
        self.rows += 1;
    }

    fn finish(&mut self) -> RecordBatch {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.trace.finish()),
            Arc::new(self.span.finish()),
            Arc::new(self.parent.finish()),
            Arc::new(self.service.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.resource.finish()),
            Arc::new(self.start.finish()),
            Arc::new(self.duration.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.error.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.env.finish()),
            Arc::new(self.version.finish()),
            Arc::new(self.attrs.finish()),
            Arc::new(self.res_attrs.finish()),
            Arc::new(self.events.finish()),
            Arc::new(self.links.finish()),
        ];
        self.rows = 0;
        RecordBatch::try_new(schema(), cols).expect("columns match the schema")
    }
}

/// Writes spans (encoded, already sorted by trace id then start) to `path`: a temporary file, fsync'd, then
/// renamed. The caller fsyncs the directory. Returns the file's size.
pub(crate) fn write_file<'a>(
    path: &Path,
    spans: impl Iterator<Item = &'a [u8]>,
    row_group_spans: usize,
) -> Result<u64, StorageError> {
    let row_group_spans = row_group_spans.max(1);
    let tmp = path.with_extension("parquet.tmp");
    let res = (|| {
        let f = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        let mut w = ArrowWriter::try_new(f, schema(), Some(writer_props(row_group_spans)))
            .map_err(|e| corrupt(&tmp, e))?;
        let mut b = Builders::new(row_group_spans.min(64 * 1024));
        for bytes in spans {
            let (parts, rest) = super::head::split_span(bytes).map_err(|e| corrupt(&tmp, e))?;
            if !rest.is_empty() {
                return Err(corrupt(&tmp, "trailing bytes after a span in the head"));
            }
            b.push(&parts);
            if b.rows >= row_group_spans {
                w.write(&b.finish()).map_err(|e| corrupt(&tmp, e))?;
            }
        }
        if b.rows > 0 {
            w.write(&b.finish()).map_err(|e| corrupt(&tmp, e))?;
        }
        let f = w.into_inner().map_err(|e| corrupt(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        let bytes = f.metadata().map_err(|e| io_err(&tmp, e))?.len();
        std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
        Ok(bytes)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// What the store keeps in memory of one row group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Group {
    pub min_trace: [u8; 16],
    pub max_trace: [u8; 16],
    pub min_start: i64,
    pub max_start: i64,
}

impl Group {
    pub fn may_hold(&self, trace_id: &[u8; 16]) -> bool {
        self.min_trace <= *trace_id && *trace_id <= self.max_trace
    }
}

/// Counters a lookup updates.
pub(crate) struct LookupStats<'a> {
    pub row_groups_read: &'a prometheus_client::metrics::counter::Counter,
    pub bloom_skips: &'a prometheus_client::metrics::counter::Counter,
}

/// One span file in use: its footer (with the page index) and row-group ranges, parsed once at open or
/// flush. Once expired it is marked obsolete and deleted when the last reader holding it lets go.
#[derive(Debug)]
pub(crate) struct SpanFile {
    pub partition: i64,
    /// Flush LSN (the file name).
    pub lsn: Lsn,
    pub path: PathBuf,
    pub bytes: u64,
    pub rows: u64,
    meta: ArrowReaderMetadata,
    pub groups: Vec<Group>,
    obsolete: AtomicBool,
}

impl Drop for SpanFile {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::SeqCst) {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(
                    "deleting expired span file {} failed: {e}",
                    self.path.display()
                );
            }
            // The partition directory goes with its last file (fails harmlessly while others remain).
            if let Some(dir) = self.path.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

fn fixed16(b: Option<&[u8]>, default: [u8; 16]) -> [u8; 16] {
    b.and_then(|b| <[u8; 16]>::try_from(b).ok())
        .unwrap_or(default)
}

impl SpanFile {
    /// Opens a file: parses its footer and page index and checks its schema.
    pub fn load(path: &Path, partition: i64, lsn: Lsn) -> Result<SpanFile, StorageError> {
        let f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
        let bytes = f.metadata().map_err(|e| io_err(path, e))?.len();
        // The column index (per-page min/max) only of trace_id; the offset index of every column, so reads of
        // a few rows fetch only their pages.
        let opts = ArrowReaderOptions::new()
            .with_page_index_policy(PageIndexPolicy::Optional)
            .with_column_index_mask(ColumnChunkMask::columns([C_TRACE]));
        let meta = ArrowReaderMetadata::load(&f, opts).map_err(|e| corrupt(path, e))?;
        let want = schema();
        let names = |s: &Schema| {
            s.fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().clone()))
                .collect::<Vec<_>>()
        };
        if names(meta.schema()) != names(&want) {
            return Err(corrupt(path, "not a span file (unexpected columns)"));
        }
        let md = meta.metadata();
        let mut groups = Vec::with_capacity(md.num_row_groups());
        let mut rows = 0;
        for rg in md.row_groups() {
            rows += rg.num_rows() as u64;
            let (min_trace, max_trace) = match rg.column(C_TRACE).statistics() {
                Some(Statistics::FixedLenByteArray(s)) => (
                    fixed16(s.min_bytes_opt(), [0; 16]),
                    fixed16(s.max_bytes_opt(), [0xff; 16]),
                ),
                _ => ([0; 16], [0xff; 16]),
            };
            let (min_start, max_start) = match rg.column(C_START).statistics() {
                Some(Statistics::Int64(s)) => (
                    s.min_opt().copied().unwrap_or(i64::MIN),
                    s.max_opt().copied().unwrap_or(i64::MAX),
                ),
                _ => (i64::MIN, i64::MAX),
            };
            groups.push(Group {
                min_trace,
                max_trace,
                min_start,
                max_start,
            });
        }
        Ok(SpanFile {
            partition,
            lsn,
            path: path.to_path_buf(),
            bytes,
            rows,
            meta,
            groups,
            obsolete: AtomicBool::new(false),
        })
    }

    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::SeqCst);
    }

    /// Row groups whose trace id range may hold `trace_id`.
    pub fn candidate_groups(&self, trace_id: &[u8; 16]) -> Vec<usize> {
        self.groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.may_hold(trace_id))
            .map(|(i, _)| i)
            .collect()
    }

    /// Test hook: rows the page index selects in row group `rg` for a lookup of `trace_id`.
    #[cfg(test)]
    pub fn selected_rows(&self, rg: usize, trace_id: &[u8; 16]) -> Option<usize> {
        page_selection(self.meta.metadata(), rg, trace_id).map(|s| s.row_count())
    }

    /// The spans of one trace in this file.
    pub fn trace(
        &self,
        trace_id: &[u8; 16],
        stats: &LookupStats,
    ) -> Result<Vec<SpanRecord>, StorageError> {
        let groups = self.candidate_groups(trace_id);
        let mut out = Vec::new();
        if groups.is_empty() {
            return Ok(out);
        }
        let path = &self.path;
        let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
        for rg in groups {
            let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
                file.try_clone().map_err(|e| io_err(path, e))?,
                self.meta.clone(),
            );
            if let Ok(Some(bloom)) = builder.get_row_group_column_bloom_filter(rg, C_TRACE) {
                if !bloom.check(&trace_id[..]) {
                    stats.bloom_skips.inc();
                    continue;
                }
            }
            let builder = builder.with_row_groups(vec![rg]);
            let builder = match page_selection(self.meta.metadata(), rg, trace_id) {
                Some(sel) if !sel.selects_any() => continue,
                Some(sel) => builder.with_row_selection(sel),
                None => builder,
            };
            stats.row_groups_read.inc();
            let reader = builder.build().map_err(|e| corrupt(path, e))?;
            let mut cache = ResourceCache::default();
            for batch in reader {
                let batch = batch.map_err(|e| corrupt(path, e))?;
                let cols = Cols::new(&batch, path)?;
                for i in 0..batch.num_rows() {
                    if cols.trace.value(i) == trace_id {
                        out.push(cols.record(i, &mut cache, path)?);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Visits the spans of this file that start in `[from_ns, to_ns)`; `Break` once `visit` breaks.
    pub fn scan(
        &self,
        from_ns: i64,
        to_ns: i64,
        visit: &mut dyn FnMut(&SpanRecord) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, StorageError> {
        let groups: Vec<usize> = self
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.min_start < to_ns && g.max_start >= from_ns)
            .map(|(i, _)| i)
            .collect();
        if groups.is_empty() {
            return Ok(ControlFlow::Continue(()));
        }
        let path = &self.path;
        let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.meta.clone())
            .with_row_groups(groups)
            .with_batch_size(8 * 1024)
            .build()
            .map_err(|e| corrupt(path, e))?;
        let mut cache = ResourceCache::default();
        for batch in reader {
            let batch = batch.map_err(|e| corrupt(path, e))?;
            let cols = Cols::new(&batch, path)?;
            for i in 0..batch.num_rows() {
                let start = cols.start.value(i);
                if start < from_ns || start >= to_ns {
                    continue;
                }
                if visit(&cols.record(i, &mut cache, path)?).is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
        }
        Ok(ControlFlow::Continue(()))
    }
}

/// The rows of row group `rg` in pages whose `trace_id` range holds the id, from the page index; `None`
/// without a page index (the whole row group is read).
pub(crate) fn page_selection(
    md: &ParquetMetaData,
    rg: usize,
    trace_id: &[u8; 16],
) -> Option<RowSelection> {
    let pi = md.page_index()?;
    let ColumnIndexMetaData::FIXED_LEN_BYTE_ARRAY(ci) = pi.column_index(rg, C_TRACE)? else {
        return None;
    };
    let locs = pi.page_locations(rg, C_TRACE)?;
    let rows = md.row_group(rg).num_rows() as usize;
    if locs.is_empty() || ci.min_values_iter().count() != locs.len() {
        return None;
    }
    let mut ranges = Vec::new();
    for (p, loc) in locs.iter().enumerate() {
        let start = loc.first_row_index as usize;
        let end = locs
            .get(p + 1)
            .map_or(rows, |next| next.first_row_index as usize);
        let lo_ok = ci.min_value(p).is_none_or(|m| m <= &trace_id[..]);
        let hi_ok = ci.max_value(p).is_none_or(|m| &trace_id[..] <= m);
        if lo_ok && hi_ok {
            ranges.push(start..end);
        }
    }
    Some(RowSelection::from_consecutive_ranges(
        ranges.into_iter(),
        rows,
    ))
}

/// The last resource attributes parsed: consecutive rows often share them.
#[derive(Default)]
struct ResourceCache {
    text: String,
    map: Map<String, Value>,
}

/// The columns of a batch read from a span file.
struct Cols<'a> {
    trace: &'a FixedSizeBinaryArray,
    span: &'a FixedSizeBinaryArray,
    parent: &'a FixedSizeBinaryArray,
    service: &'a StringArray,
    name: &'a StringArray,
    resource: &'a StringArray,
    start: &'a Int64Array,
    duration: &'a Int64Array,
    kind: &'a UInt8Array,
    error: &'a BooleanArray,
    status: &'a StringArray,
    host: &'a StringArray,
    env: &'a StringArray,
    version: &'a StringArray,
    attrs: &'a StringArray,
    res_attrs: &'a StringArray,
    events: &'a BinaryArray,
    links: &'a BinaryArray,
}

fn col<'a, T: 'static>(b: &'a RecordBatch, i: usize, path: &Path) -> Result<&'a T, StorageError> {
    b.column(i)
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| corrupt(path, format!("column {i} has an unexpected type")))
}

fn id<const N: usize>(a: &FixedSizeBinaryArray, i: usize) -> Option<[u8; N]> {
    a.value(i).try_into().ok()
}

fn opt_str(a: &StringArray, i: usize) -> Option<String> {
    a.is_valid(i).then(|| a.value(i).to_string())
}

impl<'a> Cols<'a> {
    fn new(b: &'a RecordBatch, path: &Path) -> Result<Cols<'a>, StorageError> {
        Ok(Cols {
            trace: col(b, 0, path)?,
            span: col(b, 1, path)?,
            parent: col(b, 2, path)?,
            service: col(b, 3, path)?,
            name: col(b, 4, path)?,
            resource: col(b, 5, path)?,
            start: col(b, 6, path)?,
            duration: col(b, 7, path)?,
            kind: col(b, 8, path)?,
            error: col(b, 9, path)?,
            status: col(b, 10, path)?,
            host: col(b, 11, path)?,
            env: col(b, 12, path)?,
            version: col(b, 13, path)?,
            attrs: col(b, 14, path)?,
            res_attrs: col(b, 15, path)?,
            events: col(b, 16, path)?,
            links: col(b, 17, path)?,
        })
    }

    fn record(
        &self,
        i: usize,
        cache: &mut ResourceCache,
        path: &Path,
    ) -> Result<SpanRecord, StorageError> {
        let bad = |what: &str| corrupt(path, format!("bad {what} in row {i}"));
        let attributes: Map<String, Value> =
            serde_json::from_str(self.attrs.value(i)).map_err(|_| bad("attributes"))?;
        let res_text = self.res_attrs.value(i);
        if res_text != cache.text {
            cache.map = serde_json::from_str(res_text).map_err(|_| bad("resource attributes"))?;
            cache.text = res_text.to_string();
        }
        let events: Vec<SpanEvent> = if self.events.is_valid(i) {
            postcard::from_bytes(self.events.value(i)).map_err(|_| bad("events"))?
        } else {
            Vec::new()
        };
        let links: Vec<SpanLink> = if self.links.is_valid(i) {
            postcard::from_bytes(self.links.value(i)).map_err(|_| bad("links"))?
        } else {
            Vec::new()
        };
        Ok(SpanRecord {
            trace_id: id(self.trace, i).ok_or_else(|| bad("trace id"))?,
            span_id: id(self.span, i).ok_or_else(|| bad("span id"))?,
            parent_id: if self.parent.is_valid(i) {
                Some(id(self.parent, i).ok_or_else(|| bad("parent id"))?)
            } else {
                None
            },
            service: self.service.value(i).to_string(),
            name: self.name.value(i).to_string(),
            resource: self.resource.value(i).to_string(),
            start_ns: self.start.value(i),
            duration_ns: self.duration.value(i),
            kind: SpanKind::from_otlp(i32::from(self.kind.value(i))),
            error: self.error.value(i),
            status_message: self.status.value(i).to_string(),
            host: opt_str(self.host, i),
            env: opt_str(self.env, i),
            version: opt_str(self.version, i),
            attributes,
            resource_attributes: cache.map.clone(),
            events,
            links,
        })
    }
}

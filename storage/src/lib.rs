//! Sightline storage: the write-ahead log, the series index, the in-memory head and Parquet blocks for
//! metrics; the log store (the same write-ahead log in front of tantivy partitions).
//! `MetricReader` is the seam the query tier reads through.

pub mod block;
pub mod config;
pub mod dashboards;
pub mod downtimes;
pub mod head;
pub mod index;
pub mod logs;
pub mod monitor_states;
pub mod monitors;
pub mod rollup;
pub mod spans;
pub mod store;
pub mod wal;
pub mod webhooks;

pub use config::StorageConfig;
pub use dashboards::{DashboardDoc, DashboardRepo, DashboardStore, MemoryDashboards};
pub use downtimes::{DowntimeDoc, DowntimeRepo, DowntimeStore, MemoryDowntimes};
pub use head::{Head, MemMetricStore};
pub use index::{IndexError, SeriesIndex};
pub use logs::aggregate::{
    AggBucket, Compute, ComputeValue, GroupBy, GroupSort, LogAggregate, Measure,
};
pub use logs::{
    Cursor, LogHit, LogPage, LogReader, LogSearch, LogStore, LogStoreConfig, SortOrder,
    WAL_KIND_LOGS,
};
pub use monitor_states::{MemoryMonitorStates, MonitorStateRepo, MonitorStateStore, MonitorStates};
pub use monitors::{MemoryMonitors, MonitorDoc, MonitorId, MonitorRepo, MonitorStore};
pub use rollup::{Buckets, Fold, Folded};
pub use spans::{
    MemorySpans, SpanReader, SpanStore, SpanStoreConfig, SpanStoreMetrics, WAL_KIND_SPANS,
};
pub use store::{FlushStats, MetricStore, StorageMetrics, WAL_KIND_METRICS};
pub use webhooks::{
    MemoryWebhooks, Webhook, WebhookChange, WebhookEncoding, WebhookRepo, WebhookStore,
};

use sightline_model::{MetricKind, SeriesKey, Sketch};

/// Dense id of a series, assigned by the series index.
pub type SeriesId = u32;

/// What the index knows of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesMeta {
    pub id: SeriesId,
    pub key: SeriesKey,
    pub kind: MetricKind,
    /// Interval (seconds) of the series' points, as last written (10 for DogStatsD buckets; 0 unknown).
    pub interval: u32,
}

/// The points of one series in a time range, sorted by timestamp (unix seconds), one per timestamp.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesData {
    Scalars(Vec<(i64, f64)>),
    Sketches(Vec<(i64, Sketch)>),
}

/// Read access to the metric store, used by the query tier (and by unit tests through an in-memory store).
/// Calls may do blocking I/O: async callers run them on a blocking thread.
pub trait MetricReader: Send + Sync {
    /// Names of metrics with a point at or after `since` (unix seconds), sorted.
    fn metric_names(&self, since: i64) -> Vec<String>;
    /// Every series of a metric (empty if the metric is unknown).
    fn series_for_metric(&self, name: &str) -> Vec<SeriesMeta>;
    /// Every distinct tag seen on a metric's series, sorted.
    fn tags_for_metric(&self, name: &str) -> Vec<String>;
    /// Points of each series in `[from, to)`, in the order of `ids`. Counts at equal timestamps are already
    /// summed, gauges last-written, sketches merged.
    fn read(&self, ids: &[SeriesId], from: i64, to: i64) -> Result<Vec<SeriesData>, StorageError>;
    /// Like [`MetricReader::read`] over `[b.start, b.end())`, with each series' scalar points folded per bucket
    /// of `b` in time order (after the merge rules), so that a rollup need not hold every raw point.
    fn read_folded(&self, ids: &[SeriesId], b: Buckets) -> Result<Vec<Folded>, StorageError> {
        rollup::fold_all(self.read(ids, b.start, b.end()), b)
    }
}

/// Storage's error type.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("corrupt data in {path}: {detail}")]
    Corrupt { path: String, detail: String },
    #[error("unknown series id {0}")]
    UnknownSeries(SeriesId),
    #[error("storage is overloaded: {0}")]
    Overloaded(String),
    #[error("storage is shut down")]
    Closed,
    /// A search that cannot run as written (the message names the term and its position).
    #[error("{0}")]
    BadQuery(String),
}

impl StorageError {
    pub fn kind(&self) -> sightline_model::ErrorKind {
        use sightline_model::ErrorKind;
        match self {
            StorageError::Overloaded(_) | StorageError::Closed => ErrorKind::Overloaded,
            StorageError::UnknownSeries(_) => ErrorKind::NotFound,
            StorageError::BadQuery(_) => ErrorKind::BadInput,
            StorageError::Io { .. } | StorageError::Corrupt { .. } => ErrorKind::Internal,
        }
    }
}

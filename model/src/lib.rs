//! Sightline's data model: tags, series keys, metric points and batches, sketches, limits, and the
//! ingest→storage seam (`BatchSink`). Small on purpose: no tokio, arrow or tantivy, so the agent stays light.

pub mod error;
pub mod event;
pub mod limits;
pub mod metric;
pub mod sink;
pub mod sketch;
pub mod tags;

pub use error::ErrorKind;
pub use event::{Event, EventPriority, ServiceCheck};
pub use limits::Limits;
pub use metric::{MetricBatch, MetricKind, MetricPoint, SeriesKey, Value, MAX_UNIX_SECS};
pub use sink::{BatchSink, MemorySink, SinkError, WriteOutcome};
pub use sketch::Sketch;
pub use tags::{normalize_tag, TagError, TagSet};

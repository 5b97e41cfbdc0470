//! Sightline's data model: tags, series keys, metric points and batches, sketches, log records, limits, and the
//! ingest→storage seams (`BatchSink`, `LogSink`, `SpanSink`). Small on purpose: no tokio, arrow or tantivy, so the agent stays light.

pub mod error;
pub mod event;
pub mod limits;
pub mod log;
pub mod logquery;
pub mod metric;
pub mod sink;
pub mod sketch;
pub mod span;
pub mod tags;

pub use error::ErrorKind;
pub use event::{Event, EventPriority, ServiceCheck};
pub use limits::Limits;
pub use log::{normalize_status, now_ns, LogBatch, LogRecord, STATUSES};
pub use logquery::{
    CmpOp, Matcher, Number, RangeEnd, SearchExpr, SearchParseError, SearchTerm, Span, Target,
    WildPart,
};
pub use metric::{MetricBatch, MetricKind, MetricPoint, SeriesKey, Value, MAX_UNIX_SECS};
pub use sink::{BatchSink, LogSink, MemorySink, SinkError, SpanSink, WriteOutcome};
pub use sketch::Sketch;
pub use span::{
    hex, parse_hex, red_metric_prefix, SpanBatch, SpanEvent, SpanKind, SpanLink, SpanRecord,
};
pub use tags::{normalize_tag, TagError, TagSet};

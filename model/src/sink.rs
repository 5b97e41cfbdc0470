//! The ingest→storage seams: receivers hand batches to a `BatchSink` (metrics), a `LogSink` (logs) or a
//! `SpanSink` (spans) and learn when they are durable.

use crate::error::ErrorKind;
use crate::log::LogBatch;
use crate::metric::MetricBatch;
use crate::span::SpanBatch;
use async_trait::async_trait;

/// Why a whole batch could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    #[error("storage is overloaded: {0}")]
    Overloaded(String),
    #[error("storage failed: {0}")]
    Io(String),
    #[error("storage is shut down")]
    Closed,
}

impl SinkError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SinkError::Overloaded(_) | SinkError::Closed => ErrorKind::Overloaded,
            SinkError::Io(_) => ErrorKind::Internal,
        }
    }
}

/// What happened to the points of a written batch: points refused by a storage limit (series cardinality)
/// are counted and described here while the rest are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    pub accepted: usize,
    pub rejected: usize,
    /// One message per distinct reason, naming the offending series or limit.
    pub errors: Vec<String>,
}

/// Where receivers send metric batches. `write_metrics` resolves once the accepted points are in the
/// write-ahead log according to the fsync policy, so a receiver may acknowledge its client then.
#[async_trait]
pub trait BatchSink: Send + Sync {
    async fn write_metrics(&self, batch: MetricBatch) -> Result<WriteOutcome, SinkError>;
}

/// Where receivers send log batches. `write_logs` resolves once the records are in the write-ahead log
/// according to the fsync policy.
#[async_trait]
pub trait LogSink: Send + Sync {
    async fn write_logs(&self, batch: LogBatch) -> Result<WriteOutcome, SinkError>;
}

/// Where receivers send span batches. `write_spans` resolves once the spans are in the write-ahead log
/// according to the fsync policy.
#[async_trait]
pub trait SpanSink: Send + Sync {
    async fn write_spans(&self, batch: SpanBatch) -> Result<WriteOutcome, SinkError>;
}

/// A sink that keeps every batch in memory: for unit tests of receivers.
#[derive(Debug, Default)]
pub struct MemorySink {
    pub batches: std::sync::Mutex<Vec<MetricBatch>>,
    pub logs: std::sync::Mutex<Vec<LogBatch>>,
    pub spans: std::sync::Mutex<Vec<SpanBatch>>,
}

#[async_trait]
impl SpanSink for MemorySink {
    async fn write_spans(&self, batch: SpanBatch) -> Result<WriteOutcome, SinkError> {
        let n = batch.len();
        self.spans.lock().expect("memory sink lock").push(batch);
        Ok(WriteOutcome {
            accepted: n,
            ..Default::default()
        })
    }
}

#[async_trait]
impl LogSink for MemorySink {
    async fn write_logs(&self, batch: LogBatch) -> Result<WriteOutcome, SinkError> {
        let n = batch.len();
        self.logs.lock().expect("memory sink lock").push(batch);
        Ok(WriteOutcome {
            accepted: n,
            ..Default::default()
        })
    }
}

#[async_trait]
impl BatchSink for MemorySink {
    async fn write_metrics(&self, batch: MetricBatch) -> Result<WriteOutcome, SinkError> {
        let n = batch.len();
        self.batches.lock().expect("memory sink lock").push(batch);
        Ok(WriteOutcome {
            accepted: n,
            ..Default::default()
        })
    }
}

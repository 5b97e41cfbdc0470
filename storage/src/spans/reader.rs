//! The seam the query tier reads spans through (`SpanReader`), and `MemorySpans`, an in-memory implementation
//! for unit tests of the query tier.

use crate::StorageError;
use parking_lot::RwLock;
use sightline_model::SpanRecord;
use std::ops::ControlFlow;

/// Read access to stored spans. Calls may do blocking I/O: async callers run them on a blocking thread.
pub trait SpanReader: Send + Sync {
    /// Every stored span of one trace, in no particular order; empty if the trace is unknown. Spans become
    /// visible here as soon as their write is acknowledged.
    fn trace(&self, trace_id: &[u8; 16]) -> Result<Vec<SpanRecord>, StorageError>;

    /// Visits every span whose start is in `[from_ns, to_ns)`, in no particular order, until `visit` breaks.
    /// Acknowledged spans are visible at once (the in-memory head is scanned too).
    fn scan(
        &self,
        from_ns: i64,
        to_ns: i64,
        visit: &mut dyn FnMut(&SpanRecord) -> ControlFlow<()>,
    ) -> Result<(), StorageError>;
}

/// Spans kept in a vector: for unit tests.
#[derive(Debug, Default)]
pub struct MemorySpans {
    spans: RwLock<Vec<SpanRecord>>,
}

impl MemorySpans {
    pub fn new(spans: Vec<SpanRecord>) -> MemorySpans {
        MemorySpans {
            spans: RwLock::new(spans),
        }
    }

    pub fn push(&self, span: SpanRecord) {
        self.spans.write().push(span);
    }
}

impl SpanReader for MemorySpans {
    fn trace(&self, trace_id: &[u8; 16]) -> Result<Vec<SpanRecord>, StorageError> {
        Ok(self
            .spans
            .read()
            .iter()
            .filter(|s| &s.trace_id == trace_id)
            .cloned()
            .collect())
    }

    fn scan(
        &self,
        from_ns: i64,
        to_ns: i64,
        visit: &mut dyn FnMut(&SpanRecord) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        for s in self.spans.read().iter() {
            if s.start_ns >= from_ns && s.start_ns < to_ns && visit(s).is_break() {
                break;
            }
        }
        Ok(())
    }
}

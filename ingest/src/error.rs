//! The ingest crate's error enum and its mapping to error kinds (and so to HTTP statuses).

use sightline_model::{ErrorKind, SinkError, TagError};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("malformed json: {0}")]
    BadJson(String),
    #[error("request body is {size} bytes after decompression; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error(
        "request body is over {limit} bytes after {encoding} decompression; the limit is {limit}"
    )]
    TooLargeDecoded { encoding: String, limit: usize },
    #[error("request body is over the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("unsupported content-encoding {0:?}; use gzip, deflate or identity")]
    BadEncoding(String),
    #[error("malformed {encoding} body: {detail}")]
    BadCompression { encoding: String, detail: String },
    #[error("{0}")]
    Invalid(String),
    #[error("metric {metric:?}: {source}")]
    Tags { metric: String, source: TagError },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("self-monitoring metrics, line {line}: {problem}: {text:?}")]
    SelfMonitoring {
        line: usize,
        problem: String,
        text: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

impl IngestError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            IngestError::BadJson(_)
            | IngestError::BadEncoding(_)
            | IngestError::BadCompression { .. }
            | IngestError::Invalid(_)
            | IngestError::Tags { .. }
            | IngestError::SelfMonitoring { .. } => ErrorKind::BadInput,
            IngestError::TooLarge { .. }
            | IngestError::TooLargeDecoded { .. }
            | IngestError::BodyTooLarge { .. } => ErrorKind::TooLarge,
            IngestError::Sink(e) => e.kind(),
            IngestError::Bind { .. } | IngestError::Internal(_) => ErrorKind::Internal,
        }
    }
}

//! The query crate's error enum and its mapping to error kinds (and so to HTTP statuses).

use crate::parser::ParseError;
use sightline_model::ErrorKind;
use sightline_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query text does not parse; Display names the position.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A log or span search does not parse; Display names the position.
    #[error("invalid search: {0}")]
    Search(#[from] sightline_model::SearchParseError),
    /// The query parses but cannot be evaluated as written (e.g. `p99:` on a gauge); names the position.
    #[error("at position {pos}: {message}")]
    Invalid { pos: usize, message: String },
    /// A query parameter is missing or malformed.
    #[error("{0}")]
    BadParam(String),
    #[error(
        "the query reads {count} series of {metric:?}; the limit is {limit} (narrow the scope)"
    )]
    TooManySeries {
        metric: String,
        count: usize,
        limit: usize,
    },
    #[error(
        "the query would read about {estimate} raw points of {metric:?}; the limit is {limit} (narrow the scope or the time range)"
    )]
    TooManyPoints {
        metric: String,
        estimate: u64,
        limit: usize,
    },
    #[error("the time range is {secs} s; the limit is {limit} s")]
    RangeTooWide { secs: i64, limit: i64 },
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("query evaluation failed: {0}")]
    Internal(String),
}

impl QueryError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            QueryError::Parse(_)
            | QueryError::Search(_)
            | QueryError::Invalid { .. }
            | QueryError::BadParam(_)
            | QueryError::TooManySeries { .. }
            | QueryError::TooManyPoints { .. }
            | QueryError::RangeTooWide { .. } => ErrorKind::BadInput,
            QueryError::NotFound(_) => ErrorKind::NotFound,
            QueryError::Storage(e) => e.kind(),
            QueryError::Internal(_) => ErrorKind::Internal,
        }
    }
}

//! Sightline query tier: the Datadog metric query language (parser, evaluator) and the query HTTP API.
//!
//! - [`parse`] turns query text into an [`ast::Query`] (no I/O; errors carry byte positions);
//! - [`evaluate`] / [`run_query`] read series through a [`sightline_storage::MetricReader`] and return a
//!   [`QueryOutput`] (one [`SeriesResult`] per expression and group);
//! - [`router`] serves `/api/v1/query`, `/api/v1/metrics`, `/api/v2/metrics/{name}/all-tags`,
//!   `/api/v1/search` and `/api/ui/autocomplete` over a [`QueryState`].

pub mod ast;
pub mod error;
pub mod eval;
pub mod http;
pub mod parser;

pub use error::QueryError;
pub use eval::{evaluate, run_query, EvalOptions, QueryOutput, SeriesResult};
pub use http::{router, QueryState};
pub use parser::{parse, ParseError};

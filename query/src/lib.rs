//! Sightline query tier: the Datadog metric query language (parser, evaluator) and the query HTTP API.
//!
//! - [`parse`] turns query text into an [`ast::Query`] (no I/O; errors carry byte positions);
//! - [`evaluate`] / [`run_query`] read series through a [`sightline_storage::MetricReader`] and return a
//!   [`QueryOutput`] (one [`SeriesResult`] per expression and group);
//! - [`router`] serves `/api/v1/query`, `/api/v1/metrics`, `/api/v2/metrics/{name}/all-tags`,
//!   `/api/v1/search` and `/api/ui/autocomplete` over a [`QueryState`];
//! - [`logsearch::parse_search`] parses the Datadog log/span search syntax; [`logs_router`] serves the log
//!   search API over a [`sightline_storage::LogReader`];
//! - [`spans`] searches, aggregates and assembles traces from a [`sightline_storage::SpanReader`];
//!   [`spans_router`] serves the Datadog Spans API, the trace view and the service list.

pub mod ast;
pub mod dashboards_http;
pub mod error;
pub mod eval;
pub mod events_http;
pub mod http;
pub mod logs_http;
pub mod logsearch;
pub mod monitor;
pub mod parser;
pub mod spans;
pub mod spans_http;
pub mod tail;
#[cfg(test)]
mod test_util;

pub use error::QueryError;
pub use eval::{evaluate, run_query, EvalOptions, QueryOutput, SeriesResult};
pub use events_http::events_router;
pub use http::{router, QueryState};
pub use logs_http::{logs_router, LogQueryState};
pub use parser::{parse, ParseError};
pub use spans_http::{spans_router, spans_router_with_limits, SpanQueryLimits, SpanQueryState};
pub use tail::tail_router;

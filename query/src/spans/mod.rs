//! The span query side (SPEC §4, §6; issue #4), below HTTP: everything here reads spans through a
//! [`sightline_storage::SpanReader`] (or RED metrics through a [`sightline_storage::MetricReader`]) and is
//! blocking, so async callers run it on a blocking thread. [`crate::spans_http`] serves it.
//!
//! - [`matcher`]: the search syntax of [`crate::logsearch::parse_search`] evaluated on spans ([`SpanFilter`]);
//! - [`mod@search`]: pages of matching spans sorted by start, with a cursor stable under concurrent writes;
//! - [`mod@aggregate`]: counts, cardinalities, sums, averages, extremes and exact percentiles, in total or over
//!   time, grouped by (nested) facets;
//! - [`tree`]: one trace as a tree with self times and the critical path;
//! - [`mod@services`]: RED per service and resource, from the `trace.<name>.{hits,errors,duration}` metrics.

pub mod aggregate;
pub mod fields;
pub mod matcher;
pub mod search;
pub mod services;
pub mod tree;

pub use aggregate::{aggregate, AggregateLimits, SpanAggregate, SpanGroupBy};
pub use matcher::{matches, SpanFilter};
pub use search::{search, SpanCursor, SpanPage, SpanSearch};
pub use services::{services, ResourceRed, ServiceRed, ServicesReport};
pub use tree::{trace_tree, MAX_TREE_DEPTH};

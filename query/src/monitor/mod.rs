//! Datadog monitor queries (SPEC §7, issue #5): [`parse_monitor_query`] turns the `query` of a `metric alert`
//! (alias `query alert`), `log alert` or `trace-analytics alert` into a schema-free [`MonitorQuery`]. No I/O;
//! every error carries the byte offset in the whole monitor query text.
//!
//! Accepted forms (whitespace allowed between tokens):
//!
//! ```text
//! metric  := tagg "(" window ")" ":" metric_query cmp number
//!          | ("change"|"pct_change") "(" tagg "(" window ")" "," shift ")" ":" metric_query cmp number
//! tagg    := avg | sum | min | max | percentile
//! window  := last_<n>(m|h|d|w)                      # 1 minute … 1 week
//! shift   := last_<n>(m|h|d|w) | <n>(m|h|d|w)_ago     # 1 minute … 1 week
//! events  := ("logs"|"trace-analytics") "(" string ")" method* cmp number
//! method  := .index(string, …) | .rollup(method[, measure]) | .by(string, …) | .last(string)
//! rollup  := "count" | "cardinality", facet | ("avg"|"sum"|"min"|"max"|"median"|"pcNN"), measure
//! last    := "<n>m" | "<n>h" | "<n>d"                # 1 minute … 2 days
//! cmp     := ">" | ">=" | "<" | "<=" | "==" | "!="
//! string  := '"' … '"'                               # only \" and \\ are escapes
//! ```
//!
//! The metric query is checked with [`crate::parser::parse`] (one expression only) and the search with
//! [`crate::logsearch::parse_search`]; their error positions are mapped into the monitor query text.
//! Choices beyond the Datadog documentation: `.index(…)` defaults to `["*"]`, `.rollup(…)` to `count`;
//! `.index`, `.rollup` and `.by` may come in any order but each at most once; `.last(…)` is required.

pub mod downtimes_http;
pub mod eval;
pub mod formats;
pub mod http;
pub mod model;
pub mod notify;
mod parser;
pub mod state;
#[cfg(test)]
mod tests;
pub mod transport;
pub mod webhooks_http;

pub use parser::parse_monitor_query;

use std::fmt;

/// A parsed monitor query. Inner queries are kept as text (already validated), to be parsed again by the
/// evaluator.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorQuery {
    /// `avg(last_5m):avg:system.cpu.user{host:a} by {host} > 80` and the `change`/`pct_change` forms.
    Metric {
        time_agg: TimeAgg,
        /// The evaluation window (`last_5m` is 300).
        window_secs: i64,
        /// `change(…)`/`pct_change(…)`: compare with the value `shift_secs` ago.
        change: Option<Change>,
        /// The metric query text, trimmed.
        query: String,
        comparator: Comparator,
        threshold: f64,
    },
    /// `logs("…").index("*").rollup("count").by("host").last("5m") > 10`, or the same over spans with
    /// `trace-analytics("…")`.
    Events {
        source: EventSource,
        /// The search text, unescaped (`\"` becomes `"`).
        search: String,
        indexes: Vec<String>,
        rollup: Rollup,
        group_by: Vec<String>,
        window_secs: i64,
        comparator: Comparator,
        threshold: f64,
    },
}

/// The time aggregation of a metric monitor over its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeAgg {
    Avg,
    Sum,
    Min,
    Max,
    /// `percentile(last_5m):pNN:…`: the percentile of a distribution over the window (the percentile is
    /// the query's space aggregator).
    Percentile,
}

/// `change(…)` (absolute) or `pct_change(…)` (relative, in percent) against the value `shift_secs` ago.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    Change { shift_secs: i64 },
    PctChange { shift_secs: i64 },
}

/// What an events monitor searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventSource {
    /// `logs(…)` in a `log alert`.
    Logs,
    /// `trace-analytics(…)` in a `trace-analytics alert`.
    Spans,
}

/// How an events monitor reduces the matching records of a window to one value per group.
#[derive(Debug, Clone, PartialEq)]
pub enum Rollup {
    Count,
    /// Distinct values of a facet.
    Cardinality(String),
    Avg(String),
    Sum(String),
    Min(String),
    Max(String),
    /// `pcNN` (`median` is 50) of a measure.
    Pct(f64, String),
}

/// How the monitor value is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparator {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Comparator {
    pub fn symbol(self) -> &'static str {
        match self {
            Comparator::Gt => ">",
            Comparator::Ge => ">=",
            Comparator::Lt => "<",
            Comparator::Le => "<=",
            Comparator::Eq => "==",
            Comparator::Ne => "!=",
        }
    }

    /// Whether `value cmp threshold` holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparator::Gt => value > threshold,
            Comparator::Ge => value >= threshold,
            Comparator::Lt => value < threshold,
            Comparator::Le => value <= threshold,
            Comparator::Eq => value == threshold,
            Comparator::Ne => value != threshold,
        }
    }
}

/// A malformed monitor query: the byte offset in the whole monitor query text and a lowercase message
/// naming the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorParseError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for MonitorParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at position {}: {}", self.position, self.message)
    }
}

impl std::error::Error for MonitorParseError {}

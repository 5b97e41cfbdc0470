//! Ingest limits (SPEC §9) shared by every receiver and by storage, with safe defaults.

use serde::{Deserialize, Serialize};

/// Limits on what a client may send. Each one, when exceeded, is a 4xx (or a counted drop on UDP) with a
/// message naming the limit and the offending input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body accepted, in bytes, after decompression.
    pub max_body_bytes: usize,
    /// Most tags on one point (after de-duplication).
    pub max_tags_per_point: usize,
    /// Longest tag, in characters (Datadog's limit is 200).
    pub max_tag_length: usize,
    /// Most distinct series one metric name may have.
    pub max_series_per_metric: usize,
    /// Most distinct series in total.
    pub max_series_total: usize,
    /// Longest log line before it is truncated and tagged.
    pub max_line_bytes: usize,
    /// Widest time range one query may cover, in seconds.
    pub max_query_range_secs: i64,
    /// Most series one metric term of a query may read (the query cost limit).
    pub max_query_series: usize,
    /// Most raw points one metric term of a query may read, estimated from its series' intervals before
    /// reading (the other query cost limit).
    pub max_query_raw_points: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 20 * 1024 * 1024,
            max_tags_per_point: 100,
            max_tag_length: 200,
            max_series_per_metric: 200_000,
            max_series_total: 2_000_000,
            max_line_bytes: 256 * 1024,
            max_query_range_secs: 400 * 24 * 3600,
            max_query_series: 10_000,
            max_query_raw_points: 20_000_000,
        }
    }
}

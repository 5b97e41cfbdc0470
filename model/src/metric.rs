//! Metric points and batches: what every receiver produces and what storage keeps.

use crate::sketch::Sketch;
use crate::tags::TagSet;
use serde::{Deserialize, Serialize};

/// Timestamps (unix seconds) at or above this are refused everywhere: they are year 5138 or later, most
/// likely milliseconds sent as seconds, and bounding them keeps interval arithmetic from overflowing.
pub const MAX_UNIX_SECS: i64 = 100_000_000_000;

/// How a metric's points combine and how queries read them (Datadog's in-app types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MetricKind {
    /// A count over an interval. Queries default to `.as_count()`. (API type 1.)
    Count,
    /// A count over an interval shown per second by default. DogStatsD `c` counters land here, as in Datadog,
    /// and so do API type 2 rates. Stored like `Count` (the total over the interval).
    Rate,
    /// A value at an instant; last write wins. DogStatsD `g`, sets (their unique count), API type 3.
    Gauge,
    /// A DogStatsD `d` distribution or an API distribution: a sketch per interval.
    Distribution,
    /// A DogStatsD `h`/`ms`: a sketch per interval that also answers the Agent's derived series
    /// (`.avg`, `.count`, `.max`, `.median`, `.95percentile`).
    Histogram,
}

impl MetricKind {
    /// Whether points of this kind carry a sketch rather than a number.
    pub fn is_sketch(self) -> bool {
        matches!(self, MetricKind::Distribution | MetricKind::Histogram)
    }

    /// Whether points of this kind are counts (summed when they meet at one timestamp).
    pub fn is_count(self) -> bool {
        matches!(self, MetricKind::Count | MetricKind::Rate)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Count => "count",
            MetricKind::Rate => "rate",
            MetricKind::Gauge => "gauge",
            MetricKind::Distribution => "distribution",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// A series: a metric name and a tag set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    pub name: String,
    pub tags: TagSet,
}

impl SeriesKey {
    pub fn new(name: impl Into<String>, tags: TagSet) -> Self {
        SeriesKey {
            name: name.into(),
            tags,
        }
    }
}

/// A point's value: a number, or a sketch for distributions and histograms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Scalar(f64),
    Sketch(Box<Sketch>),
}

/// One point of one series.
///
/// Timestamps are unix seconds. For `Count` and `Rate` the value is the total count over `interval` seconds
/// starting at `timestamp` (a per-second API rate is multiplied by its interval at ingest). When two points
/// of one series meet at one timestamp, storage sums counts, keeps the last gauge, and merges sketches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub series: SeriesKey,
    pub kind: MetricKind,
    pub timestamp: i64,
    /// Length of the interval the point covers, in seconds (10 for DogStatsD buckets; 0 if unknown).
    pub interval: u32,
    pub value: Value,
}

/// A batch of points: the unit that receivers hand to storage and that the write-ahead log records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricBatch {
    pub points: Vec<MetricPoint>,
}

impl MetricBatch {
    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Encodes the batch for the write-ahead log.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("a metric batch always serializes")
    }

    /// Decodes a batch written by [`MetricBatch::encode`].
    pub fn decode(bytes: &[u8]) -> Result<MetricBatch, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trip() {
        let mut sk = Sketch::new();
        sk.add(1.5);
        let tags = TagSet::parse(["env:prod", "host:a"], 10, 200).unwrap();
        let batch = MetricBatch {
            points: vec![
                MetricPoint {
                    series: SeriesKey::new("a.b", tags.clone()),
                    kind: MetricKind::Rate,
                    timestamp: 1_700_000_000,
                    interval: 10,
                    value: Value::Scalar(3.0),
                },
                MetricPoint {
                    series: SeriesKey::new("lat", tags),
                    kind: MetricKind::Histogram,
                    timestamp: 1_700_000_010,
                    interval: 10,
                    value: Value::Sketch(Box::new(sk)),
                },
            ],
        };
        assert_eq!(MetricBatch::decode(&batch.encode()).unwrap(), batch);
    }
}

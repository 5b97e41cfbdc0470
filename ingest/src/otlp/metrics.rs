//! OTLP metrics → Sightline metric points (SPEC §3, issue #4): a pure conversion, plus the per-stream state that
//! cumulative sums and histograms need to become per-interval counts and sketches (like Datadog's OTLP ingest).
//!
//! | OTLP data (temporality)                  | Sightline series                     | kind           | value                      |
//! |------------------------------------------|--------------------------------------|----------------|----------------------------|
//! | Gauge                                    | `<name>`                             | `Gauge`        | the value                  |
//! | Sum, delta (monotonic or not)            | `<name>`                             | `Count`        | the value                  |
//! | Sum, cumulative, monotonic               | `<name>`                             | `Count`        | difference with last point |
//! | Sum, cumulative, non-monotonic           | `<name>`                             | `Gauge`        | the value                  |
//! | Histogram, delta                         | `<name>`                             | `Distribution` | sketch of the buckets      |
//! | Histogram, cumulative                    | `<name>`                             | `Distribution` | sketch of the bucket diffs |
//! | ExponentialHistogram, delta / cumulative | `<name>`                             | `Distribution` | as for histograms          |
//! | Summary                                  | `<name>.quantile` + `quantile:<q>`   | `Gauge`        | the quantile's value       |
//! | Summary (count, sum: cumulative)         | `<name>.count`, `<name>.sum`         | `Count`        | difference with last point |
//!
//! Tags: the resource and scope mapping of [`ResourceInfo::metric_tags`] plus one `key:value` tag per data point
//! attribute. Timestamps: the point's `time_unix_nano` floored to a 10 s bucket, `interval` 10 (as DogStatsD).
//! The metric name is kept as it is (`http.server.duration`); the unit and description are dropped.
//!
//! **Streams.** A stream is a series (name + full tag set). Cumulative points are differenced against the last
//! point of their stream. The first point of a stream is emitted whole if its start time is at or after the
//! receiver's start (the producer started after Sightline, so all of it is new), otherwise it is only a baseline
//! (Datadog's `initial_cumulative_monotonic_value: auto`). A later start time or a decrease (any bucket or count
//! going down) is a reset: the new point is all new and emitted whole. A bucket layout that cannot be matched
//! (explicit bounds changed, exponential scale increased) with an unchanged start time makes the point a new
//! baseline — emitting it whole could count twice. An earlier start time than the stream's is also a baseline.
//! Points at or before the stream's last time are duplicates or out of order and are ignored (not refused).
//!
//! **Histogram buckets.** An explicit bucket `(lo, hi]` is added at the midpoint of `(lo, hi]` ∩ `[min, max]`;
//! the first bucket `(-inf, b0]` at `min` if known else `b0`, the overflow bucket at `max` if known else the last
//! bound; every value is clamped into `[min, max]` when known. A histogram without buckets adds its count at its
//! mean (`sum / count`). An exponential bucket `(lo, hi]` (`lo = base^i`, `base = 2^(2^-scale)`) is added at
//! `2·lo·hi / (lo + hi)`, which is at most `(base − 1) / (base + 1)` away from any value of the bucket in relative
//! terms: 0.54 % at scale 6 (buckets 1.09 % wide), less at higher scales, so with the sketch's own 1 % a quantile
//! is within about 1.6 % of the exact one. A coarser bucket (scale < 6, wider than one 2 % sketch bin, as the SDKs
//! pick when 160 buckets must cover a wide range) is spread evenly over slices one sketch bin wide, so quantiles
//! falling inside it are interpolated (assuming values spread evenly in log space within the bucket) rather than
//! snapped to one point up to half a bucket away. Negative buckets are added negated, `zero_count` at 0.
//!
//! **Memory.** At most `max_streams` streams are kept. Each touch appends `(stream, sequence)` to a queue; the
//! front of the queue is the least recently seen stream (stale entries — superseded by a later touch — are
//! skipped and compacted away when the queue grows past twice the stream count). A new stream over the limit
//! evicts the least recently seen one, and streams idle for more than an hour are dropped at each request; all of
//! it is O(1) amortized per point. An evicted stream that comes back starts again from a baseline.

use super::attrs::{attrs_to_map, json_text, tag, ResourceInfo};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    AggregationTemporality, DataPointFlags, ExponentialHistogram, ExponentialHistogramDataPoint,
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, Sum, Summary,
};
use parking_lot::Mutex;
use sightline_model::{
    MetricBatch, MetricKind, MetricPoint, SeriesKey, Sketch, TagSet, Value, MAX_UNIX_SECS,
};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Width of the buckets points are floored to, in seconds (the `interval` of every point).
pub const INTERVAL_SECS: u32 = 10;
/// A stream not seen for this long is forgotten.
pub const STREAM_IDLE_NS: i64 = 3_600 * 1_000_000_000;
/// Most distinct error messages reported for one request (the rejected count stays exact).
const MAX_ERRORS: usize = 32;
/// Most buckets accepted on one histogram (per sign for exponential ones); the SDKs default to 160.
const MAX_BUCKETS: usize = 4_096;
/// Scales the OTLP specification allows for exponential histograms.
const SCALES: std::ops::RangeInclusive<i32> = -10..=20;
const NANOS: u64 = 1_000_000_000;

/// Turns OTLP metric exports into metric batches, remembering the last point of every cumulative stream.
pub struct MetricsConverter {
    started_ns: i64,
    streams: Mutex<Streams>,
}

/// The points of one export request, and what was refused.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConvertedMetrics {
    pub batch: MetricBatch,
    /// Data points refused (invalid); skipped ones (no recorded value, duplicates, baselines) are not counted.
    pub rejected: usize,
    /// One lower-case message per distinct problem, naming the metric (at most 32).
    pub errors: Vec<String>,
    /// How to take back this request's changes to the stream state ([`MetricsConverter::rollback`]).
    pub undo: Undo,
}

/// The stream states one conversion replaced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Undo(Vec<UndoEntry>);

/// A stream, the time a conversion stored for it, and its (start, time, state) before that.
type UndoEntry = (Arc<SeriesKey>, u64, Option<(u64, u64, State)>);

impl MetricsConverter {
    /// A converter for a receiver started at `started_ns` (unix nanoseconds) keeping at most `max_streams`
    /// cumulative streams.
    pub fn new(started_ns: i64, max_streams: usize) -> Self {
        MetricsConverter {
            started_ns,
            streams: Mutex::new(Streams::new(max_streams)),
        }
    }

    /// Converts one export request.
    pub fn convert(&self, req: &ExportMetricsServiceRequest) -> ConvertedMetrics {
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        self.convert_at(req, now_ns)
    }

    /// Takes back a conversion whose points were not stored (the metric store pushed back), so the client's
    /// retry of the same request is differenced against the same previous points instead of being ignored as a
    /// duplicate. A stream that another request has moved on since is left as it is.
    pub fn rollback(&self, undo: Undo) {
        let mut streams = self.streams.lock();
        for (key, time, prev) in undo.0.into_iter().rev() {
            let Some(e) = streams.map.get_mut(&key) else {
                continue;
            };
            if e.time != time {
                continue;
            }
            match prev {
                Some((start, time, state)) => {
                    e.start = start;
                    e.time = time;
                    e.state = state;
                }
                None => {
                    streams.map.remove(&key);
                }
            }
        }
    }

    /// How many cumulative streams are remembered.
    pub fn streams(&self) -> usize {
        self.streams.lock().map.len()
    }

    /// [`MetricsConverter::convert`] with the wall clock given (it only decides which streams are idle).
    fn convert_at(&self, req: &ExportMetricsServiceRequest, now_ns: i64) -> ConvertedMetrics {
        let (now_ns, call) = {
            let mut streams = self.streams.lock();
            streams.next_call += 1;
            (streams.expire(now_ns), streams.next_call)
        };
        let mut out = Out::default();
        for rm in &req.resource_metrics {
            for sm in &rm.scope_metrics {
                let base = ResourceInfo::new(rm.resource.as_ref(), sm.scope.as_ref()).metric_tags();
                for m in &sm.metrics {
                    self.metric(&mut out, &base, m, now_ns, call);
                }
            }
        }
        let undo = {
            let mut streams = self.streams.lock();
            let (mine, others) = std::mem::take(&mut streams.journal)
                .into_iter()
                .partition(|(c, _)| *c == call);
            streams.journal = others;
            Undo(mine.into_iter().map(|(_, entry)| entry).collect())
        };
        ConvertedMetrics {
            batch: out.batch,
            rejected: out.rejected,
            errors: out.errors,
            undo,
        }
    }

    fn metric(&self, out: &mut Out, base: &[String], m: &Metric, now_ns: i64, call: u64) {
        let Some(data) = &m.data else { return };
        if m.name.is_empty() {
            let n = point_count(data);
            if n > 0 {
                out.rejected += n;
                out.note("a metric with an empty name was refused".into());
            }
            return;
        }
        let cx = Cx {
            name: &m.name,
            base,
            now_ns,
            started_ns: self.started_ns,
            call,
        };
        match data {
            Data::Gauge(g) => cx.gauge(out, g),
            Data::Sum(s) => cx.sum(out, s, &self.streams),
            Data::Histogram(h) => cx.histogram(out, h, &self.streams),
            Data::ExponentialHistogram(h) => cx.exponential(out, h, &self.streams),
            Data::Summary(s) => cx.summary(out, s, &self.streams),
        }
    }
}

fn point_count(data: &Data) -> usize {
    match data {
        Data::Gauge(g) => g.data_points.len(),
        Data::Sum(s) => s.data_points.len(),
        Data::Histogram(h) => h.data_points.len(),
        Data::ExponentialHistogram(h) => h.data_points.len(),
        Data::Summary(s) => s.data_points.len(),
    }
}

/// What a request produced so far.
#[derive(Default)]
struct Out {
    batch: MetricBatch,
    rejected: usize,
    errors: Vec<String>,
}

impl Out {
    fn note(&mut self, msg: String) {
        if self.errors.len() < MAX_ERRORS && !self.errors.contains(&msg) {
            self.errors.push(msg);
        }
    }

    /// Refuses one data point of `metric`.
    fn reject(&mut self, metric: &str, problem: &str) {
        self.rejected += 1;
        self.note(format!("metric {metric:?}: {problem}"));
    }

    fn push(&mut self, series: SeriesKey, kind: MetricKind, timestamp: i64, value: Value) {
        self.batch.points.push(MetricPoint {
            series,
            kind,
            timestamp,
            interval: INTERVAL_SECS,
            value,
        });
    }
}

/// One metric being converted.
struct Cx<'a> {
    name: &'a str,
    base: &'a [String],
    now_ns: i64,
    started_ns: i64,
    /// Which conversion this is (its stream changes are journaled under it).
    call: u64,
}

/// Temporality of a sum or histogram, refusing the unspecified one.
fn temporality(raw: i32) -> Option<AggregationTemporality> {
    match AggregationTemporality::try_from(raw) {
        Ok(t @ (AggregationTemporality::Delta | AggregationTemporality::Cumulative)) => Some(t),
        _ => None,
    }
}

impl Cx<'_> {
    /// The bucket a point lands in, or None when it is skipped (no recorded value) or refused (bad time).
    fn time(&self, out: &mut Out, flags: u32, time_unix_nano: u64) -> Option<i64> {
        if flags & DataPointFlags::NoRecordedValueMask as u32 != 0 {
            return None;
        }
        if time_unix_nano == 0 {
            out.reject(self.name, "data point without a timestamp");
            return None;
        }
        let secs = (time_unix_nano / NANOS) as i64;
        if secs >= MAX_UNIX_SECS {
            out.reject(self.name, "data point timestamp out of range");
            return None;
        }
        Some(secs - secs % i64::from(INTERVAL_SECS))
    }

    /// The resource and scope tags plus one `key:value` tag per point attribute.
    fn tags(&self, attrs: &[KeyValue]) -> TagSet {
        let mut tags = self.base.to_vec();
        for (k, v) in attrs_to_map(attrs) {
            tags.extend(tag(&k, &json_text(&v)));
        }
        TagSet::from_normalized(tags)
    }

    fn series(&self, name: &str, attrs: &[KeyValue]) -> SeriesKey {
        SeriesKey::new(name, self.tags(attrs))
    }

    fn number(&self, out: &mut Out, p: &NumberDataPoint) -> Option<f64> {
        match p.value {
            None => out.reject(self.name, "data point without a value"),
            Some(number_data_point::Value::AsInt(i)) => return Some(i as f64),
            Some(number_data_point::Value::AsDouble(d)) if d.is_finite() => return Some(d),
            Some(number_data_point::Value::AsDouble(_)) => {
                out.reject(self.name, "data point value is not a finite number")
            }
        }
        None
    }

    fn unspecified(&self, out: &mut Out, points: usize) {
        for _ in 0..points {
            out.reject(self.name, "unspecified aggregation temporality");
        }
    }

    fn gauge(&self, out: &mut Out, g: &Gauge) {
        for p in &g.data_points {
            let Some(ts) = self.time(out, p.flags, p.time_unix_nano) else {
                continue;
            };
            if let Some(v) = self.number(out, p) {
                let series = self.series(self.name, &p.attributes);
                out.push(series, MetricKind::Gauge, ts, Value::Scalar(v));
            }
        }
    }

    fn sum(&self, out: &mut Out, s: &Sum, streams: &Mutex<Streams>) {
        let Some(t) = temporality(s.aggregation_temporality) else {
            return self.unspecified(out, s.data_points.len());
        };
        let cumulative = t == AggregationTemporality::Cumulative;
        let mut streams = (cumulative && s.is_monotonic).then(|| streams.lock());
        for p in &s.data_points {
            let Some(ts) = self.time(out, p.flags, p.time_unix_nano) else {
                continue;
            };
            let Some(v) = self.number(out, p) else {
                continue;
            };
            let series = self.series(self.name, &p.attributes);
            match &mut streams {
                None if cumulative => out.push(series, MetricKind::Gauge, ts, Value::Scalar(v)),
                None => out.push(series, MetricKind::Count, ts, Value::Scalar(v)),
                Some(streams) => {
                    if let Some(d) = self.counter(
                        streams,
                        &series,
                        p.start_time_unix_nano,
                        p.time_unix_nano,
                        v,
                    ) {
                        out.push(series, MetricKind::Count, ts, Value::Scalar(d));
                    }
                }
            }
        }
    }

    /// The count a cumulative monotonic value adds, if any.
    fn counter(
        &self,
        streams: &mut Streams,
        key: &SeriesKey,
        start: u64,
        time: u64,
        v: f64,
    ) -> Option<f64> {
        let step = streams.step(
            self,
            key,
            start,
            time,
            State::Number(v),
            |old, _| match old {
                State::Number(old) if v >= *old => Diff::Delta(v - old),
                _ => Diff::Decrease,
            },
        );
        match step {
            Step::Ignore | Step::Baseline => None,
            Step::Full => Some(v),
            Step::Delta(d) => Some(d),
        }
    }

    fn histogram(&self, out: &mut Out, h: &Histogram, streams: &Mutex<Streams>) {
        let Some(t) = temporality(h.aggregation_temporality) else {
            return self.unspecified(out, h.data_points.len());
        };
        let mut streams = (t == AggregationTemporality::Cumulative).then(|| streams.lock());
        for p in &h.data_points {
            let Some(ts) = self.time(out, p.flags, p.time_unix_nano) else {
                continue;
            };
            match HistState::of(p) {
                Ok(hist) => {
                    let point = SketchPoint {
                        series: self.series(self.name, &p.attributes),
                        ts,
                        start: p.start_time_unix_nano,
                        time: p.time_unix_nano,
                        min: finite(p.min),
                        max: finite(p.max),
                    };
                    self.distribution(out, streams.as_deref_mut(), point, State::Hist(hist));
                }
                Err(problem) => out.reject(self.name, problem),
            }
        }
    }

    fn exponential(&self, out: &mut Out, h: &ExponentialHistogram, streams: &Mutex<Streams>) {
        let Some(t) = temporality(h.aggregation_temporality) else {
            return self.unspecified(out, h.data_points.len());
        };
        let mut streams = (t == AggregationTemporality::Cumulative).then(|| streams.lock());
        for p in &h.data_points {
            let Some(ts) = self.time(out, p.flags, p.time_unix_nano) else {
                continue;
            };
            match ExpState::of(p) {
                Ok(exp) => {
                    let point = SketchPoint {
                        series: self.series(self.name, &p.attributes),
                        ts,
                        start: p.start_time_unix_nano,
                        time: p.time_unix_nano,
                        min: finite(p.min),
                        max: finite(p.max),
                    };
                    self.distribution(out, streams.as_deref_mut(), point, State::Exp(exp));
                }
                Err(problem) => out.reject(self.name, problem),
            }
        }
    }

    /// Emits a histogram's sketch: the point itself without `streams` (delta), else what it added since the
    /// stream's last point (cumulative). Empty sketches are not emitted.
    fn distribution(
        &self,
        out: &mut Out,
        streams: Option<&mut Streams>,
        p: SketchPoint,
        state: State,
    ) {
        let sketch = match streams {
            None => state.sketch(p.min, p.max),
            Some(streams) => {
                let step = streams.step(
                    self,
                    &p.series,
                    p.start,
                    p.time,
                    state.clone(),
                    |old, new| new.minus(old),
                );
                match step {
                    Step::Ignore | Step::Baseline => return,
                    Step::Full => state.sketch(p.min, p.max),
                    Step::Delta(d) => d.sketch(p.min, p.max),
                }
            }
        };
        if !sketch.is_empty() {
            let value = Value::Sketch(Box::new(sketch));
            out.push(p.series, MetricKind::Distribution, p.ts, value);
        }
    }

    fn summary(&self, out: &mut Out, s: &Summary, streams: &Mutex<Streams>) {
        let mut streams = streams.lock();
        for p in &s.data_points {
            let Some(ts) = self.time(out, p.flags, p.time_unix_nano) else {
                continue;
            };
            let tags = self.tags(&p.attributes);
            let mut refused = None;
            for q in &p.quantile_values {
                if !(0.0..=1.0).contains(&q.quantile) {
                    refused = Some("summary quantile outside [0, 1]");
                } else if q.value.is_nan() {
                    // Prometheus summaries report NaN for a quantile without observations in its window.
                } else if !q.value.is_finite() {
                    refused = Some("summary quantile value is not a finite number");
                } else {
                    let mut tags = tags.clone();
                    tags.extend(tag("quantile", &q.quantile.to_string()));
                    let series = SeriesKey::new(format!("{}.quantile", self.name), tags);
                    out.push(series, MetricKind::Gauge, ts, Value::Scalar(q.value));
                }
            }
            if !p.sum.is_finite() {
                refused = Some("summary sum is not a finite number");
            }
            let (start, time) = (p.start_time_unix_nano, p.time_unix_nano);
            for (suffix, v) in [("count", p.count as f64), ("sum", p.sum)] {
                if v.is_finite() {
                    let series = SeriesKey::new(format!("{}.{suffix}", self.name), tags.clone());
                    if let Some(d) = self.counter(&mut streams, &series, start, time, v) {
                        out.push(series, MetricKind::Count, ts, Value::Scalar(d));
                    }
                }
            }
            if let Some(problem) = refused {
                out.reject(self.name, problem);
            }
        }
    }
}

/// Where a histogram's sketch goes and how its stream is found.
struct SketchPoint {
    series: SeriesKey,
    /// The 10 s bucket.
    ts: i64,
    start: u64,
    time: u64,
    min: Option<f64>,
    max: Option<f64>,
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

fn clamp(v: f64, min: Option<f64>, max: Option<f64>) -> f64 {
    let v = min.map_or(v, |m| v.max(m));
    max.map_or(v, |m| v.min(m))
}

/// What a cumulative stream remembers of its last point.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Number(f64),
    Hist(HistState),
    Exp(ExpState),
}

impl State {
    /// What `self` added since `old`.
    fn minus(&self, old: &State) -> Diff<State> {
        match (self, old) {
            (State::Hist(new), State::Hist(old)) => new.minus(old),
            (State::Exp(new), State::Exp(old)) => new.minus(old),
            _ => Diff::Mismatch,
        }
    }

    fn sketch(&self, min: Option<f64>, max: Option<f64>) -> Sketch {
        match self {
            State::Hist(h) => h.sketch(min, max),
            State::Exp(e) => e.sketch(min, max),
            State::Number(_) => Sketch::new(),
        }
    }
}

/// An explicit-bounds histogram: `counts` has one more entry than `bounds` (one bucket and no bounds for a
/// histogram without buckets).
#[derive(Debug, Clone, PartialEq)]
struct HistState {
    bounds: Vec<f64>,
    counts: Vec<u64>,
    sum: Option<f64>,
}

impl HistState {
    fn of(p: &HistogramDataPoint) -> Result<HistState, &'static str> {
        let bounds = &p.explicit_bounds;
        let counts = if p.bucket_counts.is_empty() && bounds.is_empty() {
            vec![p.count]
        } else {
            p.bucket_counts.clone()
        };
        if counts.len() != bounds.len() + 1 {
            return Err("histogram bucket counts do not match its bounds");
        }
        if counts.len() > MAX_BUCKETS {
            return Err("histogram has too many buckets");
        }
        if bounds.iter().any(|b| !b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err("histogram bounds are not finite and strictly increasing");
        }
        let sum = finite(p.sum);
        if bounds.is_empty()
            && p.count > 0
            && sum.is_none()
            && finite(p.min).or(finite(p.max)).is_none()
        {
            return Err("histogram without buckets, sum, min or max");
        }
        Ok(HistState {
            bounds: bounds.clone(),
            counts,
            sum,
        })
    }

    /// The counts added since `old`.
    fn minus(&self, old: &HistState) -> Diff<State> {
        if self.bounds != old.bounds {
            return Diff::Mismatch;
        }
        let mut counts = Vec::with_capacity(self.counts.len());
        for (new, old) in self.counts.iter().zip(&old.counts) {
            match new.checked_sub(*old) {
                Some(d) => counts.push(d),
                None => return Diff::Decrease,
            }
        }
        let sum = self.sum.zip(old.sum).map(|(n, o)| n - o);
        Diff::Delta(State::Hist(HistState {
            bounds: self.bounds.clone(),
            counts,
            sum,
        }))
    }

    /// Each bucket's count at its representative value (see the module documentation).
    fn sketch(&self, min: Option<f64>, max: Option<f64>) -> Sketch {
        let b = &self.bounds;
        let n = b.len();
        let mut sk = Sketch::new();
        for (i, &count) in self.counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let v = if n == 0 {
                match (self.sum, min, max) {
                    (Some(sum), _, _) => sum / count as f64,
                    (None, Some(lo), Some(hi)) => (lo + hi) / 2.0,
                    (None, lo, hi) => lo.or(hi).unwrap_or(0.0),
                }
            } else if i == 0 {
                min.unwrap_or(b[0])
            } else if i == n {
                max.unwrap_or(b[n - 1])
            } else {
                let lo = min.map_or(b[i - 1], |m| m.max(b[i - 1]));
                let hi = max.map_or(b[i], |m| m.min(b[i]));
                if lo <= hi {
                    (lo + hi) / 2.0
                } else {
                    (b[i - 1] + b[i]) / 2.0
                }
            };
            sk.add_n(clamp(v, min, max), count);
        }
        sk
    }
}

/// An exponential histogram, bucket indexes widened to i64.
#[derive(Debug, Clone, PartialEq)]
struct ExpState {
    scale: i32,
    zero: u64,
    positive: Dense,
    negative: Dense,
}

/// Contiguous bucket counts starting at index `offset`.
#[derive(Debug, Clone, Default, PartialEq)]
struct Dense {
    offset: i64,
    counts: Vec<u64>,
}

impl Dense {
    fn of(b: Option<&Buckets>) -> Dense {
        b.map_or_else(Dense::default, |b| Dense {
            offset: i64::from(b.offset),
            counts: b.bucket_counts.clone(),
        })
    }

    /// The same counts at a scale `shift` lower: index `i` becomes `i >> shift`, as the OTel SDK downscales.
    fn downscale(&self, shift: u32) -> Dense {
        if shift == 0 || self.counts.is_empty() {
            return self.clone();
        }
        let offset = self.offset >> shift;
        let last = (self.offset + self.counts.len() as i64 - 1) >> shift;
        let mut counts = vec![0; (last - offset + 1) as usize];
        for (i, &c) in self.counts.iter().enumerate() {
            counts[(((self.offset + i as i64) >> shift) - offset) as usize] += c;
        }
        Dense { offset, counts }
    }

    /// `self − old` bucket by bucket, or None when some bucket of `old` holds more.
    fn minus(&self, old: &Dense) -> Option<Dense> {
        let mut counts = self.counts.clone();
        for (i, &c) in old.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let slot = usize::try_from(old.offset + i as i64 - self.offset)
                .ok()
                .and_then(|j| counts.get_mut(j))?;
            *slot = slot.checked_sub(c)?;
        }
        Some(Dense {
            offset: self.offset,
            counts,
        })
    }
}

impl ExpState {
    fn of(p: &ExponentialHistogramDataPoint) -> Result<ExpState, &'static str> {
        if !SCALES.contains(&p.scale) {
            return Err("exponential histogram scale outside [-10, 20]");
        }
        let s = ExpState {
            scale: p.scale,
            zero: p.zero_count,
            positive: Dense::of(p.positive.as_ref()),
            negative: Dense::of(p.negative.as_ref()),
        };
        if s.positive.counts.len() > MAX_BUCKETS || s.negative.counts.len() > MAX_BUCKETS {
            return Err("exponential histogram has too many buckets");
        }
        Ok(s)
    }

    /// The counts added since `old`, downscaling `old` when the scale went down since.
    fn minus(&self, old: &ExpState) -> Diff<State> {
        let Some(shift) = old
            .scale
            .checked_sub(self.scale)
            .and_then(|s| u32::try_from(s).ok())
        else {
            return Diff::Mismatch;
        };
        let positive = self.positive.minus(&old.positive.downscale(shift));
        let negative = self.negative.minus(&old.negative.downscale(shift));
        match (positive, negative, self.zero.checked_sub(old.zero)) {
            (Some(positive), Some(negative), Some(zero)) => Diff::Delta(State::Exp(ExpState {
                scale: self.scale,
                zero,
                positive,
                negative,
            })),
            _ => Diff::Decrease,
        }
    }

    /// Each bucket's count at the value of least relative error over the bucket (see the module documentation).
    fn sketch(&self, min: Option<f64>, max: Option<f64>) -> Sketch {
        let width = (-f64::from(self.scale)).exp2(); // log2(base)
        let value = |index: i64| {
            let lo = (index as f64 * width).exp2();
            let hi = ((index + 1) as f64 * width).exp2();
            if hi.is_infinite() {
                lo
            } else if lo == 0.0 {
                hi
            } else {
                2.0 * lo * hi / (lo + hi)
            }
        };
        // A bucket wider than one sketch bin (scale < 6) is spread over `parts` equal slices in log space,
        // its count shared evenly (the remainder to the middle slices): a quantile inside the bucket is then
        // interpolated instead of snapping to one value up to half a bucket away.
        let parts = (width / SKETCH_BIN_LOG2).ceil().clamp(1.0, 64.0) as u64;
        let slice = |index: i64, j: u64| {
            let lo = ((index as f64 + j as f64 / parts as f64) * width).exp2();
            let hi = ((index as f64 + (j + 1) as f64 / parts as f64) * width).exp2();
            if hi.is_infinite() || lo == 0.0 {
                value(index)
            } else {
                2.0 * lo * hi / (lo + hi)
            }
        };
        let mut sk = Sketch::new();
        sk.add_n(clamp(0.0, min, max), self.zero);
        for (sign, dense) in [(1.0, &self.positive), (-1.0, &self.negative)] {
            for (i, &count) in dense.counts.iter().enumerate() {
                if count == 0 {
                    continue;
                }
                let index = dense.offset + i as i64;
                if parts == 1 {
                    sk.add_n(clamp(sign * value(index), min, max), count);
                    continue;
                }
                let (each, rest) = (count / parts, count % parts);
                let first_extra = (parts - rest) / 2;
                for j in 0..parts {
                    let n = each + u64::from(j >= first_extra && j < first_extra + rest);
                    if n > 0 {
                        sk.add_n(clamp(sign * slice(index, j), min, max), n);
                    }
                }
            }
        }
        sk
    }
}

/// log2 of the width of one sketch bin, `(1 + α) / (1 − α)` with α = 1 %.
const SKETCH_BIN_LOG2: f64 = 0.028_855_8;

/// How a cumulative point compares with the stream's last one.
enum Diff<T> {
    /// What was added since.
    Delta(T),
    /// Something went down: the producer restarted.
    Decrease,
    /// The layouts cannot be compared.
    Mismatch,
}

/// What to emit for a cumulative point.
#[derive(Debug, PartialEq)]
enum Step<T> {
    /// A duplicate or out-of-order point: nothing, state unchanged.
    Ignore,
    /// Nothing: the point only becomes the stream's reference.
    Baseline,
    /// The point's whole value.
    Full,
    /// What was added since the last point.
    Delta(T),
}

struct Entry {
    start: u64,
    time: u64,
    state: State,
    /// Sequence number of the last touch (matches the live entry of `Streams::order`).
    seq: u64,
    seen_ns: i64,
}

/// Cumulative stream state, least recently seen first in `order`.
struct Streams {
    map: HashMap<Arc<SeriesKey>, Entry, foldhash::fast::RandomState>,
    order: VecDeque<(Arc<SeriesKey>, u64)>,
    next_seq: u64,
    max: usize,
    now_ns: i64,
    /// The latest time a stream was forgotten (evicted, expired, or not kept for lack of room): a stream
    /// unknown now may have been one of them, so it is counted from its first point only when it started
    /// after this.
    forgot_ns: i64,
    /// Conversions under way and the stream states they replaced (see [`Undo`]).
    journal: Vec<(u64, UndoEntry)>,
    next_call: u64,
}

impl Streams {
    fn new(max: usize) -> Streams {
        Streams {
            map: HashMap::default(),
            order: VecDeque::new(),
            next_seq: 0,
            max,
            now_ns: i64::MIN,
            forgot_ns: i64::MIN,
            journal: Vec::new(),
            next_call: 0,
        }
    }

    /// Drops streams idle for over [`STREAM_IDLE_NS`]; returns the clock to use (never going backwards).
    fn expire(&mut self, now_ns: i64) -> i64 {
        self.now_ns = self.now_ns.max(now_ns);
        let cutoff = self.now_ns.saturating_sub(STREAM_IDLE_NS);
        while let Some((key, seq)) = self.order.front() {
            match self.map.get(key) {
                Some(e) if e.seq == *seq && e.seen_ns >= cutoff => break,
                Some(e) if e.seq == *seq => {
                    self.map.remove(key);
                    self.forgot_ns = self.now_ns;
                }
                _ => {}
            }
            self.order.pop_front();
        }
        self.now_ns
    }

    /// Compares a cumulative point with its stream's last one, then makes it the stream's last point (unless
    /// it is ignored).
    fn step<T>(
        &mut self,
        cx: &Cx<'_>,
        key: &SeriesKey,
        start: u64,
        time: u64,
        state: State,
        diff: impl FnOnce(&State, &State) -> Diff<T>,
    ) -> Step<T> {
        let step = match self.map.get(key) {
            Some(e) if std::mem::discriminant(&e.state) == std::mem::discriminant(&state) => {
                if time <= e.time {
                    return Step::Ignore;
                }
                if start > e.start {
                    Step::Full
                } else if start < e.start {
                    Step::Baseline
                } else {
                    match diff(&e.state, &state) {
                        Diff::Delta(d) => Step::Delta(d),
                        Diff::Decrease => Step::Full,
                        Diff::Mismatch => Step::Baseline,
                    }
                }
            }
            _ => {
                let fresh = start != 0
                    && i64::try_from(start)
                        .map_or(true, |s| s >= cx.started_ns && s > self.forgot_ns);
                if fresh {
                    Step::Full
                } else {
                    Step::Baseline
                }
            }
        };
        self.store(key, start, time, state, cx);
        step
    }

    fn store(&mut self, key: &SeriesKey, start: u64, time: u64, state: State, cx: &Cx<'_>) {
        let now_ns = cx.now_ns;
        if self.max == 0 {
            self.forgot_ns = self.forgot_ns.max(now_ns);
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            start,
            time,
            state,
            seq,
            seen_ns: now_ns,
        };
        let key = match self.map.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => {
                while self.map.len() >= self.max && self.evict_oldest() {}
                Arc::new(key.clone())
            }
        };
        let prev = self
            .map
            .insert(key.clone(), entry)
            .map(|e| (e.start, e.time, e.state));
        self.journal.push((cx.call, (key.clone(), time, prev)));
        self.order.push_back((key, seq));
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(k).is_some_and(|e| e.seq == *s));
        }
    }

    /// Forgets the least recently seen stream; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((key, seq)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|e| e.seq == seq) {
                self.map.remove(&key);
                self.forgot_ns = self.forgot_ns.max(self.now_ns);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope};
    use opentelemetry_proto::tonic::metrics::v1::{
        summary_data_point::ValueAtQuantile, ResourceMetrics, ScopeMetrics, SummaryDataPoint,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use AggregationTemporality::{Cumulative, Delta};
    use MetricKind::{Count, Distribution, Gauge as G};

    /// The receiver's start (unix seconds); points are stamped around it.
    const T0: i64 = 1_700_000_000;
    const STARTED_NS: i64 = T0 * 1_000_000_000;
    /// Wall clock of the requests.
    const NOW: i64 = STARTED_NS + 60 * 1_000_000_000;

    fn ns(secs: i64) -> u64 {
        (secs * 1_000_000_000) as u64
    }

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "api"), kv("k8s.pod.name", "pod-1")],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "lib".into(),
                        attributes: vec![kv("team", "core")],
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn metric(name: &str, data: Data) -> Metric {
        Metric {
            name: name.into(),
            data: Some(data),
            ..Default::default()
        }
    }

    /// A number point with start and time in unix seconds.
    fn num(start: i64, time: i64, v: f64) -> NumberDataPoint {
        NumberDataPoint {
            start_time_unix_nano: ns(start),
            time_unix_nano: ns(time),
            value: Some(number_data_point::Value::AsDouble(v)),
            ..Default::default()
        }
    }

    fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
        metric(
            name,
            Data::Gauge(Gauge {
                data_points: points,
            }),
        )
    }

    fn sum(
        name: &str,
        t: AggregationTemporality,
        monotonic: bool,
        points: Vec<NumberDataPoint>,
    ) -> Metric {
        metric(
            name,
            Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: t as i32,
                is_monotonic: monotonic,
            }),
        )
    }

    fn counter(start: i64, time: i64, v: f64) -> Metric {
        sum("requests", Cumulative, true, vec![num(start, time, v)])
    }

    fn hp(start: i64, time: i64, bounds: &[f64], counts: &[u64]) -> HistogramDataPoint {
        HistogramDataPoint {
            start_time_unix_nano: ns(start),
            time_unix_nano: ns(time),
            count: counts.iter().sum(),
            explicit_bounds: bounds.to_vec(),
            bucket_counts: counts.to_vec(),
            ..Default::default()
        }
    }

    fn hist(name: &str, t: AggregationTemporality, points: Vec<HistogramDataPoint>) -> Metric {
        metric(
            name,
            Data::Histogram(Histogram {
                data_points: points,
                aggregation_temporality: t as i32,
            }),
        )
    }

    fn exp(
        name: &str,
        t: AggregationTemporality,
        points: Vec<ExponentialHistogramDataPoint>,
    ) -> Metric {
        metric(
            name,
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points: points,
                aggregation_temporality: t as i32,
            }),
        )
    }

    /// An exponential histogram point of `samples` at `scale`, bucketed as the OTel SDK does.
    fn ep(start: i64, time: i64, scale: i32, samples: &[f64]) -> ExponentialHistogramDataPoint {
        fn buckets(indexes: &[i64]) -> Option<Buckets> {
            let (&lo, &hi) = (indexes.iter().min()?, indexes.iter().max()?);
            let mut counts = vec![0; (hi - lo + 1) as usize];
            indexes.iter().for_each(|i| counts[(i - lo) as usize] += 1);
            Some(Buckets {
                offset: lo as i32,
                bucket_counts: counts,
            })
        }
        let index = |v: f64| (v.abs().log2() * f64::from(scale).exp2()).ceil() as i64 - 1;
        let pos: Vec<i64> = samples
            .iter()
            .filter(|v| **v > 0.0)
            .map(|v| index(*v))
            .collect();
        let neg: Vec<i64> = samples
            .iter()
            .filter(|v| **v < 0.0)
            .map(|v| index(*v))
            .collect();
        ExponentialHistogramDataPoint {
            start_time_unix_nano: ns(start),
            time_unix_nano: ns(time),
            count: samples.len() as u64,
            sum: Some(samples.iter().sum()),
            scale,
            zero_count: samples.iter().filter(|v| **v == 0.0).count() as u64,
            positive: buckets(&pos),
            negative: buckets(&neg),
            min: samples.iter().copied().reduce(f64::min),
            max: samples.iter().copied().reduce(f64::max),
            ..Default::default()
        }
    }

    fn summary_point(
        start: i64,
        time: i64,
        count: u64,
        sum: f64,
        qs: &[(f64, f64)],
    ) -> SummaryDataPoint {
        SummaryDataPoint {
            start_time_unix_nano: ns(start),
            time_unix_nano: ns(time),
            count,
            sum,
            quantile_values: qs
                .iter()
                .map(|&(quantile, value)| ValueAtQuantile { quantile, value })
                .collect(),
            ..Default::default()
        }
    }

    /// One expected point: name, kind, timestamp, value (a sketch's count for sketches).
    type Want<'a> = (&'a str, MetricKind, i64, f64);

    /// Converts one export and compares the points, the rejected count and that the messages hold `errors`.
    fn check(
        conv: &MetricsConverter,
        metrics: Vec<Metric>,
        want: &[Want<'_>],
        rejected: usize,
        errors: &[&str],
    ) -> ConvertedMetrics {
        let got = conv.convert_at(&request(metrics), NOW);
        let points: Vec<(&str, MetricKind, i64, f64)> = got
            .batch
            .points
            .iter()
            .map(|p| {
                assert_eq!(p.interval, 10);
                let v = match &p.value {
                    Value::Scalar(v) => *v,
                    Value::Sketch(s) => s.count() as f64,
                };
                (p.series.name.as_str(), p.kind, p.timestamp, v)
            })
            .collect();
        assert_eq!(points, want, "errors: {:?}", got.errors);
        assert_eq!(got.rejected, rejected, "errors: {:?}", got.errors);
        assert_eq!(got.errors.len(), errors.len(), "errors: {:?}", got.errors);
        for (msg, part) in got.errors.iter().zip(errors) {
            assert!(msg.contains(part), "{msg:?} should contain {part:?}");
            assert!(msg.starts_with(|c: char| c.is_lowercase()), "{msg:?}");
        }
        got
    }

    /// Runs successive exports through one converter, each with its expected points and nothing refused.
    fn run(conv: &MetricsConverter, exports: Vec<(Metric, &[Want<'_>])>) {
        for (m, want) in exports {
            check(conv, vec![m], want, 0, &[]);
        }
    }

    fn conv() -> MetricsConverter {
        MetricsConverter::new(STARTED_NS, 1_000)
    }

    #[test]
    fn stateless_table() {
        let no_value = NumberDataPoint {
            time_unix_nano: ns(T0),
            ..Default::default()
        };
        let int = NumberDataPoint {
            time_unix_nano: ns(T0 + 9),
            value: Some(number_data_point::Value::AsInt(-7)),
            ..Default::default()
        };
        let stale = NumberDataPoint {
            flags: DataPointFlags::NoRecordedValueMask as u32,
            ..num(0, T0, 1.0)
        };
        let c = conv();
        let rows: Vec<(Metric, Vec<Want<'_>>, usize, Vec<&str>)> = vec![
            (
                gauge("temp", vec![num(0, T0 + 15, 21.5)]),
                vec![("temp", G, T0 + 10, 21.5)],
                0,
                vec![],
            ),
            (
                gauge("temp", vec![int]),
                vec![("temp", G, T0, -7.0)],
                0,
                vec![],
            ),
            (gauge("temp", vec![stale.clone()]), vec![], 0, vec![]),
            (
                gauge("temp", vec![num(0, T0, f64::NAN)]),
                vec![],
                1,
                vec!["metric \"temp\": data point value is not a finite"],
            ),
            (
                gauge("temp", vec![no_value]),
                vec![],
                1,
                vec!["metric \"temp\": data point without a value"],
            ),
            (
                gauge("temp", vec![num(0, 0, 1.0)]),
                vec![],
                1,
                vec!["without a timestamp"],
            ),
            (
                sum("hits", Delta, true, vec![num(T0, T0 + 10, 4.0)]),
                vec![("hits", Count, T0 + 10, 4.0)],
                0,
                vec![],
            ),
            (
                sum("queue", Delta, false, vec![num(T0, T0 + 10, -2.0)]),
                vec![("queue", Count, T0 + 10, -2.0)],
                0,
                vec![],
            ),
            (
                sum("queue", Cumulative, false, vec![num(T0, T0 + 10, 12.0)]),
                vec![("queue", G, T0 + 10, 12.0)],
                0,
                vec![],
            ),
            (sum("hits", Delta, true, vec![stale]), vec![], 0, vec![]),
            (
                sum(
                    "hits",
                    AggregationTemporality::Unspecified,
                    true,
                    vec![num(T0, T0, 1.0), num(T0, T0, 2.0)],
                ),
                vec![],
                2,
                vec!["metric \"hits\": unspecified aggregation temporality"],
            ),
            (
                gauge("", vec![num(0, T0, 1.0), num(0, T0, 2.0)]),
                vec![],
                2,
                vec!["empty name"],
            ),
        ];
        for (m, want, rejected, errors) in rows {
            check(&c, vec![m], &want, rejected, &errors);
        }
        assert_eq!(c.streams(), 0);
    }

    #[test]
    fn tags_from_resource_scope_and_point() {
        let mut p = num(0, T0, 1.0);
        p.attributes = vec![kv("HTTP.Method", "GET"), kv("code", "200")];
        let got = conv().convert_at(&request(vec![gauge("g", vec![p])]), NOW);
        let tags: Vec<&str> = got.batch.points[0].series.tags.iter().collect();
        assert_eq!(
            tags,
            [
                "code:200",
                "http.method:GET",
                "k8s.pod.name:pod-1",
                "service:api",
                "team:core"
            ]
        );
    }

    #[test]
    fn cumulative_counter_started_after_sightline() {
        // Three exports of one counter at 5, 8, 10: counts 5, 3, 2 (10 in all).
        let start = T0 + 1;
        run(
            &conv(),
            vec![
                (
                    counter(start, T0 + 10, 5.0),
                    &[("requests", Count, T0 + 10, 5.0)],
                ),
                (
                    counter(start, T0 + 20, 8.0),
                    &[("requests", Count, T0 + 20, 3.0)],
                ),
                (
                    counter(start, T0 + 30, 10.0),
                    &[("requests", Count, T0 + 30, 2.0)],
                ),
            ],
        );
    }

    #[test]
    fn cumulative_counter_started_before_sightline() {
        let start = T0 - 100;
        let c = conv();
        run(
            &c,
            vec![
                (counter(start, T0 + 10, 5.0), &[]),
                (
                    counter(start, T0 + 20, 8.0),
                    &[("requests", Count, T0 + 20, 3.0)],
                ),
                (
                    counter(start, T0 + 30, 10.0),
                    &[("requests", Count, T0 + 30, 2.0)],
                ),
                // A duplicate and an older point are ignored, not refused.
                (counter(start, T0 + 30, 10.0), &[]),
                (counter(start, T0 + 25, 9.0), &[]),
                // Restart seen by the start time: the new value is all new.
                (
                    counter(T0 + 35, T0 + 40, 4.0),
                    &[("requests", Count, T0 + 40, 4.0)],
                ),
                (
                    counter(T0 + 35, T0 + 50, 6.0),
                    &[("requests", Count, T0 + 50, 2.0)],
                ),
                // Restart seen by a drop with the same start time.
                (
                    counter(T0 + 35, T0 + 60, 1.0),
                    &[("requests", Count, T0 + 60, 1.0)],
                ),
                (
                    counter(T0 + 35, T0 + 70, 1.0),
                    &[("requests", Count, T0 + 70, 0.0)],
                ),
                // An unknown start time (0) is never fresh.
                (counter(0, T0 + 80, 3.0), &[]),
                (
                    counter(0, T0 + 90, 7.0),
                    &[("requests", Count, T0 + 90, 4.0)],
                ),
            ],
        );
        assert_eq!(c.streams(), 1);
    }

    #[test]
    fn streams_are_per_tag_set() {
        let mut a = num(T0 + 1, T0 + 10, 5.0);
        a.attributes = vec![kv("route", "/a")];
        let mut b = num(T0 + 1, T0 + 10, 7.0);
        b.attributes = vec![kv("route", "/b")];
        let c = conv();
        check(
            &c,
            vec![sum("requests", Cumulative, true, vec![a, b])],
            &[
                ("requests", Count, T0 + 10, 5.0),
                ("requests", Count, T0 + 10, 7.0),
            ],
            0,
            &[],
        );
        assert_eq!(c.streams(), 2);
    }

    #[test]
    fn histogram_delta() {
        let bounds = [0.0, 10.0, 100.0];
        let mut p = hp(T0, T0 + 10, &bounds, &[1, 2, 3, 4]);
        p.min = Some(0.0);
        p.max = Some(400.0);
        let got = check(
            &conv(),
            vec![hist(
                "lat",
                Delta,
                vec![p, hp(T0, T0 + 20, &bounds, &[0, 0, 0, 0])],
            )],
            &[("lat", Distribution, T0 + 10, 10.0)],
            0,
            &[],
        );
        let Value::Sketch(sk) = &got.batch.points[0].value else {
            panic!("not a sketch")
        };
        // 1 at min (0), 2 at 5, 3 at 55, 4 at max (400).
        let close = |q: f64, v: f64| {
            let got = sk.quantile(q).unwrap();
            assert!(
                (got - v).abs() <= 0.01 * v.abs() + 1e-9,
                "q={q}: {got} vs {v}"
            );
        };
        close(0.0, 0.0);
        close(0.2, 5.0);
        close(0.5, 55.0);
        close(1.0, 400.0);
    }

    #[test]
    fn histogram_without_buckets_and_invalid_ones() {
        let mut only_sum = hp(T0, T0 + 10, &[], &[]);
        only_sum.count = 4;
        only_sum.sum = Some(10.0);
        let mut nothing = hp(T0, T0 + 10, &[], &[]);
        nothing.count = 4;
        let got = check(
            &conv(),
            vec![hist(
                "h",
                Delta,
                vec![
                    only_sum,
                    nothing,
                    hp(T0, T0 + 10, &[1.0, 2.0], &[1, 1]),
                    hp(T0, T0 + 10, &[2.0, 1.0], &[1, 1, 1]),
                ],
            )],
            &[("h", Distribution, T0 + 10, 4.0)],
            3,
            &[
                "metric \"h\": histogram without buckets",
                "metric \"h\": histogram bucket counts do not match",
                "metric \"h\": histogram bounds are not",
            ],
        );
        let Value::Sketch(sk) = &got.batch.points[0].value else {
            panic!("not a sketch")
        };
        assert!((sk.quantile(0.5).unwrap() - 2.5).abs() < 0.03);
    }

    #[test]
    fn histogram_cumulative() {
        let b = [1.0, 10.0];
        let h = |start: i64, time: i64, counts: &[u64]| {
            hist("lat", Cumulative, vec![hp(start, time, &b, counts)])
        };
        run(
            &conv(),
            vec![
                (h(T0 - 50, T0 + 10, &[1, 1, 1]), &[]),
                (
                    h(T0 - 50, T0 + 20, &[1, 3, 2]),
                    &[("lat", Distribution, T0 + 20, 3.0)],
                ),
                // Nothing new: no point.
                (h(T0 - 50, T0 + 30, &[1, 3, 2]), &[]),
                // A bucket went down: a reset, all new.
                (
                    h(T0 - 50, T0 + 40, &[0, 1, 0]),
                    &[("lat", Distribution, T0 + 40, 1.0)],
                ),
                // A new start time: all new.
                (
                    h(T0 + 45, T0 + 50, &[2, 0, 0]),
                    &[("lat", Distribution, T0 + 50, 2.0)],
                ),
                // New bounds under the same start: a new baseline.
                (
                    hist(
                        "lat",
                        Cumulative,
                        vec![hp(T0 + 45, T0 + 60, &[5.0], &[3, 3])],
                    ),
                    &[],
                ),
                (
                    hist(
                        "lat",
                        Cumulative,
                        vec![hp(T0 + 45, T0 + 70, &[5.0], &[4, 3])],
                    ),
                    &[("lat", Distribution, T0 + 70, 1.0)],
                ),
            ],
        );
    }

    /// Deterministic log-normal samples (median e^3 ≈ 20, sigma 1).
    fn log_normal(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed;
        let mut uniform = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u1, u2) = (uniform(), uniform());
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                (3.0 + z).exp()
            })
            .collect()
    }

    fn exact_quantile(samples: &[f64], q: f64) -> f64 {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    fn assert_quantiles(sk: &Sketch, samples: &[f64], qs: &[f64]) {
        assert_eq!(sk.count(), samples.len() as u64);
        for &q in qs {
            let (got, want) = (sk.quantile(q).unwrap(), exact_quantile(samples, q));
            let err = (got - want).abs() / want.abs();
            assert!(
                err <= 0.02,
                "q={q}: sketch {got}, exact {want}, error {err}"
            );
        }
    }

    fn only_sketch(got: &ConvertedMetrics) -> &Sketch {
        assert_eq!(got.batch.points.len(), 1, "{:?}", got.errors);
        match &got.batch.points[0].value {
            Value::Sketch(s) => s,
            Value::Scalar(_) => panic!("not a sketch"),
        }
    }

    #[test]
    fn exponential_histogram_quantiles() {
        let samples = log_normal(10_000, 7);
        // 6 and 7: one sketch bin per bucket or finer; 4 and 5 (what the SDKs choose for wide ranges): buckets
        // spread over sketch bins, interpolated.
        for scale in [4, 5, 6, 7] {
            let got = conv().convert_at(
                &request(vec![exp(
                    "lat",
                    Delta,
                    vec![ep(T0, T0 + 10, scale, &samples)],
                )]),
                NOW,
            );
            assert_eq!(got.batch.points[0].kind, Distribution);
            assert_quantiles(only_sketch(&got), &samples, &[0.5, 0.9, 0.99]);
        }
    }

    #[test]
    fn exponential_histogram_negative_and_zero() {
        let samples = [-8.0, -0.5, 0.0, 0.0, 0.25, 3.0, 3.0, 1000.0];
        let got = conv().convert_at(
            &request(vec![exp("x", Delta, vec![ep(T0, T0 + 10, 3, &samples)])]),
            NOW,
        );
        let sk = only_sketch(&got);
        assert_eq!(sk.count(), 8);
        // Scale 3 buckets are 9 % wide: the extremes come back within 5 %, inside [min, max].
        let (min, max) = (sk.min().unwrap(), sk.max().unwrap());
        assert!((-8.0..=-7.6).contains(&min), "min {min}");
        assert!((950.0..=1000.0).contains(&max), "max {max}");
        assert!((sk.quantile(0.0).unwrap() + 8.0).abs() <= 0.4);
        assert_eq!(sk.quantile(3.0 / 7.0), Some(0.0));
    }

    #[test]
    fn exponential_histogram_cumulative_with_scale_decrease() {
        let first = log_normal(3_000, 11);
        let more = log_normal(5_000, 12);
        let all: Vec<f64> = first.iter().chain(&more).copied().collect();
        let c = conv();
        let start = T0 + 1;
        let got = c.convert_at(
            &request(vec![exp(
                "lat",
                Cumulative,
                vec![ep(start, T0 + 10, 7, &first)],
            )]),
            NOW,
        );
        assert_quantiles(only_sketch(&got), &first, &[0.5, 0.9, 0.99]);
        // The SDK downscaled to 6 as the range grew: the previous point is downscaled before subtracting.
        let got = c.convert_at(
            &request(vec![exp(
                "lat",
                Cumulative,
                vec![ep(start, T0 + 20, 6, &all)],
            )]),
            NOW,
        );
        assert_quantiles(only_sketch(&got), &more, &[0.5, 0.9, 0.99]);
        // A higher scale under the same start time cannot be compared: a baseline.
        let got = c.convert_at(
            &request(vec![exp(
                "lat",
                Cumulative,
                vec![ep(start, T0 + 30, 7, &all)],
            )]),
            NOW,
        );
        assert!(got.batch.is_empty());
        // Counts that went down: a reset, all new.
        let got = c.convert_at(
            &request(vec![exp(
                "lat",
                Cumulative,
                vec![ep(start, T0 + 40, 7, &first)],
            )]),
            NOW,
        );
        assert_quantiles(only_sketch(&got), &first, &[0.5, 0.99]);
    }

    #[test]
    fn dense_downscale_and_minus() {
        let d = Dense {
            offset: -3,
            counts: vec![1, 2, 3, 4, 5],
        };
        // Indexes -3..=1 at shift 1 → -2, -1, -1, 0, 0.
        assert_eq!(
            d.downscale(1),
            Dense {
                offset: -2,
                counts: vec![1, 5, 9]
            }
        );
        let newer = Dense {
            offset: -2,
            counts: vec![1, 6, 10, 1],
        };
        assert_eq!(
            newer.minus(&d.downscale(1)),
            Some(Dense {
                offset: -2,
                counts: vec![0, 1, 1, 1]
            })
        );
        assert_eq!(d.downscale(1).minus(&newer), None);
    }

    #[test]
    fn summary_quantiles_count_and_sum() {
        let s = |start, time, count, sum_, qs: &[(f64, f64)]| {
            metric(
                "rpc",
                Data::Summary(Summary {
                    data_points: vec![summary_point(start, time, count, sum_, qs)],
                }),
            )
        };
        let c = conv();
        let got = check(
            &c,
            vec![s(
                T0 - 100,
                T0 + 10,
                10,
                50.0,
                &[(0.5, 4.0), (0.99, 9.5), (1.0, 12.0)],
            )],
            &[
                ("rpc.quantile", G, T0 + 10, 4.0),
                ("rpc.quantile", G, T0 + 10, 9.5),
                ("rpc.quantile", G, T0 + 10, 12.0),
            ],
            0,
            &[],
        );
        let q: Vec<Vec<&str>> = got
            .batch
            .points
            .iter()
            .map(|p| p.series.tags.values_of("quantile").collect())
            .collect();
        assert_eq!(q, [["0.5"], ["0.99"], ["1"]]);
        check(
            &c,
            vec![s(
                T0 - 100,
                T0 + 20,
                14,
                70.0,
                &[(0.5, f64::NAN), (1.5, 1.0)],
            )],
            &[
                ("rpc.count", Count, T0 + 20, 4.0),
                ("rpc.sum", Count, T0 + 20, 20.0),
            ],
            1,
            &["metric \"rpc\": summary quantile outside [0, 1]"],
        );
        assert_eq!(c.streams(), 2);
    }

    #[test]
    fn rejected_points_are_counted_once_per_message() {
        let mut bad_exp = ep(T0, T0 + 10, 6, &[1.0]);
        bad_exp.scale = 30;
        check(
            &conv(),
            vec![
                gauge(
                    "a",
                    vec![
                        num(0, T0, f64::INFINITY),
                        num(0, T0, f64::NAN),
                        num(0, T0, 1.0),
                    ],
                ),
                exp("b", Delta, vec![bad_exp]),
                hist(
                    "c",
                    AggregationTemporality::Unspecified,
                    vec![hp(T0, T0, &[], &[])],
                ),
            ],
            &[("a", G, T0, 1.0)],
            4,
            &[
                "metric \"a\": data point value is not a finite number",
                "metric \"b\": exponential histogram scale outside [-10, 20]",
                "metric \"c\": unspecified aggregation temporality",
            ],
        );
    }

    #[test]
    fn rollback_lets_a_retry_count_again() {
        let c = MetricsConverter::new(STARTED_NS, 10);
        let export = |v: f64, time: i64| sum("r", Cumulative, true, vec![num(T0 + 1, time, v)]);
        let total = |m: &ConvertedMetrics| -> f64 {
            m.batch
                .points
                .iter()
                .map(|p| match p.value {
                    Value::Scalar(v) => v,
                    _ => 0.0,
                })
                .sum()
        };
        assert_eq!(
            total(&c.convert_at(&request(vec![export(100.0, T0 + 10)]), NOW)),
            100.0
        );
        // 150 is converted, but storage refuses it: the client retries the same export.
        let refused = c.convert_at(&request(vec![export(150.0, T0 + 20)]), NOW);
        assert_eq!(total(&refused), 50.0);
        c.rollback(refused.undo);
        let retried = c.convert_at(&request(vec![export(150.0, T0 + 20)]), NOW);
        assert_eq!(total(&retried), 50.0);
        assert_eq!(
            total(&c.convert_at(&request(vec![export(160.0, T0 + 30)]), NOW)),
            10.0
        );
    }

    #[test]
    fn a_forgotten_stream_is_not_counted_twice() {
        // Started after Sightline, so its first point counts whole; evicted; back with a higher value.
        let c = MetricsConverter::new(STARTED_NS, 1);
        let point =
            |name: &str, time: i64, v: f64| sum(name, Cumulative, true, vec![num(T0 + 1, time, v)]);
        let points = |m: Metric| c.convert_at(&request(vec![m]), NOW).batch.points.len();
        assert_eq!(points(point("a", T0 + 10, 5.0)), 1);
        assert_eq!(points(point("b", T0 + 10, 1.0)), 1); // evicts a
        assert_eq!(points(point("a", T0 + 20, 8.0)), 0); // a baseline, not 8 more
        assert_eq!(points(point("a", T0 + 30, 9.0)), 1);
    }

    #[test]
    fn streams_are_bounded_and_expire() {
        let c = MetricsConverter::new(STARTED_NS, 2);
        let point = |name: &str, time: i64, v: f64| {
            sum(name, Cumulative, true, vec![num(T0 - 10, time, v)])
        };
        let convert = |m: Metric, now: i64| c.convert_at(&request(vec![m]), now).batch.points.len();
        assert_eq!(convert(point("a", T0 + 10, 1.0), NOW), 0);
        assert_eq!(convert(point("b", T0 + 10, 1.0), NOW), 0);
        assert_eq!(convert(point("a", T0 + 20, 2.0), NOW), 1); // a is now the most recent
        assert_eq!(convert(point("c", T0 + 10, 1.0), NOW), 0); // evicts b
        assert_eq!(c.streams(), 2);
        assert_eq!(convert(point("a", T0 + 30, 3.0), NOW), 1); // a kept its state
        assert_eq!(convert(point("b", T0 + 30, 3.0), NOW), 0); // b starts over from a baseline (evicts c)
                                                               // Many touches of the same streams keep the touch queue bounded.
        for i in 0..1_000 {
            convert(point("a", T0 + 40 + i, 4.0 + i as f64), NOW);
        }
        assert!(c.streams.lock().order.len() <= 2 * 2 + 64 + 1);
        // An hour later, idle streams are gone.
        assert_eq!(
            convert(point("z", T0 + 10, 1.0), NOW + STREAM_IDLE_NS + 1),
            0
        );
        assert_eq!(c.streams(), 1);
        // Without room nothing is remembered: the first point of a stream started after Sightline counts
        // whole, later ones are baselines (the stream may have been forgotten), never counted twice.
        let none = MetricsConverter::new(STARTED_NS, 0);
        let fresh = sum(
            "f",
            Cumulative,
            true,
            vec![num(T0 + 1, T0 + 10, 2.0), num(T0 + 1, T0 + 20, 3.0)],
        );
        assert_eq!(none.convert_at(&request(vec![fresh]), NOW).batch.len(), 1);
        assert_eq!(none.streams(), 0);
    }
}

//! DogStatsD pre-aggregation, like the Datadog Agent, into 10 s buckets by arrival time.
//!
//! Receive threads parse and aggregate into their own shard (a mutex only the flusher ever contends for);
//! the flusher swaps each shard's pending state out, merges the shards and emits one [`MetricBatch`] per
//! flush (every second by default, so points are queryable within 2 s):
//!
//! - `c` → `Rate` (interval 10): the sum of value / sample rate, emitted as a delta since the last flush
//!   (storage sums counts at one timestamp).
//! - `h`/`ms` → `Histogram`, `d` → `Distribution`: a sketch of the values (each weighted round(1/rate)),
//!   emitted as a delta sketch (storage merges sketches at one timestamp).
//! - `g` → `Gauge`: the last value; Etsy deltas (`+N`/`-N`) add to the series' current value, which persists
//!   across buckets until the series is idle for [`GAUGE_IDLE_SECS`]. Emitted as the full current value.
//! - `s` → `Gauge`: the number of unique values in the bucket, emitted as the full current count.
//! - `T<ts>`-stamped points bypass aggregation and are emitted as they are at their own timestamp.
//!
//! Only series that changed since the previous flush are emitted. Events and service checks are counted and
//! queued (bounded) for [`Aggregator::take_events`], or written to a log sink by [`Aggregator::flush_events`].

use super::parser::{
    datagram_lines, parse_fast, parse_line, Line, MetricLine, MetricType, MetricValue, ParseError,
};
use super::StatsdMetrics;
use crate::events::{event_record, next_event_id, service_check_record, EVENT_ID_ATTR};
use parking_lot::Mutex;
use sightline_model::{
    BatchSink, Event, Limits, LogBatch, LogRecord, LogSink, MetricBatch, MetricKind, MetricPoint,
    SeriesKey, ServiceCheck, SinkError, Sketch, Value, WriteOutcome,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Fast hashing for the per-line maps (keys come from clients, so keep foldhash's per-process seed).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A shard's handle on one series: the key behind an `Arc` that the shard's [`SeriesCache`] hands out once
/// per series, so identity (the pointer) stands for equality within a shard and hashing is one word.
#[derive(Debug, Clone)]
struct SeriesRef(Arc<SeriesKey>);

impl PartialEq for SeriesRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SeriesRef {}

impl Hash for SeriesRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state)
    }
}

/// Series cache entries not used for this long are forgotten (their next line builds the key again).
const CACHE_IDLE_SECS: i64 = 300;

/// Per-shard map from a line's raw series bytes (name, raw tags, container id) to its normalized
/// [`SeriesKey`]: the common case of a series seen before skips tag normalization, sorting and allocation.
#[derive(Default)]
struct SeriesCache {
    map: FastMap<Box<[u8]>, (SeriesRef, i64)>,
    /// Scratch buffer for the raw key of the line being looked up.
    buf: Vec<u8>,
    last_sweep: i64,
}

/// Writes the cache key of a series into `buf`: the name, the tags field (tags joined by `,`) and the
/// container id, each length-prefixed so no bytes inside them can make two series collide.
fn encode_key<'t>(
    buf: &mut Vec<u8>,
    name: &[u8],
    tags: impl Iterator<Item = &'t [u8]> + Clone,
    container: &[u8],
) {
    buf.clear();
    buf.extend_from_slice(&(name.len() as u32).to_le_bytes());
    buf.extend_from_slice(name);
    let tags_len: usize = tags
        .clone()
        .enumerate()
        .map(|(i, t)| t.len() + usize::from(i > 0))
        .sum();
    buf.extend_from_slice(&(tags_len as u32).to_le_bytes());
    for (i, t) in tags.enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(t);
    }
    buf.extend_from_slice(container);
}

impl SeriesCache {
    /// The cached series for raw line bytes read by the fast path, if the full parser has seen it.
    fn lookup(
        &mut self,
        name: &[u8],
        tags: &[u8],
        container: &[u8],
        secs: i64,
    ) -> Option<SeriesRef> {
        let tags = (!tags.is_empty()).then_some(tags);
        encode_key(&mut self.buf, name, tags.into_iter(), container);
        let (series, seen) = self.map.get_mut(self.buf.as_slice())?;
        *seen = secs;
        Some(series.clone())
    }

    /// The series of line `m`, building and caching it on first sight. Tag limit errors are not cached.
    fn resolve(
        &mut self,
        m: &MetricLine<'_>,
        secs: i64,
        limits: &Limits,
    ) -> Result<SeriesRef, ParseError> {
        let tags = m.tags.iter().map(|t| t.as_bytes());
        let container = m.container_id.unwrap_or("").as_bytes();
        encode_key(&mut self.buf, m.name.as_bytes(), tags, container);
        if let Some((series, seen)) = self.map.get_mut(self.buf.as_slice()) {
            *seen = secs;
            return Ok(series.clone());
        }
        let tags = m.tag_set(limits.max_tags_per_point, limits.max_tag_length)?;
        let series = SeriesRef(Arc::new(SeriesKey::new(m.name, tags)));
        self.map
            .insert(self.buf.as_slice().into(), (series.clone(), secs));
        Ok(series)
    }

    /// Forgets entries idle for [`CACHE_IDLE_SECS`], at most once a minute.
    fn sweep(&mut self, now_secs: i64) {
        if now_secs - self.last_sweep >= 60 {
            self.last_sweep = now_secs;
            self.map
                .retain(|_, (_, seen)| now_secs - *seen <= CACHE_IDLE_SECS);
        }
    }
}

/// A receive thread's shard: its series cache and what it aggregated since the last flush.
#[derive(Default)]
struct Shard {
    cache: SeriesCache,
    pending: Pending,
}

/// Width of an aggregation bucket, in seconds (the Agent's flush interval).
pub const BUCKET_SECS: i64 = 10;
/// A gauge series idle this long forgets its current value (Etsy deltas then start from 0 again).
pub const GAUGE_IDLE_SECS: i64 = 300;
/// Most events and service checks kept for [`Aggregator::take_events`]; older ones are dropped first.
pub const MAX_QUEUED_EVENTS: usize = 10_000;

/// An event or service check received over DogStatsD. A missing timestamp is filled with the arrival time.
#[derive(Debug, Clone, PartialEq)]
pub enum StatsdEvent {
    Event(Event),
    ServiceCheck(ServiceCheck),
}

impl StatsdEvent {
    /// The log record it is stored as (see [`crate::events`]); an event gets a new id.
    pub fn to_record(&self, now_ns: i64) -> LogRecord {
        match self {
            StatsdEvent::Event(e) => {
                let mut r = event_record(e, now_ns);
                r.attributes
                    .insert(EVENT_ID_ATTR.into(), next_event_id(now_ns).into());
                r
            }
            StatsdEvent::ServiceCheck(c) => service_check_record(c, now_ns),
        }
    }
}

/// The bucket (unix seconds, a multiple of [`BUCKET_SECS`]) that `secs` falls in.
pub fn bucket_of(secs: i64) -> i64 {
    secs.div_euclid(BUCKET_SECS) * BUCKET_SECS
}

/// Unix time as (whole seconds, nanoseconds since the epoch); times before the epoch count as 0.
fn unix(now: SystemTime) -> (i64, i128) {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, d.as_nanos() as i128)
}

/// What a shard saw of one gauge in one bucket since the last flush.
#[derive(Debug, Clone, Copy, Default)]
struct GaugeOp {
    /// The last absolute value and its arrival (nanoseconds), if any.
    set: Option<(f64, i128)>,
    /// The sum of the deltas after that value (or of all deltas when there is none).
    delta: f64,
    /// Arrival of the last delta, in nanoseconds.
    last_delta_ns: i128,
}

impl GaugeOp {
    /// Applies the updates of every shard to `current`: the latest absolute value wins, plus the deltas
    /// after it (the owner's exactly; another shard's when its last delta came later, an approximation for
    /// the rare gauge that gets values and deltas from several threads in one flush interval).
    fn apply(ops: &[GaugeOp], current: f64) -> f64 {
        let latest = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| op.set.map(|(v, t)| (t, i, v)))
            .max_by_key(|x| (x.0, x.1));
        match latest {
            None => current + ops.iter().map(|op| op.delta).sum::<f64>(),
            Some((t, owner, v)) => {
                v + ops
                    .iter()
                    .enumerate()
                    .filter(|(i, op)| *i == owner || op.last_delta_ns > t)
                    .map(|(_, op)| op.delta)
                    .sum::<f64>()
            }
        }
    }
}

/// One shard's state since the last flush.
#[derive(Default)]
struct Pending {
    counts: FastMap<(i64, SeriesRef), f64>,
    sketches: FastMap<(i64, SeriesRef, MetricKind), Sketch>,
    gauges: FastMap<(i64, SeriesRef), GaugeOp>,
    sets: FastMap<(i64, SeriesRef), HashSet<String>>,
    stamped: Vec<MetricPoint>,
}

/// What a line contributes, whichever parser read it.
struct Sample<'a> {
    kind: MetricType,
    values: &'a [MetricValue<'a>],
    sample_rate: f64,
    timestamp: Option<i64>,
}

impl<'a> Sample<'a> {
    fn of(m: &'a MetricLine<'a>) -> Sample<'a> {
        Sample {
            kind: m.kind,
            values: &m.values,
            sample_rate: m.sample_rate,
            timestamp: m.timestamp,
        }
    }
}

impl Pending {
    fn add(&mut self, series: SeriesRef, m: Sample<'_>, bucket: i64, now_ns: i128) {
        let weight = (1.0 / m.sample_rate).round().max(1.0) as u64;
        let numbers = || {
            m.values.iter().map(|v| match v {
                MetricValue::Number(n) | MetricValue::GaugeDelta(n) => *n,
                MetricValue::Set(_) => 0.0,
            })
        };
        if let Some(ts) = m.timestamp {
            let (kind, value) = match m.kind {
                MetricType::Count => (
                    MetricKind::Rate,
                    Value::Scalar(numbers().sum::<f64>() / m.sample_rate),
                ),
                MetricType::Gauge => (
                    MetricKind::Gauge,
                    Value::Scalar(numbers().next_back().unwrap_or_default()),
                ),
                MetricType::Set => (MetricKind::Gauge, Value::Scalar(1.0)),
                MetricType::Timer | MetricType::Histogram | MetricType::Distribution => {
                    let mut sk = Sketch::new();
                    numbers().for_each(|v| sk.add_n(v, weight));
                    (sketch_kind(m.kind), Value::Sketch(Box::new(sk)))
                }
            };
            let interval = if kind == MetricKind::Rate {
                BUCKET_SECS as u32
            } else {
                0
            };
            self.stamped.push(MetricPoint {
                series: SeriesKey::clone(&series.0),
                kind,
                timestamp: ts,
                interval,
                value,
            });
            return;
        }
        match m.kind {
            MetricType::Count => {
                *self.counts.entry((bucket, series)).or_default() +=
                    numbers().sum::<f64>() / m.sample_rate;
            }
            MetricType::Gauge => {
                let op = self.gauges.entry((bucket, series)).or_default();
                for v in m.values {
                    match v {
                        MetricValue::Number(n) => {
                            op.set = Some((*n, now_ns));
                            op.delta = 0.0;
                        }
                        MetricValue::GaugeDelta(d) => {
                            op.delta += d;
                            op.last_delta_ns = now_ns;
                        }
                        MetricValue::Set(_) => {}
                    }
                }
            }
            MetricType::Set => {
                let set = self.sets.entry((bucket, series)).or_default();
                for v in m.values {
                    if let MetricValue::Set(s) = v {
                        if !set.contains(*s) {
                            set.insert((*s).to_string());
                        }
                    }
                }
            }
            MetricType::Timer | MetricType::Histogram | MetricType::Distribution => {
                let sk = self
                    .sketches
                    .entry((bucket, series, sketch_kind(m.kind)))
                    .or_default();
                numbers().for_each(|v| sk.add_n(v, weight));
            }
        }
    }
}

fn sketch_kind(t: MetricType) -> MetricKind {
    if t == MetricType::Distribution {
        MetricKind::Distribution
    } else {
        MetricKind::Histogram
    }
}

/// The flusher's state that outlives one flush.
#[derive(Default)]
struct FlushState {
    /// Current gauge values (for Etsy deltas) and the unix second each was last updated.
    gauges: HashMap<SeriesKey, (f64, i64)>,
    /// Set members per open bucket (the current and the previous one, for updates racing a bucket change).
    sets: HashMap<(i64, SeriesKey), HashSet<String>>,
}

/// Sharded DogStatsD aggregator: one shard per receive thread, one flusher.
pub struct Aggregator {
    shards: Box<[Mutex<Shard>]>,
    flush: Mutex<FlushState>,
    events: Mutex<VecDeque<StatsdEvent>>,
    limits: Limits,
    metrics: StatsdMetrics,
}

impl Aggregator {
    /// An aggregator with `shards` shards (at least one), enforcing `limits` on tags.
    pub fn new(shards: usize, limits: Limits, metrics: StatsdMetrics) -> Aggregator {
        Aggregator {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(Shard::default()))
                .collect(),
            flush: Mutex::new(FlushState::default()),
            events: Mutex::new(VecDeque::new()),
            limits,
            metrics,
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// The counters this aggregator updates.
    pub fn metrics(&self) -> &StatsdMetrics {
        &self.metrics
    }

    /// Counts a refused line under its reason.
    pub fn count_error(&self, e: &ParseError) {
        tracing::debug!("dogstatsd: {e}");
        self.metrics
            .parse_errors
            .get_or_create(&[("reason", e.reason())])
            .inc();
    }

    /// Parses one datagram that arrived at `now` and aggregates its lines into shard `shard` (taken modulo
    /// the number of shards). Bad lines are counted and skipped; the others are kept.
    pub fn ingest(&self, shard: usize, datagram: &[u8], now: SystemTime) {
        let (secs, now_ns) = unix(now);
        let bucket = bucket_of(secs);
        let mut lines = 0u64;
        // The shard's lock is only ever contended by the flusher, once a second.
        let mut guard = self.shards[shard % self.shards.len()].lock();
        let s = &mut *guard;
        for line in datagram_lines(datagram) {
            lines += 1;
            // Fast path: a plain one-value line of a series the cache knows.
            if let Some(f) = parse_fast(line) {
                if let Some(series) = s.cache.lookup(f.name, f.tags, f.container, secs) {
                    let value = if f.delta {
                        MetricValue::GaugeDelta(f.value)
                    } else {
                        MetricValue::Number(f.value)
                    };
                    let sample = Sample {
                        kind: f.kind,
                        values: std::slice::from_ref(&value),
                        sample_rate: f.sample_rate,
                        timestamp: None,
                    };
                    s.pending.add(series, sample, bucket, now_ns);
                    continue;
                }
            }
            match parse_line(line) {
                Err(e) => self.count_error(&e),
                Ok(Line::Metric(m)) => match s.cache.resolve(&m, secs, &self.limits) {
                    Ok(series) => s.pending.add(series, Sample::of(&m), bucket, now_ns),
                    Err(e) => self.count_error(&e),
                },
                Ok(Line::Event(mut ev)) => {
                    ev.timestamp.get_or_insert(secs);
                    self.push_event(StatsdEvent::Event(ev));
                }
                Ok(Line::ServiceCheck(mut sc)) => {
                    sc.timestamp.get_or_insert(secs);
                    self.push_event(StatsdEvent::ServiceCheck(sc));
                }
            }
        }
        self.metrics.lines.inc_by(lines);
    }

    fn push_event(&self, ev: StatsdEvent) {
        let kind = match ev {
            StatsdEvent::Event(_) => "event",
            StatsdEvent::ServiceCheck(_) => "service_check",
        };
        self.metrics.events.get_or_create(&[("type", kind)]).inc();
        let mut q = self.events.lock();
        if q.len() >= MAX_QUEUED_EVENTS {
            q.pop_front();
            self.metrics
                .events_dropped
                .get_or_create(&[("reason", "queue_full")])
                .inc();
        }
        q.push_back(ev);
    }

    /// Takes every queued event and service check, oldest first.
    pub fn take_events(&self) -> Vec<StatsdEvent> {
        self.events.lock().drain(..).collect()
    }

    /// Takes the queued events and service checks and writes them to `sink` as one batch of log records
    /// (nothing is written when the queue is empty). Records the sink refuses are logged and counted in
    /// `sightline_statsd_events_dropped_total{reason}`, and lost.
    pub async fn flush_events(
        &self,
        sink: &dyn LogSink,
        now: SystemTime,
    ) -> Result<WriteOutcome, SinkError> {
        let events = self.take_events();
        if events.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let (_, now_ns) = unix(now);
        let now_ns = i64::try_from(now_ns).unwrap_or(i64::MAX);
        let records: Vec<LogRecord> = events.iter().map(|e| e.to_record(now_ns)).collect();
        let n = records.len();
        let dropped = |reason: &'static str, count: usize| {
            self.metrics
                .events_dropped
                .get_or_create(&[("reason", reason)])
                .inc_by(count as u64);
        };
        match sink.write_logs(LogBatch { records }).await {
            Ok(outcome) => {
                if outcome.rejected > 0 {
                    tracing::warn!(
                        rejected = outcome.rejected,
                        "dogstatsd events: storage refused some records: {}",
                        outcome.errors.join("; ")
                    );
                    dropped("rejected", outcome.rejected);
                }
                Ok(outcome)
            }
            Err(e) => {
                tracing::warn!(
                    records = n,
                    "dogstatsd events: write failed, events and service checks lost: {e}"
                );
                dropped(crate::logs::drop_reason(&e), n);
                Err(e)
            }
        }
    }

    /// Collects what changed since the previous call from every shard, as of `now`: count and sketch
    /// deltas, full gauge values and set cardinalities, and `T`-stamped points.
    pub fn collect(&self, now: SystemTime) -> MetricBatch {
        let (now_secs, _) = unix(now);
        let pendings: Vec<Pending> = self
            .shards
            .iter()
            .map(|s| {
                let mut s = s.lock();
                s.cache.sweep(now_secs);
                std::mem::take(&mut s.pending)
            })
            .collect();
        let mut state = self.flush.lock();
        let mut points = Vec::new();

        let mut counts: HashMap<(i64, SeriesKey), f64> = HashMap::new();
        let mut sketches: HashMap<(i64, SeriesKey, MetricKind), Sketch> = HashMap::new();
        let mut gauge_ops: HashMap<(i64, SeriesKey), Vec<GaugeOp>> = HashMap::new();
        let mut set_changes: HashSet<(i64, SeriesKey)> = HashSet::new();
        // Shards share no series handles, so merge them by the keys' values (once per series per flush).
        let key = |s: SeriesRef| Arc::unwrap_or_clone(s.0);
        for p in pendings {
            for ((b, s), v) in p.counts {
                *counts.entry((b, key(s))).or_default() += v;
            }
            for ((b, s, kind), sk) in p.sketches {
                match sketches.entry((b, key(s), kind)) {
                    std::collections::hash_map::Entry::Occupied(mut have) => {
                        have.get_mut().merge(&sk)
                    }
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(sk);
                    }
                }
            }
            for ((b, s), op) in p.gauges {
                gauge_ops.entry((b, key(s))).or_default().push(op);
            }
            for ((b, s), values) in p.sets {
                let k = (b, key(s));
                let have = state.sets.entry(k.clone()).or_default();
                let before = have.len();
                have.extend(values);
                if have.len() != before {
                    set_changes.insert(k);
                }
            }
            points.extend(p.stamped);
        }

        for ((bucket, series), total) in counts {
            let value = Value::Scalar(total);
            points.push(MetricPoint {
                series,
                kind: MetricKind::Rate,
                timestamp: bucket,
                interval: 10,
                value,
            });
        }
        for ((bucket, series, kind), sk) in sketches {
            let value = Value::Sketch(Box::new(sk));
            points.push(MetricPoint {
                series,
                kind,
                timestamp: bucket,
                interval: 10,
                value,
            });
        }

        // Gauges: apply every shard's updates, bucket by bucket, to the persistent current value.
        let mut gauge_ops: Vec<_> = gauge_ops.into_iter().collect();
        gauge_ops.sort_by_key(|((bucket, _), _)| *bucket);
        for ((bucket, series), ops) in gauge_ops {
            let cur = state
                .gauges
                .entry(series.clone())
                .or_insert((0.0, now_secs));
            cur.0 = GaugeOp::apply(&ops, cur.0);
            cur.1 = now_secs;
            let v = cur.0;
            points.push(MetricPoint {
                series,
                kind: MetricKind::Gauge,
                timestamp: bucket,
                interval: 10,
                value: Value::Scalar(v),
            });
        }

        for key in set_changes {
            let n = state.sets.get(&key).map_or(0, HashSet::len);
            let (bucket, series) = key;
            points.push(MetricPoint {
                series,
                kind: MetricKind::Gauge,
                timestamp: bucket,
                interval: 10,
                value: Value::Scalar(n as f64),
            });
        }

        // Forget closed buckets' set members and idle gauges.
        let oldest_open = bucket_of(now_secs) - BUCKET_SECS;
        state.sets.retain(|(bucket, _), _| *bucket >= oldest_open);
        state
            .gauges
            .retain(|_, (_, seen)| now_secs - *seen <= GAUGE_IDLE_SECS);

        MetricBatch { points }
    }

    /// Collects (see [`Aggregator::collect`]) and writes the batch to `sink`. A refused batch is logged,
    /// counted in `sightline_statsd_flush_errors_total` and lost. An empty batch is not written.
    pub async fn flush(
        &self,
        sink: &dyn BatchSink,
        now: SystemTime,
    ) -> Result<WriteOutcome, SinkError> {
        let batch = self.collect(now);
        if batch.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let n = batch.len();
        match sink.write_metrics(batch).await {
            Ok(outcome) => {
                if outcome.rejected > 0 {
                    tracing::warn!(
                        rejected = outcome.rejected,
                        "dogstatsd flush: storage refused some points: {}",
                        outcome.errors.join("; ")
                    );
                }
                Ok(outcome)
            }
            Err(e) => {
                tracing::warn!(points = n, "dogstatsd flush failed, points lost: {e}");
                self.metrics.flush_errors.inc();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use sightline_model::{MemorySink, TagSet};
    use std::time::Duration;

    const T0: u64 = 1_700_000_000; // a bucket start

    fn at(secs: f64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs_f64(T0 as f64 + secs)
    }

    fn agg(shards: usize) -> Aggregator {
        Aggregator::new(shards, Limits::default(), StatsdMetrics::default())
    }

    fn series(name: &str, tags: &[&str]) -> SeriesKey {
        SeriesKey::new(name, TagSet::parse(tags.iter().copied(), 100, 200).unwrap())
    }

    /// The points of `batch` for `name`, as (kind, timestamp, value) with sketches shown by their count.
    fn find<'a>(batch: &'a MetricBatch, name: &str) -> Vec<&'a MetricPoint> {
        batch
            .points
            .iter()
            .filter(|p| p.series.name == name)
            .collect()
    }

    fn scalar(p: &MetricPoint) -> f64 {
        match &p.value {
            Value::Scalar(v) => *v,
            Value::Sketch(_) => panic!("{p:?} is a sketch"),
        }
    }

    fn sketch(p: &MetricPoint) -> &Sketch {
        match &p.value {
            Value::Sketch(s) => s,
            Value::Scalar(_) => panic!("{p:?} is a scalar"),
        }
    }

    fn one(batch: &MetricBatch, name: &str) -> MetricPoint {
        let found = find(batch, name);
        assert_eq!(found.len(), 1, "points for {name}: {found:?}");
        found[0].clone()
    }

    #[test]
    fn counts_with_sample_rates() {
        let a = agg(1);
        a.ingest(
            0,
            b"hits:1|c|@0.5\nhits:1|c|@0.5\nhits:2|c|#env:prod",
            at(1.0),
        );
        a.ingest(0, b"hits:1:2|c\nhits:3|c|@0.1", at(9.9));
        let b = a.collect(at(9.9));
        let p = b
            .points
            .iter()
            .find(|p| p.series == series("hits", &[]))
            .unwrap()
            .clone();
        // Tags make a different series.
        assert_eq!(find(&b, "hits").len(), 2);
        assert_eq!(p.kind, MetricKind::Rate);
        assert_eq!(p.interval, 10);
        assert_eq!(p.timestamp, T0 as i64);
        assert!(
            (scalar(&p) - (2.0 + 2.0 + 3.0 + 30.0)).abs() < 1e-9,
            "{p:?}"
        );
        assert_eq!(
            b.points
                .iter()
                .filter(|p| p.series == series("hits", &["env:prod"]))
                .count(),
            1
        );
        assert_eq!(a.metrics().lines.get(), 5);
    }

    #[test]
    fn gauge_last_value_and_deltas() {
        let a = agg(1);
        a.ingest(
            0,
            b"temp:5|g\ntemp:7|g\nfuel:10|g\nfuel:+3|g\nfuel:-1:+0.5|g",
            at(1.0),
        );
        let b = a.collect(at(1.0));
        assert_eq!(scalar(&one(&b, "temp")), 7.0);
        assert_eq!(scalar(&one(&b, "fuel")), 12.5);
        // The current value persists into the next bucket; an absolute value resets it.
        a.ingest(0, b"fuel:-2.5|g", at(15.0));
        let b = a.collect(at(15.0));
        let p = one(&b, "fuel");
        assert_eq!((p.timestamp, scalar(&p)), (T0 as i64 + 10, 10.0));
        assert!(
            find(&b, "temp").is_empty(),
            "unchanged gauges are not emitted"
        );
        a.ingest(0, b"fuel:4|g\nfuel:+1|g", at(16.0));
        assert_eq!(scalar(&one(&a.collect(at(16.0)), "fuel")), 5.0);
        // Idle for more than 5 minutes: deltas start from 0 again.
        a.collect(at(16.0 + GAUGE_IDLE_SECS as f64 + 1.0));
        a.ingest(0, b"fuel:+1|g", at(400.0));
        assert_eq!(scalar(&one(&a.collect(at(400.0)), "fuel")), 1.0);
    }

    #[test]
    fn gauge_updates_from_two_shards_apply_in_arrival_order() {
        let a = agg(2);
        a.ingest(1, b"g:1|g", at(1.0));
        a.ingest(0, b"g:100|g", at(2.0));
        a.ingest(1, b"g:+5|g", at(3.0));
        assert_eq!(scalar(&one(&a.collect(at(3.0)), "g")), 105.0);
        // A delta that came before another shard's absolute value is overwritten by it.
        a.ingest(1, b"g:+5|g", at(4.0));
        a.ingest(0, b"g:50|g", at(5.0));
        assert_eq!(scalar(&one(&a.collect(at(5.0)), "g")), 50.0);
        // Deltas only, from both shards: they all add up.
        a.ingest(0, b"g:+1|g", at(6.0));
        a.ingest(1, b"g:-3:+0.5|g", at(7.0));
        assert_eq!(scalar(&one(&a.collect(at(7.0)), "g")), 48.5);
    }

    #[test]
    fn set_uniques_across_two_shards() {
        let a = agg(2);
        a.ingest(0, b"users:alice|s\nusers:bob|s\nusers:alice|s", at(1.0));
        a.ingest(1, b"users:bob|s\nusers:carol|s", at(2.0));
        let p = one(&a.collect(at(2.0)), "users");
        assert_eq!(
            (p.kind, p.timestamp, scalar(&p)),
            (MetricKind::Gauge, T0 as i64, 3.0)
        );
        // No new member: nothing emitted. A new member: the full count for the bucket.
        a.ingest(1, b"users:alice|s", at(3.0));
        assert!(a.collect(at(3.0)).is_empty());
        a.ingest(0, b"users:dave|s", at(4.0));
        assert_eq!(scalar(&one(&a.collect(at(4.0)), "users")), 4.0);
        // A new bucket counts from zero.
        a.ingest(1, b"users:alice|s", at(11.0));
        let p = one(&a.collect(at(11.0)), "users");
        assert_eq!((p.timestamp, scalar(&p)), (T0 as i64 + 10, 1.0));
    }

    #[test]
    fn sketch_p99_from_many_values() {
        let a = agg(2);
        for i in 1..=10_000u32 {
            let line = format!("lat:{i}|ms\nsize:{i}|d|@0.5");
            a.ingest((i % 2) as usize, line.as_bytes(), at(5.0));
        }
        let b = a.collect(at(5.0));
        let lat = one(&b, "lat");
        assert_eq!(lat.kind, MetricKind::Histogram);
        let sk = sketch(&lat);
        assert_eq!(sk.count(), 10_000);
        let p99 = sk.quantile(0.99).unwrap();
        assert!((p99 - 9900.0).abs() <= 0.01 * 9900.0 + 1.0, "p99 {p99}");
        assert_eq!(sk.max(), Some(10_000.0));
        let size = one(&b, "size");
        assert_eq!(size.kind, MetricKind::Distribution);
        assert_eq!(sketch(&size).count(), 20_000, "weight round(1/0.5) = 2");
    }

    #[test]
    fn partial_flush_deltas_sum_to_bucket_total() {
        let a = agg(3);
        let mut emitted = Vec::new();
        let mut expected = 0.0;
        let mut samples = 0;
        for step in 0..40u32 {
            let t = step as f64 * 0.25; // 40 steps over one 10 s bucket
            let v = (step % 7) as f64 + 0.5;
            let line = format!("req:{v}|c|@0.25\nlat:{v}|h");
            a.ingest(step as usize % 3, line.as_bytes(), at(t));
            expected += v / 0.25;
            samples += 1;
            if step % 4 == 3 {
                emitted.push(a.collect(at(t)));
            }
        }
        emitted.push(a.collect(at(9.99)));
        let counts: f64 = emitted
            .iter()
            .flat_map(|b| find(b, "req"))
            .map(scalar)
            .sum();
        assert!((counts - expected).abs() < 1e-6, "{counts} vs {expected}");
        let mut merged = Sketch::new();
        emitted
            .iter()
            .flat_map(|b| find(b, "lat"))
            .for_each(|p| merged.merge(sketch(p)));
        assert_eq!(merged.count(), samples);
        assert!(emitted
            .iter()
            .flat_map(|b| &b.points)
            .all(|p| p.timestamp == T0 as i64));
        assert!(
            a.collect(at(9.99)).is_empty(),
            "nothing changed since the last flush"
        );
    }

    #[test]
    fn timestamped_points_bypass_aggregation() {
        let a = agg(1);
        a.ingest(
            0,
            b"c:3|c|@0.5|T1600000000\nc:1|c|T1600000000\ng:7|g|T1600000005\nh:1:2|h|T1600000007\nd:4|d|@0.5|T1600000008\ns:x|s|T1600000009\nc:1|c",
            at(1.0),
        );
        let b = a.collect(at(1.0));
        let c = find(&b, "c");
        assert_eq!(c.len(), 3);
        let stamped: Vec<_> = c
            .iter()
            .filter(|p| p.timestamp == 1_600_000_000)
            .map(|p| scalar(p))
            .collect();
        assert_eq!(stamped, [6.0, 1.0]);
        assert!(c
            .iter()
            .all(|p| p.kind == MetricKind::Rate && p.interval == 10));
        let g = one(&b, "g");
        assert_eq!(
            (g.kind, g.timestamp, scalar(&g)),
            (MetricKind::Gauge, 1_600_000_005, 7.0)
        );
        let h = one(&b, "h");
        assert_eq!(
            (h.kind, h.timestamp, sketch(&h).count()),
            (MetricKind::Histogram, 1_600_000_007, 2)
        );
        let d = one(&b, "d");
        assert_eq!(
            (d.kind, d.timestamp, sketch(&d).count()),
            (MetricKind::Distribution, 1_600_000_008, 2)
        );
        let s = one(&b, "s");
        assert_eq!((s.kind, scalar(&s)), (MetricKind::Gauge, 1.0));
    }

    #[test]
    fn tag_limits_skip_only_the_offending_line() {
        let limits = Limits {
            max_tags_per_point: 2,
            max_tag_length: 16,
            ..Limits::default()
        };
        let a = Aggregator::new(1, limits, StatsdMetrics::default());
        a.ingest(
            0,
            b"ok:1|c|#a,b\nmany:1|c|#a,b,c\nlong:1|c|#k:0123456789abcdef\nbad|c\nok2:1|g|c:ctr",
            at(1.0),
        );
        let b = a.collect(at(1.0));
        assert_eq!(one(&b, "ok").series, series("ok", &["a", "b"]));
        assert_eq!(one(&b, "ok2").series, series("ok2", &["container_id:ctr"]));
        assert_eq!(b.len(), 2);
        let m = a.metrics();
        assert_eq!(m.parse_error_count("too_many_tags"), 1);
        assert_eq!(m.parse_error_count("tag_too_long"), 1);
        assert_eq!(m.parse_error_count("bad_format"), 1);
        assert_eq!(m.lines.get(), 5);
    }

    #[test]
    fn events_are_counted_and_queued() {
        let a = agg(1);
        a.ingest(
            0,
            b"_e{2,2}:hi|yo|#a\n_sc|db|2|d:1600000000\nx:1|c",
            at(3.0),
        );
        let evs = a.take_events();
        assert_eq!(evs.len(), 2);
        let StatsdEvent::Event(ev) = &evs[0] else {
            panic!("{evs:?}")
        };
        assert_eq!(
            (ev.title.as_str(), ev.timestamp),
            ("hi", Some(T0 as i64 + 3))
        );
        let StatsdEvent::ServiceCheck(sc) = &evs[1] else {
            panic!("{evs:?}")
        };
        assert_eq!((sc.status, sc.timestamp), (2, Some(1_600_000_000)));
        assert!(a.take_events().is_empty());
        let m = a.metrics();
        assert_eq!(m.events.get_or_create(&[("type", "event")]).get(), 1);
        assert_eq!(
            m.events.get_or_create(&[("type", "service_check")]).get(),
            1
        );
        for _ in 0..MAX_QUEUED_EVENTS + 5 {
            a.ingest(0, b"_sc|x|0", at(4.0));
        }
        assert_eq!(a.take_events().len(), MAX_QUEUED_EVENTS);
        assert_eq!(m.events_dropped_count("queue_full"), 5);
    }

    struct FailingSink;

    #[async_trait]
    impl BatchSink for FailingSink {
        async fn write_metrics(&self, _: MetricBatch) -> Result<WriteOutcome, SinkError> {
            Err(SinkError::Io("disk full".into()))
        }
    }

    #[tokio::test]
    async fn flush_writes_to_sink_and_counts_errors() {
        let a = agg(1);
        let sink = MemorySink::default();
        a.ingest(0, b"a:1|c", at(1.0));
        a.flush(&sink, at(1.0)).await.unwrap();
        a.flush(&sink, at(2.0)).await.unwrap();
        {
            let batches = sink.batches.lock().unwrap();
            assert_eq!(batches.len(), 1, "empty flushes write nothing");
            assert_eq!(scalar(&one(&batches[0], "a")), 1.0);
        }
        a.ingest(0, b"a:1|c", at(3.0));
        assert!(a.flush(&FailingSink, at(3.0)).await.is_err());
        assert_eq!(a.metrics().flush_errors.get(), 1);
    }

    #[async_trait]
    impl LogSink for FailingSink {
        async fn write_logs(&self, _: LogBatch) -> Result<WriteOutcome, SinkError> {
            Err(SinkError::Overloaded("wal queue full".into()))
        }
    }

    #[tokio::test]
    async fn flush_events_writes_log_records_and_counts_errors() {
        let a = agg(1);
        let sink = MemorySink::default();
        // Nothing queued: nothing written.
        a.flush_events(&sink, at(1.0)).await.unwrap();
        assert!(sink.logs.lock().unwrap().is_empty());

        a.ingest(
            0,
            b"_e{6,4}:deploy|done|t:success|#Env:prod\n_sc|db.up|2|h:db-1|m:refused",
            at(2.0),
        );
        let out = a.flush_events(&sink, at(3.0)).await.unwrap();
        assert_eq!(out.accepted, 2);
        let logs = sink.logs.lock().unwrap().clone();
        assert_eq!(logs.len(), 1);
        let r = &logs[0].records;
        assert_eq!(
            (
                r[0].source.as_deref(),
                r[0].message.as_str(),
                r[0].status.as_str()
            ),
            (Some("event"), "deploy\ndone", "ok")
        );
        // The arrival time (the aggregator fills the missing timestamp), not the flush time.
        assert_eq!(r[0].ts_ns, (T0 as i64 + 2) * 1_000_000_000);
        assert_eq!(r[0].tags, ["env:prod"]);
        assert!(r[0].attributes[EVENT_ID_ATTR].as_u64().unwrap() > 0);
        assert_eq!(
            (
                r[1].source.as_deref(),
                r[1].message.as_str(),
                r[1].status.as_str()
            ),
            (Some("service_check"), "refused", "critical")
        );
        assert_eq!(r[1].host.as_deref(), Some("db-1"));

        a.ingest(0, b"_sc|x|0\n_sc|y|1", at(4.0));
        assert!(a.flush_events(&FailingSink, at(4.0)).await.is_err());
        assert_eq!(a.metrics().events_dropped_count("overloaded"), 2);
        assert!(a.take_events().is_empty());
    }

    #[test]
    fn series_cache_merges_raw_spellings_and_forgets_idle_series() {
        let a = agg(1);
        // Three spellings of one series: tag order, key case and a duplicate tag differ only in raw bytes.
        a.ingest(
            0,
            b"c.hits:1|c|#b:2,a:1\nc.hits:2|c|#a:1,b:2\nc.hits:4|c|#A:1,b:2,b:2",
            at(1.0),
        );
        a.ingest(0, b"c.hits:8|c|#b:2,a:1|c:abc", at(2.0));
        let batch = a.collect(at(3.0));
        let mut got: Vec<(String, f64)> = find(&batch, "c.hits")
            .iter()
            .map(|p| (p.series.tags.to_string(), scalar(p)))
            .collect();
        got.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            got,
            vec![
                ("a:1,b:2".to_string(), 7.0),
                ("a:1,b:2,container_id:abc".to_string(), 8.0)
            ]
        );
        assert_eq!(a.shards[0].lock().cache.map.len(), 4);

        // Idle entries go at the first sweep after CACHE_IDLE_SECS; a used one stays.
        a.ingest(0, b"c.hits:1|c|#a:1,b:2", at(200.0));
        a.collect(at(200.0 + CACHE_IDLE_SECS as f64));
        assert_eq!(a.shards[0].lock().cache.map.len(), 1);
        a.ingest(0, b"c.hits:1|c|#b:2,a:1", at(700.0));
        let batch = a.collect(at(701.0));
        assert_eq!(find(&batch, "c.hits").len(), 1);
    }

    #[test]
    fn lines_over_tag_limits_are_refused_every_time() {
        let limits = Limits {
            max_tags_per_point: 2,
            ..Limits::default()
        };
        let a = Aggregator::new(1, limits, StatsdMetrics::default());
        for _ in 0..3 {
            a.ingest(0, b"c.many:1|c|#a:1,b:2,c:3\nc.ok:1|c|#a:1", at(1.0));
        }
        assert_eq!(a.metrics().parse_error_count("too_many_tags"), 3);
        let batch = a.collect(at(2.0));
        assert!(find(&batch, "c.many").is_empty());
        assert_eq!(scalar(find(&batch, "c.ok")[0]), 3.0);
    }

    #[test]
    fn fast_and_full_paths_aggregate_alike() {
        let a = agg(1);
        // The first datagram warms the cache through the full parser (its second gauge line already takes
        // the fast path); the second is read entirely by the fast path.
        let gram = b"f.c:2|c|@0.5|#a:1\nf.g:10|g|#a:1\nf.g:+5|g|#a:1\nf.t:3|ms|@0.25|c:ctr\nf.d:7|d\nf.d:-1|d";
        a.ingest(0, gram, at(1.0));
        a.ingest(0, gram, at(2.0));
        let batch = a.collect(at(3.0));
        assert_eq!(scalar(find(&batch, "f.c")[0]), 8.0);
        assert_eq!(find(&batch, "f.c")[0].series, series("f.c", &["a:1"]));
        assert_eq!(scalar(find(&batch, "f.g")[0]), 15.0);
        let t = find(&batch, "f.t");
        assert_eq!(t[0].series, series("f.t", &["container_id:ctr"]));
        assert_eq!(sketch(t[0]).count(), 8);
        let d = sketch(find(&batch, "f.d")[0]);
        assert_eq!((d.count(), d.min(), d.max()), (4, Some(-1.0), Some(7.0)));
        assert_eq!(a.metrics().lines.get(), 12);
    }
}

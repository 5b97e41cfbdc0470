//! The in-memory head: the not-yet-flushed points, columnar per series and sorted by timestamp, with the
//! merge rules (counts and rates sum, gauges last write wins, sketches merge). Also `MemMetricStore`, an
//! index plus a head behind a lock: a complete `MetricReader` and `BatchSink` with no disk, for unit tests.

use crate::index::SeriesIndex;
use crate::{MetricReader, SeriesData, SeriesId, StorageError};
use async_trait::async_trait;
use parking_lot::RwLock;
use sightline_model::{
    BatchSink, Limits, MetricBatch, MetricKind, SinkError, Sketch, Value, WriteOutcome,
};
use std::borrow::Cow;
use std::collections::HashMap;

/// The points of one series, sorted by timestamp, one per timestamp.
#[derive(Debug, Clone)]
pub enum Column {
    Scalars { ts: Vec<i64>, vals: Vec<f64> },
    Sketches(Vec<(i64, Sketch)>),
}

impl Column {
    fn new(sketch: bool) -> Column {
        if sketch {
            Column::Sketches(Vec::new())
        } else {
            Column::Scalars {
                ts: Vec::new(),
                vals: Vec::new(),
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Column::Scalars { ts, .. } => ts.len(),
            Column::Sketches(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The points in `[from, to)`.
    pub fn range(&self, from: i64, to: i64) -> SeriesData {
        match self {
            Column::Scalars { ts, vals } => {
                let a = ts.partition_point(|t| *t < from);
                let b = ts.partition_point(|t| *t < to).max(a);
                SeriesData::Scalars(
                    ts[a..b]
                        .iter()
                        .copied()
                        .zip(vals[a..b].iter().copied())
                        .collect(),
                )
            }
            Column::Sketches(v) => {
                let a = v.partition_point(|p| p.0 < from);
                let b = v.partition_point(|p| p.0 < to).max(a);
                SeriesData::Sketches(v[a..b].to_vec())
            }
        }
    }
}

/// Combines two scalar values of one series at one timestamp; `new` is the later write.
pub fn merge_scalar(kind: MetricKind, old: f64, new: f64) -> f64 {
    if kind.is_count() {
        old + new
    } else {
        new
    }
}

/// Merges two sorted point lists of one series (`newer` written after `older`) with the merge rules of
/// `kind`. Mismatched shapes (scalars and sketches) keep `older`'s shape and drop the other.
pub fn merge_data(kind: MetricKind, older: SeriesData, newer: SeriesData) -> SeriesData {
    match (older, newer) {
        (SeriesData::Scalars(a), SeriesData::Scalars(b)) => {
            if b.is_empty() {
                return SeriesData::Scalars(a);
            }
            if a.is_empty() {
                return SeriesData::Scalars(b);
            }
            let mut out = Vec::with_capacity(a.len() + b.len());
            let (mut i, mut j) = (0, 0);
            while i < a.len() && j < b.len() {
                match a[i].0.cmp(&b[j].0) {
                    std::cmp::Ordering::Less => {
                        out.push(a[i]);
                        i += 1;
                    }
                    std::cmp::Ordering::Greater => {
                        out.push(b[j]);
                        j += 1;
                    }
                    std::cmp::Ordering::Equal => {
                        out.push((a[i].0, merge_scalar(kind, a[i].1, b[j].1)));
                        i += 1;
                        j += 1;
                    }
                }
            }
            out.extend_from_slice(&a[i..]);
            out.extend_from_slice(&b[j..]);
            SeriesData::Scalars(out)
        }
        (SeriesData::Sketches(a), SeriesData::Sketches(b)) => {
            if b.is_empty() {
                return SeriesData::Sketches(a);
            }
            if a.is_empty() {
                return SeriesData::Sketches(b);
            }
            let mut out = Vec::with_capacity(a.len() + b.len());
            let mut a = a.into_iter().peekable();
            let mut b = b.into_iter().peekable();
            loop {
                let next = match (a.peek(), b.peek()) {
                    (Some(x), Some(y)) if x.0 < y.0 => a.next().unwrap(),
                    (Some(x), Some(y)) if x.0 > y.0 => b.next().unwrap(),
                    (Some(_), Some(_)) => {
                        let (t, mut s) = a.next().unwrap();
                        s.merge(&b.next().unwrap().1);
                        (t, s)
                    }
                    (Some(_), None) => a.next().unwrap(),
                    (None, Some(_)) => b.next().unwrap(),
                    (None, None) => break,
                };
                out.push(next);
            }
            SeriesData::Sketches(out)
        }
        (old, _) => old,
    }
}

/// An empty result of the right shape for a kind.
/// Combines the parts of one series read from several sources, given oldest first, with the merge rules of
/// `kind`. Parts whose time ranges do not overlap (the usual case: one per block, then the heads) are
/// concatenated in one allocation; overlapping parts fall back to pairwise merges in write order.
pub fn merge_parts(kind: MetricKind, mut parts: Vec<SeriesData>) -> SeriesData {
    fn span(d: &SeriesData) -> Option<(i64, i64)> {
        match d {
            SeriesData::Scalars(v) => Some((v.first()?.0, v.last()?.0)),
            SeriesData::Sketches(v) => Some((v.first()?.0, v.last()?.0)),
        }
    }
    let sketch = kind.is_sketch();
    parts.retain(|p| span(p).is_some() && matches!(p, SeriesData::Sketches(_)) == sketch);
    if parts.len() <= 1 {
        return parts.pop().unwrap_or_else(|| empty_data(kind));
    }
    let mut order: Vec<(i64, i64, usize)> = parts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| span(p).map(|(a, b)| (a, b, i)))
        .collect();
    order.sort_unstable();
    let disjoint = order.windows(2).all(|w| w[0].1 < w[1].0);
    if !disjoint {
        let mut it = parts.into_iter();
        let first = it.next().unwrap_or_else(|| empty_data(kind));
        return it.fold(first, |acc, p| merge_data(kind, acc, p));
    }
    let total: usize = parts
        .iter()
        .map(|p| match p {
            SeriesData::Scalars(v) => v.len(),
            SeriesData::Sketches(v) => v.len(),
        })
        .sum();
    let mut slots: Vec<Option<SeriesData>> = parts.into_iter().map(Some).collect();
    let mut ordered = order.iter().filter_map(|&(_, _, i)| slots[i].take());
    match ordered.next() {
        Some(SeriesData::Scalars(mut out)) => {
            out.reserve(total - out.len());
            for p in ordered {
                if let SeriesData::Scalars(v) = p {
                    out.extend_from_slice(&v);
                }
            }
            SeriesData::Scalars(out)
        }
        Some(SeriesData::Sketches(mut out)) => {
            out.reserve(total - out.len());
            for p in ordered {
                if let SeriesData::Sketches(v) = p {
                    out.extend(v);
                }
            }
            SeriesData::Sketches(out)
        }
        None => empty_data(kind),
    }
}

pub fn empty_data(kind: MetricKind) -> SeriesData {
    if kind.is_sketch() {
        SeriesData::Sketches(Vec::new())
    } else {
        SeriesData::Scalars(Vec::new())
    }
}

/// The in-memory head.
#[derive(Debug, Clone)]
pub struct Head {
    series: HashMap<SeriesId, Column>,
    points: usize,
    min_ts: i64,
    max_ts: i64,
    /// Highest write-ahead-log sequence number applied to this head (0 when none).
    pub max_lsn: u64,
}

impl Default for Head {
    fn default() -> Self {
        Head::new()
    }
}

impl Head {
    pub fn new() -> Head {
        Head {
            series: HashMap::new(),
            points: 0,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            max_lsn: 0,
        }
    }

    /// Inserts every point of a newer head into this one (merge rules of each series' kind in `index`), one
    /// merge pass per series.
    pub fn absorb(&mut self, newer: Head, index: &SeriesIndex) {
        for (id, col) in newer.series {
            let kind = index.meta(id).map_or(MetricKind::Gauge, |m| m.kind);
            let pending = match col {
                Column::Scalars { ts, vals } => Pending::Scalars(
                    ts.into_iter()
                        .zip(vals)
                        .map(|(t, v)| (t, kind, v))
                        .collect(),
                ),
                Column::Sketches(pts) => {
                    Pending::Sketches(pts.into_iter().map(|(t, s)| (t, Cow::Owned(s))).collect())
                }
            };
            self.merge_pending(id, kind.is_sketch(), pending);
        }
        self.max_lsn = self.max_lsn.max(newer.max_lsn);
    }

    /// Applies a batch: resolves each point's series through the index (which enforces the cardinality
    /// limits) and inserts it. Rejected points are counted and described; the rest are kept.
    ///
    /// A point later than everything its series holds is appended at once. The others are gathered per series
    /// and merged in one pass after the loop (stable sort, then one merge with the column), so a batch of
    /// out-of-order points costs `O(n log n)` rather than one shift of the column per point. The result is the
    /// same as inserting the points one by one in batch order.
    pub fn apply(&mut self, index: &mut SeriesIndex, batch: &MetricBatch) -> WriteOutcome {
        let mut out = WriteOutcome::default();
        let mut pending: HashMap<SeriesId, Pending<'_>> = HashMap::new();
        for p in &batch.points {
            let value = match (&p.value, p.kind.is_sketch()) {
                (Value::Scalar(v), false) => PendingValue::Scalar(*v),
                (Value::Sketch(s), true) => PendingValue::Sketch(Cow::Borrowed(&**s)),
                (Value::Scalar(v), true) => {
                    // A bare number for a distribution: a sketch of one sample.
                    let mut s = Sketch::new();
                    s.add(*v);
                    PendingValue::Sketch(Cow::Owned(s))
                }
                (Value::Sketch(_), false) => {
                    out.rejected += 1;
                    let msg = format!(
                        "metric {:?}: a {} point carries a sketch instead of a number",
                        p.series.name,
                        p.kind.as_str()
                    );
                    if !out.errors.contains(&msg) {
                        out.errors.push(msg);
                    }
                    continue;
                }
            };
            match index.resolve(&p.series, p.kind, p.interval, p.timestamp) {
                Ok(id) => {
                    out.accepted += 1;
                    self.append_or_defer(id, p.kind, p.timestamp, value, &mut pending);
                }
                Err(e) => {
                    out.rejected += 1;
                    let msg = e.to_string();
                    if !out.errors.contains(&msg) {
                        out.errors.push(msg);
                    }
                }
            }
        }
        for (id, pend) in pending {
            let sketch = matches!(pend, Pending::Sketches(_));
            self.merge_pending(id, sketch, pend);
        }
        out
    }

    /// Appends a point that is later than every point of its series; defers any other to `pending`. A
    /// deferred point never shares a timestamp with a point appended after it (that one is later than the
    /// column's end, which is at or past the deferred one), so merging the deferred points afterwards keeps
    /// batch order at every timestamp.
    fn append_or_defer<'a>(
        &mut self,
        id: SeriesId,
        kind: MetricKind,
        ts: i64,
        value: PendingValue<'a>,
        pending: &mut HashMap<SeriesId, Pending<'a>>,
    ) {
        let col = self
            .series
            .entry(id)
            .or_insert_with(|| Column::new(kind.is_sketch()));
        let appended = match (col, value) {
            (Column::Scalars { ts: tss, vals }, PendingValue::Scalar(v)) => {
                if tss.last().is_none_or(|l| *l < ts) {
                    tss.push(ts);
                    vals.push(v);
                    true
                } else {
                    match pending
                        .entry(id)
                        .or_insert_with(|| Pending::Scalars(Vec::new()))
                    {
                        Pending::Scalars(list) => list.push((ts, kind, v)),
                        Pending::Sketches(_) => {}
                    }
                    false
                }
            }
            (Column::Sketches(pts), PendingValue::Sketch(s)) => {
                if pts.last().is_none_or(|l| l.0 < ts) {
                    pts.push((ts, s.into_owned()));
                    true
                } else {
                    match pending
                        .entry(id)
                        .or_insert_with(|| Pending::Sketches(Vec::new()))
                    {
                        Pending::Sketches(list) => list.push((ts, s)),
                        Pending::Scalars(_) => {}
                    }
                    false
                }
            }
            // The index refuses mixing scalars and sketches in one series; nothing to do.
            _ => false,
        };
        if appended {
            self.note_added(ts);
        }
    }

    fn note_added(&mut self, ts: i64) {
        self.points += 1;
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
    }

    /// Merges a series' gathered points (in write order) into its column in one pass: a stable sort by
    /// timestamp, then a merge with the sorted column applying the merge rules in write order at each
    /// timestamp (counts sum, gauges last write wins, sketches merge).
    fn merge_pending(&mut self, id: SeriesId, sketch: bool, pending: Pending<'_>) {
        if pending.is_empty() {
            return;
        }
        let col = self.series.entry(id).or_insert_with(|| Column::new(sketch));
        let (added, lo, hi) = match (col, pending) {
            (Column::Scalars { ts, vals }, Pending::Scalars(mut inc)) => {
                inc.sort_by_key(|p| p.0);
                let (lo, hi) = (inc[0].0, inc[inc.len() - 1].0);
                (merge_scalars(ts, vals, &inc), lo, hi)
            }
            (Column::Sketches(pts), Pending::Sketches(mut inc)) => {
                inc.sort_by_key(|p| p.0);
                let (lo, hi) = (inc[0].0, inc[inc.len() - 1].0);
                (merge_sketches(pts, inc), lo, hi)
            }
            _ => return,
        };
        if added > 0 {
            // Every incoming timestamp is now held; the ones merged into existing points were in range already.
            self.points += added;
            self.min_ts = self.min_ts.min(lo);
            self.max_ts = self.max_ts.max(hi);
        }
    }

    /// Inserts one point of a known series, merging it with a point already at that timestamp (the merge pass
    /// of [`Head::apply`] with one point): for tests that build a head without an index.
    #[cfg(test)]
    pub(crate) fn insert(
        &mut self,
        id: SeriesId,
        kind: MetricKind,
        ts: i64,
        value: PointValue<'_>,
    ) {
        let pending = match value {
            PointValue::Scalar(v) => Pending::Scalars(vec![(ts, kind, v)]),
            PointValue::Sketch(s) => Pending::Sketches(vec![(ts, Cow::Borrowed(s))]),
        };
        self.merge_pending(id, kind.is_sketch(), pending);
    }

    /// Points of a series in `[from, to)`, or None if the head has none of that series.
    pub fn read(&self, id: SeriesId, from: i64, to: i64) -> Option<SeriesData> {
        self.series.get(&id).map(|c| c.range(from, to))
    }

    /// A series' column.
    pub fn column(&self, id: SeriesId) -> Option<&Column> {
        self.series.get(&id)
    }

    /// Ids of the series in the head, sorted.
    pub fn series_ids(&self) -> Vec<SeriesId> {
        let mut ids: Vec<_> = self.series.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Number of points held (one per series and timestamp).
    pub fn points(&self) -> usize {
        self.points
    }

    pub fn is_empty(&self) -> bool {
        self.points == 0
    }

    /// Smallest and largest timestamp held, if any.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        (self.points > 0).then_some((self.min_ts, self.max_ts))
    }
}

/// A point's value as the head takes it.
#[derive(Debug, Clone, Copy)]
pub enum PointValue<'a> {
    Scalar(f64),
    Sketch(&'a Sketch),
}

/// A point's value gathered for a merge pass.
enum PendingValue<'a> {
    Scalar(f64),
    Sketch(Cow<'a, Sketch>),
}

/// Points of one series waiting for a merge pass, in write order.
enum Pending<'a> {
    Scalars(Vec<(i64, MetricKind, f64)>),
    Sketches(Vec<(i64, Cow<'a, Sketch>)>),
}

impl Pending<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Pending::Scalars(v) => v.is_empty(),
            Pending::Sketches(v) => v.is_empty(),
        }
    }
}

/// Merges `inc` (sorted by timestamp, write order kept at equal timestamps) into the sorted column `ts`/`vals`.
/// Each incoming value merges with what the timestamp holds by its own point's kind. Returns how many new
/// timestamps the column gained.
fn merge_scalars(ts: &mut Vec<i64>, vals: &mut Vec<f64>, inc: &[(i64, MetricKind, f64)]) -> usize {
    if ts.last().is_none_or(|l| *l < inc[0].0) {
        // Everything incoming is after the column: append, merging equal incoming timestamps.
        let before = ts.len();
        for &(t, kind, v) in inc {
            match (ts.last(), vals.last_mut()) {
                (Some(l), Some(last)) if *l == t => *last = merge_scalar(kind, *last, v),
                _ => {
                    ts.push(t);
                    vals.push(v);
                }
            }
        }
        return ts.len() - before;
    }
    let old_ts = std::mem::take(ts);
    let old_vals = std::mem::take(vals);
    ts.reserve(old_ts.len() + inc.len());
    vals.reserve(old_ts.len() + inc.len());
    let (mut i, mut j, mut added) = (0, 0, 0);
    while j < inc.len() {
        let t = inc[j].0;
        // The old points before `t`, copied in one go.
        let k = i + old_ts[i..].partition_point(|x| *x < t);
        ts.extend_from_slice(&old_ts[i..k]);
        vals.extend_from_slice(&old_vals[i..k]);
        i = k;
        let mut v = if i < old_ts.len() && old_ts[i] == t {
            i += 1;
            merge_scalar(inc[j].1, old_vals[i - 1], inc[j].2)
        } else {
            added += 1;
            inc[j].2
        };
        j += 1;
        while j < inc.len() && inc[j].0 == t {
            v = merge_scalar(inc[j].1, v, inc[j].2);
            j += 1;
        }
        ts.push(t);
        vals.push(v);
    }
    ts.extend_from_slice(&old_ts[i..]);
    vals.extend_from_slice(&old_vals[i..]);
    added
}

/// [`merge_scalars`] for sketches: sketches at one timestamp merge.
fn merge_sketches(pts: &mut Vec<(i64, Sketch)>, inc: Vec<(i64, Cow<'_, Sketch>)>) -> usize {
    if pts.last().is_none_or(|l| l.0 < inc[0].0) {
        // Everything incoming is after the column: append, merging equal incoming timestamps.
        let before = pts.len();
        for (t, s) in inc {
            match pts.last_mut() {
                Some(last) if last.0 == t => last.1.merge(&s),
                _ => pts.push((t, s.into_owned())),
            }
        }
        return pts.len() - before;
    }
    let old = std::mem::take(pts);
    pts.reserve(old.len() + inc.len());
    let mut old = old.into_iter().peekable();
    let mut inc = inc.into_iter().peekable();
    let mut added = 0;
    while let Some((t, s)) = inc.next() {
        while let Some(p) = old.next_if(|p| p.0 < t) {
            pts.push(p);
        }
        let mut cur = match old.next_if(|p| p.0 == t) {
            Some((_, mut o)) => {
                o.merge(&s);
                o
            }
            None => {
                added += 1;
                s.into_owned()
            }
        };
        while let Some((_, s)) = inc.next_if(|p| p.0 == t) {
            cur.merge(&s);
        }
        pts.push((t, cur));
    }
    pts.extend(old);
    added
}

/// An index and a head behind one lock: the metric store with no disk, for unit tests of the query tier.
pub struct MemMetricStore {
    inner: RwLock<(SeriesIndex, Head)>,
}

impl MemMetricStore {
    pub fn new(limits: Limits) -> MemMetricStore {
        MemMetricStore {
            inner: RwLock::new((SeriesIndex::new(limits), Head::new())),
        }
    }

    /// Applies a batch (see [`Head::apply`]).
    pub fn apply(&self, batch: &MetricBatch) -> WriteOutcome {
        let mut g = self.inner.write();
        let (index, head) = &mut *g;
        head.apply(index, batch)
    }

    /// The series of a metric carrying exactly this tag.
    pub fn series_with_tag(&self, metric: &str, tag: &str) -> roaring::RoaringBitmap {
        self.inner.read().0.series_with_tag(metric, tag)
    }
}

impl MetricReader for MemMetricStore {
    fn metric_names(&self, since: i64) -> Vec<String> {
        self.inner.read().0.metric_names(since)
    }

    fn series_for_metric(&self, name: &str) -> Vec<crate::SeriesMeta> {
        self.inner.read().0.series_for_metric(name)
    }

    fn tags_for_metric(&self, name: &str) -> Vec<String> {
        self.inner.read().0.tags_for_metric(name)
    }

    fn read(&self, ids: &[SeriesId], from: i64, to: i64) -> Result<Vec<SeriesData>, StorageError> {
        let g = self.inner.read();
        let (index, head) = &*g;
        ids.iter()
            .map(|&id| {
                let meta = index.meta(id).ok_or(StorageError::UnknownSeries(id))?;
                Ok(head
                    .read(id, from, to)
                    .unwrap_or_else(|| empty_data(meta.kind)))
            })
            .collect()
    }
}

#[async_trait]
impl BatchSink for MemMetricStore {
    async fn write_metrics(&self, batch: MetricBatch) -> Result<WriteOutcome, SinkError> {
        Ok(self.apply(&batch))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sightline_model::{MetricPoint, SeriesKey, TagSet};

    pub(crate) fn pt(name: &str, tags: &[&str], kind: MetricKind, ts: i64, v: f64) -> MetricPoint {
        let value = if kind.is_sketch() {
            let mut s = Sketch::new();
            s.add(v);
            Value::Sketch(Box::new(s))
        } else {
            Value::Scalar(v)
        };
        MetricPoint {
            series: SeriesKey::new(name, TagSet::parse(tags.iter().copied(), 100, 200).unwrap()),
            kind,
            timestamp: ts,
            interval: 10,
            value,
        }
    }

    /// Writes the points one batch each and compares series 0 in [0, 1000) with `want`.
    fn check(name: &str, kind: MetricKind, points: &[(i64, f64)], want: &[(i64, f64)]) {
        let store = MemMetricStore::new(Limits::default());
        for &(ts, v) in points {
            let o = store.apply(&MetricBatch {
                points: vec![pt("m", &["a:b"], kind, ts, v)],
            });
            assert_eq!(o.accepted, 1, "{name}");
        }
        let got = store.read(&[0], 0, 1000).unwrap().remove(0);
        match got {
            SeriesData::Scalars(got) => assert_eq!(got, want, "{name}"),
            SeriesData::Sketches(got) => {
                // Sketches: compare counts per timestamp, with `want` values as counts.
                let got: Vec<(i64, f64)> =
                    got.iter().map(|(t, s)| (*t, s.count() as f64)).collect();
                assert_eq!(got, want, "{name}");
            }
        }
    }

    #[test]
    fn merge_rules() {
        use MetricKind::*;
        check(
            "count sums",
            Count,
            &[(10, 1.0), (10, 2.5), (20, 1.0)],
            &[(10, 3.5), (20, 1.0)],
        );
        check("rate sums", Rate, &[(10, 1.0), (10, 2.0)], &[(10, 3.0)]);
        check(
            "gauge last wins",
            Gauge,
            &[(10, 1.0), (10, 7.0), (10, 3.0)],
            &[(10, 3.0)],
        );
        check(
            "out of order",
            Gauge,
            &[(30, 3.0), (10, 1.0), (20, 2.0), (5, 0.5)],
            &[(5, 0.5), (10, 1.0), (20, 2.0), (30, 3.0)],
        );
        check(
            "out of order count merge",
            Count,
            &[(30, 1.0), (10, 1.0), (30, 1.0), (10, 4.0)],
            &[(10, 5.0), (30, 2.0)],
        );
        check(
            "sketch merge",
            Distribution,
            &[(10, 1.0), (10, 2.0), (0, 5.0), (10, 3.0)],
            &[(0, 1.0), (10, 3.0)],
        );
        check(
            "histogram merge",
            Histogram,
            &[(20, 1.0), (20, 2.0)],
            &[(20, 2.0)],
        );
        check(
            "range end exclusive",
            Gauge,
            &[(999, 1.0), (1000, 2.0), (-1, 3.0)],
            &[(999, 1.0)],
        );
    }

    /// Writes all the points in one batch and compares series 0 in [0, 1000) with `want`.
    fn check_one_batch(name: &str, kind: MetricKind, points: &[(i64, f64)], want: &[(i64, f64)]) {
        let store = MemMetricStore::new(Limits::default());
        let o = store.apply(&MetricBatch {
            points: points
                .iter()
                .map(|&(ts, v)| pt("m", &["a:b"], kind, ts, v))
                .collect(),
        });
        assert_eq!(o.accepted, points.len(), "{name}");
        let got = match store.read(&[0], 0, 1000).unwrap().remove(0) {
            SeriesData::Scalars(got) => got,
            SeriesData::Sketches(got) => got.iter().map(|(t, s)| (*t, s.count() as f64)).collect(),
        };
        assert_eq!(got, want, "{name}");
    }

    #[test]
    fn merge_rules_within_one_batch() {
        use MetricKind::*;
        // (name, kind, points written in one batch, what reads back)
        type Case<'a> = (&'a str, MetricKind, &'a [(i64, f64)], &'a [(i64, f64)]);
        let cases: &[Case] = &[
            (
                "gauge last in batch wins, out of order",
                Gauge,
                &[(30, 3.0), (10, 1.0), (10, 7.0), (20, 2.0), (10, 4.0)],
                &[(10, 4.0), (20, 2.0), (30, 3.0)],
            ),
            (
                "gauge equal timestamps after an in-order append",
                Gauge,
                &[(10, 1.0), (20, 2.0), (10, 5.0), (20, 6.0), (10, 9.0)],
                &[(10, 9.0), (20, 6.0)],
            ),
            (
                "count sums out of order",
                Count,
                &[(30, 1.0), (10, 1.0), (30, 1.0), (10, 4.0), (20, 0.5)],
                &[(10, 5.0), (20, 0.5), (30, 2.0)],
            ),
            (
                "rate sums descending",
                Rate,
                &[(30, 1.0), (20, 1.0), (10, 1.0), (20, 2.0), (30, 3.0)],
                &[(10, 1.0), (20, 3.0), (30, 4.0)],
            ),
            (
                "sketches merge out of order",
                Distribution,
                &[
                    (10, 1.0),
                    (0, 5.0),
                    (10, 2.0),
                    (0, 1.0),
                    (5, 3.0),
                    (10, 3.0),
                ],
                &[(0, 2.0), (5, 1.0), (10, 3.0)],
            ),
        ];
        for &(name, kind, points, want) in cases {
            check_one_batch(name, kind, points, want);
        }
    }

    /// A batch gives the same head as writing its points one per batch (pseudo-random timestamps, many
    /// repeats, several series and kinds).
    #[test]
    fn one_batch_equals_point_by_point() {
        use MetricKind::*;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20 {
            let mut points = Vec::new();
            for _ in 0..300 {
                let r = next();
                let kind = [Count, Gauge, Distribution][(r % 3) as usize];
                let series = format!("s:{}", (r >> 8) % 3);
                let ts = ((r >> 16) % 40) as i64;
                let v = ((r >> 32) % 100) as f64;
                points.push(pt(&format!("m{}", kind.as_str()), &[&series], kind, ts, v));
            }
            let whole = MemMetricStore::new(Limits::default());
            let split = MemMetricStore::new(Limits::default());
            // Some points already there, so the batch merges into existing columns too.
            for p in &points[..50] {
                whole.apply(&MetricBatch {
                    points: vec![p.clone()],
                });
            }
            whole.apply(&MetricBatch {
                points: points[50..].to_vec(),
            });
            for p in &points {
                split.apply(&MetricBatch {
                    points: vec![p.clone()],
                });
            }
            let ids: Vec<SeriesId> = (0..9).collect();
            assert_eq!(
                whole.read(&ids, 0, 100).unwrap(),
                split.read(&ids, 0, 100).unwrap(),
                "round {round}"
            );
            let (w, s) = (whole.inner.read(), split.inner.read());
            assert_eq!(w.1.points(), s.1.points(), "round {round}");
            assert_eq!(w.1.time_range(), s.1.time_range(), "round {round}");
        }
    }

    #[test]
    fn descending_batch_is_fast_and_exact() {
        const N: i64 = 200_000;
        let store = MemMetricStore::new(Limits::default());
        let batch = MetricBatch {
            points: (0..N)
                .rev()
                .map(|t| pt("m", &["a:b"], MetricKind::Gauge, t, t as f64 * 0.5))
                .collect(),
        };
        let started = std::time::Instant::now();
        let o = store.apply(&batch);
        let elapsed = started.elapsed();
        assert_eq!((o.accepted, o.rejected), (N as usize, 0));
        assert!(
            elapsed < std::time::Duration::from_secs(2),
            "{N} descending points took {elapsed:?}"
        );
        let want: Vec<(i64, f64)> = (0..N).map(|t| (t, t as f64 * 0.5)).collect();
        assert_eq!(
            store.read(&[0], 0, N).unwrap().remove(0),
            SeriesData::Scalars(want)
        );
        let g = store.inner.read();
        assert_eq!(g.1.points(), N as usize);
        assert_eq!(g.1.time_range(), Some((0, N - 1)));
    }

    #[test]
    fn absorb_merges_in_one_pass() {
        let index = {
            let store = MemMetricStore::new(Limits::default());
            store.apply(&MetricBatch {
                points: vec![pt("c", &[], MetricKind::Count, 0, 0.0)],
            });
            store.inner.into_inner().0
        };
        let mut older = Head::new();
        let mut newer = Head::new();
        for t in (0..100).step_by(2) {
            older.insert(0, MetricKind::Count, t, PointValue::Scalar(1.0));
        }
        for t in (0..100).rev().step_by(3) {
            newer.insert(0, MetricKind::Count, t, PointValue::Scalar(10.0));
        }
        let mut want = older.clone();
        for t in (0..100).rev().step_by(3) {
            want.insert(0, MetricKind::Count, t, PointValue::Scalar(10.0));
        }
        older.absorb(newer, &index);
        assert_eq!(older.read(0, 0, 100), want.read(0, 0, 100));
        assert_eq!(older.points(), want.points());
        assert_eq!(older.time_range(), want.time_range());
    }

    #[test]
    fn sketch_merge_keeps_quantiles() {
        let store = MemMetricStore::new(Limits::default());
        let mut batch = MetricBatch::default();
        for v in [1.0, 2.0, 3.0, 100.0] {
            batch
                .points
                .push(pt("lat", &[], MetricKind::Distribution, 50, v));
        }
        store.apply(&batch);
        let SeriesData::Sketches(got) = store.read(&[0], 0, 100).unwrap().remove(0) else {
            panic!("shape")
        };
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.count(), 4);
        assert_eq!(got[0].1.max(), Some(100.0));
        assert_eq!(got[0].1.sum(), Some(106.0));
    }

    #[test]
    fn limits_keep_rest_of_batch() {
        let limits = Limits {
            max_series_per_metric: 2,
            ..Limits::default()
        };
        let store = MemMetricStore::new(limits);
        let batch = MetricBatch {
            points: vec![
                pt("x", &["h:1"], MetricKind::Gauge, 10, 1.0),
                pt("x", &["h:2"], MetricKind::Gauge, 10, 2.0),
                pt("x", &["h:3"], MetricKind::Gauge, 10, 3.0),
                pt("x", &["h:4"], MetricKind::Gauge, 10, 4.0),
                pt("y", &["h:3"], MetricKind::Gauge, 10, 5.0),
                pt("x", &["h:1"], MetricKind::Gauge, 20, 6.0),
                pt("y", &["h:3"], MetricKind::Gauge, 20, 1.0),
            ],
        };
        let o = store.apply(&batch);
        assert_eq!((o.accepted, o.rejected), (5, 2));
        assert_eq!(
            o.errors,
            ["metric \"x\" has 2 series; the limit max_series_per_metric is 2"]
        );
        assert_eq!(store.series_for_metric("x").len(), 2);
        let got = store.read(&[0, 2], 0, 100).unwrap();
        assert_eq!(got[0], SeriesData::Scalars(vec![(10, 1.0), (20, 6.0)]));
        assert_eq!(got[1], SeriesData::Scalars(vec![(10, 5.0), (20, 1.0)]));
        assert!(matches!(
            store.read(&[9], 0, 100),
            Err(StorageError::UnknownSeries(9))
        ));
        assert_eq!(store.metric_names(0), ["x", "y"]);
        assert_eq!(store.tags_for_metric("x"), ["h:1", "h:2"]);
        assert_eq!(
            store.series_with_tag("x", "h:2").iter().collect::<Vec<_>>(),
            [1]
        );
    }

    #[test]
    fn kind_mismatch_rejected() {
        let store = MemMetricStore::new(Limits::default());
        store.apply(&MetricBatch {
            points: vec![pt("x", &[], MetricKind::Gauge, 10, 1.0)],
        });
        let o = store.apply(&MetricBatch {
            points: vec![
                pt("x", &[], MetricKind::Distribution, 10, 1.0),
                pt("x", &[], MetricKind::Count, 20, 2.0),
            ],
        });
        assert_eq!((o.accepted, o.rejected), (1, 1));
        assert_eq!(o.errors, ["metric \"x\" holds gauge points; a distribution point cannot be stored in the same series"]);
        assert_eq!(
            store.read(&[0], 0, 100).unwrap()[0],
            SeriesData::Scalars(vec![(10, 1.0), (20, 2.0)])
        );
        assert_eq!(store.series_for_metric("x")[0].kind, MetricKind::Count);
    }

    #[test]
    fn merge_data_across_sources() {
        use SeriesData::Scalars;
        let older = Scalars(vec![(1, 1.0), (3, 3.0), (5, 5.0)]);
        let newer = Scalars(vec![(2, 20.0), (3, 30.0), (6, 60.0)]);
        assert_eq!(
            merge_data(MetricKind::Gauge, older.clone(), newer.clone()),
            Scalars(vec![(1, 1.0), (2, 20.0), (3, 30.0), (5, 5.0), (6, 60.0)])
        );
        assert_eq!(
            merge_data(MetricKind::Count, older, newer),
            Scalars(vec![(1, 1.0), (2, 20.0), (3, 33.0), (5, 5.0), (6, 60.0)])
        );
    }

    #[test]
    fn merge_parts_concatenates_or_merges() {
        use MetricKind::{Count, Distribution, Gauge};
        use SeriesData::Scalars;
        fn check(kind: MetricKind, parts: &[&[(i64, f64)]], expected: &[(i64, f64)]) {
            let parts = parts.iter().map(|p| Scalars(p.to_vec())).collect();
            assert_eq!(
                merge_parts(kind, parts),
                Scalars(expected.to_vec()),
                "{kind:?}"
            );
        }
        // Disjoint parts in any order come out sorted; empty parts vanish.
        check(
            Gauge,
            &[&[(5, 5.0)], &[], &[(1, 1.0), (2, 2.0)]],
            &[(1, 1.0), (2, 2.0), (5, 5.0)],
        );
        // Overlapping parts merge in write order: the newer gauge wins, counts add up.
        check(
            Gauge,
            &[&[(1, 1.0), (3, 3.0)], &[(3, 30.0)]],
            &[(1, 1.0), (3, 30.0)],
        );
        check(
            Count,
            &[&[(1, 1.0), (3, 3.0)], &[(3, 30.0)], &[(4, 4.0)]],
            &[(1, 1.0), (3, 33.0), (4, 4.0)],
        );
        check(Gauge, &[], &[]);
        // A part of the wrong shape is dropped rather than mixed in.
        let mut s = Sketch::new();
        s.add(1.0);
        let got = merge_parts(
            Distribution,
            vec![
                Scalars(vec![(1, 1.0)]),
                SeriesData::Sketches(vec![(2, s.clone())]),
            ],
        );
        assert_eq!(got, SeriesData::Sketches(vec![(2, s)]));
    }

    #[tokio::test]
    async fn batch_sink() {
        let store = MemMetricStore::new(Limits::default());
        let o = store
            .write_metrics(MetricBatch {
                points: vec![pt("x", &[], MetricKind::Count, 10, 1.0)],
            })
            .await;
        assert_eq!(o.unwrap().accepted, 1);
        assert_eq!(
            store.read(&[0], 0, 100).unwrap()[0],
            SeriesData::Scalars(vec![(10, 1.0)])
        );
    }
}

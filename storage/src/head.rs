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

    /// Inserts every point of a newer head into this one (merge rules of each series' kind in `index`).
    pub fn absorb(&mut self, newer: Head, index: &SeriesIndex) {
        for (id, col) in newer.series {
            let kind = index.meta(id).map_or(MetricKind::Gauge, |m| m.kind);
            match col {
                Column::Scalars { ts, vals } => {
                    for (t, v) in ts.into_iter().zip(vals) {
                        self.insert(id, kind, t, PointValue::Scalar(v));
                    }
                }
                Column::Sketches(pts) => {
                    for (t, s) in &pts {
                        self.insert(id, kind, *t, PointValue::Sketch(s));
                    }
                }
            }
        }
        self.max_lsn = self.max_lsn.max(newer.max_lsn);
    }

    /// Applies a batch: resolves each point's series through the index (which enforces the cardinality
    /// limits) and inserts it. Rejected points are counted and described; the rest are kept.
    pub fn apply(&mut self, index: &mut SeriesIndex, batch: &MetricBatch) -> WriteOutcome {
        let mut out = WriteOutcome::default();
        for p in &batch.points {
            let value = match (&p.value, p.kind.is_sketch()) {
                (Value::Scalar(v), false) => PointValue::Scalar(*v),
                (Value::Sketch(s), true) => PointValue::Sketch(s),
                (Value::Scalar(v), true) => {
                    // A bare number for a distribution: a sketch of one sample.
                    let mut s = Sketch::new();
                    s.add(*v);
                    self.insert_resolved(index, p, PointValue::Sketch(&s), &mut out);
                    continue;
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
            self.insert_resolved(index, p, value, &mut out);
        }
        out
    }

    fn insert_resolved(
        &mut self,
        index: &mut SeriesIndex,
        p: &sightline_model::MetricPoint,
        value: PointValue<'_>,
        out: &mut WriteOutcome,
    ) {
        match index.resolve(&p.series, p.kind, p.interval, p.timestamp) {
            Ok(id) => {
                self.insert(id, p.kind, p.timestamp, value);
                out.accepted += 1;
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

    /// Inserts one point of a known series, merging it with a point already at that timestamp.
    pub fn insert(&mut self, id: SeriesId, kind: MetricKind, ts: i64, value: PointValue<'_>) {
        let col = self
            .series
            .entry(id)
            .or_insert_with(|| Column::new(kind.is_sketch()));
        let added = match (col, value) {
            (Column::Scalars { ts: tss, vals }, PointValue::Scalar(v)) => {
                if tss.last().is_none_or(|l| *l < ts) {
                    tss.push(ts);
                    vals.push(v);
                    true
                } else {
                    match tss.binary_search(&ts) {
                        Ok(i) => {
                            vals[i] = merge_scalar(kind, vals[i], v);
                            false
                        }
                        Err(i) => {
                            tss.insert(i, ts);
                            vals.insert(i, v);
                            true
                        }
                    }
                }
            }
            (Column::Sketches(pts), PointValue::Sketch(s)) => {
                if pts.last().is_none_or(|l| l.0 < ts) {
                    pts.push((ts, s.clone()));
                    true
                } else {
                    match pts.binary_search_by(|p| p.0.cmp(&ts)) {
                        Ok(i) => {
                            pts[i].1.merge(s);
                            false
                        }
                        Err(i) => {
                            pts.insert(i, (ts, s.clone()));
                            true
                        }
                    }
                }
            }
            // The index refuses mixing scalars and sketches in one series; nothing to do.
            _ => false,
        };
        if added {
            self.points += 1;
            self.min_ts = self.min_ts.min(ts);
            self.max_ts = self.max_ts.max(ts);
        }
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

//! Folding scalar points into rollup buckets while they are read, so a query over a long range does not
//! materialise every raw point: [`Fold`] is what any time aggregation needs of one bucket's points.

use crate::{SeriesData, StorageError};
use sightline_model::Sketch;
use std::ops::Range;

/// Buckets of a rollup read: `n` buckets of `step` seconds from `start`, covering `[start, start + n * step)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    pub start: i64,
    pub step: i64,
    pub n: usize,
    /// Whether the folds keep their points' minimum and maximum (when false they stay at `+∞`/`-∞`: a sum, an
    /// average or a count folds faster without them).
    pub extremes: bool,
}

impl Buckets {
    /// The end of the range (exclusive).
    pub fn end(&self) -> i64 {
        self.start + self.n as i64 * self.step
    }
}

/// The scalar points of one bucket folded in time order: their count, sum (from `-0.0`, the identity of `+`,
/// so the sum is exactly the left fold of the points), minimum and maximum (`f64::min`/`max`, NaN ignored).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fold {
    pub count: usize,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Fold {
    pub const EMPTY: Fold = Fold {
        count: 0,
        sum: -0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    #[inline]
    pub fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Adds the points of `vs` in order (a tight loop: one pass, independent chains); their minimum and maximum
    /// only if `extremes`.
    #[inline]
    pub fn add_all(&mut self, vs: &[f64], extremes: bool) {
        let mut sum = self.sum;
        if extremes {
            let (mut min, mut max) = (self.min, self.max);
            for &v in vs {
                sum += v;
                min = min.min(v);
                max = max.max(v);
            }
            (self.min, self.max) = (min, max);
        } else {
            for &v in vs {
                sum += v;
            }
        }
        self.sum = sum;
        self.count += vs.len();
    }
}

/// One series read for a rollup: scalar points folded per bucket (one [`Fold`] per bucket, all empty when the
/// series has no point in the range), sketches as they are (merging them per bucket is the caller's job).
#[derive(Debug, Clone, PartialEq)]
pub enum Folded {
    Scalars(Vec<Fold>),
    Sketches(Vec<(i64, Sketch)>),
}

impl Folded {
    /// Folds a series' points (sorted by time); points outside the buckets are ignored.
    pub fn from_data(data: SeriesData, b: Buckets) -> Folded {
        match data {
            SeriesData::Scalars(points) => {
                let mut acc = FoldAcc::new(b);
                points.iter().for_each(|&(t, v)| acc.add(t, v));
                Folded::Scalars(acc.folds)
            }
            SeriesData::Sketches(points) => Folded::Sketches(points),
        }
    }
}

/// Folds scalar points arriving in time order into buckets, with one division per bucket rather than per
/// point (a point outside the current bucket, in any order, finds its own).
#[derive(Debug, Clone)]
pub(crate) struct FoldAcc {
    b: Buckets,
    pub(crate) folds: Vec<Fold>,
    cur: usize,
    /// `[lo, hi)`: the time span of bucket `cur` (empty before the first point).
    lo: i64,
    hi: i64,
}

impl FoldAcc {
    pub(crate) fn new(b: Buckets) -> FoldAcc {
        FoldAcc {
            b,
            folds: vec![Fold::EMPTY; b.n],
            cur: 0,
            lo: 0,
            hi: 0,
        }
    }

    /// Points the current bucket `[lo, hi)` if `t` is in a bucket; false if it is outside them all.
    #[inline]
    fn locate(&mut self, t: i64) -> bool {
        if t >= self.lo && t < self.hi {
            return true;
        }
        if t < self.b.start {
            return false;
        }
        let i = (t - self.b.start) / self.b.step;
        if i as u64 >= self.b.n as u64 {
            return false;
        }
        self.cur = i as usize;
        self.lo = self.b.start + i * self.b.step;
        self.hi = self.lo + self.b.step;
        true
    }

    #[inline]
    pub(crate) fn add(&mut self, t: i64, v: f64) {
        if self.locate(t) {
            self.folds[self.cur].add_all(&[v], self.b.extremes);
        }
    }

    /// Adds the points `(ts[i], vals[i])` in order, each stretch of points in one bucket at once.
    pub(crate) fn add_run(&mut self, ts: &[i64], vals: &[f64]) {
        let mut i = 0;
        while i < ts.len() {
            if !self.locate(ts[i]) {
                i += 1;
                continue;
            }
            let (lo, hi) = (self.lo, self.hi);
            let end = i
                + 1
                + ts[i + 1..]
                    .iter()
                    .take_while(|t| **t >= lo && **t < hi)
                    .count();
            self.folds[self.cur].add_all(&vals[i..end], self.b.extremes);
            i = end;
        }
    }
}

/// A series' points as a block read collects them, in row order: materialised ([`SeriesData`]) or folded
/// ([`FoldedAcc`]).
pub(crate) trait Collect {
    /// Appends the scalar points `(ts[i], vals[i])` whose time is in `range`; false if the series holds
    /// sketches.
    fn push_scalars(&mut self, ts: &[i64], vals: &[f64], range: Range<i64>) -> bool;
    /// Appends a sketch point; false if the series holds scalars.
    fn push_sketch(&mut self, t: i64, s: Sketch) -> bool;
}

impl Collect for SeriesData {
    fn push_scalars(&mut self, ts: &[i64], vals: &[f64], range: Range<i64>) -> bool {
        match self {
            SeriesData::Scalars(v) => {
                v.extend(
                    ts.iter()
                        .zip(vals)
                        .filter(|(t, _)| range.contains(*t))
                        .map(|(t, x)| (*t, *x)),
                );
                true
            }
            SeriesData::Sketches(_) => false,
        }
    }

    fn push_sketch(&mut self, t: i64, s: Sketch) -> bool {
        match self {
            SeriesData::Sketches(v) => {
                v.push((t, s));
                true
            }
            SeriesData::Scalars(_) => false,
        }
    }
}

/// A series being read for a rollup: its scalar points folded as they come, or its sketch points.
#[derive(Debug, Clone)]
pub(crate) enum FoldedAcc {
    Scalars(FoldAcc),
    Sketches(Vec<(i64, Sketch)>),
}

impl FoldedAcc {
    /// An empty accumulator for a series of sketches or scalars.
    pub(crate) fn new(sketch: bool, b: Buckets) -> FoldedAcc {
        if sketch {
            FoldedAcc::Sketches(Vec::new())
        } else {
            FoldedAcc::Scalars(FoldAcc::new(b))
        }
    }

    pub(crate) fn is_sketches(&self) -> bool {
        matches!(self, FoldedAcc::Sketches(_))
    }

    pub(crate) fn finish(self) -> Folded {
        match self {
            FoldedAcc::Scalars(acc) => Folded::Scalars(acc.folds),
            FoldedAcc::Sketches(v) => Folded::Sketches(v),
        }
    }
}

impl Collect for FoldedAcc {
    /// Points outside `range` are dropped whatever `range` says: only the buckets' span is kept.
    fn push_scalars(&mut self, ts: &[i64], vals: &[f64], _range: Range<i64>) -> bool {
        match self {
            FoldedAcc::Scalars(acc) => {
                acc.add_run(ts, vals);
                true
            }
            FoldedAcc::Sketches(_) => false,
        }
    }

    fn push_sketch(&mut self, t: i64, s: Sketch) -> bool {
        match self {
            FoldedAcc::Sketches(v) => {
                v.push((t, s));
                true
            }
            FoldedAcc::Scalars(_) => false,
        }
    }
}

/// The reader-independent way to a rollup read: materialise, then fold.
pub fn fold_all(
    data: Result<Vec<SeriesData>, StorageError>,
    b: Buckets,
) -> Result<Vec<Folded>, StorageError> {
    Ok(data?.into_iter().map(|d| Folded::from_data(d, b)).collect())
}

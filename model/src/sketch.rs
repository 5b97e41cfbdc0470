//! The distribution sketch (DDSketch, relative error 1%): mergeable across hosts, tags and time; handles
//! negative, zero and fractional values.

use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config, DDSketch};

/// Relative accuracy guaranteed for every quantile (SPEC §2).
pub const ALPHA: f64 = 0.01;
/// Bins per sign before the lowest ones collapse; with alpha = 0.01 this spans about 35 decades.
const MAX_BINS: u32 = 4096;
/// Smallest magnitude kept apart from zero.
const MIN_VALUE: f64 = 1e-9;

/// A DDSketch with Sightline's fixed configuration, so any two sketches can be merged.
#[derive(Clone, Serialize, Deserialize)]
pub struct Sketch(DDSketch);

impl Default for Sketch {
    fn default() -> Self {
        Sketch::new()
    }
}

impl std::fmt::Debug for Sketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sketch")
            .field("count", &self.count())
            .field("sum", &self.sum())
            .field("min", &self.min())
            .field("max", &self.max())
            .finish()
    }
}

impl PartialEq for Sketch {
    fn eq(&self, other: &Self) -> bool {
        // Same count, sum and quantiles at a fine grid: good enough for tests and round trips.
        self.count() == other.count()
            && self.sum() == other.sum()
            && [0.0, 0.25, 0.5, 0.75, 0.99, 1.0]
                .iter()
                .all(|q| self.quantile(*q) == other.quantile(*q))
    }
}

impl Sketch {
    pub fn new() -> Self {
        Sketch(DDSketch::new(Config::new(ALPHA, MAX_BINS, MIN_VALUE)))
    }

    /// Adds one sample. Non-finite values are ignored.
    pub fn add(&mut self, v: f64) {
        if v.is_finite() {
            self.0.add(v);
        }
    }

    /// Adds a sample `n` times (for sample rates and pre-aggregated buckets).
    pub fn add_n(&mut self, v: f64, n: u64) {
        if v.is_finite() && n > 0 {
            self.0.add_with_count(v, n);
        }
    }

    /// Merges another sketch into this one.
    pub fn merge(&mut self, other: &Sketch) {
        // Every Sketch shares one configuration, so the only error (mismatched config) cannot happen.
        let _ = self.0.merge(&other.0);
    }

    /// The value at quantile `q` in [0, 1], or None for an empty sketch or a `q` outside [0, 1].
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.0.quantile(q).ok().flatten()
    }

    pub fn count(&self) -> u64 {
        self.0.count() as u64
    }

    pub fn sum(&self) -> Option<f64> {
        self.0.sum()
    }

    pub fn min(&self) -> Option<f64> {
        self.0.min()
    }

    pub fn max(&self) -> Option<f64> {
        self.0.max()
    }

    pub fn avg(&self) -> Option<f64> {
        let n = self.count();
        self.sum().filter(|_| n > 0).map(|s| s / n as f64)
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        // Lower quantile, the definition DDSketch uses: the value of rank floor(q * (n - 1)).
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    fn assert_within(sk: &Sketch, sorted: &[f64], q: f64) {
        let got = sk.quantile(q).unwrap();
        let want = exact_quantile(sorted, q);
        let tol = ALPHA * want.abs() + 1e-12;
        assert!((got - want).abs() <= tol, "q={q}: got {got}, exact {want}");
    }

    #[test]
    fn skewed_distribution_within_one_percent() {
        // Log-normal-ish skew from a deterministic generator.
        let mut x: u64 = 42;
        let mut vals = Vec::new();
        let mut sk = Sketch::new();
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            let v = (u * 8.0).exp() * 0.37;
            vals.push(v);
            sk.add(v);
        }
        vals.sort_by(f64::total_cmp);
        for q in [0.5, 0.75, 0.9, 0.95, 0.99, 0.999] {
            assert_within(&sk, &vals, q);
        }
        assert_eq!(sk.count(), 20_000);
    }

    #[test]
    fn negative_zero_fractional() {
        let vals = [-250.5, -3.25, -0.001, 0.0, 0.0, 0.002, 1.5, 99.0, 1e6];
        let mut sk = Sketch::new();
        vals.iter().for_each(|v| sk.add(*v));
        for q in [0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0] {
            assert_within(&sk, &vals, q);
        }
        assert_eq!(sk.min(), Some(-250.5));
        assert_eq!(sk.max(), Some(1e6));
    }

    proptest! {
        #[test]
        fn merge_equals_single(a in proptest::collection::vec(-1e6f64..1e6, 1..200),
                               b in proptest::collection::vec(-1e6f64..1e6, 1..200)) {
            let mut sa = Sketch::new();
            let mut sb = Sketch::new();
            let mut all = Sketch::new();
            a.iter().for_each(|v| { sa.add(*v); all.add(*v) });
            b.iter().for_each(|v| { sb.add(*v); all.add(*v) });
            sa.merge(&sb);
            prop_assert_eq!(sa.count(), all.count());
            for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
                prop_assert_eq!(sa.quantile(q), all.quantile(q));
            }
        }

        #[test]
        fn serde_round_trip(a in proptest::collection::vec(-1e9f64..1e9, 0..100)) {
            let mut s = Sketch::new();
            a.iter().for_each(|v| s.add(*v));
            let bytes = postcard::to_allocvec(&s).unwrap();
            let back: Sketch = postcard::from_bytes(&bytes).unwrap();
            prop_assert_eq!(back, s);
        }
    }
}

//! Span analytics (`POST /api/v2/spans/analytics/aggregate`): one scan over the spans of a time range that
//! match a filter, computing per group (and per time bucket) counts, cardinalities of a facet, and sums,
//! averages, extremes and percentiles of a measure (`@duration` in ns, or a numeric `@attribute`).
//!
//! - Groups nest: the top `limit` values of the first facet (by count, by value, or by a total compute; ties
//!   by value), and within each the top `limit` of the next. A span without the facet is left out of that
//!   level's groups (it still counts in the level above) unless `missing` gives it a value; a `total` adds a
//!   group holding every span of the level. An array attribute puts the span in a group per element.
//! - Time series buckets start at `from` and every `interval` after; empty buckets count 0, other measures
//!   are null there.
//! - Percentiles are exact (linear interpolation between the closest ranks) over the values kept in memory;
//!   cardinalities keep every distinct value. Memory is bounded by [`AggregateLimits`]: beyond
//!   `max_values` kept values or `max_groups` groups the request is refused (400) rather than answered
//!   approximately.

use super::fields::{self, facet_values, measure_values};
use super::matcher::SpanFilter;
use crate::error::QueryError;
use serde_json::Value;
use sightline_model::SpanRecord;
use sightline_storage::{AggBucket, Compute, ComputeValue, GroupSort, Measure, SpanReader};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

/// Most time buckets one compute may make.
pub const MAX_TIME_BUCKETS: i64 = 10_000;

/// Memory bounds of one aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregateLimits {
    /// Values kept for percentiles and cardinalities, summed over groups and buckets (about 8 bytes each,
    /// more for distinct strings). The default, 10 million, holds every matched span's duration ten times
    /// over for a million spans.
    pub max_values: usize,
    /// Groups, summed over the nesting levels.
    pub max_groups: usize,
}

impl Default for AggregateLimits {
    fn default() -> Self {
        AggregateLimits {
            max_values: 10_000_000,
            max_groups: 100_000,
        }
    }
}

/// One level of grouping.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanGroupBy {
    /// A reserved key (`service`, `resource_name`, `status`, …), `@path`, or a bare attribute key.
    pub facet: String,
    pub limit: u32,
    pub sort: GroupSort,
    /// The group of spans without the facet (none when `None`).
    pub missing: Option<Value>,
    /// The key of an extra group holding every span of the level (none when `None`).
    pub total: Option<Value>,
}

/// An aggregation request.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanAggregate {
    /// Spans starting in `[from_ns, to_ns)`.
    pub from_ns: i64,
    pub to_ns: i64,
    pub computes: Vec<Compute>,
    pub group_by: Vec<SpanGroupBy>,
}

/// What a compute collects from one span.
enum Contribution {
    /// One span (counts).
    One,
    Numbers(Vec<f64>),
    Keys(Vec<String>),
}

/// One compute's state in one group (and bucket).
#[derive(Default)]
struct Acc {
    n: u64,
    sum: f64,
    min: f64,
    max: f64,
    values: Vec<f64>,
    distinct: HashSet<String>,
}

impl Acc {
    /// Adds a span's contribution; returns how many values it kept.
    fn add(&mut self, c: &Contribution, keep_values: bool) -> usize {
        match c {
            Contribution::One => {
                self.n += 1;
                0
            }
            Contribution::Numbers(xs) => {
                for &x in xs {
                    if self.n == 0 {
                        self.min = x;
                        self.max = x;
                    } else {
                        self.min = self.min.min(x);
                        self.max = self.max.max(x);
                    }
                    self.n += 1;
                    self.sum += x;
                }
                if keep_values {
                    self.values.extend_from_slice(xs);
                    xs.len()
                } else {
                    0
                }
            }
            Contribution::Keys(ks) => {
                let mut kept = 0;
                for k in ks {
                    if !self.distinct.contains(k) {
                        self.distinct.insert(k.clone());
                        kept += 1;
                    }
                }
                kept
            }
        }
    }

    fn value(&mut self, m: &Measure) -> Option<f64> {
        let some = (self.n > 0).then_some(());
        match m {
            Measure::Count => Some(self.n as f64),
            Measure::Cardinality(_) => Some(self.distinct.len() as f64),
            Measure::Sum(_) => some.map(|_| self.sum),
            Measure::Avg(_) => some.map(|_| self.sum / self.n as f64),
            Measure::Min(_) => some.map(|_| self.min),
            Measure::Max(_) => some.map(|_| self.max),
            Measure::Percentile(p, _) => percentile(&mut self.values, *p),
        }
    }
}

/// The `p`-th percentile (0–100) by linear interpolation between the closest ranks; sorts `values`.
fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    let rank = (p.clamp(0.0, 100.0) / 100.0) * (values.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    let frac = rank - lo as f64;
    Some(values[lo] + (values[hi] - values[lo]) * frac)
}

/// One compute in one group: a total, or a bucket index → state map.
enum Slot {
    Total(Acc),
    Series(HashMap<i64, Acc>),
}

struct Node {
    count: u64,
    slots: Vec<Slot>,
    /// Canonical key text → (value, group).
    children: HashMap<String, (Value, Node)>,
    total: Option<Box<Node>>,
}

impl Node {
    fn new(req: &SpanAggregate) -> Node {
        Node {
            count: 0,
            slots: req
                .computes
                .iter()
                .map(|c| match c.interval_ns {
                    None => Slot::Total(Acc::default()),
                    Some(_) => Slot::Series(HashMap::new()),
                })
                .collect(),
            children: HashMap::new(),
            total: None,
        }
    }
}

/// What a compute needs, checked before scanning.
struct Plan<'a> {
    req: &'a SpanAggregate,
    limits: AggregateLimits,
    values: usize,
    groups: usize,
}

/// The measure path of a numeric measure (`@duration` → `duration`).
fn measure_path(m: &str) -> Result<&str, QueryError> {
    match m.strip_prefix('@') {
        Some(p) if !p.is_empty() => Ok(p),
        _ => Err(QueryError::BadParam(format!(
            "measure {m:?} must be @duration or a numeric @attribute"
        ))),
    }
}

fn check(req: &SpanAggregate) -> Result<(), QueryError> {
    if req.computes.is_empty() {
        return Err(QueryError::BadParam(
            "at least one compute is required".into(),
        ));
    }
    for (i, c) in req.computes.iter().enumerate() {
        match &c.measure {
            Measure::Count => {}
            Measure::Cardinality(f) if f.is_empty() || f == "@" => {
                return Err(QueryError::BadParam(format!(
                    "compute c{i}: cardinality needs a facet such as service or @http.route"
                )))
            }
            Measure::Cardinality(_) => {}
            Measure::Sum(m) | Measure::Avg(m) | Measure::Min(m) | Measure::Max(m) => {
                measure_path(m)?;
            }
            Measure::Percentile(p, m) => {
                measure_path(m)?;
                if !(0.0..=100.0).contains(p) {
                    return Err(QueryError::BadParam(format!(
                        "compute c{i}: percentile {p} is not between 0 and 100"
                    )));
                }
            }
        }
        if let Some(step) = c.interval_ns {
            if step <= 0 {
                return Err(QueryError::BadParam(format!(
                    "compute c{i}: the interval must be positive"
                )));
            }
            let buckets = req.to_ns.saturating_sub(req.from_ns).div_euclid(step) + 1;
            if buckets > MAX_TIME_BUCKETS {
                return Err(QueryError::BadParam(format!(
                    "compute c{i} would make {buckets} time buckets; the limit is {MAX_TIME_BUCKETS} (raise the interval)"
                )));
            }
        }
    }
    for g in &req.group_by {
        if g.facet.is_empty() || g.facet == "@" {
            return Err(QueryError::BadParam("group_by needs a \"facet\"".into()));
        }
        if let GroupSort::Compute { index, .. } = g.sort {
            if req
                .computes
                .get(index)
                .is_none_or(|c| c.interval_ns.is_some())
            {
                return Err(QueryError::BadParam(format!(
                    "group_by {:?} sorts by compute c{index}, which is not a total compute",
                    g.facet
                )));
            }
        }
    }
    Ok(())
}

fn contribution(m: &Measure, s: &SpanRecord) -> Contribution {
    match m {
        Measure::Count => Contribution::One,
        Measure::Cardinality(f) => Contribution::Keys(
            facet_values(s, f)
                .iter()
                .map(|v| fields::leaf_text(v).into_owned())
                .collect(),
        ),
        Measure::Sum(p) | Measure::Avg(p) | Measure::Min(p) | Measure::Max(p) => {
            Contribution::Numbers(measure_values(s, p.strip_prefix('@').unwrap_or(p)))
        }
        Measure::Percentile(_, p) => {
            Contribution::Numbers(measure_values(s, p.strip_prefix('@').unwrap_or(p)))
        }
    }
}

impl Plan<'_> {
    fn add(
        &mut self,
        node: &mut Node,
        depth: usize,
        s: &SpanRecord,
        contribs: &[Contribution],
    ) -> Result<(), QueryError> {
        node.count += 1;
        for ((slot, c), contrib) in node.slots.iter_mut().zip(&self.req.computes).zip(contribs) {
            let keep = matches!(c.measure, Measure::Percentile(..));
            let acc = match (slot, c.interval_ns) {
                (Slot::Total(acc), _) => acc,
                (Slot::Series(map), Some(step)) => map
                    .entry(s.start_ns.saturating_sub(self.req.from_ns).div_euclid(step))
                    .or_default(),
                (Slot::Series(_), None) => continue,
            };
            self.values += acc.add(contrib, keep);
        }
        if self.values > self.limits.max_values {
            return Err(QueryError::BadParam(format!(
                "the aggregation keeps more than {} values for its percentiles and cardinalities; narrow the query or the time range, or group less",
                self.limits.max_values
            )));
        }
        let Some(g) = self.req.group_by.get(depth) else {
            return Ok(());
        };
        let mut keys = facet_values(s, &g.facet);
        if keys.is_empty() {
            keys.extend(g.missing.clone());
        }
        for k in keys {
            let text = k.to_string();
            if !node.children.contains_key(&text) {
                self.groups += 1;
                if self.groups > self.limits.max_groups {
                    return Err(QueryError::BadParam(format!(
                        "the aggregation makes more than {} groups; lower the group_by facets' cardinality or narrow the query",
                        self.limits.max_groups
                    )));
                }
                node.children.insert(text.clone(), (k, Node::new(self.req)));
            }
            if let Some((_, child)) = node.children.get_mut(&text) {
                self.add(child, depth + 1, s, contribs)?;
            }
        }
        if g.total.is_some() {
            let req = self.req;
            let total = node.total.get_or_insert_with(|| Box::new(Node::new(req)));
            self.add(total, depth + 1, s, contribs)?;
        }
        Ok(())
    }

    fn emit(
        &self,
        node: &mut Node,
        depth: usize,
        by: &mut Vec<(String, Value)>,
        out: &mut Vec<AggBucket>,
    ) {
        let req = self.req;
        let Some(g) = req.group_by.get(depth) else {
            out.push(AggBucket {
                by: by.clone(),
                computes: self.values_of(node),
            });
            return;
        };
        let mut kids: Vec<(Value, Node, Option<f64>)> = node
            .children
            .drain()
            .map(|(_, (k, mut n))| {
                let v = match g.sort {
                    GroupSort::Compute { index, .. } => match n.slots.get_mut(index) {
                        Some(Slot::Total(acc)) => acc.value(&req.computes[index].measure),
                        _ => None,
                    },
                    _ => None,
                };
                (k, n, v)
            })
            .collect();
        kids.sort_by(|a, b| {
            let primary = match g.sort {
                GroupSort::Count { desc } => directed(a.1.count.cmp(&b.1.count), desc),
                GroupSort::Alphabetical { desc } => directed(value_cmp(&a.0, &b.0), desc),
                GroupSort::Compute { desc, .. } => match (a.2, b.2) {
                    (Some(x), Some(y)) => directed(x.total_cmp(&y), desc),
                    // Groups without a value last, whatever the direction.
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                },
            };
            primary.then_with(|| value_cmp(&a.0, &b.0))
        });
        kids.truncate(g.limit.max(1) as usize);
        for (k, mut n, _) in kids {
            by.push((g.facet.clone(), k));
            self.emit(&mut n, depth + 1, by, out);
            by.pop();
        }
        if let (Some(label), Some(total)) = (&g.total, node.total.as_mut()) {
            by.push((g.facet.clone(), label.clone()));
            self.emit(total, depth + 1, by, out);
            by.pop();
        }
    }

    fn values_of(&self, node: &mut Node) -> Vec<ComputeValue> {
        let req = self.req;
        node.slots
            .iter_mut()
            .zip(&req.computes)
            .map(|(slot, c)| match (slot, c.interval_ns) {
                (Slot::Total(acc), _) => ComputeValue::Total(acc.value(&c.measure)),
                (Slot::Series(map), Some(step)) => {
                    let range = req.to_ns.saturating_sub(req.from_ns);
                    let n = range.saturating_add(step - 1).div_euclid(step).max(0);
                    let empty = (c.measure == Measure::Count).then_some(0.0);
                    ComputeValue::Series(
                        (0..n)
                            .map(|k| {
                                let v = map.get_mut(&k).map_or(empty, |a| a.value(&c.measure));
                                (req.from_ns.saturating_add(k.saturating_mul(step)), v)
                            })
                            .collect(),
                    )
                }
                (Slot::Series(_), None) => ComputeValue::Total(None),
            })
            .collect()
    }
}

fn directed(o: Ordering, desc: bool) -> Ordering {
    if desc {
        o.reverse()
    } else {
        o
    }
}

/// Group values in order: numbers numerically, then everything else by its text.
fn value_cmp(a: &Value, b: &Value) -> Ordering {
    match (
        a.as_f64().filter(|_| a.is_number()),
        b.as_f64().filter(|_| b.is_number()),
    ) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => fields::leaf_text(a).cmp(&fields::leaf_text(b)),
    }
}

/// Runs an aggregation: one bucket per group (one in all without `group_by`, even when nothing matched).
pub fn aggregate(
    reader: &dyn SpanReader,
    filter: &SpanFilter,
    req: &SpanAggregate,
    limits: AggregateLimits,
) -> Result<Vec<AggBucket>, QueryError> {
    check(req)?;
    let mut plan = Plan {
        req,
        limits,
        values: 0,
        groups: 0,
    };
    let mut root = Node::new(req);
    let mut failed = None;
    reader.scan(req.from_ns, req.to_ns, &mut |s| {
        if !filter.matches(s) {
            return ControlFlow::Continue(());
        }
        let contribs: Vec<Contribution> = req
            .computes
            .iter()
            .map(|c| contribution(&c.measure, s))
            .collect();
        match plan.add(&mut root, 0, s, &contribs) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let mut out = Vec::new();
    plan.emit(&mut root, 0, &mut Vec::new(), &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logsearch::parse_search;
    use serde_json::json;
    use sightline_storage::MemorySpans;

    const MS: i64 = 1_000_000;

    /// Ten spans: services a (6) and b (4), durations 1..=10 ms, start i seconds, `@code` 200 or 500
    /// (none on span 10), errors on 3 and 7.
    fn store() -> MemorySpans {
        let mut spans = Vec::new();
        for i in 1..=10u8 {
            let svc = if i <= 6 { "a" } else { "b" };
            let mut s = SpanRecord::new(
                [i; 16],
                [i; 8],
                None,
                svc,
                "op",
                i64::from(i) * 1_000_000_000,
                i64::from(i) * MS,
            );
            s.error = i == 3 || i == 7;
            if i < 10 {
                let code = if i % 3 == 0 { 500 } else { 200 };
                s.attributes.insert("code".into(), json!(code));
            }
            s.attributes.insert(
                "tags".into(),
                json!(if i == 1 { vec!["x", "y"] } else { vec!["x"] }),
            );
            spans.push(s);
        }
        MemorySpans::new(spans)
    }

    fn total(m: Measure) -> Compute {
        Compute {
            measure: m,
            interval_ns: None,
        }
    }

    fn group(facet: &str, sort: GroupSort) -> SpanGroupBy {
        SpanGroupBy {
            facet: facet.into(),
            limit: 10,
            sort,
            missing: None,
            total: None,
        }
    }

    fn run(query: &str, computes: Vec<Compute>, group_by: Vec<SpanGroupBy>) -> Vec<AggBucket> {
        run_limited(query, computes, group_by, AggregateLimits::default()).unwrap()
    }

    fn run_limited(
        query: &str,
        computes: Vec<Compute>,
        group_by: Vec<SpanGroupBy>,
        limits: AggregateLimits,
    ) -> Result<Vec<AggBucket>, QueryError> {
        let filter = SpanFilter::new(&parse_search(query).unwrap()).unwrap();
        let req = SpanAggregate {
            from_ns: 0,
            to_ns: 20_000_000_000,
            computes,
            group_by,
        };
        aggregate(&store(), &filter, &req, limits)
    }

    /// `(by values, total values)` of each bucket.
    fn flat(buckets: &[AggBucket]) -> Vec<(Vec<Value>, Vec<Option<f64>>)> {
        buckets
            .iter()
            .map(|b| {
                (
                    b.by.iter().map(|(_, v)| v.clone()).collect(),
                    b.computes
                        .iter()
                        .map(|c| match c {
                            ComputeValue::Total(v) => *v,
                            ComputeValue::Series(_) => panic!("a series"),
                        })
                        .collect(),
                )
            })
            .collect()
    }

    fn d(p: &str) -> String {
        p.to_string()
    }

    #[test]
    fn totals() {
        let got = run(
            "*",
            vec![
                total(Measure::Count),
                total(Measure::Cardinality(d("service"))),
                total(Measure::Sum(d("@duration"))),
                total(Measure::Avg(d("@duration"))),
                total(Measure::Min(d("@duration"))),
                total(Measure::Max(d("@duration"))),
                total(Measure::Percentile(50.0, d("@duration"))),
                total(Measure::Percentile(90.0, d("@duration"))),
                total(Measure::Percentile(99.0, d("@duration"))),
                total(Measure::Avg(d("@code"))),
                total(Measure::Cardinality(d("@tags"))),
            ],
            vec![],
        );
        let ms = |x: f64| Some(x * MS as f64);
        let got = flat(&got);
        assert_eq!(got.len(), 1);
        assert!(got[0].0.is_empty());
        let want = [
            Some(10.0),
            Some(2.0),
            ms(55.0),
            ms(5.5),
            ms(1.0),
            ms(10.0),
            ms(5.5),
            ms(9.1),
            ms(9.91),
            Some((6.0 * 200.0 + 3.0 * 500.0) / 9.0),
            Some(2.0),
        ];
        assert_eq!(got[0].1.len(), want.len());
        for (i, (g, w)) in got[0].1.iter().zip(want).enumerate() {
            let (g, w) = (g.unwrap(), w.unwrap());
            assert!((g - w).abs() <= 1e-9 * w.abs(), "c{i}: {g} != {w}");
        }
        // Nothing matched: one bucket, count 0, other measures null.
        let got = run(
            "service:none",
            vec![total(Measure::Count), total(Measure::Max(d("@duration")))],
            vec![],
        );
        assert_eq!(flat(&got), [(vec![], vec![Some(0.0), None])]);
    }

    #[test]
    fn groups_sorts_limits_missing_and_totals() {
        // By count (default desc).
        let got = run(
            "*",
            vec![total(Measure::Count)],
            vec![group("service", GroupSort::Count { desc: true })],
        );
        assert_eq!(
            flat(&got),
            [
                (vec![json!("a")], vec![Some(6.0)]),
                (vec![json!("b")], vec![Some(4.0)])
            ]
        );
        // By a compute, ascending; a numeric facet keeps numbers; span 10 has no code.
        let got = run(
            "*",
            vec![total(Measure::Count), total(Measure::Max(d("@duration")))],
            vec![group(
                "@code",
                GroupSort::Compute {
                    index: 1,
                    desc: false,
                },
            )],
        );
        assert_eq!(
            flat(&got),
            [
                (vec![json!(200)], vec![Some(6.0), Some(8.0 * MS as f64)]),
                (vec![json!(500)], vec![Some(3.0), Some(9.0 * MS as f64)]),
            ]
        );
        // Missing value and a total bucket; alphabetical; limit 1.
        let mut g = group("@code", GroupSort::Alphabetical { desc: false });
        g.missing = Some(json!("none"));
        g.total = Some(json!("$facet_total"));
        g.limit = 1;
        let got = run("*", vec![total(Measure::Count)], vec![g]);
        assert_eq!(
            flat(&got),
            [
                (vec![json!(200)], vec![Some(6.0)]),
                (vec![json!("$facet_total")], vec![Some(10.0)]),
            ]
        );
        let mut g = group("@code", GroupSort::Alphabetical { desc: true });
        g.missing = Some(json!("none"));
        let got = run("*", vec![total(Measure::Count)], vec![g]);
        assert_eq!(
            flat(&got),
            [
                (vec![json!("none")], vec![Some(1.0)]),
                (vec![json!(500)], vec![Some(3.0)]),
                (vec![json!(200)], vec![Some(6.0)]),
            ]
        );
        // Nested, with a filter; arrays put a span in several groups.
        let got = run(
            "-status:error",
            vec![total(Measure::Count)],
            vec![
                group("service", GroupSort::Alphabetical { desc: false }),
                group("@tags", GroupSort::Count { desc: true }),
            ],
        );
        assert_eq!(
            flat(&got),
            [
                (vec![json!("a"), json!("x")], vec![Some(5.0)]),
                (vec![json!("a"), json!("y")], vec![Some(1.0)]),
                (vec![json!("b"), json!("x")], vec![Some(3.0)]),
            ]
        );
    }

    #[test]
    fn timeseries() {
        let filter = SpanFilter::all();
        let req = SpanAggregate {
            from_ns: 0,
            to_ns: 12_000_000_000,
            computes: vec![
                Compute {
                    measure: Measure::Count,
                    interval_ns: Some(5_000_000_000),
                },
                Compute {
                    measure: Measure::Max(d("@duration")),
                    interval_ns: Some(5_000_000_000),
                },
            ],
            group_by: vec![],
        };
        let got = aggregate(&store(), &filter, &req, AggregateLimits::default()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].computes,
            [
                ComputeValue::Series(vec![
                    (0, Some(4.0)),
                    (5_000_000_000, Some(5.0)),
                    (10_000_000_000, Some(1.0)),
                ]),
                ComputeValue::Series(vec![
                    (0, Some(4.0 * MS as f64)),
                    (5_000_000_000, Some(9.0 * MS as f64)),
                    (10_000_000_000, Some(10.0 * MS as f64)),
                ]),
            ]
        );
    }

    #[test]
    fn limits_and_bad_requests() {
        let tight = AggregateLimits {
            max_values: 5,
            max_groups: 1,
        };
        let e = run_limited(
            "*",
            vec![total(Measure::Percentile(99.0, d("@duration")))],
            vec![],
            tight,
        )
        .unwrap_err();
        assert!(e.to_string().contains("more than 5 values"), "{e}");
        // Counts keep no values.
        assert!(run_limited("*", vec![total(Measure::Count)], vec![], tight).is_ok());
        let e = run_limited(
            "*",
            vec![total(Measure::Count)],
            vec![group("service", GroupSort::Count { desc: true })],
            tight,
        )
        .unwrap_err();
        assert!(e.to_string().contains("more than 1 groups"), "{e}");
        for (computes, group_by, part) in [
            (vec![], vec![], "at least one compute"),
            (
                vec![total(Measure::Sum(d("duration")))],
                vec![],
                "must be @duration",
            ),
            (
                vec![Compute {
                    measure: Measure::Count,
                    interval_ns: Some(1),
                }],
                vec![],
                "time buckets",
            ),
            (
                vec![total(Measure::Count)],
                vec![group(
                    "service",
                    GroupSort::Compute {
                        index: 3,
                        desc: true,
                    },
                )],
                "not a total compute",
            ),
        ] {
            let e = run_limited("*", computes, group_by, AggregateLimits::default()).unwrap_err();
            assert!(matches!(e, QueryError::BadParam(_)), "{e}");
            assert!(e.to_string().contains(part), "{e}");
        }
    }

    #[test]
    fn percentiles_interpolate() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&mut v, 50.0), Some(2.5));
        assert_eq!(percentile(&mut v, 0.0), Some(1.0));
        assert_eq!(percentile(&mut v, 100.0), Some(4.0));
        assert_eq!(percentile(&mut [7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&mut [], 50.0), None);
    }
}

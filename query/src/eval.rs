//! The metric query evaluator, with Datadog's semantics: pick an interval (raised so a series has at most
//! ~300 points), time-aggregate each series into interval buckets, space-aggregate per `by` group, then apply
//! arithmetic and functions on the aligned groups.

use crate::ast::*;
use crate::error::QueryError;
use sightline_model::{Limits, MetricKind, Sketch, TagSet, MAX_UNIX_SECS};
use sightline_storage::{Fold, Folded, MetricReader, SeriesData, SeriesMeta};
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

/// Limits of one evaluation.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Most series one metric term may read.
    pub max_series: usize,
    /// Most points per result series; the interval is raised to fit.
    pub max_points: usize,
    /// Widest `to - from`, in seconds.
    pub max_range_secs: i64,
    /// Most raw points one metric term may read, estimated before reading from its series' intervals.
    pub max_raw_points: usize,
}

impl EvalOptions {
    /// The evaluation limits that come from the configured [`Limits`], with at most 300 points per series.
    pub fn from_limits(limits: &Limits) -> EvalOptions {
        EvalOptions {
            max_series: limits.max_query_series,
            max_points: 300,
            max_range_secs: limits.max_query_range_secs,
            max_raw_points: limits.max_query_raw_points,
        }
    }
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions::from_limits(&Limits::default())
    }
}

/// The result of a query: one entry per (top-level expression, group).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    pub from: i64,
    pub to: i64,
    /// Every `by` tag key of the query, in order of first appearance.
    pub group_by: Vec<String>,
    pub series: Vec<SeriesResult>,
}

/// One result series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesResult {
    /// Which comma-separated expression of the query this comes from.
    pub query_index: usize,
    /// The metric name for a plain metric query, else the expression text.
    pub metric: String,
    /// The group's expression, e.g. `sum:hits{env:prod,host:a}.as_count()`.
    pub expression: String,
    /// The group's tags and the query's filters, e.g. `host:a,env:prod`, or `*`.
    pub scope: String,
    /// The group's tags (`by` keys with values), empty without `by`.
    pub tag_set: Vec<String>,
    /// The space aggregator (`avg`, `sum`, `p99`, …), if the series comes from one.
    pub aggr: Option<String>,
    /// Seconds between points.
    pub interval: i64,
    /// `(unix seconds, value)`, one per interval over the range, `None` where there is no data.
    pub points: Vec<(i64, Option<f64>)>,
}

/// Nice intervals an interval is raised to, in seconds; past the last, whole days.
const NICE_STEPS: [i64; 17] = [
    1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400,
];

/// Storage interval assumed when a series does not know its own.
const DEFAULT_NATIVE_INTERVAL: i64 = 10;

/// Default `.fill()` limit in seconds (Datadog's).
const DEFAULT_FILL_LIMIT: i64 = 300;

/// The Datadog Agent's derived histogram series, answered from a `Histogram` metric's sketches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Derived {
    Avg,
    Count,
    Max,
    Median,
    P95,
}

impl Derived {
    fn from_suffix(s: &str) -> Option<Derived> {
        Some(match s {
            "avg" => Derived::Avg,
            "count" => Derived::Count,
            "max" => Derived::Max,
            "median" => Derived::Median,
            "95percentile" => Derived::P95,
            _ => return None,
        })
    }

    fn of(self, s: &Sketch) -> Option<f64> {
        match self {
            Derived::Avg => s.avg(),
            Derived::Count => Some(s.count() as f64),
            Derived::Max => s.max(),
            Derived::Median => s.quantile(0.5),
            Derived::P95 => s.quantile(0.95),
        }
    }
}

/// Parses and evaluates a query with default options.
pub fn run_query(
    text: &str,
    from: i64,
    to: i64,
    reader: &dyn MetricReader,
) -> Result<QueryOutput, QueryError> {
    let q = crate::parser::parse(text)?;
    evaluate(&q, from, to, reader, &EvalOptions::default())
}

/// Evaluates a parsed query over `[from, to)` (unix seconds).
pub fn evaluate(
    query: &Query,
    from: i64,
    to: i64,
    reader: &dyn MetricReader,
    opts: &EvalOptions,
) -> Result<QueryOutput, QueryError> {
    evaluate_in(query, from, to, reader, opts, false)
}

/// Evaluates a parsed query over `[from, to)` as one bucket starting at `from` (one point per series): a
/// percentile aggregator gives the percentile of every sample of the window (the sketches merged), which
/// per-interval points cannot give. Used by `percentile(last_…)` monitors.
pub fn evaluate_window(
    query: &Query,
    from: i64,
    to: i64,
    reader: &dyn MetricReader,
    opts: &EvalOptions,
) -> Result<QueryOutput, QueryError> {
    evaluate_in(query, from, to, reader, opts, true)
}

fn evaluate_in(
    query: &Query,
    from: i64,
    to: i64,
    reader: &dyn MetricReader,
    opts: &EvalOptions,
    one_bucket: bool,
) -> Result<QueryOutput, QueryError> {
    for (name, t) in [("from", from), ("to", to)] {
        if !(-MAX_UNIX_SECS..=MAX_UNIX_SECS).contains(&t) {
            return Err(QueryError::BadParam(format!(
                "{name:?} ({t}) is not a plausible unix time in seconds"
            )));
        }
    }
    if to <= from {
        return Err(QueryError::BadParam(format!(
            "\"from\" ({from}) must be before \"to\" ({to})"
        )));
    }
    if to - from > opts.max_range_secs {
        return Err(QueryError::RangeTooWide {
            secs: to - from,
            limit: opts.max_range_secs,
        });
    }
    let mut out = QueryOutput {
        from,
        to,
        group_by: Vec::new(),
        series: Vec::new(),
    };
    for (query_index, expr) in query.exprs.iter().enumerate() {
        let mut terms = VecDeque::new();
        plan(expr, to - from, reader, opts, &mut terms, &mut out.group_by)?;
        let base = terms
            .iter()
            .map(|t| t.base_interval)
            .max()
            .unwrap_or(DEFAULT_NATIVE_INTERVAL);
        let explicit = terms.iter().filter_map(|t| t.explicit_interval).max();
        let (start, step, n) = if one_bucket {
            (from, to - from, 1)
        } else {
            let step = choose_step(base, explicit, to - from, opts.max_points);
            let start = from.div_euclid(step) * step;
            (
                start,
                step,
                ((to - start + step - 1) / step).max(1) as usize,
            )
        };
        let ctx = Ctx {
            reader,
            start,
            step,
            n,
            shift: 0,
        };
        let groups = match eval(expr, &ctx, &mut terms)? {
            Val::Scalar(v) => vec![constant_group(v, n, expr)],
            Val::Groups(gs) => gs,
        };
        for g in groups {
            out.series.push(SeriesResult {
                query_index,
                metric: g.metric,
                expression: g.expression,
                scope: g.scope,
                tag_set: g.tags,
                aggr: g.aggr,
                interval: step,
                points: g
                    .points
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (start + i as i64 * step, v))
                    .collect(),
            });
        }
    }
    Ok(out)
}

/// The interval for a range: `explicit` (a `.rollup` interval) if it keeps the points under the cap, else the
/// smallest nice step at least `base` (the storage interval) that does.
pub fn choose_step(base: i64, explicit: Option<i64>, range: i64, max_points: usize) -> i64 {
    let min_step = (range + max_points as i64 - 1) / max_points as i64;
    if let Some(e) = explicit {
        if e >= min_step {
            return e.max(1);
        }
    }
    let want = base.max(min_step).max(explicit.unwrap_or(1)).max(1);
    NICE_STEPS
        .iter()
        .copied()
        .find(|s| *s >= want)
        .unwrap_or_else(|| (want + 86_399) / 86_400 * 86_400)
}

// ---- planning: resolve metric terms before the interval is known ----

/// A metric term with its series resolved and filtered by scope.
struct Term {
    kind: Option<MetricKind>,
    derived: Option<Derived>,
    series: Vec<SeriesMeta>,
    base_interval: i64,
    explicit_interval: Option<i64>,
}

fn plan(
    e: &Expr,
    range: i64,
    reader: &dyn MetricReader,
    opts: &EvalOptions,
    terms: &mut VecDeque<Term>,
    group_by: &mut Vec<String>,
) -> Result<(), QueryError> {
    match &e.kind {
        ExprKind::Number(_) => Ok(()),
        ExprKind::Binary { lhs, rhs, .. } => {
            plan(lhs, range, reader, opts, terms, group_by)?;
            plan(rhs, range, reader, opts, terms, group_by)
        }
        ExprKind::Neg(x) | ExprKind::Call { arg: x, .. } => {
            plan(x, range, reader, opts, terms, group_by)
        }
        ExprKind::Metric(mq) => {
            for k in &mq.group_by {
                if !group_by.contains(k) {
                    group_by.push(k.clone());
                }
            }
            terms.push_back(resolve(mq, range, reader, opts)?);
            Ok(())
        }
    }
}

/// Resolves a metric term's series for a query range of `range` seconds, refusing terms that would read too
/// many series or raw points.
fn resolve(
    mq: &MetricQuery,
    range: i64,
    reader: &dyn MetricReader,
    opts: &EvalOptions,
) -> Result<Term, QueryError> {
    let mut series = reader.series_for_metric(&mq.metric);
    let mut derived = None;
    if series.is_empty() {
        if let Some((base, suffix)) = mq.metric.rsplit_once('.') {
            if let Some(d) = Derived::from_suffix(suffix) {
                let base_series = reader.series_for_metric(base);
                if base_series.iter().any(|s| s.kind == MetricKind::Histogram) {
                    series = base_series
                        .into_iter()
                        .filter(|s| s.kind == MetricKind::Histogram)
                        .collect();
                    derived = Some(d);
                }
            }
        }
    }
    let kind = series.first().map(|s| s.kind);
    if let (Some(SpaceAgg::Percentile(p)), Some(kind)) = (mq.space_agg, kind) {
        if derived.is_some() || !kind.is_sketch() {
            let what = if derived.is_some() {
                "a derived histogram series"
            } else {
                kind.as_str()
            };
            return Err(QueryError::Invalid {
                pos: mq.metric_span.start,
                message: format!(
                    "percentile aggregator p{p} needs a distribution, but metric {:?} is {}{what}",
                    mq.metric,
                    if derived.is_some() { "" } else { "a " }
                ),
            });
        }
    }
    if let Scope::Expr(scope) = &mq.scope {
        series.retain(|s| {
            let tags: Vec<&str> = s.key.tags.iter().collect();
            scope.matches(&tags)
        });
    }
    if series.len() > opts.max_series {
        return Err(QueryError::TooManySeries {
            metric: mq.metric.clone(),
            count: series.len(),
            limit: opts.max_series,
        });
    }
    // Raw points read: each series stores about one point per native interval (at least 10 s) of the range.
    let range = range.max(0) as u64;
    let estimate = series.iter().fold(0u64, |acc, s| {
        acc.saturating_add(range / u64::from(s.interval.max(DEFAULT_NATIVE_INTERVAL as u32)))
    });
    if estimate > opts.max_raw_points as u64 {
        return Err(QueryError::TooManyPoints {
            metric: mq.metric.clone(),
            estimate,
            limit: opts.max_raw_points,
        });
    }
    let base_interval = series
        .iter()
        .map(|s| {
            if s.interval > 0 {
                s.interval as i64
            } else {
                DEFAULT_NATIVE_INTERVAL
            }
        })
        .max()
        .unwrap_or(DEFAULT_NATIVE_INTERVAL);
    let explicit_interval = mq.rollup().and_then(|(_, i)| i).map(i64::from);
    Ok(Term {
        kind,
        derived,
        series,
        base_interval,
        explicit_interval,
    })
}

// ---- evaluation ----

struct Ctx<'a> {
    reader: &'a dyn MetricReader,
    /// Timestamp of the first bucket, before any timeshift.
    start: i64,
    step: i64,
    n: usize,
    /// Seconds added to every read (negative looks into the past).
    shift: i64,
}

#[derive(Debug, Clone)]
struct Group {
    tags: Vec<String>,
    points: Vec<Option<f64>>,
    metric: String,
    expression: String,
    scope: String,
    aggr: Option<String>,
}

enum Val {
    Scalar(f64),
    Groups(Vec<Group>),
}

fn constant_group(v: f64, n: usize, e: &Expr) -> Group {
    let text = e.to_string();
    Group {
        tags: Vec::new(),
        points: vec![Some(v).filter(|v| v.is_finite()); n],
        metric: text.clone(),
        expression: text,
        scope: "*".into(),
        aggr: None,
    }
}

fn eval(e: &Expr, ctx: &Ctx, terms: &mut VecDeque<Term>) -> Result<Val, QueryError> {
    match &e.kind {
        ExprKind::Number(n) => Ok(Val::Scalar(*n)),
        ExprKind::Metric(mq) => {
            let term = terms
                .pop_front()
                .ok_or_else(|| QueryError::Internal("metric terms out of step".into()))?;
            Ok(Val::Groups(eval_metric(mq, &term, ctx)?))
        }
        ExprKind::Neg(x) => Ok(match eval(x, ctx, terms)? {
            Val::Scalar(v) => Val::Scalar(-v),
            Val::Groups(gs) => Val::Groups(
                gs.into_iter()
                    .map(|mut g| {
                        g.points.iter_mut().for_each(|p| *p = p.map(|v| -v));
                        g.expression = format!("-({})", g.expression);
                        g.metric = g.expression.clone();
                        g
                    })
                    .collect(),
            ),
        }),
        ExprKind::Binary { op, lhs, rhs } => {
            let l = eval(lhs, ctx, terms)?;
            let r = eval(rhs, ctx, terms)?;
            Ok(binary(*op, l, r, ctx.n))
        }
        ExprKind::Call { func, arg, params } => {
            let shift = match func {
                Func::Timeshift => match params.first() {
                    Some(Param::Number(s)) => *s as i64,
                    _ => 0,
                },
                Func::HourBefore => -3600,
                Func::DayBefore => -86_400,
                Func::WeekBefore => -7 * 86_400,
                Func::MonthBefore => -28 * 86_400,
                _ => 0,
            };
            let inner_ctx = Ctx {
                shift: ctx.shift + shift,
                ..*ctx
            };
            let val = eval(arg, &inner_ctx, terms)?;
            let groups = match val {
                Val::Scalar(v) => vec![constant_group(v, ctx.n, arg)],
                Val::Groups(gs) => gs,
            };
            Ok(Val::Groups(apply_func(*func, params, groups, ctx.step)))
        }
    }
}

fn apply_op(op: BinOp, a: f64, b: f64) -> Option<f64> {
    let v = match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
    };
    v.is_finite().then_some(v)
}

fn binary(op: BinOp, l: Val, r: Val, n: usize) -> Val {
    let combine = |a: &Group, b: &Group| -> Group {
        let expression = format!("{} {} {}", a.expression, op.symbol(), b.expression);
        Group {
            tags: if a.tags.is_empty() {
                b.tags.clone()
            } else {
                a.tags.clone()
            },
            points: (0..n)
                .map(|i| match (a.points[i], b.points[i]) {
                    (Some(x), Some(y)) => apply_op(op, x, y),
                    _ => None,
                })
                .collect(),
            metric: expression.clone(),
            expression,
            scope: if a.tags.is_empty() && !b.tags.is_empty() {
                b.scope.clone()
            } else {
                a.scope.clone()
            },
            aggr: if a.aggr == b.aggr {
                a.aggr.clone()
            } else {
                None
            },
        }
    };
    let scalar_group = |v: f64| Group {
        tags: Vec::new(),
        points: vec![Some(v); n],
        metric: format!("{v}"),
        expression: format!("{v}"),
        scope: "*".into(),
        aggr: None,
    };
    match (l, r) {
        (Val::Scalar(a), Val::Scalar(b)) => Val::Scalar(apply_op(op, a, b).unwrap_or(f64::NAN)),
        (Val::Scalar(a), Val::Groups(gs)) => {
            let s = scalar_group(a);
            let mut out: Vec<Group> = gs.iter().map(|g| combine(&s, g)).collect();
            out.iter_mut().zip(&gs).for_each(|(o, g)| {
                o.aggr = g.aggr.clone();
                o.scope = g.scope.clone();
            });
            Val::Groups(out)
        }
        (Val::Groups(gs), Val::Scalar(b)) => {
            let s = scalar_group(b);
            let mut out: Vec<Group> = gs.iter().map(|g| combine(g, &s)).collect();
            out.iter_mut()
                .zip(&gs)
                .for_each(|(o, g)| o.aggr = g.aggr.clone());
            Val::Groups(out)
        }
        (Val::Groups(ls), Val::Groups(rs)) => {
            if ls.len() == 1 && rs.len() == 1 {
                return Val::Groups(vec![combine(&ls[0], &rs[0])]);
            }
            if rs.len() == 1 && rs[0].tags.is_empty() {
                return Val::Groups(ls.iter().map(|g| combine(g, &rs[0])).collect());
            }
            if ls.len() == 1 && ls[0].tags.is_empty() {
                return Val::Groups(rs.iter().map(|g| combine(&ls[0], g)).collect());
            }
            let sorted = |t: &[String]| {
                let mut t = t.to_vec();
                t.sort();
                t
            };
            let by_tags: BTreeMap<Vec<String>, &Group> =
                rs.iter().map(|g| (sorted(&g.tags), g)).collect();
            Val::Groups(
                ls.iter()
                    .filter_map(|g| by_tags.get(&sorted(&g.tags)).map(|r| combine(g, r)))
                    .collect(),
            )
        }
    }
}

// ---- one metric term ----

/// Per-series bucket values: numbers, or sketches merged per bucket.
enum Buckets {
    Scalars(Vec<Option<f64>>),
    Sketches(Vec<Option<Sketch>>),
}

fn eval_metric(mq: &MetricQuery, term: &Term, ctx: &Ctx) -> Result<Vec<Group>, QueryError> {
    let Some(kind) = term.kind else {
        return Ok(Vec::new());
    };
    if term.series.is_empty() {
        return Ok(Vec::new());
    }
    let (step, n) = (ctx.step, ctx.n);
    let read_from = ctx.start + ctx.shift;
    let read_to = read_from + n as i64 * step;
    let ids: Vec<_> = term.series.iter().map(|s| s.id).collect();
    let bucket = |ts: i64| -> Option<usize> {
        let i = (ts - read_from).div_euclid(step);
        (ts >= read_from && (i as usize) < n).then_some(i as usize)
    };
    let rollup_fn = mq.rollup().and_then(|(f, _)| f);
    let as_count = mq.as_count();
    let sketch_mode = kind.is_sketch() && term.derived.is_none();

    // Time aggregation, per series.
    let mut per_series: Vec<(&SeriesMeta, Buckets)> = Vec::new();
    if !sketch_mode && term.derived.is_none() {
        let counting = as_count.unwrap_or(kind == MetricKind::Count);
        // Counts as rates under an `avg`/`min`/`max`/`count` rollup take each point per native interval
        // first: those are read raw. Every other rollup folds the points as the store reads them.
        let per_native =
            kind.is_count() && !counting && !matches!(rollup_fn, None | Some(RollupFn::Sum));
        let buckets = sightline_storage::Buckets {
            start: read_from,
            step,
            n,
            extremes: per_native || matches!(rollup_fn, Some(RollupFn::Min | RollupFn::Max)),
        };
        let folded = if per_native {
            let data = ctx.reader.read(&ids, read_from, read_to)?;
            term.series
                .iter()
                .zip(data)
                .map(|(meta, d)| {
                    let native = if meta.interval > 0 {
                        meta.interval as f64
                    } else {
                        DEFAULT_NATIVE_INTERVAL as f64
                    };
                    let d = match d {
                        SeriesData::Scalars(v) => SeriesData::Scalars(
                            v.into_iter().map(|(t, v)| (t, v / native)).collect(),
                        ),
                        d => d,
                    };
                    Folded::from_data(d, buckets)
                })
                .collect()
        } else {
            ctx.reader.read_folded(&ids, buckets)?
        };
        for (meta, f) in term.series.iter().zip(folded) {
            // Sketches under a metric of scalars (a kind that disagrees with the metric's) are skipped, as are
            // series without points.
            let Folded::Scalars(folds) = f else { continue };
            if folds.iter().all(|f| f.count == 0) {
                continue;
            }
            let vals = folds
                .iter()
                .map(|f| {
                    if f.count == 0 {
                        None
                    } else if kind.is_count() {
                        match (counting, rollup_fn) {
                            (true, f_) => Some(rollup_of(f_.unwrap_or(RollupFn::Sum), f)),
                            (false, None | Some(RollupFn::Sum)) => Some(f.sum / step as f64),
                            (false, Some(f_)) => Some(rollup_of(f_, f)),
                        }
                    } else {
                        Some(rollup_of(rollup_fn.unwrap_or(RollupFn::Avg), f))
                    }
                })
                .collect();
            per_series.push((meta, Buckets::Scalars(vals)));
        }
    } else {
        let data = ctx.reader.read(&ids, read_from, read_to)?;
        for (meta, d) in term.series.iter().zip(data) {
            // Scalars under a metric of sketches (a kind that disagrees with the metric's) are skipped.
            let SeriesData::Sketches(points) = d else {
                continue;
            };
            if points.is_empty() {
                continue;
            }
            let mut merged: Vec<Option<Sketch>> = vec![None; n];
            for (ts, s) in points {
                if let Some(i) = bucket(ts) {
                    match &mut merged[i] {
                        Some(m) => m.merge(&s),
                        slot => *slot = Some(s),
                    }
                }
            }
            if let Some(d) = term.derived {
                let counting = as_count.unwrap_or(false);
                let vals = merged
                    .iter()
                    .map(|s| {
                        let v = d.of(s.as_ref()?)?;
                        Some(if d == Derived::Count && !counting {
                            v / step as f64
                        } else {
                            v
                        })
                    })
                    .collect();
                per_series.push((meta, Buckets::Scalars(vals)));
            } else {
                per_series.push((meta, Buckets::Sketches(merged)));
            }
        }
    }

    // Space aggregation, per `by` group.
    let mut groups: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    for (i, (meta, _)) in per_series.iter().enumerate() {
        for key in group_keys(&meta.key.tags, &mq.group_by) {
            groups.entry(key).or_default().push(i);
        }
    }
    let agg = mq.space_agg.unwrap_or(SpaceAgg::Avg);
    let fill = mq.fill();
    let scope_text = match &mq.scope {
        Scope::All => None,
        s => Some(s.to_string()),
    };
    let mods: String = mq.modifiers.iter().map(|m| m.to_string()).collect();
    let mut out = Vec::new();
    for (tags, members) in groups {
        let points = if sketch_mode {
            let mut pts: Vec<Option<f64>> = (0..n)
                .map(|b| {
                    let mut m: Option<Sketch> = None;
                    for &i in &members {
                        if let Buckets::Sketches(s) = &per_series[i].1 {
                            if let Some(s) = &s[b] {
                                match &mut m {
                                    Some(m) => m.merge(s),
                                    None => m = Some(s.clone()),
                                }
                            }
                        }
                    }
                    let m = m?;
                    match agg {
                        SpaceAgg::Avg => m.avg(),
                        SpaceAgg::Sum => m.sum(),
                        SpaceAgg::Min => m.min(),
                        SpaceAgg::Max => m.max(),
                        SpaceAgg::Count => {
                            let c = m.count() as f64;
                            Some(if as_count == Some(false) {
                                c / step as f64
                            } else {
                                c
                            })
                        }
                        SpaceAgg::Percentile(p) => m.quantile(p / 100.0),
                    }
                })
                .collect();
            if let Some((mode, limit)) = fill {
                fill_gaps(&mut pts, mode, limit, step);
            }
            pts
        } else {
            // Borrowed unless `.fill()` rewrites them: a series may belong to several groups.
            let mut series: Vec<Cow<'_, [Option<f64>]>> = members
                .iter()
                .filter_map(|&i| match &per_series[i].1 {
                    Buckets::Scalars(v) => Some(Cow::Borrowed(v.as_slice())),
                    Buckets::Sketches(_) => None,
                })
                .collect();
            if let Some((mode, limit)) = fill {
                series
                    .iter_mut()
                    .for_each(|s| fill_gaps(s.to_mut(), mode, limit, step));
            }
            (0..n)
                .map(|b| space_aggregate(agg, series.iter().filter_map(|s| s[b])))
                .collect()
        };
        let scope = match (tags.is_empty(), &scope_text) {
            (true, None) => "*".to_string(),
            (true, Some(s)) => s.clone(),
            (false, None) => tags.join(","),
            (false, Some(s)) => format!("{},{s}", tags.join(",")),
        };
        let expression = format!("{agg}:{}{{{scope}}}{mods}", mq.metric);
        out.push(Group {
            tags,
            points,
            metric: mq.metric.clone(),
            expression,
            scope,
            aggr: Some(agg.to_string()),
        });
    }
    Ok(out)
}

/// The group keys of a series: one `key:value` per `by` key (`key:n/a` when the series lacks it); a series
/// with several values of a key belongs to several groups.
fn group_keys(tags: &TagSet, by: &[String]) -> Vec<Vec<String>> {
    let mut keys: Vec<Vec<String>> = vec![Vec::new()];
    for k in by {
        let mut values: Vec<&str> = tags.values_of(k).collect();
        if values.is_empty() {
            values.push("n/a");
        }
        keys = keys
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push(format!("{k}:{v}"));
                    p
                })
            })
            .collect();
    }
    keys
}

fn rollup(f: RollupFn, vals: impl Iterator<Item = f64>) -> Option<f64> {
    let mut count = 0usize;
    let (mut sum, mut min, mut max) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
    for v in vals {
        count += 1;
        sum += v;
        min = min.min(v);
        max = max.max(v);
    }
    if count == 0 {
        return None;
    }
    Some(match f {
        RollupFn::Avg => sum / count as f64,
        RollupFn::Sum => sum,
        RollupFn::Min => min,
        RollupFn::Max => max,
        RollupFn::Count => count as f64,
    })
}

/// A rollup of one bucket's points from their fold: what [`rollup`] gives for the points themselves (its sum
/// starts from `0.0`, the fold's from `-0.0`: adding `0.0` makes them agree, down to the sign of zero).
fn rollup_of(f: RollupFn, fold: &Fold) -> f64 {
    match f {
        RollupFn::Avg => (0.0 + fold.sum) / fold.count as f64,
        RollupFn::Sum => 0.0 + fold.sum,
        RollupFn::Min => fold.min,
        RollupFn::Max => fold.max,
        RollupFn::Count => fold.count as f64,
    }
}

fn space_aggregate(agg: SpaceAgg, vals: impl Iterator<Item = f64>) -> Option<f64> {
    let f = match agg {
        SpaceAgg::Avg => RollupFn::Avg,
        SpaceAgg::Sum => RollupFn::Sum,
        SpaceAgg::Min => RollupFn::Min,
        SpaceAgg::Max => RollupFn::Max,
        SpaceAgg::Count => RollupFn::Count,
        // Refused at planning for scalar series.
        SpaceAgg::Percentile(_) => return None,
    };
    rollup(f, vals)
}

/// Fills empty buckets: `zero` everywhere (or within `limit` seconds after a point when a limit is given),
/// `last` within the limit after a point, `linear` across gaps no longer than the limit.
fn fill_gaps(pts: &mut [Option<f64>], mode: FillMode, limit: Option<u32>, step: i64) {
    let lim = limit.map(i64::from).unwrap_or(DEFAULT_FILL_LIMIT).max(step);
    let mut prev: Option<(usize, f64)> = None;
    let orig: Vec<Option<f64>> = pts.to_vec();
    for i in 0..pts.len() {
        if let Some(v) = orig[i] {
            prev = Some((i, v));
            continue;
        }
        let since_prev = prev.map(|(p, _)| (i - p) as i64 * step);
        pts[i] = match mode {
            FillMode::Null => None,
            FillMode::Zero => match (limit, since_prev) {
                (None, _) => Some(0.0),
                (Some(_), Some(d)) if d <= lim => Some(0.0),
                _ => None,
            },
            FillMode::Last => prev
                .filter(|_| since_prev.is_some_and(|d| d <= lim))
                .map(|(_, v)| v),
            FillMode::Linear => {
                let next = orig[i..]
                    .iter()
                    .enumerate()
                    .find_map(|(j, v)| v.map(|v| (i + j, v)));
                match (prev, next) {
                    (Some((p, a)), Some((q, b))) if (q - p - 1) as i64 * step <= lim => {
                        Some(a + (b - a) * (i - p) as f64 / (q - p) as f64)
                    }
                    _ => None,
                }
            }
        };
    }
}

// ---- functions ----

fn apply_func(func: Func, params: &[Param], mut groups: Vec<Group>, step: i64) -> Vec<Group> {
    let param_text: String = params.iter().map(|p| format!(", {p}")).collect();
    match func {
        Func::Top | Func::Bottom => {
            let limit = match params.first() {
                Some(Param::Number(n)) => *n as usize,
                _ => 10,
            };
            let ranker = match params.get(1) {
                Some(Param::Str(s)) => s.as_str(),
                _ => "mean",
            };
            let desc = match params.get(2) {
                Some(Param::Str(s)) => s == "desc",
                _ => func == Func::Top,
            };
            let mut ranked: Vec<(Option<f64>, Group)> = groups
                .into_iter()
                .map(|g| (rank(ranker, &g.points), g))
                .collect();
            ranked.sort_by(|(a, _), (b, _)| match (a, b) {
                (Some(a), Some(b)) => {
                    if desc {
                        b.total_cmp(a)
                    } else {
                        a.total_cmp(b)
                    }
                }
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            });
            groups = ranked.into_iter().take(limit).map(|(_, g)| g).collect();
        }
        _ => {
            for g in &mut groups {
                transform(func, &mut g.points, step);
            }
        }
    }
    for g in &mut groups {
        g.expression = format!("{}({}{param_text})", func.name(), g.expression);
        g.metric = g.expression.clone();
    }
    groups
}

fn rank(ranker: &str, pts: &[Option<f64>]) -> Option<f64> {
    let vals: Vec<f64> = pts.iter().flatten().copied().collect();
    if vals.is_empty() {
        return None;
    }
    Some(match ranker {
        "min" => vals.iter().copied().fold(f64::INFINITY, f64::min),
        "max" => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "last" => *vals.last().expect("not empty"),
        "area" => vals.iter().sum(),
        "l2norm" => vals.iter().map(|v| v * v).sum::<f64>().sqrt(),
        "norm" => vals.iter().map(|v| v.abs()).sum(),
        _ => vals.iter().sum::<f64>() / vals.len() as f64,
    })
}

fn transform(func: Func, pts: &mut [Option<f64>], step: i64) {
    let finite = |v: f64| v.is_finite().then_some(v);
    let stepf = step as f64;
    match func {
        Func::Abs => pts.iter_mut().for_each(|p| *p = p.map(f64::abs)),
        Func::Log2 => pts
            .iter_mut()
            .for_each(|p| *p = p.filter(|v| *v > 0.0).map(f64::log2)),
        Func::Log10 => pts
            .iter_mut()
            .for_each(|p| *p = p.filter(|v| *v > 0.0).map(f64::log10)),
        Func::PerSecond => pts.iter_mut().for_each(|p| *p = p.map(|v| v / stepf)),
        Func::PerMinute => pts
            .iter_mut()
            .for_each(|p| *p = p.map(|v| v * 60.0 / stepf)),
        Func::PerHour => pts
            .iter_mut()
            .for_each(|p| *p = p.map(|v| v * 3600.0 / stepf)),
        Func::DefaultZero => pts.iter_mut().for_each(|p| *p = Some(p.unwrap_or(0.0))),
        Func::Cumsum => {
            let mut acc = 0.0;
            for p in pts.iter_mut() {
                if let Some(v) = p {
                    acc += *v;
                    *p = finite(acc);
                }
            }
        }
        Func::Diff | Func::Derivative => {
            let mut prev: Option<(usize, f64)> = None;
            for (i, p) in pts.iter_mut().enumerate() {
                if let Some(v) = *p {
                    *p = prev.and_then(|(j, pv)| {
                        let d = v - pv;
                        finite(if func == Func::Derivative {
                            d / ((i - j) as f64 * stepf)
                        } else {
                            d
                        })
                    });
                    prev = Some((i, v));
                }
            }
        }
        Func::Ewma3 | Func::Ewma5 | Func::Ewma10 | Func::Ewma20 => {
            let span = match func {
                Func::Ewma3 => 3.0,
                Func::Ewma5 => 5.0,
                Func::Ewma10 => 10.0,
                _ => 20.0,
            };
            let alpha = 2.0 / (span + 1.0);
            let mut s: Option<f64> = None;
            for p in pts.iter_mut() {
                if let Some(v) = *p {
                    let next = match s {
                        None => v,
                        Some(prev) => alpha * v + (1.0 - alpha) * prev,
                    };
                    s = Some(next);
                    *p = Some(next);
                }
            }
        }
        // Timeshifts act when reading; top and bottom are handled by the caller.
        Func::Timeshift
        | Func::HourBefore
        | Func::DayBefore
        | Func::WeekBefore
        | Func::MonthBefore
        | Func::Top
        | Func::Bottom => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::{MetricBatch, MetricPoint, SeriesKey, Value};
    use sightline_storage::{MemMetricStore, MetricStore, StorageConfig};

    /// The values the rollups fold: NaN, both zeros, infinities, fractions, and sums that round.
    const CASES: &[&[f64]] = &[
        &[1.0],
        &[-0.0],
        &[-0.0, -0.0],
        &[-0.0, 0.0],
        &[0.0, -0.0],
        &[f64::NAN],
        &[1.0, f64::NAN, 3.0],
        &[f64::NAN, -0.0],
        &[f64::INFINITY, f64::NEG_INFINITY, 2.0],
        &[0.1, 0.2, 0.3, 1e16, -1e16, 0.7],
        &[-3.5, 2.25, -7.0, 1e-300, 4.0],
    ];

    /// A fold's rollups are exactly, bit for bit, what the rollups of the points themselves give (and the
    /// sum of a count as a rate is `Iterator::sum`, which starts from `-0.0`).
    #[test]
    fn rollup_of_a_fold_is_the_rollup_of_its_points() {
        for vs in CASES {
            let mut fold = Fold::EMPTY;
            vs.iter().for_each(|v| fold.add(*v));
            let mut all = Fold::EMPTY;
            all.add_all(vs, true);
            assert_eq!(format!("{fold:?}"), format!("{all:?}"), "{vs:?}");
            for f in [
                RollupFn::Avg,
                RollupFn::Sum,
                RollupFn::Min,
                RollupFn::Max,
                RollupFn::Count,
            ] {
                let want = rollup(f, vs.iter().copied()).unwrap();
                let got = rollup_of(f, &fold);
                assert_eq!(got.to_bits(), want.to_bits(), "{f:?} of {vs:?}");
            }
            let sum: f64 = vs.iter().sum();
            assert_eq!(fold.sum.to_bits(), sum.to_bits(), "sum of {vs:?}");
        }
    }

    /// Queries over blocks on disk (several files, then the head; folded while reading) answer exactly what
    /// the same points answer from memory (read, merged, then folded).
    #[test]
    fn blocks_and_memory_answer_alike() {
        // A block boundary (a multiple of 2 h).
        let t0: i64 = 1_699_999_200;
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let cfg = StorageConfig {
            retention_days: 36_500,
            ..StorageConfig::default()
        };
        let disk =
            MetricStore::open(dir.path(), cfg, Limits::default(), &mut Default::default()).unwrap();
        let mem = MemMetricStore::new(Limits::default());
        let value = |i: i64, s: i64| match (i + s) % 11 {
            0 => f64::NAN,
            1 => -0.0,
            2 => 0.1 * i as f64,
            3 => -3.5,
            _ => ((i * 7 + s) % 13) as f64,
        };
        let write = |pts: Vec<MetricPoint>| {
            let batch = MetricBatch { points: pts };
            rt.block_on(disk.write(&batch)).unwrap();
            mem.apply(&batch);
        };
        let point = |name: &str, kind: MetricKind, s: i64, t: i64, v: f64| {
            let tags = [format!("host:h{}", s % 3), format!("shard:{s}")];
            MetricPoint {
                series: SeriesKey::new(
                    name,
                    TagSet::parse(tags.iter().map(|t| t.as_str()), 100, 200).unwrap(),
                ),
                kind,
                timestamp: t,
                interval: 10,
                value: Value::Scalar(v),
            }
        };
        // Three blocks of 2 h flushed one by one (files that follow each other in time), with gaps; then an
        // hour in the head.
        for block in 0..4 {
            let mut pts = Vec::new();
            for i in 0..(if block == 3 { 360 } else { 720 }) {
                let t = t0 + block * 7200 + i * 10;
                for s in 0..6 {
                    if (i + s) % 97 < 9 {
                        continue;
                    }
                    pts.push(point("g", MetricKind::Gauge, s, t, value(i, s)));
                    pts.push(point("c", MetricKind::Count, s, t, value(i, s + 1)));
                }
            }
            write(pts);
            if block < 3 {
                disk.flush_blocking().unwrap();
            }
        }
        let queries = [
            "avg:g{*} by {host}",
            "sum:g{*} by {host,shard}",
            "max:g{*}.rollup(min)",
            "min:g{*} by {host}.rollup(max, 600)",
            "avg:g{*}.rollup(sum, 3600)",
            "sum:g{*}.rollup(count)",
            "sum:c{*} by {host}.as_count()",
            "sum:c{*} by {host}.as_rate()",
            "avg:c{*} by {host}",
            "sum:c{*}.rollup(avg, 120)",
            "sum:c{*}.as_count().rollup(max)",
            "max:c{*}.rollup(min, 300)",
        ];
        let ranges = [
            (t0, t0 + 4 * 7200),
            (t0 + 1234, t0 + 3 * 7200 + 600),
            (t0 + 7100, t0 + 7300),
            (t0 - 3600, t0 + 86_400),
        ];
        let check = |what: &str| {
            for q in queries {
                for (from, to) in ranges {
                    let a = run_query(q, from, to, disk.as_ref()).unwrap();
                    let b = run_query(q, from, to, &mem).unwrap();
                    assert!(!b.series.is_empty(), "{q}");
                    assert_eq!(
                        format!("{a:?}"),
                        format!("{b:?}"),
                        "{what}: {q} over {from}..{to}"
                    );
                }
            }
        };
        check("blocks, then the head");
        // A late write into a flushed block (the head overlaps the files), then flushed (files overlap).
        write(vec![
            point("g", MetricKind::Gauge, 1, t0 + 100, 42.0),
            point("c", MetricKind::Count, 1, t0 + 100, 5.0),
        ]);
        check("a late write in the head");
        disk.flush_blocking().unwrap();
        check("a late write in its own file");
        rt.block_on(disk.shutdown());
    }
}

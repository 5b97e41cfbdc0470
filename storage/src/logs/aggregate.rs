//! Log analytics (`POST /api/v2/logs/analytics/aggregate`): counts, cardinalities, sums, averages, extremes
//! and percentiles, in total or over time, grouped by facets. Built on tantivy's aggregations: one
//! distributed aggregation per partition, merged, then read back into [`AggBucket`]s.

use super::compile::compile;
use super::schema::LogFields;
use crate::StorageError;
use serde_json::{json, Map, Value};
use sightline_model::SearchExpr;
use std::ops::Bound;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::aggregation::{
    AggContextParams, AggregationLimitsGuard, DistributedAggregationCollector,
};
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery};
use tantivy::Term;

/// What a compute measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// Records.
    Count,
    /// Distinct values of a facet (`service`, `@usr.id`, a tag key).
    Cardinality(String),
    /// Of a numeric attribute (`@duration`).
    Sum(String),
    Avg(String),
    Min(String),
    Max(String),
    /// A percentile (0–100) of a numeric attribute.
    Percentile(f64, String),
}

/// One compute: a measure, in total or per `interval_ns` bucket of time.
#[derive(Debug, Clone, PartialEq)]
pub struct Compute {
    pub measure: Measure,
    pub interval_ns: Option<i64>,
}

/// How the groups of a facet are ranked (the top `limit` are kept).
#[derive(Debug, Clone, PartialEq)]
pub enum GroupSort {
    /// By record count, most first (the default) or least first.
    Count { desc: bool },
    /// By value, alphabetically.
    Alphabetical { desc: bool },
    /// By the value of compute `index` (a single-value measure).
    Compute { index: usize, desc: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupBy {
    /// `service`, `status`, `host`, `source`, `@path`, or a tag key.
    pub facet: String,
    pub limit: u32,
    pub sort: GroupSort,
}

/// An aggregation request.
#[derive(Debug, Clone, PartialEq)]
pub struct LogAggregate {
    pub expr: SearchExpr,
    pub from_ns: i64,
    pub to_ns: i64,
    pub computes: Vec<Compute>,
    pub group_by: Vec<GroupBy>,
}

/// The value of one compute in one bucket.
#[derive(Debug, Clone, PartialEq)]
pub enum ComputeValue {
    Total(Option<f64>),
    /// `(bucket start ns, value)` for every interval of the time range.
    Series(Vec<(i64, Option<f64>)>),
}

/// One group (all records when there is no `group_by`).
#[derive(Debug, Clone, PartialEq)]
pub struct AggBucket {
    /// Facet → value, in `group_by` order.
    pub by: Vec<(String, Value)>,
    pub computes: Vec<ComputeValue>,
}

/// Where a facet lives: a fast field, and for tag keys the prefix of their `key:value` terms.
fn facet_field(f: &LogFields, facet: &str) -> (String, Option<String>) {
    if let Some(path) = facet.strip_prefix('@') {
        return (format!("attrs.{path}"), None);
    }
    if f.reserved(facet).is_some() {
        return (facet.to_string(), None);
    }
    ("tags".to_string(), Some(format!("{facet}:")))
}

fn numeric_field(m: &str) -> Result<String, StorageError> {
    match m.strip_prefix('@') {
        Some(path) if !path.is_empty() => Ok(format!("attrs.{path}")),
        _ => Err(StorageError::BadQuery(format!(
            "measure {m:?} must be a numeric attribute such as @duration"
        ))),
    }
}

/// The tantivy metric aggregation of a measure (`None` for counts, read from `doc_count`).
fn metric_agg(f: &LogFields, m: &Measure) -> Result<Option<Value>, StorageError> {
    Ok(Some(match m {
        Measure::Count => return Ok(None),
        Measure::Cardinality(facet) => {
            let (field, prefix) = facet_field(f, facet);
            if prefix.is_some() {
                return Err(StorageError::BadQuery(format!(
                    "cardinality of tag {facet:?} is not supported; use a reserved facet or an @attribute"
                )));
            }
            json!({"cardinality": {"field": field}})
        }
        Measure::Sum(a) => json!({"sum": {"field": numeric_field(a)?}}),
        Measure::Avg(a) => json!({"avg": {"field": numeric_field(a)?}}),
        Measure::Min(a) => json!({"min": {"field": numeric_field(a)?}}),
        Measure::Max(a) => json!({"max": {"field": numeric_field(a)?}}),
        Measure::Percentile(p, a) => {
            json!({"percentiles": {"field": numeric_field(a)?, "percents": [p], "keyed": false}})
        }
    }))
}

/// The aggregations computed inside every group.
fn leaf_aggs(f: &LogFields, req: &LogAggregate) -> Result<Map<String, Value>, StorageError> {
    let mut aggs = Map::new();
    for (i, c) in req.computes.iter().enumerate() {
        let metric = metric_agg(f, &c.measure)?;
        match c.interval_ns {
            None => {
                if let Some(m) = metric {
                    aggs.insert(format!("c{i}"), m);
                }
            }
            Some(step) => {
                if step <= 0 {
                    return Err(StorageError::BadQuery(format!(
                        "interval of compute c{i} must be positive"
                    )));
                }
                // Buckets start at `from` and every `step` after; empty ones are filled in when read back.
                let buckets = (req.to_ns - req.from_ns + step - 1) / step;
                if buckets > 10_000 {
                    return Err(StorageError::BadQuery(format!(
                        "compute c{i} would make {buckets} time buckets; the limit is 10000 (raise the interval)"
                    )));
                }
                let mut h = json!({"histogram": {
                    "field": "ts",
                    "interval": step as f64,
                    "offset": req.from_ns.rem_euclid(step) as f64,
                }});
                if let Some(m) = metric {
                    h["aggs"] = json!({ "v": m });
                }
                aggs.insert(format!("c{i}"), h);
            }
        }
    }
    Ok(aggs)
}

fn build_aggs(f: &LogFields, req: &LogAggregate) -> Result<Value, StorageError> {
    let mut inner = Value::Object(leaf_aggs(f, req)?);
    for (depth, g) in req.group_by.iter().enumerate().rev() {
        let (field, prefix) = facet_field(f, &g.facet);
        let order = match &g.sort {
            GroupSort::Count { desc } => json!({"_count": if *desc { "desc" } else { "asc" }}),
            GroupSort::Alphabetical { desc } => json!({"_key": if *desc { "desc" } else { "asc" }}),
            GroupSort::Compute { index, desc } => {
                let single = req.computes.get(*index).is_some_and(|c| {
                    c.interval_ns.is_none()
                        && !matches!(c.measure, Measure::Count | Measure::Percentile(..))
                });
                if single {
                    json!({ format!("c{index}"): if *desc { "desc" } else { "asc" } })
                } else if req
                    .computes
                    .get(*index)
                    .is_some_and(|c| c.measure == Measure::Count)
                {
                    json!({"_count": if *desc { "desc" } else { "asc" }})
                } else {
                    return Err(StorageError::BadQuery(format!(
                        "group_by {:?} sorts by compute c{index}, which is not a single total value",
                        g.facet
                    )));
                }
            }
        };
        let mut terms = json!({
            "field": field,
            "size": g.limit.clamp(1, 10_000),
            "order": order,
        });
        if let Some(p) = &prefix {
            let mut re = String::new();
            super::compile::regex_escape(p, &mut re);
            terms["include"] = json!(format!("{re}.*"));
        }
        let mut agg = json!({ "terms": terms });
        if inner.as_object().is_some_and(|m| !m.is_empty()) {
            agg["aggs"] = inner;
        }
        let mut m = Map::new();
        m.insert(format!("g{depth}"), agg);
        inner = Value::Object(m);
    }
    // A total count needs something to count when nothing else is computed at the top.
    if let Value::Object(m) = &mut inner {
        m.insert("n".into(), json!({"value_count": {"field": "ts"}}));
    }
    Ok(inner)
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64().filter(|x| x.is_finite())
}

/// The value of compute `c` in an aggregation result object `node` with `doc_count`.
/// The `n` bucket starts of a time series compute and the empty value of each.
fn empty_series(c: &Compute, req: &LogAggregate, step: i64) -> Vec<(i64, Option<f64>)> {
    let n = ((req.to_ns - req.from_ns + step - 1) / step).max(0);
    let empty = (c.measure == Measure::Count).then_some(0.0);
    (0..n).map(|k| (req.from_ns + k * step, empty)).collect()
}

fn compute_value(
    c: &Compute,
    i: usize,
    node: &Value,
    doc_count: f64,
    req: &LogAggregate,
) -> ComputeValue {
    let metric = |n: &Value, count: f64| -> Option<f64> {
        match &c.measure {
            Measure::Count => Some(count),
            Measure::Percentile(..) => n["values"]
                .as_array()
                .and_then(|a| a.first())
                .and_then(|e| number(&e["value"])),
            _ => number(&n["value"]),
        }
    };
    match c.interval_ns {
        None => ComputeValue::Total(metric(&node[format!("c{i}")], doc_count)),
        Some(step) => {
            // Keys come back as f64, which cannot hold every nanosecond near 1.7e18: each is snapped to the
            // nearest bucket start of the range, counted in whole steps from `from`.
            let mut series = empty_series(c, req, step);
            for b in node[format!("c{i}")]["buckets"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let key = b["key"].as_f64().unwrap_or(f64::NAN);
                let k = ((key - req.from_ns as f64) / step as f64).round();
                if !(k >= 0.0 && (k as usize) < series.len()) {
                    continue;
                }
                let count = b["doc_count"].as_f64().unwrap_or(0.0);
                if count > 0.0 {
                    series[k as usize].1 = metric(&b["v"], count);
                }
            }
            ComputeValue::Series(series)
        }
    }
}

fn walk(
    req: &LogAggregate,
    node: &Value,
    depth: usize,
    doc_count: f64,
    by: &mut Vec<(String, Value)>,
    out: &mut Vec<AggBucket>,
    f: &LogFields,
) {
    if depth == req.group_by.len() {
        out.push(AggBucket {
            by: by.clone(),
            computes: req
                .computes
                .iter()
                .enumerate()
                .map(|(i, c)| compute_value(c, i, node, doc_count, req))
                .collect(),
        });
        return;
    }
    let g = &req.group_by[depth];
    let prefix = facet_field(f, &g.facet).1;
    for b in node[format!("g{depth}")]["buckets"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = match (&b["key"], &prefix) {
            (Value::String(s), Some(p)) => json!(s.strip_prefix(p.as_str()).unwrap_or(s)),
            (k, _) => k.clone(),
        };
        by.push((g.facet.clone(), key));
        walk(
            req,
            b,
            depth + 1,
            b["doc_count"].as_f64().unwrap_or(0.0),
            by,
            out,
            f,
        );
        by.pop();
    }
}

/// Runs an aggregation over the partitions' searchers.
pub(crate) fn aggregate(
    f: &LogFields,
    searchers: &[(tantivy::Searcher, std::path::PathBuf)],
    tokenizers: tantivy::tokenizer::TokenizerManager,
    req: &LogAggregate,
) -> Result<Vec<AggBucket>, StorageError> {
    if req.computes.is_empty() {
        return Err(StorageError::BadQuery(
            "at least one compute is required".into(),
        ));
    }
    let aggs_json = build_aggs(f, req)?;
    let aggs: Aggregations = serde_json::from_value(aggs_json.clone())
        .map_err(|e| StorageError::BadQuery(format!("cannot build the aggregation: {e}")))?;
    let query = BooleanQuery::new(vec![
        (Occur::Must, compile(f, &req.expr)?),
        (
            Occur::Must,
            Box::new(RangeQuery::new(
                Bound::Included(Term::from_field_i64(f.ts, req.from_ns)),
                Bound::Excluded(Term::from_field_i64(f.ts, req.to_ns)),
            )) as Box<dyn Query>,
        ),
    ]);
    let ctx = AggContextParams::new(AggregationLimitsGuard::default(), tokenizers);
    let mut merged: Option<IntermediateAggregationResults> = None;
    for (searcher, dir) in searchers {
        let fruit = searcher
            .search(
                &query,
                &DistributedAggregationCollector::from_aggs(aggs.clone(), ctx.clone()),
            )
            .map_err(|e| agg_err(dir, e))?;
        match &mut merged {
            Some(m) => m.merge_fruits(fruit).map_err(|e| agg_err(dir, e))?,
            None => merged = Some(fruit),
        }
    }
    let result = match merged {
        Some(m) => serde_json::to_value(
            m.into_final_result(aggs, AggregationLimitsGuard::default())
                .map_err(|e| agg_err(std::path::Path::new("logs"), e))?,
        )
        .map_err(|e| StorageError::BadQuery(e.to_string()))?,
        None => Value::Null,
    };
    let total = number(&result["n"]["value"]).unwrap_or(0.0);
    let mut out = Vec::new();
    if result.is_null() {
        // No partition in range: one empty bucket without groups, none with groups.
        if req.group_by.is_empty() {
            out.push(AggBucket {
                by: Vec::new(),
                computes: req
                    .computes
                    .iter()
                    .map(|c| match (c.interval_ns, &c.measure) {
                        (None, Measure::Count) => ComputeValue::Total(Some(0.0)),
                        (None, _) => ComputeValue::Total(None),
                        (Some(step), _) => ComputeValue::Series(empty_series(c, req, step)),
                    })
                    .collect(),
            });
        }
        return Ok(out);
    }
    walk(req, &result, 0, total, &mut Vec::new(), &mut out, f);
    Ok(out)
}

fn agg_err(dir: &std::path::Path, e: tantivy::TantivyError) -> StorageError {
    match e {
        tantivy::TantivyError::AggregationError(a) => {
            StorageError::BadQuery(format!("aggregation refused: {a}"))
        }
        tantivy::TantivyError::InvalidArgument(a) => {
            StorageError::BadQuery(format!("aggregation refused: {a}"))
        }
        e => StorageError::Corrupt {
            path: dir.display().to_string(),
            detail: e.to_string(),
        },
    }
}

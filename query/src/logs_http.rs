//! The log search HTTP API (SPEC §4), Datadog-compatible: `POST /api/v2/logs/events/search` and
//! `GET /api/v2/logs/events`, with cursor pages that stay stable while new logs arrive, and
//! `POST /api/v2/logs/analytics/aggregate`; and the UI's facet sidebar, `GET /api/ui/logs/facets`.

use crate::error::QueryError;
use crate::logsearch::parse_search;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value as JsonValue};
use sightline_storage::{
    AggBucket, Compute, ComputeValue, Cursor, GroupBy, GroupSort, LogAggregate, LogPage, LogReader,
    LogSearch, Measure, SortOrder,
};
use std::sync::Arc;
use std::time::Instant;

/// Longest search text accepted, in bytes.
pub const MAX_SEARCH_BYTES: usize = 16 * 1024;
/// Page size when none is given (Datadog's default).
const DEFAULT_LIMIT: usize = 10;
/// Largest page (Datadog's limit).
const MAX_LIMIT: usize = 5000;

/// What the log query handlers share.
pub struct LogQueryState {
    pub reader: Arc<dyn LogReader>,
}

/// The log query API's routes; merge them into the server's router.
pub fn logs_router(state: Arc<LogQueryState>) -> Router {
    Router::new()
        .route("/api/v2/logs/events/search", post(search_post))
        .route("/api/v2/logs/events", get(search_get))
        .route("/api/v2/logs/analytics/aggregate", post(aggregate_post))
        .route("/api/ui/logs/facets", get(facets_get))
        .with_state(state)
}

/// A time in a request: unix milliseconds (number or digits), ISO-8601, `now`, or `now-15m` style.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum TimeArg {
    Millis(i64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Filter {
    query: Option<String>,
    from: Option<TimeArg>,
    to: Option<TimeArg>,
    #[allow(dead_code)]
    indexes: Option<Vec<String>>,
    #[allow(dead_code)]
    storage_tier: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Page {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Datadog's `LogsListRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SearchBody {
    filter: Filter,
    sort: Option<String>,
    page: Page,
    #[allow(dead_code)]
    options: Option<JsonValue>,
}

/// Nanoseconds of a time argument; `now_ns` anchors `now` and relative forms.
pub fn parse_time(arg: &str, now_ns: i64) -> Result<i64, String> {
    let s = arg.trim();
    if let Some(rest) = s.strip_prefix("now") {
        if rest.is_empty() {
            return Ok(now_ns);
        }
        let (sign, amount) = match rest.as_bytes()[0] {
            b'-' => (-1, &rest[1..]),
            b'+' => (1, &rest[1..]),
            _ => return Err(format!("invalid time {arg:?}: expected now-<n><s|m|h|d|w>")),
        };
        let split = amount
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(amount.len());
        let (n, unit) = amount.split_at(split);
        let n: i64 = n.parse().map_err(|_| {
            format!(
                "invalid time {arg:?}: expected a number after {:?}",
                &s[..4]
            )
        })?;
        let unit_ns: i64 = match unit {
            "s" => 1_000_000_000,
            "m" | "" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            "w" => 7 * 86_400_000_000_000,
            _ => return Err(format!("invalid time {arg:?}: unknown unit {unit:?}")),
        };
        return n
            .checked_mul(unit_ns)
            .and_then(|d| now_ns.checked_add(sign * d))
            .ok_or_else(|| format!("invalid time {arg:?}: out of range"));
    }
    if let Ok(ms) = s.parse::<i64>() {
        return millis(ms, arg);
    }
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return i64::try_from(ts.as_nanosecond())
            .map_err(|_| format!("invalid time {arg:?}: out of range"));
    }
    // ISO-8601 without an offset: UTC.
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        if let Ok(ts) = jiff::tz::TimeZone::UTC.to_timestamp(dt) {
            return i64::try_from(ts.as_nanosecond())
                .map_err(|_| format!("invalid time {arg:?}: out of range"));
        }
    }
    Err(format!(
        "invalid time {arg:?}: expected unix milliseconds, an ISO-8601 date or now-<n><unit>"
    ))
}

fn millis(ms: i64, arg: &str) -> Result<i64, String> {
    ms.checked_mul(1_000_000)
        .ok_or_else(|| format!("invalid time {arg:?}: out of range"))
}

fn time_arg(a: Option<&TimeArg>, default: &str, now_ns: i64) -> Result<i64, QueryError> {
    match a {
        None => parse_time(default, now_ns),
        Some(TimeArg::Millis(ms)) => millis(*ms, &ms.to_string()),
        Some(TimeArg::Text(t)) => parse_time(t, now_ns),
    }
    .map_err(QueryError::BadParam)
}

use sightline_model::now_ns;

/// Builds the store request from the API's fields.
pub(crate) fn build(
    query: Option<&str>,
    from: Option<&TimeArg>,
    to: Option<&TimeArg>,
    sort: Option<&str>,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<LogSearch, QueryError> {
    let text = query.unwrap_or("*");
    if text.len() > MAX_SEARCH_BYTES {
        return Err(QueryError::BadParam(format!(
            "the search is {} bytes long; the limit is {MAX_SEARCH_BYTES} bytes",
            text.len()
        )));
    }
    let expr = parse_search(text)?;
    let now = now_ns();
    let from_ns = time_arg(from, "now-15m", now)?;
    let to_ns = time_arg(to, "now", now)?;
    if from_ns >= to_ns {
        return Err(QueryError::BadParam(format!(
            "\"from\" must be before \"to\" (from {from_ns} ns, to {to_ns} ns)"
        )));
    }
    let order = match sort.unwrap_or("-timestamp") {
        "-timestamp" => SortOrder::Desc,
        "timestamp" => SortOrder::Asc,
        other => {
            return Err(QueryError::BadParam(format!(
                "invalid sort {other:?}: expected \"timestamp\" or \"-timestamp\""
            )))
        }
    };
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT as i64).contains(&n) => n as usize,
        Some(n) => {
            return Err(QueryError::BadParam(format!(
                "invalid page limit {n}: expected 1 to {MAX_LIMIT}"
            )))
        }
    };
    let after = match cursor.filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            Cursor::decode(c)
                .ok_or_else(|| QueryError::BadParam(format!("invalid page cursor {c:?}")))?,
        ),
    };
    // Inclusive `to` as Datadog's: the store's range is half-open.
    Ok(LogSearch {
        expr,
        from_ns,
        to_ns: to_ns.saturating_add(1),
        order,
        limit,
        after,
    })
}

/// RFC 3339 text of a nanosecond timestamp (milliseconds, `Z`), as Datadog answers.
pub(crate) fn iso(ts_ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(ts_ns as i128)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// `links.next` of a page: the same search from the cursor on, as a `GET <path>` URL (`/api/v2/logs/events`,
/// `/api/v2/spans/events`) with the time range made absolute (unix ms).
pub(crate) fn next_link(path: &str, text: &str, req: &LogSearch, cursor: String) -> String {
    let sort = match req.order {
        SortOrder::Desc => "-timestamp",
        SortOrder::Asc => "timestamp",
    };
    let params = [
        ("filter[query]", text.to_string()),
        (
            "filter[from]",
            req.from_ns.div_euclid(1_000_000).to_string(),
        ),
        (
            "filter[to]",
            (req.to_ns - 1).div_euclid(1_000_000).to_string(),
        ),
        ("sort", sort.to_string()),
        ("page[limit]", req.limit.to_string()),
        ("page[cursor]", cursor),
    ];
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    format!("{path}?{query}")
}

/// The Datadog response of a page; `next` is the `links.next` URL when there may be more.
pub fn page_response(page: &LogPage, elapsed_ms: u128) -> JsonValue {
    let data: Vec<JsonValue> = page
        .hits
        .iter()
        .map(|h| {
            let r = &h.record;
            let mut attrs = serde_json::Map::new();
            attrs.insert("timestamp".into(), json!(iso(r.ts_ns)));
            attrs.insert("message".into(), json!(r.message));
            attrs.insert("status".into(), json!(r.status));
            if let Some(s) = &r.service {
                attrs.insert("service".into(), json!(s));
            }
            if let Some(s) = &r.host {
                attrs.insert("host".into(), json!(s));
            }
            attrs.insert("tags".into(), json!(r.tags));
            let mut custom = r.attributes.clone();
            if let Some(s) = &r.source {
                custom.entry("source").or_insert_with(|| json!(s));
            }
            if let Some(t) = &r.trace_id {
                custom.entry("trace_id").or_insert_with(|| json!(t));
            }
            if let Some(t) = &r.span_id {
                custom.entry("span_id").or_insert_with(|| json!(t));
            }
            attrs.insert("attributes".into(), JsonValue::Object(custom));
            json!({"id": h.id, "type": "log", "attributes": attrs})
        })
        .collect();
    let mut body = json!({
        "data": data,
        "meta": {"elapsed": elapsed_ms as u64, "status": "done", "request_id": ""},
    });
    if let Some(next) = page.next {
        body["meta"]["page"] = json!({ "after": next.encode() });
    }
    body
}

async fn run(
    st: Arc<LogQueryState>,
    text: String,
    req: LogSearch,
) -> Result<Json<JsonValue>, QueryError> {
    let started = Instant::now();
    let reader = st.reader.clone();
    let (page, req) = tokio::task::spawn_blocking(move || reader.search(&req).map(|p| (p, req)))
        .await
        .map_err(|e| QueryError::Internal(e.to_string()))??;
    let mut body = page_response(&page, started.elapsed().as_millis());
    if let Some(next) = page.next {
        body["links"] =
            json!({ "next": next_link("/api/v2/logs/events", &text, &req, next.encode()) });
    }
    Ok(Json(body))
}

async fn search_post(
    State(st): State<Arc<LogQueryState>>,
    body: Result<Json<SearchBody>, JsonRejection>,
) -> Result<Json<JsonValue>, QueryError> {
    let Json(b) = body
        .map_err(|e| QueryError::BadParam(format!("malformed request body: {}", e.body_text())))?;
    let req = build(
        b.filter.query.as_deref(),
        b.filter.from.as_ref(),
        b.filter.to.as_ref(),
        b.sort.as_deref(),
        b.page.limit,
        b.page.cursor.as_deref(),
    )?;
    let text = b.filter.query.unwrap_or_else(|| "*".into());
    run(st, text, req).await
}

async fn search_get(
    State(st): State<Arc<LogQueryState>>,
    p: crate::http::Params,
) -> Result<Json<JsonValue>, QueryError> {
    let p = crate::http::params(p)?;
    let text = |k: &str| p.get(k).map(|v| TimeArg::Text(v.clone()));
    let limit = match p.get("page[limit]") {
        None => None,
        Some(v) => Some(v.parse::<i64>().map_err(|_| {
            QueryError::BadParam(format!("invalid page[limit] {v:?}: expected a number"))
        })?),
    };
    let req = build(
        p.get("filter[query]").map(String::as_str),
        text("filter[from]").as_ref(),
        text("filter[to]").as_ref(),
        p.get("sort").map(String::as_str),
        limit,
        p.get("page[cursor]").map(String::as_str),
    )?;
    let text = p
        .get("filter[query]")
        .cloned()
        .unwrap_or_else(|| "*".into());
    run(st, text, req).await
}

/// One compute of Datadog's `LogsAggregateRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ComputeBody {
    aggregation: Option<String>,
    metric: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    interval: Option<TimeArg>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SortBody {
    aggregation: Option<String>,
    metric: Option<String>,
    order: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GroupByBody {
    facet: String,
    limit: Option<i64>,
    sort: Option<SortBody>,
}

/// Datadog's `LogsAggregateRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AggregateBody {
    compute: Option<Vec<ComputeBody>>,
    filter: Filter,
    group_by: Vec<GroupByBody>,
    #[allow(dead_code)]
    options: Option<JsonValue>,
    #[allow(dead_code)]
    page: Option<JsonValue>,
}

/// The measure of `aggregation` (`count`, `cardinality`, `sum`, `avg`, `min`, `max`, `median`, `pc75` …
/// `pc99`) over `metric`.
fn measure(aggregation: &str, metric: Option<&str>) -> Result<Measure, QueryError> {
    let need = |what: &str| -> Result<String, QueryError> {
        metric
            .map(str::to_string)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                QueryError::BadParam(format!(
                    "aggregation {what:?} needs a \"metric\" (e.g. @duration)"
                ))
            })
    };
    Ok(match aggregation {
        "count" => Measure::Count,
        "cardinality" => Measure::Cardinality(need("cardinality")?),
        "sum" => Measure::Sum(need("sum")?),
        "avg" => Measure::Avg(need("avg")?),
        "min" => Measure::Min(need("min")?),
        "max" => Measure::Max(need("max")?),
        "median" => Measure::Percentile(50.0, need("median")?),
        pc if pc.starts_with("pc") => {
            let p: f64 = pc[2..].parse().ok().filter(|p| (0.0..=100.0).contains(p)).ok_or_else(|| {
                QueryError::BadParam(format!("invalid aggregation {pc:?}: expected pc75, pc90, pc95, pc98 or pc99"))
            })?;
            Measure::Percentile(p, need(pc)?)
        }
        other => {
            return Err(QueryError::BadParam(format!(
                "invalid aggregation {other:?}: expected count, cardinality, sum, avg, min, max, median or pcNN"
            )))
        }
    })
}

/// An interval such as `1m`, `30s`, `1h`, or milliseconds, in nanoseconds.
fn interval_ns(a: &TimeArg) -> Result<i64, QueryError> {
    let bad = |s: &str| {
        QueryError::BadParam(format!(
            "invalid interval {s:?}: expected e.g. 30s, 5m, 1h or milliseconds"
        ))
    };
    match a {
        TimeArg::Millis(ms) if *ms > 0 => ms
            .checked_mul(1_000_000)
            .ok_or_else(|| bad(&ms.to_string())),
        TimeArg::Millis(ms) => Err(bad(&ms.to_string())),
        TimeArg::Text(t) => {
            if let Ok(ms) = t.trim().parse::<i64>() {
                return interval_ns(&TimeArg::Millis(ms));
            }
            // `now+<interval>` reuses the relative-time units.
            let d = parse_time(&format!("now+{}", t.trim()), 0).map_err(|_| bad(t))?;
            if d > 0 {
                Ok(d)
            } else {
                Err(bad(t))
            }
        }
    }
}

pub(crate) fn build_aggregate(b: AggregateBody) -> Result<LogAggregate, QueryError> {
    let q = build(
        b.filter.query.as_deref(),
        b.filter.from.as_ref(),
        b.filter.to.as_ref(),
        None,
        Some(1),
        None,
    )?;
    let computes_in = b.compute.unwrap_or_else(|| {
        vec![ComputeBody {
            aggregation: Some("count".into()),
            ..Default::default()
        }]
    });
    let span = q.to_ns.saturating_sub(q.from_ns);
    let mut computes = Vec::new();
    for c in &computes_in {
        let m = measure(
            c.aggregation.as_deref().unwrap_or("count"),
            c.metric.as_deref(),
        )?;
        let interval = match c.kind.as_deref().unwrap_or("total") {
            "total" => None,
            "timeseries" => Some(match &c.interval {
                Some(i) => interval_ns(i)?,
                // Datadog's default: about 150 points over the range, at least a second.
                None => (span / 150).max(1_000_000_000),
            }),
            other => {
                return Err(QueryError::BadParam(format!(
                    "invalid compute type {other:?}: expected \"total\" or \"timeseries\""
                )))
            }
        };
        computes.push(Compute {
            measure: m,
            interval_ns: interval,
        });
    }
    let mut group_by = Vec::new();
    for g in b.group_by {
        if g.facet.is_empty() {
            return Err(QueryError::BadParam("group_by needs a \"facet\"".into()));
        }
        let limit = match g.limit {
            None => 10,
            Some(n) if (1..=10_000).contains(&n) => n as u32,
            Some(n) => {
                return Err(QueryError::BadParam(format!(
                    "invalid group_by limit {n}: expected 1 to 10000"
                )))
            }
        };
        let sort = match g.sort {
            None => GroupSort::Count { desc: true },
            Some(s) => {
                let desc = match s.order.as_deref().unwrap_or("desc") {
                    "desc" => true,
                    "asc" => false,
                    o => {
                        return Err(QueryError::BadParam(format!(
                            "invalid sort order {o:?}: expected asc or desc"
                        )))
                    }
                };
                if s.kind.as_deref() == Some("alphabetical") {
                    GroupSort::Alphabetical { desc }
                } else {
                    let wanted = measure(
                        s.aggregation.as_deref().unwrap_or("count"),
                        s.metric.as_deref(),
                    )?;
                    match computes
                        .iter()
                        .position(|c| c.interval_ns.is_none() && c.measure == wanted)
                    {
                        Some(index) => GroupSort::Compute { index, desc },
                        None if wanted == Measure::Count => GroupSort::Count { desc },
                        None => {
                            return Err(QueryError::BadParam(format!(
                                "group_by {:?} sorts by a measure that no total compute has",
                                g.facet
                            )))
                        }
                    }
                }
            }
        };
        group_by.push(GroupBy {
            facet: g.facet,
            limit,
            sort,
        });
    }
    Ok(LogAggregate {
        expr: q.expr,
        from_ns: q.from_ns,
        to_ns: q.to_ns,
        computes,
        group_by,
    })
}

/// Datadog's `LogsAggregateResponse` of buckets.
pub fn aggregate_response(buckets: &[AggBucket], elapsed_ms: u128) -> JsonValue {
    let data: Vec<JsonValue> = buckets
        .iter()
        .map(|b| {
            let by: serde_json::Map<String, JsonValue> = b.by.iter().cloned().collect();
            let computes: serde_json::Map<String, JsonValue> = b
                .computes
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let v = match c {
                        ComputeValue::Total(v) => json!(v),
                        ComputeValue::Series(points) => json!(points
                            .iter()
                            .map(|(t, v)| json!({"time": iso(*t), "value": v}))
                            .collect::<Vec<_>>()),
                    };
                    (format!("c{i}"), v)
                })
                .collect();
            json!({"by": by, "computes": computes})
        })
        .collect();
    json!({
        "data": {"buckets": data},
        "meta": {"elapsed": elapsed_ms as u64, "status": "done", "request_id": ""},
    })
}

async fn aggregate_post(
    State(st): State<Arc<LogQueryState>>,
    body: Result<Json<AggregateBody>, JsonRejection>,
) -> Result<Json<JsonValue>, QueryError> {
    let Json(b) = body
        .map_err(|e| QueryError::BadParam(format!("malformed request body: {}", e.body_text())))?;
    let req = build_aggregate(b)?;
    let started = Instant::now();
    let reader = st.reader.clone();
    let buckets = tokio::task::spawn_blocking(move || reader.aggregate(&req))
        .await
        .map_err(|e| QueryError::Internal(e.to_string()))??;
    Ok(Json(aggregate_response(
        &buckets,
        started.elapsed().as_millis(),
    )))
}

/// Facets the sidebar always shows.
const DEFAULT_FACETS: [&str; 5] = ["status", "service", "host", "source", "env"];
/// `@attribute` facets shown by default (the first ones found).
const DEFAULT_ATTRIBUTE_FACETS: usize = 10;

/// `GET /api/ui/logs/facets?query=&from=&to=&facets=service,@http.method&limit=10`: the top values of each
/// facet, with counts, among the logs the search matches, and the `@attribute` paths present in the range.
/// Without `facets`: the reserved facets, `env`, and the first attributes found.
async fn facets_get(
    State(st): State<Arc<LogQueryState>>,
    p: crate::http::Params,
) -> Result<Json<JsonValue>, QueryError> {
    let p = crate::http::params(p)?;
    let text = |k: &str| p.get(k).map(|v| TimeArg::Text(v.clone()));
    let base = build(
        p.get("query").map(String::as_str),
        text("from").as_ref(),
        text("to").as_ref(),
        None,
        Some(1),
        None,
    )?;
    let limit = match p.get("limit") {
        None => 10,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                QueryError::BadParam(format!("invalid limit {v:?}: expected 1 to 1000"))
            })?,
    };
    let requested: Option<Vec<String>> = p.get("facets").map(|f| {
        f.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    let reader = st.reader.clone();
    let started = Instant::now();
    let body = tokio::task::spawn_blocking(move || -> Result<JsonValue, QueryError> {
        let attributes = reader.attribute_paths(base.from_ns, base.to_ns)?;
        let facets = requested.unwrap_or_else(|| {
            DEFAULT_FACETS
                .iter()
                .map(|f| f.to_string())
                .chain(
                    attributes
                        .iter()
                        .take(DEFAULT_ATTRIBUTE_FACETS)
                        .map(|a| format!("@{a}")),
                )
                .collect()
        });
        let mut out = Vec::new();
        for facet in facets {
            let buckets = reader.aggregate(&LogAggregate {
                expr: base.expr.clone(),
                from_ns: base.from_ns,
                to_ns: base.to_ns,
                computes: vec![Compute {
                    measure: Measure::Count,
                    interval_ns: None,
                }],
                group_by: vec![GroupBy {
                    facet: facet.clone(),
                    limit,
                    sort: GroupSort::Count { desc: true },
                }],
            })?;
            let values: Vec<JsonValue> = buckets
                .iter()
                .filter_map(|b| {
                    let value = b.by.first()?.1.clone();
                    let count = match b.computes.first()? {
                        ComputeValue::Total(Some(c)) => *c,
                        _ => 0.0,
                    };
                    Some(json!({"value": value, "count": count as u64}))
                })
                .collect();
            out.push(json!({"facet": facet, "values": values}));
        }
        Ok(json!({"facets": out, "attributes": attributes}))
    })
    .await
    .map_err(|e| QueryError::Internal(e.to_string()))??;
    let mut body = body;
    body["meta"] = json!({"elapsed": started.elapsed().as_millis() as u64});
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let now = 1_700_000_000_000_000_000;
        fn check(input: &str, now: i64, expected: Result<i64, &str>) {
            let got = parse_time(input, now);
            match expected {
                Ok(v) => assert_eq!(got, Ok(v), "{input}"),
                Err(part) => {
                    let e = got.expect_err(input);
                    assert!(e.contains(part), "{input}: {e}");
                }
            }
        }
        check("now", now, Ok(now));
        check("now-15m", now, Ok(now - 900_000_000_000));
        check("now-2h", now, Ok(now - 7_200_000_000_000));
        check("now-1d", now, Ok(now - 86_400_000_000_000));
        check("now+30s", now, Ok(now + 30_000_000_000));
        check("1700000000000", now, Ok(now));
        check("2023-11-14T22:13:20Z", now, Ok(now));
        check("2023-11-14T22:13:20.5+00:00", now, Ok(now + 500_000_000));
        check("2023-11-14T23:13:20+01:00", now, Ok(now));
        check("2023-11-14T22:13:20", now, Ok(now));
        check("now-15x", now, Err("unknown unit"));
        check("yesterday", now, Err("expected unix milliseconds"));
        check("now-", now, Err("expected a number"));
        assert_eq!(iso(now + 123_000_000), "2023-11-14T22:13:20.123Z");
    }
}

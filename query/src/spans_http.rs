//! The span query HTTP API (SPEC §4, issue #4): Datadog's Spans API (`POST /api/v2/spans/events/search`,
//! `GET /api/v2/spans/events`, `POST /api/v2/spans/analytics/aggregate`) and the UI's trace view
//! (`GET /api/ui/traces/{trace_id}`) and service list (`GET /api/ui/services`).
//!
//! Requests follow the logs API's conventions ([`crate::logs_http`], whose helpers build the search and
//! aggregation requests): `from`/`to` as ISO-8601, unix milliseconds or `now-15m`; pages with an opaque cursor
//! and `links.next`; errors `{"errors":["…"]}` with 400 naming the problem (and the position in a search).
//! Bodies come in Datadog's envelope, `{"data":{"type":"search_request","attributes":{…}}}`; the bare
//! attributes object is accepted too.

use crate::error::QueryError;
use crate::http::{blocking, params, unix_secs, Params};
use crate::logs_http::{build, build_aggregate, iso, next_link, AggregateBody, TimeArg};
use crate::logsearch::parse_search;
use crate::spans::{
    aggregate, search, services, trace_tree, AggregateLimits, SpanAggregate, SpanCursor,
    SpanFilter, SpanGroupBy, SpanSearch,
};
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value as JsonValue};
use sightline_model::{hex, now_ns, parse_hex, SpanRecord, MAX_UNIX_SECS};
use sightline_storage::logs::schema::{for_each_leaf, leaf_text};
use sightline_storage::{
    AggBucket, ComputeValue, LogReader, LogSearch, MetricReader, SortOrder, SpanReader,
};
use std::sync::Arc;
use std::time::Instant;

/// What the span query handlers share.
pub struct SpanQueryState {
    pub spans: Arc<dyn SpanReader>,
    /// For the logs of a trace.
    pub logs: Arc<dyn LogReader>,
    /// For the RED metrics of `/api/ui/services`.
    pub metrics: Arc<dyn MetricReader>,
}

/// Bounds on what one request may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanQueryLimits {
    pub aggregate: AggregateLimits,
    /// Spans shown in one trace (the earliest are kept; the answer says `truncated`).
    pub max_trace_spans: usize,
    /// Logs listed with a trace.
    pub max_trace_logs: usize,
}

impl Default for SpanQueryLimits {
    fn default() -> Self {
        SpanQueryLimits {
            aggregate: AggregateLimits::default(),
            max_trace_spans: 100_000,
            max_trace_logs: 100,
        }
    }
}

/// How far around a trace its logs are looked for.
const TRACE_LOG_MARGIN_NS: i64 = 3_600_000_000_000;

struct Ctx {
    st: Arc<SpanQueryState>,
    limits: SpanQueryLimits,
}

/// The span query API's routes with the default limits; merge them into the server's router.
pub fn spans_router(state: Arc<SpanQueryState>) -> Router {
    spans_router_with_limits(state, SpanQueryLimits::default())
}

/// The span query API's routes with explicit limits.
pub fn spans_router_with_limits(state: Arc<SpanQueryState>, limits: SpanQueryLimits) -> Router {
    Router::new()
        .route("/api/v2/spans/events/search", post(search_post))
        .route("/api/v2/spans/events", get(search_get))
        .route("/api/v2/spans/analytics/aggregate", post(aggregate_post))
        .route("/api/ui/traces/{trace_id}", get(trace_get))
        .route("/api/ui/services", get(services_get))
        .with_state(Arc::new(Ctx { st: state, limits }))
}

fn bad(message: impl Into<String>) -> QueryError {
    QueryError::BadParam(message.into())
}

/// The `attributes` of a Datadog request envelope whose `data.type` must be `kind` (when given); a body
/// without `data` is taken as the attributes themselves.
fn unwrap_body(
    body: Result<Json<JsonValue>, JsonRejection>,
    kind: &str,
) -> Result<JsonValue, QueryError> {
    let Json(v) = body.map_err(|e| bad(format!("malformed request body: {}", e.body_text())))?;
    let JsonValue::Object(mut top) = v else {
        return Err(bad("malformed request body: expected a JSON object"));
    };
    let Some(data) = top.remove("data") else {
        return Ok(JsonValue::Object(top));
    };
    let JsonValue::Object(mut data) = data else {
        return Err(bad("malformed request body: \"data\" must be an object"));
    };
    match data.get("type") {
        None | Some(JsonValue::Null) => {}
        Some(JsonValue::String(t)) if t == kind => {}
        Some(other) => return Err(bad(format!("invalid data.type {other}: expected {kind:?}"))),
    }
    match data.remove("attributes") {
        None | Some(JsonValue::Null) => Ok(json!({})),
        Some(a @ JsonValue::Object(_)) => Ok(a),
        Some(_) => Err(bad(
            "malformed request body: \"data.attributes\" must be an object",
        )),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FilterBody {
    query: Option<String>,
    from: Option<TimeArg>,
    to: Option<TimeArg>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PageBody {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Datadog's `SpansListRequestAttributes`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListAttributes {
    filter: FilterBody,
    page: PageBody,
    sort: Option<String>,
    #[allow(dead_code)]
    options: Option<JsonValue>,
}

/// RFC 3339 text of a nanosecond timestamp, with nanoseconds.
fn iso_ns(ts_ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ts_ns))
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.9fZ").to_string())
        .unwrap_or_default()
}

/// The span's tags: `env`, `host`, `service`, `version`, and its resource attributes as `key:value`.
fn tags(s: &SpanRecord) -> Vec<String> {
    let mut out: Vec<String> = [
        ("env", s.env.as_deref()),
        ("host", s.host.as_deref()),
        ("service", Some(s.service.as_str())),
        ("version", s.version.as_deref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| format!("{k}:{v}")))
    .collect();
    for_each_leaf(&s.resource_attributes, &mut |path, v| {
        out.push(format!("{path}:{}", leaf_text(v)));
    });
    out.sort();
    out.dedup();
    out
}

/// Inserts `v` at the dotted path `k` as nested objects; a key that collides with a non-object stays flat.
fn nest_into(out: &mut Map<String, JsonValue>, k: &str, v: &JsonValue) {
    let parts: Vec<&str> = k.split('.').collect();
    let fits = !parts.iter().any(|p| p.is_empty()) && {
        let mut cur = &*out;
        let mut ok = true;
        for p in &parts[..parts.len() - 1] {
            match cur.get(*p) {
                None => break,
                Some(JsonValue::Object(m)) => cur = m,
                Some(_) => {
                    ok = false;
                    break;
                }
            }
        }
        ok
    };
    if !fits {
        out.insert(k.to_string(), v.clone());
        return;
    }
    let mut cur = out;
    for p in &parts[..parts.len() - 1] {
        let next = cur
            .entry(p.to_string())
            .or_insert_with(|| JsonValue::Object(Map::new()));
        match next {
            JsonValue::Object(m) => cur = m,
            _ => return,
        }
    }
    cur.insert(parts[parts.len() - 1].to_string(), v.clone());
}

/// Datadog's `custom` object: the resource's then the span's attributes as nested objects, and `duration`.
fn custom(s: &SpanRecord) -> Map<String, JsonValue> {
    let mut out = Map::new();
    for (k, v) in s.resource_attributes.iter().chain(&s.attributes) {
        nest_into(&mut out, k, v);
    }
    out.insert("duration".into(), json!(s.duration_ns));
    out
}

/// One span as Datadog's `Span` (`type: "spans"`, `SpansAttributes`), with Sightline's extra fields.
pub fn span_json(s: &SpanRecord) -> JsonValue {
    let mut a = Map::new();
    a.insert("service".into(), json!(s.service));
    a.insert("resource_name".into(), json!(s.resource));
    a.insert("operation_name".into(), json!(s.name));
    a.insert("trace_id".into(), json!(hex(&s.trace_id)));
    a.insert("span_id".into(), json!(hex(&s.span_id)));
    // Datadog writes a root's parent as "0".
    a.insert(
        "parent_id".into(),
        json!(s.parent_id.map_or_else(|| "0".to_string(), |p| hex(&p))),
    );
    a.insert("start_timestamp".into(), json!(iso_ns(s.start_ns)));
    a.insert("end_timestamp".into(), json!(iso_ns(s.end_ns())));
    a.insert("duration".into(), json!(s.duration_ns));
    for (k, v) in [("env", &s.env), ("host", &s.host), ("version", &s.version)] {
        if let Some(v) = v {
            a.insert(k.into(), json!(v));
        }
    }
    a.insert("status".into(), json!(crate::spans::fields::status(s)));
    a.insert("span_kind".into(), json!(s.kind.as_str()));
    if !s.status_message.is_empty() {
        a.insert("status_message".into(), json!(s.status_message));
    }
    a.insert("tags".into(), json!(tags(s)));
    a.insert("attributes".into(), JsonValue::Object(s.attributes.clone()));
    a.insert(
        "resource_attributes".into(),
        JsonValue::Object(s.resource_attributes.clone()),
    );
    a.insert("custom".into(), JsonValue::Object(custom(s)));
    json!({"id": hex(&s.span_id), "type": "spans", "attributes": a})
}

fn decode_cursor(cursor: Option<&str>) -> Result<Option<SpanCursor>, QueryError> {
    match cursor.filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => SpanCursor::decode(c)
            .map(Some)
            .ok_or_else(|| bad(format!("invalid page cursor {c:?}"))),
    }
}

async fn run_search(
    ctx: Arc<Ctx>,
    text: String,
    req: LogSearch,
    after: Option<SpanCursor>,
) -> Result<Json<JsonValue>, QueryError> {
    let started = Instant::now();
    let filter = SpanFilter::new(&req.expr)?;
    let reader = ctx.st.spans.clone();
    let (page, req) = blocking(move || {
        let page = search(
            reader.as_ref(),
            &SpanSearch {
                filter: &filter,
                from_ns: req.from_ns,
                to_ns: req.to_ns,
                order: req.order,
                limit: req.limit,
                after,
            },
        )?;
        Ok((page, req))
    })
    .await?;
    let data: Vec<JsonValue> = page.spans.iter().map(span_json).collect();
    let mut body = json!({
        "data": data,
        "meta": {"elapsed": started.elapsed().as_millis() as u64, "status": "done", "request_id": ""},
    });
    if let Some(next) = page.next {
        body["meta"]["page"] = json!({ "after": next.encode() });
        body["links"] =
            json!({ "next": next_link("/api/v2/spans/events", &text, &req, next.encode()) });
    }
    Ok(Json(body))
}

async fn search_post(
    State(ctx): State<Arc<Ctx>>,
    body: Result<Json<JsonValue>, JsonRejection>,
) -> Result<Json<JsonValue>, QueryError> {
    let attrs = unwrap_body(body, "search_request")?;
    let b: ListAttributes =
        serde_json::from_value(attrs).map_err(|e| bad(format!("malformed request body: {e}")))?;
    let req = build(
        b.filter.query.as_deref(),
        b.filter.from.as_ref(),
        b.filter.to.as_ref(),
        b.sort.as_deref(),
        b.page.limit,
        None,
    )?;
    let after = decode_cursor(b.page.cursor.as_deref())?;
    let text = b.filter.query.unwrap_or_else(|| "*".into());
    run_search(ctx, text, req, after).await
}

async fn search_get(State(ctx): State<Arc<Ctx>>, p: Params) -> Result<Json<JsonValue>, QueryError> {
    let p = params(p)?;
    let time = |k: &str| p.get(k).map(|v| TimeArg::Text(v.clone()));
    let limit = match p.get("page[limit]") {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| bad(format!("invalid page[limit] {v:?}: expected a number")))?,
        ),
    };
    let req = build(
        p.get("filter[query]").map(String::as_str),
        time("filter[from]").as_ref(),
        time("filter[to]").as_ref(),
        p.get("sort").map(String::as_str),
        limit,
        None,
    )?;
    let after = decode_cursor(p.get("page[cursor]").map(String::as_str))?;
    let text = p
        .get("filter[query]")
        .cloned()
        .unwrap_or_else(|| "*".into());
    run_search(ctx, text, req, after).await
}

/// The `missing` and `total` values of a `group_by`.
type GroupExtras = (Option<JsonValue>, Option<JsonValue>);

/// The `missing` and `total` of each `group_by` (which the logs request type does not carry).
fn group_extras(attrs: &JsonValue) -> Result<Vec<GroupExtras>, QueryError> {
    let Some(JsonValue::Array(groups)) = attrs.get("group_by") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        if g.get("histogram").is_some_and(|h| !h.is_null()) {
            return Err(bad(format!(
                "group_by[{i}].histogram is not supported; group by a facet"
            )));
        }
        let missing = match g.get("missing") {
            None | Some(JsonValue::Null) => None,
            Some(v @ (JsonValue::String(_) | JsonValue::Number(_))) => Some(v.clone()),
            Some(other) => {
                return Err(bad(format!(
                    "invalid group_by[{i}].missing {other}: expected a string or a number"
                )))
            }
        };
        let total = match g.get("total") {
            None | Some(JsonValue::Null) | Some(JsonValue::Bool(false)) => None,
            // Datadog labels the total bucket "$facet_total".
            Some(JsonValue::Bool(true)) => Some(json!("$facet_total")),
            Some(v @ (JsonValue::String(_) | JsonValue::Number(_))) => Some(v.clone()),
            Some(other) => {
                return Err(bad(format!(
                    "invalid group_by[{i}].total {other}: expected true, a string or a number"
                )))
            }
        };
        out.push((missing, total));
    }
    Ok(out)
}

/// Datadog's `SpansAggregateResponse` of buckets.
pub fn aggregate_json(buckets: &[AggBucket], elapsed_ms: u128) -> JsonValue {
    let data: Vec<JsonValue> = buckets
        .iter()
        .map(|b| {
            let by: Map<String, JsonValue> = b.by.iter().cloned().collect();
            let computes: Map<String, JsonValue> = b
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
            let id = if by.is_empty() {
                "*".to_string()
            } else {
                JsonValue::Object(by.clone()).to_string()
            };
            json!({
                "type": "bucket",
                "id": id,
                "attributes": {"by": by, "compute": computes.clone(), "computes": computes},
            })
        })
        .collect();
    json!({
        "data": data,
        "meta": {"elapsed": elapsed_ms as u64, "status": "done", "request_id": ""},
    })
}

async fn aggregate_post(
    State(ctx): State<Arc<Ctx>>,
    body: Result<Json<JsonValue>, JsonRejection>,
) -> Result<Json<JsonValue>, QueryError> {
    let started = Instant::now();
    let attrs = unwrap_body(body, "aggregate_request")?;
    let extras = group_extras(&attrs)?;
    let b: AggregateBody =
        serde_json::from_value(attrs).map_err(|e| bad(format!("malformed request body: {e}")))?;
    let agg = build_aggregate(b)?;
    let filter = SpanFilter::new(&agg.expr)?;
    let req = SpanAggregate {
        from_ns: agg.from_ns,
        to_ns: agg.to_ns,
        computes: agg.computes,
        group_by: agg
            .group_by
            .into_iter()
            .zip(extras.into_iter().chain(std::iter::repeat((None, None))))
            .map(|(g, (missing, total))| SpanGroupBy {
                facet: g.facet,
                limit: g.limit,
                sort: g.sort,
                missing,
                total,
            })
            .collect(),
    };
    let reader = ctx.st.spans.clone();
    let limits = ctx.limits.aggregate;
    let buckets = blocking(move || aggregate(reader.as_ref(), &filter, &req, limits)).await?;
    Ok(Json(aggregate_json(
        &buckets,
        started.elapsed().as_millis(),
    )))
}

/// A trace id from a URL: 32 hex digits, or 16 (a 64-bit id, zero-extended).
fn parse_trace_id(raw: &str) -> Result<[u8; 16], QueryError> {
    let s = raw.trim();
    let id = match s.len() {
        32 => parse_hex::<16>(s),
        16 => parse_hex::<8>(s).map(|low| {
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&low);
            id
        }),
        _ => None,
    };
    id.ok_or_else(|| {
        let shown: String = raw.chars().take(64).collect();
        bad(format!(
            "invalid trace id {shown:?}: expected 32 hexadecimal digits"
        ))
    })
}

/// The logs of a trace: those whose `trace_id` is the trace's, around its time range, oldest first.
fn trace_logs(
    reader: &dyn LogReader,
    id: &[u8; 16],
    start: i64,
    end: i64,
    limit: usize,
) -> Result<Vec<JsonValue>, QueryError> {
    let req = LogSearch {
        expr: parse_search(&format!("trace_id:{}", hex(id)))?,
        from_ns: start.saturating_sub(TRACE_LOG_MARGIN_NS),
        to_ns: end.saturating_add(TRACE_LOG_MARGIN_NS),
        order: SortOrder::Asc,
        limit: limit.max(1),
        after: None,
    };
    let page = reader.search(&req)?;
    Ok(page
        .hits
        .into_iter()
        .map(|h| {
            let r = h.record;
            json!({
                "id": h.id,
                "timestamp": r.ts_ns,
                "message": r.message,
                "status": r.status,
                "service": r.service,
                "span_id": r.span_id,
            })
        })
        .collect())
}

async fn trace_get(
    State(ctx): State<Arc<Ctx>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<JsonValue>, QueryError> {
    let Path(raw) = path.map_err(|e| bad(format!("invalid trace id: {}", e.body_text())))?;
    let id = parse_trace_id(&raw)?;
    let spans_reader = ctx.st.spans.clone();
    let logs_reader = ctx.st.logs.clone();
    let limits = ctx.limits;
    let body = blocking(move || {
        let mut spans = spans_reader.trace(&id)?;
        let not_found = || QueryError::NotFound(format!("trace {} not found", hex(&id)));
        if spans.is_empty() {
            return Err(not_found());
        }
        let truncated = spans.len() > limits.max_trace_spans;
        if truncated {
            spans.sort_by_key(|s| s.start_ns);
            spans.truncate(limits.max_trace_spans);
        }
        let mut body = trace_tree(&id, spans).ok_or_else(not_found)?;
        if truncated {
            body["truncated"] = json!(true);
        }
        let start = body["start"].as_i64().unwrap_or(0);
        let end = start.saturating_add(body["duration"].as_i64().unwrap_or(0));
        match trace_logs(logs_reader.as_ref(), &id, start, end, limits.max_trace_logs) {
            Ok(logs) => body["logs"] = JsonValue::Array(logs),
            Err(e) => {
                tracing::warn!(error = %e, "reading the logs of a trace failed");
                body["logs"] = json!([]);
                body["logs_error"] = json!(e.to_string());
            }
        }
        Ok(body)
    })
    .await?;
    Ok(Json(body))
}

/// `GET /api/ui/services?from=&to=&env=&service=`: RED per service and resource; `from`/`to` in unix
/// seconds, the last hour by default.
async fn services_get(
    State(ctx): State<Arc<Ctx>>,
    p: Params,
) -> Result<Json<JsonValue>, QueryError> {
    let p = params(p)?;
    let to = if p.contains_key("to") {
        unix_secs(&p, "to")?
    } else {
        now_ns().div_euclid(1_000_000_000)
    };
    let from = if p.contains_key("from") {
        unix_secs(&p, "from")?
    } else {
        to.saturating_sub(3600)
    };
    for (name, v) in [("to", to), ("from", from)] {
        if !(0..MAX_UNIX_SECS).contains(&v) {
            return Err(bad(format!(
                "invalid parameter {name:?}: {v} is out of range (unix seconds from 0 to {MAX_UNIX_SECS})"
            )));
        }
    }
    if from >= to {
        return Err(bad(format!(
            "\"from\" ({from}) must be before \"to\" ({to}), in unix seconds"
        )));
    }
    let nonempty = |k: &str| {
        p.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let env = nonempty("env");
    let service = nonempty("service");
    let reader = ctx.st.metrics.clone();
    let report = blocking(move || {
        Ok(services(
            reader.as_ref(),
            from,
            to,
            env.as_deref(),
            service.as_deref(),
        )?)
    })
    .await?;
    serde_json::to_value(report)
        .map(Json)
        .map_err(|e| QueryError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_ids_and_nesting() {
        assert_eq!(
            iso_ns(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(
            iso_ns(1_700_000_000_000_000_000),
            "2023-11-14T22:13:20.000000000Z"
        );
        assert_eq!(parse_trace_id(&"AB".repeat(16)).unwrap(), [0xab; 16]);
        let mut short = [0u8; 16];
        short[15] = 1;
        assert_eq!(parse_trace_id("0000000000000001").unwrap(), short);
        for bad_id in ["", "xyz", &"g".repeat(32), &"a".repeat(33)] {
            let e = parse_trace_id(bad_id).unwrap_err().to_string();
            assert!(e.contains("invalid trace id"), "{e}");
        }
        let mut m = Map::new();
        nest_into(&mut m, "http.route", &json!("/a"));
        nest_into(&mut m, "http.method", &json!("GET"));
        nest_into(&mut m, "plain", &json!(1));
        nest_into(&mut m, "plain.sub", &json!(2));
        nest_into(&mut m, "odd..key", &json!(3));
        assert_eq!(
            JsonValue::Object(m),
            json!({"http": {"route": "/a", "method": "GET"}, "plain": 1, "plain.sub": 2, "odd..key": 3})
        );
    }
}

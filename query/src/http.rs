//! The metric query HTTP API (SPEC §4), Datadog-compatible: `/api/v1/query`, `/api/v1/metrics`,
//! `/api/v2/metrics/{name}/all-tags`, `/api/v1/search`, and `/api/ui/autocomplete` for the query bar.

use crate::error::QueryError;
use crate::eval::{evaluate, EvalOptions, QueryOutput};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value as JsonValue};
use sightline_storage::MetricReader;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What the query handlers share.
pub struct QueryState {
    pub reader: Arc<dyn MetricReader>,
    /// Query cost limits (series read, points, time range).
    pub options: EvalOptions,
}

impl QueryState {
    /// A state with the default limits.
    pub fn new(reader: Arc<dyn MetricReader>) -> Arc<QueryState> {
        Arc::new(QueryState {
            reader,
            options: EvalOptions::default(),
        })
    }
}

/// Longest query text accepted, in bytes; longer text is refused before parsing.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;

/// Most values an autocomplete or search answer lists.
const MAX_SUGGESTIONS: usize = 100;

/// The query API's routes; merge them into the server's router.
pub fn router(state: Arc<QueryState>) -> Router {
    Router::new()
        .route("/api/v1/query", get(query_metrics))
        .route("/api/v1/metrics", get(list_active_metrics))
        .route("/api/v2/metrics/{name}/all-tags", get(all_tags))
        .route("/api/v1/search", get(search))
        .route("/api/ui/autocomplete", get(autocomplete))
        .with_state(state)
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let kind = self.kind();
        let status =
            StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(error = %self, "query failed");
        }
        let mut resp = (status, Json(json!({ "errors": [self.to_string()] }))).into_response();
        if let Some(secs) = kind.retry_after_secs() {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// A handler's query string, or the rejection axum made of it.
pub(crate) type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// The query string as a map; a malformed one is a 400 naming the problem.
pub(crate) fn params(p: Params) -> Result<HashMap<String, String>, QueryError> {
    p.map(|Query(m)| m)
        .map_err(|e| QueryError::BadParam(format!("malformed query string: {}", e.body_text())))
}

fn required<'a>(p: &'a HashMap<String, String>, name: &str) -> Result<&'a str, QueryError> {
    match p.get(name).map(|s| s.trim()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(QueryError::BadParam(format!("missing parameter {name:?}"))),
    }
}

/// Unix seconds; a fractional value is truncated.
pub(crate) fn unix_secs(p: &HashMap<String, String>, name: &str) -> Result<i64, QueryError> {
    let raw = required(p, name)?;
    raw.parse::<i64>()
        .ok()
        .or_else(|| {
            raw.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && f.abs() < 1e15)
                .map(|f| f as i64)
        })
        .ok_or_else(|| {
            QueryError::BadParam(format!(
                "invalid parameter {name:?}: expected unix seconds, found {raw:?}"
            ))
        })
}

/// Runs blocking storage work off the async runtime.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, QueryError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, QueryError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| QueryError::Internal(e.to_string()))?
}

async fn query_metrics(
    State(st): State<Arc<QueryState>>,
    p: Params,
) -> Result<Json<JsonValue>, QueryError> {
    let p = params(p)?;
    let from = unix_secs(&p, "from")?;
    let to = unix_secs(&p, "to")?;
    let text = required(&p, "query")?.to_string();
    if text.len() > MAX_QUERY_BYTES {
        return Err(QueryError::BadParam(format!(
            "the query is {} bytes long; the limit is {MAX_QUERY_BYTES} bytes",
            text.len()
        )));
    }
    let parsed = crate::parser::parse(&text)?;
    let reader = st.reader.clone();
    let options = st.options.clone();
    let out = blocking(move || evaluate(&parsed, from, to, reader.as_ref(), &options)).await?;
    Ok(Json(query_response(&text, &out)))
}

/// The Datadog v1 query response for an evaluated query.
pub fn query_response(query: &str, out: &QueryOutput) -> JsonValue {
    let series: Vec<JsonValue> = out
        .series
        .iter()
        .map(|s| {
            let first = s.points.first().map(|p| p.0).unwrap_or(out.from);
            let last = s.points.last().map(|p| p.0).unwrap_or(out.from);
            // Timestamps as floats: the official clients type a point as [float, float|null].
            let pointlist: Vec<JsonValue> = s
                .points
                .iter()
                .map(|(t, v)| json!([(*t * 1000) as f64, v]))
                .collect();
            json!({
                "metric": s.metric,
                "display_name": s.metric,
                "scope": s.scope,
                "tag_set": s.tag_set,
                "expression": s.expression,
                "aggr": s.aggr,
                "pointlist": pointlist,
                "start": first * 1000,
                "end": (last + s.interval) * 1000 - 1,
                "interval": s.interval,
                "length": s.points.len(),
                "query_index": s.query_index,
                "unit": null,
            })
        })
        .collect();
    json!({
        "status": "ok",
        "res_type": "time_series",
        "resp_version": 1,
        "query": query,
        "message": "",
        "from_date": out.from * 1000,
        "to_date": out.to * 1000,
        "group_by": out.group_by,
        "series": series,
    })
}

async fn list_active_metrics(
    State(st): State<Arc<QueryState>>,
    p: Params,
) -> Result<Json<JsonValue>, QueryError> {
    let p = params(p)?;
    let from = unix_secs(&p, "from")?;
    let reader = st.reader.clone();
    let names = blocking(move || Ok(reader.metric_names(from))).await?;
    Ok(Json(json!({ "metrics": names, "from": from.to_string() })))
}

async fn all_tags(
    State(st): State<Arc<QueryState>>,
    Path(name): Path<String>,
) -> Result<Json<JsonValue>, QueryError> {
    let reader = st.reader.clone();
    let n = name.clone();
    let tags = blocking(move || {
        if reader.series_for_metric(&n).is_empty() {
            return Err(QueryError::NotFound(format!("metric {n:?} not found")));
        }
        Ok(reader.tags_for_metric(&n))
    })
    .await?;
    Ok(Json(
        json!({ "data": { "type": "metrics", "id": name, "attributes": { "tags": tags } } }),
    ))
}

async fn search(
    State(st): State<Arc<QueryState>>,
    p: Params,
) -> Result<Json<JsonValue>, QueryError> {
    let p = params(p)?;
    let q = p.get("q").map(|s| s.trim().to_string()).unwrap_or_default();
    let prefix = match q.split_once(':') {
        Some(("metrics", rest)) => rest.trim().to_string(),
        Some((facet, _)) => {
            return Err(QueryError::BadParam(format!(
                "unsupported search facet {facet:?}; use q=metrics:<prefix>"
            )))
        }
        None => q,
    };
    let reader = st.reader.clone();
    let metrics = blocking(move || {
        Ok(reader
            .metric_names(0)
            .into_iter()
            .filter(|m| m.starts_with(&prefix))
            .take(MAX_SUGGESTIONS)
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "results": { "metrics": metrics } })))
}

/// `kind=metric`: metric names starting with `prefix`. `kind=tag_key`: tag keys of `metric` (of every metric
/// when absent). `kind=tag_value`: whole `key:value` tags of `metric`, restricted to `key` when given, whose
/// value (or, for a prefix holding `:`, whole tag) starts with `prefix`.
async fn autocomplete(
    State(st): State<Arc<QueryState>>,
    p: Params,
) -> Result<Json<JsonValue>, QueryError> {
    let p = params(p)?;
    let kind = required(&p, "kind")?.to_string();
    let prefix = p.get("prefix").cloned().unwrap_or_default();
    let metric = p.get("metric").filter(|m| !m.is_empty()).cloned();
    let key = p.get("key").filter(|k| !k.is_empty()).cloned();
    let reader = st.reader.clone();
    let values: Vec<String> = match kind.as_str() {
        "metric" => {
            blocking(move || {
                Ok(reader
                    .metric_names(0)
                    .into_iter()
                    .filter(|m| m.starts_with(&prefix))
                    .collect())
            })
            .await?
        }
        "tag_key" | "tag_value" => {
            let tag_key = kind == "tag_key";
            blocking(move || {
                let metrics = match metric {
                    Some(m) => vec![m],
                    None => reader.metric_names(0),
                };
                let mut out = BTreeSet::new();
                for m in metrics {
                    for tag in reader.tags_for_metric(&m) {
                        let Some((k, v)) = tag.split_once(':') else {
                            continue;
                        };
                        if tag_key {
                            if k.starts_with(&prefix) {
                                out.insert(k.to_string());
                            }
                        } else if key.as_deref().is_none_or(|want| want == k) {
                            let hit = if prefix.contains(':') {
                                tag.starts_with(&prefix)
                            } else {
                                v.starts_with(&prefix)
                            };
                            if hit {
                                out.insert(tag.clone());
                            }
                        }
                    }
                    if out.len() >= MAX_SUGGESTIONS {
                        break;
                    }
                }
                Ok(out.into_iter().collect())
            })
            .await?
        }
        "facet" => {
            return Err(QueryError::BadParam(
                "facet completion arrives with logs".into(),
            ))
        }
        other => {
            return Err(QueryError::BadParam(format!(
            "invalid parameter \"kind\": {other:?}; expected metric, tag_key, tag_value or facet"
        )))
        }
    };
    let values: Vec<String> = values.into_iter().take(MAX_SUGGESTIONS).collect();
    Ok(Json(json!({ "kind": kind, "values": values })))
}

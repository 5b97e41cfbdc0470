//! Datadog's monitor API (SPEC §7) over a [`MonitorRepo`]:
//!
//! - `POST /api/v1/monitor`: create; 200 with the monitor;
//! - `GET /api/v1/monitor`: list by increasing id; filters `name` (case-insensitive substring), `tags`
//!   (comma-separated, every one must be a term of the query's scope, e.g. `host:a` in `…{host:a} > 1`, or
//!   one of the monitor's tags), `monitor_tags` (comma-separated, every one a tag of the monitor),
//!   `id_offset` (ids above it), `page` (0-based) and `page_size` (default 100 when `page` is given, at most
//!   1000); `group_states` as for a get, `with_downtimes` accepted and ignored;
//! - `GET /api/v1/monitor/{id}`, `PUT /api/v1/monitor/{id}` (the fields given replace the stored ones),
//!   `DELETE /api/v1/monitor/{id}` (→ `{"deleted_monitor_id": id}`, and its states are forgotten);
//! - `POST /api/v1/monitor/validate` and `POST /api/v1/monitor/{id}/validate`: 200 `{}` when valid.
//!
//! `overall_state` is the worst status of the monitor's groups as the evaluator ([`super::eval`]) left them
//! (`No Data` before any group has data). With `group_states` (`all`, or a comma-separated list of statuses
//! such as `alert,warn,no data`), `state.groups` holds Datadog's `MonitorStateGroup` per group,
//! `{"host:a": {"name": "host:a", "status": "Alert", "last_triggered_ts": …, "last_notified_ts": …,
//! "last_resolved_ts": …, "last_nodata_ts": …}}` (timestamps in unix seconds, absent when never), plus
//! Sightline's `last_value` (the group's value at its last evaluation with data) and `last_data_ts`; and
//! `state.history` the monitor's last transitions (at most 100, oldest first), each
//! `{"group", "from", "to", "value", "ts", "notify", "renotify", "from_since_ts"[, "muted"][,
//! "downtime_ended"]}`, and `state.notifications` the
//! last webhook delivery attempts (at most 200, oldest first; see [`super::notify`]); without it `state` is
//! `{"groups": {}}`.
//!
//! Bad input is a 400 `{"errors":["…"]}` naming the problem (and the position, for a malformed query); an
//! unknown id a 404 `{"errors":["monitor 123 not found"]}`.

use super::model::{check_create, check_update, creator, render, timestamp_now};
use super::state::{overall, GroupState, MonitorStatus};
use crate::error::QueryError;
use crate::http::{blocking, params, Params};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value as JsonValue};
use sightline_storage::{MonitorDoc, MonitorId, MonitorRepo, MonitorStateRepo, MonitorStates};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The monitors' path.
pub const MONITOR_PATH: &str = "/api/v1/monitor";
/// `page_size` when `page` is given without one.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest `page_size`.
pub const MAX_PAGE_SIZE: usize = 1000;

/// What the monitor handlers share.
pub struct MonitorState {
    pub repo: Arc<dyn MonitorRepo>,
    /// The evaluator's states, reported as `overall_state` and `state`.
    pub states: Arc<dyn MonitorStateRepo>,
}

/// The monitor API's routes; merge them into the server's router (behind the key middleware).
pub fn monitors_router(state: Arc<MonitorState>) -> Router {
    Router::new()
        .route(MONITOR_PATH, get(list_monitors).post(create_monitor))
        .route("/api/v1/monitor/validate", post(validate_monitor))
        .route(
            "/api/v1/monitor/{id}",
            get(get_monitor).put(update_monitor).delete(delete_monitor),
        )
        .route("/api/v1/monitor/{id}/validate", post(validate_existing))
        .with_state(state)
}

fn body_json(body: Result<Bytes, BytesRejection>) -> Result<JsonValue, QueryError> {
    let bytes =
        body.map_err(|e| QueryError::BadParam(format!("cannot read the body: {}", e.body_text())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| QueryError::BadParam(format!("the body is not valid JSON: {e}")))
}

fn parse_id(raw: &str) -> Result<MonitorId, QueryError> {
    raw.parse::<MonitorId>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            QueryError::BadParam(format!(
                "invalid monitor id {raw:?}: expected a positive integer"
            ))
        })
}

fn not_found(id: MonitorId) -> QueryError {
    QueryError::NotFound(format!("monitor {id} not found"))
}

fn invalid(e: super::model::InvalidMonitor) -> QueryError {
    QueryError::BadParam(e.0)
}

async fn create_monitor(
    State(st): State<Arc<MonitorState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<JsonValue>, QueryError> {
    let def = check_create(&body_json(body)?).map_err(invalid)?;
    let now = timestamp_now();
    let doc = def.to_doc(&now, &now, &creator());
    let repo = st.repo.clone();
    let stored = blocking(move || Ok(repo.create(doc)?)).await?;
    Ok(Json(render_with_state(&stored, None, None)))
}

async fn validate_monitor(
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<JsonValue>, QueryError> {
    check_create(&body_json(body)?).map_err(invalid)?;
    Ok(Json(json!({})))
}

async fn validate_existing(
    State(st): State<Arc<MonitorState>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<JsonValue>, QueryError> {
    let id = parse_id(&id)?;
    let body = body_json(body)?;
    let repo = st.repo.clone();
    // The monitor must exist; the body is checked as a whole definition.
    blocking(move || repo.get(id).map(drop).ok_or_else(|| not_found(id))).await?;
    check_create(&body).map_err(invalid)?;
    Ok(Json(json!({})))
}

async fn get_monitor(
    State(st): State<Arc<MonitorState>>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Json<JsonValue>, QueryError> {
    let p = params(p)?;
    let filter = GroupFilter::from_params(&p)?;
    let id = parse_id(&id)?;
    let repo = st.repo.clone();
    let states = st.states.clone();
    let (doc, s) = blocking(move || {
        let doc = repo.get(id).ok_or_else(|| not_found(id))?;
        Ok((doc, states.get(id)))
    })
    .await?;
    Ok(Json(render_with_state(&doc, s.as_ref(), filter.as_ref())))
}

async fn update_monitor(
    State(st): State<Arc<MonitorState>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<JsonValue>, QueryError> {
    let id = parse_id(&id)?;
    let body = body_json(body)?;
    let repo = st.repo.clone();
    let states = st.states.clone();
    let doc = blocking(move || {
        let stored = repo.get(id).ok_or_else(|| not_found(id))?;
        let def = check_update(&stored, &body).map_err(invalid)?;
        let created = stored
            .get("created")
            .and_then(JsonValue::as_str)
            .map(str::to_string)
            .unwrap_or_else(timestamp_now);
        let who = stored.get("creator").cloned().unwrap_or_else(creator);
        let doc = def.to_doc(&created, &timestamp_now(), &who);
        let doc = repo.update(id, doc)?.ok_or_else(|| not_found(id))?;
        Ok((doc, states.get(id)))
    })
    .await?;
    Ok(Json(render_with_state(&doc.0, doc.1.as_ref(), None)))
}

async fn delete_monitor(
    State(st): State<Arc<MonitorState>>,
    Path(id): Path<String>,
) -> Result<Json<JsonValue>, QueryError> {
    let id = parse_id(&id)?;
    let repo = st.repo.clone();
    let states = st.states.clone();
    let deleted = blocking(move || {
        let deleted = repo.delete(id)?;
        if deleted {
            states.remove(id)?;
        }
        Ok(deleted)
    })
    .await?;
    if !deleted {
        return Err(not_found(id));
    }
    Ok(Json(json!({ "deleted_monitor_id": id })))
}

/// The list filters of a `GET /api/v1/monitor`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ListFilter {
    pub name: Option<String>,
    pub tags: Vec<String>,
    pub monitor_tags: Vec<String>,
    pub id_offset: Option<MonitorId>,
    /// `(page, page_size)`.
    pub page: Option<(usize, usize)>,
}

fn split_list(s: Option<&String>) -> Vec<String> {
    s.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

impl ListFilter {
    /// The filter of a query string.
    pub fn from_params(p: &HashMap<String, String>) -> Result<ListFilter, QueryError> {
        let num = |key: &str, max: u64| -> Result<Option<u64>, QueryError> {
            match p.get(key).map(|v| v.trim()) {
                None | Some("") => Ok(None),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= max)
                    .map(Some)
                    .ok_or_else(|| {
                        QueryError::BadParam(format!(
                            "invalid \"{key}\" {v:?}: expected an integer from 0 to {max}"
                        ))
                    }),
            }
        };
        let page = num("page", 1_000_000)?;
        let page_size = num("page_size", MAX_PAGE_SIZE as u64)?;
        let page = match (page, page_size) {
            (None, None) => None,
            (page, size) => Some((
                page.unwrap_or(0) as usize,
                size.map_or(DEFAULT_PAGE_SIZE, |s| s as usize),
            )),
        };
        Ok(ListFilter {
            name: p
                .get("name")
                .map(|n| n.trim().to_lowercase())
                .filter(|n| !n.is_empty()),
            tags: split_list(p.get("tags")),
            monitor_tags: split_list(p.get("monitor_tags")),
            id_offset: num("id_offset", u64::MAX)?,
            page,
        })
    }

    /// Whether a stored monitor passes the filters (paging aside).
    pub fn matches(&self, doc: &MonitorDoc) -> bool {
        let tags: Vec<&str> = doc
            .get("tags")
            .and_then(JsonValue::as_array)
            .map(|t| t.iter().filter_map(JsonValue::as_str).collect())
            .unwrap_or_default();
        let name = doc.get("name").and_then(JsonValue::as_str).unwrap_or("");
        let query = doc.get("query").and_then(JsonValue::as_str).unwrap_or("");
        let scope: Vec<&str> = query
            .split(|c: char| c.is_whitespace() || "{},()\"".contains(c))
            .filter(|t| !t.is_empty())
            .collect();
        let id = doc.get("id").and_then(JsonValue::as_u64).unwrap_or(0);
        self.name
            .as_ref()
            .is_none_or(|n| name.to_lowercase().contains(n.as_str()))
            && self
                .tags
                .iter()
                .all(|t| scope.contains(&t.as_str()) || tags.contains(&t.as_str()))
            && self.monitor_tags.iter().all(|t| tags.contains(&t.as_str()))
            && self.id_offset.is_none_or(|o| id > o)
    }

    /// The monitors passing the filters, paged.
    pub fn apply(&self, docs: Vec<MonitorDoc>) -> Vec<MonitorDoc> {
        let kept = docs.into_iter().filter(|d| self.matches(d));
        match self.page {
            Some((page, size)) => kept.skip(page.saturating_mul(size)).take(size).collect(),
            None => kept.collect(),
        }
    }
}

async fn list_monitors(
    State(st): State<Arc<MonitorState>>,
    p: Params,
) -> Result<Json<JsonValue>, QueryError> {
    let p = params(p)?;
    let filter = ListFilter::from_params(&p)?;
    let groups = GroupFilter::from_params(&p)?;
    let repo = st.repo.clone();
    let states = st.states.clone();
    let rendered = blocking(move || {
        Ok(filter
            .apply(repo.list())
            .iter()
            .map(|d| {
                let s = d
                    .get("id")
                    .and_then(JsonValue::as_u64)
                    .and_then(|id| states.get(id));
                render_with_state(d, s.as_ref(), groups.as_ref())
            })
            .collect())
    })
    .await?;
    Ok(Json(JsonValue::Array(rendered)))
}

/// Which group states a `group_states` parameter asks for: `None` for every status (`all`).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupFilter(Option<Vec<MonitorStatus>>);

impl GroupFilter {
    /// `None` without the parameter (or with an empty one).
    pub fn from_params(p: &HashMap<String, String>) -> Result<Option<GroupFilter>, QueryError> {
        let Some(raw) = p
            .get("group_states")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
        else {
            return Ok(None);
        };
        let mut wanted = Vec::new();
        for s in raw.split(',').map(|s| s.trim().to_lowercase()) {
            match s.as_str() {
                "all" => return Ok(Some(GroupFilter(None))),
                "alert" => wanted.push(MonitorStatus::Alert),
                "warn" | "warning" => wanted.push(MonitorStatus::Warn),
                "no data" | "no_data" | "nodata" => wanted.push(MonitorStatus::NoData),
                "ok" => wanted.push(MonitorStatus::Ok),
                "" => {}
                other => {
                    return Err(QueryError::BadParam(format!(
                    "invalid \"group_states\" {other:?}: expected all, alert, warn, no data or ok"
                )))
                }
            }
        }
        Ok(Some(GroupFilter(Some(wanted))))
    }

    fn keeps(&self, s: MonitorStatus) -> bool {
        self.0.as_ref().is_none_or(|w| w.contains(&s))
    }
}

/// [`render`] with the evaluator's states: `overall_state`, and with `groups` the `state` object (see the
/// module documentation).
pub fn render_with_state(
    doc: &MonitorDoc,
    states: Option<&MonitorStates>,
    groups: Option<&GroupFilter>,
) -> JsonValue {
    let mut out = render(doc);
    let parsed: BTreeMap<String, GroupState> = states
        .and_then(|s| serde_json::from_value(s.groups.clone()).ok())
        .unwrap_or_default();
    out["overall_state"] = json!(overall(&parsed).as_str());
    let Some(filter) = groups else {
        return out;
    };
    let history = states.map(|s| s.history.as_slice()).unwrap_or_default();
    // The latest timestamp at which a group entered a status, from the history.
    let last_into = |group: &str, to: MonitorStatus| {
        history
            .iter()
            .rev()
            .find(|t| t["group"] == group && t["to"] == to.as_str() && t["from"] != t["to"])
            .and_then(|t| t["ts"].as_i64())
    };
    let mut out_groups = serde_json::Map::new();
    for (name, g) in parsed.iter().filter(|(_, g)| filter.keeps(g.status)) {
        let mut o = serde_json::Map::new();
        o.insert("name".into(), json!(name));
        o.insert("status".into(), json!(g.status.as_str()));
        let current = |s: MonitorStatus| (g.status == s).then_some(g.since_ts);
        let stamps = [
            ("last_triggered_ts", MonitorStatus::Alert),
            ("last_nodata_ts", MonitorStatus::NoData),
            ("last_resolved_ts", MonitorStatus::Ok),
        ];
        for (key, s) in stamps {
            let ts = current(s)
                .filter(|_| s != MonitorStatus::Ok)
                .or_else(|| last_into(name, s));
            if let Some(ts) = ts {
                o.insert(key.into(), json!(ts));
            }
        }
        if let Some(ts) = g.last_notified_ts {
            o.insert("last_notified_ts".into(), json!(ts));
        }
        if let Some(v) = g.last_value {
            o.insert("last_value".into(), json!(v));
        }
        if let Some(ts) = g.last_data_ts {
            o.insert("last_data_ts".into(), json!(ts));
        }
        out_groups.insert(name.clone(), JsonValue::Object(o));
    }
    let attempts = states.map(|s| s.attempts.as_slice()).unwrap_or_default();
    out["state"] = json!({"groups": out_groups, "history": history, "notifications": attempts});
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use sightline_storage::{MemoryMonitorStates, MemoryMonitors};
    use tower::ServiceExt;

    fn app() -> Router {
        monitors_router(Arc::new(MonitorState {
            repo: Arc::new(MemoryMonitors::default()),
            states: Arc::new(MemoryMonitorStates::default()),
        }))
    }

    async fn call(
        app: &Router,
        method: Method,
        uri: &str,
        body: Option<JsonValue>,
    ) -> (StatusCode, JsonValue) {
        let (status, bytes) =
            crate::test_util::call_router(app, method, uri, body.map(|b| b.to_string())).await;
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn monitor(name: &str, query: &str, tags: &[&str]) -> JsonValue {
        json!({"name": name, "type": "metric alert", "query": query, "tags": tags, "message": "hi"})
    }

    fn ids(body: &JsonValue) -> Vec<u64> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_u64().unwrap())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn crud_and_filters() {
        let app = app();
        let seeds = [
            monitor(
                "CPU high",
                "avg(last_5m):avg:cpu{host:a} > 80",
                &["team:a", "env:prod"],
            ),
            monitor(
                "cpu low",
                "avg(last_5m):avg:cpu{host:b} by {host} < 5",
                &["team:b"],
            ),
            monitor("disk", "avg(last_5m):avg:disk{*} > 90", &["team:a"]),
        ];
        for (i, m) in seeds.iter().enumerate() {
            let (s, body) = call(&app, Method::POST, MONITOR_PATH, Some(m.clone())).await;
            assert_eq!(s, StatusCode::OK, "{body}");
            assert_eq!(body["id"], json!(i + 1));
            assert_eq!(body["overall_state"], "No Data");
            assert_eq!(body["created"], body["modified"]);
        }
        let cases: &[(&str, &[u64])] = &[
            ("", &[1, 2, 3]),
            ("?name=cpu", &[1, 2]),
            ("?name=CPU%20H", &[1]),
            ("?tags=host:b", &[2]),
            ("?tags=team:a,host:a", &[1]),
            ("?monitor_tags=team:a", &[1, 3]),
            ("?monitor_tags=team:a,env:prod", &[1]),
            ("?monitor_tags=host:a", &[]),
            ("?id_offset=1", &[2, 3]),
            ("?page=0&page_size=2", &[1, 2]),
            ("?page=1&page_size=2", &[3]),
            ("?page=1", &[]),
            ("?group_states=all&with_downtimes=true", &[1, 2, 3]),
        ];
        for (q, want) in cases {
            let (s, body) = call(&app, Method::GET, &format!("{MONITOR_PATH}{q}"), None).await;
            assert_eq!(s, StatusCode::OK, "{q}: {body}");
            assert_eq!(ids(&body), *want, "{q}");
        }

        let (s, body) = call(
            &app,
            Method::GET,
            "/api/v1/monitor/2?group_states=all",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(body["multi"], true);
        assert_eq!(body["options"]["thresholds"], json!({"critical": 5.0}));

        let (s, body) = call(
            &app,
            Method::PUT,
            "/api/v1/monitor/2",
            Some(json!({"name": "renamed", "priority": 2})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(body["name"], "renamed");
        assert_eq!(body["priority"], 2);
        assert_eq!(body["message"], "hi");
        assert_eq!(body["id"], 2);

        let (s, body) = call(&app, Method::DELETE, "/api/v1/monitor/2", None).await;
        assert_eq!(
            (s, body),
            (StatusCode::OK, json!({"deleted_monitor_id": 2}))
        );
        let (s, body) = call(&app, Method::POST, MONITOR_PATH, Some(seeds[0].clone())).await;
        assert_eq!((s, body["id"].clone()), (StatusCode::OK, json!(4)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reports_evaluated_states() {
        let states = Arc::new(MemoryMonitorStates::default());
        let app = monitors_router(Arc::new(MonitorState {
            repo: Arc::new(MemoryMonitors::default()),
            states: states.clone(),
        }));
        let m = monitor("cpu", "max(last_1m):max:cpu{*} by {host} > 80", &[]);
        let (s, _) = call(&app, Method::POST, MONITOR_PATH, Some(m)).await;
        assert_eq!(s, StatusCode::OK);
        let group = |status: &str, since: i64, notified: Option<i64>| {
            json!({"status": status, "since_ts": since, "last_value": 1.0, "last_data_ts": since,
                   "first_seen_ts": 100, "last_notified_ts": notified})
        };
        let t = |group: &str, from: &str, to: &str, ts: i64| {
            json!({"group": group, "from": from, "to": to, "value": 1.0, "ts": ts,
                   "notify": true, "renotify": false})
        };
        states
            .save(
                1,
                json!({"host:a": group("Alert", 300, Some(300)), "host:b": group("OK", 250, Some(250))}),
                vec![
                    t("host:b", "OK", "Alert", 200),
                    t("host:b", "Alert", "OK", 250),
                    t("host:a", "OK", "Alert", 300),
                ],
            )
            .unwrap();
        let (_, body) = call(&app, Method::GET, "/api/v1/monitor/1", None).await;
        assert_eq!(body["overall_state"], "Alert");
        assert_eq!(body["state"], json!({"groups": {}}));
        let (_, body) = call(
            &app,
            Method::GET,
            "/api/v1/monitor/1?group_states=all",
            None,
        )
        .await;
        assert_eq!(
            body["state"]["groups"],
            json!({
                "host:a": {"name": "host:a", "status": "Alert", "last_triggered_ts": 300,
                           "last_notified_ts": 300, "last_value": 1.0, "last_data_ts": 300},
                "host:b": {"name": "host:b", "status": "OK", "last_triggered_ts": 200,
                           "last_resolved_ts": 250, "last_notified_ts": 250, "last_value": 1.0,
                           "last_data_ts": 250},
            })
        );
        assert_eq!(body["state"]["history"].as_array().unwrap().len(), 3);
        let (_, body) = call(
            &app,
            Method::GET,
            "/api/v1/monitor?group_states=alert",
            None,
        )
        .await;
        let groups = body[0]["state"]["groups"].as_object().unwrap();
        assert_eq!(groups.keys().collect::<Vec<_>>(), ["host:a"]);
        let (s, _) = call(
            &app,
            Method::GET,
            "/api/v1/monitor/1?group_states=bad",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = call(&app, Method::DELETE, "/api/v1/monitor/1", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(states.get(1), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn errors() {
        let app = app();
        let good = monitor("m", "avg(last_5m):avg:cpu{*} > 80", &[]);
        let (s, _) = call(&app, Method::POST, MONITOR_PATH, Some(good.clone())).await;
        assert_eq!(s, StatusCode::OK);
        let bad_query = monitor("m", "avg(last_5m):avg:cpu{* > 80", &[]);
        let cases: Vec<(Method, &str, Option<JsonValue>, StatusCode, &str)> = vec![
            (
                Method::GET,
                "/api/v1/monitor/9",
                None,
                StatusCode::NOT_FOUND,
                "monitor 9 not found",
            ),
            (
                Method::PUT,
                "/api/v1/monitor/9",
                Some(json!({})),
                StatusCode::NOT_FOUND,
                "monitor 9 not found",
            ),
            (
                Method::DELETE,
                "/api/v1/monitor/9",
                None,
                StatusCode::NOT_FOUND,
                "monitor 9 not found",
            ),
            (
                Method::POST,
                "/api/v1/monitor/9/validate",
                Some(good.clone()),
                StatusCode::NOT_FOUND,
                "monitor 9 not found",
            ),
            (
                Method::GET,
                "/api/v1/monitor/abc",
                None,
                StatusCode::BAD_REQUEST,
                "invalid monitor id \"abc\"",
            ),
            (
                Method::POST,
                MONITOR_PATH,
                Some(bad_query.clone()),
                StatusCode::BAD_REQUEST,
                "at position",
            ),
            (
                Method::POST,
                "/api/v1/monitor/validate",
                Some(bad_query),
                StatusCode::BAD_REQUEST,
                "at position",
            ),
            (
                Method::POST,
                "/api/v1/monitor/validate",
                Some(json!({"type": "composite", "query": "1 && 2"})),
                StatusCode::BAD_REQUEST,
                "unsupported monitor type \"composite\"",
            ),
            (
                Method::PUT,
                "/api/v1/monitor/1",
                Some(json!({"options": {"thresholds": {"critical": 80, "warning": 85}}})),
                StatusCode::BAD_REQUEST,
                "must be below",
            ),
            (
                Method::GET,
                "/api/v1/monitor?page_size=5000",
                None,
                StatusCode::BAD_REQUEST,
                "invalid \"page_size\"",
            ),
        ];
        for (method, uri, body, status, text) in cases {
            let (s, b) = call(&app, method.clone(), uri, body).await;
            assert_eq!(s, status, "{method} {uri}: {b}");
            let msg = b["errors"][0].as_str().unwrap_or_default();
            assert!(msg.contains(text), "{method} {uri}: {b}");
        }
        // Not JSON.
        let req = Request::post(MONITOR_PATH).body(Body::from("{")).unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        for uri in ["/api/v1/monitor/validate", "/api/v1/monitor/1/validate"] {
            let (s, b) = call(&app, Method::POST, uri, Some(good.clone())).await;
            assert_eq!((s, b), (StatusCode::OK, json!({})), "{uri}");
        }
    }
}

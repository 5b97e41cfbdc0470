//! The dashboards API (SPEC §8, Datadog's `/api/v1/dashboard`): create, list, get, update and delete
//! dashboards in Datadog's dashboard JSON, so an exported Datadog dashboard imports unchanged.
//!
//! - `POST /api/v1/dashboard`: the body is a dashboard: `title` (a non-empty string), `layout_type`
//!   (`ordered` or `free`), `widgets` (an array of objects, each with a `definition` object whose `type` is a
//!   string; `group` widgets hold `widgets` of their own), and optionally `description`,
//!   `template_variables` (objects with a `name`), `notify_list`, `reflow_type`, `tags` and whatever else
//!   Datadog exports (kept as given). The answer is the stored dashboard with `id` (Datadog's `abc-def-ghi`
//!   shape), `url` (`/dashboards/<id>`, the web app's route), `created_at`, `modified_at` (RFC 3339),
//!   `author_handle`, and an `id` on every widget that had none.
//! - `GET /api/v1/dashboard`: `{"dashboards": [summary…]}`, each `{id, title, description, layout_type, url,
//!   is_read_only, created_at, modified_at, author_handle}`.
//! - `GET /api/v1/dashboard/{id}`: the dashboard; `PUT` replaces it (same checks, `created_at` kept);
//!   `DELETE` answers `{"deleted_dashboard_id": id}`.
//!
//! Every widget type is stored; the web app draws `timeseries`, `query_value`, `toplist`, `heatmap`,
//! `log_stream`, `trace_service`, `note` and `group`. Bad input is a 400 naming the field (`widgets[2].definition.type
//! must be a string`); an unknown id a 404.

use crate::error::QueryError;
use crate::http::blocking;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value as JsonValue};
use sightline_storage::{DashboardDoc, DashboardRepo};
use std::sync::Arc;

/// The dashboards' path.
pub const DASHBOARD_PATH: &str = "/api/v1/dashboard";
/// Most widgets in one dashboard, nested ones included.
pub const MAX_WIDGETS: usize = 1000;
/// Largest request body.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// What the dashboard handlers share.
pub struct DashboardState {
    pub repo: Arc<dyn DashboardRepo>,
}

/// The dashboard API's routes; merge them into the server's router (behind the key middleware).
pub fn dashboards_router(state: Arc<DashboardState>) -> Router {
    Router::new()
        .route(DASHBOARD_PATH, get(list).post(create))
        .route(
            "/api/v1/dashboard/{id}",
            get(get_one).put(update).delete(delete),
        )
        .with_state(state)
}

fn bad(msg: impl Into<String>) -> QueryError {
    QueryError::BadParam(msg.into())
}

fn not_found(id: &str) -> QueryError {
    QueryError::NotFound(format!("dashboard {id} not found"))
}

fn now() -> String {
    let now = jiff::Timestamp::now();
    format!("{now:.3}")
}

/// Checks a dashboard body and returns it ready to store: widget ids assigned, `url`/timestamps left to the
/// caller.
pub fn check(body: &JsonValue) -> Result<DashboardDoc, String> {
    let obj = body
        .as_object()
        .ok_or("the body must be a JSON object (a dashboard)")?;
    match obj.get("title") {
        Some(JsonValue::String(t)) if !t.trim().is_empty() => {}
        Some(JsonValue::String(_)) => return Err("title must not be empty".into()),
        Some(other) => return Err(format!("title must be a string, not {other}")),
        None => return Err("title is required".into()),
    }
    match obj.get("layout_type").and_then(JsonValue::as_str) {
        Some("ordered" | "free") => {}
        Some(other) => {
            return Err(format!(
                "layout_type must be \"ordered\" or \"free\", not {other:?}"
            ))
        }
        None => return Err("layout_type is required (\"ordered\" or \"free\")".into()),
    }
    if let Some(d) = obj.get("description") {
        if !(d.is_string() || d.is_null()) {
            return Err(format!("description must be a string or null, not {d}"));
        }
    }
    if let Some(vars) = obj.get("template_variables").filter(|v| !v.is_null()) {
        let vars = vars
            .as_array()
            .ok_or("template_variables must be an array")?;
        for (i, v) in vars.iter().enumerate() {
            if !v.get("name").is_some_and(JsonValue::is_string) {
                return Err(format!("template_variables[{i}].name must be a string"));
            }
        }
    }
    let mut doc = obj.clone();
    let widgets = doc
        .get_mut("widgets")
        .ok_or("widgets is required (an array, possibly empty)")?;
    let mut next_id = 1u64;
    let mut count = 0usize;
    check_widgets(widgets, "widgets", &mut next_id, &mut count)?;
    Ok(doc)
}

/// Checks the widgets at `path` and numbers those without an `id` (after the highest id already used, so
/// ids stay unique).
fn check_widgets(
    widgets: &mut JsonValue,
    path: &str,
    next_id: &mut u64,
    count: &mut usize,
) -> Result<(), String> {
    let list = widgets
        .as_array_mut()
        .ok_or_else(|| format!("{path} must be an array"))?;
    for w in list.iter() {
        if let Some(id) = w.get("id").and_then(JsonValue::as_u64) {
            *next_id = (*next_id).max(id + 1);
        }
    }
    for (i, w) in list.iter_mut().enumerate() {
        let at = format!("{path}[{i}]");
        *count += 1;
        if *count > MAX_WIDGETS {
            return Err(format!("a dashboard holds at most {MAX_WIDGETS} widgets"));
        }
        let w = w
            .as_object_mut()
            .ok_or_else(|| format!("{at} must be an object"))?;
        let def = w
            .get_mut("definition")
            .and_then(JsonValue::as_object_mut)
            .ok_or_else(|| format!("{at}.definition must be an object"))?;
        let kind = def
            .get("type")
            .and_then(JsonValue::as_str)
            .ok_or_else(|| format!("{at}.definition.type must be a string"))?
            .to_string();
        if kind == "group" {
            let inner = def
                .get_mut("widgets")
                .ok_or_else(|| format!("{at}.definition.widgets is required for a group"))?;
            check_widgets(inner, &format!("{at}.definition.widgets"), next_id, count)?;
        }
        if !w.contains_key("id") {
            w.insert("id".into(), json!(*next_id));
            *next_id += 1;
        }
    }
    Ok(())
}

fn body_json(body: Result<Bytes, BytesRejection>) -> Result<JsonValue, QueryError> {
    let bytes = body.map_err(|e| bad(format!("cannot read the body: {}", e.body_text())))?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(bad(format!(
            "the body is {} bytes; a dashboard is at most {MAX_BODY_BYTES} bytes",
            bytes.len()
        )));
    }
    serde_json::from_slice(&bytes).map_err(|e| bad(format!("the body is not valid JSON: {e}")))
}

/// The summary of a dashboard in the list.
fn summary(d: &DashboardDoc) -> JsonValue {
    let field = |k: &str| d.get(k).cloned().unwrap_or(JsonValue::Null);
    json!({
        "id": field("id"),
        "title": field("title"),
        "description": field("description"),
        "layout_type": field("layout_type"),
        "url": field("url"),
        "is_read_only": d.get("is_read_only").and_then(JsonValue::as_bool).unwrap_or(false),
        "created_at": field("created_at"),
        "modified_at": field("modified_at"),
        "author_handle": field("author_handle"),
    })
}

/// Fills the fields the server owns.
fn stamp(mut doc: DashboardDoc, created_at: Option<JsonValue>) -> DashboardDoc {
    let t = now();
    doc.remove("id");
    doc.insert(
        "created_at".into(),
        created_at.unwrap_or_else(|| json!(t.clone())),
    );
    doc.insert("modified_at".into(), json!(t));
    doc.entry("author_handle")
        .or_insert_with(|| json!("sightline"));
    doc
}

fn with_url(mut doc: DashboardDoc) -> DashboardDoc {
    let id = doc
        .get("id")
        .and_then(JsonValue::as_str)
        .unwrap_or("")
        .to_string();
    doc.insert("url".into(), json!(format!("/dashboards/{id}")));
    doc
}

async fn create(
    State(st): State<Arc<DashboardState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<JsonValue>, QueryError> {
    let doc = stamp(check(&body_json(body)?).map_err(bad)?, None);
    let repo = st.repo.clone();
    let stored = blocking(move || {
        let created = repo.create(doc)?;
        let id = created["id"].as_str().unwrap_or("").to_string();
        Ok(repo.update(&id, with_url(created))?.unwrap_or_default())
    })
    .await?;
    Ok(Json(JsonValue::Object(stored)))
}

async fn list(State(st): State<Arc<DashboardState>>) -> Result<Json<JsonValue>, QueryError> {
    let repo = st.repo.clone();
    let all = blocking(move || Ok(repo.list())).await?;
    let dashboards: Vec<JsonValue> = all.iter().map(summary).collect();
    Ok(Json(json!({ "dashboards": dashboards })))
}

async fn get_one(
    State(st): State<Arc<DashboardState>>,
    Path(id): Path<String>,
) -> Result<Json<JsonValue>, QueryError> {
    let repo = st.repo.clone();
    let doc = blocking(move || repo.get(&id).ok_or_else(|| not_found(&id))).await?;
    Ok(Json(JsonValue::Object(doc)))
}

async fn update(
    State(st): State<Arc<DashboardState>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<JsonValue>, QueryError> {
    let checked = check(&body_json(body)?).map_err(bad)?;
    let repo = st.repo.clone();
    let stored = blocking(move || {
        let old = repo.get(&id).ok_or_else(|| not_found(&id))?;
        let mut doc = stamp(checked, old.get("created_at").cloned());
        doc.insert("id".into(), json!(id));
        repo.update(&id, with_url(doc))?
            .ok_or_else(|| not_found(&id))
    })
    .await?;
    Ok(Json(JsonValue::Object(stored)))
}

async fn delete(
    State(st): State<Arc<DashboardState>>,
    Path(id): Path<String>,
) -> Result<Json<JsonValue>, QueryError> {
    let repo = st.repo.clone();
    let gone = id.clone();
    blocking(move || {
        if repo.delete(&id)? {
            Ok(())
        } else {
            Err(not_found(&id))
        }
    })
    .await?;
    Ok(Json(json!({ "deleted_dashboard_id": gone })))
}

/// Stores the dashboards shipped with Sightline (`dashboards/*.json` in the repository, embedded) under
/// their file names as ids, unless a dashboard with that id exists (so a user's edits are kept). Returns
/// how many were added.
pub fn install_shipped(
    repo: &dyn DashboardRepo,
    shipped: &[(&str, &str)],
) -> Result<usize, String> {
    let mut added = 0;
    for (id, text) in shipped {
        if repo.get(id).is_some() {
            continue;
        }
        let body: JsonValue =
            serde_json::from_str(text).map_err(|e| format!("dashboard {id}: {e}"))?;
        let mut doc = stamp(
            check(&body).map_err(|e| format!("dashboard {id}: {e}"))?,
            None,
        );
        doc.insert("id".into(), json!(id));
        repo.put(id, with_url(doc))
            .map_err(|e| format!("dashboard {id}: {e}"))?;
        added += 1;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one helper of the validation table: `body` gives `Ok(())` or the error containing `want`.
    fn check_case(body: JsonValue, want: Result<(), &str>) {
        match (check(&body), want) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(w)) => assert!(e.contains(w), "{body}: {e}"),
            (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn validation() {
        let note = json!({"definition": {"type": "note", "content": "x"}});
        let table = [
            (
                json!({"title": "t", "layout_type": "ordered", "widgets": []}),
                Ok(()),
            ),
            (
                json!({"title": "t", "layout_type": "free", "widgets": [note]}),
                Ok(()),
            ),
            (json!([]), Err("JSON object")),
            (
                json!({"layout_type": "ordered", "widgets": []}),
                Err("title is required"),
            ),
            (
                json!({"title": " ", "layout_type": "ordered", "widgets": []}),
                Err("title must not be empty"),
            ),
            (
                json!({"title": 3, "layout_type": "ordered", "widgets": []}),
                Err("title must be a string"),
            ),
            (
                json!({"title": "t", "layout_type": "grid", "widgets": []}),
                Err("\"grid\""),
            ),
            (
                json!({"title": "t", "widgets": []}),
                Err("layout_type is required"),
            ),
            (
                json!({"title": "t", "layout_type": "ordered"}),
                Err("widgets is required"),
            ),
            (
                json!({"title": "t", "layout_type": "ordered", "widgets": {}}),
                Err("widgets must be an array"),
            ),
            (
                json!({"title": "t", "layout_type": "ordered", "widgets": [{"definition": {}}]}),
                Err("widgets[0].definition.type must be a string"),
            ),
            (
                json!({"title": "t", "layout_type": "ordered",
                       "widgets": [{"definition": {"type": "group", "widgets": [{"x": 1}]}}]}),
                Err("widgets[0].definition.widgets[0].definition must be an object"),
            ),
            (
                json!({"title": "t", "layout_type": "ordered", "widgets": [],
                       "template_variables": [{"prefix": "env"}]}),
                Err("template_variables[0].name"),
            ),
        ];
        for (body, want) in table {
            check_case(body, want);
        }
    }

    #[test]
    fn widgets_get_unique_ids() {
        let body = json!({"title": "t", "layout_type": "ordered", "widgets": [
            {"definition": {"type": "note"}},
            {"id": 7, "definition": {"type": "group", "widgets": [
                {"definition": {"type": "timeseries"}}, {"id": 9, "definition": {"type": "note"}}]}},
            {"definition": {"type": "query_value"}},
        ]});
        let doc = check(&body).unwrap();
        let w = &doc["widgets"];
        let ids = [
            w[0]["id"].as_u64(),
            w[1]["id"].as_u64(),
            w[1]["definition"]["widgets"][0]["id"].as_u64(),
            w[1]["definition"]["widgets"][1]["id"].as_u64(),
            w[2]["id"].as_u64(),
        ];
        let mut seen: Vec<u64> = ids.iter().map(|i| i.unwrap()).collect();
        assert_eq!(seen[1], 7);
        assert_eq!(seen[3], 9);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 5, "{w}");
    }

    #[test]
    fn shipped_dashboards_are_valid() {
        for (file, text) in [
            (
                "host-overview.json",
                include_str!("../../dashboards/host-overview.json"),
            ),
            (
                "sightline-self-monitoring.json",
                include_str!("../../dashboards/sightline-self-monitoring.json"),
            ),
            (
                "service-overview.json",
                include_str!("../../dashboards/service-overview.json"),
            ),
        ] {
            let body: JsonValue =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}"));
            let doc = check(&body).unwrap_or_else(|e| panic!("{file}: {e}"));
            let widgets = doc["widgets"].as_array().unwrap();
            assert!(!widgets.is_empty(), "{file}");
            // Every metric query parses once the template variables are replaced.
            for w in widgets {
                for r in w["definition"]["requests"].as_array().into_iter().flatten() {
                    let qs = r["q"].as_str().into_iter().chain(
                        r["queries"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|q| q["query"].as_str()),
                    );
                    for q in qs {
                        // `$operation` stands in a metric name (service-overview.json), the others in scopes.
                        let q = q
                            .replace("$host", "host:a")
                            .replace("$env", "env:b")
                            .replace("$service", "service:c")
                            .replace("$operation", "http.server.request");
                        crate::parser::parse(&q).unwrap_or_else(|e| panic!("{file}: {q}: {e}"));
                    }
                }
            }
        }
    }

    #[test]
    fn installs_shipped_dashboards_once() {
        let repo = sightline_storage::MemoryDashboards::default();
        let shipped = [(
            "sightline-test",
            r#"{"title": "T", "layout_type": "ordered", "widgets": [{"definition": {"type": "note"}}]}"#,
        )];
        assert_eq!(install_shipped(&repo, &shipped), Ok(1));
        let d = repo.get("sightline-test").unwrap();
        assert_eq!(d["url"], "/dashboards/sightline-test");
        assert_eq!(d["widgets"][0]["id"], 1);
        assert_eq!(install_shipped(&repo, &shipped), Ok(0));
        assert!(install_shipped(&repo, &[("bad", "{")]).is_err());
    }
}

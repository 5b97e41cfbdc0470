//! Datadog's downtimes v2 API (SPEC §7, issue #5) over a [`DowntimeRepo`], and [`downtime_mutes`], the pure
//! test the monitor evaluator asks whether a downtime mutes a monitor group.
//!
//! Routes (JSON:API bodies, as Datadog's `DowntimesApi`):
//!
//! - `POST /api/v2/downtime`: create; 200 with `{"data": <downtime>}`;
//! - `GET /api/v2/downtime[?current_only=true&page[offset]=N&page[limit]=N]`: list in creation order;
//!   `current_only` keeps the `active` ones; 200 with `{"data": [...], "meta": {"page":
//!   {"total_filtered_count": N}}}` (the count before paging); `include` is accepted and ignored;
//! - `GET /api/v2/downtime/{downtime_id}`: 200 with `{"data": <downtime>}`;
//! - `PATCH /api/v2/downtime/{downtime_id}`: partial update (absent attributes are kept); 200;
//! - `DELETE /api/v2/downtime/{downtime_id}`: cancel, 204. The record is kept with status `canceled` (a
//!   second cancel is a 204 too).
//!
//! A downtime is answered as `{"id", "type": "downtime", "attributes": {"scope", "monitor_identifier":
//! {"monitor_id": N} | {"monitor_tags": [...]}, "schedule": {"start", "end"|null}, "message" (absent when
//! none), "display_timezone" (default `UTC`), "mute_first_recovery_notification" (default false),
//! "notify_end_states" (default `["alert","no data","warn"]`), "notify_end_types" (default `["expired"]`),
//! "status": "active"|"scheduled"|"ended"|"canceled", "created", "modified", "canceled"|null}}`; times are
//! RFC 3339 UTC with whole seconds. Status: `canceled` once deleted, else `scheduled` before `start`, `ended`
//! from `end` on, else `active`.
//!
//! Validation (every failure is a 400 `{"errors":["…"]}` naming the field): the body is `{"data": {"type":
//! "downtime", "attributes": {...}}}` (`type` may be omitted; on PATCH `data.id`, if given, must be the
//! path's id); `scope` (required on create) is a tag query in the metric query scope syntax
//! ([`parse_scope`]: `*`, `key:value` filters with `*` wildcards, `!`/`-` negation, `,`/`AND`/`OR`/`NOT`,
//! `IN (…)`, parentheses; space-separated filters without keywords or parentheses are taken as a comma
//! list); `monitor_identifier` (required on create) has exactly one of `monitor_id` (positive integer) and
//! `monitor_tags` (non-empty list of non-empty strings); `schedule` is one-time only (`recurrences` is
//! refused), `start` defaults to now (also when `null`), `end` to never and must be after `start`; times are
//! RFC 3339 (a time without offset is taken as UTC); the `notify_end_*` lists take Datadog's enum values.
//!
//! Muting ([`Downtime::mutes`]): the downtime is `active`, its monitor identifier matches (the same id, or
//! the monitor carries every one of the `monitor_tags`, `*` matching any monitor) and its scope matches the
//! group's tags (`*` matches every group, including the single group of a monitor without `by`).

use crate::ast::{ExprKind, Scope};
use crate::error::QueryError;
use crate::http::{blocking, params, Params};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use jiff::Timestamp;
use serde_json::{json, Map, Value as JsonValue};
use sightline_storage::{DowntimeDoc, DowntimeRepo};
use std::sync::Arc;

/// The downtimes' path.
pub const DOWNTIMES_PATH: &str = "/api/v2/downtime";
/// Longest scope (bytes).
pub const MAX_SCOPE_LEN: usize = 4096;
/// Longest message (bytes).
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;
/// Most monitor tags in a `monitor_identifier`.
pub const MAX_MONITOR_TAGS: usize = 100;
/// Default and largest `page[limit]` of the list.
pub const MAX_PAGE_LIMIT: usize = 1000;

const NOTIFY_END_STATES: [&str; 3] = ["alert", "no data", "warn"];
const NOTIFY_END_TYPES: [&str; 2] = ["canceled", "expired"];

/// What the downtime handlers share.
pub struct DowntimeState {
    pub repo: Arc<dyn DowntimeRepo>,
}

/// The downtimes API's routes; merge them into the server's router (behind the key middleware).
pub fn downtimes_router(state: Arc<DowntimeState>) -> Router {
    Router::new()
        .route(DOWNTIMES_PATH, get(list_downtimes).post(create_downtime))
        .route(
            "/api/v2/downtime/{downtime_id}",
            get(get_downtime)
                .patch(update_downtime)
                .delete(cancel_downtime),
        )
        .with_state(state)
}

/// A downtime's status at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DowntimeStatus {
    Scheduled,
    Active,
    Ended,
    Canceled,
}

impl DowntimeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DowntimeStatus::Scheduled => "scheduled",
            DowntimeStatus::Active => "active",
            DowntimeStatus::Ended => "ended",
            DowntimeStatus::Canceled => "canceled",
        }
    }
}

/// Which monitors a downtime applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum DowntimeTarget {
    MonitorId(u64),
    /// Monitors carrying every one of these tags (`*` matches any monitor).
    MonitorTags(Vec<String>),
}

/// A stored downtime, parsed once for repeated muting tests (the evaluator's hot path).
#[derive(Debug, Clone, PartialEq)]
pub struct Downtime {
    pub id: String,
    pub scope: Scope,
    pub target: DowntimeTarget,
    /// Unix seconds.
    pub start: i64,
    pub end: Option<i64>,
    pub canceled: Option<i64>,
    /// Statuses (`alert`, `no data`, `warn`) a group it muted notifies when it ends.
    pub notify_end_states: Vec<String>,
    /// How it must end (`expired`, `canceled`) for that notification.
    pub notify_end_types: Vec<String>,
}

impl Downtime {
    /// Parses a stored downtime; `None` if it is not one this API stored.
    pub fn from_doc(doc: &DowntimeDoc) -> Option<Downtime> {
        let id = doc.get("id")?.as_str()?.to_string();
        let scope = parse_scope(doc.get("scope")?.as_str()?).ok()?;
        let target = parse_target(doc.get("monitor_identifier")?).ok()?;
        let schedule = doc.get("schedule")?.as_object()?;
        let start = stored_time(schedule.get("start"))??;
        let end = stored_time(schedule.get("end"))?;
        let canceled = stored_time(doc.get("canceled"))?;
        let list = |key: &str, default: &[&str]| -> Vec<String> {
            match doc.get(key).and_then(JsonValue::as_array) {
                Some(a) => a
                    .iter()
                    .filter_map(JsonValue::as_str)
                    .map(str::to_string)
                    .collect(),
                None => default.iter().map(|s| s.to_string()).collect(),
            }
        };
        Some(Downtime {
            id,
            scope,
            target,
            start,
            end,
            canceled,
            notify_end_states: list("notify_end_states", &NOTIFY_END_STATES),
            notify_end_types: list("notify_end_types", &["expired"]),
        })
    }

    /// Whether a group it muted, now in `status` (`alert`, `warn`, `no data`), is notified at `now` because
    /// this downtime ended the way `notify_end_types` asks (canceled, or expired); `false` while it is
    /// active or scheduled.
    pub fn notifies_end(&self, status: &str, now: i64) -> bool {
        let how = match self.status(now) {
            DowntimeStatus::Canceled => "canceled",
            DowntimeStatus::Ended => "expired",
            _ => return false,
        };
        self.notify_end_types.iter().any(|t| t == how)
            && self.notify_end_states.iter().any(|s| s == status)
    }

    /// The status at `now` (unix seconds).
    pub fn status(&self, now: i64) -> DowntimeStatus {
        status_at(self.start, self.end, self.canceled, now)
    }

    /// Whether this downtime mutes the group `group_tags` of monitor `monitor_id` (tagged `monitor_tags`) at
    /// `now` (unix seconds).
    pub fn mutes(
        &self,
        monitor_id: u64,
        monitor_tags: &[&str],
        group_tags: &[&str],
        now: i64,
    ) -> bool {
        if self.status(now) != DowntimeStatus::Active {
            return false;
        }
        let target = match &self.target {
            DowntimeTarget::MonitorId(id) => *id == monitor_id,
            DowntimeTarget::MonitorTags(tags) => tags
                .iter()
                .all(|t| t == "*" || monitor_tags.contains(&t.as_str())),
        };
        target
            && match &self.scope {
                Scope::All => true,
                Scope::Expr(e) => e.matches(group_tags),
            }
    }
}

/// Whether the stored downtime `downtime` mutes the group `group_tags` (e.g. `["host:a"]`, empty for a
/// monitor without `by`) of monitor `monitor_id` tagged `monitor_tags` at `now` (unix seconds). A document
/// that does not parse mutes nothing. For many calls, parse once with [`Downtime::from_doc`].
pub fn downtime_mutes(
    downtime: &DowntimeDoc,
    monitor_id: u64,
    monitor_tags: &[&str],
    group_tags: &[&str],
    now: i64,
) -> bool {
    Downtime::from_doc(downtime).is_some_and(|d| d.mutes(monitor_id, monitor_tags, group_tags, now))
}

fn status_at(start: i64, end: Option<i64>, canceled: Option<i64>, now: i64) -> DowntimeStatus {
    if canceled.is_some() {
        DowntimeStatus::Canceled
    } else if now < start {
        DowntimeStatus::Scheduled
    } else if end.is_some_and(|e| now >= e) {
        DowntimeStatus::Ended
    } else {
        DowntimeStatus::Active
    }
}

/// A stored time: `Some(None)` for absent or `null`, `None` if malformed.
fn stored_time(v: Option<&JsonValue>) -> Option<Option<i64>> {
    match v {
        None | Some(JsonValue::Null) => Some(None),
        Some(JsonValue::String(s)) => parse_time(s).ok().map(Some),
        Some(_) => None,
    }
}

/// An RFC 3339 time (or one without offset, taken as UTC) as unix seconds.
fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Ok(ts.as_second());
    }
    let dt = s
        .parse::<jiff::civil::DateTime>()
        .map_err(|e| format!("{s:?} is not an ISO-8601 time: {e}"))?;
    jiff::tz::Offset::UTC
        .to_timestamp(dt)
        .map(|t| t.as_second())
        .map_err(|e| format!("{s:?} is out of range: {e}"))
}

fn format_time(secs: i64) -> String {
    Timestamp::from_second(secs).map_or_else(|_| secs.to_string(), |t| t.to_string())
}

/// Parses a downtime scope as a metric query scope (see the module documentation).
pub fn parse_scope(scope: &str) -> Result<Scope, String> {
    const PREFIX: &str = "avg:m{";
    if scope.trim().is_empty() {
        return Err("scope must not be empty (use \"*\" for every group)".into());
    }
    if scope.len() > MAX_SCOPE_LEN {
        return Err(format!("scope is longer than {MAX_SCOPE_LEN} bytes"));
    }
    if let Some(i) = scope.find(['{', '}']) {
        return Err(format!(
            "invalid scope {scope:?}: at position {i}: braces are not allowed"
        ));
    }
    let attempt = |text: &str| match crate::parser::parse(&format!("{PREFIX}{text}}}")) {
        Ok(q) => match q.exprs.into_iter().next().map(|e| e.kind) {
            Some(ExprKind::Metric(m)) => Ok(m.scope),
            _ => Err((0, "not a tag query".to_string())),
        },
        Err(e) => Err((
            e.pos.saturating_sub(PREFIX.len()).min(text.len()),
            e.message,
        )),
    };
    match attempt(scope) {
        Ok(s) => Ok(s),
        Err((pos, message)) => {
            // `env:prod service:web` (Datadog's implicit AND) as `env:prod,service:web`.
            let words: Vec<&str> = scope.split_whitespace().collect();
            let keyword =
                |w: &&str| ["and", "or", "not", "in"].contains(&w.to_ascii_lowercase().as_str());
            if words.len() > 1 && !scope.contains(['(', ')']) && !words.iter().any(keyword) {
                if let Ok(s) = attempt(&words.join(",")) {
                    return Ok(s);
                }
            }
            Err(format!(
                "invalid scope {scope:?}: at position {pos}: {message}"
            ))
        }
    }
}

fn parse_target(v: &JsonValue) -> Result<DowntimeTarget, String> {
    let Some(obj) = v.as_object() else {
        return Err("monitor_identifier must be an object".into());
    };
    match (obj.get("monitor_id"), obj.get("monitor_tags")) {
        (Some(id), None) => match id.as_u64() {
            Some(id) if id > 0 => Ok(DowntimeTarget::MonitorId(id)),
            _ => Err(format!(
                "monitor_identifier.monitor_id must be a positive integer, not {id}"
            )),
        },
        (None, Some(tags)) => {
            let Some(list) = tags.as_array() else {
                return Err("monitor_identifier.monitor_tags must be a list of strings".into());
            };
            if list.is_empty() {
                return Err(
                    "monitor_identifier.monitor_tags must not be empty (use [\"*\"] for every monitor)"
                        .into(),
                );
            }
            if list.len() > MAX_MONITOR_TAGS {
                return Err(format!(
                    "monitor_identifier.monitor_tags has more than {MAX_MONITOR_TAGS} tags"
                ));
            }
            list.iter()
                .map(|t| match t.as_str() {
                    Some(s) if !s.trim().is_empty() => Ok(s.to_string()),
                    _ => Err(format!(
                        "monitor_identifier.monitor_tags must hold non-empty strings, not {t}"
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(DowntimeTarget::MonitorTags)
        }
        _ => Err("monitor_identifier must have exactly one of monitor_id and monitor_tags".into()),
    }
}

fn enum_list(
    attrs: &Map<String, JsonValue>,
    field: &str,
    allowed: &[&str],
) -> Result<Option<JsonValue>, String> {
    let Some(v) = attrs.get(field) else {
        return Ok(None);
    };
    let err = || format!("{field} must be a list of {allowed:?}, not {v}");
    let list = v.as_array().ok_or_else(err)?;
    for x in list {
        if !x.as_str().is_some_and(|s| allowed.contains(&s)) {
            return Err(err());
        }
    }
    Ok(Some(v.clone()))
}

/// Applies request `attrs` to `existing` (or to a new downtime) at `now` (unix seconds), validating every
/// field; the result is the document to store (without `id`, `created` and `canceled` for a new one).
pub fn apply_attributes(
    existing: Option<&DowntimeDoc>,
    attrs: &Map<String, JsonValue>,
    now: i64,
) -> Result<DowntimeDoc, String> {
    let mut doc = existing.cloned().unwrap_or_default();
    let creating = existing.is_none();
    match attrs.get("scope") {
        Some(JsonValue::String(s)) => {
            parse_scope(s)?;
            doc.insert("scope".into(), json!(s));
        }
        Some(v) => return Err(format!("scope must be a string, not {v}")),
        None if creating => return Err("scope is required".into()),
        None => {}
    }
    match attrs.get("monitor_identifier") {
        Some(v) => {
            let canonical = match parse_target(v)? {
                DowntimeTarget::MonitorId(id) => json!({ "monitor_id": id }),
                DowntimeTarget::MonitorTags(tags) => json!({ "monitor_tags": tags }),
            };
            doc.insert("monitor_identifier".into(), canonical);
        }
        None if creating => return Err("monitor_identifier is required".into()),
        None => {}
    }
    // The schedule: start and end as unix seconds, then checked together.
    let old = doc.get("schedule").and_then(JsonValue::as_object);
    let mut start = old
        .and_then(|s| stored_time(s.get("start")))
        .flatten()
        .unwrap_or(now);
    let mut end = old.and_then(|s| stored_time(s.get("end"))).flatten();
    match attrs.get("schedule") {
        None | Some(JsonValue::Null) => {}
        Some(JsonValue::Object(s)) => {
            if s.contains_key("recurrences") || s.contains_key("timezone") {
                return Err(
                    "schedule.recurrences: recurring downtimes are not supported (use a one-time schedule with start and end)"
                        .into(),
                );
            }
            let time = |field: &str| -> Result<Option<Option<i64>>, String> {
                match s.get(field) {
                    None => Ok(None),
                    Some(JsonValue::Null) => Ok(Some(None)),
                    Some(JsonValue::String(t)) => parse_time(t)
                        .map(|x| Some(Some(x)))
                        .map_err(|e| format!("schedule.{field}: {e}")),
                    Some(v) => Err(format!("schedule.{field} must be a time string, not {v}")),
                }
            };
            if let Some(s) = time("start")? {
                start = s.unwrap_or(now);
            }
            if let Some(e) = time("end")? {
                end = e;
            }
        }
        Some(v) => return Err(format!("schedule must be an object, not {v}")),
    }
    if let Some(e) = end {
        if e <= start {
            return Err(format!(
                "schedule.end ({}) must be after schedule.start ({})",
                format_time(e),
                format_time(start)
            ));
        }
    }
    doc.insert(
        "schedule".into(),
        json!({"start": format_time(start), "end": end.map(format_time)}),
    );
    match attrs.get("message") {
        Some(JsonValue::String(m)) if m.len() > MAX_MESSAGE_LEN => {
            return Err(format!("message is longer than {MAX_MESSAGE_LEN} bytes"))
        }
        Some(v @ (JsonValue::String(_) | JsonValue::Null)) => {
            doc.insert("message".into(), v.clone());
        }
        Some(v) => return Err(format!("message must be a string, not {v}")),
        None => {}
    }
    match attrs.get("display_timezone") {
        Some(JsonValue::String(tz)) if !tz.trim().is_empty() && tz.len() <= 64 => {
            doc.insert("display_timezone".into(), json!(tz));
        }
        Some(JsonValue::Null) => {
            doc.insert("display_timezone".into(), json!("UTC"));
        }
        Some(v) => {
            return Err(format!(
                "display_timezone must be a time zone name of at most 64 bytes, not {v}"
            ))
        }
        None => {}
    }
    match attrs.get("mute_first_recovery_notification") {
        Some(JsonValue::Bool(b)) => {
            doc.insert("mute_first_recovery_notification".into(), json!(b));
        }
        Some(v) => {
            return Err(format!(
                "mute_first_recovery_notification must be a boolean, not {v}"
            ))
        }
        None => {}
    }
    if let Some(v) = enum_list(attrs, "notify_end_states", &NOTIFY_END_STATES)? {
        doc.insert("notify_end_states".into(), v);
    }
    if let Some(v) = enum_list(attrs, "notify_end_types", &NOTIFY_END_TYPES)? {
        doc.insert("notify_end_types".into(), v);
    }
    // Defaults of a new downtime.
    let defaults = [
        ("message", JsonValue::Null),
        ("display_timezone", json!("UTC")),
        ("mute_first_recovery_notification", json!(false)),
        ("notify_end_states", json!(NOTIFY_END_STATES)),
        ("notify_end_types", json!(["expired"])),
        ("created", json!(format_time(now))),
        ("canceled", JsonValue::Null),
    ];
    for (k, v) in defaults {
        doc.entry(k).or_insert(v);
    }
    doc.insert("modified".into(), json!(format_time(now)));
    Ok(doc)
}

/// The API shape (`DowntimeResponseData`) of a stored downtime at `now` (unix seconds).
pub fn render(doc: &DowntimeDoc, now: i64) -> JsonValue {
    let mut attrs = doc.clone();
    let id = attrs.remove("id").unwrap_or(JsonValue::Null);
    if attrs.get("message").is_some_and(JsonValue::is_null) {
        attrs.remove("message");
    }
    let status = Downtime::from_doc(doc)
        .map_or(DowntimeStatus::Ended, |d| d.status(now))
        .as_str();
    attrs.insert("status".into(), json!(status));
    json!({"id": id, "type": "downtime", "attributes": attrs})
}

fn bad(msg: impl Into<String>) -> QueryError {
    QueryError::BadParam(msg.into())
}

fn not_found(id: &str) -> QueryError {
    QueryError::NotFound(format!("downtime {id} not found"))
}

fn now_secs() -> i64 {
    Timestamp::now().as_second()
}

/// The `data.attributes` of a request body; `path_id` is the id of a PATCH.
fn request_attributes(
    body: Result<Bytes, BytesRejection>,
    path_id: Option<&str>,
) -> Result<Map<String, JsonValue>, QueryError> {
    let bytes = body.map_err(|e| bad(format!("cannot read the body: {}", e.body_text())))?;
    let body: JsonValue = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("the body is not valid JSON: {e}")))?;
    let Some(data) = body.get("data").and_then(JsonValue::as_object) else {
        return Err(bad("data is required and must be an object"));
    };
    match data.get("type") {
        None => {}
        Some(t) if t == "downtime" => {}
        Some(t) => return Err(bad(format!("data.type must be \"downtime\", not {t}"))),
    }
    if let (Some(want), Some(id)) = (path_id, data.get("id")) {
        if id.as_str() != Some(want) {
            return Err(bad(format!(
                "data.id {id} does not match the downtime id {want:?} of the path"
            )));
        }
    }
    match data.get("attributes") {
        Some(JsonValue::Object(a)) => Ok(a.clone()),
        _ => Err(bad("data.attributes is required and must be an object")),
    }
}

async fn create_downtime(
    State(st): State<Arc<DowntimeState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<JsonValue>, QueryError> {
    let attrs = request_attributes(body, None)?;
    let now = now_secs();
    let doc = apply_attributes(None, &attrs, now).map_err(bad)?;
    let repo = st.repo.clone();
    let stored = blocking(move || Ok(repo.create(doc)?)).await?;
    Ok(Json(json!({"data": render(&stored, now)})))
}

async fn list_downtimes(
    State(st): State<Arc<DowntimeState>>,
    p: Params,
) -> Result<Json<JsonValue>, QueryError> {
    let p = params(p)?;
    let current_only = match p.get("current_only").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(bad(format!(
                "current_only must be true or false, not {v:?}"
            )))
        }
    };
    let number = |name: &str, default: usize| -> Result<usize, QueryError> {
        p.get(name).map_or(Ok(default), |v| {
            v.parse::<usize>()
                .map_err(|_| bad(format!("{name} must be a non-negative integer, not {v:?}")))
        })
    };
    let offset = number("page[offset]", 0)?;
    let limit = number("page[limit]", MAX_PAGE_LIMIT)?;
    if limit == 0 || limit > MAX_PAGE_LIMIT {
        return Err(bad(format!(
            "page[limit] must be from 1 to {MAX_PAGE_LIMIT}"
        )));
    }
    let repo = st.repo.clone();
    let all = blocking(move || Ok(repo.list())).await?;
    let now = now_secs();
    let data: Vec<JsonValue> = all
        .iter()
        .map(|d| render(d, now))
        .filter(|d| !current_only || d["attributes"]["status"] == "active")
        .collect();
    let total = data.len();
    let page: Vec<JsonValue> = data.into_iter().skip(offset).take(limit).collect();
    Ok(Json(json!({
        "data": page,
        "meta": {"page": {"total_filtered_count": total}},
    })))
}

async fn get_downtime(
    State(st): State<Arc<DowntimeState>>,
    Path(id): Path<String>,
) -> Result<Json<JsonValue>, QueryError> {
    let repo = st.repo.clone();
    let doc = blocking(move || repo.get(&id).ok_or_else(|| not_found(&id))).await?;
    Ok(Json(json!({"data": render(&doc, now_secs())})))
}

async fn update_downtime(
    State(st): State<Arc<DowntimeState>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<JsonValue>, QueryError> {
    let attrs = request_attributes(body, Some(&id))?;
    let repo = st.repo.clone();
    let now = now_secs();
    let stored = blocking(move || {
        let old = repo.get(&id).ok_or_else(|| not_found(&id))?;
        if old.get("canceled").is_some_and(|c| !c.is_null()) {
            return Err(bad(format!(
                "downtime {id} is canceled and cannot be updated"
            )));
        }
        let doc = apply_attributes(Some(&old), &attrs, now).map_err(bad)?;
        repo.update(&id, doc)?.ok_or_else(|| not_found(&id))
    })
    .await?;
    Ok(Json(json!({"data": render(&stored, now)})))
}

async fn cancel_downtime(
    State(st): State<Arc<DowntimeState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, QueryError> {
    let repo = st.repo.clone();
    let now = now_secs();
    blocking(move || {
        let mut doc = repo.get(&id).ok_or_else(|| not_found(&id))?;
        if doc.get("canceled").is_none_or(JsonValue::is_null) {
            doc.insert("canceled".into(), json!(format_time(now)));
            doc.insert("modified".into(), json!(format_time(now)));
            repo.update(&id, doc)?.ok_or_else(|| not_found(&id))?;
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;
    use sightline_storage::MemoryDowntimes;
    use std::fmt::Debug;

    /// The one comparison helper of these tables: `got` for case `case` must be `want`.
    fn check<T: Debug + PartialEq>(case: impl Debug, got: T, want: T) {
        assert_eq!(got, want, "case {case:?}");
    }

    fn obj(v: JsonValue) -> Map<String, JsonValue> {
        v.as_object().cloned().unwrap()
    }

    /// 2024-01-01T00:00:00Z.
    const T0: i64 = 1_704_067_200;

    #[test]
    fn validation() {
        let ok = |extra: JsonValue| {
            let mut a = obj(json!({"scope": "env:prod", "monitor_identifier": {"monitor_id": 1}}));
            a.extend(obj(extra));
            a
        };
        // (attributes, Ok(()) or a fragment of the error)
        type Case<'a> = (Map<String, JsonValue>, Result<(), &'a str>);
        let cases: Vec<Case> = vec![
            (ok(json!({})), Ok(())),
            (ok(json!({"scope": "*"})), Ok(())),
            (ok(json!({"scope": "env:prod,host:a*"})), Ok(())),
            (ok(json!({"scope": "env:prod host:a"})), Ok(())),
            (
                ok(json!({"scope": "env:prod AND (host:a OR host:b)"})),
                Ok(()),
            ),
            (ok(json!({"scope": "!env:prod"})), Ok(())),
            (ok(json!({"scope": "host IN (a, b)"})), Ok(())),
            (ok(json!({"scope": ""})), Err("scope must not be empty")),
            (ok(json!({"scope": "env:prod}"})), Err("invalid scope")),
            (ok(json!({"scope": "env:(prod"})), Err("invalid scope")),
            (ok(json!({"scope": "a AND"})), Err("invalid scope")),
            (ok(json!({"scope": 3})), Err("scope must be a string")),
            (
                obj(json!({"monitor_identifier": {"monitor_id": 1}})),
                Err("scope is required"),
            ),
            (
                obj(json!({"scope": "*"})),
                Err("monitor_identifier is required"),
            ),
            (
                ok(json!({"monitor_identifier": {"monitor_tags": ["team:a"]}})),
                Ok(()),
            ),
            (
                ok(json!({"monitor_identifier": {"monitor_tags": ["*"]}})),
                Ok(()),
            ),
            (
                ok(json!({"monitor_identifier": {"monitor_id": 1, "monitor_tags": ["a"]}})),
                Err("exactly one of monitor_id and monitor_tags"),
            ),
            (ok(json!({"monitor_identifier": {}})), Err("exactly one of")),
            (
                ok(json!({"monitor_identifier": 1})),
                Err("monitor_identifier must be an object"),
            ),
            (
                ok(json!({"monitor_identifier": {"monitor_id": 0}})),
                Err("positive integer"),
            ),
            (
                ok(json!({"monitor_identifier": {"monitor_id": "1"}})),
                Err("positive integer"),
            ),
            (
                ok(json!({"monitor_identifier": {"monitor_tags": []}})),
                Err("must not be empty"),
            ),
            (
                ok(json!({"monitor_identifier": {"monitor_tags": [""]}})),
                Err("non-empty strings"),
            ),
            (
                ok(
                    json!({"schedule": {"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T01:00:00+00:00"}}),
                ),
                Ok(()),
            ),
            (
                ok(json!({"schedule": {"start": "2024-01-01T00:00:00", "end": null}})),
                Ok(()),
            ),
            (ok(json!({"schedule": {"start": null}})), Ok(())),
            (
                ok(
                    json!({"schedule": {"start": "2024-01-01T01:00:00Z", "end": "2024-01-01T00:00:00Z"}}),
                ),
                Err("schedule.end (2024-01-01T00:00:00Z) must be after schedule.start"),
            ),
            (
                ok(
                    json!({"schedule": {"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T00:00:00Z"}}),
                ),
                Err("must be after"),
            ),
            (
                ok(json!({"schedule": {"start": "yesterday"}})),
                Err("schedule.start: \"yesterday\""),
            ),
            (
                ok(json!({"schedule": {"end": 5}})),
                Err("schedule.end must be a time string"),
            ),
            (
                ok(json!({"schedule": {"recurrences": [{"rrule": "FREQ=DAILY"}]}})),
                Err("schedule.recurrences"),
            ),
            (
                ok(json!({"schedule": "now"})),
                Err("schedule must be an object"),
            ),
            (ok(json!({"message": 1})), Err("message must be a string")),
            (
                ok(json!({"message": null, "display_timezone": "Europe/Paris"})),
                Ok(()),
            ),
            (ok(json!({"display_timezone": ""})), Err("display_timezone")),
            (
                ok(json!({"mute_first_recovery_notification": "yes"})),
                Err("must be a boolean"),
            ),
            (
                ok(json!({"notify_end_states": ["alert", "no data"]})),
                Ok(()),
            ),
            (
                ok(json!({"notify_end_states": ["ok"]})),
                Err("notify_end_states must be a list of"),
            ),
            (ok(json!({"notify_end_types": ["canceled"]})), Ok(())),
            (
                ok(json!({"notify_end_types": "expired"})),
                Err("notify_end_types must be a list"),
            ),
        ];
        for (attrs, want) in cases {
            let got = apply_attributes(None, &attrs, T0);
            match (&got, want) {
                (Ok(_), Ok(())) => {}
                (Err(e), Err(frag)) => check(&attrs, e.contains(frag), true),
                _ => panic!("{attrs:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn defaults_and_update() {
        let attrs = obj(json!({"scope": "env:prod", "monitor_identifier": {"monitor_id": 7}}));
        let created = apply_attributes(None, &attrs, T0).unwrap();
        let mut stored = created.clone();
        stored.insert("id".into(), json!("x"));
        check(
            "create",
            render(&stored, T0),
            json!({"id": "x", "type": "downtime", "attributes": {
                "scope": "env:prod", "monitor_identifier": {"monitor_id": 7},
                "schedule": {"start": "2024-01-01T00:00:00Z", "end": null},
                "display_timezone": "UTC", "mute_first_recovery_notification": false,
                "notify_end_states": ["alert", "no data", "warn"], "notify_end_types": ["expired"],
                "created": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z",
                "canceled": null, "status": "active"}}),
        );
        // A partial update keeps the rest; `end` before the kept start is refused.
        let patch = obj(json!({"schedule": {"end": "2024-01-01T02:00:00Z"}, "message": "m"}));
        let updated = apply_attributes(Some(&stored), &patch, T0 + 60).unwrap();
        check(
            "update.schedule",
            updated["schedule"].clone(),
            json!({"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T02:00:00Z"}),
        );
        check("update.scope", updated["scope"].clone(), json!("env:prod"));
        check(
            "update.created",
            updated["created"].clone(),
            json!("2024-01-01T00:00:00Z"),
        );
        check(
            "update.modified",
            updated["modified"].clone(),
            json!("2024-01-01T00:01:00Z"),
        );
        let early = obj(json!({"schedule": {"end": "2023-12-31T00:00:00Z"}}));
        check(
            "update.early",
            apply_attributes(Some(&stored), &early, T0).is_err(),
            true,
        );
    }

    fn downtime(
        target: JsonValue,
        scope: &str,
        start: i64,
        end: Option<i64>,
        canceled: Option<i64>,
    ) -> DowntimeDoc {
        obj(json!({
            "id": "d", "scope": scope, "monitor_identifier": target,
            "schedule": {"start": format_time(start), "end": end.map(format_time)},
            "canceled": canceled.map(format_time),
        }))
    }

    #[test]
    fn status() {
        let h = 3600;
        // (start, end, canceled, now, status)
        let cases = [
            (T0, None, None, T0 - 1, DowntimeStatus::Scheduled),
            (T0, None, None, T0, DowntimeStatus::Active),
            (T0, None, None, T0 + 100 * h, DowntimeStatus::Active),
            (T0, Some(T0 + h), None, T0 + h - 1, DowntimeStatus::Active),
            (T0, Some(T0 + h), None, T0 + h, DowntimeStatus::Ended),
            (
                T0,
                Some(T0 + h),
                Some(T0 + 1),
                T0 + 2,
                DowntimeStatus::Canceled,
            ),
            (
                T0,
                Some(T0 + h),
                Some(T0 - 1),
                T0 - 2,
                DowntimeStatus::Canceled,
            ),
        ];
        for (i, (start, end, canceled, now, want)) in cases.into_iter().enumerate() {
            let d = Downtime::from_doc(&downtime(
                json!({"monitor_id": 1}),
                "*",
                start,
                end,
                canceled,
            ))
            .unwrap();
            check(i, d.status(now), want);
            let rendered = render(
                &downtime(json!({"monitor_id": 1}), "*", start, end, canceled),
                now,
            );
            check(
                i,
                rendered["attributes"]["status"].clone(),
                json!(want.as_str()),
            );
        }
    }

    #[test]
    fn mutes() {
        let h = 3600;
        let id = |n: u64| json!({ "monitor_id": n });
        let tags = |t: &[&str]| json!({ "monitor_tags": t });
        // (target, scope, end, monitor id, monitor tags, group tags, now, muted)
        type Case<'a> = (
            JsonValue,
            &'a str,
            Option<i64>,
            u64,
            &'a [&'a str],
            &'a [&'a str],
            i64,
            bool,
        );
        let cases: Vec<Case> = vec![
            (id(1), "*", None, 1, &[], &[], T0, true),
            (id(1), "*", None, 2, &[], &[], T0, false),
            (id(1), "*", None, 1, &[], &["host:a"], T0 - 1, false), // scheduled
            (id(1), "*", Some(T0 + h), 1, &[], &["host:a"], T0 + h, false), // ended
            (id(1), "host:a", None, 1, &[], &["host:a"], T0, true),
            (id(1), "host:a", None, 1, &[], &["host:b"], T0, false),
            (id(1), "host:a", None, 1, &[], &[], T0, false),
            (
                id(1),
                "host:a*",
                None,
                1,
                &[],
                &["host:ab", "env:prod"],
                T0,
                true,
            ),
            (
                id(1),
                "env:prod,host:a",
                None,
                1,
                &[],
                &["host:a", "env:prod"],
                T0,
                true,
            ),
            (
                id(1),
                "env:prod host:a",
                None,
                1,
                &[],
                &["host:a", "env:dev"],
                T0,
                false,
            ),
            (
                id(1),
                "host:a OR host:b",
                None,
                1,
                &[],
                &["host:b"],
                T0,
                true,
            ),
            (id(1), "!host:a", None, 1, &[], &["host:b"], T0, true),
            (
                tags(&["team:a"]),
                "*",
                None,
                9,
                &["team:a", "svc:x"],
                &[],
                T0,
                true,
            ),
            (
                tags(&["team:a", "svc:y"]),
                "*",
                None,
                9,
                &["team:a", "svc:x"],
                &[],
                T0,
                false,
            ),
            (tags(&["team:a"]), "*", None, 9, &[], &[], T0, false),
            (tags(&["*"]), "*", None, 9, &[], &[], T0, true),
            (tags(&["*"]), "host:a", None, 9, &[], &["host:c"], T0, false),
        ];
        for (i, (target, scope, end, mid, mtags, gtags, now, want)) in cases.into_iter().enumerate()
        {
            let doc = downtime(target, scope, T0, end, None);
            check(i, downtime_mutes(&doc, mid, mtags, gtags, now), want);
        }
        // Canceled, or not a downtime at all: mutes nothing.
        let canceled = downtime(id(1), "*", T0, None, Some(T0));
        check(
            "canceled",
            downtime_mutes(&canceled, 1, &[], &[], T0 + 1),
            false,
        );
        check(
            "garbage",
            downtime_mutes(&obj(json!({"id": "x"})), 1, &[], &[], T0),
            false,
        );
    }

    fn app() -> Router {
        downtimes_router(Arc::new(DowntimeState {
            repo: Arc::new(MemoryDowntimes::default()),
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
        let json = if bytes.is_empty() {
            JsonValue::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, json)
    }

    fn create_body(attrs: JsonValue) -> JsonValue {
        json!({"data": {"type": "downtime", "attributes": attrs}})
    }

    #[tokio::test]
    async fn routes() {
        let app = app();
        let (s, a) = call(&app, Method::POST, DOWNTIMES_PATH, Some(create_body(json!({
            "scope": "host:a", "monitor_identifier": {"monitor_id": 123}, "message": "maintenance"})))).await;
        check(
            "create id",
            (s, a["data"]["attributes"]["status"].clone()),
            (StatusCode::OK, json!("active")),
        );
        let a_id = a["data"]["id"].as_str().unwrap().to_string();
        check(
            "create message",
            a["data"]["attributes"]["message"].clone(),
            json!("maintenance"),
        );
        let (s, b) = call(
            &app,
            Method::POST,
            DOWNTIMES_PATH,
            Some(create_body(json!({
            "scope": "*", "monitor_identifier": {"monitor_tags": ["team:a"]},
            "schedule": {"start": "2999-01-01T00:00:00Z", "end": null}}))),
        )
        .await;
        check(
            "create tags",
            (s, b["data"]["attributes"]["status"].clone()),
            (StatusCode::OK, json!("scheduled")),
        );
        let b_id = b["data"]["id"].as_str().unwrap().to_string();

        let one = |id: &str| format!("{DOWNTIMES_PATH}/{id}");
        let (s, got) = call(&app, Method::GET, &one(&a_id), None).await;
        check(
            "get",
            (s, got["data"].clone()),
            (StatusCode::OK, a["data"].clone()),
        );

        let (s, list) = call(&app, Method::GET, DOWNTIMES_PATH, None).await;
        check(
            "list",
            (s, list["meta"]["page"]["total_filtered_count"].clone()),
            (StatusCode::OK, json!(2)),
        );
        let (_, cur) = call(
            &app,
            Method::GET,
            &format!("{DOWNTIMES_PATH}?current_only=true"),
            None,
        )
        .await;
        check("current_only", cur["data"].as_array().unwrap().len(), 1);
        let (_, page) = call(
            &app,
            Method::GET,
            &format!("{DOWNTIMES_PATH}?page%5Boffset%5D=1&page%5Blimit%5D=1"),
            None,
        )
        .await;
        check("page", page["data"][0]["id"].clone(), json!(b_id));

        let patch = json!({"data": {"type": "downtime", "id": a_id, "attributes": {"schedule": {"end": "2999-06-01T00:00:00Z"}}}});
        let (s, up) = call(&app, Method::PATCH, &one(&a_id), Some(patch)).await;
        check(
            "patch",
            (s, up["data"]["attributes"]["schedule"]["end"].clone()),
            (StatusCode::OK, json!("2999-06-01T00:00:00Z")),
        );
        check(
            "patch keeps",
            up["data"]["attributes"]["scope"].clone(),
            json!("host:a"),
        );

        let (s, _) = call(&app, Method::DELETE, &one(&a_id), None).await;
        check("cancel", s, StatusCode::NO_CONTENT);
        let (_, got) = call(&app, Method::GET, &one(&a_id), None).await;
        check(
            "canceled",
            got["data"]["attributes"]["status"].clone(),
            json!("canceled"),
        );
        check(
            "canceled at",
            got["data"]["attributes"]["canceled"].is_string(),
            true,
        );
        let (s, _) = call(&app, Method::DELETE, &one(&a_id), None).await;
        check("cancel again", s, StatusCode::NO_CONTENT);

        // Errors.
        let cases: Vec<(Method, String, Option<JsonValue>, StatusCode, &str)> = vec![
            (
                Method::POST,
                DOWNTIMES_PATH.into(),
                Some(create_body(
                    json!({"scope": "host:(a", "monitor_identifier": {"monitor_id": 1}}),
                )),
                StatusCode::BAD_REQUEST,
                "invalid scope",
            ),
            (
                Method::POST,
                DOWNTIMES_PATH.into(),
                Some(json!({"scope": "*"})),
                StatusCode::BAD_REQUEST,
                "data is required",
            ),
            (
                Method::POST,
                DOWNTIMES_PATH.into(),
                Some(json!({"data": {"type": "monitor", "attributes": {}}})),
                StatusCode::BAD_REQUEST,
                "data.type",
            ),
            (
                Method::GET,
                one("nope"),
                None,
                StatusCode::NOT_FOUND,
                "downtime nope not found",
            ),
            (
                Method::DELETE,
                one("nope"),
                None,
                StatusCode::NOT_FOUND,
                "downtime nope not found",
            ),
            (
                Method::PATCH,
                one("nope"),
                Some(create_body(json!({}))),
                StatusCode::NOT_FOUND,
                "not found",
            ),
            (
                Method::PATCH,
                one(&a_id),
                Some(create_body(json!({"message": "x"}))),
                StatusCode::BAD_REQUEST,
                "is canceled",
            ),
            (
                Method::PATCH,
                one(&b_id),
                Some(json!({"data": {"type": "downtime", "id": "other", "attributes": {}}})),
                StatusCode::BAD_REQUEST,
                "does not match",
            ),
            (
                Method::PATCH,
                one(&b_id),
                Some(create_body(
                    json!({"schedule": {"end": "2998-01-01T00:00:00Z"}}),
                )),
                StatusCode::BAD_REQUEST,
                "schedule.end",
            ),
            (
                Method::GET,
                format!("{DOWNTIMES_PATH}?current_only=maybe"),
                None,
                StatusCode::BAD_REQUEST,
                "current_only",
            ),
            (
                Method::GET,
                format!("{DOWNTIMES_PATH}?page%5Blimit%5D=0"),
                None,
                StatusCode::BAD_REQUEST,
                "page[limit]",
            ),
        ];
        for (method, uri, body, status, frag) in cases {
            let case = format!("{method} {uri}");
            let (s, j) = call(&app, method, &uri, body).await;
            let msg = j["errors"][0].as_str().unwrap_or_default().to_string();
            check(&case, (s, msg.contains(frag)), (status, true));
        }
    }
}

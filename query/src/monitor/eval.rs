//! The monitor evaluator (SPEC §7, issue #5): [`evaluate_all`] runs one evaluation cycle over every stored
//! monitor, advances its per-group states with [`state::step`], persists them with the transitions through
//! a [`MonitorStateRepo`], and records every status change as an event (`source:event`) through a
//! [`LogSink`]. The server calls it every `--alerts-eval-interval`.
//!
//! What a monitor's value per group is, over the window `[now − evaluation_delay − window,
//! now − evaluation_delay)`:
//! - `metric alert`: the metric query is evaluated over the window; each result series (one per `by` group,
//!   named `host:a,env:prod` from its tags, or `*` without `by`) is reduced with the time aggregation
//!   (`avg`, `sum`, `min`, `max`) over its non-empty points; a series without points has no data.
//!   - `percentile(last_…)`: the query (`pNN:<distribution>…`) is evaluated as one bucket over the whole
//!     window, so the percentile is that of every sample of the window.
//!   - `sum(last_…)` of a query reading counts with `.as_count()`: also one bucket, so each count is summed
//!     over the window before the arithmetic (`errors / hits` is the window's error rate), as Datadog
//!     evaluates `as_count()` monitors.
//!   - `change(agg(last_W), S)`: the value over the window minus the value over the same window `S`
//!     earlier; `pct_change`: that difference in percent of the earlier value (no data when the earlier
//!     value is 0 or missing).
//!   - `require_full_window: true`: a group whose series has no point in the window's first interval (it
//!     started reporting inside the window) is not evaluated this cycle; its state stays as it was.
//! - `log alert` and `trace-analytics alert`: the search is aggregated over the window (log analytics, or
//!   span analytics over the span store) with the rollup (`count`, `cardinality`, `avg`, …) per `.by(…)`
//!   facet (`service:web,host:a`, or `*`); with `count`, a known group (or the single group without `by`)
//!   with no records counts 0, so it recovers; with other rollups it has no data.
//!
//! Events: `[Triggered] <name>` (Alert, `alert_type` error), `[Warn] <name>` (warning), `[Recovered] <name>`
//! (OK, success), `[No Data] <name>` (warning), tagged `monitor_id:<id>` and the group's tags, with the group,
//! the value and the statuses as attributes. Renotifications (same status) are kept in the history only.
//!
//! History entries are the serialized [`Transition`]s: `{group, from, to, value, ts, notify, renotify,
//! from_since_ts}` (plus `"auto_resolved": true` on a recovery of a group silent for `timeout_h`, whose event
//! text says so), with `"muted": true` when an active downtime ([`downtime_mutes`]) mutes a transition to
//! notify, and `"downtime_ended": true` on the notification sent when the downtime that muted a group ends
//! (expires, or is canceled: its `notify_end_types`, by default only `expired`) while the group is in one of
//! its `notify_end_states` (by default alert, warn, no data), as Datadog does. A group's state names the
//! downtime muting it (`downtime`).
//!
//! Groups that stop reporting: after each step, [`state::expire`] removes the OK groups without data for
//! longer than the [`StateCache`]'s group expiry (`--alerts-group-expiry`, default a day; No Data and
//! Alert/Warn groups stay), without event, history entry or notification; a removal is a change, so the
//! states are written at once and a restart does not bring the group back. For a `count` log or
//! trace-analytics monitor, the 0 given to a known group without records does not count as new data.
//!
//! Persistence: the evaluator works on its own copy of the group states ([`StateCache`]) and writes a
//! monitor's states only when something other than the last value changed (a transition, a new group, a
//! mute flag), or otherwise at least every [`CHECKPOINT_SECS`] (a period per monitor, spread between half and
//! all of it so that checkpoints do not all fall in one cycle), and at shutdown ([`checkpoint`]): a restart
//! may see last values (and the last time data was seen) up to that old, never an older status.
//!
//! Notifications: the transitions to notify that no downtime mutes, of monitors whose message mentions a
//! webhook, are queued in the monitor's outbox in the same write as the states, then handed to the
//! [`Notifier`] on a spawned task (a slow receiver does not delay evaluation); the notifier removes each
//! from the outbox when its delivery is over, and [`resume_deliveries`] re-sends what a restart left
//! there. See [`super::notify`].

#[cfg(doc)]
use super::downtimes_http::downtime_mutes;
use super::downtimes_http::Downtime;
use super::notify::{mentions, Notification, Notifier};
use super::state::{self, GroupState, MonitorStatus, Observed, Rules, Transition};
use super::{parse_monitor_query, Change, EventSource, MonitorQuery, Rollup, TimeAgg};
use crate::eval::{evaluate, evaluate_window, EvalOptions};
use crate::logsearch::parse_search;
use crate::spans::{aggregate, AggregateLimits, SpanAggregate, SpanFilter, SpanGroupBy};
use serde_json::{json, Map, Value as JsonValue};
use sightline_model::{LogBatch, LogRecord, LogSink};
use sightline_storage::{
    AggBucket, Compute, ComputeValue, DowntimeRepo, GroupBy, GroupSort, LogAggregate, LogReader,
    Measure, MetricReader, MonitorDoc, MonitorId, MonitorRepo, MonitorStateRepo, MonitorStates,
    SpanReader, StorageError,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The group name of a monitor without `by`.
pub const NO_GROUP: &str = "*";
/// Most groups a log or trace-analytics monitor's `.by(…)` facet keeps.
const MAX_EVENT_GROUPS: u32 = 10_000;
/// Longest time a monitor's states go unwritten while only their values change (each monitor has its own
/// period between half and all of it).
pub const CHECKPOINT_SECS: i64 = 600;
const NS: i64 = 1_000_000_000;

/// What the evaluator reads and writes.
pub struct EvalContext {
    pub monitors: Arc<dyn MonitorRepo>,
    pub states: Arc<dyn MonitorStateRepo>,
    pub metrics: Arc<dyn MetricReader>,
    /// `None`: log monitors are skipped.
    pub logs: Option<Arc<dyn LogReader>>,
    /// `None`: trace-analytics monitors are skipped.
    pub spans: Option<Arc<dyn SpanReader>>,
    /// Where transition events go.
    pub events: Arc<dyn LogSink>,
    pub options: EvalOptions,
    /// Downtimes muting notifications; `None`: nothing is muted.
    pub downtimes: Option<Arc<dyn DowntimeRepo>>,
    /// Where notifications go; `None`: none are sent.
    pub notifier: Option<Arc<Notifier>>,
    /// The evaluator's working copy of the group states (shared with the API, which shows live values).
    pub cache: Arc<StateCache>,
}

/// Default of how long an OK group may go without data before it is removed from its monitor's states
/// (`--alerts-group-expiry`): a day.
pub const DEFAULT_GROUP_EXPIRY_SECS: i64 = 86_400;

/// The group states the evaluator works on, by monitor, ahead of what was last written, and how long it
/// keeps an OK group that stopped reporting ([`state::expire`]).
#[derive(Debug)]
pub struct StateCache {
    inner: Mutex<HashMap<MonitorId, Cached>>,
    /// `None`: groups never expire.
    group_expiry_secs: Option<i64>,
}

impl Default for StateCache {
    /// Groups expire after [`DEFAULT_GROUP_EXPIRY_SECS`].
    fn default() -> Self {
        StateCache::with_group_expiry(Some(DEFAULT_GROUP_EXPIRY_SECS))
    }
}

#[derive(Debug)]
struct Cached {
    groups: BTreeMap<String, GroupState>,
    /// When they were last written.
    saved_ts: i64,
    /// Whether they changed since.
    dirty: bool,
}

impl StateCache {
    /// An empty cache whose monitors drop their OK groups without data for more than `secs` seconds
    /// (`None`: never).
    pub fn with_group_expiry(secs: Option<i64>) -> StateCache {
        StateCache {
            inner: Mutex::default(),
            group_expiry_secs: secs,
        }
    }

    /// The live group states of a monitor as JSON (the shape [`MonitorStateRepo`] stores), if the evaluator
    /// holds them.
    pub fn groups_json(&self, id: MonitorId) -> Option<JsonValue> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .get(&id)
            .and_then(|c| serde_json::to_value(&c.groups).ok())
    }

    fn take(&self, id: MonitorId) -> Option<Cached> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    }

    fn put(&self, id: MonitorId, c: Cached) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, c);
    }

    fn retain(&self, live: &BTreeSet<MonitorId>) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, _| live.contains(id));
    }

    fn ids(&self) -> Vec<MonitorId> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.keys().copied().collect()
    }
}

/// The state repository as the API shows it: the stored states, with the evaluator's live group states
/// (fresher last values than the last write) in place of the stored ones.
pub struct LiveStates {
    pub stored: Arc<dyn MonitorStateRepo>,
    pub cache: Arc<StateCache>,
}

impl MonitorStateRepo for LiveStates {
    fn get(&self, id: MonitorId) -> Option<MonitorStates> {
        let mut s = self.stored.get(id)?;
        if let Some(groups) = self.cache.groups_json(id) {
            s.groups = groups;
        }
        Some(s)
    }

    fn save_with_pending(
        &self,
        id: MonitorId,
        groups: JsonValue,
        transitions: Vec<JsonValue>,
        pending: Vec<JsonValue>,
    ) -> Result<(), StorageError> {
        self.stored
            .save_with_pending(id, groups, transitions, pending)
    }

    fn record_attempts(
        &self,
        id: MonitorId,
        attempts: Vec<JsonValue>,
        done: Option<&str>,
    ) -> Result<(), StorageError> {
        self.stored.record_attempts(id, attempts, done)
    }

    fn pending(&self) -> Vec<(MonitorId, JsonValue)> {
        self.stored.pending()
    }

    fn remove(&self, id: MonitorId) -> Result<(), StorageError> {
        self.stored.remove(id)
    }

    fn ids(&self) -> Vec<MonitorId> {
        self.stored.ids()
    }
}

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// Monitors whose states were advanced.
    pub evaluated: usize,
    /// Monitors of a kind not evaluated here (no log or span store).
    pub skipped: usize,
    /// Monitors whose query or storage failed (logged).
    pub failed: usize,
    /// Transitions recorded (status changes and renotifications).
    pub transitions: usize,
    /// Events written.
    pub events: usize,
    /// Transitions handed to the notifier (delivered in the background).
    pub notifications: usize,
    /// Transitions to notify muted by a downtime.
    pub muted: usize,
    /// Monitors whose states were written.
    pub saved: usize,
}

/// Runs one evaluation cycle at `now_ts` (unix seconds) over every monitor. Errors of one monitor are
/// logged and counted; they do not stop the others.
pub async fn evaluate_all(ctx: &Arc<EvalContext>, now_ts: i64) -> CycleReport {
    let c = ctx.clone();
    let joined = tokio::task::spawn_blocking(move || cycle(&c, now_ts)).await;
    let (mut report, records, notifications) = match joined {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "the monitor evaluation cycle panicked");
            return CycleReport::default();
        }
    };
    if !records.is_empty() {
        let n = records.len();
        match ctx.events.write_logs(LogBatch { records }).await {
            Ok(_) => report.events = n,
            Err(e) => tracing::warn!(error = %e, "cannot record {n} monitor events"),
        }
    }
    if let Some(notifier) = &ctx.notifier {
        if !notifications.is_empty() {
            report.notifications = notifications.len();
            notifier.enqueue(notifications);
        }
    }
    report
}

/// Re-sends the notifications a previous run queued but did not finish delivering (call once at start).
/// Returns how many.
pub fn resume_deliveries(ctx: &EvalContext) -> usize {
    let Some(notifier) = &ctx.notifier else {
        return 0;
    };
    let pending: Vec<Notification> = ctx
        .states
        .pending()
        .into_iter()
        .filter_map(|(id, p)| Notification::from_pending(id, &p))
        .collect();
    let n = pending.len();
    if n > 0 {
        tracing::info!("re-sending {n} monitor notifications left undelivered by the last run");
        notifier.enqueue(pending);
    }
    n
}

/// Writes every monitor's states that changed since they were last written (call at shutdown).
pub fn checkpoint(ctx: &EvalContext) {
    for id in ctx.cache.ids() {
        let Some(mut c) = ctx.cache.take(id) else {
            continue;
        };
        if c.dirty {
            match serde_json::to_value(&c.groups) {
                Ok(groups) => match ctx.states.save(id, groups, Vec::new()) {
                    Ok(()) => c.dirty = false,
                    Err(e) => {
                        tracing::warn!(monitor_id = id, error = %e, "cannot save monitor states")
                    }
                },
                Err(e) => {
                    tracing::warn!(monitor_id = id, error = %e, "cannot encode monitor states")
                }
            }
        }
        ctx.cache.put(id, c);
    }
}

/// The blocking part of a cycle: values, states, persistence; returns the events to write and the
/// notifications to send.
fn cycle(ctx: &EvalContext, now_ts: i64) -> (CycleReport, Vec<LogRecord>, Vec<Notification>) {
    let mut report = CycleReport::default();
    let mut records = Vec::new();
    let mut notifications = Vec::new();
    let downtimes: Vec<Downtime> = ctx
        .downtimes
        .as_ref()
        .map(|r| r.list().iter().filter_map(Downtime::from_doc).collect())
        .unwrap_or_default();
    let docs = ctx.monitors.list();
    let live: BTreeSet<MonitorId> = docs.iter().filter_map(doc_id).collect();
    for id in ctx.states.ids() {
        if !live.contains(&id) {
            if let Err(e) = ctx.states.remove(id) {
                tracing::warn!(monitor_id = id, error = %e, "cannot forget a deleted monitor's states");
            }
        }
    }
    ctx.cache.retain(&live);
    for doc in &docs {
        let Some(id) = doc_id(doc) else { continue };
        match evaluate_monitor(ctx, id, doc, now_ts, &downtimes) {
            Ok(Outcome::Skipped) => report.skipped += 1,
            Ok(Outcome::Done(done)) => {
                report.evaluated += 1;
                report.transitions += done.transitions.len();
                report.muted += done.muted;
                report.saved += usize::from(done.saved);
                let name = doc.get("name").and_then(JsonValue::as_str).unwrap_or("");
                records.extend(
                    done.transitions
                        .iter()
                        .filter(|t| t.from != t.to)
                        .map(|t| event_record(id, name, t)),
                );
                notifications.extend(done.notifications);
            }
            Err(e) => {
                report.failed += 1;
                tracing::warn!(monitor_id = id, error = %e, "cannot evaluate the monitor");
            }
        }
    }
    (report, records, notifications)
}

fn doc_id(doc: &MonitorDoc) -> Option<MonitorId> {
    doc.get("id").and_then(JsonValue::as_u64)
}

enum Outcome {
    Skipped,
    Done(Done),
}

/// What evaluating one monitor did.
struct Done {
    transitions: Vec<Transition>,
    /// Transitions to notify muted by a downtime.
    muted: usize,
    /// Queued in the outbox, to deliver.
    notifications: Vec<Notification>,
    /// Whether the states were written.
    saved: bool,
}

/// The active downtime that mutes the group of monitor `id`, if any.
fn muting<'a>(
    downtimes: &'a [Downtime],
    id: MonitorId,
    doc: &MonitorDoc,
    group: &str,
    now: i64,
) -> Option<&'a Downtime> {
    if downtimes.is_empty() {
        return None;
    }
    let monitor_tags: Vec<&str> = doc
        .get("tags")
        .and_then(JsonValue::as_array)
        .map(|a| a.iter().filter_map(JsonValue::as_str).collect())
        .unwrap_or_default();
    let group_tags: Vec<&str> = if group == NO_GROUP {
        Vec::new()
    } else {
        group.split(',').collect()
    };
    downtimes
        .iter()
        .find(|d| d.mutes(id, &monitor_tags, &group_tags, now))
}

fn evaluate_monitor(
    ctx: &EvalContext,
    id: MonitorId,
    doc: &MonitorDoc,
    now_ts: i64,
    downtimes: &[Downtime],
) -> Result<Outcome, String> {
    let kind = doc.get("type").and_then(JsonValue::as_str).unwrap_or("");
    let text = doc.get("query").and_then(JsonValue::as_str).unwrap_or("");
    let query = parse_monitor_query(kind, text).map_err(|e| e.to_string())?;
    let empty = Map::new();
    let options = doc
        .get("options")
        .and_then(JsonValue::as_object)
        .unwrap_or(&empty);
    let delay = options
        .get("evaluation_delay")
        .and_then(JsonValue::as_i64)
        .unwrap_or(0)
        .max(0);
    let full_window = options
        .get("require_full_window")
        .and_then(JsonValue::as_bool)
        .unwrap_or(false);
    let to = now_ts.saturating_sub(delay);
    let Some(mut values) = values(ctx, &query, to, full_window)? else {
        return Ok(Outcome::Skipped);
    };
    let rules = Rules::from_options(&query, options);
    let mut cached = match ctx.cache.take(id) {
        Some(c) => c,
        None => Cached {
            groups: ctx
                .states
                .get(id)
                .and_then(|s| serde_json::from_value(s.groups).ok())
                .unwrap_or_default(),
            saved_ts: now_ts,
            dirty: false,
        },
    };
    let groups = &mut cached.groups;
    if matches!(
        query,
        MonitorQuery::Events {
            rollup: Rollup::Count,
            ..
        }
    ) {
        // No matching record is a count of 0, not missing data: a known group recovers. Its newest data
        // stays that of its last records, and it can still expire.
        for (g, st) in groups.iter() {
            if !values.values.contains_key(g) {
                values.values.insert(g.clone(), Some(0.0));
                let newest = st.last_data_ts.unwrap_or(st.first_seen_ts);
                values.newest_ts.insert(g.clone(), newest);
                values.filled.insert(g.clone());
            }
        }
    }
    let known = groups.len();
    let mut transitions = state::step(&rules, groups, &values, now_ts);
    let added = groups.len() != known;
    let expired = state::expire(
        groups,
        &values,
        &transitions,
        ctx.cache.group_expiry_secs,
        now_ts,
    );
    if !expired.is_empty() {
        tracing::debug!(
            monitor_id = id,
            groups = expired.len(),
            "groups without data removed from the monitor's states"
        );
    }
    let mut changed = !transitions.is_empty() || added || !expired.is_empty();
    let mut muted_count = 0;
    let mut history = Vec::with_capacity(transitions.len());
    for t in &mut transitions {
        let Ok(mut entry) = serde_json::to_value(&*t) else {
            continue;
        };
        if t.notify && muting(downtimes, id, doc, &t.group, now_ts).is_some() {
            entry["muted"] = JsonValue::Bool(true);
            t.notify = false;
            muted_count += 1;
        }
        history.push(entry);
    }
    // Which downtime mutes each group; when one ends, its `notify_end_*` lists say whether the group's
    // status is notified once more.
    if !downtimes.is_empty() || groups.values().any(|g| g.downtime.is_some()) {
        let stepped: BTreeSet<&str> = transitions.iter().map(|t| t.group.as_str()).collect();
        let mut ended = Vec::new();
        for (name, g) in groups.iter_mut() {
            let now_muting = muting(downtimes, id, doc, name, now_ts).map(|d| &d.id);
            if g.downtime.as_ref() == now_muting {
                continue;
            }
            changed = true;
            let before = std::mem::replace(&mut g.downtime, now_muting.cloned());
            let Some(before) = before.filter(|_| now_muting.is_none()) else {
                continue;
            };
            let status = match g.status {
                MonitorStatus::Alert => "alert",
                MonitorStatus::Warn => "warn",
                MonitorStatus::NoData => "no data",
                MonitorStatus::Ok => continue,
            };
            // A transition this cycle notifies by itself.
            let notifies = !stepped.contains(name.as_str())
                && downtimes
                    .iter()
                    .find(|d| d.id == before)
                    .is_some_and(|d| d.notifies_end(status, now_ts));
            if notifies {
                g.last_notified_ts = Some(now_ts);
                ended.push(Transition {
                    group: name.clone(),
                    from: g.status,
                    to: g.status,
                    value: g.last_value,
                    ts: now_ts,
                    notify: true,
                    renotify: false,
                    from_since_ts: g.since_ts,
                    auto_resolved: false,
                });
            }
        }
        for t in ended {
            if let Ok(mut entry) = serde_json::to_value(&t) {
                entry["downtime_ended"] = JsonValue::Bool(true);
                history.push(entry);
            }
            transitions.push(t);
        }
    }
    let message = doc.get("message").and_then(JsonValue::as_str).unwrap_or("");
    let notifications: Vec<Notification> =
        if ctx.notifier.is_some() && !mentions(message).is_empty() {
            transitions
                .iter()
                .filter(|t| t.notify)
                .map(|t| Notification::new(id, doc.clone(), t.clone()))
                .collect()
        } else {
            Vec::new()
        };
    cached.dirty = true;
    // Between half and all of CHECKPOINT_SECS, by monitor: monitors saved together (the first cycle) do
    // not all come due in the same later cycle.
    let every = CHECKPOINT_SECS - (id % (CHECKPOINT_SECS as u64 / 2)) as i64;
    let due = now_ts.saturating_sub(cached.saved_ts) >= every;
    let mut saved = false;
    if changed || due {
        let groups_json = serde_json::to_value(&cached.groups).map_err(|e| e.to_string())?;
        let pending = notifications.iter().map(Notification::to_pending).collect();
        if let Err(e) = ctx
            .states
            .save_with_pending(id, groups_json, history, pending)
        {
            // Not kept: the next cycle starts again from what was last written, so the transitions
            // happen (and are recorded and notified) again.
            return Err(e.to_string());
        }
        cached.saved_ts = now_ts;
        cached.dirty = false;
        saved = true;
    }
    ctx.cache.put(id, cached);
    Ok(Outcome::Done(Done {
        transitions,
        muted: muted_count,
        notifications,
        saved,
    }))
}

/// This cycle's value per group over the window ending at `to`; `None`: the monitor is not evaluated
/// (no store for its kind).
fn values(
    ctx: &EvalContext,
    query: &MonitorQuery,
    to: i64,
    full_window: bool,
) -> Result<Option<Observed>, String> {
    match query {
        MonitorQuery::Metric {
            time_agg,
            window_secs,
            change,
            query,
            ..
        } => {
            let window = |end: i64| {
                metric_values(ctx, *time_agg, query, end - window_secs, end, full_window)
            };
            let Some(c) = change else {
                return window(to).map(Some);
            };
            let (shift, pct) = match *c {
                Change::Change { shift_secs } => (shift_secs, false),
                Change::PctChange { shift_secs } => (shift_secs, true),
            };
            let mut now = window(to)?;
            let before = window(to - shift)?;
            now.values = now
                .values
                .iter()
                .map(|(g, v)| {
                    let old = before.values.get(g).copied().flatten();
                    let d = match (*v, old) {
                        (Some(v), Some(o)) if !pct => Some(v - o),
                        (Some(v), Some(o)) if o != 0.0 => Some((v - o) / o.abs() * 100.0),
                        _ => None,
                    };
                    (g.clone(), d)
                })
                .collect();
            Ok(Some(now))
        }
        MonitorQuery::Events {
            source,
            search,
            rollup,
            group_by,
            window_secs,
            ..
        } => {
            let (from_ns, to_ns) = ((to - window_secs).saturating_mul(NS), to.saturating_mul(NS));
            let values = match source {
                EventSource::Logs => {
                    let Some(logs) = &ctx.logs else {
                        return Ok(None);
                    };
                    event_values(rollup, group_by, |computes, group_by| {
                        let req = LogAggregate {
                            expr: parse_search(search).map_err(|e| e.to_string())?,
                            from_ns,
                            to_ns,
                            computes,
                            group_by,
                        };
                        logs.aggregate(&req).map_err(|e| e.to_string())
                    })?
                }
                EventSource::Spans => {
                    let Some(spans) = &ctx.spans else {
                        return Ok(None);
                    };
                    event_values(rollup, group_by, |computes, group_by| {
                        let expr = parse_search(search).map_err(|e| e.to_string())?;
                        let filter = SpanFilter::new(&expr).map_err(|e| e.to_string())?;
                        let req = SpanAggregate {
                            from_ns,
                            to_ns,
                            computes,
                            group_by: group_by
                                .into_iter()
                                .map(|g| SpanGroupBy {
                                    facet: g.facet,
                                    limit: g.limit,
                                    sort: g.sort,
                                    missing: None,
                                    total: None,
                                })
                                .collect(),
                        };
                        aggregate(spans.as_ref(), &filter, &req, AggregateLimits::default())
                            .map_err(|e| e.to_string())
                    })?
                }
            };
            Ok(Some(Observed {
                values,
                ..Observed::default()
            }))
        }
    }
}

/// Reduces each series of the metric query over `[from, to)` with the time aggregation (a percentile
/// monitor's query is evaluated as one bucket), with the end of the newest non-empty interval of each series
/// (capped at `to`). With `full_window`, a series without a point in the first interval of the window is
/// partial.
pub fn metric_values(
    ctx: &EvalContext,
    time_agg: TimeAgg,
    query: &str,
    from: i64,
    to: i64,
    full_window: bool,
) -> Result<Observed, String> {
    let parsed = crate::parser::parse(query).map_err(|e| e.to_string())?;
    let counts = parsed.exprs.iter().any(counts_events);
    let eval = if time_agg == TimeAgg::Percentile || (time_agg == TimeAgg::Sum && counts) {
        evaluate_window
    } else {
        evaluate
    };
    let out =
        eval(&parsed, from, to, ctx.metrics.as_ref(), &ctx.options).map_err(|e| e.to_string())?;
    let mut values = Observed::default();
    for s in out.series {
        let group = if s.tag_set.is_empty() {
            NO_GROUP.to_string()
        } else {
            s.tag_set.join(",")
        };
        let v = reduce(time_agg, s.points.iter().filter_map(|(_, v)| *v));
        let first_empty = s
            .points
            .first()
            .is_none_or(|(_, p)| p.is_none_or(f64::is_nan));
        if full_window && v.is_some() && first_empty {
            values.skip.insert(group.clone());
        }
        let newest = s
            .points
            .iter()
            .rev()
            .find(|(_, p)| p.is_some_and(|v| !v.is_nan()))
            .map(|(ts, _)| (ts + s.interval).min(to));
        if let Some(ts) = newest {
            values.newest_ts.insert(group.clone(), ts);
        }
        values.values.insert(group, v);
    }
    Ok(values)
}

/// Whether an expression reads a metric `.as_count()`: a `sum(last_…)` monitor of it sums each count over the
/// window before the arithmetic (Datadog's `as_count()` monitor semantics: `errors / hits` is the ratio of
/// the window's totals, not a sum of per-interval ratios).
fn counts_events(e: &crate::ast::Expr) -> bool {
    use crate::ast::ExprKind;
    match &e.kind {
        ExprKind::Number(_) => false,
        ExprKind::Metric(m) => m.as_count() == Some(true),
        ExprKind::Binary { lhs, rhs, .. } => counts_events(lhs) || counts_events(rhs),
        ExprKind::Neg(x) | ExprKind::Call { arg: x, .. } => counts_events(x),
    }
}

/// The time aggregation of the points (NaN ones ignored); `None` without points.
fn reduce(agg: TimeAgg, points: impl Iterator<Item = f64>) -> Option<f64> {
    let mut n = 0usize;
    let mut acc = match agg {
        TimeAgg::Min => f64::INFINITY,
        TimeAgg::Max => f64::NEG_INFINITY,
        _ => 0.0,
    };
    for v in points.filter(|v| !v.is_nan()) {
        n += 1;
        acc = match agg {
            TimeAgg::Min => acc.min(v),
            TimeAgg::Max => acc.max(v),
            _ => acc + v,
        };
    }
    if n == 0 {
        return None;
    }
    Some(match agg {
        TimeAgg::Avg | TimeAgg::Percentile => acc / n as f64,
        _ => acc,
    })
}

/// The rollup per `.by(…)` group of the records an aggregation (`run`, given the computes and the group
/// levels) finds; group names are `facet:value` joined by commas (`@` dropped), `*` without `by`.
fn event_values(
    rollup: &Rollup,
    group_by: &[String],
    run: impl FnOnce(Vec<Compute>, Vec<GroupBy>) -> Result<Vec<AggBucket>, String>,
) -> Result<BTreeMap<String, Option<f64>>, String> {
    let measure = match rollup {
        Rollup::Count => Measure::Count,
        Rollup::Cardinality(f) => Measure::Cardinality(f.clone()),
        Rollup::Avg(m) => Measure::Avg(m.clone()),
        Rollup::Sum(m) => Measure::Sum(m.clone()),
        Rollup::Min(m) => Measure::Min(m.clone()),
        Rollup::Max(m) => Measure::Max(m.clone()),
        Rollup::Pct(p, m) => Measure::Percentile(*p, m.clone()),
    };
    let computes = vec![Compute {
        measure,
        interval_ns: None,
    }];
    let levels = group_by
        .iter()
        .map(|facet| GroupBy {
            facet: facet.clone(),
            limit: MAX_EVENT_GROUPS,
            sort: GroupSort::Count { desc: true },
        })
        .collect();
    let buckets = run(computes, levels)?;
    let mut values = BTreeMap::new();
    for b in buckets {
        let group = if b.by.is_empty() {
            NO_GROUP.to_string()
        } else {
            b.by.iter()
                .map(|(facet, v)| {
                    let v = match v {
                        JsonValue::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    format!("{}:{v}", facet.trim_start_matches('@'))
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let v = match b.computes.first() {
            Some(ComputeValue::Total(v)) => *v,
            _ => None,
        };
        values.insert(group, v);
    }
    if group_by.is_empty() && matches!(rollup, Rollup::Count) {
        values.entry(NO_GROUP.to_string()).or_insert(Some(0.0));
    }
    Ok(values)
}

/// `[Triggered]`, `[Warn]`, `[Recovered]`, `[No Data]` and the event's `alert_type`.
fn transition_kind(to: MonitorStatus) -> (&'static str, &'static str) {
    match to {
        MonitorStatus::Alert => ("Triggered", "error"),
        MonitorStatus::Warn => ("Warn", "warning"),
        MonitorStatus::Ok => ("Recovered", "success"),
        MonitorStatus::NoData => ("No Data", "warning"),
    }
}

/// The event of a status change, as the log record an event is stored as (`source:event`).
pub fn event_record(id: MonitorId, name: &str, t: &Transition) -> LogRecord {
    let (label, alert_type) = transition_kind(t.to);
    let title = format!("[{label}] {name}");
    let value = t
        .value
        .map_or_else(|| "no data".to_string(), |v| v.to_string());
    let mut text = format!(
        "{} changed from {} to {} (value: {value})",
        t.group, t.from, t.to
    );
    if t.auto_resolved {
        text.push_str(", resolved after timeout_h without data");
    }
    let mut r = LogRecord::new(t.ts.saturating_mul(NS), format!("{title}\n{text}"));
    r.source = Some("event".into());
    r.status = match alert_type {
        "error" => "error",
        "warning" => "warning",
        _ => "ok",
    }
    .into();
    r.tags.push(format!("monitor_id:{id}"));
    if t.group != NO_GROUP {
        r.tags.extend(t.group.split(',').map(str::to_string));
        if let Some(host) = t.group.split(',').find_map(|tag| tag.strip_prefix("host:")) {
            r.host = Some(host.to_string());
        }
    }
    r.normalize_tags();
    let a = &mut r.attributes;
    a.insert("title".into(), title.into());
    a.insert("text".into(), text.into());
    a.insert("alert_type".into(), alert_type.into());
    a.insert("source_type_name".into(), "monitor".into());
    let mut monitor = json!({
        "id": id,
        "group": t.group,
        "from": t.from.as_str(),
        "to": t.to.as_str(),
        "value": t.value,
    });
    if t.auto_resolved {
        monitor["auto_resolved"] = JsonValue::Bool(true);
    }
    a.insert("monitor".into(), monitor);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::model::{check_create, creator};
    use sightline_model::{
        Limits, MemorySink, MetricBatch, MetricKind, MetricPoint, SeriesKey, TagSet, Value,
    };
    use sightline_storage::{MemMetricStore, MemoryMonitorStates, MemoryMonitors};

    fn gauge(host: &str, ts: i64, v: f64) -> MetricPoint {
        let tags = [format!("host:{host}")];
        MetricPoint {
            series: SeriesKey::new(
                "e2e.cpu",
                TagSet::parse(tags.iter().map(String::as_str), 100, 200).unwrap(),
            ),
            kind: MetricKind::Gauge,
            timestamp: ts,
            interval: 10,
            value: Value::Scalar(v),
        }
    }

    struct Fixture {
        ctx: Arc<EvalContext>,
        metrics: Arc<MemMetricStore>,
        sink: Arc<MemorySink>,
        id: MonitorId,
    }

    fn fixture(query: &str) -> Fixture {
        let monitors = Arc::new(MemoryMonitors::default());
        let def = check_create(&json!({"name": "cpu high", "type": "metric alert",
            "query": query, "message": "m"}))
        .unwrap();
        let doc = monitors.create(def.to_doc("a", "a", &creator())).unwrap();
        let metrics = Arc::new(MemMetricStore::new(Limits::default()));
        let sink = Arc::new(MemorySink::default());
        let ctx = Arc::new(EvalContext {
            monitors,
            states: Arc::new(MemoryMonitorStates::default()),
            metrics: metrics.clone(),
            logs: None,
            spans: None,
            cache: Default::default(),
            events: sink.clone(),
            options: EvalOptions::default(),
            downtimes: None,
            notifier: None,
        });
        Fixture {
            ctx,
            metrics,
            sink,
            id: doc_id(&doc).unwrap(),
        }
    }

    fn statuses(f: &Fixture) -> BTreeMap<String, String> {
        let s = f.ctx.states.get(f.id).unwrap();
        s.groups
            .as_object()
            .unwrap()
            .iter()
            .map(|(g, st)| (g.clone(), st["status"].as_str().unwrap().to_string()))
            .collect()
    }

    fn titles(f: &Fixture) -> Vec<String> {
        f.sink
            .logs
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b.records.iter())
            .map(|r| {
                let host = r.host.clone().unwrap_or_default();
                format!("{} {host}", r.attributes["title"].as_str().unwrap())
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multi_alert_by_host_fires_and_recovers() {
        let f = fixture("max(last_1m):max:e2e.cpu{*} by {host} > 80");
        let now = 1_700_000_100;
        f.metrics.apply(&MetricBatch {
            points: vec![gauge("a", now - 20, 95.0), gauge("b", now - 20, 10.0)],
        });
        let r = evaluate_all(&f.ctx, now).await;
        assert_eq!((r.evaluated, r.transitions, r.events), (1, 1, 1), "{r:?}");
        let want: BTreeMap<String, String> = [("host:a", "Alert"), ("host:b", "OK")]
            .iter()
            .map(|(g, s)| (g.to_string(), s.to_string()))
            .collect();
        assert_eq!(statuses(&f), want);
        assert_eq!(titles(&f), vec!["[Triggered] cpu high a".to_string()]);
        let rec = f.sink.logs.lock().unwrap()[0].records[0].clone();
        assert_eq!(rec.source.as_deref(), Some("event"));
        assert_eq!(rec.status, "error");
        assert!(rec.tags.contains(&format!("monitor_id:{}", f.id)));
        assert!(rec.tags.contains(&"host:a".to_string()));

        // Still breaching: no new event.
        let r = evaluate_all(&f.ctx, now + 1).await;
        assert_eq!((r.transitions, r.events), (0, 0));

        // Host a drops; the old high point leaves the window.
        f.metrics.apply(&MetricBatch {
            points: vec![gauge("a", now + 60, 5.0), gauge("b", now + 60, 10.0)],
        });
        let r = evaluate_all(&f.ctx, now + 75).await;
        assert_eq!(r.events, 1, "{r:?}");
        assert_eq!(statuses(&f)["host:a"], "OK");
        assert_eq!(
            titles(&f),
            vec![
                "[Triggered] cpu high a".to_string(),
                "[Recovered] cpu high a".to_string()
            ]
        );
        let history = f.ctx.states.get(f.id).unwrap().history;
        assert_eq!(history.len(), 2);
        assert_eq!(history[0]["from"], "OK");
        assert_eq!(history[0]["to"], "Alert");
        assert_eq!(history[1]["to"], "OK");
        assert_eq!(history[1]["group"], "host:a");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn downtime_mutes_notifications() {
        let (f, ctx, _, _) = downtime_fixture("host:a", JsonValue::Null, json!({}));
        let now = 1_700_000_100;
        f.metrics.apply(&MetricBatch {
            points: vec![gauge("a", now - 20, 95.0), gauge("c", now - 20, 99.0)],
        });
        let r = evaluate_all(&ctx, now).await;
        assert_eq!(
            (r.transitions, r.muted, r.notifications),
            (2, 1, 1),
            "{r:?}"
        );
        let history = ctx.states.get(f.id).unwrap().history;
        let a = history.iter().find(|h| h["group"] == "host:a").unwrap();
        let c = history.iter().find(|h| h["group"] == "host:c").unwrap();
        assert_eq!(a["muted"], true);
        assert!(c.get("muted").is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forgets_deleted_monitors() {
        let f = fixture("change(avg(last_5m),last_5m):avg:e2e.cpu{*} > 10");
        let r = evaluate_all(&f.ctx, 1_700_000_000).await;
        assert_eq!((r.evaluated, r.skipped), (1, 0));
        f.ctx.states.save(f.id, json!({}), vec![]).unwrap();
        f.ctx.states.save(99, json!({}), vec![]).unwrap();
        evaluate_all(&f.ctx, 1_700_000_000).await;
        assert_eq!(f.ctx.states.ids(), vec![f.id]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn log_alert_counts_errors_per_host() {
        let now = 1_700_000_000;
        let rec = |host: &str, status: &str| {
            let mut r = LogRecord::new((now - 30) * NS, "boom");
            r.service = Some("web".into());
            r.host = Some(host.into());
            r.status = status.into();
            r
        };
        let records = vec![
            rec("a", "error"),
            rec("a", "error"),
            rec("a", "error"),
            rec("a", "info"),
            rec("b", "error"),
        ];
        let (_dir, logs) = crate::test_util::log_store_with(records).await;
        let monitors = Arc::new(MemoryMonitors::default());
        let q = r#"logs("service:web status:error").index("*").rollup("count").by("host").last("5m") > 2"#;
        let def =
            check_create(&json!({"name": "errors", "type": "log alert", "query": q})).unwrap();
        let doc = monitors.create(def.to_doc("a", "a", &creator())).unwrap();
        let sink = Arc::new(MemorySink::default());
        let ctx = Arc::new(EvalContext {
            monitors,
            states: Arc::new(MemoryMonitorStates::default()),
            metrics: Arc::new(MemMetricStore::new(Limits::default())),
            logs: Some(logs),
            spans: None,
            cache: Default::default(),
            events: sink.clone(),
            options: EvalOptions::default(),
            downtimes: None,
            notifier: None,
        });
        let r = evaluate_all(&ctx, now).await;
        assert_eq!((r.evaluated, r.failed, r.events), (1, 0, 1), "{r:?}");
        let groups = ctx.states.get(doc_id(&doc).unwrap()).unwrap().groups;
        assert_eq!(groups["host:a"]["status"], "Alert");
        assert_eq!(groups["host:a"]["last_value"], 3.0);
        assert_eq!(groups["host:b"]["status"], "OK");
        // An hour later the errors are out of the 5-minute window: a count of 0, host:a recovers.
        let r = evaluate_all(&ctx, now + 3600).await;
        assert_eq!((r.evaluated, r.transitions, r.events), (1, 1, 1), "{r:?}");
        let groups = ctx.states.get(doc_id(&doc).unwrap()).unwrap().groups;
        assert_eq!(groups["host:a"]["status"], "OK");
        assert_eq!(groups["host:a"]["last_value"], 0.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn log_count_groups_without_records_expire() {
        let now = 1_700_000_000;
        let rec = |host: &str| {
            let mut r = LogRecord::new((now - 30) * NS, "boom");
            r.service = Some("web".into());
            r.host = Some(host.into());
            r.status = "error".into();
            r
        };
        let records = vec![rec("a"), rec("a"), rec("a"), rec("b")];
        let (_dir, logs) = crate::test_util::log_store_with(records).await;
        let f = fixture("avg(last_1m):avg:e2e.cpu{*} > 80");
        let q = r#"logs("service:web status:error").index("*").rollup("count").by("host").last("5m") > 2"#;
        let def =
            check_create(&json!({"name": "errors", "type": "log alert", "query": q})).unwrap();
        f.ctx
            .monitors
            .update(f.id, def.to_doc("a", "a", &creator()))
            .unwrap();
        let ctx = with_ctx(&f, |c| {
            c.logs = Some(logs);
            c.cache = Arc::new(StateCache::with_group_expiry(Some(600)));
        });
        evaluate_all(&ctx, now).await;
        assert_eq!(statuses(&f).len(), 2);
        // Counts of 0 (no records): a recovers and stays this cycle, b (OK) expires.
        let r = evaluate_all(&ctx, now + 3600).await;
        assert_eq!((r.transitions, r.saved), (1, 1), "{r:?}");
        let st = statuses(&f);
        assert_eq!(st.keys().collect::<Vec<_>>(), ["host:a"]);
        assert_eq!(st["host:a"], "OK");
        let groups = ctx.states.get(f.id).unwrap().groups;
        assert_eq!(groups["host:a"]["last_data_ts"], now);
        evaluate_all(&ctx, now + 3660).await;
        assert!(statuses(&f).is_empty());
    }

    fn metric_fixture(query: &str, options: JsonValue, message: &str) -> Fixture {
        let f = fixture(query);
        let def = check_create(&json!({"name": "cpu high", "type": "metric alert",
            "query": query, "message": message, "options": options}))
        .unwrap();
        f.ctx
            .monitors
            .update(f.id, def.to_doc("a", "a", &creator()))
            .unwrap();
        f
    }

    fn with_ctx(f: &Fixture, change: impl FnOnce(&mut EvalContext)) -> Arc<EvalContext> {
        let mut ctx = EvalContext {
            monitors: f.ctx.monitors.clone(),
            states: f.ctx.states.clone(),
            metrics: f.ctx.metrics.clone(),
            logs: None,
            spans: None,
            cache: f.ctx.cache.clone(),
            events: f.ctx.events.clone(),
            options: EvalOptions::default(),
            downtimes: None,
            notifier: None,
        };
        change(&mut ctx);
        Arc::new(ctx)
    }

    fn notifier(states: Arc<dyn MonitorStateRepo>) -> Arc<Notifier> {
        Arc::new(Notifier::new(
            Arc::new(sightline_storage::MemoryWebhooks::default()),
            states,
            Default::default(),
        ))
    }

    /// A `max(last_1m)` monitor by host notifying `@webhook-ops`, with one downtime on it of `scope` ending
    /// at `end` (RFC 3339 or null) plus `extra` fields; returns the fixture, a context with the downtimes and a
    /// notifier, the downtimes and the downtime's id.
    fn downtime_fixture(
        scope: &str,
        end: JsonValue,
        extra: JsonValue,
    ) -> (
        Fixture,
        Arc<EvalContext>,
        Arc<sightline_storage::MemoryDowntimes>,
        String,
    ) {
        use sightline_storage::DowntimeRepo;
        let f = metric_fixture(
            "max(last_1m):max:e2e.cpu{*} by {host} > 80",
            json!({}),
            "hot @webhook-ops",
        );
        let mut doc = json!({"scope": scope, "monitor_identifier": {"monitor_id": f.id},
            "schedule": {"start": "2023-01-01T00:00:00Z", "end": end}});
        for (k, v) in extra.as_object().into_iter().flatten() {
            doc[k] = v.clone();
        }
        let downtimes = Arc::new(sightline_storage::MemoryDowntimes::default());
        let created = downtimes.create(doc.as_object().unwrap().clone()).unwrap();
        let id = created["id"].as_str().unwrap().to_string();
        let (repo, states) = (downtimes.clone(), f.ctx.states.clone());
        let ctx = with_ctx(&f, |c| {
            c.downtimes = Some(repo);
            c.notifier = Some(notifier(states));
        });
        (f, ctx, downtimes, id)
    }

    fn last_values(f: &Fixture) -> BTreeMap<String, f64> {
        let s = f.ctx.states.get(f.id).unwrap();
        s.groups
            .as_object()
            .unwrap()
            .iter()
            .filter_map(|(g, st)| Some((g.clone(), st["last_value"].as_f64()?)))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn change_and_pct_change_compare_with_the_earlier_window() {
        let now = 1_700_000_100;
        let points = || MetricBatch {
            points: vec![
                gauge("a", now - 110, 20.0),
                gauge("a", now - 80, 20.0),
                gauge("a", now - 50, 50.0),
                gauge("a", now - 20, 50.0),
                gauge("b", now - 110, 20.0),
                gauge("b", now - 20, 22.0),
                // c has no earlier value: no data.
                gauge("c", now - 20, 99.0),
            ],
        };
        // (query, value of a, value of b)
        let table = [
            (
                "change(avg(last_1m),last_1m):avg:e2e.cpu{*} by {host} > 20",
                30.0,
                2.0,
            ),
            (
                "pct_change(avg(last_1m),last_1m):avg:e2e.cpu{*} by {host} > 100",
                150.0,
                10.0,
            ),
        ];
        for (query, a, b) in table {
            let f = fixture(query);
            f.metrics.apply(&points());
            let r = evaluate_all(&f.ctx, now).await;
            assert_eq!(
                (r.evaluated, r.skipped, r.failed),
                (1, 0, 0),
                "{query}: {r:?}"
            );
            let st = statuses(&f);
            assert_eq!(st["host:a"], "Alert", "{query}");
            assert_eq!(st["host:b"], "OK", "{query}");
            assert!(!st.contains_key("host:c"), "{query}: {st:?}");
            let v = last_values(&f);
            assert!((v["host:a"] - a).abs() < 1e-9, "{query}: {v:?}");
            assert!((v["host:b"] - b).abs() < 1e-9, "{query}: {v:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sum_of_counts_is_the_ratio_of_window_totals() {
        let now = 1_700_000_100;
        let f =
            fixture("sum(last_5m):sum:e2e.errors{*}.as_count() / sum:e2e.hits{*}.as_count() > 0.6");
        let count = |name: &str, ts: i64, v: f64| MetricPoint {
            series: SeriesKey::new(name, TagSet::default()),
            kind: MetricKind::Count,
            timestamp: ts,
            interval: 10,
            value: Value::Scalar(v),
        };
        f.metrics.apply(&MetricBatch {
            points: vec![
                count("e2e.errors", now - 200, 1.0),
                count("e2e.hits", now - 200, 10.0),
                count("e2e.errors", now - 100, 9.0),
                count("e2e.hits", now - 100, 10.0),
            ],
        });
        evaluate_all(&f.ctx, now).await;
        // 10 errors of 20 hits: 0.5 (the sum of per-interval ratios would be 1.0).
        assert_eq!(last_values(&f)["*"], 0.5);
        assert_eq!(statuses(&f)["*"], "OK");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn percentile_is_over_every_sample_of_the_window() {
        let now = 1_700_000_100;
        let f = fixture("percentile(last_5m):p90:e2e.lat{*} > 0.9");
        let sketch = |ts: i64, v: f64| {
            let mut sk = sightline_model::Sketch::new();
            sk.add_n(v, 100);
            MetricPoint {
                series: SeriesKey::new("e2e.lat", TagSet::default()),
                kind: MetricKind::Distribution,
                timestamp: ts,
                interval: 10,
                value: Value::Sketch(Box::new(sk)),
            }
        };
        f.metrics.apply(&MetricBatch {
            points: vec![sketch(now - 200, 0.1), sketch(now - 100, 1.0)],
        });
        evaluate_all(&f.ctx, now).await;
        // 100 samples of 0.1 and 100 of 1.0: the p90 of the window is 1.0 (the mean of per-interval p90s
        // would be 0.55).
        let v = last_values(&f)["*"];
        assert!((v - 1.0).abs() < 0.02, "{v}");
        assert_eq!(statuses(&f)["*"], "Alert");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn require_full_window_waits_for_a_full_window() {
        let now = 1_700_000_100;
        let q = "min(last_1m):min:e2e.cpu{*} by {host} > 80";
        for (full, want_b) in [(true, None), (false, Some("Alert"))] {
            let f = metric_fixture(q, json!({"require_full_window": full}), "m");
            f.metrics.apply(&MetricBatch {
                points: vec![
                    gauge("a", now - 55, 95.0),
                    gauge("a", now - 5, 95.0),
                    // b started reporting inside the window.
                    gauge("b", now - 5, 95.0),
                ],
            });
            evaluate_all(&f.ctx, now).await;
            let st = statuses(&f);
            assert_eq!(st["host:a"], "Alert", "full={full}");
            assert_eq!(st.get("host:b").map(String::as_str), want_b, "full={full}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_downtime_ending_while_alerting_notifies_once() {
        let now = 1_700_000_100; // 2023-11-14T22:15:00Z
        let (f, ctx, _, _) = downtime_fixture("host:a", json!("2023-11-14T22:16:00Z"), json!({}));
        let high = |ts| MetricBatch {
            points: vec![gauge("a", ts, 95.0)],
        };
        f.metrics.apply(&high(now - 10));
        let r = evaluate_all(&ctx, now).await;
        assert_eq!(
            (r.transitions, r.muted, r.notifications),
            (1, 1, 0),
            "{r:?}"
        );
        f.metrics.apply(&high(now + 20));
        let r = evaluate_all(&ctx, now + 30).await;
        assert_eq!((r.transitions, r.notifications), (0, 0), "{r:?}");
        // The downtime ended at now + 60; host a still alerts: one notification, then none.
        f.metrics.apply(&high(now + 80));
        let r = evaluate_all(&ctx, now + 90).await;
        assert_eq!(
            (r.transitions, r.notifications, r.events),
            (1, 1, 0),
            "{r:?}"
        );
        let history = ctx.states.get(f.id).unwrap().history;
        let last = history.last().unwrap();
        assert_eq!(last["downtime_ended"], true);
        assert_eq!(
            (last["from"].as_str(), last["to"].as_str()),
            (Some("Alert"), Some("Alert"))
        );
        f.metrics.apply(&high(now + 110));
        let r = evaluate_all(&ctx, now + 120).await;
        assert_eq!((r.transitions, r.notifications), (0, 0), "{r:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_canceled_downtime_notifies_only_when_asked() {
        use sightline_storage::DowntimeRepo;
        let now = 1_700_000_100;
        for (types, want) in [(None, 0), (Some(json!(["canceled", "expired"])), 1)] {
            let extra = types
                .clone()
                .map_or(json!({}), |t| json!({"notify_end_types": t}));
            let (f, ctx, repo, did) = downtime_fixture("*", JsonValue::Null, extra);
            f.metrics.apply(&MetricBatch {
                points: vec![gauge("a", now - 10, 95.0)],
            });
            assert_eq!(evaluate_all(&ctx, now).await.muted, 1);
            let groups = ctx.states.get(f.id).unwrap().groups;
            assert_eq!(groups["host:a"]["downtime"], did.as_str());
            let mut doc = repo.get(&did).unwrap();
            doc.insert("canceled".into(), json!("2023-11-14T22:15:10Z"));
            repo.update(&did, doc).unwrap();
            f.metrics.apply(&MetricBatch {
                points: vec![gauge("a", now + 10, 95.0)],
            });
            let r = evaluate_all(&ctx, now + 20).await;
            assert_eq!(r.notifications, want, "{types:?}: {r:?}");
            let groups = ctx.states.get(f.id).unwrap().groups;
            assert!(groups["host:a"].get("downtime").is_none());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_recovery_during_the_downtime_sends_nothing_after_it() {
        let now = 1_700_000_100;
        let (f, ctx, _, _) = downtime_fixture("*", json!("2023-11-14T22:17:00Z"), json!({}));
        f.metrics.apply(&MetricBatch {
            points: vec![gauge("a", now - 10, 95.0)],
        });
        let r = evaluate_all(&ctx, now).await;
        assert_eq!(r.muted, 1, "{r:?}");
        f.metrics.apply(&MetricBatch {
            points: vec![gauge("a", now + 70, 5.0)],
        });
        let r = evaluate_all(&ctx, now + 75).await;
        // Recovered inside the downtime: the recovery of a muted alert is not notified either.
        assert_eq!((r.transitions, r.notifications), (1, 0), "{r:?}");
        f.metrics.apply(&MetricBatch {
            points: vec![gauge("a", now + 150, 5.0)],
        });
        let r = evaluate_all(&ctx, now + 160).await;
        assert_eq!((r.transitions, r.notifications), (0, 0), "{r:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn states_are_written_on_change_and_at_checkpoints() {
        let now = 1_700_000_100;
        let f = fixture("avg(last_1m):avg:e2e.cpu{*} by {host} > 80");
        let live = LiveStates {
            stored: f.ctx.states.clone(),
            cache: f.ctx.cache.clone(),
        };
        let at = |ts: i64, v: f64| MetricBatch {
            points: vec![gauge("a", ts, v)],
        };
        f.metrics.apply(&at(now - 10, 10.0));
        let r = evaluate_all(&f.ctx, now).await;
        assert_eq!(r.saved, 1, "a new group is written: {r:?}");
        // Only the value changes: not written, but the API sees it.
        f.metrics.apply(&at(now + 50, 30.0));
        let r = evaluate_all(&f.ctx, now + 60).await;
        assert_eq!(r.saved, 0, "{r:?}");
        assert_eq!(last_values(&f)["host:a"], 10.0);
        let shown = live.get(f.id).unwrap();
        assert_eq!(shown.groups["host:a"]["last_value"], 30.0);
        // A transition is written at once.
        f.metrics.apply(&at(now + 110, 200.0));
        let r = evaluate_all(&f.ctx, now + 120).await;
        assert_eq!((r.saved, r.transitions), (1, 1), "{r:?}");
        assert_eq!(statuses(&f)["host:a"], "Alert");
        // Values alone again, until the checkpoint is due.
        let t = now + 120 + CHECKPOINT_SECS;
        f.metrics.apply(&at(t - 70, 300.0));
        assert_eq!(evaluate_all(&f.ctx, t - 60).await.saved, 0);
        f.metrics.apply(&at(t - 5, 300.0));
        assert_eq!(evaluate_all(&f.ctx, t).await.saved, 1);
        assert_eq!(last_values(&f)["host:a"], 300.0);
        // Shutdown writes what changed since.
        f.metrics.apply(&at(t + 55, 400.0));
        assert_eq!(evaluate_all(&f.ctx, t + 60).await.saved, 0);
        checkpoint(&f.ctx);
        assert_eq!(last_values(&f)["host:a"], 400.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silent_groups_time_out_and_expire_for_good() {
        let now = 1_700_000_100;
        let f = metric_fixture(
            "avg(last_1m):avg:e2e.cpu{*} by {host} > 80",
            json!({"timeout_h": 1}),
            "m",
        );
        let expiring = || Arc::new(StateCache::with_group_expiry(Some(300)));
        let ctx = with_ctx(&f, |c| c.cache = expiring());
        let live = |ctx: &EvalContext| LiveStates {
            stored: ctx.states.clone(),
            cache: ctx.cache.clone(),
        };
        let groups = |s: &dyn MonitorStateRepo| -> BTreeMap<String, GroupState> {
            serde_json::from_value(s.get(f.id).unwrap().groups).unwrap()
        };
        let names = |g: &BTreeMap<String, GroupState>| g.keys().cloned().collect::<Vec<_>>();
        let report = |hosts: &[(&str, f64)], ts: i64| MetricBatch {
            points: hosts.iter().map(|(h, v)| gauge(h, ts, *v)).collect(),
        };
        f.metrics
            .apply(&report(&[("a", 10.0), ("b", 10.0), ("c", 95.0)], now - 10));
        evaluate_all(&ctx, now).await;
        // Only host a keeps reporting; b (OK) and c (Alert) stop.
        for ts in [now + 60, now + 300] {
            f.metrics.apply(&report(&[("a", 10.0)], ts - 10));
            let r = evaluate_all(&ctx, ts).await;
            assert_eq!((r.transitions, r.saved), (0, 0), "{r:?}");
        }
        assert_eq!(names(&groups(&live(&ctx))), ["host:a", "host:b", "host:c"]);
        // b's newest data (at `now`) is over 300 s old: removed, written at once, without event or history.
        f.metrics.apply(&report(&[("a", 10.0)], now + 350));
        let r = evaluate_all(&ctx, now + 360).await;
        assert_eq!((r.transitions, r.events, r.saved), (0, 0, 1), "{r:?}");
        assert_eq!(names(&groups(&*f.ctx.states)), ["host:a", "host:c"]);
        assert_eq!(names(&groups(&live(&ctx))), ["host:a", "host:c"]);
        assert_eq!(f.ctx.states.get(f.id).unwrap().history.len(), 1);
        // A restart (a new cache reading the stored states) does not bring it back.
        let ctx = with_ctx(&f, |c| c.cache = expiring());
        f.metrics.apply(&report(&[("a", 10.0)], now + 410));
        let r = evaluate_all(&ctx, now + 420).await;
        assert_eq!((r.transitions, r.saved), (0, 0), "{r:?}");
        let shown = groups(&live(&ctx));
        assert_eq!(names(&shown), ["host:a", "host:c"]);
        assert_eq!(state::overall(&shown), MonitorStatus::Alert);
        // c alerted: kept until timeout_h (1 h without data) resolves it, as a recovery marked auto_resolved.
        f.metrics.apply(&report(&[("a", 10.0)], now + 3590));
        let r = evaluate_all(&ctx, now + 3600).await;
        assert_eq!(r.transitions, 0, "{r:?}");
        f.metrics.apply(&report(&[("a", 10.0)], now + 3650));
        let r = evaluate_all(&ctx, now + 3660).await;
        assert_eq!((r.transitions, r.events, r.saved), (1, 1, 1), "{r:?}");
        let history = f.ctx.states.get(f.id).unwrap().history;
        let last = history.last().unwrap();
        assert_eq!(
            (
                &last["group"],
                &last["from"],
                &last["to"],
                &last["auto_resolved"]
            ),
            (
                &json!("host:c"),
                &json!("Alert"),
                &json!("OK"),
                &json!(true)
            )
        );
        assert!(history[0].get("auto_resolved").is_none());
        assert_eq!(titles(&f).last().unwrap(), "[Recovered] cpu high c");
        // Then, OK and silent, it expires: the monitor is OK without it.
        f.metrics.apply(&report(&[("a", 10.0)], now + 3710));
        let r = evaluate_all(&ctx, now + 3720).await;
        assert_eq!((r.transitions, r.saved), (0, 1), "{r:?}");
        let stored = groups(&*f.ctx.states);
        assert_eq!(names(&stored), ["host:a"]);
        assert_eq!(state::overall(&stored), MonitorStatus::Ok);
        // Reporting again: a new group.
        f.metrics
            .apply(&report(&[("a", 10.0), ("b", 20.0)], now + 3770));
        evaluate_all(&ctx, now + 3780).await;
        let b = &groups(&*f.ctx.states)["host:b"];
        assert_eq!((b.first_seen_ts, b.status), (now + 3780, MonitorStatus::Ok));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn notifications_wait_in_the_outbox_until_delivered() {
        let now = 1_700_000_100;
        let f = metric_fixture(
            "max(last_1m):max:e2e.cpu{*} by {host} > 80",
            json!({}),
            "hot @webhook-nowhere",
        );
        let states = f.ctx.states.clone();
        let ctx = with_ctx(&f, |c| c.notifier = Some(notifier(states)));
        f.metrics.apply(&MetricBatch {
            points: vec![gauge("a", now - 10, 95.0)],
        });
        // The cycle without its delivery (as if the process died right after it).
        let (r, _, queued) = cycle(&ctx, now);
        assert_eq!((r.transitions, queued.len()), (1, 1), "{r:?}");
        let pending = ctx.states.pending();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].1["key"], format!("{now}:host:a:Alert"));
        // A restart re-sends it; once the delivery is over (here: an unknown webhook) it leaves the outbox.
        assert_eq!(resume_deliveries(&ctx), 1);
        for _ in 0..100 {
            if ctx.states.pending().is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(ctx.states.pending().is_empty());
        let attempts = ctx.states.get(f.id).unwrap().attempts;
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0]["webhook"], "nowhere");
        assert_eq!(resume_deliveries(&ctx), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn trace_analytics_counts_error_spans_per_resource() {
        use sightline_model::SpanRecord;
        use sightline_storage::MemorySpans;
        let now = 1_700_000_000;
        let mut spans = Vec::new();
        for i in 0..10u8 {
            let resource = if i < 6 { "GET /a" } else { "GET /b" };
            let mut s =
                SpanRecord::new([i; 16], [i; 8], None, "web", "http", (now - 30) * NS, 1000);
            s.resource = resource.into();
            // 4 errors on /a, 1 on /b.
            s.error = i < 4 || i == 6;
            spans.push(s);
        }
        let f = fixture("avg(last_1m):avg:e2e.cpu{*} > 80");
        let q = r#"trace-analytics("service:web status:error").rollup("count").by("resource_name").last("5m") > 3"#;
        let def =
            check_create(&json!({"name": "errors", "type": "trace-analytics alert", "query": q}))
                .unwrap();
        f.ctx
            .monitors
            .update(f.id, def.to_doc("a", "a", &creator()))
            .unwrap();
        let skipped = evaluate_all(&f.ctx, now).await;
        assert_eq!(skipped.skipped, 1, "no span store: skipped");
        let ctx = with_ctx(&f, |c| c.spans = Some(Arc::new(MemorySpans::new(spans))));
        let r = evaluate_all(&ctx, now).await;
        assert_eq!((r.evaluated, r.failed, r.events), (1, 0, 1), "{r:?}");
        let st = statuses(&f);
        assert_eq!(st["resource_name:GET /a"], "Alert", "{st:?}");
        assert_eq!(st["resource_name:GET /b"], "OK", "{st:?}");
        // Out of the window: counts of 0, recovery.
        let r = evaluate_all(&ctx, now + 3600).await;
        assert_eq!(r.transitions, 1, "{r:?}");
        assert_eq!(statuses(&f)["resource_name:GET /a"], "OK");
    }

    #[test]
    fn reduces() {
        let pts = [3.0, f64::NAN, 1.0, 2.0];
        let r = |a| reduce(a, pts.iter().copied());
        assert_eq!(r(TimeAgg::Avg), Some(2.0));
        assert_eq!(r(TimeAgg::Sum), Some(6.0));
        assert_eq!(r(TimeAgg::Min), Some(1.0));
        assert_eq!(r(TimeAgg::Max), Some(3.0));
        assert_eq!(reduce(TimeAgg::Max, std::iter::empty()), None);
    }
}

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
//!   `change()`/`pct_change()` and `percentile(…)` monitors are skipped (logged).
//! - `log alert`: the search is aggregated over the window with the rollup (`count`, `cardinality`, `avg`, …)
//!   per `.by(…)` facet (`service:web,host:a`, or `*`); with `count`, a known group (or the single group
//!   without `by`) with no records counts 0, so it recovers; with other rollups it has no data.
//! - `trace-analytics alert`: skipped (logged).
//!
//! Events: `[Triggered] <name>` (Alert, `alert_type` error), `[Warn] <name>` (warning), `[Recovered] <name>`
//! (OK, success), `[No Data] <name>` (warning), tagged `monitor_id:<id>` and the group's tags, with the group,
//! the value and the statuses as attributes. Renotifications (same status) are kept in the history only.
//!
//! History entries are the serialized [`Transition`]s: `{group, from, to, value, ts, notify, renotify}`, with
//! `"muted": true` when an active downtime ([`downtime_mutes`]) mutes a transition to notify.
//!
//! Notifications: after a cycle, the transitions with `notify` that no downtime mutes are handed to the
//! [`Notifier`] on a spawned task (a slow receiver does not delay evaluation); see [`super::notify`].

#[cfg(doc)]
use super::downtimes_http::downtime_mutes;
use super::downtimes_http::Downtime;
use super::notify::{Notification, Notifier};
use super::state::{self, GroupState, MonitorStatus, Rules, Transition};
use super::{parse_monitor_query, Change, EventSource, MonitorQuery, Rollup, TimeAgg};
use crate::eval::{evaluate, EvalOptions};
use crate::logsearch::parse_search;
use serde_json::{json, Map, Value as JsonValue};
use sightline_model::{LogBatch, LogRecord, LogSink};
use sightline_storage::{
    Compute, ComputeValue, DowntimeRepo, GroupBy, GroupSort, LogAggregate, LogReader, Measure,
    MetricReader, MonitorDoc, MonitorId, MonitorRepo, MonitorStateRepo,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The group name of a monitor without `by`.
pub const NO_GROUP: &str = "*";
/// Most groups a log monitor's `.by(…)` facet keeps.
const MAX_LOG_GROUPS: u32 = 10_000;
const NS: i64 = 1_000_000_000;

/// What the evaluator reads and writes.
pub struct EvalContext {
    pub monitors: Arc<dyn MonitorRepo>,
    pub states: Arc<dyn MonitorStateRepo>,
    pub metrics: Arc<dyn MetricReader>,
    /// `None`: log monitors are skipped.
    pub logs: Option<Arc<dyn LogReader>>,
    /// Where transition events go.
    pub events: Arc<dyn LogSink>,
    pub options: EvalOptions,
    /// Downtimes muting notifications; `None`: nothing is muted.
    pub downtimes: Option<Arc<dyn DowntimeRepo>>,
    /// Where notifications go; `None`: none are sent.
    pub notifier: Option<Arc<Notifier>>,
}

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// Monitors whose states were advanced.
    pub evaluated: usize,
    /// Monitors of a kind or form not evaluated yet.
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
            let notifier = notifier.clone();
            tokio::spawn(async move { notifier.deliver_all(notifications).await });
        }
    }
    report
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
    for doc in &docs {
        let Some(id) = doc_id(doc) else { continue };
        match evaluate_monitor(ctx, id, doc, now_ts, &downtimes) {
            Ok(Outcome::Skipped) => report.skipped += 1,
            Ok(Outcome::Done(transitions, muted)) => {
                report.evaluated += 1;
                report.transitions += transitions.len();
                let name = doc.get("name").and_then(JsonValue::as_str).unwrap_or("");
                records.extend(
                    transitions
                        .iter()
                        .filter(|t| t.from != t.to)
                        .map(|t| event_record(id, name, t)),
                );
                report.muted += muted;
                if ctx.notifier.is_some() {
                    notifications.extend(transitions.into_iter().filter(|t| t.notify).map(
                        |transition| Notification {
                            monitor_id: id,
                            monitor: doc.clone(),
                            transition,
                        },
                    ));
                }
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
    /// The transitions to notify that no downtime mutes, and how many were muted.
    Done(Vec<Transition>, usize),
}

/// Whether a downtime mutes the group of monitor `id`.
fn muted(downtimes: &[Downtime], id: MonitorId, doc: &MonitorDoc, group: &str, now: i64) -> bool {
    if downtimes.is_empty() {
        return false;
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
        .any(|d| d.mutes(id, &monitor_tags, &group_tags, now))
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
    let to = now_ts.saturating_sub(delay);
    let Some(mut values) = values(ctx, id, &query, to)? else {
        return Ok(Outcome::Skipped);
    };
    let rules = Rules::from_options(&query, options);
    let mut groups: BTreeMap<String, GroupState> = ctx
        .states
        .get(id)
        .and_then(|s| serde_json::from_value(s.groups).ok())
        .unwrap_or_default();
    if matches!(
        query,
        MonitorQuery::Events {
            rollup: Rollup::Count,
            ..
        }
    ) {
        // No matching record is a count of 0, not missing data: a known group recovers.
        for g in groups.keys() {
            values.entry(g.clone()).or_insert(Some(0.0));
        }
    }
    let mut transitions = state::step(&rules, &mut groups, &values, now_ts);
    let groups_json = serde_json::to_value(&groups).map_err(|e| e.to_string())?;
    let mut muted_count = 0;
    let mut history = Vec::with_capacity(transitions.len());
    for t in &mut transitions {
        let Ok(mut entry) = serde_json::to_value(&*t) else {
            continue;
        };
        if t.notify && muted(downtimes, id, doc, &t.group, now_ts) {
            entry["muted"] = JsonValue::Bool(true);
            t.notify = false;
            muted_count += 1;
        }
        history.push(entry);
    }
    ctx.states
        .save(id, groups_json, history)
        .map_err(|e| e.to_string())?;
    Ok(Outcome::Done(transitions, muted_count))
}

/// This cycle's value per group over the window ending at `to`; `None`: the monitor is not evaluated.
fn values(
    ctx: &EvalContext,
    id: MonitorId,
    query: &MonitorQuery,
    to: i64,
) -> Result<Option<BTreeMap<String, Option<f64>>>, String> {
    match query {
        MonitorQuery::Metric {
            time_agg,
            window_secs,
            change,
            query,
            ..
        } => {
            if let Some(c) = change {
                let form = match c {
                    Change::Change { .. } => "change()",
                    Change::PctChange { .. } => "pct_change()",
                };
                tracing::debug!(monitor_id = id, "{form} monitors are not evaluated yet");
                return Ok(None);
            }
            if *time_agg == TimeAgg::Percentile {
                tracing::debug!(
                    monitor_id = id,
                    "percentile() monitors are not evaluated yet"
                );
                return Ok(None);
            }
            metric_values(ctx, *time_agg, query, to - window_secs, to).map(Some)
        }
        MonitorQuery::Events {
            source: EventSource::Logs,
            search,
            rollup,
            group_by,
            window_secs,
            ..
        } => {
            let Some(logs) = &ctx.logs else {
                return Ok(None);
            };
            log_values(
                logs.as_ref(),
                search,
                rollup,
                group_by,
                (to - window_secs).saturating_mul(NS),
                to.saturating_mul(NS),
            )
            .map(Some)
        }
        MonitorQuery::Events {
            source: EventSource::Spans,
            ..
        } => {
            tracing::debug!(
                monitor_id = id,
                "trace-analytics monitors are not evaluated yet"
            );
            Ok(None)
        }
    }
}

/// Reduces each series of the metric query over `[from, to)` with the time aggregation.
pub fn metric_values(
    ctx: &EvalContext,
    time_agg: TimeAgg,
    query: &str,
    from: i64,
    to: i64,
) -> Result<BTreeMap<String, Option<f64>>, String> {
    let parsed = crate::parser::parse(query).map_err(|e| e.to_string())?;
    let out = evaluate(&parsed, from, to, ctx.metrics.as_ref(), &ctx.options)
        .map_err(|e| e.to_string())?;
    let mut values = BTreeMap::new();
    for s in out.series {
        let group = if s.tag_set.is_empty() {
            NO_GROUP.to_string()
        } else {
            s.tag_set.join(",")
        };
        let v = reduce(time_agg, s.points.iter().filter_map(|(_, v)| *v));
        values.insert(group, v);
    }
    Ok(values)
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

/// The rollup per `.by(…)` group of the logs matching `search` in `[from_ns, to_ns)`.
fn log_values(
    logs: &dyn LogReader,
    search: &str,
    rollup: &Rollup,
    group_by: &[String],
    from_ns: i64,
    to_ns: i64,
) -> Result<BTreeMap<String, Option<f64>>, String> {
    let expr = parse_search(search).map_err(|e| e.to_string())?;
    let measure = match rollup {
        Rollup::Count => Measure::Count,
        Rollup::Cardinality(f) => Measure::Cardinality(f.clone()),
        Rollup::Avg(m) => Measure::Avg(m.clone()),
        Rollup::Sum(m) => Measure::Sum(m.clone()),
        Rollup::Min(m) => Measure::Min(m.clone()),
        Rollup::Max(m) => Measure::Max(m.clone()),
        Rollup::Pct(p, m) => Measure::Percentile(*p, m.clone()),
    };
    let req = LogAggregate {
        expr,
        from_ns,
        to_ns,
        computes: vec![Compute {
            measure,
            interval_ns: None,
        }],
        group_by: group_by
            .iter()
            .map(|facet| GroupBy {
                facet: facet.clone(),
                limit: MAX_LOG_GROUPS,
                sort: GroupSort::Count { desc: true },
            })
            .collect(),
    };
    let buckets = logs.aggregate(&req).map_err(|e| e.to_string())?;
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
    let text = format!(
        "{} changed from {} to {} (value: {value})",
        t.group, t.from, t.to
    );
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
    a.insert(
        "monitor".into(),
        json!({
            "id": id,
            "group": t.group,
            "from": t.from.as_str(),
            "to": t.to.as_str(),
            "value": t.value,
        }),
    );
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
        use sightline_storage::{DowntimeRepo, MemoryDowntimes, MemoryWebhooks};
        let f = fixture("max(last_1m):max:e2e.cpu{*} by {host} > 80");
        let now = 1_700_000_100;
        let downtimes = Arc::new(MemoryDowntimes::default());
        downtimes
            .create(
                json!({"id": "d1", "scope": "host:a", "monitor_identifier": {"monitor_id": f.id},
                    "schedule": {"start": "2023-01-01T00:00:00Z", "end": null}})
                .as_object()
                .unwrap()
                .clone(),
            )
            .unwrap();
        let notifier = Arc::new(Notifier {
            webhooks: Arc::new(MemoryWebhooks::default()),
            states: f.ctx.states.clone(),
            config: Default::default(),
        });
        let ctx = Arc::new(EvalContext {
            monitors: f.ctx.monitors.clone(),
            states: f.ctx.states.clone(),
            metrics: f.ctx.metrics.clone(),
            logs: None,
            events: f.ctx.events.clone(),
            options: EvalOptions::default(),
            downtimes: Some(downtimes),
            notifier: Some(notifier),
        });
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
    async fn skips_change_and_forgets_deleted() {
        let f = fixture("change(avg(last_5m),last_5m):avg:e2e.cpu{*} > 10");
        let r = evaluate_all(&f.ctx, 1_700_000_000).await;
        assert_eq!((r.evaluated, r.skipped), (0, 1));
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

//! The pure monitor state machine (SPEC §7, issue #5): one [`GroupState`] per group of a multi-alert
//! monitor, advanced once per evaluation cycle by [`step`], which returns every [`Transition`]. No I/O and
//! no clock: the caller passes the cycle's values and timestamp (seconds) and persists the states.
//!
//! Semantics (Datadog's), for a group with a value `v` this cycle, "breach" meaning
//! `comparator.holds(v, threshold)`:
//!
//! | previous status | Alert if v breaches                          | else Warn if v breaches (warning set)      | else |
//! |-----------------|----------------------------------------------|---------------------------------------------|------|
//! | Alert           | `critical_recovery` (or `critical`)          | `warning_recovery` (or `warning`)           | OK   |
//! | Warn            | `critical`                                   | `warning_recovery` (or `warning`)           | OK   |
//! | OK, No Data     | `critical`                                   | `warning`                                   | OK   |
//!
//! A group without a value (absent from the cycle's values, `None` or NaN) becomes No Data when
//! `notify_no_data` is set and its last data (or, never having had any, its first sighting) is more than
//! `no_data_timeframe` old; otherwise it keeps its status. A group never seen before and without a value
//! gets no state. A new group is created OK; while `now - first_seen < new_group_delay` its transitions carry
//! `notify: false`. A status change notifies (a recovery to OK only when the status it leaves was
//! notified); a non-OK status not yet notified (because of the delay) is notified once the delay is over
//! (`from == to`, `renotify: false`); a notified non-OK status is renotified every `renotify_interval`
//! (`from == to`, `renotify: true`). `renotify_interval` 0 or absent means never.
//!
//! Groups that stop reporting:
//! - `timeout_h`: a group in Alert or Warn without a value this cycle whose newest data (never having had
//!   any: its first sighting) is more than `timeout_h` hours old resolves to OK (`auto_resolved: true`),
//!   notified as a recovery (same rule as any recovery: only if the status it leaves was notified).
//!   `timeout_h` 0 or absent means never. A group with a value is reporting, so it never times out.
//!   No Data is not a triggered status: a No Data group stays No Data. The No Data rule comes first: with
//!   `notify_no_data`, a silent Alert/Warn group goes to No Data once `no_data_timeframe` has passed, so
//!   `timeout_h` only resolves it when it is the shorter of the two (then it goes OK, later No Data).
//! - Expiry ([`expire`], a server setting, not a monitor option): after the step, an OK group without a
//!   value this cycle (a stand-in count of 0 is not one) whose newest data (or first sighting) is more than
//!   the expiry period old, and that had no transition this cycle, is removed from the states without
//!   notification. No Data and Alert/Warn groups are kept (a dead host in No Data stays until it reports
//!   again; Alert/Warn resolve through `timeout_h` first). A group that reports again after its removal
//!   starts afresh as a new group (`first_seen`, `new_group_delay`).

use super::{Comparator, MonitorQuery};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as JsonValue};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The status of one group (or, with [`overall`], of the monitor), serialized with Datadog's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MonitorStatus {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "Warn")]
    Warn,
    #[serde(rename = "Alert")]
    Alert,
    #[serde(rename = "No Data")]
    NoData,
}

impl MonitorStatus {
    /// Datadog's name: `OK`, `Warn`, `Alert`, `No Data`.
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorStatus::Ok => "OK",
            MonitorStatus::Warn => "Warn",
            MonitorStatus::Alert => "Alert",
            MonitorStatus::NoData => "No Data",
        }
    }

    /// How bad the status is, for [`overall`]: OK < No Data < Warn < Alert.
    fn severity(self) -> u8 {
        match self {
            MonitorStatus::Ok => 0,
            MonitorStatus::NoData => 1,
            MonitorStatus::Warn => 2,
            MonitorStatus::Alert => 3,
        }
    }
}

impl fmt::Display for MonitorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The thresholds of a monitor (`options.thresholds`, as checked by [`super::model::check_options`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub critical: f64,
    pub warning: Option<f64>,
    pub critical_recovery: Option<f64>,
    pub warning_recovery: Option<f64>,
}

impl Thresholds {
    /// Only a critical threshold.
    pub fn critical(critical: f64) -> Thresholds {
        Thresholds {
            critical,
            warning: None,
            critical_recovery: None,
            warning_recovery: None,
        }
    }

    /// From the stored `options.thresholds` object; `critical` falls back to the query's threshold, other
    /// missing, null or non-numeric values are `None`.
    pub fn from_json(thresholds: Option<&JsonValue>, query_threshold: f64) -> Thresholds {
        let get = |key: &str| {
            thresholds
                .and_then(|t| t.get(key))
                .and_then(JsonValue::as_f64)
        };
        Thresholds {
            critical: get("critical").unwrap_or(query_threshold),
            warning: get("warning"),
            critical_recovery: get("critical_recovery"),
            warning_recovery: get("warning_recovery"),
        }
    }
}

/// What [`step`] needs of a monitor definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub comparator: Comparator,
    pub thresholds: Thresholds,
    pub notify_no_data: bool,
    /// How long a group may go without data before No Data; `None` is 0 (the first cycle without data,
    /// when `notify_no_data`). [`Rules::from_options`] always sets it.
    pub no_data_timeframe_secs: Option<i64>,
    /// `None` or 0: never renotify.
    pub renotify_interval_secs: Option<i64>,
    pub new_group_delay_secs: i64,
    /// `timeout_h` in seconds: how long an Alert/Warn group may go without data before it resolves to OK;
    /// `None` or 0: never.
    pub timeout_secs: Option<i64>,
}

impl Rules {
    /// From a parsed query and its stored (checked) options: minutes and hours become seconds,
    /// `no_data_timeframe` defaults to twice the query window, `new_group_delay` to 0.
    pub fn from_options(query: &MonitorQuery, options: &Map<String, JsonValue>) -> Rules {
        let (comparator, threshold, window_secs) = match query {
            MonitorQuery::Metric {
                comparator,
                threshold,
                window_secs,
                ..
            }
            | MonitorQuery::Events {
                comparator,
                threshold,
                window_secs,
                ..
            } => (*comparator, *threshold, *window_secs),
        };
        let int = |key: &str| options.get(key).and_then(JsonValue::as_i64);
        Rules {
            comparator,
            thresholds: Thresholds::from_json(options.get("thresholds"), threshold),
            notify_no_data: options
                .get("notify_no_data")
                .and_then(JsonValue::as_bool)
                .unwrap_or(false),
            no_data_timeframe_secs: Some(
                int("no_data_timeframe")
                    .map(|m| m.saturating_mul(60))
                    .unwrap_or(window_secs.saturating_mul(2)),
            ),
            renotify_interval_secs: int("renotify_interval").map(|m| m.saturating_mul(60)),
            new_group_delay_secs: int("new_group_delay").unwrap_or(0),
            timeout_secs: int("timeout_h").map(|h| h.saturating_mul(3600)),
        }
    }

    /// The status a value gives a group that was `prev`, with the recovery thresholds' hysteresis.
    fn classify(&self, prev: MonitorStatus, v: f64) -> MonitorStatus {
        let t = &self.thresholds;
        let breach = |threshold: f64| self.comparator.holds(v, threshold);
        let alert = if prev == MonitorStatus::Alert {
            breach(t.critical_recovery.unwrap_or(t.critical))
        } else {
            breach(t.critical)
        };
        if alert {
            return MonitorStatus::Alert;
        }
        let warn = t.warning.is_some_and(|w| {
            if matches!(prev, MonitorStatus::Alert | MonitorStatus::Warn) {
                breach(t.warning_recovery.unwrap_or(w))
            } else {
                breach(w)
            }
        });
        if warn {
            MonitorStatus::Warn
        } else {
            MonitorStatus::Ok
        }
    }
}

/// The persisted state of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    pub status: MonitorStatus,
    /// When `status` was entered.
    pub since_ts: i64,
    pub last_value: Option<f64>,
    pub last_data_ts: Option<i64>,
    pub first_seen_ts: i64,
    /// When the current status was last notified (or renotified); `None`: not notified yet.
    pub last_notified_ts: Option<i64>,
    /// The downtime that muted the group at the last evaluation (set and cleared by the evaluator): when it
    /// ends (expires, or is canceled) with the group in one of its `notify_end_states`, one notification
    /// goes out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime: Option<String>,
}

impl GroupState {
    fn new(now_ts: i64) -> GroupState {
        GroupState {
            status: MonitorStatus::Ok,
            since_ts: now_ts,
            last_value: None,
            last_data_ts: None,
            first_seen_ts: now_ts,
            last_notified_ts: None,
            downtime: None,
        }
    }
}

/// A status change of a group, or a (re)notification of its unchanged status (`from == to`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub group: String,
    pub from: MonitorStatus,
    pub to: MonitorStatus,
    /// This cycle's value (`None` without data).
    pub value: Option<f64>,
    pub ts: i64,
    /// Whether to send a notification (false during `new_group_delay`, or for a recovery from a status
    /// never notified).
    pub notify: bool,
    /// A reminder every `renotify_interval` while not OK.
    pub renotify: bool,
    /// When the group entered `from` (for a recovery: when the alert began); 0 in older records.
    #[serde(default)]
    pub from_since_ts: i64,
    /// A recovery because the group sent no data for `timeout_h` (serialized only when true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_resolved: bool,
}

/// What one evaluation cycle saw, per group name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// This cycle's value (`None`: no data in the window). Groups with a state but absent here have no data
    /// either.
    pub values: BTreeMap<String, Option<f64>>,
    /// When the newest data of a group was (unix seconds); groups absent here take the evaluation time.
    /// `no_data_timeframe` counts from it.
    pub newest_ts: BTreeMap<String, i64>,
    /// Groups left as they are this cycle (`require_full_window` with a partial window).
    pub skip: BTreeSet<String>,
    /// Groups whose value is a stand-in rather than data (a `count` of 0 for no records): stepped with it,
    /// but silent for [`expire`].
    pub filled: BTreeSet<String>,
}

impl Observed {
    /// Whether the group has data this cycle (a value that is not a stand-in) or is skipped.
    fn reporting(&self, group: &str) -> bool {
        self.skip.contains(group)
            || (!self.filled.contains(group)
                && self
                    .values
                    .get(group)
                    .copied()
                    .flatten()
                    .is_some_and(|v| !v.is_nan()))
    }
}

/// Advances every group by one evaluation cycle at `now_ts` and returns the transitions, by group name.
pub fn step(
    rules: &Rules,
    states: &mut BTreeMap<String, GroupState>,
    observed: &Observed,
    now_ts: i64,
) -> Vec<Transition> {
    let (values, skip) = (&observed.values, &observed.skip);
    for (group, value) in values {
        if value.is_some_and(|v| !v.is_nan())
            && !states.contains_key(group)
            && !skip.contains(group)
        {
            states.insert(group.clone(), GroupState::new(now_ts));
        }
    }
    let mut out = Vec::new();
    for (group, state) in states.iter_mut() {
        if skip.contains(group) {
            continue;
        }
        let value = values.get(group).copied().flatten().filter(|v| !v.is_nan());
        let data_ts = observed
            .newest_ts
            .get(group)
            .map_or(now_ts, |&t| t.min(now_ts));
        if let Some(t) = advance(rules, group, state, value, data_ts, now_ts) {
            out.push(t);
        }
    }
    out
}

fn advance(
    rules: &Rules,
    group: &str,
    state: &mut GroupState,
    value: Option<f64>,
    data_ts: i64,
    now_ts: i64,
) -> Option<Transition> {
    let prev = state.status;
    let mut auto_resolved = false;
    let next = match value {
        Some(v) => {
            state.last_value = Some(v);
            state.last_data_ts = Some(data_ts);
            rules.classify(prev, v)
        }
        None => {
            let silent = now_ts.saturating_sub(state.last_data_ts.unwrap_or(state.first_seen_ts));
            let timeframe = rules.no_data_timeframe_secs.unwrap_or(0);
            let timed_out = rules.timeout_secs.is_some_and(|t| t > 0 && silent > t);
            if rules.notify_no_data && silent > timeframe {
                MonitorStatus::NoData
            } else if timed_out && matches!(prev, MonitorStatus::Alert | MonitorStatus::Warn) {
                auto_resolved = true;
                MonitorStatus::Ok
            } else {
                prev
            }
        }
    };
    let in_delay = now_ts.saturating_sub(state.first_seen_ts) < rules.new_group_delay_secs;
    let from_since_ts = state.since_ts;
    let transition = |to: MonitorStatus, notify: bool, renotify: bool| Transition {
        group: group.to_string(),
        from: prev,
        to,
        value,
        ts: now_ts,
        notify,
        renotify,
        from_since_ts,
        auto_resolved,
    };
    if next != prev {
        let notify = !in_delay && (next != MonitorStatus::Ok || state.last_notified_ts.is_some());
        state.status = next;
        state.since_ts = now_ts;
        state.last_notified_ts = notify.then_some(now_ts);
        return Some(transition(next, notify, false));
    }
    if prev == MonitorStatus::Ok || in_delay {
        return None;
    }
    match state.last_notified_ts {
        None => {
            state.last_notified_ts = Some(now_ts);
            Some(transition(prev, true, false))
        }
        Some(last) => {
            let interval = rules.renotify_interval_secs.filter(|&r| r > 0)?;
            if now_ts.saturating_sub(last) >= interval {
                state.last_notified_ts = Some(now_ts);
                Some(transition(prev, true, true))
            } else {
                None
            }
        }
    }
}

/// Removes the OK groups without data this cycle (in `observed`) whose newest data (or, never having had
/// any, their first sighting) is more than `expiry_secs` old at `now_ts` and that have no transition among
/// `transitions` (this cycle's); returns their names. `expiry_secs` `None`: groups never expire. No Data,
/// Warn and Alert groups are kept.
pub fn expire(
    states: &mut BTreeMap<String, GroupState>,
    observed: &Observed,
    transitions: &[Transition],
    expiry_secs: Option<i64>,
    now_ts: i64,
) -> Vec<String> {
    let Some(expiry) = expiry_secs else {
        return Vec::new();
    };
    let stepped: BTreeSet<&str> = transitions.iter().map(|t| t.group.as_str()).collect();
    let expired: Vec<String> = states
        .iter()
        .filter(|(group, g)| {
            g.status == MonitorStatus::Ok
                && !stepped.contains(group.as_str())
                && !observed.reporting(group)
                && now_ts.saturating_sub(g.last_data_ts.unwrap_or(g.first_seen_ts)) > expiry
        })
        .map(|(group, _)| group.clone())
        .collect();
    for group in &expired {
        states.remove(group);
    }
    expired
}

/// The monitor's status: the worst of its groups (Alert > Warn > No Data > OK), No Data without groups.
pub fn overall(states: &BTreeMap<String, GroupState>) -> MonitorStatus {
    states
        .values()
        .map(|s| s.status)
        .max_by_key(|s| s.severity())
        .unwrap_or(MonitorStatus::NoData)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::parse_monitor_query;
    use serde_json::json;
    use MonitorStatus::{Alert, NoData, Ok as OK, Warn};

    fn rules(comparator: Comparator, thresholds: Thresholds) -> Rules {
        Rules {
            comparator,
            thresholds,
            notify_no_data: false,
            no_data_timeframe_secs: Some(120),
            renotify_interval_secs: None,
            new_group_delay_secs: 0,
            timeout_secs: None,
        }
    }

    fn gt(critical: f64) -> Rules {
        rules(Comparator::Gt, Thresholds::critical(critical))
    }

    /// One evaluation cycle: its timestamp and the value per group (`None`: no data).
    type Cycle<'a> = (i64, &'a [(&'a str, Option<f64>)]);

    /// Runs the cycles (timestamp, values per group; `None` is no data) from empty states and compares
    /// the transitions, each as `"<ts> <group> <from>-><to> <value or -> <notify|silent>[ renotify]"`.
    fn check(rules: &Rules, cycles: &[Cycle], expected: &[&str]) -> BTreeMap<String, GroupState> {
        check_expiring(rules, None, cycles, expected)
    }

    /// [`check`] with groups expiring after `expiry` seconds ([`expire`] after each step): removals show
    /// as `"<ts> <group> expired"`, auto-resolutions end with `" auto_resolved"`.
    fn check_expiring(
        rules: &Rules,
        expiry: Option<i64>,
        cycles: &[Cycle],
        expected: &[&str],
    ) -> BTreeMap<String, GroupState> {
        let mut states = BTreeMap::new();
        let mut got = Vec::new();
        for (ts, values) in cycles {
            let observed = Observed {
                values: values.iter().map(|(g, v)| (g.to_string(), *v)).collect(),
                ..Observed::default()
            };
            let transitions = step(rules, &mut states, &observed, *ts);
            for t in &transitions {
                let value = t.value.map_or("-".to_string(), |v| v.to_string());
                let notify = if t.notify { "notify" } else { "silent" };
                let renotify = if t.renotify { " renotify" } else { "" };
                let auto = if t.auto_resolved {
                    " auto_resolved"
                } else {
                    ""
                };
                got.push(format!(
                    "{} {} {}->{} {value} {notify}{renotify}{auto}",
                    t.ts, t.group, t.from, t.to
                ));
            }
            for group in expire(&mut states, &observed, &transitions, expiry, *ts) {
                got.push(format!("{ts} {group} expired"));
            }
        }
        assert_eq!(got, expected);
        states
    }

    #[test]
    fn transitions() {
        let hysteresis = rules(
            Comparator::Gt,
            Thresholds {
                critical: 90.0,
                warning: Some(70.0),
                critical_recovery: Some(80.0),
                warning_recovery: Some(60.0),
            },
        );
        let below = rules(
            Comparator::Lt,
            Thresholds {
                critical: 10.0,
                warning: Some(20.0),
                critical_recovery: None,
                warning_recovery: None,
            },
        );
        let no_data = Rules {
            notify_no_data: true,
            ..gt(80.0)
        };
        let delayed = Rules {
            new_group_delay_secs: 120,
            ..gt(80.0)
        };
        let renotify = Rules {
            renotify_interval_secs: Some(120),
            notify_no_data: true,
            ..gt(80.0)
        };
        let cases: Vec<(&str, Rules, Vec<Cycle>, Vec<&str>)> = vec![
            (
                "by {host}: only the breaching host alerts, then recovers",
                gt(80.0),
                vec![
                    (0, &[("host:a", Some(10.0)), ("host:b", Some(20.0))]),
                    (60, &[("host:a", Some(95.0)), ("host:b", Some(20.0))]),
                    (120, &[("host:a", Some(96.0)), ("host:b", Some(80.0))]),
                    (180, &[("host:a", Some(50.0)), ("host:b", Some(30.0))]),
                ],
                vec![
                    "60 host:a OK->Alert 95 notify",
                    "180 host:a Alert->OK 50 notify",
                ],
            ),
            (
                "a new group breaching at once alerts at once",
                gt(80.0),
                vec![(0, &[("host:a", Some(81.0))])],
                vec!["0 host:a OK->Alert 81 notify"],
            ),
            (
                "warn, alert, recovery thresholds' hysteresis, recovery",
                hysteresis.clone(),
                vec![
                    (0, &[("g", Some(50.0))]),
                    (60, &[("g", Some(75.0))]),  // > warning
                    (120, &[("g", Some(65.0))]), // below warning, above warning_recovery
                    (180, &[("g", Some(95.0))]), // > critical
                    (240, &[("g", Some(85.0))]), // below critical, above critical_recovery
                    (300, &[("g", Some(80.0))]), // not > critical_recovery: down to Warn
                    (360, &[("g", Some(60.0))]), // not > warning_recovery
                    (420, &[("g", Some(85.0))]), // from OK: warning, not critical
                ],
                vec![
                    "60 g OK->Warn 75 notify",
                    "180 g Warn->Alert 95 notify",
                    "300 g Alert->Warn 80 notify",
                    "360 g Warn->OK 60 notify",
                    "420 g OK->Warn 85 notify",
                ],
            ),
            (
                "from Alert straight to OK; warning hysteresis applies on the way down",
                hysteresis,
                vec![
                    (0, &[("g", Some(95.0)), ("h", Some(95.0))]),
                    (60, &[("g", Some(10.0)), ("h", Some(65.0))]),
                ],
                vec![
                    "0 g OK->Alert 95 notify",
                    "0 h OK->Alert 95 notify",
                    "60 g Alert->OK 10 notify",
                    "60 h Alert->Warn 65 notify",
                ],
            ),
            (
                "< comparator",
                below,
                vec![
                    (0, &[("g", Some(30.0))]),
                    (60, &[("g", Some(15.0))]),
                    (120, &[("g", Some(5.0))]),
                    (180, &[("g", Some(10.0))]),
                    (240, &[("g", Some(20.0))]),
                ],
                vec![
                    "60 g OK->Warn 15 notify",
                    "120 g Warn->Alert 5 notify",
                    "180 g Alert->Warn 10 notify",
                    "240 g Warn->OK 20 notify",
                ],
            ),
            (
                "<= comparator with a critical recovery",
                rules(
                    Comparator::Le,
                    Thresholds {
                        critical_recovery: Some(5.0),
                        ..Thresholds::critical(1.0)
                    },
                ),
                vec![
                    (0, &[("g", Some(1.0))]),
                    (60, &[("g", Some(5.0))]),
                    (120, &[("g", Some(5.5))]),
                ],
                vec!["0 g OK->Alert 1 notify", "120 g Alert->OK 5.5 notify"],
            ),
            (
                "no data after the timeframe (absent or None), back to OK on data",
                no_data,
                vec![
                    (0, &[("g", Some(10.0)), ("h", Some(10.0))]),
                    (60, &[("g", None)]),
                    (120, &[]),
                    (180, &[]),
                    (240, &[("g", Some(12.0))]),
                    (300, &[("g", Some(90.0)), ("h", Some(10.0))]),
                    (360, &[("g", None), ("h", Some(10.0))]),
                    (480, &[("h", Some(10.0))]),
                    (540, &[("h", Some(10.0)), ("new", None)]),
                ],
                vec![
                    "180 g OK->No Data - notify",
                    "180 h OK->No Data - notify",
                    "240 g No Data->OK 12 notify",
                    "300 g OK->Alert 90 notify",
                    "300 h No Data->OK 10 notify",
                    "480 g Alert->No Data - notify",
                ],
            ),
            (
                "notify_no_data false keeps the last state",
                gt(80.0),
                vec![
                    (0, &[("g", Some(90.0)), ("h", Some(1.0))]),
                    (600, &[]),
                    (6000, &[("g", None)]),
                ],
                vec!["0 g OK->Alert 90 notify"],
            ),
            (
                "new_group_delay: silent at first, notified once the delay is over",
                delayed,
                vec![
                    (0, &[("a", Some(90.0)), ("b", Some(90.0)), ("c", Some(1.0))]),
                    (
                        60,
                        &[("a", Some(90.0)), ("b", Some(10.0)), ("c", Some(1.0))],
                    ),
                    (
                        120,
                        &[("a", Some(90.0)), ("b", Some(10.0)), ("c", Some(1.0))],
                    ),
                    (
                        180,
                        &[("a", Some(10.0)), ("b", Some(10.0)), ("c", Some(90.0))],
                    ),
                    (240, &[("a", Some(10.0)), ("d", Some(90.0))]),
                    (300, &[("d", Some(10.0))]),
                ],
                vec![
                    "0 a OK->Alert 90 silent",
                    "0 b OK->Alert 90 silent",
                    "60 b Alert->OK 10 silent",
                    "120 a Alert->Alert 90 notify",
                    "180 a Alert->OK 10 notify",
                    "180 c OK->Alert 90 notify",
                    "240 d OK->Alert 90 silent",
                    "300 d Alert->OK 10 silent",
                ],
            ),
            (
                "renotify cadence, restarted by a status change, also in No Data",
                renotify,
                vec![
                    (0, &[("g", Some(90.0))]),
                    (60, &[("g", Some(90.0))]),
                    (120, &[("g", Some(91.0))]),
                    (180, &[("g", Some(90.0))]),
                    (240, &[("g", Some(90.0))]),
                    (300, &[("g", Some(10.0))]),
                    (360, &[("g", Some(95.0))]),
                    (420, &[("g", Some(95.0))]),
                    (540, &[]),
                    (600, &[]),
                    (660, &[]),
                    (720, &[]),
                ],
                vec![
                    "0 g OK->Alert 90 notify",
                    "120 g Alert->Alert 91 notify renotify",
                    "240 g Alert->Alert 90 notify renotify",
                    "300 g Alert->OK 10 notify",
                    "360 g OK->Alert 95 notify",
                    "540 g Alert->Alert - notify renotify",
                    "600 g Alert->No Data - notify",
                    "720 g No Data->No Data - notify renotify",
                ],
            ),
        ];
        for (name, rules, cycles, expected) in cases {
            println!("case: {name}");
            check(&rules, &cycles, &expected);
        }
    }

    #[test]
    fn overall_is_the_worst_group() {
        let states = |statuses: &[MonitorStatus]| -> BTreeMap<String, GroupState> {
            statuses
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let mut g = GroupState::new(0);
                    g.status = *s;
                    (i.to_string(), g)
                })
                .collect()
        };
        let cases: [(&[MonitorStatus], MonitorStatus); 6] = [
            (&[], NoData),
            (&[OK, OK], OK),
            (&[OK, NoData], NoData),
            (&[NoData, Warn, OK], Warn),
            (&[Warn, Alert, NoData], Alert),
            (&[Alert, OK], Alert),
        ];
        for (groups, expected) in cases {
            assert_eq!(overall(&states(groups)), expected, "{groups:?}");
        }
        // And after a real multi-alert sequence.
        let after = check(
            &gt(80.0),
            &[(0, &[("a", Some(90.0)), ("b", Some(1.0))])],
            &["0 a OK->Alert 90 notify"],
        );
        assert_eq!(overall(&after), Alert);
    }

    #[test]
    fn rules_from_stored_options() {
        let q = parse_monitor_query(
            "metric alert",
            "avg(last_5m):avg:system.cpu.user{*} by {host} > 90",
        )
        .unwrap();
        let options = json!({
            "thresholds": {"critical": 90.0, "warning": 70.0, "critical_recovery": 80.0, "warning_recovery": null},
            "notify_no_data": true, "no_data_timeframe": 15, "renotify_interval": 30, "new_group_delay": 60,
            "timeout_h": 2,
        });
        let r = Rules::from_options(&q, options.as_object().unwrap());
        assert_eq!(
            r,
            Rules {
                comparator: Comparator::Gt,
                thresholds: Thresholds {
                    critical: 90.0,
                    warning: Some(70.0),
                    critical_recovery: Some(80.0),
                    warning_recovery: None,
                },
                notify_no_data: true,
                no_data_timeframe_secs: Some(900),
                renotify_interval_secs: Some(1800),
                new_group_delay_secs: 60,
                timeout_secs: Some(7200),
            }
        );
        // Defaults: critical from the query, no data after twice the window, no renotify, no delay.
        let r = Rules::from_options(&q, &Map::new());
        assert_eq!(r.thresholds, Thresholds::critical(90.0));
        assert!(!r.notify_no_data);
        assert_eq!(r.no_data_timeframe_secs, Some(600));
        assert_eq!(r.renotify_interval_secs, None);
        assert_eq!(r.new_group_delay_secs, 0);
        assert_eq!(r.timeout_secs, None);
    }

    #[test]
    fn timeout_h_resolves_silent_triggered_groups() {
        let warn = Rules {
            thresholds: Thresholds {
                warning: Some(50.0),
                ..Thresholds::critical(80.0)
            },
            ..gt(80.0)
        };
        let timeout = |r: &Rules, secs: i64| Rules {
            timeout_secs: Some(secs),
            ..r.clone()
        };
        let hour = 3600;
        let cases: Vec<(&str, Rules, Vec<Cycle>, Vec<&str>)> = vec![
            (
                "Alert and Warn resolve after the timeout, not at it, notified as recoveries",
                timeout(&warn, hour),
                vec![
                    (
                        0,
                        &[("a", Some(90.0)), ("w", Some(60.0)), ("ok", Some(1.0))],
                    ),
                    (hour, &[]),
                    (hour + 60, &[("a", None)]),
                    (hour + 120, &[]),
                ],
                vec![
                    "0 a OK->Alert 90 notify",
                    "0 w OK->Warn 60 notify",
                    "3660 a Alert->OK - notify auto_resolved",
                    "3660 w Warn->OK - notify auto_resolved",
                ],
            ),
            (
                "counted from the newest data; a reporting group never times out",
                timeout(&gt(80.0), hour),
                vec![
                    (0, &[("a", Some(90.0)), ("b", Some(90.0))]),
                    (1800, &[("a", Some(95.0)), ("b", Some(95.0))]),
                    (hour + 60, &[("b", Some(95.0))]),
                    (1800 + hour + 60, &[("b", Some(95.0))]),
                    (3 * hour, &[("b", Some(95.0))]),
                ],
                vec![
                    "0 a OK->Alert 90 notify",
                    "0 b OK->Alert 90 notify",
                    "5460 a Alert->OK - notify auto_resolved",
                ],
            ),
            (
                "0 or absent: never",
                timeout(&gt(80.0), 0),
                vec![(0, &[("a", Some(90.0))]), (100 * hour, &[])],
                vec!["0 a OK->Alert 90 notify"],
            ),
            (
                "an alert never notified (new_group_delay) resolves silently",
                Rules {
                    new_group_delay_secs: 2 * hour,
                    ..timeout(&gt(80.0), hour)
                },
                vec![(0, &[("a", Some(90.0))]), (hour + 1, &[])],
                vec![
                    "0 a OK->Alert 90 silent",
                    "3601 a Alert->OK - silent auto_resolved",
                ],
            ),
            (
                "No Data stays No Data; OK stays OK",
                Rules {
                    notify_no_data: true,
                    no_data_timeframe_secs: Some(600),
                    ..timeout(&gt(80.0), hour)
                },
                vec![
                    (0, &[("a", Some(90.0)), ("ok", Some(1.0))]),
                    (660, &[("ok", Some(1.0))]),
                    (10 * hour, &[("ok", Some(1.0))]),
                ],
                vec!["0 a OK->Alert 90 notify", "660 a Alert->No Data - notify"],
            ),
            (
                "a timeout shorter than no_data_timeframe resolves first, then No Data",
                Rules {
                    notify_no_data: true,
                    no_data_timeframe_secs: Some(2 * hour),
                    ..timeout(&gt(80.0), hour)
                },
                vec![
                    (0, &[("a", Some(90.0))]),
                    (hour + 1, &[]),
                    (2 * hour + 1, &[]),
                ],
                vec![
                    "0 a OK->Alert 90 notify",
                    "3601 a Alert->OK - notify auto_resolved",
                    "7201 a OK->No Data - notify",
                ],
            ),
        ];
        for (name, rules, cycles, expected) in cases {
            println!("case: {name}");
            check(&rules, &cycles, &expected);
        }
        // The mark is in the serialized transition (the history entry) only when set.
        let mut states = BTreeMap::new();
        let r = timeout(&gt(80.0), 60);
        let seen = |v: Option<f64>| Observed {
            values: [("a".to_string(), v)].into_iter().collect(),
            ..Observed::default()
        };
        let t = step(&r, &mut states, &seen(Some(90.0)), 0);
        assert!(serde_json::to_value(&t[0])
            .unwrap()
            .get("auto_resolved")
            .is_none());
        let t = step(&r, &mut states, &seen(None), 61);
        assert_eq!(serde_json::to_value(&t[0]).unwrap()["auto_resolved"], true);
        let back: Transition =
            serde_json::from_value(json!({"group": "a", "from": "OK", "to": "OK",
            "value": null, "ts": 1, "notify": false, "renotify": false}))
            .unwrap();
        assert!(!back.auto_resolved);
    }

    #[test]
    fn silent_ok_groups_expire() {
        let day = 86_400;
        let no_data = Rules {
            notify_no_data: true,
            no_data_timeframe_secs: Some(600),
            ..gt(80.0)
        };
        /// Name, rules, expiry, cycles, expected transitions and removals.
        type Case<'a> = (&'a str, Rules, Option<i64>, Vec<Cycle<'a>>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (
                "an OK group expires after the period, not at it; a reporting one stays",
                gt(80.0),
                Some(day),
                vec![
                    (0, &[("gone", Some(1.0)), ("live", Some(1.0))]),
                    (day, &[("live", Some(1.0))]),
                    (day + 60, &[("gone", None), ("live", Some(1.0))]),
                    (3 * day, &[("live", Some(1.0))]),
                ],
                vec!["86460 gone expired"],
            ),
            (
                "No Data and Alert groups are kept",
                no_data,
                Some(day),
                vec![
                    (0, &[("nd", Some(1.0)), ("alert", Some(90.0))]),
                    (700, &[("alert", Some(90.0))]),
                    (10 * day, &[]),
                ],
                vec![
                    "0 alert OK->Alert 90 notify",
                    "700 nd OK->No Data - notify",
                    "864000 alert Alert->No Data - notify",
                ],
            ),
            (
                "an Alert group resolved by timeout_h stays one cycle, then expires",
                Rules {
                    timeout_secs: Some(2 * day),
                    ..gt(80.0)
                },
                Some(day),
                vec![
                    (0, &[("a", Some(90.0))]),
                    (day + 60, &[]),
                    (2 * day + 60, &[]),
                    (2 * day + 120, &[]),
                ],
                vec![
                    "0 a OK->Alert 90 notify",
                    "172860 a Alert->OK - notify auto_resolved",
                    "172920 a expired",
                ],
            ),
            (
                "off: never",
                gt(80.0),
                None,
                vec![(0, &[("a", Some(1.0))]), (100 * day, &[])],
                vec![],
            ),
            (
                "reporting again after expiry: a new group (new_group_delay again)",
                Rules {
                    new_group_delay_secs: 300,
                    ..gt(80.0)
                },
                Some(day),
                vec![
                    (0, &[("a", Some(1.0))]),
                    (day + 1, &[]),
                    (day + 60, &[("a", Some(90.0))]),
                    (day + 360, &[("a", Some(90.0))]),
                ],
                vec![
                    "86401 a expired",
                    "86460 a OK->Alert 90 silent",
                    "86760 a Alert->Alert 90 notify",
                ],
            ),
        ];
        for (name, rules, expiry, cycles, expected) in cases {
            println!("case: {name}");
            check_expiring(&rules, expiry, &cycles, &expected);
        }
        // The new group's state starts afresh.
        let states = check_expiring(
            &gt(80.0),
            Some(day),
            &[
                (0, &[("a", Some(1.0))]),
                (day + 1, &[]),
                (day + 60, &[("a", Some(2.0))]),
            ],
            &["86401 a expired"],
        );
        let a = &states["a"];
        assert_eq!(
            (a.first_seen_ts, a.since_ts, a.last_data_ts),
            (day + 60, day + 60, Some(day + 60))
        );
        assert_eq!(overall(&states), OK);
    }

    #[test]
    fn only_groups_without_data_this_cycle_expire() {
        let r = gt(80.0);
        let mut states = BTreeMap::new();
        let seen = |v: Option<f64>, newest: i64, filled: bool, skip: bool| {
            let set = |on: bool| -> BTreeSet<String> {
                on.then(|| "a".to_string()).into_iter().collect()
            };
            Observed {
                values: [("a".to_string(), v)].into_iter().collect(),
                newest_ts: [("a".to_string(), newest)].into_iter().collect(),
                filled: set(filled),
                skip: set(skip),
            }
        };
        let cycle = |states: &mut BTreeMap<String, GroupState>, o: Observed, now: i64| {
            let t = step(&r, states, &o, now);
            expire(states, &o, &t, Some(100), now)
        };
        assert!(cycle(&mut states, seen(Some(1.0), 0, false, false), 0).is_empty());
        // Old data still in a long window: a value, so reporting.
        assert!(cycle(&mut states, seen(Some(1.0), 0, false, false), 500).is_empty());
        assert_eq!(states["a"].last_data_ts, Some(0));
        // Skipped (partial window): left alone.
        assert!(cycle(&mut states, seen(Some(1.0), 0, false, true), 600).is_empty());
        // A stand-in count of 0 is not data.
        assert_eq!(
            cycle(&mut states, seen(Some(0.0), 0, true, false), 700),
            ["a"]
        );
        assert!(states.is_empty());
    }

    #[test]
    fn status_names_and_state_round_trip() {
        for (s, name) in [
            (OK, "OK"),
            (Warn, "Warn"),
            (Alert, "Alert"),
            (NoData, "No Data"),
        ] {
            assert_eq!(s.as_str(), name);
            assert_eq!(serde_json::to_value(s).unwrap(), json!(name));
        }
        let g = GroupState {
            status: NoData,
            since_ts: 5,
            last_value: Some(1.5),
            last_data_ts: Some(4),
            first_seen_ts: 1,
            last_notified_ts: None,
            downtime: None,
        };
        let text = serde_json::to_string(&g).unwrap();
        assert!(!text.contains("downtime"), "{text}");
        assert_eq!(serde_json::from_str::<GroupState>(&text).unwrap(), g);
        let muted = GroupState {
            downtime: Some("d1".into()),
            ..g
        };
        let text = serde_json::to_string(&muted).unwrap();
        assert_eq!(serde_json::from_str::<GroupState>(&text).unwrap(), muted);
    }

    #[test]
    fn skipped_groups_keep_their_state() {
        let r = gt(80.0);
        let mut states = BTreeMap::new();
        let seen = |x: f64, skip: &[&str]| Observed {
            values: [("a".to_string(), Some(x)), ("b".to_string(), Some(x))]
                .into_iter()
                .collect(),
            skip: skip.iter().map(|g| g.to_string()).collect(),
            ..Observed::default()
        };
        // A partial window for a new group: not created yet.
        let t = step(&r, &mut states, &seen(90.0, &["a"]), 10);
        assert_eq!(t.len(), 1);
        assert!(!states.contains_key("a"));
        step(&r, &mut states, &seen(90.0, &[]), 20);
        assert_eq!(states["a"].status, Alert);
        // Skipped while alerting: neither recovers nor goes to No Data.
        let skip_a = Observed {
            skip: ["a".to_string()].into_iter().collect(),
            ..Observed::default()
        };
        let t = step(&r, &mut states, &skip_a, 30);
        assert_eq!(states["a"].status, Alert);
        assert!(t.iter().all(|t| t.group != "a"));
    }

    #[test]
    fn no_data_counts_from_the_newest_data() {
        let r = Rules {
            notify_no_data: true,
            no_data_timeframe_secs: Some(60),
            ..gt(80.0)
        };
        let mut states = BTreeMap::new();
        let seen = |v: Option<f64>, newest: Option<i64>| Observed {
            values: [("a".to_string(), v)].into_iter().collect(),
            newest_ts: newest.map(|t| ("a".to_string(), t)).into_iter().collect(),
            ..Observed::default()
        };
        step(&r, &mut states, &seen(Some(1.0), Some(95)), 100);
        assert_eq!(states["a"].last_data_ts, Some(95));
        // The point stays in the window until 160; then no data: 60 s after 95 is already over.
        step(&r, &mut states, &seen(Some(1.0), Some(95)), 150);
        assert_eq!(states["a"].status, OK);
        let t = step(&r, &mut states, &seen(None, None), 160);
        assert_eq!(t.len(), 1);
        assert_eq!(states["a"].status, NoData);
        // A newest time in the future is clamped to the evaluation time.
        step(&r, &mut states, &seen(Some(1.0), Some(10_000)), 170);
        assert_eq!(states["a"].last_data_ts, Some(170));
    }
}

//! The Datadog monitor definition (SPEC §7): checking a create or update body into a [`Definition`], the
//! document storage keeps ([`Definition::to_doc`]) and the answer the Datadog clients read ([`render`]).
//!
//! Checked: `type` (one of [`TYPES`]), `query` (parsed with [`parse_monitor_query`]; a malformed one is
//! refused naming the position), `name`/`message` strings, `tags` strings, `priority` 1–5 or null,
//! `restricted_roles` strings or null, and the options of [`check_options`]. Options this module does not
//! know are kept as given (Datadog passes them through).

use super::{parse_monitor_query, Comparator, MonitorQuery};
use crate::ast::{Expr, ExprKind};
use serde_json::{json, Map, Value as JsonValue};
use sightline_storage::MonitorDoc;

/// Monitor types accepted (`query alert` is Datadog's other name for `metric alert`).
pub const TYPES: [&str; 4] = [
    "metric alert",
    "query alert",
    "log alert",
    "trace-analytics alert",
];

/// The `overall_state` answered until an evaluator exists.
pub const NO_DATA: &str = "No Data";

/// A bad monitor definition; the message names the field (and the position, for a malformed query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidMonitor(pub String);

impl std::fmt::Display for InvalidMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad<T>(msg: impl Into<String>) -> Result<T, InvalidMonitor> {
    Err(InvalidMonitor(msg.into()))
}

/// A checked monitor definition: the fields a client sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub name: String,
    pub kind: String,
    pub query: String,
    pub message: String,
    pub tags: Vec<String>,
    pub priority: Option<i64>,
    pub restricted_roles: Option<Vec<String>>,
    /// Checked and normalized (thresholds as floats, defaults filled in), unknown ones kept.
    pub options: Map<String, JsonValue>,
    pub parsed: MonitorQuery,
    /// Whether the query groups (`by {…}` / `.by(…)`): one state per group.
    pub multi: bool,
}

/// The fields of a create body, all required ones present.
pub fn check_create(body: &JsonValue) -> Result<Definition, InvalidMonitor> {
    let Some(obj) = body.as_object() else {
        return bad("the request body must be a JSON object");
    };
    check_fields(obj)
}

/// A stored monitor with the fields of an update body applied (Datadog's `PUT`: the fields given replace
/// the stored ones, `options` as a whole; read-only fields are ignored).
pub fn check_update(stored: &MonitorDoc, body: &JsonValue) -> Result<Definition, InvalidMonitor> {
    let Some(obj) = body.as_object() else {
        return bad("the request body must be a JSON object");
    };
    let mut merged = stored.clone();
    for k in [
        "name",
        "type",
        "query",
        "message",
        "tags",
        "priority",
        "restricted_roles",
        "options",
    ] {
        if let Some(v) = obj.get(k) {
            merged.insert(k.into(), v.clone());
        }
    }
    check_fields(&merged)
}

fn opt_string(obj: &Map<String, JsonValue>, key: &str) -> Result<String, InvalidMonitor> {
    match obj.get(key) {
        None | Some(JsonValue::Null) => Ok(String::new()),
        Some(JsonValue::String(s)) => Ok(s.clone()),
        Some(other) => bad(format!("\"{key}\" must be a string, found {other}")),
    }
}

fn string_list(v: &JsonValue, key: &str) -> Result<Vec<String>, InvalidMonitor> {
    let Some(items) = v.as_array() else {
        return bad(format!("\"{key}\" must be a list of strings, found {v}"));
    };
    items
        .iter()
        .map(|t| match t {
            JsonValue::String(s) => Ok(s.clone()),
            other => bad(format!(
                "\"{key}\" must be a list of strings, found {other}"
            )),
        })
        .collect()
}

fn check_fields(obj: &Map<String, JsonValue>) -> Result<Definition, InvalidMonitor> {
    let kind = match obj.get("type") {
        Some(JsonValue::String(s)) if TYPES.contains(&s.as_str()) => s.clone(),
        Some(JsonValue::String(s)) => {
            return bad(format!(
            "unsupported monitor type {s:?}: expected one of \"metric alert\", \"query alert\", \
                 \"log alert\", \"trace-analytics alert\""
        ))
        }
        None | Some(JsonValue::Null) => return bad("\"type\" is required"),
        Some(other) => return bad(format!("\"type\" must be a string, found {other}")),
    };
    let query = match obj.get("query") {
        Some(JsonValue::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(JsonValue::String(_)) | None | Some(JsonValue::Null) => {
            return bad("\"query\" is required")
        }
        Some(other) => return bad(format!("\"query\" must be a string, found {other}")),
    };
    let parsed = parse_monitor_query(&kind, &query)
        .map_err(|e| InvalidMonitor(format!("invalid query {query:?}: {e}")))?;
    let name = opt_string(obj, "name")?;
    let message = opt_string(obj, "message")?;
    let tags = match obj.get("tags") {
        None | Some(JsonValue::Null) => Vec::new(),
        Some(v) => string_list(v, "tags")?,
    };
    let priority = match obj.get("priority") {
        None | Some(JsonValue::Null) => None,
        Some(v) => match v.as_i64() {
            Some(p) if (1..=5).contains(&p) => Some(p),
            _ => {
                return bad(format!(
                    "\"priority\" must be an integer from 1 to 5, found {v}"
                ))
            }
        },
    };
    let restricted_roles = match obj.get("restricted_roles") {
        None | Some(JsonValue::Null) => None,
        Some(v) => Some(string_list(v, "restricted_roles")?),
    };
    let options = match obj.get("options") {
        None | Some(JsonValue::Null) => Map::new(),
        Some(JsonValue::Object(o)) => o.clone(),
        Some(other) => return bad(format!("\"options\" must be an object, found {other}")),
    };
    let options = check_options(&options, &parsed)?;
    let multi = is_multi(&parsed);
    Ok(Definition {
        name,
        kind,
        query,
        message,
        tags,
        priority,
        restricted_roles,
        options,
        parsed,
        multi,
    })
}

/// Whether the monitor keeps one state per group.
fn is_multi(q: &MonitorQuery) -> bool {
    fn grouped(e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Number(_) => false,
            ExprKind::Metric(m) => !m.group_by.is_empty(),
            ExprKind::Binary { lhs, rhs, .. } => grouped(lhs) || grouped(rhs),
            ExprKind::Neg(e) => grouped(e),
            ExprKind::Call { arg, .. } => grouped(arg),
        }
    }
    match q {
        MonitorQuery::Metric { query, .. } => crate::parser::parse(query)
            .map(|q| q.exprs.iter().any(grouped))
            .unwrap_or(false),
        MonitorQuery::Events { group_by, .. } => !group_by.is_empty(),
    }
}

const THRESHOLD_KEYS: [&str; 6] = [
    "critical",
    "warning",
    "critical_recovery",
    "warning_recovery",
    "ok",
    "unknown",
];

/// Integer options: name, minimum, maximum, unit.
const INT_OPTIONS: [(&str, i64, i64, &str); 6] = [
    ("no_data_timeframe", 1, i64::MAX, "minutes"),
    ("renotify_interval", 0, i64::MAX, "minutes"),
    ("evaluation_delay", 0, i64::MAX, "seconds"),
    ("new_group_delay", 0, i64::MAX, "seconds"),
    ("new_host_delay", 0, i64::MAX, "seconds"),
    ("timeout_h", 0, 24, "hours"),
];

/// Boolean options and their defaults (filled in when absent).
const BOOL_OPTIONS: [(&str, Option<bool>); 5] = [
    ("notify_no_data", Some(false)),
    ("notify_audit", Some(false)),
    ("include_tags", Some(true)),
    ("require_full_window", Some(false)),
    ("locked", None),
];

/// Checks and normalizes the options against the parsed query.
///
/// `thresholds`: absent means `{critical: <the query's threshold>}`; when given, `critical` is required and
/// must equal the query's threshold; values are numbers (null allowed but for `critical`). With `>`/`>=`,
/// `warning` < `critical`, `critical_recovery` < `critical`, `warning_recovery` < `warning`; with `<`/`<=`
/// the reverse; `warning_recovery` needs `warning`. The integer options of [`INT_OPTIONS`] are integers
/// (or null) in range, the booleans of [`BOOL_OPTIONS`] booleans, `escalation_message` a string.
pub fn check_options(
    options: &Map<String, JsonValue>,
    q: &MonitorQuery,
) -> Result<Map<String, JsonValue>, InvalidMonitor> {
    let (cmp, query_threshold) = match q {
        MonitorQuery::Metric {
            comparator,
            threshold,
            ..
        }
        | MonitorQuery::Events {
            comparator,
            threshold,
            ..
        } => (*comparator, *threshold),
    };
    let mut out = options.clone();
    let thresholds = match options.get("thresholds") {
        None | Some(JsonValue::Null) => {
            let mut t = Map::new();
            t.insert("critical".into(), json!(query_threshold));
            t
        }
        Some(JsonValue::Object(t)) => check_thresholds(t, cmp, query_threshold)?,
        Some(other) => {
            return bad(format!(
                "options.thresholds must be an object, found {other}"
            ))
        }
    };
    out.insert("thresholds".into(), JsonValue::Object(thresholds));
    for (key, min, max, unit) in INT_OPTIONS {
        match options.get(key) {
            None | Some(JsonValue::Null) => {}
            Some(v) => match v.as_i64() {
                Some(n) if (min..=max).contains(&n) => {}
                _ => {
                    let range = if max == i64::MAX {
                        format!("at least {min}")
                    } else {
                        format!("from {min} to {max}")
                    };
                    return bad(format!(
                        "options.{key} must be an integer number of {unit}, {range}, found {v}"
                    ));
                }
            },
        }
    }
    for (key, default) in BOOL_OPTIONS {
        match options.get(key) {
            None | Some(JsonValue::Null) => {
                if let Some(d) = default {
                    out.insert(key.into(), JsonValue::Bool(d));
                }
            }
            Some(JsonValue::Bool(_)) => {}
            Some(other) => return bad(format!("options.{key} must be a boolean, found {other}")),
        }
    }
    match options.get("escalation_message") {
        None | Some(JsonValue::Null) | Some(JsonValue::String(_)) => {}
        Some(other) => {
            return bad(format!(
                "options.escalation_message must be a string, found {other}"
            ))
        }
    }
    Ok(out)
}

fn check_thresholds(
    given: &Map<String, JsonValue>,
    cmp: Comparator,
    query_threshold: f64,
) -> Result<Map<String, JsonValue>, InvalidMonitor> {
    let mut out = given.clone();
    let mut value = |key: &str| -> Result<Option<f64>, InvalidMonitor> {
        match given.get(key) {
            None | Some(JsonValue::Null) => Ok(None),
            Some(v) => match v.as_f64() {
                Some(f) if f.is_finite() => {
                    out.insert(key.into(), json!(f));
                    Ok(Some(f))
                }
                _ => bad(format!(
                    "options.thresholds.{key} must be a number, found {v}"
                )),
            },
        }
    };
    let mut got = [None; THRESHOLD_KEYS.len()];
    for (slot, key) in got.iter_mut().zip(THRESHOLD_KEYS) {
        *slot = value(key)?;
    }
    let [critical, warning, critical_recovery, warning_recovery, _, _] = got;
    let Some(critical) = critical else {
        return bad("options.thresholds.critical is required");
    };
    if critical != query_threshold {
        return bad(format!(
            "options.thresholds.critical ({critical}) must equal the threshold of the query ({query_threshold})"
        ));
    }
    if warning_recovery.is_some() && warning.is_none() {
        return bad("options.thresholds.warning_recovery needs options.thresholds.warning");
    }
    let above = match cmp {
        Comparator::Gt | Comparator::Ge => true,
        Comparator::Lt | Comparator::Le => false,
        Comparator::Eq | Comparator::Ne => return Ok(out),
    };
    let pairs = [
        ("warning", warning, "critical", Some(critical)),
        (
            "critical_recovery",
            critical_recovery,
            "critical",
            Some(critical),
        ),
        ("warning_recovery", warning_recovery, "warning", warning),
    ];
    for (lo_name, lo, hi_name, hi) in pairs {
        let (Some(a), Some(b)) = (lo, hi) else {
            continue;
        };
        let ok = if above { a < b } else { a > b };
        if !ok {
            let relation = if above { "below" } else { "above" };
            return bad(format!(
                "options.thresholds.{lo_name} ({a}) must be {relation} options.thresholds.{hi_name} ({b}) \
                 for a monitor with \"{}\"",
                cmp.symbol()
            ));
        }
    }
    Ok(out)
}

/// Who created a monitor (no user accounts yet: always this one).
pub fn creator() -> JsonValue {
    json!({"email": "sightline@localhost", "handle": "sightline", "name": "Sightline"})
}

/// An RFC 3339 timestamp with microseconds, as Datadog answers.
pub fn timestamp_now() -> String {
    let now = jiff::Timestamp::now();
    format!("{now:.6}")
}

impl Definition {
    /// The stored document: the definition with `created`, `modified`, `creator` and `multi`.
    pub fn to_doc(&self, created: &str, modified: &str, creator: &JsonValue) -> MonitorDoc {
        let v = json!({
            "name": self.name,
            "type": self.kind,
            "query": self.query,
            "message": self.message,
            "tags": self.tags,
            "options": self.options,
            "priority": self.priority,
            "restricted_roles": self.restricted_roles,
            "multi": self.multi,
            "created": created,
            "modified": modified,
            "creator": creator,
        });
        match v {
            JsonValue::Object(m) => m,
            _ => unreachable!("a JSON object literal"),
        }
    }
}

/// The Datadog `Monitor` answered for a stored document: the stored fields plus `overall_state`,
/// `deleted` and `state` (no evaluator yet: "No Data" and no groups).
pub fn render(doc: &MonitorDoc) -> JsonValue {
    let mut m = doc.clone();
    m.insert("overall_state".into(), json!(NO_DATA));
    m.insert("deleted".into(), JsonValue::Null);
    m.insert("state".into(), json!({"groups": {}}));
    m.entry("multi").or_insert(JsonValue::Bool(false));
    m.entry("restricted_roles").or_insert(JsonValue::Null);
    m.entry("priority").or_insert(JsonValue::Null);
    JsonValue::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRIC: &str = "avg(last_5m):avg:system.cpu.user{env:prod} by {host} > 80";
    const BELOW: &str = "avg(last_5m):avg:free.disk{*} < 10";
    const LOGS: &str = r#"logs("status:error").index("*").rollup("count").last("5m") > 10"#;

    /// Checks a create body: `Ok(check)` runs `check` on the definition, `Err(text)` expects an error
    /// containing `text`.
    fn check(body: JsonValue, want: Result<fn(&Definition), &str>) {
        match (check_create(&body), want) {
            (Ok(d), Ok(f)) => f(&d),
            (Err(e), Err(text)) => assert!(e.0.contains(text), "{body}: {e:?} lacks {text:?}"),
            (Ok(d), Err(text)) => panic!("{body}: accepted ({d:?}), expected {text:?}"),
            (Err(e), Ok(_)) => panic!("{body}: refused: {e}"),
        }
    }

    fn m(kind: &str, query: &str, options: JsonValue) -> JsonValue {
        json!({"name": "n", "type": kind, "query": query, "options": options})
    }

    #[test]
    fn create_bodies() {
        type Case = (JsonValue, Result<fn(&Definition), &'static str>);
        let cases: Vec<Case> = vec![
            (
                m("metric alert", METRIC, json!(null)),
                Ok(|d| {
                    assert!(d.multi);
                    assert_eq!(d.options["thresholds"], json!({"critical": 80.0}));
                    assert_eq!(d.options["notify_no_data"], json!(false));
                    assert_eq!(d.options["include_tags"], json!(true));
                }),
            ),
            (
                m("query alert", BELOW, json!({"thresholds": {"critical": 10, "warning": 20,
                    "critical_recovery": 12, "warning_recovery": 25}, "custom_thing": [1]})),
                Ok(|d| {
                    assert!(!d.multi);
                    assert_eq!(d.options["thresholds"]["warning"], json!(20.0));
                    assert_eq!(d.options["custom_thing"], json!([1]));
                }),
            ),
            (
                m("log alert", LOGS, json!({"thresholds": {"critical": 10, "warning": 5, "warning_recovery": 4,
                    "critical_recovery": 9}, "notify_no_data": true, "no_data_timeframe": 10,
                    "renotify_interval": 0, "evaluation_delay": 60, "new_group_delay": 30,
                    "require_full_window": true, "include_tags": false, "notify_audit": true,
                    "timeout_h": 24, "escalation_message": "again"})),
                Ok(|d| {
                    assert!(!d.multi);
                    assert_eq!(d.options["include_tags"], json!(false));
                }),
            ),
            (
                m("trace-analytics alert",
                  r#"trace-analytics("service:web").rollup("count").by("resource_name").last("5m") > 1"#,
                  json!({})),
                Ok(|d| assert!(d.multi)),
            ),
            (
                json!({"type": "metric alert", "query": METRIC, "tags": ["team:a"], "priority": 5,
                       "restricted_roles": null}),
                Ok(|d| {
                    assert_eq!(d.name, "");
                    assert_eq!(d.tags, ["team:a"]);
                    assert_eq!(d.priority, Some(5));
                }),
            ),
            // Refusals.
            (json!([1]), Err("the request body must be a JSON object")),
            (json!({"query": METRIC}), Err("\"type\" is required")),
            (
                m("composite", "1 && 2", json!({})),
                Err("unsupported monitor type \"composite\""),
            ),
            (m("metric alert", "", json!({})), Err("\"query\" is required")),
            (
                m("metric alert", "avg(last_5m):avg:cpu{*} >> 80", json!({})),
                Err("at position"),
            ),
            (m("log alert", METRIC, json!({})), Err("invalid query")),
            (
                json!({"type": "metric alert", "query": METRIC, "priority": 6}),
                Err("\"priority\" must be an integer from 1 to 5, found 6"),
            ),
            (
                json!({"type": "metric alert", "query": METRIC, "tags": "a"}),
                Err("\"tags\" must be a list of strings"),
            ),
            (
                json!({"type": "metric alert", "query": METRIC, "name": 3}),
                Err("\"name\" must be a string"),
            ),
            (
                json!({"type": "metric alert", "query": METRIC, "options": 3}),
                Err("\"options\" must be an object"),
            ),
            (
                m("metric alert", METRIC, json!({"thresholds": {"warning": 70}})),
                Err("options.thresholds.critical is required"),
            ),
            (
                m("metric alert", METRIC, json!({"thresholds": {"critical": 90}})),
                Err("options.thresholds.critical (90) must equal the threshold of the query (80)"),
            ),
            (
                m("metric alert", METRIC, json!({"thresholds": {"critical": "80"}})),
                Err("options.thresholds.critical must be a number"),
            ),
            (
                m("metric alert", METRIC, json!({"thresholds": {"critical": 80, "warning": 90}})),
                Err("options.thresholds.warning (90) must be below options.thresholds.critical (80) for a monitor with \">\""),
            ),
            (
                m("metric alert", METRIC, json!({"thresholds": {"critical": 80, "critical_recovery": 80}})),
                Err("options.thresholds.critical_recovery (80) must be below"),
            ),
            (
                m("metric alert", METRIC, json!({"thresholds": {"critical": 80, "warning": 70, "warning_recovery": 75}})),
                Err("options.thresholds.warning_recovery (75) must be below options.thresholds.warning (70)"),
            ),
            (
                m("metric alert", METRIC, json!({"thresholds": {"critical": 80, "warning_recovery": 75}})),
                Err("warning_recovery needs options.thresholds.warning"),
            ),
            (
                m("metric alert", BELOW, json!({"thresholds": {"critical": 10, "warning": 5}})),
                Err("options.thresholds.warning (5) must be above options.thresholds.critical (10) for a monitor with \"<\""),
            ),
            (
                m("metric alert", BELOW, json!({"thresholds": {"critical": 10, "critical_recovery": 8}})),
                Err("critical_recovery (8) must be above"),
            ),
            (
                m("metric alert", METRIC, json!({"thresholds": 5})),
                Err("options.thresholds must be an object"),
            ),
            (
                m("metric alert", METRIC, json!({"no_data_timeframe": 0})),
                Err("options.no_data_timeframe must be an integer number of minutes, at least 1, found 0"),
            ),
            (
                m("metric alert", METRIC, json!({"renotify_interval": -1})),
                Err("options.renotify_interval must be an integer"),
            ),
            (
                m("metric alert", METRIC, json!({"evaluation_delay": 1.5})),
                Err("options.evaluation_delay must be an integer number of seconds"),
            ),
            (
                m("metric alert", METRIC, json!({"timeout_h": 25})),
                Err("options.timeout_h must be an integer number of hours, from 0 to 24, found 25"),
            ),
            (
                m("metric alert", METRIC, json!({"notify_no_data": "yes"})),
                Err("options.notify_no_data must be a boolean"),
            ),
            (
                m("metric alert", METRIC, json!({"escalation_message": 1})),
                Err("options.escalation_message must be a string"),
            ),
        ];
        for (body, want) in cases {
            check(body, want);
        }
    }

    #[test]
    fn updates_replace_given_fields() {
        let d = check_create(&m("metric alert", METRIC, json!({"notify_no_data": true}))).unwrap();
        let stored = d.to_doc("t0", "t0", &creator());
        let u = check_update(
            &stored,
            &json!({"name": "renamed", "id": 99, "created": "x"}),
        )
        .unwrap();
        assert_eq!(u.name, "renamed");
        assert_eq!(u.query, METRIC);
        assert_eq!(u.options["notify_no_data"], json!(true));
        let u = check_update(
            &stored,
            &json!({"query": METRIC.replace("80", "90"), "options": {"thresholds": {"critical": 90}}}),
        )
        .unwrap();
        assert_eq!(u.options["thresholds"], json!({"critical": 90.0}));
        assert_eq!(u.options["notify_no_data"], json!(false));
        // The stored thresholds no longer match a new query threshold.
        let e = check_update(&stored, &json!({"query": METRIC.replace("80", "90")}));
        assert!(e
            .unwrap_err()
            .0
            .contains("must equal the threshold of the query (90)"));
        assert!(check_update(&stored, &json!("x")).is_err());
    }

    #[test]
    fn render_adds_read_only_fields() {
        let d = check_create(&m("metric alert", METRIC, json!({}))).unwrap();
        let mut doc = d.to_doc("a", "b", &creator());
        doc.insert("id".into(), json!(7));
        let r = render(&doc);
        assert_eq!(r["overall_state"], "No Data");
        assert_eq!(r["deleted"], JsonValue::Null);
        assert_eq!(r["state"], json!({"groups": {}}));
        assert_eq!(r["multi"], true);
        assert_eq!(r["id"], 7);
        assert_eq!(r["creator"]["handle"], "sightline");
        assert!(timestamp_now().ends_with('Z'));
    }
}

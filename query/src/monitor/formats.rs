//! Built-in webhook formats (SPEC §7, issue #5): the JSON bodies of a webhook whose `format` is
//! `alertmanager` ([`alertmanager_v4`]) or `slack` ([`slack`]), built from a [`Notification`] and its
//! Datadog variables ([`super::notify::variables`]). Pure functions, no I/O.
//!
//! **Alertmanager webhook v4** (what Alertmanager's `webhook_config` posts), one alert per notification:
//!
//! ```text
//! {"version": "4", "groupKey": "{}:{alertname=\"temp high\", monitor_id=\"7\"}", "truncatedAlerts": 0,
//!  "status": "firing"|"resolved", "receiver": <webhook name>,
//!  "groupLabels": {"alertname", "monitor_id"}, "commonLabels": <the alert's labels>,
//!  "commonAnnotations": <the alert's annotations>, "externalURL": <link base, may be "">,
//!  "alerts": [{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}]}
//! ```
//!
//! - `status`: `resolved` for a transition to OK, `firing` otherwise (Alert, Warn, No Data, renotifications).
//! - `labels`: the monitor's `key:value` tags, then the group's tags (`host:a` → `host: "a"`, winning over a
//!   monitor tag of the same key), then `alertname` (the monitor name) and `monitor_id`. Tags without a
//!   value are left out; label names are made Prometheus label names (`[a-zA-Z_][a-zA-Z0-9_]*`: other
//!   characters become `_`, a leading digit gets a `_` prefix). The labels, hence the fingerprint, are the
//!   same for every status of a group, so a receiver that deduplicates by fingerprint sees Warn → Alert →
//!   OK as one alert that changes severity and then resolves.
//! - `annotations`: `summary` (`$EVENT_TITLE`), `description` (`$EVENT_MSG`, the rendered message),
//!   `severity` (`critical` for Alert, `warning` for Warn, `no_data` for No Data; a resolved alert keeps the
//!   severity of the status it recovered from) and `value` (the transition's value) when known.
//! - `startsAt`, `endsAt`: RFC 3339 UTC. Firing: `startsAt` is the transition time from OK, else (a
//!   renotification, Warn → Alert, …) when the previous status began; `endsAt` is `0001-01-01T00:00:00Z`
//!   (what Alertmanager sends for an alert without an end). Resolved: `startsAt` is when the recovered status began (the transition time if that
//!   is unknown), `endsAt` the transition time.
//! - `generatorURL`: `$LINK`; `fingerprint`: Prometheus' label set fingerprint ([`fingerprint`]: FNV-1a 64
//!   over the sorted `name 0xff value 0xff` pairs, 16 lowercase hex digits), so the firing and the resolved
//!   message of one group share it and different groups differ.
//!
//! **Slack** incoming webhook: `{"text": "*<title>*\n<message>\n<<link>|View monitor>"}` where the title is
//! `$EVENT_TITLE`, the message `$EVENT_MSG`, with Slack's escaping of `&`, `<` and `>` (`&amp;`, `&lt;`,
//! `&gt;`) in every part; the link line is present only when `$LINK` is an absolute `http(s)://` URL (with
//! an empty link base, `$LINK` is a path Slack cannot open).

use super::notify::Notification;
use super::state::MonitorStatus;
use serde_json::{json, Map, Value as JsonValue};
use std::collections::BTreeMap;
use std::hash::Hasher;

/// What Alertmanager sends as `endsAt` for an alert without an end.
pub const NO_END: &str = "0001-01-01T00:00:00Z";

/// The `severity` annotation of a status (`critical`, `warning`, `no_data`; `ok` for OK, never sent).
pub fn severity(status: MonitorStatus) -> &'static str {
    match status {
        MonitorStatus::Alert => "critical",
        MonitorStatus::Warn => "warning",
        MonitorStatus::NoData => "no_data",
        MonitorStatus::Ok => "ok",
    }
}

/// Prometheus' fingerprint of a label set: FNV-1a 64 over the pairs sorted by name, each written as
/// `name 0xff value 0xff`; 16 lowercase hex digits.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h = fnv::FnvHasher::default();
    for (name, value) in labels {
        h.write(name.as_bytes());
        h.write_u8(0xff);
        h.write(value.as_bytes());
        h.write_u8(0xff);
    }
    format!("{:016x}", h.finish())
}

/// `name` as a Prometheus label name: characters outside `[a-zA-Z0-9_]` become `_`, a leading digit gets a
/// `_` prefix.
fn label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// RFC 3339 UTC of a unix time in seconds.
fn rfc3339(ts: i64) -> String {
    jiff::Timestamp::from_second(ts)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| NO_END.to_string())
}

fn var<'a>(vars: &'a BTreeMap<&str, String>, name: &str) -> &'a str {
    vars.get(name).map_or("", String::as_str)
}

/// The labels of a notification's alert (see the module documentation).
pub fn labels(n: &Notification) -> BTreeMap<String, String> {
    let t = &n.transition;
    let mut out = BTreeMap::new();
    let monitor_tags = n
        .monitor
        .get("tags")
        .and_then(JsonValue::as_array)
        .into_iter()
        .flatten()
        .filter_map(JsonValue::as_str);
    let group_tags = if t.group == super::eval::NO_GROUP {
        ""
    } else {
        t.group.as_str()
    };
    for tag in monitor_tags.chain(group_tags.split(',')) {
        if let Some((k, v)) = tag.split_once(':') {
            if !k.is_empty() && !v.is_empty() {
                out.insert(label_name(k), v.to_string());
            }
        }
    }
    let name = n
        .monitor
        .get("name")
        .and_then(JsonValue::as_str)
        .unwrap_or("");
    out.insert("alertname".into(), name.to_string());
    out.insert("monitor_id".into(), n.monitor_id.to_string());
    out
}

/// The Alertmanager webhook v4 body of a notification (see the module documentation). `receiver` is the
/// webhook's name, `external_url` the link base (may be empty).
pub fn alertmanager_v4(
    n: &Notification,
    vars: &BTreeMap<&str, String>,
    receiver: &str,
    external_url: &str,
) -> JsonValue {
    let t = &n.transition;
    let resolved = t.to == MonitorStatus::Ok;
    let status = if resolved { "resolved" } else { "firing" };
    let labels = labels(n);
    let began = if t.from_since_ts > 0 {
        t.from_since_ts
    } else {
        t.ts
    };
    let (starts_at, ends_at) = if resolved {
        (rfc3339(began), rfc3339(t.ts))
    } else if t.from != MonitorStatus::Ok {
        // A renotification or a change of severity: the alert began with the previous status.
        (rfc3339(began), NO_END.to_string())
    } else {
        (rfc3339(t.ts), NO_END.to_string())
    };
    let mut annotations = Map::new();
    annotations.insert("summary".into(), var(vars, "EVENT_TITLE").into());
    annotations.insert("description".into(), var(vars, "EVENT_MSG").into());
    let firing_status = if resolved { t.from } else { t.to };
    annotations.insert("severity".into(), severity(firing_status).into());
    if let Some(v) = t.value {
        annotations.insert("value".into(), v.to_string().into());
    }
    let group_labels: BTreeMap<&str, &str> = ["alertname", "monitor_id"]
        .into_iter()
        .map(|k| (k, labels[k].as_str()))
        .collect();
    let group_key = format!(
        "{{}}:{{{}}}",
        group_labels
            .iter()
            .map(|(k, v)| format!("{k}={}", JsonValue::from(*v)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let alert = json!({
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": var(vars, "LINK"),
        "fingerprint": fingerprint(&labels),
    });
    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [alert],
    })
}

/// Slack's escaping of message text: `&`, `<`, `>` as `&amp;`, `&lt;`, `&gt;`.
pub fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The Slack incoming-webhook body of a notification (see the module documentation).
pub fn slack(_n: &Notification, vars: &BTreeMap<&str, String>) -> JsonValue {
    let mut text = format!(
        "*{}*\n{}",
        slack_escape(var(vars, "EVENT_TITLE")),
        slack_escape(var(vars, "EVENT_MSG"))
    );
    let link = var(vars, "LINK");
    if link.starts_with("http://") || link.starts_with("https://") {
        text.push_str(&format!("\n<{}|View monitor>", slack_escape(link)));
    }
    json!({ "text": text })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::notify::variables;
    use crate::monitor::state::Transition;
    use MonitorStatus::*;

    const TS: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z
    const SINCE: i64 = 1_699_999_000; // 2023-11-14T21:56:40Z

    fn notification(group: &str, from: MonitorStatus, to: MonitorStatus) -> Notification {
        let monitor = json!({
            "id": 7, "name": "temp high", "type": "metric alert",
            "query": "min(last_1m):min:e2e.temp{*} by {host} > 80",
            "message": "{{#is_alert}}hot {{host.name}} <b> & co{{/is_alert}}{{#is_recovery}}ok {{host.name}}{{/is_recovery}} @webhook-am",
            "tags": ["team:x", "host:from-monitor", "bare", "k.dotted:v"],
        });
        Notification::new(
            7,
            monitor.as_object().unwrap().clone(),
            Transition {
                group: group.into(),
                from,
                to,
                value: Some(95.5),
                ts: TS,
                notify: true,
                renotify: from == to,
                from_since_ts: SINCE,
                auto_resolved: false,
            },
        )
    }

    /// Builds the Alertmanager payload of `n` and checks every documented field's presence and type, then
    /// the expected (JSON pointer, value) pairs; returns the payload.
    fn check(n: &Notification, want: &[(&str, JsonValue)]) -> JsonValue {
        let vars = variables(n, "http://s:7800");
        let p = alertmanager_v4(n, &vars, "am", "http://s:7800");
        let string = |ptr: &str| {
            assert!(
                p.pointer(ptr).is_some_and(JsonValue::is_string),
                "{ptr} in {p}"
            );
        };
        let object = |ptr: &str| {
            assert!(
                p.pointer(ptr).is_some_and(JsonValue::is_object),
                "{ptr} in {p}"
            );
        };
        for ptr in [
            "/version",
            "/groupKey",
            "/status",
            "/receiver",
            "/externalURL",
        ] {
            string(ptr);
        }
        for ptr in ["/groupLabels", "/commonLabels", "/commonAnnotations"] {
            object(ptr);
        }
        assert_eq!(p["truncatedAlerts"], 0, "{p}");
        assert_eq!(p["alerts"].as_array().map(Vec::len), Some(1), "{p}");
        for f in [
            "status",
            "startsAt",
            "endsAt",
            "generatorURL",
            "fingerprint",
        ] {
            string(&format!("/alerts/0/{f}"));
        }
        object("/alerts/0/labels");
        object("/alerts/0/annotations");
        let fp = p["alerts"][0]["fingerprint"].as_str().unwrap();
        assert!(
            fp.len() == 16 && fp.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
            "{fp}"
        );
        for key in ["startsAt", "endsAt"] {
            let v = p["alerts"][0][key].as_str().unwrap();
            assert!(
                v.parse::<jiff::Timestamp>().is_ok() && v.ends_with('Z'),
                "{key} {v}"
            );
        }
        for (ptr, value) in want {
            assert_eq!(p.pointer(ptr), Some(value), "{ptr} in {p}");
        }
        p
    }

    #[test]
    fn alertmanager_payloads() {
        let firing = check(
            &notification("host:a,env:prod", Ok, Alert),
            &[
                ("/version", json!("4")),
                ("/status", json!("firing")),
                ("/receiver", json!("am")),
                ("/externalURL", json!("http://s:7800")),
                (
                    "/groupKey",
                    json!(r#"{}:{alertname="temp high", monitor_id="7"}"#),
                ),
                (
                    "/groupLabels",
                    json!({"alertname": "temp high", "monitor_id": "7"}),
                ),
                (
                    "/alerts/0/labels",
                    json!({"alertname": "temp high", "monitor_id": "7",
                           "host": "a", "env": "prod", "team": "x", "k_dotted": "v"}),
                ),
                ("/alerts/0/status", json!("firing")),
                (
                    "/alerts/0/annotations/summary",
                    json!("[Triggered on {host:a,env:prod}] temp high"),
                ),
                (
                    "/alerts/0/annotations/description",
                    json!("hot a <b> & co @webhook-am"),
                ),
                ("/alerts/0/annotations/value", json!("95.5")),
                ("/alerts/0/startsAt", json!("2023-11-14T22:13:20Z")),
                ("/alerts/0/endsAt", json!(NO_END)),
                ("/alerts/0/generatorURL", json!("http://s:7800/monitors/7")),
            ],
        );
        assert_eq!(firing["commonLabels"], firing["alerts"][0]["labels"]);
        assert_eq!(
            firing["commonAnnotations"],
            firing["alerts"][0]["annotations"]
        );

        let resolved = check(
            &notification("host:a,env:prod", Alert, Ok),
            &[
                ("/status", json!("resolved")),
                ("/alerts/0/status", json!("resolved")),
                ("/alerts/0/annotations/severity", json!("critical")),
                ("/alerts/0/startsAt", json!("2023-11-14T21:56:40Z")),
                ("/alerts/0/endsAt", json!("2023-11-14T22:13:20Z")),
                (
                    "/alerts/0/annotations/summary",
                    json!("[Recovered on {host:a,env:prod}] temp high"),
                ),
            ],
        );
        // The firing and the resolved message of a group share the fingerprint.
        let fp = |p: &JsonValue| p["alerts"][0]["fingerprint"].clone();
        assert_eq!(fp(&firing), fp(&resolved));
        // Stable across calls and severities, different for another group.
        let again = check(&notification("host:a,env:prod", Ok, Alert), &[]);
        assert_eq!(fp(&again), fp(&firing));
        let other = check(&notification("host:b,env:prod", Ok, Alert), &[]);
        assert_ne!(fp(&other), fp(&firing));
        let warn = check(
            &notification("host:a,env:prod", Ok, Warn),
            &[("/alerts/0/annotations/severity", json!("warning"))],
        );
        assert_eq!(fp(&warn), fp(&firing));
        // Warn → Alert: the alert began with the warning.
        check(
            &notification("host:a,env:prod", Warn, Alert),
            &[
                ("/alerts/0/annotations/severity", json!("critical")),
                ("/alerts/0/startsAt", json!("2023-11-14T21:56:40Z")),
            ],
        );

        check(
            &notification("host:a", Warn, Ok),
            &[("/alerts/0/annotations/severity", json!("warning"))],
        );
        let mut no_data = notification("*", Ok, NoData);
        no_data.transition.value = None;
        let p = check(
            &no_data,
            &[
                ("/status", json!("firing")),
                ("/alerts/0/annotations/severity", json!("no_data")),
                // The monitor's own tag stands when no group tag overrides it.
                ("/alerts/0/labels/host", json!("from-monitor")),
                (
                    "/alerts/0/annotations/summary",
                    json!("[No Data] temp high"),
                ),
            ],
        );
        assert!(p["alerts"][0]["annotations"].get("value").is_none(), "{p}");
        // A renotification starts when the status began; an unknown start falls back to the transition.
        check(
            &notification("host:a", Alert, Alert),
            &[("/alerts/0/startsAt", json!("2023-11-14T21:56:40Z"))],
        );
        let mut old = notification("host:a", Alert, Ok);
        old.transition.from_since_ts = 0;
        check(
            &old,
            &[
                ("/alerts/0/startsAt", json!("2023-11-14T22:13:20Z")),
                ("/alerts/0/endsAt", json!("2023-11-14T22:13:20Z")),
            ],
        );
        let vars = variables(&old, "");
        let p = alertmanager_v4(&old, &vars, "am", "");
        assert_eq!(
            (&p["externalURL"], &p["alerts"][0]["generatorURL"]),
            (&json!(""), &json!("/monitors/7"))
        );
    }

    #[test]
    fn fingerprints_match_prometheus() {
        // Test vectors of prometheus/common's model (labelSetToFingerprint).
        let set = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let table = [
            (set(&[]), 14695981039346656037u64),
            (
                set(&[("name", "garland, briggs"), ("fear", "love is not enough")]),
                5799056148416392346,
            ),
            (
                set(&[("first-label", "first-label-value")]),
                5146282821936882169,
            ),
        ];
        for (labels, want) in table {
            assert_eq!(fingerprint(&labels), format!("{want:016x}"), "{labels:?}");
        }
        assert_eq!(label_name("9a.b-c"), "_9a_b_c");
    }

    #[test]
    fn slack_payloads() {
        let table = [
            (
                notification("host:a", Ok, Alert),
                "http://s:7800",
                "*[Triggered on {host:a}] temp high*\nhot a &lt;b&gt; &amp; co @webhook-am\n<http://s:7800/monitors/7|View monitor>",
            ),
            (
                notification("host:a", Alert, Ok),
                "https://s.example/x&y",
                "*[Recovered on {host:a}] temp high*\nok a @webhook-am\n<https://s.example/x&amp;y/monitors/7|View monitor>",
            ),
            // Without a link base the link is a path: left out.
            (
                notification("*", Ok, Alert),
                "",
                "*[Triggered] temp high*\nhot  &lt;b&gt; &amp; co @webhook-am",
            ),
        ];
        for (n, base, want) in table {
            let vars = variables(&n, base);
            assert_eq!(slack(&n, &vars), json!({ "text": want }), "{base}");
        }
        assert_eq!(slack_escape("a<b>&c"), "a&lt;b&gt;&amp;c");
    }
}

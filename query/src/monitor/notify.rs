//! Webhook notifications for monitor transitions (SPEC §7, §9; issue #5).
//!
//! - Routing: every `@webhook-<name>` in the monitor `message` ([`mentions`]) selects the webhook `<name>`;
//!   an unknown name is logged and recorded as a failed attempt.
//! - Message templating ([`render_message`]): `{{value}}`, `{{threshold}}`, `{{warn_threshold}}`,
//!   `{{<tag>.name}}` (the group's tag value, e.g. `{{host.name}}`), sections `{{#is_alert}}…{{/is_alert}}`,
//!   `is_warning`, `is_recovery`, `is_alert_recovery`, `is_warning_recovery`, `is_no_data`, `is_renotify`, and
//!   their negations `{{^is_alert}}…{{/is_alert}}`. Unknown variables render empty.
//! - Payload ([`render_payload`]): the webhook's `payload` template, or Datadog's default payload
//!   ([`DEFAULT_PAYLOAD`]), with Datadog's `$VARIABLES` ([`variables`]) substituted: inside a JSON string as
//!   escaped string content, elsewhere as a JSON string. `encode_as: form` sends the top-level fields of the
//!   result as `application/x-www-form-urlencoded`. `custom_headers` (a JSON object) are added. That is the
//!   webhook `format` `datadog` (the default); the built-in formats ignore `payload` and send JSON built by
//!   [`super::formats`]: `alertmanager` an Alertmanager webhook v4 message (`receiver` = the webhook's
//!   name, `externalURL` = the link base), `slack` a Slack incoming-webhook `{"text": …}` ([`prepare`]).
//! - Delivery ([`Notifier`]): `POST` over HTTP/1.1 with a timeout (10 s), retried after 5xx answers,
//!   timeouts and connection errors with a backoff (0.5 s, 1 s, 2 s: at most 4 attempts). Redirects are not
//!   followed (a 3xx is recorded as a failure). `https://` targets go over TLS (rustls), the certificate
//!   checked for the URL's host against Mozilla's roots and `--alerts-webhook-ca-file`
//!   ([`super::transport::TlsRoots`]).
//! - SSRF (SPEC §9): the host is resolved once; if any resolved address is loopback, private, link-local,
//!   CGNAT, unspecified, multicast/broadcast or a cloud metadata address ([`refused_reason`]), the target is
//!   refused unless the address or the host is in `--alerts-webhook-allow` ([`AllowList`]); the connection
//!   goes to the checked address, never to a new resolution.
//!
//! Every attempt is appended to the monitor's record through [`MonitorStateRepo::record_attempts`] and shown
//! as `state.notifications` by `GET /api/v1/monitor/{id}?group_states=all`, each
//! `{"ts", "webhook", "group", "transition", "attempt", "status", "error", "duration_ms", "ok"}`.

use super::formats;
use super::state::{MonitorStatus, Transition};
use super::transport::{resolve_target, send_once, AttemptResult, TlsRoots};
use super::{parse_monitor_query, MonitorQuery};
use serde_json::{json, Value as JsonValue};
use sightline_storage::webhooks::WebhookFormat;
use sightline_storage::{
    MonitorDoc, MonitorId, MonitorStateRepo, Webhook, WebhookEncoding, WebhookRepo,
};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Datadog's default webhook payload.
pub const DEFAULT_PAYLOAD: &str = r#"{"body": $EVENT_MSG, "last_updated": $LAST_UPDATED, "event_type": $EVENT_TYPE, "title": $EVENT_TITLE, "date": $DATE, "org": {"id": $ORG_ID, "name": $ORG_NAME}, "id": $ID}"#;

/// One transition to notify.
#[derive(Debug, Clone)]
pub struct Notification {
    pub monitor_id: MonitorId,
    /// The monitor as it was when the transition happened.
    pub monitor: MonitorDoc,
    pub transition: Transition,
    /// Names the notification in the monitor's outbox (`<ts>:<group>:<status>`).
    pub key: String,
}

impl Notification {
    pub fn new(monitor_id: MonitorId, monitor: MonitorDoc, transition: Transition) -> Notification {
        let key = format!(
            "{}:{}:{}",
            transition.ts,
            transition.group,
            transition.to.as_str()
        );
        Notification {
            monitor_id,
            monitor,
            transition,
            key,
        }
    }

    /// The outbox entry ([`MonitorStateRepo::save_with_pending`]).
    pub fn to_pending(&self) -> JsonValue {
        json!({"key": self.key, "monitor": self.monitor, "transition": self.transition})
    }

    /// Reads an outbox entry back; `None` (logged) if it is not one.
    pub fn from_pending(monitor_id: MonitorId, p: &JsonValue) -> Option<Notification> {
        let parsed = (|| {
            let key = p.get("key")?.as_str()?.to_string();
            let monitor = p.get("monitor")?.as_object()?.clone();
            let transition = serde_json::from_value(p.get("transition")?.clone()).ok()?;
            Some(Notification {
                monitor_id,
                monitor,
                transition,
                key,
            })
        })();
        if parsed.is_none() {
            tracing::warn!(monitor_id, "an unreadable pending notification is skipped");
        }
        parsed
    }
}

/// `@webhook-<name>` mentions of a message, in order, without duplicates.
pub fn mentions(message: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = message;
    while let Some(i) = rest.find("@webhook-") {
        let after = &rest[i + "@webhook-".len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
            .unwrap_or(after.len());
        let name = after[..end].trim_end_matches('.');
        if !name.is_empty() && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
        rest = &after[end..];
    }
    out
}

/// What the message template sees.
#[derive(Debug, Clone, Default)]
pub struct MessageContext {
    pub from: Option<MonitorStatus>,
    pub to: Option<MonitorStatus>,
    pub renotify: bool,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub warn_threshold: Option<f64>,
    /// The group's tags, `host` → `a`.
    pub tags: BTreeMap<String, String>,
}

impl MessageContext {
    fn condition(&self, name: &str) -> bool {
        let to = |s| self.to == Some(s);
        let from = |s| self.from == Some(s);
        match name {
            "is_alert" => to(MonitorStatus::Alert),
            "is_warning" => to(MonitorStatus::Warn),
            "is_no_data" => to(MonitorStatus::NoData),
            "is_recovery" => to(MonitorStatus::Ok),
            "is_alert_recovery" => to(MonitorStatus::Ok) && from(MonitorStatus::Alert),
            "is_warning_recovery" => to(MonitorStatus::Ok) && from(MonitorStatus::Warn),
            "is_alert_to_warning" => to(MonitorStatus::Warn) && from(MonitorStatus::Alert),
            "is_renotify" => self.renotify,
            _ => false,
        }
    }

    fn variable(&self, name: &str) -> String {
        let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        match name {
            "value" => num(self.value),
            "threshold" => num(self.threshold),
            "warn_threshold" => num(self.warn_threshold),
            _ => name
                .strip_suffix(".name")
                .and_then(|tag| self.tags.get(tag))
                .cloned()
                .unwrap_or_default(),
        }
    }
}

/// Renders a monitor message template (see the module documentation).
pub fn render_message(template: &str, ctx: &MessageContext) -> String {
    let mut out = String::new();
    render_into(template, ctx, &mut out);
    out
}

fn render_into(mut rest: &str, ctx: &MessageContext, out: &mut String) {
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return;
        };
        let tag = after[..end].trim();
        let tail = &after[end + 2..];
        let section = tag
            .strip_prefix('#')
            .map(|n| (n.trim(), false))
            .or_else(|| tag.strip_prefix('^').map(|n| (n.trim(), true)));
        match section {
            Some((name, negate)) => {
                let (inner, next) = split_section(tail, name);
                if ctx.condition(name) != negate {
                    render_into(inner, ctx, out);
                }
                rest = next;
            }
            None if tag.starts_with('/') => rest = tail, // a stray closing tag
            None => {
                out.push_str(&ctx.variable(tag));
                rest = tail;
            }
        }
    }
    out.push_str(rest);
}

/// The body of the section `name` opened just before `text` and what follows its closing tag (nested
/// sections of the same name are balanced); an unclosed section runs to the end.
fn split_section<'a>(text: &'a str, name: &str) -> (&'a str, &'a str) {
    let mut depth = 0usize;
    let mut pos = 0usize;
    while let Some(i) = text[pos..].find("{{") {
        let at = pos + i;
        let Some(end) = text[at + 2..].find("}}") else {
            break;
        };
        let tag = text[at + 2..at + 2 + end].trim();
        let next = at + 2 + end + 2;
        if let Some(n) = tag.strip_prefix('#').or_else(|| tag.strip_prefix('^')) {
            if n.trim() == name {
                depth += 1;
            }
        } else if let Some(n) = tag.strip_prefix('/') {
            if n.trim() == name {
                if depth == 0 {
                    return (&text[..at], &text[next..]);
                }
                depth -= 1;
            }
        }
        pos = next;
    }
    (text, "")
}

/// `Triggered`, `Warn`, `Recovered`, `No Data` (Datadog's `$ALERT_TRANSITION`) and the `$ALERT_TYPE`.
pub fn transition_names(to: MonitorStatus) -> (&'static str, &'static str) {
    match to {
        MonitorStatus::Alert => ("Triggered", "error"),
        MonitorStatus::Warn => ("Warn", "warning"),
        MonitorStatus::Ok => ("Recovered", "success"),
        MonitorStatus::NoData => ("No Data", "warning"),
    }
}

fn group_tags(group: &str) -> Vec<(String, String)> {
    if group == super::eval::NO_GROUP || group.is_empty() {
        return Vec::new();
    }
    group
        .split(',')
        .map(|t| match t.split_once(':') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (t.to_string(), String::new()),
        })
        .collect()
}

fn threshold(doc: &MonitorDoc, key: &str) -> Option<f64> {
    doc.get("options")?.get("thresholds")?.get(key)?.as_f64()
}

/// The message context of a notification.
pub fn message_context(n: &Notification) -> MessageContext {
    let t = &n.transition;
    let query_threshold = || {
        let kind = n.monitor.get("type").and_then(JsonValue::as_str)?;
        let text = n.monitor.get("query").and_then(JsonValue::as_str)?;
        match parse_monitor_query(kind, text).ok()? {
            MonitorQuery::Metric { threshold, .. } | MonitorQuery::Events { threshold, .. } => {
                Some(threshold)
            }
        }
    };
    MessageContext {
        from: Some(t.from),
        to: Some(t.to),
        renotify: t.renotify,
        value: t.value,
        threshold: threshold(&n.monitor, "critical").or_else(query_threshold),
        warn_threshold: threshold(&n.monitor, "warning"),
        tags: group_tags(&t.group).into_iter().collect(),
    }
}

/// The metric name of a metric monitor query (`avg(last_5m):avg:system.cpu{*} > 1` → `system.cpu`).
fn alert_metric(query: &str) -> String {
    let Some((_, q)) = query.split_once("):") else {
        return String::new();
    };
    let q = q.trim();
    let q = q.split_once(':').map_or(q, |(_, m)| m);
    q.split(|c: char| c == '{' || c.is_whitespace() || c == ')')
        .next()
        .unwrap_or("")
        .to_string()
}

/// Datadog's webhook `$VARIABLES` for a notification, by name without `$`. `link_base` prefixes `$LINK`.
pub fn variables(n: &Notification, link_base: &str) -> BTreeMap<&'static str, String> {
    let t = &n.transition;
    let doc = &n.monitor;
    let s = |k: &str| {
        doc.get(k)
            .and_then(JsonValue::as_str)
            .unwrap_or("")
            .to_string()
    };
    let name = s("name");
    let query = s("query");
    let (transition, alert_type) = transition_names(t.to);
    let ctx = message_context(n);
    let msg = render_message(&s("message"), &ctx);
    let scope = if t.group == super::eval::NO_GROUP {
        String::new()
    } else {
        t.group.clone()
    };
    let title = if scope.is_empty() {
        format!("[{transition}] {name}")
    } else {
        format!("[{transition} on {{{scope}}}] {name}")
    };
    let value = t
        .value
        .map_or_else(|| "no data".to_string(), |v| v.to_string());
    let status = format!("{} is {} (value: {value})", name, t.to.as_str());
    let mut tags: Vec<String> = doc
        .get("tags")
        .and_then(JsonValue::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    tags.extend(
        scope
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    );
    tags.push(format!("monitor_id:{}", n.monitor_id));
    let hostname = group_tags(&t.group)
        .into_iter()
        .find(|(k, _)| k == "host")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let kind = s("type");
    let event_type = match kind.as_str() {
        "log alert" => "log_alert_monitor",
        "trace-analytics alert" => "trace_analytics_alert_monitor",
        _ => "query_alert_monitor",
    };
    let last_updated = jiff::Timestamp::from_second(t.ts)
        .map(|ts| ts.to_string())
        .unwrap_or_default();
    let priority = doc
        .get("priority")
        .filter(|p| !p.is_null())
        .map(|p| match p {
            JsonValue::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default();
    let metric = if kind == "metric alert" || kind == "query alert" {
        alert_metric(&query)
    } else {
        String::new()
    };
    let mut v = BTreeMap::new();
    v.insert("ID", format!("{}{}", n.monitor_id, t.ts));
    v.insert("ALERT_ID", n.monitor_id.to_string());
    v.insert("ALERT_TITLE", title.clone());
    v.insert("ALERT_STATUS", status);
    v.insert("ALERT_TRANSITION", transition.to_string());
    v.insert("ALERT_TYPE", alert_type.to_string());
    v.insert("ALERT_CYCLE_KEY", format!("{}-{}", n.monitor_id, t.group));
    v.insert("EVENT_MSG", msg);
    v.insert("EVENT_TITLE", title);
    v.insert("EVENT_TYPE", event_type.to_string());
    v.insert("DATE", t.ts.saturating_mul(1000).to_string());
    v.insert("LAST_UPDATED", last_updated);
    v.insert("HOSTNAME", hostname);
    v.insert("TAGS", tags.join(","));
    v.insert("ALERT_SCOPE", scope);
    v.insert("ALERT_QUERY", query);
    v.insert("ALERT_METRIC", metric);
    v.insert("ALERT_PRIORITY", priority);
    v.insert("LINK", format!("{link_base}/monitors/{}", n.monitor_id));
    v.insert("ORG_ID", "0".to_string());
    v.insert("ORG_NAME", "Sightline".to_string());
    v.insert("USER", String::new());
    v.insert("USERNAME", String::new());
    v
}

/// Substitutes `$VARIABLES` in a JSON payload template: inside a JSON string as escaped string content,
/// elsewhere as a JSON string. Names not in `vars` are kept as written.
pub fn render_payload(template: &str, vars: &BTreeMap<&'static str, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut in_string = false;
    let mut chars = template.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if in_string => {
                out.push(c);
                if let Some((_, e)) = chars.next() {
                    out.push(e);
                }
            }
            '"' => {
                in_string = !in_string;
                out.push(c);
            }
            '$' => {
                let rest = &template[i + 1..];
                let len = rest
                    .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                    .unwrap_or(rest.len());
                match vars.get(&rest[..len]) {
                    Some(value) if len > 0 => {
                        let quoted = JsonValue::String(value.clone()).to_string();
                        if in_string {
                            out.push_str(&quoted[1..quoted.len() - 1]);
                        } else {
                            out.push_str(&quoted);
                        }
                        for _ in 0..len {
                            chars.next();
                        }
                    }
                    _ => out.push(c),
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// A request ready to send: body, content type and extra headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub body: String,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
}

/// Builds the request of `webhook` for the notification `n`, whose variables are `vars`; `link_base` is the
/// Alertmanager `externalURL`. The `datadog` format renders the payload template (or Datadog's default
/// payload) and honours `encode_as`; the built-in formats always send JSON.
pub fn prepare(
    webhook: &Webhook,
    n: &Notification,
    vars: &BTreeMap<&'static str, String>,
    link_base: &str,
) -> Result<Prepared, String> {
    let (body, encoding) = match webhook.format {
        WebhookFormat::Datadog => {
            let template = webhook
                .payload
                .as_deref()
                .filter(|p| !p.trim().is_empty())
                .unwrap_or(DEFAULT_PAYLOAD);
            (render_payload(template, vars), webhook.encode_as)
        }
        WebhookFormat::Alertmanager => (
            formats::alertmanager_v4(n, vars, &webhook.name, link_base).to_string(),
            WebhookEncoding::Json,
        ),
        WebhookFormat::Slack => (formats::slack(n, vars).to_string(), WebhookEncoding::Json),
    };
    let (body, content_type) = match encoding {
        WebhookEncoding::Json => (body, "application/json"),
        WebhookEncoding::Form => {
            let parsed: JsonValue = serde_json::from_str(&body)
                .map_err(|e| format!("the rendered payload is not JSON: {e}"))?;
            let fields: Vec<(String, String)> = parsed
                .as_object()
                .ok_or("a form-encoded payload must be a JSON object")?
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        JsonValue::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect();
            let body = serde_urlencoded::to_string(&fields).map_err(|e| e.to_string())?;
            (body, "application/x-www-form-urlencoded")
        }
    };
    let mut headers = Vec::new();
    if let Some(h) = webhook
        .custom_headers
        .as_deref()
        .filter(|h| !h.trim().is_empty())
    {
        let parsed: serde_json::Map<String, JsonValue> = serde_json::from_str(h)
            .map_err(|e| format!("custom_headers is not a JSON object: {e}"))?;
        for (k, v) in parsed {
            let v = match v {
                JsonValue::String(s) => s,
                other => other.to_string(),
            };
            headers.push((k, v));
        }
    }
    Ok(Prepared {
        body,
        content_type,
        headers,
    })
}

/// Why an address is refused as a webhook target, if it is.
pub fn refused_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused_v4(v4);
            }
            let seg = v6.segments();
            if v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
                Some("cloud metadata")
            } else if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if seg[0] == 0x64 && seg[1] == 0xff9b {
                // NAT64: judge the embedded IPv4 address.
                let [a, b] = seg[6].to_be_bytes();
                let [c, d] = seg[7].to_be_bytes();
                refused_v4(Ipv4Addr::new(a, b, c, d))
            } else {
                None
            }
        }
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, _, _] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some("cloud metadata")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("carrier-grade NAT")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("broadcast, multicast or reserved")
    } else {
        None
    }
}

/// `--alerts-webhook-allow`: CIDRs, addresses and host names exempt from the refusal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllowList {
    nets: Vec<(IpAddr, u8)>,
    hosts: Vec<String>,
}

impl AllowList {
    /// Parses the entries (`127.0.0.1`, `10.0.0.0/8`, `::1/128`, `hooks.internal`); a malformed CIDR is an
    /// error.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowList, String> {
        let mut out = AllowList::default();
        for e in entries {
            let e = e.as_ref().trim();
            if e.is_empty() {
                continue;
            }
            if let Some((addr, len)) = e.split_once('/') {
                let ip: IpAddr = addr
                    .parse()
                    .map_err(|_| format!("invalid address in {e:?}"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let len: u8 = len
                    .parse()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| format!("invalid prefix length in {e:?}"))?;
                out.nets.push((ip, len));
            } else if let Ok(ip) = e.trim_matches(['[', ']']).parse::<IpAddr>() {
                out.nets.push((ip, if ip.is_ipv4() { 32 } else { 128 }));
            } else {
                out.hosts.push(e.trim_end_matches('.').to_ascii_lowercase());
            }
        }
        Ok(out)
    }

    /// Whether the host name is listed.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host)
    }

    /// Whether the address is in a listed network.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.nets.iter().any(|(net, len)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
                u32::from(*n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
                u128::from(*n) & mask == u128::from(a) & mask
            }
            _ => false,
        })
    }
}

/// Delivery settings.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Per attempt (connection, request and answer).
    pub timeout: Duration,
    /// The pause before each retry; its length is the number of retries.
    pub retry_delays: Vec<Duration>,
    pub allow: AllowList,
    /// Prefix of `$LINK` (e.g. `http://sightline:7800`); empty gives a path.
    pub link_base: String,
    /// What `https://` targets' certificates are checked against.
    pub tls: TlsRoots,
}

impl Default for DeliveryConfig {
    fn default() -> DeliveryConfig {
        DeliveryConfig {
            timeout: Duration::from_secs(10),
            retry_delays: vec![
                Duration::from_millis(500),
                Duration::from_secs(1),
                Duration::from_secs(2),
            ],
            allow: AllowList::default(),
            link_base: String::new(),
            tls: TlsRoots::default(),
        }
    }
}

/// Sends notifications and records every attempt. [`Notifier::enqueue`] keeps each monitor's
/// notifications in order (one delivery queue per monitor, so a recovery never overtakes the alert it
/// resolves while that one is still being retried) while monitors are delivered independently.
pub struct Notifier {
    pub webhooks: Arc<dyn WebhookRepo>,
    pub states: Arc<dyn MonitorStateRepo>,
    pub config: DeliveryConfig,
    queues: std::sync::Mutex<HashMap<MonitorId, mpsc::UnboundedSender<Notification>>>,
}

impl Notifier {
    /// Monitors with a delivery worker right now (one per monitor with notifications in flight).
    pub fn active_queues(&self) -> usize {
        self.queues.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn new(
        webhooks: Arc<dyn WebhookRepo>,
        states: Arc<dyn MonitorStateRepo>,
        config: DeliveryConfig,
    ) -> Notifier {
        Notifier {
            webhooks,
            states,
            config,
            queues: Default::default(),
        }
    }

    /// Queues the notifications for delivery in the background, in order per monitor (needs a tokio
    /// runtime).
    pub fn enqueue(self: &Arc<Self>, notifications: Vec<Notification>) {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        for n in notifications {
            let id = n.monitor_id;
            // A queue whose worker is gone (a panic) is replaced.
            let n = match queues.get(&id) {
                Some(q) => match q.send(n) {
                    Ok(()) => continue,
                    Err(mpsc::error::SendError(n)) => n,
                },
                None => n,
            };
            let (tx, mut rx) = mpsc::unbounded_channel::<Notification>();
            let mine = tx.clone();
            let me = Arc::downgrade(self);
            tokio::spawn(async move {
                while let Some(n) = rx.recv().await {
                    let Some(me) = me.upgrade() else { break };
                    me.deliver_and_record(n).await;
                    // Nothing more queued: the worker ends and its queue leaves the map, under the lock
                    // `enqueue` sends under, so nothing sent to it is left behind (the next notification
                    // of this monitor starts a new worker).
                    let mut queues = me.queues.lock().unwrap_or_else(|e| e.into_inner());
                    if rx.is_empty() {
                        if queues.get(&id).is_some_and(|q| q.same_channel(&mine)) {
                            queues.remove(&id);
                        }
                        break;
                    }
                }
            });
            let _ = tx.send(n);
            queues.insert(id, tx);
        }
    }

    /// Delivers each notification to the webhooks its monitor message mentions, one after the other, and
    /// records the attempts, removing the notification from the monitor's outbox.
    pub async fn deliver_all(&self, notifications: Vec<Notification>) {
        for n in notifications {
            self.deliver_and_record(n).await;
        }
    }

    async fn deliver_and_record(&self, n: Notification) {
        let attempts = self.deliver(&n).await;
        let states = self.states.clone();
        let id = n.monitor_id;
        let saved =
            tokio::task::spawn_blocking(move || states.record_attempts(id, attempts, Some(&n.key)))
                .await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(monitor_id = id, error = %e, "cannot record notification attempts")
            }
            Err(e) => {
                tracing::warn!(monitor_id = id, error = %e, "recording attempts panicked")
            }
        }
    }

    /// Delivers one notification; returns the attempt records.
    pub async fn deliver(&self, n: &Notification) -> Vec<JsonValue> {
        let message = n
            .monitor
            .get("message")
            .and_then(JsonValue::as_str)
            .unwrap_or("");
        let names = mentions(message);
        if names.is_empty() {
            return Vec::new();
        }
        let vars = variables(n, &self.config.link_base);
        let (transition, _) = transition_names(n.transition.to);
        let mut records = Vec::new();
        for name in names {
            let record = |attempt: usize, status: Option<u16>, error: Option<String>, ms: u128| {
                let ok = status.is_some_and(|s| (200..300).contains(&s));
                json!({
                    "ts": n.transition.ts,
                    "webhook": name,
                    "group": n.transition.group,
                    "transition": transition,
                    "attempt": attempt,
                    "status": status,
                    "error": error,
                    "duration_ms": ms as u64,
                    "ok": ok,
                })
            };
            let Some(webhook) = self.webhooks.get(&name) else {
                tracing::warn!(monitor_id = n.monitor_id, webhook = %name, "unknown webhook mentioned");
                records.push(record(
                    0,
                    None,
                    Some(format!("unknown webhook {name:?}")),
                    0,
                ));
                continue;
            };
            let prepared = match prepare(&webhook, n, &vars, &self.config.link_base) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(monitor_id = n.monitor_id, webhook = %name, error = %e, "bad webhook");
                    records.push(record(0, None, Some(e), 0));
                    continue;
                }
            };
            let target = match resolve_target(&webhook.url, &self.config.allow).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(monitor_id = n.monitor_id, webhook = %name, error = %e, "webhook target refused");
                    records.push(record(0, None, Some(e), 0));
                    continue;
                }
            };
            let mut delays = self.config.retry_delays.iter();
            let mut attempt = 1usize;
            loop {
                let started = Instant::now();
                let result =
                    send_once(&target, &prepared, self.config.timeout, &self.config.tls).await;
                let ms = started.elapsed().as_millis();
                let retry = match result {
                    AttemptResult::Status(s) => {
                        let error = (!(200..300).contains(&s)).then(|| format!("HTTP {s}"));
                        records.push(record(attempt, Some(s), error, ms));
                        s >= 500
                    }
                    AttemptResult::Failed { error, retry } => {
                        records.push(record(attempt, None, Some(error), ms));
                        retry
                    }
                };
                if !retry {
                    break;
                }
                let Some(delay) = delays.next() else {
                    tracing::warn!(monitor_id = n.monitor_id, webhook = %name, "webhook delivery failed after {attempt} attempts");
                    break;
                };
                tokio::time::sleep(*delay).await;
                attempt += 1;
            }
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_storage::{MemoryMonitorStates, MemoryWebhooks};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn ctx(from: MonitorStatus, to: MonitorStatus) -> MessageContext {
        MessageContext {
            from: Some(from),
            to: Some(to),
            renotify: false,
            value: Some(95.5),
            threshold: Some(80.0),
            warn_threshold: Some(70.0),
            tags: [("host".to_string(), "a".to_string())]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn renders_messages() {
        use MonitorStatus::*;
        let t = "{{#is_alert}}hot {{host.name}} {{value}} > {{threshold}}{{/is_alert}}\
                 {{#is_warning}}warm {{warn_threshold}}{{/is_warning}}\
                 {{#is_recovery}}Recovered {{host.name}}{{/is_recovery}}\
                 {{#is_no_data}}silent{{/is_no_data}}{{^is_alert}}!{{/is_alert}} @webhook-ops";
        let cases = [
            (Ok, Alert, "hot a 95.5 > 80 @webhook-ops"),
            (Ok, Warn, "warm 70! @webhook-ops"),
            (Alert, Ok, "Recovered a! @webhook-ops"),
            (Ok, NoData, "silent! @webhook-ops"),
        ];
        for (from, to, want) in cases {
            assert_eq!(render_message(t, &ctx(from, to)), want, "{from:?}→{to:?}");
        }
        let c = ctx(Alert, Ok);
        let table = [
            ("{{ value }}", "95.5"),
            ("{{env.name}}", ""),
            ("{{#is_alert_recovery}}x{{/is_alert_recovery}}", "x"),
            ("{{#is_warning_recovery}}x{{/is_warning_recovery}}", ""),
            (
                "a {{#is_recovery}}b{{#is_recovery}}c{{/is_recovery}}d{{/is_recovery}} e",
                "a bcd e",
            ),
            (
                "{{#is_alert}}a{{#is_recovery}}b{{/is_recovery}}{{/is_alert}}z",
                "z",
            ),
            ("unclosed {{value", "unclosed {{value"),
            ("{{#is_alert}}never closed", ""),
        ];
        for (t, want) in table {
            assert_eq!(render_message(t, &c), want, "{t}");
        }
    }

    #[test]
    fn finds_mentions() {
        assert_eq!(
            mentions("hi @webhook-ops and @webhook-a_b-1. again @webhook-ops @slack-x"),
            vec!["ops".to_string(), "a_b-1".to_string()]
        );
        assert!(mentions("@webhook- nothing").is_empty());
    }

    fn notification(to: MonitorStatus, from: MonitorStatus) -> Notification {
        let monitor = json!({
            "id": 7, "name": "temp high", "type": "metric alert",
            "query": "min(last_1m):min:e2e.temp{*} by {host} > 80",
            "message": "{{#is_alert}}hot {{host.name}}{{/is_alert}}{{#is_recovery}}Recovered \"{{host.name}}\"{{/is_recovery}} @webhook-ops",
            "tags": ["team:x"], "priority": 2,
        });
        Notification::new(
            7,
            monitor.as_object().unwrap().clone(),
            Transition {
                group: "host:a".into(),
                from,
                to,
                value: Some(50.0),
                ts: 1_700_000_000,
                notify: true,
                renotify: false,
                from_since_ts: 1_699_999_000,
                auto_resolved: false,
            },
        )
    }

    #[test]
    fn outbox_entries_round_trip() {
        let n = notification(MonitorStatus::Alert, MonitorStatus::Ok);
        assert_eq!(n.key, "1700000000:host:a:Alert");
        let back = Notification::from_pending(7, &n.to_pending()).unwrap();
        assert_eq!(back.key, n.key);
        assert_eq!(back.transition, n.transition);
        assert_eq!(back.monitor, n.monitor);
        assert!(Notification::from_pending(7, &json!({"key": 1})).is_none());
    }

    #[test]
    fn variables_and_payloads() {
        let n = notification(MonitorStatus::Ok, MonitorStatus::Alert);
        let v = variables(&n, "http://s:7800");
        assert_eq!(v["ALERT_TRANSITION"], "Recovered");
        assert_eq!(v["ALERT_TYPE"], "success");
        assert_eq!(v["EVENT_MSG"], "Recovered \"a\" @webhook-ops");
        assert_eq!(v["ALERT_METRIC"], "e2e.temp");
        assert_eq!(v["ALERT_SCOPE"], "host:a");
        assert_eq!(v["HOSTNAME"], "a");
        assert_eq!(v["ALERT_PRIORITY"], "2");
        assert_eq!(v["TAGS"], "team:x,host:a,monitor_id:7");
        assert_eq!(v["LINK"], "http://s:7800/monitors/7");
        assert_eq!(v["DATE"], "1700000000000");
        assert_eq!(v["LAST_UPDATED"], "2023-11-14T22:13:20Z");
        assert_eq!(v["EVENT_TITLE"], "[Recovered on {host:a}] temp high");

        let table = [
            (
                r#"{"t": "$ALERT_TRANSITION: $EVENT_MSG"}"#,
                json!({"t": "Recovered: Recovered \"a\" @webhook-ops"}),
            ),
            (
                r#"{"id": $ALERT_ID, "x": "$UNKNOWN", "p": "$$ALERT_ID"}"#,
                json!({"id": "7", "x": "$UNKNOWN", "p": "$7"}),
            ),
            (
                r#"{"s": "a \"$HOSTNAME\" b", "arr": [$HOSTNAME]}"#,
                json!({"s": "a \"a\" b", "arr": ["a"]}),
            ),
        ];
        for (t, want) in table {
            let out = render_payload(t, &v);
            let got: JsonValue =
                serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"));
            assert_eq!(got, want, "{t}");
        }
        let default: JsonValue =
            serde_json::from_str(&render_payload(DEFAULT_PAYLOAD, &v)).unwrap();
        assert_eq!(default["body"], "Recovered \"a\" @webhook-ops");
        assert_eq!(default["title"], "[Recovered on {host:a}] temp high");
        assert_eq!(default["org"]["name"], "Sightline");
        assert_eq!(default["event_type"], "query_alert_monitor");

        let mut w = Webhook {
            name: "ops".into(),
            url: "http://x/".into(),
            payload: Some(r#"{"a": "$ALERT_TRANSITION", "n": 1}"#.into()),
            custom_headers: Some(r#"{"X-Token": "t"}"#.into()),
            encode_as: WebhookEncoding::Form,
            format: WebhookFormat::Datadog,
        };
        let base = "http://s:7800";
        let p = prepare(&w, &n, &v, base).unwrap();
        assert_eq!(p.body, "a=Recovered&n=1");
        assert_eq!(p.content_type, "application/x-www-form-urlencoded");
        assert_eq!(p.headers, vec![("X-Token".to_string(), "t".to_string())]);

        // The built-in formats send JSON (whatever `payload` and `encode_as` say), with the custom headers.
        let mut bodies = Vec::new();
        for format in [WebhookFormat::Alertmanager, WebhookFormat::Slack] {
            w.format = format;
            let p = prepare(&w, &n, &v, base).unwrap();
            assert_eq!(p.content_type, "application/json", "{format:?}");
            assert_eq!(p.headers, vec![("X-Token".to_string(), "t".to_string())]);
            bodies.push(serde_json::from_str::<JsonValue>(&p.body).unwrap());
        }
        let (am, slack) = (&bodies[0], &bodies[1]);
        assert_eq!(
            (
                &am["version"],
                &am["receiver"],
                &am["externalURL"],
                &am["status"]
            ),
            (&json!("4"), &json!("ops"), &json!(base), &json!("resolved"))
        );
        assert!(
            slack["text"].as_str().unwrap().contains("Recovered"),
            "{slack}"
        );
        w.format = WebhookFormat::Datadog;
        w.custom_headers = Some("[1]".into());
        assert!(prepare(&w, &n, &v, base).is_err());
    }

    #[test]
    fn classifies_addresses() {
        let table = [
            ("127.0.0.1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.32.0.1", None),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("cloud metadata")),
            ("169.254.1.1", Some("link-local")),
            ("100.64.0.1", Some("carrier-grade NAT")),
            ("100.128.0.1", None),
            ("0.0.0.0", Some("unspecified")),
            ("8.8.8.8", None),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("fd00:ec2::254", Some("cloud metadata")),
            ("fc00::1", Some("private (unique local)")),
            ("fe80::1", Some("link-local")),
            ("::ffff:10.0.0.1", Some("private")),
            ("64:ff9b::a9fe:a9fe", Some("cloud metadata")),
            ("2001:4860:4860::8888", None),
        ];
        for (ip, want) in table {
            assert_eq!(refused_reason(ip.parse().unwrap()), want, "{ip}");
        }
        let allow =
            AllowList::parse(&["127.0.0.1/32", "10.0.0.0/8", "::1", "Hooks.Internal."]).unwrap();
        assert!(allow.allows_ip("127.0.0.1".parse().unwrap()));
        assert!(!allow.allows_ip("127.0.0.2".parse().unwrap()));
        assert!(allow.allows_ip("10.9.9.9".parse().unwrap()));
        assert!(allow.allows_ip("::ffff:10.9.9.9".parse().unwrap()));
        assert!(allow.allows_ip("::1".parse().unwrap()));
        assert!(allow.allows_host("hooks.internal"));
        assert!(AllowList::parse(&["10.0.0.0/33"]).is_err());
        assert!(AllowList::parse(&["0.0.0.0/0"])
            .unwrap()
            .allows_ip("10.0.0.1".parse().unwrap()));
    }

    #[tokio::test]
    async fn refuses_private_targets_unless_allowed() {
        let none = AllowList::default();
        for url in [
            "http://127.0.0.1:9/x",
            "http://10.0.0.1/",
            "http://[::1]:80/",
            "http://169.254.169.254/latest",
        ] {
            let e = resolve_target(url, &none).await.unwrap_err();
            assert!(e.starts_with("refused"), "{url}: {e}");
        }
        assert!(resolve_target("ftp://8.8.8.8/", &none).await.is_err());
        let t = resolve_target("https://8.8.8.8/x", &none).await.unwrap();
        assert_eq!(
            (t.addr.to_string(), t.tls_name.as_deref()),
            ("8.8.8.8:443".into(), Some("8.8.8.8"))
        );
        let t = resolve_target("http://8.8.8.8:81/a?b=1", &none)
            .await
            .unwrap();
        assert_eq!(
            (
                t.addr.to_string(),
                t.authority.as_str(),
                t.path_and_query.as_str()
            ),
            ("8.8.8.8:81".into(), "8.8.8.8:81", "/a?b=1")
        );
        let allow = AllowList::parse(&["127.0.0.1"]).unwrap();
        assert!(resolve_target("http://127.0.0.1:9/x", &allow).await.is_ok());
    }

    /// A receiver answering the given statuses in turn; returns its port and the requests it got.
    async fn receiver(statuses: Vec<u16>) -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let g = got.clone();
        tokio::spawn(async move {
            for status in statuses {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then the body by Content-Length.
                loop {
                    let n = s.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len || n == 0 {
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                g.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).to_string());
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                );
                s.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (port, got)
    }

    fn notifier(url: &str, allow: &[&str]) -> (Notifier, Arc<MemoryMonitorStates>) {
        let webhooks = Arc::new(MemoryWebhooks::default());
        webhooks
            .create(Webhook {
                name: "ops".into(),
                url: url.into(),
                payload: None,
                custom_headers: Some(r#"{"X-Token": "secret"}"#.into()),
                encode_as: WebhookEncoding::Json,
                format: WebhookFormat::Datadog,
            })
            .unwrap();
        let states = Arc::new(MemoryMonitorStates::default());
        states.save(7, json!({}), vec![]).unwrap();
        let config = DeliveryConfig {
            timeout: Duration::from_secs(5),
            retry_delays: vec![
                Duration::from_millis(10),
                Duration::from_millis(20),
                Duration::from_millis(30),
            ],
            allow: AllowList::parse(allow).unwrap(),
            link_base: String::new(),
            tls: TlsRoots::default(),
        };
        (Notifier::new(webhooks, states.clone(), config), states)
    }

    #[tokio::test]
    async fn retries_5xx_and_records_every_attempt() {
        let (port, got) = receiver(vec![500, 500, 200]).await;
        let (n, states) = notifier(&format!("http://127.0.0.1:{port}/hook"), &["127.0.0.1/32"]);
        n.deliver_all(vec![notification(MonitorStatus::Ok, MonitorStatus::Alert)])
            .await;
        let attempts = states.get(7).unwrap().attempts;
        let statuses: Vec<_> = attempts.iter().map(|a| a["status"].clone()).collect();
        assert_eq!(
            statuses,
            vec![json!(500), json!(500), json!(200)],
            "{attempts:?}"
        );
        assert_eq!(attempts[2]["ok"], true);
        assert_eq!(attempts[2]["attempt"], 3);
        assert_eq!(attempts[0]["webhook"], "ops");
        let reqs = got.lock().unwrap().clone();
        assert_eq!(reqs.len(), 3);
        assert!(reqs[2].starts_with("POST /hook HTTP/1.1"), "{}", reqs[2]);
        assert!(reqs[2].to_ascii_lowercase().contains("x-token: secret"));
        let body = &reqs[2][reqs[2].find("\r\n\r\n").unwrap() + 4..];
        let body: JsonValue = serde_json::from_str(body).unwrap();
        assert_eq!(body["body"], "Recovered \"a\" @webhook-ops");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_recovery_waits_for_the_alert_being_retried() {
        let (port, got) = receiver(vec![500, 500, 200, 200]).await;
        let (n, states) = notifier(&format!("http://127.0.0.1:{port}/hook"), &["127.0.0.1/32"]);
        let n = Arc::new(n);
        let alert = notification(MonitorStatus::Alert, MonitorStatus::Ok);
        let mut recovery = notification(MonitorStatus::Ok, MonitorStatus::Alert);
        recovery.transition.ts += 1;
        // Queued by two cycles in a row: the recovery goes out after the alert's third attempt.
        n.enqueue(vec![alert]);
        n.enqueue(vec![recovery]);
        for _ in 0..200 {
            if states.get(7).is_some_and(|s| s.attempts.len() == 4) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let reqs = got.lock().unwrap().clone();
        let transitions: Vec<String> = reqs
            .iter()
            .map(|r| {
                let body: JsonValue =
                    serde_json::from_str(&r[r.find("\r\n\r\n").unwrap() + 4..]).unwrap();
                body["title"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(
            transitions,
            vec![
                "[Triggered on {host:a}] temp high",
                "[Triggered on {host:a}] temp high",
                "[Triggered on {host:a}] temp high",
                "[Recovered on {host:a}] temp high",
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_queue_ends_and_the_next_notification_starts_another() {
        let (port, got) = receiver(vec![200, 200]).await;
        let (n, states) = notifier(&format!("http://127.0.0.1:{port}/hook"), &["127.0.0.1/32"]);
        let n = Arc::new(n);
        let wait = |attempts: usize| {
            let (n, states) = (n.clone(), states.clone());
            async move {
                for _ in 0..300 {
                    let done = states.get(7).is_some_and(|s| s.attempts.len() == attempts);
                    if done && n.active_queues() == 0 {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                false
            }
        };
        n.enqueue(vec![notification(MonitorStatus::Alert, MonitorStatus::Ok)]);
        assert_eq!(n.active_queues(), 1);
        assert!(
            wait(1).await,
            "the worker did not end once its queue was empty"
        );
        let mut recovery = notification(MonitorStatus::Ok, MonitorStatus::Alert);
        recovery.transition.ts += 1;
        n.enqueue(vec![recovery]);
        assert!(wait(2).await, "the second notification was not delivered");
        assert_eq!(got.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn refuses_private_target_and_unknown_webhook() {
        let (n, states) = notifier("http://10.0.0.1:9/hook", &[]);
        let mut note = notification(MonitorStatus::Alert, MonitorStatus::Ok);
        note.monitor
            .insert("message".into(), json!("@webhook-ops @webhook-nope"));
        n.deliver_all(vec![note]).await;
        let attempts = states.get(7).unwrap().attempts;
        assert_eq!(attempts.len(), 2, "{attempts:?}");
        assert!(attempts[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("refused"));
        assert_eq!(attempts[0]["ok"], false);
        assert_eq!(attempts[1]["webhook"], "nope");
        assert!(attempts[1]["error"]
            .as_str()
            .unwrap()
            .contains("unknown webhook"));
    }
}

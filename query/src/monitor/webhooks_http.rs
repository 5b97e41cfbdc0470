//! Datadog's webhooks integration configuration API (SPEC §7, issue #5) over a [`WebhookRepo`]:
//!
//! - `POST /api/v1/integration/webhooks/configuration/webhooks`: create; 200 with the webhook;
//! - `GET …/webhooks/{webhook_name}`: 200 with the webhook;
//! - `PUT …/webhooks/{webhook_name}`: partial update (absent fields are kept; `null` resets `payload` or
//!   `custom_headers`); `name` may rename; 200 with the webhook;
//! - `DELETE …/webhooks/{webhook_name}`: 200 with an empty body (as Datadog; the client expects no body).
//!
//! A webhook is answered as `{"name", "url", "encode_as": "json"|"form", "payload": string|null,
//! "custom_headers": string|null}`, plus `"format"` when it is not the default `datadog` (so Datadog's
//! clients, whose model has no `format`, read every other webhook as before). Unknown request fields are
//! ignored.
//!
//! Validation ([`check_webhook`]; every failure is a 400 `{"errors":["…"]}` naming the field):
//! - `name`: 1 to [`MAX_NAME_LEN`] characters of `[A-Za-z0-9_-]` (what Datadog accepts in `@webhook-<name>`);
//! - `url`: an absolute `http`/`https` URL, ASCII without whitespace or control characters, with a host
//!   (a DNS name of `[A-Za-z0-9._-]` labels, an IPv4 address or a bracketed IPv6 address), an optional port
//!   1–65535 and at most [`MAX_URL_LEN`] bytes; kept exactly as given (`$VARIABLES` may appear in the path
//!   or query). No address check here: the SSRF refusal happens at delivery;
//! - `payload`: JSON text once each `$VARIABLE` written outside a JSON string is replaced by a number (inside
//!   strings variables are plain text), so both `{"title": "$ALERT_TITLE"}` and `{"id": $ID}` are accepted;
//!   error positions are those of the text as given (the replacement keeps the length);
//! - `custom_headers`: a JSON object whose values are strings, names HTTP tokens, values without control
//!   characters;
//! - `encode_as`: `json` (default) or `form`;
//! - `format` (a Sightline extension): `datadog` (default: the `payload` template or Datadog's default
//!   payload), `alertmanager` (Alertmanager webhook v4) or `slack` (Slack incoming webhook), see
//!   [`super::formats`]; the built-in formats build their own JSON body, so they refuse a `payload` and
//!   `encode_as: form`; `custom_headers` apply to every format. `null` keeps the current format;
//! - an empty `payload` or `custom_headers` string is taken as `null` (Datadog's default payload, no header).
//!
//! A name already in use (on create, or as the new name of an update) is a 400 `{"errors":["webhook <name>
//! already exists"]}` (Datadog documents no 409 for this API); an unknown name a 404
//! `{"errors":["webhook <name> not found"]}`.

use crate::error::QueryError;
use crate::http::blocking;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value as JsonValue};
use sightline_storage::webhooks::WebhookFormat;
use sightline_storage::{Webhook, WebhookChange, WebhookEncoding, WebhookRepo};
use std::sync::Arc;

/// The webhooks' path.
pub const WEBHOOKS_PATH: &str = "/api/v1/integration/webhooks/configuration/webhooks";
/// Longest webhook name (characters).
pub const MAX_NAME_LEN: usize = 255;
/// Longest URL (bytes).
pub const MAX_URL_LEN: usize = 4096;
/// Longest payload template (bytes).
pub const MAX_PAYLOAD_LEN: usize = 256 * 1024;
/// Longest `custom_headers` text (bytes).
pub const MAX_HEADERS_LEN: usize = 32 * 1024;

/// What the webhook handlers share.
pub struct WebhookState {
    pub repo: Arc<dyn WebhookRepo>,
}

/// The webhooks API's routes; merge them into the server's router (behind the key middleware).
pub fn webhooks_router(state: Arc<WebhookState>) -> Router {
    Router::new()
        .route(WEBHOOKS_PATH, post(create_webhook))
        .route(
            "/api/v1/integration/webhooks/configuration/webhooks/{webhook_name}",
            get(get_webhook).put(update_webhook).delete(delete_webhook),
        )
        .with_state(state)
}

/// The API shape of a webhook (`format` only when not the default).
pub fn render(w: &Webhook) -> JsonValue {
    let mut out = json!({
        "name": w.name,
        "url": w.url,
        "encode_as": w.encode_as.as_str(),
        "payload": w.payload,
        "custom_headers": w.custom_headers,
    });
    if w.format != WebhookFormat::default() {
        out["format"] = w.format.as_str().into();
    }
    out
}

/// Checks every field of a webhook (see the module documentation); the message names the field.
pub fn check_webhook(w: &Webhook) -> Result<(), String> {
    check_name(&w.name)?;
    check_url(&w.url)?;
    if let Some(p) = &w.payload {
        check_payload(p)?;
    }
    if let Some(h) = &w.custom_headers {
        check_custom_headers(h)?;
    }
    check_format(w)
}

/// The built-in formats build their own JSON body: no `payload`, no form encoding.
fn check_format(w: &Webhook) -> Result<(), String> {
    if w.format == WebhookFormat::Datadog {
        return Ok(());
    }
    let format = w.format.as_str();
    if w.payload.as_deref().is_some_and(|p| !p.trim().is_empty()) {
        return Err(format!(
            "payload is only used with format datadog, not {format} (set payload to null)"
        ));
    }
    if w.encode_as != WebhookEncoding::Json {
        return Err(format!(
            "encode_as form is only used with format datadog, not {format}"
        ));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name must not be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("name is longer than {MAX_NAME_LEN} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "invalid name {name:?}: {c:?} is not allowed (use letters, digits, '_' and '-')"
        ));
    }
    Ok(())
}

fn check_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid url {url:?}: {why}"));
    if url.len() > MAX_URL_LEN {
        return Err(format!("url is longer than {MAX_URL_LEN} bytes"));
    }
    if url
        .chars()
        .any(|c| !c.is_ascii() || c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return bad("whitespace, control and non-ASCII characters must be percent-encoded");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("expected an absolute http:// or https:// URL");
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return bad("the scheme must be http or https");
    }
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return bad("unclosed '[' in the host");
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return bad("the host is not a valid IPv6 address");
        }
        match after {
            "" => (addr, None),
            p => match p.strip_prefix(':') {
                Some(p) => (addr, Some(p)),
                None => return bad("unexpected characters after the IPv6 address"),
            },
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return bad("the host is missing");
    }
    if !host_port.starts_with('[') {
        let labels = host.strip_suffix('.').unwrap_or(host);
        if labels.split('.').any(|l| {
            l.is_empty()
                || !l
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }) {
            return bad("the host must be a DNS name or an IP address");
        }
    }
    if let Some(p) = port {
        if p.is_empty()
            || !p.bytes().all(|b| b.is_ascii_digit())
            || !matches!(p.parse::<u32>(), Ok(1..=65535))
        {
            return bad("the port must be a number from 1 to 65535");
        }
    }
    Ok(())
}

/// `payload` with every `$VARIABLE` outside a JSON string replaced by `0` and spaces (same length).
fn substitute_variables(payload: &str) -> String {
    let mut out = String::with_capacity(payload.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = payload.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            out.push(c);
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '$'
            && chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_')
        {
            out.push('0');
            while let Some(n) = chars.next_if(|n| n.is_ascii_alphanumeric() || *n == '_') {
                out.extend(std::iter::repeat_n(' ', n.len_utf8()));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn check_payload(payload: &str) -> Result<(), String> {
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(format!("payload is longer than {MAX_PAYLOAD_LEN} bytes"));
    }
    serde_json::from_str::<JsonValue>(&substitute_variables(payload))
        .map(|_| ())
        .map_err(|e| format!("payload is not a JSON template: {e}"))
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn check_custom_headers(text: &str) -> Result<(), String> {
    if text.len() > MAX_HEADERS_LEN {
        return Err(format!(
            "custom_headers is longer than {MAX_HEADERS_LEN} bytes"
        ));
    }
    let headers: Map<String, JsonValue> = serde_json::from_str(text)
        .map_err(|e| format!("custom_headers is not a JSON object: {e}"))?;
    for (name, value) in &headers {
        if name.is_empty() || !name.chars().all(is_token_char) {
            return Err(format!("custom_headers: invalid header name {name:?}"));
        }
        let Some(v) = value.as_str() else {
            return Err(format!(
                "custom_headers: the value of {name:?} must be a string"
            ));
        };
        if v.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!(
                "custom_headers: the value of {name:?} contains a control character"
            ));
        }
    }
    Ok(())
}

fn body_object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, JsonValue>, QueryError> {
    let bytes =
        body.map_err(|e| QueryError::BadParam(format!("cannot read the body: {}", e.body_text())))?;
    match serde_json::from_slice(&bytes) {
        Ok(JsonValue::Object(m)) => Ok(m),
        Ok(_) => Err(QueryError::BadParam(
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(QueryError::BadParam(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

fn bad(msg: impl Into<String>) -> QueryError {
    QueryError::BadParam(msg.into())
}

/// A required string field: `Ok(None)` when absent; `null` or another type is an error.
fn string_field(body: &Map<String, JsonValue>, field: &str) -> Result<Option<String>, QueryError> {
    match body.get(field) {
        None => Ok(None),
        Some(JsonValue::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("{field} must be a string"))),
    }
}

/// A nullable string field: `None` when absent, `Some(None)` for `null` or `""`.
fn nullable_field(
    body: &Map<String, JsonValue>,
    field: &str,
) -> Result<Option<Option<String>>, QueryError> {
    match body.get(field) {
        None => Ok(None),
        Some(JsonValue::Null) => Ok(Some(None)),
        Some(JsonValue::String(s)) if s.trim().is_empty() => Ok(Some(None)),
        Some(JsonValue::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(bad(format!("{field} must be a string or null"))),
    }
}

fn encoding_field(body: &Map<String, JsonValue>) -> Result<Option<WebhookEncoding>, QueryError> {
    match body.get("encode_as") {
        None | Some(JsonValue::Null) => Ok(None),
        Some(JsonValue::String(s)) if s == "json" => Ok(Some(WebhookEncoding::Json)),
        Some(JsonValue::String(s)) if s == "form" => Ok(Some(WebhookEncoding::Form)),
        Some(v) => Err(bad(format!(
            "encode_as must be \"json\" or \"form\", not {v}"
        ))),
    }
}

fn format_field(body: &Map<String, JsonValue>) -> Result<Option<WebhookFormat>, QueryError> {
    match body.get("format") {
        None | Some(JsonValue::Null) => Ok(None),
        Some(v) => match v.as_str().and_then(WebhookFormat::parse) {
            Some(f) => Ok(Some(f)),
            None => Err(bad(format!(
                "format must be \"datadog\", \"alertmanager\" or \"slack\", not {v}"
            ))),
        },
    }
}

/// `base` with the fields present in `body` applied (for a create, `base` is empty and name and url are
/// required), then checked.
fn apply(base: Option<Webhook>, body: &Map<String, JsonValue>) -> Result<Webhook, QueryError> {
    let creating = base.is_none();
    let mut w = base.unwrap_or(Webhook {
        name: String::new(),
        url: String::new(),
        payload: None,
        custom_headers: None,
        encode_as: WebhookEncoding::Json,
        format: WebhookFormat::Datadog,
    });
    for field in ["name", "url"] {
        match string_field(body, field)? {
            Some(v) if field == "name" => w.name = v,
            Some(v) => w.url = v,
            None if creating => return Err(bad(format!("{field} is required"))),
            None => {}
        }
    }
    if let Some(p) = nullable_field(body, "payload")? {
        w.payload = p;
    }
    if let Some(h) = nullable_field(body, "custom_headers")? {
        w.custom_headers = h;
    }
    if let Some(e) = encoding_field(body)? {
        w.encode_as = e;
    }
    if let Some(f) = format_field(body)? {
        w.format = f;
    }
    check_webhook(&w).map_err(QueryError::BadParam)?;
    Ok(w)
}

fn not_found(name: &str) -> QueryError {
    QueryError::NotFound(format!("webhook {name} not found"))
}

fn outcome(change: WebhookChange, name: &str, new_name: &str) -> Result<Webhook, QueryError> {
    match change {
        WebhookChange::Stored(w) => Ok(w),
        WebhookChange::NotFound => Err(not_found(name)),
        WebhookChange::NameTaken => Err(bad(format!("webhook {new_name} already exists"))),
    }
}

async fn create_webhook(
    State(st): State<Arc<WebhookState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<JsonValue>, QueryError> {
    let w = apply(None, &body_object(body)?)?;
    let repo = st.repo.clone();
    let stored = blocking(move || {
        let name = w.name.clone();
        outcome(repo.create(w)?, &name, &name)
    })
    .await?;
    Ok(Json(render(&stored)))
}

async fn get_webhook(
    State(st): State<Arc<WebhookState>>,
    Path(name): Path<String>,
) -> Result<Json<JsonValue>, QueryError> {
    let repo = st.repo.clone();
    let w = blocking(move || repo.get(&name).ok_or_else(|| not_found(&name))).await?;
    Ok(Json(render(&w)))
}

async fn update_webhook(
    State(st): State<Arc<WebhookState>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<JsonValue>, QueryError> {
    let body = body_object(body)?;
    let repo = st.repo.clone();
    let stored = blocking(move || {
        let current = repo.get(&name).ok_or_else(|| not_found(&name))?;
        let w = apply(Some(current), &body)?;
        let new_name = w.name.clone();
        outcome(repo.replace(&name, w)?, &name, &new_name)
    })
    .await?;
    Ok(Json(render(&stored)))
}

async fn delete_webhook(
    State(st): State<Arc<WebhookState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, QueryError> {
    let repo = st.repo.clone();
    let n = name.clone();
    if !blocking(move || Ok(repo.delete(&n)?)).await? {
        return Err(not_found(&name));
    }
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;
    use sightline_storage::MemoryWebhooks;

    fn hook(name: &str, url: &str, payload: Option<&str>, headers: Option<&str>) -> Webhook {
        Webhook {
            name: name.into(),
            url: url.into(),
            payload: payload.map(str::to_string),
            custom_headers: headers.map(str::to_string),
            encode_as: WebhookEncoding::Json,
            format: WebhookFormat::Datadog,
        }
    }

    fn with(mut w: Webhook, format: WebhookFormat, encode_as: WebhookEncoding) -> Webhook {
        w.format = format;
        w.encode_as = encode_as;
        w
    }

    /// `Ok(())` when `w` is valid, else a fragment of the expected message.
    fn check(w: Webhook, want: Result<(), &str>) {
        match (check_webhook(&w), want) {
            (Ok(()), Ok(())) => {}
            (Err(e), Err(frag)) => assert!(e.contains(frag), "{w:?}: {e:?} lacks {frag:?}"),
            (got, want) => panic!("{w:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn validation() {
        use WebhookEncoding::{Form, Json};
        use WebhookFormat::{Alertmanager, Datadog, Slack};
        let ok = "https://hooks.example.com/x";
        let long_name = "a".repeat(MAX_NAME_LEN + 1);
        let cases: Vec<(Webhook, Result<(), &str>)> = vec![
            (hook("ops", ok, None, None), Ok(())),
            (hook("Ops_team-2", ok, None, None), Ok(())),
            (hook("", ok, None, None), Err("name must not be empty")),
            (hook("a b", ok, None, None), Err("' ' is not allowed")),
            (hook("a.b", ok, None, None), Err("'.' is not allowed")),
            (hook("é", ok, None, None), Err("is not allowed")),
            (hook(&long_name, ok, None, None), Err("longer than")),
            // URLs
            (hook("a", "http://127.0.0.1:8080/hook", None, None), Ok(())),
            (hook("a", "HTTPS://Example.COM", None, None), Ok(())),
            (
                hook("a", "https://u:p@example.com:443/p?q=$ID#f", None, None),
                Ok(()),
            ),
            (hook("a", "http://[::1]:9000/x", None, None), Ok(())),
            (hook("a", "http://[::1]", None, None), Ok(())),
            (hook("a", "http://example.com./", None, None), Ok(())),
            (hook("a", "", None, None), Err("absolute http")),
            (hook("a", "example.com/x", None, None), Err("absolute http")),
            (hook("a", "/relative", None, None), Err("absolute http")),
            (
                hook("a", "ftp://example.com", None, None),
                Err("scheme must be http or https"),
            ),
            (
                hook("a", "file:///etc/passwd", None, None),
                Err("scheme must be"),
            ),
            (hook("a", "http://", None, None), Err("host is missing")),
            (hook("a", "http:///x", None, None), Err("host is missing")),
            (
                hook("a", "http://:80/x", None, None),
                Err("host is missing"),
            ),
            (hook("a", "http://u@/x", None, None), Err("host is missing")),
            (hook("a", "http://a..b/", None, None), Err("DNS name")),
            (hook("a", "http://a$b/", None, None), Err("DNS name")),
            (
                hook("a", "http://ex ample.com", None, None),
                Err("whitespace"),
            ),
            (
                hook("a", "http://exämple.com", None, None),
                Err("non-ASCII"),
            ),
            (hook("a", "http://a.com\n/x", None, None), Err("control")),
            (hook("a", "http://a.com:0/", None, None), Err("port")),
            (hook("a", "http://a.com:65536/", None, None), Err("port")),
            (hook("a", "http://a.com:/", None, None), Err("port")),
            (hook("a", "http://a.com:+80/", None, None), Err("port")),
            (hook("a", "http://[::1/", None, None), Err("unclosed")),
            (hook("a", "http://[zz]/", None, None), Err("IPv6")),
            (
                hook("a", "http://[::1]x/", None, None),
                Err("after the IPv6"),
            ),
            (
                hook(
                    "a",
                    &format!("http://a.com/{}", "x".repeat(MAX_URL_LEN)),
                    None,
                    None,
                ),
                Err("url is longer"),
            ),
            // payloads
            (
                hook(
                    "a",
                    ok,
                    Some(r#"{"title": "$ALERT_TITLE", "id": $ID}"#),
                    None,
                ),
                Ok(()),
            ),
            (
                hook("a", ok, Some(r#"{"s": "cost \"$5\" $"}"#), None),
                Ok(()),
            ),
            (hook("a", ok, Some("[$A, $B_2, \"$\"]"), None), Ok(())),
            (hook("a", ok, Some("$EVENT_MSG"), None), Ok(())),
            (
                hook("a", ok, Some(r#"{"a": 1,}"#), None),
                Err("payload is not a JSON template"),
            ),
            (
                hook("a", ok, Some(r#"{"a": $}"#), None),
                Err("payload is not a JSON template"),
            ),
            (
                hook("a", ok, Some(r#"{"a": $A$B}"#), None),
                Err("payload is not a JSON template"),
            ),
            (
                hook("a", ok, Some(r#"{"a": "unterminated}"#), None),
                Err("payload is not a JSON template"),
            ),
            // custom headers
            (
                hook(
                    "a",
                    ok,
                    None,
                    Some(r#"{"X-Token": "abc $ID", "Accept": "*/*"}"#),
                ),
                Ok(()),
            ),
            (hook("a", ok, None, Some("{}")), Ok(())),
            (
                hook("a", ok, None, Some(r#"["X"]"#)),
                Err("custom_headers is not a JSON object"),
            ),
            (
                hook("a", ok, None, Some("nope")),
                Err("custom_headers is not a JSON object"),
            ),
            (
                hook("a", ok, None, Some(r#"{"X": 1}"#)),
                Err("must be a string"),
            ),
            (
                hook("a", ok, None, Some(r#"{"X Y": "1"}"#)),
                Err("invalid header name"),
            ),
            (
                hook("a", ok, None, Some(r#"{"": "1"}"#)),
                Err("invalid header name"),
            ),
            (
                hook("a", ok, None, Some(r#"{"X": "a\r\nEvil: 1"}"#)),
                Err("control character"),
            ),
            // formats
            (
                with(hook("a", ok, None, Some("{}")), Alertmanager, Json),
                Ok(()),
            ),
            (with(hook("a", ok, None, None), Slack, Json), Ok(())),
            (with(hook("a", ok, Some("{}"), None), Datadog, Form), Ok(())),
            (
                with(hook("a", ok, Some("{}"), None), Alertmanager, Json),
                Err("payload is only used with format datadog, not alertmanager"),
            ),
            (
                with(hook("a", ok, None, None), Slack, Form),
                Err("encode_as form is only used with format datadog, not slack"),
            ),
        ];
        for (w, want) in cases {
            check(w, want);
        }
    }

    #[test]
    fn substitution_keeps_positions() {
        let text = r#"{"a": $ID, "b": "$X"}"#;
        let out = substitute_variables(text);
        assert_eq!(out, r#"{"a": 0  , "b": "$X"}"#);
        assert_eq!(out.len(), text.len());
    }

    fn app() -> Router {
        webhooks_router(Arc::new(WebhookState {
            repo: Arc::new(MemoryWebhooks::default()),
        }))
    }

    async fn call(
        app: &Router,
        method: Method,
        uri: &str,
        body: Option<&str>,
    ) -> (StatusCode, String) {
        let (status, bytes) =
            crate::test_util::call_router(app, method, uri, body.map(str::to_string)).await;
        (status, String::from_utf8(bytes).unwrap())
    }

    #[tokio::test]
    async fn formats_through_the_api() {
        let app = app();
        let am = format!("{WEBHOOKS_PATH}/am");
        let post = Method::POST;
        let path = || WEBHOOKS_PATH.to_string();
        let cases: Vec<(Method, String, &str, StatusCode, &str)> = vec![
            (
                post.clone(),
                path(),
                r#"{"name": "am", "url": "http://am/x", "format": "alertmanager", "custom_headers": "{\"X-A\": \"1\"}"}"#,
                StatusCode::OK,
                r#"{"custom_headers":"{\"X-A\": \"1\"}","encode_as":"json","format":"alertmanager","name":"am","payload":null,"url":"http://am/x"}"#,
            ),
            (
                post.clone(),
                path(),
                r#"{"name": "c", "url": "http://c", "format": "xml"}"#,
                StatusCode::BAD_REQUEST,
                r#"{"errors":["format must be \"datadog\", \"alertmanager\" or \"slack\", not \"xml\""]}"#,
            ),
            (
                post.clone(),
                path(),
                r#"{"name": "c", "url": "http://c", "format": "Slack"}"#,
                StatusCode::BAD_REQUEST,
                r#"{"errors":["format must be \"datadog\", \"alertmanager\" or \"slack\", not \"Slack\""]}"#,
            ),
            (
                post.clone(),
                path(),
                r#"{"name": "c", "url": "http://c", "format": 4}"#,
                StatusCode::BAD_REQUEST,
                r#"{"errors":["format must be \"datadog\", \"alertmanager\" or \"slack\", not 4"]}"#,
            ),
            (
                post.clone(),
                path(),
                r#"{"name": "c", "url": "http://c", "format": "alertmanager", "payload": "{\"a\": 1}"}"#,
                StatusCode::BAD_REQUEST,
                r#"{"errors":["payload is only used with format datadog, not alertmanager (set payload to null)"]}"#,
            ),
            (
                post.clone(),
                path(),
                r#"{"name": "c", "url": "http://c", "format": "slack", "encode_as": "form"}"#,
                StatusCode::BAD_REQUEST,
                r#"{"errors":["encode_as form is only used with format datadog, not slack"]}"#,
            ),
            (
                post.clone(),
                path(),
                r#"{"name": "d", "url": "http://d", "format": "datadog"}"#,
                StatusCode::OK,
                r#"{"custom_headers":null,"encode_as":"json","name":"d","payload":null,"url":"http://d"}"#,
            ),
            (
                Method::GET,
                am.clone(),
                "",
                StatusCode::OK,
                r#"{"custom_headers":"{\"X-A\": \"1\"}","encode_as":"json","format":"alertmanager","name":"am","payload":null,"url":"http://am/x"}"#,
            ),
            (
                Method::PUT,
                am.clone(),
                r#"{"format": "slack", "custom_headers": null}"#,
                StatusCode::OK,
                r#"{"custom_headers":null,"encode_as":"json","format":"slack","name":"am","payload":null,"url":"http://am/x"}"#,
            ),
            (
                Method::PUT,
                am.clone(),
                r#"{"payload": "{\"a\": 1}"}"#,
                StatusCode::BAD_REQUEST,
                r#"{"errors":["payload is only used with format datadog, not slack (set payload to null)"]}"#,
            ),
            (
                Method::PUT,
                am.clone(),
                r#"{"format": null, "url": "http://am/y"}"#,
                StatusCode::OK,
                r#"{"custom_headers":null,"encode_as":"json","format":"slack","name":"am","payload":null,"url":"http://am/y"}"#,
            ),
            (
                Method::PUT,
                am.clone(),
                r#"{"format": "datadog", "payload": "{\"a\": 1}"}"#,
                StatusCode::OK,
                r#"{"custom_headers":null,"encode_as":"json","name":"am","payload":"{\"a\": 1}","url":"http://am/y"}"#,
            ),
        ];
        for (method, uri, body, status, want) in cases {
            let what = format!("{method} {uri} {body}");
            let body = (!body.is_empty()).then_some(body);
            let (s, got) = call(&app, method, &uri, body).await;
            assert_eq!((s, got.as_str()), (status, want), "{what}");
        }
    }

    #[tokio::test]
    async fn crud_and_errors() {
        let app = app();
        let one = format!("{WEBHOOKS_PATH}/ops");
        let cases: Vec<(Method, String, Option<&str>, StatusCode, &str)> = vec![
            (
                Method::POST,
                WEBHOOKS_PATH.into(),
                Some(r#"{"name": "ops", "url": "http://h/x", "custom_headers": ""}"#),
                StatusCode::OK,
                r#"{"custom_headers":null,"encode_as":"json","name":"ops","payload":null,"url":"http://h/x"}"#,
            ),
            (
                Method::POST,
                WEBHOOKS_PATH.into(),
                Some(r#"{"name": "ops", "url": "http://other"}"#),
                StatusCode::BAD_REQUEST,
                r#"{"errors":["webhook ops already exists"]}"#,
            ),
            (
                Method::POST,
                WEBHOOKS_PATH.into(),
                Some(
                    r#"{"name": "b", "url": "http://b", "encode_as": "form", "payload": "{\"m\": \"$EVENT_MSG\"}"}"#,
                ),
                StatusCode::OK,
                r#"{"custom_headers":null,"encode_as":"form","name":"b","payload":"{\"m\": \"$EVENT_MSG\"}","url":"http://b"}"#,
            ),
            (
                Method::POST,
                WEBHOOKS_PATH.into(),
                Some(r#"{"url": "http://b"}"#),
                StatusCode::BAD_REQUEST,
                r#"{"errors":["name is required"]}"#,
            ),
            (
                Method::POST,
                WEBHOOKS_PATH.into(),
                Some(r#"{"name": "c"}"#),
                StatusCode::BAD_REQUEST,
                r#"{"errors":["url is required"]}"#,
            ),
            (
                Method::POST,
                WEBHOOKS_PATH.into(),
                Some(r#"{"name": "c", "url": "http://c", "encode_as": "xml"}"#),
                StatusCode::BAD_REQUEST,
                r#"{"errors":["encode_as must be \"json\" or \"form\", not \"xml\""]}"#,
            ),
            (
                Method::POST,
                WEBHOOKS_PATH.into(),
                Some(r#"{"name": 3, "url": "http://c"}"#),
                StatusCode::BAD_REQUEST,
                r#"{"errors":["name must be a string"]}"#,
            ),
            (
                Method::POST,
                WEBHOOKS_PATH.into(),
                Some("[1]"),
                StatusCode::BAD_REQUEST,
                r#"{"errors":["the body must be a JSON object"]}"#,
            ),
            (
                Method::GET,
                one.clone(),
                None,
                StatusCode::OK,
                r#"{"custom_headers":null,"encode_as":"json","name":"ops","payload":null,"url":"http://h/x"}"#,
            ),
            (
                Method::PUT,
                one.clone(),
                Some(r#"{"name": "b"}"#),
                StatusCode::BAD_REQUEST,
                r#"{"errors":["webhook b already exists"]}"#,
            ),
            (
                Method::PUT,
                one.clone(),
                Some(r#"{"url": "nope"}"#),
                StatusCode::BAD_REQUEST,
                r#"{"errors":["invalid url \"nope\": expected an absolute http:// or https:// URL"]}"#,
            ),
            (
                Method::PUT,
                one.clone(),
                Some(r#"{"name": "ops2", "custom_headers": "{\"X-A\": \"1\"}"}"#),
                StatusCode::OK,
                r#"{"custom_headers":"{\"X-A\": \"1\"}","encode_as":"json","name":"ops2","payload":null,"url":"http://h/x"}"#,
            ),
            (
                Method::GET,
                one.clone(),
                None,
                StatusCode::NOT_FOUND,
                r#"{"errors":["webhook ops not found"]}"#,
            ),
            (
                Method::PUT,
                format!("{WEBHOOKS_PATH}/ops2"),
                Some(r#"{"custom_headers": null, "encode_as": "form"}"#),
                StatusCode::OK,
                r#"{"custom_headers":null,"encode_as":"form","name":"ops2","payload":null,"url":"http://h/x"}"#,
            ),
            (
                Method::PUT,
                one.clone(),
                Some("{}"),
                StatusCode::NOT_FOUND,
                r#"{"errors":["webhook ops not found"]}"#,
            ),
            (
                Method::DELETE,
                format!("{WEBHOOKS_PATH}/ops2"),
                None,
                StatusCode::OK,
                "",
            ),
            (
                Method::DELETE,
                format!("{WEBHOOKS_PATH}/ops2"),
                None,
                StatusCode::NOT_FOUND,
                r#"{"errors":["webhook ops2 not found"]}"#,
            ),
            (
                Method::GET,
                format!("{WEBHOOKS_PATH}/b"),
                None,
                StatusCode::OK,
                r#"{"custom_headers":null,"encode_as":"form","name":"b","payload":"{\"m\": \"$EVENT_MSG\"}","url":"http://b"}"#,
            ),
        ];
        for (method, uri, body, status, want) in cases {
            let what = format!("{method} {uri} {body:?}");
            let (s, got) = call(&app, method, &uri, body).await;
            assert_eq!((s, got.as_str()), (status, want), "{what}");
        }
    }
}

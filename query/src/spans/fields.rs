//! What a span search or aggregation can look at on a [`SpanRecord`]: the reserved keys (`service`,
//! `resource_name`, `status`, …), `@attribute` paths (span attributes first, then resource attributes; flat
//! dotted keys and nested objects alike) and `@duration`.

use serde_json::{Map, Value};
use sightline_model::{hex, SpanRecord};
use sightline_storage::logs::schema::for_each_leaf;
use std::borrow::Cow;

/// A reserved key of the span search syntax and of span facets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    Service,
    Env,
    Host,
    Version,
    /// `resource_name`, alias `resource`.
    Resource,
    /// `operation_name`, alias `name`.
    Operation,
    TraceId,
    SpanId,
    ParentId,
    /// `error` or `ok`.
    Status,
    /// `span.kind`, alias `kind`: `server`, `client`, …
    Kind,
}

impl Reserved {
    /// The reserved key named `key` (already lower-cased by the parser), if it is one.
    pub fn parse(key: &str) -> Option<Reserved> {
        Some(match key {
            "service" => Reserved::Service,
            "env" => Reserved::Env,
            "host" => Reserved::Host,
            "version" => Reserved::Version,
            "resource_name" | "resource" => Reserved::Resource,
            "operation_name" | "name" => Reserved::Operation,
            "trace_id" => Reserved::TraceId,
            "span_id" => Reserved::SpanId,
            "parent_id" => Reserved::ParentId,
            "status" => Reserved::Status,
            "span.kind" | "kind" => Reserved::Kind,
            _ => return None,
        })
    }

    /// Whether values of this key are matched case-insensitively (they are lower-case by construction).
    pub fn lower_case(self) -> bool {
        matches!(
            self,
            Reserved::TraceId
                | Reserved::SpanId
                | Reserved::ParentId
                | Reserved::Status
                | Reserved::Kind
        )
    }

    /// The span's value of this key; `None` when it has none (no env, a root's parent, an empty service).
    pub fn value(self, s: &SpanRecord) -> Option<Cow<'_, str>> {
        fn some(v: &str) -> Option<Cow<'_, str>> {
            (!v.is_empty()).then_some(Cow::Borrowed(v))
        }
        match self {
            Reserved::Service => some(&s.service),
            Reserved::Env => s.env.as_deref().and_then(some),
            Reserved::Host => s.host.as_deref().and_then(some),
            Reserved::Version => s.version.as_deref().and_then(some),
            Reserved::Resource => some(&s.resource),
            Reserved::Operation => some(&s.name),
            Reserved::TraceId => Some(Cow::Owned(hex(&s.trace_id))),
            Reserved::SpanId => Some(Cow::Owned(hex(&s.span_id))),
            Reserved::ParentId => s.parent_id.map(|p| Cow::Owned(hex(&p))),
            Reserved::Status => Some(Cow::Borrowed(status(s))),
            Reserved::Kind => Some(Cow::Borrowed(s.kind.as_str())),
        }
    }
}

/// `error` or `ok`.
pub fn status(s: &SpanRecord) -> &'static str {
    if s.error {
        "error"
    } else {
        "ok"
    }
}

/// The `@path` that is the span's duration in nanoseconds rather than an attribute.
pub const DURATION: &str = "duration";

/// The values at an attribute path (`@http.route` without the `@`): what the span's own attributes hold
/// there, or, when they hold nothing, what the resource attributes hold. Objects and arrays are returned as
/// they are (see [`leaves`]); `@duration` is the span's duration in nanoseconds.
pub fn attr_values<'a>(s: &'a SpanRecord, path: &str) -> Vec<Cow<'a, Value>> {
    if path == DURATION {
        return vec![Cow::Owned(Value::from(s.duration_ns))];
    }
    let mut out = Vec::new();
    resolve(&s.attributes, path, &mut out, &mut { RESOLVE_BUDGET });
    if out.is_empty() {
        resolve(&s.resource_attributes, path, &mut out, &mut {
            RESOLVE_BUDGET
        });
    }
    out.into_iter().map(Cow::Borrowed).collect()
}

/// Most objects [`resolve`] looks into for one path: a path of many dots over objects whose keys repeat its
/// prefixes could otherwise take exponential time.
const RESOLVE_BUDGET: usize = 1024;

/// Collects the non-null values at `path` in `m`: a flat key equal to the whole path (`"http.route"`), or a
/// key equal to a dotted prefix holding an object (or an array of objects) in which the rest resolves, so
/// `{"http": {"route": …}}` and `{"http.request": {"method": …}}` are found too.
fn resolve<'a>(
    m: &'a Map<String, Value>,
    path: &str,
    out: &mut Vec<&'a Value>,
    budget: &mut usize,
) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    if let Some(v) = m.get(path) {
        if !v.is_null() {
            out.push(v);
        }
    }
    for (i, _) in path.match_indices('.') {
        let (prefix, rest) = (&path[..i], &path[i + 1..]);
        if rest.is_empty() {
            continue;
        }
        match m.get(prefix) {
            Some(Value::Object(sub)) => resolve(sub, rest, out, budget),
            Some(Value::Array(items)) => {
                for item in items {
                    if let Value::Object(sub) = item {
                        resolve(sub, rest, out, budget);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The scalar leaves of some values: arrays are flattened, nulls and objects dropped.
pub fn leaves<'a>(values: &'a [Cow<'a, Value>]) -> Vec<&'a Value> {
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Null | Value::Object(_) => {}
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            leaf => out.push(leaf),
        }
    }
    let mut out = Vec::new();
    for v in values {
        walk(v, &mut out);
    }
    out
}

/// Whether anything non-null lies at or below an attribute path (`@a:*`), in the span's or the resource's
/// attributes, however flat or nested the keys are (`{"db.system": …}` puts something below `db`).
pub fn attr_exists(s: &SpanRecord, path: &str) -> bool {
    if path == DURATION {
        return true;
    }
    let below = format!("{path}.");
    let mut found = false;
    for m in [&s.attributes, &s.resource_attributes] {
        for_each_leaf(m, &mut |p, _| {
            found = found || p == path || p.starts_with(&below);
        });
        if found {
            return true;
        }
    }
    false
}

/// Whether a value holds anything: a scalar, or an object or array with a non-null leaf somewhere.
pub fn has_content(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Object(m) => m.values().any(has_content),
        Value::Array(items) => items.iter().any(has_content),
        _ => true,
    }
}

/// The text of a scalar leaf: strings as they are, numbers and booleans as JSON writes them.
pub fn leaf_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

/// Every scalar leaf of the span's attributes and resource attributes (for `*:value`).
pub fn all_leaves(s: &SpanRecord) -> Vec<&Value> {
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Null => {}
            Value::Object(m) => m.values().for_each(|v| walk(v, out)),
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            leaf => out.push(leaf),
        }
    }
    let mut out = Vec::new();
    for v in s.attributes.values().chain(s.resource_attributes.values()) {
        walk(v, &mut out);
    }
    out
}

/// The values of a facet (`service`, `@http.route`, a bare key = an attribute) on a span, as JSON values
/// for aggregation groups: one per distinct scalar leaf, empty when the span has none.
pub fn facet_values(s: &SpanRecord, facet: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    if let Some(r) = Reserved::parse(facet) {
        if let Some(v) = r.value(s) {
            out.push(Value::String(v.into_owned()));
        }
        return out;
    }
    let path = facet.strip_prefix('@').unwrap_or(facet);
    let values = attr_values(s, path);
    for leaf in leaves(&values) {
        if !out.contains(leaf) {
            out.push(leaf.clone());
        }
    }
    out
}

/// The numbers a measure (`@duration`, a numeric `@attribute`) takes on a span.
pub fn measure_values(s: &SpanRecord, path: &str) -> Vec<f64> {
    let values = attr_values(s, path);
    leaves(&values)
        .into_iter()
        .filter_map(|v| v.as_f64())
        .filter(|x| x.is_finite())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn span(attrs: Value, res: Value) -> SpanRecord {
        let mut s = SpanRecord::new([1; 16], [2; 8], None, "api", "GET /", 0, 5);
        s.attributes = attrs.as_object().unwrap().clone();
        s.resource_attributes = res.as_object().unwrap().clone();
        s
    }

    #[test]
    fn paths() {
        let s = span(
            json!({"http.route": "/a", "http": {"method": "GET"}, "db.stmt": {"op": "select"},
                   "tags": [{"k": 1}, {"k": 2}], "nil": null, "k8s.pod": "span-level"}),
            json!({"k8s.pod": "res-level", "cloud": {"region": "eu"}}),
        );
        let texts = |p: &str| -> Vec<String> {
            let v = attr_values(&s, p);
            leaves(&v)
                .iter()
                .map(|l| leaf_text(l).into_owned())
                .collect()
        };
        assert_eq!(texts("http.route"), ["/a"]);
        assert_eq!(texts("http.method"), ["GET"]);
        assert_eq!(texts("db.stmt.op"), ["select"]);
        assert_eq!(texts("tags.k"), ["1", "2"]);
        assert!(texts("nil").is_empty());
        assert_eq!(texts("k8s.pod"), ["span-level"], "span attributes shadow");
        assert_eq!(texts("cloud.region"), ["eu"]);
        assert_eq!(texts("duration"), ["5"]);
        assert!(texts("http.").is_empty());
        assert_eq!(facet_values(&s, "@tags.k"), [json!(1), json!(2)]);
        assert_eq!(facet_values(&s, "service"), [json!("api")]);
        assert!(facet_values(&s, "env").is_empty());
        assert_eq!(measure_values(&s, "duration"), [5.0]);
    }
}

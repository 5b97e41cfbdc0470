//! OTLP attributes and resources in Sightline's terms: `AnyValue` → JSON, and the resource mapping of SPEC §2
//! (`service.name`→service, `host.name`→host, `deployment.environment(.name)`→env, `service.version`→version;
//! other resource and scope attributes become tags on metrics and attributes on logs and spans).

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Map, Value as Json};
use sightline_model::normalize_tag;

/// Longest tag Sightline keeps (SPEC §2).
const MAX_TAG_LEN: usize = 200;

/// An OTLP value as JSON: strings, booleans, integers and doubles keep their type (a non-finite double becomes
/// its name as a string), arrays and key-value lists nest, bytes become lower-case hex.
pub fn any_to_json(v: &AnyValue) -> Json {
    any_into_json(v.clone())
}

/// [`any_to_json`], moving the value's strings instead of copying them (the ingest hot path).
pub fn any_into_json(v: AnyValue) -> Json {
    match v.value {
        None | Some(any_value::Value::StringValueStrindex(_)) => Json::Null,
        Some(any_value::Value::StringValue(s)) => Json::String(s),
        Some(any_value::Value::BoolValue(b)) => Json::Bool(b),
        Some(any_value::Value::IntValue(i)) => Json::from(i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(d)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(d.to_string())),
        Some(any_value::Value::ArrayValue(a)) => {
            Json::Array(a.values.into_iter().map(any_into_json).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => Json::Object(attrs_into_map(kv.values)),
        Some(any_value::Value::BytesValue(b)) => Json::String(sightline_model::hex(&b)),
    }
}

/// Key-value pairs as a JSON object (later duplicates win; pairs without a value are null).
pub fn attrs_to_map(kvs: &[KeyValue]) -> Map<String, Json> {
    attrs_into_map(kvs.to_vec())
}

/// [`attrs_to_map`], moving keys and values.
pub fn attrs_into_map(kvs: Vec<KeyValue>) -> Map<String, Json> {
    kvs.into_iter()
        .map(|kv| (kv.key, kv.value.map_or(Json::Null, any_into_json)))
        .collect()
}

/// A JSON attribute value as the text of a tag value or a reserved field: strings as they are, other scalars
/// printed, arrays and objects as compact JSON.
pub fn json_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// Largest resource and scope attributes (JSON-encoded) accepted: they are copied into every span and log
/// record of their resource, so a huge resource with many small items would multiply into gigabytes.
pub const MAX_RESOURCE_ATTRIBUTES_BYTES: usize = 64 * 1024;

/// What a resource (and the instrumentation scope under it) says about the data it carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceInfo {
    pub service: Option<String>,
    pub host: Option<String>,
    pub env: Option<String>,
    pub version: Option<String>,
    /// Every other resource and scope attribute (scope attributes win over resource ones of the same key).
    pub attributes: Map<String, Json>,
}

impl ResourceInfo {
    /// Maps a resource and an optional scope.
    pub fn new(resource: Option<&Resource>, scope: Option<&InstrumentationScope>) -> ResourceInfo {
        let mut info = ResourceInfo::default();
        let empty = Vec::new();
        let resource_attrs = resource.map_or(&empty, |r| &r.attributes);
        let scope_attrs = scope.map_or(&empty, |s| &s.attributes);
        for kv in resource_attrs.iter().chain(scope_attrs) {
            let value = kv.value.as_ref().map_or(Json::Null, any_to_json);
            let text = || Some(json_text(&value)).filter(|s| !s.is_empty());
            match kv.key.as_str() {
                "service.name" => info.service = text(),
                "host.name" => info.host = text(),
                "deployment.environment" | "deployment.environment.name" => info.env = text(),
                "service.version" => info.version = text(),
                _ => {
                    info.attributes.insert(kv.key.clone(), value);
                }
            }
        }
        info
    }

    /// An error naming the size when the other attributes are over [`MAX_RESOURCE_ATTRIBUTES_BYTES`] encoded.
    pub fn check_size(&self) -> Result<(), String> {
        let size = serde_json::to_vec(&self.attributes).map_or(usize::MAX, |v| v.len());
        if size > MAX_RESOURCE_ATTRIBUTES_BYTES {
            return Err(format!(
                "resource and scope attributes are {size} bytes encoded; the limit is {MAX_RESOURCE_ATTRIBUTES_BYTES}"
            ));
        }
        Ok(())
    }

    /// The reserved tags (`service:`, `host:`, `env:`, `version:`), normalized, for metric series and logs.
    pub fn reserved_tags(&self) -> Vec<String> {
        let mut tags = Vec::new();
        for (key, value) in [
            ("service", &self.service),
            ("host", &self.host),
            ("env", &self.env),
            ("version", &self.version),
        ] {
            if let Some(v) = value {
                if let Some(t) = tag(key, v) {
                    tags.push(t);
                }
            }
        }
        tags
    }

    /// The reserved tags plus one `key:value` tag per other resource and scope attribute: a metric's tags.
    pub fn metric_tags(&self) -> Vec<String> {
        let mut tags = self.reserved_tags();
        tags.extend(
            self.attributes
                .iter()
                .filter_map(|(k, v)| tag(k, &json_text(v))),
        );
        tags
    }
}

/// A normalized `key:value` tag (SPEC §2: lower-cased key, at most 200 characters); `None` when nothing of it
/// is left after normalization.
pub fn tag(key: &str, value: &str) -> Option<String> {
    normalize_tag(&format!("{key}:{value}"), MAX_TAG_LEN).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn s(v: &str) -> any_value::Value {
        any_value::Value::StringValue(v.into())
    }

    #[test]
    fn resource_mapping() {
        let resource = Resource {
            attributes: vec![
                kv("service.name", s("checkout")),
                kv("host.name", s("web-1")),
                kv("deployment.environment.name", s("prod")),
                kv("service.version", s("1.2.3")),
                kv("k8s.pod.name", s("pod-7")),
                kv("process.pid", any_value::Value::IntValue(42)),
            ],
            ..Default::default()
        };
        let scope = InstrumentationScope {
            name: "lib".into(),
            attributes: vec![kv("team", s("payments"))],
            ..Default::default()
        };
        let info = ResourceInfo::new(Some(&resource), Some(&scope));
        assert_eq!(info.service.as_deref(), Some("checkout"));
        assert_eq!(info.host.as_deref(), Some("web-1"));
        assert_eq!(info.env.as_deref(), Some("prod"));
        assert_eq!(info.version.as_deref(), Some("1.2.3"));
        assert_eq!(info.attributes.get("process.pid"), Some(&Json::from(42)));
        assert_eq!(info.attributes.get("team"), Some(&Json::from("payments")));
        let mut tags = info.metric_tags();
        tags.sort();
        assert_eq!(
            tags,
            [
                "env:prod",
                "host:web-1",
                "k8s.pod.name:pod-7",
                "process.pid:42",
                "service:checkout",
                "team:payments",
                "version:1.2.3"
            ]
        );
    }

    #[test]
    fn values_to_json() {
        let nested = AnyValue {
            value: Some(any_value::Value::KvlistValue(
                opentelemetry_proto::tonic::common::v1::KeyValueList {
                    values: vec![
                        kv("a", any_value::Value::DoubleValue(1.5)),
                        kv("b", any_value::Value::BytesValue(vec![0xde, 0xad])),
                        kv("c", any_value::Value::DoubleValue(f64::NAN)),
                    ],
                },
            )),
        };
        assert_eq!(
            any_to_json(&nested),
            serde_json::json!({"a": 1.5, "b": "dead", "c": "NaN"})
        );
    }
}

//! Spans and span batches (SPEC §2): what the OTLP trace receiver produces and what the span store keeps.

use crate::log::json_text;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A span's kind, as OTLP numbers it (`SPAN_KIND_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// From OTLP's enum number; unknown numbers are `Unspecified`.
    pub fn from_otlp(n: i32) -> SpanKind {
        match n {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// The lower-case name used in tags and searches (`span.kind:server`), as Datadog writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }

    /// The inverse of [`SpanKind::as_str`].
    pub fn parse(s: &str) -> Option<SpanKind> {
        Some(match s {
            "unspecified" => SpanKind::Unspecified,
            "internal" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            _ => return None,
        })
    }

    /// Small stable number for columnar storage (the OTLP number).
    pub fn as_u8(self) -> u8 {
        match self {
            SpanKind::Unspecified => 0,
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
            SpanKind::Producer => 4,
            SpanKind::Consumer => 5,
        }
    }
}

/// A timed event inside a span (OTLP `Span.Event`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    pub ts_ns: i64,
    pub name: String,
    #[serde(with = "json_text")]
    pub attributes: Map<String, Value>,
}

/// A link to another span (OTLP `Span.Link`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanLink {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    #[serde(with = "json_text")]
    pub attributes: Map<String, Value>,
}

/// One span (SPEC §2). Identifiers are raw bytes; [`hex`] prints them as OTLP JSON and the APIs do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanRecord {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// `None` for a root span.
    pub parent_id: Option<[u8; 8]>,
    pub service: String,
    /// The operation (OTLP span name).
    pub name: String,
    /// What the operation acted on (`GET /users/:id`, a SQL statement); the name when nothing better is known.
    pub resource: String,
    pub start_ns: i64,
    pub duration_ns: i64,
    pub kind: SpanKind,
    /// OTLP status code ERROR.
    pub error: bool,
    /// OTLP status message (empty when none).
    pub status_message: String,
    pub host: Option<String>,
    pub env: Option<String>,
    pub version: Option<String>,
    /// The span's own attributes (flat OTLP keys such as `http.route`; values keep their JSON type).
    #[serde(with = "json_text")]
    pub attributes: Map<String, Value>,
    /// Resource and scope attributes other than the mapped ones (`service.name` …): shared by every span of
    /// one resource, kept apart so storage can encode them once.
    #[serde(with = "json_text")]
    pub resource_attributes: Map<String, Value>,
    pub events: Vec<SpanEvent>,
    pub links: Vec<SpanLink>,
}

impl SpanRecord {
    /// A minimal span: for tests and tools.
    pub fn new(
        trace_id: [u8; 16],
        span_id: [u8; 8],
        parent_id: Option<[u8; 8]>,
        service: &str,
        name: &str,
        start_ns: i64,
        duration_ns: i64,
    ) -> SpanRecord {
        SpanRecord {
            trace_id,
            span_id,
            parent_id,
            service: service.to_string(),
            name: name.to_string(),
            resource: name.to_string(),
            start_ns,
            duration_ns,
            kind: SpanKind::Internal,
            error: false,
            status_message: String::new(),
            host: None,
            env: None,
            version: None,
            attributes: Map::new(),
            resource_attributes: Map::new(),
            events: Vec::new(),
            links: Vec::new(),
        }
    }

    /// Nanoseconds since the Unix epoch at which the span ended.
    pub fn end_ns(&self) -> i64 {
        self.start_ns.saturating_add(self.duration_ns)
    }

    /// An attribute by its flat key, looking at the span's own attributes first, then the resource's.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes
            .get(key)
            .or_else(|| self.resource_attributes.get(key))
    }
}

/// Lower-case hexadecimal, as OTLP JSON and the query APIs print identifiers.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Parses exactly `N` bytes of hexadecimal (either case); `None` otherwise.
pub fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != N * 2 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nibble(s[2 * i])? << 4 | nibble(s[2 * i + 1])?;
    }
    Some(out)
}

/// The prefix of a span name's RED metrics (`trace.<name>.hits`, `.errors`, `.duration`), as Datadog names its
/// trace metrics: the name lower-cased, every run of characters other than letters, digits, `_` and `.`
/// replaced by one `_`, trimmed of `_` and `.`, cut to 100 bytes; `unnamed` when nothing is left.
pub fn red_metric_prefix(span_name: &str) -> String {
    let mut out = String::with_capacity(span_name.len() + 6);
    out.push_str("trace.");
    let start = out.len();
    let mut pending_sep = false;
    for c in span_name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            if pending_sep && out.len() > start {
                out.push('_');
            }
            pending_sep = false;
            out.push(c);
        } else {
            pending_sep = true;
        }
        if out.len() - start >= 100 {
            break;
        }
    }
    while out.len() > start && (out.ends_with('_') || out.ends_with('.')) {
        out.pop();
    }
    let trimmed_front = out[start..].trim_start_matches(['_', '.']).to_string();
    out.truncate(start);
    if trimmed_front.is_empty() {
        out.push_str("unnamed");
    } else {
        out.push_str(&trimmed_front);
    }
    out
}

/// Spans written together: the unit the write-ahead log records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanBatch {
    pub spans: Vec<SpanRecord>,
}

impl SpanBatch {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Encodes the batch for the write-ahead log.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("a span batch always serializes")
    }

    /// Decodes a batch written by [`SpanBatch::encode`].
    pub fn decode(bytes: &[u8]) -> Result<SpanBatch, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trip() {
        let mut s = SpanRecord::new([7; 16], [1; 8], Some([2; 8]), "api", "GET /", 10, 20);
        s.attributes
            .insert("http.status_code".into(), Value::from(500));
        s.resource_attributes
            .insert("k8s.pod.name".into(), Value::from("p-1"));
        s.events.push(SpanEvent {
            ts_ns: 15,
            name: "exception".into(),
            attributes: Map::new(),
        });
        s.links.push(SpanLink {
            trace_id: [3; 16],
            span_id: [4; 8],
            attributes: Map::new(),
        });
        let batch = SpanBatch { spans: vec![s] };
        assert_eq!(SpanBatch::decode(&batch.encode()).unwrap(), batch);
    }

    #[test]
    fn red_names() {
        for (name, want) in [
            ("GET /users/:id", "trace.get_users_id"),
            ("http.request", "trace.http.request"),
            ("SELECT", "trace.select"),
            ("  ", "trace.unnamed"),
            ("._a b_.", "trace.a_b"),
        ] {
            assert_eq!(red_metric_prefix(name), want, "{name:?}");
        }
    }

    #[test]
    fn hex_round_trip() {
        let id = [0xab, 0x01, 0xff, 0x10, 0, 0, 0, 9];
        assert_eq!(hex(&id), "ab01ff1000000009");
        assert_eq!(parse_hex::<8>("AB01ff1000000009"), Some(id));
        assert_eq!(parse_hex::<8>("ab01"), None);
        assert_eq!(parse_hex::<8>("zz01ff1000000009"), None);
    }
}

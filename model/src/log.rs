//! Log records and batches: what the log receivers (syslog, raw lines, Datadog intake, DogStatsD `_e`/`_sc`,
//! later OTLP) produce and what the log store keeps.

use serde::{Deserialize, Serialize};

/// Datadog's log levels, most severe first. `status` of a record is always one of these.
pub const STATUSES: [&str; 9] = [
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "info",
    "debug",
    "ok",
];

/// Maps a level as clients write it (`ERROR`, `err`, `warn`, `fatal`, `5`, syslog severities `0`–`7` …) to one of
/// [`STATUSES`]; `None` when it is not recognisable (callers then keep the default, `info`).
pub fn normalize_status(s: &str) -> Option<&'static str> {
    let lower = s.trim().to_ascii_lowercase();
    Some(match lower.as_str() {
        "emerg" | "emergency" | "panic" | "0" => "emergency",
        "alert" | "1" => "alert",
        "crit" | "critical" | "fatal" | "2" => "critical",
        "err" | "error" | "eror" | "3" => "error",
        "warn" | "warning" | "4" => "warning",
        "notice" | "5" => "notice",
        "info" | "information" | "informational" | "6" => "info",
        "debug" | "trace" | "dbug" | "7" => "debug",
        "ok" | "success" => "ok",
        _ => return None,
    })
}

/// The current time in nanoseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// One log record (SPEC §2). Reserved attributes have their own fields; `env`, `version` and other tags live
/// in `tags` (`key:value` or bare values, as on metrics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    pub message: String,
    /// One of [`STATUSES`].
    pub status: String,
    pub service: Option<String>,
    pub host: Option<String>,
    pub source: Option<String>,
    /// Sorted and de-duplicated.
    pub tags: Vec<String>,
    /// Nested attributes (searchable as `@a.b.c`).
    #[serde(with = "json_text")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

impl LogRecord {
    /// A record with only a timestamp and a message, status `info`.
    pub fn new(ts_ns: i64, message: impl Into<String>) -> LogRecord {
        LogRecord {
            ts_ns,
            message: message.into(),
            status: "info".to_string(),
            service: None,
            host: None,
            source: None,
            tags: Vec::new(),
            attributes: serde_json::Map::new(),
            trace_id: None,
            span_id: None,
        }
    }

    /// Sorts and de-duplicates `tags`.
    pub fn normalize_tags(&mut self) {
        self.tags.sort();
        self.tags.dedup();
    }

    /// The value of the first tag `key:…`, if any.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find_map(|t| t.strip_prefix(key).and_then(|rest| rest.strip_prefix(':')))
    }
}

/// Attributes go through compact encodings (postcard in the write-ahead log) as their JSON text: JSON values
/// need a self-describing format.
pub(crate) mod json_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(
        m: &serde_json::Map<String, serde_json::Value>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            m.serialize(s)
        } else {
            serde_json::to_string(m)
                .map_err(serde::ser::Error::custom)?
                .serialize(s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<serde_json::Map<String, serde_json::Value>, D::Error> {
        if d.is_human_readable() {
            serde_json::Map::deserialize(d)
        } else {
            let text = String::deserialize(d)?;
            serde_json::from_str(&text).map_err(serde::de::Error::custom)
        }
    }
}

/// Records written together.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogBatch {
    pub records: Vec<LogRecord>,
}

impl LogBatch {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Compact binary form (for the write-ahead log).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("log batches always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<LogBatch, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_normalize() {
        fn check(input: &str, expected: Option<&str>) {
            assert_eq!(normalize_status(input), expected, "{input}");
        }
        check("ERROR", Some("error"));
        check("warn", Some("warning"));
        check(" Fatal ", Some("critical"));
        check("3", Some("error"));
        check("informational", Some("info"));
        check("verbose", None);
        check("", None);
    }

    #[test]
    fn batches_round_trip_with_nested_attributes() {
        let mut r = LogRecord::new(1_700_000_000_123_456_789, "GET /x 200");
        r.attributes =
            serde_json::json!({"http": {"status_code": 200, "url": "/x"}, "ok": true, "n": null})
                .as_object()
                .unwrap()
                .clone();
        r.tags = vec!["env:prod".into(), "a".into(), "env:prod".into()];
        r.normalize_tags();
        assert_eq!(r.tag("env"), Some("prod"));
        let b = LogBatch {
            records: vec![r.clone(), LogRecord::new(0, "")],
        };
        assert_eq!(LogBatch::decode(&b.encode()).unwrap(), b);
        // JSON keeps the attributes as an object, not as text.
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["attributes"]["http"]["status_code"], 200);
    }
}

//! The tantivy schema of a log partition: its fields, the log tokenizer, and the mapping between
//! `LogRecord`s and documents.
//!
//! Fields:
//! - `ts` (i64 ns, fast; time ranges scan the column) and `seq` (u64, fast): the sort key; `seq` is
//!   `lsn << 20 | index in batch`, unique per record, so pages and ids are stable.
//! - `message`: text with the [`LogTokenizer`] (words are runs of letters, digits and `_`, lower-cased), with
//!   positions for phrases.
//! - `status`, `service`, `host`, `source`, `trace_id`, `span_id`: raw strings, indexed and fast.
//! - `tags`: raw `key:value` / bare strings, indexed and fast (multi-valued).
//! - `attrs`: the attributes as a JSON field, fast only (raw strings, numbers, booleans): numeric ranges,
//!   existence, group-by.
//! - `attr_kv`: one raw term `path=value` per attribute leaf: exact and wildcard matches on `@path`.
//! - `ips`: one raw term `path=<32 hex digits>` per attribute leaf that is an IP address (v4 mapped into v6):
//!   CIDR searches are term ranges.
//! - `doc`: the whole record (postcard), stored (zstd-compressed by the doc store).
//!
//! Nothing is scored (results sort by time), so no field keeps fieldnorms.

use serde_json::{Map, Value};
use sightline_model::LogRecord;
use std::net::{IpAddr, Ipv6Addr};
use tantivy::schema::{
    Field, IndexRecordOption, JsonObjectOptions, Schema, TextFieldIndexing, TextOptions, FAST,
    STORED,
};
use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, TextAnalyzer, Token, TokenStream, Tokenizer,
};
use tantivy::{Index, TantivyDocument};

/// Name under which [`LogTokenizer`] (with lower-casing) is registered.
pub const TOKENIZER: &str = "sightline_log";
/// Words longer than this (bytes) are not indexed.
const MAX_TOKEN_BYTES: usize = 255;

/// Handles of the fields of [`schema`].
#[derive(Debug, Clone, Copy)]
pub struct LogFields {
    pub ts: Field,
    pub seq: Field,
    pub message: Field,
    pub status: Field,
    pub service: Field,
    pub host: Field,
    pub source: Field,
    pub trace_id: Field,
    pub span_id: Field,
    pub tags: Field,
    pub attrs: Field,
    pub attr_kv: Field,
    pub ips: Field,
    pub doc: Field,
}

impl LogFields {
    /// The raw field of a reserved key (`service:`, `host:`, …), if `key` is one.
    pub fn reserved(&self, key: &str) -> Option<Field> {
        Some(match key {
            "status" => self.status,
            "service" => self.service,
            "host" => self.host,
            "source" => self.source,
            "trace_id" => self.trace_id,
            "span_id" => self.span_id,
            _ => return None,
        })
    }
}

/// The schema of every log partition.
pub fn schema() -> (Schema, LogFields) {
    let mut b = Schema::builder();
    let raw = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::Basic),
    );
    let raw_fast = raw.clone().set_fast("raw");
    let message = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let attrs = JsonObjectOptions::default()
        .set_fast("raw")
        .set_expand_dots_enabled();
    let fields = LogFields {
        ts: b.add_i64_field("ts", FAST),
        seq: b.add_u64_field("seq", FAST),
        message: b.add_text_field("message", message),
        status: b.add_text_field("status", raw_fast.clone()),
        service: b.add_text_field("service", raw_fast.clone()),
        host: b.add_text_field("host", raw_fast.clone()),
        source: b.add_text_field("source", raw_fast.clone()),
        trace_id: b.add_text_field("trace_id", raw_fast.clone()),
        span_id: b.add_text_field("span_id", raw_fast.clone()),
        tags: b.add_text_field("tags", raw_fast),
        attrs: b.add_json_field("attrs", attrs),
        attr_kv: b.add_text_field("attr_kv", raw.clone()),
        ips: b.add_text_field("ips", raw),
        doc: b.add_bytes_field("doc", STORED),
    };
    (b.build(), fields)
}

/// The analyzer of `message`: [`LogTokenizer`], lower-cased, overlong words dropped.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(LogTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .build()
}

/// Registers the log analyzer on an index (needed for both writing and reading).
pub fn register_tokenizers(index: &Index) {
    index.tokenizers().register(TOKENIZER, analyzer());
}

/// The words of `text` as `message` indexes them.
pub fn words(text: &str) -> Vec<String> {
    let mut a = analyzer();
    let mut stream = a.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// Whether `c` belongs to a word: letters, digits and `_` (so `snake_case` and identifiers stay whole;
/// IPs, UUIDs and paths become several words, found as phrases).
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits text into runs of [`is_word_char`] characters.
#[derive(Clone, Default)]
pub struct LogTokenizer {
    token: Token,
}

/// The token stream of [`LogTokenizer`].
pub struct LogTokenStream<'a> {
    text: &'a str,
    pos: usize,
    token: &'a mut Token,
}

impl Tokenizer for LogTokenizer {
    type TokenStream<'a> = LogTokenStream<'a>;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> LogTokenStream<'a> {
        self.token.reset();
        LogTokenStream {
            text,
            pos: 0,
            token: &mut self.token,
        }
    }
}

impl TokenStream for LogTokenStream<'_> {
    fn advance(&mut self) -> bool {
        self.token.text.clear();
        let rest = &self.text[self.pos..];
        let Some(start) = rest.find(is_word_char) else {
            self.pos = self.text.len();
            return false;
        };
        let from = self.pos + start;
        let len = self.text[from..]
            .find(|c: char| !is_word_char(c))
            .unwrap_or(self.text.len() - from);
        let to = from + len;
        self.token.position = self.token.position.wrapping_add(1);
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.text.push_str(&self.text[from..to]);
        self.pos = to;
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// The `ips` term of an address at `path`: v4 addresses mapped into v6, 32 hex digits, so that term order
/// is address order and a network is one term range.
pub fn ip_term(path: &str, ip: IpAddr) -> String {
    let v6: Ipv6Addr = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    format!("{path}={:032x}", u128::from(v6))
}

/// Calls `f(path, leaf)` for every non-null leaf of the attributes; array elements share their array's path.
pub fn for_each_leaf(attrs: &Map<String, Value>, f: &mut impl FnMut(&str, &Value)) {
    fn walk(path: &mut String, v: &Value, f: &mut impl FnMut(&str, &Value)) {
        match v {
            Value::Null => {}
            Value::Object(m) => {
                for (k, v) in m {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    walk(path, v, f);
                    path.truncate(len);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(path, v, f)),
            leaf => f(path, leaf),
        }
    }
    let mut path = String::new();
    for (k, v) in attrs {
        path.clear();
        path.push_str(k);
        walk(&mut path, v, f);
    }
}

/// The text of a leaf as its `attr_kv` term holds it (and `*:` matches it).
pub fn leaf_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The stored form of a record (postcard: compact, and fast to write and read back).
pub fn encode_record(r: &LogRecord) -> Vec<u8> {
    postcard::to_stdvec(r).expect("log records always serialize")
}

/// A record from its stored form.
pub fn decode_record(bytes: &[u8]) -> Result<LogRecord, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// The document of a record.
pub fn to_document(f: &LogFields, r: &LogRecord, seq: u64) -> TantivyDocument {
    let mut d = TantivyDocument::default();
    d.add_i64(f.ts, r.ts_ns);
    d.add_u64(f.seq, seq);
    d.add_text(f.message, &r.message);
    d.add_text(f.status, &r.status);
    let optional = [
        (f.service, &r.service),
        (f.host, &r.host),
        (f.source, &r.source),
        (f.trace_id, &r.trace_id),
        (f.span_id, &r.span_id),
    ];
    for (field, v) in optional {
        if let Some(v) = v {
            d.add_text(field, v);
        }
    }
    for t in &r.tags {
        d.add_text(f.tags, t);
    }
    if !r.attributes.is_empty() {
        d.add_field_value(
            f.attrs,
            &tantivy::schema::OwnedValue::from(r.attributes.clone()),
        );
        for_each_leaf(&r.attributes, &mut |path, leaf| {
            let text = leaf_text(leaf);
            if let Ok(ip) = text.parse::<IpAddr>() {
                d.add_text(f.ips, ip_term(path, ip));
            }
            d.add_text(f.attr_kv, format!("{path}={text}"));
        });
    }
    d.add_bytes(f.doc, &encode_record(r));
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_identifiers_and_split_punctuation() {
        fn check(input: &str, expected: &[&str]) {
            assert_eq!(words(input), expected, "{input}");
        }
        check("Hello, World!", &["hello", "world"]);
        check(
            "user_id=apNjkATwdFGD failed",
            &["user_id", "apnjkatwdfgd", "failed"],
        );
        check(
            "GET /api/v1/users 10.0.0.1",
            &["get", "api", "v1", "users", "10", "0", "0", "1"],
        );
        check(
            "id 550e8400-e29b-41d4-a716-446655440000",
            &["id", "550e8400", "e29b", "41d4", "a716", "446655440000"],
        );
        check("Ünïcödé straße", &["ünïcödé", "straße"]);
        check("", &[]);
        check("--- ...", &[]);
    }

    #[test]
    fn ip_terms_order_like_addresses() {
        let a = ip_term("ip", "10.0.0.1".parse().unwrap());
        let b = ip_term("ip", "10.0.0.255".parse().unwrap());
        let c = ip_term("ip", "11.0.0.0".parse().unwrap());
        assert!(a < b && b < c);
        assert_eq!(a, "ip=00000000000000000000ffff0a000001");
        assert_eq!(
            ip_term("ip", "2001:db8::1".parse().unwrap()),
            "ip=20010db8000000000000000000000001"
        );
    }

    #[test]
    fn leaves_are_flattened() {
        let attrs = serde_json::json!({"http": {"status_code": 500, "tags": ["a", "b"]}, "n": null, "ok": true});
        let mut seen = Vec::new();
        for_each_leaf(attrs.as_object().unwrap(), &mut |p, v| {
            seen.push(format!("{p}={}", leaf_text(v)))
        });
        assert_eq!(
            seen,
            [
                "http.status_code=500",
                "http.tags=a",
                "http.tags=b",
                "ok=true"
            ]
        );
    }
}

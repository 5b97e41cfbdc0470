//! HTTP request bodies shared by every HTTP receiver: decoding `Content-Encoding` (identity, gzip, deflate)
//! under a size limit that holds after decompression, and the `{"errors":[…]}` reply of SPEC §4.
//!
//! Every intake handler is the same skeleton: [`raw_body`] (413 over the raw limit), [`decode_and_parse`] (on
//! the blocking pool unless small and plain), write to its sink, and answer, or [`ErrorsReply::failed`].
//! JSON bodies share [`json_objects`], [`json_kind`] and [`json_error`] for their messages.

use crate::error::IngestError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use serde_json::{Map, Value as Json};
use std::io::Read;

/// Uncompressed bodies up to this size are parsed on the runtime thread; others on the blocking pool.
const INLINE_PARSE_MAX_BYTES: usize = 64 * 1024;

/// The body axum read, or the error for one over the raw limit (`limit`, 413) or unreadable (400).
pub fn raw_body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, IngestError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            IngestError::BodyTooLarge { limit }
        } else {
            IngestError::Invalid(format!(
                "cannot read request body: {}",
                rejection.body_text().to_lowercase()
            ))
        }
    })
}

/// The `Content-Encoding` header, if any; a value that is not ASCII is an unsupported encoding.
pub fn content_encoding(headers: &HeaderMap) -> Result<Option<String>, IngestError> {
    match headers.get(header::CONTENT_ENCODING) {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.to_string())).map_err(|_| {
            IngestError::BadEncoding(String::from_utf8_lossy(v.as_bytes()).into_owned())
        }),
    }
}

/// Refuses a protobuf `Content-Type` on `path` (only JSON is implemented), telling the client what to `send`.
pub fn refuse_protobuf(
    content_type: Option<&str>,
    path: &str,
    send: &str,
) -> Result<(), IngestError> {
    match content_type.map(str::to_ascii_lowercase) {
        Some(ct) if ct.contains("protobuf") => Err(IngestError::Invalid(format!(
            "content-type {ct:?} is not supported on {path}; send {send}"
        ))),
        _ => Ok(()),
    }
}

/// Decodes a body read on `path` according to its `Content-Encoding` (under `limit`) and parses it: in place
/// when it is small and plain, on the blocking pool when it is compressed or large.
pub async fn decode_and_parse<T, F>(
    path: &str,
    headers: &HeaderMap,
    raw: Bytes,
    limit: usize,
    parse: F,
) -> Result<T, IngestError>
where
    T: Send + 'static,
    F: FnOnce(&[u8]) -> Result<T, IngestError> + Send + 'static,
{
    let encoding = content_encoding(headers)?;
    let small = raw.len() <= INLINE_PARSE_MAX_BYTES && encoding.is_none();
    let work = move || -> Result<T, IngestError> {
        let body = decode_body(encoding.as_deref(), &raw, limit)?;
        parse(&body)
    };
    if small {
        work()
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| IngestError::Internal(format!("parsing {path} body: {e}")))?
    }
}

/// The objects of a JSON body holding one object or an array of them; `entry` names an element in messages
/// (`"log entry"`), `send` says what the body should be.
pub fn json_objects(
    body: &[u8],
    entry: &str,
    send: &str,
) -> Result<Vec<Map<String, Json>>, IngestError> {
    match serde_json::from_slice(body).map_err(json_error)? {
        Json::Object(map) => Ok(vec![map]),
        Json::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Json::Object(map) => Ok(map),
                other => Err(IngestError::BadJson(format!(
                    "{entry} [{i}] is {}; each entry must be an object",
                    json_kind(&other)
                ))),
            })
            .collect(),
        other => Err(IngestError::BadJson(format!(
            "request body is {}; send {send}",
            json_kind(&other)
        ))),
    }
}

/// A JSON value's type, with its article, for messages (`"a number"`).
pub fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The whole-body JSON error, lowercase, keeping serde_json's line and column.
pub fn json_error(e: serde_json::Error) -> IngestError {
    IngestError::BadJson(e.to_string().replace("EOF", "end of input"))
}

/// Decodes a request body according to its `Content-Encoding` header value.
///
/// Accepts identity (or no header), `gzip` / `x-gzip` and `deflate` (zlib-wrapped as HTTP says, or raw deflate
/// when the zlib header is missing, as some clients send), and a comma-separated list of those (applied in
/// order, so decoded in reverse). At most `limit + 1` bytes are ever inflated, so a decompression bomb costs
/// no more memory than an honest body at the limit.
pub fn decode_body(
    content_encoding: Option<&str>,
    raw: &[u8],
    limit: usize,
) -> Result<Vec<u8>, IngestError> {
    let encodings: Vec<String> = content_encoding
        .unwrap_or("")
        .split(',')
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e != "identity")
        .collect();
    if encodings.is_empty() {
        if raw.len() > limit {
            return Err(IngestError::TooLarge {
                size: raw.len(),
                limit,
            });
        }
        return Ok(raw.to_vec());
    }
    let mut current: Option<Vec<u8>> = None;
    for encoding in encodings.iter().rev() {
        let input = current.as_deref().unwrap_or(raw);
        current = Some(decode_one(encoding, input, limit)?);
    }
    Ok(current.unwrap_or_default())
}

/// Decodes one layer of content coding.
fn decode_one(encoding: &str, input: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    match encoding {
        "gzip" | "x-gzip" => inflate(encoding, MultiGzDecoder::new(input), input.len(), limit),
        "deflate" if has_zlib_header(input) => {
            inflate(encoding, ZlibDecoder::new(input), input.len(), limit)
        }
        "deflate" => inflate(encoding, DeflateDecoder::new(input), input.len(), limit),
        other => Err(IngestError::BadEncoding(other.to_string())),
    }
}

/// Whether `input` starts with a zlib header (RFC 1950): method 8 (deflate), a window of at most 32 KiB,
/// and a check value making the first two bytes a multiple of 31.
fn has_zlib_header(input: &[u8]) -> bool {
    match input {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

/// Reads a decoder to its end, never more than `limit + 1` bytes.
fn inflate(
    encoding: &str,
    decoder: impl Read,
    compressed_len: usize,
    limit: usize,
) -> Result<Vec<u8>, IngestError> {
    // A typical JSON body compresses 5–10×; start there and let the vector grow up to the limit.
    let mut out = Vec::with_capacity(
        compressed_len
            .saturating_mul(8)
            .min(limit.saturating_add(1)),
    );
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| IngestError::BadCompression {
            encoding: encoding.to_string(),
            detail: e.to_string().to_lowercase(),
        })?;
    if out.len() > limit {
        return Err(IngestError::TooLargeDecoded {
            encoding: encoding.to_string(),
            limit,
        });
    }
    Ok(out)
}

/// The reply every Datadog-style HTTP endpoint gives: a status and `{"errors":[…]}`, with `Retry-After` when
/// the client should come back later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorsReply {
    pub status: StatusCode,
    pub errors: Vec<String>,
    pub retry_after_secs: Option<u32>,
}

impl ErrorsReply {
    /// A reply with this status and these messages, without `Retry-After`.
    pub fn new(status: StatusCode, errors: Vec<String>) -> Self {
        ErrorsReply {
            status,
            errors,
            retry_after_secs: None,
        }
    }
}

impl ErrorsReply {
    /// The reply to a request on `endpoint` that failed, logged as `"{intake} failed"` (a warning: 5xx, our
    /// side) or `"{intake} refused a request"` (debug: the client's).
    pub fn failed(endpoint: &str, intake: &str, e: IngestError) -> Self {
        if e.kind().http_status() >= 500 {
            tracing::warn!(endpoint, error = %e, "{intake} failed");
        } else {
            tracing::debug!(endpoint, error = %e, "{intake} refused a request");
        }
        ErrorsReply::from(e)
    }
}

impl From<IngestError> for ErrorsReply {
    /// The one mapping from an ingest error to an HTTP reply: status and `Retry-After` from its kind.
    fn from(e: IngestError) -> Self {
        let kind = e.kind();
        let status =
            StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ErrorsReply {
            status,
            errors: vec![e.to_string()],
            retry_after_secs: kind.retry_after_secs(),
        }
    }
}

impl IntoResponse for ErrorsReply {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "errors": self.errors });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        ErrorsReply::from(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{gzip, raw_deflate, zlib};
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    /// Decodes `raw` with `encoding` under `limit`; `expected` is the decoded body or a piece of the error
    /// message together with the HTTP status it must map to.
    fn check(
        encoding: Option<&str>,
        raw: &[u8],
        limit: usize,
        expected: Result<&[u8], (u16, &str)>,
    ) {
        let got = decode_body(encoding, raw, limit);
        match (got, expected) {
            (Ok(body), Ok(want)) => assert_eq!(body, want, "encoding {encoding:?}"),
            (Err(e), Err((status, msg))) => {
                let text = e.to_string();
                assert_eq!(
                    e.kind().http_status(),
                    status,
                    "encoding {encoding:?}: {text}"
                );
                assert!(
                    text.contains(msg),
                    "encoding {encoding:?}: {text:?} does not contain {msg:?}"
                );
                assert_eq!(
                    text,
                    text.to_lowercase(),
                    "error messages are lowercase: {text}"
                );
            }
            (got, want) => panic!("encoding {encoding:?}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn decode_table() {
        let json = br#"{"series":[{"metric":"a.b","points":[{"timestamp":1,"value":2}]}]}"#;
        let big = vec![b'x'; 5000];
        check(None, json, 1000, Ok(json));
        check(Some(""), json, 1000, Ok(json));
        check(Some("identity"), json, 1000, Ok(json));
        check(Some("gzip"), &gzip(json), 1000, Ok(json));
        check(Some("GZIP"), &gzip(json), 1000, Ok(json));
        check(Some("x-gzip"), &gzip(json), 1000, Ok(json));
        check(Some("deflate"), &zlib(json), 1000, Ok(json));
        check(Some("deflate"), &raw_deflate(json), 1000, Ok(json));
        check(Some("deflate, gzip"), &gzip(&zlib(json)), 1000, Ok(json));
        check(Some("gzip"), &gzip(b""), 1000, Ok(b""));
        // Exactly at the limit is fine; one byte over is not.
        check(None, &big, 5000, Ok(&big));
        check(Some("gzip"), &gzip(&big), 5000, Ok(&big));
        check(
            None,
            &big,
            4999,
            Err((413, "request body is 5000 bytes after decompression")),
        );
        check(
            Some("gzip"),
            &gzip(&big),
            4999,
            Err((413, "over 4999 bytes after gzip decompression")),
        );
        check(
            Some("deflate"),
            &zlib(&big),
            4999,
            Err((413, "after deflate decompression")),
        );
        check(
            Some("br"),
            json,
            1000,
            Err((400, "unsupported content-encoding \"br\"")),
        );
        check(Some("gzip, zstd"), json, 1000, Err((400, "\"zstd\"")));
        check(Some("gzip"), json, 1000, Err((400, "malformed gzip body")));
        let mut truncated = gzip(&big);
        truncated.truncate(truncated.len() / 2);
        check(
            Some("gzip"),
            &truncated,
            10_000,
            Err((400, "malformed gzip body")),
        );
        check(
            Some("deflate"),
            b"\xff\xff\xff\xff not deflate",
            1000,
            Err((400, "malformed deflate body")),
        );
    }

    #[test]
    fn gzip_bomb_is_refused_quickly() {
        // 200 MiB of zeros, compressed in a streaming way (only the ~200 KiB of output is ever held).
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..200 {
            enc.write_all(&chunk).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 2 << 20, "bomb is {} bytes", bomb.len());
        let limit = 1 << 20;
        let start = std::time::Instant::now();
        let err = decode_body(Some("gzip"), &bomb, limit).unwrap_err();
        let took = start.elapsed();
        assert!(
            matches!(err, IngestError::TooLargeDecoded { limit: l, .. } if l == limit),
            "{err}"
        );
        assert_eq!(err.kind().http_status(), 413);
        // Inflating all 200 MiB would take far longer than inflating the first MiB.
        assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
    }

    #[test]
    fn error_reply_shape() {
        let resp = IngestError::Sink(sightline_model::SinkError::Overloaded("wal full".into()))
            .into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers().get(header::RETRY_AFTER).unwrap(), "1");
        let resp = IngestError::BadEncoding("br".into()).into_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(resp.headers().get(header::RETRY_AFTER).is_none());
    }
}

//! The span store's in-memory head: every acknowledged batch not yet in Parquet, kept as its encoded
//! write-ahead-log payload (the bytes of `SpanBatch::encode()`) plus where each span sits in it, with a
//! trace id → spans chain so that a trace lookup costs only the spans of that trace.
//!
//! Appending a batch costs one postcard encoding (which the WAL needs anyway), one copy of the bytes and one
//! hash-map insert per span. Spans are decoded only when read, and a flush walks them through [`RawSpan`], a
//! borrowed view that copies no string and parses no JSON.

use crate::wal::Lsn;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sightline_model::{SpanBatch, SpanEvent, SpanKind, SpanLink, SpanRecord};
use std::collections::HashMap;
use std::sync::Arc;

/// No previous span of the same trace in the head.
const NONE: u64 = u64::MAX;

/// Where one span sits in its chunk's payload, with the fields the head sorts and filters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpanLoc {
    pub trace_id: [u8; 16],
    pub start_ns: i64,
    pub off: u32,
    pub len: u32,
}

/// One written batch: its payload and where each span is in it. Immutable once in the head.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub payload: Vec<u8>,
    pub spans: Vec<SpanLoc>,
    /// Per span: the position (see [`pos`]) of the previous span of the same trace in the head, or `NONE`.
    prev: Vec<u64>,
    pub min_start: i64,
    pub max_start: i64,
}

impl Chunk {
    /// The encoded bytes of span `i`.
    pub fn bytes(&self, i: usize) -> &[u8] {
        let l = &self.spans[i];
        &self.payload[l.off as usize..(l.off + l.len) as usize]
    }

    /// Decodes span `i`.
    pub fn decode(&self, i: usize) -> Result<SpanRecord, postcard::Error> {
        postcard::from_bytes(self.bytes(i))
    }

    /// Whether some span of the chunk may start in `[from_ns, to_ns)`.
    pub fn overlaps(&self, from_ns: i64, to_ns: i64) -> bool {
        self.min_start < to_ns && self.max_start >= from_ns
    }
}

fn pos(chunk: usize, i: usize) -> u64 {
    ((chunk as u64) << 32) | i as u64
}

fn unpos(p: u64) -> (usize, usize) {
    ((p >> 32) as usize, (p & 0xffff_ffff) as usize)
}

/// Spans in memory: a list of chunks in LSN order and, per trace, its most recent span.
#[derive(Debug, Default)]
pub(crate) struct Head {
    chunks: Vec<Arc<Chunk>>,
    /// Trace id → position of the trace's most recent span; the chunks' `prev` links lead to the others.
    last: HashMap<[u8; 16], u64>,
    spans: usize,
    bytes: usize,
    /// LSN of the newest chunk (0 when empty).
    pub last_lsn: Lsn,
}

impl Head {
    pub fn spans(&self) -> usize {
        self.spans
    }

    /// Payload bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn chunks(&self) -> &[Arc<Chunk>] {
        &self.chunks
    }

    /// Appends a batch (`payload` and `spans` as [`encode_batch`] or [`index_payload`] made them).
    pub fn push(&mut self, lsn: Lsn, payload: Vec<u8>, spans: Vec<SpanLoc>) {
        if spans.is_empty() {
            self.last_lsn = self.last_lsn.max(lsn);
            return;
        }
        let ci = self.chunks.len();
        let mut prev = Vec::with_capacity(spans.len());
        let (mut min_start, mut max_start) = (i64::MAX, i64::MIN);
        for (i, s) in spans.iter().enumerate() {
            prev.push(self.last.insert(s.trace_id, pos(ci, i)).unwrap_or(NONE));
            min_start = min_start.min(s.start_ns);
            max_start = max_start.max(s.start_ns);
        }
        self.spans += spans.len();
        self.bytes += payload.len();
        self.last_lsn = self.last_lsn.max(lsn);
        self.chunks.push(Arc::new(Chunk {
            payload,
            spans,
            prev,
            min_start,
            max_start,
        }));
    }

    /// The spans of one trace: their chunks and indexes, newest first.
    pub fn trace(&self, trace_id: &[u8; 16]) -> Vec<(Arc<Chunk>, usize)> {
        let mut out = Vec::new();
        let mut p = self.last.get(trace_id).copied().unwrap_or(NONE);
        while p != NONE {
            let (c, i) = unpos(p);
            let chunk = &self.chunks[c];
            out.push((chunk.clone(), i));
            p = chunk.prev[i];
        }
        out
    }
}

/// Encodes a batch exactly as `SpanBatch::encode()` does (so the WAL payload decodes with
/// `SpanBatch::decode`), noting where each span is. Faster than the derived encoding: attribute maps are
/// written as JSON into one reused buffer, and resource attributes equal to the previous span's (the usual
/// case: OTLP groups spans by resource) reuse its JSON.
pub(crate) fn encode_batch(batch: &SpanBatch) -> (Vec<u8>, Vec<SpanLoc>) {
    let mut buf = Vec::with_capacity(16 + batch.spans.len() * 1024);
    write_varint(&mut buf, batch.spans.len() as u64);
    let mut locs = Vec::with_capacity(batch.spans.len());
    let mut attrs = Vec::with_capacity(1024);
    let mut res = Vec::with_capacity(1024);
    let mut prev_res: Option<&Map<String, Value>> = None;
    for s in &batch.spans {
        let off = buf.len();
        attrs.clear();
        serde_json::to_writer(&mut attrs, &s.attributes).expect("a JSON map always serializes");
        if prev_res != Some(&s.resource_attributes) {
            res.clear();
            serde_json::to_writer(&mut res, &s.resource_attributes)
                .expect("a JSON map always serializes");
            prev_res = Some(&s.resource_attributes);
        }
        let out = SpanOut {
            trace_id: &s.trace_id,
            span_id: &s.span_id,
            parent_id: &s.parent_id,
            service: &s.service,
            name: &s.name,
            resource: &s.resource,
            start_ns: s.start_ns,
            duration_ns: s.duration_ns,
            kind: s.kind,
            error: s.error,
            status_message: &s.status_message,
            host: &s.host,
            env: &s.env,
            version: &s.version,
            attributes: std::str::from_utf8(&attrs).expect("serde_json writes UTF-8"),
            resource_attributes: std::str::from_utf8(&res).expect("serde_json writes UTF-8"),
            events: &s.events,
            links: &s.links,
        };
        buf = postcard::to_extend(&out, buf).expect("a span always serializes");
        locs.push(SpanLoc {
            trace_id: s.trace_id,
            start_ns: s.start_ns,
            off: off as u32,
            len: (buf.len() - off) as u32,
        });
    }
    (buf, locs)
}

/// `SpanRecord` as its derived `Serialize` writes it for postcard (maps as JSON text), borrowed.
#[derive(Serialize)]
struct SpanOut<'a> {
    trace_id: &'a [u8; 16],
    span_id: &'a [u8; 8],
    parent_id: &'a Option<[u8; 8]>,
    service: &'a str,
    name: &'a str,
    resource: &'a str,
    start_ns: i64,
    duration_ns: i64,
    kind: SpanKind,
    error: bool,
    status_message: &'a str,
    host: &'a Option<String>,
    env: &'a Option<String>,
    version: &'a Option<String>,
    attributes: &'a str,
    resource_attributes: &'a str,
    events: &'a [SpanEvent],
    links: &'a [SpanLink],
}

/// Finds the spans of a WAL payload (replay) without decoding their attributes.
pub(crate) fn index_payload(payload: &[u8]) -> Result<Vec<SpanLoc>, String> {
    let (n, mut rest) = read_varint(payload).ok_or("truncated span count")?;
    let mut locs = Vec::with_capacity(n.min(1 << 20) as usize);
    for k in 0..n {
        let off = payload.len() - rest.len();
        let (raw, after) = split_span(rest).map_err(|e| format!("span {k}: {e}"))?;
        let len = rest.len() - after.len();
        locs.push(SpanLoc {
            trace_id: raw.span.trace_id,
            start_ns: raw.span.start_ns,
            off: off as u32,
            len: len as u32,
        });
        rest = after;
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the last span", rest.len()));
    }
    Ok(locs)
}

fn write_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, &bytes[i + 1..]));
        }
    }
    None
}

/// A span as postcard encodes a `SpanRecord`, borrowed from the encoded bytes: the same fields in the same
/// order, strings as `&str`, attribute maps as their JSON text (which is how `SpanRecord` encodes them), events
/// and links left encoded (see [`RawParts`]). The test `raw_view_matches_the_model` keeps it in step with
/// `SpanRecord`.
#[derive(Debug, Deserialize)]
pub(crate) struct RawSpan<'a> {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_id: Option<[u8; 8]>,
    pub service: &'a str,
    pub name: &'a str,
    pub resource: &'a str,
    pub start_ns: i64,
    pub duration_ns: i64,
    pub kind: SpanKind,
    pub error: bool,
    pub status_message: &'a str,
    #[serde(borrow)]
    pub host: Option<&'a str>,
    #[serde(borrow)]
    pub env: Option<&'a str>,
    #[serde(borrow)]
    pub version: Option<&'a str>,
    pub attributes: &'a str,
    pub resource_attributes: &'a str,
}

/// `SpanEvent` as encoded, to step over it.
#[allow(dead_code)]
#[derive(Deserialize)]
struct RawEvent<'a> {
    ts_ns: i64,
    name: &'a str,
    attributes: &'a str,
}

/// `SpanLink` as encoded, to step over it.
#[allow(dead_code)]
#[derive(Deserialize)]
struct RawLink<'a> {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    attributes: &'a str,
}

/// One encoded span taken apart.
#[derive(Debug)]
pub(crate) struct RawParts<'a> {
    pub span: RawSpan<'a>,
    /// Postcard encoding of the `Vec<SpanEvent>` (one byte, `0`, when there is none).
    pub events: &'a [u8],
    /// Postcard encoding of the `Vec<SpanLink>`.
    pub links: &'a [u8],
}

/// Takes one span apart from the front of `bytes`; returns it and what follows it.
pub(crate) fn split_span(bytes: &[u8]) -> Result<(RawParts<'_>, &[u8]), postcard::Error> {
    let (span, tail) = postcard::take_from_bytes::<RawSpan>(bytes)?;
    let (_, after_events) = postcard::take_from_bytes::<Vec<RawEvent>>(tail)?;
    let (_, rest) = postcard::take_from_bytes::<Vec<RawLink>>(after_events)?;
    let events = &tail[..tail.len() - after_events.len()];
    let links = &after_events[..after_events.len() - rest.len()];
    Ok((
        RawParts {
            span,
            events,
            links,
        },
        rest,
    ))
}

//! OTLP spans → Sightline spans (SPEC §2), and the RED metrics computed from them at ingest, like Datadog's trace
//! metrics: `trace.<name>.hits`, `.errors` (counts) and `.duration` (a distribution, in seconds) per entry span,
//! tagged `service`, `resource`, `span.kind` and `env`, accumulated in 10 s buckets by a [`RedAggregator`].

use super::attrs::{attrs_into_map, tag, ResourceInfo};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{span, status::StatusCode, Span};
use serde_json::{Map, Value as Json};
use sightline_model::{
    red_metric_prefix, MetricBatch, MetricKind, MetricPoint, SeriesKey, Sketch, SpanBatch,
    SpanEvent, SpanKind, SpanLink, SpanRecord, TagSet, Value,
};
use std::collections::HashMap;
#[cfg(test)]
use std::collections::HashSet;

/// The service of spans whose resource names none (the OpenTelemetry SDKs' own default).
pub const UNKNOWN_SERVICE: &str = "unknown_service";
/// Seconds per RED metric bucket (the metric store's 10 s intervals).
const RED_BUCKET_SECS: i64 = 10;
/// Longest tag value kept in full; longer resource names are cut.
const MAX_TAG_VALUE_CHARS: usize = 180;

/// Spans converted from one request, and what was refused.
#[derive(Debug, Default)]
pub struct ConvertedSpans {
    pub batch: SpanBatch,
    pub rejected: usize,
    /// One message per distinct problem, naming the span.
    pub errors: Vec<String>,
}

impl ConvertedSpans {
    /// Records one refused span (messages are de-duplicated and capped).
    pub fn reject(&mut self, message: String) {
        self.rejected += 1;
        if self.errors.len() < 10 && !self.errors.contains(&message) {
            self.errors.push(message);
        }
    }
}

/// Converts every span of a request (consuming it: strings move into the spans); spans that cannot be stored
/// are counted and described, the others kept.
pub fn convert_traces(req: ExportTraceServiceRequest) -> ConvertedSpans {
    let mut out = ConvertedSpans::default();
    for rs in req.resource_spans {
        for ss in rs.scope_spans {
            let info = ResourceInfo::new(rs.resource.as_ref(), ss.scope.as_ref());
            if let Err(msg) = info.check_size() {
                for _ in &ss.spans {
                    out.reject(msg.clone());
                }
                continue;
            }
            let mut resource_attributes = info.attributes.clone();
            if let Some(scope) = &ss.scope {
                if !scope.name.is_empty() {
                    resource_attributes
                        .insert("otel.scope.name".into(), Json::from(scope.name.as_str()));
                }
                if !scope.version.is_empty() {
                    resource_attributes.insert(
                        "otel.scope.version".into(),
                        Json::from(scope.version.as_str()),
                    );
                }
            }
            for s in ss.spans {
                match convert_span(s, &info, &resource_attributes) {
                    Ok(span) => out.batch.spans.push(span),
                    Err(msg) => out.reject(msg),
                }
            }
        }
    }
    out
}

/// Moves the spans that start before `oldest_ns` out of the batch into the refused ones, with one message
/// naming the window (`window`, e.g. "15 days"): the span store would drop them at its next flush, after
/// the client was told they were stored.
pub fn refuse_older_than(conv: &mut ConvertedSpans, oldest_ns: i64, window: &str) {
    let before = conv.batch.spans.len();
    conv.batch.spans.retain(|s| s.start_ns >= oldest_ns);
    let refused = before - conv.batch.spans.len();
    if refused > 0 {
        let message = format!(
            "{refused} span(s) start before the span retention window ({window}): not stored"
        );
        for _ in 0..refused {
            conv.reject(message.clone());
        }
    }
}

/// An id of exactly `N` bytes, not all zero.
fn id<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    let id: [u8; N] = bytes.try_into().ok()?;
    (id != [0; N]).then_some(id)
}

fn convert_span(
    s: Span,
    info: &ResourceInfo,
    resource_attributes: &Map<String, Json>,
) -> Result<SpanRecord, String> {
    let name_for_msg = || format!("span {:?}", s.name);
    let trace_id = id::<16>(&s.trace_id).ok_or_else(|| {
        format!(
            "{}: trace id must be 16 bytes, not all zero (got {})",
            name_for_msg(),
            s.trace_id.len()
        )
    })?;
    let span_id = id::<8>(&s.span_id).ok_or_else(|| {
        format!(
            "{}: span id must be 8 bytes, not all zero (got {})",
            name_for_msg(),
            s.span_id.len()
        )
    })?;
    let parent_id = match s.parent_span_id.len() {
        0 => None,
        8 => id::<8>(&s.parent_span_id),
        n => {
            return Err(format!(
                "{}: parent span id must be 8 bytes (got {n})",
                name_for_msg()
            ))
        }
    };
    let start = i64::try_from(s.start_time_unix_nano)
        .ok()
        .filter(|t| *t > 0)
        .ok_or_else(|| {
            format!(
                "{}: start time {} is missing or out of range",
                name_for_msg(),
                s.start_time_unix_nano
            )
        })?;
    let end = i64::try_from(s.end_time_unix_nano).map_err(|_| {
        format!(
            "{}: end time {} is out of range",
            name_for_msg(),
            s.end_time_unix_nano
        )
    })?;
    if end < start {
        return Err(format!(
            "{}: end time {end} is before start time {start}",
            name_for_msg()
        ));
    }
    let attributes = attrs_into_map(s.attributes);
    let kind = SpanKind::from_otlp(s.kind);
    let (error, status_message) = match s.status {
        Some(st) => (st.code == StatusCode::Error as i32, st.message),
        None => (false, String::new()),
    };
    Ok(SpanRecord {
        trace_id,
        span_id,
        parent_id,
        service: info
            .service
            .clone()
            .unwrap_or_else(|| UNKNOWN_SERVICE.to_string()),
        resource: resource_name(&s.name, kind, &attributes),
        name: s.name,
        start_ns: start,
        duration_ns: end - start,
        kind,
        error,
        status_message,
        host: info.host.clone(),
        env: info.env.clone(),
        version: info.version.clone(),
        attributes,
        resource_attributes: resource_attributes.clone(),
        events: s.events.into_iter().map(event).collect(),
        links: s.links.into_iter().filter_map(link).collect(),
    })
}

fn event(e: span::Event) -> SpanEvent {
    SpanEvent {
        ts_ns: i64::try_from(e.time_unix_nano).unwrap_or(i64::MAX),
        name: e.name,
        attributes: attrs_into_map(e.attributes),
    }
}

/// A link, or `None` when its ids are malformed (the span itself is kept).
fn link(l: span::Link) -> Option<SpanLink> {
    Some(SpanLink {
        trace_id: id::<16>(&l.trace_id)?,
        span_id: id::<8>(&l.span_id)?,
        attributes: attrs_into_map(l.attributes),
    })
}

fn str_attr<'a>(attrs: &'a Map<String, Json>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| attrs.get(*k).and_then(Json::as_str))
        .filter(|s| !s.is_empty())
}

/// What a span acted on, as Datadog derives it from OpenTelemetry conventions: `<METHOD> <route>` for HTTP
/// servers (the method alone for clients or without a route), the query text for databases, `<operation>
/// <destination>` for messaging, `<service>/<method>` for RPC; otherwise the span name.
pub fn resource_name(name: &str, kind: SpanKind, attrs: &Map<String, Json>) -> String {
    let method = str_attr(attrs, &["http.request.method", "http.method"]);
    if let Some(method) = method {
        let route = str_attr(attrs, &["http.route"]);
        return match (kind, route) {
            (SpanKind::Server, Some(route)) => format!("{method} {route}"),
            _ => method.to_string(),
        };
    }
    if let Some(q) = str_attr(attrs, &["db.query.text", "db.statement"]) {
        return q.to_string();
    }
    if let Some(op) = str_attr(attrs, &["messaging.operation.type", "messaging.operation"]) {
        return match str_attr(
            attrs,
            &["messaging.destination.name", "messaging.destination"],
        ) {
            Some(dest) => format!("{op} {dest}"),
            None => op.to_string(),
        };
    }
    if let (Some(svc), Some(m)) = (
        str_attr(attrs, &["rpc.service"]),
        str_attr(attrs, &["rpc.method"]),
    ) {
        return format!("{svc}/{m}");
    }
    name.to_string()
}

/// Whether a span starts its service's part of the trace: a root, a server or consumer span, or a span whose
/// parent (when it is in the same batch) belongs to another service. Datadog computes trace metrics for these.
fn entry_spans(spans: &[SpanRecord]) -> Vec<bool> {
    let service_of: HashMap<[u8; 8], &str> = spans
        .iter()
        .map(|s| (s.span_id, s.service.as_str()))
        .collect();
    spans
        .iter()
        .map(|s| match s.parent_id {
            None => true,
            Some(_) if matches!(s.kind, SpanKind::Server | SpanKind::Consumer) => true,
            Some(p) => service_of.get(&p).is_some_and(|svc| *svc != s.service),
        })
        .collect()
}

/// A tag value safe for the metric query language: whitespace becomes `_`, long values are cut.
fn tag_value(v: &str) -> String {
    v.chars()
        .take(MAX_TAG_VALUE_CHARS)
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect()
}

#[derive(Default)]
struct Red {
    hits: f64,
    errors: f64,
    durations: Sketch,
}

/// A RED metric group: metric prefix, sorted tags, 10 s bucket.
type RedKey = (String, Vec<String>, i64);

/// The RED metric groups of one batch.
#[derive(Default)]
pub struct RedGroups(HashMap<RedKey, Red>);

impl RedGroups {
    /// The groups of a batch's entry spans.
    pub fn of(spans: &[SpanRecord]) -> RedGroups {
        let entry = entry_spans(spans);
        let mut local: HashMap<RedKey, Red> = HashMap::new();
        for (s, _) in spans.iter().zip(&entry).filter(|(_, e)| **e) {
            let mut tags: Vec<String> = [
                tag("service", &tag_value(&s.service)),
                tag("resource", &tag_value(&s.resource)),
                tag("span.kind", s.kind.as_str()),
                s.env.as_deref().and_then(|e| tag("env", &tag_value(e))),
            ]
            .into_iter()
            .flatten()
            .collect();
            tags.sort();
            let bucket = s
                .start_ns
                .div_euclid(1_000_000_000)
                .div_euclid(RED_BUCKET_SECS)
                * RED_BUCKET_SECS;
            let g = local
                .entry((red_metric_prefix(&s.name), tags, bucket))
                .or_default();
            g.hits += 1.0;
            if s.error {
                g.errors += 1.0;
            }
            g.durations.add(s.duration_ns as f64 / 1e9);
        }
        RedGroups(local)
    }
}

/// RED metrics accumulated across requests per metric, tag set and 10 s bucket, like the DogStatsD
/// aggregator: each exported batch adds to the groups and a flusher takes them every second, so the metric
/// store receives one point per group and second instead of one per group and request.
#[derive(Default)]
pub struct RedAggregator {
    groups: parking_lot::Mutex<HashMap<RedKey, Red>>,
}

impl RedAggregator {
    /// Adds the RED metrics of a batch's entry spans.
    pub fn add(&self, spans: &[SpanRecord]) {
        self.merge(RedGroups::of(spans));
    }

    /// Adds groups computed with [`RedGroups::of`] (computed before a write, added once it succeeded).
    pub fn merge(&self, local: RedGroups) {
        let mut groups = self.groups.lock();
        for (key, red) in local.0 {
            match groups.entry(key) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(red);
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let g = o.get_mut();
                    g.hits += red.hits;
                    g.errors += red.errors;
                    g.durations.merge(&red.durations);
                }
            }
        }
    }

    /// Takes everything accumulated so far as metric points: `.hits` and `.errors` counts and a `.duration`
    /// distribution per group (the metric store sums counts and merges sketches that meet at one timestamp).
    pub fn take(&self) -> MetricBatch {
        let groups = std::mem::take(&mut *self.groups.lock());
        let mut batch = MetricBatch::default();
        for ((prefix, tags, ts), red) in groups {
            let tags = TagSet::from_normalized(tags);
            let point = |suffix: &str, kind: MetricKind, value: Value| MetricPoint {
                series: SeriesKey::new(format!("{prefix}.{suffix}"), tags.clone()),
                kind,
                timestamp: ts,
                interval: RED_BUCKET_SECS as u32,
                value,
            };
            batch
                .points
                .push(point("hits", MetricKind::Count, Value::Scalar(red.hits)));
            batch.points.push(point(
                "errors",
                MetricKind::Count,
                Value::Scalar(red.errors),
            ));
            batch.points.push(point(
                "duration",
                MetricKind::Distribution,
                Value::Sketch(Box::new(red.durations)),
            ));
        }
        batch
    }

    /// Groups waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.groups.lock().len()
    }
}

/// The RED metrics of one batch's entry spans (what a [`RedAggregator`] adds for it).
pub fn red_metrics(spans: &[SpanRecord]) -> MetricBatch {
    let agg = RedAggregator::default();
    agg.add(spans);
    agg.take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn span(id: u8, parent: u8, name: &str, kind: i32, start: u64, end: u64) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![id; 8],
            parent_span_id: if parent == 0 { vec![] } else { vec![parent; 8] },
            name: name.into(),
            kind,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            ..Default::default()
        }
    }

    fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", service),
                        kv("deployment.environment", "prod"),
                        kv("k8s.pod.name", "p1"),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    const T0: u64 = 1_700_000_000_000_000_000;

    #[test]
    fn spans_before_the_retention_window_are_refused_with_a_message() {
        let old = span(1, 0, "old", 2, T0 - 10, T0 - 5);
        let edge = span(2, 0, "edge", 2, T0, T0 + 5);
        let new = span(3, 0, "new", 2, T0 + 10, T0 + 20);
        let mut out = convert_traces(request("shop", vec![old, edge, new]));
        refuse_older_than(&mut out, T0 as i64, "15 days");
        let names: Vec<&str> = out.batch.spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["edge", "new"]);
        assert_eq!(out.rejected, 1);
        assert_eq!(
            out.errors,
            ["1 span(s) start before the span retention window (15 days): not stored"]
        );
        // Nothing old: nothing changes.
        let mut fresh = convert_traces(request("shop", vec![span(4, 0, "n", 2, T0, T0 + 1)]));
        refuse_older_than(&mut fresh, T0 as i64, "15 days");
        assert_eq!((fresh.batch.spans.len(), fresh.rejected), (1, 0));
    }

    #[test]
    fn converts_and_rejects_per_span() {
        let mut root = span(1, 0, "GET /cart", 2, T0, T0 + 5_000_000);
        root.attributes = vec![kv("http.request.method", "GET"), kv("http.route", "/cart")];
        let mut db = span(2, 1, "SELECT", 3, T0 + 1_000, T0 + 2_000_000);
        db.attributes = vec![kv("db.statement", "SELECT * FROM carts")];
        db.status = Some(Status {
            code: StatusCode::Error as i32,
            message: "timeout".into(),
        });
        let mut bad_trace = span(3, 1, "bad", 1, T0, T0 + 1);
        bad_trace.trace_id = vec![0xab; 3];
        let backwards = span(4, 1, "backwards", 1, T0 + 10, T0);
        let zero_id = span(0, 1, "zero", 1, T0, T0 + 1);
        let out = convert_traces(request(
            "shop",
            vec![root, db, bad_trace, backwards, zero_id],
        ));
        assert_eq!(out.batch.spans.len(), 2);
        assert_eq!(out.rejected, 3);
        assert_eq!(out.errors.len(), 3, "{:?}", out.errors);
        assert!(
            out.errors[0].contains("span \"bad\": trace id must be 16 bytes"),
            "{:?}",
            out.errors
        );
        assert!(
            out.errors[1].contains("before start time"),
            "{:?}",
            out.errors
        );
        let r = &out.batch.spans[0];
        assert_eq!(r.service, "shop");
        assert_eq!(r.env.as_deref(), Some("prod"));
        assert_eq!(r.resource, "GET /cart");
        assert_eq!(r.kind, SpanKind::Server);
        assert_eq!(r.parent_id, None);
        assert_eq!(r.duration_ns, 5_000_000);
        assert_eq!(
            r.resource_attributes.get("k8s.pod.name"),
            Some(&Json::from("p1"))
        );
        let d = &out.batch.spans[1];
        assert_eq!(d.resource, "SELECT * FROM carts");
        assert!(d.error);
        assert_eq!(d.status_message, "timeout");
        assert_eq!(d.parent_id, Some([1; 8]));
    }

    #[test]
    fn huge_resources_are_refused() {
        let mut req = request(
            "big",
            vec![
                span(1, 0, "a", 1, T0, T0 + 1),
                span(2, 0, "b", 1, T0, T0 + 1),
            ],
        );
        let huge = "x".repeat(super::super::attrs::MAX_RESOURCE_ATTRIBUTES_BYTES);
        if let Some(r) = req.resource_spans[0].resource.as_mut() {
            r.attributes.push(kv("blob", &huge));
        }
        let out = convert_traces(req);
        assert_eq!((out.batch.len(), out.rejected), (0, 2));
        assert!(
            out.errors[0].contains("the limit is 65536"),
            "{:?}",
            out.errors
        );
    }

    #[test]
    fn resource_names() {
        let m = |pairs: &[(&str, &str)]| -> Map<String, Json> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Json::from(*v)))
                .collect()
        };
        for (name, kind, attrs, want) in [
            (
                "x",
                SpanKind::Server,
                m(&[("http.method", "POST"), ("http.route", "/a/:id")]),
                "POST /a/:id",
            ),
            (
                "x",
                SpanKind::Client,
                m(&[("http.request.method", "GET"), ("http.route", "/a")]),
                "GET",
            ),
            (
                "x",
                SpanKind::Client,
                m(&[("db.query.text", "SELECT 1")]),
                "SELECT 1",
            ),
            (
                "x",
                SpanKind::Producer,
                m(&[
                    ("messaging.operation", "publish"),
                    ("messaging.destination.name", "q"),
                ]),
                "publish q",
            ),
            (
                "x",
                SpanKind::Client,
                m(&[("rpc.service", "Cart"), ("rpc.method", "Get")]),
                "Cart/Get",
            ),
            ("render", SpanKind::Internal, m(&[]), "render"),
        ] {
            assert_eq!(resource_name(name, kind, &attrs), want);
        }
    }

    #[test]
    fn red_metrics_for_entry_spans() {
        let mut spans = Vec::new();
        for i in 0..10u8 {
            let mut root = span(
                10 + i,
                0,
                "GET /cart",
                2,
                T0 + u64::from(i),
                T0 + u64::from(i) + 1_000_000 * u64::from(i + 1),
            );
            root.attributes = vec![kv("http.request.method", "GET"), kv("http.route", "/cart")];
            if i < 3 {
                root.status = Some(Status {
                    code: StatusCode::Error as i32,
                    message: String::new(),
                });
            }
            spans.push(root);
        }
        // An internal child of the same service is not an entry span.
        spans.push(span(99, 10, "render", 1, T0, T0 + 5));
        let out = convert_traces(request("shop", spans));
        let batch = red_metrics(&out.batch.spans);
        assert_eq!(batch.points.len(), 3, "{batch:?}");
        let find = |name: &str| batch.points.iter().find(|p| p.series.name == name).unwrap();
        let hits = find("trace.get_cart.hits");
        assert_eq!(hits.value, Value::Scalar(10.0));
        assert_eq!(hits.kind, MetricKind::Count);
        assert_eq!(
            hits.series.tags.as_slice(),
            [
                "env:prod",
                "resource:GET_/cart",
                "service:shop",
                "span.kind:server"
            ]
        );
        assert_eq!(hits.timestamp % 10, 0);
        assert_eq!(find("trace.get_cart.errors").value, Value::Scalar(3.0));
        let Value::Sketch(sk) = &find("trace.get_cart.duration").value else {
            panic!("duration is a sketch")
        };
        assert_eq!(sk.count(), 10);
        // Durations 1..=10 ms: the 0.99 quantile of ten values is the ninth.
        let p99 = sk.quantile(0.99).unwrap();
        assert!((p99 - 0.009).abs() / 0.009 < 0.01, "{p99}");
    }

    #[test]
    fn aggregator_sums_batches_until_taken() {
        let agg = RedAggregator::default();
        for i in 0..3u8 {
            let mut s = span(i + 1, 0, "job", 5, T0, T0 + 2_000_000);
            s.status = (i == 0).then(|| Status {
                code: StatusCode::Error as i32,
                message: String::new(),
            });
            agg.add(&convert_traces(request("worker", vec![s])).batch.spans);
        }
        assert_eq!(agg.pending(), 1);
        let batch = agg.take();
        assert_eq!(agg.pending(), 0);
        let value = |n: &str| {
            batch
                .points
                .iter()
                .find(|p| p.series.name == n)
                .map(|p| p.value.clone())
        };
        assert_eq!(value("trace.job.hits"), Some(Value::Scalar(3.0)));
        assert_eq!(value("trace.job.errors"), Some(Value::Scalar(1.0)));
        let Some(Value::Sketch(sk)) = value("trace.job.duration") else {
            panic!("a sketch")
        };
        assert_eq!(sk.count(), 3);
        assert!(agg.take().is_empty());
    }

    #[test]
    fn child_of_another_service_is_an_entry() {
        let mut req = request("front", vec![span(1, 0, "a", 3, T0, T0 + 10)]);
        let other = request("back", vec![span(2, 1, "b", 1, T0 + 1, T0 + 5)]);
        req.resource_spans.extend(other.resource_spans);
        let out = convert_traces(req);
        let names: HashSet<String> = red_metrics(&out.batch.spans)
            .points
            .into_iter()
            .map(|p| p.series.name)
            .collect();
        assert!(
            names.contains("trace.a.hits") && names.contains("trace.b.hits"),
            "{names:?}"
        );
    }
}

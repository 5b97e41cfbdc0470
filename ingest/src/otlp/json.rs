//! OTLP/JSON request bodies (SPEC §3: hex ids, integer enums, camelCase, unknown fields ignored, 64-bit integers
//! as strings or numbers), decoded item by item: a malformed span, data point set or log record is counted and
//! described while the rest of the request is kept, as OTLP's `partial_success` wants.

use crate::body::{json_error, json_kind};
use crate::IngestError;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

/// A request decoded from JSON, with the items that could not be decoded.
#[derive(Debug, Default)]
pub struct Decoded<R> {
    pub request: R,
    /// Items refused while decoding (spans, data points or log records).
    pub rejected: usize,
    pub errors: Vec<String>,
}

impl<R> Decoded<R> {
    fn reject(&mut self, n: usize, message: String) {
        self.rejected += n;
        if self.errors.len() < 10 && !self.errors.contains(&message) {
            self.errors.push(message);
        }
    }
}

/// Where the items of one signal sit in the JSON document.
struct Layout {
    top: &'static str,
    scopes: &'static str,
    items: &'static str,
    item: &'static str,
}

/// One resource's scopes with their decoded items.
type Scopes<I> = Vec<(Option<InstrumentationScope>, Vec<I>)>;
/// The resources of a request with their scopes.
type Resources<I> = Vec<(Option<Resource>, Scopes<I>)>;

/// Walks `{<top>:[{resource, <scopes>:[{scope, <items>:[…]}]}]}`, decoding each item on its own. `weight` says
/// how many rejected units an undecodable item counts for (data points for a metric, else 1).
fn walk<I: DeserializeOwned>(
    body: &[u8],
    layout: &Layout,
    weight: impl Fn(&Json) -> usize,
) -> Result<Decoded<Resources<I>>, IngestError> {
    let mut out: Decoded<Resources<I>> = Decoded::default();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(out);
    }
    let doc: Json = serde_json::from_slice(body).map_err(json_error)?;
    let Json::Object(mut doc) = doc else {
        return Err(IngestError::BadJson(format!(
            "request body is {}; send an object with {:?}",
            json_kind(&doc),
            layout.top
        )));
    };
    let resources = match array(&mut doc, layout.top, "request")? {
        Some(r) => r,
        None => return Ok(out),
    };
    for (ri, res) in resources.into_iter().enumerate() {
        let where_r = format!("{}[{ri}]", layout.top);
        let Json::Object(mut res) = res else {
            return Err(IngestError::BadJson(format!(
                "{where_r} is {}; it must be an object",
                json_kind(&res)
            )));
        };
        let scopes = array(&mut res, layout.scopes, &where_r)?.unwrap_or_default();
        let resource: Option<Resource> = match res.remove("resource") {
            None | Some(Json::Null) => None,
            Some(v) => match serde_json::from_value(v) {
                Ok(r) => Some(r),
                Err(e) => {
                    let n: usize = scopes.iter().map(|s| count_items(s, layout, &weight)).sum();
                    out.reject(n, format!("{where_r}.resource: {}", lower(&e)));
                    continue;
                }
            },
        };
        let mut decoded_scopes = Vec::new();
        for (si, scope) in scopes.into_iter().enumerate() {
            let where_s = format!("{where_r}.{}[{si}]", layout.scopes);
            // A malformed scope counts as (at least) one rejected item, so the client hears of it.
            let Json::Object(mut scope) = scope else {
                out.reject(
                    1,
                    format!("{where_s} is {}; it must be an object", json_kind(&scope)),
                );
                continue;
            };
            let items = match array(&mut scope, layout.items, &where_s) {
                Ok(items) => items.unwrap_or_default(),
                Err(e) => {
                    out.reject(1, e.to_string());
                    continue;
                }
            };
            let scope_info: Option<InstrumentationScope> = match scope.remove("scope") {
                None | Some(Json::Null) => None,
                Some(v) => match serde_json::from_value(v) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        let n = items.iter().map(&weight).sum();
                        out.reject(n, format!("{where_s}.scope: {}", lower(&e)));
                        continue;
                    }
                },
            };
            let mut good = Vec::with_capacity(items.len());
            for (ii, item) in items.into_iter().enumerate() {
                let w = weight(&item);
                match serde_json::from_value::<I>(item) {
                    Ok(i) => good.push(i),
                    Err(e) => out.reject(
                        w,
                        format!(
                            "{where_s}.{}[{ii}] ({}): {}",
                            layout.items,
                            layout.item,
                            lower(&e)
                        ),
                    ),
                }
            }
            decoded_scopes.push((scope_info, good));
        }
        out.request.push((resource, decoded_scopes));
    }
    Ok(out)
}

fn count_items(scope: &Json, layout: &Layout, weight: &impl Fn(&Json) -> usize) -> usize {
    scope
        .get(layout.items)
        .and_then(Json::as_array)
        .map_or(0, |items| items.iter().map(weight).sum())
}

/// The array under `key`, `None` when absent or null, an error naming `at` when it is something else.
fn array(
    obj: &mut Map<String, Json>,
    key: &str,
    at: &str,
) -> Result<Option<Vec<Json>>, IngestError> {
    match obj.remove(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Array(a)) => Ok(Some(a)),
        Some(other) => Err(IngestError::BadJson(format!(
            "{at}.{key} is {}; it must be an array",
            json_kind(&other)
        ))),
    }
}

fn lower(e: &serde_json::Error) -> String {
    e.to_string().to_lowercase()
}

/// An OTLP/JSON trace export request.
pub fn traces(body: &[u8]) -> Result<Decoded<ExportTraceServiceRequest>, IngestError> {
    let layout = Layout {
        top: "resourceSpans",
        scopes: "scopeSpans",
        items: "spans",
        item: "span",
    };
    let w = walk::<_>(body, &layout, |_| 1)?;
    Ok(Decoded {
        request: ExportTraceServiceRequest {
            resource_spans: w
                .request
                .into_iter()
                .map(|(resource, scopes)| ResourceSpans {
                    resource,
                    scope_spans: scopes
                        .into_iter()
                        .map(|(scope, spans)| ScopeSpans {
                            scope,
                            spans,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        },
        rejected: w.rejected,
        errors: w.errors,
    })
}

/// An OTLP/JSON log export request.
pub fn logs(body: &[u8]) -> Result<Decoded<ExportLogsServiceRequest>, IngestError> {
    let layout = Layout {
        top: "resourceLogs",
        scopes: "scopeLogs",
        items: "logRecords",
        item: "log record",
    };
    let w = walk::<_>(body, &layout, |_| 1)?;
    Ok(Decoded {
        request: ExportLogsServiceRequest {
            resource_logs: w
                .request
                .into_iter()
                .map(|(resource, scopes)| ResourceLogs {
                    resource,
                    scope_logs: scopes
                        .into_iter()
                        .map(|(scope, log_records)| ScopeLogs {
                            scope,
                            log_records,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        },
        rejected: w.rejected,
        errors: w.errors,
    })
}

/// Data points of a metric as JSON (at least 1: an undecodable metric is at least one rejected point).
fn metric_points(m: &Json) -> usize {
    [
        "gauge",
        "sum",
        "histogram",
        "exponentialHistogram",
        "summary",
    ]
    .iter()
    .find_map(|k| m.get(*k))
    .and_then(|d| d.get("dataPoints"))
    .and_then(Json::as_array)
    .map_or(1, |p| p.len().max(1))
}

/// An OTLP/JSON metric export request.
pub fn metrics(body: &[u8]) -> Result<Decoded<ExportMetricsServiceRequest>, IngestError> {
    let layout = Layout {
        top: "resourceMetrics",
        scopes: "scopeMetrics",
        items: "metrics",
        item: "metric",
    };
    let w = walk::<Metric>(body, &layout, metric_points)?;
    Ok(Decoded {
        request: ExportMetricsServiceRequest {
            resource_metrics: w
                .request
                .into_iter()
                .map(|(resource, scopes)| ResourceMetrics {
                    resource,
                    scope_metrics: scopes
                        .into_iter()
                        .map(|(scope, metrics)| ScopeMetrics {
                            scope,
                            metrics,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        },
        rejected: w.rejected,
        errors: w.errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;

    #[test]
    fn one_malformed_span_is_rejected_alone() {
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},
          "scopeSpans":[{"scope":{"name":"s"},"spans":[
            {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"","name":"ok",
             "kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
             "attributes":[{"key":"n","value":{"intValue":"42"}}],"unknownField":true,"status":{"code":2}},
            {"traceId":"not-hex","spanId":"eee19b7ec3c1b175","name":"bad"},
            {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b176","name":"ok2",
             "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712660000000001"}]}]}]}"#;
        let d = traces(body).unwrap();
        assert_eq!(d.rejected, 1);
        assert!(
            d.errors[0].starts_with("resourceSpans[0].scopeSpans[0].spans[1] (span):"),
            "{:?}",
            d.errors
        );
        let spans = &d.request.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].trace_id.len(), 16);
        assert_eq!(spans[0].kind, 2);
        assert_eq!(spans[0].start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(spans[0].end_time_unix_nano, 1_544_712_661_000_000_000);
        assert_eq!(spans[0].status.as_ref().unwrap().code, 2);
        assert_eq!(
            spans[0].attributes[0].value.as_ref().unwrap().value,
            Some(any_value::Value::IntValue(42))
        );
    }

    #[test]
    fn whole_body_errors_and_empty_requests() {
        assert!(traces(b"").unwrap().request.resource_spans.is_empty());
        assert!(traces(b"{}").unwrap().request.resource_spans.is_empty());
        let e = traces(b"[1]").unwrap_err().to_string();
        assert!(e.contains("request body is an array"), "{e}");
        let e = traces(b"{\"resourceSpans\":").unwrap_err().to_string();
        assert!(e.starts_with("malformed json"), "{e}");
        let d = traces(br#"{"resourceSpans":[{"scopeSpans":[{"spans":{}}, 7]}]}"#).unwrap();
        assert_eq!(
            d.rejected, 2,
            "a malformed scope is reported: {:?}",
            d.errors
        );
        let e = logs(br#"{"resourceLogs":{}}"#).unwrap_err().to_string();
        assert!(
            e.contains("request.resourceLogs is an object; it must be an array"),
            "{e}"
        );
    }

    #[test]
    fn bad_resource_rejects_its_items() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":7},"scopeLogs":[{"logRecords":[{},{}]}]},
            {"scopeLogs":[{"logRecords":[{"body":{"stringValue":"hi"},"severityNumber":9}]}]}]}"#;
        let d = logs(body).unwrap();
        assert_eq!(d.rejected, 2);
        assert!(
            d.errors[0].starts_with("resourcelogs[0].resource:")
                || d.errors[0].starts_with("resourceLogs[0].resource:"),
            "{:?}",
            d.errors
        );
        assert_eq!(d.request.resource_logs.len(), 1);
        assert_eq!(
            d.request.resource_logs[0].scope_logs[0].log_records[0].severity_number,
            9
        );
    }

    #[test]
    fn metrics_count_rejected_points() {
        let body = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
            {"name":"g","gauge":{"dataPoints":[{"asDouble":1.5,"timeUnixNano":"1700000000000000000"},{"asInt":"3","timeUnixNano":"1700000000000000000"}]}},
            {"name":5,"sum":{"dataPoints":[{"asInt":"7"},{"asInt":"1"},{"asInt":"2"}]}}]}]}]}"#;
        let d = metrics(body).unwrap();
        assert_eq!(d.rejected, 3, "{:?}", d.errors);
        let m = &d.request.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(m.len(), 1);
        match &m[0].data {
            Some(Data::Gauge(g)) => assert_eq!(g.data_points.len(), 2),
            other => panic!("{other:?}"),
        }
    }
}

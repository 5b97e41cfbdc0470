//! RED per service and resource (`GET /api/ui/services`), read from the metrics the trace receiver writes for
//! every entry span: `trace.<name>.hits` and `trace.<name>.errors` (counts) and `trace.<name>.duration` (a
//! distribution of durations in seconds), tagged `service:`, `resource:`, `span.kind:` and `env:` when known
//! (`trace.<name>` is [`sightline_model::red_metric_prefix`] of the span name).
//!
//! Rates are the counts over the whole range divided by its length; latencies are quantiles of the merged
//! sketches (1% relative error), in nanoseconds. Resource names are the `resource:` tag values, so
//! whitespace in them reads as `_` (the receiver's tag normalization).

use serde::Serialize;
use sightline_model::{SeriesKey, Sketch};
use sightline_storage::{MetricReader, SeriesData, StorageError};
use std::collections::HashMap;

/// The prefix of RED metric names.
const PREFIX: &str = "trace.";

/// The answer of `GET /api/ui/services`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServicesReport {
    /// Unix seconds, `[from, to)`.
    pub from: i64,
    pub to: i64,
    /// Most hits first.
    pub services: Vec<ServiceRed>,
}

/// RED of one service, over all its resources.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceRed {
    pub service: String,
    #[serde(flatten)]
    pub red: Red,
    /// Most hits first.
    pub resources: Vec<ResourceRed>,
}

/// RED of one resource of a service (one operation name and span kind).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceRed {
    pub resource: String,
    /// The `<name>` of the `trace.<name>.*` metrics: the normalized span name.
    pub operation: String,
    pub span_kind: String,
    #[serde(flatten)]
    pub red: Red,
}

/// Requests, errors, latency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Red {
    pub hits: u64,
    pub errors: u64,
    pub requests_per_sec: f64,
    pub errors_per_sec: f64,
    /// `errors / hits`, 0 without hits.
    pub error_rate: f64,
    /// Nanoseconds; null without durations.
    pub p50: Option<i64>,
    pub p95: Option<i64>,
    pub p99: Option<i64>,
}

#[derive(Default)]
struct Acc {
    hits: f64,
    errors: f64,
    durations: Sketch,
}

impl Acc {
    fn merge(&mut self, o: &Acc) {
        self.hits += o.hits;
        self.errors += o.errors;
        self.durations.merge(&o.durations);
    }

    fn red(&self, secs: f64) -> Red {
        let q = |p: f64| {
            self.durations
                .quantile(p)
                .filter(|v| v.is_finite())
                .map(|v| (v * 1e9).round() as i64)
        };
        let hits = self.hits.max(0.0).round();
        let errors = self.errors.max(0.0).round();
        Red {
            hits: hits as u64,
            errors: errors as u64,
            requests_per_sec: hits / secs,
            errors_per_sec: errors / secs,
            error_rate: if hits > 0.0 { errors / hits } else { 0.0 },
            p50: q(0.5),
            p95: q(0.95),
            p99: q(0.99),
        }
    }
}

/// Which of the three metrics a name is, and the operation it is for.
fn parse_name(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(PREFIX)?;
    for suffix in ["hits", "errors", "duration"] {
        if let Some(op) = rest
            .strip_suffix(suffix)
            .and_then(|r| r.strip_suffix('.'))
            .filter(|op| !op.is_empty())
        {
            return Some((op, suffix));
        }
    }
    None
}

fn tag<'a>(key: &'a SeriesKey, k: &'a str) -> Option<&'a str> {
    key.tags.values_of(k).next()
}

/// RED per service and resource over `[from, to)` (unix seconds), optionally only for one `env` and one
/// `service`.
pub fn services(
    reader: &dyn MetricReader,
    from: i64,
    to: i64,
    env: Option<&str>,
    service: Option<&str>,
) -> Result<ServicesReport, StorageError> {
    // (service, resource, operation, span kind) → totals.
    let mut groups: HashMap<(String, String, String, String), Acc> = HashMap::new();
    for name in reader.metric_names(from) {
        let Some((op, which)) = parse_name(&name) else {
            continue;
        };
        let metas: Vec<_> = reader
            .series_for_metric(&name)
            .into_iter()
            .filter(|m| {
                tag(&m.key, "service").is_some_and(|s| service.is_none_or(|want| want == s))
                    && env.is_none_or(|want| m.key.tags.values_of("env").any(|e| e == want))
            })
            .collect();
        if metas.is_empty() {
            continue;
        }
        let ids: Vec<_> = metas.iter().map(|m| m.id).collect();
        let data = reader.read(&ids, from, to)?;
        for (meta, data) in metas.iter().zip(data) {
            let key = (
                tag(&meta.key, "service").unwrap_or_default().to_string(),
                tag(&meta.key, "resource").unwrap_or_default().to_string(),
                op.to_string(),
                tag(&meta.key, "span.kind").unwrap_or_default().to_string(),
            );
            let mut acc = Acc::default();
            match (which, data) {
                ("hits", SeriesData::Scalars(pts)) => acc.hits = pts.iter().map(|p| p.1).sum(),
                ("errors", SeriesData::Scalars(pts)) => acc.errors = pts.iter().map(|p| p.1).sum(),
                ("duration", SeriesData::Sketches(pts)) => {
                    pts.iter().for_each(|(_, s)| acc.durations.merge(s))
                }
                // Another writer's metric that happens to share the name pattern.
                _ => continue,
            }
            groups.entry(key).or_default().merge(&acc);
        }
    }
    let secs = to.saturating_sub(from).max(1) as f64;
    let mut by_service: HashMap<String, (Acc, Vec<(ResourceRed, f64)>)> = HashMap::new();
    for ((service, resource, operation, span_kind), acc) in groups {
        if acc.hits == 0.0 && acc.errors == 0.0 && acc.durations.is_empty() {
            continue;
        }
        let entry = by_service.entry(service).or_default();
        entry.0.merge(&acc);
        entry.1.push((
            ResourceRed {
                resource,
                operation,
                span_kind,
                red: acc.red(secs),
            },
            acc.hits,
        ));
    }
    let mut services: Vec<(ServiceRed, f64)> = by_service
        .into_iter()
        .map(|(service, (acc, mut resources))| {
            resources.sort_by(|a, b| {
                b.1.total_cmp(&a.1)
                    .then_with(|| a.0.resource.cmp(&b.0.resource))
                    .then_with(|| a.0.operation.cmp(&b.0.operation))
                    .then_with(|| a.0.span_kind.cmp(&b.0.span_kind))
            });
            (
                ServiceRed {
                    service,
                    red: acc.red(secs),
                    resources: resources.into_iter().map(|r| r.0).collect(),
                },
                acc.hits,
            )
        })
        .collect();
    services.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| a.0.service.cmp(&b.0.service))
    });
    Ok(ServicesReport {
        from,
        to,
        services: services.into_iter().map(|s| s.0).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::{
        Limits, MetricBatch, MetricKind, MetricPoint, TagSet, Value as MetricValue,
    };
    use sightline_storage::MemMetricStore;

    const T: i64 = 1_700_000_000;

    /// A span as the RED metrics see it: `(name, service, resource, kind, env, start offset s, duration s,
    /// error)`.
    type RedSpan<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        i64,
        f64,
        bool,
    );

    /// The RED metrics of some spans.
    fn red_store(spans: &[RedSpan<'_>]) -> MemMetricStore {
        let store = MemMetricStore::new(Limits::default());
        let mut points = Vec::new();
        for &(name, service, resource, kind, env, dt, secs, error) in spans {
            let mut tags = vec![
                format!("service:{service}"),
                format!("resource:{resource}"),
                format!("span.kind:{kind}"),
            ];
            if let Some(e) = env {
                tags.push(format!("env:{e}"));
            }
            let tags = TagSet::parse(tags, 100, 200).unwrap();
            let prefix = sightline_model::red_metric_prefix(name);
            let ts = (T + dt) / 10 * 10;
            let mut sk = Sketch::new();
            sk.add(secs);
            for (suffix, kind, value) in [
                ("hits", MetricKind::Count, MetricValue::Scalar(1.0)),
                (
                    "errors",
                    MetricKind::Count,
                    MetricValue::Scalar(if error { 1.0 } else { 0.0 }),
                ),
                (
                    "duration",
                    MetricKind::Distribution,
                    MetricValue::Sketch(Box::new(sk.clone())),
                ),
            ] {
                points.push(MetricPoint {
                    series: SeriesKey::new(format!("{prefix}.{suffix}"), tags.clone()),
                    kind,
                    timestamp: ts,
                    interval: 10,
                    value,
                });
            }
        }
        // A metric that only looks like a RED one, and one without a service tag.
        points.push(MetricPoint {
            series: SeriesKey::new("trace.x.hits", TagSet::parse(["team:a"], 10, 200).unwrap()),
            kind: MetricKind::Count,
            timestamp: T,
            interval: 10,
            value: MetricValue::Scalar(99.0),
        });
        points.push(MetricPoint {
            series: SeriesKey::new("app.hits", TagSet::parse(["service:web"], 10, 200).unwrap()),
            kind: MetricKind::Count,
            timestamp: T,
            interval: 10,
            value: MetricValue::Scalar(99.0),
        });
        store.apply(&MetricBatch { points });
        store
    }

    #[test]
    fn names() {
        assert_eq!(
            parse_name("trace.http.request.hits"),
            Some(("http.request", "hits"))
        );
        assert_eq!(
            parse_name("trace.cache.hits.hits"),
            Some(("cache.hits", "hits"))
        );
        assert_eq!(parse_name("trace.a.duration"), Some(("a", "duration")));
        assert_eq!(parse_name("trace.hits"), None);
        assert_eq!(parse_name("app.errors"), None);
    }

    #[test]
    fn red_per_service_and_resource() {
        let mut spans = Vec::new();
        for i in 0..10 {
            spans.push((
                "GET /cart",
                "shop",
                "GET_/cart",
                "server",
                Some("prod"),
                i * 10,
                0.001 * (i + 1) as f64,
                i < 2,
            ));
        }
        spans.push((
            "SELECT",
            "db",
            "SELECT_1",
            "client",
            Some("prod"),
            5,
            0.5,
            false,
        ));
        spans.push((
            "POST /pay",
            "shop",
            "POST_/pay",
            "server",
            Some("dev"),
            5,
            2.0,
            true,
        ));
        let store = red_store(&spans);
        let r = services(&store, T, T + 100, None, None).unwrap();
        assert_eq!(r.services.len(), 2);
        let shop = &r.services[0];
        assert_eq!(shop.service, "shop");
        assert_eq!((shop.red.hits, shop.red.errors), (11, 3));
        assert!((shop.red.requests_per_sec - 0.11).abs() < 1e-9);
        assert!((shop.red.error_rate - 3.0 / 11.0).abs() < 1e-9);
        let cart = &shop.resources[0];
        assert_eq!(
            (
                cart.resource.as_str(),
                cart.operation.as_str(),
                cart.span_kind.as_str()
            ),
            ("GET_/cart", "get_cart", "server")
        );
        assert_eq!((cart.red.hits, cart.red.errors), (10, 2));
        // DDSketch's lower quantile: the 0.99 quantile of ten values is the ninth.
        let p99 = cart.red.p99.unwrap() as f64;
        assert!((p99 - 9e6).abs() / 9e6 < 0.011, "{p99}");
        let p50 = cart.red.p50.unwrap() as f64;
        assert!((p50 - 5e6).abs() / 5e6 < 0.011, "{p50}");
        assert_eq!(shop.resources[1].resource, "POST_/pay");
        assert_eq!(r.services[1].service, "db");
        assert_eq!(r.services[1].resources[0].red.errors, 0);
        // Filters.
        let r = services(&store, T, T + 100, Some("dev"), None).unwrap();
        assert_eq!(r.services.len(), 1);
        assert_eq!(r.services[0].red.hits, 1);
        let r = services(&store, T, T + 100, None, Some("db")).unwrap();
        assert_eq!(r.services.len(), 1);
        assert_eq!(r.services[0].service, "db");
        // Out of range.
        let r = services(&store, T + 1000, T + 2000, None, None).unwrap();
        assert!(r.services.is_empty());
    }
}

//! Request metrics for every HTTP route: a latency histogram labelled by route and status.

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
    status: u16,
}

/// `sightline_http_request_duration_seconds{route,method,status}`.
#[derive(Clone)]
pub struct HttpMetrics {
    latency: Family<RouteLabels, Histogram>,
}

impl HttpMetrics {
    pub fn new(registry: &mut Registry) -> Arc<HttpMetrics> {
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.5, 14))
        });
        registry.register(
            "sightline_http_request_duration_seconds",
            "Time to answer an HTTP request, by route and status",
            latency.clone(),
        );
        Arc::new(HttpMetrics { latency })
    }
}

/// The method as a label from a fixed set, so clients cannot grow `/metrics` with made-up methods.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Middleware recording each request: `axum::middleware::from_fn_with_state(metrics, record)`.
pub async fn record(State(metrics): State<Arc<HttpMetrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = method_label(req.method()).to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    let labels = RouteLabels {
        route,
        method,
        status: res.status().as_u16(),
    };
    metrics
        .latency
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_are_bounded() {
        let check = |m: &str, want: &str| {
            assert_eq!(
                method_label(&Method::from_bytes(m.as_bytes()).unwrap()),
                want,
                "{m}"
            )
        };
        check("GET", "GET");
        check("POST", "POST");
        check("PATCH", "PATCH");
        check("FOO1", "other");
        check("BREW", "other");
    }
}

//! Sightline's HTTP surface shared by every tier: health and readiness, self-metrics in Prometheus text
//! format, API-key/application-key auth, request metrics, the SPEC §4 error shape, and the embedded web app
//! ([`web`]).

pub mod auth;
pub mod error;
pub mod observe;
pub mod web;

pub use auth::{AuthConfig, Keys};
pub use error::{api_error, UiError};
pub use observe::HttpMetrics;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `/healthz` and `/readyz`, served from the first moment the HTTP listener is bound. `ready` is set once the
/// write-ahead log is replayed and every enabled listener is bound.
pub fn probe_router(ready: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(ready)
}

/// `/metrics`: Sightline's own metrics in the Prometheus text format; a browser (`Accept: text/html`) gets the
/// web app's metrics explorer, the SPEC §8b route of the same path.
pub fn metrics_router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(registry)
}

async fn readyz(State(ready): State<Arc<AtomicBool>>) -> Response {
    if ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: replaying the write-ahead log or binding listeners\n",
        )
            .into_response()
    }
}

async fn metrics(
    State(registry): State<Arc<Registry>>,
    headers: axum::http::HeaderMap,
) -> Response {
    if web::wants_html(&headers) {
        return web::index().await;
    }
    let mut out = String::new();
    match prometheus_client::encoding::text::encode(&mut out, &registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            out,
        )
            .into_response(),
        Err(e) => api_error(
            sightline_model::ErrorKind::Internal,
            format!("cannot encode metrics: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use prometheus_client::metrics::counter::Counter;
    use tower::ServiceExt;

    async fn get_status(app: Router, path: &str) -> (StatusCode, String) {
        let res = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn readiness_follows_the_flag_and_metrics_encode() {
        let mut registry = Registry::default();
        let c: Counter = Counter::default();
        registry.register("sightline_test_things", "things", c.clone());
        c.inc_by(3);
        let ready = Arc::new(AtomicBool::new(false));
        let app = probe_router(ready.clone()).merge(metrics_router(Arc::new(registry)));
        assert_eq!(get_status(app.clone(), "/healthz").await.0, StatusCode::OK);
        assert_eq!(
            get_status(app.clone(), "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        ready.store(true, Ordering::Release);
        assert_eq!(get_status(app.clone(), "/readyz").await.0, StatusCode::OK);
        let (status, body) = get_status(app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("sightline_test_things_total 3"), "{body}");
    }
}

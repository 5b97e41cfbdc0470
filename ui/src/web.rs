//! The web app (issue #6, SPEC §8b, §9): the files `build.rs` built from `ui/web`, embedded in the binary,
//! served at the app's routes (every one answers the app's `index.html`; the app routes in the browser) and
//! under `/assets/` (hashed names, cached for a year), with a strict Content-Security-Policy: no inline
//! script or style, nothing from another origin.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

#[derive(rust_embed::Embed)]
#[folder = "$OUT_DIR/web/"]
struct Assets;

/// The routes of SPEC §8b that answer the app, plus the monitor form's (`/monitors/new` is a
/// `/monitors/{id}`) and APM's service page and span search; `/metrics` also answers Prometheus (see
/// [`wants_html`]).
pub const APP_ROUTES: [&str; 11] = [
    "/",
    "/logs",
    "/apm",
    "/apm/traces/{id}",
    "/apm/services/{service}",
    "/apm/spans",
    "/monitors",
    "/monitors/{id}",
    "/monitors/{id}/edit",
    "/dashboards",
    "/dashboards/{id}",
];

/// The Content-Security-Policy of every app response.
pub const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
                       form-action 'self'; frame-ancestors 'none'";

/// The app's routes and assets; merge into the server's router (no key needed: the app holds no data, and
/// its API calls are checked like any other).
pub fn web_router() -> Router {
    let mut r = Router::new().route("/assets/{*path}", get(asset));
    for path in APP_ROUTES {
        r = r.route(path, get(index));
    }
    r
}

/// Whether a request asks for a page (a browser's `Accept: text/html…`) rather than data.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The app's `index.html` with the security headers.
pub async fn index() -> Response {
    match Assets::get("index.html") {
        Some(file) => with_headers(
            file.data.into_owned(),
            "text/html; charset=utf-8",
            "no-cache",
        ),
        None => (StatusCode::NOT_FOUND, "the web app is not built\n").into_response(),
    }
}

async fn asset(Path(path): Path<String>) -> Response {
    match Assets::get(&format!("assets/{path}")) {
        Some(file) => {
            let mime = file.metadata.mimetype().to_string();
            with_headers(
                file.data.into_owned(),
                &mime,
                "public, max-age=31536000, immutable",
            )
        }
        None => (StatusCode::NOT_FOUND, format!("no asset {path:?}\n")).into_response(),
    }
}

fn with_headers(body: Vec<u8>, content_type: &str, cache: &str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("invalid"));
    h.insert(header::CONTENT_TYPE, value(content_type));
    h.insert(header::CACHE_CONTROL, value(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// Every embedded file with its size: (path, bytes).
pub fn files() -> Vec<(String, Vec<u8>)> {
    Assets::iter()
        .filter_map(|p| Assets::get(&p).map(|f| (p.to_string(), f.data.into_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(app: &Router, path: &str) -> Response {
        app.clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn routes_answer_the_app_with_a_strict_policy() {
        let app = web_router();
        for path in [
            "/",
            "/logs",
            "/apm",
            "/apm/traces/abc",
            "/apm/services/checkout",
            "/apm/services/a%2Fb%20c",
            "/apm/spans",
            "/monitors",
            "/monitors/7",
            "/monitors/7/edit",
            "/dashboards",
            "/dashboards/x",
        ] {
            let res = get(&app, path).await;
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap();
            assert!(
                csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
                "{csp}"
            );
            assert!(res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"));
        }
        assert_eq!(get(&app, "/nope").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            get(&app, "/assets/missing.js").await.status(),
            StatusCode::NOT_FOUND
        );
    }

    /// Issue #6 budget: the JavaScript the first page load needs (the entry script and its module preloads,
    /// as `index.html` names them) is at most 300 KB gzipped. Fails on the placeholder page (the app not
    /// built), which has no script.
    #[test]
    fn initial_javascript_is_within_budget() {
        use std::io::Write;
        let files: std::collections::HashMap<String, Vec<u8>> = files().into_iter().collect();
        let index = String::from_utf8(files["index.html"].clone()).unwrap();
        assert!(
            index.contains("<script type=\"module\""),
            "the web app is not built (placeholder index.html): {index}"
        );
        assert!(
            !index.contains("<script>") && !index.contains(" style="),
            "inline script or style in index.html: {index}"
        );
        let mut initial = Vec::new();
        for part in index.split('"') {
            if let Some(path) = part.strip_prefix('/').filter(|p| p.ends_with(".js")) {
                initial.push(path.to_string());
            }
        }
        assert!(!initial.is_empty(), "no script named in {index}");
        let mut gz_total = 0;
        for path in &initial {
            let bytes = files
                .get(path)
                .unwrap_or_else(|| panic!("{path} is not embedded"));
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(bytes).unwrap();
            gz_total += gz.finish().unwrap().len();
        }
        println!("initial JS: {initial:?}, {gz_total} bytes gzipped");
        assert!(gz_total <= 300 * 1024, "{gz_total} bytes gzipped > 300 KB");
    }

    #[test]
    fn html_is_asked_by_browsers_only() {
        let mut h = HeaderMap::new();
        assert!(!wants_html(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
        );
        assert!(!wants_html(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        assert!(wants_html(&h));
    }
}

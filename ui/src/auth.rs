//! API keys and application keys (SPEC §9): with no keys configured every request passes and keys sent by
//! clients are ignored; with keys, writes need a valid `DD-API-KEY` and reads also need a `DD-APPLICATION-KEY`.
//! Each kind is required only once some key of that kind is configured (only `app_keys`: reads are guarded,
//! writes stay open; only `api_keys`: both need the API key, and an API key alone can read).

use crate::error::UiError;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The `[auth]` section of the configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Keys that may write (ingest). Empty with `app_keys` empty: no authentication.
    pub api_keys: Vec<String>,
    /// Keys that may read (queries), sent as `DD-APPLICATION-KEY` next to an API key.
    pub app_keys: Vec<String>,
}

/// The configured keys, shared by the auth middlewares.
#[derive(Debug, Clone, Default)]
pub struct Keys(Arc<AuthConfig>);

impl Keys {
    pub fn new(cfg: AuthConfig) -> Keys {
        Keys(Arc::new(cfg))
    }

    /// Whether any key is configured (so that requests must carry keys).
    pub fn enabled(&self) -> bool {
        !self.0.api_keys.is_empty() || !self.0.app_keys.is_empty()
    }

    fn check_api(&self, headers: &HeaderMap) -> Result<(), UiError> {
        if self.0.api_keys.is_empty() {
            return Ok(());
        }
        // OTLP exporters send their key as `authorization: Bearer <key>` (SPEC §9).
        let bearer = || {
            header(headers, "authorization").and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
                    .map(str::trim)
            })
        };
        match header(headers, "dd-api-key").or_else(bearer) {
            None => Err(UiError::MissingApiKey),
            Some(k) if self.0.api_keys.iter().any(|c| c == k) => Ok(()),
            Some(_) => Err(UiError::InvalidApiKey),
        }
    }

    /// Checks a write request.
    pub fn check_write(&self, headers: &HeaderMap) -> Result<(), UiError> {
        if !self.enabled() {
            return Ok(());
        }
        self.check_api(headers)
    }

    /// Checks a read request: a valid application key next to a valid API key.
    pub fn check_read(&self, headers: &HeaderMap) -> Result<(), UiError> {
        if !self.enabled() {
            return Ok(());
        }
        if self.0.app_keys.is_empty() {
            return self.check_api(headers);
        }
        match header(headers, "dd-application-key") {
            None if header(headers, "dd-api-key").is_some() => {
                return Err(UiError::ApiKeyCannotRead)
            }
            None => return Err(UiError::MissingAppKey),
            Some(k) if !self.0.app_keys.iter().any(|c| c == k) => {
                return Err(UiError::InvalidAppKey)
            }
            Some(_) => {}
        }
        self.check_api(headers)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Middleware for ingest routes: `axum::middleware::from_fn_with_state(keys, require_write)`.
pub async fn require_write(State(keys): State<Keys>, req: Request, next: Next) -> Response {
    match keys.check_write(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Middleware for query routes: `axum::middleware::from_fn_with_state(keys, require_read)`.
pub async fn require_read(State(keys): State<Keys>, req: Request, next: Next) -> Response {
    match keys.check_read(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(api: Option<&str>, app: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = api {
            h.insert("DD-API-KEY", HeaderValue::from_str(a).unwrap());
        }
        if let Some(a) = app {
            h.insert("DD-APPLICATION-KEY", HeaderValue::from_str(a).unwrap());
        }
        h
    }

    fn check(keys: &Keys, read: bool, api: Option<&str>, app: Option<&str>, expected: Option<u16>) {
        let h = headers(api, app);
        let got = if read {
            keys.check_read(&h)
        } else {
            keys.check_write(&h)
        };
        assert_eq!(
            got.err().map(|e| e.kind().http_status()),
            expected,
            "read={read} api={api:?} app={app:?}"
        );
    }

    #[test]
    fn table() {
        let open = Keys::new(AuthConfig::default());
        check(&open, false, None, None, None);
        check(&open, true, Some("anything"), None, None);
        let keys = Keys::new(AuthConfig {
            api_keys: vec!["api1".into()],
            app_keys: vec!["app1".into()],
        });
        check(&keys, false, None, None, Some(401));
        check(&keys, false, Some("nope"), None, Some(403));
        check(&keys, false, Some("api1"), None, None);
        check(&keys, true, None, None, Some(401));
        check(&keys, true, Some("api1"), None, Some(403));
        check(&keys, true, Some("api1"), Some("api1"), Some(403));
        check(&keys, true, Some("api1"), Some("app1"), None);
        check(&keys, true, None, Some("app1"), Some(401));
        check(&keys, true, Some("bad"), Some("app1"), Some(403));
        // OTLP exporters send the API key as a bearer token.
        for (value, expected) in [
            ("Bearer api1", None),
            ("bearer api1", None),
            ("Bearer nope", Some(403)),
            ("Basic api1", Some(401)),
        ] {
            let mut h = HeaderMap::new();
            h.insert("authorization", HeaderValue::from_str(value).unwrap());
            assert_eq!(
                keys.check_write(&h).err().map(|e| e.kind().http_status()),
                expected,
                "{value}"
            );
        }
        // Only application keys: reads are guarded, writes stay open (no API key could ever be valid).
        let app_only = Keys::new(AuthConfig {
            api_keys: vec![],
            app_keys: vec!["app1".into()],
        });
        check(&app_only, false, None, None, None);
        check(&app_only, true, None, None, Some(401));
        check(&app_only, true, None, Some("app1"), None);
        check(&app_only, true, None, Some("nope"), Some(403));
        // Only API keys: both writes and reads need one.
        let api_only = Keys::new(AuthConfig {
            api_keys: vec!["api1".into()],
            app_keys: vec![],
        });
        check(&api_only, false, None, None, Some(401));
        check(&api_only, true, None, None, Some(401));
        check(&api_only, true, Some("api1"), None, None);
        check(&api_only, true, Some("nope"), None, Some(403));
    }
}

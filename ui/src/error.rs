//! The SPEC §4 error shape, `{"errors":["…"]}`, with the status from the one error-kind table in `model`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sightline_model::ErrorKind;

/// Errors raised by the shared HTTP layer itself.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("missing api key: send a DD-API-KEY header")]
    MissingApiKey,
    #[error("invalid api key")]
    InvalidApiKey,
    #[error("missing application key: send a DD-APPLICATION-KEY header next to DD-API-KEY")]
    MissingAppKey,
    #[error("an api key alone cannot read: send a DD-APPLICATION-KEY header")]
    ApiKeyCannotRead,
    #[error("invalid application key")]
    InvalidAppKey,
}

impl UiError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            UiError::MissingApiKey | UiError::MissingAppKey => ErrorKind::Unauthorized,
            UiError::InvalidApiKey | UiError::ApiKeyCannotRead | UiError::InvalidAppKey => {
                ErrorKind::Forbidden
            }
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        api_error(self.kind(), self.to_string())
    }
}

/// Builds an error response: the status of `kind`, `Retry-After` where the kind asks for one, and
/// `{"errors":[message]}`.
pub fn api_error(kind: ErrorKind, message: impl Into<String>) -> Response {
    let status =
        StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = (
        status,
        Json(serde_json::json!({ "errors": [message.into()] })),
    )
        .into_response();
    if let Some(secs) = kind.retry_after_secs() {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

//! Test setup shared by the unit tests (`crate::test_util`) and the integration tests (`tests/*.rs` include
//! this file with `#[path]`): a log store on disk in a temporary directory.
#![allow(dead_code)]

use sightline_model::{LogBatch, LogRecord};
use sightline_storage::{LogStore, LogStoreConfig};
use std::sync::Arc;
use tempfile::TempDir;

/// An empty log store in a new temporary directory, which is removed when the returned `TempDir` is dropped.
/// The default configuration, but for a retention long enough to keep the tests' records (dated November 2023)
/// where they are.
pub fn open_log_store() -> (TempDir, Arc<LogStore>) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogStoreConfig {
        retention_days: 36_500,
        ..LogStoreConfig::default()
    };
    let store = LogStore::open(dir.path(), cfg, &mut Default::default()).unwrap();
    (dir, store)
}

/// A log store (as [`open_log_store`]) holding `records`, committed so that searches find them.
pub async fn log_store_with(records: Vec<LogRecord>) -> (TempDir, Arc<LogStore>) {
    let (dir, store) = open_log_store();
    store.write(LogBatch { records }).await.unwrap();
    store.commit_blocking().unwrap();
    (dir, store)
}

/// One request to a router (`content-type: application/json`, the body if any): the status and the body.
pub async fn call_router(
    app: &axum::Router,
    method: axum::http::Method,
    uri: &str,
    body: Option<String>,
) -> (axum::http::StatusCode, Vec<u8>) {
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(axum::body::Body::empty, axum::body::Body::from))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

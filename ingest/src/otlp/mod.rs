//! The OTLP receiver (SPEC §3, issue #4): traces, metrics and logs over gRPC (4317) and HTTP (4318), protobuf
//! and JSON, turned into model batches for the span, metric and log sinks.
//!
//! `json` decodes OTLP/JSON item by item; `traces`, `metrics` and `logs` are pure conversions into model
//! batches (plus the RED metrics of spans); `server` holds the HTTP and gRPC shells around one core.

pub mod attrs;
pub mod json;
pub mod logs;
pub mod metrics;
pub mod server;
pub mod traces;

pub use server::{http_router, serve_grpc, Authorize, Otlp, OtlpConfig, OtlpMetrics};

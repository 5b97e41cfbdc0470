//! Sightline receivers: DogStatsD over UDP and the Datadog metrics intake over HTTP, each turning its wire
//! format into `model` batches handed to a `BatchSink`. Parsers are pure functions over bytes; the socket
//! and HTTP code around them is thin. Ingest never imports storage.

pub mod body;
pub mod datadog;
pub mod error;
pub mod events;
pub mod logs;
pub mod otlp;
pub mod selfmon;
pub mod statsd;
#[cfg(test)]
mod test_util;

pub use error::IngestError;

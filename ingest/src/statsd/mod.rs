//! DogStatsD: pure datagram parser, per-thread pre-aggregation into 10 s buckets, and the UDP receive loop.
//! Events (`_e`) and service checks (`_sc`) are queued by the aggregator and, when the receiver has a log sink
//! ([`StatsdReceiver::with_log_sink`]), written there as log records on every flush tick.

pub mod aggregator;
pub mod parser;
pub mod server;

pub use aggregator::{Aggregator, StatsdEvent};
pub use parser::{
    parse_datagram, parse_line, Line, MetricLine, MetricType, MetricValue, ParseError,
};
pub use server::{StatsdConfig, StatsdReceiver};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// One label, as `[("reason", "bad_value")]`.
pub type Label = [(&'static str, &'static str); 1];

/// The receiver's own metrics. Cloning shares the counters.
#[derive(Debug, Clone, Default)]
pub struct StatsdMetrics {
    /// `sightline_statsd_lines_total`: non-empty lines received, good or bad.
    pub lines: Counter,
    /// `sightline_statsd_datagrams_total`: datagrams received.
    pub datagrams: Counter,
    /// `sightline_statsd_parse_errors_total{reason}`: lines refused, by [`ParseError::reason`].
    pub parse_errors: Family<Label, Counter>,
    /// `sightline_statsd_dropped_total`: datagrams the kernel dropped because the receive buffer was full.
    pub dropped: Counter,
    /// `sightline_statsd_flush_errors_total`: flushes whose batch the sink refused (the batch is lost).
    pub flush_errors: Counter,
    /// `sightline_statsd_events_total{type="event"|"service_check"}`.
    pub events: Family<Label, Counter>,
    /// `sightline_statsd_events_dropped_total{reason}`: events and service checks lost, pushed out of the full
    /// in-memory queue (`queue_full`) or refused by the log store (`overloaded`, `storage_error`, `closed`,
    /// `rejected`).
    pub events_dropped: Family<Label, Counter>,
}

impl StatsdMetrics {
    /// Registers every counter under its `sightline_statsd_*` name.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sightline_statsd_lines",
            "DogStatsD lines received",
            self.lines.clone(),
        );
        registry.register(
            "sightline_statsd_datagrams",
            "DogStatsD datagrams received",
            self.datagrams.clone(),
        );
        registry.register(
            "sightline_statsd_parse_errors",
            "DogStatsD lines refused, by reason",
            self.parse_errors.clone(),
        );
        registry.register(
            "sightline_statsd_dropped",
            "DogStatsD datagrams dropped by the kernel (receive buffer full)",
            self.dropped.clone(),
        );
        registry.register(
            "sightline_statsd_flush_errors",
            "DogStatsD aggregation flushes refused by storage",
            self.flush_errors.clone(),
        );
        registry.register(
            "sightline_statsd_events",
            "DogStatsD events and service checks",
            self.events.clone(),
        );
        registry.register(
            "sightline_statsd_events_dropped",
            "DogStatsD events and service checks lost (queue full or refused by storage), by reason",
            self.events_dropped.clone(),
        );
    }

    /// The current value of `sightline_statsd_events_dropped_total{reason}`.
    pub fn events_dropped_count(&self, reason: &'static str) -> u64 {
        self.events_dropped
            .get_or_create(&[("reason", reason)])
            .get()
    }

    /// The current value of `sightline_statsd_parse_errors_total{reason}`.
    pub fn parse_error_count(&self, reason: &'static str) -> u64 {
        self.parse_errors.get_or_create(&[("reason", reason)]).get()
    }
}

//! Log lines (SPEC §3 "Log lines"): pure parsers for syslog, JSON, logfmt, Common/Combined Log Format and plain
//! text, an incremental TCP framer, and the TCP/UDP receiver on the syslog port that hands batches to a
//! `LogSink`.
//!
//! Layout: [`syslog`] parses RFC 5424 / RFC 3164 frames, [`detect`] picks the format of one line and maps the
//! usual fields onto a `LogRecord`, [`framing`] cuts a TCP byte stream into frames (octet-counted or
//! newline-delimited), and [`server`] is the socket shell around them. [`time`] is the date and time glue every
//! parser needs (RFC 3339, `strtime` formats, unix numbers of unknown unit) over the `jiff` crate.

pub mod detect;
pub mod framing;
pub mod server;
pub mod syslog;
pub mod time;

pub use detect::{mark_truncated, parse_line, record_from_object, ParsedLine, TRUNCATED_TAG};
pub use framing::{Frame, Framer};
pub use server::{LogReceiver, LogReceiverConfig};
pub use syslog::parse_syslog;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// One label, as `[("reason", "json")]`.
pub type Label = [(&'static str, &'static str); 1];

/// The log receivers' own metrics, shared by the syslog-port receiver and the `POST /api/v2/logs` intake.
/// Cloning shares the counters. Create it once per registry with [`LogMetrics::new`] and hand clones to every
/// log receiver (registering twice would expose every series twice).
#[derive(Debug, Clone, Default)]
pub struct LogMetrics {
    /// `sightline_logs_received_total{transport="tcp"|"udp"|"http"}`: log records received.
    pub received: Family<Label, Counter>,
    /// `sightline_logs_unparsed_total{reason="syslog"|"json"|"logfmt"|"clf"}`: lines that looked like a format
    /// but did not parse, kept as plain text.
    pub unparsed: Family<Label, Counter>,
    /// `sightline_logs_truncated_total`: lines cut at `max_line_bytes` (and tagged `sightline.truncated:true`).
    pub truncated: Counter,
    /// `sightline_logs_dropped_total{reason}`: records lost because storage refused them (`overloaded`,
    /// `storage_error`, `closed`, `rejected`) or the UDP write queue was full (`queue_full`).
    pub dropped: Family<Label, Counter>,
    /// `sightline_logs_connections`: open TCP connections on the syslog port.
    pub connections: Gauge,
    /// `sightline_logs_connections_refused_total`: TCP connections closed at once because `max_connections`
    /// were already open.
    pub connections_refused: Counter,
    /// `sightline_logs_intake_requests_total{status}`: `POST /api/v2/logs` requests answered, by HTTP status.
    pub intake_requests: Family<[(&'static str, u16); 1], Counter>,
}

impl LogMetrics {
    /// Creates the counters and registers them in `registry`.
    pub fn new(registry: &mut Registry) -> LogMetrics {
        let m = LogMetrics::default();
        registry.register(
            "sightline_logs_received",
            "Log records received, by transport",
            m.received.clone(),
        );
        registry.register(
            "sightline_logs_unparsed",
            "Log lines that looked like a structured format but did not parse (kept as plain text)",
            m.unparsed.clone(),
        );
        registry.register(
            "sightline_logs_truncated",
            "Log lines truncated at max_line_bytes",
            m.truncated.clone(),
        );
        registry.register(
            "sightline_logs_dropped",
            "Log records lost because storage refused them, by reason",
            m.dropped.clone(),
        );
        registry.register(
            "sightline_logs_connections",
            "Open TCP connections on the syslog port",
            m.connections.clone(),
        );
        registry.register(
            "sightline_logs_connections_refused",
            "TCP connections on the syslog port refused because max_connections were open",
            m.connections_refused.clone(),
        );
        registry.register(
            "sightline_logs_intake_requests",
            "POST /api/v2/logs requests answered, by HTTP status",
            m.intake_requests.clone(),
        );
        m
    }

    /// Counts `n` records received over `transport`.
    pub fn count_received(&self, transport: &'static str, n: usize) {
        self.received
            .get_or_create(&[("transport", transport)])
            .inc_by(n as u64);
    }

    /// Counts one parsed line: its unparsed reason, if any, and its truncation.
    pub fn count_line(&self, unparsed: Option<&'static str>, truncated: bool) {
        if let Some(reason) = unparsed {
            self.unparsed.get_or_create(&[("reason", reason)]).inc();
        }
        if truncated {
            self.truncated.inc();
        }
    }

    /// Counts `n` records dropped for `reason`.
    pub fn count_dropped(&self, reason: &'static str, n: usize) {
        if n > 0 {
            self.dropped
                .get_or_create(&[("reason", reason)])
                .inc_by(n as u64);
        }
    }
}

/// The `reason` label of `sightline_logs_dropped_total` for a sink error.
pub fn drop_reason(e: &sightline_model::SinkError) -> &'static str {
    match e {
        sightline_model::SinkError::Overloaded(_) => "overloaded",
        sightline_model::SinkError::Io(_) => "storage_error",
        sightline_model::SinkError::Closed => "closed",
    }
}

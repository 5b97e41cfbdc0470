//! The log receiver on the syslog port (SPEC default 127.0.0.1:5514): TCP and UDP bound on one address, each
//! frame parsed by [`parse_line`](super::detect::parse_line) and written to the `LogSink` in batches.
//!
//! TCP: one task per connection (at most `max_connections`; more are closed at once and counted), reading
//! into a fixed buffer, cutting frames with the [`Framer`], flushing its batch every `batch_records` records,
//! `batch_bytes` bytes or `flush_interval_ms` after its first record. While a batch is being written the
//! connection is not read, so a slow sink pushes back on the sender through TCP.
//!
//! UDP: one datagram is one syslog frame when it starts with `<PRI>`, otherwise newline-separated lines.
//! Batches go through a bounded queue to a writer task; when the queue is full the batch is dropped and
//! counted, as UDP has no way to push back.
//!
//! Memory per connection is bounded by `read_buffer_bytes + max_line_bytes + batch_bytes` (plus parsing
//! overhead). Sink errors drop the batch and count it in `sightline_logs_dropped_total{reason}`.

use super::detect::{mark_truncated, parse_line};
use super::framing::{Frame, Framer};
use super::{drop_reason, time, LogMetrics};
use crate::error::IngestError;
use serde::{Deserialize, Serialize};
use sightline_model::{Limits, LogBatch, LogRecord, LogSink};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// How long `shutdown` waits for connections and queued UDP batches to be written before abandoning them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Largest UDP payload (IPv4: 65507; IPv6 jumbograms are not expected on a log port).
const MAX_DATAGRAM: usize = 65_536;

/// Settings of the log receiver on the syslog port (`[syslog]` in the config file). The listen address and
/// `max_line_bytes` (from `Limits`) are given to [`LogReceiver::start`] separately.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogReceiverConfig {
    /// Accept TCP connections (octet-counted or newline-framed).
    pub tcp: bool,
    /// Receive UDP datagrams.
    pub udp: bool,
    /// Most TCP connections open at once; further ones are closed at once and counted.
    pub max_connections: usize,
    /// A batch is written once it holds this many records …
    pub batch_records: usize,
    /// … or this many bytes of raw lines …
    pub batch_bytes: usize,
    /// … or this long after its first record, in milliseconds.
    pub flush_interval_ms: u64,
    /// Read buffer of each TCP connection, in bytes.
    pub read_buffer_bytes: usize,
    /// UDP batches waiting to be written; beyond that, batches are dropped and counted.
    pub udp_queue_batches: usize,
}

impl Default for LogReceiverConfig {
    fn default() -> Self {
        LogReceiverConfig {
            tcp: true,
            udp: true,
            max_connections: 1024,
            batch_records: 1000,
            batch_bytes: 1024 * 1024,
            flush_interval_ms: 200,
            read_buffer_bytes: 64 * 1024,
            udp_queue_batches: 16,
        }
    }
}

impl LogReceiverConfig {
    /// Checks the settings, naming the offending one.
    pub fn validate(&self) -> Result<(), IngestError> {
        let bad = |msg: String| Err(IngestError::Invalid(msg));
        if !self.tcp && !self.udp {
            return bad(
                "syslog.tcp and syslog.udp are both false; enable one or turn the listener off"
                    .into(),
            );
        }
        let ranges: [(&str, usize, usize, usize); 5] = [
            ("max_connections", self.max_connections, 1, 1_000_000),
            ("batch_records", self.batch_records, 1, 1_000_000),
            ("batch_bytes", self.batch_bytes, 1024, 1 << 30),
            ("read_buffer_bytes", self.read_buffer_bytes, 512, 16 << 20),
            ("udp_queue_batches", self.udp_queue_batches, 1, 10_000),
        ];
        for (name, v, lo, hi) in ranges {
            if v < lo || v > hi {
                return bad(format!(
                    "syslog.{name} is {v}; it must be between {lo} and {hi}"
                ));
            }
        }
        if self.flush_interval_ms == 0 || self.flush_interval_ms > 60_000 {
            return bad(format!(
                "syslog.flush_interval_ms is {}; it must be between 1 and 60000",
                self.flush_interval_ms
            ));
        }
        Ok(())
    }
}

/// What every task of a receiver shares.
struct Shared {
    sink: Arc<dyn LogSink>,
    metrics: LogMetrics,
    cfg: LogReceiverConfig,
    max_line_bytes: usize,
}

/// A running log receiver.
pub struct LogReceiver {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl LogReceiver {
    /// Binds `addr` for TCP and UDP (as `cfg` enables them; with port 0, both on the same free port) and starts
    /// the receive tasks. Lines are cut at `limits.max_line_bytes`. `metrics` is the one [`LogMetrics`] of the
    /// registry (see [`LogMetrics::new`]). Must be called inside a tokio runtime.
    pub fn start(
        addr: SocketAddr,
        cfg: LogReceiverConfig,
        limits: &Limits,
        sink: Arc<dyn LogSink>,
        metrics: LogMetrics,
    ) -> Result<LogReceiver, IngestError> {
        cfg.validate()?;
        let (tcp, udp) = bind(addr, cfg.tcp, cfg.udp)?;
        let local_addr = match (&tcp, &udp) {
            (Some(t), _) => t.local_addr(),
            (None, Some(u)) => u.local_addr(),
            (None, None) => unreachable!("validate refuses a receiver without tcp and udp"),
        }
        .map_err(|source| IngestError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let shared = Arc::new(Shared {
            sink,
            metrics,
            cfg,
            max_line_bytes: limits.max_line_bytes.max(1),
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        if let Some(listener) = tcp {
            tasks.push(tokio::spawn(accept_loop(
                listener,
                shared.clone(),
                stopped.clone(),
            )));
        }
        if let Some(socket) = udp {
            tasks.push(tokio::spawn(udp_loop(socket, shared.clone(), stopped)));
        }
        tracing::info!(
            %local_addr,
            tcp = shared.cfg.tcp,
            udp = shared.cfg.udp,
            "log receiver listening (syslog, raw lines)"
        );
        Ok(LogReceiver {
            local_addr,
            stop,
            tasks,
        })
    }

    /// The bound address (with the actual port when started on port 0); TCP and UDP share it.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets every connection read what is already queued on its socket and write its last
    /// batch (for at most 5 s), writes the UDP batches still queued, and returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            if let Err(e) = t.await {
                tracing::error!("log receiver task failed: {e}");
            }
        }
        tracing::info!(local_addr = %self.local_addr, "log receiver stopped");
    }
}

impl Drop for LogReceiver {
    fn drop(&mut self) {
        // Without `shutdown`, the tasks still end (after their last flush).
        let _ = self.stop.send(true);
    }
}

/// Binds TCP and UDP on `addr`. With port 0, the UDP socket takes the TCP listener's port (retrying a few
/// times should that UDP port be taken).
fn bind(
    addr: SocketAddr,
    tcp: bool,
    udp: bool,
) -> Result<(Option<TcpListener>, Option<UdpSocket>), IngestError> {
    let err = |proto: &str, source: std::io::Error| IngestError::Bind {
        addr: format!("{proto} {addr}"),
        source,
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let listener = if tcp {
            let l = std::net::TcpListener::bind(addr).map_err(|e| err("tcp", e))?;
            l.set_nonblocking(true).map_err(|e| err("tcp", e))?;
            Some(l)
        } else {
            None
        };
        let udp_addr = match &listener {
            Some(l) => l.local_addr().map_err(|e| err("tcp", e))?,
            None => addr,
        };
        let socket = if udp {
            match std::net::UdpSocket::bind(udp_addr) {
                Ok(s) => {
                    s.set_nonblocking(true).map_err(|e| err("udp", e))?;
                    Some(s)
                }
                Err(e) if addr.port() == 0 && tcp && attempts < 10 => {
                    tracing::debug!("udp port {} taken, trying another: {e}", udp_addr.port());
                    continue;
                }
                Err(e) => return Err(err("udp", e)),
            }
        } else {
            None
        };
        let listener = listener
            .map(TcpListener::from_std)
            .transpose()
            .map_err(|e| err("tcp", e))?;
        let socket = socket
            .map(UdpSocket::from_std)
            .transpose()
            .map_err(|e| err("udp", e))?;
        return Ok((listener, socket));
    }
}

/// Records waiting to be written, with the size and age that decide when.
struct Batcher {
    records: Vec<LogRecord>,
    bytes: usize,
    deadline: Option<Instant>,
}

impl Batcher {
    fn new() -> Batcher {
        Batcher {
            records: Vec::new(),
            bytes: 0,
            deadline: None,
        }
    }

    fn push(&mut self, record: LogRecord, raw_len: usize, flush_after: Duration) {
        if self.records.is_empty() {
            self.deadline = Some(Instant::now() + flush_after);
        }
        self.bytes += raw_len;
        self.records.push(record);
    }

    fn full(&self, cfg: &LogReceiverConfig) -> bool {
        self.records.len() >= cfg.batch_records || self.bytes >= cfg.batch_bytes
    }

    fn take(&mut self) -> LogBatch {
        self.bytes = 0;
        self.deadline = None;
        LogBatch {
            records: std::mem::take(&mut self.records),
        }
    }
}

/// Parses one frame into `batch` (skipping blank ones) and counts it.
fn add_frame(
    shared: &Shared,
    transport: &'static str,
    batch: &mut Batcher,
    data: &[u8],
    truncated: bool,
    now_ns: i64,
) {
    if data.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    shared.metrics.count_received(transport, 1);
    let mut p = parse_line(data, now_ns, shared.max_line_bytes);
    if truncated {
        mark_truncated(&mut p.record);
    }
    shared
        .metrics
        .count_line(p.unparsed, truncated || p.truncated);
    batch.push(
        p.record,
        data.len(),
        Duration::from_millis(shared.cfg.flush_interval_ms),
    );
}

/// Writes a batch, counting what is lost.
async fn write(shared: &Shared, batch: LogBatch) {
    let n = batch.len();
    if n == 0 {
        return;
    }
    match shared.sink.write_logs(batch).await {
        Ok(outcome) => shared.metrics.count_dropped("rejected", outcome.rejected),
        Err(e) => {
            shared.metrics.count_dropped(drop_reason(&e), n);
            match e {
                sightline_model::SinkError::Overloaded(_) => {
                    tracing::debug!(records = n, "log receiver: batch dropped: {e}")
                }
                _ => tracing::warn!(records = n, "log receiver: batch dropped: {e}"),
            }
        }
    }
}

/// Sleeps until `deadline`, or for ever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(shared.cfg.max_connections));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        if *stop.borrow_and_update() {
            break;
        }
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let (shared, stop) = (shared.clone(), stop.clone());
                        connections.spawn(async move {
                            let _open = OpenConnection::new(&shared.metrics, permit);
                            connection(stream, peer, &shared, stop).await;
                        });
                    }
                    Err(_) => {
                        shared.metrics.connections_refused.inc();
                        tracing::warn!(
                            %peer,
                            max_connections = shared.cfg.max_connections,
                            "log receiver: too many connections, closing a new one"
                        );
                        drop(stream);
                    }
                },
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("log receiver: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let all_done = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, all_done)
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "log receiver: connections still writing after {SHUTDOWN_GRACE:?}, abandoning them"
        );
        connections.abort_all();
    }
}

/// Holds a connection's slot and counts it in `sightline_logs_connections` while it lives (also when its task
/// is aborted).
struct OpenConnection {
    gauge: prometheus_client::metrics::gauge::Gauge,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl OpenConnection {
    fn new(metrics: &LogMetrics, permit: tokio::sync::OwnedSemaphorePermit) -> OpenConnection {
        metrics.connections.inc();
        OpenConnection {
            gauge: metrics.connections.clone(),
            _permit: permit,
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// One TCP connection, until the peer closes it or the receiver stops.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
) {
    let mut framer = Framer::new(shared.max_line_bytes);
    let mut buf = vec![0u8; shared.cfg.read_buffer_bytes];
    let mut frames: Vec<Frame> = Vec::new();
    let mut batch = Batcher::new();
    loop {
        let mut done = false;
        tokio::select! {
            _ = stop.changed() => {
                // Take what the peer already sent, then stop.
                for _ in 0..64 {
                    match stream.try_read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => framer.push(&buf[..n], &mut frames),
                    }
                }
                framer.finish(&mut frames);
                done = true;
            }
            r = stream.read(&mut buf) => match r {
                Ok(0) => {
                    framer.finish(&mut frames);
                    done = true;
                }
                Ok(n) => framer.push(&buf[..n], &mut frames),
                Err(e) => {
                    tracing::debug!(%peer, "log receiver: read failed: {e}");
                    framer.finish(&mut frames);
                    done = true;
                }
            },
            _ = sleep_until(batch.deadline) => {
                write(shared, batch.take()).await;
            }
        }
        if !frames.is_empty() {
            let now = time::now_ns();
            for f in frames.drain(..) {
                add_frame(shared, "tcp", &mut batch, &f.data, f.truncated, now);
                if batch.full(&shared.cfg) {
                    write(shared, batch.take()).await;
                }
            }
        }
        if done {
            break;
        }
    }
    write(shared, batch.take()).await;
}

/// The frames of one UDP datagram: the whole datagram when it is syslog, else its non-empty lines.
pub(crate) fn datagram_frames(d: &[u8]) -> Vec<&[u8]> {
    if super::syslog::looks_like_syslog(d) {
        return vec![d];
    }
    d.split(|&c| c == b'\n' || c == 0)
        .filter(|l| !l.is_empty() && *l != b"\r")
        .collect()
}

async fn udp_loop(socket: UdpSocket, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let (tx, mut rx) = mpsc::channel::<LogBatch>(shared.cfg.udp_queue_batches);
    let writer = {
        let shared = shared.clone();
        tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                write(&shared, batch).await;
            }
        })
    };
    let send = |batch: LogBatch| {
        let n = batch.len();
        if n == 0 {
            return;
        }
        if let Err(e) = tx.try_send(batch) {
            let reason = match e {
                mpsc::error::TrySendError::Full(_) => "queue_full",
                mpsc::error::TrySendError::Closed(_) => "closed",
            };
            shared.metrics.count_dropped(reason, n);
        }
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut batch = Batcher::new();
    loop {
        let mut done = false;
        tokio::select! {
            _ = stop.changed() => done = true,
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, _peer)) => {
                    let now = time::now_ns();
                    for frame in datagram_frames(&buf[..n]) {
                        add_frame(&shared, "udp", &mut batch, frame, false, now);
                    }
                }
                Err(e) => {
                    tracing::debug!("log receiver: udp receive failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = sleep_until(batch.deadline) => send(batch.take()),
        }
        if done {
            // Datagrams already queued on the socket are read before stopping.
            for _ in 0..1024 {
                match socket.try_recv_from(&mut buf) {
                    Ok((n, _)) => {
                        let now = time::now_ns();
                        for frame in datagram_frames(&buf[..n]) {
                            add_frame(&shared, "udp", &mut batch, frame, false, now);
                        }
                        if batch.full(&shared.cfg) {
                            send(batch.take());
                        }
                    }
                    Err(_) => break,
                }
            }
            send(batch.take());
            break;
        }
        if batch.full(&shared.cfg) {
            send(batch.take());
        }
    }
    drop(tx);
    if tokio::time::timeout(SHUTDOWN_GRACE, writer).await.is_err() {
        tracing::warn!(
            "log receiver: udp batches still queued after {SHUTDOWN_GRACE:?}, abandoning them"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{metrics_text, stored_logs, OverloadedSink};
    use prometheus_client::registry::Registry;
    use sightline_model::MemorySink;
    use tokio::io::AsyncWriteExt;

    fn start(
        cfg: LogReceiverConfig,
        limits: &Limits,
        sink: Arc<dyn LogSink>,
    ) -> (LogReceiver, Registry) {
        let mut registry = Registry::default();
        let metrics = LogMetrics::new(&mut registry);
        let rx =
            LogReceiver::start("127.0.0.1:0".parse().unwrap(), cfg, limits, sink, metrics).unwrap();
        (rx, registry)
    }

    async fn wait_for(sink: &MemorySink, n: usize) {
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while stored_logs(sink).len() < n {
            assert!(
                std::time::Instant::now() < until,
                "only {} of {n} records arrived",
                stored_logs(sink).len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn tcp_and_udp_over_loopback() {
        let sink = Arc::new(MemorySink::default());
        let limits = Limits {
            max_line_bytes: 120,
            ..Limits::default()
        };
        let (rx, registry) = start(LogReceiverConfig::default(), &limits, sink.clone());
        let addr = rx.local_addr();
        assert_ne!(addr.port(), 0);

        // TCP: the exact bytes of util-linux `logger --rfc5424 --octet-count --tcp`, newline-framed lines in
        // several formats, written in awkward pieces.
        let mut stream: Vec<u8> = Vec::new();
        stream.extend_from_slice(
            b"102 <13>1 2026-11-29T04:34:48.716298+00:00 vm myapp - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] hello world",
        );
        stream.extend_from_slice(b"<13>Nov 29 04:34:49 vm myapp: hello 3164\n");
        stream.extend_from_slice(b"{\"message\":\"json line\",\"level\":\"error\"}\r\n");
        stream.extend_from_slice(b"{\"broken\n");
        stream.extend_from_slice(&[b'x'; 300]);
        stream.extend_from_slice(b"\nlast line without newline");
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        for piece in stream.chunks(7) {
            tcp.write_all(piece).await.unwrap();
        }
        tcp.shutdown().await.unwrap();
        drop(tcp);

        // UDP: a syslog datagram (one frame even with a newline inside) and a datagram of raw lines.
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .send_to(b"<11>Nov 29 04:34:50 vm app: first\nsecond half", addr)
            .unwrap();
        client
            .send_to(b"level=warn msg=udp1\nplain udp2\n", addr)
            .unwrap();

        wait_for(&sink, 9).await;
        rx.shutdown().await;

        let got = stored_logs(&sink);
        let messages: Vec<&str> = got.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(got.len(), 9, "{messages:?}");
        let find = |m: &str| {
            got.iter()
                .find(|r| r.message.starts_with(m))
                .unwrap_or_else(|| panic!("no record {m:?} in {messages:?}"))
        };
        let r = find("hello world");
        assert_eq!(
            (r.host.as_deref(), r.service.as_deref()),
            (Some("vm"), Some("myapp"))
        );
        assert_eq!(r.status, "notice");
        assert_eq!(r.attributes["syslog"]["sd"]["timeQuality"]["tzKnown"], "1");
        assert_eq!(find("hello 3164").source.as_deref(), Some("syslog"));
        assert_eq!(find("json line").status, "error");
        assert_eq!(find("{\"broken").tags, Vec::<String>::new());
        let long = find("xxx");
        assert_eq!(long.message.len(), 120);
        assert_eq!(long.tags, vec!["sightline.truncated:true"]);
        find("last line without newline");
        assert_eq!(find("first\nsecond half").status, "error");
        assert_eq!(find("udp1").status, "warning");
        find("plain udp2");

        let text = metrics_text(&registry);
        for want in [
            "sightline_logs_received_total{transport=\"tcp\"} 6",
            "sightline_logs_received_total{transport=\"udp\"} 3",
            "sightline_logs_unparsed_total{reason=\"json\"} 1",
            "sightline_logs_truncated_total 1",
            "sightline_logs_connections 0",
        ] {
            assert!(text.contains(want), "{want} not in\n{text}");
        }
    }

    #[tokio::test]
    async fn shutdown_writes_the_pending_batch() {
        let sink = Arc::new(MemorySink::default());
        let cfg = LogReceiverConfig {
            flush_interval_ms: 60_000,
            ..LogReceiverConfig::default()
        };
        let (rx, _registry) = start(cfg, &Limits::default(), sink.clone());
        let addr = rx.local_addr();
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"one\ntwo\nthree-partial").await.unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"udp one", addr).unwrap();
        // Give the connection task time to read; nothing is written before the flush interval.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(stored_logs(&sink).is_empty());
        tokio::time::timeout(Duration::from_secs(3), rx.shutdown())
            .await
            .expect("shutdown returns while a client keeps its connection open");
        let mut messages: Vec<String> = stored_logs(&sink).into_iter().map(|r| r.message).collect();
        messages.sort();
        assert_eq!(messages, ["one", "three-partial", "two", "udp one"]);
        drop(tcp);
    }

    #[tokio::test]
    async fn batches_flush_by_size_and_time() {
        let sink = Arc::new(MemorySink::default());
        let cfg = LogReceiverConfig {
            batch_records: 3,
            flush_interval_ms: 50,
            ..LogReceiverConfig::default()
        };
        let (rx, _registry) = start(cfg, &Limits::default(), sink.clone());
        let mut tcp = TcpStream::connect(rx.local_addr()).await.unwrap();
        tcp.write_all(b"a\nb\nc\nd\n").await.unwrap();
        // `d` comes by the timer, while the connection stays open.
        wait_for(&sink, 4).await;
        let sizes: Vec<usize> = sink.logs.lock().unwrap().iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [3, 1]);
        drop(tcp);
        rx.shutdown().await;
    }

    #[tokio::test]
    async fn connections_over_the_cap_are_closed() {
        let sink = Arc::new(MemorySink::default());
        let cfg = LogReceiverConfig {
            max_connections: 1,
            udp: false,
            ..LogReceiverConfig::default()
        };
        let (rx, registry) = start(cfg, &Limits::default(), sink.clone());
        let addr = rx.local_addr();
        let mut first = TcpStream::connect(addr).await.unwrap();
        first.write_all(b"from first\n").await.unwrap();
        wait_for(&sink, 1).await;
        let mut second = TcpStream::connect(addr).await.unwrap();
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(2), second.read(&mut byte))
            .await
            .expect("the extra connection is closed")
            .unwrap_or(0);
        assert_eq!(n, 0);
        let text = metrics_text(&registry);
        assert!(
            text.contains("sightline_logs_connections_refused_total 1"),
            "{text}"
        );
        assert!(text.contains("sightline_logs_connections 1"), "{text}");
        // Closing the first frees its slot.
        drop(first);
        let until = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let mut third = TcpStream::connect(addr).await.unwrap();
            third.write_all(b"from third\n").await.unwrap();
            drop(third);
            tokio::time::sleep(Duration::from_millis(50)).await;
            if stored_logs(&sink).iter().any(|r| r.message == "from third") {
                break;
            }
            assert!(std::time::Instant::now() < until, "the slot was not freed");
        }
        rx.shutdown().await;
    }

    #[tokio::test]
    async fn sink_errors_are_counted_as_drops() {
        let (rx, registry) = start(
            LogReceiverConfig::default(),
            &Limits::default(),
            Arc::new(OverloadedSink),
        );
        let mut tcp = TcpStream::connect(rx.local_addr()).await.unwrap();
        tcp.write_all(b"a\nb\n").await.unwrap();
        tcp.shutdown().await.unwrap();
        drop(tcp);
        let until = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let text = metrics_text(&registry);
            if text.contains("sightline_logs_dropped_total{reason=\"overloaded\"} 2") {
                break;
            }
            assert!(std::time::Instant::now() < until, "{text}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        rx.shutdown().await;
    }

    #[tokio::test]
    async fn bad_config_and_busy_port_are_errors() {
        let sink: Arc<dyn LogSink> = Arc::new(MemorySink::default());
        let metrics = LogMetrics::default();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let cfg = LogReceiverConfig {
            max_connections: 0,
            ..LogReceiverConfig::default()
        };
        let e = LogReceiver::start(addr, cfg, &Limits::default(), sink.clone(), metrics.clone())
            .err()
            .unwrap();
        assert!(e.to_string().contains("syslog.max_connections is 0"), "{e}");
        let cfg = LogReceiverConfig {
            tcp: false,
            udp: false,
            ..LogReceiverConfig::default()
        };
        assert!(
            LogReceiver::start(addr, cfg, &Limits::default(), sink.clone(), metrics.clone())
                .is_err()
        );

        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = taken.local_addr().unwrap();
        let e = LogReceiver::start(
            busy,
            LogReceiverConfig::default(),
            &Limits::default(),
            sink,
            metrics,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains(&busy.to_string()), "{e}");
    }

    #[test]
    fn config_defaults_and_unknown_keys() {
        let cfg: LogReceiverConfig = serde_json::from_str(r#"{"max_connections": 8}"#).unwrap();
        assert_eq!(
            cfg,
            LogReceiverConfig {
                max_connections: 8,
                ..LogReceiverConfig::default()
            }
        );
        let e = serde_json::from_str::<LogReceiverConfig>(r#"{"max_conections": 8}"#).unwrap_err();
        assert!(e.to_string().contains("max_conections"), "{e}");
        LogReceiverConfig::default().validate().unwrap();
    }

    #[test]
    fn datagram_splitting() {
        fn check(input: &[u8], expected: &[&str]) {
            let got: Vec<String> = datagram_frames(input)
                .into_iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(input));
        }
        check(
            b"<13>Nov 29 04:34:50 vm myapp: hello world",
            &["<13>Nov 29 04:34:50 vm myapp: hello world"],
        );
        check(
            b"<13>1 - - a - - - multi\nline\n",
            &["<13>1 - - a - - - multi\nline\n"],
        );
        check(b"a\nb\r\n\nc\0d", &["a", "b\r", "c", "d"]);
        check(b"", &[]);
        check(b"\n\r\n", &[]);
    }
}

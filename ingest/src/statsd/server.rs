//! The DogStatsD UDP receiver: receive threads reading the socket with `recvmmsg` into per-thread
//! aggregator shards, and a tokio task flushing the aggregator to the sink every `flush_interval_ms` (and, once
//! [`StatsdReceiver::with_log_sink`] gave it one, the queued events and service checks to the log sink).

use super::aggregator::{Aggregator, StatsdEvent};
use super::parser::ParseError;
use super::StatsdMetrics;
use crate::error::IngestError;
use nix::errno::Errno;
use nix::sys::socket::{recvmmsg, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage};
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use sightline_model::{BatchSink, Limits, LogSink};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// How often a blocked receive thread wakes up to check for shutdown.
const RECV_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a receive thread keeps reading what is queued on the socket once shutdown is requested. A
/// sender that keeps the socket non-empty would otherwise keep the thread, and `shutdown`, alive for ever;
/// what is still queued at the deadline is dropped with the socket.
const DRAIN_DEADLINE: Duration = Duration::from_millis(200);

/// DogStatsD receiver settings (`[statsd]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsdConfig {
    /// Receive threads, all reading the one socket, each aggregating into its own shard.
    pub threads: usize,
    /// Socket receive buffer asked of the kernel, in bytes (`SO_RCVBUFFORCE` when permitted, else
    /// `SO_RCVBUF`, which the kernel caps at `net.core.rmem_max`). Bursts beyond it are dropped and counted.
    pub recv_buffer_bytes: usize,
    /// Largest datagram read whole, in bytes (at most 65535). Longer ones lose their last, partial line.
    pub max_datagram_bytes: usize,
    /// Datagrams read per `recvmmsg` call.
    pub batch_size: usize,
    /// How often aggregated points are written to storage, in milliseconds (points are queryable after).
    pub flush_interval_ms: u64,
}

impl Default for StatsdConfig {
    fn default() -> Self {
        StatsdConfig {
            threads: 1,
            recv_buffer_bytes: 16 * 1024 * 1024,
            max_datagram_bytes: 8192,
            batch_size: 64,
            flush_interval_ms: 1000,
        }
    }
}

impl StatsdConfig {
    /// Checks the settings, naming the offending one.
    pub fn validate(&self) -> Result<(), IngestError> {
        let bad = |msg: String| Err(IngestError::Invalid(msg));
        if self.threads == 0 || self.threads > 1024 {
            return bad(format!(
                "statsd.threads is {}; it must be between 1 and 1024",
                self.threads
            ));
        }
        if self.max_datagram_bytes == 0 || self.max_datagram_bytes > 65535 {
            return bad(format!(
                "statsd.max_datagram_bytes is {}; it must be between 1 and 65535",
                self.max_datagram_bytes
            ));
        }
        if self.batch_size == 0 || self.batch_size > 1024 {
            return bad(format!(
                "statsd.batch_size is {}; it must be between 1 and 1024",
                self.batch_size
            ));
        }
        if self.flush_interval_ms == 0 || self.flush_interval_ms > 10_000 {
            return bad(format!(
                "statsd.flush_interval_ms is {}; it must be between 1 and 10000",
                self.flush_interval_ms
            ));
        }
        Ok(())
    }
}

/// Where events and service checks go, if anywhere yet (shared with the flush task).
type SharedLogSink = Arc<Mutex<Option<Arc<dyn LogSink>>>>;

/// A running DogStatsD UDP receiver.
pub struct StatsdReceiver {
    local_addr: SocketAddr,
    aggregator: Arc<Aggregator>,
    sink: Arc<dyn BatchSink>,
    log_sink: SharedLogSink,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    flush_stop: Option<tokio::sync::oneshot::Sender<()>>,
    flush_task: Option<tokio::task::JoinHandle<()>>,
}

impl StatsdReceiver {
    /// Binds `addr` (UDP), starts `cfg.threads` receive threads and the flush task, and registers the
    /// `sightline_statsd_*` counters in `registry`. Must be called inside a tokio runtime.
    pub fn start(
        addr: SocketAddr,
        cfg: StatsdConfig,
        limits: Limits,
        sink: Arc<dyn BatchSink>,
        registry: &mut Registry,
    ) -> Result<StatsdReceiver, IngestError> {
        cfg.validate()?;
        let bind_err = |source: std::io::Error| IngestError::Bind {
            addr: format!("udp {addr}"),
            source,
        };
        let socket = Arc::new(bind(addr, &cfg).map_err(bind_err)?);
        let local_addr = socket.local_addr().map_err(bind_err)?;

        let metrics = StatsdMetrics::default();
        metrics.register(registry);
        let aggregator = Arc::new(Aggregator::new(cfg.threads, limits, metrics));
        let stop = Arc::new(AtomicBool::new(false));
        let last_drops = Arc::new(AtomicU32::new(0));

        let mut threads = Vec::with_capacity(cfg.threads);
        for shard in 0..cfg.threads {
            let (socket, aggregator, thread_stop, last_drops, cfg) = (
                socket.clone(),
                aggregator.clone(),
                stop.clone(),
                last_drops.clone(),
                cfg.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name(format!("statsd-recv-{shard}"))
                .spawn(move || {
                    receive_loop(&socket, shard, &aggregator, &cfg, &thread_stop, &last_drops)
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    threads
                        .into_iter()
                        .for_each(|t: JoinHandle<()>| drop(t.join()));
                    return Err(bind_err(e));
                }
            }
        }

        let log_sink: SharedLogSink = Arc::new(Mutex::new(None));
        let (flush_stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let flush_task = {
            let (aggregator, sink, log_sink) = (aggregator.clone(), sink.clone(), log_sink.clone());
            let period = Duration::from_millis(cfg.flush_interval_ms);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tokio::select! {
                        _ = tick.tick() => flush_all(&aggregator, &*sink, &log_sink).await,
                        _ = &mut stopped => break,
                    }
                }
            })
        };
        tracing::info!(%local_addr, threads = cfg.threads, "dogstatsd listening (udp)");
        Ok(StatsdReceiver {
            local_addr,
            aggregator,
            sink,
            log_sink,
            stop,
            threads,
            flush_stop: Some(flush_stop),
            flush_task: Some(flush_task),
        })
    }

    /// Writes the events and service checks received from now on (and those still queued) to `log_sink` as log
    /// records (`source:event` / `source:service_check`, see [`crate::events`]), in one batch per flush tick,
    /// next to the metric flush. Without a log sink they stay queued (bounded) for [`Self::take_events`].
    /// Write failures are logged and counted in `sightline_statsd_events_dropped_total{reason}`; the receive
    /// threads never wait for the log sink.
    pub fn with_log_sink(self, log_sink: Arc<dyn LogSink>) -> Self {
        *self.log_sink.lock() = Some(log_sink);
        self
    }

    /// The bound address (with the actual port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The aggregator, for its counters and [`Aggregator::take_events`].
    pub fn aggregator(&self) -> &Arc<Aggregator> {
        &self.aggregator
    }

    /// Takes the queued events and service checks (see [`Aggregator::take_events`]).
    pub fn take_events(&self) -> Vec<StatsdEvent> {
        self.aggregator.take_events()
    }

    /// Stops the receive threads (after they read what is already queued on the socket, for at most 200 ms
    /// so that steady traffic cannot keep them running), stops the flush task, and flushes once more.
    pub async fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let threads = std::mem::take(&mut self.threads);
        let joined = tokio::task::spawn_blocking(move || {
            for t in threads {
                if t.join().is_err() {
                    tracing::error!("dogstatsd receive thread panicked");
                }
            }
        });
        let _ = joined.await;
        if let Some(tx) = self.flush_stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.flush_task.take() {
            let _ = task.await;
        }
        flush_all(&self.aggregator, &*self.sink, &self.log_sink).await;
        tracing::info!(local_addr = %self.local_addr, "dogstatsd stopped");
    }
}

impl Drop for StatsdReceiver {
    fn drop(&mut self) {
        // Without `shutdown`, still let the threads and the flush task end.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(task) = self.flush_task.take() {
            task.abort();
        }
    }
}

/// One flush tick: the aggregated metrics to `sink` and, when there is a log sink, the queued events and
/// service checks to it, concurrently. Errors are logged and counted by `flush` and `flush_events`.
async fn flush_all(aggregator: &Aggregator, sink: &dyn BatchSink, log_sink: &SharedLogSink) {
    let now = SystemTime::now();
    let log_sink = log_sink.lock().clone();
    let events = async {
        if let Some(log_sink) = log_sink {
            let _ = aggregator.flush_events(&*log_sink, now).await;
        }
    };
    let _ = tokio::join!(aggregator.flush(sink, now), events);
}

/// Creates the UDP socket: receive buffer, drop counter in control messages, wake-up timeout, bound.
fn bind(addr: SocketAddr, cfg: &StatsdConfig) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    set_recv_buffer(&socket, cfg.recv_buffer_bytes);
    if let Err(e) = set_int_opt(socket.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1) {
        tracing::warn!(
            "dogstatsd: cannot enable SO_RXQ_OVFL, kernel drops will not be counted: {e}"
        );
    }
    socket.set_read_timeout(Some(RECV_TIMEOUT))?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

fn set_int_opt(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> std::io::Result<()> {
    // SAFETY: `fd` is an open socket and the option value is a c_int that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Asks for `bytes` of receive buffer: `SO_RCVBUFFORCE` (needs CAP_NET_ADMIN) first, then `SO_RCVBUF`.
fn set_recv_buffer(socket: &Socket, bytes: usize) {
    let want = bytes.min(i32::MAX as usize / 2) as libc::c_int;
    if set_int_opt(
        socket.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        want,
    )
    .is_err()
    {
        if let Err(e) = socket.set_recv_buffer_size(want as usize) {
            tracing::warn!("dogstatsd: cannot set the receive buffer to {bytes} bytes: {e}");
        }
    }
    // Linux reports twice the size asked for (bookkeeping overhead included).
    if let Ok(got) = socket.recv_buffer_size() {
        if got < bytes {
            tracing::warn!(
                "dogstatsd: receive buffer is {got} bytes, less than the {bytes} asked for; raise \
                 net.core.rmem_max or run with CAP_NET_ADMIN to avoid drops in bursts"
            );
        }
    }
}

/// One receive thread: reads batches of datagrams until `stop`, then drains what is already queued until
/// the socket is empty or [`DRAIN_DEADLINE`] has passed, whichever comes first.
fn receive_loop(
    socket: &UdpSocket,
    shard: usize,
    aggregator: &Aggregator,
    cfg: &StatsdConfig,
    stop: &AtomicBool,
    last_drops: &AtomicU32,
) {
    let fd = socket.as_raw_fd();
    let mut bufs: Vec<Vec<u8>> = (0..cfg.batch_size)
        .map(|_| vec![0u8; cfg.max_datagram_bytes])
        .collect();
    let mut headers =
        MultiHeaders::<SockaddrStorage>::preallocate(cfg.batch_size, Some(nix::cmsg_space!(u32)));
    let mut received: Vec<(usize, bool)> = Vec::with_capacity(cfg.batch_size);
    let metrics = aggregator.metrics();
    // When draining: the time by which to return even if datagrams are still arriving.
    let mut drain_until: Option<Instant> = None;
    loop {
        match drain_until {
            None if stop.load(Ordering::Relaxed) => {
                drain_until = Some(Instant::now() + DRAIN_DEADLINE);
            }
            Some(deadline) if Instant::now() >= deadline => {
                tracing::debug!(
                    shard,
                    "dogstatsd: stopped draining after {DRAIN_DEADLINE:?}; datagrams still queued \
                     are dropped"
                );
                return;
            }
            _ => {}
        }
        let draining = drain_until.is_some();
        let flags = if draining {
            MsgFlags::MSG_DONTWAIT
        } else {
            MsgFlags::MSG_WAITFORONE
        };
        received.clear();
        let mut drops = None;
        {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
                bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            match recvmmsg(fd, &mut headers, iovs.iter_mut(), flags, None) {
                Ok(results) => {
                    for r in results {
                        received.push((r.bytes, r.flags.contains(MsgFlags::MSG_TRUNC)));
                        if let Ok(cmsgs) = r.cmsgs() {
                            for c in cmsgs {
                                if let ControlMessageOwned::RxqOvfl(n) = c {
                                    drops = Some(n);
                                }
                            }
                        }
                    }
                }
                Err(Errno::EAGAIN | Errno::EINTR) if !draining => continue,
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!("dogstatsd receive failed: {e}");
                    if draining {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
        }
        if let Some(n) = drops {
            // The kernel reports the socket's drop count so far; count what is new since any thread's last look.
            let before = last_drops.fetch_max(n, Ordering::Relaxed);
            if n > before {
                metrics.dropped.inc_by(u64::from(n - before));
            }
        }
        if received.is_empty() {
            if draining {
                return;
            }
            continue;
        }
        metrics.datagrams.inc_by(received.len() as u64);
        let now = SystemTime::now();
        for (buf, &(len, truncated)) in bufs.iter().zip(&received) {
            let mut data = &buf[..len.min(buf.len())];
            if truncated {
                aggregator.count_error(&ParseError::Truncated {
                    max: cfg.max_datagram_bytes,
                });
                let end = data.iter().rposition(|b| *b == b'\n').unwrap_or(0);
                data = &data[..end];
            }
            aggregator.ingest(shard, data, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use sightline_model::{MemorySink, MetricKind, Value};

    fn total(sink: &MemorySink, name: &str) -> f64 {
        let batches = sink.batches.lock().unwrap();
        batches
            .iter()
            .flat_map(|b| &b.points)
            .filter(|p| p.series.name == name)
            .map(|p| match &p.value {
                Value::Scalar(v) => *v,
                Value::Sketch(s) => s.count() as f64,
            })
            .sum()
    }

    #[tokio::test]
    async fn loopback_end_to_end() {
        let sink = Arc::new(MemorySink::default());
        let mut registry = Registry::default();
        let cfg = StatsdConfig {
            threads: 2,
            batch_size: 4,
            ..StatsdConfig::default()
        };
        let addr = "127.0.0.1:0".parse().unwrap();
        let rx = StatsdReceiver::start(addr, cfg, Limits::default(), sink.clone(), &mut registry)
            .unwrap();
        let bound = rx.local_addr();
        assert_ne!(bound.port(), 0);

        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..10 {
            client
                .send_to(b"hits:1|c|#env:test\nlat:5|ms", bound)
                .unwrap();
        }
        client
            .send_to(
                b"hits:2|c|@0.5\nbroken:x|c\ntemp:21.5|g\n_e{2,2}:hi|yo",
                bound,
            )
            .unwrap();
        // A datagram longer than max_datagram_bytes keeps its complete lines.
        let mut long = b"hits:1|c\n".to_vec();
        long.extend(std::iter::repeat_n(b'x', 9000));
        client.send_to(&long, bound).unwrap();

        // Datagrams sent on loopback are already queued: shutdown drains them before the final flush.
        rx.shutdown().await;

        assert_eq!(total(&sink, "hits"), 10.0 + 4.0 + 1.0);
        assert_eq!(total(&sink, "lat"), 10.0);
        assert_eq!(total(&sink, "temp"), 21.5);
        let batches = sink.batches.lock().unwrap();
        let kinds: Vec<_> = batches
            .iter()
            .flat_map(|b| &b.points)
            .map(|p| (p.series.name.as_str(), p.kind))
            .collect();
        assert!(kinds.contains(&("hits", MetricKind::Rate)), "{kinds:?}");
        assert!(kinds.contains(&("lat", MetricKind::Histogram)), "{kinds:?}");

        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("sightline_statsd_parse_errors_total{reason=\"bad_value\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sightline_statsd_parse_errors_total{reason=\"truncated\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sightline_statsd_datagrams_total 12"),
            "{text}"
        );
        assert!(text.contains("sightline_statsd_lines_total 25"), "{text}");
        assert!(
            text.contains("sightline_statsd_events_total{type=\"event\"} 1"),
            "{text}"
        );
        assert!(text.contains("sightline_statsd_dropped_total 0"), "{text}");
    }

    #[tokio::test]
    async fn events_and_service_checks_reach_the_log_sink() {
        let sink = Arc::new(MemorySink::default());
        let logs = Arc::new(MemorySink::default());
        let mut registry = Registry::default();
        let cfg = StatsdConfig {
            flush_interval_ms: 20,
            ..StatsdConfig::default()
        };
        let addr = "127.0.0.1:0".parse().unwrap();
        let rx = StatsdReceiver::start(addr, cfg, Limits::default(), sink.clone(), &mut registry)
            .unwrap()
            .with_log_sink(logs.clone());
        let bound = rx.local_addr();
        let aggregator = rx.aggregator().clone();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .send_to(
                b"_e{12,10}:disk is full|sda1 at 99|h:web-1|p:low|t:warning|#env:prod,Team:ops\n\
                  m:1|c\n_sc|db.up|2|d:1700000000|h:db-1|#role:db|m:connection refused",
                bound,
            )
            .unwrap();
        // Written by a periodic flush, without waiting for shutdown.
        let waited = Instant::now();
        while logs.logs.lock().unwrap().is_empty() {
            assert!(
                waited.elapsed() < Duration::from_secs(5),
                "no events written"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        client.send_to(b"_sc|late|0", bound).unwrap();
        rx.shutdown().await;

        let records: Vec<_> = logs
            .logs
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b.records.clone())
            .collect();
        assert_eq!(records.len(), 3, "{records:?}");
        let ev = &records[0];
        assert_eq!(ev.source.as_deref(), Some("event"));
        assert_eq!(ev.message, "disk is full\nsda1 at 99");
        assert_eq!(ev.status, "warning");
        assert_eq!(ev.host.as_deref(), Some("web-1"));
        assert_eq!(ev.tags, ["env:prod", "team:ops"]);
        assert_eq!(ev.attributes["priority"], "low");
        let sc = &records[1];
        assert_eq!(sc.source.as_deref(), Some("service_check"));
        assert_eq!(sc.message, "connection refused");
        assert_eq!(sc.status, "critical");
        assert_eq!(sc.ts_ns, 1_700_000_000_000_000_000);
        assert_eq!(sc.attributes["check"], "db.up");
        assert_eq!(records[2].message, "late: OK");
        assert_eq!(total(&sink, "m"), 1.0);
        // Written, so no longer queued.
        assert!(aggregator.take_events().is_empty());
    }

    /// Sets the flag when dropped, so the sender threads stop even when an assertion fails.
    struct StopOnDrop(Arc<AtomicBool>);

    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn shutdown_returns_under_steady_traffic() {
        const LINES: usize = 50;
        let sink = Arc::new(MemorySink::default());
        let mut registry = Registry::default();
        let cfg = StatsdConfig {
            threads: 1,
            batch_size: 8,
            flush_interval_ms: 50,
            ..StatsdConfig::default()
        };
        let addr = "127.0.0.1:0".parse().unwrap();
        let rx = StatsdReceiver::start(addr, cfg, Limits::default(), sink.clone(), &mut registry)
            .unwrap();
        let bound = rx.local_addr();
        let aggregator = rx.aggregator().clone();

        // Several senders, each datagram many lines: the receiver cannot empty the socket.
        let stop = Arc::new(AtomicBool::new(false));
        let _stop_senders = StopOnDrop(stop.clone());
        let datagram = "blast:1|c|#env:test\n".repeat(LINES);
        let senders: Vec<_> = (0..4)
            .map(|_| {
                let (stop, datagram) = (stop.clone(), datagram.clone());
                std::thread::spawn(move || {
                    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
                    let give_up = Instant::now() + Duration::from_secs(10);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
                        // Errors (a full buffer, the receiver gone) do not matter here.
                        let _ = client.send_to(datagram.as_bytes(), bound);
                    }
                })
            })
            .collect();
        // Let traffic build up (and a few periodic flushes happen) before asking to stop.
        let waited = Instant::now();
        while aggregator.metrics().datagrams.get() < 100 {
            assert!(
                waited.elapsed() < Duration::from_secs(5),
                "no traffic received"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;

        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(2), rx.shutdown())
            .await
            .unwrap_or_else(|_| panic!("shutdown did not return within 2 s under steady traffic"));
        let took = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        for s in senders {
            s.join().unwrap();
        }

        // Everything received was written, by the periodic flushes or the final one.
        let received = aggregator.metrics().datagrams.get();
        assert!(received >= 100, "received {received}");
        assert_eq!(total(&sink, "blast"), (received as usize * LINES) as f64);
        assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    }

    #[test]
    fn kernel_drops_are_counted() {
        let cfg = StatsdConfig {
            recv_buffer_bytes: 4096,
            ..StatsdConfig::default()
        };
        let socket = bind("127.0.0.1:0".parse().unwrap(), &cfg).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let line = format!("fill:1|c|#pad:{}", "x".repeat(900));
        for _ in 0..200 {
            client
                .send_to(line.as_bytes(), socket.local_addr().unwrap())
                .unwrap();
        }
        let aggregator = Aggregator::new(1, Limits::default(), StatsdMetrics::default());
        // Already stopped: the loop only drains what is queued, then returns.
        let stop = AtomicBool::new(true);
        let last_drops = AtomicU32::new(0);
        receive_loop(&socket, 0, &aggregator, &cfg, &stop, &last_drops);
        // The kernel reports the drop count on datagrams queued after the drops.
        client
            .send_to(b"late:1|c", socket.local_addr().unwrap())
            .unwrap();
        receive_loop(&socket, 0, &aggregator, &cfg, &stop, &last_drops);
        let m = aggregator.metrics();
        let (received, dropped) = (m.datagrams.get(), m.dropped.get());
        assert!(
            received > 0 && dropped > 0,
            "received {received}, dropped {dropped}"
        );
        assert_eq!(received + dropped, 201);
    }

    #[tokio::test]
    async fn bad_config_and_busy_port_are_errors() {
        let sink: Arc<dyn BatchSink> = Arc::new(MemorySink::default());
        let mut registry = Registry::default();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let cfg = StatsdConfig {
            max_datagram_bytes: 70_000,
            ..StatsdConfig::default()
        };
        let e = StatsdReceiver::start(addr, cfg, Limits::default(), sink.clone(), &mut registry)
            .err()
            .unwrap();
        assert!(e.to_string().contains("max_datagram_bytes is 70000"), "{e}");

        let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
        let busy = taken.local_addr().unwrap();
        let e = StatsdReceiver::start(
            busy,
            StatsdConfig::default(),
            Limits::default(),
            sink,
            &mut registry,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains(&busy.to_string()), "{e}");
    }

    #[test]
    fn config_defaults_and_unknown_keys() {
        let cfg: StatsdConfig = serde_json::from_str(r#"{"threads": 4}"#).unwrap();
        assert_eq!(
            cfg,
            StatsdConfig {
                threads: 4,
                ..StatsdConfig::default()
            }
        );
        let e = serde_json::from_str::<StatsdConfig>(r#"{"thread": 4}"#).unwrap_err();
        assert!(e.to_string().contains("thread"), "{e}");
        StatsdConfig::default().validate().unwrap();
    }
}

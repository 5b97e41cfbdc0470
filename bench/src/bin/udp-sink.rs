//! The ceilings for DogStatsD ingest: a bare `recvmmsg` receiver on one thread that counts lines
//! (`--mode count`) or also parses name, tags and value minimally and aggregates per series in a hash map
//! (`--mode aggregate`). Prints JSON totals on SIGTERM/SIGINT or after an idle timeout.

use clap::{Parser, ValueEnum};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Count datagrams and lines only.
    Count,
    /// Also parse each line and aggregate per series (name + tags) in a hash map.
    Aggregate,
}

#[derive(Parser, Debug)]
#[command(name = "udp-sink", about = "recvmmsg ceiling sink for DogStatsD load")]
struct Args {
    /// Address to bind, host:port (UDP).
    #[arg(long, default_value = "127.0.0.1:18125")]
    listen: String,
    #[arg(long, value_enum, default_value_t = Mode::Count)]
    mode: Mode,
    /// Receive buffer to ask for (SO_RCVBUF; the kernel doubles it, capped by net.core.rmem_max).
    #[arg(long, default_value_t = 8 << 20)]
    rcvbuf: usize,
    /// Datagrams per recvmmsg call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Stop after this many seconds without a datagram, once the first one arrived (0 = never).
    #[arg(long, default_value_t = 0.0)]
    idle_timeout: f64,
    /// Stop after this many seconds in any case (a bound for unattended runs).
    #[arg(long, default_value_t = 3600.0)]
    max_seconds: f64,
    /// Write the bound address to this file once listening.
    #[arg(long)]
    ready_file: Option<std::path::PathBuf>,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// FxHash-style hasher: a strong ceiling needs a fast hash, not a DoS-resistant one.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// What the aggregating sink keeps per series.
enum Agg {
    Counter(f64),
    Gauge(f64),
    Timer {
        count: u64,
        sum: f64,
        min: f64,
        max: f64,
    },
}

type Table = HashMap<Box<[u8]>, Agg, BuildHasherDefault<FxHasher>>;

#[derive(Default)]
struct Totals {
    datagrams: u64,
    bytes: u64,
    lines: u64,
    bad_lines: u64,
    counter_sum: f64,
}

/// Parses `name:value|type[|@rate][|#tags]...` minimally and folds it into the table.
fn aggregate(line: &[u8], table: &mut Table, totals: &mut Totals) {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        totals.bad_lines += 1;
        return;
    };
    let rest = &line[colon + 1..];
    let Some(bar) = rest.iter().position(|&b| b == b'|') else {
        totals.bad_lines += 1;
        return;
    };
    let value: f64 = match std::str::from_utf8(&rest[..bar])
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(v) => v,
        None => {
            totals.bad_lines += 1;
            return;
        }
    };
    let after = &rest[bar + 1..];
    let ty_end = after.iter().position(|&b| b == b'|').unwrap_or(after.len());
    let ty = &after[..ty_end];
    let mut rate = 1.0;
    let mut tags: &[u8] = &[];
    for field in after[ty_end..].split(|&b| b == b'|') {
        match field.first() {
            Some(b'@') => {
                rate = std::str::from_utf8(&field[1..])
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .filter(|r| *r > 0.0)
                    .unwrap_or(1.0)
            }
            Some(b'#') => tags = &field[1..],
            _ => {}
        }
    }
    // The series key: name, a separator, the tags as sent (the load generator sends each series' tags in
    // one fixed order, so no sorting is needed for a correct count).
    let mut key = [0u8; 512];
    let klen = colon + 1 + tags.len();
    let heap;
    let key: &[u8] = if klen <= key.len() {
        key[..colon].copy_from_slice(&line[..colon]);
        key[colon] = b'|';
        key[colon + 1..klen].copy_from_slice(tags);
        &key[..klen]
    } else {
        heap = [&line[..colon], b"|", tags].concat();
        &heap
    };
    let fold = |agg: &mut Agg| match agg {
        Agg::Counter(c) => *c += value / rate,
        Agg::Gauge(g) => *g = value,
        Agg::Timer {
            count,
            sum,
            min,
            max,
        } => {
            *count += 1;
            *sum += value;
            *min = min.min(value);
            *max = max.max(value);
        }
    };
    if ty == b"c" {
        totals.counter_sum += value / rate;
    }
    match table.get_mut(key) {
        Some(agg) => fold(agg),
        None => {
            let agg = match ty {
                b"c" => Agg::Counter(value / rate),
                b"g" => Agg::Gauge(value),
                b"ms" | b"h" | b"d" => Agg::Timer {
                    count: 1,
                    sum: value,
                    min: value,
                    max: value,
                },
                _ => {
                    totals.bad_lines += 1;
                    return;
                }
            };
            table.insert(key.into(), agg);
        }
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("udp-sink: {e}");
        std::process::exit(1);
    }
}

fn bind(addr: SocketAddr, rcvbuf: usize) -> std::io::Result<(i32, usize, SocketAddr)> {
    let sock = std::net::UdpSocket::bind(addr)?;
    let local = sock.local_addr()?;
    use std::os::fd::IntoRawFd;
    let fd = sock.into_raw_fd();
    let want = rcvbuf.min(i32::MAX as usize) as libc::c_int;
    let mut got: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: setsockopt/getsockopt on a descriptor we own, with correctly sized option values.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &want as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &timeout as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &mut got as *mut _ as *mut libc::c_void,
            &mut len,
        );
    }
    Ok((fd, got.max(0) as usize, local))
}

fn run(args: &Args) -> Result<(), String> {
    let addr = args
        .listen
        .to_socket_addrs()
        .map_err(|e| format!("bad --listen {}: {e}", args.listen))?
        .next()
        .ok_or_else(|| format!("--listen {} resolves to nothing", args.listen))?;
    let (fd, rcvbuf, local) =
        bind(addr, args.rcvbuf).map_err(|e| format!("cannot bind {addr}: {e}"))?;
    // SAFETY: installing async-signal-safe handlers (they only store to an atomic).
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    if let Some(f) = &args.ready_file {
        std::fs::write(f, local.to_string()).map_err(|e| format!("{}: {e}", f.display()))?;
    }
    eprintln!(
        "udp-sink: {:?} mode listening on {local}, SO_RCVBUF {rcvbuf}",
        args.mode
    );

    const DGRAM: usize = 65536;
    let batch = args.batch.clamp(1, 1024);
    let mut bufs = vec![0u8; batch * DGRAM];
    let mut iovecs: Vec<libc::iovec> = bufs
        .chunks_exact_mut(DGRAM)
        .map(|c| libc::iovec {
            iov_base: c.as_mut_ptr() as *mut libc::c_void,
            iov_len: DGRAM,
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iovecs
        .iter_mut()
        .map(|iov| {
            // SAFETY: msghdr is plain old data; zero is a valid "no name, no control" header.
            let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
            hdr.msg_iov = iov as *mut libc::iovec;
            hdr.msg_iovlen = 1;
            libc::mmsghdr {
                msg_hdr: hdr,
                msg_len: 0,
            }
        })
        .collect();

    let mut totals = Totals::default();
    let mut table = Table::default();
    let start = Instant::now();
    let max = Duration::from_secs_f64(args.max_seconds.max(0.0));
    let idle = Duration::from_secs_f64(args.idle_timeout.max(0.0));
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    while !STOP.load(Ordering::Relaxed) && start.elapsed() < max {
        // SAFETY: every header points at its own DGRAM-sized slice of `bufs`, which outlives the call.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                batch as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if r <= 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => {
                    if first.is_some() && !idle.is_zero() && last.elapsed() >= idle {
                        break;
                    }
                    continue;
                }
                _ => return Err(format!("recvmmsg: {e}")),
            }
        }
        last = Instant::now();
        first.get_or_insert(last);
        for m in &msgs[..r as usize] {
            let len = m.msg_len as usize;
            // SAFETY: the kernel filled `len` bytes of this message's buffer.
            let data = unsafe {
                std::slice::from_raw_parts(m.msg_hdr.msg_iov.read().iov_base as *const u8, len)
            };
            totals.datagrams += 1;
            totals.bytes += len as u64;
            match args.mode {
                Mode::Count => {
                    if len > 0 {
                        let nl = data.iter().filter(|&&b| b == b'\n').count() as u64;
                        totals.lines += nl + u64::from(data[len - 1] != b'\n');
                    }
                }
                Mode::Aggregate => {
                    for line in data.split(|&b| b == b'\n') {
                        if !line.is_empty() {
                            totals.lines += 1;
                            aggregate(line, &mut table, &mut totals);
                        }
                    }
                }
            }
        }
    }
    let busy = match first {
        Some(f) => last.duration_since(f).as_secs_f64(),
        None => 0.0,
    };
    // SAFETY: closing the descriptor we own.
    unsafe { libc::close(fd) };
    let out = serde_json::json!({
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "listen": local.to_string(),
        "rcvbuf": rcvbuf,
        "datagrams": totals.datagrams,
        "bytes": totals.bytes,
        "lines": totals.lines,
        "bad_lines": totals.bad_lines,
        "series": table.len(),
        "counter_sum": totals.counter_sum,
        "first_to_last_s": busy,
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{out}").map_err(|e| e.to_string())?;
    Ok(())
}

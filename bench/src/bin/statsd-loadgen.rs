//! DogStatsD load generator: pre-generates a pool of packed ~1400-byte datagrams (60% counters, 30%
//! timers/distributions, 10% gauges, 3-5 tags per series) and sends them with `sendmmsg` to one UDP
//! address, flat out or at a fixed line rate, for a fixed time. Prints exact JSON totals on stdout.

use clap::Parser;
use sightline_bench::Rng;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "statsd-loadgen",
    about = "DogStatsD load generator (sendmmsg, packed datagrams)"
)]
struct Args {
    /// Where to send, host:port (UDP).
    #[arg(long, default_value = "127.0.0.1:8125")]
    target: String,
    /// Distinct series (metric name + tag set).
    #[arg(long, default_value_t = 10_000)]
    series: u32,
    /// Line rate to hold, lines per second; 0 sends flat out.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// How long to send, seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Largest datagram payload, bytes; lines are packed up to this size.
    #[arg(long, default_value_t = 1400)]
    datagram_bytes: usize,
    /// Datagrams per sendmmsg call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Least lines in the pre-generated pool (it always holds every series at least once).
    #[arg(long, default_value_t = 400_000)]
    min_pool_lines: usize,
    /// Metric name prefix.
    #[arg(long, default_value = "slbench")]
    prefix: String,
    /// Metric names per metric type (series are spread over them); 0 = one per 10k series, at least 20
    /// (so no name has more than ~6k series: a query reads at most 10k series per metric by default).
    #[arg(long, default_value_t = 0)]
    names_per_type: u32,
    /// Seed of the deterministic generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only build the pool and print its shape; send nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Line kinds, in the order of the per-datagram counts.
const KINDS: [&str; 4] = ["counter", "gauge", "timer", "distribution"];
const COUNTER: usize = 0;
const GAUGE: usize = 1;
const TIMER: usize = 2;
const DISTRIBUTION: usize = 3;

/// The kind of series `i`: 6 in 10 counters, 3 in 10 timers/distributions (half each), 1 in 10 gauges.
fn kind_of(i: u32) -> usize {
    match i % 10 {
        0..=5 => COUNTER,
        6 => TIMER,
        7 => DISTRIBUTION,
        8 => {
            if (i / 10) & 1 == 0 {
                TIMER
            } else {
                DISTRIBUTION
            }
        }
        _ => GAUGE,
    }
}

/// One series: its kind and the text of its line without the value (`name:` and `|type|#tags`).
struct Series {
    kind: usize,
    head: String,
    tail: String,
}

/// Metric names per type, after resolving the automatic default.
fn names_per_type(args: &Args) -> u32 {
    match args.names_per_type {
        0 => (args.series / 10_000).max(20),
        n => n,
    }
}

fn build_series(args: &Args) -> Vec<Series> {
    let mut per_kind = [0u32; 4];
    let k = names_per_type(args);
    (0..args.series)
        .map(|i| {
            let kind = kind_of(i);
            let j = per_kind[kind];
            per_kind[kind] += 1;
            let (tname, ty) = match kind {
                COUNTER => ("count", "c"),
                GAUGE => ("gauge", "g"),
                TIMER => ("timer", "ms"),
                _ => ("dist", "d"),
            };
            let name = format!("{}.{}.{}", args.prefix, tname, j % k);
            let env = ["prod", "staging", "dev"][(i % 3) as usize];
            let mut tags = format!("host:h{},env:{},service:svc{}", j / k, env, i % 37);
            if i % 3 != 0 {
                tags.push_str(&format!(",region:r{}", i % 7));
            }
            if i % 3 == 2 {
                tags.push_str(&format!(",az:az{}", i % 5));
            }
            Series {
                kind,
                head: format!("{name}:"),
                tail: format!("|{ty}|#{tags}"),
            }
        })
        .collect()
}

/// The datagram pool: payload bytes, each datagram's byte range and per-kind line counts.
struct Pool {
    bytes: Vec<u8>,
    ranges: Vec<(usize, usize)>,
    counts: Vec<[u32; 4]>,
    /// Datagrams of the first pass (every series exactly once, in a shuffled order).
    first_pass_datagrams: usize,
}

fn build_pool(args: &Args, series: &[Series]) -> Pool {
    let mut rng = Rng(args.seed);
    let mut pool = Pool {
        bytes: Vec::new(),
        ranges: Vec::new(),
        counts: Vec::new(),
        first_pass_datagrams: 0,
    };
    let mut order: Vec<u32> = (0..series.len() as u32).collect();
    let mut lines = 0usize;
    let mut line = String::with_capacity(256);
    let mut pass = 0;
    while lines < args.min_pool_lines.max(series.len()) {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut start = pool.bytes.len();
        let mut counts = [0u32; 4];
        for &s in &order {
            let s = &series[s as usize];
            line.clear();
            line.push_str(&s.head);
            match s.kind {
                COUNTER => line.push('1'),
                GAUGE => line.push_str(&format!("{:.2}", rng.unit() * 1000.0)),
                // Log-normal-ish latencies between ~0.1 ms and ~20 s.
                _ => line.push_str(&format!("{:.3}", 0.1 * (rng.unit() * 12.0).exp())),
            }
            line.push_str(&s.tail);
            let len_now = pool.bytes.len() - start;
            if len_now > 0 && len_now + 1 + line.len() > args.datagram_bytes {
                pool.ranges.push((start, pool.bytes.len()));
                pool.counts.push(counts);
                counts = [0; 4];
                start = pool.bytes.len();
            }
            if pool.bytes.len() > start {
                pool.bytes.push(b'\n');
            }
            pool.bytes.extend_from_slice(line.as_bytes());
            counts[s.kind] += 1;
            lines += 1;
        }
        if pool.bytes.len() > start {
            pool.ranges.push((start, pool.bytes.len()));
            pool.counts.push(counts);
        }
        if pass == 0 {
            pool.first_pass_datagrams = pool.ranges.len();
        }
        pass += 1;
        if series.is_empty() {
            break;
        }
    }
    pool
}

fn socket_to(target: SocketAddr) -> std::io::Result<i32> {
    let (family, storage, len) = sockaddr(target);
    // SAFETY: plain socket calls on a descriptor we own; `storage` outlives the connect call.
    unsafe {
        let fd = libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let sndbuf: libc::c_int = 8 << 20;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &sndbuf as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        if libc::connect(fd, &storage as *const _ as *const libc::sockaddr, len) != 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(fd)
    }
}

fn sockaddr(a: SocketAddr) -> (i32, libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match a {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            (
                libc::AF_INET,
                storage,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            (
                libc::AF_INET6,
                storage,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("statsd-loadgen: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let target = args
        .target
        .to_socket_addrs()
        .map_err(|e| format!("bad --target {}: {e}", args.target))?
        .next()
        .ok_or_else(|| format!("--target {} resolves to nothing", args.target))?;
    let t_build = Instant::now();
    let series = build_series(args);
    let pool = build_pool(args, &series);
    drop(series);
    let build_s = t_build.elapsed().as_secs_f64();
    let pool_lines: u64 = pool
        .counts
        .iter()
        .map(|c| c.iter().map(|&x| x as u64).sum::<u64>())
        .sum();
    eprintln!(
        "statsd-loadgen: pool of {} datagrams, {} lines, {:.1} MB, avg {:.0} B/datagram, built in {:.2}s",
        pool.ranges.len(),
        pool_lines,
        pool.bytes.len() as f64 / 1e6,
        pool.bytes.len() as f64 / pool.ranges.len().max(1) as f64,
        build_s
    );

    let n = pool.ranges.len();
    let mut sent_counts = [0u64; 4];
    let mut datagrams = 0u64;
    let mut bytes = 0u64;
    let mut send_errors = 0u64;
    let mut calls = 0u64;
    let mut elapsed = 0.0;
    if !args.dry_run && n > 0 {
        let fd = socket_to(target).map_err(|e| format!("cannot open a socket to {target}: {e}"))?;
        let mut iovecs: Vec<libc::iovec> = pool
            .ranges
            .iter()
            .map(|&(s, e)| libc::iovec {
                iov_base: pool.bytes[s..].as_ptr() as *mut libc::c_void,
                iov_len: e - s,
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
        let batch = args.batch.clamp(1, 1024);
        let duration = Duration::from_secs_f64(args.duration.max(0.0));
        let start = Instant::now();
        let mut lines_sent = 0u64;
        let mut pos = 0usize;
        loop {
            let now = start.elapsed();
            if now >= duration {
                break;
            }
            if args.rate > 0 {
                // Hold the rate: wait until the lines already sent are due.
                let due = Duration::from_secs_f64(lines_sent as f64 / args.rate as f64);
                if due > now {
                    let ahead = due - now;
                    if ahead > Duration::from_micros(200) {
                        std::thread::sleep(ahead.min(duration.saturating_sub(now)));
                    }
                    continue;
                }
            }
            let take = batch.min(n - pos);
            // SAFETY: `msgs[pos..pos + take]` are valid headers pointing into `pool.bytes`, which outlives
            // the call; the kernel writes only `msg_len`.
            let r =
                unsafe { libc::sendmmsg(fd, msgs[pos..].as_mut_ptr(), take as libc::c_uint, 0) };
            calls += 1;
            if r < 0 {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    // Loopback refuses (no listener yet) or is short of buffers: count and go on.
                    Some(libc::ECONNREFUSED) | Some(libc::ENOBUFS) | Some(libc::EAGAIN) => {
                        send_errors += 1;
                        pos = (pos + 1) % n;
                        continue;
                    }
                    _ => return Err(format!("sendmmsg to {target}: {e}")),
                }
            }
            for k in pos..pos + r as usize {
                let c = &pool.counts[k];
                for t in 0..4 {
                    sent_counts[t] += c[t] as u64;
                }
                lines_sent += c.iter().map(|&x| x as u64).sum::<u64>();
                bytes += (pool.ranges[k].1 - pool.ranges[k].0) as u64;
            }
            datagrams += r as u64;
            pos = (pos + r as usize) % n;
        }
        elapsed = start.elapsed().as_secs_f64();
        // SAFETY: closing the descriptor we opened.
        unsafe { libc::close(fd) };
    }

    let lines: u64 = sent_counts.iter().sum();
    // The first pass holds every series once, in order: fewer lines than series means fewer active series.
    let active_series = if datagrams as usize >= pool.first_pass_datagrams {
        args.series as u64
    } else {
        lines.min(args.series as u64)
    };
    let names_per_type = names_per_type(args);
    let counter_series = (0..args.series).filter(|&i| kind_of(i) == COUNTER).count() as u32;
    let counter_names: Vec<String> = (0..names_per_type.min(counter_series))
        .map(|k| format!("{}.count.{k}", args.prefix))
        .collect();
    let mut by_kind = serde_json::Map::new();
    for (t, k) in KINDS.iter().enumerate() {
        by_kind.insert(k.to_string(), sent_counts[t].into());
    }
    let out = serde_json::json!({
        "target": target.to_string(),
        "series": args.series,
        "active_series": active_series,
        "metric_names": names_per_type * 4,
        "rate_target": args.rate,
        "duration_s": elapsed,
        "datagrams": datagrams,
        "bytes": bytes,
        "lines": lines,
        "lines_by_type": by_kind,
        "counter_sum": sent_counts[COUNTER],
        "counter_metrics": counter_names,
        "send_errors": send_errors,
        "sendmmsg_calls": calls,
        "lines_per_s": if elapsed > 0.0 { lines as f64 / elapsed } else { 0.0 },
        "pool_datagrams": n,
        "pool_lines": pool_lines,
        "avg_datagram_bytes": pool.bytes.len() as f64 / n.max(1) as f64,
        "pool_build_s": build_s,
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{out}").map_err(|e| e.to_string())?;
    Ok(())
}

//! Log benchmark load generator: `gen` writes a deterministic corpus of 100-300-byte log lines (JSON or plain
//! text, with a unique request id per line, a rare token every 100k lines and a common vocabulary); `tcp` sends
//! a corpus file as raw newline-framed lines over several TCP connections to the syslog port; `http` posts it
//! to `POST /api/v2/logs` (JSON arrays or `text/plain` bodies of `--batch` lines) from several clients. Both
//! senders then poll the search API until the last line of every connection/client is searchable and print
//! one JSON object with exact totals and timings on stdout.

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use sightline_bench::Rng;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser, Debug)]
#[command(
    name = "log-loadgen",
    about = "Log corpus generator and TCP/HTTP log senders"
)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Flavour {
    Json,
    Plain,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Writes a corpus file and prints its statistics as JSON.
    Gen {
        #[arg(long, value_enum)]
        flavour: Flavour,
        /// Lines to write.
        #[arg(long)]
        lines: u64,
        /// Timestamp of the first line, unix ms (lines then span at most 20 h).
        #[arg(long)]
        start_ms: i64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long)]
        out: String,
    },
    /// Sends a file as raw lines over TCP, then waits until the last lines are searchable.
    Tcp {
        /// Syslog port address (host:port).
        #[arg(long)]
        target: String,
        /// HTTP address of the server (for the search poll).
        #[arg(long)]
        http: String,
        #[arg(long)]
        file: String,
        /// Connections; the file is cut into this many contiguous chunks at line boundaries.
        #[arg(long, default_value_t = 4)]
        conns: usize,
        /// Give up waiting for searchability after this many seconds.
        #[arg(long, default_value_t = 180.0)]
        poll_timeout: f64,
    },
    /// Posts a file to /api/v2/logs in batches, then waits until the last lines are searchable.
    Http {
        /// HTTP address of the server (host:port).
        #[arg(long)]
        target: String,
        #[arg(long)]
        file: String,
        /// Concurrent clients (one keep-alive connection each).
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Lines per request.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Body format: a JSON array of the lines (JSON corpus) or text/plain, one log per line.
        #[arg(long, value_enum)]
        format: BodyFormat,
        #[arg(long, default_value_t = 180.0)]
        poll_timeout: f64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BodyFormat {
    Json,
    Text,
}

fn main() {
    let args = Args::parse();
    let res = match args.cmd {
        Cmd::Gen {
            flavour,
            lines,
            start_ms,
            seed,
            out,
        } => gen(flavour, lines, start_ms, seed, &out),
        Cmd::Tcp {
            target,
            http,
            file,
            conns,
            poll_timeout,
        } => send_tcp(&target, &http, &file, conns, poll_timeout),
        Cmd::Http {
            target,
            file,
            clients,
            batch,
            format,
            poll_timeout,
        } => send_http(&target, &file, clients, batch, format, poll_timeout),
    };
    if let Err(e) = res {
        eprintln!("log-loadgen: {e}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

// ---- corpus -------------------------------------------------------------------------------------------

/// The token put in one line of every 100,000 (line index % 100,000 == 50,000).
const RARE_TOKEN: &str = "zebrafault";
const RARE_EVERY: u64 = 100_000;
const RARE_OFFSET: u64 = 50_000;
/// Lines span at most this long.
const SPAN_MS: i64 = 20 * 3600 * 1000;

/// A unique request id for line `i`: a bijection of the index on 52 bits, as 13 hex digits after a letter
/// naming the flavour (`j` or `p`), so ids are unique across both files.
fn request_id(flavour: Flavour, i: u64, seed: u64) -> String {
    const MASK: u64 = (1 << 52) - 1;
    let x = (i.wrapping_mul(0x5DEE_CE66_D1CE_4E5B | 1) & MASK)
        ^ (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) & MASK);
    let p = if flavour == Flavour::Json { 'j' } else { 'p' };
    format!("{p}{x:013x}")
}

const SERVICES: &[&str] = &[
    "checkout",
    "billing",
    "inventory",
    "search",
    "auth",
    "gateway",
    "catalog",
    "shipping",
    "notifier",
    "profile",
    "pricing",
    "ledger",
];
const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE"];
const RESOURCES: &[&str] = &[
    "orders", "users", "carts", "products", "invoices", "sessions",
];
const PROVIDERS: &[&str] = &["google", "github", "saml", "password"];
const REASONS: &[&str] = &[
    "insufficient funds",
    "expired card",
    "fraud suspected",
    "limit exceeded",
];
const TABLES: &[&str] = &[
    "orders",
    "accounts",
    "line items",
    "stock levels",
    "audit events",
];
const JOBS: &[&str] = &[
    "reindex",
    "export",
    "invoice run",
    "cleanup",
    "digest mail",
    "sync",
];
const CURRENCIES: &[&str] = &["usd", "eur", "gbp", "jpy"];
const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

struct Msg {
    text: String,
    status: u16,
    duration: u64,
    url: String,
    level: &'static str,
}

/// One message from the template table (weights in the comments).
fn message(r: &mut Rng) -> Msg {
    let path = format!("/api/v1/{}/{}", r.pick(RESOURCES), r.below(100_000));
    let mut status = 200u16;
    let mut level = "info";
    // Log-normal-ish durations: mostly small, a tail up to a few seconds.
    let d = match r.below(100) {
        0..=59 => 1 + r.below(100),
        60..=89 => 100 + r.below(400),
        90..=97 => 500 + r.below(500),
        _ => 1000 + r.below(4000),
    };
    let svc = r.pick(SERVICES);
    let ip = format!("10.{}.{}.{}", r.below(256), r.below(256), 1 + r.below(254));
    let w = r.below(100);
    let text = match w {
        0..=29 => {
            let code = [200u16, 200, 200, 201, 204, 304, 400, 404, 500, 503][r.below(10) as usize];
            status = code;
            if code >= 500 {
                level = "error";
            } else if code >= 400 {
                level = "warn";
            }
            format!(
                "{} {path} completed in {d} ms status {code}",
                r.pick(METHODS)
            )
        }
        30..=39 => format!(
            "cache miss for key user:{}:profile fetched from origin in {d} ms",
            r.below(1_000_000)
        ),
        40..=47 => format!(
            "user u{} logged in from {ip} via {}",
            r.below(1_000_000),
            r.pick(PROVIDERS)
        ),
        48..=53 => format!(
            "job {} completed {} items in {d} ms",
            r.pick(JOBS),
            r.below(10_000)
        ),
        54..=58 => format!(
            "payment authorized for order o{} amount {}.{:02} {}",
            r.below(10_000_000),
            r.below(2000),
            r.below(100),
            r.pick(CURRENCIES)
        ),
        59 => {
            level = "warn";
            status = 402;
            format!(
                "payment declined for order o{} reason {}",
                r.below(10_000_000),
                r.pick(REASONS)
            )
        }
        60..=61 => {
            level = "warn";
            format!("card declined by issuer for user u{}", r.below(1_000_000))
        }
        62..=63 => {
            level = "error";
            status = 502;
            format!("upstream {svc} connection reset by peer after {d} ms")
        }
        64..=65 => format!(
            "peer {ip} closed the connection after {} requests",
            r.below(500)
        ),
        66..=68 => {
            level = "warn";
            format!("retrying call to {svc} attempt {} of 5", 1 + r.below(4))
        }
        69 => {
            level = "error";
            status = 504;
            format!("retried {} times before giving up on {svc}", 2 + r.below(4))
        }
        70..=75 => format!(
            "query on table {} took {d} ms rows {}",
            r.pick(TABLES),
            r.below(100_000)
        ),
        76..=80 => format!("health check ok for {svc} in {d} ms"),
        81..=84 => format!(
            "scheduled task {} started on worker {}",
            r.pick(JOBS),
            r.below(64)
        ),
        85..=89 => {
            level = "warn";
            format!("slow request detected on {path} took {d} ms threshold 500 ms")
        }
        _ => {
            if r.below(4) == 0 {
                level = "debug";
            }
            format!(
                "session s{} refreshed token for client {ip}",
                r.below(10_000_000)
            )
        }
    };
    Msg {
        text,
        status,
        duration: d,
        url: path,
        level,
    }
}

fn gen(flavour: Flavour, lines: u64, start_ms: i64, seed: u64, out: &str) -> Res<()> {
    let f = std::fs::File::create(out)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let mut r = Rng(seed
        ^ if flavour == Flavour::Json {
            0x4A53
        } else {
            0x504C
        });
    let step = (SPAN_MS / lines.max(1) as i64).max(1);
    let (mut min_len, mut max_len, mut bytes) = (usize::MAX, 0usize, 0u64);
    let mut rare_lines = 0u64;
    let mut line = String::with_capacity(512);
    let mut last_ts = start_ms;
    for i in 0..lines {
        let ts = start_ms + i as i64 * step + r.below(step as u64) as i64;
        last_ts = ts;
        let m = message(&mut r);
        let id = request_id(flavour, i, seed);
        let rare = i % RARE_EVERY == RARE_OFFSET;
        rare_lines += rare as u64;
        let text = if rare {
            format!("{} {RARE_TOKEN} req {id}", m.text)
        } else {
            format!("{} req {id}", m.text)
        };
        let host = format!("web-{:02}", 1 + r.below(40));
        let svc = r.pick(SERVICES);
        line.clear();
        match flavour {
            Flavour::Json => {
                use std::fmt::Write as _;
                write!(
                    line,
                    r#"{{"timestamp":{ts},"level":"{}","service":"{svc}","host":"{host}","message":"{text}","http":{{"status_code":{},"url":"{}"}},"duration_ms":{},"user_id":"u{}"}}"#,
                    m.level,
                    m.status,
                    m.url,
                    m.duration,
                    r.below(1_000_000)
                )?;
            }
            Flavour::Plain => {
                use std::fmt::Write as _;
                // Syslog-ish text without a <PRI>: "Nov 28 10:00:00 web-07 checkout[4312]: INFO [http-nio-8080-exec-3] …".
                let secs = ts.div_euclid(1000);
                let (dd, mon) = day_month(secs);
                let tod = secs.rem_euclid(86_400);
                write!(
                    line,
                    "{} {:>2} {:02}:{:02}:{:02} {host} {svc}[{}]: {} [http-nio-8080-exec-{}] {text}",
                    MONTHS[mon],
                    dd,
                    tod / 3600,
                    tod / 60 % 60,
                    tod % 60,
                    1000 + r.below(30_000),
                    m.level.to_ascii_uppercase(),
                    1 + r.below(32)
                )?;
            }
        }
        line.push('\n');
        min_len = min_len.min(line.len());
        max_len = max_len.max(line.len());
        bytes += line.len() as u64;
        w.write_all(line.as_bytes())?;
    }
    w.flush()?;
    println!(
        "{}",
        json!({"file": out, "flavour": format!("{flavour:?}").to_lowercase(), "lines": lines, "bytes": bytes,
               "min_line_bytes": if lines == 0 { 0 } else { min_len }, "max_line_bytes": max_len,
               "avg_line_bytes": bytes as f64 / lines.max(1) as f64, "first_ts_ms": start_ms, "last_ts_ms": last_ts,
               "rare_token": RARE_TOKEN, "rare_token_lines": rare_lines, "seed": seed})
    );
    Ok(())
}

/// Day of month (1-based) and month index (0-based) of a unix time in seconds (UTC, proleptic Gregorian).
fn day_month(secs: i64) -> (i64, usize) {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (d, (m - 1) as usize)
}

// ---- a minimal HTTP/1.1 client (keep-alive, Content-Length or chunked replies) -------------------------

struct HttpConn {
    addr: String,
    r: Option<BufReader<TcpStream>>,
}

impl HttpConn {
    fn new(addr: &str) -> HttpConn {
        HttpConn {
            addr: addr.to_string(),
            r: None,
        }
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        ctype: &str,
        body: &[u8],
    ) -> Res<(u16, Vec<u8>)> {
        // One retry on a stale keep-alive connection.
        match self.try_request(method, path, ctype, body) {
            Ok(x) => Ok(x),
            Err(_) => {
                self.r = None;
                self.try_request(method, path, ctype, body)
            }
        }
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        ctype: &str,
        body: &[u8],
    ) -> Res<(u16, Vec<u8>)> {
        if self.r.is_none() {
            let s = TcpStream::connect(&self.addr)?;
            s.set_nodelay(true)?;
            self.r = Some(BufReader::with_capacity(64 * 1024, s));
        }
        let r = self.r.as_mut().unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        {
            let s = r.get_mut();
            s.write_all(head.as_bytes())?;
            s.write_all(body)?;
        }
        let mut status_line = String::new();
        if r.read_line(&mut status_line)? == 0 {
            return Err("connection closed".into());
        }
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let (mut len, mut chunked, mut close) = (None, false, false);
        loop {
            let mut h = String::new();
            r.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse::<usize>().ok();
            } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            } else if lower.starts_with("connection:") && lower.contains("close") {
                close = true;
            }
        }
        let mut out = Vec::new();
        if chunked {
            loop {
                let mut sz = String::new();
                r.read_line(&mut sz)?;
                let n = usize::from_str_radix(sz.trim().split(';').next().unwrap_or("0"), 16)?;
                let mut chunk = vec![0u8; n + 2];
                r.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(n) = len {
            out.resize(n, 0);
            r.read_exact(&mut out)?;
        } else {
            r.read_to_end(&mut out)?;
            close = true;
        }
        if close {
            self.r = None;
        }
        Ok((status, out))
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Polls the search API until every id is found (one query `id1 OR id2 …`); returns the seconds waited and
/// the number of polls, or an error after `timeout` s.
fn wait_searchable(http: &str, ids: &[String], timeout: f64) -> Res<(f64, u64)> {
    let t0 = Instant::now();
    let mut c = HttpConn::new(http);
    let mut polls = 0u64;
    let now = now_ms();
    let body =
        json!({"filter": {"query": ids.join(" OR "), "from": (now - 3 * 86_400_000).to_string(),
                                  "to": (now + 86_400_000).to_string()},
                      "sort": "-timestamp", "page": {"limit": 50}})
        .to_string();
    let mut last: String;
    loop {
        polls += 1;
        match c.request(
            "POST",
            "/api/v2/logs/events/search",
            "application/json",
            body.as_bytes(),
        ) {
            Ok((200, b)) => {
                let v: serde_json::Value = serde_json::from_slice(&b)?;
                let n = v["data"].as_array().map(|a| a.len()).unwrap_or(0);
                if n >= ids.len() {
                    return Ok((t0.elapsed().as_secs_f64(), polls));
                }
                last = format!("{n} of {} found", ids.len());
            }
            Ok((s, b)) => last = format!("status {s}: {}", String::from_utf8_lossy(&b)),
            Err(e) => last = e.to_string(),
        }
        if t0.elapsed().as_secs_f64() > timeout {
            return Err(format!("ids not searchable after {timeout} s ({last})").into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The request id of a corpus line: the word after the last "req ".
fn line_id(line: &[u8]) -> Res<String> {
    let s = std::str::from_utf8(line)?;
    let at = s.rfind("req ").ok_or("line without a request id")? + 4;
    Ok(s[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect())
}

/// Byte ranges of the lines of `data` (without the newline).
fn line_ranges(data: &[u8]) -> Vec<(usize, usize)> {
    let mut v = Vec::with_capacity(data.len() / 150);
    let mut start = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            v.push((start, i));
            start = i + 1;
        }
    }
    if start < data.len() {
        v.push((start, data.len()));
    }
    v
}

fn send_tcp(target: &str, http: &str, file: &str, conns: usize, poll_timeout: f64) -> Res<()> {
    let data = Arc::new(std::fs::read(file)?);
    let lines = line_ranges(&data);
    let conns = conns.max(1).min(lines.len().max(1));
    // Chunks of whole lines, about equal in lines.
    let per = lines.len().div_ceil(conns);
    let mut chunks = Vec::new();
    let mut ids = Vec::new();
    for c in 0..conns {
        let a = c * per;
        let b = ((c + 1) * per).min(lines.len());
        if a >= b {
            continue;
        }
        let (s, _) = lines[a];
        let (le_s, le_e) = lines[b - 1];
        let end = (le_e + 1).min(data.len());
        chunks.push((s, end));
        ids.push(line_id(&data[le_s..le_e])?);
    }
    let t0 = Instant::now();
    let handles: Vec<_> = chunks
        .iter()
        .map(|&(s, e)| {
            let data = data.clone();
            let target = target.to_string();
            std::thread::spawn(move || -> Res<(f64, f64)> {
                let mut st = TcpStream::connect(&target)?;
                for piece in data[s..e].chunks(256 * 1024) {
                    st.write_all(piece)?;
                }
                let sent = t0.elapsed().as_secs_f64();
                st.shutdown(Shutdown::Write)?;
                // The server closes after it has read and written everything it got.
                let mut sink = [0u8; 512];
                while st.read(&mut sink)? > 0 {}
                Ok((sent, t0.elapsed().as_secs_f64()))
            })
        })
        .collect();
    let (mut sent, mut closed) = (0f64, 0f64);
    for h in handles {
        let (s, c) = h.join().map_err(|_| "sender thread panicked")??;
        sent = sent.max(s);
        closed = closed.max(c);
    }
    let (wait, polls) = wait_searchable(http, &ids, poll_timeout)?;
    let searchable = t0.elapsed().as_secs_f64();
    let bytes: usize = chunks.iter().map(|(s, e)| e - s).sum();
    println!(
        "{}",
        json!({"transport": "tcp", "file": file, "lines": lines.len(), "bytes": bytes, "connections": chunks.len(),
               "last_sent_s": sent, "acked_s": closed, "searchable_s": searchable,
               "searchable_after_ack_s": wait, "searchable_after_sent_s": searchable - sent, "polls": polls,
               "ids": ids, "ack": "server closed the connection after reading everything (EOF)"})
    );
    Ok(())
}

fn send_http(
    target: &str,
    file: &str,
    clients: usize,
    batch: usize,
    format: BodyFormat,
    poll_timeout: f64,
) -> Res<()> {
    let data = Arc::new(std::fs::read(file)?);
    let lines = Arc::new(line_ranges(&data));
    let batch = batch.max(1);
    let nbatches = lines.len().div_ceil(batch);
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..clients.max(1))
        .map(|_| {
            let (data, lines, next, target) = (
                data.clone(),
                lines.clone(),
                next.clone(),
                target.to_string(),
            );
            std::thread::spawn(move || -> Res<(Option<usize>, u64, u64, u64)> {
                let mut c = HttpConn::new(&target);
                let mut body = Vec::with_capacity(batch * 320);
                let (mut last, mut requests, mut retries, mut raw) = (None, 0u64, 0u64, 0u64);
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= nbatches {
                        break;
                    }
                    let part = &lines[k * batch..((k + 1) * batch).min(lines.len())];
                    body.clear();
                    let ctype = match format {
                        BodyFormat::Json => {
                            body.push(b'[');
                            for (i, &(s, e)) in part.iter().enumerate() {
                                if i > 0 {
                                    body.push(b',');
                                }
                                body.extend_from_slice(&data[s..e]);
                            }
                            body.push(b']');
                            "application/json"
                        }
                        BodyFormat::Text => {
                            for &(s, e) in part {
                                body.extend_from_slice(&data[s..e]);
                                body.push(b'\n');
                            }
                            "text/plain"
                        }
                    };
                    raw += part.iter().map(|(s, e)| (e - s + 1) as u64).sum::<u64>();
                    loop {
                        requests += 1;
                        let (st, reply) = c.request("POST", "/api/v2/logs", ctype, &body)?;
                        match st {
                            202 => break,
                            503 | 429 => {
                                retries += 1;
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            _ => {
                                return Err(format!(
                                    "POST /api/v2/logs: {st} {}",
                                    String::from_utf8_lossy(&reply)
                                )
                                .into())
                            }
                        }
                    }
                    last = Some(k);
                }
                Ok((last, requests, retries, raw))
            })
        })
        .collect();
    let (mut ids, mut requests, mut retries, mut raw) = (Vec::new(), 0u64, 0u64, 0u64);
    for h in handles {
        let (last, rq, rt, rw) = h.join().map_err(|_| "client thread panicked")??;
        requests += rq;
        retries += rt;
        raw += rw;
        if let Some(k) = last {
            let (s, e) = lines[((k + 1) * batch).min(lines.len()) - 1];
            ids.push(line_id(&data[s..e])?);
        }
    }
    let acked = t0.elapsed().as_secs_f64();
    let (wait, polls) = wait_searchable(target, &ids, poll_timeout)?;
    let searchable = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"transport": "http", "file": file, "lines": lines.len(), "bytes": raw, "clients": clients,
               "batch_lines": batch, "body_format": format!("{format:?}").to_lowercase(), "requests": requests,
               "retries_503": retries, "acked_s": acked, "last_sent_s": acked, "searchable_s": searchable,
               "searchable_after_ack_s": wait, "searchable_after_sent_s": wait, "polls": polls, "ids": ids,
               "ack": "202 of the last request"})
    );
    Ok(())
}

//! OTLP trace load generator (issue #4). Builds a pool of distinct `ExportTraceServiceRequest`s (512 spans of 20
//! attributes each by default, whole traces of 8-32 spans over 3-10 services) once, encodes each once with
//! prost, and sends them over gRPC (`TraceService/Export`, hand-framed on an HTTP/2 connection) or OTLP/HTTP
//! (`POST /v1/traces`, protobuf) from one thread, flat out with `--concurrency` requests in flight or at a held
//! span rate. Nothing is re-encoded while sending:
//!
//! - without gzip, every send copies its template and patches, in place, the fields that must differ between
//!   sends: trace, span and parent ids (XOR with a per-send mask, so trees stay linked), start/end/event times
//!   (shifted to "now") and the high-cardinality id attributes (hex digits XORed). Every span sent is distinct.
//! - with `--gzip`, the templates are compressed once and sent as they are (the pool repeats: ids recur every
//!   `--pool` requests); `--gzip-fresh` patches and compresses every send instead (unique spans, but the load
//!   generator's core pays gzip).
//!
//! Subcommands: `send` (prints one JSON object: requests, acked/rejected spans, errors, spans/s, export latency
//! percentiles, protobuf bytes per span, gzip ratio), `lookup` (trace-by-id latency through
//! `GET /api/ui/traces/<id>`, for ids written by `send --print-trace-ids`), `stats` (the pool's encoding
//! figures, offline).

use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;
use serde_json::{json, Value as Json};
use sightline_bench::Rng;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser, Debug)]
#[command(
    name = "otlp-loadgen",
    about = "OTLP trace load generator (gRPC and HTTP) and trace-by-id latency probe"
)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Transport {
    Grpc,
    Http,
}

#[derive(clap::Args, Debug, Clone)]
struct PoolArgs {
    /// Distinct pre-encoded requests (templates) in the pool.
    #[arg(long, default_value_t = 64)]
    pool: usize,
    /// Spans per request.
    #[arg(long, default_value_t = 512)]
    spans_per_request: usize,
    /// Attributes per span (at least 10).
    #[arg(long, default_value_t = 20)]
    attrs: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// gzip level (0-9) for --gzip.
    #[arg(long, default_value_t = 6)]
    gzip_level: u32,
}

#[derive(clap::Args, Debug)]
struct SendArgs {
    #[command(flatten)]
    pool: PoolArgs,
    #[arg(long, value_enum)]
    transport: Transport,
    /// The OTLP gRPC or HTTP listener (host:port).
    #[arg(long)]
    target: String,
    /// Compress requests with gzip (pre-compressed pool; see --gzip-fresh).
    #[arg(long)]
    gzip: bool,
    /// With --gzip: patch and compress every request as it is sent (unique spans; costs the sender gzip).
    #[arg(long)]
    gzip_fresh: bool,
    /// Offered load in spans/s (rounded to whole requests); 0 = flat out with --concurrency in flight.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Requests in flight at most (one HTTP/1.1 connection each for --transport http).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// gRPC only: HTTP/2 connections the in-flight requests are spread over.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Seconds of load (no new request starts after it; in-flight ones finish).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many spans were sent (0 = no limit; --duration still applies).
    #[arg(long, default_value_t = 0)]
    total_spans: u64,
    /// Per-attempt timeout, ms.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// Retries of one request after a retryable refusal (HTTP 429/502/503/504, gRPC UNAVAILABLE /
    /// RESOURCE_EXHAUSTED) or a connection error, before it counts as failed.
    #[arg(long, default_value_t = 20)]
    max_retries: u32,
    /// Pause before retrying a refused request, ms, unless the answer says (`Retry-After`, which the server
    /// sends with its 503s). Connection errors are retried after 100 ms.
    #[arg(long, default_value_t = 1000)]
    retry_backoff_ms: u64,
    /// Keep trying to connect for this many seconds at start.
    #[arg(long, default_value_t = 10.0)]
    connect_timeout: f64,
    /// Write this many trace ids that were sent and acknowledged (a uniform sample over the run) to --ids-out.
    #[arg(long, default_value_t = 0)]
    print_trace_ids: usize,
    /// File for --print-trace-ids: one `<32 hex> <expected span count>` per line.
    #[arg(long, default_value = "trace-ids.txt")]
    ids_out: String,
    /// Mixed into the per-send id masks: runs with different values send different ids.
    #[arg(long, default_value_t = 1)]
    run_id: u64,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Sends OTLP trace exports and prints one JSON object with the totals and latencies.
    Send(SendArgs),
    /// Trace-by-id latency: GET /api/ui/traces/<id> for every id of --ids, --repeats times (one keep-alive
    /// connection, one request at a time).
    Lookup {
        /// The query HTTP listener (host:port).
        #[arg(long)]
        http: String,
        /// A file written by `send --print-trace-ids`.
        #[arg(long)]
        ids: String,
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Requests before the measured ones (the first ids of the file).
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        #[arg(long, default_value = "/api/ui/traces/")]
        path_prefix: String,
    },
    /// Builds the pool and prints its encoding figures (no network).
    Stats {
        #[command(flatten)]
        pool: PoolArgs,
    },
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() {
    let args = Args::parse();
    let res = match args.cmd {
        Cmd::Send(a) => run_async(send(a)),
        Cmd::Lookup {
            http,
            ids,
            repeats,
            warmup,
            path_prefix,
        } => run_async(lookup(http, ids, repeats, warmup, path_prefix)),
        Cmd::Stats { pool } => stats(&pool),
    };
    if let Err(e) = res {
        eprintln!("otlp-loadgen: {e}");
        std::process::exit(1);
    }
}

fn run_async<F: std::future::Future<Output = Res<()>>>(f: F) -> Res<()> {
    // One thread: the load generator is pinned to one core.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// utime + stime of this process, seconds.
fn self_cpu_s() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

// ---- the corpus: services, vocabularies, trace shapes ----------------------------------------------------

struct Service {
    name: &'static str,
    lang: &'static str,
    runtime: &'static str,
    sdk_version: &'static str,
    version: &'static str,
    port: i64,
}

const SERVICES: &[Service] = &[
    Service {
        name: "frontend",
        lang: "nodejs",
        runtime: "nodejs",
        sdk_version: "1.30.1",
        version: "2.14.0",
        port: 8080,
    },
    Service {
        name: "api-gateway",
        lang: "go",
        runtime: "go",
        sdk_version: "1.34.0",
        version: "1.9.3",
        port: 8443,
    },
    Service {
        name: "checkout",
        lang: "java",
        runtime: "OpenJDK Runtime Environment",
        sdk_version: "1.47.0",
        version: "3.2.1",
        port: 8081,
    },
    Service {
        name: "cart",
        lang: "dotnet",
        runtime: ".NET",
        sdk_version: "1.11.2",
        version: "1.4.7",
        port: 7070,
    },
    Service {
        name: "payment",
        lang: "java",
        runtime: "OpenJDK Runtime Environment",
        sdk_version: "1.47.0",
        version: "5.0.2",
        port: 8082,
    },
    Service {
        name: "inventory",
        lang: "go",
        runtime: "go",
        sdk_version: "1.34.0",
        version: "0.18.4",
        port: 9090,
    },
    Service {
        name: "shipping",
        lang: "rust",
        runtime: "rust",
        sdk_version: "0.28.0",
        version: "1.1.0",
        port: 50051,
    },
    Service {
        name: "user-profile",
        lang: "python",
        runtime: "cpython",
        sdk_version: "1.29.0",
        version: "4.7.0",
        port: 8000,
    },
    Service {
        name: "search",
        lang: "python",
        runtime: "cpython",
        sdk_version: "1.29.0",
        version: "2.3.9",
        port: 8001,
    },
    Service {
        name: "notification",
        lang: "nodejs",
        runtime: "nodejs",
        sdk_version: "1.30.1",
        version: "0.9.12",
        port: 3000,
    },
];

const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/orders/{order_id}"),
    ("GET", "/api/v1/products/{product_id}"),
    ("POST", "/api/v1/checkout/submit"),
    ("GET", "/api/v1/cart/{user_id}/items"),
    ("PUT", "/api/v1/cart/{user_id}/items"),
    ("POST", "/api/v1/payments/authorize"),
    ("GET", "/api/v1/search"),
    ("GET", "/api/v1/users/{user_id}/profile"),
    ("DELETE", "/api/v1/sessions/{session_id}"),
    ("GET", "/api/v1/shipping/quote"),
    ("POST", "/api/v1/notifications/send"),
    ("GET", "/healthz/ready"),
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    "Mozilla/5.0 (Macintosh) Safari/605.1.15",
    "okhttp/4.12.0",
    "Go-http-client/1.1",
    "python-requests/2.32.3",
    "Mozilla/5.0 (iPhone; iOS 17_5) Mobile/15E148",
];
const DB_QUERIES: &[(&str, &str, &str, &str)] = &[
    (
        "postgresql",
        "SELECT",
        "orders",
        "SELECT * FROM orders WHERE id = $1",
    ),
    (
        "postgresql",
        "UPDATE",
        "orders",
        "UPDATE orders SET status = $1 WHERE id = $2",
    ),
    (
        "postgresql",
        "INSERT",
        "payments",
        "INSERT INTO payments VALUES ($1, $2, $3)",
    ),
    (
        "postgresql",
        "SELECT",
        "users",
        "SELECT name, email FROM users WHERE id = $1",
    ),
    ("redis", "GET", "cart", "GET cart:{user}"),
    ("redis", "HSET", "session", "HSET session:{id} field value"),
    ("mongodb", "find", "products", "products.find({sku: ?})"),
    (
        "mysql",
        "SELECT",
        "stock",
        "SELECT qty FROM stock WHERE sku = ? FOR UPDATE",
    ),
];
const TOPICS: &[&str] = &[
    "order-events",
    "payment-events",
    "shipping-updates",
    "email-outbox",
];
const INTERNAL_OPS: &[(&str, &str)] = &[
    ("validate_request", "src/handlers/validate.rs"),
    ("compute_totals", "com/shop/checkout/Totals.java"),
    ("render_template", "app/views/render.py"),
    ("apply_discounts", "pkg/pricing/discounts.go"),
    ("serialize_response", "src/http/serialize.ts"),
    ("load_feature_flags", "Shop.Cart/Flags/FlagLoader.cs"),
];
const TENANTS: &[&str] = &[
    "acme-corp",
    "globex-industries",
    "initech-labs",
    "umbrella-retail",
    "stark-logistics",
    "wayne-enterprises",
    "hooli-cloud",
    "soylent-foods",
];
const REGIONS: &[&str] = &["eu-west-1", "us-east-1", "us-west-2", "ap-southeast-1"];
const FLAGS: &[&str] = &[
    "new-checkout-flow",
    "recommendations-v2",
    "fast-search-index",
    "legacy-cart",
];
const PLANS: &[&str] = &[
    "free-tier-monthly",
    "pro-annual-billing",
    "enterprise-contract",
];
const EXPERIMENTS: &[&str] = &[
    "exp-42-control-group",
    "exp-42-variant-b",
    "exp-57-holdout-users",
];
const LOCALES: &[&str] = &["en-US", "de-DE", "fr-FR", "ja-JP", "pt-BR"];
const CURRENCIES: &[&str] = &["USD", "EUR", "GBP", "JPY"];
const TIERS: &[&str] = &[
    "bronze-customer",
    "silver-customer",
    "gold-customer",
    "platinum-customer",
];
const THREADS: &[&str] = &[
    "http-nio-8080-exec-7",
    "tokio-runtime-worker",
    "ForkJoinPool.commonPool",
    "main-event-loop",
    "celery-worker-3",
];
const ERRORS: &[(&str, &str)] = &[
    (
        "java.net.SocketTimeoutException",
        "Read timed out after 5000 ms",
    ),
    (
        "ConnectionResetError",
        "connection reset by peer while reading response",
    ),
    (
        "PaymentDeclinedException",
        "card declined: insufficient funds",
    ),
    (
        "context.DeadlineExceeded",
        "context deadline exceeded calling upstream",
    ),
    (
        "InvalidOperationException",
        "sequence contains no matching element",
    ),
];

/// Attribute keys whose values are high-cardinality hex ids: patched per send (their hex digits XORed).
const HEX_KEYS: &[&str] = &[
    "app.request_id",
    "enduser.id",
    "session.id",
    "messaging.message.id",
];

fn s(v: impl Into<String>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    }
}
fn i(v: i64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::IntValue(v)),
    }
}
fn kv(k: &str, v: AnyValue) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(v),
        ..Default::default()
    }
}
fn hex(r: &mut Rng, digits: usize) -> String {
    let mut out = String::with_capacity(digits);
    while out.len() < digits {
        out.push_str(&format!("{:016x}", r.next_u64()));
    }
    out.truncate(digits);
    out
}
fn nonzero_id<const N: usize>(r: &mut Rng) -> [u8; N] {
    let mut b = [0u8; N];
    for c in b.chunks_mut(8) {
        let v = r.next_u64() | 1;
        c.copy_from_slice(&v.to_le_bytes()[..c.len()]);
    }
    b
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    HttpServer,
    RpcServer,
    HttpClient,
    RpcClient,
    Db,
    Producer,
    Consumer,
    Internal,
}

struct GenSpan {
    svc: usize,
    op: Op,
    span_id: [u8; 8],
    parent: Option<usize>,
    start: u64,
    end: u64,
    error: bool,
}

/// Per-trace values shared by all its spans.
struct TraceCtx {
    trace_id: [u8; 16],
    request_id: String,
    user_id: String,
    session_id: String,
    tenant: &'static str,
    region: &'static str,
    route: (&'static str, &'static str),
}

/// The span tree of one trace of `n` spans over `k` of the services: a root HTTP server span, then calls
/// (client + server span of another service), database calls, messages (producer + consumer) and internal
/// steps under random spans that can have children.
fn gen_trace(r: &mut Rng, n: usize, base_ns: u64) -> Vec<GenSpan> {
    // 3-9 services (the entry point and up to 8 of the others), fewer for short traces.
    let k = (3 + r.below(7) as usize).min(n / 2).max(1);
    // The trace's services: the first is the entry point (frontend or gateway).
    let mut svcs = vec![r.below(2) as usize];
    while svcs.len() < k {
        let c = 2 + r.below(SERVICES.len() as u64 - 2) as usize;
        if !svcs.contains(&c) {
            svcs.push(c);
        }
    }
    let root_dur = 2_000_000 + r.below(800_000_000);
    let root_start = base_ns - 30_000_000_000 + r.below(29_000_000_000);
    let mut spans = vec![GenSpan {
        svc: svcs[0],
        op: Op::HttpServer,
        span_id: nonzero_id(r),
        parent: None,
        start: root_start,
        end: root_start + root_dur,
        error: false,
    }];
    let mut next_svc = 1;
    let child_window = |r: &mut Rng, p: &GenSpan| -> (u64, u64) {
        let d = p.end - p.start;
        let st = p.start + r.below(d / 2 + 1);
        let left = p.end - st;
        let du = (left / 4 + r.below(left * 3 / 4 + 1)).max(1_000);
        (st, (st + du).min(p.end.max(st + 1_000)))
    };
    while spans.len() < n {
        // Parents: spans that run code (servers, consumers, internal steps).
        let cands: Vec<usize> = (0..spans.len())
            .filter(|&j| {
                matches!(
                    spans[j].op,
                    Op::HttpServer | Op::RpcServer | Op::Consumer | Op::Internal
                )
            })
            .collect();
        let p = cands[r.below(cands.len() as u64) as usize];
        let left = n - spans.len();
        let roll = r.below(100);
        let (st, en) = child_window(r, &spans[p]);
        let psvc = spans[p].svc;
        if left >= 2 && (roll < 40 || next_svc < k && roll < 70) {
            // A call to another service: client span here, server span there.
            let callee = if next_svc < k {
                next_svc += 1;
                svcs[next_svc - 1]
            } else {
                svcs[r.below(k as u64) as usize]
            };
            let rpc = r.below(3) == 0;
            spans.push(GenSpan {
                svc: psvc,
                op: if rpc { Op::RpcClient } else { Op::HttpClient },
                span_id: nonzero_id(r),
                parent: Some(p),
                start: st,
                end: en,
                error: false,
            });
            let net = ((en - st) / 20).max(1_000);
            spans.push(GenSpan {
                svc: callee,
                op: if rpc { Op::RpcServer } else { Op::HttpServer },
                span_id: nonzero_id(r),
                parent: Some(spans.len() - 1),
                start: st + r.below(net),
                end: (en - r.below(net)).max(st + net),
                error: false,
            });
        } else if left >= 2 && roll < 76 {
            let consumer = svcs[r.below(k as u64) as usize];
            spans.push(GenSpan {
                svc: psvc,
                op: Op::Producer,
                span_id: nonzero_id(r),
                parent: Some(p),
                start: st,
                end: st + 50_000 + r.below(2_000_000),
                error: false,
            });
            let cs = st + 1_000_000 + r.below(50_000_000);
            spans.push(GenSpan {
                svc: consumer,
                op: Op::Consumer,
                span_id: nonzero_id(r),
                parent: Some(spans.len() - 1),
                start: cs,
                end: cs + 100_000 + r.below(20_000_000),
                error: false,
            });
        } else if roll < 90 {
            spans.push(GenSpan {
                svc: psvc,
                op: Op::Db,
                span_id: nonzero_id(r),
                parent: Some(p),
                start: st,
                end: en,
                error: false,
            });
        } else {
            spans.push(GenSpan {
                svc: psvc,
                op: Op::Internal,
                span_id: nonzero_id(r),
                parent: Some(p),
                start: st,
                end: en,
                error: false,
            });
        }
    }
    // ~2% of spans fail (independently).
    for sp in &mut spans {
        if r.below(1000) < 20 {
            sp.error = true;
        }
    }
    spans
}

fn span_attrs(
    r: &mut Rng,
    g: &GenSpan,
    parent: Option<&GenSpan>,
    t: &TraceCtx,
    want: usize,
) -> Vec<KeyValue> {
    let svc = &SERVICES[g.svc];
    let mut a = Vec::with_capacity(want);
    let status = if g.error {
        [500i64, 502, 503, 504][r.below(4) as usize]
    } else {
        [200i64, 200, 200, 200, 201, 204, 304, 404][r.below(8) as usize]
    };
    match g.op {
        Op::HttpServer => {
            let (m, route) = if parent.is_none() {
                t.route
            } else {
                ROUTES[r.below(ROUTES.len() as u64) as usize]
            };
            a.push(kv("http.request.method", s(m)));
            a.push(kv("http.route", s(route)));
            a.push(kv(
                "url.path",
                s(route
                    .replace("{order_id}", &r.below(100_000).to_string())
                    .replace("{product_id}", &r.below(20_000).to_string())
                    .replace("{user_id}", &t.user_id[..8])
                    .replace("{session_id}", &t.session_id[..8])),
            ));
            a.push(kv("url.scheme", s("https")));
            a.push(kv("http.response.status_code", i(status)));
            a.push(kv(
                "server.address",
                s(format!("{}.shop.internal", svc.name)),
            ));
            a.push(kv("server.port", i(svc.port)));
            a.push(kv(
                "network.protocol.version",
                s(["1.1", "2"][r.below(2) as usize]),
            ));
            a.push(kv(
                "client.address",
                s(format!(
                    "10.{}.{}.{}",
                    r.below(16),
                    r.below(256),
                    1 + r.below(254)
                )),
            ));
            a.push(kv(
                "user_agent.original",
                s(USER_AGENTS[r.below(USER_AGENTS.len() as u64) as usize]),
            ));
        }
        Op::HttpClient => {
            let (m, route) = ROUTES[r.below(ROUTES.len() as u64) as usize];
            a.push(kv("http.request.method", s(m)));
            a.push(kv(
                "url.full",
                s(format!(
                    "http://svc.shop.internal{}",
                    route.split('{').next().unwrap_or(route)
                )),
            ));
            a.push(kv("server.address", s("svc.shop.internal")));
            a.push(kv("server.port", i(8080)));
            a.push(kv("http.response.status_code", i(status)));
            a.push(kv(
                "network.peer.address",
                s(format!(
                    "10.{}.{}.{}",
                    r.below(16),
                    r.below(256),
                    1 + r.below(254)
                )),
            ));
        }
        Op::RpcServer | Op::RpcClient => {
            a.push(kv("rpc.system", s("grpc")));
            a.push(kv(
                "rpc.service",
                s(format!(
                    "shop.{}.v1.{}Service",
                    svc.name.replace('-', "_"),
                    "Core"
                )),
            ));
            a.push(kv(
                "rpc.method",
                s(["GetQuote", "Reserve", "Authorize", "Lookup", "Notify"][r.below(5) as usize]),
            ));
            a.push(kv("rpc.grpc.status_code", i(if g.error { 14 } else { 0 })));
            a.push(kv(
                "server.address",
                s(format!("{}.shop.internal", svc.name)),
            ));
            a.push(kv("server.port", i(svc.port)));
        }
        Op::Db => {
            let (sys, op, coll, q) = DB_QUERIES[r.below(DB_QUERIES.len() as u64) as usize];
            a.push(kv("db.system.name", s(sys)));
            a.push(kv(
                "db.namespace",
                s(format!("{}_production", svc.name.replace('-', "_"))),
            ));
            a.push(kv("db.operation.name", s(op)));
            a.push(kv("db.collection.name", s(coll)));
            a.push(kv("db.query.text", s(q)));
            a.push(kv(
                "server.address",
                s(format!("{sys}-primary.db.internal")),
            ));
            a.push(kv("server.port", i(5432)));
        }
        Op::Producer | Op::Consumer => {
            a.push(kv("messaging.system", s("kafka")));
            a.push(kv(
                "messaging.destination.name",
                s(TOPICS[r.below(TOPICS.len() as u64) as usize]),
            ));
            a.push(kv(
                "messaging.operation.type",
                s(if g.op == Op::Producer {
                    "send"
                } else {
                    "process"
                }),
            ));
            a.push(kv("messaging.message.id", s(hex(r, 24))));
            a.push(kv(
                "messaging.kafka.message.key",
                s(format!("order-{}", r.below(1_000_000))),
            ));
        }
        Op::Internal => {
            let (f, file) = INTERNAL_OPS[r.below(INTERNAL_OPS.len() as u64) as usize];
            a.push(kv("code.function.name", s(f)));
            a.push(kv("code.file.path", s(file)));
            a.push(kv("code.line.number", i(20 + r.below(900) as i64)));
        }
    }
    // Fill up to `want` with application attributes (the three high-cardinality ids first).
    let mut k = 0;
    while a.len() < want {
        let x = match k {
            0 => kv("app.request_id", s(t.request_id.clone())),
            1 => kv("enduser.id", s(t.user_id.clone())),
            2 => kv("session.id", s(t.session_id.clone())),
            3 => kv("app.tenant", s(t.tenant)),
            4 => kv("cloud.region", s(t.region)),
            5 => kv(
                "thread.name",
                s(THREADS[r.below(THREADS.len() as u64) as usize]),
            ),
            6 => kv("thread.id", i(1 + r.below(256) as i64)),
            7 => kv(
                "app.feature_flag",
                s(FLAGS[r.below(FLAGS.len() as u64) as usize]),
            ),
            8 => kv(
                "app.cache_hit",
                AnyValue {
                    value: Some(any_value::Value::BoolValue(r.below(3) != 0)),
                },
            ),
            9 => kv(
                "app.retry_count",
                i(if r.below(10) == 0 {
                    1 + r.below(3) as i64
                } else {
                    0
                }),
            ),
            10 => kv("app.items", i(r.below(40) as i64)),
            11 => kv(
                "app.amount",
                AnyValue {
                    value: Some(any_value::Value::DoubleValue(
                        (r.below(500_000) as f64) / 100.0,
                    )),
                },
            ),
            12 => kv("app.plan", s(PLANS[r.below(PLANS.len() as u64) as usize])),
            13 => kv(
                "app.experiment",
                s(EXPERIMENTS[r.below(EXPERIMENTS.len() as u64) as usize]),
            ),
            14 => kv(
                "app.locale",
                s(LOCALES[r.below(LOCALES.len() as u64) as usize]),
            ),
            15 => kv(
                "app.currency",
                s(CURRENCIES[r.below(CURRENCIES.len() as u64) as usize]),
            ),
            16 => kv(
                "app.customer_tier",
                s(TIERS[r.below(TIERS.len() as u64) as usize]),
            ),
            17 => kv("app.shard", i(r.below(64) as i64)),
            18 => kv("app.queue_depth", i(r.below(1000) as i64)),
            19 => kv(
                "app.build",
                s(format!("build-{}-{}", svc.version, 1000 + r.below(50))),
            ),
            20 => kv(
                "peer.service",
                s(SERVICES[r.below(SERVICES.len() as u64) as usize].name),
            ),
            21 => kv(
                "app.priority",
                s(["low", "normal", "high"][r.below(3) as usize]),
            ),
            _ => kv(
                &format!("app.extra_{k}"),
                s(format!("value-{}", r.below(100))),
            ),
        };
        // Never two attributes with one key (the semantic sets hold no app.* keys).
        if !a.iter().any(|e| e.key == x.key) {
            a.push(x);
        }
        k += 1;
    }
    a.truncate(want);
    a
}

fn span_name(g: &GenSpan, attrs: &[KeyValue]) -> String {
    let get = |k: &str| {
        attrs
            .iter()
            .find(|a| a.key == k)
            .and_then(|a| match &a.value {
                Some(AnyValue {
                    value: Some(any_value::Value::StringValue(v)),
                }) => Some(v.clone()),
                _ => None,
            })
    };
    match g.op {
        Op::HttpServer => format!(
            "{} {}",
            get("http.request.method").unwrap_or_default(),
            get("http.route").unwrap_or_default()
        ),
        Op::HttpClient => get("http.request.method").unwrap_or_default(),
        Op::RpcServer | Op::RpcClient => format!(
            "{}/{}",
            get("rpc.service").unwrap_or_default(),
            get("rpc.method").unwrap_or_default()
        ),
        Op::Db => format!(
            "{} {}",
            get("db.operation.name").unwrap_or_default(),
            get("db.collection.name").unwrap_or_default()
        ),
        Op::Producer => format!(
            "{} send",
            get("messaging.destination.name").unwrap_or_default()
        ),
        Op::Consumer => format!(
            "{} process",
            get("messaging.destination.name").unwrap_or_default()
        ),
        Op::Internal => get("code.function.name").unwrap_or_default(),
    }
}

fn resource(svc_idx: usize, instance: u64) -> Resource {
    let svc = &SERVICES[svc_idx];
    let mut r = Rng(0x5E57 ^ (svc_idx as u64) << 8 ^ instance);
    Resource {
        attributes: vec![
            kv("service.name", s(svc.name)),
            kv("service.namespace", s("shop")),
            kv("service.version", s(svc.version)),
            kv(
                "service.instance.id",
                s(format!("{}-{}", svc.name, hex(&mut r, 12))),
            ),
            kv("deployment.environment.name", s("production")),
            kv(
                "host.name",
                s(format!(
                    "ip-10-0-{}-{}.ec2.internal",
                    r.below(16),
                    r.below(256)
                )),
            ),
            kv("host.arch", s("amd64")),
            kv("os.type", s("linux")),
            kv("process.pid", i(1 + r.below(60_000) as i64)),
            kv("process.runtime.name", s(svc.runtime)),
            kv("telemetry.sdk.name", s("opentelemetry")),
            kv("telemetry.sdk.language", s(svc.lang)),
            kv("telemetry.sdk.version", s(svc.sdk_version)),
            kv("k8s.namespace.name", s("shop-prod")),
            kv(
                "k8s.pod.name",
                s(format!(
                    "{}-7d9f8b{}-{}",
                    svc.name,
                    r.below(10),
                    hex(&mut r, 5)
                )),
            ),
            kv(
                "cloud.region",
                s(REGIONS[(instance % REGIONS.len() as u64) as usize]),
            ),
        ],
        ..Default::default()
    }
}

/// One request: whole traces (8-32 spans, the last one sized to fill) until `spans` spans, grouped by service
/// into one ResourceSpans each. Returns it with the original trace ids and their span counts.
fn gen_request(
    r: &mut Rng,
    spans: usize,
    attrs: usize,
    base_ns: u64,
) -> (ExportTraceServiceRequest, Vec<([u8; 16], u32)>) {
    let mut by_svc: BTreeMap<usize, Vec<Span>> = BTreeMap::new();
    let mut traces = Vec::new();
    let mut done = 0;
    while done < spans {
        let left = spans - done;
        let n = if left <= 32 {
            left
        } else {
            (8 + r.below(25) as usize).min(left - 8)
        };
        let t = TraceCtx {
            trace_id: nonzero_id(r),
            request_id: hex(r, 32),
            user_id: hex(r, 16),
            session_id: hex(r, 24),
            tenant: TENANTS[r.below(TENANTS.len() as u64) as usize],
            region: REGIONS[r.below(REGIONS.len() as u64) as usize],
            route: ROUTES[r.below(ROUTES.len() as u64) as usize],
        };
        let g = gen_trace(r, n, base_ns);
        for gs in &g {
            let parent = gs.parent.map(|p| &g[p]);
            let a = span_attrs(r, gs, parent, &t, attrs);
            let name = span_name(gs, &a);
            let kind = match gs.op {
                Op::HttpServer | Op::RpcServer => span::SpanKind::Server,
                Op::HttpClient | Op::RpcClient | Op::Db => span::SpanKind::Client,
                Op::Producer => span::SpanKind::Producer,
                Op::Consumer => span::SpanKind::Consumer,
                Op::Internal => span::SpanKind::Internal,
            };
            let remote_parent = parent.is_some_and(|p| p.svc != gs.svc);
            let (status, events) = if gs.error {
                let (ty, msg) = ERRORS[r.below(ERRORS.len() as u64) as usize];
                (
                    Some(Status {
                        code: status::StatusCode::Error as i32,
                        message: msg.to_string(),
                    }),
                    vec![span::Event {
                        time_unix_nano: gs.end - (gs.end - gs.start) / 10,
                        name: "exception".into(),
                        attributes: vec![
                            kv("exception.type", s(ty)),
                            kv("exception.message", s(msg)),
                        ],
                        ..Default::default()
                    }],
                )
            } else {
                (None, vec![])
            };
            by_svc.entry(gs.svc).or_default().push(Span {
                trace_id: t.trace_id.to_vec(),
                span_id: gs.span_id.to_vec(),
                parent_span_id: parent.map(|p| p.span_id.to_vec()).unwrap_or_default(),
                flags: if remote_parent { 0x300 } else { 0x100 },
                name,
                kind: kind as i32,
                start_time_unix_nano: gs.start,
                end_time_unix_nano: gs.end,
                attributes: a,
                events,
                status,
                ..Default::default()
            });
        }
        traces.push((t.trace_id, n as u32));
        done += n;
    }
    let instance = r.below(4);
    let req = ExportTraceServiceRequest {
        resource_spans: by_svc
            .into_iter()
            .map(|(svc, spans)| ResourceSpans {
                resource: Some(resource(svc, instance)),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: format!("io.opentelemetry.{}", SERVICES[svc].lang),
                        version: SERVICES[svc].sdk_version.to_string(),
                        ..Default::default()
                    }),
                    spans,
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            })
            .collect(),
    };
    (req, traces)
}

// ---- pre-encoded templates and per-send patching ---------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum PatchKind {
    TraceId,
    SpanId,
    Time,
    Hex,
}

#[derive(Clone, Copy, Debug)]
struct Patch {
    off: u32,
    len: u32,
    kind: PatchKind,
}

struct Template {
    bytes: Vec<u8>,
    patches: Vec<Patch>,
    traces: Vec<([u8; 16], u32)>,
    spans: usize,
    /// gzip of `bytes` (with --gzip, not --gzip-fresh).
    gz: Option<Vec<u8>>,
}

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let c = *b.get(*pos)?;
        *pos += 1;
        v |= ((c & 0x7f) as u64) << shift;
        if c & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Calls `f(field, wire type, value start, value end)` for each field of the message in `b[start..end]`.
fn walk(
    b: &[u8],
    start: usize,
    end: usize,
    f: &mut dyn FnMut(u64, u8, usize, usize) -> Res<()>,
) -> Res<()> {
    let mut p = start;
    while p < end {
        let tag = varint(b, &mut p).ok_or("bad tag")?;
        let (field, wt) = (tag >> 3, (tag & 7) as u8);
        let (vs, ve) = match wt {
            0 => {
                let s = p;
                varint(b, &mut p).ok_or("bad varint")?;
                (s, p)
            }
            1 => (p, p + 8),
            2 => {
                let n = varint(b, &mut p).ok_or("bad length")? as usize;
                (p, p + n)
            }
            5 => (p, p + 4),
            _ => return Err(format!("unexpected wire type {wt}").into()),
        };
        if ve > end {
            return Err("field past the end".into());
        }
        p = ve;
        f(field, wt, vs, ve)?;
    }
    Ok(())
}

/// Where the per-send fields of an encoded ExportTraceServiceRequest are.
fn find_patches(b: &[u8]) -> Res<Vec<Patch>> {
    let mut out = Vec::new();
    let p = |off: usize, len: usize, kind| Patch {
        off: off as u32,
        len: len as u32,
        kind,
    };
    walk(b, 0, b.len(), &mut |f, wt, s, e| {
        if f != 1 || wt != 2 {
            return Ok(());
        }
        walk(b, s, e, &mut |f, wt, s, e| {
            if f != 2 || wt != 2 {
                return Ok(());
            }
            walk(b, s, e, &mut |f, wt, s, e| {
                if f != 2 || wt != 2 {
                    return Ok(());
                }
                // A Span.
                walk(b, s, e, &mut |f, wt, s, e| {
                    match (f, wt) {
                        (1, 2) if e - s == 16 => out.push(p(s, 16, PatchKind::TraceId)),
                        (2 | 4, 2) if e - s == 8 => out.push(p(s, 8, PatchKind::SpanId)),
                        (7 | 8, 1) => out.push(p(s, 8, PatchKind::Time)),
                        (9, 2) => {
                            // KeyValue: key (1), value (2) → AnyValue string_value (1).
                            let (mut key, mut val) = (None, None);
                            walk(b, s, e, &mut |f, wt, s, e| {
                                match (f, wt) {
                                    (1, 2) => key = Some((s, e)),
                                    (2, 2) => val = Some((s, e)),
                                    _ => {}
                                }
                                Ok(())
                            })?;
                            if let (Some((ks, ke)), Some((vs, ve))) = (key, val) {
                                if HEX_KEYS.iter().any(|k| k.as_bytes() == &b[ks..ke]) {
                                    walk(b, vs, ve, &mut |f, wt, s, e| {
                                        if f == 1 && wt == 2 {
                                            out.push(p(s, e - s, PatchKind::Hex));
                                        }
                                        Ok(())
                                    })?;
                                }
                            }
                        }
                        (11, 2) => walk(b, s, e, &mut |f, wt, s, _| {
                            if f == 1 && wt == 1 {
                                out.push(p(s, 8, PatchKind::Time));
                            }
                            Ok(())
                        })?,
                        _ => {}
                    }
                    Ok(())
                })
            })
        })
    })?;
    Ok(out)
}

/// The XOR masks of send `seq`: trace id (2 words), span id, hex digits.
fn masks(run_id: u64, seq: u64) -> [u64; 4] {
    let mut r =
        Rng(run_id.wrapping_mul(0xA24B_AED4_963E_E407) ^ seq.wrapping_mul(0x9FB2_1C65_1E98_DF25));
    [r.next_u64(), r.next_u64(), r.next_u64(), r.next_u64()]
}

fn xor_into(dst: &mut [u8], m: u64) {
    for (d, k) in dst.iter_mut().zip(m.to_le_bytes()) {
        *d ^= k;
    }
}

fn patched_trace_id(id: &[u8; 16], m: &[u64; 4]) -> [u8; 16] {
    let mut t = *id;
    xor_into(&mut t[..8], m[0]);
    xor_into(&mut t[8..], m[1]);
    t
}

/// Applies send `seq`'s masks and a time shift to a copy of a template (at `base` in `buf`).
fn apply(buf: &mut [u8], base: usize, patches: &[Patch], m: &[u64; 4], shift_ns: u64) {
    const HEXD: &[u8; 16] = b"0123456789abcdef";
    for p in patches {
        let at = base + p.off as usize;
        let f = &mut buf[at..at + p.len as usize];
        match p.kind {
            PatchKind::TraceId => {
                xor_into(&mut f[..8], m[0]);
                xor_into(&mut f[8..], m[1]);
            }
            PatchKind::SpanId => xor_into(f, m[2]),
            PatchKind::Time => {
                let t = u64::from_le_bytes(f[..8].try_into().unwrap()).wrapping_add(shift_ns);
                f.copy_from_slice(&t.to_le_bytes());
            }
            PatchKind::Hex => {
                for (j, c) in f.iter_mut().enumerate() {
                    let v = match *c {
                        b'0'..=b'9' => *c - b'0',
                        b'a'..=b'f' => *c - b'a' + 10,
                        _ => continue,
                    };
                    let k = ((m[3] >> (4 * (j % 16))) & 0xf) as u8;
                    *c = HEXD[(v ^ k) as usize];
                }
            }
        }
    }
}

fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::new(level),
    );
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

struct Pool {
    templates: Vec<Template>,
    /// Generation time of the templates' timestamps (sends shift them by now - base).
    base_ns: u64,
    gen_s: f64,
    gzip_s: f64,
}

fn build_pool(a: &PoolArgs, compress: bool) -> Res<Pool> {
    if a.attrs < 10 || a.spans_per_request < 8 || a.pool == 0 {
        return Err("need --attrs >= 10, --spans-per-request >= 8, --pool >= 1".into());
    }
    let t0 = Instant::now();
    let base_ns = now_ns();
    let mut r = Rng(a.seed ^ 0x07_1F_5E_ED);
    let mut templates = Vec::with_capacity(a.pool);
    let mut ids = HashSet::new();
    for _ in 0..a.pool {
        let (req, traces) = gen_request(&mut r, a.spans_per_request, a.attrs, base_ns);
        let bytes = req.encode_to_vec();
        let patches = find_patches(&bytes)?;
        // The walker must have found every id: a missed one would repeat across sends.
        let n_ids = patches
            .iter()
            .filter(|p| matches!(p.kind, PatchKind::TraceId))
            .count();
        if n_ids != a.spans_per_request {
            return Err(format!(
                "internal: found {n_ids} trace ids in a request of {} spans",
                a.spans_per_request
            )
            .into());
        }
        for (t, _) in &traces {
            if !ids.insert(*t) {
                return Err("internal: duplicate trace id in the pool".into());
            }
        }
        templates.push(Template {
            bytes,
            patches,
            traces,
            spans: a.spans_per_request,
            gz: None,
        });
    }
    let gen_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    if compress {
        for t in &mut templates {
            t.gz = Some(gzip(&t.bytes, a.gzip_level));
        }
    }
    Ok(Pool {
        templates,
        base_ns,
        gen_s,
        gzip_s: t1.elapsed().as_secs_f64(),
    })
}

fn pool_json(pool: &Pool, a: &PoolArgs) -> Json {
    let spans: usize = pool.templates.iter().map(|t| t.spans).sum();
    let bytes: usize = pool.templates.iter().map(|t| t.bytes.len()).sum();
    let traces: usize = pool.templates.iter().map(|t| t.traces.len()).sum();
    let mut j = json!({"templates": pool.templates.len(), "spans_per_request": a.spans_per_request,
        "attrs_per_span": a.attrs, "distinct_spans": spans, "traces": traces,
        "avg_spans_per_trace": spans as f64 / traces.max(1) as f64,
        "proto_bytes_per_request": bytes as f64 / pool.templates.len() as f64,
        "proto_bytes_per_span": bytes as f64 / spans as f64,
        "patch_sites_per_request": pool.templates.iter().map(|t| t.patches.len()).sum::<usize>() as f64 / pool.templates.len() as f64,
        "generate_s": pool.gen_s, "seed": a.seed});
    if pool.templates[0].gz.is_some() {
        let gz: usize = pool
            .templates
            .iter()
            .map(|t| t.gz.as_ref().unwrap().len())
            .sum();
        j["gzip_level"] = json!(a.gzip_level);
        j["gzip_bytes_per_span"] = json!(gz as f64 / spans as f64);
        j["gzip_ratio"] = json!(gz as f64 / bytes as f64);
        j["gzip_s"] = json!(pool.gzip_s);
        j["gzip_mb_per_s"] = json!(bytes as f64 / 1e6 / pool.gzip_s.max(1e-9));
    }
    j
}

fn stats(a: &PoolArgs) -> Res<()> {
    let pool = build_pool(a, true)?;
    let mut j = pool_json(&pool, a);
    // What a unique (patched) send costs the sender: copy + patch, and with --gzip-fresh also gzip.
    let t = &pool.templates[0];
    let reps = 200;
    let t0 = Instant::now();
    for k in 0..reps {
        let mut buf = t.bytes.clone();
        apply(&mut buf, 0, &t.patches, &masks(1, k), 1);
        std::hint::black_box(&buf);
    }
    j["patch_us_per_request"] = json!(t0.elapsed().as_secs_f64() * 1e6 / reps as f64);
    // Kinds and error share, from the decoded pool (what the server will see).
    let (mut kinds, mut errors, mut services, mut attrs) =
        (BTreeMap::new(), 0usize, HashSet::new(), 0usize);
    let mut spans = 0usize;
    let mut seen_ids = HashSet::new();
    for k in 0..2u64 {
        let mut buf = t.bytes.clone();
        apply(&mut buf, 0, &t.patches, &masks(7, k), 0);
        let req = ExportTraceServiceRequest::decode(buf.as_slice())?;
        for rs in &req.resource_spans {
            for ss in &rs.scope_spans {
                for sp in &ss.spans {
                    seen_ids.insert(sp.span_id.clone());
                }
            }
        }
    }
    j["distinct_span_ids_in_two_patched_sends"] = json!(seen_ids.len());
    for t in &pool.templates {
        let req = ExportTraceServiceRequest::decode(t.bytes.as_slice())?;
        for rs in &req.resource_spans {
            for kv in &rs.resource.as_ref().unwrap().attributes {
                if kv.key == "service.name" {
                    services.insert(format!("{:?}", kv.value));
                }
            }
            for ss in &rs.scope_spans {
                for sp in &ss.spans {
                    spans += 1;
                    attrs += sp.attributes.len();
                    *kinds
                        .entry(format!("{:?}", span::SpanKind::try_from(sp.kind).unwrap()))
                        .or_insert(0usize) += 1;
                    if sp
                        .status
                        .as_ref()
                        .is_some_and(|s| s.code == status::StatusCode::Error as i32)
                    {
                        errors += 1;
                    }
                }
            }
        }
    }
    j["kinds"] = json!(kinds);
    j["error_share"] = json!(errors as f64 / spans as f64);
    j["services"] = json!(services.len());
    j["avg_attrs_per_span"] = json!(attrs as f64 / spans as f64);
    let services_per_request: Vec<usize> = pool
        .templates
        .iter()
        .map(|t| {
            ExportTraceServiceRequest::decode(t.bytes.as_slice())
                .unwrap()
                .resource_spans
                .len()
        })
        .collect();
    j["services_per_request_min_max"] = json!([
        services_per_request.iter().min(),
        services_per_request.iter().max()
    ]);
    println!("{j}");
    Ok(())
}

// ---- sending ---------------------------------------------------------------------------------------------

enum Sender {
    Grpc(http2::SendRequest<Full<Bytes>>),
    Http(http1::SendRequest<Full<Bytes>>),
}

async fn connect(target: &str, transport: Transport, deadline: Instant) -> Res<Sender> {
    let stream = loop {
        match tokio::net::TcpStream::connect(target).await {
            Ok(s) => break s,
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("cannot connect to {target}: {e}").into())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    stream.set_nodelay(true)?;
    let io = TokioIo::new(stream);
    Ok(match transport {
        Transport::Grpc => {
            let (s, conn) = http2::Builder::new(TokioExecutor::new())
                .initial_stream_window_size(4 << 20)
                .initial_connection_window_size(8 << 20)
                .max_send_buf_size(2 << 20)
                .handshake(io)
                .await
                .map_err(|e| format!("HTTP/2 handshake with {target}: {e}"))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Sender::Grpc(s)
        }
        Transport::Http => {
            let (s, conn) = http1::handshake(io)
                .await
                .map_err(|e| format!("HTTP/1.1 handshake with {target}: {e}"))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Sender::Http(s)
        }
    })
}

enum Outcome {
    /// Accepted; spans rejected in partial_success.
    Ok(u64),
    /// Refused for now; the server's `Retry-After`, if any.
    Retry(String, Option<Duration>),
    Fail(String),
    /// Connection-level error: reconnect, then retry.
    Conn(String),
}

/// `Retry-After` in seconds (the HTTP-date form is not used by OTLP servers), at most 30 s.
fn retry_after(h: &hyper::HeaderMap) -> Option<Duration> {
    let secs: u64 = h.get("retry-after")?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(30)))
}

fn retryable_http(code: u16) -> bool {
    matches!(code, 429 | 502 | 503 | 504)
}

async fn export(sender: &mut Sender, target: &str, body: Bytes, gzip: bool) -> Outcome {
    match sender {
        Sender::Grpc(s) => {
            if let Err(e) = s.ready().await {
                return Outcome::Conn(format!("connection: {e}"));
            }
            let mut req = Request::post(format!(
                "http://{target}/opentelemetry.proto.collector.trace.v1.TraceService/Export"
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("user-agent", "sightline-otlp-loadgen");
            if gzip {
                req = req.header("grpc-encoding", "gzip");
            }
            let resp = match s.send_request(req.body(Full::new(body)).unwrap()).await {
                Ok(r) => r,
                Err(e) => return Outcome::Conn(format!("request: {e}")),
            };
            let (parts, b) = resp.into_parts();
            let collected = match b.collect().await {
                Ok(c) => c,
                Err(e) => return Outcome::Conn(format!("response body: {e}")),
            };
            let trailers = collected.trailers().cloned();
            let data = collected.to_bytes();
            if parts.status != 200 {
                let c = parts.status.as_u16();
                let m = format!("http {c}");
                return if retryable_http(c) {
                    Outcome::Retry(m, retry_after(&parts.headers))
                } else {
                    Outcome::Fail(m)
                };
            }
            let hdr = |k: &str| {
                trailers
                    .as_ref()
                    .and_then(|t| t.get(k))
                    .or_else(|| parts.headers.get(k))
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let Some(code) = hdr("grpc-status").and_then(|c| c.parse::<i32>().ok()) else {
                return Outcome::Fail("no grpc-status".into());
            };
            match code {
                0 => {
                    let mut rejected = 0;
                    if data.len() >= 5 {
                        let payload = &data[5..];
                        let dec = if data[0] == 1 {
                            let mut out = Vec::new();
                            let _ = std::io::Read::read_to_end(
                                &mut flate2::read::GzDecoder::new(payload),
                                &mut out,
                            );
                            ExportTraceServiceResponse::decode(out.as_slice())
                        } else {
                            ExportTraceServiceResponse::decode(payload)
                        };
                        if let Ok(r) = dec {
                            rejected = r
                                .partial_success
                                .map(|p| p.rejected_spans.max(0) as u64)
                                .unwrap_or(0);
                        }
                    }
                    Outcome::Ok(rejected)
                }
                8 | 14 => Outcome::Retry(format!("grpc-status {code}"), None),
                _ => Outcome::Fail(format!(
                    "grpc-status {code}: {}",
                    hdr("grpc-message").unwrap_or_default()
                )),
            }
        }
        Sender::Http(s) => {
            if let Err(e) = s.ready().await {
                return Outcome::Conn(format!("connection: {e}"));
            }
            let mut req = Request::post("/v1/traces")
                .header("host", target)
                .header("content-type", "application/x-protobuf")
                .header("user-agent", "sightline-otlp-loadgen");
            if gzip {
                req = req.header("content-encoding", "gzip");
            }
            let resp = match s.send_request(req.body(Full::new(body)).unwrap()).await {
                Ok(r) => r,
                Err(e) => return Outcome::Conn(format!("request: {e}")),
            };
            let (parts, b) = resp.into_parts();
            let data = match b.collect().await {
                Ok(c) => c.to_bytes(),
                Err(e) => return Outcome::Conn(format!("response body: {e}")),
            };
            let c = parts.status.as_u16();
            if c == 200 {
                let rejected = ExportTraceServiceResponse::decode(data.as_ref())
                    .ok()
                    .and_then(|r| r.partial_success)
                    .map(|p| p.rejected_spans.max(0) as u64)
                    .unwrap_or(0);
                Outcome::Ok(rejected)
            } else {
                let m = format!("http {c}");
                if retryable_http(c) {
                    Outcome::Retry(m, retry_after(&parts.headers))
                } else {
                    let txt = String::from_utf8_lossy(&data[..data.len().min(300)])
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    Outcome::Fail(format!("{m}: {txt}"))
                }
            }
        }
    }
}

struct Ctx {
    a: SendArgs,
    pool: Pool,
    next: AtomicU64,
    t0: Instant,
    deadline: Instant,
    max_requests: u64,
    /// Requests per second (rate mode).
    rps: f64,
}

#[derive(Default)]
struct WStats {
    requests: u64,
    attempts: u64,
    ok: u64,
    failed: u64,
    acked_spans: u64,
    rejected_spans: u64,
    sent_spans: u64,
    retries: u64,
    reconnects: u64,
    errors: BTreeMap<String, u64>,
    lat_us: Vec<u32>,
    sched_lat_us: Vec<u32>,
    late: u64,
    wire_bytes: u64,
    proto_bytes: u64,
    acked: Vec<(u64, u32)>,
}

impl Ctx {
    /// The body of send `seq`: gRPC-framed or not, compressed or not, patched unless it is from the gzip pool.
    fn body(&self, seq: u64) -> (Bytes, usize) {
        let t = &self.pool.templates[(seq % self.pool.templates.len() as u64) as usize];
        let grpc = self.a.transport == Transport::Grpc;
        let hdr = if grpc { 5 } else { 0 };
        let payload: Vec<u8>;
        let (flag, data): (u8, &[u8]) = match (&t.gz, self.a.gzip) {
            (Some(gz), true) => (1, gz),
            _ => {
                let mut buf = t.bytes.clone();
                let shift = now_ns().saturating_sub(self.pool.base_ns);
                apply(&mut buf, 0, &t.patches, &masks(self.a.run_id, seq), shift);
                if self.a.gzip {
                    payload = gzip(&buf, self.a.pool.gzip_level);
                    (1, &payload)
                } else {
                    payload = buf;
                    (0, &payload)
                }
            }
        };
        let mut out = Vec::with_capacity(hdr + data.len());
        if grpc {
            out.push(flag);
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        }
        out.extend_from_slice(data);
        (Bytes::from(out), t.bytes.len())
    }
}

async fn worker(ctx: Arc<Ctx>, mut sender: Sender) -> WStats {
    let a = &ctx.a;
    let mut st = WStats::default();
    let timeout = Duration::from_millis(a.timeout_ms);
    loop {
        let seq = ctx.next.fetch_add(1, Ordering::Relaxed);
        if ctx.max_requests > 0 && seq >= ctx.max_requests {
            break;
        }
        let sched = if ctx.rps > 0.0 {
            let at = ctx.t0 + Duration::from_secs_f64(seq as f64 / ctx.rps);
            if at >= ctx.deadline {
                break;
            }
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            at
        } else {
            Instant::now()
        };
        if Instant::now() >= ctx.deadline {
            break;
        }
        let started = Instant::now();
        if ctx.rps > 0.0 && started.duration_since(sched) > Duration::from_millis(5) {
            st.late += 1;
        }
        let (body, proto_len) = ctx.body(seq);
        st.requests += 1;
        st.sent_spans += a.pool.spans_per_request as u64;
        st.proto_bytes += proto_len as u64;
        st.wire_bytes += body.len() as u64;
        let mut tries = 0u32;
        loop {
            st.attempts += 1;
            let r = match tokio::time::timeout(
                timeout,
                export(&mut sender, &a.target, body.clone(), a.gzip),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Outcome::Conn("timeout".into()),
            };
            match r {
                Outcome::Ok(rej) => {
                    let done = Instant::now();
                    st.ok += 1;
                    st.rejected_spans += rej;
                    st.acked_spans +=
                        a.pool.spans_per_request as u64 - rej.min(a.pool.spans_per_request as u64);
                    st.lat_us.push(
                        done.duration_since(started)
                            .as_micros()
                            .min(u32::MAX as u128) as u32,
                    );
                    st.sched_lat_us
                        .push(done.duration_since(sched).as_micros().min(u32::MAX as u128) as u32);
                    if a.print_trace_ids > 0 {
                        let ti = (seq % ctx.pool.templates.len() as u64) as u32;
                        st.acked.push((seq, ti));
                    }
                    break;
                }
                Outcome::Fail(m) => {
                    *st.errors.entry(m).or_insert(0) += 1;
                    st.failed += 1;
                    break;
                }
                Outcome::Retry(m, _) | Outcome::Conn(m) if tries >= a.max_retries => {
                    *st.errors.entry(m).or_insert(0) += 1;
                    st.failed += 1;
                    break;
                }
                Outcome::Retry(m, after) => {
                    *st.errors.entry(m).or_insert(0) += 1;
                    st.retries += 1;
                    tries += 1;
                    tokio::time::sleep(after.unwrap_or(Duration::from_millis(a.retry_backoff_ms)))
                        .await;
                }
                Outcome::Conn(m) => {
                    *st.errors.entry(m).or_insert(0) += 1;
                    st.retries += 1;
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    match connect(
                        &a.target,
                        a.transport,
                        Instant::now() + Duration::from_secs(5),
                    )
                    .await
                    {
                        Ok(s) => {
                            sender = s;
                            st.reconnects += 1;
                        }
                        Err(e) => {
                            *st.errors.entry(e.to_string()).or_insert(0) += 1;
                        }
                    }
                }
            }
        }
    }
    st
}

fn pct(sorted: &[u32], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let k = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[k] as f64 / 1000.0)
}

fn lat_json(v: &mut [u32]) -> Json {
    v.sort_unstable();
    let mean = if v.is_empty() {
        None
    } else {
        Some(v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64 / 1000.0)
    };
    json!({"n": v.len(), "p50": pct(v, 0.5), "p90": pct(v, 0.9), "p99": pct(v, 0.99), "p999": pct(v, 0.999),
           "max": v.last().map(|&x| x as f64 / 1000.0), "mean": mean})
}

async fn send(a: SendArgs) -> Res<()> {
    if a.gzip_fresh && !a.gzip {
        return Err("--gzip-fresh needs --gzip".into());
    }
    let pool = build_pool(&a.pool, a.gzip && !a.gzip_fresh)?;
    let pool_info = pool_json(&pool, &a.pool);
    let spr = a.pool.spans_per_request as u64;
    let conc = a.concurrency.max(1);
    // Connections first (the clock starts when they are up).
    let deadline = Instant::now() + Duration::from_secs_f64(a.connect_timeout);
    let mut senders = Vec::with_capacity(conc);
    match a.transport {
        Transport::Http => {
            for _ in 0..conc {
                senders.push(connect(&a.target, a.transport, deadline).await?);
            }
        }
        Transport::Grpc => {
            let mut conns = Vec::new();
            for _ in 0..a.connections.clamp(1, conc) {
                match connect(&a.target, a.transport, deadline).await? {
                    Sender::Grpc(s) => conns.push(s),
                    Sender::Http(_) => unreachable!(),
                }
            }
            for w in 0..conc {
                senders.push(Sender::Grpc(conns[w % conns.len()].clone()));
            }
        }
    }
    let rps = a.rate / spr as f64;
    let max_requests = if a.total_spans > 0 {
        a.total_spans.div_ceil(spr)
    } else {
        0
    };
    let cpu0 = self_cpu_s();
    let t0 = Instant::now();
    let ctx = Arc::new(Ctx {
        deadline: t0 + Duration::from_secs_f64(a.duration),
        t0,
        max_requests,
        rps,
        next: AtomicU64::new(0),
        pool,
        a,
    });
    let handles: Vec<_> = senders
        .into_iter()
        .map(|s| tokio::spawn(worker(ctx.clone(), s)))
        .collect();
    let mut all = WStats::default();
    for h in handles {
        let w = h.await?;
        all.requests += w.requests;
        all.attempts += w.attempts;
        all.ok += w.ok;
        all.failed += w.failed;
        all.acked_spans += w.acked_spans;
        all.rejected_spans += w.rejected_spans;
        all.sent_spans += w.sent_spans;
        all.retries += w.retries;
        all.reconnects += w.reconnects;
        all.late += w.late;
        all.wire_bytes += w.wire_bytes;
        all.proto_bytes += w.proto_bytes;
        for (k, v) in w.errors {
            *all.errors.entry(k).or_insert(0) += v;
        }
        all.lat_us.extend(w.lat_us);
        all.sched_lat_us.extend(w.sched_lat_us);
        all.acked.extend(w.acked);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = self_cpu_s() - cpu0;
    let a = &ctx.a;
    let mode = if !a.gzip {
        "patched per send (unique ids and hex attributes, times shifted to now)"
    } else if a.gzip_fresh {
        "patched and gzipped per send (unique)"
    } else {
        "pre-gzipped pool, cycled (ids repeat every --pool requests)"
    };
    let mut ids_written = 0;
    if a.print_trace_ids > 0 && !all.acked.is_empty() {
        // A uniform sample of the traces acknowledged over the run.
        let mut r = Rng(a.pool.seed ^ 0x1D5);
        let mut chosen = HashSet::new();
        let mut out = String::new();
        let mut tries = 0;
        while chosen.len() < a.print_trace_ids && tries < a.print_trace_ids * 20 {
            tries += 1;
            let (seq, ti) = all.acked[r.below(all.acked.len() as u64) as usize];
            let t = &ctx.pool.templates[ti as usize];
            let (orig, n) = t.traces[r.below(t.traces.len() as u64) as usize];
            // The pre-gzipped pool is sent as it is: its traces recur (the server stores each copy; its trace
            // view lists a span id once, so the expected count stays the trace's size).
            let id = if a.gzip && !a.gzip_fresh {
                orig
            } else {
                patched_trace_id(&orig, &masks(a.run_id, seq))
            };
            let expected = n as u64;
            if chosen.insert(id) {
                let h: String = id.iter().map(|b| format!("{b:02x}")).collect();
                out.push_str(&format!("{h} {expected}\n"));
            }
        }
        std::fs::write(&a.ids_out, out)?;
        ids_written = chosen.len();
    }
    let errors: u64 = all.errors.values().sum();
    let j = json!({
        "transport": format!("{:?}", a.transport).to_lowercase(), "target": a.target, "gzip": a.gzip,
        "payload_mode": mode, "rate_target_spans_s": a.rate, "concurrency": conc,
        "connections": if a.transport == Transport::Grpc { a.connections.clamp(1, conc) } else { conc },
        "duration_s": elapsed, "requests": all.requests, "attempts": all.attempts, "ok_requests": all.ok,
        "failed_requests": all.failed, "sent_spans": all.sent_spans, "acked_spans": all.acked_spans,
        "rejected_spans": all.rejected_spans, "retries": all.retries, "reconnects": all.reconnects,
        "error_events": errors, "errors": all.errors,
        "spans_per_s": all.acked_spans as f64 / elapsed, "requests_per_s": all.ok as f64 / elapsed,
        "latency_ms": lat_json(&mut all.lat_us),
        "latency_from_schedule_ms": lat_json(&mut all.sched_lat_us), "late_starts": all.late,
        "proto_bytes_per_span": all.proto_bytes as f64 / all.sent_spans.max(1) as f64,
        "wire_bytes_per_span": all.wire_bytes as f64 / all.sent_spans.max(1) as f64,
        "wire_ratio": all.wire_bytes as f64 / all.proto_bytes.max(1) as f64,
        "loadgen_cpu_s": cpu, "loadgen_cpu_share": cpu / elapsed,
        "trace_ids_written": ids_written, "pool": pool_info,
    });
    println!("{j}");
    if all.ok == 0 {
        return Err(format!(
            "no request succeeded ({} errors; first: {:?})",
            errors,
            all.errors.keys().next()
        )
        .into());
    }
    Ok(())
}

// ---- trace by id -----------------------------------------------------------------------------------------

/// Spans in a trace response: its `span_count`, else (another shape) the longest array of objects that carry
/// a span id.
fn count_spans(v: &Json) -> Option<usize> {
    if let Some(n) = v.get("span_count").and_then(Json::as_u64) {
        return Some(n as usize);
    }
    fn walk(v: &Json, best: &mut Option<usize>) {
        match v {
            Json::Array(a) => {
                let spanish = !a.is_empty()
                    && a.iter().all(|e| {
                        e.as_object()
                            .is_some_and(|o| o.contains_key("span_id") || o.contains_key("spanId"))
                    });
                if spanish {
                    *best = Some(best.unwrap_or(0).max(a.len()));
                }
                for e in a {
                    walk(e, best);
                }
            }
            Json::Object(o) => {
                for e in o.values() {
                    walk(e, best);
                }
            }
            _ => {}
        }
    }
    let mut best = None;
    walk(v, &mut best);
    best
}

async fn get(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    http: &str,
    prefix: &str,
    id: &str,
) -> Res<(u16, Bytes)> {
    sender.ready().await?;
    let req = Request::get(format!("{prefix}{id}"))
        .header("host", http)
        .body(Full::new(Bytes::new()))?;
    let resp = sender.send_request(req).await?;
    let st = resp.status().as_u16();
    Ok((st, resp.into_body().collect().await?.to_bytes()))
}

async fn lookup(
    http: String,
    ids_file: String,
    repeats: usize,
    warmup: usize,
    prefix: String,
) -> Res<()> {
    let text = std::fs::read_to_string(&ids_file)?;
    let ids: Vec<(String, Option<usize>)> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace();
            (
                it.next().unwrap().to_string(),
                it.next().and_then(|x| x.parse().ok()),
            )
        })
        .collect();
    if ids.is_empty() {
        return Err(format!("no ids in {ids_file}").into());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sender = match connect(&http, Transport::Http, deadline).await? {
        Sender::Http(s) => s,
        Sender::Grpc(_) => unreachable!(),
    };
    for k in 0..warmup {
        let _ = get(&mut sender, &http, &prefix, &ids[k % ids.len()].0).await;
    }
    let (mut all, mut first) = (Vec::new(), Vec::new());
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let (mut checked, mut mismatches, mut resp_bytes, mut example) = (0u64, 0u64, 0u64, None);
    for rep in 0..repeats.max(1) {
        for (id, expected) in &ids {
            let t = Instant::now();
            let (st, body) = match get(&mut sender, &http, &prefix, id).await {
                Ok(x) => x,
                Err(e) => {
                    // One reconnect, then give up on this request.
                    sender = match connect(
                        &http,
                        Transport::Http,
                        Instant::now() + Duration::from_secs(5),
                    )
                    .await?
                    {
                        Sender::Http(s) => s,
                        Sender::Grpc(_) => unreachable!(),
                    };
                    *statuses.entry(0).or_insert(0) += 1;
                    example.get_or_insert(format!("{id}: {e}"));
                    continue;
                }
            };
            let us = t.elapsed().as_micros() as u32;
            all.push(us);
            if rep == 0 {
                first.push(us);
            }
            *statuses.entry(st).or_insert(0) += 1;
            resp_bytes += body.len() as u64;
            if rep == 0 && st == 200 {
                if let (Some(exp), Ok(v)) = (expected, serde_json::from_slice::<Json>(&body)) {
                    if let Some(n) = count_spans(&v) {
                        checked += 1;
                        if n != *exp {
                            mismatches += 1;
                            example.get_or_insert(format!("{id}: {n} spans, expected {exp}"));
                        }
                    }
                }
            } else if st != 200 {
                example.get_or_insert(format!(
                    "{id}: status {st}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ));
            }
        }
    }
    let n = all.len();
    println!(
        "{}",
        json!({"http": http, "ids": ids.len(), "repeats": repeats, "requests": n, "statuses": statuses,
               "latency_ms": lat_json(&mut all), "first_pass_latency_ms": lat_json(&mut first),
               "span_counts_checked": checked, "span_count_mismatches": mismatches,
               "avg_response_bytes": resp_bytes as f64 / n.max(1) as f64, "example_problem": example})
    );
    Ok(())
}

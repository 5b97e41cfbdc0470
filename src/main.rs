//! The `sightline` binary: parses flags and config, then runs the server (`serve`, the default), prints the
//! example config, or prints the version.

mod config;
mod server;

/// mimalloc rather than glibc's allocator: DogStatsD aggregation and large request bodies allocate and free
/// heavily across threads (in-process ingest+aggregate, 1M series: 0.25M -> 0.62M lines/s).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Args, Parser, Subcommand};
use config::Config;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "sightline",
    about = "Self-hosted observability backend: metrics, logs and traces in one binary"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the server (the default).
    Serve(Box<ServeArgs>),
    /// Configuration helpers.
    Config {
        /// Print a complete commented example configuration.
        #[arg(long)]
        example: bool,
    },
    /// Print the version.
    Version,
}

/// Flags of `serve`. Each also reads the env var named after it; flags beat env vars beat the config file.
#[derive(Args, Debug, Default)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "SIGHTLINE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (default ./data).
    #[arg(long, env = "SIGHTLINE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// DogStatsD UDP listener, host:port or off (default 127.0.0.1:8125).
    #[arg(long, env = "SIGHTLINE_STATSD_LISTEN")]
    statsd_listen: Option<String>,
    /// OTLP gRPC listener, host:port or off (default 127.0.0.1:4317).
    #[arg(long, env = "SIGHTLINE_OTLP_GRPC_LISTEN")]
    otlp_grpc_listen: Option<String>,
    /// OTLP HTTP listener, host:port or off (default 127.0.0.1:4318).
    #[arg(long, env = "SIGHTLINE_OTLP_HTTP_LISTEN")]
    otlp_http_listen: Option<String>,
    /// Syslog and raw log line listener (TCP and UDP), host:port or off (default 127.0.0.1:5514).
    #[arg(long, env = "SIGHTLINE_SYSLOG_LISTEN")]
    syslog_listen: Option<String>,
    /// HTTP listener: API, intake, /metrics, probes (default 127.0.0.1:7800).
    #[arg(long, env = "SIGHTLINE_HTTP_LISTEN")]
    http_listen: Option<String>,
    /// Write-ahead log fsync policy: always (default) or interval.
    #[arg(long, env = "SIGHTLINE_FSYNC")]
    fsync: Option<String>,
    /// How often monitors are evaluated (default 30s).
    #[arg(long, env = "SIGHTLINE_ALERTS_EVAL_INTERVAL")]
    alerts_eval_interval: Option<String>,
    /// How long an OK monitor group may go without data before it is forgotten, or off (default 24h).
    #[arg(long, env = "SIGHTLINE_ALERTS_GROUP_EXPIRY")]
    alerts_group_expiry: Option<String>,
    /// Comma-separated hosts or CIDRs that webhooks may target although private.
    #[arg(long, env = "SIGHTLINE_ALERTS_WEBHOOK_ALLOW")]
    alerts_webhook_allow: Option<String>,
    /// PEM file of extra certificate authorities for https webhooks (besides Mozilla's roots).
    #[arg(long, env = "SIGHTLINE_ALERTS_WEBHOOK_CA_FILE")]
    alerts_webhook_ca_file: Option<String>,
    /// How users reach Sightline (base of notification links; default http://<HTTP listener address>).
    #[arg(long, env = "SIGHTLINE_ALERTS_EXTERNAL_URL")]
    alerts_external_url: Option<String>,
    /// How often Sightline stores its own /metrics as sightline.* metrics, or off (default 10s).
    #[arg(long, env = "SIGHTLINE_SELF_MONITORING_INTERVAL")]
    self_monitoring_interval: Option<String>,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let mut cfg = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(d) = self.data_dir {
            cfg.data_dir = d;
        }
        let l = &mut cfg.listen;
        for (flag, slot) in [
            (self.statsd_listen, &mut l.statsd),
            (self.otlp_grpc_listen, &mut l.otlp_grpc),
            (self.otlp_http_listen, &mut l.otlp_http),
            (self.syslog_listen, &mut l.syslog),
            (self.http_listen, &mut l.http),
        ] {
            if let Some(v) = flag {
                *slot = v;
            }
        }
        if let Some(f) = self.fsync {
            cfg.storage.wal.fsync = match f.as_str() {
                "always" => sightline_storage::wal::FsyncPolicy::Always,
                "interval" => sightline_storage::wal::FsyncPolicy::Interval,
                other => anyhow::bail!("--fsync: {other:?} is not always or interval"),
            };
            cfg.storage.logs.wal.fsync = cfg.storage.wal.fsync;
            cfg.storage.spans.wal.fsync = cfg.storage.wal.fsync;
        }
        if let Some(v) = self.alerts_eval_interval {
            cfg.alerts.eval_interval = v;
        }
        if let Some(v) = self.alerts_group_expiry {
            cfg.alerts.group_expiry = v;
        }
        if let Some(v) = self.alerts_webhook_ca_file {
            cfg.alerts.webhook_ca_file = v;
        }
        if let Some(v) = self.alerts_external_url {
            cfg.alerts.external_url = v;
        }
        if let Some(v) = self.self_monitoring_interval {
            cfg.self_monitoring.interval = v;
        }
        if let Some(v) = self.alerts_webhook_allow {
            cfg.alerts.webhook_allow = v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        Ok(cfg)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Version) => {
            println!("sightline {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some(Cmd::Config { example }) => {
            if !example {
                anyhow::bail!("sightline config: say --example to print the example configuration");
            }
            print!("{}", config::EXAMPLE);
            Ok(())
        }
        Some(Cmd::Serve(args)) => run(*args),
        None => run(cli.serve),
    }
}

fn run(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SIGHTLINE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cfg = args.into_config()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(server::serve(cfg))
}

//! `sightline serve`: opens storage (replaying the write-ahead log), binds every enabled listener, composes
//! the tiers' routers, reports readiness, and shuts down cleanly on SIGINT/SIGTERM.

use crate::config::{parse_listen, Config};
use anyhow::Context;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::Router;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use sightline_ingest::datadog::logs::LogIntakeState;
use sightline_ingest::datadog::{IntakeMetrics, IntakeState};
use sightline_ingest::logs::{LogMetrics, LogReceiver};
use sightline_ingest::otlp::{self, Authorize, Otlp, OtlpMetrics};
use sightline_ingest::selfmon::{hostname, SelfMonitor};
use sightline_ingest::statsd::StatsdReceiver;
use sightline_model::{BatchSink, ErrorKind, LogSink, SpanSink};
use sightline_query::dashboards_http::{dashboards_router, install_shipped, DashboardState};
use sightline_query::eval::EvalOptions;
use sightline_query::http::QueryState;
use sightline_query::monitor::downtimes_http::{downtimes_router, DowntimeState};
use sightline_query::monitor::eval::{
    checkpoint, evaluate_all, resume_deliveries, EvalContext, LiveStates, StateCache,
};
use sightline_query::monitor::http::{monitors_router, MonitorState};
use sightline_query::monitor::notify::{AllowList, DeliveryConfig, Notifier};
use sightline_query::monitor::transport::TlsRoots;
use sightline_query::monitor::webhooks_http::{webhooks_router, WebhookState};
use sightline_query::spans_http::SpanQueryState;
use sightline_query::LogQueryState;
use sightline_storage::spans::SpanStore;
use sightline_storage::{
    DashboardRepo, DashboardStore, DowntimeRepo, DowntimeStore, MonitorStateRepo,
    MonitorStateStore, WebhookRepo, WebhookStore,
};
use sightline_storage::{
    LogReader, LogStore, MetricReader, MetricStore, MonitorRepo, MonitorStore, SpanReader,
};
use sightline_ui::{api_error, auth, observe, HttpMetrics, Keys};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// The dashboards shipped with Sightline (`dashboards/` in the repository), by id: installed at start-up
/// unless a dashboard with that id exists.
const SHIPPED_DASHBOARDS: &[(&str, &str)] = &[
    (
        "sightline-host-overview",
        include_str!("../dashboards/host-overview.json"),
    ),
    (
        "sightline-service-overview",
        include_str!("../dashboards/service-overview.json"),
    ),
    (
        "sightline-self-monitoring",
        include_str!("../dashboards/sightline-self-monitoring.json"),
    ),
];

/// Name of the file, in the data dir, where the bound addresses are written once the server is ready
/// (tests start the server on port 0 and read it).
pub const LISTENERS_FILE: &str = "listeners.json";

pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data dir {}", cfg.data_dir.display()))?;
    let listeners_file = cfg.data_dir.join(LISTENERS_FILE);
    let _ = std::fs::remove_file(&listeners_file);

    let http_addr = parse_listen("--http-listen", &cfg.listen.http)?;
    let statsd_addr = parse_listen("--statsd-listen", &cfg.listen.statsd)?;
    let syslog_addr = parse_listen("--syslog-listen", &cfg.listen.syslog)?;
    let otlp_grpc_addr = parse_listen("--otlp-grpc-listen", &cfg.listen.otlp_grpc)?;
    let otlp_http_addr = parse_listen("--otlp-http-listen", &cfg.listen.otlp_http)?;
    let eval_interval =
        parse_interval(&cfg.alerts.eval_interval).context("invalid --alerts-eval-interval")?;
    let group_expiry_secs =
        parse_group_expiry(&cfg.alerts.group_expiry).context("invalid --alerts-group-expiry")?;
    let self_monitoring_interval = parse_interval_or_off(&cfg.self_monitoring.interval)
        .context("invalid --self-monitoring-interval")?;
    let webhook_allow = AllowList::parse(&cfg.alerts.webhook_allow)
        .map_err(anyhow::Error::msg)
        .context("invalid --alerts-webhook-allow")?;
    let webhook_tls = match cfg.alerts.webhook_ca_file.trim() {
        "" => TlsRoots::default(),
        path => TlsRoots::with_pem_file(Path::new(path))
            .map_err(anyhow::Error::msg)
            .context("invalid --alerts-webhook-ca-file")?,
    };
    let external_url = cfg
        .alerts
        .external_url
        .trim()
        .trim_end_matches('/')
        .to_string();
    let web_url = |u: &str| u.starts_with("http://") || u.starts_with("https://");
    if !(external_url.is_empty() || web_url(&external_url)) {
        anyhow::bail!("--alerts-external-url: {external_url:?} is not an http:// or https:// URL");
    }
    let keys = Keys::new(cfg.auth.clone());
    for addr in [
        http_addr,
        statsd_addr,
        syslog_addr,
        otlp_grpc_addr,
        otlp_http_addr,
    ]
    .into_iter()
    .flatten()
    {
        if !addr.ip().is_loopback() && !keys.enabled() {
            tracing::warn!(
                "LISTENING ON NON-LOOPBACK ADDRESS {addr} WITHOUT API KEYS: anyone who can reach it can write and read; set [auth] api_keys and app_keys"
            );
        }
    }

    // Bind HTTP first so probes answer (503 on /readyz) while the write-ahead log replays.
    let ready = Arc::new(AtomicBool::new(false));
    let app: Arc<OnceLock<Router>> = Arc::new(OnceLock::new());
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let mut bound: BTreeMap<&str, SocketAddr> = BTreeMap::new();
    let http_task = match http_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind --http-listen {addr}"))?;
            let local = listener.local_addr()?;
            bound.insert("http", local);
            let app_cell = app.clone();
            let front =
                sightline_ui::probe_router(ready.clone()).fallback(move |req: Request<Body>| {
                    let app_cell = app_cell.clone();
                    async move { dispatch(&app_cell, req).await }
                });
            let mut rx = shutdown_rx.clone();
            Some(tokio::spawn(async move {
                axum::serve(listener, front)
                    .with_graceful_shutdown(async move {
                        let _ = rx.wait_for(|stop| *stop).await;
                    })
                    .await
            }))
        }
        None => None,
    };

    let monitors_dir = cfg.data_dir.join("monitors");
    let monitors: Arc<dyn MonitorRepo> = Arc::new(
        tokio::task::spawn_blocking(move || MonitorStore::open(&monitors_dir))
            .await?
            .context("cannot open the monitor store")?,
    );
    let states_dir = cfg.data_dir.join("monitors").join("states");
    let monitor_states: Arc<dyn MonitorStateRepo> = Arc::new(
        tokio::task::spawn_blocking(move || MonitorStateStore::open(&states_dir))
            .await?
            .context("cannot open the monitor state store")?,
    );
    let webhooks_dir = cfg.data_dir.join("webhooks");
    let webhooks: Arc<dyn WebhookRepo> = Arc::new(
        tokio::task::spawn_blocking(move || WebhookStore::open(&webhooks_dir))
            .await?
            .context("cannot open the webhook store")?,
    );
    let dashboards_dir = cfg.data_dir.join("dashboards");
    let dashboards: Arc<dyn DashboardRepo> = Arc::new(
        tokio::task::spawn_blocking(move || DashboardStore::open(&dashboards_dir))
            .await?
            .context("cannot open the dashboard store")?,
    );
    {
        let repo = dashboards.clone();
        let added =
            tokio::task::spawn_blocking(move || install_shipped(repo.as_ref(), SHIPPED_DASHBOARDS))
                .await?
                .map_err(anyhow::Error::msg)
                .context("cannot install the shipped dashboards")?;
        if added > 0 {
            tracing::info!("installed {added} dashboards shipped with Sightline");
        }
    }
    let downtimes_dir = cfg.data_dir.join("downtimes");
    let downtimes: Arc<dyn DowntimeRepo> = Arc::new(
        tokio::task::spawn_blocking(move || DowntimeStore::open(&downtimes_dir))
            .await?
            .context("cannot open the downtime store")?,
    );
    let mut registry = Registry::default();
    let data_dir = cfg.data_dir.clone();
    let storage_cfg = cfg.storage.clone();
    let limits = cfg.limits.clone();
    let (stores, registry) = tokio::task::spawn_blocking(move || {
        let stores = MetricStore::open(
            &data_dir.join("metrics"),
            storage_cfg.clone(),
            limits,
            &mut registry,
        )
        .context("cannot open the metric store")
        .and_then(|m| {
            let l = LogStore::open(&data_dir.join("logs"), storage_cfg.logs, &mut registry)
                .context("cannot open the log store")?;
            let sp = SpanStore::open(&data_dir.join("spans"), storage_cfg.spans, &mut registry)
                .context("cannot open the span store")?;
            Ok((m, l, sp))
        });
        (stores, registry)
    })
    .await?;
    let (store, log_store, span_store) = stores?;
    let mut registry = registry;
    store.start_background();
    let sink: Arc<dyn BatchSink> = store.clone();
    let reader: Arc<dyn MetricReader> = store.clone();
    let log_sink: Arc<dyn LogSink> = log_store.clone();
    let log_reader: Arc<dyn LogReader> = log_store.clone();
    let log_metrics = LogMetrics::new(&mut registry);
    let event_sink = log_sink.clone();
    let span_sink: Arc<dyn SpanSink> = span_store.clone();
    let span_reader: Arc<dyn SpanReader> = span_store.clone();

    let authorize: Option<Authorize> = keys.enabled().then(|| {
        let keys = keys.clone();
        let f: Authorize = Arc::new(move |headers: &axum::http::HeaderMap| {
            keys.check_write(headers)
                .map_err(|e| (e.kind(), e.to_string()))
        });
        f
    });
    let otlp_core = Arc::new(
        Otlp::new(
            span_sink,
            sink.clone(),
            log_sink.clone(),
            cfg.otlp.clone(),
            cfg.limits.clone(),
            OtlpMetrics::new(&mut registry),
            authorize,
        )
        .with_span_retention(cfg.storage.spans.retention_days),
    );
    let mut otlp_tasks = Vec::new();
    // The RED flusher stops only after both OTLP servers have finished their in-flight exports (its final
    // flush then holds their RED metrics), and before the metric store shuts down.
    let (red_stop_tx, red_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let red_task = tokio::spawn(otlp_core.clone().run_red_flusher(async move {
        let _ = red_stop_rx.await;
    }));
    if let Some(addr) = otlp_grpc_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot bind --otlp-grpc-listen {addr}"))?;
        bound.insert("otlp_grpc", listener.local_addr()?);
        let mut rx = shutdown_rx.clone();
        let core = otlp_core.clone();
        otlp_tasks.push(tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|stop| *stop).await;
            };
            if let Err(e) = otlp::serve_grpc(core, listener, stop).await {
                tracing::error!(error = %e, "the otlp grpc server stopped");
            }
        }));
    }
    if let Some(addr) = otlp_http_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot bind --otlp-http-listen {addr}"))?;
        bound.insert("otlp_http", listener.local_addr()?);
        let mut rx = shutdown_rx.clone();
        let app = otlp::http_router(otlp_core.clone());
        otlp_tasks.push(tokio::spawn(async move {
            let r = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "the otlp http server stopped");
            }
        }));
    }

    let syslog = match syslog_addr {
        Some(addr) => {
            let r = LogReceiver::start(
                addr,
                cfg.syslog.clone(),
                &cfg.limits,
                log_sink.clone(),
                log_metrics.clone(),
            )
            .with_context(|| format!("cannot start the syslog receiver on {addr}"))?;
            bound.insert("syslog", r.local_addr());
            Some(r)
        }
        None => None,
    };

    let statsd = match statsd_addr {
        Some(addr) => {
            let r = StatsdReceiver::start(
                addr,
                cfg.statsd.clone(),
                cfg.limits.clone(),
                sink.clone(),
                &mut registry,
            )
            .with_context(|| format!("cannot start the DogStatsD receiver on {addr}"))?
            .with_log_sink(log_sink.clone());
            bound.insert("statsd", r.local_addr());
            Some(r)
        }
        None => None,
    };

    let intake = Arc::new(IntakeState {
        sink: sink.clone(),
        limits: cfg.limits.clone(),
        metrics: IntakeMetrics::new(&mut registry),
    });
    let http_metrics = HttpMetrics::new(&mut registry);
    let self_monitoring_errors = Counter::default();
    registry.register(
        "sightline_self_monitoring_errors",
        "Self-monitoring scrapes of /metrics that could not be converted or stored",
        self_monitoring_errors.clone(),
    );
    let registry = Arc::new(registry);
    let log_intake = Arc::new(LogIntakeState {
        sink: log_sink,
        limits: cfg.limits.clone(),
        metrics: log_metrics,
    });
    let writes = sightline_ingest::datadog::router(intake)
        .merge(sightline_ingest::datadog::logs::router(log_intake.clone()))
        .merge(sightline_ingest::datadog::events::router(log_intake))
        .layer(from_fn_with_state(keys.clone(), auth::require_write));
    let options = EvalOptions::from_limits(&cfg.limits);
    let state_cache = Arc::new(StateCache::with_group_expiry(group_expiry_secs));
    let eval_ctx = Arc::new(EvalContext {
        monitors: monitors.clone(),
        states: monitor_states.clone(),
        metrics: reader.clone(),
        logs: Some(log_reader.clone()),
        spans: Some(span_reader.clone()),
        cache: state_cache.clone(),
        events: event_sink,
        options: options.clone(),
        downtimes: Some(downtimes.clone()),
        notifier: Some(Arc::new(Notifier::new(
            webhooks.clone(),
            monitor_states.clone(),
            DeliveryConfig {
                allow: webhook_allow,
                link_base: if external_url.is_empty() {
                    bound
                        .get("http")
                        .map(|a| format!("http://{a}"))
                        .unwrap_or_default()
                } else {
                    external_url
                },
                tls: webhook_tls,
                ..DeliveryConfig::default()
            },
        ))),
    });
    let span_query = Arc::new(SpanQueryState {
        spans: span_reader,
        logs: log_reader.clone(),
        metrics: reader.clone(),
    });
    let log_query = Arc::new(LogQueryState { reader: log_reader });
    let reads = sightline_query::http::router(Arc::new(QueryState { reader, options }))
        .merge(sightline_query::logs_router(log_query.clone()))
        .merge(sightline_query::tail_router(log_query.clone()))
        .merge(sightline_query::events_router(log_query))
        .merge(sightline_query::spans_http::spans_router(span_query))
        .merge(monitors_router(Arc::new(MonitorState {
            repo: monitors,
            states: Arc::new(LiveStates {
                stored: monitor_states,
                cache: state_cache,
            }),
        })))
        .merge(webhooks_router(Arc::new(WebhookState { repo: webhooks })))
        .merge(dashboards_router(Arc::new(DashboardState {
            repo: dashboards,
        })))
        .merge(downtimes_router(Arc::new(DowntimeState {
            repo: downtimes.clone(),
        })))
        .layer(from_fn_with_state(keys.clone(), auth::require_read));
    let full = Router::new()
        .merge(writes)
        .merge(reads)
        .merge(sightline_ui::metrics_router(registry.clone()))
        .merge(sightline_ui::web::web_router())
        .layer(from_fn_with_state(http_metrics, observe::record));
    let _ = app.set(full);

    let listeners_json = serde_json::to_string_pretty(
        &bound
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    )?;
    let tmp = listeners_file.with_extension("json.tmp");
    std::fs::write(&tmp, listeners_json)?;
    std::fs::rename(&tmp, &listeners_file)?;
    ready.store(true, Ordering::Release);
    // The monitor evaluator stops (finishing its cycle) before the stores it reads and writes shut down.
    let (eval_stop_tx, eval_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let eval_task = tokio::spawn(run_evaluator(eval_ctx, eval_interval, eval_stop_rx));
    // Self-monitoring writes into the metric store, so it too stops before the store shuts down.
    let (selfmon_stop_tx, selfmon_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let selfmon_task = self_monitoring_interval.map(|every| {
        tokio::spawn(run_self_monitoring(
            registry,
            sink.clone(),
            every,
            self_monitoring_errors,
            selfmon_stop_rx,
        ))
    });
    tracing::info!(
        "sightline ready in {} ms: {}",
        started.elapsed().as_millis(),
        bound
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );

    wait_for_signal().await;
    tracing::info!("shutting down");
    ready.store(false, Ordering::Release);
    let _ = shutdown_tx.send(true);
    if let Some(r) = statsd {
        r.shutdown().await;
    }
    if let Some(r) = syslog {
        r.shutdown().await;
    }
    if let Some(t) = http_task {
        let _ = t.await;
    }
    for t in otlp_tasks {
        let _ = t.await;
    }
    let _ = eval_stop_tx.send(());
    let _ = eval_task.await;
    let _ = selfmon_stop_tx.send(());
    if let Some(t) = selfmon_task {
        let _ = t.await;
    }
    let _ = red_stop_tx.send(());
    let _ = red_task.await;
    store.shutdown().await;
    let logs = log_store.clone();
    let _ = tokio::task::spawn_blocking(move || logs.shutdown()).await;
    let spans = span_store.clone();
    let _ = tokio::task::spawn_blocking(move || spans.shutdown()).await;
    let _ = std::fs::remove_file(&listeners_file);
    tracing::info!("stopped");
    Ok(())
}

/// Parses an interval such as `30s`, `500ms`, `1m` or `1h` (a bare number is seconds); it must be positive.
fn parse_interval(text: &str) -> anyhow::Result<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("{text:?}: expected a number and a unit, like 30s"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        u => anyhow::bail!("{text:?}: unknown unit {u:?} (expected ms, s, m or h)"),
    };
    if d.is_zero() {
        anyhow::bail!("{text:?}: the interval must be positive");
    }
    Ok(d)
}

/// An interval setting that may be `off` (`None`): `--self-monitoring-interval`, `--alerts-group-expiry`.
fn parse_interval_or_off(text: &str) -> anyhow::Result<Option<Duration>> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    parse_interval(text).map(Some)
}

/// `--alerts-group-expiry`: `off` is `None`, else the interval in whole seconds, rounded up.
fn parse_group_expiry(text: &str) -> anyhow::Result<Option<i64>> {
    Ok(parse_interval_or_off(text)?.map(|d| {
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        i64::try_from(secs).unwrap_or(i64::MAX)
    }))
}

/// Evaluates every monitor each `interval` until `stop` resolves.
async fn run_evaluator(
    ctx: Arc<EvalContext>,
    interval: Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    resume_deliveries(&ctx);
    let mut ticks = tokio::time::interval(interval);
    // Skipped ticks are not made up: a slow cycle delays the next one.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticks.tick() => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let r = evaluate_all(&ctx, now).await;
                tracing::debug!(?r, "monitor evaluation cycle");
            }
        }
    }
    // Last values and mute flags not written yet.
    let c = ctx.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || checkpoint(&c)).await {
        tracing::warn!(error = %e, "the monitor state checkpoint panicked");
    }
}

/// Every `every`, encodes the registry as `/metrics` does, converts it into `sightline.*` points and writes
/// them into the metric store through the receivers' sink, until `stop` resolves. A failed conversion or
/// write is logged and counted in `errors`; the next tick tries again.
async fn run_self_monitoring(
    registry: Arc<Registry>,
    sink: Arc<dyn BatchSink>,
    every: Duration,
    errors: Counter,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let interval_secs = u32::try_from(every.as_secs()).unwrap_or(u32::MAX).max(1);
    let mut monitor = SelfMonitor::new(&hostname(), interval_secs);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticks.tick() => {
                let mut text = String::new();
                if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
                    tracing::warn!(error = %e, "self-monitoring: cannot encode the metrics registry");
                    errors.inc();
                    continue;
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let batch = match monitor.convert(&text, now) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(error = %e, "self-monitoring: cannot convert /metrics");
                        errors.inc();
                        continue;
                    }
                };
                if batch.is_empty() {
                    continue;
                }
                match sink.write_metrics(batch).await {
                    Ok(outcome) if outcome.rejected > 0 => {
                        tracing::warn!(
                            rejected = outcome.rejected,
                            errors = ?outcome.errors,
                            "self-monitoring: the metric store refused some points"
                        );
                        errors.inc();
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "self-monitoring: cannot write to the metric store");
                        errors.inc();
                    }
                }
            }
        }
    }
}

/// Routes a request to the full application once it exists; until then answers 503.
async fn dispatch(app: &OnceLock<Router>, req: Request<Body>) -> Response {
    match app.get() {
        Some(router) => match router.clone().oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        },
        None => api_error(
            ErrorKind::Overloaded,
            "starting: replaying the write-ahead log",
        )
        .into_response(),
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_interval(" 1s ").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_interval("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_interval("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_interval("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_interval("5").unwrap(), Duration::from_secs(5));
        for bad in ["", "0s", "s", "1d", "-1s", "1.5s"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn group_expiry() {
        assert_eq!(parse_group_expiry("24h").unwrap(), Some(86_400));
        assert_eq!(parse_group_expiry(" OFF ").unwrap(), None);
        assert_eq!(parse_group_expiry("1500ms").unwrap(), Some(2));
        for bad in ["", "0s", "never", "1d"] {
            assert!(parse_group_expiry(bad).is_err(), "{bad}");
        }
    }
}

"""OpenTelemetry Python SDK (1.45) pipelines for the OTLP end-to-end tests.

Each helper builds its own provider, processor/reader and OTLP exporter — nothing is registered globally
(no `set_tracer_provider` & co., no atexit hooks) — so tests can run many pipelines side by side against one
or several `sightline` processes. Every exporter is wrapped so that each `export()` result is recorded: the
SDK's processors and readers only log a failed export, so `flush()` force-flushes and then asserts that every
export so far returned SUCCESS (and that at least one happened).

    from opentelemetry import trace
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.trace import SpanKind, Status, StatusCode
    import otel_helpers as oh

    tp = oh.tracer_provider(server.otlp_grpc, "grpc", compression="gzip")   # or ("http://127.0.0.1:4318", "http")
    lp = oh.logger_provider(server.otlp_http, "http")
    mp = oh.meter_provider(server.otlp_http, "http", temporality="delta", exponential=True)

    tracer = tp.tracer("checkout")
    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER, attributes={"run.id": run}) as root:
        with tracer.start_as_current_span("db.query", kind=SpanKind.CLIENT) as db:
            db.set_status(Status(StatusCode.ERROR, "boom"))
        lp.emit(f"checkout done {run}", severity=SeverityNumber.WARN, attributes={"run.id": run})
        # ... or std logging: log = oh.std_logger(lp, "shop"); log.warning("checkout done %s", run)
    ids = oh.span_ids(root)                  # {"trace_id": 32 hex, "span_id": 16 hex}

    meter = mp.meter("shop")
    meter.create_counter("py.requests").add(3, {"run.id": run})
    meter.create_histogram("py.latency", unit="ms").record(12.5)

    tp.flush(); lp.flush(); mp.flush()       # each raises AssertionError if any export failed
    for p in (tp, lp, mp): p.shutdown()

Endpoints: for "grpc" give "host:port" or "http://host:port" (plaintext, `insecure=True`); for "http" give the
OTLP/HTTP base URL ("http://host:port" or "host:port"): the signal path (/v1/traces, /v1/metrics, /v1/logs) is
appended. "http" means OTLP/HTTP with protobuf bodies (`Content-Type: application/x-protobuf`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
    _Gauge,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

PROTOCOLS = ("grpc", "http")
DEFAULT_TIMEOUT_S = 10.0
# Processors never export on their own schedule: only flush()/shutdown() do, so tests decide when data leaves.
_NEVER_MS = 24 * 60 * 60 * 1000

DELTA = AggregationTemporality.DELTA
CUMULATIVE = AggregationTemporality.CUMULATIVE

# temporality="delta" is what OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta gives users: monotonic
# sums and histograms are delta, up-down counters and gauges stay cumulative. Pass a dict for anything else.
TEMPORALITIES = {
    "cumulative": {
        Counter: CUMULATIVE,
        UpDownCounter: CUMULATIVE,
        Histogram: CUMULATIVE,
        _Gauge: CUMULATIVE,
        ObservableCounter: CUMULATIVE,
        ObservableUpDownCounter: CUMULATIVE,
        ObservableGauge: CUMULATIVE,
    },
    "delta": {
        Counter: DELTA,
        UpDownCounter: CUMULATIVE,
        Histogram: DELTA,
        _Gauge: CUMULATIVE,
        ObservableCounter: DELTA,
        ObservableUpDownCounter: CUMULATIVE,
        ObservableGauge: CUMULATIVE,
    },
}


def resource(service_name: str = "py-shop", environment: str = "e2e", host_name: str = "e2e-host", **extra: Any) -> Resource:
    """The Resource every helper uses: service.name, deployment.environment.name, host.name (+ `extra`, whose
    keys may be given with dots via a dict: resource(**{"service.version": "1.2"}))."""
    return Resource.create(
        {"service.name": service_name, "deployment.environment.name": environment, "host.name": host_name, **extra}
    )


def span_ids(span) -> dict:
    """{"trace_id": 32 lowercase hex, "span_id": 16 lowercase hex} of a started span."""
    ctx = span.get_span_context()
    return {"trace_id": trace_api.format_trace_id(ctx.trace_id), "span_id": trace_api.format_span_id(ctx.span_id)}


class ExportRecorder:
    """Records the result of every export() of the exporters it wraps (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.results: list[tuple[str, Any, str | None]] = []  # (signal, result enum, exception text)

    def wrap(self, exporter, signal: str):
        """Replace `exporter.export` on this instance with one that records its result (the exporter object
        itself stays the same, so readers still see its preferred temporality/aggregation)."""
        original = exporter.export

        def export(*args, **kwargs):
            try:
                result = original(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - recorded, then re-raised to the SDK as before
                self._add(signal, None, repr(exc))
                raise
            self._add(signal, result, None)
            return result

        exporter.export = export
        return exporter

    def _add(self, signal, result, error):
        with self._lock:
            self.results.append((signal, result, error))

    @property
    def ok_count(self) -> int:
        with self._lock:
            return sum(1 for _, r, _ in self.results if r is not None and r.name == "SUCCESS")

    @property
    def failures(self) -> list:
        with self._lock:
            return [(s, r, e) for s, r, e in self.results if r is None or r.name != "SUCCESS"]

    def assert_all_ok(self, min_exports: int = 1) -> None:
        failures = self.failures
        assert not failures, f"OTLP export failed: {failures} (all results: {self.results})"
        assert self.ok_count >= min_exports, f"expected >= {min_exports} successful export(s), got {self.results}"


class _Pipeline:
    signal = ""

    def __init__(self, provider, exporter, recorder: ExportRecorder, protocol: str, endpoint: str):
        self.provider = provider
        self.exporter = exporter
        self.recorder = recorder
        self.protocol = protocol
        self.endpoint = endpoint  # what the exporter was given
        self._closed = False

    def flush(self, timeout_s: float = 30.0, min_exports: int = 1) -> None:
        """Force-flush pending data through the exporter, then assert every export so far succeeded."""
        flushed = self.provider.force_flush(timeout_millis=int(timeout_s * 1000))
        assert flushed is not False, f"{self.signal} force_flush timed out after {timeout_s}s"
        self.recorder.assert_all_ok(min_exports=min_exports)

    def assert_all_ok(self, min_exports: int = 1) -> None:
        self.recorder.assert_all_ok(min_exports=min_exports)

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self.provider.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()
        return False


class TracePipeline(_Pipeline):
    signal = "traces"

    def tracer(self, name: str = "sightline-e2e", version: str = "1.0.0"):
        return self.provider.get_tracer(name, version)


class MetricPipeline(_Pipeline):
    signal = "metrics"

    def __init__(self, provider, exporter, recorder, protocol, endpoint, reader):
        super().__init__(provider, exporter, recorder, protocol, endpoint)
        self.reader = reader

    def meter(self, name: str = "sightline-e2e", version: str = "1.0.0"):
        return self.provider.get_meter(name, version)

    def flush(self, timeout_s: float = 30.0, min_exports: int = 1) -> None:
        """Collect and export once (one request per flush, carrying every instrument), then assert success.
        With delta temporality each flush carries what was recorded since the previous one."""
        self.reader.force_flush(timeout_millis=int(timeout_s * 1000))
        self.recorder.assert_all_ok(min_exports=min_exports)


class LogPipeline(_Pipeline):
    signal = "logs"

    def logger(self, name: str = "sightline-e2e", version: str = "1.0.0"):
        """An OpenTelemetry logs-API Logger of this provider."""
        return self.provider.get_logger(name, version)

    def emit(
        self,
        body: Any,
        severity: SeverityNumber = SeverityNumber.INFO,
        attributes: dict | None = None,
        *,
        severity_text: str | None = None,
        context: Context | None = None,
        timestamp_ns: int | None | str = "now",
        event_name: str | None = None,
        logger_name: str = "sightline-e2e",
    ) -> None:
        """Emit one log record through the logs API. Without `context` it uses the current context, so a
        record emitted inside `tracer.start_as_current_span(...)` carries that span's trace and span ids.
        timestamp_ns: "now" (default), an int, or None to leave time_unix_nano unset (0 on the wire) as the
        logs API does when no timestamp is given: then only observed_time_unix_nano is set."""
        if timestamp_ns == "now":
            timestamp_ns = time.time_ns()
        self.logger(logger_name).emit(
            timestamp=timestamp_ns,
            context=context,
            severity_number=severity,
            severity_text=severity_text if severity_text is not None else _severity_text(severity),
            body=body,
            attributes=attributes,
            event_name=event_name,
        )

    def logging_handler(self, level: int = logging.NOTSET) -> logging.Handler:
        """A std-logging handler bound to this provider (the SDK's LoggingHandler, deprecated in 1.45 in favour
        of opentelemetry-instrumentation-logging: its DeprecationWarning is silenced here)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return LoggingHandler(level=level, logger_provider=self.provider)


def std_logger(pipeline: LogPipeline, name: str, level: int = logging.DEBUG) -> logging.Logger:
    """A std `logging.Logger` that sends its records (and only to) `pipeline`: record attributes from `extra=`
    become log attributes; the active span's ids are attached. Call again with the same name to reuse it."""
    log = logging.getLogger(name)
    for h in list(log.handlers):
        if isinstance(h, LoggingHandler):
            log.removeHandler(h)
    log.addHandler(pipeline.logging_handler())
    log.setLevel(level)
    log.propagate = False
    return log


def _severity_text(sev: SeverityNumber) -> str:
    # SeverityNumber.WARN -> "WARN", WARN2 -> "WARN" (the short name OTel SDKs use)
    return sev.name.rstrip("0123456789")


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")


def _grpc_endpoint(endpoint: str) -> str:
    return endpoint if "://" in endpoint else "http://" + endpoint


def _http_url(endpoint: str, path: str) -> str:
    base = endpoint if "://" in endpoint else "http://" + endpoint
    return base.rstrip("/") + path


def _compression(protocol: str, compression: str | None):
    if compression in (None, "none"):
        name = "none"
    elif compression == "gzip":
        name = "gzip"
    else:
        raise ValueError(f"compression must be None, 'none' or 'gzip', not {compression!r}")
    if protocol == "grpc":
        from grpc import Compression

        return Compression.Gzip if name == "gzip" else Compression.NoCompression
    from opentelemetry.exporter.otlp.proto.http import Compression

    return Compression.Gzip if name == "gzip" else Compression.NoCompression


def _exporter_kwargs(protocol: str, endpoint: str, path: str, compression, timeout_s: float) -> dict:
    if protocol == "grpc":
        return dict(endpoint=_grpc_endpoint(endpoint), insecure=True, compression=compression, timeout=timeout_s)
    return dict(endpoint=_http_url(endpoint, path), compression=compression, timeout=timeout_s)


def tracer_provider(
    endpoint: str,
    protocol: str,
    *,
    compression: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    res: Resource | None = None,
    **resource_kw: Any,
) -> TracePipeline:
    """A TracerProvider with a BatchSpanProcessor (exports only on flush()/shutdown()) and an OTLP span exporter.
    protocol: "grpc" or "http" (http/protobuf); compression: None/"none" or "gzip".
    `res` or resource(**resource_kw) gives the Resource."""
    _check_protocol(protocol)
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    recorder = ExportRecorder()
    exporter = OTLPSpanExporter(
        **_exporter_kwargs(protocol, endpoint, "/v1/traces", _compression(protocol, compression), timeout_s)
    )
    recorder.wrap(exporter, "traces")
    provider = TracerProvider(resource=res or resource(**resource_kw), shutdown_on_exit=False)
    provider.add_span_processor(
        BatchSpanProcessor(exporter, schedule_delay_millis=_NEVER_MS, export_timeout_millis=int(timeout_s * 1000) + 1000)
    )
    return TracePipeline(provider, exporter, recorder, protocol, endpoint)


def meter_provider(
    endpoint: str,
    protocol: str,
    temporality: str | dict = "delta",
    exponential: bool = False,
    *,
    max_size: int = 160,
    max_scale: int = 20,
    compression: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    views: tuple[View, ...] = (),
    res: Resource | None = None,
    **resource_kw: Any,
) -> MetricPipeline:
    """A MeterProvider with a PeriodicExportingMetricReader whose interval is infinite (no background thread:
    only flush() exports) and an OTLP metric exporter.
    temporality: "delta", "cumulative", or a {instrument class: AggregationTemporality} dict (merged over
    "cumulative"). exponential=True makes every Histogram a base-2 exponential histogram
    (ExponentialBucketHistogramAggregation(max_size, max_scale) as the exporter's preferred aggregation, the same
    path as OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=base2_exponential_bucket_histogram);
    `views` can still override per instrument."""
    _check_protocol(protocol)
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    if isinstance(temporality, str):
        if temporality not in TEMPORALITIES:
            raise ValueError(f"temporality must be one of {tuple(TEMPORALITIES)} or a dict, not {temporality!r}")
        preferred_temporality = dict(TEMPORALITIES[temporality])
    else:
        preferred_temporality = {**TEMPORALITIES["cumulative"], **temporality}
    preferred_aggregation = (
        {Histogram: ExponentialBucketHistogramAggregation(max_size=max_size, max_scale=max_scale)} if exponential else None
    )
    recorder = ExportRecorder()
    exporter = OTLPMetricExporter(
        **_exporter_kwargs(protocol, endpoint, "/v1/metrics", _compression(protocol, compression), timeout_s),
        preferred_temporality=preferred_temporality,
        preferred_aggregation=preferred_aggregation,
    )
    recorder.wrap(exporter, "metrics")
    reader = PeriodicExportingMetricReader(
        exporter, export_interval_millis=math.inf, export_timeout_millis=int(timeout_s * 1000) + 1000
    )
    provider = MeterProvider(
        metric_readers=[reader], resource=res or resource(**resource_kw), shutdown_on_exit=False, views=views
    )
    return MetricPipeline(provider, exporter, recorder, protocol, endpoint, reader)


def logger_provider(
    endpoint: str,
    protocol: str,
    *,
    compression: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    res: Resource | None = None,
    **resource_kw: Any,
) -> LogPipeline:
    """A LoggerProvider with a BatchLogRecordProcessor (exports only on flush()/shutdown()) and an OTLP log
    exporter. Emit with pipeline.emit(...), pipeline.logger(name).emit(...) or std_logger(pipeline, name)."""
    _check_protocol(protocol)
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    recorder = ExportRecorder()
    exporter = OTLPLogExporter(
        **_exporter_kwargs(protocol, endpoint, "/v1/logs", _compression(protocol, compression), timeout_s)
    )
    recorder.wrap(exporter, "logs")
    provider = LoggerProvider(resource=res or resource(**resource_kw), shutdown_on_exit=False)
    provider.add_log_record_processor(
        BatchLogRecordProcessor(exporter, schedule_delay_millis=_NEVER_MS, export_timeout_millis=int(timeout_s * 1000) + 1000)
    )
    return LogPipeline(provider, exporter, recorder, protocol, endpoint)


__all__ = [
    "CUMULATIVE",
    "DELTA",
    "ExportRecorder",
    "LogPipeline",
    "LogRecordExportResult",
    "MetricExportResult",
    "MetricPipeline",
    "SeverityNumber",
    "SpanExportResult",
    "TracePipeline",
    "logger_provider",
    "meter_provider",
    "resource",
    "span_ids",
    "std_logger",
    "tracer_provider",
]

// Emits one trace, one log record and one counter to an OTLP/HTTP endpoint with the OpenTelemetry Node SDK
// (@opentelemetry/sdk-node 0.223.0) and its HTTP/JSON exporters (the `exporter-*-otlp-http` packages send
// `Content-Type: application/json`; the protobuf ones are the `-proto` packages, not used here).
//
//   node emit.mjs <otlp-http-base-url> <run-id>      e.g. node emit.mjs http://127.0.0.1:4318 r123
//
// Requests: POST /v1/traces (4 spans), /v1/logs (1 record), and /v1/metrics twice — once for the explicit
// forceFlush and once more from shutdown; `node.requests` is a cumulative monotonic sum (`asDouble: 3` both
// times), so a receiver must not add the two. Bodies are sent with `Transfer-Encoding: chunked`, uncompressed.
//
// On success prints exactly one JSON line to stdout:
//   {"trace_id": "<32 hex>", "root_span_id": "<16 hex>", "span_count": 4}
// and exits 0. Exits non-zero (with the reason on stderr) if any export fails or a signal exported nothing:
// the SDK only reports export failures to its global error handler, so every exporter's `export` is wrapped
// to record the ExportResult it hands back.
import { context, diag, DiagConsoleLogger, DiagLogLevel, metrics, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { logs, SeverityNumber } from '@opentelemetry/api-logs';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

const SERVICE = 'node-shop';
const EXPORT_TIMEOUT_MS = 10_000;

function usage(msg) {
  process.stderr.write(`emit.mjs: ${msg}\nusage: node emit.mjs <otlp-http-base-url> <run-id>\n`);
  process.exit(2);
}

const [baseArg, runId] = process.argv.slice(2);
if (!baseArg || !runId) usage('missing arguments');
const base = baseArg.replace(/\/+$/, '');
if (!/^https?:\/\//.test(base)) usage(`not an http(s) URL: ${baseArg}`);

// SDK diagnostics (export errors, partial successes) go to stderr; stdout carries only the result line.
diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.WARN);

// Every export's result, per signal.
const results = { traces: [], logs: [], metrics: [] };
function watched(signal, exporter) {
  const exportOriginal = exporter.export.bind(exporter);
  exporter.export = (items, resultCallback) => {
    exportOriginal(items, (result) => {
      results[signal].push(result);
      resultCallback(result);
    });
  };
  return exporter;
}

const exporterOptions = (path) => ({ url: `${base}${path}`, timeoutMillis: EXPORT_TIMEOUT_MS });
const spanProcessor = new BatchSpanProcessor(watched('traces', new OTLPTraceExporter(exporterOptions('/v1/traces'))), {
  exportTimeoutMillis: EXPORT_TIMEOUT_MS,
});
// sdk-logs 0.223 takes an options object here (older lines took the exporter as first argument).
const logProcessor = new BatchLogRecordProcessor({
  exporter: watched('logs', new OTLPLogExporter(exporterOptions('/v1/logs'))),
  exportTimeoutMillis: EXPORT_TIMEOUT_MS,
});
const metricReader = new PeriodicExportingMetricReader({
  exporter: watched('metrics', new OTLPMetricExporter(exporterOptions('/v1/metrics'))),
  // Exports only on the explicit forceFlush/shutdown below (the interval must stay under 2^31 ms).
  exportIntervalMillis: 24 * 60 * 60 * 1000,
  exportTimeoutMillis: EXPORT_TIMEOUT_MS,
});

const sdk = new NodeSDK({
  serviceName: SERVICE,
  resource: resourceFromAttributes({ 'service.name': SERVICE, 'deployment.environment.name': 'e2e' }),
  autoDetectResources: false,
  instrumentations: [],
  spanProcessors: [spanProcessor],
  logRecordProcessors: [logProcessor],
  metricReaders: [metricReader],
});
sdk.start();

const tracer = trace.getTracer('sightline-e2e', '1.0.0');
const logger = logs.getLogger('sightline-e2e', '1.0.0');
const meter = metrics.getMeter('sightline-e2e', '1.0.0');

const root = tracer.startSpan('GET /cart', {
  kind: SpanKind.SERVER,
  attributes: { 'http.route': '/cart', 'http.request.method': 'GET', 'run.id': runId },
});
const rootCtx = trace.setSpan(context.active(), root);
context.with(rootCtx, () => {
  const db = tracer.startSpan('db.query', {
    kind: SpanKind.CLIENT,
    attributes: { 'db.statement': 'SELECT * FROM cart WHERE user_id = ?', 'db.system.name': 'postgresql', 'run.id': runId },
  });
  db.setStatus({ code: SpanStatusCode.ERROR, message: 'connection reset' });
  db.end();

  const render = tracer.startSpan('render', { kind: SpanKind.INTERNAL, attributes: { 'run.id': runId } });
  context.with(trace.setSpan(context.active(), render), () => {
    const tpl = tracer.startSpan('render.template', { kind: SpanKind.INTERNAL, attributes: { 'run.id': runId } });
    tpl.end();
  });
  render.end();

  // Emitted in the root span's context: the record carries its trace and span ids.
  logger.emit({
    severityNumber: SeverityNumber.WARN,
    severityText: 'WARN',
    body: `node checkout done ${runId}`,
    attributes: { 'run.id': runId },
  });
});
root.end();

meter.createCounter('node.requests', { description: 'requests served', unit: '1' }).add(3, { 'run.id': runId });

const { traceId, spanId } = root.spanContext();
const failures = [];
try {
  await Promise.all([spanProcessor.forceFlush(), logProcessor.forceFlush(), metricReader.forceFlush()]);
} catch (err) {
  failures.push(`forceFlush: ${err?.message ?? err}`);
}
try {
  await sdk.shutdown();
} catch (err) {
  failures.push(`shutdown: ${err?.message ?? err}`);
}

for (const [signal, list] of Object.entries(results)) {
  if (list.length === 0) failures.push(`${signal}: nothing was exported`);
  for (const r of list) {
    if (r.code !== ExportResultCode.SUCCESS) failures.push(`${signal}: export failed: ${r.error?.message ?? r.error ?? 'unknown error'}`);
  }
}
if (failures.length > 0) {
  process.stderr.write(`emit.mjs: ${failures.join('\n  ')}\n`);
  process.exit(1);
}
process.stdout.write(`{"trace_id": "${traceId}", "root_span_id": "${spanId}", "span_count": 4}\n`);

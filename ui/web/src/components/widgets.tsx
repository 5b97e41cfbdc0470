// Dashboard widgets: Datadog dashboard JSON widget definitions (timeseries, query_value, toplist, heatmap,
// log_stream, trace_service, note, group) drawn from Sightline's APIs, template variables substituted; all text.
import type { ComponentChildren } from "preact";
import { useMemo } from "preact/hooks";
import { apiGet, apiPost, useApi, type MetricAnswer, type MetricSeries } from "../api";
import { ErrorText } from "./common";
import { TimeseriesChart, type ChartSeries, type ChartType } from "./chart";
import { Heatmap, loadHeatmap, type HeatData } from "./heatmap";
import { RedList, type RedFigures } from "./red";
import { formatIso, formatNumber, logStatusClass } from "../format";
import "./widgets.css";

/** A widget of Datadog's dashboard JSON (the fields the app reads; the rest is kept by the API). */
export interface Widget {
  id?: number;
  definition: WidgetDefinition;
  layout?: { x: number; y: number; width: number; height: number };
}

export interface WidgetDefinition {
  type: string;
  title?: string;
  [key: string]: unknown;
}

/** A template variable's current value and the tag key it stands for (`prefix`). */
export interface TemplateValue {
  name: string;
  prefix: string | null;
  value: string;
}

/** What every widget needs: the time range (unix seconds, and as in the URL) and the template variables. */
export interface WidgetContext {
  from: number;
  to: number;
  /** The URL's range (`now-1h`, or unix ms), for the log search. */
  relFrom: string;
  relTo: string;
  vars: TemplateValue[];
}

// ---------------------------------------------------------------------------------------------------------
// Template variables

function isWild(v: string): boolean {
  return v.trim() === "" || v.trim() === "*";
}

/** One `$name` (or `$name.value`) reference replaced: the scope term it stands for, or null when wildcard. */
function term(v: TemplateValue, valueOnly: boolean): string | null {
  if (isWild(v.value)) return null;
  if (valueOnly || !v.prefix) return v.value;
  return `${v.prefix}:${v.value}`;
}

const VAR_RE = /\$([A-Za-z_][A-Za-z0-9_.-]*?)(\.value)?(?![A-Za-z0-9_-])/g;

function lookup(vars: TemplateValue[], name: string): TemplateValue | undefined {
  return vars.find((v) => v.name === name);
}

/**
 * The query with its template variables substituted. In a metric scope (`{$host,$env}`) a wildcard variable
 * drops out and an empty scope becomes `{*}`; elsewhere (log searches) a wildcard variable is removed.
 */
export function substitute(query: string, vars: TemplateValue[]): string {
  if (vars.length === 0 || !query.includes("$")) return query;
  const inScopes = query.replace(/\{([^{}]*)\}/g, (whole, body: string) => {
    if (!body.includes("$")) return whole;
    const terms = body
      .split(",")
      .map((t) => t.trim())
      .flatMap((t) => {
        const m = /^(!?)\$([A-Za-z_][A-Za-z0-9_-]*)(\.value)?$/.exec(t);
        if (!m) return [t];
        const v = lookup(vars, m[2]);
        if (!v) return [t];
        const r = term(v, !!m[3]);
        return r === null ? [] : [m[1] + r];
      })
      .filter((t) => t !== "");
    const kept = terms.filter((t) => t !== "*");
    return `{${kept.length ? kept.join(",") : "*"}}`;
  });
  return inScopes
    .replace(VAR_RE, (whole, name: string, dotValue: string | undefined) => {
      const v = lookup(vars, name);
      if (!v) return whole;
      return term(v, !!dotValue) ?? "";
    })
    .replace(/\s{2,}/g, " ")
    .trim();
}

// ---------------------------------------------------------------------------------------------------------
// Metric queries

/** One query of a widget request as the v1 API takes it, with how to draw it. */
interface MetricRequest {
  query: string;
  display: ChartType;
  aggregator: string | null;
  /** Datadog `formulas[].limit`: how many groups, in which order. */
  limit: { count: number; order: string } | null;
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

function obj(v: unknown): Record<string, unknown> | null {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function displayType(v: unknown): ChartType {
  return v === "area" || v === "bars" ? v : "line";
}

/** The formula with each query name replaced by its query in parentheses (as the metrics explorer does). */
function expandNames(formula: string, queries: Map<string, string>): string {
  return formula.replace(/[A-Za-z_][A-Za-z0-9_]*/g, (name) => {
    const q = queries.get(name);
    return q === undefined ? name : `(${q})`;
  });
}

/** A widget's `requests` as v1 queries: `q` strings, or `queries` + `formulas` (metrics data source). */
export function metricRequests(def: WidgetDefinition, vars: TemplateValue[]): MetricRequest[] | { error: string } {
  const out: MetricRequest[] = [];
  const reqs = Array.isArray(def.requests) ? def.requests : obj(def.requests) ? [def.requests] : [];
  for (const r0 of reqs) {
    const r = obj(r0);
    if (!r) continue;
    const display = displayType(r.display_type);
    const q = str(r.q);
    if (q !== null && q.trim() !== "") {
      out.push({ query: substitute(q, vars), display, aggregator: str(r.aggregator), limit: null });
      continue;
    }
    const queries = arr(r.queries).map(obj).filter((x): x is Record<string, unknown> => x !== null);
    if (queries.length === 0) continue;
    const named = new Map<string, string>();
    let aggregator: string | null = null;
    for (const qd of queries) {
      const source = str(qd.data_source) ?? "metrics";
      const name = str(qd.name);
      const text = str(qd.query);
      if (source !== "metrics") return { error: `unsupported data source ${source} (only metrics)` };
      if (name && text) named.set(name, substitute(text, vars));
      aggregator ??= str(qd.aggregator);
    }
    const formulas = arr(r.formulas).map(obj).filter((x): x is Record<string, unknown> => x !== null);
    if (formulas.length === 0) {
      for (const text of named.values()) out.push({ query: text, display, aggregator, limit: null });
      continue;
    }
    for (const f of formulas) {
      const text = str(f.formula);
      if (!text) continue;
      const lim = obj(f.limit);
      const count = lim && typeof lim.count === "number" ? lim.count : null;
      out.push({
        query: expandNames(text, named),
        display,
        aggregator,
        limit: count !== null ? { count, order: str(lim?.order) ?? "desc" } : null,
      });
    }
  }
  if (out.length === 0) return { error: "this widget has no metric query" };
  return out;
}

async function runQuery(query: string, ctx: WidgetContext, signal: AbortSignal): Promise<MetricSeries[]> {
  const qs = new URLSearchParams({ from: String(ctx.from), to: String(ctx.to), query });
  const a = await apiGet<MetricAnswer>(`/api/v1/query?${qs.toString()}`, signal);
  return Array.isArray(a.series) ? a.series : [];
}

function groupLabel(s: MetricSeries): string {
  if (Array.isArray(s.tag_set) && s.tag_set.length > 0) return s.tag_set.join(",");
  return s.expression || s.metric || s.scope || "";
}

function points(s: MetricSeries): [number, number | null][] {
  return Array.isArray(s.pointlist) ? s.pointlist : [];
}

function values(s: MetricSeries): number[] {
  return points(s)
    .map(([, v]) => v)
    .filter((v): v is number => v !== null && Number.isFinite(v));
}

/** The series reduced to one number: `last` (default), `avg`, `sum`, `min`, `max`; null without points. */
function reduce(vs: number[], aggregator: string | null): number | null {
  if (vs.length === 0) return null;
  switch (aggregator) {
    case "avg":
    case "mean":
      return vs.reduce((a, b) => a + b, 0) / vs.length;
    case "sum":
      return vs.reduce((a, b) => a + b, 0);
    case "min":
      return Math.min(...vs);
    case "max":
      return Math.max(...vs);
    default:
      return vs[vs.length - 1];
  }
}

/** Runs every request (errors kept per widget): the series of each, in order. */
async function runAll(reqs: MetricRequest[], ctx: WidgetContext, signal: AbortSignal): Promise<MetricSeries[][]> {
  return Promise.all(reqs.map((r) => runQuery(r.query, ctx, signal)));
}

function ctxKey(ctx: WidgetContext): string {
  return `${ctx.from}-${ctx.to}`;
}

// ---------------------------------------------------------------------------------------------------------
// The widgets

function Body({ loading, error, children }: { loading: boolean; error: string | null; children?: ComponentChildren }) {
  if (error !== null) return <ErrorText error={error} testid="widget-error" />;
  if (loading) return <p class="muted loading">Loading…</p>;
  return <>{children}</>;
}

function TimeseriesWidget({ def, ctx }: { def: WidgetDefinition; ctx: WidgetContext }) {
  const reqs = metricRequests(def, ctx.vars);
  const key = JSON.stringify([reqs, ctxKey(ctx)]);
  const res = useApi<ChartSeries[]>(key, async (signal) => {
    if ("error" in reqs) throw new Error(reqs.error);
    const all = await runAll(reqs, ctx, signal);
    const many = all.filter((s) => s.length > 0).length > 1;
    return all.flatMap((ss, i) =>
      ss.map((s) => ({
        label: (many ? `${s.metric || reqs[i].query} ` : "") + groupLabel(s),
        points: points(s),
      })),
    );
  });
  const type = "error" in reqs ? "line" : reqs[0].display;
  const series = res.data ?? [];
  return (
    <Body loading={res.loading && !res.data} error={res.error ? res.error.message : null}>
      {series.length === 0 ? (
        <p class="muted">No data in this time range.</p>
      ) : (
        <TimeseriesChart
          series={series}
          type={type}
          height={180}
          range={[ctx.from * 1000, ctx.to * 1000]}
          testid="widget-chart"
          legendTestid="widget-legend-item"
        />
      )}
    </Body>
  );
}

function precisionOf(def: WidgetDefinition): number | null {
  return typeof def.precision === "number" && def.precision >= 0 && def.precision <= 10 ? def.precision : null;
}

function QueryValueWidget({ def, ctx }: { def: WidgetDefinition; ctx: WidgetContext }) {
  const reqs = metricRequests(def, ctx.vars);
  const key = JSON.stringify([reqs, ctxKey(ctx)]);
  const res = useApi<number | null>(key, async (signal) => {
    if ("error" in reqs) throw new Error(reqs.error);
    const r = reqs[0];
    const series = await runQuery(r.query, ctx, signal);
    // Every group's points together (a query_value shows one number).
    return reduce(series.flatMap(values), r.aggregator);
  });
  const precision = precisionOf(def);
  const v = res.data;
  const text = v === null || v === undefined ? "—" : precision !== null ? v.toFixed(precision) : formatNumber(v);
  const unit = str(def.custom_unit);
  return (
    <Body loading={res.loading && res.data === null} error={res.error ? res.error.message : null}>
      <p class="w-big num" data-testid="widget-value">
        {text}
        {unit && <span class="w-unit">{unit}</span>}
      </p>
    </Body>
  );
}

interface TopRow {
  label: string;
  value: number;
}

function ToplistWidget({ def, ctx }: { def: WidgetDefinition; ctx: WidgetContext }) {
  const reqs = metricRequests(def, ctx.vars);
  const key = JSON.stringify([reqs, ctxKey(ctx)]);
  const res = useApi<TopRow[]>(key, async (signal) => {
    if ("error" in reqs) throw new Error(reqs.error);
    const r = reqs[0];
    // `top(q, n, 'mean', 'desc')` is in the query language (the server ranks and limits); each group's row
    // shows its last value, sorted here as the query asks.
    const series = await runQuery(r.query, ctx, signal);
    const rows: TopRow[] = [];
    for (const s of series) {
      const v = reduce(values(s), r.aggregator ?? "last");
      if (v !== null) rows.push({ label: groupLabel(s), value: v });
    }
    const asc = /^\s*bottom\s*\(/.test(r.query) || /'asc'\s*\)\s*$/.test(r.query) || r.limit?.order === "asc";
    rows.sort((a, b) => (asc ? a.value - b.value : b.value - a.value));
    return r.limit ? rows.slice(0, r.limit.count) : rows.slice(0, 100);
  });
  const rows = res.data ?? [];
  const max = Math.max(...rows.map((r) => Math.abs(r.value)), 0);
  return (
    <Body loading={res.loading && !res.data} error={res.error ? res.error.message : null}>
      {rows.length === 0 ? (
        <p class="muted">No data in this time range.</p>
      ) : (
        <ul class="w-toplist">
          {rows.map((r) => (
            <li key={r.label} class="w-top-row" data-testid="toplist-row">
              <span class="w-top-label mono">{r.label}</span>
              <span class="w-top-bar">
                <span class="w-top-fill" style={{ width: `${max > 0 ? (Math.abs(r.value) / max) * 100 : 0}%` }} />
              </span>
              <span class="w-top-value num mono">{formatNumber(r.value)}</span>
            </li>
          ))}
        </ul>
      )}
    </Body>
  );
}

function HeatmapWidget({ def, ctx }: { def: WidgetDefinition; ctx: WidgetContext }) {
  const reqs = metricRequests(def, ctx.vars);
  const key = JSON.stringify([reqs, ctxKey(ctx)]);
  const res = useApi<HeatData>(key, (signal) => {
    if ("error" in reqs) return Promise.reject(new Error(reqs.error));
    return loadHeatmap(reqs[0].query, ctx.from, ctx.to, signal);
  });
  const data = res.data;
  return (
    <Body loading={res.loading && !data} error={res.error ? res.error.message : null}>
      {!data || data.columns.length === 0 ? (
        <p class="muted">No data in this time range.</p>
      ) : (
        <Heatmap data={data} range={[ctx.from * 1000, ctx.to * 1000]} />
      )}
    </Body>
  );
}

interface LogRow {
  id: string;
  attributes: { timestamp: string; message?: string; status?: string; service?: string };
}

function LogStreamWidget({ def, ctx }: { def: WidgetDefinition; ctx: WidgetContext }) {
  const query = substitute(str(def.query) ?? "", ctx.vars);
  const key = JSON.stringify([query, ctx.relFrom, ctx.relTo, ctxKey(ctx)]);
  const res = useApi<LogRow[]>(key, async (signal) => {
    const a = await apiPost<{ data: LogRow[] }>(
      "/api/v2/logs/events/search",
      { filter: { query: query || "*", from: ctx.relFrom, to: ctx.relTo }, page: { limit: 20 }, sort: "-timestamp" },
      signal,
    );
    return Array.isArray(a.data) ? a.data : [];
  });
  const rows = res.data ?? [];
  return (
    <Body loading={res.loading && !res.data} error={res.error ? res.error.message : null}>
      {rows.length === 0 ? (
        <p class="muted">No logs in this time range.</p>
      ) : (
        <ul class="w-logs">
          {rows.map((l) => (
            <li key={l.id} class="w-log" data-testid="widget-log-row">
              <span class="mono muted nowrap">{formatIso(l.attributes.timestamp)}</span>
              <span class={logStatusClass(l.attributes.status)}>{l.attributes.status ?? ""}</span>
              <span class="w-log-svc">{l.attributes.service ?? ""}</span>
              <span class="w-log-msg mono">{l.attributes.message ?? ""}</span>
            </li>
          ))}
        </ul>
      )}
    </Body>
  );
}

interface ServiceRed extends RedFigures {
  service: string;
}

function TraceServiceWidget({ def, ctx }: { def: WidgetDefinition; ctx: WidgetContext }) {
  const service = substitute(str(def.service) ?? "", ctx.vars);
  const env = substitute(str(def.env) ?? "", ctx.vars);
  const key = JSON.stringify([service, env, ctxKey(ctx)]);
  const res = useApi<ServiceRed | null>(key, async (signal) => {
    if (!service) throw new Error("this widget names no service");
    const qs = new URLSearchParams({ from: String(ctx.from), to: String(ctx.to), service });
    if (env && !env.startsWith("$") && env !== "*") qs.set("env", env);
    const a = await apiGet<{ services: ServiceRed[] }>(`/api/ui/services?${qs.toString()}`, signal);
    return (Array.isArray(a.services) ? a.services : []).find((s) => s.service === service) ?? null;
  });
  const r = res.data;
  return (
    <Body loading={res.loading && !res.data} error={res.error ? res.error.message : null}>
      {!r ? (
        <p class="muted">{`No spans of ${service} in this time range.`}</p>
      ) : (
        <RedList r={r} class="w-red" testid="widget-red" />
      )}
    </Body>
  );
}

/** A note's content as text: paragraphs split on blank lines (Markdown is not rendered). */
function NoteWidget({ def }: { def: WidgetDefinition }) {
  const content = str(def.content) ?? "";
  const paras = content.split(/\n\s*\n/).filter((p) => p.trim() !== "");
  return (
    <div class="w-note">
      {paras.map((p, i) => (
        <p key={i}>{p}</p>
      ))}
    </div>
  );
}

function GroupWidget({ def, ctx }: { def: WidgetDefinition; ctx: WidgetContext }) {
  const widgets = asWidgets(def.widgets);
  return <WidgetGrid widgets={widgets} layout={str(def.layout_type) ?? "ordered"} ctx={ctx} nested />;
}

function Unsupported({ type }: { type: string }) {
  return <p class="muted">{`unsupported widget type ${type}`}</p>;
}

const TITLES: Record<string, string> = {
  timeseries: "Timeseries",
  query_value: "Query value",
  toplist: "Top list",
  heatmap: "Heatmap",
  log_stream: "Log stream",
  trace_service: "Service",
  note: "",
  group: "Group",
};

function WidgetBody({ def, ctx }: { def: WidgetDefinition; ctx: WidgetContext }) {
  switch (def.type) {
    case "timeseries":
      return <TimeseriesWidget def={def} ctx={ctx} />;
    case "query_value":
      return <QueryValueWidget def={def} ctx={ctx} />;
    case "toplist":
      return <ToplistWidget def={def} ctx={ctx} />;
    case "heatmap":
      return <HeatmapWidget def={def} ctx={ctx} />;
    case "log_stream":
      return <LogStreamWidget def={def} ctx={ctx} />;
    case "trace_service":
      return <TraceServiceWidget def={def} ctx={ctx} />;
    case "note":
      return <NoteWidget def={def} />;
    case "group":
      return <GroupWidget def={def} ctx={ctx} />;
    default:
      return <Unsupported type={def.type} />;
  }
}

/** The widgets of a dashboard or group JSON value (entries without a definition object left out). */
export function asWidgets(v: unknown): Widget[] {
  return arr(v).filter((w): w is Widget => {
    const d = obj(obj(w)?.definition);
    return d !== null && typeof d.type === "string";
  });
}

/** One widget in its card: the title (or the type's name), then what it draws. */
export function WidgetCard({ widget, ctx, style }: { widget: Widget; ctx: WidgetContext; style?: Record<string, string> }) {
  const def = widget.definition;
  const title = substitute(str(def.title) ?? TITLES[def.type] ?? def.type, ctx.vars);
  const cls = `w-card w-type-${def.type.replace(/[^a-z0-9_-]/gi, "")}`;
  return (
    <article class={cls} data-testid="widget" data-widget-type={def.type} style={style}>
      {title && <h3 class="w-title">{title}</h3>}
      <div class="w-body">
        <WidgetBody def={def} ctx={ctx} />
      </div>
    </article>
  );
}

/** Grid placement for `free` layouts: each widget's {x, y, width, height} scaled to 12 columns. */
function freePlacement(widgets: Widget[]): (Record<string, string> | undefined)[] {
  const right = Math.max(12, ...widgets.map((w) => (w.layout ? w.layout.x + w.layout.width : 0)));
  const scale = 12 / right;
  return widgets.map((w) => {
    const l = w.layout;
    if (!l || ![l.x, l.y, l.width, l.height].every((n) => typeof n === "number" && n >= 0)) return undefined;
    const col = Math.min(12, Math.floor(l.x * scale) + 1);
    const span = Math.max(1, Math.min(13 - col, Math.round(l.width * scale)));
    const row = Math.floor(l.y * scale) + 1;
    const rows = Math.max(1, Math.round(l.height * scale));
    return { gridColumn: `${col} / span ${span}`, gridRow: `${row} / span ${rows}` };
  });
}

/** The widgets in a grid: `ordered` flows responsively; `free` places each by its layout. */
export function WidgetGrid({ widgets, layout, ctx, nested = false }: {
  widgets: Widget[];
  layout: string;
  ctx: WidgetContext;
  nested?: boolean;
}) {
  const free = layout === "free";
  const places = useMemo(() => (free ? freePlacement(widgets) : []), [widgets, free]);
  if (widgets.length === 0) return <p class="muted">No widgets.</p>;
  return (
    <div class={`w-grid ${free ? "w-grid-free" : "w-grid-ordered"}${nested ? " w-grid-nested" : ""}`}>
      {widgets.map((w, i) => (
        <WidgetCard key={w.id ?? i} widget={w} ctx={ctx} style={free ? places[i] : undefined} />
      ))}
    </div>
  );
}

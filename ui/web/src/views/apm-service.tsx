// The APM service page (`/apm/services/{service}`): requests, errors and latency (p50/p95/p99) over time from
// the RED metrics trace ingest writes (`trace.<operation>.hits/.errors/.duration`, tagged `service:`), for one
// operation (the URL's `op`, by default the service's busiest); its resources' RED in a sortable table (from
// `/api/ui/services`); and its newest spans (a click opens the trace). Time range, operation and sort in the URL.
import { useMemo } from "preact/hooks";
import { apiGet, useApi, type MetricAnswer } from "../api";
import { ErrorText, Loading } from "../components/common";
import { TimeseriesChart, type ChartSeries, type ChartType } from "../components/chart";
import { RedCells, RedList } from "../components/red";
import { Link, href, navigate, withParams, type Loc } from "../router";
import { timeRange, unixRange } from "../time";
import { searchSpans, searchValue, SpanList, type SpanPage } from "./apm-spans";
import type { ResourceRed, ServicesAnswer } from "./apm";
import "./apm.css";

/** Spans shown in the recent spans list. */
const RECENT = 50;

/** A tag value as the metric scope takes it: whitespace as `_`, as the trace receiver writes tags. */
function scopeValue(v: string): string {
  return v.replace(/\s/g, "_");
}

/** The RED metric queries of one operation of a service. */
export function redQueries(op: string, service: string) {
  const scope = `{service:${scopeValue(service)}}`;
  return {
    // Intervals without requests are zero requests (and the bars stand on zero).
    hits: `sum:trace.${op}.hits${scope}.as_count().fill(zero)`,
    errors: `sum:trace.${op}.errors${scope}.as_count().fill(zero)`,
    latency: (["p50", "p95", "p99"] as const).map((p) => ({ p, query: `${p}:trace.${op}.duration${scope}` })),
  };
}

/** The operations of a service's resources, busiest first. */
function operationsOf(resources: ResourceRed[]): string[] {
  const hits = new Map<string, number>();
  for (const r of resources) hits.set(r.operation, (hits.get(r.operation) ?? 0) + r.hits);
  return [...hits.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([op]) => op);
}

async function query(q: string, from: number, to: number, signal: AbortSignal) {
  const qs = new URLSearchParams({ from: String(from), to: String(to), query: q });
  const a = await apiGet<MetricAnswer>(`/api/v1/query?${qs.toString()}`, signal);
  return Array.isArray(a.series) ? a.series : [];
}

/** One chart panel: a title, the chart (or why there is none) and a link to its queries in the explorer. */
function ChartPanel(props: {
  title: string;
  name: string;
  queries: string[];
  range: { from: number; to: number };
  type: ChartType;
  load: (signal: AbortSignal) => Promise<ChartSeries[]>;
  onZoom: (fromMs: number, toMs: number) => void;
}) {
  const { title, name, queries, range, type } = props;
  const res = useApi<ChartSeries[]>(JSON.stringify([queries, range]), props.load);
  const series = res.data ?? [];
  const explore = `/metrics?${queries.map((q) => `query=${encodeURIComponent(q)}`).join("&")}`;
  return (
    <article class="apm-panel" data-testid={`service-panel-${name}`}>
      <h3 class="apm-panel-title">
        {title}
        <span class="spacer" />
        <Link href={explore} class="apm-explore" title={queries.join("\n")}>
          Explore
        </Link>
      </h3>
      {res.error && <ErrorText error={res.error} testid="service-chart-error" />}
      <Loading when={res.loading && !res.data} />
      {res.data && series.length === 0 && <p class="muted">No data in this time range.</p>}
      {series.length > 0 && (
        <TimeseriesChart
          series={series}
          type={type}
          height={170}
          range={[range.from * 1000, range.to * 1000]}
          testid={`service-chart-${name}`}
          legendTestid="service-legend-item"
          onZoom={props.onZoom}
        />
      )}
    </article>
  );
}

/** The columns of the resources table: key (in the URL's `sort`), header, numeric. */
const COLUMNS: { key: SortKey; label: string; num: boolean }[] = [
  { key: "resource", label: "Resource", num: false },
  { key: "operation", label: "Operation", num: false },
  { key: "hits", label: "Hits", num: true },
  { key: "requests_per_sec", label: "Req/s", num: true },
  { key: "errors", label: "Errors", num: true },
  { key: "error_rate", label: "Error rate", num: true },
  { key: "p50", label: "p50", num: true },
  { key: "p95", label: "p95", num: true },
  { key: "p99", label: "p99", num: true },
];

type SortKey =
  | "resource"
  | "operation"
  | "hits"
  | "requests_per_sec"
  | "errors"
  | "error_rate"
  | "p50"
  | "p95"
  | "p99";

/** The URL's `sort` (`-hits`: descending): a known column, else hits descending. */
function parseSort(v: string | null): { key: SortKey; desc: boolean } {
  const desc = !v || v.startsWith("-");
  const key = (v ?? "").replace(/^[-+]/, "");
  const col = COLUMNS.find((c) => c.key === key);
  return col ? { key: col.key, desc } : { key: "hits", desc: true };
}

function compare(a: ResourceRed, b: ResourceRed, key: SortKey): number {
  const x = a[key];
  const y = b[key];
  if (typeof x === "string" || typeof y === "string") return String(x ?? "").localeCompare(String(y ?? ""));
  // Nulls (no durations) last either way is simpler read as "smallest".
  return (x ?? -Infinity) - (y ?? -Infinity);
}

function ResourcesTable({ loc, resources, op }: { loc: Loc; resources: ResourceRed[]; op: string }) {
  const sort = parseSort(loc.query.get("sort"));
  const rows = useMemo(() => {
    const out = [...resources];
    out.sort((a, b) => {
      const c = compare(a, b, sort.key);
      return (sort.desc ? -c : c) || b.hits - a.hits || a.resource.localeCompare(b.resource);
    });
    return out;
  }, [resources, sort.key, sort.desc]);
  const setSort = (key: SortKey) => {
    const col = COLUMNS.find((c) => c.key === key)!;
    // A new column starts with its natural order (numbers biggest first, names A→Z); the same one flips.
    const desc = key === sort.key ? !sort.desc : col.num;
    navigate(withParams(loc, { sort: `${desc ? "-" : ""}${key}` }), true);
  };
  if (resources.length === 0) return <p class="muted">No resources in this time range.</p>;
  return (
    <table class="grid apm-resources" data-testid="top-resources">
      <thead>
        <tr>
          {COLUMNS.map((c) => (
            <th
              key={c.key}
              class={c.num ? "num" : undefined}
              aria-sort={sort.key === c.key ? (sort.desc ? "descending" : "ascending") : undefined}
            >
              <button
                type="button"
                class="link-button sort-button"
                data-testid={`sort-${c.key}`}
                onClick={() => setSort(c.key)}
              >
                {c.label}
                {sort.key === c.key ? (sort.desc ? " ▾" : " ▴") : ""}
              </button>
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr
            key={`${r.operation}\u0000${r.resource}\u0000${r.span_kind}`}
            data-testid="top-resource-row"
            class={r.operation === op ? "apm-current-op" : undefined}
          >
            <td class="mono">{r.resource}</td>
            <td>
              <span class="mono">{r.operation}</span> <span class="muted">{r.span_kind}</span>
            </td>
            <RedCells r={r} />
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function RecentSpans({ service, from, to }: { service: string; from: string; to: string }) {
  const q = `service:${searchValue(service)}`;
  const res = useApi<SpanPage>(JSON.stringify([q, from, to]), (signal) =>
    searchSpans({ query: q, from, to }, RECENT, null, signal),
  );
  const spans = res.data?.data ?? [];
  return (
    <>
      <h2 class="apm-h2">
        Recent spans
        <span class="spacer" />
        <Link href={href("/apm/spans", { query: q, from, to })} class="apm-explore" data-testid="service-search-spans">
          Search all spans of this service →
        </Link>
      </h2>
      {res.error && <ErrorText error={res.error} />}
      <Loading when={res.loading && !res.data} />
      {res.data && spans.length === 0 && <p class="muted">No spans of this service in this time range.</p>}
      {spans.length > 0 && <SpanList spans={spans} testid="service-span-list" rowTestid="service-span-row" />}
    </>
  );
}

export function ServiceView({ service, loc }: { service: string; loc: Loc }) {
  const { from, to } = timeRange(loc);
  // Resolved once per range, so every chart and the table ask for the same window.
  const range = useMemo(() => unixRange({ from, to }), [from, to]);
  const res = useApi<ServicesAnswer>(JSON.stringify([service, range]), (signal) => {
    if (!range) return Promise.reject(new Error(`invalid time range ${from} → ${to}`));
    const qs = new URLSearchParams({ from: String(range.from), to: String(range.to), service });
    return apiGet<ServicesAnswer>(`/api/ui/services?${qs.toString()}`, signal);
  });
  const red = res.data?.services.find((s) => s.service === service) ?? null;
  const resources = red?.resources ?? [];
  const ops = operationsOf(resources);
  const wanted = loc.query.get("op");
  const op = wanted || ops[0] || "";
  const q = op ? redQueries(op, service) : null;
  const onZoom = (f: number, t: number) => navigate(withParams(loc, { from: String(f), to: String(t) }));
  const keep = { from: loc.query.get("from") ?? undefined, to: loc.query.get("to") ?? undefined };

  return (
    <section class="apm-service">
      <p class="apm-back">
        <Link href={href("/apm", keep)}>← APM services</Link>
      </p>
      <h1>
        <span class="muted">Service</span> <span data-testid="service-name">{service}</span>
      </h1>
      {res.error && <ErrorText error={res.error} />}
      <Loading when={res.loading && !res.data} />
      {red && <RedList r={red} class="apm-red" testid="service-red" />}
      {res.data && !red && !wanted && (
        <p class="muted">No requests of this service in this time range (its RED metrics come from entry spans).</p>
      )}
      {(ops.length > 0 || wanted) && (
        <label class="apm-op">
          <span>Operation</span>
          <select
            data-testid="operation-select"
            value={op}
            onChange={(e) => navigate(withParams(loc, { op: (e.currentTarget as HTMLSelectElement).value }))}
          >
            {(ops.includes(op) ? ops : [op, ...ops]).map((o) => (
              <option key={o} value={o}>
                {`trace.${o}`}
              </option>
            ))}
          </select>
        </label>
      )}
      {q && range && (
        <div class="apm-charts">
          {[
            { title: "Requests (hits per interval)", name: "requests", query: q.hits, label: "hits" },
            { title: "Errors (per interval)", name: "errors", query: q.errors, label: "errors" },
          ].map((c) => (
            <ChartPanel
              key={c.name}
              title={c.title}
              name={c.name}
              queries={[c.query]}
              range={range}
              type="bars"
              onZoom={onZoom}
              load={async (signal) =>
                (await query(c.query, range.from, range.to, signal)).map((s) => ({
                  label: c.label,
                  points: s.pointlist,
                }))
              }
            />
          ))}
          <ChartPanel
            title="Latency (ms)"
            name="latency"
            queries={q.latency.map((l) => l.query)}
            range={range}
            type="line"
            onZoom={onZoom}
            load={async (signal) => {
              const all = await Promise.all(q.latency.map((l) => query(l.query, range.from, range.to, signal)));
              // Durations are recorded in seconds: shown in milliseconds.
              return all.flatMap((ss, i) =>
                ss.map((s) => ({
                  label: `${q.latency[i].p} (ms)`,
                  points: s.pointlist.map(([t, v]): [number, number | null] => [t, v === null ? null : v * 1000]),
                })),
              );
            }}
          />
        </div>
      )}
      {red && (
        <>
          <h2 class="apm-h2">Resources</h2>
          <ResourcesTable loc={loc} resources={resources} op={op} />
        </>
      )}
      <RecentSpans service={service} from={from} to={to} />
    </section>
  );
}

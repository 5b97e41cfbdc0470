// The log explorer's count-over-time histogram, stacked by status: one aggregate request, drawn as plain SVG
// rects (no chart library), statuses coloured by CSS class.
import "./histogram.css";
import { apiPost } from "../api";
import { formatCount, formatDate, logStatusClass } from "../format";
import { unixRange, type TimeRange } from "../time";

/** About this many buckets over the range. */
const BUCKETS = 60;
/** Bucket widths offered, in seconds (the smallest that gives at most BUCKETS buckets is used). */
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];

/** The bucket width, in seconds, for a range of `spanSecs`. */
export function pickInterval(spanSecs: number): number {
  const want = spanSecs / BUCKETS;
  return STEPS.find((s) => s >= want) ?? Math.ceil(want);
}

export interface HistogramData {
  interval: number;
  /** Bucket start times (ISO-8601), in order. */
  times: string[];
  /** Per status: one count per bucket. */
  series: { status: string; counts: number[] }[];
}

interface AggregateAnswer {
  data?: { buckets?: { by?: Record<string, unknown>; computes?: Record<string, unknown> }[] };
}

/** Counts per status and time bucket of the logs `query` matches in `range`. */
export async function loadHistogram(query: string, range: TimeRange, signal: AbortSignal): Promise<HistogramData> {
  const r = unixRange(range);
  const interval = pickInterval(r ? r.to - r.from : 3600);
  const answer = await apiPost<AggregateAnswer>(
    "/api/v2/logs/analytics/aggregate",
    {
      filter: { query, from: range.from, to: range.to },
      compute: [{ aggregation: "count", type: "timeseries", interval: `${interval}s` }],
      group_by: [{ facet: "status", limit: 10 }],
    },
    signal,
  );
  let times: string[] = [];
  const series: HistogramData["series"] = [];
  for (const b of answer.data?.buckets ?? []) {
    const points = b.computes?.c0;
    if (!Array.isArray(points)) continue;
    const pts = points as { time?: unknown; value?: unknown }[];
    if (pts.length > times.length) times = pts.map((p) => String(p.time ?? ""));
    const status = b.by?.status;
    series.push({
      status: status === undefined || status === null ? "" : String(status),
      counts: pts.map((p) => (typeof p.value === "number" && Number.isFinite(p.value) ? p.value : 0)),
    });
  }
  return { interval, times, series };
}

/** The colour class of a status (the `sev-*` family of format.ts). */
function colorClass(status: string): string {
  return "hist-" + (logStatusClass(status).split(" ")[1] ?? "sev-info").slice(4);
}

/** Bottom-to-top order of the stack: errors first, then warnings, info, ok, debug. */
const ORDER = ["error", "warn", "info", "ok", "debug"];

function order(status: string): number {
  const i = ORDER.indexOf(colorClass(status).slice(5));
  return i < 0 ? ORDER.length : i;
}

function label(iso: string | undefined, interval: number): string {
  if (!iso) return "";
  const d = formatDate(new Date(iso), false);
  // Within a day: the time of day only; otherwise the date too.
  return interval < 1800 ? d.slice(11, interval < 60 ? 19 : 16) : d.slice(5, 16);
}

const W = 1000;
const H = 100;

export function Histogram({ data, loading }: { data: HistogramData | null; loading: boolean }) {
  const times = data?.times ?? [];
  const series = [...(data?.series ?? [])].sort((a, b) => order(a.status) - order(b.status));
  const n = times.length;
  const totals = times.map((_, i) => series.reduce((s, x) => s + (x.counts[i] ?? 0), 0));
  const max = Math.max(0, ...totals);
  const all = totals.reduce((s, x) => s + x, 0);
  const slot = n > 0 ? W / n : W;
  const gap = slot > 4 ? Math.min(2, slot * 0.15) : 0;

  const bars = [];
  if (max > 0) {
    for (let i = 0; i < n; i++) {
      let y = H;
      for (const s of series) {
        const c = s.counts[i] ?? 0;
        if (c <= 0) continue;
        const h = (c / max) * (H - 2);
        y -= h;
        bars.push(
          <rect
            key={`${s.status}\u0000${i}`}
            class={`hist-bar ${colorClass(s.status)}`}
            data-testid="histogram-bar"
            x={i * slot + gap / 2}
            y={y}
            width={slot - gap}
            height={h}
          >
            <title>{`${s.status || "(none)"}: ${c} · ${label(times[i], data?.interval ?? 60)}`}</title>
          </rect>,
        );
      }
    }
  }

  return (
    <figure class={loading ? "histogram loading" : "histogram"} data-testid="log-histogram" aria-label="Logs over time by status">
      <div class="hist-head">
        <span class="muted">{data ? `${formatCount(all, "log")} over time` : loading ? "Loading…" : ""}</span>
        <span class="spacer" />
        {series
          .filter((s) => s.counts.some((c) => c > 0))
          .map((s) => (
            <span key={s.status} class="hist-legend">
              <span class={`hist-swatch ${colorClass(s.status)}`} />
              {s.status || "(none)"} {s.counts.reduce((a, b) => a + b, 0)}
            </span>
          ))}
      </div>
      <div class="hist-plot">
        <span class="hist-max muted">{max > 0 ? max : ""}</span>
        <svg class="hist-svg" viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img">
          <line class="hist-axis" x1={0} y1={H - 0.5} x2={W} y2={H - 0.5} />
          {bars}
        </svg>
      </div>
      <div class="hist-times muted">
        <span>{label(times[0], data?.interval ?? 60)}</span>
        <span>{label(times[Math.floor(n / 2)], data?.interval ?? 60)}</span>
        <span>{label(times[n - 1], data?.interval ?? 60)}</span>
      </div>
    </figure>
  );
}

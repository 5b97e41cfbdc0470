// The dashboard heatmap widget's data and drawing: a time × value grid on a canvas (2D API), each cell coloured
// by how many samples fall in it. For a distribution the API gives no bucket counts, so each time bucket is
// rebuilt from quantiles (min, p10 … p99, max) and the count, all in one `GET /api/v1/query` (comma-separated
// queries): between two successive quantiles lie that fraction of the bucket's samples, spread evenly over the
// band (in the y scale's space). A metric that is not a distribution (a gauge by host) falls back to Datadog's
// heatmap of series: each group's value in a bucket is one sample.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, apiGet } from "../api";
import { formatDate, formatNumber } from "../format";
import "./heatmap.css";

/** One band of a time bucket: `count` samples spread over `[lo, hi]` (a point when lo === hi). */
export interface HeatBand {
  lo: number;
  hi: number;
  count: number;
}

export interface HeatColumn {
  /** Bucket start, unix ms. */
  t: number;
  bands: HeatBand[];
  /** Samples in the bucket. */
  total: number;
}

export interface HeatData {
  columns: HeatColumn[];
  /** Bucket width, ms. */
  interval: number;
  /** How the columns were built: from a distribution's quantiles, or one sample per series. */
  source: "quantiles" | "series";
}

/** The quantiles asked for (space aggregators of the query language) and the quantile level of each. */
const LEVELS: [string, number][] = [
  ["min", 0],
  ["p10", 0.1],
  ["p25", 0.25],
  ["p50", 0.5],
  ["p75", 0.75],
  ["p90", 0.9],
  ["p95", 0.95],
  ["p99", 0.99],
  ["max", 1],
];

interface Series {
  query_index?: number;
  pointlist?: [number, number | null][];
  interval?: number;
}

/** The metric query without its space aggregator and `by {…}` (the heatmap is of every sample together). */
export function heatmapBase(query: string): string {
  const m = /^\s*(?:(?:avg|sum|min|max|count|p\d+(?:\.\d+)?)\s*:)?\s*(.*)$/s.exec(query);
  const rest = m ? m[1] : query;
  return rest.replace(/\s+by\s*\{[^}]*\}/g, "").trim();
}

function guessInterval(ts: number[]): number {
  let best = Infinity;
  for (let i = 1; i < ts.length; i++) best = Math.min(best, ts[i] - ts[i - 1]);
  return Number.isFinite(best) && best > 0 ? best : 60_000;
}

async function query(q: string, from: number, to: number, signal: AbortSignal): Promise<Series[]> {
  const qs = new URLSearchParams({ from: String(from), to: String(to), query: q });
  const a = await apiGet<{ series?: Series[] }>(`/api/v1/query?${qs.toString()}`, signal);
  return Array.isArray(a.series) ? a.series : [];
}

function intervalOf(series: Series[], ts: number[]): number {
  const s = series.find((x) => typeof x.interval === "number" && x.interval > 0);
  return s?.interval ? s.interval * 1000 : guessInterval(ts);
}

/** Column widths (s) a heatmap may use: about COLUMNS columns over the range, each merging the sketches of
 * its interval (`.rollup(N)`), so that a column holds enough samples to have a shape. */
const STEPS = [10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600, 43200, 86400];
const COLUMNS = 80;

/** The rollup interval (s) for a range of unix seconds [from, to). */
export function heatmapStep(from: number, to: number): number {
  const want = (to - from) / COLUMNS;
  return STEPS.find((s) => s >= want) ?? STEPS[STEPS.length - 1];
}

/** Columns from a distribution: quantiles and the count per bucket. */
async function fromQuantiles(base: string, from: number, to: number, signal: AbortSignal): Promise<HeatData> {
  const rolled = /\.rollup\(/.test(base) ? base : `${base}.rollup(${heatmapStep(from, to)})`;
  const text = [...LEVELS.map(([agg]) => `${agg}:${rolled}`), `count:${rolled}`].join(", ");
  const series = await query(text, from, to, signal);
  const byTime = new Map<number, (number | null)[]>();
  for (const s of series) {
    const qi = s.query_index;
    if (typeof qi !== "number" || qi < 0 || qi > LEVELS.length) continue;
    for (const [t, v] of s.pointlist ?? []) {
      let row = byTime.get(t);
      if (!row) byTime.set(t, (row = new Array<number | null>(LEVELS.length + 1).fill(null)));
      row[qi] = v !== null && Number.isFinite(v) ? v : null;
    }
  }
  const ts = [...byTime.keys()].sort((a, b) => a - b);
  const columns: HeatColumn[] = [];
  for (const t of ts) {
    const row = byTime.get(t) ?? [];
    const total = row[LEVELS.length] ?? 0;
    if (!(total > 0)) continue;
    const bands: HeatBand[] = [];
    let prev: { q: number; v: number } | null = null;
    for (let i = 0; i < LEVELS.length; i++) {
      const v = row[i];
      if (v === null || v === undefined) continue;
      const q = LEVELS[i][1];
      if (prev) {
        const count = (q - prev.q) * total;
        if (count > 0) bands.push({ lo: Math.min(prev.v, v), hi: Math.max(prev.v, v), count });
      }
      prev = { q, v };
    }
    if (bands.length === 0 && prev) bands.push({ lo: prev.v, hi: prev.v, count: total });
    columns.push({ t, bands, total });
  }
  return { columns, interval: intervalOf(series, ts), source: "quantiles" };
}

/** Columns from ordinary series: each group's value in a bucket is one sample. */
async function fromSeries(q: string, from: number, to: number, signal: AbortSignal): Promise<HeatData> {
  const series = await query(q, from, to, signal);
  const byTime = new Map<number, number[]>();
  for (const s of series) {
    for (const [t, v] of s.pointlist ?? []) {
      if (v === null || !Number.isFinite(v)) continue;
      const vs = byTime.get(t);
      if (vs) vs.push(v);
      else byTime.set(t, [v]);
    }
  }
  const ts = [...byTime.keys()].sort((a, b) => a - b);
  const columns = ts.map((t) => {
    const vs = byTime.get(t) ?? [];
    return { t, total: vs.length, bands: vs.map((v) => ({ lo: v, hi: v, count: 1 })) };
  });
  return { columns, interval: intervalOf(series, ts), source: "series" };
}

/** The heatmap's columns for a widget's metric query over `[from, to)` (unix seconds). */
export async function loadHeatmap(q: string, from: number, to: number, signal: AbortSignal): Promise<HeatData> {
  try {
    return await fromQuantiles(heatmapBase(q), from, to, signal);
  } catch (e) {
    // Percentiles need a distribution: anything else is drawn from its series.
    if (e instanceof ApiError && e.status === 400 && e.message.includes("needs a distribution")) {
      return fromSeries(q, from, to, signal);
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The grid

/** Rows of the grid (value bins). */
const ROWS = 32;

interface Scale {
  log: boolean;
  lo: number;
  hi: number;
  /** Value → scale space. */
  f: (v: number) => number;
  /** Scale space → value. */
  inv: (s: number) => number;
}

function makeScale(min: number, max: number): Scale {
  if (min > 0 && max / min >= 20) {
    return { log: true, lo: Math.log10(min), hi: Math.log10(max), f: Math.log10, inv: (s) => 10 ** s };
  }
  let lo = Math.min(0, min);
  let hi = max;
  if (hi <= lo) {
    lo = min - Math.abs(min || 1) * 0.5;
    hi = max + Math.abs(max || 1) * 0.5;
  }
  return { log: false, lo, hi, f: (v) => v, inv: (s) => s };
}

export interface HeatGrid {
  scale: Scale;
  /** counts[col][row], row 0 at the bottom. */
  counts: Float64Array[];
  max: number;
  /** Cells with samples. */
  cells: number;
}

/** Spreads every band over the rows it covers (evenly in scale space); a point falls in its row. */
export function buildGrid(data: HeatData): HeatGrid | null {
  let min = Infinity;
  let max = -Infinity;
  for (const c of data.columns) {
    for (const b of c.bands) {
      if (b.count <= 0) continue;
      min = Math.min(min, b.lo);
      max = Math.max(max, b.hi);
    }
  }
  if (!Number.isFinite(min) || !Number.isFinite(max)) return null;
  const scale = makeScale(min, max);
  const span = scale.hi - scale.lo;
  const rowOf = (s: number) => Math.min(ROWS - 1, Math.max(0, Math.floor(((s - scale.lo) / span) * ROWS)));
  let top = 0;
  let cells = 0;
  const counts = data.columns.map((c) => {
    const col = new Float64Array(ROWS);
    for (const b of c.bands) {
      if (b.count <= 0) continue;
      const s0 = scale.f(Math.max(b.lo, scale.log ? 10 ** scale.lo : b.lo));
      const s1 = scale.f(Math.max(b.hi, scale.log ? 10 ** scale.lo : b.hi));
      if (!(s1 > s0)) {
        col[rowOf(s0)] += b.count;
        continue;
      }
      const r0 = rowOf(s0);
      const r1 = rowOf(s1);
      for (let r = r0; r <= r1; r++) {
        const a = Math.max(s0, scale.lo + (r / ROWS) * span);
        const z = Math.min(s1, scale.lo + ((r + 1) / ROWS) * span);
        if (z > a) col[r] += (b.count * (z - a)) / (s1 - s0);
      }
    }
    for (let r = 0; r < ROWS; r++) {
      if (col[r] > 0) cells++;
      top = Math.max(top, col[r]);
    }
    return col;
  });
  return { scale, counts, max: top, cells };
}

/** The colour ramp, light to dark (the legend's CSS gradient, heatmap.css, uses the same stops). */
const RAMP: [number, number, number][] = [
  [237, 236, 253],
  [158, 147, 240],
  [75, 63, 209],
  [42, 24, 120],
  [224, 112, 58],
];

function color(f: number): string {
  const x = Math.max(0, Math.min(1, f)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const t = x - i;
  const c = RAMP[i].map((v, k) => Math.round(v + (RAMP[i + 1][k] - v) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** A cell's colour position: log-scaled counts, so sparse cells stay visible next to dense ones. */
function level(count: number, max: number): number {
  return max > 0 ? Math.log1p(count) / Math.log1p(max) : 0;
}

const PAD = { left: 56, right: 8, top: 6, bottom: 20 };
const HEIGHT = 180;

function timeLabel(ms: number, spanMs: number): string {
  const d = formatDate(new Date(ms), false);
  return spanMs <= 86_400_000 ? d.slice(11, 16) : d.slice(5, 16);
}

function ticks(scale: Scale): number[] {
  if (scale.log) {
    const out: number[] = [];
    for (let e = Math.ceil(scale.lo); e <= Math.floor(scale.hi); e++) out.push(10 ** e);
    if (out.length < 2) out.splice(0, out.length, 10 ** scale.lo, 10 ** ((scale.lo + scale.hi) / 2), 10 ** scale.hi);
    return out;
  }
  return [0, 1, 2, 3, 4].map((i) => scale.lo + ((scale.hi - scale.lo) * i) / 4);
}

interface Hover {
  text: string;
}

/** The heatmap: canvas, colour legend and the hovered cell's description (text). */
export function Heatmap({ data, range }: { data: HeatData; range: [number, number] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [width, setWidth] = useState(0);
  const [hover, setHover] = useState<Hover | null>(null);
  const grid = useMemo(() => buildGrid(data), [data]);

  useEffect(() => {
    const el = canvas.current?.parentElement;
    if (!el) return;
    const measure = () => setWidth(Math.floor(el.clientWidth));
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, [grid !== null]);

  const [x0, x1] = range;
  const plotW = Math.max(10, width - PAD.left - PAD.right);
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const xOf = (t: number) => PAD.left + ((t - x0) / Math.max(1, x1 - x0)) * plotW;

  useEffect(() => {
    const c = canvas.current;
    if (!c || width <= 0 || !grid) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(width * dpr);
    c.height = Math.round(HEIGHT * dpr);
    const g = c.getContext("2d");
    if (!g) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, HEIGHT);
    const fg = getComputedStyle(c).color || "#667085";
    const rowH = plotH / ROWS;
    data.columns.forEach((col, i) => {
      const xa = Math.max(PAD.left, xOf(col.t));
      // At least 2 px wide: a short bucket in a long range stays visible.
      const xb = Math.min(PAD.left + plotW, Math.max(xOf(col.t + data.interval), xa + 2));
      if (xb <= xa) return;
      const counts = grid.counts[i];
      for (let r = 0; r < ROWS; r++) {
        if (counts[r] <= 0) continue;
        g.fillStyle = color(0.12 + 0.88 * level(counts[r], grid.max));
        const y = PAD.top + plotH - (r + 1) * rowH;
        g.fillRect(xa, y, Math.max(1, xb - xa - (xb - xa > 3 ? 0.5 : 0)), rowH + 0.25);
      }
    });
    // Axes: value ticks on the left, times along the bottom.
    g.strokeStyle = "rgba(102,112,133,0.5)";
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(PAD.left - 0.5, PAD.top);
    g.lineTo(PAD.left - 0.5, PAD.top + plotH + 0.5);
    g.lineTo(PAD.left + plotW, PAD.top + plotH + 0.5);
    g.stroke();
    g.fillStyle = fg;
    g.font = "11px system-ui, sans-serif";
    g.textAlign = "right";
    g.textBaseline = "middle";
    const { scale } = grid;
    for (const v of ticks(scale)) {
      const y = PAD.top + plotH - ((scale.f(v) - scale.lo) / (scale.hi - scale.lo)) * plotH;
      g.fillText(formatNumber(v), PAD.left - 5, y);
      g.fillRect(PAD.left - 4, Math.round(y) - 0.5, 3, 1);
    }
    g.textAlign = "center";
    g.textBaseline = "top";
    for (let i = 0; i <= 4; i++) {
      const t = x0 + ((x1 - x0) * i) / 4;
      const x = xOf(t);
      g.textAlign = i === 0 ? "left" : i === 4 ? "right" : "center";
      g.fillText(timeLabel(t, x1 - x0), x, PAD.top + plotH + 5);
    }
  }, [grid, width, data, x0, x1]);

  if (!grid) return <p class="muted">No data in this time range.</p>;

  const onMove = (e: MouseEvent) => {
    const c = canvas.current;
    if (!c) return;
    const box = c.getBoundingClientRect();
    const x = e.clientX - box.left;
    const y = e.clientY - box.top;
    const row = Math.floor(((PAD.top + plotH - y) / plotH) * ROWS);
    const t = x0 + ((x - PAD.left) / plotW) * (x1 - x0);
    const i = data.columns.findIndex((col) => t >= col.t && t < col.t + data.interval);
    if (row < 0 || row >= ROWS || i < 0) {
      setHover(null);
      return;
    }
    const { scale } = grid;
    const lo = scale.inv(scale.lo + (row / ROWS) * (scale.hi - scale.lo));
    const hi = scale.inv(scale.lo + ((row + 1) / ROWS) * (scale.hi - scale.lo));
    const n = grid.counts[i][row];
    const col = data.columns[i];
    const density = hi > lo ? n / (hi - lo) : 0;
    const when = `${formatDate(new Date(col.t), false)} – ${timeLabel(col.t + data.interval, 0)}`;
    setHover({
      text:
        `${when} · values ${formatNumber(lo)} to ${formatNumber(hi)} · ` +
        `${formatNumber(n)} of ${formatNumber(col.total)} samples (${formatNumber(density)} per unit)`,
    });
  };

  return (
    <div class="hm">
      <div class="hm-plot">
        <canvas
          ref={canvas}
          class="hm-canvas"
          data-testid="heatmap-canvas"
          data-cells={String(grid.cells)}
          data-columns={String(data.columns.length)}
          data-scale={grid.scale.log ? "log" : "linear"}
          data-source={data.source}
          role="img"
          aria-label={`Heatmap: ${data.columns.length} time buckets, ${grid.cells} cells with samples`}
          onMouseMove={onMove}
          onMouseLeave={() => setHover(null)}
        />
      </div>
      <div class="hm-foot">
        <span class="hm-legend" aria-label="Colour: samples per cell">
          <span class="muted">fewer</span>
          <span class="hm-ramp" />
          <span class="muted">{`more (up to ${formatNumber(grid.max >= 10 ? Math.round(grid.max) : grid.max)} samples in a cell)`}</span>
        </span>
        <span class="muted">{grid.scale.log ? "log scale" : "linear scale"}</span>
      </div>
      <p class="muted hm-hover" data-testid="heatmap-hover">
        {hover ? hover.text : "Hover a cell for its time, value range and sample count."}
      </p>
    </div>
  );
}

// A reusable time-series chart (uPlot): line, area or bar series, a text-only legend with the values under the
// cursor, and drag-to-zoom reported as a time range. Used by the metrics explorer (and later the dashboards).
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./chart.css";
import { formatDate, formatNumber } from "../format";

export type ChartType = "line" | "area" | "bars";

export const CHART_TYPES: { value: ChartType; label: string }[] = [
  { value: "line", label: "Lines" },
  { value: "area", label: "Areas" },
  { value: "bars", label: "Bars" },
];

/** One line of the chart: its legend text and its points, `[unix ms, value or null (no data then)]`. */
export interface ChartSeries {
  label: string;
  points: [number, number | null][];
}

/** A horizontal threshold line across the chart (a monitor's critical or warning threshold). */
export interface ChartMarker {
  value: number;
  label: string;
  kind: "critical" | "warning";
}

const MARKER_COLORS: Record<ChartMarker["kind"], string> = { critical: "#c0262d", warning: "#a35c00" };

export interface TimeseriesChartProps {
  series: ChartSeries[];
  type: ChartType;
  height?: number;
  /** The x axis spans this range (unix ms) when given; otherwise the data's extent. */
  range?: [number, number];
  /** Called with the range (unix ms) the user selected by dragging across the chart. */
  onZoom?: (fromMs: number, toMs: number) => void;
  /** data-testid of the chart's container and of each legend entry. */
  testid?: string;
  legendTestid?: string;
  /** Horizontal threshold lines; the y axis is widened to show them. */
  markers?: ChartMarker[];
}

const PALETTE = [
  "#4b3fd1", "#1f9e89", "#e0703a", "#c0262d", "#2b5fb3", "#9b3fb8", "#6c8c1f", "#b8860b", "#0f7c9e", "#d14b8f",
];

/** The series' color (by position; the legend uses the same one). */
export function seriesColor(i: number): string {
  return PALETTE[i % PALETTE.length];
}

function withAlpha(hex: string, alpha: string): string {
  return hex + alpha;
}

/**
 * The series on one shared x axis (unix seconds). Missing points and the API's nulls (intervals without data)
 * are `undefined`, which uPlot draws across, as Datadog joins the points of a sparse series.
 */
function align(series: ChartSeries[]): uPlot.AlignedData {
  const xs = new Set<number>();
  for (const s of series) for (const [t] of s.points) xs.add(t / 1000);
  const x = [...xs].sort((a, b) => a - b);
  const pos = new Map<number, number>();
  x.forEach((t, i) => pos.set(t, i));
  const ys = series.map((s) => {
    const y: (number | null | undefined)[] = new Array<number | null | undefined>(x.length).fill(undefined);
    for (const [t, v] of s.points) {
      const i = pos.get(t / 1000);
      if (i !== undefined && v !== null && Number.isFinite(v)) y[i] = v;
    }
    return y;
  });
  return [x, ...ys];
}

/** Points are drawn on a line with few of them (a single one would be invisible otherwise). */
const POINTS_UP_TO = 60;

function seriesOpts(type: ChartType, i: number, label: string, count: number): uPlot.Series {
  const color = seriesColor(i);
  const base: uPlot.Series = { label, stroke: color, width: 1.5, points: { size: 5, show: count <= POINTS_UP_TO } };
  if (type === "area") return { ...base, fill: withAlpha(color, "33") };
  if (type === "bars") {
    const bars = uPlot.paths.bars;
    return {
      ...base,
      width: 1,
      fill: withAlpha(color, "99"),
      points: { show: false },
      paths: bars ? bars({ size: [0.8, 40], align: 0 }) : undefined,
    };
  }
  return base;
}

/** A value for the legend: the series' point nearest the cursor, else its last one. */
function legendValue(y: (number | null | undefined)[], idx: number | null): string {
  if (idx !== null) {
    for (let d = 0; d < y.length; d++) {
      const v = y[idx - d] ?? y[idx + d];
      if (v !== null && v !== undefined) return formatNumber(v);
    }
    return "—";
  }
  for (let i = y.length - 1; i >= 0; i--) {
    const v = y[i];
    if (v !== null && v !== undefined) return formatNumber(v);
  }
  return "—";
}

/** The y range covering the data, every marker and zero when `withZero` (bars and areas measure from zero),
 * with a little room above and below. */
function yRange(min: number | null, max: number | null, markers: ChartMarker[], withZero: boolean): uPlot.Range.MinMax {
  const vals = markers.map((m) => m.value);
  if (withZero) vals.push(0);
  if (min !== null && Number.isFinite(min)) vals.push(min);
  if (max !== null && Number.isFinite(max)) vals.push(max);
  let lo = Math.min(...vals);
  let hi = Math.max(...vals);
  if (lo === hi && lo === 0) {
    hi = 1;
  } else if (lo === hi) {
    const pad = Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const pad = (hi - lo) * 0.08;
  return [lo >= 0 && lo - pad < 0 ? 0 : lo - pad, hi + pad];
}

/** Draws each marker as a dashed horizontal line with its label (canvas text, not HTML). */
function drawMarkers(u: uPlot, markers: ChartMarker[]): void {
  const ctx = u.ctx;
  const { left, top, width, height } = u.bbox;
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, width, height);
  ctx.clip();
  const px = window.devicePixelRatio || 1;
  ctx.font = `${Math.round(11 * px)}px system-ui, sans-serif`;
  ctx.textAlign = "right";
  for (const m of markers) {
    const y = Math.round(u.valToPos(m.value, "y", true));
    if (!Number.isFinite(y)) continue;
    const color = MARKER_COLORS[m.kind];
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 1.5 * px;
    ctx.setLineDash([6 * px, 4 * px]);
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(left + width, y);
    ctx.stroke();
    // The label above the line, or below it when the line is at the top of the plot.
    const below = y - top < 16 * px;
    ctx.textBaseline = below ? "top" : "bottom";
    ctx.fillText(`${m.label} ${formatNumber(m.value)}`, left + width - 4 * px, below ? y + 3 * px : y - 2 * px);
  }
  ctx.restore();
}

export function TimeseriesChart(props: TimeseriesChartProps) {
  const { series, type, height = 280, range, testid, legendTestid } = props;
  const markers = (props.markers ?? []).filter((m) => Number.isFinite(m.value));
  const markersKey = JSON.stringify(markers);
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const onZoom = useRef(props.onZoom);
  onZoom.current = props.onZoom;
  const [cursor, setCursor] = useState<number | null>(null);

  const data = useMemo(() => align(series), [series]);
  const rangeKey = range ? `${range[0]}-${range[1]}` : "";

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    setCursor(null);
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 200),
      height,
      legend: { show: false },
      cursor: {
        drag: { x: true, y: false, setScale: false },
        points: { size: 7 },
      },
      scales: {
        x: {
          time: true,
          ...(range ? { range: (): uPlot.Range.MinMax => [range[0] / 1000, range[1] / 1000] } : {}),
        },
        ...(markers.length > 0 || type !== "line"
          ? { y: { range: (_u: uPlot, min: number | null, max: number | null) => yRange(min, max, markers, type !== "line") } }
          : {}),
      },
      axes: [
        { stroke: "#667085", grid: { stroke: "#e2e5ea", width: 1 }, ticks: { stroke: "#e2e5ea", width: 1 } },
        {
          stroke: "#667085",
          size: 60,
          grid: { stroke: "#e2e5ea", width: 1 },
          ticks: { stroke: "#e2e5ea", width: 1 },
          values: (_u, splits) => splits.map((v) => formatNumber(v)),
        },
      ],
      series: [
        {},
        ...series.map((s, i) => seriesOpts(type, i, s.label, (data[i + 1] as unknown[]).filter((v) => v != null).length)),
      ],
      hooks: {
        setCursor: [(u) => setCursor(u.cursor.idx ?? null)],
        ...(markers.length > 0 ? { draw: [(u: uPlot) => drawMarkers(u, markers)] } : {}),
        setSelect: [
          (u) => {
            const sel = u.select;
            if (sel.width < 3) return;
            const from = u.posToVal(sel.left, "x");
            const to = u.posToVal(sel.left + sel.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            if (onZoom.current && Number.isFinite(from) && Number.isFinite(to) && to > from) {
              onZoom.current(Math.floor(from * 1000), Math.ceil(to * 1000));
            }
          },
        ],
      },
    };
    const u = new uPlot(opts, data, el);
    plot.current = u;
    // The number of series uPlot actually draws (a test hook, and handy when debugging).
    el.setAttribute("data-series-count", String(u.series.length - 1));
    const ro = new ResizeObserver(() => {
      const w = Math.max(el.clientWidth, 200);
      if (w !== u.width) u.setSize({ width: w, height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
      el.removeAttribute("data-series-count");
    };
  }, [data, type, height, rangeKey, markersKey]);

  const hoverTime = cursor !== null && cursor < data[0].length ? formatDate(new Date(data[0][cursor] * 1000), false) : null;

  return (
    <div class="ts-chart">
      <div class="ts-plot" ref={box} data-testid={testid} />
      <div class="ts-legend" aria-label="Legend">
        <p class="ts-legend-head muted">{hoverTime ? `At ${hoverTime}` : "Latest values"}</p>
        <ul>
          {series.map((s, i) => (
            <li key={i} class="ts-legend-item" data-testid={legendTestid}>
              <span class="ts-swatch" style={{ backgroundColor: seriesColor(i) }} />
              <span class="ts-label mono">{s.label}</span>
              <span class="ts-value num mono">{legendValue(data[i + 1] as (number | null | undefined)[], cursor)}</span>
            </li>
          ))}
        </ul>
        {markers.length > 0 && (
          <ul class="ts-markers" style={{ display: "flex", flexWrap: "wrap", gap: "2px 16px", marginTop: "4px" }}>
            {markers.map((m, i) => (
              <li key={i} class="ts-legend-item">
                <span class="ts-swatch" style={{ backgroundColor: MARKER_COLORS[m.kind] }} />
                <span class="ts-label">{m.label}</span>
                <span class="ts-value num mono">{formatNumber(m.value)}</span>
              </li>
            ))}
          </ul>
        )}
      </div>
    </div>
  );
}

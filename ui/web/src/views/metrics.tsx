// The metrics explorer: metric queries (Datadog syntax) and an optional formula over them, kept in the URL,
// drawn as a line, area or bar chart with one series per group; dragging across the chart zooms the time range.
import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiError, apiGet, isAbort, useApi, type MetricAnswer, type MetricSeries } from "../api";
import { ErrorText } from "../components/common";
import { ErrorMarker } from "../components/error-marker";
import { CHART_TYPES, TimeseriesChart, type ChartSeries, type ChartType } from "../components/chart";
import { formatDate } from "../format";
import { navigate, type Loc } from "../router";
import { timeRange, unixRange } from "../time";
import "./metrics.css";

/** What one query (a row or the formula) came back with. */
interface Outcome {
  series: MetricSeries[] | null;
  error: string | null;
}

interface Answer {
  rows: Outcome[];
  formula: Outcome | null;
  range: [number, number] | null;
}

const LETTERS = "abcdefghijklmnopqrstuvwxyz";
const MAX_ROWS = LETTERS.length;

function chartType(v: string | null): ChartType {
  return v === "area" || v === "bars" ? v : "line";
}

/**
 * The formula with each query letter (`a`, `b`, …) replaced by its query in parentheses, so the API evaluates
 * it as one arithmetic expression (SPEC §5: `expr (op expr)*`, parentheses group); null if it names a letter
 * with no query.
 */
export function expandFormula(formula: string, queries: string[]): { text: string } | { error: string } {
  let missing: string | null = null;
  const text = formula.replace(/\b([a-z])\b/g, (m, letter: string) => {
    const i = LETTERS.indexOf(letter);
    const q = i >= 0 && i < queries.length ? queries[i].trim() : "";
    if (!q) {
      missing ??= letter;
      return m;
    }
    return `(${q})`;
  });
  if (missing !== null) return { error: `the formula names query ${missing}, which is empty or missing` };
  return { text };
}

async function runQuery(query: string, from: number, to: number, signal: AbortSignal): Promise<Outcome> {
  const qs = new URLSearchParams({ from: String(from), to: String(to), query });
  try {
    const a = await apiGet<MetricAnswer>(`/api/v1/query?${qs.toString()}`, signal);
    return { series: Array.isArray(a.series) ? a.series : [], error: null };
  } catch (e) {
    if (isAbort(e)) throw e;
    return { series: null, error: e instanceof Error ? e.message : String(e) };
  }
}

/** A group's legend text: its tag set (`host:a,env:prod`), or the expression when it has no group. */
function groupLabel(s: MetricSeries): string {
  if (Array.isArray(s.tag_set) && s.tag_set.length > 0) return s.tag_set.join(",");
  return s.expression || s.metric || s.scope || "";
}

function toChart(series: MetricSeries[], prefix: string): ChartSeries[] {
  return series.map((s) => ({
    label: prefix + groupLabel(s),
    points: Array.isArray(s.pointlist) ? s.pointlist : [],
  }));
}

/** The URL of the view with these queries, formula and chart type (the time range kept). */
function viewHref(loc: Loc, queries: string[], formula: string, type: ChartType): string {
  const q = new URLSearchParams();
  for (const v of queries) if (v.trim()) q.append("query", v.trim());
  if (formula.trim()) q.set("formula", formula.trim());
  if (type !== "line") q.set("type", type);
  for (const k of ["from", "to"]) {
    const v = loc.query.get(k);
    if (v) q.set(k, v);
  }
  const s = q.toString();
  return s ? `${loc.path}?${s}` : loc.path;
}

function rangeText(from: string, to: string): string | null {
  // Absolute ranges (after a zoom) are unix milliseconds in the URL: say what they are.
  if (!/^\d+$/.test(from) || !/^\d+$/.test(to)) return null;
  return `${formatDate(new Date(Number(from)), false)} → ${formatDate(new Date(Number(to)), false)}`;
}

export function MetricsView({ loc }: { loc: Loc }) {
  const queries = loc.query.getAll("query").filter((q) => q.trim() !== "");
  const formula = (loc.query.get("formula") ?? "").trim();
  const type = chartType(loc.query.get("type"));
  const { from, to } = timeRange(loc);

  const [inputs, setInputs] = useState<string[]>(queries.length ? queries : [""]);
  const [formulaInput, setFormulaInput] = useState(formula);
  const [showFormula, setShowFormula] = useState(formula !== "");

  // Back/forward (or a link) changes the queries: the inputs follow.
  const urlKey = JSON.stringify([queries, formula]);
  useEffect(() => {
    setInputs(queries.length ? queries : [""]);
    setFormulaInput(formula);
    if (formula) setShowFormula(true);
  }, [urlKey]);

  const res = useApi<Answer>(JSON.stringify([queries, formula, from, to]), async (signal) => {
    const r = unixRange({ from, to });
    if (!r) throw new ApiError(0, `invalid time range ${from} → ${to}`);
    const rows = await Promise.all(queries.map((q) => runQuery(q, r.from, r.to, signal)));
    let f: Outcome | null = null;
    if (formula) {
      const ex = expandFormula(formula, queries);
      f = "error" in ex ? { series: null, error: ex.error } : await runQuery(ex.text, r.from, r.to, signal);
    }
    return { rows, formula: f, range: [r.from * 1000, r.to * 1000] };
  });

  const answer = res.data;
  const chartSeries = useMemo<ChartSeries[]>(() => {
    if (!answer) return [];
    if (answer.formula) return toChart(answer.formula.series ?? [], "");
    const many = answer.rows.filter((r) => r.series && r.series.length > 0).length > 1;
    return answer.rows.flatMap((r, i) => toChart(r.series ?? [], many ? `${LETTERS[i]}: ` : ""));
  }, [answer]);

  const submit = (e?: Event) => {
    e?.preventDefault();
    navigate(viewHref(loc, inputs, showFormula ? formulaInput : "", type));
  };
  const setInput = (i: number, v: string) => setInputs((xs) => xs.map((x, j) => (j === i ? v : x)));
  const addRow = () => setInputs((xs) => (xs.length < MAX_ROWS ? [...xs, ""] : xs));
  const removeRow = (i: number) => {
    const next = inputs.length > 1 ? inputs.filter((_, j) => j !== i) : [""];
    setInputs(next);
    navigate(viewHref(loc, next, showFormula ? formulaInput : "", type));
  };
  const onType = (e: Event) => {
    const v = chartType((e.currentTarget as HTMLSelectElement).value);
    navigate(viewHref(loc, queries, formula, v));
  };
  const onZoom = (fromMs: number, toMs: number) => {
    const q = new URLSearchParams(loc.query);
    q.set("from", String(fromMs));
    q.set("to", String(toMs));
    navigate(`${loc.path}?${q.toString()}`);
  };

  // Errors line up with the rows as they are in the URL (what was run).
  const rowError = (i: number): string | null => {
    if (!answer || inputs[i]?.trim() !== queries[i]) return null;
    return answer.rows[i]?.error ?? null;
  };
  const absolute = rangeText(from, to);
  const nothing = queries.length === 0;
  const failed = !!answer && (answer.rows.some((r) => r.error !== null) || !!answer.formula?.error);
  const noData = !!answer && !res.loading && !res.error && !failed && chartSeries.length === 0;

  return (
    <section class="metrics">
      <h1>Metrics</h1>
      <form class="mx-editor" onSubmit={submit} aria-label="Metric queries">
        {inputs.map((v, i) => (
          <div key={i} class="mx-row">
            <div class="mx-line">
              <span class="mx-letter mono" aria-hidden="true">
                {LETTERS[i]}
              </span>
              <div class="em-field">
                <input
                  type="text"
                  class="query-input mono"
                  data-testid="metric-query-input"
                  aria-label={`Metric query ${LETTERS[i]}`}
                  placeholder="avg:system.cpu.user{env:prod} by {host}"
                  spellcheck={false}
                  autocomplete="off"
                  value={v}
                  onInput={(e) => setInput(i, (e.currentTarget as HTMLInputElement).value)}
                />
                <ErrorMarker
                  text={v}
                  error={rowError(i) !== null ? { query: queries[i] ?? "", message: rowError(i) ?? "" } : null}
                  testid="metric-query-error-marker"
                />
              </div>
              <button
                type="button"
                class="mx-icon"
                title="Remove this query"
                aria-label={`Remove query ${LETTERS[i]}`}
                data-testid="metric-query-remove"
                onClick={() => removeRow(i)}
              >
                −
              </button>
            </div>
            {rowError(i) !== null && <ErrorText error={rowError(i) ?? ""} testid="metric-query-error" />}
          </div>
        ))}
        {showFormula && (
          <div class="mx-row">
            <div class="mx-line">
              <span class="mx-letter mono" aria-hidden="true">
                ƒ
              </span>
              <input
                type="text"
                class="query-input mono"
                data-testid="metric-formula-input"
                aria-label="Formula over the queries"
                placeholder="a / b * 100"
                spellcheck={false}
                autocomplete="off"
                value={formulaInput}
                onInput={(e) => setFormulaInput((e.currentTarget as HTMLInputElement).value)}
              />
              <button
                type="button"
                class="mx-icon"
                title="Remove the formula"
                aria-label="Remove the formula"
                onClick={() => {
                  setShowFormula(false);
                  setFormulaInput("");
                  navigate(viewHref(loc, inputs, "", type));
                }}
              >
                −
              </button>
            </div>
            {answer?.formula?.error && formulaInput.trim() === formula && (
              <ErrorText error={answer.formula.error} testid="metric-formula-error" />
            )}
          </div>
        )}
        <div class="mx-actions">
          <button type="button" class="mx-secondary" onClick={addRow} data-testid="metric-query-add"
            disabled={inputs.length >= MAX_ROWS}>
            + Query
          </button>
          {!showFormula && (
            <button type="button" class="mx-secondary" onClick={() => setShowFormula(true)}
              data-testid="metric-formula-add">
              + Formula
            </button>
          )}
          <label class="mx-type">
            <span>Display</span>
            <select data-testid="metric-chart-type" value={type} onChange={onType}>
              {CHART_TYPES.map((t) => (
                <option key={t.value} value={t.value}>
                  {t.label}
                </option>
              ))}
            </select>
          </label>
          <span class="spacer" />
          <button type="submit" data-testid="metric-query-submit">
            Graph
          </button>
        </div>
      </form>
      {res.error && <ErrorText error={res.error} />}
      <p class="muted summary" data-testid="metric-summary">
        {nothing
          ? "Enter a metric query, e.g. avg:system.cpu.user{*} by {host}, and press Enter."
          : res.loading
            ? "Loading…"
            : noData
              ? "No data for these queries in this time range."
              : answer && !failed
                ? `${chartSeries.length} series${absolute ? ` · ${absolute}` : ""} · drag across the chart to zoom`
                : ""}
      </p>
      {!nothing && chartSeries.length > 0 && answer && (
        <div class="mx-chart">
          <TimeseriesChart
            series={chartSeries}
            type={type}
            height={320}
            range={answer.range ?? undefined}
            onZoom={onZoom}
            testid="metric-chart"
            legendTestid="metric-legend-item"
          />
        </div>
      )}
    </section>
  );
}

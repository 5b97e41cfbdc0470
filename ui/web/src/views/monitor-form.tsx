// The monitor create/edit form (`/monitors/new`, `/monitors/{id}/edit`): the definition's fields validated as
// you type with `POST /api/v1/monitor/validate`, a live chart of a metric monitor's query over the past hour with
// its threshold lines, and save (POST or PUT) to `/monitors/{id}`.
import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiError, apiGet, apiPost, apiPut, isAbort, useApi, type MetricAnswer } from "../api";
import { ErrorText, Loading } from "../components/common";
import { ErrorSnippet } from "../components/error-marker";
import { TimeseriesChart, type ChartMarker, type ChartSeries } from "../components/chart";
import { Link, navigate } from "../router";
import type { Monitor } from "./monitors";
import "./monitors.css";

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const TYPES: { value: string; label: string; placeholder: string }[] = [
  { value: "metric alert", label: "Metric alert", placeholder: "avg(last_5m):avg:system.cpu.user{*} by {host} > 80" },
  {
    value: "log alert",
    label: "Log alert",
    placeholder: 'logs("service:web status:error").index("*").rollup("count").by("host").last("5m") > 10',
  },
  {
    value: "trace-analytics alert",
    label: "Trace analytics alert",
    placeholder: 'trace-analytics("service:web status:error").rollup("count").last("5m") > 3',
  },
];

function isMetric(type: string): boolean {
  return type === "metric alert" || type === "query alert";
}

/** The comparator and threshold at the end of a monitor query (`… > 80`). */
const TAIL = /(>=|<=|>|<)\s*(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$/;

/** The threshold of the query's comparison, as written; null when the query does not end with one. */
export function queryThreshold(query: string): string | null {
  const m = TAIL.exec(query);
  return m ? m[2] : null;
}

/** The query with its threshold replaced by `value` (unchanged when it has none). */
export function withThreshold(query: string, value: string): string {
  const m = TAIL.exec(query);
  if (!m) return query;
  const at = m.index + m[0].indexOf(m[2], m[1].length);
  return query.slice(0, at) + value + query.slice(at + m[2].length);
}

/**
 * The metric query inside a metric monitor query: after the first `):` (`avg(last_5m):…`, also
 * `change(avg(last_5m),last_5m):…`) and before the trailing comparison; null when there is none.
 */
export function innerMetricQuery(query: string): string | null {
  const i = query.indexOf("):");
  if (i < 0) return null;
  let rest = query.slice(i + 2);
  const m = TAIL.exec(rest);
  if (m) rest = rest.slice(0, m.index);
  rest = rest.trim();
  return rest ? rest : null;
}

/** What the form edits, as typed. */
interface Fields {
  name: string;
  type: string;
  query: string;
  critical: string;
  warning: string;
  criticalRecovery: string;
  warningRecovery: string;
  message: string;
  tags: string;
  notifyNoData: boolean;
  noDataTimeframe: string;
  renotifyInterval: string;
}

const EMPTY: Fields = {
  name: "",
  type: "metric alert",
  query: "",
  critical: "",
  warning: "",
  criticalRecovery: "",
  warningRecovery: "",
  message: "",
  tags: "",
  notifyNoData: false,
  noDataTimeframe: "10",
  renotifyInterval: "",
};

function numText(v: unknown): string {
  return typeof v === "number" && Number.isFinite(v) ? String(v) : "";
}

function fieldsOf(m: Monitor): Fields {
  const o = m.options ?? {};
  const t = (typeof o.thresholds === "object" && o.thresholds !== null ? o.thresholds : {}) as Record<string, unknown>;
  return {
    name: m.name ?? "",
    type: m.type ?? "metric alert",
    query: m.query ?? "",
    critical: numText(t.critical) || queryThreshold(m.query ?? "") || "",
    warning: numText(t.warning),
    criticalRecovery: numText(t.critical_recovery),
    warningRecovery: numText(t.warning_recovery),
    message: m.message ?? "",
    tags: (m.tags ?? []).join(", "),
    notifyNoData: o.notify_no_data === true,
    noDataTimeframe: numText(o.no_data_timeframe) || "10",
    renotifyInterval: numText(o.renotify_interval),
  };
}

/** A number when the text is one; otherwise the text itself (the API then names the field that is wrong). */
function num(s: string): number | string {
  const t = s.trim();
  const n = Number(t);
  return t !== "" && Number.isFinite(n) ? n : t;
}

/** The create/update body: the stored options (unknown ones kept) with the form's options over them. */
function bodyOf(f: Fields, stored: Record<string, unknown>): Record<string, unknown> {
  const options: Record<string, unknown> = { ...stored };
  const thresholds: Record<string, unknown> = {};
  const put = (key: string, v: string) => {
    if (v.trim() !== "") thresholds[key] = num(v);
  };
  put("critical", f.critical);
  put("warning", f.warning);
  put("critical_recovery", f.criticalRecovery);
  put("warning_recovery", f.warningRecovery);
  options.thresholds = thresholds;
  options.notify_no_data = f.notifyNoData;
  if (f.notifyNoData && f.noDataTimeframe.trim() !== "") options.no_data_timeframe = num(f.noDataTimeframe);
  else delete options.no_data_timeframe;
  if (f.renotifyInterval.trim() !== "") options.renotify_interval = num(f.renotifyInterval);
  else delete options.renotify_interval;
  const tags = f.tags
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
  return { name: f.name, type: f.type, query: f.query, message: f.message, tags, options };
}

/** Which part of the form an API error is about (where it is shown). */
type Place = "query" | "thresholds" | "options" | "other";

function placeOf(msg: string): Place {
  if (msg.startsWith("invalid query") || msg.includes('"query"')) return "query";
  if (msg.includes("thresholds")) return "thresholds";
  if (msg.includes("options.")) return "options";
  return "other";
}


const VALIDATE_MS = 400;

/** A threshold input: decimal text, labelled. */
function NumberField(props: { label: string; testid: string; value: string; onInput: (v: string) => void }) {
  return (
    <label class="mf-field mf-narrow">
      <span>{props.label}</span>
      <input
        type="text"
        inputMode="decimal"
        data-testid={props.testid}
        value={props.value}
        onInput={(e) => props.onInput(e.currentTarget.value)}
      />
    </label>
  );
}

/** `/monitors/new` (no id) and `/monitors/{id}/edit`. */
export function MonitorFormView({ id }: { id?: string }) {
  const res = useApi<Monitor | null>(`monitor-form:${id ?? "new"}`, (signal) =>
    id === undefined
      ? Promise.resolve(null)
      : apiGet<Monitor>(`/api/v1/monitor/${encodeURIComponent(id)}`, signal),
  );
  return (
    <section class="monitor-form-page">
      <p>
        <Link href={id === undefined ? "/monitors" : `/monitors/${encodeURIComponent(id)}`}>
          {id === undefined ? "← Monitors" : "← Back to the monitor"}
        </Link>
      </p>
      <h1>{id === undefined ? "New monitor" : "Edit monitor"}</h1>
      {res.error && <ErrorText error={res.error} />}
      <Loading when={res.loading && !res.data && id !== undefined} />
      {!res.loading && !res.error && (id === undefined || res.data) && (
        <MonitorForm key={id ?? "new"} id={id} stored={res.data} />
      )}
    </section>
  );
}

function MonitorForm({ id, stored }: { id?: string; stored: Monitor | null }) {
  const [f, setF] = useState<Fields>(() => (stored ? fieldsOf(stored) : EMPTY));
  const storedOptions = stored?.options ?? {};
  const body = useMemo(() => bodyOf(f, storedOptions), [f]);
  const bodyKey = JSON.stringify(body);

  const [check, setCheck] = useState<{ key: string; error: string | null } | null>(null);
  const [chartQuery, setChartQuery] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<string | null>(null);

  const set = <K extends keyof Fields>(k: K, v: Fields[K]) => setF((x) => ({ ...x, [k]: v }));
  const onQuery = (q: string) =>
    setF((x) => {
      const t = queryThreshold(q);
      return { ...x, query: q, critical: t ?? x.critical };
    });
  const onCritical = (c: string) =>
    setF((x) => {
      const n = Number(c.trim());
      const query = c.trim() !== "" && Number.isFinite(n) ? withThreshold(x.query, c.trim()) : x.query;
      return { ...x, critical: c, query };
    });

  // A failed save's error stands until the definition changes.
  useEffect(() => setSaveError(null), [bodyKey]);

  // Validate as you type (debounced); the newest answer wins.
  const metric = isMetric(f.type);
  useEffect(() => {
    if (f.query.trim() === "") {
      setCheck(null);
      setChartQuery(null);
      return;
    }
    const ctl = new AbortController();
    const timer = window.setTimeout(() => {
      const path = id === undefined ? "/api/v1/monitor/validate" : `/api/v1/monitor/${encodeURIComponent(id)}/validate`;
      apiPost<unknown>(path, body, ctl.signal).then(
        () => {
          if (ctl.signal.aborted) return;
          setCheck({ key: bodyKey, error: null });
          setChartQuery(metric ? innerMetricQuery(f.query) : null);
        },
        (e: unknown) => {
          if (ctl.signal.aborted || isAbort(e)) return;
          const msg = errorText(e);
          setCheck({ key: bodyKey, error: msg });
          if (placeOf(msg) === "query") setChartQuery(null);
          else setChartQuery(metric ? innerMetricQuery(f.query) : null);
        },
      );
    }, VALIDATE_MS);
    return () => {
      window.clearTimeout(timer);
      ctl.abort();
    };
  }, [bodyKey, id]);

  // The live chart: the metric query over the past hour.
  const chart = useApi<{ series: ChartSeries[]; range: [number, number] } | null>(
    `chart:${chartQuery ?? ""}`,
    async (signal) => {
      if (!chartQuery) return null;
      const to = Math.floor(Date.now() / 1000);
      const from = to - 3600;
      const qs = new URLSearchParams({ from: String(from), to: String(to), query: chartQuery });
      const a = await apiGet<MetricAnswer>(`/api/v1/query?${qs.toString()}`, signal);
      const series = (a.series ?? []).map((s) => ({
        label: s.tag_set && s.tag_set.length > 0 ? s.tag_set.join(",") : s.expression || s.metric || "",
        points: Array.isArray(s.pointlist) ? s.pointlist : [],
      }));
      return { series, range: [from * 1000, to * 1000] };
    },
  );

  const markers = useMemo<ChartMarker[]>(() => {
    const out: ChartMarker[] = [];
    const c = Number(f.critical.trim());
    if (f.critical.trim() !== "" && Number.isFinite(c)) out.push({ value: c, label: "critical", kind: "critical" });
    const w = Number(f.warning.trim());
    if (f.warning.trim() !== "" && Number.isFinite(w)) out.push({ value: w, label: "warning", kind: "warning" });
    return out;
  }, [f.critical, f.warning]);

  const save = async (e: Event) => {
    e.preventDefault();
    if (saving) return;
    setSaving(true);
    setSaveError(null);
    try {
      const m =
        id === undefined
          ? await apiPost<Monitor>("/api/v1/monitor", body)
          : await apiPut<Monitor>(`/api/v1/monitor/${encodeURIComponent(id)}`, body);
      if (!m || typeof m.id !== "number") throw new ApiError(0, "the server answered without a monitor id");
      navigate(`/monitors/${m.id}`);
    } catch (err) {
      setSaveError(errorText(err));
      setSaving(false);
    }
  };

  // The error shown: the save's, else the newest validation's (when it is about what is on screen).
  const current = check && check.key === bodyKey ? check.error : null;
  const shown = saveError ?? current ?? (check?.error ?? null);
  const place = shown ? placeOf(shown) : null;
  const errorAt = (p: Place) => (shown && place === p ? <ErrorText error={shown} testid="monitor-form-error" /> : null);
  const typeInfo = TYPES.find((t) => t.value === f.type);
  const validating = f.query.trim() !== "" && (!check || check.key !== bodyKey);

  return (
    <form class="monitor-form" data-testid="monitor-form" onSubmit={save} aria-label="Monitor definition">
      <div class="mf-grid">
        <label class="mf-field">
          <span>Name</span>
          <input
            type="text"
            data-testid="monitor-name"
            value={f.name}
            placeholder="High CPU on {{host.name}}"
            onInput={(e) => set("name", e.currentTarget.value)}
          />
        </label>
        <label class="mf-field mf-narrow">
          <span>Type</span>
          <select data-testid="monitor-type" value={f.type} onChange={(e) => set("type", e.currentTarget.value)}>
            {TYPES.map((t) => (
              <option key={t.value} value={t.value}>
                {t.label}
              </option>
            ))}
            {!typeInfo && <option value={f.type}>{f.type}</option>}
          </select>
        </label>
      </div>

      <label class="mf-field">
        <span>Query</span>
        <textarea
          class="mono"
          rows={2}
          data-testid="monitor-query"
          spellcheck={false}
          value={f.query}
          placeholder={(typeInfo ?? TYPES[0]).placeholder}
          onInput={(e) => onQuery(e.currentTarget.value)}
        />
      </label>
      {/* Only an error about what is on screen (not a stale validation while typing) marks a position. */}
      <ErrorSnippet
        text={f.query}
        error={(saveError ?? current) && place === "query" ? { query: f.query, message: shown ?? "" } : null}
      />
      <p class="muted mf-hint">
        {metric
          ? "time_aggr(last_5m):space_aggr:metric{scope} by {tags} > threshold; change(…) and pct_change(…) work too."
          : 'logs("search").index("*").rollup("count").by("tag").last("5m") > threshold'}
        {validating ? " · checking…" : check && check.key === bodyKey && !check.error ? " · valid" : ""}
      </p>
      {errorAt("query")}

      {metric && (
        <div class="mf-chart">
          {chartQuery === null ? (
            <p class="muted">The chart of the query appears here once the query is valid.</p>
          ) : chart.error ? (
            <ErrorText error={chart.error} />
          ) : chart.data && chart.data.series.length > 0 ? (
            <>
              <p class="muted mf-hint">
                <span class="mono">{chartQuery}</span> over the past hour
              </p>
              <TimeseriesChart
                series={chart.data.series}
                type="line"
                height={220}
                range={chart.data.range}
                markers={markers}
                testid="monitor-chart"
              />
            </>
          ) : chart.loading ? (
            <Loading when={true} />
          ) : (
            <p class="muted">No data for this query in the past hour.</p>
          )}
        </div>
      )}

      <fieldset class="mf-set">
        <legend>Thresholds</legend>
        <div class="mf-grid">
          <NumberField label="Critical" testid="monitor-critical" value={f.critical} onInput={(v) => onCritical(v)} />
          <NumberField label="Warning" testid="monitor-warning" value={f.warning} onInput={(v) => set("warning", v)} />
          <NumberField label="Critical recovery" testid="monitor-critical-recovery" value={f.criticalRecovery} onInput={(v) => set("criticalRecovery", v)} />
          <NumberField label="Warning recovery" testid="monitor-warning-recovery" value={f.warningRecovery} onInput={(v) => set("warningRecovery", v)} />
        </div>
        <p class="muted mf-hint">The critical threshold is the number the query compares with: editing one edits the other.</p>
        {errorAt("thresholds")}
      </fieldset>

      <label class="mf-field">
        <span>Message</span>
        <textarea
          rows={4}
          data-testid="monitor-message"
          value={f.message}
          onInput={(e) => set("message", e.currentTarget.value)}
        />
      </label>
      <p class="muted mf-hint">
        {"Notify with @webhook-<name>. Conditional blocks: {{#is_alert}}…{{/is_alert}}, {{#is_warning}}…{{/is_warning}}, " +
          "{{#is_recovery}}…{{/is_recovery}}; variables such as {{value}} and {{host.name}}."}
      </p>

      <div class="mf-grid">
        <label class="mf-field">
          <span>Tags (comma-separated)</span>
          <input
            type="text"
            data-testid="monitor-tags"
            value={f.tags}
            placeholder="team:web, env:prod"
            onInput={(e) => set("tags", e.currentTarget.value)}
          />
        </label>
        <label class="mf-field mf-narrow">
          <span>Renotify every (minutes)</span>
          <input
            type="text"
            inputMode="numeric"
            data-testid="monitor-renotify"
            value={f.renotifyInterval}
            placeholder="never"
            onInput={(e) => set("renotifyInterval", e.currentTarget.value)}
          />
        </label>
      </div>
      <div class="mf-inline">
        <label class="mf-check">
          <input
            type="checkbox"
            data-testid="monitor-notify-no-data"
            checked={f.notifyNoData}
            onChange={(e) => set("notifyNoData", e.currentTarget.checked)}
          />
          <span>Notify when data is missing for</span>
        </label>
        <input
          type="text"
          inputMode="numeric"
          class="mf-minutes"
          aria-label="No-data timeframe (minutes)"
          data-testid="monitor-no-data-timeframe"
          value={f.noDataTimeframe}
          disabled={!f.notifyNoData}
          onInput={(e) => set("noDataTimeframe", e.currentTarget.value)}
        />
        <span>minutes</span>
      </div>
      {errorAt("options")}
      {errorAt("other")}

      <div class="mf-actions">
        <button type="submit" data-testid="monitor-save" disabled={saving}>
          {saving ? "Saving…" : id === undefined ? "Create monitor" : "Save changes"}
        </button>
        <Link href={id === undefined ? "/monitors" : `/monitors/${encodeURIComponent(id)}`}>Cancel</Link>
      </div>
    </form>
  );
}


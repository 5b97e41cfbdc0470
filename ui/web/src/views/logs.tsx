// The log explorer: a query bar (Datadog search syntax, kept in the URL) with completions and history, a
// count-over-time histogram by status, a facet sidebar, the newest logs, and a detail panel.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { apiPost, useApi, type ApiError } from "../api";
import { historySuggestions, pushHistory, searchSuggestions } from "../components/autocomplete";
import { AttrTree, ErrorText, QueryBar } from "../components/common";
import { FacetSidebar, facetSource, loadFacets } from "../components/facets";
import { Histogram, loadHistogram } from "../components/histogram";
import { formatIso, logStatusClass } from "../format";
import { Link, navigate, withParams, type Loc } from "../router";
import { timeRange } from "../time";

const LIMIT = 100;
/** localStorage key of the recent log queries. */
const HISTORY_KEY = "sightline.logs.history";

export interface LogEvent {
  id: string;
  type: string;
  attributes: {
    timestamp: string;
    message?: string;
    status?: string;
    service?: string;
    host?: string;
    tags?: string[];
    attributes?: Record<string, unknown>;
  };
}

interface LogsAnswer {
  data: LogEvent[];
  meta?: { elapsed?: number; page?: { after?: string } };
}

/** A trace id the trace view can open (16 or 32 hex digits). */
function traceLink(attrs: Record<string, unknown> | undefined): string | null {
  const t = attrs?.trace_id;
  return typeof t === "string" && /^([0-9a-fA-F]{16}|[0-9a-fA-F]{32})$/.test(t) ? t : null;
}

function Detail({ log, onClose }: { log: LogEvent; onClose: () => void }) {
  const a = log.attributes;
  const trace = traceLink(a.attributes);
  return (
    <aside class="detail" data-testid="log-detail" aria-label="Log detail">
      <div class="detail-head">
        <span class={logStatusClass(a.status)}>{a.status || ""}</span>
        <span class="mono">{formatIso(a.timestamp)}</span>
        <span class="spacer" />
        <button type="button" class="link-button" onClick={onClose} data-testid="detail-close">
          Close
        </button>
      </div>
      <pre class="message-full" data-testid="log-detail-message">{a.message ?? ""}</pre>
      <dl class="facts">
        <dt>service</dt>
        <dd>{a.service ?? ""}</dd>
        <dt>host</dt>
        <dd>{a.host ?? ""}</dd>
        <dt>id</dt>
        <dd class="mono">{log.id}</dd>
        <dt>tags</dt>
        <dd>
          {(a.tags ?? []).map((t) => (
            <span key={t} class="tag">
              {t}
            </span>
          ))}
        </dd>
      </dl>
      {trace && (
        <p>
          <Link href={`/apm/traces/${encodeURIComponent(trace)}`} data-testid="view-trace">
            View trace
          </Link>
        </p>
      )}
      <h3>Attributes</h3>
      <AttrTree value={a.attributes ?? {}} testid="log-attributes" />
    </aside>
  );
}

/**
 * Loads `key` once `ready` (the log list answered for the same query: a malformed query costs one failed
 * request, not three); while the next answer loads, the previous one stays on screen.
 */
function useAfterList<T>(
  key: string,
  ready: boolean,
  load: (signal: AbortSignal) => Promise<T>,
): { data: T | null; loading: boolean; error: ApiError | null } {
  const r = useApi<T | null>(ready ? key : "", (signal) => (ready ? load(signal) : Promise.resolve(null)));
  const last = useRef<T | null>(null);
  if (r.data) last.current = r.data;
  return { data: last.current, loading: !ready || r.loading, error: r.error };
}

export function LogsView({ loc }: { loc: Loc }) {
  const query = loc.query.get("query") ?? "";
  const { from, to } = timeRange(loc);
  const [input, setInput] = useState(query);
  const [selected, setSelected] = useState<string | null>(null);

  // Back/forward (or a link) changes the query: the input follows.
  useEffect(() => setInput(query), [query]);

  const key = JSON.stringify([query, from, to]);
  // The answer carries the key it is for: in the render right after the query changes, `res` still holds
  // the previous answer, which must not start the histogram and facets for the new (maybe malformed) query.
  const res = useApi<{ key: string; answer: LogsAnswer }>(key, (signal) =>
    apiPost<LogsAnswer>(
      "/api/v2/logs/events/search",
      { filter: { query, from, to }, page: { limit: LIMIT }, sort: "-timestamp" },
      signal,
    ).then((answer) => ({ key, answer })),
  );
  const logs = res.data?.answer.data ?? [];
  const chosen = selected === null ? null : logs.find((l) => l.id === selected) ?? null;

  const listOk = !res.loading && res.error === null && res.data?.key === key;
  const hist = useAfterList(key, listOk, (signal) => loadHistogram(query, { from, to }, signal));
  const facets = useAfterList(key, listOk, (signal) => loadFacets(query, { from, to }, signal));

  // A query that ran is remembered (newest first) for the empty query bar.
  useEffect(() => {
    if (listOk && query.trim() !== "") pushHistory(HISTORY_KEY, query);
  }, [query, listOk]);

  const source = useMemo(() => facetSource(facets.data), [facets.data]);
  const suggest = (text: string, caret: number) =>
    text.trim() === "" ? historySuggestions(HISTORY_KEY) : searchSuggestions(text, caret, source);

  const setQuery = (q: string) => {
    setSelected(null);
    setInput(q);
    navigate(withParams(loc, { query: q }));
  };

  const onSubmit = (e: Event) => {
    e.preventDefault();
    const q = input.trim();
    if (q === query) return;
    setSelected(null);
    navigate(withParams(loc, { query: q }));
  };

  return (
    <section class="logs">
      <h1>Logs</h1>
      <QueryBar
        search
        value={input}
        onInput={setInput}
        onSubmit={onSubmit}
        testid="query-input"
        label="Log search query"
        placeholder='service:web status:error "timed out" @http.status_code:>=500'
        button="Search"
        suggest={suggest}
      />
      {res.error && <ErrorText error={res.error} testid="query-error" />}
      <Histogram data={res.error ? null : hist.data} loading={hist.loading && !res.error} />
      {hist.error && <p class="muted">Histogram: {hist.error.message}</p>}
      <div class="facets-layout">
        <FacetSidebar
          data={res.error ? null : facets.data}
          loading={facets.loading && !res.error}
          query={query}
          onQuery={setQuery}
        />
        <div class={chosen ? "split with-detail" : "split"}>
          <div class="list">
            <p class="muted summary" data-testid="log-summary">
              {res.loading
                ? "Loading…"
                : res.error
                  ? ""
                  : logs.length === 0
                    ? "No logs match this query in this time range."
                    : `The newest ${logs.length} log${logs.length === 1 ? "" : "s"}${logs.length === LIMIT ? " (more are not shown)" : ""}.`}
            </p>
            {logs.length > 0 && (
              <table class="grid logs-table" data-testid="log-list">
                <thead>
                  <tr>
                    <th class="col-time">Time</th>
                    <th class="col-status">Status</th>
                    <th class="col-service">Service</th>
                    <th class="col-host">Host</th>
                    <th>Message</th>
                  </tr>
                </thead>
                <tbody>
                  {logs.map((l) => {
                    const a = l.attributes;
                    return (
                      <tr
                        key={l.id}
                        data-testid="log-row"
                        class={l.id === selected ? "row selected" : "row"}
                        tabIndex={0}
                        onClick={() => setSelected(l.id === selected ? null : l.id)}
                        onKeyDown={(e) => {
                          if (e.key === "Enter" || e.key === " ") {
                            e.preventDefault();
                            setSelected(l.id === selected ? null : l.id);
                          }
                        }}
                      >
                        <td class="mono nowrap">{formatIso(a.timestamp)}</td>
                        <td>
                          <span class={logStatusClass(a.status)}>{a.status ?? ""}</span>
                        </td>
                        <td class="nowrap">{a.service ?? ""}</td>
                        <td class="nowrap">{a.host ?? ""}</td>
                        <td class="mono message">
                          <div class="clamp">{a.message ?? ""}</div>
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            )}
          </div>
          {chosen && <Detail log={chosen} onClose={() => setSelected(null)} />}
        </div>
      </div>
    </section>
  );
}

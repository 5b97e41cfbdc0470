// The log explorer: a query bar (Datadog search syntax, kept in the URL) with completions and history, a
// count-over-time histogram by status, a facet sidebar, the newest logs in a virtualized list (`limit` rows,
// "Load more" pages on with the cursor, a live tail prepends new ones), and a detail panel.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { EventStream, STREAM_CLOSED, apiPost, useApi, type ApiError } from "../api";
import { historySuggestions, pushHistory, searchSuggestions } from "../components/autocomplete";
import { AttrTree, ErrorText, QueryBar } from "../components/common";
import { FacetSidebar, facetSource, loadFacets } from "../components/facets";
import { Histogram, loadHistogram } from "../components/histogram";
import { LoadMore, usePagedMore, type Page } from "../components/paged";
import { VirtualList } from "../components/virtual-list";
import { formatCount, formatIso, logStatusClass } from "../format";
import { Link, navigate, withParams, type Loc } from "../router";
import { timeRange } from "../time";

/** Rows loaded at first and by each "Load more" (the URL's `limit`: default and largest). */
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
/** The search API's largest page (`MAX_LIMIT` of query/src/logs_http.rs); a larger `limit` takes several. */
const API_PAGE_MAX = 5000;
/** Logs kept from the live tail (the newest). */
const LIVE_CAP = 10_000;
/** The live tail's arrivals are added at most this often (ms): one render per burst, not per log. */
const LIVE_FLUSH_MS = 100;
/** The live tail's second catch-up search, this long (ms) after the stream opens (see the "open" handler). */
const CATCH_UP_AGAIN_MS = 2500;
/** Every list row's height (CSS pixels): the virtualized list depends on it. */
const ROW_HEIGHT = 28;
/** The empty list, one array: the list's rows are only recombined when a part really changes. */
const NONE: LogEvent[] = [];
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

/** One `log` event of the live tail (query/src/tail.rs): a search hit's attributes plus the stream's id. */
interface TailLog {
  id?: string;
  timestamp?: string;
  message?: string;
  status?: string;
  service?: string;
  host?: string;
  tags?: string[];
  attributes?: Record<string, unknown>;
}

/** The URL's `limit`: a whole number from 1 to MAX_LIMIT, else the default. */
export function parseLimit(v: string | null): number {
  const n = v === null || v.trim() === "" ? NaN : Number(v);
  return Number.isInteger(n) && n >= 1 ? Math.min(n, MAX_LIMIT) : DEFAULT_LIMIT;
}

type Loaded = Page<LogEvent>;

/** Up to `limit` logs, newest first, from `cursor` on (the start when null): as many API pages as it takes. */
async function loadLogs(
  filter: { query: string; from: string; to: string },
  limit: number,
  cursor: string | null,
  signal: AbortSignal,
): Promise<Loaded> {
  const data: LogEvent[] = [];
  let after = cursor;
  for (;;) {
    const page: { limit: number; cursor?: string } = { limit: Math.min(limit - data.length, API_PAGE_MAX) };
    if (after) page.cursor = after;
    const answer = await apiPost<LogsAnswer>(
      "/api/v2/logs/events/search",
      { filter, page, sort: "-timestamp" },
      signal,
    );
    data.push(...answer.data);
    after = answer.meta?.page?.after || null;
    if (!after || data.length >= limit || answer.data.length === 0) return { data, after };
  }
}

/** What identifies a log across the search and the tail (which number their logs differently). */
function fingerprint(l: LogEvent): string {
  const a = l.attributes;
  return JSON.stringify([a.timestamp, a.service ?? "", a.host ?? "", a.status ?? "", a.message ?? ""]);
}

/** `caught` (newest first) merged into `rows` (the live rows: newest first, but in the order they arrived). */
function newestFirst(rows: LogEvent[], caught: LogEvent[]): LogEvent[] {
  const out: LogEvent[] = [];
  let i = 0;
  let j = 0;
  while (i < rows.length || j < caught.length) {
    const r = rows[i];
    const c = caught[j];
    if (r && (!c || r.attributes.timestamp >= c.attributes.timestamp)) {
      out.push(r);
      i++;
    } else if (c) {
      out.push(c);
      j++;
    }
  }
  return out;
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
  const limit = parseLimit(loc.query.get("limit"));
  const liveOn = loc.query.get("live") === "1";
  const [input, setInput] = useState(query);
  const [selected, setSelected] = useState<string | null>(null);

  // Back/forward (or a link) changes the query: the input follows.
  useEffect(() => setInput(query), [query]);

  const key = JSON.stringify([query, from, to, limit]);
  // The answer carries the key it is for: in the render right after the query changes, `res` still holds
  // the previous answer, which must not start the histogram and facets for the new (maybe malformed) query.
  // Not reloaded while live: the live tail adds the new logs (and a reload would restart the stream).
  const res = useApi<{ key: string; page: Loaded }>(
    key,
    (signal) => loadLogs({ query, from, to }, limit, null, signal).then((page) => ({ key, page })),
    false,
  );
  const listOk = !res.loading && res.error === null && res.data?.key === key;

  // "Load more": the next pages, for this key only.
  const more = usePagedMore(key, listOk ? res.data?.page.after ?? null : null, (after, signal) =>
    loadLogs({ query, from, to }, limit, after, signal),
  );
  const moreRows = more.rows;
  const after = more.after;

  // Live tail: logs arriving while the page is open, newest first, for this key only.
  const [live, setLive] = useState<{ key: string; data: LogEvent[] } | null>(null);
  const [liveError, setLiveError] = useState<string | null>(null);
  const liveSeq = useRef(0);
  // The rows on screen, for the stream's catch-up (read when it opens, not a reason to reopen it).
  const shown = useRef<{ live: LogEvent[]; base: LogEvent[]; more: LogEvent[] }>({
    live: NONE,
    base: NONE,
    more: NONE,
  });
  useEffect(() => {
    setLiveError(null);
    // Opened once the list answered: a malformed query is reported by the list, not by a failing stream.
    if (!liveOn || !listOk) return;
    const es = new EventStream(`/api/ui/logs/tail${query.trim() ? `?query=${encodeURIComponent(query)}` : ""}`);
    let pending: LogEvent[] = [];
    // Logs the catch-up search added: the stream may deliver them too (once).
    const caught = new Set<string>();
    const ctl = new AbortController();
    let timer = 0;
    const flush = () => {
      timer = 0;
      const arrived = pending.reverse();
      pending = [];
      setLive((l) => {
        const prev = l?.key === key ? l.data : [];
        const data = arrived.length >= LIVE_CAP ? arrived.slice(0, LIVE_CAP) : [...arrived, ...prev];
        return { key, data: data.length > LIVE_CAP ? data.slice(0, LIVE_CAP) : data };
      });
    };
    es.addEventListener("log", (ev: MessageEvent<string>) => {
      let t: TailLog;
      try {
        t = JSON.parse(ev.data) as TailLog;
      } catch {
        return;
      }
      liveSeq.current += 1;
      const log: LogEvent = {
        id: `live-${liveSeq.current}`,
        type: "log",
        attributes: {
          timestamp: t.timestamp ?? new Date().toISOString(),
          message: t.message,
          status: t.status,
          service: t.service,
          host: t.host,
          tags: t.tags,
          attributes: t.attributes,
        },
      };
      if (caught.delete(fingerprint(log))) return;
      pending.push(log);
      if (pending.length > LIVE_CAP) pending.splice(0, pending.length - LIVE_CAP);
      if (!timer) timer = window.setTimeout(flush, LIVE_FLUSH_MS);
    });
    es.addEventListener("lagged", () => setLiveError("The live tail fell behind: some logs were skipped."));
    // On every (re)connection, catch up: the logs stored since the newest one on screen (the page may have
    // been open for a while before Live was switched on, and the stream only carries logs stored after it
    // opened). A page of them, below the live arrivals; the ones already shown are skipped. Once more a
    // little later: a log becomes searchable about a second (the store's commit interval) after it is stored.
    let again = 0;
    /** The newest timestamp on screen when the stream opened: both catch-ups search from there. */
    const newestShown = () => {
      const { live: l, base: b } = shown.current;
      let newest = b[0]?.attributes.timestamp ?? "";
      for (const x of l) if (x.attributes.timestamp > newest) newest = x.attributes.timestamp;
      return newest;
    };
    const catchUp = (newest: string) => {
      if (!newest) return;
      apiPost<LogsAnswer>(
        "/api/v2/logs/events/search",
        { filter: { query, from: newest, to: "now+1m" }, page: { limit: MAX_LIMIT }, sort: "-timestamp" },
        ctl.signal,
      ).then(
        (answer) => {
          if (ctl.signal.aborted || answer.data.length === 0) return;
          const ids = new Set<string>();
          for (const x of shown.current.base) ids.add(x.id);
          for (const x of shown.current.more) ids.add(x.id);
          const fresh = answer.data.filter((x) => !ids.has(x.id));
          const waiting = new Set(pending.map(fingerprint));
          // Against the live rows as they are now (the updater sees every arrival already added).
          setLive((prev) => {
            const old = prev?.key === key ? prev.data : NONE;
            const seen = new Set<string>();
            for (const x of old) seen.add(x.id).add(fingerprint(x));
            const missing = fresh.filter((x) => {
              const f = fingerprint(x);
              return !seen.has(x.id) && !seen.has(f) && !waiting.has(f);
            });
            if (missing.length === 0) return prev;
            for (const x of missing) caught.add(fingerprint(x));
            const data = newestFirst(old, missing);
            return { key, data: data.length > LIVE_CAP ? data.slice(0, LIVE_CAP) : data };
          });
        },
        () => {
          // Only a catch-up: the stream goes on without it.
        },
      );
    };
    es.addEventListener("open", () => {
      setLiveError(null);
      const newest = newestShown();
      catchUp(newest);
      window.clearTimeout(again);
      again = window.setTimeout(() => catchUp(newest), CATCH_UP_AGAIN_MS);
    });
    es.addEventListener("error", () =>
      setLiveError(
        es.readyState === STREAM_CLOSED ? "The live tail stopped." : "The live tail is reconnecting…",
      ),
    );
    return () => {
      es.close();
      ctl.abort();
      window.clearTimeout(again);
      if (timer) window.clearTimeout(timer);
    };
  }, [liveOn, listOk, key]);
  const liveRows = live?.key === key ? live.data : NONE;

  // While the next answer loads, the previous one stays on screen.
  const base = res.data?.page.data ?? NONE;
  shown.current = { live: liveRows, base, more: moreRows };
  const logs = useMemo(() => [...liveRows, ...base, ...moreRows], [liveRows, base, moreRows]);
  const loaded = base.length + moreRows.length;
  const chosen = selected === null ? null : logs.find((l) => l.id === selected) ?? null;

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

  const toggle = (id: string) => setSelected(id === selected ? null : id);
  const renderRow = (l: LogEvent) => {
    const a = l.attributes;
    let cls = "line-grid log-grid row";
    if (l.id === selected) cls += " selected";
    if (l.id.startsWith("live-")) cls += " live-new";
    return (
      <div
        data-testid="log-row"
        role="listitem"
        class={cls}
        tabIndex={0}
        onClick={() => toggle(l.id)}
        onKeyDown={(e: KeyboardEvent) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            toggle(l.id);
          }
        }}
      >
        <div class="mono">{formatIso(a.timestamp)}</div>
        <div>
          <span class={logStatusClass(a.status)}>{a.status ?? ""}</span>
        </div>
        <div>{a.service ?? ""}</div>
        <div>{a.host ?? ""}</div>
        <div class="mono">{a.message ?? ""}</div>
      </div>
    );
  };

  const summary = res.loading
    ? "Loading…"
    : res.error
      ? ""
      : logs.length === 0
        ? liveOn
          ? "No logs match this query in this time range yet; new ones appear here as they arrive."
          : "No logs match this query in this time range."
        : `The newest ${formatCount(loaded, "log")}${after ? " (older ones: Load more)" : ""}` +
          `${liveRows.length ? `, and ${formatCount(liveRows.length, "log")} that arrived live` : ""}.`;

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
        error={res.error?.status === 400 ? { query, message: res.error.message } : null}
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
            <div class="logs-actions">
              <p class="muted summary" data-testid="log-summary">
                {summary}
              </p>
              <span class="spacer" />
              <button
                type="button"
                class="live-toggle"
                data-testid="logs-live"
                aria-pressed={liveOn}
                title="Show new logs as they arrive"
                onClick={() => navigate(withParams(loc, { live: liveOn ? undefined : "1" }))}
              >
                {liveOn ? "Live: on" : "Live"}
              </button>
            </div>
            {liveOn && liveError && <p class="muted">{liveError}</p>}
            {logs.length > 0 && (
              <>
                <div class="line-grid line-head log-grid" aria-hidden="true">
                  <div>Time</div>
                  <div>Status</div>
                  <div>Service</div>
                  <div>Host</div>
                  <div>Message</div>
                </div>
                <VirtualList
                  items={logs}
                  rowHeight={ROW_HEIGHT}
                  itemKey={(l) => l.id}
                  renderRow={renderRow}
                  testid="log-list"
                  label="Logs"
                  class="log-list"
                  data={{ "row-count": String(logs.length) }}
                />
              </>
            )}
            <LoadMore more={more} shown={logs.length > 0} count={limit} testid="logs-load-more" />
          </div>
          {chosen && <Detail log={chosen} onClose={() => setSelected(null)} />}
        </div>
      </div>
    </section>
  );
}

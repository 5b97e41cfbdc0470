// APM span search (`/apm/spans`): a query bar (Datadog span search syntax, kept in the URL with the time range)
// over `POST /api/v2/spans/events/search`, the newest spans in a virtualized list (time, service, resource,
// duration, status; "Load more" pages on with the cursor); a row opens its trace's waterfall. Also exports the
// span list and the search call, which the service page reuses for its recent spans.
import { useEffect, useState } from "preact/hooks";
import { apiPost, useApi } from "../api";
import { historySuggestions, pushHistory } from "../components/autocomplete";
import { ErrorText, QueryBar } from "../components/common";
import { LoadMore, usePagedMore, type Page } from "../components/paged";
import { VirtualList } from "../components/virtual-list";
import { formatCount, formatIso, formatNs } from "../format";
import { Link, href, navigate, withParams, type Loc } from "../router";
import { timeRange } from "../time";
import "./apm.css";

/** Spans per page of the search (and per "Load more"). */
const PAGE = 100;
/** Every list row's height (CSS pixels): the virtualized list depends on it. */
const ROW_HEIGHT = 28;
/** localStorage key of the recent span queries. */
const HISTORY_KEY = "sightline.spans.history";

/** One span of the search API's answer (Datadog's `Span`), the fields the app reads. */
export interface SpanHit {
  id: string;
  type: string;
  attributes: {
    service?: string;
    resource_name?: string;
    operation_name?: string;
    trace_id?: string;
    span_id?: string;
    start_timestamp?: string;
    duration?: number;
    status?: string;
    span_kind?: string;
    env?: string;
  };
}

interface SpansAnswer {
  data: SpanHit[];
  meta?: { page?: { after?: string } };
}

export type SpanPage = Page<SpanHit>;

/** One page of spans matching `query` in `[from, to)` (`now-15m`, ISO or unix ms), newest first. */
export async function searchSpans(
  filter: { query: string; from: string; to: string },
  limit: number,
  cursor: string | null,
  signal: AbortSignal,
): Promise<SpanPage> {
  const page: { limit: number; cursor?: string } = { limit };
  if (cursor) page.cursor = cursor;
  const a = await apiPost<SpansAnswer>(
    "/api/v2/spans/events/search",
    {
      data: {
        type: "search_request",
        attributes: { filter: { query: filter.query.trim() || "*", from: filter.from, to: filter.to }, page, sort: "-timestamp" },
      },
    },
    signal,
  );
  return { data: Array.isArray(a.data) ? a.data : [], after: a.meta?.page?.after || null };
}

/** A value for the span search syntax: as it is when it is a plain word, else quoted (`service:"a b"`). */
export function searchValue(v: string): string {
  return /^[A-Za-z0-9_./@][A-Za-z0-9_./@-]*$/.test(v) ? v : `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** The waterfall of a span's trace. */
export function tracePath(s: SpanHit): string | null {
  const t = s.attributes.trace_id;
  return t ? `/apm/traces/${encodeURIComponent(t)}` : null;
}

function statusClass(status: string | undefined): string {
  return status === "error" ? "sev sev-error" : "sev sev-ok";
}

/** Spans in a virtualized list, one line each; a click (or Enter) opens the span's trace. */
export function SpanList({ spans, testid, rowTestid }: { spans: readonly SpanHit[]; testid: string; rowTestid: string }) {
  const open = (s: SpanHit) => {
    const p = tracePath(s);
    if (p) navigate(p);
  };
  const renderRow = (s: SpanHit) => {
    const a = s.attributes;
    const p = tracePath(s);
    return (
      <div
        data-testid={rowTestid}
        role="listitem"
        class={a.status === "error" ? "line-grid span-grid row span-error" : "line-grid span-grid row"}
        tabIndex={0}
        title={p ? "Open the trace" : undefined}
        onClick={() => open(s)}
        onKeyDown={(e: KeyboardEvent) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            open(s);
          }
        }}
      >
        <div class="mono">{a.start_timestamp ? formatIso(a.start_timestamp) : ""}</div>
        <div>{a.service ?? ""}</div>
        <div>
          <span class="mono">{a.resource_name ?? ""}</span>{" "}
          {a.operation_name && a.operation_name !== a.resource_name && (
            <span class="muted">{a.operation_name}</span>
          )}
        </div>
        <div class="num">{formatNs(a.duration)}</div>
        <div>
          <span class={statusClass(a.status)}>{a.status ?? ""}</span>
        </div>
      </div>
    );
  };
  return (
    <>
      <div class="line-grid line-head span-grid" aria-hidden="true">
        <div>Time</div>
        <div>Service</div>
        <div>Resource</div>
        <div class="num">Duration</div>
        <div>Status</div>
      </div>
      <VirtualList
        items={spans}
        rowHeight={ROW_HEIGHT}
        itemKey={(s, i) => `${s.attributes.trace_id ?? ""}:${s.id}:${i}`}
        renderRow={renderRow}
        testid={testid}
        label="Spans"
        class="span-list"
        data={{ "row-count": String(spans.length) }}
      />
    </>
  );
}

export function SpansView({ loc }: { loc: Loc }) {
  const query = loc.query.get("query") ?? "";
  const { from, to } = timeRange(loc);
  const [input, setInput] = useState(query);
  // Back/forward (or a link) changes the query: the input follows.
  useEffect(() => setInput(query), [query]);

  const key = JSON.stringify([query, from, to]);
  const res = useApi<{ key: string; page: SpanPage }>(key, (signal) =>
    searchSpans({ query, from, to }, PAGE, null, signal).then((page) => ({ key, page })),
  );
  const listOk = !res.loading && res.error === null && res.data?.key === key;

  // "Load more": the next pages, for this key only.
  const more = usePagedMore(key, listOk ? res.data?.page.after ?? null : null, (after, signal) =>
    searchSpans({ query, from, to }, PAGE, after, signal),
  );
  const moreRows = more.rows;
  const after = more.after;

  // A query that ran is remembered (newest first) for the empty query bar.
  useEffect(() => {
    if (listOk && query.trim() !== "") pushHistory(HISTORY_KEY, query);
  }, [query, listOk]);

  const base = res.error ? [] : res.data?.page.data ?? [];
  const spans = moreRows.length ? [...base, ...moreRows] : base;

  const onSubmit = (e: Event) => {
    e.preventDefault();
    const q = input.trim();
    if (q === query) return;
    navigate(withParams(loc, { query: q }));
  };
  const suggest = (text: string) => (text.trim() === "" ? historySuggestions(HISTORY_KEY) : []);

  const summary = res.loading
    ? "Loading…"
    : res.error
      ? ""
      : spans.length === 0
        ? "No spans match this query in this time range."
        : `The newest ${formatCount(spans.length, "span")}${after ? " (older ones: Load more)" : ""}. ` +
          "Click a span to open its trace.";

  return (
    <section class="apm-spans">
      <p class="apm-back">
        <Link href={href("/apm", { from: loc.query.get("from") ?? undefined, to: loc.query.get("to") ?? undefined })}>
          ← APM services
        </Link>
      </p>
      <h1>Span search</h1>
      <QueryBar
        search
        value={input}
        onInput={setInput}
        onSubmit={onSubmit}
        testid="span-query-input"
        label="Span search query"
        placeholder="service:checkout @http.status_code:500 status:error @duration:>100ms"
        button="Search"
        suggest={suggest}
      />
      {res.error && <ErrorText error={res.error} testid="query-error" />}
      <p class="muted summary" data-testid="span-summary">
        {summary}
      </p>
      {spans.length > 0 && <SpanList spans={spans} testid="span-list" rowTestid="span-search-row" />}
      <LoadMore more={more} shown={spans.length > 0} count={PAGE} testid="spans-load-more" />
    </section>
  );
}

// The trace waterfall: one row per span, indented by depth, with a timing bar; a detail panel per span.
import { useState } from "preact/hooks";
import { apiGet, useApi } from "../api";
import { AttrTree, ErrorText, Loading } from "../components/common";
import { formatCount, formatDate, formatNs, logStatusClass } from "../format";
import { Link } from "../router";

interface SpanEvent {
  timestamp: number;
  name: string;
  attributes?: Record<string, unknown>;
}

interface SpanNode {
  span_id: string;
  parent_id: string | null;
  service: string;
  name: string;
  resource: string;
  start: number;
  duration: number;
  self_time?: number;
  error: boolean;
  on_critical_path?: boolean;
  kind?: string;
  status_message?: string;
  host?: string;
  env?: string;
  version?: string;
  orphan?: boolean;
  detached?: boolean;
  attributes?: Record<string, unknown>;
  resource_attributes?: Record<string, unknown>;
  events?: SpanEvent[];
  children?: SpanNode[];
}

interface TraceLog {
  id: string;
  timestamp: number;
  message?: string;
  status?: string;
  service?: string | null;
  span_id?: string | null;
}

interface TraceAnswer {
  trace_id: string;
  span_count: number;
  start: number;
  duration: number;
  services: string[];
  roots: SpanNode[];
  truncated?: boolean;
  logs?: TraceLog[];
  logs_error?: string;
}

interface Row {
  span: SpanNode;
  depth: number;
}

/** The spans depth first, children in the order the API gives them (by start). */
function flatten(roots: SpanNode[]): Row[] {
  const out: Row[] = [];
  const stack: Row[] = roots.map((span) => ({ span, depth: 0 })).reverse();
  while (stack.length > 0) {
    const row = stack.pop()!;
    out.push(row);
    const kids = row.span.children ?? [];
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ span: kids[i], depth: row.depth + 1 });
  }
  return out;
}

/** Percent of the trace's duration, clamped to [0, 100]. */
function pct(part: number, whole: number): number {
  if (!(whole > 0)) return 0;
  return Math.min(100, Math.max(0, (part / whole) * 100));
}

function SpanDetail({ span, traceStart }: { span: SpanNode; traceStart: number }) {
  return (
    <aside class="detail" data-testid="span-detail" aria-label="Span detail">
      <h3>
        <span class="mono">{span.name}</span> <span class="muted">{span.service}</span>
      </h3>
      <dl class="facts">
        <dt>resource</dt>
        <dd class="mono">{span.resource}</dd>
        <dt>span id</dt>
        <dd class="mono">{span.span_id}</dd>
        <dt>parent id</dt>
        <dd class="mono">{span.parent_id ?? ""}</dd>
        <dt>kind</dt>
        <dd>{span.kind ?? ""}</dd>
        <dt>start</dt>
        <dd>+{formatNs(span.start - traceStart)}</dd>
        <dt>duration</dt>
        <dd>{formatNs(span.duration)}</dd>
        <dt>self time</dt>
        <dd>{formatNs(span.self_time)}</dd>
        <dt>error</dt>
        <dd>{span.error ? `yes${span.status_message ? `: ${span.status_message}` : ""}` : "no"}</dd>
        {span.host !== undefined && (
          <>
            <dt>host</dt>
            <dd>{span.host}</dd>
          </>
        )}
        {span.env !== undefined && (
          <>
            <dt>env</dt>
            <dd>{span.env}</dd>
          </>
        )}
        {span.version !== undefined && (
          <>
            <dt>version</dt>
            <dd>{span.version}</dd>
          </>
        )}
      </dl>
      <h4>Attributes</h4>
      <AttrTree value={span.attributes ?? {}} testid="span-attributes" />
      <h4>Resource attributes</h4>
      <AttrTree value={span.resource_attributes ?? {}} />
      <h4>Events</h4>
      {(span.events ?? []).length === 0 ? (
        <p class="muted">No events.</p>
      ) : (
        <ul class="events">
          {(span.events ?? []).map((e, i) => (
            <li key={i}>
              <span class="mono">+{formatNs(e.timestamp - traceStart)}</span> <strong>{e.name}</strong>
              <AttrTree value={e.attributes ?? {}} />
            </li>
          ))}
        </ul>
      )}
    </aside>
  );
}

export function TraceView({ id }: { id: string }) {
  const res = useApi<TraceAnswer>(`trace:${id}`, (signal) =>
    apiGet<TraceAnswer>(`/api/ui/traces/${encodeURIComponent(id)}`, signal),
  );
  const [selected, setSelected] = useState<string | null>(null);
  const t = res.data;
  const rows = t ? flatten(t.roots) : [];
  const chosen = selected === null ? null : rows.find((r) => r.span.span_id === selected)?.span ?? null;
  return (
    <section>
      <p>
        <Link href="/apm">← APM</Link>
      </p>
      <h1>
        Trace <span class="mono">{t?.trace_id ?? id}</span>
      </h1>
      {res.error && <ErrorText error={res.error} />}
      <Loading when={res.loading && !t} />
      {t && (
        <>
          <p class="muted" data-testid="trace-summary">
            {`${formatCount(t.span_count, "span")} · ${formatNs(t.duration)} · started ${formatDate(new Date(t.start / 1e6))} · services: ${t.services.join(", ")}`}
          </p>
          {t.truncated && <p class="warning">This trace has more spans than are shown.</p>}
          <div class={chosen ? "split with-detail" : "split"}>
            <div class="list">
              <table class="grid waterfall" data-testid="waterfall">
                <thead>
                  <tr>
                    <th class="col-span">Span</th>
                    <th class="col-service">Service</th>
                    <th class="num col-duration">Duration</th>
                    <th class="col-bar">Timeline</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map(({ span, depth }) => {
                    const cls = ["row", span.error ? "span-error" : "", span.span_id === selected ? "selected" : ""]
                      .filter(Boolean)
                      .join(" ");
                    return (
                      <tr
                        key={span.span_id}
                        class={cls}
                        data-testid="span-row"
                        tabIndex={0}
                        onClick={() => setSelected(span.span_id === selected ? null : span.span_id)}
                        onKeyDown={(e) => {
                          if (e.key === "Enter" || e.key === " ") {
                            e.preventDefault();
                            setSelected(span.span_id === selected ? null : span.span_id);
                          }
                        }}
                      >
                        <td class="span-name">
                          <span class="indent-by" style={{ paddingLeft: `${depth * 14}px` }}>
                            <span class="mono">{span.name}</span>{" "}
                            <span class="muted">{span.resource !== span.name ? span.resource : ""}</span>
                          </span>
                        </td>
                        <td class="nowrap">{span.service}</td>
                        <td class="num nowrap">{formatNs(span.duration)}</td>
                        <td class="bar-cell">
                          <div class="bar-track">
                            <div
                              class={span.error ? "bar bar-error" : span.on_critical_path ? "bar bar-critical" : "bar"}
                              style={{
                                left: `${pct(span.start - t.start, t.duration)}%`,
                                width: `${Math.max(pct(span.duration, t.duration), 0.3)}%`,
                              }}
                            />
                          </div>
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
            {chosen && <SpanDetail span={chosen} traceStart={t.start} />}
          </div>
          <h2>Logs of this trace</h2>
          {t.logs_error && <ErrorText error={t.logs_error} />}
          {(t.logs ?? []).length === 0 ? (
            <p class="muted">No logs carry this trace id.</p>
          ) : (
            <table class="grid" data-testid="trace-logs">
              <tbody>
                {(t.logs ?? []).map((l) => (
                  <tr key={l.id} data-testid="trace-log-row">
                    <td class="mono nowrap">{formatDate(new Date(l.timestamp / 1e6))}</td>
                    <td>
                      <span class={logStatusClass(l.status)}>{l.status ?? ""}</span>
                    </td>
                    <td class="nowrap">{l.service ?? ""}</td>
                    <td class="mono message">{l.message ?? ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}

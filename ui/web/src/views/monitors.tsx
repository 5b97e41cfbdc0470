// Monitors: the list with the state of each monitor and group, and one monitor's definition, groups,
// transition history and webhook delivery attempts.
import { apiGet, useApi } from "../api";
import { AttrTree, ErrorText, Loading } from "../components/common";
import { formatNumber, formatUnixSecs, formatValue, monitorStatusClass } from "../format";
import { Link } from "../router";

interface GroupState {
  name?: string;
  status?: string;
  last_triggered_ts?: number;
  last_resolved_ts?: number;
  last_nodata_ts?: number;
  last_notified_ts?: number;
  last_value?: number;
  last_data_ts?: number;
}

interface Transition {
  group?: string;
  from?: string;
  to?: string;
  value?: number | null;
  ts?: number;
  notify?: boolean;
  renotify?: boolean;
  muted?: boolean;
  downtime_ended?: boolean;
}

interface Attempt {
  ts?: number;
  webhook?: string;
  group?: string;
  transition?: string;
  attempt?: number;
  status?: number | null;
  error?: string | null;
  duration_ms?: number;
  ok?: boolean;
}

export interface Monitor {
  id: number;
  name?: string;
  type?: string;
  query?: string;
  message?: string;
  tags?: string[];
  options?: Record<string, unknown>;
  overall_state?: string;
  created?: string;
  modified?: string;
  state?: { groups?: Record<string, GroupState>; history?: Transition[]; notifications?: Attempt[] };
}

function Status({ status }: { status: string | undefined }) {
  return <span class={monitorStatusClass(status)}>{status ?? ""}</span>;
}

function groupsOf(m: Monitor): [string, GroupState][] {
  return Object.entries(m.state?.groups ?? {});
}

export function MonitorsView() {
  const res = useApi<Monitor[]>("monitors", (signal) =>
    apiGet<Monitor[]>("/api/v1/monitor?group_states=all", signal),
  );
  const monitors = res.data ?? [];
  return (
    <section>
      <h1>Monitors</h1>
      {res.error && <ErrorText error={res.error} />}
      <Loading when={res.loading && !res.data} />
      {res.data && monitors.length === 0 && <p class="muted">No monitors yet.</p>}
      {monitors.length > 0 && (
        <table class="grid" data-testid="monitor-list">
          <thead>
            <tr>
              <th>Name</th>
              <th>Type</th>
              <th>State</th>
              <th>Groups</th>
            </tr>
          </thead>
          <tbody>
            {monitors.map((m) => (
              <tr key={m.id} data-testid="monitor-row">
                <td>
                  <Link href={`/monitors/${m.id}`}>{m.name || `monitor ${m.id}`}</Link>
                </td>
                <td class="nowrap">{m.type ?? ""}</td>
                <td>
                  <Status status={m.overall_state} />
                </td>
                <td>
                  {groupsOf(m).length === 0 ? (
                    <span class="muted">none</span>
                  ) : (
                    groupsOf(m).map(([name, g]) => (
                      <span key={name} class="group-chip" title={name}>
                        <span class="group-name">{name}</span> <Status status={g.status} />
                      </span>
                    ))
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function MonitorView({ id }: { id: string }) {
  const res = useApi<Monitor>(`monitor:${id}`, (signal) =>
    apiGet<Monitor>(`/api/v1/monitor/${encodeURIComponent(id)}?group_states=all`, signal),
  );
  const m = res.data;
  return (
    <section>
      <p>
        <Link href="/monitors">← Monitors</Link>
      </p>
      {res.error && <ErrorText error={res.error} />}
      <Loading when={res.loading && !m} />
      {m && (
        <>
          <h1 data-testid="monitor-name">
            {m.name || `monitor ${m.id}`} <Status status={m.overall_state} />
          </h1>
          <dl class="facts">
            <dt>id</dt>
            <dd class="mono">{String(m.id)}</dd>
            <dt>type</dt>
            <dd>{m.type ?? ""}</dd>
            <dt>query</dt>
            <dd>
              <pre class="code" data-testid="monitor-query">{m.query ?? ""}</pre>
            </dd>
            <dt>message</dt>
            <dd>
              <pre class="code" data-testid="monitor-message">{m.message ?? ""}</pre>
            </dd>
            <dt>tags</dt>
            <dd>
              {(m.tags ?? []).map((t) => (
                <span key={t} class="tag">
                  {t}
                </span>
              ))}
            </dd>
          </dl>
          <details>
            <summary>Options</summary>
            <AttrTree value={m.options ?? {}} />
          </details>

          <h2>Groups</h2>
          {groupsOf(m).length === 0 ? (
            <p class="muted">No group has been evaluated yet.</p>
          ) : (
            <table class="grid" data-testid="monitor-groups">
              <thead>
                <tr>
                  <th>Group</th>
                  <th>Status</th>
                  <th>Last value</th>
                  <th>Last data</th>
                  <th>Last triggered</th>
                  <th>Last resolved</th>
                  <th>Last notified</th>
                </tr>
              </thead>
              <tbody>
                {groupsOf(m).map(([name, g]) => (
                  <tr key={name} data-testid="group-row">
                    <td class="mono">{name}</td>
                    <td>
                      <Status status={g.status} />
                    </td>
                    <td class="num">{formatNumber(g.last_value)}</td>
                    <td class="nowrap">{formatUnixSecs(g.last_data_ts)}</td>
                    <td class="nowrap">{formatUnixSecs(g.last_triggered_ts)}</td>
                    <td class="nowrap">{formatUnixSecs(g.last_resolved_ts)}</td>
                    <td class="nowrap">{formatUnixSecs(g.last_notified_ts)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}

          <h2>Transitions</h2>
          {(m.state?.history ?? []).length === 0 ? (
            <p class="muted">No transitions recorded.</p>
          ) : (
            <table class="grid" data-testid="monitor-history">
              <thead>
                <tr>
                  <th>Time</th>
                  <th>Group</th>
                  <th>Transition</th>
                  <th>Value</th>
                  <th>Notified</th>
                </tr>
              </thead>
              <tbody>
                {[...(m.state?.history ?? [])].reverse().map((t, i) => (
                  <tr key={i} data-testid="transition-row">
                    <td class="nowrap">{formatUnixSecs(t.ts)}</td>
                    <td class="mono">{t.group ?? ""}</td>
                    <td class="nowrap">
                      <Status status={t.from} /> → <Status status={t.to} />
                    </td>
                    <td class="num">{formatNumber(t.value)}</td>
                    <td>
                      {[
                        t.renotify ? "renotify" : t.notify ? "yes" : "no",
                        t.muted ? "muted" : "",
                        t.downtime_ended ? "downtime ended" : "",
                      ]
                        .filter(Boolean)
                        .join(", ")}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}

          <h2>Notification attempts</h2>
          {(m.state?.notifications ?? []).length === 0 ? (
            <p class="muted">No webhook deliveries recorded.</p>
          ) : (
            <table class="grid" data-testid="monitor-notifications">
              <thead>
                <tr>
                  <th>Time</th>
                  <th>Webhook</th>
                  <th>Group</th>
                  <th>Transition</th>
                  <th>Attempt</th>
                  <th>Result</th>
                  <th>Duration</th>
                </tr>
              </thead>
              <tbody>
                {[...(m.state?.notifications ?? [])].reverse().map((a, i) => (
                  <tr key={i} data-testid="attempt-row" class={a.ok ? "row" : "row failed"}>
                    <td class="nowrap">{formatUnixSecs(a.ts)}</td>
                    <td>{a.webhook ?? ""}</td>
                    <td class="mono">{a.group ?? ""}</td>
                    <td>{a.transition ?? ""}</td>
                    <td class="num">{formatValue(a.attempt)}</td>
                    <td>
                      {a.ok ? "ok" : "failed"}
                      {a.status !== null && a.status !== undefined ? ` (HTTP ${a.status})` : ""}
                      {a.error ? `: ${a.error}` : ""}
                    </td>
                    <td class="num">{a.duration_ms !== undefined ? `${a.duration_ms} ms` : ""}</td>
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

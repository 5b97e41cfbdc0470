// Monitors: the list with the state of each monitor and group, and one monitor's definition, groups,
// transition history and webhook delivery attempts, with its actions: edit, mute (a downtime), unmute, delete.
import { useState } from "preact/hooks";
import { apiDelete, apiGet, apiPost, useApi } from "../api";
import { AttrTree, ErrorText, Loading } from "../components/common";
import { formatIso, formatNumber, formatUnixSecs, formatValue, monitorStatusClass } from "../format";
import { Link, navigate } from "../router";
import { errorText } from "./monitor-form";
import "./monitors.css";

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
  /** Resolved by `timeout_h` (no data for that long), not by a value. */
  auto_resolved?: boolean;
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
      <div class="list-head">
        <h1>Monitors</h1>
        <Link href="/monitors/new" class="button-link" data-testid="monitor-new">
          + New monitor
        </Link>
      </div>
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

/** A downtime of the v2 API (the fields the view uses). */
interface Downtime {
  id: string;
  attributes?: {
    scope?: string;
    monitor_identifier?: { monitor_id?: number; monitor_tags?: string[] };
    schedule?: { start?: string; end?: string | null };
    status?: string;
    message?: string;
  };
}

const MUTE_FOR: { value: string; label: string; secs: number | null }[] = [
  { value: "1h", label: "for 1 hour", secs: 3600 },
  { value: "4h", label: "for 4 hours", secs: 4 * 3600 },
  { value: "1d", label: "for 1 day", secs: 86400 },
  { value: "forever", label: "until unmuted", secs: null },
];

/** RFC 3339 in UTC with whole seconds. */
function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Edit, mute (with the active downtimes of this monitor and their unmute) and delete (confirmed in the page). */
function MonitorActions({ m }: { m: Monitor }) {
  const [tick, setTick] = useState(0);
  const [muteFor, setMuteFor] = useState("1h");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const downtimes = useApi<Downtime[]>(`downtimes:${m.id}:${tick}`, async (signal) => {
    const a = await apiGet<{ data?: Downtime[] }>("/api/v2/downtime?current_only=true", signal);
    return (a.data ?? []).filter((d) => d.attributes?.monitor_identifier?.monitor_id === m.id);
  });
  const active = (downtimes.data ?? []).filter((d) => {
    const st = d.attributes?.status;
    return st === "active" || st === "scheduled";
  });

  const run = async (what: () => Promise<unknown>, then?: () => void) => {
    setBusy(true);
    setError(null);
    try {
      await what();
      if (then) then();
      setTick((t) => t + 1);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  const mute = () => {
    const choice = MUTE_FOR.find((c) => c.value === muteFor) ?? MUTE_FOR[0];
    const schedule: Record<string, string> = {};
    if (choice.secs !== null) schedule.end = rfc3339(Date.now() + choice.secs * 1000);
    void run(() =>
      apiPost("/api/v2/downtime", {
        data: {
          type: "downtime",
          attributes: { scope: "*", monitor_identifier: { monitor_id: m.id }, schedule },
        },
      }),
    );
  };
  const unmute = (d: Downtime) => void run(() => apiDelete(`/api/v2/downtime/${encodeURIComponent(d.id)}`));
  const remove = () =>
    void run(
      () => apiDelete(`/api/v1/monitor/${m.id}`),
      () => navigate("/monitors"),
    );

  return (
    <>
      <div class="mon-actions">
        <Link href={`/monitors/${m.id}/edit`} class="button-link" data-testid="monitor-edit">
          Edit
        </Link>
        <span class="mon-mute">
          <select
            data-testid="monitor-mute-duration"
            aria-label="Mute for"
            value={muteFor}
            onChange={(e) => setMuteFor(e.currentTarget.value)}
          >
            {MUTE_FOR.map((c) => (
              <option key={c.value} value={c.value}>
                {c.label}
              </option>
            ))}
          </select>
          <button type="button" data-testid="monitor-mute" disabled={busy} onClick={mute}>
            Mute
          </button>
        </span>
        {confirming ? (
          <span class="mon-confirm" data-testid="monitor-delete-confirmation">
            <span>Delete this monitor and its state?</span>
            <button type="button" class="danger" data-testid="monitor-delete-confirm" disabled={busy} onClick={remove}>
              Delete
            </button>
            <button type="button" class="secondary" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </span>
        ) : (
          <button type="button" class="danger secondary" data-testid="monitor-delete" onClick={() => setConfirming(true)}>
            Delete
          </button>
        )}
      </div>
      {error && <ErrorText error={error} testid="monitor-action-error" />}
      {downtimes.error && <ErrorText error={downtimes.error} />}
      {active.length > 0 && (
        <div class="mon-muted" data-testid="monitor-muted">
          <strong>Muted</strong>
          <table class="grid" data-testid="monitor-downtimes">
            <thead>
              <tr>
                <th>Downtime</th>
                <th>Scope</th>
                <th>Status</th>
                <th>From</th>
                <th>Until</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {active.map((d) => (
                <tr key={d.id} data-testid="downtime-row">
                  <td class="mono">{d.id}</td>
                  <td class="mono">{d.attributes?.scope ?? ""}</td>
                  <td>{d.attributes?.status ?? ""}</td>
                  <td class="nowrap">{d.attributes?.schedule?.start ? formatIso(d.attributes.schedule.start) : ""}</td>
                  <td class="nowrap">
                    {d.attributes?.schedule?.end ? formatIso(d.attributes.schedule.end) : "until unmuted"}
                  </td>
                  <td>
                    <button
                      type="button"
                      class="secondary"
                      data-testid="monitor-unmute"
                      disabled={busy}
                      onClick={() => unmute(d)}
                    >
                      Unmute
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
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
          <MonitorActions m={m} />
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
                        t.auto_resolved ? "auto-resolved (timeout_h)" : "",
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

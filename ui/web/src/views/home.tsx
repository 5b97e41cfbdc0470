// The home page (`/`, SPEC §8b: recent activity): monitors not OK, recent monitor transitions, the newest error
// logs, log volume by status, the APM services with the highest error rate, and the dashboards; each panel
// loads on its own (an empty state when there is nothing, the API's error as text). All telemetry is text.
import type { ComponentChildren } from "preact";
import { apiGet, apiPost, useApi, type Loaded } from "../api";
import { ErrorText } from "../components/common";
import { Histogram, loadHistogram } from "../components/histogram";
import { ErrorRateCell } from "../components/red";
import {
  formatIso,
  formatNs,
  formatNumber,
  formatUnixSecs,
  logStatusClass,
  monitorStatusClass,
} from "../format";
import { Link, href, type Loc } from "../router";
import { timeRange, unixRange, type TimeRange } from "../time";
import type { Monitor } from "./monitors";
import "./home.css";

/** The search of the error-logs panel (and of its link to the log explorer). */
export const ERROR_QUERY = "status:error";
const ERROR_LOGS = 20;
const TRANSITIONS = 15;
const SERVICES = 8;
const DASHBOARDS = 20;

interface HomeLog {
  id: string;
  attributes: { timestamp: string; message?: string; status?: string; service?: string; host?: string };
}

interface HomeService {
  service: string;
  hits: number;
  errors: number;
  error_rate: number;
  requests_per_sec: number;
  p95: number | null;
}

interface HomeDashboard {
  id: string;
  title?: string;
  description?: string | null;
  modified_at?: string;
}

interface HomeTransition {
  monitor: Monitor;
  group?: string;
  from?: string;
  to?: string;
  value?: number | null;
  ts?: number;
}

/** A panel: its title, a link to more, and the children once `res` answered (its error, or "Loading…" before). */
function Panel(props: {
  title: string;
  testid: string;
  more?: { href: string; label: string };
  res: Loaded<unknown>;
  children?: ComponentChildren;
}) {
  const { error, loading, data } = props.res;
  return (
    <section class="home-panel" data-testid={props.testid} aria-label={props.title}>
      <div class="home-panel-head">
        <h2>{props.title}</h2>
        <span class="spacer" />
        {props.more && <Link href={props.more.href}>{props.more.label}</Link>}
      </div>
      {error ? (
        <ErrorText error={error} testid="home-panel-error" />
      ) : loading && !data ? (
        <p class="muted loading">Loading…</p>
      ) : (
        props.children
      )}
    </section>
  );
}

function Empty({ children }: { children: ComponentChildren }) {
  return (
    <p class="muted home-empty" data-testid="home-empty">
      {children}
    </p>
  );
}

function MonitorPanels({ keep }: { keep: Record<string, string | undefined> }) {
  const res = useApi<Monitor[]>("home-monitors", (signal) =>
    // Only the groups not OK (the panel lists those); the transitions come with them.
    apiGet<Monitor[]>(`/api/v1/monitor?group_states=${encodeURIComponent("alert,warn,no data")}`, signal),
  );
  const monitors = Array.isArray(res.data) ? res.data : [];
  const bad = monitors.filter((m) => (m.overall_state ?? "OK") !== "OK");
  const rank = (s: string | undefined) => ["Alert", "Warn", "No Data"].indexOf(s ?? "") >>> 0;
  bad.sort((a, b) => rank(a.overall_state) - rank(b.overall_state) || a.id - b.id);
  const transitions: HomeTransition[] = monitors
    .flatMap((m) => (m.state?.history ?? []).map((t) => ({ ...t, monitor: m })))
    .sort((a, b) => (b.ts ?? 0) - (a.ts ?? 0))
    .slice(0, TRANSITIONS);
  return (
    <>
      <Panel
        title="Monitors not OK"
        testid="home-monitors"
        more={{ href: href("/monitors", {}), label: "All monitors" }}
        res={res}
      >
        {bad.length === 0 ? (
          <Empty>
            {monitors.length === 0 ? "No monitors yet." : `All ${monitors.length} monitors are OK.`}
          </Empty>
        ) : (
          <ul class="home-list">
            {bad.map((m) => {
              const groups = Object.entries(m.state?.groups ?? {}).filter(([, g]) => g.status && g.status !== "OK");
              return (
                <li key={m.id} class="home-row" data-testid="home-monitor-row">
                  <span class={monitorStatusClass(m.overall_state)}>{m.overall_state ?? ""}</span>
                  <Link href={`/monitors/${m.id}`} class="home-main">
                    {m.name || `monitor ${m.id}`}
                  </Link>
                  <span class="home-groups">
                    {groups.slice(0, 4).map(([name, g]) => (
                      <span key={name} class="group-chip" title={name}>
                        <span class="group-name">{name}</span> <span class={monitorStatusClass(g.status)}>{g.status}</span>
                      </span>
                    ))}
                    {groups.length > 4 && <span class="muted">{` +${groups.length - 4} groups`}</span>}
                  </span>
                </li>
              );
            })}
          </ul>
        )}
      </Panel>
      <Panel title="Recent monitor transitions" testid="home-transitions" res={res}>
        {transitions.length === 0 ? (
          <Empty>No monitor has changed state yet.</Empty>
        ) : (
          <ul class="home-list">
            {transitions.map((t, i) => (
              <li key={`${t.monitor.id}-${t.ts ?? 0}-${i}`} class="home-row" data-testid="home-transition-row">
                <span class="mono muted nowrap">{formatUnixSecs(t.ts)}</span>
                <Link href={href(`/monitors/${t.monitor.id}`, keep)} class="home-main">
                  {t.monitor.name || `monitor ${t.monitor.id}`}
                </Link>
                {t.group && t.group !== "*" && <span class="group-name muted">{t.group}</span>}
                <span class="nowrap">
                  <span class={monitorStatusClass(t.from)}>{t.from ?? ""}</span>
                  {" → "}
                  <span class={monitorStatusClass(t.to)}>{t.to ?? ""}</span>
                </span>
              </li>
            ))}
          </ul>
        )}
      </Panel>
    </>
  );
}

function ErrorLogsPanel({ range, keep }: { range: TimeRange; keep: Record<string, string | undefined> }) {
  const res = useApi<HomeLog[]>(JSON.stringify(["home-logs", range]), async (signal) => {
    const a = await apiPost<{ data?: HomeLog[] }>(
      "/api/v2/logs/events/search",
      { filter: { query: ERROR_QUERY, from: range.from, to: range.to }, page: { limit: ERROR_LOGS }, sort: "-timestamp" },
      signal,
    );
    return Array.isArray(a.data) ? a.data : [];
  });
  const logs = res.data ?? [];
  const to = href("/logs", { ...keep, query: ERROR_QUERY });
  return (
    <Panel
      title="Recent error logs"
      testid="home-error-logs"
      more={{ href: to, label: "Open in Logs" }}
      res={res}
    >
      {logs.length === 0 ? (
        <Empty>No error logs in this time range.</Empty>
      ) : (
        <ul class="home-list">
          {logs.map((l) => (
            <li key={l.id} class="home-row home-log" data-testid="home-log-row">
              <Link href={to} class="home-log-link">
                <span class="mono muted nowrap">{formatIso(l.attributes.timestamp)}</span>
                <span class={logStatusClass(l.attributes.status)}>{l.attributes.status ?? ""}</span>
                <span class="home-svc">{l.attributes.service ?? ""}</span>
                <span class="home-msg mono">{l.attributes.message ?? ""}</span>
              </Link>
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
}

function VolumePanel({ range, keep }: { range: TimeRange; keep: Record<string, string | undefined> }) {
  const res = useApi(JSON.stringify(["home-volume", range]), (signal) => loadHistogram("", range, signal));
  const total = (res.data?.series ?? []).reduce((s, x) => s + x.counts.reduce((a, b) => a + b, 0), 0);
  return (
    <Panel
      title="Log volume by status"
      testid="home-volume"
      more={{ href: href("/logs", keep), label: "Logs" }}
      // The histogram shows its own loading.
      res={{ ...res, loading: false }}
    >
      {res.data && total === 0 ? (
        <Empty>No logs in this time range.</Empty>
      ) : (
        <Histogram data={res.data} loading={res.loading} />
      )}
    </Panel>
  );
}

function ServicesPanel({ range, keep }: { range: TimeRange; keep: Record<string, string | undefined> }) {
  const res = useApi<HomeService[]>(JSON.stringify(["home-services", range]), async (signal) => {
    const r = unixRange(range);
    const qs = r ? `?from=${r.from}&to=${r.to}` : "";
    const a = await apiGet<{ services?: HomeService[] }>(`/api/ui/services${qs}`, signal);
    return Array.isArray(a.services) ? a.services : [];
  });
  const all = res.data ?? [];
  const top = [...all]
    .sort((a, b) => b.error_rate - a.error_rate || b.errors - a.errors || b.hits - a.hits)
    .slice(0, SERVICES);
  return (
    <Panel
      title="Services by error rate"
      testid="home-services"
      more={{ href: href("/apm", keep), label: "APM" }}
      res={res}
    >
      {top.length === 0 ? (
        <Empty>No traced services in this time range.</Empty>
      ) : (
        <table class="grid home-table">
          <thead>
            <tr>
              <th>Service</th>
              <th class="num">Error rate</th>
              <th class="num">Errors</th>
              <th class="num">Requests</th>
              <th class="num">p95</th>
            </tr>
          </thead>
          <tbody>
            {top.map((s) => (
              <tr key={s.service} data-testid="home-service-row">
                <td>
                  <Link href={href(`/apm/services/${encodeURIComponent(s.service)}`, keep)}>{s.service}</Link>
                </td>
                <ErrorRateCell rate={s.error_rate} />
                <td class="num">{formatNumber(s.errors)}</td>
                <td class="num">{formatNumber(s.hits)}</td>
                <td class="num">{formatNs(s.p95)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

function DashboardsPanel({ keep }: { keep: Record<string, string | undefined> }) {
  const res = useApi<HomeDashboard[]>("home-dashboards", async (signal) => {
    const a = await apiGet<{ dashboards?: HomeDashboard[] }>("/api/v1/dashboard", signal);
    return Array.isArray(a.dashboards) ? a.dashboards : [];
  });
  const all = res.data ?? [];
  const shown = [...all]
    .sort((a, b) => (b.modified_at ?? "").localeCompare(a.modified_at ?? ""))
    .slice(0, DASHBOARDS);
  return (
    <Panel
      title="Dashboards"
      testid="home-dashboards"
      more={{ href: href("/dashboards", keep), label: "All dashboards" }}
      res={res}
    >
      {shown.length === 0 ? (
        <Empty>No dashboards yet.</Empty>
      ) : (
        <ul class="home-list">
          {shown.map((d) => (
            <li key={d.id} class="home-row" data-testid="home-dashboard-row">
              <Link href={href(`/dashboards/${encodeURIComponent(d.id)}`, keep)} class="home-main">
                {d.title || d.id}
              </Link>
              {d.description && <span class="muted home-desc">{d.description}</span>}
            </li>
          ))}
          {all.length > shown.length && <li class="muted">{`and ${all.length - shown.length} more`}</li>}
        </ul>
      )}
    </Panel>
  );
}

export function HomeView({ loc }: { loc: Loc }) {
  const range = timeRange(loc);
  // Links keep the range the URL names (not the default).
  const keep = { from: loc.query.get("from") || undefined, to: loc.query.get("to") || undefined };
  return (
    <section class="home" data-testid="home">
      <h1>Recent activity</h1>
      <div class="home-grid">
        <MonitorPanels keep={keep} />
        <ErrorLogsPanel range={range} keep={keep} />
        <VolumePanel range={range} keep={keep} />
        <ServicesPanel range={range} keep={keep} />
        <DashboardsPanel keep={keep} />
      </div>
    </section>
  );
}

// The shell: top navigation, the time picker, and the routes of SPEC §8b.
import { useEffect } from "preact/hooks";
import { Link, href, match, useLocation, type Loc } from "./router";
import { timeRange } from "./time";
import { TimePicker } from "./components/time-picker";
import { ForgetKeys, KeyPrompt } from "./components/keys";
import { LogsView } from "./views/logs";
import { MetricsView } from "./views/metrics";
import { MonitorsView, MonitorView } from "./views/monitors";
import { MonitorFormView } from "./views/monitor-form";
import { ServicesView } from "./views/apm";
import { ServiceView } from "./views/apm-service";
import { SpansView } from "./views/apm-spans";
import { TraceView } from "./views/trace";
import { DashboardView, DashboardsView } from "./views/dashboards";
import { HomeView } from "./views/home";

const SECTIONS: { path: string; label: string }[] = [
  { path: "/", label: "Home" },
  { path: "/logs", label: "Logs" },
  { path: "/metrics", label: "Metrics" },
  { path: "/apm", label: "APM" },
  { path: "/monitors", label: "Monitors" },
  { path: "/dashboards", label: "Dashboards" },
];

function active(section: string, path: string): boolean {
  return section === "/" ? path === "/" : path === section || path.startsWith(section + "/");
}

function Nav({ loc }: { loc: Loc }) {
  const { from, to } = timeRange(loc);
  // The time range follows across sections; the query does not (each view has its own syntax).
  const keep = { from: loc.query.get("from") ? from : undefined, to: loc.query.get("to") ? to : undefined };
  return (
    <nav class="nav">
      <Link class="brand" href={href("/", keep)}>
        Sightline
      </Link>
      {SECTIONS.map((s) => (
        <Link
          key={s.path}
          href={href(s.path, keep)}
          class={active(s.path, loc.path) ? "nav-link active" : "nav-link"}
          data-testid={`nav-${s.label.toLowerCase()}`}
        >
          {s.label}
        </Link>
      ))}
      <span class="spacer" />
      <ForgetKeys />
      <TimePicker loc={loc} />
    </nav>
  );
}

function Route({ loc }: { loc: Loc }) {
  const p = loc.path.length > 1 ? loc.path.replace(/\/+$/, "") : loc.path;
  let m: Record<string, string> | null;
  if (p === "/") return <HomeView loc={loc} />;
  if (p === "/logs") return <LogsView loc={loc} />;
  if (p === "/metrics") return <MetricsView loc={loc} />;
  if (p === "/apm") return <ServicesView loc={loc} />;
  if ((m = match("/apm/traces/:id", p))) return <TraceView id={m.id} />;
  if ((m = match("/apm/services/:service", p))) return <ServiceView key={m.service} service={m.service} loc={loc} />;
  if (p === "/apm/spans") return <SpansView loc={loc} />;
  if (p === "/monitors") return <MonitorsView />;
  if (p === "/monitors/new") return <MonitorFormView />;
  if ((m = match("/monitors/:id/edit", p))) return <MonitorFormView id={m.id} />;
  if ((m = match("/monitors/:id", p))) return <MonitorView id={m.id} />;
  if (p === "/dashboards") return <DashboardsView loc={loc} />;
  if ((m = match("/dashboards/:id", p))) return <DashboardView key={m.id} id={m.id} loc={loc} />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        There is no page at <code>{loc.path}</code>. <Link href="/">Go home</Link>.
      </p>
    </section>
  );
}

export function App() {
  const loc = useLocation();
  useEffect(() => {
    const section = SECTIONS.find((s) => active(s.path, loc.path));
    document.title = section ? `${section.label} · Sightline` : "Sightline";
  }, [loc.path]);
  return (
    <div class="shell">
      <Nav loc={loc} />
      <main class="main">
        <Route loc={loc} />
      </main>
      <KeyPrompt />
    </div>
  );
}

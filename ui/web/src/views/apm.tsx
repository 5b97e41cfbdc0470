// APM: the services table (RED from spans: hits, errors, error rate, latency percentiles; a service's name opens
// its page), a trace-id box and a link to the span search.
import { useState } from "preact/hooks";
import { apiGet, useApi } from "../api";
import { ErrorText, Loading, QueryBar } from "../components/common";
import { RedCells } from "../components/red";
import { Link, href, navigate, type Loc } from "../router";
import { timeRange, unixRange } from "../time";
import "./apm.css";

export interface Red {
  hits: number;
  errors: number;
  requests_per_sec: number;
  errors_per_sec: number;
  error_rate: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface ResourceRed extends Red {
  resource: string;
  operation: string;
  span_kind: string;
}

export interface ServiceRed extends Red {
  service: string;
  resources: ResourceRed[];
}

export interface ServicesAnswer {
  from: number;
  to: number;
  services: ServiceRed[];
}

function TraceBox() {
  const [id, setId] = useState("");
  const onSubmit = (e: Event) => {
    e.preventDefault();
    const t = id.trim();
    if (t) navigate(`/apm/traces/${encodeURIComponent(t)}`);
  };
  return (
    <QueryBar
      value={id}
      onInput={setId}
      onSubmit={onSubmit}
      testid="trace-id-input"
      label="Trace id"
      placeholder="Open a trace by id (32 hexadecimal digits)"
      button="Open trace"
    />
  );
}

export function ServicesView({ loc }: { loc: Loc }) {
  const range = timeRange(loc);
  const [open, setOpen] = useState<Set<string>>(new Set());
  const res = useApi<ServicesAnswer>(JSON.stringify(range), (signal) => {
    const r = unixRange(range);
    if (!r) return Promise.reject(new Error(`invalid time range ${range.from} → ${range.to}`));
    return apiGet<ServicesAnswer>(`/api/ui/services?from=${r.from}&to=${r.to}`, signal);
  });
  const services = res.data?.services ?? [];
  const toggle = (s: string) => {
    const next = new Set(open);
    if (next.has(s)) next.delete(s);
    else next.add(s);
    setOpen(next);
  };
  const keep = { from: loc.query.get("from") ?? undefined, to: loc.query.get("to") ?? undefined };
  return (
    <section>
      <div class="apm-head">
        <h1>APM services</h1>
        <span class="spacer" />
        <Link href={href("/apm/spans", keep)} data-testid="apm-span-search">
          Search spans →
        </Link>
      </div>
      <TraceBox />
      {res.error && <ErrorText error={res.error} />}
      <Loading when={res.loading && !res.data} />
      {res.data && services.length === 0 && <p class="muted">No spans in this time range.</p>}
      {services.length > 0 && (
        <table class="grid" data-testid="service-list">
          <thead>
            <tr>
              <th>Service</th>
              <th class="num">Hits</th>
              <th class="num">Req/s</th>
              <th class="num">Errors</th>
              <th class="num">Error rate</th>
              <th class="num">p50</th>
              <th class="num">p95</th>
              <th class="num">p99</th>
            </tr>
          </thead>
          <tbody>
            {services.map((s) => [
              <tr key={s.service} data-testid="service-row">
                <td>
                  <button
                    type="button"
                    class="link-button apm-toggle"
                    aria-expanded={open.has(s.service)}
                    aria-label={`${open.has(s.service) ? "Hide" : "Show"} the resources of ${s.service}`}
                    title="Resources"
                    onClick={() => toggle(s.service)}
                  >
                    {open.has(s.service) ? "▾" : "▸"}
                  </button>{" "}
                  <Link
                    href={href(`/apm/services/${encodeURIComponent(s.service)}`, keep)}
                    data-testid="service-link"
                  >
                    {s.service}
                  </Link>
                </td>
                <RedCells r={s} />
              </tr>,
              ...(open.has(s.service)
                ? s.resources.map((r) => (
                    <tr key={`${s.service}\u0000${r.operation}\u0000${r.resource}\u0000${r.span_kind}`} class="sub-row" data-testid="resource-row">
                      <td class="indent">
                        <span class="mono">{r.resource}</span>{" "}
                        <span class="muted">
                          {r.operation} · {r.span_kind}
                        </span>
                      </td>
                      <RedCells r={r} />
                    </tr>
                  ))
                : []),
            ])}
          </tbody>
        </table>
      )}
    </section>
  );
}

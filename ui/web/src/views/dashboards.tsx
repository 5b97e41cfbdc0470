// Dashboards: the list (`/dashboards`, with "New dashboard") and one dashboard (`/dashboards/:id`): Datadog
// dashboard JSON drawn as a widget grid, template variables and time range in the URL, JSON editing and saving.
import { useEffect, useMemo, useState } from "preact/hooks";
import { apiGet, apiPost, apiPut, useApi } from "../api";
import { ErrorText, Loading } from "../components/common";
import { asWidgets, WidgetGrid, type TemplateValue, type WidgetContext } from "../components/widgets";
import { formatIso } from "../format";
import { href, Link, navigate, withParams, type Loc } from "../router";
import { timeRange, unixRange } from "../time";
import "./dashboards.css";

interface DashboardSummary {
  id: string;
  title: string;
  description?: string | null;
  layout_type?: string;
  url?: string;
  created_at?: string;
  modified_at?: string;
  author_handle?: string;
}

interface TemplateVariable {
  name: string;
  prefix?: string | null;
  default?: string | null;
  defaults?: string[] | null;
  available_values?: string[] | null;
}

interface Dashboard extends DashboardSummary {
  widgets?: unknown;
  template_variables?: TemplateVariable[] | null;
  [key: string]: unknown;
}

/** The time range parameters to keep on links between dashboard pages. */
function keepRange(loc: Loc): Record<string, string | undefined> {
  return { from: loc.query.get("from") ?? undefined, to: loc.query.get("to") ?? undefined };
}

function dashPath(id: string): string {
  return `/api/v1/dashboard/${encodeURIComponent(id)}`;
}


export function DashboardsView({ loc }: { loc: Loc }) {
  const res = useApi<{ dashboards: DashboardSummary[] }>("list", (signal) =>
    apiGet<{ dashboards: DashboardSummary[] }>("/api/v1/dashboard", signal),
  );
  const [creating, setCreating] = useState(false);
  const [createError, setCreateError] = useState<string | null>(null);
  const list = [...(res.data?.dashboards ?? [])].sort((a, b) => a.title.localeCompare(b.title));

  const create = async () => {
    setCreating(true);
    setCreateError(null);
    try {
      const d = await apiPost<Dashboard>("/api/v1/dashboard", {
        title: "New dashboard",
        layout_type: "ordered",
        widgets: [],
      });
      navigate(href(`/dashboards/${encodeURIComponent(d.id)}`, keepRange(loc)));
    } catch (e) {
      setCreateError(e instanceof Error ? e.message : String(e));
    } finally {
      setCreating(false);
    }
  };

  return (
    <section class="dashboards">
      <div class="db-head">
        <h1>Dashboards</h1>
        <span class="spacer" />
        <button type="button" data-testid="dashboard-new" onClick={create} disabled={creating}>
          New dashboard
        </button>
      </div>
      {createError && <ErrorText error={createError} testid="dashboard-error" />}
      {res.error && <ErrorText error={res.error} />}
      <Loading when={res.loading && !res.data} />
      {res.data && list.length === 0 && <p class="muted">No dashboards yet.</p>}
      {list.length > 0 && (
        <table class="grid db-list" data-testid="dashboard-list">
          <thead>
            <tr>
              <th>Title</th>
              <th>Description</th>
              <th>Modified</th>
            </tr>
          </thead>
          <tbody>
            {list.map((d) => (
              <tr key={d.id} data-testid="dashboard-row" data-id={d.id}>
                <td>
                  <Link href={href(`/dashboards/${encodeURIComponent(d.id)}`, keepRange(loc))}>{d.title}</Link>
                </td>
                <td class="db-desc">{d.description ?? ""}</td>
                <td class="nowrap mono">{d.modified_at ? formatIso(d.modified_at) : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** The variable's value: the URL's `tpl_<name>`, else its default, else `*`. */
function varValue(loc: Loc, v: TemplateVariable): string {
  const fromUrl = loc.query.get(`tpl_${v.name}`);
  if (fromUrl !== null && fromUrl !== "") return fromUrl;
  if (typeof v.default === "string" && v.default !== "") return v.default;
  if (Array.isArray(v.defaults) && typeof v.defaults[0] === "string") return v.defaults[0];
  return "*";
}

function templateVars(d: Dashboard | null): TemplateVariable[] {
  const vs = d?.template_variables;
  return Array.isArray(vs) ? vs.filter((v) => v && typeof v.name === "string") : [];
}

function VarInput({ v, value, onSet }: { v: TemplateVariable; value: string; onSet: (value: string) => void }) {
  const options = Array.isArray(v.available_values) ? v.available_values.filter((x) => typeof x === "string") : [];
  const [text, setText] = useState(value);
  useEffect(() => setText(value), [value]);
  const label = v.prefix && v.prefix !== v.name ? `${v.name} (${v.prefix})` : v.name;
  if (options.length > 0) {
    const all = options.includes(value) || value === "*" ? options : [...options, value];
    return (
      <label class="db-var">
        <span class="mono">{`$${label}`}</span>
        <select
          data-testid={`tpl-${v.name}`}
          value={value}
          onChange={(e) => onSet((e.currentTarget as HTMLSelectElement).value)}
        >
          <option value="*">*</option>
          {all.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      </label>
    );
  }
  return (
    <form
      class="db-var"
      onSubmit={(e) => {
        e.preventDefault();
        onSet(text.trim() || "*");
      }}
    >
      <label>
        <span class="mono">{`$${label}`}</span>
        <input
          type="text"
          class="mono"
          data-testid={`tpl-${v.name}`}
          value={text}
          spellcheck={false}
          autocomplete="off"
          onInput={(e) => setText((e.currentTarget as HTMLInputElement).value)}
          onBlur={() => onSet(text.trim() || "*")}
        />
      </label>
    </form>
  );
}

function Editor({ dash, onSaved, onCancel }: { dash: Dashboard; onSaved: (d: Dashboard) => void; onCancel: () => void }) {
  const [text, setText] = useState(() => JSON.stringify(dash, null, 2));
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const save = async () => {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      setError(`not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    setSaving(true);
    setError(null);
    try {
      const d = await apiPut<Dashboard>(dashPath(dash.id), body);
      onSaved(d);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setSaving(false);
    }
  };
  return (
    <div class="db-editor">
      <textarea
        class="mono db-json"
        data-testid="dashboard-json"
        aria-label="Dashboard JSON"
        spellcheck={false}
        value={text}
        onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)}
      />
      {error && <ErrorText error={error} testid="dashboard-error" />}
      <div class="db-actions">
        <button type="button" data-testid="dashboard-save" onClick={save} disabled={saving}>
          {saving ? "Saving…" : "Save"}
        </button>
        <button type="button" class="link-button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}

export function DashboardView({ id, loc }: { id: string; loc: Loc }) {
  const [version, setVersion] = useState(0);
  const [editing, setEditing] = useState(false);
  const res = useApi<Dashboard>(`${id}#${version}`, (signal) => apiGet<Dashboard>(dashPath(id), signal));
  const dash = res.data;
  const { from, to } = timeRange(loc);
  // Resolved once per range (and reload), so every widget asks for the same window.
  const range = useMemo(() => unixRange({ from, to }), [from, to, version]);
  const vars = templateVars(dash);
  const values: TemplateValue[] = vars.map((v) => ({
    name: v.name,
    prefix: typeof v.prefix === "string" && v.prefix !== "" ? v.prefix : null,
    value: varValue(loc, v),
  }));
  const valuesKey = JSON.stringify(values);
  const ctx = useMemo<WidgetContext | null>(
    () => (range ? { from: range.from, to: range.to, relFrom: from, relTo: to, vars: values } : null),
    [range, valuesKey],
  );
  const widgets = useMemo(() => asWidgets(dash?.widgets), [dash]);

  useEffect(() => {
    if (dash?.title) document.title = `${dash.title} · Sightline`;
  }, [dash?.title]);

  if (res.error && !dash) {
    return (
      <section class="dashboard">
        <p>
          <Link href={href("/dashboards", keepRange(loc))}>← Dashboards</Link>
        </p>
        <ErrorText error={res.error} />
      </section>
    );
  }
  if (!dash) return <Loading when />;

  return (
    <section class="dashboard">
      <p class="db-back">
        <Link href={href("/dashboards", keepRange(loc))}>← Dashboards</Link>
      </p>
      <div class="db-head">
        <h1 data-testid="dashboard-title">{dash.title}</h1>
        <span class="spacer" />
        <button type="button" data-testid="dashboard-edit" onClick={() => setEditing((e) => !e)}>
          {editing ? "Close editor" : "Edit JSON"}
        </button>
      </div>
      {dash.description && <p class="muted db-description">{dash.description}</p>}
      {editing && (
        <Editor
          dash={dash}
          onCancel={() => setEditing(false)}
          onSaved={() => {
            setEditing(false);
            setVersion((v) => v + 1);
          }}
        />
      )}
      {vars.length > 0 && (
        <div class="db-vars" aria-label="Template variables">
          {vars.map((v, i) => (
            <VarInput
              key={v.name}
              v={v}
              value={values[i].value}
              onSet={(value) => navigate(withParams(loc, { [`tpl_${v.name}`]: value }))}
            />
          ))}
        </div>
      )}
      {!ctx ? (
        <ErrorText error={`invalid time range ${from} → ${to}`} />
      ) : (
        <WidgetGrid widgets={widgets} layout={dash.layout_type === "free" ? "free" : "ordered"} ctx={ctx} />
      )}
    </section>
  );
}

// The log explorer's facet sidebar: top values with counts of service, host, status, source, env and the top
// @attributes (from GET /api/ui/logs/facets), click to include a value in the query, "−" to exclude it.
import "./facets.css";
import { apiGet } from "../api";
import { formatNumber } from "../format";
import { facetTerm, type FacetSource } from "./autocomplete";
import type { TimeRange } from "../time";

/** The reserved facets, in the order shown. */
export const RESERVED_FACETS = ["service", "host", "status", "source", "env"];
/** How many `@attribute` facets are shown (those present on the most matching logs). */
const ATTRIBUTE_FACETS = 5;
/** Values per facet. */
const VALUES = 10;

export interface FacetValue {
  value: string;
  count: number;
}

export interface FacetGroup {
  facet: string;
  values: FacetValue[];
}

export interface FacetsData {
  facets: FacetGroup[];
  /** Every `@attribute` path present in the range (without `@`). */
  attributes: string[];
}

interface FacetsAnswer {
  facets?: { facet?: unknown; values?: { value?: unknown; count?: unknown }[] }[];
  attributes?: unknown[];
}

function text(v: unknown): string {
  return typeof v === "string" ? v : v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
}

/** The top values of each facet among the logs `query` matches in `range`. */
export async function loadFacets(query: string, range: TimeRange, signal: AbortSignal): Promise<FacetsData> {
  const p = new URLSearchParams({ from: range.from, to: range.to, limit: String(VALUES) });
  if (query.trim() !== "") p.set("query", query);
  const a = await apiGet<FacetsAnswer>(`/api/ui/logs/facets?${p.toString()}`, signal);
  const all: FacetGroup[] = (a.facets ?? []).map((f) => ({
    facet: text(f.facet),
    values: (f.values ?? []).map((v) => ({ value: text(v.value), count: typeof v.count === "number" ? v.count : 0 })),
  }));
  const reserved = RESERVED_FACETS.map((name) => all.find((f) => f.facet === name) ?? { facet: name, values: [] });
  const total = (f: FacetGroup) => f.values.reduce((s, v) => s + v.count, 0);
  const attrs = all
    .filter((f) => f.facet.startsWith("@") && f.values.length > 0)
    .map((f, i) => ({ f, i, n: total(f) }))
    .sort((x, y) => y.n - x.n || x.i - y.i)
    .slice(0, ATTRIBUTE_FACETS)
    .map((e) => e.f);
  return { facets: [...reserved, ...attrs], attributes: (a.attributes ?? []).map(text) };
}

/** Facet keys and values for the query bar's completions. */
export function facetSource(data: FacetsData | null): FacetSource {
  const keys = [...RESERVED_FACETS];
  const values: FacetSource["values"] = {};
  for (const f of data?.facets ?? []) {
    if (!keys.includes(f.facet)) keys.push(f.facet);
    values[f.facet] = f.values;
  }
  for (const a of data?.attributes ?? []) {
    if (!keys.includes(`@${a}`)) keys.push(`@${a}`);
  }
  return { keys, values };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function tokenRe(term: string): RegExp {
  return new RegExp(`(^|\\s)(-?)${escapeRegExp(term)}(?=\\s|$)`, "g");
}

/** How `term` appears in `query` as a whole token: included, excluded (`-term`), or not at all. */
export function termState(query: string, term: string): "include" | "exclude" | null {
  let state: "include" | "exclude" | null = null;
  for (const m of query.matchAll(tokenRe(term))) state = m[2] === "-" ? "exclude" : "include";
  return state;
}

/**
 * `query` with `term` included (or, with `exclude`, `-term`): the other polarity is replaced; asking for what
 * is already there removes it (a toggle).
 */
export function toggleTerm(query: string, term: string, exclude: boolean): string {
  const before = termState(query, term);
  const base = query.trim() === "*" ? "" : query;
  const cleaned = base.replace(tokenRe(term), "$1").replace(/\s+/g, " ").trim();
  if (before === (exclude ? "exclude" : "include")) return cleaned;
  const added = (exclude ? "-" : "") + term;
  if (!cleaned) return added;
  // AND binds tighter than OR (SPEC §6): a query with OR is parenthesized so the term applies to all of it.
  const hasOr = /(^|[\s)])OR(?=[\s(]|$)/.test(cleaned);
  return hasOr ? `(${cleaned}) ${added}` : `${cleaned} ${added}`;
}

export function FacetSidebar(props: {
  data: FacetsData | null;
  loading: boolean;
  query: string;
  onQuery: (query: string) => void;
}) {
  const groups = props.data?.facets ?? RESERVED_FACETS.map((facet) => ({ facet, values: [] }));
  return (
    <nav class={props.loading ? "facets loading" : "facets"} aria-label="Facets" data-testid="facets">
      {groups.map((g) => (
        <details key={g.facet} class="facet-section" data-testid="facet-section" data-facet={g.facet} open>
          <summary class="facet-name">{g.facet}</summary>
          {g.values.length === 0 ? (
            <p class="muted facet-empty">{props.data ? "No values" : props.loading ? "…" : ""}</p>
          ) : (
            <ul class="facet-values">
              {g.values.map((v) => {
                const term = facetTerm(g.facet, v.value);
                const state = termState(props.query, term);
                return (
                  <li key={v.value} class={state ? `facet-row ${state}` : "facet-row"}>
                    <button
                      type="button"
                      class="facet-value"
                      data-testid="facet-value"
                      data-value={v.value}
                      aria-pressed={state === "include"}
                      title={state === "include" ? `Remove ${term}` : `Only ${term}`}
                      onClick={() => props.onQuery(toggleTerm(props.query, term, false))}
                    >
                      <span class="facet-label">{v.value === "" ? "(empty)" : v.value}</span>
                      <span class="facet-count" data-testid="facet-count">
                        {formatNumber(v.count)}
                      </span>
                    </button>
                    <button
                      type="button"
                      class="facet-exclude"
                      data-testid="facet-exclude"
                      data-value={v.value}
                      aria-pressed={state === "exclude"}
                      aria-label={`Exclude ${term}`}
                      title={state === "exclude" ? `Remove -${term}` : `Exclude ${term}`}
                      onClick={() => props.onQuery(toggleTerm(props.query, term, true))}
                    >
                      −
                    </button>
                  </li>
                );
              })}
            </ul>
          )}
        </details>
      ))}
    </nav>
  );
}

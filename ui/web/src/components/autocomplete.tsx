// Query-bar autocompletion: the dropdown list, search-syntax suggestions (facet keys and values at the caret),
// and the recent-query history kept in localStorage. Everything is rendered as text.
import "./autocomplete.css";

/** One completion: what the list shows, and the input's whole new text (and caret) once accepted. */
export interface Suggestion {
  label: string;
  /** A muted hint after the label ("service", "recent", a count). */
  detail?: string;
  value: string;
  caret: number;
}

/** Gives the suggestions for the input's text and caret position (synchronously, from data at hand). */
export type Suggest = (text: string, caret: number) => Suggestion[];

const MAX_ITEMS = 10;

/** The dropdown under the input (`role=listbox`); items are accepted on mouse-down so the input keeps focus. */
export function AutocompleteList(props: {
  id: string;
  items: Suggestion[];
  active: number;
  onPick: (s: Suggestion) => void;
  onHover: (i: number) => void;
}) {
  return (
    <ul class="ac-list" id={props.id} role="listbox" data-testid="autocomplete">
      {props.items.map((s, i) => (
        <li
          key={`${s.value}\u0000${i}`}
          id={`${props.id}-${i}`}
          role="option"
          aria-selected={i === props.active}
          class={i === props.active ? "ac-item active" : "ac-item"}
          data-testid="autocomplete-item"
          onMouseDown={(e) => {
            e.preventDefault();
            props.onPick(s);
          }}
          onMouseEnter={() => props.onHover(i)}
        >
          <span class="ac-label mono">{s.label}</span>
          {s.detail !== undefined && <span class="ac-detail">{s.detail}</span>}
        </li>
      ))}
    </ul>
  );
}

// ---- Search-syntax suggestions (SPEC §6) ----

/** What completions are drawn from: facet keys (`service`, `@http.method`) and values seen for each. */
export interface FacetSource {
  keys: string[];
  values: Record<string, { value: string; count?: number }[]>;
}

/** A value as the search syntax writes it after `key:` (the server's canonical escaping, SPEC §6). */
function escapeValue(v: string): string {
  let out = "";
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    const special = /\s/.test(c) || '()"\\*?'.includes(c) || (i === 0 && "-@><[{".includes(c));
    out += special ? `\\${c}` : c;
  }
  return out;
}

/** `key:value` with the value escaped for the search syntax (SPEC §6: backslash escapes). */
export function facetTerm(key: string, value: string): string {
  return `${key}:${escapeValue(value)}`;
}

/** The token around `caret`: from the last whitespace or `(` before it to the next whitespace or `)`. */
function tokenAt(text: string, caret: number): { start: number; end: number; token: string } {
  let start = caret;
  while (start > 0 && !/[\s(]/.test(text[start - 1])) start--;
  let end = caret;
  while (end < text.length && !/[\s)]/.test(text[end])) end++;
  return { start, end, token: text.slice(start, end) };
}

function rank(candidate: string, typed: string): number {
  const c = candidate.toLowerCase();
  const t = typed.toLowerCase();
  if (t === "") return 1;
  if (c.startsWith(t)) return c === t ? 0 : 1;
  return c.includes(t) ? 2 : -1;
}

function byRank<T>(items: T[], text: (x: T) => string, typed: string): T[] {
  return items
    .map((x, i) => ({ x, i, r: rank(text(x), typed) }))
    .filter((e) => e.r >= 0)
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((e) => e.x);
}

/**
 * Completions of the token at the caret: after `key:` the values of that facet; otherwise facet keys (then
 * `key:value` pairs whose value matches what was typed). A leading `-` (exclusion) is kept.
 */
export function searchSuggestions(text: string, caret: number, src: FacetSource): Suggestion[] {
  const { start, end, token } = tokenAt(text, caret);
  const neg = token.startsWith("-") ? "-" : "";
  const body = token.slice(neg.length);
  const before = text.slice(0, start) + neg;
  const rest = text.slice(end);
  const place = (insert: string, space: boolean): Suggestion => {
    const glue = space && !rest.startsWith(" ") ? " " : "";
    const value = before + insert + glue + rest;
    return { label: neg + insert, value, caret: before.length + insert.length + glue.length };
  };
  const colon = body.indexOf(":");
  if (colon > 0) {
    const key = body.slice(0, colon);
    const typed = body.slice(colon + 1).replace(/\\(.)/g, "$1");
    const values = src.values[key] ?? [];
    return byRank(values, (v) => v.value, typed)
      .filter((v) => facetTerm(key, v.value) !== body)
      .slice(0, MAX_ITEMS)
      .map((v) => ({ ...place(facetTerm(key, v.value), true), detail: v.count === undefined ? key : String(v.count) }));
  }
  if (body === "" && text.trim() === "") return [];
  const out: Suggestion[] = [];
  for (const k of byRank(src.keys, (k) => k, body)) {
    if (k === body) continue;
    out.push({ ...place(`${k}:`, false), detail: "facet" });
  }
  if (body !== "") {
    for (const k of src.keys) {
      for (const v of src.values[k] ?? []) {
        if (rank(v.value, body) === 1 || rank(v.value, body) === 0) {
          out.push({ ...place(facetTerm(k, v.value), true), detail: k });
        }
      }
    }
  }
  return out.slice(0, MAX_ITEMS);
}

// ---- History ----

const HISTORY_MAX = 20;

/** The recent queries stored under `key`, newest first (none when storage is unavailable). */
export function loadHistory(key: string): string[] {
  try {
    const raw = window.localStorage.getItem(key);
    const parsed: unknown = raw ? JSON.parse(raw) : [];
    return Array.isArray(parsed) ? parsed.filter((q): q is string => typeof q === "string").slice(0, HISTORY_MAX) : [];
  } catch {
    return [];
  }
}

/** Puts `query` first in the history under `key` (at most 20 kept, no duplicates). */
export function pushHistory(key: string, query: string): void {
  const q = query.trim();
  if (q === "") return;
  const next = [q, ...loadHistory(key).filter((h) => h !== q)].slice(0, HISTORY_MAX);
  try {
    window.localStorage.setItem(key, JSON.stringify(next));
  } catch {
    // Storage full or disabled: no history.
  }
}

/** The history as suggestions (for an empty input). */
export function historySuggestions(key: string): Suggestion[] {
  return loadHistory(key).map((q) => ({ label: q, detail: "recent", value: q, caret: q.length }));
}

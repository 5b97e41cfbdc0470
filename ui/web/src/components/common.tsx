// Small shared components: an error line, a loading line, the query bar, and an attribute tree (all text,
// never HTML).
import type { ApiError } from "../api";
import { formatValue } from "../format";

export function ErrorText({ error, testid }: { error: ApiError | string; testid?: string }) {
  const text = typeof error === "string" ? error : error.message;
  return (
    <p class="error" role="alert" data-testid={testid}>
      {text}
    </p>
  );
}

export function Loading({ when }: { when: boolean }) {
  return when ? <p class="muted loading">Loading…</p> : null;
}

/** A one-line query form: a monospace input and a submit button. */
export function QueryBar(props: {
  value: string;
  onInput: (value: string) => void;
  onSubmit: (e: Event) => void;
  testid: string;
  label: string;
  placeholder: string;
  button: string;
  /** Marks the form as the page's search (ARIA). */
  search?: boolean;
}) {
  return (
    <form class="query-bar" onSubmit={props.onSubmit} role={props.search ? "search" : undefined}>
      <input
        type="search"
        class="query-input mono"
        data-testid={props.testid}
        aria-label={props.label}
        placeholder={props.placeholder}
        spellcheck={false}
        autocomplete="off"
        value={props.value}
        onInput={(e) => props.onInput((e.currentTarget as HTMLInputElement).value)}
      />
      <button type="submit">{props.button}</button>
    </form>
  );
}

function isBranch(v: unknown): v is Record<string, unknown> | unknown[] {
  return typeof v === "object" && v !== null;
}

function Entry({ name, value, depth }: { name: string; value: unknown; depth: number }) {
  if (isBranch(value)) {
    const entries = Array.isArray(value)
      ? value.map((v, i) => [String(i), v] as const)
      : Object.entries(value);
    return (
      <li>
        <details open={depth < 2}>
          <summary>
            <span class="attr-key">{name}</span>
            <span class="muted">{Array.isArray(value) ? ` [${entries.length}]` : ` {${entries.length}}`}</span>
          </summary>
          <ul class="attr-tree">
            {entries.map(([k, v]) => (
              <Entry key={k} name={k} value={v} depth={depth + 1} />
            ))}
          </ul>
        </details>
      </li>
    );
  }
  return (
    <li class="attr-leaf">
      <span class="attr-key">{name}</span>
      <span class="attr-sep">: </span>
      <span class={typeof value === "string" ? "attr-val" : "attr-val attr-json"}>{formatValue(value)}</span>
    </li>
  );
}

/** A JSON object as a collapsible tree (`<details>`), keys and values as text. */
export function AttrTree({ value, testid }: { value: unknown; testid?: string }) {
  if (!isBranch(value) || (Object.keys(value).length === 0)) {
    return <p class="muted">No attributes.</p>;
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
  return (
    <ul class="attr-tree attr-root" data-testid={testid}>
      {entries.map(([k, v]) => (
        <Entry key={k} name={k} value={v} depth={0} />
      ))}
    </ul>
  );
}

// Small shared components: an error line, a loading line, the query bar (with optional autocompletion and a
// parse-error marker), and an attribute tree (all text, never HTML).
import { useEffect, useRef, useState } from "preact/hooks";
import type { ApiError } from "../api";
import { formatValue } from "../format";
import { AutocompleteList, type Suggest, type Suggestion } from "./autocomplete";
import { ErrorMarker, type QueryError } from "./error-marker";

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

/** A one-line query form: a monospace input and a submit button; with `suggest`, a completion dropdown
 * (up/down to move, Enter or Tab to accept, Escape to close; Enter with nothing chosen submits). */
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
  /** Completions for the text and caret (optional: without it, a plain input). */
  suggest?: Suggest;
  /** The API's error for the query that ran: a parse error naming a position is marked under the input until
   * the text is edited. */
  error?: QueryError | null;
}) {
  const input = useRef<HTMLInputElement>(null);
  const caret = useRef<number | null>(null);
  const [items, setItems] = useState<Suggestion[]>([]);
  const [active, setActive] = useState(-1);
  const listId = `${props.testid}-suggestions`;
  const suggest = props.suggest;

  // An accepted completion moves the caret to the end of what it inserted, once the new value is rendered.
  useEffect(() => {
    if (caret.current !== null && input.current) {
      input.current.setSelectionRange(caret.current, caret.current);
      caret.current = null;
    }
  });

  const refresh = (text: string, at: number | null) => {
    if (!suggest) return;
    setItems(suggest(text, at ?? text.length));
    setActive(-1);
  };
  const close = () => {
    setItems([]);
    setActive(-1);
  };
  const accept = (s: Suggestion) => {
    caret.current = s.caret;
    props.onInput(s.value);
    // A key (`service:`) goes on to its values; a whole term or a recent query closes the list.
    if (s.value.slice(0, s.caret).endsWith(":")) refresh(s.value, s.caret);
    else close();
  };
  const onKeyDown = (e: KeyboardEvent) => {
    if (!suggest || items.length === 0) return;
    if (e.key === "ArrowDown") {
      e.preventDefault();
      setActive((a) => (a + 1) % items.length);
    } else if (e.key === "ArrowUp") {
      e.preventDefault();
      setActive((a) => (a <= 0 ? items.length - 1 : a - 1));
    } else if ((e.key === "Enter" || e.key === "Tab") && active >= 0 && active < items.length) {
      e.preventDefault();
      accept(items[active]);
    } else if (e.key === "Escape") {
      e.preventDefault();
      close();
    }
  };
  const open = suggest !== undefined && items.length > 0;

  const onInput = (e: Event) => {
    const el = e.currentTarget as HTMLInputElement;
    props.onInput(el.value);
    refresh(el.value, el.selectionStart);
  };
  // How far a long query is scrolled inside the input: the error marker's mirror follows it.
  const [scrollX, setScrollX] = useState(0);
  const shared = {
    ref: input,
    onScroll: (e: Event) => setScrollX((e.currentTarget as HTMLInputElement).scrollLeft),
    class: "query-input mono",
    "data-testid": props.testid,
    "aria-label": props.label,
    placeholder: props.placeholder,
    spellcheck: false,
    autocomplete: "off",
    value: props.value,
    onInput,
  };
  const field = suggest ? (
    <input
      {...shared}
      type="text"
      role="combobox"
      aria-autocomplete="list"
      aria-expanded={open}
      aria-controls={listId}
      aria-activedescendant={open && active >= 0 ? `${listId}-${active}` : undefined}
      onKeyDown={onKeyDown}
      onFocus={(e) => refresh(e.currentTarget.value, e.currentTarget.selectionStart)}
      onClick={(e) => refresh(e.currentTarget.value, e.currentTarget.selectionStart)}
      onBlur={close}
    />
  ) : (
    <input {...shared} type="search" />
  );
  const onSubmit = (e: Event) => {
    close();
    props.onSubmit(e);
  };

  return (
    <form class="query-bar" onSubmit={onSubmit} role={props.search ? "search" : undefined}>
      {suggest ? (
        <div class="ac-wrap">
          {field}
          <ErrorMarker text={props.value} error={props.error} scrollLeft={scrollX} />
          {open && <AutocompleteList id={listId} items={items} active={active} onPick={accept} onHover={setActive} />}
        </div>
      ) : (
        <div class="em-field">
          {field}
          <ErrorMarker text={props.value} error={props.error} scrollLeft={scrollX} />
        </div>
      )}
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

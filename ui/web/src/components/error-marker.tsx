// Inline parse-error markers for query inputs: the position an API parse error names ("at position 12", a byte
// offset into the query, SPEC §4) found in the message, and a mirror laid over the input (same font and
// padding, the text up to the position invisible) that underlines the offending character.
import "./error-marker.css";

/** What a query input's error is about: the query text that was sent, and the API's message. */
export interface QueryError {
  query: string;
  message: string;
}

/** The byte position a parse error names (`at position 12`), or null when it names none. */
export function errorPosition(message: string): number | null {
  const m = /\bat position (\d+)\b/.exec(message);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}

/** The string index (UTF-16) of UTF-8 byte offset `bytes` of `text` (its length when past the end). */
export function byteToIndex(text: string, bytes: number): number {
  let b = 0;
  let i = 0;
  while (i < text.length && b < bytes) {
    const cp = text.codePointAt(i) ?? 0;
    b += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    i += cp >= 0x10000 ? 2 : 1;
  }
  return i;
}

/**
 * The marker under the input whose current text is `text`: shown only while that text is the query the error
 * is about (editing removes it) and the message names a position. Placed inside the input's positioned wrapper.
 */
export function ErrorMarker({ text, error, testid = "query-error-marker", scrollLeft = 0 }: {
  text: string;
  error: QueryError | null | undefined;
  testid?: string;
  /** The input's own horizontal scroll (a query longer than the input): the mirror moves with it. */
  scrollLeft?: number;
}) {
  if (!error || error.query !== text) return null;
  const pos = errorPosition(error.message);
  if (pos === null) return null;
  const at = byteToIndex(text, pos);
  const cp = text.codePointAt(at);
  const ch = cp === undefined ? " " : String.fromCodePoint(cp);
  return (
    <div class="query-input mono em-mirror" aria-hidden="true">
      <span class="em-track" style={{ transform: `translateX(${-scrollLeft}px)` }}>
        <span class="em-before">{text.slice(0, at)}</span>
        <span
          class="em-mark"
          data-testid={testid}
          data-position={String(pos)}
          data-index={String(at)}
          title={error.message}
        >
          {ch === " " || ch === "\t" ? "\u00a0" : ch}
        </span>
      </span>
    </div>
  );
}

/** Characters shown on each side of the position in an [`ErrorSnippet`]. */
const SNIPPET_CONTEXT = 40;

/**
 * The marker for a multi-line input (a textarea, where a mirror cannot follow the wrapping): the query on one
 * line around the position, and a caret under the offending character, as a compiler prints it. Shown only
 * while the text is the query the error is about.
 */
export function ErrorSnippet({ text, error, testid = "query-error-snippet" }: {
  text: string;
  error: QueryError | null | undefined;
  testid?: string;
}) {
  if (!error || error.query !== text) return null;
  const pos = errorPosition(error.message);
  if (pos === null) return null;
  const flat = text.replace(/[\r\n\t]/g, " ");
  const at = byteToIndex(text, pos);
  const from = Math.max(0, at - SNIPPET_CONTEXT);
  const to = Math.min(flat.length, at + SNIPPET_CONTEXT);
  const head = (from > 0 ? "…" : "") + flat.slice(from, at);
  const line = head + flat.slice(at, to) + (to < flat.length ? "…" : "");
  return (
    <pre class="em-snippet" data-testid={testid} data-position={String(pos)} data-index={String(at)} aria-hidden="true">
      {line}
      {"\n"}
      {" ".repeat(head.length)}
      <span class="em-caret">^</span>
    </pre>
  );
}

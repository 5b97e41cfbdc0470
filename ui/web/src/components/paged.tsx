// "Load more" for a cursor-paged list: a hook that loads the pages after the first answer's cursor (kept for
// one key: a new query starts over; the request is aborted when the key changes), and its button and error.
import { useEffect, useRef, useState } from "preact/hooks";
import { isAbort, toApiError, type ApiError } from "../api";
import { ErrorText } from "./common";

/** One page of a cursor-paged list. */
export interface Page<T> {
  data: T[];
  /** The cursor of the next page; null at the end. */
  after: string | null;
}

export interface PagedMore<T> {
  /** The rows "Load more" added for the current key (the same empty array while there are none). */
  rows: T[];
  /** The cursor of the next page: the last loaded one's, else the first answer's; null at the end. */
  after: string | null;
  loading: boolean;
  error: ApiError | null;
  loadMore: () => void;
}

/** The empty list, one array: a list built from `rows` is only recombined when they really change. */
const NONE: never[] = [];

/**
 * The "Load more" pages of the list `key` names, after `first` (the first answer's cursor, null until it
 * answered); `load` fetches the page at a cursor.
 */
export function usePagedMore<T>(
  key: string,
  first: string | null,
  load: (after: string, signal: AbortSignal) => Promise<Page<T>>,
): PagedMore<T> {
  const [more, setMore] = useState<{ key: string; data: T[]; after: string | null } | null>(null);
  const [busy, setBusy] = useState<{ key: string; error: ApiError | null; loading: boolean } | null>(null);
  const ctlRef = useRef<AbortController | null>(null);
  useEffect(() => () => ctlRef.current?.abort(), [key]);
  const rows = more?.key === key ? more.data : NONE;
  const after = more?.key === key ? more.after : first;
  const state = busy?.key === key ? busy : null;
  const loading = state?.loading ?? false;
  const loadMore = () => {
    if (!after || loading) return;
    ctlRef.current?.abort();
    const ctl = new AbortController();
    ctlRef.current = ctl;
    const k = key;
    setBusy({ key: k, error: null, loading: true });
    load(after, ctl.signal).then(
      (page) => {
        if (ctl.signal.aborted) return;
        setMore((m) => ({ key: k, data: [...(m?.key === k ? m.data : []), ...page.data], after: page.after }));
        setBusy({ key: k, error: null, loading: false });
      },
      (e: unknown) => {
        if (ctl.signal.aborted || isAbort(e)) return;
        setBusy({ key: k, error: toApiError(e), loading: false });
      },
    );
  };
  return { rows, after, loading, error: state?.error ?? null, loadMore };
}

/** The "Load `count` more" button (while there is a next page and the list shows rows) and the last try's error. */
export function LoadMore<T>({
  more,
  shown,
  count,
  testid,
}: {
  more: PagedMore<T>;
  /** Whether the list shows any rows. */
  shown: boolean;
  count: number;
  testid: string;
}) {
  return (
    <>
      {more.after && shown && (
        <p class="logs-actions">
          <button type="button" class="load-more" data-testid={testid} disabled={more.loading} onClick={more.loadMore}>
            {more.loading ? "Loading…" : `Load ${count} more`}
          </button>
        </p>
      )}
      {more.error && <ErrorText error={more.error} testid="load-more-error" />}
    </>
  );
}

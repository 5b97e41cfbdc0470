// Fetch wrappers for Sightline's JSON API (same origin) and a hook that loads one answer for a view.
import { useEffect, useState } from "preact/hooks";

/** A failed request: the API's own message(s) when it sent `{"errors": [...]}`. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

async function errorOf(r: Response): Promise<ApiError> {
  let text = "";
  try {
    text = await r.text();
  } catch {
    // The body is unreadable: the status alone.
  }
  try {
    const body = JSON.parse(text) as { errors?: unknown };
    if (Array.isArray(body.errors) && body.errors.length > 0) {
      return new ApiError(r.status, body.errors.map(String).join("; "));
    }
  } catch {
    // Not JSON: the text as it is, shortened.
  }
  const detail = text.trim().slice(0, 300);
  return new ApiError(r.status, `HTTP ${r.status} ${r.statusText}${detail ? `: ${detail}` : ""}`);
}

/** A JSON request with any method: the parsed answer (`null` for an empty one, such as a 204). */
async function request<T>(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const init: RequestInit = { method, signal, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { Accept: "application/json", "Content-Type": "application/json" };
  }
  let r: Response;
  try {
    r = await fetch(path, init);
  } catch (e) {
    if (isAbort(e)) throw e;
    throw new ApiError(0, `cannot reach the server: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!r.ok) throw await errorOf(r);
  const text = await r.text();
  return (text.trim() ? JSON.parse(text) : null) as T;
}

export function apiGet<T>(path: string, signal?: AbortSignal): Promise<T> {
  return request<T>("GET", path, undefined, signal);
}

export function apiPost<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  return request<T>("POST", path, body, signal);
}

export function apiPut<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  return request<T>("PUT", path, body, signal);
}

/** A DELETE; the answer if there is one (`null` for a 204). */
export function apiDelete<T>(path: string, signal?: AbortSignal): Promise<T | null> {
  return request<T | null>("DELETE", path, undefined, signal);
}

/** One series of the v1 metric query API's answer (`GET /api/v1/query`), the fields the app reads. */
export interface MetricSeries {
  metric: string;
  scope: string;
  expression: string;
  tag_set: string[];
  pointlist: [number, number | null][];
}

export interface MetricAnswer {
  series: MetricSeries[];
}

export function isAbort(e: unknown): boolean {
  return e instanceof DOMException && e.name === "AbortError";
}

export interface Loaded<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
}

/**
 * Runs `load` whenever `key` changes, aborting the previous request; the newest answer or error.
 * `key` must capture every input of `load` (it is the effect's dependency).
 */
export function useApi<T>(key: string, load: (signal: AbortSignal) => Promise<T>): Loaded<T> {
  const [state, setState] = useState<Loaded<T>>({ data: null, error: null, loading: true });
  useEffect(() => {
    const ctl = new AbortController();
    setState((s) => ({ data: s.data, error: null, loading: true }));
    load(ctl.signal).then(
      (data) => {
        if (!ctl.signal.aborted) setState({ data, error: null, loading: false });
      },
      (e: unknown) => {
        if (ctl.signal.aborted || isAbort(e)) return;
        const err = e instanceof ApiError ? e : new ApiError(0, e instanceof Error ? e.message : String(e));
        setState({ data: null, error: err, loading: false });
      },
    );
    return () => ctl.abort();
  }, [key]);
  return state;
}

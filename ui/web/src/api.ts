// Fetch wrappers for Sightline's JSON API (same origin, with the keys the user gave when the server wants them),
// a hook that loads one answer for a view, and the event stream of the live tail.
import { useEffect, useState } from "preact/hooks";
import { EventStreamContentType, fetchEventSource } from "@microsoft/fetch-event-source";
import { useLiveTick } from "./time";

/** The keys a server with `[auth]` keys wants (SPEC §9): an API key and, for reads, an application key. */
export interface Keys {
  api: string;
  app: string;
}

/** sessionStorage key of the keys: they last as long as the tab, and never leave this origin. */
const KEYS_KEY = "sightline.keys";

export function storedKeys(): Keys | null {
  try {
    const k = JSON.parse(window.sessionStorage.getItem(KEYS_KEY) ?? "null") as Partial<Keys> | null;
    if (k && (k.api || k.app)) return { api: String(k.api ?? ""), app: String(k.app ?? "") };
  } catch {
    // Unreadable: as if none.
  }
  return null;
}

/** Keeps the keys for this tab (or forgets them with null). */
export function storeKeys(keys: Keys | null): void {
  if (keys && (keys.api.trim() || keys.app.trim())) {
    window.sessionStorage.setItem(KEYS_KEY, JSON.stringify({ api: keys.api.trim(), app: keys.app.trim() }));
  } else {
    window.sessionStorage.removeItem(KEYS_KEY);
  }
}

/** The request headers carrying the stored keys (none when there are none). */
export function keyHeaders(): Record<string, string> {
  const k = storedKeys();
  const h: Record<string, string> = {};
  if (k?.api) h["DD-API-KEY"] = k.api;
  if (k?.app) h["DD-APPLICATION-KEY"] = k.app;
  return h;
}

const authListeners = new Set<(message: string) => void>();

/** Calls `listener` with the server's message whenever a request is refused for its keys (401/403). */
export function onAuthNeeded(listener: (message: string) => void): () => void {
  authListeners.add(listener);
  return () => {
    authListeners.delete(listener);
  };
}

function refused(status: number, message: string): void {
  if (status === 401 || status === 403) for (const l of authListeners) l(message);
}

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
  const headers: Record<string, string> = { Accept: "application/json", ...keyHeaders() };
  const init: RequestInit = { method, signal, headers };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let r: Response;
  try {
    r = await fetch(path, init);
  } catch (e) {
    if (isAbort(e)) throw e;
    throw new ApiError(0, `cannot reach the server: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!r.ok) {
    const err = await errorOf(r);
    refused(err.status, err.message);
    throw err;
  }
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

/** Any failure as an ApiError (one that is not keeps its message, with status 0). */
export function toApiError(e: unknown): ApiError {
  return e instanceof ApiError ? e : new ApiError(0, e instanceof Error ? e.message : String(e));
}

export interface Loaded<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
}

/**
 * Runs `load` whenever `key` changes, aborting the previous request; the newest answer or error. While the
 * time range is live (`live=1`), it runs again every LIVE_EVERY_MS, keeping the old answer on screen meanwhile.
 * `key` must capture every input of `load` (it is the effect's dependency). `follow = false` keeps a live
 * view's answer until the key changes (for what a live view updates by other means, such as the live tail).
 */
export function useApi<T>(key: string, load: (signal: AbortSignal) => Promise<T>, follow = true): Loaded<T> {
  const [state, setState] = useState<Loaded<T>>({ data: null, error: null, loading: true });
  const tick = useLiveTick();
  useEffect(() => {
    const ctl = new AbortController();
    setState((s) => ({ data: s.data, error: null, loading: true }));
    load(ctl.signal).then(
      (data) => {
        if (!ctl.signal.aborted) setState({ data, error: null, loading: false });
      },
      (e: unknown) => {
        if (ctl.signal.aborted || isAbort(e)) return;
        setState({ data: null, error: toApiError(e), loading: false });
      },
    );
    return () => ctl.abort();
  }, [key, follow ? tick : 0]);
  return state;
}

/** The states of an EventStream, numbered as EventSource's. */
export const STREAM_CONNECTING = 0;
export const STREAM_OPEN = 1;
export const STREAM_CLOSED = 2;

/** Why a stream must not be retried (the server refused it). */
class Refused extends Error {}
/** Why a stream is retried: the server ended it. */
class Ended extends Error {}

/**
 * A server-sent event stream like EventSource (events `open`, `error` and the named ones as MessageEvents;
 * `readyState`; `close()`), read with fetch so that it carries the stored keys, which EventSource cannot.
 * It reconnects after a failure or an end, as EventSource does, except when the server refuses it (4xx).
 */
export class EventStream {
  readyState = STREAM_CONNECTING;
  private readonly ctl = new AbortController();
  private readonly target = new EventTarget();

  /** Named events arrive as MessageEvents with the event's text as `data`; `open` and `error` as Events. */
  addEventListener(type: string, listener: (ev: MessageEvent<string>) => void): void {
    this.target.addEventListener(type, listener as EventListener);
  }

  private dispatchEvent(ev: Event): void {
    this.target.dispatchEvent(ev);
  }

  constructor(path: string, retryMs = 2000) {
    fetchEventSource(path, {
      signal: this.ctl.signal,
      headers: { Accept: EventStreamContentType, ...keyHeaders() },
      openWhenHidden: true,
      onopen: async (r) => {
        if (!r.ok || !(r.headers.get("content-type") ?? "").startsWith(EventStreamContentType)) {
          const err = await errorOf(r);
          refused(err.status, err.message);
          throw err.status >= 400 && err.status < 500 ? new Refused(err.message) : err;
        }
        this.readyState = STREAM_OPEN;
        this.dispatchEvent(new Event("open"));
      },
      onmessage: (m) => {
        this.dispatchEvent(new MessageEvent(m.event || "message", { data: m.data }));
      },
      onclose: () => {
        throw new Ended("the server ended the stream");
      },
      onerror: (e: unknown) => {
        if (this.ctl.signal.aborted) throw e;
        if (e instanceof Refused) {
          this.readyState = STREAM_CLOSED;
          this.dispatchEvent(new Event("error"));
          throw e;
        }
        this.readyState = STREAM_CONNECTING;
        this.dispatchEvent(new Event("error"));
        return retryMs;
      },
    }).catch(() => {
      // Refused or closed: already reported by onerror (or asked for by close()).
    });
  }

  close(): void {
    this.readyState = STREAM_CLOSED;
    this.ctl.abort();
  }
}

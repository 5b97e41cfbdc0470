// The time range of a view, kept in the URL: relative (`from=now-1h&to=now`, `live=1` to reload as time
// passes) or absolute (ISO dates or unix milliseconds).
import { useEffect, useState } from "preact/hooks";
import { useLocation, type Loc } from "./router";

export const RANGES: { value: string; label: string }[] = [
  { value: "now-15m", label: "Past 15 minutes" },
  { value: "now-1h", label: "Past 1 hour" },
  { value: "now-4h", label: "Past 4 hours" },
  { value: "now-1d", label: "Past 1 day" },
  { value: "now-7d", label: "Past 7 days" },
];

export const DEFAULT_FROM = "now-1h";
export const DEFAULT_TO = "now";

export interface TimeRange {
  from: string;
  to: string;
}

/** The range in the URL, or the default (the past hour). */
export function timeRange(loc: Loc): TimeRange {
  return {
    from: loc.query.get("from") || DEFAULT_FROM,
    to: loc.query.get("to") || DEFAULT_TO,
  };
}

const UNIT_SECS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Unix seconds of `now`, `now-15m` style (s, m, h, d, w), unix milliseconds or an ISO date; null if none of these. */
export function toUnixSecs(arg: string, nowSecs: number): number | null {
  const s = arg.trim();
  const rel = /^now(?:([+-])(\d+)([smhdw]?))?$/.exec(s);
  if (rel) {
    if (!rel[1]) return nowSecs;
    const n = Number(rel[2]) * UNIT_SECS[rel[3] || "m"];
    return rel[1] === "-" ? nowSecs - n : nowSecs + n;
  }
  if (/^\d+$/.test(s)) return Math.floor(Number(s) / 1000);
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : Math.floor(t / 1000);
}

/** The range as unix seconds, `[from, to)`, now being the time of the call. */
export function unixRange(r: TimeRange): { from: number; to: number } | null {
  const now = Math.floor(Date.now() / 1000);
  const from = toUnixSecs(r.from, now);
  const to = toUnixSecs(r.to, now);
  if (from === null || to === null || from >= to) return null;
  return { from, to };
}

/** How often a live view reloads its data (ms). */
export const LIVE_EVERY_MS = 10_000;

/** Whether the range is live: `live=1` in the URL and a range ending now (an absolute range cannot move). */
export function isLive(query: URLSearchParams): boolean {
  return query.get("live") === "1" && (query.get("to") || DEFAULT_TO) === "now";
}

const tickers = new Set<() => void>();
let ticks = 0;
let timer = 0;

/** Starts or stops the shared live timer as the URL says, whenever a subscriber comes or goes. */
function retime(): void {
  const want = tickers.size > 0 && isLive(new URLSearchParams(window.location.search));
  if (want && !timer) {
    timer = window.setInterval(() => {
      if (!isLive(new URLSearchParams(window.location.search))) {
        retime();
        return;
      }
      ticks += 1;
      for (const t of tickers) t();
    }, LIVE_EVERY_MS);
  } else if (!want && timer) {
    window.clearInterval(timer);
    timer = 0;
  }
}

/** A number that grows every LIVE_EVERY_MS while the view is live (one timer for the whole page). */
export function useLiveTick(): number {
  const [tick, setTick] = useState(ticks);
  const loc = useLocation();
  const live = isLive(loc.query);
  useEffect(() => {
    const t = () => setTick(ticks);
    tickers.add(t);
    retime();
    return () => {
      tickers.delete(t);
      retime();
    };
  }, [live]);
  return live ? tick : 0;
}

/** `datetime-local` input text (local time, minutes) of unix seconds. */
export function toLocalInput(secs: number): string {
  const d = new Date(secs * 1000 - new Date(secs * 1000).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

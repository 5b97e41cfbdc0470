// The time range of a view: relative ranges kept in the URL as `from=now-1h&to=now`.
import type { Loc } from "./router";

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

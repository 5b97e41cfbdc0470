// Text formatting of times, durations, numbers and statuses for the views (text only, never HTML).

function pad(n: number, w = 2): string {
  return String(n).padStart(w, "0");
}

/** A Date as local `YYYY-MM-DD HH:MM:SS.mmm`. */
export function formatDate(d: Date, millis = true): string {
  if (Number.isNaN(d.getTime())) return "";
  const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return millis ? `${base}.${pad(d.getMilliseconds(), 3)}` : base;
}

/** An ISO-8601 timestamp as local time (the input itself when it does not parse). */
export function formatIso(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : formatDate(d);
}

/** Unix seconds as local time; "" for null/undefined. */
export function formatUnixSecs(ts: number | null | undefined): string {
  if (ts === null || ts === undefined) return "";
  return formatDate(new Date(ts * 1000), false);
}

/** Nanoseconds as `850 ns`, `12.3 µs`, `4.56 ms`, `1.23 s`; "" for null/undefined. */
export function formatNs(ns: number | null | undefined): string {
  if (ns === null || ns === undefined || !Number.isFinite(ns)) return "";
  const a = Math.abs(ns);
  if (a < 1e3) return `${Math.round(ns)} ns`;
  if (a < 1e6) return `${(ns / 1e3).toPrecision(3)} µs`;
  if (a < 1e9) return `${(ns / 1e6).toPrecision(3)} ms`;
  if (a < 60e9) return `${(ns / 1e9).toPrecision(3)} s`;
  return `${(ns / 60e9).toFixed(1)} min`;
}

/** A number with at most 3 decimals (and thousands separators); "" for null/undefined. */
export function formatNumber(v: number | null | undefined): string {
  if (v === null || v === undefined) return "";
  if (!Number.isFinite(v)) return String(v);
  return v.toLocaleString("en-US", { maximumFractionDigits: 3 });
}

/** A per-second rate: small non-zero rates keep two significant digits (`0.00028`). */
export function formatRate(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "";
  if (v !== 0 && Math.abs(v) < 0.01) return v.toPrecision(2);
  return formatNumber(v);
}

/** A fraction as a percentage, `12.5 %`. */
export function formatPercent(f: number | null | undefined): string {
  if (f === null || f === undefined || !Number.isFinite(f)) return "";
  return `${(f * 100).toLocaleString("en-US", { maximumFractionDigits: 2 })} %`;
}

/** Any JSON value as one line of text: strings as they are, the rest as JSON. */
/** A count and its noun, plural but for one: `1 log`, `3 logs`. */
export function formatCount(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

export function formatValue(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === undefined) return "";
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** The CSS class of a log status (Datadog's names, case-insensitive). */
export function logStatusClass(status: string | undefined): string {
  switch ((status || "").toLowerCase()) {
    case "emerg":
    case "emergency":
    case "alert":
    case "critical":
    case "crit":
    case "error":
    case "err":
    case "fatal":
      return "sev sev-error";
    case "warn":
    case "warning":
      return "sev sev-warn";
    case "debug":
    case "trace":
      return "sev sev-debug";
    case "ok":
    case "success":
      return "sev sev-ok";
    default:
      return "sev sev-info";
  }
}

/** The CSS class of a monitor status (`OK`, `Warn`, `Alert`, `No Data`). */
export function monitorStatusClass(status: string | undefined): string {
  switch ((status || "").toLowerCase()) {
    case "alert":
      return "mon mon-alert";
    case "warn":
      return "mon mon-warn";
    case "ok":
      return "mon mon-ok";
    case "no data":
      return "mon mon-nodata";
    default:
      return "mon mon-other";
  }
}

// The time picker in the navigation: relative ranges (with "Live", reloading as time passes), or an absolute
// range from two date-time fields; everything is written into the URL (`from`, `to`, `live`).
import { useEffect, useState } from "preact/hooks";
import { navigate, withParams, type Loc } from "../router";
import { RANGES, isLive, timeRange, toLocalInput, toUnixSecs } from "../time";

const CUSTOM = "custom";

export function TimePicker({ loc }: { loc: Loc }) {
  const { from, to } = timeRange(loc);
  const known = to === "now" && RANGES.some((r) => r.value === from);
  const live = isLive(loc.query);
  const [editing, setEditing] = useState(false);
  const now = Math.floor(Date.now() / 1000);
  const [absFrom, setAbsFrom] = useState("");
  const [absTo, setAbsTo] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  // The fields start from the range on screen whenever they are opened or the range changes.
  useEffect(() => {
    setAbsFrom(toLocalInput(toUnixSecs(from, now) ?? now - 3600));
    setAbsTo(toLocalInput(toUnixSecs(to, now) ?? now));
    setProblem(null);
  }, [from, to, editing]);

  const onChange = (e: Event) => {
    const value = (e.currentTarget as HTMLSelectElement).value;
    if (value === CUSTOM) {
      setEditing(true);
      return;
    }
    setEditing(false);
    navigate(withParams(loc, { from: value, to: "now" }));
  };
  const apply = (e: Event) => {
    e.preventDefault();
    const f = Date.parse(absFrom);
    const t = Date.parse(absTo);
    if (Number.isNaN(f) || Number.isNaN(t)) {
      setProblem("enter both dates");
      return;
    }
    if (f >= t) {
      setProblem("the start must be before the end");
      return;
    }
    setEditing(false);
    navigate(withParams(loc, { from: String(f), to: String(t), live: undefined }));
  };
  const toggleLive = (e: Event) => {
    const on = (e.currentTarget as HTMLInputElement).checked;
    navigate(withParams(loc, { live: on ? "1" : undefined }), true);
  };
  const absolute = !known && !editing;
  return (
    <div class="time-picker-wrap">
      <label class="time-picker">
        <span class="visually-hidden">Time range</span>
        <select data-testid="time-range" value={editing ? CUSTOM : known ? from : "shown"} onChange={onChange}>
          {RANGES.map((r) => (
            <option key={r.value} value={r.value}>
              {r.label}
            </option>
          ))}
          {absolute && (
            <option value="shown" disabled>
              {describe(from, to, now)}
            </option>
          )}
          <option value={CUSTOM}>Custom range…</option>
        </select>
      </label>
      {editing && (
        <form class="time-abs" data-testid="time-absolute" onSubmit={apply}>
          <DateTimeInput label="From" testid="time-from" value={absFrom} onInput={setAbsFrom} />
          <span aria-hidden="true">→</span>
          <DateTimeInput label="To" testid="time-to" value={absTo} onInput={setAbsTo} />
          <button type="submit" data-testid="time-apply">
            Apply
          </button>
          {problem && (
            <span class="error" role="alert">
              {problem}
            </span>
          )}
        </form>
      )}
      {to === "now" && !editing && (
        <label class="time-live" title="Reload the data every 10 seconds">
          <input type="checkbox" data-testid="time-live" checked={live} onChange={toggleLive} />
          Live
        </label>
      )}
    </div>
  );
}

/** One end of the absolute range: a local date-time field. */
function DateTimeInput(props: { label: string; testid: string; value: string; onInput: (value: string) => void }) {
  return (
    <input
      type="datetime-local"
      aria-label={props.label}
      data-testid={props.testid}
      value={props.value}
      onInput={(e) => props.onInput((e.currentTarget as HTMLInputElement).value)}
    />
  );
}

/** An absolute (or unusual relative) range as text, in local time. */
function describe(from: string, to: string, now: number): string {
  const f = toUnixSecs(from, now);
  const t = toUnixSecs(to, now);
  if (f === null || t === null) return `${from} → ${to}`;
  const fmt = (s: number) => toLocalInput(s).replace("T", " ");
  return `${fmt(f)} → ${to === "now" ? "now" : fmt(t)}`;
}

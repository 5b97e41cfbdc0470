#!/usr/bin/env bash
# Log-list scrolling benchmark (issue #6, "a virtualized list that stays smooth at 100k rows"):
# `bash bench/ui-scroll.sh [--quick] [--debug]`. Builds the release binary, starts `sightline serve` on a temp
# data dir (127.0.0.1, ephemeral ports), loads 100,000 logs through the Datadog log intake, opens
# `/logs?query=run:<id>&limit=1000` in Debian's chromium (bench/ui/scroll.mjs), measures the frame intervals
# of two scroll sweeps with 1,000 rows (the baseline, same page, same run), presses "Load more" until the list
# holds 100,000 rows and measures the same sweeps again. Prints a table and one JSON object; a full run writes
# the section "Web UI log list at 100k rows" of bench/RESULTS.md. See bench/README.md.
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bash bench/ui-scroll.sh [--quick] [--debug]
  --quick   10,000 rows instead of 100,000 (RESULTS.md is not written)
  --debug   use the debug build (only for testing this script)
env: SCROLL_ROWS (rows to load; 100000, --quick 10000), SCROLL_FRAMES (frames per sweep; 240),
     UI_BIN (an already built sightline binary: no build), BENCH_OUT, SIGHTLINE_CHROMIUM (/usr/bin/chromium),
     SCROLL_WRITE_RESULTS (1 writes bench/RESULTS.md; default 1 for a full release run)
EOF
}

# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
if [ "$QUICK" = 1 ]; then ROWS="${SCROLL_ROWS:-10000}"; else ROWS="${SCROLL_ROWS:-100000}"; fi
FRAMES="${SCROLL_FRAMES:-240}"
WRITE=0
[ "$QUICK" = 0 ] && [ "$PROFILE" = release ] && [ -z "${UI_BIN:-}" ] && WRITE=1
WRITE="${SCROLL_WRITE_RESULTS:-$WRITE}"
OUT="${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/sightline-bench.XXXXXX")}/ui-scroll"
mkdir -p "$OUT"
CHROMIUM="${SIGHTLINE_CHROMIUM:-/usr/bin/chromium}"
log() { echo "[ui-scroll $(date -u +%H:%M:%S)] $*" >&2; }

cleanup() {
  stop_sightline
  rm -rf "$OUT/data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v node >/dev/null || { log "node is needed"; exit 1; }
[ -x "$CHROMIUM" ] || { log "$CHROMIUM is missing (apt-get install -y chromium)"; exit 1; }
if [ ! -d "$ROOT/tests/e2e/browser/node_modules/playwright-core" ]; then
  (cd "$ROOT/tests/e2e/browser" && npm ci --no-audit --no-fund) >&2 || { log "npm ci failed"; exit 1; }
fi
if [ -n "${UI_BIN:-}" ]; then
  SL="$UI_BIN"
  PROFILE="$PROFILE (UI_BIN)"
else
  log "building sightline ($PROFILE)"
  flag=""
  [ "$PROFILE" = release ] && flag="--release"
  cargo build $flag --bin sightline >"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log" >&2; exit 1; }
  SL="$BIN/sightline"
fi

DATA="$OUT/data"
start_sightline "$SL" "$DATA" "$OUT/sightline.log" --http-listen 127.0.0.1:0 --statsd-listen off \
  --otlp-grpc-listen off --otlp-http-listen off --syslog-listen off --self-monitoring-interval off || exit 1
HTTP="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$DATA/listeners.json")"
log "sightline on http://$HTTP; loading $ROWS logs"

RUN_ID="$(python3 - "$HTTP" "$ROWS" <<'EOF'
import json, sys, time, urllib.request, uuid
base, rows = f"http://{sys.argv[1]}", int(sys.argv[2])
run = uuid.uuid4().hex[:8]

def post(path, body):
    r = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                               headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(r, timeout=60) as resp:
        return json.loads(resp.read() or b"null")

now_ms = int(time.time() * 1000)
step = max(1, 3_000_000 // rows)  # spread over the last 50 minutes
statuses = ["info"] * 8 + ["warn", "error"]
for start in range(0, rows, 1000):
    post("/api/v2/logs", [{
        "message": f"GET /api/v1/orders/{i} completed in {i % 997} ms status 200 req {i:08d} run {run}",
        "status": statuses[i % 10], "service": f"svc-{i % 7}", "hostname": f"web-{i % 13:02d}",
        "ddsource": "bench", "ddtags": f"env:bench,run:{run}", "timestamp": now_ms - 3_000_000 + i * step,
        "http": {"status_code": 200, "method": "GET"}, "duration_ms": i % 997,
    } for i in range(start, min(rows, start + 1000))])

def count():
    a = post("/api/v2/logs/analytics/aggregate", {"compute": [{"aggregation": "count"}],
             "filter": {"query": f"run:{run}", "from": "now-1h", "to": "now+1m"}})
    b = a["data"]["buckets"]
    return int(b[0]["computes"]["c0"]) if b else 0

t0 = time.time()
while count() != rows:
    if time.time() - t0 > 120:
        sys.exit(f"only {count()} of {rows} logs searchable after 120 s")
    time.sleep(0.5)
print(run)
EOF
)" || { log "loading the logs failed"; exit 1; }
log "planted run:$RUN_ID; measuring in $CHROMIUM"

printf '{"base": "http://%s", "path": "/logs?query=run:%s&from=now-1h&to=now&limit=1000", "target": %s, "frames": %s}\n' \
  "$HTTP" "$RUN_ID" "$ROWS" "$FRAMES" >"$OUT/spec.json"
LOAD0="$(cut -d' ' -f1 /proc/loadavg)"
T0="$(date -u '+%Y-%m-%d %H:%M')"
node "$ROOT/bench/ui/scroll.mjs" "$OUT/spec.json" >"$OUT/raw.json" 2>"$OUT/scroll.log" || {
  tail -20 "$OUT/scroll.log" >&2; log "scroll.mjs failed"; exit 1; }
LOAD1="$(cut -d' ' -f1 /proc/loadavg)"
cleanup

python3 - "$OUT/raw.json" "$ROOT/bench/RESULTS.md" "$WRITE" "$T0" "$PROFILE" "$LOAD0 $LOAD1" "$ROWS" <<'EOF'
import json, re, sys
raw_p, results_md, write, t0, profile, loads, rows = sys.argv[1:]
r = json.load(open(raw_p))
b, l, ld = r["baseline"], r["loaded"], r["load"]
SMOOTH_P95_MS = 33.4  # 30 frames a second or better for 95% of frames

out = ["| sweep | rows | frame interval p50 / p95 / max ms | fps | frames > 33 ms |", "|---|---|---|---|---|"]
for mode in ("wheel", "jump"):
    for m in (b, l):
        s = m[mode]
        out.append(f"| {mode} | {m['rows']:,} | {s['p50Ms']} / {s['p95Ms']} / {s['maxMs']} | {s['fps']} | {s['over33Ms']} of {s['frames']} |")
verdict = {}
for mode in ("wheel", "jump"):
    verdict[mode] = {"p95_ratio_vs_1000_rows": round(l[mode]["p95Ms"] / b[mode]["p95Ms"], 2),
                     "smooth": l[mode]["p95Ms"] <= SMOOTH_P95_MS}
table = "\n".join(out)
notes = [f"rows in the DOM: {b['domRows']} at {b['rows']:,} rows, {l['domRows']} at {l['rows']:,} rows",
         f"JS heap: {b['heapMB']} MB at {b['rows']:,} rows, {l['heapMB']} MB at {l['rows']:,} rows",
         f"\"Load more\" x{ld['presses']}: {ld['totalMs'] / 1000:.1f} s in all, median {ld['perPressMedianMs']} ms "
         f"per 1,000 rows, slowest {ld['perPressMaxMs']} ms",
         "p95 vs the 1,000-row baseline: " + ", ".join(f"{k} {v['p95_ratio_vs_1000_rows']}x" for k, v in verdict.items()),
         "target (p95 frame interval <= 33.4 ms, i.e. >= 30 fps, at the loaded size): " +
         ", ".join(f"{k} {'met' if v['smooth'] else 'MISSED'}" for k, v in verdict.items())]
if r.get("errors"):
    notes.append(f"page errors: {r['errors']}")
print("\n" + table + "\n")
for n in notes:
    print("- " + n)
result = {"measurement": "ui_log_list_scroll", "date_utc": t0, "profile": profile, "browser": r["browser"],
          "rows_target": int(rows), "loadavg_start_end": [float(x) for x in loads.split()], "raw": r,
          "verdict": verdict}
print(json.dumps(result))
if write == "1":
    sec = ["# Web UI log list at 100k rows (issue #6)", "",
           f"`bash bench/ui-scroll.sh` on {t0} UTC ({profile}, {r['browser']}, load average {loads} at start/end). "
           "One page of the log explorer with 1,000 rows (the baseline, measured in the same run), then "
           f"{ld['presses']} presses of \"Load more\" up to {ld['rowsReached']:,} rows, and the same two sweeps: "
           "`wheel` scrolls 120 px a frame, `jump` sets a random offset every frame (dragging the scrollbar). "
           "The figure is the time between animation frames while scrolling.", "", table, ""]
    sec += ["- " + n for n in notes] + [""]
    text = open(results_md).read()
    pat = re.compile(r"^# Web UI log list at 100k rows \(issue #6\)\n.*?(?=^# |\Z)", re.S | re.M)
    new = "\n".join(sec) + "\n"
    text = pat.sub(lambda _: new, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + new
    open(results_md, "w").write(text)
EOF

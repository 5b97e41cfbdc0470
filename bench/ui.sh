#!/usr/bin/env bash
# Web UI first-render benchmark (issue #6): `bash bench/ui.sh [--quick]`. Builds the release binary, starts
# `sightline serve` on a temp data dir (127.0.0.1, ephemeral ports), loads 1,000 logs (Datadog log intake) and
# the metrics of a 10-widget dashboard (DogStatsD over UDP), creates that dashboard and an empty one
# (`POST /api/v1/dashboard`), waits until all is queryable, then measures in Debian's chromium
# (bench/ui/render.mjs, playwright-core from tests/e2e/browser) the time from navigation start to the
# first render of `/logs?query=<run>&limit=1000` with its 1,000 rows and of `/dashboards/<id>` with every
# widget's content, cold (fresh context) and warm, against baselines measured in the same run. Prints a
# table and one JSON object; a full run writes the section "Web UI first render (issue #6)" of
# bench/RESULTS.md. See bench/README.md, "Web UI first render".
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bash bench/ui.sh [--quick] [--debug]
  --quick   3 runs per page: checks that every piece works (RESULTS.md is not written)
  --debug   use the debug build (only for testing this script; figures are meaningless)
env: UI_RUNS (visits per page, cold and warm each; 20, --quick 3), UI_TIMEOUT_MS (per visit; 10000),
     UI_WRITE_RESULTS (1 writes bench/RESULTS.md; default 1 for a full release run, 0 otherwise),
     UI_BIN (an already built sightline binary: no build), BENCH_OUT, SIGHTLINE_CHROMIUM (/usr/bin/chromium)
EOF
}

# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
if [ "$QUICK" = 1 ]; then RUNS="${UI_RUNS:-3}"; else RUNS="${UI_RUNS:-20}"; fi
TIMEOUT_MS="${UI_TIMEOUT_MS:-10000}"
WRITE=0
[ "$QUICK" = 0 ] && [ "$PROFILE" = release ] && [ -z "${UI_BIN:-}" ] && WRITE=1
WRITE="${UI_WRITE_RESULTS:-$WRITE}"
OUT_BASE="${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/sightline-bench.XXXXXX")}"
OUT="$OUT_BASE/ui"
mkdir -p "$OUT"
BROWSER_DIR="$ROOT/tests/e2e/browser"
CHROMIUM="${SIGHTLINE_CHROMIUM:-/usr/bin/chromium}"

log() { echo "[ui-bench $(date -u +%H:%M:%S)] $*" >&2; }

SAMPLER=""
cleanup() {
  if [ -n "$SAMPLER" ]; then kill "$SAMPLER" 2>/dev/null; SAMPLER=""; fi
  stop_sightline
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Other compilers/benchmarks on the machine skew the figures: recorded with the results.
others() { # "<n> rustc, <n> cargo (other than ours)" and the load average
  local rc cg
  rc="$(pgrep -c -x rustc 2>/dev/null || true)"
  cg="$(pgrep -c -x cargo 2>/dev/null || true)"
  echo "${rc:-0} ${cg:-0} $(cut -d' ' -f1 /proc/loadavg)"
}

# ---- prerequisites ------------------------------------------------------------------------------------
command -v node >/dev/null || { log "node is needed"; exit 1; }
command -v python3 >/dev/null || { log "python3 is needed"; exit 1; }
[ -x "$CHROMIUM" ] || { log "$CHROMIUM is missing (apt-get install -y chromium)"; exit 1; }
if [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ]; then
  log "installing playwright-core in $BROWSER_DIR (npm ci)"
  (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund) >&2 || { log "npm ci failed"; exit 1; }
fi

# ---- build --------------------------------------------------------------------------------------------
read -r RUSTC0 CARGO0 LOAD0 <<<"$(others)"
log "$RUSTC0 rustc / $CARGO0 cargo processes running before the build (load average $LOAD0)"
if [ -n "${UI_BIN:-}" ]; then
  log "using $UI_BIN (UI_BIN: not built)"
  BIN="$(dirname "$UI_BIN")"
  PROFILE="$PROFILE (UI_BIN)"
elif [ "$PROFILE" = release ]; then
  log "building sightline (release; CARGO_TARGET_DIR=$CARGO_TARGET_DIR; the web app is built by ui/build.rs)"
  cargo build --release --bin sightline >"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log" >&2; exit 1; }
else
  log "building sightline (debug)"
  cargo build --bin sightline >"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log" >&2; exit 1; }
fi

# ---- server -------------------------------------------------------------------------------------------
DATA="$OUT/data"
start_sightline "${UI_BIN:-$BIN/sightline}" "$DATA" "$OUT/sightline.log" --http-listen 127.0.0.1:0 \
  --statsd-listen 127.0.0.1:0 --otlp-grpc-listen off --otlp-http-listen off --syslog-listen off \
  --self-monitoring-interval off || exit 1
read -r HTTP STATSD < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["http"], d["statsd"])' "$DATA/listeners.json")
log "sightline on http://$HTTP (statsd $STATSD), data in $DATA"

# ---- data ---------------------------------------------------------------------------------------------
log "loading 1,000 logs and the dashboard's metrics; creating the dashboards"
python3 - "$HTTP" "$STATSD" >"$OUT/planted.json" <<'EOF' || { log "loading the data failed"; exit 1; }
import json, random, socket, sys, time, urllib.error, urllib.parse, urllib.request, uuid

http, statsd = sys.argv[1], sys.argv[2]
base = f"http://{http}"
run = uuid.uuid4().hex[:8]
rnd = random.Random(6)

def req(method, path, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    r = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(r, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {path}: {e.code} {e.read()[:500]!r}")

def wait(what, fn, timeout=30):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if fn():
                return round(time.time() - t0, 2)
        except Exception:
            pass
        time.sleep(0.2)
    sys.exit(f"not queryable within {timeout} s: {what}")

# 1,000 logs over the last 20 minutes: web/API access logs, errors with stack-ish text, JSON attributes.
services = ["checkout", "payments", "inventory", "auth", "gateway"]
hosts = [f"web-{i:02d}" for i in range(1, 6)]
paths = ["/api/v1/orders", "/api/v1/cart", "/api/v1/users/{id}", "/api/v1/payments/{id}/capture", "/healthz",
         "/api/v1/products?page={id}"]
now_ms = int(time.time() * 1000)
logs = []
for i in range(1000):
    svc, host = rnd.choice(services), rnd.choice(hosts)
    p = rnd.choice(paths).format(id=rnd.randint(1, 99999))
    dur = round(rnd.lognormvariate(3.2, 0.8), 1)
    r = rnd.random()
    if r < 0.85:
        status, code = "info", rnd.choice([200, 200, 200, 201, 204, 304])
        msg = f"GET {p} completed in {dur} ms status {code} req {uuid.UUID(int=rnd.getrandbits(128)).hex[:16]}"
    elif r < 0.95:
        status, code = "warn", rnd.choice([404, 429])
        msg = f"slow or refused request {p}: status {code} after {dur} ms (retrying, attempt {rnd.randint(1, 3)})"
    else:
        status, code = "error", rnd.choice([500, 502, 503])
        msg = (f"upstream error on {p}: connection reset by peer (status {code}); "
               f"java.io.IOException: Broken pipe at com.shop.{svc}.Client.call(Client.java:{rnd.randint(40, 400)})")
    logs.append({
        "message": msg, "status": status, "service": svc, "hostname": host, "ddsource": "java",
        "ddtags": f"env:bench,run:{run},version:1.{rnd.randint(0, 9)}",
        "timestamp": now_ms - 1_200_000 + i * 1200,
        "http": {"method": "GET", "url": p, "status_code": code},
        "duration_ms": dur, "usr": {"id": f"u{rnd.randint(1, 500)}"},
        "trace_id": str(rnd.getrandbits(63)),
    })
for k in range(0, 1000, 250):
    st, _ = req("POST", "/api/v2/logs", logs[k:k + 250])
    assert st == 202, st

# Metrics through DogStatsD (UDP): 5 hosts, gauges with timestamps (one a minute, 30 minutes), counters
# now, a distribution for the heatmap.
h, p = statsd.rsplit(":", 1)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
now = int(time.time())
lines = []
for n, host in enumerate(hosts, start=1):
    tags = f"#host:{host},env:bench,run:{run}"
    for m in range(30):
        ts = now - 60 * (30 - m)
        lines.append(f"bench.cpu.user:{10 * n + 5 * rnd.random():.2f}|g|{tags}|T{ts}")
        lines.append(f"bench.mem.used:{(n * 1.5e9) + rnd.random() * 1e8:.0f}|g|{tags}|T{ts}")
        lines.append(f"bench.load.1:{n * 0.4 + rnd.random():.2f}|g|{tags}|T{ts}")
        lines.append(f"bench.disk.in_use:{0.1 * n + 0.01 * rnd.random():.3f}|g|{tags}|T{ts}")
    lines.append(f"bench.net.bytes_rcvd:{1000 * n}|c|{tags}")
    lines.append(f"bench.net.bytes_sent:{700 * n}|c|{tags}")
    for v in range(40):
        lines.append(f"bench.request.latency:{rnd.lognormvariate(3, 0.7):.2f}|d|{tags}")
buf = []
for l in lines:  # packed into datagrams of <= 1400 bytes
    if buf and sum(len(x) + 1 for x in buf) + len(l) > 1400:
        sock.sendto("\n".join(buf).encode(), (h, int(p)))
        buf = []
    buf.append(l)
if buf:
    sock.sendto("\n".join(buf).encode(), (h, int(p)))

f = f"{{run:{run}}}"
widgets = [
    {"definition": {"type": "timeseries", "title": "CPU by host",
                    "requests": [{"q": f"avg:bench.cpu.user{f} by {{host}}", "display_type": "line"}]}},
    {"definition": {"type": "timeseries", "title": "Load by host",
                    "requests": [{"q": f"avg:bench.load.1{f} by {{host}}", "display_type": "area"}]}},
    {"definition": {"type": "timeseries", "title": "Network (formula)", "requests": [
        {"response_format": "timeseries", "display_type": "bars", "formulas": [{"formula": "rx + tx"}],
         "queries": [{"data_source": "metrics", "name": "rx", "query": f"sum:bench.net.bytes_rcvd{f} by {{host}}"},
                     {"data_source": "metrics", "name": "tx", "query": f"sum:bench.net.bytes_sent{f} by {{host}}"}]}]}},
    {"definition": {"type": "query_value", "title": "Max load", "precision": 2,
                    "requests": [{"q": f"avg:bench.load.1{f}", "aggregator": "max"}]}},
    {"definition": {"type": "query_value", "title": "CPU now", "precision": 1,
                    "requests": [{"q": f"avg:bench.cpu.user{f}", "aggregator": "last"}]}},
    {"definition": {"type": "toplist", "title": "Top memory",
                    "requests": [{"q": f"top(avg:bench.mem.used{f} by {{host}}, 5, 'mean', 'desc')"}]}},
    {"definition": {"type": "log_stream", "title": "Errors", "query": f"run:{run} status:error", "indexes": []}},
    {"definition": {"type": "note", "content": "Bench dashboard\n\nTen widgets: three timeseries, two values, a "
                    "toplist, a log stream, this note, a heatmap and a group."}},
    {"definition": {"type": "heatmap", "title": "Request latency",
                    "requests": [{"q": f"avg:bench.request.latency{f}"}]}},
    {"definition": {"type": "group", "title": "Disk", "layout_type": "ordered", "widgets": [
        {"definition": {"type": "query_value", "title": "Disk in use (%)", "requests": [
            {"response_format": "scalar", "formulas": [{"formula": "disk * 100"}],
             "queries": [{"data_source": "metrics", "name": "disk", "query": f"max:bench.disk.in_use{f}",
                          "aggregator": "last"}]}]}}]}},
]
st, dash = req("POST", "/api/v1/dashboard", {"title": f"UI bench {run}", "layout_type": "ordered", "widgets": widgets})
assert st == 200, (st, dash)
st, empty = req("POST", "/api/v1/dashboard", {"title": f"UI bench empty {run}", "layout_type": "ordered", "widgets": []})
assert st == 200, (st, empty)

def search_count(q):
    _, a = req("POST", "/api/v2/logs/events/search",
               {"filter": {"query": q, "from": "now-1h", "to": "now"}, "page": {"limit": 1000}, "sort": "-timestamp"})
    return len(a["data"])

def series(q):
    t = int(time.time())
    with urllib.request.urlopen(base + "/api/v1/query?" + urllib.parse.urlencode(
            {"from": t - 3600, "to": t + 60, "query": q}), timeout=30) as r:
        return json.loads(r.read())["series"]

waits = {"logs": wait("1,000 logs", lambda: search_count(f"run:{run}") == 1000)}
waits["error_logs"] = wait("error logs", lambda: search_count(f"run:{run} status:error") > 0)
for q in (f"avg:bench.cpu.user{f} by {{host}}", f"avg:bench.load.1{f} by {{host}}",
          f"sum:bench.net.bytes_sent{f} by {{host}}", f"avg:bench.mem.used{f} by {{host}}"):
    waits[q] = wait(q, lambda q=q: len(series(q)) == len(hosts))
waits["disk"] = wait("disk", lambda: len(series(f"max:bench.disk.in_use{f}")) == 1)
waits["latency"] = wait("distribution", lambda: len(series(f"p90:bench.request.latency{f}")) == 1)
print(json.dumps({"run": run, "query": f"run:{run}", "dashboard_id": dash["id"], "empty_dashboard_id": empty["id"],
                  "logs": len(logs), "statsd_lines": len(lines), "top_level_widgets": len(widgets),
                  "widget_cards": len(widgets) + 1, "wait_s": waits}))
EOF
RUN_ID="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run"])' "$OUT/planted.json")"
log "planted: $(cat "$OUT/planted.json")"

# ---- browser ------------------------------------------------------------------------------------------
python3 - "$OUT/planted.json" "http://$HTTP" "$RUNS" "$TIMEOUT_MS" >"$OUT/spec.json" <<'EOF'
import json, sys, urllib.parse
d = json.load(open(sys.argv[1]))
q = urllib.parse.quote(d["query"])
print(json.dumps({"base": sys.argv[2], "runs": int(sys.argv[3]), "timeoutMs": int(sys.argv[4]), "pages": [
    {"name": "shell", "path": "/", "kind": "shell"},
    {"name": "logs-empty", "path": f"/logs?query={q}%20nomatch{d['run']}&limit=1000", "kind": "logs-empty"},
    {"name": "dashboard-empty", "path": f"/dashboards/{d['empty_dashboard_id']}", "kind": "dashboard-empty"},
    {"name": "logs", "path": f"/logs?query={q}&limit=1000", "kind": "logs", "expect": {"rows": d["logs"]}},
    {"name": "dashboard", "path": f"/dashboards/{d['dashboard_id']}", "kind": "dashboard",
     "expect": {"widgets": d["widget_cards"], "charts": 3, "values": 3, "toplistRows": 5, "logRows": 1,
                "heatmaps": 1}},
]}))
EOF
log "measuring in $CHROMIUM: $RUNS cold + $RUNS warm visits per page"
read -r RUSTC1 CARGO1 LOAD1 <<<"$(others)"
T0="$(date -u '+%Y-%m-%d %H:%M')"
# Every 2 s while the browser runs: rustc processes, other sightline servers (tests or benchmarks), the
# 1-min load average.
(
  while :; do
    echo "$(pgrep -c -x rustc || true) $(($(pgrep -c -x sightline || true) - 1)) $(cut -d' ' -f1 /proc/loadavg)"
    sleep 2
  done
) >"$OUT/machine.txt" 2>/dev/null &
SAMPLER=$!
node "$ROOT/bench/ui/render.mjs" "$OUT/spec.json" >"$OUT/raw.json" 2>"$OUT/render.log"
RC=$?
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
SAMPLER=""
[ "$RC" = 0 ] || { tail -20 "$OUT/render.log" >&2; log "render.mjs failed"; exit 1; }
T1="$(date -u '+%H:%M')"
read -r RUSTC2 CARGO2 LOAD2 <<<"$(others)"
cleanup

# ---- report -------------------------------------------------------------------------------------------
python3 - "$OUT/raw.json" "$OUT/planted.json" "$ROOT/bench/RESULTS.md" "$WRITE" "$T0" "$T1" "$QUICK" "$PROFILE" \
  "$RUSTC1 $CARGO1 $LOAD1" "$RUSTC2 $CARGO2 $LOAD2" "$(nproc)" "$OUT" "$OUT/machine.txt" <<'EOF'
import json, re, sys
raw_p, planted_p, results_md, write, t0, t1, quick, profile, oth1, oth2, ncpu, out, machine = sys.argv[1:]
samples = []
for l in open(machine):
    try:
        r, sv, la = l.split()
        samples.append((int(r), int(sv), float(la)))
    except ValueError:
        pass
raw = json.load(open(raw_p))
planted = json.load(open(planted_p))
TARGET = 1000.0

def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)

summary = {}
for name, pg in raw["pages"].items():
    s = {"path": pg["path"]}
    for mode in ("cold", "warm"):
        vs = pg[mode]
        done = [v["ms"] for v in vs if v.get("done")]
        m = {"runs": len(vs), "done": len(done), "median_ms": pct(done, 50), "p90_ms": pct(done, 90)}
        if name == "logs":
            m["rows_reached"] = max((v.get("rows") or 0) for v in vs) if vs else 0
            m["row_count_attribute"] = any((v.get("detail") or {}).get("rowCountAttribute") for v in vs)
            m["first_row_median_ms"] = pct([v["firstRowMs"] for v in vs if v.get("firstRowMs") is not None], 50)
            m["rows_reached_median_ms"] = pct([v["rowsMs"] for v in vs if v.get("rowsMs") is not None], 50)
        if name == "dashboard" and len(done) < len(vs):
            m["not_done_detail"] = next((v.get("detail") for v in vs if not v.get("done")), None)
        m["load_event_median_ms"] = pct([v["nav"]["load"] for v in vs if v.get("nav")], 50)
        m["asset_bytes_median"] = pct([v.get("assetBytes", 0) for v in vs], 50)
        errs = sorted({e for v in vs for e in (v.get("errors") or []) + (v.get("failedRequests") or [])})
        if errs:
            m["errors"] = errs[:5]
        s[mode] = m
    summary[name] = s

def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b

pairs = {"logs": ("logs-empty", "shell"), "dashboard": ("dashboard-empty", "shell")}
for name, (empty, shell) in pairs.items():
    for mode in ("cold", "warm"):
        m = summary[name][mode]
        m["vs_target"] = ratio(m["median_ms"], TARGET)
        m["p90_vs_target"] = ratio(m["p90_ms"], TARGET)
        m["vs_same_page_empty"] = ratio(m["median_ms"], summary[empty][mode]["median_ms"])
        m["data_cost_ms"] = None if m["median_ms"] is None or summary[empty][mode]["median_ms"] is None else \
            m["median_ms"] - summary[empty][mode]["median_ms"]
        m["vs_shell"] = ratio(m["median_ms"], summary[shell][mode]["median_ms"])

o1, o2 = oth1.split(), oth2.split()
max_rustc = max([int(o1[0]), int(o2[0])] + [s[0] for s in samples])
max_servers = max([0] + [s[1] for s in samples])
busy = max_rustc > 0
loads = [s[2] for s in samples] or [float(o1[2])]
env = {"date_utc": f"{t0}–{t1}", "browser": raw["browser"], "runs_per_page": raw["runs"], "profile": profile,
       "quick": quick == "1", "nproc": int(ncpu),
       "other_builds_running": busy, "rustc_processes_max": max_rustc,
       "other_sightline_servers_max": max_servers, "loadavg_1m_start_max_end": [float(o1[2]), max(loads), float(o2[2])],
       "machine_samples": len(samples)}
result = {"measurement": "ui_first_render", **env, "planted": {k: planted[k] for k in
          ("run", "logs", "statsd_lines", "top_level_widgets", "widget_cards", "dashboard_id")},
          "target_ms": TARGET, "pages": summary, "out": out}

f = lambda x, d=0: "-" if x is None else f"{x:,.{d}f}"
rows = []
rows.append("| page | what is waited for | cold median / p90 ms | warm median / p90 ms | cold vs 1,000 ms target (median / p90) | warm vs target | data cost vs same page empty (cold / warm, ms) | done / runs |")
rows.append("|---|---|---|---|---|---|---|---|")
what = {"shell": "`/`: the app's nav bar (index.html + CSS + JS, no data)",
        "logs-empty": "`/logs?query=<no match>`: the summary \"No logs match\" (same route, empty answer)",
        "dashboard-empty": "`/dashboards/<empty>`: title shown, nothing loading (no widgets)",
        "logs": "`/logs?query=run:<id>&limit=1000`: `log-list[data-row-count=1000]` + first `log-row` painted",
        "dashboard": f"`/dashboards/<id>`: all {planted['widget_cards']} widget cards loaded, 3 charts with series, heatmap cells painted, 3 values, toplist, log stream"}
for name in ("shell", "logs-empty", "dashboard-empty", "logs", "dashboard"):
    s = summary[name]
    c, w = s["cold"], s["warm"]
    if name in pairs:
        tgt = lambda m: f"{f(m['vs_target'], 2)}x / {f(m['p90_vs_target'], 2)}x " + \
            ("ok" if m["p90_ms"] is not None and m["p90_ms"] <= TARGET and m["done"] == m["runs"] else "MISS")
        cost = f"{f(c['data_cost_ms'])} / {f(w['data_cost_ms'])}"
        tc, tw = tgt(c), tgt(w)
    else:
        tc = tw = cost = "(baseline)"
    doneruns = f"{c['done']}/{c['runs']} cold, {w['done']}/{w['runs']} warm"
    rows.append(f"| {name} | {what[name]} | {f(c['median_ms'])} / {f(c['p90_ms'])} | {f(w['median_ms'])} / {f(w['p90_ms'])} | {tc} | {tw} | {cost} | {doneruns} |")
lc = summary["logs"]["cold"]
notes = []
if lc["done"] < lc["runs"] or not lc["row_count_attribute"]:
    notes.append(f"**/logs did not reach 1,000 rows** within {raw['timeoutMs']} ms: rows reached {lc['rows_reached']} "
                 f"({'with' if lc['row_count_attribute'] else 'without'} `data-row-count`; counted as `log-row` elements otherwise), "
                 f"the list showing them after a median of {f(lc['rows_reached_median_ms'])} ms cold / "
                 f"{f(summary['logs']['warm']['rows_reached_median_ms'])} ms warm (first row {f(lc['first_row_median_ms'])} ms cold). "
                 "The row-count-reached figures stand in until the 1,000-row list lands.")
for name in summary:
    for mode in ("cold", "warm"):
        if summary[name][mode].get("errors"):
            notes.append(f"{name} {mode}: errors/failed requests: {summary[name][mode]['errors']}")
        if summary[name][mode].get("not_done_detail"):
            notes.append(f"{name} {mode}: a visit not done: {summary[name][mode]['not_done_detail']}")
table = "\n".join(rows)
print("\n" + table + "\n")
for n in notes:
    print("- " + n)
print(json.dumps(result))

if write == "1":
    sec = [f"# Web UI first render (issue #6)", "",
           f"`bash bench/ui.sh` ({'--quick, ' if quick == '1' else ''}{profile} build), {t0}–{t1} UTC, {raw['browser'] and 'Chromium ' + raw['browser']} headless "
           f"(Debian package, playwright-core {json.load(open('tests/e2e/browser/node_modules/playwright-core/package.json'))['version']}), "
           f"{raw['runs']} cold + {raw['runs']} warm visits per page, {ncpu} CPUs. Other builds running during the measurement: "
           f"{'**yes**' if busy else 'no'} (rustc processes sampled every 2 s: at most {max_rustc}); other Sightline servers "
           f"(tests or benchmarks, each with its own browser) running: {'**yes**, up to ' + str(max_servers) if max_servers else 'no'}; "
           f"1-min load average {o1[2]} at the start, {max(loads)} at most, {o2[2]} at the end. "
           f"Server and browser on the same machine, unpinned; the server's caches are warm after the first visit in both modes "
           f"(cold/warm is the browser's cache: a fresh context per cold visit). Data: {planted['logs']:,} logs (Datadog log intake), "
           f"{planted['statsd_lines']:,} DogStatsD lines for 5 hosts, a dashboard of {planted['top_level_widgets']} widgets "
           f"({planted['widget_cards']} cards with the group's child). Times are from navigation start to the first animation "
           "frame in which the condition holds (see bench/README.md).", "", table, ""]
    sec += ["- " + n for n in notes]
    sec += ["", "<details><summary>JSON</summary>", "", "```json", json.dumps(result), "```", "", "</details>", ""]
    text = open(results_md).read()
    block = "\n".join(sec)
    m = re.search(r"^# Web UI first render \(issue #6\)\n.*?(?=^# |\Z)", text, flags=re.S | re.M)
    text = text[:m.start()] + block + "\n" + text[m.end():] if m else text.rstrip("\n") + "\n\n" + block
    open(results_md, "w").write(text)
    print(f"[ui-bench] wrote the section 'Web UI first render (issue #6)' of {results_md}", file=sys.stderr)
EOF
log "done: raw visits in $OUT/raw.json"

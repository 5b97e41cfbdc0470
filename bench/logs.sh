# Sightline's logs benchmark: `bash bench/logs.sh [--quick]` (also run at the end of `bash bench/run.sh`).
# Writes a deterministic corpus (JSON lines + plain text lines, 100-300 bytes), indexes it with raw tantivy (the
# Python package, one thread) as the baseline, ingests it into `sightline serve` over HTTP (`POST /api/v2/logs`)
# and over TCP (raw lines on the syslog port) with the server pinned to core 0 and the load on core 1,
# measuring MB per server CPU-second, wall MB/s, searchability delay, on-disk bytes and RSS; then search latency
# of the same queries through Sightline's HTTP API, raw tantivy and `grep -c`. One JSON object per measurement
# (stdout and <out>/logs/results.jsonl), then the tables. See bench/README.md, "Logs benchmark".
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bash bench/logs.sh [--quick] [--debug]
  --quick   200k lines (instead of 10M) and fewer repeats: checks that every piece works (a couple of minutes)
  --debug   use the debug build (only for testing this script; figures are meaningless)
env: LOG_LINES (corpus lines, half JSON half plain; 10000000, --quick 200000), LOG_TCP_CONNS (4),
     LOG_HTTP_CLIENTS (4), LOG_HTTP_BATCH (1000), LOG_SEARCH_RUNS (50), LOG_GREP_RUNS (3; --quick 2),
     BENCH_OUT (output dir), SERVER_CPU (0), LOAD_CPU (1)
EOF
}

# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
if [ "$QUICK" = 1 ]; then
  LINES="${LOG_LINES:-200000}"
  GREP_RUNS="${LOG_GREP_RUNS:-2}"
else
  LINES="${LOG_LINES:-10000000}"
  GREP_RUNS="${LOG_GREP_RUNS:-3}"
fi
CONNS="${LOG_TCP_CONNS:-4}"
CLIENTS="${LOG_HTTP_CLIENTS:-4}"
BATCH="${LOG_HTTP_BATCH:-1000}"
SEARCH_RUNS="${LOG_SEARCH_RUNS:-50}"
OUT_BASE="${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/sightline-bench.XXXXXX")}"
OUT="$OUT_BASE/logs"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
VENV="$ROOT/bench/.venv"
PY="$VENV/bin/python"
LB="$ROOT/bench/logbench"

log() { echo "[logs-bench $(date -u +%H:%M:%S)] $*" >&2; }
emit() { # one JSON object per line on stdin -> results file and stdout
  local l
  while IFS= read -r l; do
    [ -n "$l" ] || continue
    echo "$l" >>"$RESULTS"
    echo "$l"
  done
}

# ---- cleanup: every process started here is stopped -------------------------------------------------
PIDS=()
stop_pid() {
  local pid="$1" i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop on SIGTERM within 10 s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  return 0
}
cleanup() {
  local p
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  PIDS=()
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# ---- build and Python environment -------------------------------------------------------------------
PROFILE_FLAG=()
[ "$PROFILE" = release ] && PROFILE_FLAG=(--release)
log "building $PROFILE (log-loadgen, sightline) into $CARGO_TARGET_DIR"
cargo build "${PROFILE_FLAG[@]}" -p sightline-bench --bin log-loadgen || { log "cannot build log-loadgen"; exit 1; }
cargo build "${PROFILE_FLAG[@]}" --bin sightline || { log "cannot build the sightline server"; exit 1; }
if ! "$VENV/bin/pip" freeze 2>/dev/null | grep -qx 'tantivy==0.25.1'; then
  log "installing bench/requirements.txt into bench/.venv"
  { [ -x "$PY" ] || python3 -m venv "$VENV"; } && "$VENV/bin/pip" install -q -r "$ROOT/bench/requirements.txt" ||
    { log "cannot set up bench/.venv (python3 -m venv, pip install -r bench/requirements.txt)"; exit 1; }
fi

# ---- helpers over /proc -------------------------------------------------------------------------------
TCK="$(getconf CLK_TCK)"
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
du_b() { if [ -e "$1" ]; then du -sb "$1" | awk '{print $1}'; else echo 0; fi; }
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$@"; }
prom_sum() { # sum of a Prometheus counter (all label sets) from a /metrics text
  awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $NF; f = 1} END {if (f) printf "%.0f\n", s; else print "null"}' "$1" 2>/dev/null
}
wait_idle() { # until the process used <= 2 ticks in a second (merges, commits done), at most $2 s; prints the wait
  local pid="$1" max="$2" a b t0 i
  t0="$(date +%s.%N)"
  a="$(cpu_ticks "$pid")"
  for i in $(seq 1 "$max"); do
    sleep 1
    b="$(cpu_ticks "$pid")"
    [ -n "$b" ] || break
    [ $((b - a)) -le 2 ] && break
    a="$b"
  done
  python3 -c "import sys,time; print(round(time.time() - float(sys.argv[1]), 1))" "$t0"
}

# ---- corpus -------------------------------------------------------------------------------------------
N_JSON=$((LINES / 2))
N_PLAIN=$((LINES - N_JSON))
# JSON lines carry timestamps from yesterday 01:00 UTC on (one daily partition; plain lines get their
# ingestion time, i.e. today's partition), so each flavour's on-disk size is its own.
START_MS=$((($(date +%s) / 86400 - 1) * 86400000 + 3600000))
log "output in $OUT; server on CPU $SERVER_CPU, load on CPU $LOAD_CPU; corpus $N_JSON JSON + $N_PLAIN plain lines"
taskset -c "$LOAD_CPU" "$BIN/log-loadgen" gen --flavour json --lines "$N_JSON" --start-ms "$START_MS" \
  --out "$OUT/corpus-json.log" >"$OUT/corpus-json.json" || { log "corpus generation failed"; exit 1; }
taskset -c "$LOAD_CPU" "$BIN/log-loadgen" gen --flavour plain --lines "$N_PLAIN" --start-ms "$START_MS" \
  --out "$OUT/corpus-plain.log" >"$OUT/corpus-plain.json" || { log "corpus generation failed"; exit 1; }
for f in json plain; do
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["measurement"]="corpus"; print(json.dumps(d))' \
    "$OUT/corpus-$f.json" | emit
done

# ---- baseline: raw tantivy, one thread, pinned like the server ------------------------------------------
log "tantivy-py baseline (one indexing thread, 64 MB heap) on CPU $SERVER_CPU"
rm -rf "$OUT/tantivy-index"
taskset -c "$SERVER_CPU" "$PY" "$LB/tantivy_baseline.py" --index "$OUT/tantivy-index" \
  --json "$OUT/corpus-json.log" --plain "$OUT/corpus-plain.log" --heap 64000000 2>"$OUT/tantivy.log" |
  python3 -c 'import json,sys
for l in sys.stdin:
    d=json.loads(l); d["measurement"]="ingest"; print(json.dumps(d), flush=True)' | emit
[ "${PIPESTATUS[0]}" = 0 ] || log "tantivy baseline failed (see $OUT/tantivy.log)"

# ---- Sightline ingest --------------------------------------------------------------------------------
SPID="" HTTP_ADDR="" SYSLOG_ADDR=""
start_server() { # dir
  local data="$1/data" i
  mkdir -p "$data"
  taskset -c "$SERVER_CPU" "$BIN/sightline" serve --data-dir "$data" --http-listen 127.0.0.1:0 \
    --statsd-listen off --otlp-grpc-listen off --otlp-http-listen off --syslog-listen 127.0.0.1:0 \
    >"$1/sightline.log" 2>&1 &
  SPID=$!
  PIDS+=("$SPID")
  for i in $(seq 1 600); do
    [ -s "$data/listeners.json" ] && break
    kill -0 "$SPID" 2>/dev/null || { log "sightline exited at start (see $1/sightline.log)"; return 1; }
    sleep 0.1
  done
  [ -s "$data/listeners.json" ] || { log "sightline not ready within 60 s"; return 1; }
  HTTP_ADDR="$(jget "$data/listeners.json" 'd["http"]')"
  SYSLOG_ADDR="$(jget "$data/listeners.json" 'd["syslog"]')"
}

ingest_one() { # transport flavour dir
  local tr="$1" fl="$2" dir="$3" data="$3/data" file="$OUT/corpus-$2.log"
  local cpu0 cpu1 rss0 rss1 parts0 parts1 wal1 idle rc
  log "== ingest over $tr: $fl lines"
  curl -sf "http://$HTTP_ADDR/metrics" >"$dir/metrics-before-$fl.txt"
  rss0="$(rss_kb "$SPID")"
  parts0="$(du_b "$data/logs/parts")"
  cpu0="$(cpu_ticks "$SPID")"
  if [ "$tr" = tcp ]; then
    taskset -c "$LOAD_CPU" "$BIN/log-loadgen" tcp --target "$SYSLOG_ADDR" --http "$HTTP_ADDR" --file "$file" \
      --conns "$CONNS" >"$dir/loadgen-$fl.json" 2>"$dir/loadgen-$fl.log"
  else
    local fmt=json
    [ "$fl" = plain ] && fmt=text
    taskset -c "$LOAD_CPU" "$BIN/log-loadgen" http --target "$HTTP_ADDR" --file "$file" --clients "$CLIENTS" \
      --batch "$BATCH" --format "$fmt" >"$dir/loadgen-$fl.json" 2>"$dir/loadgen-$fl.log"
  fi
  rc=$?
  idle="$(wait_idle "$SPID" 120)"
  cpu1="$(cpu_ticks "$SPID")"
  rss1="$(rss_kb "$SPID")"
  parts1="$(du_b "$data/logs/parts")"
  wal1="$(du_b "$data/logs/wal")"
  curl -sf "http://$HTTP_ADDR/metrics" >"$dir/metrics-after-$fl.txt"
  if [ "$rc" != 0 ] || ! kill -0 "$SPID" 2>/dev/null; then
    log "ingest $tr/$fl failed: $(tail -3 "$dir/loadgen-$fl.log") (server log: $dir/sightline.log)"
    python3 -c 'import json,sys; print(json.dumps({"measurement": "ingest", "system": "sightline", "transport": sys.argv[1], "phase": sys.argv[2], "error": sys.argv[3]}))' \
      "$tr" "$fl" "$(tail -3 "$dir/loadgen-$fl.log")" | emit
    return 1
  fi
  python3 - "$tr" "$fl" "$dir/loadgen-$fl.json" "$cpu0" "$cpu1" "$TCK" "$rss0" "$rss1" "$parts0" "$parts1" "$wal1" \
    "$idle" "$(prom_sum "$dir/metrics-before-$fl.txt" sightline_logs_received_total)" \
    "$(prom_sum "$dir/metrics-after-$fl.txt" sightline_logs_received_total)" \
    "$(prom_sum "$dir/metrics-before-$fl.txt" sightline_logs_dropped_total)" \
    "$(prom_sum "$dir/metrics-after-$fl.txt" sightline_logs_dropped_total)" \
    "$(prom_sum "$dir/metrics-before-$fl.txt" sightline_logs_unparsed_total)" \
    "$(prom_sum "$dir/metrics-after-$fl.txt" sightline_logs_unparsed_total)" "$data/logs/parts" <<'EOF' | emit
import json, sys
(tr, fl, lg, cpu0, cpu1, tck, rss0, rss1, p0, p1, wal, idle, rec0, rec1, dr0, dr1, un0, un1, parts) = sys.argv[1:]
import os
by_ext = {}
for root, _, files in os.walk(parts):
    for fn in files:
        ext = fn.rsplit(".", 1)[-1] if "." in fn else fn
        by_ext[ext] = by_ext.get(ext, 0) + os.path.getsize(os.path.join(root, fn))
g = json.load(open(lg))
num = lambda s: None if s in ("", "null") else int(s)
# A labelled counter family that was never incremented is absent from /metrics: 0.
delta = lambda a, b: (num(b) or 0) - (num(a) or 0)
cpu = (int(cpu1) - int(cpu0)) / int(tck)
b = g["bytes"]
r = {"measurement": "ingest", "system": "sightline", "transport": tr, "phase": fl, "lines": g["lines"], "bytes": b,
     "cpu_s": cpu, "mb_per_cpu_s": b / 1e6 / cpu if cpu > 0 else None,
     "wall_mb_s_to_ack": b / 1e6 / g["acked_s"], "wall_mb_s_to_searchable": b / 1e6 / g["searchable_s"],
     "acked_s": g["acked_s"], "searchable_after_ack_s": g["searchable_after_ack_s"],
     "searchable_after_sent_s": g["searchable_after_sent_s"], "idle_wait_s": float(idle),
     "parts_bytes": int(p1) - int(p0), "parts_bytes_per_raw_byte": (int(p1) - int(p0)) / b,
     "wal_bytes_after": int(wal), "parts_bytes_by_file_type_cumulative": by_ext, "rss_idle_kb": num(rss0), "rss_after_kb": num(rss1),
     "received_records": delta(rec0, rec1), "dropped_records": delta(dr0, dr1), "unparsed_lines": delta(un0, un1),
     "connections": g.get("connections", g.get("clients")), "http_requests": g.get("requests"),
     "http_503_retries": g.get("retries_503")}
print(json.dumps(r))
EOF
}

for tr in http tcp; do
  dir="$OUT/sightline-$tr"
  mkdir -p "$dir"
  log "== sightline, $tr intake (fresh data dir $dir/data)"
  if ! start_server "$dir"; then
    python3 -c 'import json,sys; print(json.dumps({"measurement": "ingest", "system": "sightline", "transport": sys.argv[1], "error": "server did not start"}))' "$tr" | emit
    continue
  fi
  sleep 1
  ingest_one "$tr" json "$dir"
  ingest_one "$tr" plain "$dir"
  if [ "$tr" != tcp ]; then stop_pid "$SPID"; fi
done

# ---- search latency (on the TCP server, which holds the whole corpus) -----------------------------------
QF="$OUT/queries.json"
"$PY" "$LB/search_latency.py" queries --json-stats "$OUT/corpus-json.json" --json-file "$OUT/corpus-json.log" \
  --plain-file "$OUT/corpus-plain.log" >"$QF"
tag() { python3 -c 'import json,sys
for l in sys.stdin:
    d=json.loads(l); d["measurement"]="search"; print(json.dumps(d), flush=True)'; }
if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
  log "== search latency: sightline HTTP API ($SEARCH_RUNS runs per query; client on CPU $LOAD_CPU)"
  total="$(curl -sf -X POST "http://$HTTP_ADDR/api/v2/logs/analytics/aggregate" -H 'Content-Type: application/json' \
    -d "{\"filter\":{\"query\":\"*\",\"from\":\"$((START_MS - 86400000))\",\"to\":\"$(($(date +%s) * 1000 + 3600000))\"},\"compute\":[{\"aggregation\":\"count\",\"type\":\"total\"}]}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["buckets"][0]["computes"]["c0"])' 2>/dev/null)"
  python3 -c 'import json,sys; print(json.dumps({"measurement": "stored_total", "system": "sightline", "count": None if not sys.argv[1] else int(float(sys.argv[1])), "expected": int(sys.argv[2])}))' \
    "$total" "$LINES" | emit
  taskset -c "$LOAD_CPU" "$PY" "$LB/search_latency.py" sightline --http "$HTTP_ADDR" --queries "$QF" \
    --runs "$SEARCH_RUNS" 2>"$OUT/search-sightline.log" | tag | emit
  stop_pid "$SPID"
else
  log "no sightline server with the corpus: its search rows are skipped"
fi
log "== search latency: raw tantivy ($SEARCH_RUNS runs per query, CPU $SERVER_CPU)"
taskset -c "$SERVER_CPU" "$PY" "$LB/search_latency.py" tantivy --index "$OUT/tantivy-index" --queries "$QF" \
  --runs "$SEARCH_RUNS" 2>"$OUT/search-tantivy.log" | tag | emit
log "== search: grep -c over the raw files ($GREP_RUNS runs per query, CPU $SERVER_CPU)"
cat "$OUT/corpus-json.log" "$OUT/corpus-plain.log" >/dev/null # page cache, as for the others
taskset -c "$SERVER_CPU" "$PY" "$LB/search_latency.py" grep --queries "$QF" --runs "$GREP_RUNS" \
  2>"$OUT/search-grep.log" | tag | emit
cleanup

# ---- tables -------------------------------------------------------------------------------------------
python3 - "$RESULTS" "$QF" <<'EOF' | tee "$OUT/table.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
qs = {q["name"]: q for q in json.load(open(sys.argv[2]))["queries"]}
f = lambda x, d=2: "-" if x is None else f"{x:,.{d}f}"
ing = [r for r in rows if r["measurement"] == "ingest"]
tv = {r["phase"]: r for r in ing if r["system"] == "tantivy-py" and "error" not in r}
total_lines = sum(r["lines"] for r in rows if r["measurement"] == "corpus")
print("\n## Logs: ingest + index (server pinned to one core)\n")
print("| system | transport | lines | raw MB | server CPU-s | MB per server CPU-s (target >= 20) | vs tantivy-py | wall MB/s (to ack) | searchable after ack (target <= 2 s) | on disk / raw (target <= 0.35) | WAL MB after | RSS MiB after | records received / dropped / unparsed |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in ing:
    if "error" in r:
        print(f"| {r['system']} | {r.get('transport', '-')} {r.get('phase', '')} | error: {r['error']} |||||||||||")
        continue
    if r["system"] == "tantivy-py":
        extra = f" (merge wait {r['merge_wait_cpu_s']:.2f} s)" if r["phase"] == "total" else ""
        disk = f(r.get("index_bytes_per_raw_byte"), 3)
        print(f"| tantivy-py | {r['phase']} (file) | {r['lines']:,} | {r['bytes']/1e6:,.1f} | {r['cpu_s']:.2f}{extra} | {f(r['mb_per_cpu_s'])} | 1.00x | {f(r['wall_mb_s'])} | - | {disk} | - | - | - |")
        continue
    mbc = r["mb_per_cpu_s"]
    base = tv.get(r["phase"])
    vs = f"{mbc / base['mb_per_cpu_s']:.2f}x" if base and mbc and base["mb_per_cpu_s"] else "-"
    ok = lambda c: "ok" if c else "MISS"
    tgt = f" {ok(mbc is not None and mbc >= 20)}" + ("" if mbc is None or mbc >= 20 else f" ({mbc/20:.2f}x of target)")
    sa = r["searchable_after_ack_s"]
    disk = r["parts_bytes_per_raw_byte"]
    counts = f"{f(r['received_records'], 0)} / {f(r['dropped_records'], 0)} / {f(r['unparsed_lines'], 0)}"
    print(f"| sightline | {r['transport']} {r['phase']} | {r['lines']:,} | {r['bytes']/1e6:,.1f} | {r['cpu_s']:.2f} | {f(mbc)}{tgt} | {vs} | "
          f"{f(r['wall_mb_s_to_ack'])} | {sa:.3f} s {ok(sa <= 2)} | {disk:.3f} {ok(disk <= 0.35)} | {r['wal_bytes_after']/2**20:,.1f} | "
          f"{(r['rss_after_kb'] or 0)/1024:,.1f} | {counts} |")
st = [r for r in rows if r["measurement"] == "stored_total"]
if st:
    pass
fl = [r for r in rows if r["measurement"] == "search" and r.get("query") == "http_floor"]
if fl:
    print(f"\nHTTP floor (a search whose time range holds no partition, same client): p50 {fl[0]['p50_ms']:.3f} ms, p99 {fl[0]['p99_ms']:.3f} ms")
if st:
    print(f"\nstored records (aggregate count `*`, TCP server after both files): {st[0]['count']} of {st[0]['expected']:,}")
print(f"\n## Logs: search latency on {total_lines:,} lines (page of 50, newest first)\n")
print("| query | what | matches sightline / tantivy / grep | sightline p50 / p99 ms | tantivy search p50 / p99 ms | tantivy search+fetch p50 ms | grep -c ms | sightline / tantivy (p50) | grep / sightline (p50) | targets (selective: p50 <= 5, p99 <= 50; <= 1.5x tantivy; >= 100x grep) |")
print("|---|---|---|---|---|---|---|---|---|---|")
by = {}
for r in rows:
    if r["measurement"] == "search":
        by.setdefault(r["query"], {})[r["system"]] = r
for name, q in qs.items():
    s, t, g = (by.get(name, {}).get(k) for k in ("sightline", "tantivy-py", "grep"))
    if s and "error" in s:
        print(f"| {name} | {q['what']} | sightline error: {s['error'][:120]} ||||||||")
        s = None
    cnt = " / ".join("-" if x is None else f"{x['count']:,}" for x in (s, t, g))
    frac = (t or g or {}).get("count", 0) / total_lines if total_lines else 1
    selective = q.get("selective", False)
    notes = []
    if s:
        if selective:
            notes.append(("ok" if s["p50_ms"] <= 5 and s["p99_ms"] <= 50 else "MISS") + " latency")
        else:
            notes.append(f"not selective ({100*frac:.1f}% of lines), p50 {'<=' if s['p50_ms'] <= 5 else '>'} 5")
    rt = s["p50_ms"] / t["p50_ms"] if s and t and t["p50_ms"] else None
    rg = g["p50_ms"] / s["p50_ms"] if s and g and s["p50_ms"] else None
    if rt is not None:
        notes.append(("ok" if rt <= 1.5 else "MISS") + " vs tantivy")
    if rg is not None:
        notes.append(("ok" if rg >= 100 else "MISS") + " vs grep")
    if s and g and t and not (s["count"] == t["count"] == g["count"]):
        notes.append("COUNTS DIFFER")
    print(f"| {name} | {q['what']} | {cnt} | {f(s and s['p50_ms'])} / {f(s and s['p99_ms'])} | {f(t and t['p50_ms'], 3)} / {f(t and t['p99_ms'], 3)} | "
          f"{f(t and t['fetch_p50_ms'], 3)} | {f(g and g['p50_ms'], 1)} | {f(rt)}x | {f(rg, 1)}x | {', '.join(notes)} |")
EOF
log "done: raw results in $RESULTS, table in $OUT/table.txt"

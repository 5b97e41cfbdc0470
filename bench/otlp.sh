# Sightline's OTLP trace benchmark (issue #4): `bash bench/otlp.sh [--quick]` (also run at the end of
# `bash bench/run.sh` with OTLP=1). For gRPC and HTTP, gzip off and on, sends pre-encoded 512-span requests
# (20 attributes per span) with `otlp-loadgen` pinned to core 1 to `sightline serve` pinned to core 0: flat out
# against the decode-only receiver (`[otlp] decode_only = true`, the ceiling) and the real one (spans durable =
# acknowledged after the WAL write) -> spans per server CPU-second and their ratio; then at 50% of the measured
# maximum -> export latency. Then loads 10M unique spans (500k with --quick) into a fresh server for bytes on
# disk per span vs the protobuf size and trace-by-id latency through the HTTP API, also after a restart.
# One JSON object per measurement (stdout and <out>/otlp/results.jsonl), then the table. See bench/README.md,
# "OTLP benchmark".
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bash bench/otlp.sh [--quick] [--debug]
  --quick   4 s runs and 500k spans for the disk / trace-by-id part: checks that every piece works (~3 min)
  --debug   use the debug build (only for testing this script; figures are meaningless)
env: OTLP_DURATION (s per run; 15, --quick 4), OTLP_CONCURRENCY (requests in flight flat out; 8),
     OTLP_RATE_CONCURRENCY (most in flight at 50% load; 8), OTLP_GRPC_CONNECTIONS (1), OTLP_POOL (distinct
     requests; 64), OTLP_COMBOS ("grpc:plain grpc:gzip http:plain http:gzip"), OTLP_STORE_SPANS (10000000,
     --quick 500000), OTLP_LOOKUP_IDS (200), OTLP_LOOKUP_REPEATS (5), OTLP_FLUSH_SECS (span store flush
     interval in every run; 5), OTLP_KEEP_DATA (1 keeps the data directories; 0), BENCH_OUT, SERVER_CPU (0),
     LOAD_CPU (1)
EOF
}

# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
if [ "$QUICK" = 1 ]; then
  DURATION="${OTLP_DURATION:-4}"
  STORE_SPANS="${OTLP_STORE_SPANS:-500000}"
else
  DURATION="${OTLP_DURATION:-15}"
  STORE_SPANS="${OTLP_STORE_SPANS:-10000000}"
fi
CONC="${OTLP_CONCURRENCY:-8}"
RATE_CONC="${OTLP_RATE_CONCURRENCY:-8}"
GRPC_CONNS="${OTLP_GRPC_CONNECTIONS:-1}"
POOL="${OTLP_POOL:-64}"
COMBOS="${OTLP_COMBOS:-grpc:plain grpc:gzip http:plain http:gzip}"
LOOKUP_IDS="${OTLP_LOOKUP_IDS:-200}"
LOOKUP_REPEATS="${OTLP_LOOKUP_REPEATS:-5}"
FLUSH_SECS="${OTLP_FLUSH_SECS:-5}"
KEEP_DATA="${OTLP_KEEP_DATA:-0}"
OUT_BASE="${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/sightline-bench.XXXXXX")}"
OUT="$OUT_BASE/otlp"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
LG="$BIN/otlp-loadgen"

log() { echo "[otlp-bench $(date -u +%H:%M:%S)] $*" >&2; }
emit() { # one JSON object per line on stdin -> results file and stdout
  local l
  while IFS= read -r l; do
    [ -n "$l" ] || continue
    echo "$l" >>"$RESULTS"
    echo "$l"
  done
}
jerr() { # measurement, fields as key=value..., error text last
  python3 -c 'import json,sys
d={"measurement": sys.argv[1]}
for kv in sys.argv[2:-1]:
    k,v=kv.split("=",1); d[k]=v
d["error"]=sys.argv[-1]; print(json.dumps(d))' "$@" | emit
}

# ---- cleanup: every process started here is stopped -------------------------------------------------
PIDS=()
stop_pid() {
  local pid="$1" i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop on SIGTERM within 30 s; SIGKILL"
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

# ---- build --------------------------------------------------------------------------------------------
PROFILE_FLAG=()
[ "$PROFILE" = release ] && PROFILE_FLAG=(--release)
log "building $PROFILE (sightline, sightline-bench) into $CARGO_TARGET_DIR"
cargo build "${PROFILE_FLAG[@]}" -p sightline -p sightline-bench || { log "build failed"; exit 1; }

# ---- helpers over /proc -------------------------------------------------------------------------------
TCK="$(getconf CLK_TCK)"
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }
busy_ticks() { # ticks all CPUs spent busy (user, nice, system, irq, softirq, steal)
  awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
du_b() { if [ -e "$1" ]; then du -sb "$1" 2>/dev/null | awk '{print $1}'; else echo 0; fi; }
parquet_b() { # bytes of the Parquet files under a directory
  find "$1" -type f -name '*.parquet' -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'
}
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$@"; }
prom_sum() { # sum of a Prometheus counter over the label sets matching a filter (regex on the labels)
  awk -v n="$2" -v f="${3:-}" '($1 == n || index($1, n "{") == 1) && (f == "" || $1 ~ f) {s += $NF; x = 1}
    END {if (x) printf "%.0f\n", s; else print "null"}' "$1" 2>/dev/null
}
wait_idle() { # until the process used <= 2 ticks in a second, at most $2 s; prints the seconds waited
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

wait_flushed() { # until the span store's head is empty (all in Parquet), at most $1 s; prints the seconds waited
  local max="$1" t0 i v
  t0="$(date +%s.%N)"
  for i in $(seq 1 $((max * 2))); do
    v="$(curl -sf "http://$HTTP_ADDR/metrics" | awk '$1 == "sightline_spans_head_spans" {print $2}')"
    if [ -z "$v" ]; then # no such gauge: one flush interval
      sleep "$FLUSH_SECS"
      break
    fi
    [ "${v%.*}" = 0 ] && break
    sleep 0.5
  done
  python3 -c "import sys,time; print(round(time.time() - float(sys.argv[1]), 1))" "$t0"
}

# ---- the server ---------------------------------------------------------------------------------------
# The span store's flush interval is set low (OTLP_FLUSH_SECS) so that the Parquet flush of what a run wrote
# happens, and is counted, before the run's CPU is read (the head also flushes every 500k spans).
write_config() { # file decode_only(true|false)
  cat >"$1" <<EOF
[otlp]
decode_only = $2

[storage.spans]
flush_interval_secs = $FLUSH_SECS
EOF
}

SPID="" GRPC_ADDR="" OHTTP_ADDR="" HTTP_ADDR="" STARTUP_S=""
start_server() { # dir decode_only
  local dir="$1" data="$1/data" i t0
  mkdir -p "$data"
  write_config "$dir/sightline.toml" "$2"
  rm -f "$data/listeners.json"
  t0="$(date +%s.%N)"
  taskset -c "$SERVER_CPU" "$BIN/sightline" serve --config "$dir/sightline.toml" --data-dir "$data" \
    --http-listen 127.0.0.1:0 --otlp-grpc-listen 127.0.0.1:0 --otlp-http-listen 127.0.0.1:0 \
    --statsd-listen off --syslog-listen off >>"$dir/sightline.log" 2>&1 &
  SPID=$!
  PIDS+=("$SPID")
  for i in $(seq 1 1800); do
    [ -s "$data/listeners.json" ] && break
    kill -0 "$SPID" 2>/dev/null || { log "sightline exited at start (see $dir/sightline.log)"; return 1; }
    sleep 0.1
  done
  [ -s "$data/listeners.json" ] || { log "sightline not ready within 180 s"; return 1; }
  STARTUP_S="$(python3 -c "import sys,time; print(round(time.time() - float(sys.argv[1]), 2))" "$t0")"
  GRPC_ADDR="$(jget "$data/listeners.json" 'd["otlp_grpc"]')"
  OHTTP_ADDR="$(jget "$data/listeners.json" 'd["otlp_http"]')"
  HTTP_ADDR="$(jget "$data/listeners.json" 'd["http"]')"
}
drop_data() { [ "$KEEP_DATA" = 1 ] || rm -rf "$1/data"; }

# ---- one measured load --------------------------------------------------------------------------------
# load_one receiver transport gzip label rate dir: runs the load against the running server (SPID) and emits
# one "ingest" row; sets LAST_SPANS_S (acked spans/s, wall).
LAST_SPANS_S=""
load_one() {
  local rcv="$1" tr="$2" gz="$3" label="$4" rate="$5" dir="$6" data="$6/data"
  local target="$GRPC_ADDR" conc="$CONC" cpu0 cpu1 cpu2 busy0 busy1 rss0 rss1 idle flushwait rc gzflag=()
  [ "$tr" = http ] && target="$OHTTP_ADDR"
  [ "$rate" != 0 ] && conc="$RATE_CONC"
  [ "$gz" = gzip ] && gzflag=(--gzip)
  log "== $rcv, $tr, $gz, $label (rate ${rate} spans/s, 0 = flat out with $conc in flight), ${DURATION}s"
  curl -sf "http://$HTTP_ADDR/metrics" >"$dir/metrics-before-$label.txt"
  rss0="$(rss_kb "$SPID")"
  cpu0="$(cpu_ticks "$SPID")"
  busy0="$(busy_ticks)"
  taskset -c "$LOAD_CPU" "$LG" send --transport "$tr" --target "$target" "${gzflag[@]}" --rate "$rate" \
    --concurrency "$conc" --connections "$GRPC_CONNS" --duration "$DURATION" --pool "$POOL" \
    --run-id "$RANDOM$RANDOM" >"$dir/loadgen-$label.json" 2>"$dir/loadgen-$label.log"
  rc=$?
  cpu1="$(cpu_ticks "$SPID")"
  busy1="$(busy_ticks)"
  # What the load left behind (the head's flush to Parquet) is part of its cost: wait until the head is
  # empty, then until the server is idle.
  flushwait=0
  [ "$rcv" = sightline ] && flushwait="$(wait_flushed $((FLUSH_SECS * 4 + 60)))"
  idle="$(wait_idle "$SPID" 60)"
  cpu2="$(cpu_ticks "$SPID")"
  rss1="$(rss_kb "$SPID")"
  curl -sf "http://$HTTP_ADDR/metrics" >"$dir/metrics-after-$label.txt"
  if [ "$rc" != 0 ] || ! kill -0 "$SPID" 2>/dev/null || ! [ -s "$dir/loadgen-$label.json" ]; then
    log "load $rcv/$tr/$gz/$label failed: $(tail -3 "$dir/loadgen-$label.log") (server log: $dir/sightline.log)"
    jerr ingest "receiver=$rcv" "transport=$tr" "gzip=$gz" "load=$label" \
      "$(tail -3 "$dir/loadgen-$label.log" | tr '\n' ' ') $(kill -0 "$SPID" 2>/dev/null || echo '(server died)')"
    LAST_SPANS_S=""
    return 1
  fi
  python3 - "$rcv" "$tr" "$gz" "$label" "$dir/loadgen-$label.json" "$cpu0" "$cpu1" "$cpu2" "$TCK" "$rss0" "$rss1" \
    "$idle" "$flushwait" "$(du_b "$data/spans")" "$(du_b "$data/spans/wal")" "$(parquet_b "$data/spans")" \
    "$(prom_sum "$dir/metrics-before-$label.txt" sightline_otlp_received_total 'traces')" \
    "$(prom_sum "$dir/metrics-after-$label.txt" sightline_otlp_received_total 'traces')" \
    "$(prom_sum "$dir/metrics-before-$label.txt" sightline_otlp_rejected_total 'traces')" \
    "$(prom_sum "$dir/metrics-after-$label.txt" sightline_otlp_rejected_total 'traces')" \
    "$(prom_sum "$dir/metrics-before-$label.txt" sightline_otlp_failed_requests_total 'traces')" \
    "$(prom_sum "$dir/metrics-after-$label.txt" sightline_otlp_failed_requests_total 'traces')" \
    "$busy0" "$busy1" <<'EOF' | emit
import json, sys
(rcv, tr, gz, label, lg, c0, c1, c2, tck, rss0, rss1, idle, fw, spans_b, wal_b, pq_b, rec0, rec1, rj0, rj1, fl0, fl1,
 busy0, busy1) = sys.argv[1:]
g = json.load(open(lg))
num = lambda s: None if s in ("", "null") else int(s)
# A labelled counter family that was never incremented is absent from /metrics: 0.
delta = lambda a, b: (num(b) or 0) - (num(a) or 0)
tck = int(tck)
cpu_load = (int(c1) - int(c0)) / tck
cpu = (int(c2) - int(c0)) / tck
acked = g["acked_spans"]
r = {"measurement": "ingest", "receiver": rcv, "transport": tr, "gzip": gz == "gzip", "load": label,
     "rate_target_spans_s": g["rate_target_spans_s"], "concurrency": g["concurrency"], "connections": g["connections"],
     "duration_s": g["duration_s"], "requests": g["requests"], "ok_requests": g["ok_requests"],
     "failed_requests": g["failed_requests"], "retries": g["retries"], "errors": g["errors"],
     "sent_spans": g["sent_spans"], "acked_spans": acked, "rejected_spans": g["rejected_spans"],
     "spans_per_s": g["spans_per_s"],
     "server_cpu_s_load": cpu_load, "server_cpu_s": cpu, "after_load_wait_s": float(fw) + float(idle),
     "spans_per_cpu_s": acked / cpu if cpu > 0 else None,
     "spans_per_cpu_s_load_window": acked / cpu_load if cpu_load > 0 else None,
     "server_cpu_share_during_load": cpu_load / g["duration_s"] if g["duration_s"] else None,
     "loadgen_cpu_share": g["loadgen_cpu_share"],
     "latency_ms": g["latency_ms"], "latency_from_schedule_ms": g["latency_from_schedule_ms"], "late_starts": g["late_starts"],
     "proto_bytes_per_span": g["proto_bytes_per_span"], "wire_bytes_per_span": g["wire_bytes_per_span"],
     "wire_ratio": g["wire_ratio"], "payload_mode": g["payload_mode"],
     "rss_before_kb": num(rss0), "rss_after_kb": num(rss1),
     "spans_dir_bytes_after": int(spans_b), "wal_bytes_after": int(wal_b), "parquet_bytes_after": int(pq_b),
     "server_received_spans": delta(rec0, rec1), "server_rejected_spans": delta(rj0, rj1),
     "server_failed_requests": delta(fl0, fl1),
     # Busy CPU time of the whole machine during the load that was neither the server's nor the load
     # generator's (loopback softirq work, and anything else running: a compile, a test) - noise if large.
     "other_cpu_s_during_load": (int(busy1) - int(busy0)) / tck - cpu_load - g["loadgen_cpu_s"]}
print(json.dumps(r))
EOF
  LAST_SPANS_S="$(jget "$dir/loadgen-$label.json" 'd["spans_per_s"]')"
}

log "output in $OUT; server on CPU $SERVER_CPU, load on CPU $LOAD_CPU; ${DURATION}s per run"
if pgrep -x cargo >/dev/null || pgrep -x rustc >/dev/null; then
  log "WARNING: cargo/rustc is running: it competes for both cores and the figures will be off (see other CPU-s)"
fi

# ---- the pool, offline ----------------------------------------------------------------------------------
taskset -c "$LOAD_CPU" "$LG" stats --pool "$POOL" 2>"$OUT/stats.log" |
  python3 -c 'import json,sys
d=json.load(sys.stdin); d["measurement"]="pool"; print(json.dumps(d))' | emit
[ "${PIPESTATUS[0]}" = 0 ] || log "otlp-loadgen stats failed (see $OUT/stats.log)"

# ---- throughput, ceiling and latency, per transport and compression ---------------------------------------
for combo in $COMBOS; do
  tr="${combo%%:*}"
  gz="${combo##*:}"
  # Ceiling: the same receiver decoding and discarding.
  dir="$OUT/$tr-$gz-decode-only"
  mkdir -p "$dir"
  if start_server "$dir" true; then
    sleep 1
    load_one decode-only "$tr" "$gz" max 0 "$dir"
    stop_pid "$SPID"
  else
    jerr ingest receiver=decode-only "transport=$tr" "gzip=$gz" load=max "server did not start (see $dir/sightline.log)"
  fi
  drop_data "$dir"
  # Sightline, flat out, then at half the rate it reached.
  dir="$OUT/$tr-$gz-sightline"
  mkdir -p "$dir"
  if start_server "$dir" false; then
    sleep 1
    if load_one sightline "$tr" "$gz" max 0 "$dir" && [ -n "$LAST_SPANS_S" ]; then
      half="$(python3 -c "import sys; print(int(float(sys.argv[1]) / 2))" "$LAST_SPANS_S")"
      load_one sightline "$tr" "$gz" half "$half" "$dir"
    fi
    stop_pid "$SPID"
  else
    jerr ingest receiver=sightline "transport=$tr" "gzip=$gz" load=max "server did not start (see $dir/sightline.log)"
  fi
  drop_data "$dir"
done

# ---- bytes on disk and trace by id over STORE_SPANS unique spans --------------------------------------------
dir="$OUT/store"
mkdir -p "$dir"
log "== store: $STORE_SPANS unique spans over gRPC (flat out), then disk and trace-by-id latency"
if start_server "$dir" false; then
  sleep 1
  cpu0="$(cpu_ticks "$SPID")"
  taskset -c "$LOAD_CPU" "$LG" send --transport grpc --target "$GRPC_ADDR" --concurrency "$CONC" \
    --connections "$GRPC_CONNS" --duration 100000 --total-spans "$STORE_SPANS" --pool "$POOL" \
    --print-trace-ids "$LOOKUP_IDS" --ids-out "$dir/trace-ids.txt" --run-id 777 \
    >"$dir/loadgen-store.json" 2>"$dir/loadgen-store.log"
  rc=$?
  cpu1="$(cpu_ticks "$SPID")"
  flushwait="$(wait_flushed $((FLUSH_SECS * 4 + 300)))"
  idle="$(wait_idle "$SPID" 300)"
  log "flushed after ${flushwait}s, idle after ${idle}s more"
  cpu2="$(cpu_ticks "$SPID")"
  if [ "$rc" != 0 ] || ! [ -s "$dir/trace-ids.txt" ]; then
    jerr store "load failed: $(tail -3 "$dir/loadgen-store.log" | tr '\n' ' ')"
  else
    data="$dir/data"
    disk_row() { # phase
      python3 - "$1" "$dir/loadgen-store.json" "$(du_b "$data/spans")" "$(du_b "$data/spans/wal")" \
        "$(parquet_b "$data/spans")" "$(find "$data/spans" -type f -name '*.parquet' | wc -l)" "$(du_b "$data")" \
        "$cpu0" "$cpu1" "$cpu2" "$TCK" "$(rss_kb "$SPID")" "$data" <<'EOF' | emit
import json, os, sys
phase, lg, spans_b, wal_b, pq_b, pq_n, data_b, c0, c1, c2, tck, rss, data = sys.argv[1:]
def tree_bytes(p):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(p) for f in fs)
by_dir = {d: tree_bytes(os.path.join(data, d)) for d in sorted(os.listdir(data)) if os.path.isdir(os.path.join(data, d))}
g = json.load(open(lg))
n = g["acked_spans"]
proto = g["proto_bytes_per_span"]
pq, tot = int(pq_b), int(spans_b)
print(json.dumps({"measurement": "disk", "phase": phase, "acked_spans": n, "spans_per_s": g["spans_per_s"],
    "server_cpu_s": (int(c2) - int(c0)) / int(tck), "server_cpu_s_load": (int(c1) - int(c0)) / int(tck),
    "spans_per_cpu_s": n / ((int(c2) - int(c0)) / int(tck)) if int(c2) > int(c0) else None,
    "proto_bytes_per_span": proto, "parquet_bytes": pq, "parquet_files": int(pq_n), "wal_bytes": int(wal_b),
    "spans_dir_bytes": tot, "data_dir_bytes": int(data_b), "data_dir_bytes_by_subdir": by_dir,
    "parquet_bytes_per_span": pq / n if n else None, "total_bytes_per_span": tot / n if n else None,
    "parquet_vs_proto": pq / n / proto if n else None, "total_vs_proto": tot / n / proto if n else None,
    "rss_kb": int(rss) if rss else None, "errors": g["errors"], "failed_requests": g["failed_requests"]}))
EOF
    }
    disk_row after_flush
    lookup_row() { # phase
      log "== trace by id ($1): $LOOKUP_IDS ids x $LOOKUP_REPEATS"
      taskset -c "$LOAD_CPU" "$LG" lookup --http "$HTTP_ADDR" --ids "$dir/trace-ids.txt" --repeats "$LOOKUP_REPEATS" \
        2>"$dir/lookup-$1.log" | python3 -c 'import json,sys
d=json.load(sys.stdin); d["measurement"]="lookup"; d["phase"]=sys.argv[1]; d["stored_spans"]=int(sys.argv[2]); print(json.dumps(d))' \
        "$1" "$(jget "$dir/loadgen-store.json" 'd["acked_spans"]')" | emit
      [ "${PIPESTATUS[0]}" = 0 ] || { log "lookup failed (see $dir/lookup-$1.log)"; jerr lookup "phase=$1" "$(tail -2 "$dir/lookup-$1.log" | tr '\n' ' ')"; }
    }
    lookup_row warm
    # Restart: a clean shutdown, then start-up on the stored data (WAL replay), then the same lookups.
    t0="$(date +%s.%N)"
    stop_pid "$SPID"
    down="$(python3 -c "import sys,time; print(round(time.time() - float(sys.argv[1]), 2))" "$t0")"
    if start_server "$dir" false; then
      python3 -c 'import json,sys; print(json.dumps({"measurement": "restart", "shutdown_s": float(sys.argv[1]), "startup_s": float(sys.argv[2]), "stored_spans": int(sys.argv[3])}))' \
        "$down" "$STARTUP_S" "$(jget "$dir/loadgen-store.json" 'd["acked_spans"]')" | emit
      cpu0="$(cpu_ticks "$SPID")" cpu1="$cpu0" cpu2="$cpu0"
      disk_row after_restart
      lookup_row after_restart
      stop_pid "$SPID"
    else
      jerr restart "server did not start again (see $dir/sightline.log)"
    fi
  fi
  stop_pid "$SPID"
else
  jerr store "server did not start (see $dir/sightline.log)"
fi
drop_data "$dir"
cleanup

# ---- the table ----------------------------------------------------------------------------------------
python3 - "$RESULTS" <<'EOF' | tee "$OUT/table.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
f = lambda x, d=0: "-" if x is None else f"{x:,.{d}f}"
ok = lambda c: "ok" if c else "MISS"
pool = next((r for r in rows if r["measurement"] == "pool"), None)
if pool:
    print(f"\nrequests: {pool['spans_per_request']} spans x {pool['attrs_per_span']} attributes, {pool['avg_spans_per_trace']:.1f} spans per trace, "
          f"{pool['proto_bytes_per_span']:.0f} protobuf bytes per span, gzip (level {pool.get('gzip_level')}) {pool.get('gzip_ratio', 0):.3f} of that")
ing = [r for r in rows if r["measurement"] == "ingest"]
print("\n## OTLP traces: ingest (server pinned to one core)\n")
print("| transport | gzip | receiver | load | acked spans/s (wall) | server CPU-s | spans per server CPU-s (target >= 100k) | in load window | vs decode-only (target >= 0.5) | export p50 / p99 / max ms | p99 from schedule ms (target <= 10 at 50%) | failed / retries | loadgen CPU share | other CPU-s | RSS MiB |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
ceil = {(r["transport"], r["gzip"]): r for r in ing if r.get("receiver") == "decode-only" and "error" not in r}
for r in ing:
    gz = r["gzip"] if isinstance(r["gzip"], bool) else r["gzip"] == "gzip"
    if "error" in r:
        print(f"| {r.get('transport')} | {'on' if gz else 'off'} | {r.get('receiver')} | {r.get('load')} | error: {r['error'][:200]} |||||||||||")
        continue
    c = ceil.get((r["transport"], gz))
    spc = r["spans_per_cpu_s"]
    vs = "-"
    if r["receiver"] == "sightline" and r["load"] == "max" and c and c["spans_per_cpu_s"] and spc:
        x = spc / c["spans_per_cpu_s"]
        vs = f"{x:.2f} {ok(x >= 0.5)}"
    tgt = ""
    if r["receiver"] == "sightline" and r["load"] == "max" and spc:
        tgt = f" {ok(spc >= 100_000)}"
    lat = r["latency_ms"]
    ls = r["latency_from_schedule_ms"]
    p99s = f(ls["p99"], 2)
    if r["load"] == "half" and ls["p99"] is not None:
        p99s += f" {ok(ls['p99'] <= 10)}"
    load = "flat out" if r["load"] == "max" else f"50% ({r['rate_target_spans_s']:,.0f}/s)"
    ec = f"{r['failed_requests']} / {r['retries']}"
    if r["errors"]:
        ec += " (" + ", ".join(f"{k}: {v}" for k, v in list(r["errors"].items())[:3]) + ")"
    print(f"| {r['transport']} | {'on' if gz else 'off'} | {r['receiver']} | {load} | {f(r['spans_per_s'])} | {r['server_cpu_s']:.2f} | "
          f"{f(spc)}{tgt} | {f(r['spans_per_cpu_s_load_window'])} | {vs} | {f(lat['p50'], 2)} / {f(lat['p99'], 2)} / {f(lat['max'], 1)} | {p99s} | {ec} | "
          f"{f(r['loadgen_cpu_share'], 2)} | {f(r.get('other_cpu_s_during_load'), 2)} | {f((r['rss_after_kb'] or 0) / 1024, 1)} |")
disk = [r for r in rows if r["measurement"] == "disk"]
notes = []
if disk:
    print("\n## OTLP traces: on disk\n")
    print("| phase | spans | protobuf B/span | Parquet B/span | Parquet / protobuf (target <= 0.2) | all of spans/ B/span (WAL incl.) | all / protobuf | whole data dir B/span (metrics WAL of the RED metrics incl.) | Parquet files | WAL MB | ingest spans/s (wall) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in disk:
        if "error" in r:
            print(f"| error: {r['error']} ||||||||||"); continue
        if r.get("data_dir_bytes_by_subdir"):
            notes.append(f"{r['phase']}: data dir by subdirectory (MB): " + ", ".join(f"{k} {v/1e6:,.1f}" for k, v in r["data_dir_bytes_by_subdir"].items()))
        pv = r["parquet_vs_proto"]
        print(f"| {r['phase']} | {r['acked_spans']:,} | {r['proto_bytes_per_span']:.0f} | {f(r['parquet_bytes_per_span'], 1)} | {f(pv, 3)} {ok(pv is not None and pv <= 0.2)} | "
              f"{f(r['total_bytes_per_span'], 1)} | {f(r['total_vs_proto'], 3)} | {f(r['data_dir_bytes'] / r['acked_spans'] if r['acked_spans'] else None, 1)} | {r['parquet_files']} | {r['wal_bytes']/1e6:,.1f} | {f(r['spans_per_s'])} |")
for n in notes:
    print(f"\n{n}")
rs = [r for r in rows if r["measurement"] == "restart" and "error" not in r]
if rs:
    print(f"\nrestart with {rs[0]['stored_spans']:,} spans stored: shutdown {rs[0]['shutdown_s']:.2f} s, start-up until listening {rs[0]['startup_s']:.2f} s")
lk = [r for r in rows if r["measurement"] == "lookup"]
if lk:
    print("\n## OTLP traces: trace by id (GET /api/ui/traces/<id>, one client, keep-alive)\n")
    print("| phase | stored spans | ids x repeats | statuses | p50 ms | p90 ms | p99 ms (target <= 20) | max ms | first pass p50 / p99 ms | span counts checked / wrong |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in lk:
        if "error" in r:
            print(f"| {r.get('phase')} | error: {r['error'][:200]} ||||||||"); continue
        l, fp = r["latency_ms"], r["first_pass_latency_ms"]
        st = ", ".join(f"{k}: {v}" for k, v in r["statuses"].items())
        print(f"| {r['phase']} | {r['stored_spans']:,} | {r['ids']} x {r['repeats']} | {st} | {f(l['p50'], 2)} | {f(l['p90'], 2)} | "
              f"{f(l['p99'], 2)} {ok(l['p99'] is not None and l['p99'] <= 20)} | {f(l['max'], 1)} | {f(fp['p50'], 2)} / {f(fp['p99'], 2)} | "
              f"{r['span_counts_checked']} / {r['span_count_mismatches']} |")
        if r.get("example_problem"):
            print(f"\n  ({r['phase']}: {r['example_problem'][:300]})\n")
EOF
log "done: raw results in $RESULTS, table in $OUT/table.txt"

# Sightline's benchmark: `bash bench/run.sh [--quick]`. Builds release, then for each series count and load
# runs every DogStatsD receiver pinned to core 0 (sightline, the recvmmsg count and aggregate sinks, Etsy
# statsd 0.9.0, netdata's statsd) against the same sendmmsg load generator pinned to core 1, prints one
# table with ratios measured in this run, then runs the in-process metrics benchmark. See bench/README.md.
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bash bench/run.sh [--quick] [--debug]
  --quick   short runs (2 s, 10k series, 1M-sample sketch test) to check that everything works
  --debug   use the debug build instead of release (only for testing this script; figures are meaningless)
env: DURATION (s, default 15), SERIES ("10000 1000000"), RATES (lines/s, 0 = flat out; "0 2000000"),
     RECEIVERS ("sightline sink-count sink-aggregate etsy-statsd netdata"), BENCH_OUT (output dir),
     SERVER_CPU (0), LOAD_CPU (1)
EOF
}

# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
if [ "$QUICK" = 1 ]; then
  DURATION="${DURATION:-2}"
  SERIES="${SERIES:-10000}"
  METRICS_ARGS=(--samples 1000000 --repeats 5 --series 100 --hours 2 --hosts 10)
else
  DURATION="${DURATION:-15}"
  SERIES="${SERIES:-10000 1000000}"
  METRICS_ARGS=()
fi
RATES="${RATES:-0 2000000}"
RECEIVERS="${RECEIVERS:-sightline sink-count sink-aggregate etsy-statsd netdata}"
OUT="${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/sightline-bench.XXXXXX")}"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
PORT_BASE=28125

log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

# ---- cleanup: every process started here is stopped, the sysctl restored ----------------------------
PIDS=()
RMEM_SAVED=""
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
  if [ -n "$RMEM_SAVED" ]; then
    echo "$RMEM_SAVED" >/proc/sys/net/core/rmem_default 2>/dev/null && log "net.core.rmem_default restored to $RMEM_SAVED"
    RMEM_SAVED=""
  fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# ---- build ------------------------------------------------------------------------------------------
PROFILE_FLAG=()
[ "$PROFILE" = release ] && PROFILE_FLAG=(--release)
log "building $PROFILE (sightline-bench, sightline) into $CARGO_TARGET_DIR"
cargo build "${PROFILE_FLAG[@]}" -p sightline-bench || { log "cannot build sightline-bench"; exit 1; }
SIGHTLINE_BUILT=0
case " $RECEIVERS " in
  *" sightline "*)
    if cargo build "${PROFILE_FLAG[@]}" -p sightline; then
      SIGHTLINE_BUILT=1
    else
      log "cannot build the sightline server: its rows are skipped"
    fi
    ;;
esac

# ---- helpers over /proc -------------------------------------------------------------------------------
cpu_ticks() { # utime+stime of a process (all its threads), in clock ticks
  sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
port_hex() { printf '%04X' "$1"; }
udp_drops() { # kernel drops summed over every UDP socket bound to the port (SO_REUSEPORT groups too)
  awk -v p=":$(port_hex "$1")" 'NR > 1 && substr($2, length($2) - 4) == p {d += $NF} END {print d + 0}' /proc/net/udp
}
udp_rxq() { # bytes waiting in the receive queues of the port's sockets
  local h s=0
  for h in $(awk -v p=":$(port_hex "$1")" 'NR > 1 && substr($2, length($2) - 4) == p {split($5, q, ":"); print q[2]}' /proc/net/udp); do
    s=$((s + 16#$h))
  done
  echo "$s"
}
udp_bound() { [ -n "$(awk -v p=":$(port_hex "$1")" 'NR > 1 && substr($2, length($2) - 4) == p' /proc/net/udp)" ]; }
wait_drained() { # until the port's queues stay empty (at most 15 s)
  local i empty=0
  for i in $(seq 1 150); do
    if [ "$(udp_rxq "$1")" = 0 ]; then
      empty=$((empty + 1))
      [ "$empty" -ge 3 ] && return 0
    else
      empty=0
    fi
    sleep 0.1
  done
  log "port $1 still has queued datagrams after 15 s"
}
wait_bound() { # until something listens on the UDP port (at most $2 s)
  local i
  for i in $(seq 1 $(($2 * 10))); do
    udp_bound "$1" && return 0
    sleep 0.1
  done
  return 1
}
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$@"; }
prom_sum() { # sum of a Prometheus counter (all label sets) from a /metrics text
  awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $NF; f = 1} END {if (f) printf "%.0f\n", s}' "$1" 2>/dev/null
}
prom_delta() { # after - before of a counter, or null when the server does not export it
  local a b
  a="$(prom_sum "$2" "$1")"
  b="$(prom_sum "$3" "$1")"
  if [ -n "$a" ]; then echo $((a - ${b:-0})); else echo null; fi
}

# ---- the receivers ----------------------------------------------------------------------------------
# start_<receiver> PORT DIR: starts it pinned to SERVER_CPU, sets RPID, returns non-zero if it can't run.
start_sightline() {
  [ "$SIGHTLINE_BUILT" = 1 ] || { SKIP_REASON="the sightline server did not build"; return 1; }
  local data="$2/data" i
  mkdir -p "$data"
  taskset -c "$SERVER_CPU" "$BIN/sightline" serve --data-dir "$data" \
    --http-listen 127.0.0.1:0 --statsd-listen "127.0.0.1:$1" \
    --otlp-grpc-listen off --otlp-http-listen off --syslog-listen off >"$2/sightline.log" 2>&1 &
  RPID=$!
  PIDS+=("$RPID")
  for i in $(seq 1 600); do
    [ -s "$data/listeners.json" ] && break
    kill -0 "$RPID" 2>/dev/null || { SKIP_REASON="sightline exited at start (see $2/sightline.log)"; return 1; }
    sleep 0.1
  done
  [ -s "$data/listeners.json" ] || { SKIP_REASON="sightline not ready within 60 s"; return 1; }
  HTTP_ADDR="$(jget "$data/listeners.json" 'd["http"]')"
}
start_sink() {
  taskset -c "$SERVER_CPU" "$BIN/udp-sink" --mode "$3" --listen "127.0.0.1:$1" --max-seconds 600 \
    >"$2/sink.json" 2>"$2/sink.log" &
  RPID=$!
  PIDS+=("$RPID")
  wait_bound "$1" 10 || { SKIP_REASON="udp-sink did not bind"; return 1; }
}
start_sink-count() { start_sink "$1" "$2" count; }
start_sink-aggregate() { start_sink "$1" "$2" aggregate; }
start_etsy-statsd() {
  local dir="$ROOT/bench/node_modules/statsd"
  if [ ! -f "$dir/stats.js" ]; then
    log "installing Etsy statsd 0.9.0 into bench/node_modules"
    npm install --prefix "$ROOT/bench" --no-audit --no-fund statsd@0.9.0 >"$2/npm.log" 2>&1 ||
      { SKIP_REASON="npm install statsd@0.9.0 failed (see $2/npm.log)"; return 1; }
  fi
  command -v node >/dev/null || { SKIP_REASON="node is not installed"; return 1; }
  # statsd 0.9.0 has no socket-buffer option: its buffer is net.core.rmem_default (set to 8 MiB above).
  # No graphiteHost: the graphite backend computes every flush and discards it ("processed but discarded").
  cat >"$2/statsd-config.js" <<EOF
{ port: $1, address: "127.0.0.1", mgmt_port: $(($1 + 1)), mgmt_address: "127.0.0.1", flushInterval: 10000 }
EOF
  (cd "$dir" && exec taskset -c "$SERVER_CPU" node stats.js "$2/statsd-config.js") >"$2/statsd.log" 2>&1 &
  RPID=$!
  PIDS+=("$RPID")
  wait_bound "$1" 20 || { SKIP_REASON="Etsy statsd did not bind (see $2/statsd.log)"; return 1; }
}
start_netdata() {
  if ! command -v netdata >/dev/null && [ ! -x /usr/sbin/netdata ]; then
    log "installing netdata-core (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q netdata-core >"$2/apt.log" 2>&1 ||
      { SKIP_REASON="apt-get install netdata-core failed (see $2/apt.log)"; return 1; }
  fi
  local nd d
  nd="$(command -v netdata || echo /usr/sbin/netdata)"
  for d in etc log cache lib run; do mkdir -p "$2/nd/$d"; done
  cat >"$2/netdata.conf" <<EOF
# netdata with only its statsd plugin, for the benchmark
[global]
    run as user = root
    update every = 1
    hostname = slbench
[db]
    mode = ram
[directories]
    config = $2/nd/etc
    log = $2/nd/log
    cache = $2/nd/cache
    lib = $2/nd/lib
    lock = $2/nd/run
    home = $2/nd/run
[logs]
    debug = none
    error = $2/nd/log/error.log
    access = none
[web]
    mode = none
[registry]
    enabled = no
[health]
    enabled = no
[ml]
    enabled = no
[plugins]
    enable running new plugins = no
    proc = no
    diskspace = no
    cgroups = no
    tc = no
    idlejitter = no
    netdata monitoring = no
    timex = no
    checks = no
    apps = no
    python.d = no
    charts.d = no
    go.d = no
    ebpf = no
    perf = no
    slabinfo = no
    statsd = yes
[statsd]
    enabled = yes
    default port = $1
    bind to = udp:127.0.0.1
EOF
  DO_NOT_TRACK=1 taskset -c "$SERVER_CPU" "$nd" -D -c "$2/netdata.conf" >"$2/netdata.log" 2>&1 &
  RPID=$!
  PIDS+=("$RPID")
  wait_bound "$1" 30 || { SKIP_REASON="netdata's statsd did not bind (see $2/netdata.log)"; return 1; }
}

# ---- one measured run -------------------------------------------------------------------------------
run_one() { # receiver series rate port
  local r="$1" series="$2" rate="$3" port="$4"
  local dir="$OUT/$r-$series-$rate"
  mkdir -p "$dir"
  SKIP_REASON="" RPID="" HTTP_ADDR=""
  log "== $r, $series series, rate ${rate} (0 = flat out), ${DURATION}s"
  if ! "start_$r" "$port" "$dir"; then
    log "skipped $r: $SKIP_REASON"
    [ -n "$RPID" ] && stop_pid "$RPID"
    python3 -c 'import json,sys; print(json.dumps({"receiver": sys.argv[1], "series": int(sys.argv[2]), "rate": int(sys.argv[3]), "skipped": sys.argv[4]}))' \
      "$r" "$series" "$rate" "$SKIP_REASON" >>"$RESULTS"
    return
  fi
  sleep 1
  [ -n "$HTTP_ADDR" ] && curl -sf "http://$HTTP_ADDR/metrics" >"$dir/metrics-before.txt"
  local rss0 cpu0 cpu1 rss1 t0 drops
  rss0="$(rss_kb "$RPID")"
  cpu0="$(cpu_ticks "$RPID")"
  t0="$(date +%s)"
  taskset -c "$LOAD_CPU" "$BIN/statsd-loadgen" --target "127.0.0.1:$port" --series "$series" \
    --rate "$rate" --duration "$DURATION" >"$dir/loadgen.json" 2>"$dir/loadgen.log"
  wait_drained "$port"
  sleep 2 # let the receiver finish what it does after reading (aggregator flushes to storage)
  cpu1="$(cpu_ticks "$RPID")"
  rss1="$(rss_kb "$RPID")"
  drops="$(udp_drops "$port")"
  local queued
  queued="$(udp_rxq "$port")"
  local stored="null" app_lines="null" app_dropped="null"
  if [ "$r" = sightline ]; then
    sleep 1 # freshness: visible within 2 s of arrival (3 s after the queue drained)
    curl -sf "http://$HTTP_ADDR/metrics" >"$dir/metrics-after.txt"
    app_lines="$(prom_delta sightline_statsd_lines_total "$dir/metrics-after.txt" "$dir/metrics-before.txt")"
    app_dropped="$(prom_delta sightline_statsd_dropped_total "$dir/metrics-after.txt" "$dir/metrics-before.txt")"
    local name total=0 got ok=1
    for name in $(jget "$dir/loadgen.json" '" ".join(d["counter_metrics"])'); do
      if curl -sfG "http://$HTTP_ADDR/api/v1/query" --data-urlencode "from=$((t0 - 120))" \
        --data-urlencode "to=$(($(date +%s) + 120))" --data-urlencode "query=sum:$name{*}.as_count()" \
        >"$dir/query-$name.json"; then
        got="$(jget "$dir/query-$name.json" 'int(round(sum(p[1] for s in d.get("series", []) for p in s["pointlist"] if p[1] is not None)))')" || ok=0
        total=$((total + ${got:-0}))
      else
        ok=0
      fi
    done
    [ "$ok" = 1 ] && stored="$total"
  fi
  stop_pid "$RPID"
  if [ "$r" = sink-count ] || [ "$r" = sink-aggregate ]; then
    app_lines="$(jget "$dir/sink.json" 'd["lines"]' 2>/dev/null || echo null)"
    [ "$r" = sink-aggregate ] && stored="$(jget "$dir/sink.json" 'int(d["counter_sum"])' 2>/dev/null || echo null)"
  fi
  python3 - "$r" "$series" "$rate" "$dir/loadgen.json" "$cpu0" "$cpu1" "$(getconf CLK_TCK)" "$rss0" "$rss1" \
    "$drops" "$app_lines" "$app_dropped" "$stored" "$queued" >>"$RESULTS" <<'EOF'
import json, sys
r, series, rate, lg, cpu0, cpu1, tck, rss0, rss1, drops, app_lines, app_dropped, stored, queued = sys.argv[1:]
g = json.load(open(lg))
num = lambda s: None if s in ("", "null") else int(s)
rec = {"receiver": r, "series": int(series), "rate": int(rate), "sent_lines": g["lines"],
       "sent_datagrams": g["datagrams"], "duration_s": g["duration_s"], "active_series": g["active_series"],
       "metric_names": g["metric_names"], "expected_counter_sum": g["counter_sum"],
       "cpu_s": (int(cpu1) - int(cpu0)) / int(tck), "rss_idle_kb": num(rss0), "rss_after_kb": num(rss1),
       "kernel_drops": int(drops), "app_lines": num(app_lines), "app_dropped": num(app_dropped),
       "stored_counter_sum": num(stored), "lines_by_type": g["lines_by_type"], "queued_bytes_at_end": int(queued)}
per_dgram = g["lines"] / max(g["datagrams"], 1)
if rec["app_lines"] is not None:
    rec["recv_lines"], rec["recv_source"] = rec["app_lines"], "receiver's own count"
else:
    # Datagrams dropped by the kernel or still unread when measured count as lost.
    unread = int(queued) / max(g["bytes"] / max(g["datagrams"], 1), 1)
    rec["recv_lines"] = max(0, round(g["lines"] - (int(drops) + unread) * per_dgram))
    rec["recv_source"] = "sent - kernel drops"
print(json.dumps(rec))
EOF
}

# ---- the runs ---------------------------------------------------------------------------------------
if [ -w /proc/sys/net/core/rmem_default ]; then
  RMEM_SAVED="$(cat /proc/sys/net/core/rmem_default)"
  echo $((8 << 20)) >/proc/sys/net/core/rmem_default && log "net.core.rmem_default = 8 MiB for the runs (was $RMEM_SAVED)"
else
  log "cannot raise net.core.rmem_default: receivers that set no buffer (Etsy statsd, netdata) keep $(cat /proc/sys/net/core/rmem_default) bytes"
fi
log "output in $OUT; server on CPU $SERVER_CPU, load on CPU $LOAD_CPU; ${DURATION}s per run"
port=$PORT_BASE
for series in $SERIES; do
  for rate in $RATES; do
    for r in $RECEIVERS; do
      port=$((port + 2))
      run_one "$r" "$series" "$rate" "$port"
    done
  done
done
cleanup

# ---- the table --------------------------------------------------------------------------------------
python3 - "$RESULTS" <<'EOF' | tee "$OUT/table.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def f(x, d=0):
    return "-" if x is None else f"{x:,.{d}f}"
print("| series | load | receiver | sent lines/s | received lines/s | lines per server CPU-s | server CPU-s | loss % | kernel drops | stored counter check | RSS MiB | RSS per active series | vs Etsy statsd | vs aggregate sink |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for series in sorted({r["series"] for r in rows}):
    for rate in sorted({r["rate"] for r in rows if r["series"] == series}):
        group = [r for r in rows if r["series"] == series and r["rate"] == rate]
        by = {r["receiver"]: r for r in group if "skipped" not in r}
        for r in group:
            load = "flat out" if rate == 0 else f"{rate/1e6:g}M/s"
            if "skipped" in r:
                print(f"| {series:,} | {load} | {r['receiver']} | skipped: {r['skipped']} |||||||||||")
                continue
            dur = r["duration_s"] or 1
            recv_s = r["recv_lines"] / dur
            per_cpu = r["recv_lines"] / r["cpu_s"] if r["cpu_s"] > 0 else None
            loss = 100.0 * (1 - r["recv_lines"] / r["sent_lines"]) if r["sent_lines"] else None
            est = "" if r["recv_source"] == "receiver's own count" else " (est.)"
            if r["receiver"] == "sightline" and r.get("app_dropped"):
                est += f" app drops {r['app_dropped']:,}"
            check = "-"
            if r["stored_counter_sum"] is not None:
                exp = r["expected_counter_sum"]
                check = f"{r['stored_counter_sum']:,}/{exp:,} ({100.0*(1-r['stored_counter_sum']/exp):.3f}% lost)" if exp else "-"
            active = r["metric_names"] if r["receiver"] == "netdata" else r["active_series"]
            rss_per = None
            if r["rss_after_kb"] is not None and r["rss_idle_kb"] is not None and active:
                rss_per = (r["rss_after_kb"] - r["rss_idle_kb"]) * 1024 / active
            rss_note = f"{f(rss_per)} B" + (" (per name)" if r["receiver"] == "netdata" else "")
            def ratio(other):
                o = by.get(other)
                if not o or o is r or not o["cpu_s"] or not r["cpu_s"]:
                    return "-"
                a = r["recv_lines"] / dur; b = o["recv_lines"] / (o["duration_s"] or 1)
                ea = r["recv_lines"] / r["cpu_s"]; eb = o["recv_lines"] / o["cpu_s"]
                return f"{a/b:.2f}x /s, {ea/eb:.2f}x /CPU-s" if b and eb else "-"
            print(f"| {series:,} | {load} | {r['receiver']} | {f(r['sent_lines']/dur)} | {f(recv_s)}{est} | {f(per_cpu)} | {r['cpu_s']:.2f} | "
                  f"{f(loss, 3)} | {r['kernel_drops']:,} | {check} | {f((r['rss_after_kb'] or 0)/1024, 1)} | {rss_note} | {ratio('etsy-statsd')} | {ratio('sink-aggregate')} |")
EOF

# ---- in-process metrics benchmark -------------------------------------------------------------------
log "metrics-bench (pinned to CPU $SERVER_CPU)"
taskset -c "$SERVER_CPU" "$BIN/metrics-bench" "${METRICS_ARGS[@]}" >"$OUT/metrics-bench.json" 2>"$OUT/metrics-bench.log" ||
  log "metrics-bench failed (see $OUT/metrics-bench.log)"
python3 -m json.tool "$OUT/metrics-bench.json" 2>/dev/null || cat "$OUT/metrics-bench.log"
log "done: raw results in $RESULTS, table in $OUT/table.txt"

# ---- logs benchmark: bench/logs.sh, same conventions (LOGS=0 skips it; --quick/--debug passed on) ------
if [ "${LOGS:-1}" = 1 ]; then
  LOGS_ARGS=()
  [ "$QUICK" = 1 ] && LOGS_ARGS+=(--quick)
  [ "$PROFILE" = debug ] && LOGS_ARGS+=(--debug)
  log "logs benchmark: bash bench/logs.sh ${LOGS_ARGS[*]} (output in $OUT/logs)"
  BENCH_OUT="$OUT" SERVER_CPU="$SERVER_CPU" LOAD_CPU="$LOAD_CPU" bash "$ROOT/bench/logs.sh" "${LOGS_ARGS[@]}" ||
    log "logs benchmark failed (see $OUT/logs)"
fi
# ---- OTLP benchmark: bench/otlp.sh, same conventions (OTLP=0 skips it; --quick/--debug passed on) --------
if [ "${OTLP:-1}" = 1 ]; then
  OTLP_ARGS=()
  [ "$QUICK" = 1 ] && OTLP_ARGS+=(--quick)
  [ "$PROFILE" = debug ] && OTLP_ARGS+=(--debug)
  log "OTLP benchmark: bash bench/otlp.sh ${OTLP_ARGS[*]} (output in $OUT/otlp)"
  BENCH_OUT="$OUT" SERVER_CPU="$SERVER_CPU" LOAD_CPU="$LOAD_CPU" bash "$ROOT/bench/otlp.sh" "${OTLP_ARGS[@]}" ||
    log "OTLP benchmark failed (see $OUT/otlp)"
fi

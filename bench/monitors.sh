# Sightline's monitor evaluation benchmark (issue #5): `bash bench/monitors.sh [--quick] [--profile]`.
# Builds `monitor-bench` (release) and runs it: 10,000 `metric alert` monitors x 100 groups (`by {host}`), one
# metric per monitor (1M series in a real MetricStore, 5 min of 10 s points, 6 more per series before each
# cycle), states in a real MonitorStateStore, evaluated with `monitor::eval::evaluate_all`: the first cycle and
# 6 steady cycles at simulated 60 s steps -> CPU-s (user+sys of the process) per cycle vs the 6 CPU-s budget
# (10% of one core at a 60 s interval), plus the raw-query baseline of the same run and the same cycles with
# in-memory states. One JSON object on stdout (also <out>/monitors.json), then a short table.
# See bench/README.md, "Monitor evaluation benchmark".
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bash bench/monitors.sh [--quick] [--profile] [--debug] [-- <extra monitor-bench flags>]
  --quick    200 monitors x 100 groups, 3 steady cycles: checks that every piece works (~10 s after the build)
  --profile  also record steady cycle 3 with `perf record --call-graph dwarf` (enabled around that cycle
             only, through perf's control FIFO) and print the top of `perf report` (<out>/perf.data,
             <out>/perf-self.txt: self time; <out>/perf-children.txt: with callees)
  --debug    use the debug build (only for testing this script; figures are meaningless)
env: MONITORS (10000; --quick 200), MONITOR_GROUPS (100), METRICS (default = MONITORS: one metric per monitor),
     CYCLES (steady cycles; 6, --quick 3), MEMORY_STATES (1: also run each cycle with in-memory states),
     BENCH_DIR (where the temp data dir goes; must be a real disk, not tmpfs; default $HOME/.cache),
     BENCH_OUT (output directory; default a new /tmp/sightline-bench.*)
EOF
}

QUICK=0
PROFILE=release
PERF=0
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --profile) PERF=1 ;;
    --debug) PROFILE=debug ;;
    --) shift; EXTRA=("$@"); break ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sightline-target}"
if [ "$QUICK" = 1 ]; then
  MONITORS="${MONITORS:-200}"
  CYCLES="${CYCLES:-3}"
else
  MONITORS="${MONITORS:-10000}"
  CYCLES="${CYCLES:-6}"
fi
MONITOR_GROUPS="${MONITOR_GROUPS:-100}"
METRICS="${METRICS:-$MONITORS}"
MEMORY_STATES="${MEMORY_STATES:-1}"
BENCH_DIR="${BENCH_DIR:-$HOME/.cache}"
OUT="${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/sightline-bench.XXXXXX")}"
mkdir -p "$OUT" "$BENCH_DIR" || exit 1
log() { echo "[monitors.sh] $*" >&2; }

PROFILE_FLAG=()
[ "$PROFILE" = release ] && PROFILE_FLAG=(--release)
cargo build "${PROFILE_FLAG[@]}" -p sightline-bench --bin monitor-bench || { log "build failed"; exit 1; }
BIN="$CARGO_TARGET_DIR/$PROFILE/monitor-bench"

if [ "$(stat -f -c %T "$BENCH_DIR")" = tmpfs ]; then
  log "WARNING: $BENCH_DIR is tmpfs: the state store's fsyncs cost nothing there"
fi
if pgrep -x cargo >/dev/null || pgrep -x rustc >/dev/null; then
  log "WARNING: cargo/rustc is running: CPU-s per cycle are still the process's own, but wall times and caches suffer"
fi
log "$(uptime)"

ARGS=(--monitors "$MONITORS" --groups "$MONITOR_GROUPS" --metrics "$METRICS" --cycles "$CYCLES" --dir "$BENCH_DIR")
[ "$MEMORY_STATES" = 1 ] && ARGS+=(--memory-states)
ARGS+=("${EXTRA[@]}")

PERF_PID=""
cleanup() {
  [ -n "$PERF_PID" ] && kill "$PERF_PID" 2>/dev/null
  rm -f "$OUT/perf-ctl" "$OUT/perf-ack"
}
trap cleanup EXIT INT TERM

date -u +"%Y-%m-%dT%H:%M:%SZ start" >&2
if [ "$PERF" = 1 ]; then
  command -v perf >/dev/null || { log "perf is not installed"; exit 1; }
  mkfifo "$OUT/perf-ctl" "$OUT/perf-ack" || exit 1
  # Recording starts disabled (-D -1); monitor-bench enables it around the profiled cycle only.
  perf record --call-graph dwarf,16384 -F 499 -D -1 --control "fifo:$OUT/perf-ctl,$OUT/perf-ack" -o "$OUT/perf.data" -- \
    "$BIN" "${ARGS[@]}" --perf-ctl "$OUT/perf-ctl" --perf-ack "$OUT/perf-ack" --profile-cycles 3 \
    >"$OUT/monitors.json" 2>"$OUT/monitors.err" &
  PERF_PID=$!
  wait "$PERF_PID"
  RC=$?
  PERF_PID=""
else
  "$BIN" "${ARGS[@]}" >"$OUT/monitors.json" 2>"$OUT/monitors.err"
  RC=$?
fi
date -u +"%Y-%m-%dT%H:%M:%SZ end" >&2
cat "$OUT/monitors.err" >&2
[ "$RC" = 0 ] || { log "monitor-bench failed ($RC)"; exit "$RC"; }
cat "$OUT/monitors.json"

python3 - "$OUT/monitors.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]
print()
print(f"{s['monitors']} monitors x {s['groups_per_monitor']} groups ({s['layout']}, {s['series']} series)")
print("| cycle | CPU-s | user | sys | wall s | transitions | monitors saved | state bytes written | in-memory states CPU-s | raw queries CPU-s | cycle / raw |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for c in d["cycles"]:
    m = c.get("memory_states", {}).get("cpu_s")
    b = c.get("baseline_raw_queries", {}).get("cpu_s")
    r = c.get("cycle_vs_raw_queries")
    f = lambda x, p=2: "-" if x is None else f"{x:.{p}f}"
    print(f"| {c['cycle']} ({c['kind']}) | {c['cpu_s']:.2f} | {c['user_s']:.2f} | {c['sys_s']:.2f} | {c['wall_s']:.1f} | "
          f"{c['report']['transitions']:,} | {c['report'].get('saved', '-')} | {c['wchar_bytes']:,} | {f(m)} | {f(b)} | {f(r)}x |")
print()
print(f"steady median: {s['steady_median_cpu_s']:.2f} CPU-s per cycle = {s['steady_median_vs_budget']:.2f}x the 6 CPU-s budget "
      f"({'met' if s['target_met'] else 'MISSED'}); raw queries {s['baseline_raw_queries_median_cpu_s']:.2f} CPU-s; "
      f"cycle / raw {s['cycle_vs_raw_queries_median']:.2f}x; max RSS {s['max_rss_mib']:.0f} MiB")
EOF

if [ "$PERF" = 1 ]; then
  perf report -i "$OUT/perf.data" --no-children --percent-limit 0.5 --stdio -g none 2>/dev/null \
    >"$OUT/perf-self.txt"
  perf report -i "$OUT/perf.data" --children --percent-limit 2 --stdio -g none 2>/dev/null \
    >"$OUT/perf-children.txt"
  log "profile of steady cycle 3: $OUT/perf-self.txt (self), $OUT/perf-children.txt (with callees)"
  grep -v '^#' "$OUT/perf-self.txt" | grep -v '^$' | head -40
fi
log "output: $OUT"

# The shared start of bench/run.sh, logs.sh, otlp.sh and ui.sh, sourced after each defines `usage`: parses
# --quick, --debug and -h, goes to the repository root, and sets QUICK (0/1), PROFILE (release/debug), ROOT,
# CARGO_TARGET_DIR (exported; default $HOME/.cache/sightline-target) and BIN (the profile's binary directory).
# Also start_sightline / stop_sightline (below).
QUICK=0
PROFILE=release
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    --debug) PROFILE=debug ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $a" >&2; usage >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sightline-target}"
BIN="$CARGO_TARGET_DIR/$PROFILE"

# start_sightline EXE DATA_DIR LOG_FILE [FLAGS...]: starts `EXE serve --data-dir DATA_DIR FLAGS...` in the
# background (its pid in SPID) and waits up to 60 s for DATA_DIR/listeners.json; non-zero if it exits or
# never gets ready. stop_sightline stops it (TERM, then KILL after 5 s) and clears SPID.
SPID=""
start_sightline() {
  local exe="$1" data="$2" logf="$3"
  shift 3
  mkdir -p "$data"
  "$exe" serve --data-dir "$data" "$@" >"$logf" 2>&1 &
  SPID=$!
  for _ in $(seq 1 600); do
    [ -s "$data/listeners.json" ] && return 0
    kill -0 "$SPID" 2>/dev/null || { echo "sightline exited at start (see $logf)" >&2; return 1; }
    sleep 0.1
  done
  echo "sightline not ready within 60 s (see $logf)" >&2
  return 1
}
stop_sightline() {
  if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
    kill "$SPID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SPID" 2>/dev/null
  fi
  SPID=""
}

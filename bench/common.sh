# The shared start of bench/run.sh, logs.sh, otlp.sh and ui.sh, sourced after each defines `usage`: parses
# --quick, --debug and -h, goes to the repository root, and sets QUICK (0/1), PROFILE (release/debug), ROOT,
# CARGO_TARGET_DIR (exported; default $HOME/.cache/sightline-target) and BIN (the profile's binary directory).
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

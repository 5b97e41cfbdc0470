#!/usr/bin/env bash
# Runs Sightline's whole test suite: formatting, Rust unit and integration tests, then the end-to-end tests
# that drive the real `sightline` binary with the clients users use (installed pinned into tests/.venv).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sightline-target}"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo build (debug)"
cargo build --workspace --bins --locked

echo "== cargo test"
cargo test --workspace --locked

echo "== python clients (pinned, tests/.venv)"
if [ ! -x tests/.venv/bin/python ]; then
  python3 -m venv tests/.venv
fi
tests/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt

echo "== node OpenTelemetry SDK (pinned, tests/e2e/otel-node)"
# Reinstalled whenever package-lock.json changed since the last install (a copy is kept as the stamp).
if ! cmp -s tests/e2e/otel-node/package-lock.json tests/e2e/otel-node/node_modules/.sightline-lock; then
  (cd tests/e2e/otel-node && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.sightline-lock)
fi

echo "== browser for the UI tests (Debian chromium; pinned playwright-core in tests/e2e/browser)"
# tests/e2e/browser/run.mjs drives ${SIGHTLINE_CHROMIUM:-/usr/bin/chromium}: Debian's package, installed when missing.
chromium_bin="${SIGHTLINE_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium_bin" ]; then
  echo "$chromium_bin is missing: installing Debian's chromium package with apt-get (takes about a minute)"
  sudo=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the browser tests need Debian's chromium at $chromium_bin and apt-get is not available;" \
         "install chromium (or set SIGHTLINE_CHROMIUM to a Chromium binary) and rerun" >&2
    exit 1
  fi
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null; } \
     || [ ! -x "$chromium_bin" ]; then
    echo "error: apt-get did not give $chromium_bin (installing needs root and Debian's package lists);" \
         "install it with 'apt-get install chromium' and rerun" >&2
    exit 1
  fi
fi
# Reinstalled whenever package-lock.json changed since the last install (a copy is kept as the stamp).
if ! cmp -s tests/e2e/browser/package-lock.json tests/e2e/browser/node_modules/.sightline-lock; then
  (cd tests/e2e/browser && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.sightline-lock)
fi

echo "== end-to-end tests"
export SIGHTLINE_BIN="$CARGO_TARGET_DIR/debug/sightline"
cd tests/e2e
../.venv/bin/python -m pytest -q -p no:cacheprovider "$@"

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

echo "== end-to-end tests"
export SIGHTLINE_BIN="$CARGO_TARGET_DIR/debug/sightline"
cd tests/e2e
../.venv/bin/python -m pytest -q -p no:cacheprovider "$@"

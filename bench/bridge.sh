#!/usr/bin/env bash
# Benchmark of the daemon bridge's hand-over (connect, verify with a cached JWKS, write the
# netrc) beside the plain netrc write it wraps; as root. Prints a table and writes
# bench/bridge-results.json. BENCH_HANDOVERS (default 200) sets the number of hand-overs.
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/install-deps
cargo build --release --locked
exec python3 bench/bridge.py

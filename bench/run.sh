#!/usr/bin/env bash
# Benchmark: nix-cache-login against one curl POST (the floor for one process, one TLS
# handshake, one request) and `cat`, with the test provider on 127.0.0.1 (and a second one
# that sends its discovery documents with `Cache-Control: no-store`). Prints a table and
# writes bench/results.json; then `ci` (bench/ci.py): requests per run and time beside curl
# doing the same two requests, written to bench/results-ci.json. BENCH_RUNS (default 30) sets the runs per case.
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/install-deps
cargo build --release --locked
python3 bench/bench.py
exec python3 bench/ci.py

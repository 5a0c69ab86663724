#!/usr/bin/env bash
# Runs every test of nix-cache-login: formatting, lints, unit and property tests, integration
# tests against the real OIDC provider, headless chromium and real Nix, and the checks of the
# Nix packaging. Installs what is missing first (see .ci/install-deps).
set -euo pipefail
cd "$(dirname "$0")"

.ci/install-deps

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== Nix packaging checks"
bash tests/nix/check.sh
echo "== fuzz the netrc parser and the config loader (bounded time)"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" fuzz/run.sh
echo "== cargo test"
# Two cores: each integration test starts a provider and some a browser, so run a few at once.
cargo test --locked -- --test-threads="${TEST_THREADS:-4}"

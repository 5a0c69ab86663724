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
echo "== fuzz the netrc parser, the config loader and the provider's answers (bounded time)"
# The whole fuzzing budget, split between the targets (60 s, as when there were two of 30 s).
FUZZ_SECONDS="${FUZZ_SECONDS:-60}" fuzz/run.sh
echo "== cargo test"
# Two cores: each integration test starts a provider and some a browser, so run a few at once.
cargo test --locked -- --test-threads="${TEST_THREADS:-4}"

#!/usr/bin/env bash
# Coverage-guided fuzzing of the netrc parser, the config loader and the provider's answers
# (discovery document, token answer) for a bounded time, on
# stable Rust: libfuzzer-sys brings libFuzzer, and LLVM's SanitizerCoverage passes give it the
# coverage that `cargo fuzz` would (without AddressSanitizer, which needs nightly; Rust code
# without `unsafe` needs it least). FUZZ_SECONDS is the whole budget (default 180), split
# evenly between the targets.
set -euo pipefail
cd "$(dirname "$0")"
targets=(netrc_parse config_parse provider_answers)
seconds=$(( ${FUZZ_SECONDS:-180} / ${#targets[@]} ))
(( seconds > 0 )) || seconds=1
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# With an explicit --target, RUSTFLAGS reach only the fuzzed code, not build scripts and
# proc macros (which cannot link the coverage hooks).
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --bins --target "$host"
for target in "${targets[@]}"; do
  corpus="$CARGO_TARGET_DIR/corpus/$target"
  mkdir -p "$corpus"
  echo "== fuzz $target for ${seconds}s"
  "$CARGO_TARGET_DIR/$host/release/$target" -max_total_time="$seconds" -max_len=4096 \
    -print_final_stats=1 "$corpus" 2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)|ERROR|panicked|Test unit written" || true
  # libFuzzer exits non-zero on a crash; the pipeline above hides that, so check for artifacts.
  if ls crash-* leak-* timeout-* >/dev/null 2>&1; then
    echo "fuzz $target found a failing input:" && ls crash-* leak-* timeout-* && exit 1
  fi
done

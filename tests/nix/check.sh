#!/usr/bin/env bash
# Checks of the Nix packaging that need nothing but Nix itself (Debian's nix-bin, Nix 2.8
# or newer) and a copy of nixpkgs' lib: no nixpkgs, no network, no KVM.
#
#   bash tests/nix/check.sh
#
# nixpkgs' lib (25.11) is taken from $NIXPKGS_LIB (a nixpkgs-lib checkout or its lib/
# directory), else from ../shared/nixpkgs-lib beside the clone (or beside the main
# worktree of a linked git worktree). Without it, only steps 1, 4 and 6 run.
#
# 1. every tracked .nix file parses;
# 2. the NixOS and home-manager modules, the VM test nodes, package.nix and flake.nix
#    evaluate with nixpkgs' real module system, against the NixOS and home-manager options
#    declared in tests/nix/options, and what they produce is checked
#    (tests/nix/eval-modules.nix);
# 3. misspelled options, wrong types, conflicting definitions, a missing package, a module
#    of the wrong class and failed assertions are refused with the right error
#    (tests/nix/negative.nix);
# 4. flake.lock is well-formed and matches flake.nix (tests/nix/lock-check.nix), and
#    `nix flake metadata` accepts the flake without updating the lock (network cut off
#    where possible, so nothing can be fetched);
# 5. when python3 is installed, the VM tests' Python scripts compile;
# 6. when systemd-analyze is installed, the shipped units (systemd/) verify cleanly.
#
# What this cannot check: building the package, the NixOS and home-manager modules of
# nixpkgs themselves (their options are declared here after them), and the VM tests.
# `nix flake check` on a machine with nixpkgs does those.
#
# Prints "nix-checks: N passed, M failed" (plus skips) and exits 1 on any failure.
set -u -o pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
root=$PWD

if ! command -v nix-instantiate > /dev/null; then
  echo "nix-instantiate not found: install Nix (Debian: apt-get install nix-bin)" >&2
  exit 2
fi

work=$(mktemp -d)
cleanup() {
  chmod -R u+w "$work" 2> /dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Nothing from the network, nothing from the caller's Nix setup.
export NIX_CONFIG='substituters =
experimental-features = nix-command flakes
connect-timeout = 5
tarball-ttl = 0'
export NIX_PATH=
export XDG_CACHE_HOME="$work/cache"
export HOME="${HOME:-$work/home}"

passed=0
failed=0
skipped=0
ok() {
  passed=$((passed + 1))
  echo "ok - $*"
}
not_ok() {
  failed=$((failed + 1))
  echo "not ok - $*"
}
skip() {
  skipped=$((skipped + 1))
  echo "skip - $*"
}

# Parsing and pure evaluation need no store: the dummy store refuses any write, so these
# steps also prove that nothing is copied into the store or built.
eval_json() {
  nix-instantiate --store dummy:// --eval --strict --json "$@"
}

# A JSON list of strings without quotes or backslashes inside (report.nix and friends
# make sure of that) -> one string per line.
json_lines() {
  sed -e 's/^\[//' -e 's/\]$//' -e 's/^"//' -e 's/"$//' -e 's/","/\n/g'
}

# nixpkgs' lib: the directory holding lib/default.nix, or "" when there is none.
find_nixpkgs_lib() {
  local candidate
  for candidate in "$@"; do
    if [ -f "$candidate/lib/default.nix" ] && [ -f "$candidate/lib/modules.nix" ]; then
      (cd "$candidate/lib" && pwd)
      return 0
    elif [ -f "$candidate/default.nix" ] && [ -f "$candidate/modules.nix" ]; then
      (cd "$candidate" && pwd)
      return 0
    fi
  done
  return 1
}

nixpkgs_lib=""
if [ -n "${NIXPKGS_LIB:-}" ]; then
  if ! nixpkgs_lib=$(find_nixpkgs_lib "$NIXPKGS_LIB"); then
    echo "NIXPKGS_LIB=$NIXPKGS_LIB holds no nixpkgs lib (lib/default.nix and lib/modules.nix)" >&2
    exit 2
  fi
else
  candidates=("$root/../shared/nixpkgs-lib")
  # A linked worktree: ../shared beside the main worktree too.
  if common=$(git rev-parse --git-common-dir 2> /dev/null) && common=$(cd "$common" && pwd); then
    candidates+=("$(dirname "$common")/../shared/nixpkgs-lib")
  fi
  nixpkgs_lib=$(find_nixpkgs_lib "${candidates[@]}") || nixpkgs_lib=""
fi
if [ -n "$nixpkgs_lib" ]; then
  export NIXPKGS_LIB="$nixpkgs_lib"
fi

echo "# 1. every tracked .nix file parses"
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  mapfile -t nix_files < <(git ls-files '*.nix')
else
  mapfile -t nix_files < <(find . -name '*.nix' -not -path './target/*' -not -path '*/node_modules/*' | sed 's|^\./||' | sort)
fi
parse_failed=0
for file in "${nix_files[@]}"; do
  if ! out=$(nix-instantiate --store dummy:// --parse "$file" 2>&1 > /dev/null); then
    not_ok "parse $file: $out"
    parse_failed=1
  fi
done
if [ "${#nix_files[@]}" -eq 0 ]; then
  not_ok "parse: no .nix files found"
elif [ "$parse_failed" -eq 0 ]; then
  ok "parse: ${#nix_files[@]} .nix files"
fi

module_checks() {
  echo "# 2. modules, VM test nodes, package.nix and flake.nix with nixpkgs lib ${lib_version//\"/} ($nixpkgs_lib)"
  if report=$(eval_json tests/nix/report.nix 2> "$work/eval.err"); then
    while IFS= read -r line; do
      case "$line" in
        "ok - "*) ok "${line#ok - }" ;;
        *": evaluation failed")
          not_ok "${line#not ok - }:"
          name=${line#not ok - }
          name=${name%: evaluation failed}
          eval_json --argstr name "$name" -E '{ name }:
            (builtins.head (builtins.filter (c: c.name == name) (import ./tests/nix/eval-modules.nix))).ok' \
            2>&1 > /dev/null | sed 's/^/#   /'
          ;;
        "not ok - "*) not_ok "${line#not ok - }" ;;
        "") ;;
        *) not_ok "unexpected report line: $line" ;;
      esac
    done < <(printf '%s\n' "$report" | json_lines)
  else
    not_ok "tests/nix/eval-modules.nix does not evaluate:"
    sed 's/^/#   /' "$work/eval.err"
  fi

  echo "# 3. wrong configurations are refused"
  if cases=$(eval_json -A cases tests/nix/negative.nix 2> "$work/cases.err"); then
    while IFS='|' read -r name expect; do
      [ -n "$name" ] || continue
      if eval_json --argstr name "$name" \
        -E '{ name }: (import ./tests/nix/negative.nix).run name' \
        > /dev/null 2> "$work/case.err"; then
        not_ok "refused: $name (it evaluated)"
      elif grep -qF -- "$expect" "$work/case.err"; then
        ok "refused: $name ($expect)"
      else
        not_ok "refused: $name, but not with \"$expect\":"
        sed 's/^/#   /' "$work/case.err"
      fi
    done < <(printf '%s\n' "$cases" | json_lines)
  else
    not_ok "tests/nix/negative.nix does not evaluate:"
    sed 's/^/#   /' "$work/cases.err"
  fi
}

if [ -z "$nixpkgs_lib" ]; then
  skip "steps 2, 3 and 5 (module evaluation): nixpkgs lib not found (set NIXPKGS_LIB, or put nixpkgs-lib in ../shared); the .nix files were only parsed"
elif ! lib_version=$(eval_json -E '(import ./tests/nix/lib.nix).version' 2> "$work/lib.err"); then
  not_ok "nixpkgs lib at $nixpkgs_lib does not evaluate:"
  sed 's/^/#   /' "$work/lib.err"
else
  run_module_checks=1
  module_checks
fi

echo "# 4. flake.lock and nix flake metadata"
if [ ! -f flake.lock ]; then
  skip "flake metadata: there is no flake.lock yet (it must pin nixpkgs nixos-25.11 with its real narHash)"
elif grep -qi 'placeholder' flake.lock; then
  skip "flake metadata: flake.lock is a placeholder (it must pin nixpkgs nixos-25.11 with its real narHash)"
elif git rev-parse --is-inside-work-tree > /dev/null 2>&1 && ! git ls-files --error-unmatch flake.lock > /dev/null 2>&1; then
  skip "flake metadata: flake.lock is not tracked by git, so a git flake would not see it"
else
  if problems=$(eval_json tests/nix/lock-check.nix 2> "$work/lock.err"); then
    if [ "$problems" = "[]" ]; then
      ok "flake.lock: version 7, inputs match flake.nix, full rev, SRI narHash, lastModified"
      lock_ok=1
    else
      while IFS= read -r problem; do
        [ -n "$problem" ] && not_ok "flake.lock: $problem"
      done < <(printf '%s\n' "$problems" | json_lines)
      lock_ok=0
    fi
  else
    not_ok "flake.lock cannot be read:"
    sed 's/^/#   /' "$work/lock.err"
    lock_ok=0
  fi

  if [ "$lock_ok" -eq 1 ]; then
    # `nix flake metadata` copies the flake's source into a store: the default one when we
    # may write it (root), else a private store under $work.
    store_args=()
    if [ -w /nix/store ] || { [ ! -e /nix/store ] && [ -w /nix ]; } || { [ ! -e /nix ] && [ -w / ]; }; then
      store_note="the default store"
    else
      store_args=(--store "$work/store")
      store_note="a private store in $work/store"
    fi
    # Cut the network off when we can (root, util-linux' unshare): if Nix wanted to fetch
    # anything, it would fail here instead of reaching the internet.
    isolate=()
    if [ "$(id -u)" -eq 0 ] && command -v unshare > /dev/null && unshare -n true 2> /dev/null; then
      isolate=(unshare -n)
    fi
    if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
      flake_ref="git+file://$root"
    else
      flake_ref="path:$root"
    fi
    rev=$(sed -n 's/.*"rev": *"\([0-9a-f]\{40\}\)".*/\1/p' flake.lock | head -n 1)
    if "${isolate[@]}" nix "${store_args[@]}" flake metadata --json --no-update-lock-file --no-write-lock-file \
      "$flake_ref" > "$work/metadata.json" 2> "$work/metadata.err"; then
      if grep -q "\"rev\":\"$rev\"" "$work/metadata.json"; then
        ok "nix flake metadata accepts the flake and its lock (nixpkgs $rev; $store_note${isolate:+, network cut off})"
      else
        not_ok "nix flake metadata does not show the locked nixpkgs rev $rev"
      fi
    else
      not_ok "nix flake metadata failed:"
      sed 's/^/#   /' "$work/metadata.err"
    fi
  fi
fi

[ "${run_module_checks:-0}" -eq 1 ] && echo "# 5. the VM tests' Python scripts"
if [ "${run_module_checks:-0}" -ne 1 ]; then
  : # said above
elif ! command -v python3 > /dev/null; then
  skip "VM test scripts: python3 is not installed"
elif ! eval_json tests/nix/vm-scripts.nix > "$work/scripts.json" 2> "$work/scripts.err"; then
  not_ok "VM test scripts do not evaluate:"
  sed 's/^/#   /' "$work/scripts.err"
else
  if out=$(python3 - "$work/scripts.json" 2>&1 << 'EOF'
import json
import sys

scripts = json.load(open(sys.argv[1]))
for name, source in sorted(scripts.items()):
    compile(source, name, "exec")
print(" ".join(sorted(scripts)))
EOF
  ); then
    ok "VM test scripts compile: $out"
  else
    not_ok "VM test scripts do not compile: $out"
  fi
fi

echo "# 6. the shipped systemd units"
if ! command -v systemd-analyze > /dev/null; then
  skip "systemd units: systemd-analyze is not installed"
else
  # As the package installs them, with a stand-in binary where ExecStart points.
  mkdir -p "$work/units" "$work/bin"
  printf '#!/bin/sh\n' > "$work/bin/nix-cache-login"
  chmod +x "$work/bin/nix-cache-login"
  units=()
  for unit in systemd/*.socket systemd/*.service; do
    sed "s|@bindir@|$work/bin|g" "$unit" > "$work/units/${unit##*/}"
    units+=("$work/units/${unit##*/}")
  done
  # verify exits 0 on an unknown key or a value it cannot parse; any message is a fault.
  if out=$(systemd-analyze verify --man=no "${units[@]}" 2>&1) && [ -z "$out" ]; then
    ok "systemd units verify cleanly: ${units[*]##*/}"
  else
    not_ok "systemd-analyze verify complains about systemd/:"
    printf '%s\n' "$out" | sed "s|$work/units/|systemd/|g; s/^/#   /"
  fi
fi

summary="nix-checks: $passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# nix-cache-login, end to end on your machine, in one command:
#
#   ./demo.sh                        # you log in, in your own browser
#   DEMO_BROWSER=headless ./demo.sh  # headless chromium logs in for you (unattended)
#
# It builds the CLI (cargo build --release), then, all on 127.0.0.1 and in a temp dir:
#   1. builds a tiny store path with real Nix and puts it, signed, in a binary cache dir;
#   2. starts the test OpenID provider (tests/idp/provider.mjs, plain HTTP so your browser
#      needs no test CA) and a binary cache that answers 401 unless the Basic-auth password
#      is a live access token of that provider (tests/idp/cache.mjs);
#   3. shows Nix refused by the cache, runs `nix-cache-login login`, shows `status`, has Nix
#      substitute the path through the cache with the fresh token, then `logout`, and Nix is
#      refused again.
# Nix runs with a private nix.conf and private stores: /nix and /etc/nix are not touched,
# and nothing reaches the internet. Everything it started is stopped when it ends.
#
# Needs what .ci/install-deps installs (it runs it when something is missing: apt needs root
# or sudo). DEMO_KEEP=1 keeps the temp dir; DEMO_LOGIN_TIMEOUT (seconds, default 300).
set -euo pipefail
cd "$(dirname "$0")"
repo=$(pwd)

mode=${DEMO_BROWSER:-own}
case "$mode" in
own | headless) ;;
*)
  echo "DEMO_BROWSER must be 'headless' or unset, not '$mode'" >&2
  exit 2
  ;;
esac

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
[ -t 1 ] || step() { printf '\n==> %s\n' "$*"; }

# ------------------------------------------------------------------ dependencies
missing=()
for cmd in nix-store nix-build node openssl curl cargo; do
  command -v "$cmd" >/dev/null || missing+=("$cmd")
done
[ -f tests/idp/node_modules/oidc-provider/package.json ] || missing+=("tests/idp/node_modules")
if [ "$mode" = headless ] && ! command -v chromium >/dev/null; then missing+=(chromium); fi
if ((${#missing[@]})); then
  step "Installing what is missing (${missing[*]}) with .ci/install-deps"
  .ci/install-deps
fi

step "Building nix-cache-login (cargo build --release)"
cargo build --release --quiet
cli="$repo/target/release/nix-cache-login"

# ------------------------------------------------------------------ cleanup
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nix-cache-login-demo.XXXXXX")
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  # A headless browser run that is still going, and its chromium.
  for f in "$tmp"/browser/pids/*.pids; do
    [ -f "$f" ] || continue
    for pid in $(cat "$f"); do kill -KILL "$pid" 2>/dev/null || true; done
  done
  exec 7>&- 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -n "${DEMO_KEEP:-}" ]; then
    echo "kept $tmp"
  else
    chmod -R u+w "$tmp" 2>/dev/null || true # store paths are read-only
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Started processes read this fifo: if this script dies, even by SIGKILL, its write end
# (fd 7, which no child keeps) closes and they exit (IDP_/CACHE_EXIT_ON_STDIN_EOF).
mkfifo "$tmp/lifeline"

# wait_ready LOGFILE PID NAME ERRFILE: prints what follows "READY " on the first such line.
wait_ready() {
  local i line
  for ((i = 0; i < 900; i++)); do
    line=$(grep -m1 '^READY ' "$1" 2>/dev/null || true)
    if [ -n "$line" ]; then
      echo "${line#READY }"
      return 0
    fi
    if ! kill -0 "$2" 2>/dev/null; then
      echo "$3 exited before it was ready:" >&2
      cat "$4" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "$3 was not ready within 90 s:" >&2
  cat "$4" >&2
  return 1
}

# ------------------------------------------------------------------ Nix: a path and a cache
step "Building a store path with real Nix and copying it, signed, into a binary cache dir"
mkdir -p "$tmp/nix/conf" "$tmp/nix/home"
cat >"$tmp/nix/conf/nix.conf" <<'EOF'
# demo.sh: no nixbld users, no daemon, no /nix, no internet
build-users-group =
sandbox = false
extra-sandbox-paths = /bin /lib /lib64 /usr
substituters =
trusted-public-keys =
require-sigs = true
narinfo-cache-negative-ttl = 0
connect-timeout = 5
experimental-features = nix-command
EOF
# Every Nix command: the demo's nix.conf, and a HOME of its own (Nix's narinfo cache).
nixenv() {
  local home=$1
  shift
  mkdir -p "$home"
  env NIX_CONF_DIR="$tmp/nix/conf" HOME="$home" XDG_CACHE_HOME="$home/.cache" \
    XDG_CONFIG_HOME="$home/.config" "$@" 7>&-
}
nixenv "$tmp/nix/home" nix-store --generate-binary-cache-key demo-cache-1 \
  "$tmp/nix/cache-key.secret" "$tmp/nix/cache-key.public"
pubkey=$(cat "$tmp/nix/cache-key.public")
greeting="hello from nix-cache-login demo $(date +%s)"
cat >"$tmp/nix/path.nix" <<EOF
builtins.derivation {
  name = "ncl-demo";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "echo '$greeting' > \$out" ];
}
EOF
path=$(nixenv "$tmp/nix/home" nix-build --store "$tmp/nix/build-store" "$tmp/nix/path.nix" \
  --no-out-link --quiet)
nixenv "$tmp/nix/home" nix copy --store "$tmp/nix/build-store" \
  --to "file://$tmp/nix/binary-cache?secret-key=$tmp/nix/cache-key.secret&compression=none" "$path"
echo "built $path (in a private store) and copied it to $tmp/nix/binary-cache"

# ------------------------------------------------------------------ provider and cache
step "Starting the test OpenID provider (oidc-provider, plain HTTP on 127.0.0.1)"
(
  cd tests/idp
  IDP_HTTP=1 IDP_EXIT_ON_STDIN_EOF=1 IDP_REQUEST_LOG="$tmp/provider-requests.log" \
    exec setsid node provider.mjs <"$tmp/lifeline" >"$tmp/provider.out" 2>"$tmp/provider.err"
) &
pids+=($!)
exec 7>"$tmp/lifeline"
issuer=$(wait_ready "$tmp/provider.out" "${pids[0]}" "the provider" "$tmp/provider.err")
echo "issuer: $issuer"

step "Starting the protected binary cache (checks each token against the provider's JWKS)"
(
  cd tests/idp
  CACHE_DIR="$tmp/nix/binary-cache" CACHE_ISSUER="$issuer" CACHE_EXIT_ON_STDIN_EOF=1 \
    CACHE_REQUEST_LOG="$tmp/cache-requests.log" \
    exec setsid node cache.mjs <"$tmp/lifeline" 7>&- >"$tmp/cache.out" 2>"$tmp/cache.err"
) &
pids+=($!)
cache_url=$(wait_ready "$tmp/cache.out" "${pids[1]}" "the cache" "$tmp/cache.err")
cache_host=${cache_url#http://}
echo "cache: $cache_url (401 unless Basic auth carries a live access token; audience https://cache.test)"

# ------------------------------------------------------------------ the CLI
mkdir -p "$tmp/cli/state" "$tmp/cli/cache"
chmod 700 "$tmp/cli" "$tmp/cli/state" "$tmp/cli/cache"
cat >"$tmp/cli/config.toml" <<EOF
issuer = "$issuer"
client_id = "nix-cache-login"
cache_host = "$cache_host"
netrc_path = "$tmp/cli/netrc"
EOF
ncl() {
  env XDG_STATE_HOME="$tmp/cli/state" XDG_CACHE_HOME="$tmp/cli/cache" \
    "$cli" --config "$tmp/cli/config.toml" "$@" 7>&-
}
echo "config ($tmp/cli/config.toml):"
sed 's/^/  /' "$tmp/cli/config.toml"

# nix_fetch N: substitutes the path into a new empty store, reading the CLI's netrc.
nix_fetch() {
  local n=$1 mark
  mark=$(wc -l <"$tmp/cache-requests.log" 2>/dev/null || echo 0)
  echo "\$ nix-store --store <empty store $n> --realise $path \\"
  echo "    --option substituters $cache_url --option netrc-file $tmp/cli/netrc ..."
  local rc=0
  nixenv "$tmp/nix/run-$n-home" nix-store --store "$tmp/nix/store-$n" --realise "$path" \
    --option substituters "$cache_url" --option trusted-public-keys "$pubkey" \
    --option netrc-file "$tmp/cli/netrc" >"$tmp/nix/run-$n.out" 2>&1 || rc=$?
  sed 's/^/  nix: /' "$tmp/nix/run-$n.out"
  echo "  what the cache saw:"
  tail -n +"$((mark + 1))" "$tmp/cache-requests.log" | sed 's/^/    /'
  return "$rc"
}

step "Before login: Nix asks the cache without a token and is refused"
if nix_fetch 1; then
  echo "unexpected: Nix fetched the path without a token" >&2
  exit 1
fi
echo "=> refused, as it should be (Nix 2.8 words a 401 as \"does not appear to be a binary cache\")"

step "nix-cache-login login"
login_timeout=${DEMO_LOGIN_TIMEOUT:-300}
if [ "$mode" = headless ]; then
  mkdir -p "$tmp/browser/pids"
  hook="$repo/tests/idp/browser.sh"
  case "$hook" in *:* | *' '*)
    echo "the repo path must not hold ':' or spaces for \$BROWSER: $hook" >&2
    exit 1
    ;;
  esac
  echo "DEMO_BROWSER=headless: headless chromium (tests/idp/browser.sh) logs in as alice."
  BROWSER="$hook" BROWSER_MODE=approve BROWSER_LOG="$tmp/browser/log" \
    BROWSER_RESULT="$tmp/browser/result.json" BROWSER_PID_DIR="$tmp/browser/pids" \
    BROWSER_TIMEOUT=60 ncl login --timeout 90s
else
  cat <<EOF
Your browser opens the test provider's login page ($issuer, plain HTTP on
127.0.0.1, so no certificate warning). It is a test provider: type any login name, e.g.

    login:    alice
    password: anything (it is not checked)

then press Continue on the consent page. (No browser? Open the URL printed below by hand.)
EOF
  ncl login --timeout "${login_timeout}s"
fi

step "nix-cache-login status"
ncl status
echo "the netrc Nix reads ($tmp/cli/netrc), token shortened:"
sed -E 's/^(password )(.{24}).*$/\1\2...  (a JWT)/; s/^/  /' "$tmp/cli/netrc"

step "After login: Nix substitutes the path through the protected cache"
if ! nix_fetch 2; then
  echo "Nix could not fetch the path with the fresh token" >&2
  exit 1
fi
fetched="$tmp/nix/store-2$path"
echo "=> fetched into an empty store: $(cat "$fetched")"

step "nix-cache-login logout: the token leaves the netrc, and Nix is refused again"
logout_rc=0
ncl logout || logout_rc=$?
if [ "$logout_rc" -ne 0 ]; then
  echo "note: logout exited $logout_rc: it removed the netrc entry and the stored tokens, but"
  echo "      revoking them at the provider failed (message above); they expire on their own."
fi
if nix_fetch 3; then
  echo "unexpected: Nix fetched the path after logout" >&2
  exit 1
fi
echo "=> refused"

step "Done"
echo "Nix ran 3 times against the token-protected cache: refused before login, fetched after"
echo "login, refused after logout. Stopping the provider and the cache."

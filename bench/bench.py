#!/usr/bin/env python3
"""Benchmark of nix-cache-login against the physical floor (see bench/run.sh).

Starts the test provider (tests/idp) on 127.0.0.1 over HTTPS, logs in once through the
headless-browser hook, then measures each command and its curl/cat baseline side by side,
interleaved, and prints one table (also written as JSON). Wall times are medians; peak RSS
comes from GNU time (/usr/bin/time); request counts from the provider's log.

A second provider sends its discovery document and JWKS with `Cache-Control: no-store`
(IDP_DISCOVERY_NO_STORE=1, issue 15): a warm refresh there should still cost one request (the
tool keeps the documents an hour at least), and two with NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL=0,
which obeys the provider.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402  (the shared helpers)
    BIN, IDP, RUNS, SERVER_SECRET, Case, Provider, check, machine, median_ms,
    print_table, require_binary, run_timed, sample, save_results, tool,
)
from common import sandbox as common_sandbox  # noqa: E402


def peak_rss_kib(argv, env):
    """Peak RSS of one run, as GNU time reports it. (Its own small process forks the command,
    so the figure is the command's; a fork of this Python process would start from Python's
    resident size.)"""
    with tempfile.NamedTemporaryFile("r") as out:
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name, *argv], env=env,
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return int(out.read().split()[-1])


def main():
    require_binary()
    work = Path(tempfile.mkdtemp(prefix="ncl-bench-"))
    with Provider(work / "idp") as provider, \
            Provider(work / "idp-no-store", IDP_DISCOVERY_NO_STORE="1") as no_store:
        results = measure(work, provider, no_store)
    shutil.rmtree(work, ignore_errors=True)
    report(results)


def sandbox(work: Path, provider: Provider, name: str, client_id: str, secret: bool):
    home = work / name
    home.mkdir(parents=True, exist_ok=True)
    config = []
    if secret:
        (home / "secret").write_text(SERVER_SECRET + "\n")
        (home / "secret").chmod(0o600)
        config.append(f'client_secret_file = "{home / "secret"}"')
    env = common_sandbox(home, provider.issuer, client_id, provider.ca, config, {
        "BROWSER": str(IDP / "browser.sh"), "BROWSER_LOG": str(home / "browser.log"),
        "BROWSER_RESULT": str(home / "browser.json"), "BROWSER_PID_DIR": str(home / "pids")})
    return home, env


def logged_in(work: Path, provider: Provider, name: str, **extra_env: str):
    """A user sandbox on `provider` with a session from one browser login."""
    home, env = sandbox(work, provider, name, "nix-cache-login", False)
    env.update(extra_env)
    _, code, out, err = run_timed(tool(home, "login", "--timeout", "90s"), env)
    check(code, out, err, f"login ({name})")
    return home, env


def measure(work: Path, provider: Provider, no_store: Provider):
    user_home, user_env = logged_in(work, provider, "user")
    srv_home, srv_env = sandbox(work, provider, "server", "nix-cache-server", True)
    # Two sessions on the no-store provider, each with its own discovery cache: the expiry
    # is fixed when a document is written, so one cache cannot serve both lifetimes.
    floor_home, floor_env = logged_in(work, no_store, "no-store")
    obey_home, obey_env = logged_in(work, no_store, "no-store-obey",
                                    NIX_CACHE_LOGIN_DISCOVERY_MIN_TTL="0")
    store = next((user_home / "state" / "nix-cache-login").glob("*.json"))
    refresh_token = json.loads(store.read_text())["refresh_token"]
    token_url = provider.issuer + "/token"
    curl = shutil.which("curl")
    curl_refresh = [curl, "-sS", "-f", "-o", "/dev/null", "--cacert", str(provider.ca),
                    "-d", "grant_type=refresh_token", "-d", "client_id=nix-cache-login",
                    "-d", f"refresh_token={refresh_token}", token_url]
    curl_cc = [curl, "-sS", "-f", "-o", "/dev/null", "--cacert", str(provider.ca),
               "-u", f"nix-cache-server:{SERVER_SECRET}",
               "-d", "grant_type=client_credentials", token_url]
    discovery_cache = user_home / "cache" / "nix-cache-login"

    cases = {
        "refresh (warm)": Case(tool(user_home, "refresh"), user_env, provider=provider),
        "curl refresh POST": Case(curl_refresh, user_env, provider=provider),
        "service-account (warm)": Case(
            tool(srv_home, "service-account"), srv_env, provider=provider),
        "curl client_credentials POST": Case(curl_cc, srv_env, provider=provider),
        "refresh (cold: no discovery cache)": Case(
            tool(user_home, "refresh"), user_env, provider=provider,
            before=lambda: shutil.rmtree(discovery_cache, True)),
        NO_STORE_WARM: Case(tool(floor_home, "refresh"), floor_env, provider=no_store),
        NO_STORE_OBEYED: Case(tool(obey_home, "refresh"), obey_env, provider=no_store),
        "refresh --min-valid 5m (nothing due)": Case(
            tool(user_home, "refresh", "--min-valid", "5m"), user_env, provider=provider),
        "status": Case(tool(user_home, "status"), user_env, provider=provider),
        "cat netrc": Case(["/bin/cat", str(user_home / "netrc")], user_env, provider=provider),
    }
    samples = sample(cases, RUNS)

    requests = {}
    for name, case in cases.items():
        if case.before:
            case.before()
        case.provider.clear_log()
        _, code, out, err = run_timed(case.argv, case.env)
        check(code, out, err, name)
        requests[name] = len(case.provider.requests())
    rss = {}
    for name, case in cases.items():
        if case.before:
            case.before()
        rss[name] = peak_rss_kib(case.argv, case.env)

    med = {name: median_ms(s) for name, s in samples.items()}
    return {
        "machine": machine(),
        "runs": RUNS,
        "binary_bytes": BIN.stat().st_size,
        "cases": [{"case": name, "median_ms": round(med[name], 2),
                   "min_ms": round(min(samples[name]) * 1000, 2),
                   "requests": requests[name], "peak_rss_kib": rss[name]} for name in cases],
        "ratios": {
            "refresh / curl": round(med["refresh (warm)"] / med["curl refresh POST"], 3),
            "service-account / curl": round(
                med["service-account (warm)"] / med["curl client_credentials POST"], 3),
            "refresh (no-store provider) / curl": round(
                med[NO_STORE_WARM] / med["curl refresh POST"], 3),
        },
        "goals": {
            "requests per warm refresh, provider sends no-store (issue 15)": {
                "goal": 1, "measured": requests[NO_STORE_WARM],
                "met": requests[NO_STORE_WARM] == 1},
            "requests per warm refresh, no-store obeyed (MIN_TTL=0, contrast)": {
                "expected": 2, "measured": requests[NO_STORE_OBEYED]},
        },
    }


NO_STORE_WARM = "refresh (warm, no-store provider)"
NO_STORE_OBEYED = "refresh (no-store obeyed, MIN_TTL=0)"


def report(r):
    out = save_results(r, "BENCH_JSON", "results.json")
    print(f"machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, "
          f"kernel {r['machine']['kernel']}; {r['runs']} runs per case")
    print(f"binary: {r['binary_bytes']} bytes ({r['binary_bytes'] / 1e6:.2f} MB) stripped")
    print_table(
        [("case", 38), ("median ms", 9), ("min ms", 7), ("requests", 8), ("peak RSS MiB", 12)],
        [[c["case"], f"{c['median_ms']:.2f}", f"{c['min_ms']:.2f}", str(c["requests"]),
          f"{c['peak_rss_kib'] / 1024:.1f}"] for c in r["cases"]])
    for k, v in r["ratios"].items():
        print(f"{k}: {v}")
    for k, v in r["goals"].items():
        print(f"{k}: {v}")
    print(f"(JSON: {out})")


if __name__ == "__main__":
    main()

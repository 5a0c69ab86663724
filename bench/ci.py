#!/usr/bin/env python3
"""Benchmark of `nix-cache-login ci` (see bench/run.sh): requests per run and wall time beside
curl doing the same two requests (GitHub's ID-token GET, then the token POST).

Starts the CI issuer stand-in (tests/idp/ci-issuer.mjs) and the test provider with CI
federation on 127.0.0.1 over HTTPS. Request counts come from both servers' logs; wall times
are medians of interleaved runs. Prints a table and writes bench/results-ci.json.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the shared helpers: provider, timing, machine)

AUDIENCE = "https://cache.test"


class CiIssuer:
    def __init__(self, work: Path):
        self.work = work
        self.ca = work / "ca.pem"
        self.log = work / "ci-requests.log"
        bench.Provider._make_certs(types.SimpleNamespace(work=work, ca=self.ca))
        self.request_token = "ghs_bench_request_token"
        env = dict(os.environ, CI_TLS_CERT=str(work / "srv.pem"), CI_TLS_KEY=str(work / "srv.key"),
                   CI_REQUEST_TOKEN=self.request_token, CI_REQUEST_LOG=str(self.log),
                   CI_TOKEN_TTL="3600", CI_EXIT_ON_STDIN_EOF="1")
        self.proc = subprocess.Popen(["node", str(bench.IDP / "ci-issuer.mjs")], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(work / "ci-issuer.err", "w"),
                                     start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if line.startswith("READY "):
                _, self.issuer, self.request_url = line.split()
                return
            if not line and self.proc.poll() is not None:
                break
        raise SystemExit("the CI issuer did not start; see " + str(work / "ci-issuer.err"))

    def requests(self):
        return self.log.read_text().splitlines() if self.log.exists() else []

    def clear_log(self):
        self.log.write_text("")

    stop = bench.Provider.stop


def main():
    if not bench.BIN.exists():
        raise SystemExit(f"{bench.BIN} is missing: cargo build --release first")
    work = Path(tempfile.mkdtemp(prefix="ncl-bench-ci-"))
    (work / "ci").mkdir()
    (work / "idp").mkdir()
    ci = CiIssuer(work / "ci")
    os.environ.update(IDP_CI_ISSUER=ci.issuer, IDP_CI_AUDIENCE=AUDIENCE,
                      IDP_CI_REPOSITORY="acme/app", IDP_CI_CA_FILE=str(ci.ca))
    provider = None
    try:
        provider = bench.Provider(work / "idp")
        results = measure(work, ci, provider)
    finally:
        if provider:
            provider.stop()
        ci.stop()
    shutil.rmtree(work, ignore_errors=True)
    report(results)


def sandbox(work, issuer, client_id, bundle, ci):
    home = work / f"home-{client_id}-{issuer.rsplit(':', 1)[-1]}"
    for sub in ("state", "cache", "config"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'issuer = "{issuer}"\nclient_id = "{client_id}"\ncache_host = "cache.test"\n'
        f'netrc_path = "{home / "netrc"}"\n')
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "SSL_CERT_FILE": str(bundle),
           "XDG_STATE_HOME": str(home / "state"), "XDG_CACHE_HOME": str(home / "cache"),
           "XDG_CONFIG_HOME": str(home / "config"), "LANG": "C.UTF-8",
           "ACTIONS_ID_TOKEN_REQUEST_URL": ci.request_url,
           "ACTIONS_ID_TOKEN_REQUEST_TOKEN": ci.request_token}
    return home, env


def measure(work, ci, provider):
    bundle = work / "bundle.pem"
    bundle.write_bytes(provider.ca.read_bytes() + ci.ca.read_bytes())
    fed_home, fed_env = sandbox(work, provider.issuer, "nix-cache-ci", bundle, ci)
    dir_home, dir_env = sandbox(work, ci.issuer, "unused", bundle, ci)
    tool = lambda home, *args: [str(bench.BIN), "--config", str(home / "config.toml"), *args]
    github = ["ci", "--source", "github-actions", "--audience", AUDIENCE]
    # curl doing what `ci --grant jwt-bearer` does: GET the job's token, POST it.
    curl_two = ["/bin/sh", "-c",
                'set -e; t=$(curl -sS -f --cacert "$B" -H "Authorization: bearer $RT" "$U&audience=$A"'
                ' | sed -E \'s/.*"value":"([^"]*)".*/\\1/\'); '
                'curl -sS -f -o /dev/null --cacert "$B" -d client_id=nix-cache-ci '
                '-d grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer '
                '--data-urlencode "assertion=$t" "$T"']
    curl_env = dict(fed_env, B=str(bundle), RT=ci.request_token, U=ci.request_url, A=AUDIENCE,
                    T=provider.issuer + "/token")
    curl_one = ["curl", "-sS", "-f", "-o", "/dev/null", "--cacert", str(bundle),
                "-H", f"Authorization: bearer {ci.request_token}",
                f"{ci.request_url}&audience={AUDIENCE}"]
    discovery_cache = fed_home / "cache" / "nix-cache-login"
    cases = {
        "ci jwt-bearer (warm)": (tool(fed_home, *github, "--grant", "jwt-bearer"), fed_env, None),
        "ci token-exchange (warm)": (tool(fed_home, *github, "--grant", "token-exchange"), fed_env, None),
        "curl ID-token GET + jwt-bearer POST": (curl_two, curl_env, None),
        "ci direct": (tool(dir_home, *github, "--grant", "direct"), dir_env, None),
        "curl ID-token GET": (curl_one, dir_env, None),
        "ci jwt-bearer (cold: no discovery cache)": (
            tool(fed_home, *github, "--grant", "jwt-bearer"), fed_env,
            lambda: shutil.rmtree(discovery_cache, True)),
        "ci --min-valid 5m (nothing due)": (
            tool(fed_home, *github, "--grant", "jwt-bearer", "--min-valid", "5m"), fed_env, None),
    }
    for argv, env, before in cases.values():
        if before:
            before()
        _, code, out, err = bench.run_timed(argv, env)
        bench.check(code, out, err, argv)
    samples = {name: [] for name in cases}
    for _ in range(bench.RUNS):
        for name, (argv, env, before) in cases.items():
            if before:
                before()
            t, code, out, err = bench.run_timed(argv, env)
            bench.check(code, out, err, name)
            samples[name].append(t)
    requests = {}
    for name, (argv, env, before) in cases.items():
        if before:
            before()
        # The --min-valid case must find a fresh token: run the grant first.
        if "min-valid" in name:
            bench.run_timed(cases["ci jwt-bearer (warm)"][0], fed_env)
        ci.clear_log()
        provider.clear_log()
        _, code, out, err = bench.run_timed(argv, env)
        bench.check(code, out, err, name)
        requests[name] = {"ci": len(ci.requests()), "provider": len(provider.requests())}
    med = {name: bench.median_ms(s) for name, s in samples.items()}
    return {
        "machine": bench.machine(),
        "runs": bench.RUNS,
        "cases": [{"case": name, "median_ms": round(med[name], 2),
                   "min_ms": round(min(samples[name]) * 1000, 2),
                   "ci_requests": requests[name]["ci"],
                   "provider_requests": requests[name]["provider"]} for name in cases],
        "ratios": {
            "ci jwt-bearer / curl (same two requests)": round(
                med["ci jwt-bearer (warm)"] / med["curl ID-token GET + jwt-bearer POST"], 3),
            "ci direct / curl (same one request)": round(
                med["ci direct"] / med["curl ID-token GET"], 3),
        },
    }


def report(r):
    out = Path(os.environ.get("BENCH_CI_JSON", bench.ROOT / "bench" / "results-ci.json"))
    out.write_text(json.dumps(r, indent=2) + "\n")
    print(f"machine: {r['machine']['cpu']}, {r['machine']['cores']} cores; {r['runs']} runs per case")
    print(f"| {'case':<42} | {'median ms':>9} | {'min ms':>7} | {'CI req':>6} | {'IdP req':>7} |")
    print(f"|{'-' * 44}|{'-' * 11}|{'-' * 9}|{'-' * 8}|{'-' * 9}|")
    for c in r["cases"]:
        print(f"| {c['case']:<42} | {c['median_ms']:>9.2f} | {c['min_ms']:>7.2f} | "
              f"{c['ci_requests']:>6} | {c['provider_requests']:>7} |")
    for k, v in r["ratios"].items():
        print(f"{k}: {v}")
    print(f"(JSON: {out})")


if __name__ == "__main__":
    main()

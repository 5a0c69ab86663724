#!/usr/bin/env python3
"""Benchmark of `nix-cache-login ci` (see bench/run.sh): requests per run and wall time beside
curl doing the same two requests (GitHub's ID-token GET, then the token POST).

Starts the CI issuer stand-in (tests/idp/ci-issuer.mjs) and the test provider with CI
federation on 127.0.0.1 over HTTPS. Request counts come from both servers' logs; wall times
are medians of interleaved runs. Prints a table and writes bench/results-ci.json.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402  (the shared helpers)
    RUNS, Case, Provider, Service, check, machine, median_ms, require_binary,
    print_table, run_timed, sample, sandbox, save_results, tool,
)

AUDIENCE = "https://cache.test"


class CiIssuer(Service):
    """The CI issuer stand-in (tests/idp/ci-issuer.mjs): GitHub's ID-token endpoint."""

    def __init__(self, work: Path):
        super().__init__(work, "ci-issuer")
        self.request_token = "ghs_bench_request_token"
        env = dict(os.environ, CI_TLS_CERT=str(work / "srv.pem"), CI_TLS_KEY=str(work / "srv.key"),
                   CI_REQUEST_TOKEN=self.request_token, CI_REQUEST_LOG=str(self.log),
                   CI_TOKEN_TTL="3600", CI_EXIT_ON_STDIN_EOF="1")
        self.issuer, self.request_url = self.start("ci-issuer.mjs", env, timeout=60)


def main():
    require_binary()
    work = Path(tempfile.mkdtemp(prefix="ncl-bench-ci-"))
    with CiIssuer(work / "ci") as ci:
        os.environ.update(IDP_CI_ISSUER=ci.issuer, IDP_CI_AUDIENCE=AUDIENCE,
                          IDP_CI_REPOSITORY="acme/app", IDP_CI_CA_FILE=str(ci.ca))
        with Provider(work / "idp") as provider:
            results = measure(work, ci, provider)
    shutil.rmtree(work, ignore_errors=True)
    report(results)


def github_sandbox(work, issuer, client_id, bundle, ci):
    """A CLI sandbox with GitHub's two ID-token variables set."""
    home = work / f"home-{client_id}-{issuer.rsplit(':', 1)[-1]}"
    env = sandbox(home, issuer, client_id, bundle, extra_env={
        "ACTIONS_ID_TOKEN_REQUEST_URL": ci.request_url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": ci.request_token})
    return home, env


def measure(work, ci, provider):
    bundle = work / "bundle.pem"
    bundle.write_bytes(provider.ca.read_bytes() + ci.ca.read_bytes())
    fed_home, fed_env = github_sandbox(work, provider.issuer, "nix-cache-ci", bundle, ci)
    dir_home, dir_env = github_sandbox(work, ci.issuer, "unused", bundle, ci)
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
        "ci jwt-bearer (warm)": Case(tool(fed_home, *github, "--grant", "jwt-bearer"), fed_env),
        "ci token-exchange (warm)": Case(
            tool(fed_home, *github, "--grant", "token-exchange"), fed_env),
        "curl ID-token GET + jwt-bearer POST": Case(curl_two, curl_env),
        "ci direct": Case(tool(dir_home, *github, "--grant", "direct"), dir_env),
        "curl ID-token GET": Case(curl_one, dir_env),
        "ci jwt-bearer (cold: no discovery cache)": Case(
            tool(fed_home, *github, "--grant", "jwt-bearer"), fed_env,
            before=lambda: shutil.rmtree(discovery_cache, True)),
        "ci --min-valid 5m (nothing due)": Case(
            tool(fed_home, *github, "--grant", "jwt-bearer", "--min-valid", "5m"), fed_env),
    }
    samples = sample(cases, RUNS)
    requests = {}
    for name, (argv, env, before, _) in cases.items():
        if before:
            before()
        # The --min-valid case must find a fresh token: run the grant first.
        if "min-valid" in name:
            run_timed(cases["ci jwt-bearer (warm)"].argv, fed_env)
        ci.clear_log()
        provider.clear_log()
        _, code, out, err = run_timed(argv, env)
        check(code, out, err, name)
        requests[name] = {"ci": len(ci.requests()), "provider": len(provider.requests())}
    med = {name: median_ms(s) for name, s in samples.items()}
    return {
        "machine": machine(),
        "runs": RUNS,
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
    out = save_results(r, "BENCH_CI_JSON", "results-ci.json")
    print(f"machine: {r['machine']['cpu']}, {r['machine']['cores']} cores; {r['runs']} runs per case")
    print_table(
        [("case", 42), ("median ms", 9), ("min ms", 7), ("CI req", 6), ("IdP req", 7)],
        [[c["case"], f"{c['median_ms']:.2f}", f"{c['min_ms']:.2f}", str(c["ci_requests"]),
          str(c["provider_requests"])] for c in r["cases"]])
    for k, v in r["ratios"].items():
        print(f"{k}: {v}")
    print(f"(JSON: {out})")


if __name__ == "__main__":
    main()

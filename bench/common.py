"""What the benchmarks share (bench.py, ci.py, bridge.py): paths, timed runs, the test
services on 127.0.0.1 (their READY line, their request logs), CLI sandboxes and the machine's
description."""

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple, Optional

ROOT = Path(__file__).resolve().parent.parent
IDP = ROOT / "tests" / "idp"
BIN = Path(os.environ.get("NCL_BIN", ROOT / "target" / "release" / "nix-cache-login"))
RUNS = int(os.environ.get("BENCH_RUNS", "30"))
SERVER_SECRET = "bench-server-secret"


def require_binary():
    if not BIN.exists():
        raise SystemExit(f"{BIN} is missing: cargo build --release first")


def run_timed(argv, env, stdin=subprocess.DEVNULL):
    """Runs argv once; returns (wall seconds, exit code, stdout, stderr)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    return elapsed, proc.returncode, out, err


def check(code, out, err, what):
    if code != 0:
        sys.stderr.write(err.decode(errors="replace"))
        raise SystemExit(f"{what} failed with exit {code}")


def median_ms(samples):
    return statistics.median(samples) * 1000.0


class Case(NamedTuple):
    argv: list
    env: dict
    before: Optional[Callable[[], None]] = None
    # Whose request log counts the case's requests (bench.py).
    provider: Optional["Provider"] = None


def run_case(name: str, case: Case) -> float:
    """One timed run of `case` (after its preparation, untimed); returns wall seconds."""
    if case.before:
        case.before()
    elapsed, code, out, err = run_timed(case.argv, case.env)
    check(code, out, err, name)
    return elapsed


def sample(cases: dict, runs: int) -> dict:
    """Runs every case once (warming it, filling the discovery caches), then `runs` times
    interleaved so that a slow moment of the machine hits all cases alike; returns each
    case's wall seconds."""
    for name, case in cases.items():
        run_case(name, case)
    samples = {name: [] for name in cases}
    for _ in range(runs):
        for name, case in cases.items():
            samples[name].append(run_case(name, case))
    return samples


def make_certs(work: Path, ca: Path):
    """A CA at `ca` and a server certificate for 127.0.0.1 signed by it (work/srv.pem, .key)."""
    def ossl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", work / "ca.key", "-out",
         ca, "-days", "2", "-subj", "/CN=bench CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", work / "srv.key", "-out",
         work / "srv.csr", "-subj", "/CN=127.0.0.1")
    (work / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                              "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", work / "srv.csr", "-CA", ca, "-CAkey", work / "ca.key",
         "-CAcreateserial", "-out", work / "srv.pem", "-days", "2", "-extfile", work / "ext")


class Service:
    """A tests/idp script on HTTPS with its own CA (self.ca) and request log (self.log).
    `start` returns the words after READY once it listens; it stops with its stdin
    (`*_EXIT_ON_STDIN_EOF=1`), `stop`, or at the end of a `with` block."""

    def __init__(self, work: Path, name: str):
        work.mkdir(parents=True, exist_ok=True)
        self.work = work
        self.name = name
        self.ca = work / "ca.pem"
        self.log = work / f"{name}-requests.log"
        make_certs(work, self.ca)

    def start(self, script: str, env: dict, timeout: float):
        err = self.work / f"{self.name}.err"
        self.proc = subprocess.Popen(["node", str(IDP / script)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(err, "w"), start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if line.startswith("READY "):
                return line.split()[1:]
            if not line and self.proc.poll() is not None:
                break
        raise SystemExit(f"the {self.name} did not start; see {err}")

    def requests(self):
        return self.log.read_text().splitlines() if self.log.exists() else []

    def clear_log(self):
        self.log.write_text("")

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.stop()


class Provider(Service):
    """The test provider (tests/idp/provider.mjs); `extra_env` adds IDP_* settings."""

    def __init__(self, work: Path, **extra_env: str):
        super().__init__(work, "provider")
        env = dict(os.environ,
                   IDP_TLS_CERT=str(work / "srv.pem"), IDP_TLS_KEY=str(work / "srv.key"),
                   IDP_PORT="0", IDP_REQUEST_LOG=str(self.log),
                   IDP_SERVER_CLIENT_SECRET=SERVER_SECRET,
                   # Long lives so nothing expires mid-run; no rotation so that the tool and
                   # curl can each send the same refresh token again and again.
                   IDP_ACCESS_TOKEN_TTL="3600", IDP_CLIENT_CREDENTIALS_TTL="3600",
                   IDP_REFRESH_TOKEN_TTL="86400", IDP_SESSION_TTL="86400",
                   IDP_GRANT_TTL="86400", IDP_ROTATE_REFRESH_TOKEN="0",
                   IDP_EXIT_ON_STDIN_EOF="1", **extra_env)
        (self.issuer,) = self.start("provider.mjs", env, timeout=90)


def sandbox(home: Path, issuer: str, client_id: str, ca_bundle: Path,
            extra_config=(), extra_env=None):
    """A CLI sandbox at `home` for `client_id` at `issuer` (cache_host cache.test, its own
    netrc and XDG directories); returns (config path, environment)."""
    for sub in ("state", "cache", "config"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    config = [f'issuer = "{issuer}"', f'client_id = "{client_id}"',
              'cache_host = "cache.test"', f'netrc_path = "{home / "netrc"}"', *extra_config]
    (home / "config.toml").write_text("\n".join(config) + "\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "SSL_CERT_FILE": str(ca_bundle),
           "XDG_STATE_HOME": str(home / "state"), "XDG_CACHE_HOME": str(home / "cache"),
           "XDG_CONFIG_HOME": str(home / "config"), "LANG": "C.UTF-8", **(extra_env or {})}
    return env


def tool(home: Path, *args):
    """The tool with `home`'s config (see `sandbox`)."""
    return [str(BIN), "--config", str(home / "config.toml"), *args]


def save_results(r: dict, variable: str, default_name: str) -> Path:
    """Writes `r` as JSON to $variable, or bench/default_name; returns the path."""
    out = Path(os.environ.get(variable, ROOT / "bench" / default_name))
    out.write_text(json.dumps(r, indent=2) + "\n")
    return out


def print_table(columns, rows):
    """A Markdown table: `columns` are (title, width), the first left-aligned and the others
    right-aligned; `rows` hold each row's cells as strings."""
    def line(cells):
        return "| " + " | ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, (_, width)) in enumerate(zip(cells, columns))) + " |"
    print(line([title for title, _ in columns]))
    print("|" + "|".join("-" * (width + 2) for _, width in columns) + "|")
    for row in rows:
        print(line(row))


def machine():
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "curl": subprocess.run(["curl", "--version"], capture_output=True,
                                   text=True).stdout.split("\n")[0]}

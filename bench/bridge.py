#!/usr/bin/env python3
"""Benchmark of a daemon-bridge hand-over (see bench/bridge.sh).

Starts the test provider (tests/idp) on 127.0.0.1 over HTTPS and `nix-cache-login bridge
serve` as root on a private socket, then measures 200 hand-overs (connect, send the put line,
read the answer: the bridge verifies the JWT with its cached JWKS and writes the netrc) beside
200 plain netrc writes that take the same steps as the tool's writer (flock of the sidecar
lock, read, temp file, fsync, rename, fsync of the directory), interleaved. Prints median and
p99 of each and the provider requests made while the JWKS was cached (goal: 0).
Goals: hand-over p50 <= 5 ms, p99 <= 20 ms.
"""

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, ROOT, SERVER_SECRET, Provider, require_binary  # noqa: E402

RUNS = int(os.environ.get("BENCH_HANDOVERS", "200"))
HOST = "cache.test"


def client_credentials(provider):
    out = subprocess.run(
        ["curl", "-sS", "--cacert", str(provider.ca), "-u", f"nix-cache-server:{SERVER_SECRET}",
         "-d", "grant_type=client_credentials", provider.issuer + "/token"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)["access_token"]


def hand_over(sock_path, token):
    line = json.dumps({"v": 1, "op": "put", "host": HOST, "token": token}) + "\n"
    start = time.perf_counter()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(sock_path))
    s.sendall(line.encode())
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        answer += chunk
    s.close()
    elapsed = time.perf_counter() - start
    reply = json.loads(answer)
    if not reply.get("ok"):
        raise SystemExit(f"the bridge refused a hand-over: {reply}")
    return elapsed


def plain_write(path, token):
    """What the netrc writer does for one entry, without the bridge around it."""
    start = time.perf_counter()
    with open(str(path) + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = path.read_bytes() if path.exists() else b""
        kept = old.split(b"machine " + HOST.encode())[0]
        new = kept + f"machine {HOST}\nlogin nix-cache-login\npassword {token}\n".encode()
        tmp = path.parent / f".{path.name}.tmp.bench"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, new)
        os.fsync(fd)
        os.close(fd)
        os.rename(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
    return time.perf_counter() - start


def ms(samples, q):
    s = sorted(samples)
    return 1000.0 * s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def measure(provider, files: Path):
    """200 hand-overs and plain writes with the netrc and state under `files`."""
    files.mkdir(mode=0o700)
    netrc = files / "daemon-netrc"
    netrc.write_text("machine other.example login a password b\n")
    netrc.chmod(0o600)
    config = files / "bridge.toml"
    config.write_text("\n".join([
        f'issuer = "{provider.issuer}"', 'audience = "https://cache.test"',
        f'cache_hosts = ["{HOST}"]', f'netrc_path = "{netrc}"',
        f'state_dir = "{files / "state"}"', ""]))
    config.chmod(0o644)
    sock = files / "bridge.sock"
    bridge = subprocess.Popen(
        [str(BIN), "bridge", "serve", "--config", str(config), "--socket", str(sock)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SSL_CERT_FILE": str(provider.ca)},
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=open(files / "bridge.err", "w"), start_new_session=True)
    try:
        deadline = time.time() + 30
        while not sock.exists():
            if time.time() > deadline or bridge.poll() is not None:
                raise SystemExit("the bridge did not start: " + (files / "bridge.err").read_text())
            time.sleep(0.01)
        tokens = [client_credentials(provider), client_credentials(provider)]
        plain = files / "plain-netrc"
        shutil.copy(netrc, plain)
        hand_over(sock, tokens[0])  # the JWKS is in the bridge's memory after this
        provider.clear_log()
        handovers, writes = [], []
        for i in range(RUNS):
            token = tokens[(i + 1) % 2]  # every hand-over changes the file
            handovers.append(hand_over(sock, token))
            writes.append(plain_write(plain, token))
        return {
            "handover_p50_ms": ms(handovers, 0.5), "handover_p99_ms": ms(handovers, 0.99),
            "plain_write_p50_ms": ms(writes, 0.5), "plain_write_p99_ms": ms(writes, 0.99),
            "provider_requests_while_cached": len(provider.requests()),
        }
    finally:
        bridge.terminate()
        bridge.wait(timeout=10)


def main():
    if os.geteuid() != 0:
        raise SystemExit("the bridge takes only a root-owned config: run this as root")
    require_binary()
    work = Path(tempfile.mkdtemp(prefix="ncl-bench-bridge-"))
    places = {"disk": work / "files"}
    shm = Path("/dev/shm")
    if shm.is_dir():
        places["tmpfs (fsync is free: the bridge's own cost)"] = Path(
            tempfile.mkdtemp(prefix="ncl-bench-bridge-", dir=shm)) / "files"
    cases = {}
    try:
        with Provider(work) as provider:
            for label, files in places.items():
                cases[label] = measure(provider, files)
    finally:
        for files in places.values():
            shutil.rmtree(files.parent, ignore_errors=True)
    disk = cases["disk"]
    result = {
        "runs": RUNS, "cases": cases,
        "goal": "hand-over p50 <= 5 ms, p99 <= 20 ms, 0 provider requests (on disk)",
        "goal_met": disk["handover_p50_ms"] <= 5 and disk["handover_p99_ms"] <= 20
        and disk["provider_requests_while_cached"] == 0,
    }
    out = Path(os.environ.get("BENCH_JSON", ROOT / "bench" / "bridge-results.json"))
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{RUNS} hand-overs (connect, verify with the cached JWKS, write) vs plain netrc writes")
    print(f"| {'files on':<46} | {'case':<18} | {'p50 ms':>7} | {'p99 ms':>7} | {'provider requests':>17} |")
    print(f"|{'-' * 48}|{'-' * 20}|{'-' * 9}|{'-' * 9}|{'-' * 19}|")
    for label, c in cases.items():
        print(f"| {label:<46} | {'bridge hand-over':<18} | {c['handover_p50_ms']:>7.2f} | "
              f"{c['handover_p99_ms']:>7.2f} | {c['provider_requests_while_cached']:>17} |")
        print(f"| {'':<46} | {'plain netrc write':<18} | {c['plain_write_p50_ms']:>7.2f} | "
              f"{c['plain_write_p99_ms']:>7.2f} | {'':>17} |")
    print(f"goal ({result['goal']}): {'met' if result['goal_met'] else 'NOT met'}")
    print(f"(JSON: {out})")


if __name__ == "__main__":
    main()

"""Throughput of GET /api/v1/me signed in with a JWT, over HTTP, load generator on the same machine.

Figure (issue): "GET /api/v1/me with a JWT: at least 2,000 requests/s with `landmark serve
--workers 2` on this 2-core machine, load generator included."

Starts `landmark serve --workers 2` on a free port over a fresh SQLite file in a temp directory
(or LANDMARK_DATABASE_URL if set, e.g. PostgreSQL), with LANDMARK_RATE_LIMIT=100000000; runs
`landmark init --json` for a personal token, creates an API key over HTTP and exchanges it at
/oauth/token for a JWT, then loads GET /api/v1/me with that JWT. Load comes from `wrk` when it is on
PATH (Debian: apt-get install -y wrk), else from a Python client (one process per core, asyncio
sockets, HTTP/1.1 keep-alive). One run with logs at WARNING, one at INFO (an access-log line per
request, written to a file). Only 200 answers count as successes. Other LANDMARK_* settings in
the environment pass through to the server (e.g. LANDMARK_AUTH_CACHE_SECONDS, LANDMARK_REDIS_URL).

Run: .venv/bin/python bench/me_throughput.py [--duration 10] [--connections 64] [--generator python]
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

LANDMARK = str(Path(sys.executable).parent / "landmark")
TARGET = 2000.0
CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def landmark_env(tmp: str, log_level: str) -> dict[str, str]:
    """Other LANDMARK_* settings in the environment (e.g. LANDMARK_REDIS_URL) pass through."""
    env = dict(os.environ)
    if not env.get("LANDMARK_DATABASE_URL"):
        env["LANDMARK_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp}/bench.db"
    env.update(LANDMARK_VAR_DIR=tmp, LANDMARK_RATE_LIMIT="100000000", LANDMARK_LOG_LEVEL=log_level)
    return env


def get_jwt(base: str, env: dict[str, str], tmp: str) -> str:
    """`landmark init --json` -> personal token -> API key over HTTP -> JWT from /oauth/token."""
    slug = f"bench-{uuid.uuid4().hex[:8]}"  # unique, so that a shared PostgreSQL database works
    init = f"init --account {slug} --name Bench --admin-email admin@{slug}.example"
    init += " --admin-password bench-password-123 --json"
    out = subprocess.run(
        [LANDMARK, *init.split()], env=env, cwd=tmp, capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(f"landmark init failed: {out.stderr}")
    token = json.loads(out.stdout.strip().splitlines()[-1])["api_token"]
    with httpx.Client(base_url=base, timeout=30) as http:
        bearer = {"Authorization": f"Bearer {token}"}
        key = http.post("/api/v1/api-keys", json={"name": "bench"}, headers=bearer)
        key.raise_for_status()
        client = (key.json()["client_id"], key.json()["client_secret"])
        grant = http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=client)
        grant.raise_for_status()
        jwt = grant.json()["access_token"]
        check = http.get("/api/v1/me", headers={"Authorization": f"Bearer {jwt}"})
        check.raise_for_status()
    return jwt


def machine_speed() -> float:
    """Seconds a fixed loop of 10 million Python additions takes now: printed beside figures,
    as shared hosts run at different speeds from minute to minute."""
    start = time.process_time()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.process_time() - start


def wait_ready(base: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become ready")


def stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server (uvicorn's supervisor stops its workers), then kill what is left of
    the process group it was started in (its own, so nothing else is touched)."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()


# --- load generators -----------------------------------------------------------------------------


def wrk_script(
    script: str, url: str, token: str, duration: int, connections: int, threads: int = 1
) -> str:
    """wrk's report of `duration` s of load on `url` driven by the Lua `script` (latency
    distribution included), signed in with the bearer `token`."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as file:
        file.write(script)
        file.flush()
        cmd = f"wrk -t{threads} -c{connections} -d{duration}s --latency -s {file.name}".split()
        cmd += ["-H", f"Authorization: Bearer {token}", url]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def run_wrk(url: str, jwt: str, duration: int, connections: int) -> dict[str, object]:
    threads = os.cpu_count() or 1
    cmd = f"wrk -t{threads} -c{connections} -d{duration}s --latency".split()
    cmd += ["-H", f"Authorization: Bearer {jwt}", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "failed": int(errors.group(1)) if errors else 0,
        "latency": ", ".join(f"p{k} {v}" for k, v in latency.items()),
        "note": f"socket errors: {socket_errors.group(1)}" if socket_errors else "",
    }


async def _client(host: str, port: int, request: bytes, until: float, latencies, statuses) -> None:
    """One keep-alive connection sending GETs back to back; a broken one counts as an error."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        statuses["connect error"] = statuses.get("connect error", 0) + 1
        return
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = CONTENT_LENGTH.search(head)
            if length is None:
                raise ValueError("a response without Content-Length")
            await reader.readexactly(int(length.group(1)))
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        statuses["broken connection"] = statuses.get("broken connection", 0) + 1
    finally:
        writer.close()


def _load_process(host: str, port: int, request: bytes, duration: float, connections: int, out):
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    latencies: list[float] = []
    statuses: dict = {}

    async def main() -> float:
        started = time.perf_counter()
        until = started + duration
        clients = [
            _client(host, port, request, until, latencies, statuses) for _ in range(connections)
        ]
        await asyncio.gather(*clients)
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    out.put((latencies, statuses, elapsed))


def run_python(url: str, jwt: str, duration: int, connections: int) -> dict[str, object]:
    host, port, path = re.match(r"http://([^:/]+):(\d+)(/.*)", url).groups()
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {jwt}\r\n\r\n"
    processes = os.cpu_count() or 1
    queue: multiprocessing.Queue = multiprocessing.Queue()
    each = (host, int(port), request.encode(), duration, max(connections // processes, 1), queue)
    workers = [multiprocessing.Process(target=_load_process, args=each) for _ in range(processes)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=duration + 60) for _ in workers]
    for w in workers:
        w.join()
    latencies = sorted(x for lat, _, _ in results for x in lat) or [0.0]
    statuses: dict = {}
    for _, counts, _ in results:
        for status, n in counts.items():
            statuses[status] = statuses.get(status, 0) + n
    ok = statuses.get(200, 0)
    pct = {p: latencies[max(len(latencies) * p // 100 - 1, 0)] * 1000 for p in (50, 75, 90, 99)}
    return {
        "rps": sum(counts.get(200, 0) / elapsed for _, counts, elapsed in results),
        "requests": sum(len(lat) for lat, _, _ in results),
        "failed": sum(statuses.values()) - ok,
        "latency": ", ".join(f"p{p} {v:.2f}ms" for p, v in pct.items()),
        "note": f"statuses {statuses}",
    }


# --- one benchmark run ---------------------------------------------------------------------------


def bench(log_level: str, args: argparse.Namespace, generate) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = landmark_env(tmp, log_level)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env["LANDMARK_BASE_URL"] = base
        log = Path(tmp) / "server.log"
        serve = [LANDMARK, "serve", "--workers", "2", "--port", str(port)]
        with log.open("w") as out:
            server = subprocess.Popen(
                serve, env=env, cwd=tmp, stdout=out, stderr=out, start_new_session=True
            )
            try:
                wait_ready(base, server)
                jwt = get_jwt(base, env, tmp)
                generate(base + "/api/v1/me", jwt, 2, args.connections)  # warm-up, not reported
                result = generate(base + "/api/v1/me", jwt, args.duration, args.connections)
            finally:
                stop(server)
        lines = len(log.read_text().splitlines())
    verdict = "MET" if result["rps"] >= TARGET and not result["failed"] else "MISSED"
    print(
        f"  logs at {log_level:<7}: {result['rps']:6.0f} requests/s (target >= {TARGET:.0f}: "
        f"{verdict}); {result['requests']} requests, {result['failed']} not 200"
    )
    print(f"                   latency {result['latency']}")
    if result["note"]:
        print(f"                   {result['note']}")
    print(f"                   server log: {lines} lines")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of measured load per run")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections in all")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk"))
    generate = run_wrk if use_wrk else run_python
    from_env = bool(os.environ.get("LANDMARK_DATABASE_URL"))
    print(
        "GET /api/v1/me with a JWT; `landmark serve --workers 2` over "
        f"{'LANDMARK_DATABASE_URL' if from_env else 'a fresh SQLite file'}; {os.cpu_count()} cores,"
        f" shared by the server and the load generator; load average {os.getloadavg()[0]:.2f}"
        " before the runs (other work on the machine skews the figures)"
    )
    extra = sorted(k for k in os.environ if k.startswith("LANDMARK_"))
    if extra:
        print(f"settings from the environment: {', '.join(extra)}")
    tool = "wrk" if use_wrk else f"Python asyncio client, {os.cpu_count()} processes"
    print(
        f"load generator: {tool}, {args.connections} keep-alive connections, "
        f"{args.duration} s after a 2 s warm-up"
    )
    for level in ("WARNING", "INFO"):
        bench(level, args, generate)


if __name__ == "__main__":
    main()

"""Throughput of GET /api/v1/me signed in with a JWT, over HTTP, load generator on the same machine.

Figure (issue): "GET /api/v1/me with a JWT: at least 2,000 requests/s with `landmark serve
--workers 2` on this 2-core machine, load generator included."

Starts `landmark serve --workers 2` on a free port over a fresh SQLite file in a temp directory
(or LANDMARK_DATABASE_URL if set, e.g. PostgreSQL), with LANDMARK_RATE_LIMIT=100000000; runs
`landmark init --json` for a personal token, creates an API key over HTTP and exchanges it at
/oauth/token for a JWT, then loads GET /api/v1/me with that JWT. Load comes from `wrk` when it is on
PATH (Debian: apt-get install -y wrk), else from a Python client (one process per core, asyncio
sockets, HTTP/1.1 keep-alive). One run with logs at WARNING, one at INFO (an access-log line per
request, written to a file). Only 200 answers count as successes.

Run: .venv/bin/python bench/me_throughput.py [--duration 10] [--connections 64] [--generator python]
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

LANDMARK = str(Path(sys.executable).parent / "landmark")
TARGET = 2000.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def landmark_env(tmp: str, log_level: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANDMARK_")}
    env.update(
        LANDMARK_DATABASE_URL=os.environ.get("LANDMARK_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/bench.db",
        LANDMARK_VAR_DIR=tmp, LANDMARK_RATE_LIMIT="100000000", LANDMARK_LOG_LEVEL=log_level,
    )
    return env


def get_jwt(base: str, env: dict[str, str], tmp: str) -> str:
    """`landmark init --json` -> personal token -> API key over HTTP -> JWT from /oauth/token."""
    slug = f"bench-{uuid.uuid4().hex[:8]}"  # unique, so that a shared PostgreSQL database works
    out = subprocess.run(
        [LANDMARK, "init", "--account", slug, "--name", "Bench", "--admin-email", f"admin@{slug}.example",
         "--admin-password", "bench-password-123", "--json"],
        env=env, cwd=tmp, capture_output=True, text=True, check=True,
    )
    token = json.loads(out.stdout.strip().splitlines()[-1])["api_token"]
    with httpx.Client(base_url=base, timeout=30) as http:
        key = http.post("/api/v1/api-keys", json={"name": "bench"}, headers={"Authorization": f"Bearer {token}"})
        key.raise_for_status()
        body = key.json()
        grant = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(body["client_id"], body["client_secret"]))
        grant.raise_for_status()
        jwt = grant.json()["access_token"]
        check = http.get("/api/v1/me", headers={"Authorization": f"Bearer {jwt}"})
        check.raise_for_status()
    return jwt


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
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)  # uvicorn's supervisor stops its workers
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # the process group of the server we started
            server.wait()


# --- load generators -----------------------------------------------------------------------------


def run_wrk(url: str, jwt: str, duration: int, connections: int) -> dict[str, object]:
    threads = os.cpu_count() or 1
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
           "-H", f"Authorization: Bearer {jwt}", url]
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


async def _client(host: str, port: int, request: bytes, until: float, latencies: list, statuses: dict) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def _load_process(host: str, port: int, request: bytes, duration: float, connections: int, out) -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def main() -> None:
        until = time.perf_counter() + duration
        await asyncio.gather(*(_client(host, port, request, until, latencies, statuses) for _ in range(connections)))

    asyncio.run(main())
    out.put((latencies, statuses))


def run_python(url: str, jwt: str, duration: int, connections: int) -> dict[str, object]:
    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()
    path = url.split(port, 1)[1]
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {jwt}\r\n"
               "Connection: keep-alive\r\n\r\n").encode()
    processes = os.cpu_count() or 1
    queue: multiprocessing.Queue = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=_load_process,
                                args=(host, int(port), request, duration, connections // processes, queue))
        for _ in range(processes)
    ]
    started = time.perf_counter()
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    elapsed = time.perf_counter() - started
    for w in workers:
        w.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    statuses: dict[int, int] = {}
    for _, counts in results:
        for status, n in counts.items():
            statuses[status] = statuses.get(status, 0) + n
    ok = statuses.get(200, 0)
    pct = {p: latencies[int(len(latencies) * p / 100) - 1] * 1000 for p in (50, 75, 90, 99)}
    return {
        "rps": ok / elapsed,  # 200s per second of wall time, process start-up included
        "requests": len(latencies),
        "failed": len(latencies) - ok,
        "latency": ", ".join(f"p{p} {v:.2f}ms" for p, v in pct.items())
        + f", mean {statistics.fmean(latencies) * 1000:.2f}ms",
        "note": f"statuses {statuses}",
    }


# --- one benchmark run ---------------------------------------------------------------------------


def bench(log_level: str, args: argparse.Namespace, generate) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = landmark_env(tmp, log_level)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env["LANDMARK_BASE_URL"] = base
        log_file = open(Path(tmp) / "server.log", "w")
        server = subprocess.Popen(
            [LANDMARK, "serve", "--workers", "2", "--port", str(port)],
            env=env, cwd=tmp, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_ready(base, server)
            jwt = get_jwt(base, env, tmp)
            generate(base + "/api/v1/me", jwt, 2, args.connections)  # warm-up, not reported
            result = generate(base + "/api/v1/me", jwt, args.duration, args.connections)
        finally:
            stop(server)
            log_file.close()
        lines = sum(1 for _ in open(Path(tmp) / "server.log"))
    verdict = "MET" if result["rps"] >= TARGET and not result["failed"] else "MISSED"
    print(f"  logs at {log_level:<7}: {result['rps']:8.0f} requests/s (target >= {TARGET:.0f}: {verdict}); "
          f"{result['requests']} requests, {result['failed']} not 200; latency {result['latency']}")
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
    database = "LANDMARK_DATABASE_URL (from the environment)" if os.environ.get("LANDMARK_DATABASE_URL") \
        else "a fresh SQLite file"
    print(f"GET /api/v1/me with a JWT; `landmark serve --workers 2` over {database}; "
          f"{os.cpu_count()} cores (shared by the server and the load generator), "
          f"load average {os.getloadavg()[0]:.2f} before the runs (other work on the machine skews the figures)")
    print(f"load generator: {'wrk' if use_wrk else f'Python asyncio, {os.cpu_count()} processes'}, "
          f"{args.connections} keep-alive connections, {args.duration} s after a 2 s warm-up")
    for level in ("WARNING", "INFO"):
        bench(level, args, generate)


if __name__ == "__main__":
    main()

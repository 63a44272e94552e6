"""Import 100,000 CIs from CSV through the real HTTP API and a `landmark worker` process.

Prints the seconds from upload to `done` and the peak RSS of the worker (the process doing the
work). SQLite in a temporary directory by default; PostgreSQL with LANDMARK_DATABASE_URL.

    .venv/bin/python bench/cmdb_import.py [--rows 100000]
    LANDMARK_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench .venv/bin/python bench/...
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
SEED = {
    "product_categories": "Name,Group,Rule Set\nLaptop PC,Computer,physical_asset\n"
    "Server,Computer,server\nMonitor,Display,physical_asset\n",
    "teams": "Name\nOps\nDesk\nNetwork\n",
    "sites": "Name\nAmsterdam\nBerlin\nChicago\n",
    "products": "Name,Brand,Category,Support Team\nLatitude 7440,Dell,computer/laptop_pc,Desk\n"
    "PowerEdge R760,Dell,computer/server,Ops\nU2723QE,Dell,display/monitor,Desk\n",
}
PRODUCTS = ("Latitude 7440", "PowerEdge R760", "U2723QE")
SITES = ("Amsterdam", "Berlin", "Chicago")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cis_csv(rows: int) -> bytes:
    lines = ["Source,Source ID,Name,Product,Status,Serial Number,Site,System ID\n"]
    for n in range(rows):
        product, site = PRODUCTS[n % 3], SITES[n % 3]
        lines.append(f"bench,{n},host-{n:06d},{product},In Production,SN{n:08d},{site},sys-{n}\n")
    return "".join(lines).encode()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait(http: httpx.Client, path: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = http.get(path).json()
        if body["state"] not in ("queued", "processing"):
            return dict(body)
        time.sleep(0.25)
    raise SystemExit(f"{path} did not finish")


def upload(http: httpx.Client, type: str, data: bytes) -> dict[str, Any]:
    files = {"file": (f"{type}.csv", data, "text/csv")}
    response = http.post("/v1/import", data={"type": type}, files=files)
    response.raise_for_status()
    return wait(http, f"/v1/import/{response.json()['token']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="landmark-bench-"))
    env = {
        **os.environ,
        "LANDMARK_VAR_DIR": str(tmp),
        "LANDMARK_WORKER_IN_PROCESS": "false",
        "LANDMARK_WORKER_POLL_SECONDS": "0.2",
        "LANDMARK_RATE_LIMIT": "1000000",
        "LANDMARK_LOG_LEVEL": "WARNING",
    }
    slug = f"bench{uuid.uuid4().hex[:6]}"
    made = subprocess.run(
        [BIN / "landmark", "init", "--account", slug, "--name", "Bench"]
        + ["--admin-email", f"admin@{slug}.test", "--admin-password", "bench-password-1", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    token = json.loads(made.stdout)["api_token"]
    port = free_port()
    server = subprocess.Popen(
        [BIN / "landmark", "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL
    )
    worker = subprocess.Popen([BIN / "landmark", "worker"], env=env, stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
            for _ in range(200):
                try:
                    http.get("/v1/import")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            for type, text in SEED.items():
                upload(http, type, text.encode())
            data = cis_csv(args.rows)
            started = time.perf_counter()
            body = upload(http, "cis", data)
            elapsed = time.perf_counter() - started
        database = "PostgreSQL" if os.environ.get("LANDMARK_DATABASE_URL") else "SQLite"
        print(f"{database}: {args.rows} CIs ({len(data) / 1e6:.1f} MB) imported in {elapsed:.1f} s")
        print(f"results: {body['results']} state: {body['state']}")
        print(f"worker peak RSS: {peak_rss_mb(worker.pid):.0f} MB")
    finally:
        for process in (worker, server):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


if __name__ == "__main__":
    main()

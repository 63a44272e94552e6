"""From the commit of a change to the receiver getting it: median and 99th percentile, with one
worker, at a steady rate of changes (default 200/s).

A `landmark serve` process (its in-process worker is the one worker; `--separate-worker` runs
`landmark worker` next to a server without one) on a scratch PostgreSQL database
(landmark_wh_lat_*), or SQLite with `--sqlite`. One subscription to FACT_SHEET_CREATED posts to a
receiver process that notes arrival minus the event's `createdAt` (taken in the change's
transaction just before it commits, so the figure slightly overstates the latency). The load
creates fact sheets through the Pathfinder REST API at the given rate for the given seconds, or
with `--direct` commits one event per transaction from the bench process (to measure the
delivery path alone when the API cannot sustain the rate; use it with `--separate-worker`: the
bench process announces its commits by NOTIFY as a server does, which wakes `landmark worker`
processes, not the server's in-process worker).

Run: .venv/bin/python bench/webhooks_latency.py [--rate 200] [--seconds 10] [--separate-worker]
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from webhook_common import (
    LATENCY_RECEIVER,
    Receiver,
    ScratchDatabase,
    environment,
    free_port,
    machine,
    make_account,
    start,
    stop,
    subscribe,
    wait,
)

from landmark.core.migrate import upgrade


async def load(base: str, token: str, rate: int, seconds: float) -> tuple[int, int]:
    """Create fact sheets at `rate` per second; (made, failed)."""
    made = failed = 0
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=60
    ) as client:

        async def one(n: int) -> None:
            nonlocal made, failed
            body = {"type": "Application", "name": f"app-{n}"}
            try:
                response = await client.post("/services/pathfinder/v1/factSheets", json=body)
            except httpx.TransportError:
                failed += 1
                return
            if response.status_code == 200:
                made += 1
            else:
                failed += 1

        await paced(rate, seconds, one)
    return made, failed


async def paced(rate: int, seconds: float, one: Callable[[int], Awaitable[None]]) -> None:
    """Start `one(n)` at `rate` per second for `seconds`, without waiting for each to end."""
    tasks = []
    started = time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)


async def direct_load(url: str, rate: int, seconds: float) -> tuple[int, int]:
    """Commit one fact-sheet-created event per transaction at `rate` per second, straight into
    the outbox from this process (the API's own cost left out). Like a server process, this one
    announces its commits to the workers (PostgreSQL NOTIFY, webhooks/notify.py)."""
    from landmark.core.db import create_engine, session_factory
    from landmark.core.events import record
    from landmark.webhooks import notify

    engine = create_engine(url)
    sessions = session_factory(engine)
    stop = asyncio.Event()
    announcer = asyncio.create_task(notify.announce(url, stop))
    made = 0

    async def one(n: int) -> None:
        nonlocal made
        async with sessions() as session:
            data = {"factSheet": {"id": str(n), "type": "Application", "name": f"app-{n}"}}
            await record(session, "bench", "FACT_SHEET_CREATED", "factSheet", n, data=data)
            await session.commit()
            made += 1

    try:
        await paced(rate, seconds, one)
    finally:
        stop.set()
        await announcer
        await engine.dispose()
    return made, 0


async def scenario(url: str, args: argparse.Namespace) -> None:
    made, token = await make_account(url, "bench")
    receiver = Receiver(LATENCY_RECEIVER)
    await subscribe(url, "bench", made.admin.id, receiver.url, "latency",
                    ("pathfinder", "FACT_SHEET_CREATED"))  # fmt: skip
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    in_process = "false" if args.separate_worker else "true"
    env = environment(url, LANDMARK_WORKER_IN_PROCESS=in_process, LANDMARK_RATE_LIMIT="1000000")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(args.log) if args.log else Path(tmp) / "bench.log"
        processes = [start(["serve", "--port", str(port)], env, log)]
        if args.separate_worker:
            processes.append(start(["worker"], env, log))
        try:
            wait(lambda: _up(base), 60, 0.2)
            started = time.perf_counter()
            if args.direct:
                done, failed = await direct_load(url, args.rate, args.seconds)
            else:
                done, failed = await load(base, token, args.rate, args.seconds)
            achieved = done / (time.perf_counter() - started)
            wait(lambda: len(_latencies(receiver)) >= done, 120, 0.2)
            latencies = sorted(_latencies(receiver))
        finally:
            for process in processes:
                stop(process)
            receiver.stop()
    p99 = latencies[max(int(len(latencies) * 0.99) - 1, 0)]
    mode = "separate `landmark worker`" if args.separate_worker else "in-process worker"
    mode += ", changes committed by the bench" if args.direct else ", changes through the API"
    print(f"  {mode}: {done} changes at {achieved:.0f}/s ({failed} failed requests)")
    print(f"  commit -> receiver: median {statistics.median(latencies):.1f} ms, "
          f"p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms")  # fmt: skip


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz").status_code == 200
    except httpx.TransportError:
        return False


def _latencies(receiver: Receiver) -> list[float]:
    return list(httpx.get(f"http://127.0.0.1:{receiver.port}/latencies").json())


async def main(args: argparse.Namespace) -> None:
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    print(f"{machine()}; {args.rate} changes/s for {args.seconds} s, {backend}")
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            await upgrade(url)
            await scenario(url, args)
        return
    async with ScratchDatabase("lat") as db:
        await scenario(db.url, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--separate-worker", action="store_true")
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument(
        "--direct",
        action="store_true",
        help="commit events from the bench process instead of API requests",
    )
    parser.add_argument("--log", help="keep the server's log in this file")
    asyncio.run(main(parser.parse_args()))

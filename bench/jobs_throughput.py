"""Jobs per second one worker claims and runs, for no-op jobs (the engine's own cost).

Enqueues N jobs of a no-op kind in one transaction, then times `Worker.run_once()`: per job a claim
(its own transaction), the handler's session and the guarded `done` update. On a fresh SQLite file
in a temp directory, and also on LANDMARK_DATABASE_URL when it is set (use a scratch database: the
worker runs any due job it finds there).

Run: .venv/bin/python bench/jobs_throughput.py [--jobs 2000]
"""

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import delete

import landmark.models  # noqa: F401  (every table)
from landmark.core import jobs
from landmark.core.db import create_engine, session_factory
from landmark.core.migrate import upgrade
from landmark.settings import Settings


@jobs.handler("bench.noop")
async def noop(session, job, ctx) -> None:
    return None


async def measure(url: str, count: int) -> float:
    """Jobs per second for `count` no-op jobs run by one worker."""
    await upgrade(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            for _ in range(count):
                await jobs.enqueue(session, "bench.noop", {})
            await session.commit()
        settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
        started = time.perf_counter()
        ran = await jobs.Worker(sessions, settings).run_once()
        elapsed = time.perf_counter() - started
        async with sessions() as session:
            await session.execute(delete(jobs.Job).where(jobs.Job.kind == "bench.noop"))
            await session.commit()
        return ran / elapsed
    finally:
        await engine.dispose()


async def main(count: int) -> None:
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; {count} no-op jobs")
    with tempfile.TemporaryDirectory() as tmp:
        targets = {"SQLite": f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"}
        if os.environ.get("LANDMARK_DATABASE_URL"):
            targets["LANDMARK_DATABASE_URL"] = Settings().resolved_database_url
        for label, url in targets.items():
            print(f"  {label:<22} {await measure(url, count):8.0f} jobs/s (one worker)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    asyncio.run(main(parser.parse_args().jobs))

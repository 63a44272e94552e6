"""Background jobs: the engine over a real database, the test server's in-process worker, and
`landmark worker` as a real process.

The engine tests use a database of their own (`jobs_database`): the test server's in-process worker
takes any due job of its database, and these tests must decide which worker takes which job.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conftest import Server, Tenant, fresh_database, make_settings
from landmark.core import clock, jobs
from landmark.core.db import create_engine, session_factory
from landmark.core.events import Event, record
from landmark.core.jobs import Job, JobContext, Worker
from landmark.core.migrate import upgrade_sync
from landmark.identity.models import Account

ACCOUNT = "jobs-test"
LANDMARK = str(Path(sys.executable).parent / "landmark")
Sessions = async_sessionmaker[AsyncSession]


# Handlers of test kinds, registered for the whole process (the test server's worker too).
@jobs.handler("test.record")
async def record_run(session: AsyncSession, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Write an event (in the job's transaction) and echo the payload."""
    await asyncio.sleep(job.payload.get("sleep", 0))
    assert job.account_id is not None
    await record(session, job.account_id, "test.job_ran", "job", job.id)
    return {"echo": job.payload.get("echo")}


@jobs.handler("test.fail")
async def always_fail(session: AsyncSession, job: Job, ctx: JobContext) -> None:
    raise ValueError(job.payload["message"])


@jobs.handler("test.steps")
async def steps(session: AsyncSession, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Four steps with a checkpoint after each; the first attempt crashes during step 2."""
    assert job.account_id is not None
    for step in range(job.progress.get("done", 0), 4):
        await record(session, job.account_id, "test.step", "job", job.id, data={"step": step})
        if step == 2 and job.attempts == 1:
            raise RuntimeError("crashed during step 2")
        await ctx.save_progress({"done": step + 1})
    return {"steps": 4}


@pytest.fixture(scope="module")
def jobs_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("jobs")) as url:
        upgrade_sync(url)
        yield url


@pytest_asyncio.fixture(loop_scope="function")
async def sessions(jobs_database: str) -> AsyncIterator[Sessions]:
    """Sessions on the jobs database, with no job left from an earlier test and one account."""
    engine = create_engine(jobs_database)
    factory = session_factory(engine)
    async with factory() as session:
        await session.execute(delete(Job))
        if await session.get(Account, ACCOUNT) is None:
            session.add(Account(id=ACCOUNT, name="Jobs"))
        await session.commit()
    yield factory
    await engine.dispose()


def worker(sessions: Sessions, database_url: str, name: str, **settings: Any) -> Worker:
    return Worker(sessions, make_settings(database_url, **settings), worker_id=name)


async def enqueue(sessions: Sessions, kind: str, payload: dict[str, Any], **options: Any) -> int:
    async with sessions() as session:
        job = await jobs.enqueue(session, kind, payload, account_id=ACCOUNT, **options)
        await session.commit()
        return job.id


async def get(sessions: Sessions, job_id: int) -> Job:
    async with sessions() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def events(sessions: Sessions, type: str) -> list[Event]:
    async with sessions() as session:
        query = select(Event).where(Event.account_id == ACCOUNT, Event.type == type)
        return list((await session.scalars(query.order_by(Event.seq))).all())


async def test_enqueued_job_commits_with_its_cause_and_ends_done(sessions, jobs_database) -> None:
    async with sessions() as session:
        await jobs.enqueue(session, "test.record", {}, account_id=ACCOUNT)
        await session.rollback()  # the change that caused it failed: no job either
    job_id = await enqueue(sessions, "test.record", {"echo": "hello"})

    assert await worker(sessions, jobs_database, "w1").run_once() == 1

    job = await get(sessions, job_id)
    assert (job.state, job.result, job.attempts, job.error) == ("done", {"echo": "hello"}, 1, None)
    assert job.finished_at is not None and job.locked_by == "w1" and job.locked_until is None
    assert [e.subject_id for e in await events(sessions, "test.job_ran")][-1:] == [str(job_id)]


async def test_failing_job_is_retried_with_backoff_then_fails(sessions, jobs_database) -> None:
    job_id = await enqueue(sessions, "test.fail", {"message": "boom"}, max_attempts=3)
    runner = worker(sessions, jobs_database, "w1", job_retry_seconds=30)

    for attempt, wait in ((1, 30), (2, 60)):
        assert await runner.run_once() == 1
        job = await get(sessions, job_id)
        assert (job.state, job.attempts, job.error) == ("queued", attempt, "ValueError: boom")
        assert job.locked_by is None and job.finished_at is None
        delay = (job.run_after - clock.now()).total_seconds()
        assert wait - 2 < delay <= wait
        assert await runner.run_once() == 0  # not due yet
        clock.advance(timedelta(seconds=wait))

    assert await runner.run_once() == 1
    job = await get(sessions, job_id)
    assert (job.state, job.attempts, job.error) == ("failed", 3, "ValueError: boom")
    assert job.finished_at is not None
    clock.advance(timedelta(days=1))
    assert await runner.run_once() == 0  # failed is final


def test_backoff_is_exponential_and_capped() -> None:
    settings = make_settings("sqlite://", job_retry_seconds=30, job_retry_max_seconds=3600)
    waits = [jobs.backoff(settings, n).total_seconds() for n in range(1, 10)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


async def test_checkpoints_let_the_next_attempt_resume(sessions, jobs_database) -> None:
    job_id = await enqueue(sessions, "test.steps", {})
    runner = worker(sessions, jobs_database, "w1", job_retry_seconds=1)

    assert await runner.run_once() == 1
    job = await get(sessions, job_id)
    assert (job.state, job.progress) == ("queued", {"done": 2})
    clock.advance(timedelta(seconds=1))
    assert await runner.run_once() == 1

    job = await get(sessions, job_id)
    assert (job.state, job.result, job.progress) == ("done", {"steps": 4}, {"done": 4})
    # Step 2's first write was rolled back with the crash: every step happened exactly once.
    assert [e.data["step"] for e in await events(sessions, "test.step")] == [0, 1, 2, 3]


async def test_job_of_a_dead_worker_is_taken_again(sessions, jobs_database) -> None:
    job_id = await enqueue(sessions, "test.record", {"echo": "again"})
    async with sessions() as session:
        assert (await jobs.claim(session, "dead", lease_seconds=60)).id == job_id
    runner = worker(sessions, jobs_database, "w2", worker_lease_seconds=60)

    assert await runner.run_once() == 0  # leased: the dead worker might still be alive
    clock.advance(timedelta(seconds=61))
    assert await runner.run_once() == 1

    job = await get(sessions, job_id)
    assert (job.state, job.attempts, job.locked_by) == ("done", 2, "w2")


async def test_job_whose_last_attempt_died_ends_failed(sessions, jobs_database) -> None:
    job_id = await enqueue(sessions, "test.record", {}, max_attempts=1)
    async with sessions() as session:
        await jobs.claim(session, "dead", lease_seconds=60)
    clock.advance(timedelta(seconds=61))

    assert await worker(sessions, jobs_database, "w2").run_once() == 1

    job = await get(sessions, job_id)
    assert (job.state, job.error) == ("failed", "worker stopped while running the job")
    assert job.finished_at is not None


async def test_worker_that_lost_its_lease_records_nothing(sessions, jobs_database) -> None:
    job_id = await enqueue(sessions, "test.record", {})
    slow, fast = (worker(sessions, jobs_database, n, worker_lease_seconds=60) for n in "ab")
    late = await slow.claim()
    clock.advance(timedelta(seconds=61))
    taken = await fast.claim()
    assert late is not None and taken is not None and late.id == taken.id == job_id

    await fast.execute(taken)
    await slow.execute(late)  # its handler runs, but its outcome and writes are rolled back

    job = await get(sessions, job_id)
    assert (job.state, job.locked_by, job.attempts) == ("done", "b", 2)
    ran = [e for e in await events(sessions, "test.job_ran") if e.subject_id == str(job_id)]
    assert len(ran) == 1


async def test_unknown_kind_fails_at_once(sessions, jobs_database) -> None:
    job_id = await enqueue(sessions, "no.such.kind", {})
    assert await worker(sessions, jobs_database, "w1").run_once() == 1
    job = await get(sessions, job_id)
    assert (job.state, job.attempts) == ("failed", 1)
    assert job.error == "no handler for job kind 'no.such.kind'"


async def test_long_job_keeps_its_lease_and_stop_lets_it_finish(sessions, jobs_database) -> None:
    job_id = await enqueue(sessions, "test.record", {"sleep": 2.5})
    runner = worker(sessions, jobs_database, "w1", worker_lease_seconds=3, worker_poll_seconds=0.05)
    stop = asyncio.Event()
    loop = asyncio.create_task(runner.run(stop))
    while (job := await get(sessions, job_id)).state != "running":
        await asyncio.sleep(0.05)
    first_lease = job.locked_until
    assert first_lease is not None
    await asyncio.sleep(1.5)  # a renewal every lease/3 = 1 s

    renewed = (await get(sessions, job_id)).locked_until
    assert renewed is not None and renewed > first_lease
    stop.set()
    await asyncio.wait_for(loop, 10)
    assert (await get(sessions, job_id)).state == "done"  # stopping waited for the job


async def test_two_workers_run_each_of_50_jobs_once(sessions, jobs_database) -> None:
    # Both back ends: on PostgreSQL the workers skip each other's locked rows; on SQLite their
    # claims are serialized by the write lock and guarded by the re-checked condition.
    ids = [await enqueue(sessions, "test.record", {"sleep": 0.01}) for _ in range(50)]
    engines = [create_engine(jobs_database) for _ in range(2)]
    options = {"worker_concurrency": 4, "worker_poll_seconds": 0.05}
    workers = [
        worker(session_factory(engine), jobs_database, name, **options)
        for engine, name in zip(engines, ("a", "b"), strict=True)
    ]
    stop = asyncio.Event()
    loops = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        deadline = time.monotonic() + 60
        while await count_done(sessions) < 50 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*loops)
        for engine in engines:
            await engine.dispose()

    async with sessions() as session:
        done = (await session.scalars(select(Job).where(Job.id.in_(ids)))).all()
    assert {(job.state, job.attempts) for job in done} == {("done", 1)}
    assert {job.locked_by for job in done} == {"a", "b"}  # both took a share
    ran = [int(e.subject_id) for e in await events(sessions, "test.job_ran")]
    assert sorted(i for i in ran if i in ids) == ids  # each job's handler committed exactly once


async def count_done(sessions: Sessions) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(Job).where(Job.state == "done")
        return int(await session.scalar(query) or 0)


async def add_finished(sessions: Sessions, age: timedelta) -> int:
    async with sessions() as session:
        job = Job(kind="test.record", state="done", finished_at=clock.now() - age)
        session.add(job)
        await session.commit()
        return job.id


async def test_purge_deletes_finished_jobs_past_retention(sessions, jobs_database) -> None:
    old, recent = (
        await add_finished(sessions, timedelta(days=31)),
        await add_finished(sessions, timedelta(days=29)),
    )
    purge_id = await enqueue(sessions, "jobs.purge", {})
    assert await worker(sessions, jobs_database, "w1", job_retention_days=30).run_once() == 1

    assert (await get(sessions, purge_id)).result == {"deleted": 1}
    async with sessions() as session:
        assert await session.get(Job, old) is None and await session.get(Job, recent) is not None


def test_server_runs_jobs_in_process(server: Server, tenant: Tenant) -> None:
    job = server.run(
        lambda s: jobs.enqueue(s, "test.record", {"echo": "served"}, account_id=tenant.slug)
    )

    async def state(session: AsyncSession) -> Job | None:
        return await session.get(Job, job.id)

    deadline = time.time() + 15
    while (current := server.run(state)).state != "done":
        assert time.time() < deadline, f"the in-process worker did not run the job: {current}"
        time.sleep(0.1)
    assert current.result == {"echo": "served"} and current.attempts == 1


def test_worker_command_runs_jobs_and_stops_on_sigterm(jobs_database: str) -> None:
    async def prepare() -> tuple[int, int]:
        engine = create_engine(jobs_database)
        factory = session_factory(engine)
        async with factory() as session:
            await session.execute(delete(Job))
            await session.commit()
        old = await add_finished(factory, timedelta(days=40))
        async with factory() as session:
            purge = await jobs.enqueue(session, "jobs.purge", {})
            await session.commit()
        await engine.dispose()
        return old, purge.id

    async def read(job_id: int) -> Job | None:
        engine = create_engine(jobs_database)
        async with session_factory(engine)() as session:
            job = await session.get(Job, job_id)
        await engine.dispose()
        return job

    old, purge = asyncio.run(prepare())
    env = {
        **os.environ,
        "LANDMARK_DATABASE_URL": jobs_database,
        "LANDMARK_WORKER_POLL_SECONDS": "0.1",
    }
    process = subprocess.Popen(
        [LANDMARK, "worker", "--concurrency", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while (job := asyncio.run(read(purge))) is None or job.state != "done":
            assert time.time() < deadline and process.poll() is None, "the worker did not run it"
            time.sleep(0.2)
        assert job.result == {"deleted": 1} and asyncio.run(read(old)) is None
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert '"worker stopped"' in output

"""Background jobs: a table, handlers by kind, and the worker loop that runs them.

A job is enqueued in the transaction of the change that caused it. A worker claims it with a
lease (`locked_until`) and renews the lease while the handler runs; a job whose lease ran out
(its worker died) is claimed again, so a crash never loses a job. On PostgreSQL several workers
share the table with `FOR UPDATE SKIP LOCKED`. A failed attempt is retried with exponential
backoff until `max_attempts`, then the job ends `failed` with the error.

Every write a worker makes to a claimed job is guarded by the claim (`locked_by` and `attempts`):
a worker that lost its lease cannot overwrite the outcome of the worker that took the job over.
"""

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    and_,
    delete,
    null,
    or_,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from landmark.core import clock
from landmark.core.db import Base
from landmark.core.errors import NotFound
from landmark.settings import Settings

log = logging.getLogger("landmark.jobs")

STOPPED = "worker stopped while running the job"


class Job(Base):
    """One piece of background work. `account_id` is empty for system jobs."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="state"),
        Index(None, "state", "run_after"),  # claiming
        Index(None, "account_id", "kind"),  # listing an account's jobs
        # Never reuse the id of a purged job on SQLite: events and logs refer to jobs by id.
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    run_after: Mapped[datetime] = mapped_column(default=clock.now)
    # The worker holding the job (kept after it finished: who ran it) and until when.
    locked_by: Mapped[str | None] = mapped_column(String(128))
    locked_until: Mapped[datetime | None]
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
    finished_at: Mapped[datetime | None]


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    account_id: str | None = None,
    run_after: datetime | None = None,
    max_attempts: int = 5,
) -> Job:
    """Add a job to the session's transaction (not committed: it commits with its cause)."""
    job = Job(
        account_id=account_id,
        kind=kind,
        payload=payload,
        run_after=run_after or clock.now(),
        max_attempts=max_attempts,
    )
    session.add(job)
    await session.flush()  # the caller usually wants the id
    return job


async def ensure_queued(session: AsyncSession, kind: str, payload: dict[str, Any]) -> None:
    """Queue a job of `kind` unless one is queued or running already (the caller commits): the
    start of a self-renewing daily job."""
    queued = await session.scalar(
        select(Job.id).where(Job.kind == kind, Job.state.in_(("queued", "running"))).limit(1)
    )
    if queued is None:
        await enqueue(session, kind, payload)


class LeaseLost(Exception):
    """Another worker took the job over: this one must not record anything more for it."""


class JobContext:
    """What a handler gets besides its session and job: the settings, and checkpoints."""

    def __init__(self, session: AsyncSession, job: Job, worker: "Worker") -> None:
        self.settings = worker.settings
        self._session = session
        self._job = job
        self._worker = worker

    async def save_progress(self, progress: dict[str, Any]) -> None:
        """Checkpoint: commit the handler's work so far together with `progress`, renew the lease.

        One transaction, so that after a crash the next attempt finds in `job.progress` exactly
        what was committed. Raises LeaseLost (and rolls back) if another worker took the job.
        """
        values = {"progress": progress, "locked_until": self._worker.lease_end()}
        if not await _settle(self._session, self._job, **values):
            await self._session.rollback()
            raise LeaseLost
        await self._session.commit()
        self._job.progress = progress


Handler = Callable[[AsyncSession, Job, JobContext], Awaitable[dict[str, Any] | None]]
_handlers: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register `fn(session, job, ctx) -> result | None` as the handler of jobs of `kind`."""

    def register(fn: Handler) -> Handler:
        if kind in _handlers:
            raise ValueError(f"a handler for job kind {kind!r} is registered already")
        _handlers[kind] = fn
        return fn

    return register


Service = Callable[["Worker", asyncio.Event], Awaitable[None]]
_services: dict[str, Service] = {}


def service(name: str) -> Callable[[Service], Service]:
    """Register `fn(worker, stop)` as a long-running task of every worker loop (the webhook
    engine): it starts with `Worker.run` and must return soon after `stop` is set."""

    def register(fn: Service) -> Service:
        if name in _services:
            raise ValueError(f"a worker service named {name!r} is registered already")
        _services[name] = fn
        return fn

    return register


def _due(now: datetime) -> Any:
    """Queued and due, or running under a lease that ran out (its worker died)."""
    return or_(
        and_(Job.state == "queued", Job.run_after <= now),
        and_(Job.state == "running", Job.locked_until < now),
    )


async def claim(session: AsyncSession, worker_id: str, *, lease_seconds: float = 60) -> Job | None:
    """Take the oldest due job for `worker_id` and commit: it is then `running` under a lease.

    One statement: UPDATE ... WHERE id = (oldest due job) AND (still due) RETURNING. On PostgreSQL
    the inner select is FOR UPDATE SKIP LOCKED, so concurrent workers pass over a row another one
    is taking. SQLite ignores the locking clause, but it runs one writer at a time and an UPDATE
    takes the write lock before it reads, so the re-checked condition is enough there.
    """
    now = clock.now()
    oldest = (
        select(Job.id)
        .where(_due(now))
        .order_by(Job.run_after, Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        sql_update(Job)
        .where(Job.id == oldest, _due(now))
        .values(
            state="running",
            attempts=Job.attempts + 1,
            locked_by=worker_id,
            locked_until=now + timedelta(seconds=lease_seconds),
        )
        .returning(Job)
        .execution_options(synchronize_session=False)
    )
    job = (await session.scalars(statement)).one_or_none()
    await session.commit()
    return job


async def _settle(session: AsyncSession, job: Job, **values: Any) -> bool:
    """Update the claimed job only while this claim still holds it; False if it does not."""
    statement = (
        sql_update(Job)
        .where(Job.id == job.id, Job.locked_by == job.locked_by, Job.attempts == job.attempts)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    held = (await session.execute(statement)).rowcount == 1  # type: ignore[attr-defined]
    if held:
        for name, value in values.items():  # the job is detached: this keeps the object current
            setattr(job, name, None if value is _SQL_NULL else value)
    return held


# A JSON column stores Python None as JSON null; this stores SQL NULL instead.
_SQL_NULL = null()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def backoff(settings: Settings, attempts: int) -> timedelta:
    """The wait after `attempts` failed attempts: base * 2**(attempts-1), capped."""
    seconds = settings.job_retry_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.job_retry_max_seconds))


class Worker:
    """Claims due jobs and runs their handlers, up to `worker_concurrency` at once."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        worker_id: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def lease_end(self) -> datetime:
        return clock.now() + timedelta(seconds=self.settings.worker_lease_seconds)

    async def claim(self) -> Job | None:
        async with self.sessions() as session:
            lease = self.settings.worker_lease_seconds
            return await claim(session, self.worker_id, lease_seconds=lease)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set, then let the running jobs finish."""
        slots = asyncio.Semaphore(max(self.settings.worker_concurrency, 1))
        running: set[asyncio.Task[None]] = set()
        services = [asyncio.create_task(self._serve(n, fn, stop)) for n, fn in _services.items()]
        log.info("worker started", extra={"worker": self.worker_id})
        while not stop.is_set():
            await slots.acquire()
            job = None if stop.is_set() else await self._claim_logged()
            if job is None:
                slots.release()
                await _wait(stop, self.settings.worker_poll_seconds)
                continue
            task = asyncio.create_task(self.execute(job))
            running.add(task)
            task.add_done_callback(running.discard)
            task.add_done_callback(lambda _: slots.release())
            task.add_done_callback(self._log_crash)
        await asyncio.gather(*running, *services, return_exceptions=True)
        log.info("worker stopped", extra={"worker": self.worker_id})

    async def _serve(self, name: str, fn: Service, stop: asyncio.Event) -> None:
        """Run a service until `stop`; one that crashes is started again after a pause."""
        while not stop.is_set():
            try:
                await fn(self, stop)
            except Exception:
                log.exception("worker service %s crashed", name, extra={"worker": self.worker_id})
                await _wait(stop, self.settings.worker_poll_seconds)

    async def run_once(self) -> int:
        """Claim and run jobs one by one until none is due; the number of jobs run."""
        count = 0
        while (job := await self.claim()) is not None:
            await self.execute(job)
            count += 1
        return count

    def _log_crash(self, task: "asyncio.Task[None]") -> None:
        """A job task that raised (the database went away): its lease will run out, and then
        another claim takes the job again."""
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("running a job failed", exc_info=exc, extra={"worker": self.worker_id})

    async def _claim_logged(self) -> Job | None:
        try:
            return await self.claim()
        except Exception:  # the database is away: keep polling, it may come back
            log.exception("claiming a job failed", extra={"worker": self.worker_id})
            return None

    async def execute(self, job: Job) -> None:
        """Run one claimed job to its next state: done, queued again, or failed."""
        fn = _handlers.get(job.kind)
        if job.attempts > job.max_attempts:  # reclaimed after its last attempt's worker died
            await self._end(job, STOPPED)
        elif fn is None:
            await self._end(job, f"no handler for job kind {job.kind!r}")
        else:
            await self._run_handler(job, fn)

    async def _run_handler(self, job: Job, fn: Handler) -> None:
        renewal = asyncio.create_task(self._renew_lease(job))
        try:
            async with self.sessions() as session:
                result = await fn(session, job, JobContext(session, job, self))
                outcome = _SQL_NULL if result is None else result
                done = {"state": "done", "result": outcome, "error": None, "locked_until": None}
                if not await _settle(session, job, **done, finished_at=clock.now()):
                    raise LeaseLost
                await session.commit()  # the handler's writes commit with the job's outcome
        except LeaseLost:
            log.warning("job taken over by another worker", extra=self._about(job))
        except Exception as exc:
            log.exception("job attempt failed", extra=self._about(job))
            await self._attempt_failed(job, exc)
        finally:
            renewal.cancel()

    async def _attempt_failed(self, job: Job, exc: Exception) -> None:
        if job.attempts >= job.max_attempts:
            await self._end(job, _describe(exc))
            return
        retry_at = clock.now() + backoff(self.settings, job.attempts)
        async with self.sessions() as session:
            values = {"state": "queued", "run_after": retry_at, "error": _describe(exc)}
            if await _settle(session, job, **values, locked_by=None, locked_until=None):
                await session.commit()

    async def _end(self, job: Job, error: str) -> None:
        """The job has failed for good."""
        log.error("job failed: %s", error, extra=self._about(job))
        async with self.sessions() as session:
            values = {"state": "failed", "error": error, "finished_at": clock.now()}
            if await _settle(session, job, **values, locked_until=None):
                await session.commit()

    async def _renew_lease(self, job: Job) -> None:
        """Keep the lease of a long job: renew it every third of its length."""
        while True:
            await asyncio.sleep(self.settings.worker_lease_seconds / 3)
            try:
                async with self.sessions() as session:
                    held = await _settle(session, job, locked_until=self.lease_end())
                    await session.commit()
            except Exception:  # e.g. SQLite busy: the next renewal may succeed
                log.warning("renewing a job lease failed", exc_info=True, extra=self._about(job))
                continue
            if not held:
                log.warning("job lease lost", extra=self._about(job))
                return

    def _about(self, job: Job) -> dict[str, Any]:
        attempt = job.attempts
        return {"worker": self.worker_id, "job_id": job.id, "kind": job.kind, "attempt": attempt}


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@handler("jobs.purge")
async def purge(session: AsyncSession, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Delete finished (done or failed) jobs older than the retention (payload `days` overrides)."""
    days = job.payload.get("days", ctx.settings.job_retention_days)
    before = clock.now() - timedelta(days=days)
    statement = delete(Job).where(Job.state.in_(("done", "failed")), Job.finished_at < before)
    deleted = (await session.execute(statement)).rowcount  # type: ignore[attr-defined]
    return {"deleted": deleted}


async def tracked(
    session: AsyncSession, model: Any, account_id: str, token: str
) -> tuple[Any, Job | None]:
    """A record that follows a job by a token (an import, an export) in the account, with its job;
    NotFound for another account's token."""
    row = (
        await session.execute(
            select(model, Job)
            .outerjoin(Job, Job.id == model.job_id)
            .where(model.account_id == account_id, model.token == token)
        )
    ).first()
    if row is None:
        raise NotFound(f"{model.__name__} not found")
    return row[0], row[1]

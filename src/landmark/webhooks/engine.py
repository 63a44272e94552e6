"""The delivery engine: long-running tasks of the worker loop (core/jobs.py) that fan events
out, claim due deliveries in batches, send them concurrently, and write the outcomes back.

- Fan-out (dispatch.py) runs when a commit in this process recorded events (the API wakes it)
  and every `webhook_poll_seconds` otherwise (events committed by other processes).
- The deliveries table is its own queue. A claim takes up to `webhook_claim_batch` due
  deliveries with `FOR UPDATE SKIP LOCKED` (PostgreSQL) and leases them to this worker
  (`locked_until`); several workers share the queue without taking the same delivery. A worker
  that dies leaves leases that run out: the deliveries are claimed again (at-least-once).
- Sends run concurrently through one client (sender.py), at most `webhook_in_flight` per worker
  and `webhook_target_concurrency` per subscription, so a slow target cannot take every slot.
- Outcomes are written back in batches by one writer task. A delivery is `sent` only after the
  receiver answered 2xx. A failure puts the subscription in backoff: its failed deliveries are
  retried every `webhook_retry_seconds` and its never-tried deliveries wait until one retry
  succeeds (a dead target costs one probe per interval, not its whole backlog). `ignore_error`
  drops a failed delivery instead.
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, event, func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from landmark.core import clock
from landmark.core.channels import wait_for
from landmark.core.db import read_alone
from landmark.core.jobs import Worker, service
from landmark.settings import Settings
from landmark.webhooks import dialects, dispatch
from landmark.webhooks.models import (
    DROPPED,
    PENDING,
    SENT,
    WebhookDelivery,
    WebhookSubscription,
)
from landmark.webhooks.sender import Result, Sender

log = logging.getLogger("landmark.webhooks")

# How long the sender reuses a loaded subscription (its target, authorization, dialect).
SUBSCRIPTION_CACHE_SECONDS = 1.0
# How long the claimer and the writer wait for more work before a round trip, so that one round
# trip serves many deliveries under load (adds at most this much to a delivery's latency).
COALESCE_SECONDS = 0.005
# A fan-out pass covers the commits of this long: under a write load, a pass after every
# commit took ~12% of a server process's CPU (and an eighth of updateFactSheet's rate).
FAN_OUT_COALESCE_SECONDS = 0.02

# ---- waking up after a commit in this process ---------------------------------------------

_listeners: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()


def listen(flag: asyncio.Event) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
    """Set `flag` whenever a transaction of this process commits events; returns the handle."""
    handle = (asyncio.get_running_loop(), flag)
    _listeners.add(handle)
    return handle


def unlisten(handle: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
    _listeners.discard(handle)


@event.listens_for(Session, "after_commit")
def _events_committed(session: Session) -> None:
    if session.info.pop("landmark.events", False):
        for loop, flag in list(_listeners):
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(flag.set)


@event.listens_for(Session, "after_rollback")
def _events_rolled_back(session: Session) -> None:
    session.info.pop("landmark.events", None)


# ---- claiming -------------------------------------------------------------------------------


@dataclass
class Claimed:
    """A delivery this worker holds, with what sending it needs."""

    id: int
    subscription_id: int
    attempts: int
    method: str
    url: str
    headers: dict[str, str]
    body: str
    ignore_error: bool


def _pending(now: Any) -> Any:
    """Pending and due, on the claim's partial index."""
    d = WebhookDelivery
    return and_(d.state == PENDING, d.run_after <= now)


# Whether any delivery is pending and due at all (leases and subscriptions aside: the claim
# looks at those).
ANY_DUE = select(WebhookDelivery.id).where(_pending(bindparam("now"))).limit(1)


def _due(now: datetime) -> Any:
    """Pending, due, not leased (or its lease ran out), and its subscription may be tried: active
    (or a control message), out of backoff, and healthy unless this delivery was tried before."""
    d, s = WebhookDelivery, WebhookSubscription
    return and_(
        _pending(now),
        or_(d.locked_until.is_(None), d.locked_until < now),
        or_(s.active, d.control),
        or_(s.retry_at.is_(None), s.retry_at <= now),
        or_(s.error_count == 0, d.attempts > 0),
    )


async def claim(
    session: AsyncSession,
    worker_id: str,
    limit: int,
    lease_seconds: float,
    room: Callable[[int], int] | None = None,
    full: frozenset[int] = frozenset(),
    known: "Subscriptions | None" = None,
) -> list[Claimed]:
    """Lease up to `limit` due deliveries to `worker_id` and commit.

    `room(subscription_id)` caps how many of one subscription may be taken; deliveries of the
    subscriptions in `full` are passed over, so a saturated target does not starve the others.
    """
    now = clock.now()
    d, s = WebhookDelivery, WebhookSubscription
    query = (
        select(d.id, d.subscription_id)
        .join(s, s.id == d.subscription_id)
        .where(_due(now))
        .order_by(d.run_after, d.id)
        .limit(limit)
        .with_for_update(of=d, skip_locked=True)
    )
    if full:
        query = query.where(d.subscription_id.not_in(full))
    candidates = (await session.execute(query)).all()
    chosen: list[int] = []
    taken: Counter[int] = Counter()
    for delivery_id, subscription_id in candidates:
        if room is None or taken[subscription_id] < room(subscription_id):
            chosen.append(delivery_id)
            taken[subscription_id] += 1
    if not chosen:
        await session.commit()
        return []
    leased = (
        await session.execute(
            update(d)
            .where(
                d.id.in_(chosen),
                d.state == PENDING,
                or_(d.locked_until.is_(None), d.locked_until < now),
            )
            .values(locked_by=worker_id, locked_until=now + timedelta(seconds=lease_seconds))
            .returning(d.id, d.subscription_id, d.attempts, d.method, d.url, d.headers, d.body)
            .execution_options(synchronize_session=False)
        )
    ).all()
    subs = await (known or Subscriptions(0)).get(session, {row.subscription_id for row in leased})
    claimed = []
    for row in leased:
        sub = subs[row.subscription_id]
        headers = dict(row.headers)
        body, headers = await dialects.get(sub.dialect).finalize(session, sub, row.body, headers)
        if sub.authorization:
            headers["Authorization"] = sub.authorization
        url = row.url or sub.target_url or ""
        claimed.append(
            Claimed(row.id, sub.id, row.attempts, row.method, url, headers, body, sub.ignore_error)
        )
    await session.commit()
    return claimed


class Subscriptions:
    """Subscriptions by id, each reused for `seconds` (a change reaches the sender that late)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.loaded: dict[int, tuple[float, WebhookSubscription]] = {}

    async def get(self, session: AsyncSession, ids: set[int]) -> dict[int, WebhookSubscription]:
        now = time.monotonic()
        found = {i: self.loaded[i][1] for i in ids if i in self.loaded and self.loaded[i][0] > now}
        missing = ids - found.keys()
        if missing:
            s = WebhookSubscription
            for sub in await session.scalars(select(s).where(s.id.in_(missing))):
                session.expunge(sub)
                found[sub.id] = sub
                self.loaded[sub.id] = (now + self.seconds, sub)
        if len(self.loaded) > 10_000:
            self.loaded.clear()
        return found


# ---- writing outcomes back ------------------------------------------------------------------

_table: Any = WebhookDelivery.__table__
_SETTLE = (
    update(_table)
    .where(_table.c.id == bindparam("b_id"), _table.c.locked_by == bindparam("b_worker"))
    .values(
        state=bindparam("b_state"),
        run_after=bindparam("b_run_after"),
        attempts=_table.c.attempts + 1,
        locked_until=None,  # locked_by stays: which worker made the last attempt
        http_status=bindparam("b_status"),
        response_headers=bindparam("b_response_headers"),
        response_body=bindparam("b_response_body"),
        error=bindparam("b_error"),
        duration_ms=bindparam("b_duration"),
        attempted_at=bindparam("b_at"),
    )
)


async def settle(
    session: AsyncSession,
    settings: Settings,
    worker_id: str,
    outcomes: list[tuple[Claimed, Result]],
) -> None:
    """Write a batch of outcomes (deliveries and their subscriptions' health); the caller
    commits. Only deliveries still leased to `worker_id` are written."""
    now = clock.now()
    retry_at = now + timedelta(seconds=settings.webhook_retry_seconds)
    params = []
    for claimed, result in outcomes:
        state = SENT if result.ok else (DROPPED if claimed.ignore_error else PENDING)
        params.append(
            {
                "b_id": claimed.id,
                "b_worker": worker_id,
                "b_state": state,
                "b_run_after": retry_at if state == PENDING else now,
                "b_status": result.status,
                "b_response_headers": result.headers,
                "b_response_body": result.body,
                "b_error": None if result.ok else result.describe(),
                "b_duration": result.duration_ms,
                "b_at": now,
            }
        )
    # Subscriptions first (in id order), then their deliveries: the order in which a change of a
    # subscription (PATCH, PUT, DELETE) locks them, so the two never deadlock.
    for subscription_id, health in sorted(_health(outcomes).items()):
        await _record_health(session, subscription_id, health, now, retry_at)
    await (await session.connection()).execute(_SETTLE, params)


@dataclass
class Health:
    """What a batch of outcomes says about one subscription."""

    recovered: bool = False  # a success came after (or without) failures
    failures: int = 0  # failures since the last success in the batch
    last: Result | None = None
    ignore_error: bool = False


def _health(outcomes: list[tuple[Claimed, Result]]) -> dict[int, Health]:
    health: dict[int, Health] = {}
    for claimed, result in outcomes:
        h = health.setdefault(claimed.subscription_id, Health(ignore_error=claimed.ignore_error))
        h.last = result
        if result.ok:
            h.recovered, h.failures = True, 0
        else:
            h.failures += 1
    return health


async def _record_health(
    session: AsyncSession, subscription_id: int, h: Health, now: datetime, retry_at: datetime
) -> None:
    s = WebhookSubscription
    assert h.last is not None
    values: dict[str, Any] = {"last_delivery_status": h.last.status}
    statement = update(s).where(s.id == subscription_id)
    if h.failures == 0:
        values.update(error_count=0, first_failed_at=None, retry_at=None)
        # A healthy subscription that stays healthy is not written again (no row churn).
        statement = statement.where(
            or_(s.error_count != 0, s.last_delivery_status.is_distinct_from(h.last.status))
        )
    else:
        base = 0 if h.recovered else s.error_count
        values.update(
            error_count=base + h.failures,
            first_failed_at=now if h.recovered else func.coalesce(s.first_failed_at, now),
            last_error=h.last.describe()[:2000],
            retry_at=None if h.ignore_error else retry_at,
        )
    await session.execute(statement.values(**values).execution_options(synchronize_session=False))


# ---- the engine -----------------------------------------------------------------------------


class Engine:
    """The webhook tasks of one worker: fan-out, claim and send, write back."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: Settings, worker_id: str
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.worker_id = worker_id
        self.events = asyncio.Event()  # events were committed: fan out
        self.queued = asyncio.Event()  # deliveries were queued or a slot freed: claim
        self.outcomes: asyncio.Queue[tuple[Claimed, Result]] = asyncio.Queue()
        self.in_flight: Counter[int] = Counter()  # by subscription
        self.sending: set[asyncio.Task[None]] = set()
        self.subscriptions = Subscriptions(SUBSCRIPTION_CACHE_SECONDS)

    async def run(self, stop: asyncio.Event) -> None:
        from landmark.webhooks import notify

        self.sender = Sender(self.settings)
        handle = listen(self.events)
        writer = asyncio.create_task(self._write_loop())
        url = self.settings.resolved_database_url
        listener = asyncio.create_task(notify.listen(url, self.events, stop))
        try:
            await asyncio.gather(self._fan_out_loop(stop), self._claim_loop(stop))
            if self.sending:  # let the requests under way finish (each has its timeout)
                await asyncio.wait(self.sending)
            await self.outcomes.join()
        finally:
            unlisten(handle)
            writer.cancel()
            listener.cancel()
            await self.sender.close()

    async def _fan_out_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.events.clear()
            more = False
            try:
                queued, more = await dispatch.fan_out(
                    self.sessions, self.settings.webhook_fanout_batch
                )
                if queued:
                    self.queued.set()
            except Exception:
                log.exception("webhook fan-out failed", extra={"worker": self.worker_id})
            if not more:
                await wait_for(self.events, stop, self.settings.webhook_poll_seconds)
                await asyncio.sleep(FAN_OUT_COALESCE_SECONDS)

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        settings = self.settings
        while not stop.is_set():
            self.queued.clear()
            room = settings.webhook_in_flight - len(self.sending)
            claimed: list[Claimed] = []
            if room > 0:
                claimed = await self._claim(min(room, settings.webhook_claim_batch))
                for item in claimed:
                    self._start(item)
            if claimed and len(claimed) >= min(room, settings.webhook_claim_batch) // 2:
                continue  # a full batch: there are probably more
            await wait_for(self.queued, stop, settings.webhook_poll_seconds)
            if self.sending:  # let a few more sends finish: claims take batches, not single rows
                await asyncio.sleep(COALESCE_SECONDS)

    async def _claim(self, limit: int) -> list[Claimed]:
        cap = self.settings.webhook_target_concurrency
        full = frozenset(sub for sub, n in self.in_flight.items() if n >= cap)

        def room(subscription_id: int) -> int:
            return max(cap - self.in_flight.get(subscription_id, 0), 0)

        try:
            if not await read_alone(self.sessions, ANY_DUE, {"now": clock.now()}):
                return []  # the idle poll: one round trip, not a claim's transaction
            async with self.sessions() as session:
                lease = self.settings.webhook_lease_seconds
                return await claim(
                    session, self.worker_id, limit, lease, room, full, self.subscriptions
                )
        except OperationalError:  # SQLite busy: the next pass tries again
            log.warning("claiming webhook deliveries failed", exc_info=True)
        except Exception:
            log.exception("claiming webhook deliveries failed")
        return []

    def _start(self, item: Claimed) -> None:
        self.in_flight[item.subscription_id] += 1
        task = asyncio.create_task(self._send(item))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def _send(self, item: Claimed) -> None:
        try:
            result = await self.sender.send(item.method, item.url, item.headers, item.body)
        except Exception as exc:  # a bug, not the target: retried like a failure
            log.exception("sending a webhook delivery failed")
            result = Result(error=f"{type(exc).__name__}: {exc}")
        self.in_flight[item.subscription_id] -= 1
        if self.in_flight[item.subscription_id] <= 0:
            del self.in_flight[item.subscription_id]
        self.outcomes.put_nowait((item, result))
        self.queued.set()  # a slot is free

    async def _write_loop(self) -> None:
        while True:
            batch = [await self.outcomes.get()]
            await asyncio.sleep(COALESCE_SECONDS)  # one write for the outcomes of a few moments
            while not self.outcomes.empty() and len(batch) < 1000:
                batch.append(self.outcomes.get_nowait())
            await self._write(batch)
            for _ in batch:
                self.outcomes.task_done()

    async def _write(self, batch: list[tuple[Claimed, Result]]) -> None:
        """Write a batch of outcomes; on a database error try again (the lease still holds)."""
        for attempt in range(10):
            try:
                async with self.sessions() as session:
                    await settle(session, self.settings, self.worker_id, batch)
                    await session.commit()
                return
            except Exception:
                log.warning("writing webhook outcomes failed", exc_info=True)
                await asyncio.sleep(0.05 * 2**attempt)
        # Given up: the leases run out and the deliveries are sent again (at-least-once).
        log.error("webhook outcomes lost; their deliveries will be sent again")


@service("webhooks")
async def run_engine(worker: Worker, stop: asyncio.Event) -> None:
    """The webhook engine as a long-running task of the worker loop."""
    await Engine(worker.sessions, worker.settings, worker.worker_id).run(stop)

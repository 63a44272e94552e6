"""PULL subscriptions: batches of stored events by offset, long-polling, and the cursor.

The offset of an event is its sequence number in the account's outbox. A subscription's
`pull_offset` is the offset of the next event to hand out; a read returns events from there
(in order, bounded by `maxBatchSize` KiB, at least one) and the `nextCursor` to move to once they
are processed. Without a cursor move the same events come again (at-least-once); `autoCommit`
moves it in the same transaction as the read.
"""

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from landmark.webhooks.models import STORED, WebhookDelivery, WebhookSubscription

MAX_EVENTS = 1000  # per batch, whatever the size bound
POLL_SECONDS = 0.1  # a long poll re-reads this often (events fanned out by other processes)


@dataclass
class Batch:
    events: list[tuple[int, str]]  # (offset, serialized event)
    next_offset: int


async def read(session: AsyncSession, sub: WebhookSubscription, max_bytes: int) -> Batch:
    """The events from the subscription's offset on, up to about `max_bytes`."""
    d = WebhookDelivery
    rows = (
        await session.execute(
            select(d.event_seq, d.body)
            .where(
                d.account_id == sub.account_id,
                d.subscription_id == sub.id,
                d.state == STORED,
                d.event_seq >= sub.pull_offset,
            )
            .order_by(d.event_seq)
            .limit(MAX_EVENTS)
        )
    ).all()
    events: list[tuple[int, str]] = []
    size = 0
    for seq, body in rows:
        if events and size + len(body) > max_bytes:
            break
        events.append((int(seq or 0), body))
        size += len(body)
    next_offset = events[-1][0] + 1 if events else sub.pull_offset
    return Batch(events, next_offset)


async def move(session: AsyncSession, sub: WebhookSubscription, offset: int) -> None:
    """Set the subscription's cursor (the caller commits)."""
    await session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.id == sub.id)
        .values(pull_offset=offset)
        .execution_options(synchronize_session=False)
    )
    sub.pull_offset = offset


async def poll(
    sessions: async_sessionmaker[AsyncSession],
    sub: WebhookSubscription,
    max_bytes: int,
    timeout: float,
    auto_commit: bool,
) -> Batch:
    """Read a batch, waiting up to `timeout` seconds for one to arrive; with `auto_commit` the
    cursor moves past what is returned."""
    deadline = time.monotonic() + timeout
    while True:
        async with sessions() as session:
            current = await session.get(WebhookSubscription, sub.id, populate_existing=True)
            if current is None:  # deleted meanwhile
                return Batch([], sub.pull_offset)
            batch = await read(session, current, max_bytes)
            if batch.events and auto_commit:
                await move(session, current, batch.next_offset)
                await session.commit()
        left = deadline - time.monotonic()
        if batch.events or left <= 0:
            return batch
        await asyncio.sleep(min(left, POLL_SECONDS))

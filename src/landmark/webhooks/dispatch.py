"""Fan-out: read each account's outbox past its cursor and queue a delivery per matching
subscription, moving the cursor in the same transaction (at-least-once, never twice).

Events of one account commit in `seq` order (core/events.py), so reading `seq > last_seq` up to
the account's committed `event_seq` never skips an event. The cursor moves by a conditional
UPDATE (`WHERE last_seq = <what we read>`) made first in the transaction: on PostgreSQL a second
dispatcher waits on the row lock and then finds the cursor moved and does nothing; on SQLite the
UPDATE takes the write lock. Either way one event is fanned out once.
"""

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from landmark.core import clock
from landmark.core.db import read_alone
from landmark.core.events import Event
from landmark.identity.models import Account
from landmark.webhooks import dialects
from landmark.webhooks.models import (
    PENDING,
    PULL,
    STORED,
    WebhookCursor,
    WebhookDelivery,
    WebhookSubscription,
)


async def ensure_cursor(session: AsyncSession, account_id: str) -> None:
    """Start the account's fan-out at its current event (history is not sent): called when a
    subscription is created, in its transaction."""
    head = select(Account.event_seq).where(Account.id == account_id).scalar_subquery()
    values = {"account_id": account_id, "last_seq": head, "updated_at": clock.now()}
    backend = session.bind.dialect.name if session.bind else "sqlite"
    maker = pg_insert if backend == "postgresql" else sqlite_insert
    await session.execute(maker(WebhookCursor).values(**values).on_conflict_do_nothing())


# The accounts whose committed events are past their cursor. A pass runs after the commits of
# every 20 ms under writes: built once, and run alone (core/db.read_alone).
BEHIND = (
    select(WebhookCursor.account_id, WebhookCursor.last_seq, Account.event_seq)
    .join(Account, Account.id == WebhookCursor.account_id)
    .where(Account.event_seq > WebhookCursor.last_seq)
)


async def fan_out(sessions: async_sessionmaker[AsyncSession], batch: int) -> tuple[int, bool]:
    """One pass over the accounts with new events: (deliveries queued, more events waiting)."""
    behind = await read_alone(sessions, BEHIND)
    queued, more = 0, False
    for account_id, last, head in behind:
        upto = min(head, last + batch)
        async with sessions() as session:
            queued += await _fan_out_account(session, account_id, last, upto)
            await session.commit()
        more = more or upto < head
    return queued, more


async def _fan_out_account(session: AsyncSession, account_id: str, last: int, upto: int) -> int:
    moved = await session.execute(
        update(WebhookCursor)
        .where(WebhookCursor.account_id == account_id, WebhookCursor.last_seq == last)
        .values(last_seq=upto, updated_at=clock.now())
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]  # another dispatcher did it
        return 0
    subscriptions = (
        await session.scalars(
            select(WebhookSubscription).where(
                WebhookSubscription.account_id == account_id, WebhookSubscription.active
            )
        )
    ).all()
    if not subscriptions:
        return 0
    events = (
        await session.scalars(
            select(Event)
            .where(Event.account_id == account_id, Event.seq > last, Event.seq <= upto)
            .order_by(Event.seq)
        )
    ).all()
    rows = await deliveries_for(session, account_id, subscriptions, events)
    if rows:
        await session.execute(insert(WebhookDelivery), rows)
    return len(rows)


async def deliveries_for(
    session: AsyncSession,
    account_id: str,
    subscriptions: Sequence[WebhookSubscription],
    events: Sequence[Event],
) -> list[dict[str, Any]]:
    """The delivery rows of `events` for the subscriptions they match, in event order."""
    by_dialect: dict[str, list[WebhookSubscription]] = defaultdict(list)
    for subscription in subscriptions:
        by_dialect[subscription.dialect].append(subscription)
    rows: list[dict[str, Any]] = []
    now = clock.now()
    for name, subs in by_dialect.items():
        dialect = dialects.get(name)
        context = await dialect.prepare(session, account_id, events)
        for event in events:
            for sub in subs:
                if dialect.matches(sub, event):
                    outgoing = dialect.render(sub, event, context)
                    rows.append(delivery_row(sub, outgoing, now, event))
    rows.sort(key=lambda row: row["event_seq"] or 0)
    return rows


def delivery_row(
    sub: WebhookSubscription, outgoing: dialects.Outgoing, now: Any, event: Event | None = None
) -> dict[str, Any]:
    """The values of a delivery of `outgoing` to `sub` (about `event`, if any)."""
    body = json.dumps(outgoing.body, separators=(",", ":"), default=str)
    return {
        "account_id": sub.account_id,
        "subscription_id": sub.id,
        "event_seq": event.seq if event else None,
        "event_id": event.id if event else None,
        "event_created_at": event.created_at if event else None,
        "control": event is None,
        "state": STORED if sub.delivery_type == PULL else PENDING,
        "run_after": now,
        "attempts": 0,
        "method": sub.target_method,
        "url": sub.target_url,
        "headers": {"Content-Type": "application/json", **outgoing.headers},
        "body": body,
        "created_at": now,
    }

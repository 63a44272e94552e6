"""The transactional outbox: every change of state is an event, written with the change.

The audit trail, webhooks and monitors read from here. `record` allocates the account's next
sequence number by incrementing a counter on the account row, which also orders concurrent writers
of one account: their events commit in sequence order.
"""

import json
import uuid
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ForeignKey, Index, String, TextClause, Update, bindparam, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from landmark.core import clock
from landmark.core.db import Base, UTCDateTime, bulk_insert
from landmark.core.request_context import current_request_id


class Event(Base):
    __tablename__ = "events"
    # The audit trail of one record (GET /v1/cis/:id/audit and the like).
    __table_args__ = (
        Index("ix_events_subject", "account_id", "subject_type", "subject_id", "seq"),
    )
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    id: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(64))
    actor_user_id: Mapped[int | None]
    actor_credential_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Actor:
    """Who caused a change: a user and the credential they used (both optional)."""

    def __init__(self, user_id: int | None = None, credential_id: str | None = None) -> None:
        self.user_id = user_id
        self.credential_id = credential_id


SYSTEM = Actor()


async def record(
    session: AsyncSession,
    account_id: str,
    type: str,
    subject_type: str,
    subject_id: Any,
    actor: Actor = SYSTEM,
    data: dict[str, Any] | None = None,
) -> Event:
    """Add an event to the session's transaction with the account's next sequence number."""
    seq = await _reserve(session, account_id, 1)
    event = Event(
        account_id=account_id,
        seq=seq,
        type=type,
        subject_type=subject_type,
        subject_id=str(subject_id),
        actor_user_id=actor.user_id,
        actor_credential_id=actor.credential_id,
        request_id=current_request_id(),
        data=data or {},
    )
    session.add(event)
    return event


async def record_many(
    session: AsyncSession,
    account_id: str,
    items: list[tuple[str, str, Any, dict[str, Any]]],
    actor: Actor = SYSTEM,
) -> None:
    """`record` for many events at once: one counter update, one insert.

    Each item is (type, subject_type, subject_id, data). On PostgreSQL the two are one
    statement (`NUMBERED_INSERT`): the account row stays locked from the counter's update to
    the commit, so every round trip between them (and the wait for this process's event loop
    that comes with it) lengthens the time other writers of the account wait.
    """
    if not items:
        return
    if session.get_bind().dialect.name == "postgresql":
        _announce_after_commit(session)
        await session.execute(NUMBERED_INSERT, _numbered_params(account_id, items, actor))
        return
    first = await _reserve(session, account_id, len(items)) - len(items) + 1
    request_id = current_request_id()
    now = clock.now()
    records = [
        [
            account_id,
            first + n,
            uuid.uuid4(),
            type,
            subject_type,
            str(subject_id),
            actor.user_id,
            actor.credential_id,
            request_id,
            data,
            now,
        ]
        for n, (type, subject_type, subject_id, data) in enumerate(items)
    ]
    table: Any = Event.__table__
    await bulk_insert(await session.connection(), table, EVENT_COLUMNS, records)  # after _reserve


def numbered_insert(guard: str = "") -> TextClause:
    """The counter's update and the events' insert in one statement (PostgreSQL). The events
    travel as one JSON array; `n` numbers them from 1.

    With `guard`, a data-modifying statement with RETURNING, the statement runs it first and
    numbers and inserts the events only if it returned a row; it returns the events' numbers.
    """
    head, condition = "WITH ", ""
    if guard:
        head, condition = f"WITH guard AS ({guard}), ", " AND EXISTS (SELECT FROM guard)"
    return text(
        head + "counter AS (UPDATE accounts SET event_seq = event_seq + CAST(:count AS integer),"
        " updated_at = CAST(:now AS timestamptz) WHERE id = :account_id"
        + condition
        + " RETURNING event_seq)"
        " INSERT INTO events (account_id, seq, id, type, subject_type, subject_id, actor_user_id,"
        " actor_credential_id, request_id, data, created_at)"
        " SELECT CAST(:account_id AS varchar), counter.event_seq - CAST(:count AS integer) + e.n,"
        " e.id, e.type, e.subject_type, e.subject_id, CAST(:actor_user_id AS integer),"
        " CAST(:actor_credential_id AS varchar), CAST(:request_id AS varchar), e.data,"
        " CAST(:now AS timestamptz)"
        " FROM counter, jsonb_to_recordset(CAST(:events AS jsonb))"
        " AS e(n int, id uuid, type text, subject_type text, subject_id text, data jsonb)"
        + (" RETURNING seq" if guard else "")
    ).bindparams(bindparam("now", type_=UTCDateTime))


NUMBERED_INSERT = numbered_insert()


async def record_many_if(
    session: AsyncSession,
    guard: TextClause,
    params: dict[str, Any],
    account_id: str,
    items: list[tuple[str, str, Any, dict[str, Any]]],
    actor: Actor = SYSTEM,
) -> bool:
    """`record_many` on condition (PostgreSQL): `guard`, made by `numbered_insert(guard)`, runs
    with `params` and the events' own; whether it wrote (and the events were recorded)."""
    _announce_after_commit(session)
    values = {**params, **_numbered_params(account_id, items, actor)}
    return (await session.execute(guard, values)).first() is not None


def _numbered_params(
    account_id: str, items: list[tuple[str, str, Any, dict[str, Any]]], actor: Actor
) -> dict[str, Any]:
    events = [
        {
            "n": n,
            "id": str(uuid.uuid4()),
            "type": type,
            "subject_type": subject_type,
            "subject_id": str(subject_id),
            "data": data,
        }
        for n, (type, subject_type, subject_id, data) in enumerate(items, 1)
    ]
    return {
        "account_id": account_id,
        "count": len(items),
        "now": clock.now(),
        "actor_user_id": actor.user_id,
        "actor_credential_id": actor.credential_id,
        "request_id": current_request_id(),
        "events": json.dumps(events),
    }


EVENT_COLUMNS = [
    "account_id",
    "seq",
    "id",
    "type",
    "subject_type",
    "subject_id",
    "actor_user_id",
    "actor_credential_id",
    "request_id",
    "data",
    "created_at",
]


async def _reserve(session: AsyncSession, account_id: str, count: int) -> int:
    """Take the account's next `count` sequence numbers; returns the last of them."""
    _announce_after_commit(session)
    params = {"account_id": account_id, "count": count}
    return int((await session.execute(_reserving(), params)).scalar_one())


def _announce_after_commit(session: AsyncSession) -> None:
    """Tells listeners of this process (the webhook fan-out) after commit that events were
    added."""
    session.info["landmark.events"] = True


@cache
def _reserving() -> Update:
    """The counter's UPDATE, built once (every write runs it): on the table, so the ORM has no
    objects to bring up to date (nothing reads `event_seq` from a loaded account)."""
    from landmark.identity.models import Account

    accounts: Any = Account.__table__
    return (
        update(accounts)
        .where(accounts.c.id == bindparam("account_id"))
        .values(event_seq=accounts.c.event_seq + bindparam("count"))
        .returning(accounts.c.event_seq)
    )

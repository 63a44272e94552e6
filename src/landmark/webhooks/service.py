"""Subscriptions and their deliveries: the rules every dialect's face calls.

A face builds a `WebhookSubscription` from its request (its own field names and validation) and
calls `create` / `save` / `delete`; the target is checked here (SSRF guard) with the face's field
name in the error. Each change is an outbox event (`webhook_subscription.created|updated|deleted`,
offered to no webhook). Reads are scoped by account: another account's ids are not found.
"""

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from landmark.core import clock
from landmark.core.errors import BadRequest, NotFound
from landmark.core.events import record
from landmark.core.jobs import Job, JobContext, enqueue, ensure_queued, handler
from landmark.identity.authn import Principal
from landmark.settings import Settings
from landmark.webhooks import dialects, ssrf
from landmark.webhooks.dispatch import delivery_row, ensure_cursor
from landmark.webhooks.engine import Claimed, settle
from landmark.webhooks.models import (
    DROPPED,
    PENDING,
    SENT,
    STORED,
    WebhookDelivery,
    WebhookSubscription,
)
from landmark.webhooks.sender import Result, Sender, mask

SUBJECT = "webhook_subscription"


async def check_target(settings: Settings, url: str, field: str) -> None:
    """BadRequest naming `field` unless `url` is an http(s) URL of an allowed address."""
    try:
        await ssrf.check(url, settings.webhook_allowed_hosts, fresh=True)
    except ssrf.Refused as exc:
        raise BadRequest(f"{field} {exc}", [(field, str(exc))]) from None


def summary(sub: WebhookSubscription) -> dict[str, Any]:
    """What an event about a subscription records (no secret)."""
    return {
        "dialect": sub.dialect,
        "name": sub.name,
        "deliveryType": sub.delivery_type,
        "targetUrl": sub.target_url,
        "authorization": mask(sub.authorization),
        "active": sub.active,
        "config": sub.config,
    }


async def create(session: AsyncSession, who: Principal, sub: WebhookSubscription) -> None:
    """Store a new subscription of `who`'s account; it receives events from now on."""
    sub.account_id = who.account_id
    sub.user_id = who.user_id
    session.add(sub)
    await session.flush()
    await ensure_cursor(session, who.account_id)
    await record(session, who.account_id, f"{SUBJECT}.created", SUBJECT, sub.id, who.actor,
                 summary(sub))  # fmt: skip


async def save(session: AsyncSession, who: Principal, sub: WebhookSubscription) -> None:
    """Record a change made to a loaded subscription."""
    sub.updated_at = clock.now()
    await session.flush()
    await record(session, who.account_id, f"{SUBJECT}.updated", SUBJECT, sub.id, who.actor,
                 summary(sub))  # fmt: skip


async def delete(session: AsyncSession, who: Principal, sub: WebhookSubscription) -> None:
    """Delete a subscription with its deliveries (pending ones are not sent)."""
    await session.execute(
        sql_delete(WebhookDelivery).where(
            WebhookDelivery.account_id == sub.account_id,
            WebhookDelivery.subscription_id == sub.id,
        )
    )
    await session.delete(sub)
    await record(session, who.account_id, f"{SUBJECT}.deleted", SUBJECT, sub.id, who.actor,
                 summary(sub))  # fmt: skip


async def get(
    session: AsyncSession,
    account_id: str,
    dialect: str,
    *,
    id: int | None = None,
    uuid_: uuid.UUID | None = None,
    lock: bool = False,
) -> WebhookSubscription:
    """A subscription of the account and dialect by id or uuid; NotFound otherwise."""
    s = WebhookSubscription
    query = select(s).where(s.account_id == account_id, s.dialect == dialect)
    query = query.where(s.id == id) if id is not None else query.where(s.uuid == uuid_)
    if lock:
        query = query.with_for_update()
    sub = (await session.execute(query)).scalar_one_or_none()
    if sub is None:
        raise not_found()
    return sub


def not_found() -> NotFound:
    return NotFound("Subscription not found", [("id", "not found")])


async def listing(
    session: AsyncSession, account_id: str, dialect: str, name: str | None = None
) -> Sequence[WebhookSubscription]:
    s = WebhookSubscription
    query = select(s).where(s.account_id == account_id, s.dialect == dialect)
    if name is not None:
        query = query.where(s.name == name)
    return (await session.scalars(query.order_by(s.created_at, s.id))).all()


async def deliveries(
    session: AsyncSession, sub: WebhookSubscription, page: int, size: int, newest_first: bool
) -> tuple[Sequence[WebhookDelivery], int]:
    """A page (1-based) of the subscription's PUSH deliveries, and how many there are."""
    d = WebhookDelivery
    where = (d.account_id == sub.account_id, d.subscription_id == sub.id, d.state != STORED)
    total = await session.scalar(select(func.count()).select_from(d).where(*where)) or 0
    order = (d.created_at.desc(), d.id.desc()) if newest_first else (d.created_at, d.id)
    rows = await session.scalars(
        select(d).where(*where).order_by(*order).offset((page - 1) * size).limit(size)
    )
    return rows.all(), total


async def queue_control(
    session: AsyncSession, sub: WebhookSubscription, outgoing: dialects.Outgoing
) -> int:
    """Queue a message that is not an event (a verification, a test) for `sub`; it is sent even
    while the subscription is inactive. Returns the delivery id; the caller commits."""
    row = delivery_row(sub, outgoing, clock.now())
    row["state"] = PENDING
    delivery = WebhookDelivery(**row)
    session.add(delivery)
    await session.flush()
    return delivery.id


async def send_test(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, sub: WebhookSubscription
) -> tuple[int, Result]:
    """Send a sample event to `sub` now (through the SSRF guard and the sender), log it in its
    deliveries, and return the delivery id and the receiver's answer."""
    worker = f"test:{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        outgoing = await dialects.get(sub.dialect).sample(session, sub)
        delivery_id = await queue_control(session, sub, outgoing)
        delivery = await session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        delivery.locked_by, delivery.locked_until = worker, clock.now() + timedelta(minutes=5)
        body, headers = await dialects.get(sub.dialect).finalize(  # e.g. sign, as the engine does
            session, sub, delivery.body, dict(delivery.headers)
        )
        await session.commit()
    if sub.authorization:
        headers["Authorization"] = sub.authorization
    sender = Sender(settings)
    try:
        result = await sender.send(sub.target_method, sub.target_url or "", headers, body)
    finally:
        await sender.close()
    # A test is not retried: it ends sent or dropped.
    claimed = Claimed(delivery_id, sub.id, 0, sub.target_method, "", {}, "", True)
    async with sessions() as session:
        await settle(session, settings, worker, [(claimed, result)])
        await session.commit()
    return delivery_id, result


PURGE = "webhooks.purge"


@handler(PURGE)
async def purge(session: AsyncSession, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Delete PULL events and finished deliveries older than the retention; queue the next
    day's purge when this one is the daily one."""
    days = job.payload.get("days", ctx.settings.webhook_event_retention_days)
    before = clock.now() - timedelta(days=days)
    d = WebhookDelivery
    statement = sql_delete(d).where(d.state.in_((SENT, DROPPED, STORED)), d.created_at < before)
    deleted = (await session.execute(statement)).rowcount  # type: ignore[attr-defined]
    if job.payload.get("daily"):
        await enqueue(session, PURGE, {"daily": True}, run_after=clock.now() + timedelta(days=1))
    return {"deleted": deleted}


async def ensure_purge_scheduled(session: AsyncSession) -> None:
    """Queue the daily purge unless one is queued already (the caller commits)."""
    await ensure_queued(session, PURGE, {"daily": True})

"""Webhook tables: subscriptions (either dialect), deliveries (the send queue and its log), and
the fan-out cursor of each account.

A subscription carries its `dialect` ("leanix", "xurrent", ...); what is dialect-specific about it
(LeanIX tag sets and payload mode, a Xurrent event name or policy) lives in `config`, so that a
dialect needs no table of its own. A delivery is one event (or control message) for one
subscription: PUSH deliveries are the queue the sender claims from; PULL deliveries are the
events a PULL subscription reads by offset.
"""

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from landmark.core import clock
from landmark.core.db import Base

PUSH = "PUSH"
PULL = "PULL"

# Delivery states: waiting to be sent (or retried), sent (2xx), dropped (failed and not to be
# retried: ignoreError, or the subscription is gone), stored for PULL.
PENDING = "pending"
SENT = "sent"
DROPPED = "dropped"
STORED = "stored"

# SQLite autoincrements only an INTEGER primary key.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class WebhookSubscription(Base):
    """Who wants which events, and where they go. `id` is the Xurrent id, `uuid` the LeanIX one."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        Index(None, "account_id", "dialect", "name"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    uuid: Mapped[UUID] = mapped_column(unique=True, default=uuid4)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    dialect: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))  # LeanIX identifier, Xurrent name
    delivery_type: Mapped[str] = mapped_column(String(8), default=PUSH)
    target_url: Mapped[str | None] = mapped_column(String(2048))
    target_method: Mapped[str] = mapped_column(String(8), default="POST")
    # Sent as the Authorization header; never shown back in full.
    authorization: Mapped[str | None] = mapped_column(Text)
    ignore_error: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    user_id: Mapped[int | None]  # who created it
    # Delivery health: consecutive failures, when the streak began, the last outcome.
    error_count: Mapped[int] = mapped_column(default=0)
    first_failed_at: Mapped[datetime | None]
    last_delivery_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # While failing, no delivery of this subscription is attempted before this time.
    retry_at: Mapped[datetime | None]
    # PULL: the offset (event sequence number) of the next event to hand out.
    pull_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    # Set by webhooks/service.py on a change; delivery outcomes and PULL reads leave it.
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class WebhookDelivery(Base):
    """One event (or control message) for one subscription, with the outcome of its last attempt.

    `body` and `headers` are the request as rendered at fan-out (without Authorization, added at
    send time). `event_seq` is the event's sequence number: the PULL offset, and the order of
    delivery.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The sender's claim: pending deliveries, oldest first (a queue shared by every account).
        Index(
            "ix_webhook_deliveries_due",
            "run_after",
            "id",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        # The deliveries log and PULL reads of one subscription.
        Index(None, "account_id", "subscription_id", "event_seq"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    event_seq: Mapped[int | None] = mapped_column(BigInteger)
    event_id: Mapped[UUID | None]
    event_created_at: Mapped[datetime | None]
    # Control messages (a test, a verification) go out even while the subscription is inactive.
    control: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16), default=PENDING)
    run_after: Mapped[datetime] = mapped_column(default=clock.now)
    locked_by: Mapped[str | None] = mapped_column(String(128))
    locked_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    method: Mapped[str] = mapped_column(String(8), default="POST")
    url: Mapped[str | None] = mapped_column(String(2048))
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[str] = mapped_column(Text, default="")
    # The last attempt.
    http_status: Mapped[int | None]
    response_headers: Mapped[dict[str, Any] | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    attempted_at: Mapped[datetime | None]


class WebhookCursor(Base):
    """How far the fan-out has read an account's outbox: every event with seq <= `last_seq` has
    its deliveries. Events of an account commit in seq order, so the cursor never skips one."""

    __tablename__ = "webhook_cursors"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)

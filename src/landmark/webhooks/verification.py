"""The code a Xurrent webhook's receiver proves itself with (the `webhook.verify` callback).

One pending code per webhook, kept apart from the webhook's `config` so that it never reaches
an event or a response: only its keyed hash (identity/secrets.py) and its expiry are stored. A
new code replaces the old one; a code serves once.
"""

import secrets
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from landmark.cmdb.service import invalid
from landmark.core import clock
from landmark.core.db import Base
from landmark.core.errors import NotFound
from landmark.identity.secrets import keyed_hash, same_hash
from landmark.webhooks.models import WebhookSubscription

LIFETIME = timedelta(days=1)


class WebhookVerification(Base):
    """The pending verification of a webhook."""

    __tablename__ = "webhook_verifications"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


async def start(
    session: AsyncSession, sub: WebhookSubscription, pepper: bytes
) -> tuple[str, datetime]:
    """A new code for `sub` (replacing any earlier one): (code, expiry). The caller commits."""
    code = secrets.token_urlsafe(18)  # 144 random bits
    expires_at = (clock.now() + LIFETIME).replace(microsecond=0)
    row = await session.get(WebhookVerification, (sub.account_id, sub.id))
    if row is None:
        row = WebhookVerification(account_id=sub.account_id, subscription_id=sub.id)
        session.add(row)
    row.code_hash, row.expires_at = keyed_hash(pepper, code), expires_at
    row.created_at = clock.now()
    return code, expires_at


async def redeem(
    session: AsyncSession, sub: WebhookSubscription | None, code: str, pepper: bytes
) -> None:
    """Use up `code`: NotFound unless it is `sub`'s pending code, ValidationFailed once it has
    expired (nothing changes then). The caller commits."""
    row = None
    if sub is not None:
        row = await session.get(WebhookVerification, (sub.account_id, sub.id), with_for_update=True)
    if row is None or not same_hash(row.code_hash, keyed_hash(pepper, code)):
        raise NotFound("No verification of this webhook is under way with that code")
    if clock.now() > row.expires_at:
        raise invalid("expires_at", "has passed: set the uri again for a new verification")
    await session.delete(row)

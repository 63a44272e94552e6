"""The dialect contract: how a kind of subscription picks events and shapes its requests.

The delivery engine (dispatch.py fans events out, engine.py sends) is the same for every dialect.
A subscription row (`WebhookSubscription`) names its `dialect`; the engine asks that dialect two
things at fan-out time, and may ask a third at send time:

1. `matches(subscription, event) -> bool`: does this event go to this subscription? Only
   subscriptions that are `active` are asked. Pure and fast (called events x subscriptions times):
   read the subscription's `config` and the event's `type`, `subject_type` and `data`.
2. `render(subscription, event, context) -> Outgoing`: the request for a matching event: its
   JSON-ready `body` and extra `headers` (never Authorization: the engine adds the subscription's
   `authorization` at send time). `context` is what `prepare` returned for the batch.
   For a PULL subscription the body is what the PULL endpoint hands out for the event.
3. `finalize(session, subscription, delivery_body, headers) -> (body, headers)` (optional,
   async): the last change right before sending, e.g. sign a JWT with a fresh `iat`. It runs in
   the sender's claim transaction, so it may read the database; the subscription it gets is a
   detached copy the sender reuses for up to a second. The default sends as rendered.

Plus `prepare(session, account_id, events) -> context` (optional, async): lookups for a batch of
events of one account (account name, actor names...), done once per batch so `render` stays
synchronous. And `sample(session, subscription) -> Outgoing` (async): a sample event, for
`landmark webhooks test`.

A dialect registers itself with `register(MyDialect())` at import; its module is imported by
`landmark.webhooks` (see `__init__.py`). What the engine shares with every dialect: the SSRF
guard (`ssrf.py`), the sender with its limits (`sender.py`), the deliveries table as log and
queue, retries with per-subscription backoff, `error_count` / `last_error` /
`last_delivery_status` on the subscription, and `ignore_error` (drop instead of retry).
Control messages that are not events (a Xurrent `webhook.verify`, a test) are queued with
`service.queue_control(...)` and go out even while the subscription is inactive.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from landmark.core.events import Event
from landmark.webhooks.models import WebhookSubscription


@dataclass
class Outgoing:
    """A request to send: a JSON-ready body and extra headers."""

    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class Dialect:
    """Base class of a dialect; override `matches` and `render` (see the module docstring)."""

    name = ""

    async def prepare(self, session: AsyncSession, account_id: str, events: Sequence[Event]) -> Any:
        return None

    def matches(self, subscription: WebhookSubscription, event: Event) -> bool:
        raise NotImplementedError

    def render(self, subscription: WebhookSubscription, event: Event, context: Any) -> Outgoing:
        raise NotImplementedError

    async def finalize(
        self,
        session: AsyncSession,
        subscription: WebhookSubscription,
        body: str,
        headers: dict[str, str],
    ) -> tuple[str, dict[str, str]]:
        return body, headers

    async def sample(self, session: AsyncSession, subscription: WebhookSubscription) -> Outgoing:
        raise NotImplementedError


_dialects: dict[str, Dialect] = {}


def register(dialect: Dialect) -> Dialect:
    if dialect.name in _dialects:
        raise ValueError(f"webhook dialect {dialect.name!r} is registered already")
    _dialects[dialect.name] = dialect
    return dialect


def get(name: str) -> Dialect:
    """The dialect of that name; KeyError for one not registered."""
    return _dialects[name]

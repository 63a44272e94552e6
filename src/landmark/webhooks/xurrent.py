"""The Xurrent dialect: a webhook names one event (`ci.create`, `person.update`, ...), proves its
receiver with a `webhook.verify` callback, and may have its deliveries signed by a policy.

Events (reference §1.16; the mapping is in docs/decisions.md): every CMDB record type has
`<type>.create` and `<type>.update`; archiving, trashing and restoring a CI is a `ci.update`, and
so is a CI relation made or removed by an import (its `object_id` is the CI it hangs on).
Sign-in, administration and inventory events are offered to no Xurrent webhook.

A delivery is one POST per event, `application/json; charset=utf-8`, with the body of reference
§1.16 (`webhook_id`, `account_id`, `account`, `name`, `event`, `object_id`, `person_id`,
`person_name`, `payload` with `audit_line_id` = the event's sequence number) and the header
`x-xurrent-delivery`: an id of the (event, webhook) pair, the same on every retry. A webhook
linked to a policy receives `{"jwt": ...}` instead, signed in `finalize` (webhooks/policies.py).

A webhook is `active` (receives events) only when its receiver has verified it, it is not
disabled, and its policy, if any, is not disabled. Verification: a new webhook, or one whose
`uri` changes, is sent a `webhook.verify` control message whose payload is
`{"callback": "<base URL>/v1/webhooks/<id>/verify?code=...&expires_at=..."}`; an unauthenticated
GET of that URL with the right code, before it expires, verifies it (webhooks/verification.py
keeps the code's keyed hash).
"""

import base64
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy import select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.cmdb.people import authors
from landmark.cmdb.schema import RESOURCES
from landmark.cmdb.service import invalid
from landmark.core import clock
from landmark.core.errors import BadRequest, NotFound, ValidationFailed
from landmark.core.events import SYSTEM, Event, record
from landmark.identity.authn import Principal
from landmark.settings import Settings
from landmark.webhooks import policies, service, verification
from landmark.webhooks.dialects import Dialect, Outgoing, register
from landmark.webhooks.models import DROPPED, PENDING, WebhookDelivery, WebhookSubscription
from landmark.webhooks.policies import POLICY_ID, WebhookPolicy

NAME = "xurrent"
SUBJECTS = frozenset(r.singular for r in RESOURCES.values())
EVENTS = tuple(sorted(f"{subject}.{verb}" for subject in SUBJECTS for verb in ("create", "update")))
VERIFY = "webhook.verify"
CONTENT_TYPE = "application/json; charset=utf-8"
DELIVERY_IDS = uuid.UUID("6f0f4f1e-8d43-4d3e-9a55-3f8f5e0c2b71")  # namespace of delivery ids
EMAIL = re.compile(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+")


def xurrent_event(event: Event) -> tuple[str, int] | None:
    """(Xurrent event name, object id) of an outbox event; None when no webhook is offered it."""
    if event.subject_type == "ci_relation":
        ci_id = event.data.get("ci_id")
        return ("ci.update", ci_id) if isinstance(ci_id, int) else None
    if event.subject_type not in SUBJECTS or not event.subject_id.isdigit():
        return None
    verb = "create" if event.type.endswith(".create") else "update"
    return f"{event.subject_type}.{verb}", int(event.subject_id)


def account_url(sub: WebhookSubscription) -> str:
    """The account's URL (`account`, and `iss` of signed deliveries)."""
    return f"{sub.config.get('base_url', '')}/accounts/{sub.account_id}"


def node_id(sub: WebhookSubscription, model: str, ident: int) -> str:
    """Xurrent's nodeID: unpadded base64 of `<domain>/<Model>/<id>` (reference §1.4)."""
    domain = urlsplit(sub.config.get("base_url", "")).netloc
    return base64.b64encode(f"{domain}/{model}/{ident}".encode()).decode().rstrip("=")


def envelope(
    sub: WebhookSubscription,
    event: str,
    object_id: int | None,
    person: tuple[int | None, str] | None,
    payload: dict[str, Any],
) -> dict[str, Any]:
    """The body of a delivery (unsigned)."""
    return {
        "webhook_id": sub.id,
        "webhook_nodeID": node_id(sub, "Webhook", sub.id),
        "account_id": sub.account_id,
        "account": account_url(sub),
        "name": event,
        "event": event,
        "object_id": object_id,
        "person_id": person[0] if person else None,
        "person_name": person[1] if person else None,
        "payload": payload,
    }


def delivery_headers(delivery_id: uuid.UUID) -> dict[str, str]:
    return {"Content-Type": CONTENT_TYPE, "x-xurrent-delivery": str(delivery_id)}


@dataclass
class Context:
    people: dict[int, tuple[int | None, str]]  # actor user id -> (person id, name)


class Xurrent(Dialect):
    name = NAME

    async def prepare(
        self, session: AsyncSession, account_id: str, events: Sequence[Event]
    ) -> Context:
        users = {e.actor_user_id for e in events if e.actor_user_id is not None}
        return Context(await authors(session, account_id, users))

    def matches(self, subscription: WebhookSubscription, event: Event) -> bool:
        found = xurrent_event(event)
        return found is not None and found[0] == subscription.config.get("event")

    def render(self, subscription: WebhookSubscription, event: Event, context: Any) -> Outgoing:
        found = xurrent_event(event)
        assert found is not None  # render follows matches
        person = context.people.get(event.actor_user_id) if event.actor_user_id else None
        body = envelope(subscription, found[0], found[1], person, {"audit_line_id": event.seq})
        delivery_id = uuid.uuid5(DELIVERY_IDS, f"{event.id}/{subscription.id}")
        return Outgoing(body, delivery_headers(delivery_id))

    async def finalize(
        self,
        session: AsyncSession,
        subscription: WebhookSubscription,
        body: str,
        headers: dict[str, str],
    ) -> tuple[str, dict[str, str]]:
        policy_id = subscription.config.get(POLICY_ID)
        if policy_id is None:
            return body, headers
        policy = await session.get(WebhookPolicy, policy_id)
        if policy is None or policy.account_id != subscription.account_id:
            # Deleting a policy in use is refused, so this is not expected; never send unsigned.
            failed = {"jwt": None, "error": f"webhook policy {policy_id} no longer exists"}
            return json.dumps(failed), headers
        data = json.loads(body)
        token = policies.sign(policy, data, account_url(subscription), str(subscription.id))
        return json.dumps({"jwt": token}), headers

    async def sample(self, session: AsyncSession, subscription: WebhookSubscription) -> Outgoing:
        message = {"message": "A test delivery from Landmark (landmark webhooks test)"}
        body = envelope(subscription, subscription.config.get("event", ""), None, None, message)
        return Outgoing(body, delivery_headers(uuid.uuid4()))


register(Xurrent())


# ---- the rules the face calls -----------------------------------------------------------------


async def _check(
    session: AsyncSession, who: Principal, settings: Settings, values: dict[str, Any]
) -> None:
    """What the face's type checks cannot see: the target (SSRF guard), the mail addresses, and
    the policy (locked, so that it cannot be deleted while this links to it)."""
    if values.get("uri") is not None:
        try:
            await service.check_target(settings, values["uri"], "uri")
        except BadRequest as exc:
            raise ValidationFailed("Validation Failed", exc.errors) from None
    mails = values.get("mail_exceptions_to")
    if mails and not all(EMAIL.fullmatch(part.strip()) for part in mails.split(",")):
        raise invalid("mail_exceptions_to", "must be email addresses separated by commas")
    if values.get("webhook_policy") is not None:
        try:
            await policies.get(session, who.account_id, values["webhook_policy"], lock=True)
        except NotFound:
            raise invalid("webhook_policy_id", "is not a webhook policy of this account") from None


CONFIG_FIELDS = {
    "event": "event",
    "description": "description",
    "disabled": "disabled",
    "mail_exceptions_to": "mail_exceptions_to",
    "webhook_policy": POLICY_ID,
}


def _apply(sub: WebhookSubscription, values: dict[str, Any], settings: Settings) -> None:
    config = {**sub.config, "base_url": settings.base_url.rstrip("/")}
    for name, key in CONFIG_FIELDS.items():
        if name in values:
            config[key] = values[name]
    config["disabled"] = bool(config.get("disabled"))
    sub.config = config  # a new dict: the JSON column sees the change
    if values.get("name"):
        sub.name = values["name"]
    if values.get("uri") is not None:
        sub.target_url = values["uri"]


async def create(
    session: AsyncSession,
    who: Principal,
    settings: Settings,
    pepper: bytes,
    values: dict[str, Any],
) -> WebhookSubscription:
    """A new webhook of `who`'s account; inactive until its receiver verifies it. The caller
    commits."""
    await _check(session, who, settings, values)
    sub = WebhookSubscription(dialect=NAME, name=values.get("name") or values["event"], config={})
    _apply(sub, values, settings)
    _unverified(sub)
    await service.create(session, who, sub)
    await _send_verification(session, sub, pepper)
    return sub


async def update(
    session: AsyncSession,
    who: Principal,
    settings: Settings,
    pepper: bytes,
    sub: WebhookSubscription,
    values: dict[str, Any],
) -> None:
    """Apply a PATCH. A changed `uri` (or any `uri` while unverified: a fresh code) sends a new
    verification and holds the webhook until it is verified."""
    await _check(session, who, settings, values)
    uri = values.get("uri")
    reverify = uri is not None and (uri != sub.target_url or not sub.config.get("verified"))
    _apply(sub, values, settings)
    if reverify:
        _unverified(sub)
    else:
        await refresh(session, sub)
    await service.save(session, who, sub)
    if reverify:
        await _send_verification(session, sub, pepper)


def _unverified(sub: WebhookSubscription) -> None:
    sub.config = {**sub.config, "verified": False}
    sub.active = False


async def _send_verification(
    session: AsyncSession, sub: WebhookSubscription, pepper: bytes
) -> None:
    """Queue a `webhook.verify` message with a new code. Earlier ones are dropped (their code is
    void), and queued events follow the webhook to its new uri."""
    code, expires_at = await verification.start(session, sub, pepper)
    d = WebhookDelivery
    mine = (d.account_id == sub.account_id, d.subscription_id == sub.id, d.state == PENDING)
    await session.execute(sql_update(d).where(*mine, d.control).values(state=DROPPED))
    await session.execute(sql_update(d).where(*mine, ~d.control).values(url=sub.target_url))
    query = urlencode({"code": code, "expires_at": int(expires_at.timestamp())})
    callback = f"{sub.config['base_url']}/v1/webhooks/{sub.id}/verify?{query}"
    body = envelope(sub, VERIFY, sub.id, None, {"callback": callback})
    await service.queue_control(session, sub, Outgoing(body, delivery_headers(uuid.uuid4())))


async def verify(session: AsyncSession, webhook_id: int, code: str, pepper: bytes) -> None:
    """The receiver's GET of the callback: verify the webhook when `code` is its pending code
    and has not expired. NotFound for an unknown webhook or a wrong or used code, and
    ValidationFailed for an expired one; nothing changes then. The caller commits."""
    sub = await session.scalar(
        select(WebhookSubscription)
        .where(WebhookSubscription.id == webhook_id, WebhookSubscription.dialect == NAME)
        .with_for_update()
    )
    await verification.redeem(session, sub, code, pepper)
    assert sub is not None  # redeem found its code
    sub.config = {**sub.config, "verified": True}
    await refresh(session, sub)
    sub.updated_at = clock.now()
    await session.flush()
    await record(session, sub.account_id, f"{service.SUBJECT}.updated", service.SUBJECT, sub.id,
                 SYSTEM, service.summary(sub))  # fmt: skip


async def refresh(session: AsyncSession, sub: WebhookSubscription) -> None:
    """Set `active`: verified, not disabled, and its policy (if any) not disabled."""
    policy_ok = True
    policy_id = sub.config.get(POLICY_ID)
    if policy_id is not None:
        policy = await session.get(WebhookPolicy, policy_id)
        policy_ok = policy is not None and not policy.disabled
    config = sub.config
    sub.active = bool(config.get("verified")) and not config.get("disabled") and policy_ok


async def policy_changed(session: AsyncSession, policy: WebhookPolicy) -> None:
    """Re-evaluate the webhooks linked to a policy that was disabled or enabled."""
    linked = await session.scalars(
        select(WebhookSubscription).where(
            WebhookSubscription.account_id == policy.account_id,
            WebhookSubscription.dialect == NAME,
            policies.linked(policy.id),
        )
    )
    for sub in linked:
        await refresh(session, sub)

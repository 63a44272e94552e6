"""The LeanIX dialect: tag sets pick events, payloads follow reference §5.5.

Every event that reaches a LeanIX subscription carries tags; a subscription matches when all the
tags of one of its `tagSets` are on the event. Tags of an event:
- the inventory (fact sheets, tags, tag groups, the data model): `pathfinder`, the event type
  (`FACT_SHEET_CREATED`, `RELATION_CREATED`, `TAG_CREATED`, ...) and, for a fact-sheet event,
  the fact sheet's type (`Application`): `[["pathfinder", "FACT_SHEET_CREATED", "Application"]]`
  is the fact-sheet-type filter;
- the CMDB: `cmdb` and `<RECORD>_<ACTION>` (`CI_CREATED`, `CI_UPDATED`, `CI_ARCHIVED`,
  `CI_TRASHED`, `CI_RESTORED`, `PRODUCT_CREATED`, `PERSON_UPDATED`, `CI_RELATION_CREATED`,
  `CI_RELATION_DELETED`, ...);
- sign-in and administration events (users, tokens) are not offered to webhooks.

Payload modes: DEFAULT sends the event payload (`id`, `type` such as `FactSheetCreatedEvent`,
`userId`, `createdAt`, `workspaceId`, `transactionSequenceNumber` = the account's event
sequence number, and the event's data); WRAPPED_EVENT the whole event (`payload` as a JSON
string, as LeanIX serializes it); NO_PAYLOAD `{}`. A PULL subscription stores the wrapped event.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.cmdb.imports import CI_RELATIONS
from landmark.cmdb.schema import RESOURCES
from landmark.core import clock
from landmark.core.events import Event
from landmark.identity.models import Account, User
from landmark.webhooks.dialects import Dialect, Outgoing, register
from landmark.webhooks.models import PULL, WebhookSubscription

NAME = "leanix"
PATHFINDER = "pathfinder"
CMDB = "cmdb"
INVENTORY_SUBJECTS = {"factSheet", "tag", "tagGroup", "dataModel"}
CMDB_SUBJECTS = {r.singular for r in RESOURCES.values()} | {CI_RELATIONS.singular}
# Xurrent audit actions as LeanIX event-type verbs.
PAST = {
    "create": "CREATED",
    "update": "UPDATED",
    "archive": "ARCHIVED",
    "trash": "TRASHED",
    "restore": "RESTORED",
    "destroy": "DELETED",
    "delete": "DELETED",
}
PAYLOAD_MODES = ("DEFAULT", "WRAPPED_EVENT", "NO_PAYLOAD")


def event_type(event: Event) -> str | None:
    """The LeanIX event type of an outbox event; None for events not offered to webhooks."""
    if event.subject_type in INVENTORY_SUBJECTS:
        return event.type
    if event.subject_type in CMDB_SUBJECTS:
        action = event.type.rpartition(".")[2]
        return f"{event.subject_type.upper()}_{PAST.get(action, action.upper())}"
    return None


def tags(event: Event) -> list[str]:
    """The event's tags (empty: no LeanIX subscription receives it)."""
    kind = event_type(event)
    if kind is None:
        return []
    if event.subject_type not in INVENTORY_SUBJECTS:
        return [CMDB, kind]
    found = [PATHFINDER, kind]
    fact_sheet = event.data.get("factSheet")
    if isinstance(fact_sheet, dict) and fact_sheet.get("type"):
        found.append(str(fact_sheet["type"]))
    return found


async def user_uuids(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    """LeanIX's user ids (uuids) of the given users."""
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.uuid).where(User.id.in_(ids)))
    return {user_id: str(user_uuid) for user_id, user_uuid in rows}


def payload_type(kind: str) -> str:
    """FACT_SHEET_CREATED -> FactSheetCreatedEvent."""
    return "".join(part.capitalize() for part in kind.split("_")) + "Event"


@dataclass
class Context:
    workspace_id: str
    user_ids: dict[int, str]


class LeanIX(Dialect):
    name = NAME

    async def prepare(
        self, session: AsyncSession, account_id: str, events: Sequence[Event]
    ) -> Context:
        workspace = await session.scalar(select(Account.uuid).where(Account.id == account_id))
        actors = {e.actor_user_id for e in events if e.actor_user_id is not None}
        return Context(str(workspace), await user_uuids(session, actors))

    def matches(self, subscription: WebhookSubscription, event: Event) -> bool:
        have = tags(event)
        if not have:
            return False
        return any(
            tag_set and all(tag in have for tag in tag_set)
            for tag_set in subscription.config.get("tagSets", ())
        )

    def render(self, subscription: WebhookSubscription, event: Event, context: Any) -> Outgoing:
        payload = default_payload(event, context)
        if subscription.delivery_type == PULL:
            return Outgoing(wrapped(event, context, payload))
        mode = subscription.config.get("payloadMode", "DEFAULT")
        if mode == "NO_PAYLOAD":
            return Outgoing({})
        if mode == "WRAPPED_EVENT":
            return Outgoing(wrapped(event, context, payload))
        return Outgoing(payload)

    async def sample(self, session: AsyncSession, subscription: WebhookSubscription) -> Outgoing:
        workspace = await session.scalar(
            select(Account.uuid).where(Account.id == subscription.account_id)
        )
        return Outgoing(
            {
                "id": 0,
                "type": "WebhookTestEvent",
                "createdAt": clock.now().isoformat(),
                "workspaceId": str(workspace),
                "transactionSequenceNumber": 0,
                "subscriptionId": str(subscription.uuid),
                "message": "A test delivery from Landmark (landmark webhooks test)",
            }
        )


def default_payload(event: Event, context: Context) -> dict[str, Any]:
    kind = event_type(event) or event.type
    head: dict[str, Any] = {
        "id": event.seq,
        "type": payload_type(kind),
        "userId": context.user_ids.get(event.actor_user_id or 0),
        "createdAt": event.created_at.isoformat(),
        "workspaceId": context.workspace_id,
        "transactionSequenceNumber": event.seq,
    }
    if event.subject_type == "factSheet":
        return {**head, **event.data}
    if event.subject_type in INVENTORY_SUBJECTS:
        return {**head, event.subject_type: event.data}
    subject_id: Any = int(event.subject_id) if event.subject_id.isdigit() else event.subject_id
    return {**head, "object": {"type": event.subject_type, "id": subject_id}, **event.data}


def wrapped(event: Event, context: Context, payload: dict[str, Any]) -> dict[str, Any]:
    """The whole event, as LeanIX serializes an Event (reference §5.2)."""
    return {
        "id": str(event.id),
        "createdAt": event.created_at.isoformat(),
        "type": event_type(event),
        "sourceName": "EAM" if event.subject_type in INVENTORY_SUBJECTS else "CMDB",
        "sourceId": event.subject_id,
        "workspaceId": context.workspace_id,
        "userId": payload["userId"],
        "tags": tags(event),
        "payload": json.dumps(payload, separators=(",", ":"), default=str),
        "sequenceInfo": {"transactionSequenceNumber": event.seq},
    }


register(LeanIX())

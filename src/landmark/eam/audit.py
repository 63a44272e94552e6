"""Outbox events of the inventory; they are also each fact sheet's audit trail (allLogEvents).

Every event's subject is a fact sheet (`subject_type` "factSheet"), and its data carries a
`factSheet` summary shaped like the LeanIX webhook payload (reference §5.5) plus what changed:
`changes` (path -> [old, new]), `relation`, `tag`, `subscription`, `comment` or `document`.
The event's `seq` is LeanIX's `transactionSequenceNumber`.
"""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from landmark.core.events import Event, record
from landmark.eam.models import FactSheet, Relation, Tag
from landmark.identity.authn import Principal

SUBJECT = "factSheet"


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def fact_sheet_summary(fs: FactSheet) -> dict[str, Any]:
    return {
        "id": str(fs.id),
        "type": fs.type,
        "name": fs.name,
        "displayName": fs.display_name,
        "fullName": fs.full_name,
        "rev": fs.rev,
        "level": fs.level,
        "status": fs.status,
        "completion": {"completion": fs.completion, "percentage": round(fs.completion * 100)},
        "createdAt": iso(fs.created_at),
        "updatedAt": iso(fs.updated_at),
    }


def relation_summary(r: Relation) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "type": r.type,
        "fromId": str(r.from_id),
        "toId": str(r.to_id),
        "activeFrom": r.active_from,
        "activeUntil": r.active_until,
        "fields": dict(r.fields),
        "status": r.status,
    }


def tag_summary(t: Tag) -> dict[str, Any]:
    return {"id": str(t.id), "name": t.name, "tagGroupId": iso_id(t.tag_group_id)}


def iso_id(value: Any) -> str | None:
    return str(value) if value is not None else None


def item(type: str, fs: FactSheet, **data: Any) -> tuple[str, str, Any, dict[str, Any]]:
    """The event `type` about `fs`, as `record_many` takes it."""
    return type, SUBJECT, fs.id, {"factSheet": fact_sheet_summary(fs), **data}


async def emit(
    session: AsyncSession, who: Principal, type: str, fs: FactSheet, **data: Any
) -> Event:
    """Record `type` about `fs` in the outbox (same transaction as the change)."""
    _, subject_type, subject_id, payload = item(type, fs, **data)
    return await record(session, who.account_id, type, subject_type, subject_id, who.actor, payload)

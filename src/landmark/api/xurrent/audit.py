"""Audit lines as Xurrent shows them, read from the event outbox (the line id is the event's
per-account sequence number)."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from landmark.cmdb import people
from landmark.core.events import Event
from landmark.identity.authn import Principal


async def _authors(
    session: AsyncSession, who: Principal, user_ids: set[int]
) -> dict[int, dict[str, Any]]:
    """`created_by` references: the user's person in the account, else the user's name."""
    account = {"id": who.account_id, "name": who.account_name}
    found = await people.authors(session, who.account_id, user_ids)
    return {
        uid: {"id": pid, "name": name, "account": account} for uid, (pid, name) in found.items()
    }


async def render_lines(
    session: AsyncSession, who: Principal, events: list[Event], *, account_wide: bool
) -> list[dict[str, Any]]:
    authors = await _authors(session, who, {e.actor_user_id for e in events if e.actor_user_id})
    lines = []
    for event in events:
        line: dict[str, Any] = {
            "id": event.seq,
            "action": event.data.get("action", event.type.rsplit(".", 1)[-1]),
            "created_at": event.created_at.isoformat(),
            "created_by": authors.get(event.actor_user_id) if event.actor_user_id else None,
            "changes": event.data.get("changes", {}),
        }
        if account_wide:
            line["audited"] = event.subject_type
            line[event.subject_type] = {"id": int(event.subject_id)}
        lines.append(line)
    return lines

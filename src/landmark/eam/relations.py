"""Relation patches: `/relXxx/new_N` (add), `/relXxx/<relationId>` (replace, remove).

A relation is stored once under its FROM-side name; a patch may use either side's name. Rules:
the target must be an active fact sheet of this account and of the type the relation expects,
no relation to itself, no duplicate, multiplicity on both ends, and for relToParent the
hierarchy rules (hierarchy.py).
"""

import json
import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.core import clock
from landmark.eam import hierarchy
from landmark.eam.audit import relation_summary
from landmark.eam.change import Change
from landmark.eam.errors import PatchError, invalid, not_found
from landmark.eam.metamodel import RelationSide
from landmark.eam.models import ACTIVE, ARCHIVED, FactSheet, Relation
from landmark.eam.values import decode_json, parse_date, parse_field

PARENT = "relToParent"
BUILT_IN_KEYS = ("factSheetId", "activeFrom", "activeUntil")


async def apply_relation(
    change: Change, side: RelationSide, key: str | None, op: str, raw: str | None, path: str
) -> None:
    if op == "add" or (op == "replace" and (key is None or key.startswith("new"))):
        await _add(change, side, decode_json(path, raw), path)
        return
    relation = await _find(change, side, key, path)
    if op == "remove":
        await _remove(change, side, relation, path)
    else:
        await _replace(change, side, relation, decode_json(path, raw), path)


def _uuid(path: str, value: Any, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise invalid(path, "INVALID_VALUE", f"{what} {value!r} is not a UUID") from None


async def _find(change: Change, side: RelationSide, key: str | None, path: str) -> Relation:
    ident = _uuid(path, key, "relation id")
    mine = Relation.from_id if side.forward else Relation.to_id
    query = select(Relation).where(
        Relation.account_id == change.who.account_id,
        Relation.id == ident,
        Relation.type == side.definition.name,
        mine == change.fs.id,
    )
    relation = (await change.session.execute(query)).scalar_one_or_none()
    if relation is None:
        raise not_found(path, "relation", ident)
    return relation


async def _target(change: Change, side: RelationSide, value: Any, path: str) -> FactSheet:
    ident = _uuid(path, value, "factSheetId")
    target = await change.session.scalar(
        select(FactSheet).where(
            FactSheet.account_id == change.who.account_id, FactSheet.id == ident
        )
    )
    if target is None:
        raise not_found(path, "fact sheet", ident)
    if target.status != ACTIVE:
        raise invalid(path, "ARCHIVED", f"fact sheet {ident} is archived", ident)
    expected = side.target_type or change.fs.type
    if target.type != expected:
        message = f"{side.name} relates {change.fs.type} to {expected}, not to {target.type}"
        raise invalid(path, "RELATION_WRONG_TYPE", message, ident)
    if target.id == change.fs.id:
        raise invalid(path, "RELATION_SELF", "a fact sheet cannot relate to itself", ident)
    return target


def _values(change: Change, side: RelationSide, data: Any, path: str) -> dict[str, Any]:
    """The relation's own values from a patch value object: dates and model fields."""
    if not isinstance(data, dict):
        raise invalid(path, "INVALID_VALUE", f"{path}: the value must be a JSON object")
    fields = side.definition.fields
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "factSheetId":
            continue
        if key in ("activeFrom", "activeUntil"):
            out[key] = None if value is None else parse_date(path, str(value)[:10])
        elif key in fields:
            raw = value if isinstance(value, str) or value is None else json.dumps(value)
            out[key] = None if raw is None else parse_field(path, fields[key], raw)
        else:
            message = f"{key!r} is not a field of relation {side.name}"
            raise invalid(path, "UNKNOWN_FIELD", message)
    return out


def _assign(relation: Relation, values: dict[str, Any], path: str) -> None:
    fields = dict(relation.fields)
    for key, value in values.items():
        if key == "activeFrom":
            relation.active_from = value
        elif key == "activeUntil":
            relation.active_until = value
        elif value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    relation.fields = fields
    start, end = relation.active_from, relation.active_until
    if start and end and start > end:
        raise invalid(path, "INVALID_VALUE", "activeFrom must not be after activeUntil")


async def _check_unique(
    change: Change, side: RelationSide, target: FactSheet, path: str, skip: Any = None
) -> None:
    """No duplicate, and SINGLE multiplicity on each end (active relations only)."""
    name = side.definition.name
    fs_id, target_id = change.fs.id, target.id
    from_id, to_id = (fs_id, target_id) if side.forward else (target_id, fs_id)
    active = select(Relation.from_id, Relation.to_id).where(
        Relation.account_id == change.who.account_id,
        Relation.type == name,
        Relation.status == ACTIVE,
        Relation.id != skip if skip is not None else Relation.id.is_not(None),
        or_(Relation.from_id.in_((from_id, to_id)), Relation.to_id.in_((from_id, to_id))),
    )
    rows = (await change.session.execute(active)).all()
    if (from_id, to_id) in [tuple(r) for r in rows]:
        message = f"{side.name} to {target.id} exists already"
        raise invalid(path, "RELATION_NOT_UNIQUE_OUTGOING", message, target.id)
    mine = [r for r in rows if (r.from_id if side.forward else r.to_id) == fs_id]
    if side.single and mine:
        message = f"{side.name} allows one relation per {change.fs.type}"
        raise invalid(path, "RELATION_MULTIPLICITY", message, change.fs.id)
    theirs = [r for r in rows if (r.to_id if side.forward else r.from_id) == target_id]
    if side.target_single and theirs:
        message = f"{target.name!r} already has its one relation of this kind ({side.name})"
        raise invalid(path, "RELATION_MULTIPLICITY", message, target.id)


async def _hang(change: Change, side: RelationSide, target: FactSheet | None, path: str) -> None:
    """relToParent from the child (forward) or relToChild from the parent (reverse)."""
    if side.definition.name != PARENT:
        return
    if side.forward:
        await hierarchy.set_parent(change, change.fs, target, path)
    elif target is not None:
        await hierarchy.set_parent(change, target, change.fs, path)


async def _add(change: Change, side: RelationSide, data: Any, path: str) -> None:
    values = _values(change, side, data, path)
    target = await _target(change, side, data.get("factSheetId"), path)
    await _check_unique(change, side, target, path)
    ends = (change.fs.id, target.id) if side.forward else (target.id, change.fs.id)
    now = clock.now()
    relation = Relation(
        id=uuid.uuid4(), account_id=change.who.account_id, type=side.definition.name,
        from_id=ends[0], to_id=ends[1], fields={}, status=ACTIVE, created_at=now, updated_at=now,
    )  # fmt: skip
    _assign(relation, values, path)
    change.session.add(relation)
    await _hang(change, side, target, path)
    change.event("RELATION_CREATED", relation=relation_summary(relation))


async def _replace(
    change: Change, side: RelationSide, relation: Relation, data: Any, path: str
) -> None:
    values = _values(change, side, data, path)
    if "factSheetId" in data:
        target = await _target(change, side, data["factSheetId"], path)
        await _check_unique(change, side, target, path, skip=relation.id)
        if side.definition.name == PARENT and not side.forward:  # the old child becomes a root
            old_child = await change.session.get(FactSheet, relation.from_id)
            if old_child is not None:
                await hierarchy.set_parent(change, old_child, None, path)
        if side.forward:
            relation.to_id = target.id
        else:
            relation.from_id = target.id
        await _hang(change, side, target, path)
    _assign(relation, values, path)
    relation.updated_at = clock.now()
    change.event("RELATION_UPDATED", relation=relation_summary(relation))


async def _remove(change: Change, side: RelationSide, relation: Relation, path: str) -> None:
    summary = relation_summary(relation)
    if side.definition.name == PARENT:
        child_id = relation.from_id
        child = change.fs if side.forward else await change.session.get(FactSheet, child_id)
        if child is not None:
            await hierarchy.set_parent(change, child, None, path)
    await change.session.delete(relation)
    change.event("RELATION_DELETED", relation=summary)


async def _relations_of(session: AsyncSession, fs: FactSheet, status: str) -> list[Relation]:
    query = select(Relation).where(
        Relation.account_id == fs.account_id,
        Relation.status == status,
        or_(Relation.from_id == fs.id, Relation.to_id == fs.id),
    )
    return list((await session.execute(query)).scalars())


async def archive_relations(change: Change) -> None:
    """Archiving a fact sheet archives its relations (both directions)."""
    for relation in await _relations_of(change.session, change.fs, ACTIVE):
        relation.status, relation.updated_at = ARCHIVED, clock.now()
        change.event("RELATION_ARCHIVED", relation=relation_summary(relation))


async def recover_relations(change: Change) -> None:
    """Recovering brings back the archived relations whose other end is active."""
    archived = await _relations_of(change.session, change.fs, ARCHIVED)
    others = {r.to_id if r.from_id == change.fs.id else r.from_id for r in archived}
    active = set(
        (
            await change.session.execute(
                select(FactSheet.id).where(
                    FactSheet.account_id == change.fs.account_id,
                    FactSheet.id.in_(others),
                    FactSheet.status == ACTIVE,
                )
            )
        ).scalars()
    )
    for relation in archived:
        if (relation.to_id if relation.from_id == change.fs.id else relation.from_id) in active:
            relation.status, relation.updated_at = ACTIVE, clock.now()


__all__ = ["PatchError", "apply_relation", "archive_relations", "recover_relations"]

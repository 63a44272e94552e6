"""Writing fact sheets: LeanIX patches are THE write path (GraphQL passes them through, REST
bodies are translated into them), so each rule of the inventory is written once, here and in the
modules this one calls (relations, hierarchy, tags, collaboration).

A write is the only one of its transaction (change.unit): a failing patch rolls the whole write
back, and `validate_only` rolls it back after every check passed. The caller commits.
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.core import clock
from landmark.core.events import record_many
from landmark.eam import audit, hierarchy, optimistic, relations, tags
from landmark.eam.change import Change, snapshot, unit
from landmark.eam.collab import (
    create_comment,
    create_document,
    create_subscription,
    delete_document,
    delete_subscription,
)
from landmark.eam.errors import INVALID_PATCH, STALE_REV, PatchError, invalid, not_found
from landmark.eam.metamodel import FactSheetTypeDef, MetaModel
from landmark.eam.models import ACTIVE, ARCHIVED, FactSheet
from landmark.eam.tags import create_tag, create_tag_group, delete_tag
from landmark.eam.values import filled, lifecycle_of, parse_date, parse_field
from landmark.identity.authn import Principal

__all__ = [
    "Patch",
    "create_fact_sheet",
    "update_fact_sheet",
    "archive_fact_sheet",
    "create_tag",
    "delete_tag",
    "create_tag_group",
    "create_subscription",
    "delete_subscription",
    "create_comment",
    "create_document",
    "delete_document",
]

MAX_NAME = 512


@dataclass
class Patch:
    """A LeanIX patch: `value` is a string, JSON-encoded when structured (reference §3.4)."""

    op: Literal["add", "replace", "remove"]
    path: str
    value: str | None = None


async def create_fact_sheet(
    session: AsyncSession,
    who: Principal,
    model: MetaModel,
    type: str,
    name: str,
    patches: list[Patch],
    validate_only: bool = False,
) -> FactSheet:
    """A new fact sheet of `type` named `name`, with `patches` applied (FACT_SHEET_CREATED)."""
    type_def = model.types.get(type)
    if type_def is None:
        raise invalid("/type", "UNKNOWN_TYPE", f"unknown fact sheet type {type!r}")
    async with unit(session, who.account_id, validate_only):
        now = clock.now()
        fs = FactSheet(
            id=uuid.uuid4(), account_id=who.account_id, type=type, status=ACTIVE, level=1,
            rev=1, completion=0.0, fields={}, phase_dates={}, created_at=now, updated_at=now,
            name="", display_name="", full_name="",
        )  # fmt: skip
        change = Change(session, who, model, fs, type_def, creating=True)
        set_name(change, name, "/name")
        session.add(fs)
        await session.flush()
        await apply_all(change, patches)
        events = await finish(change)
        result = snapshot(fs) if validate_only else fs
    await _record(change, events, validate_only)
    return result


async def update_fact_sheet(
    session: AsyncSession,
    who: Principal,
    model: MetaModel,
    fact_sheet_id: uuid.UUID,
    rev: int | None,
    patches: list[Patch],
    comment: str | None = None,
    validate_only: bool = False,
) -> FactSheet:
    """Apply `patches` to a fact sheet; `rev`, when given, must be its current revision."""

    async def applied(fs: FactSheet) -> Change:
        return await _applied(session, who, model, fs, rev, patches, comment)

    structural = _structural(model, patches)
    if not (validate_only or structural) and await optimistic.begin(session):
        written = await _update_values(session, who, fact_sheet_id, applied)
        if written is not None:
            return written
        await session.rollback()  # a writer came in between: this write goes the locked way
    async with unit(session, who.account_id, validate_only, structural):
        fs = await load_for_update(session, who.account_id, fact_sheet_id)
        change = await applied(fs)
        events = await finish(change)
        result = snapshot(fs) if validate_only else fs
    await _record(change, events, validate_only)
    return result


async def _update_values(
    session: AsyncSession,
    who: Principal,
    fact_sheet_id: uuid.UUID,
    applied: Callable[[FactSheet], Awaitable[Change]],
) -> FactSheet | None:
    """`update_fact_sheet` of values only, in autocommit (eam/optimistic.py): applied to the
    row as read, and written if no writer came in between (else None)."""
    fs = await optimistic.load(session, who.account_id, fact_sheet_id)
    read_rev = fs.rev
    events = await finish(await applied(fs))
    if await optimistic.write(session, who, fs, read_rev, events):
        return fs
    return None


async def _applied(
    session: AsyncSession,
    who: Principal,
    model: MetaModel,
    fs: FactSheet,
    rev: int | None,
    patches: list[Patch],
    comment: str | None,
) -> Change:
    """The patches applied to `fs` (in memory) after the revision check."""
    if rev is not None and rev != fs.rev:
        message = f"[FS_VALIDATION_STALE_REV] rev {rev} is stale: the fact sheet is at {fs.rev}"
        raise PatchError(message, "/rev", STALE_REV, fs.id, 409)
    type_def = model.types.get(fs.type)
    if type_def is None:
        raise invalid("/type", "UNKNOWN_TYPE", f"type {fs.type!r} is not in the data model")
    change = Change(session, who, model, fs, type_def, comment=comment)
    await apply_all(change, patches)
    return change


async def archive_fact_sheet(
    session: AsyncSession,
    who: Principal,
    model: MetaModel,
    fact_sheet_id: uuid.UUID,
    rev: int | None,
    comment: str | None,
) -> FactSheet:
    """Archive (soft delete) with a required comment: the REST DELETE, as a /status patch."""
    patch = Patch("replace", "/status", ARCHIVED)
    return await update_fact_sheet(session, who, model, fact_sheet_id, rev, [patch], comment)


async def load_for_update(
    session: AsyncSession, account_id: str, fact_sheet_id: uuid.UUID
) -> FactSheet:
    query = (
        select(FactSheet)
        .where(FactSheet.account_id == account_id, FactSheet.id == fact_sheet_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    fs = (await session.execute(query)).scalar_one_or_none()
    if fs is None:
        raise not_found("/id", "fact sheet", fact_sheet_id)
    return fs


def _structural(model: MetaModel, patches: list[Patch]) -> bool:
    """Whether the patches change more than their fact sheet's own row. The description and
    field values do not; names (and `release`, part of the display name) recompute the subtree,
    relations, tags and status check and change other rows (change.py)."""
    relations = model.relation_names()
    for patch in patches:
        head = patch.path.split("/")[1] if patch.path.startswith("/") else ""
        if head == "description":
            continue
        if head in ("name", "release", "status", "tags") or head in relations:
            return True
        if not any(head in t.fields for t in model.types.values()):
            return True  # unknown: refused later, whatever the lock
    return False


async def apply_all(change: Change, patches: list[Patch]) -> None:
    for patch in patches:
        await apply(change, patch)
    if (
        change.fs.status == ARCHIVED
        and change.status != ARCHIVED
        and (change.changes or change.later)
    ):
        path = next(iter(change.changes), patches[-1].path)
        raise invalid(path, "ARCHIVED", "an archived fact sheet cannot be changed; recover it")


async def apply(change: Change, patch: Patch) -> None:
    """Apply one patch; the path decides which rule handles it."""
    if patch.op not in ("add", "replace", "remove"):
        raise PatchError(f"unknown patch op {patch.op!r}", patch.path, INVALID_PATCH)
    parts = patch.path.split("/")
    if len(parts) < 2 or parts[0] != "" or not parts[1]:
        raise PatchError(f"invalid patch path {patch.path!r}", patch.path, INVALID_PATCH)
    head, rest = parts[1], parts[2:]
    if head == "name" and not rest:
        _name_patch(change, patch)
    elif head == "description" and not rest:
        _description_patch(change, patch)
    elif head == "status" and not rest:
        await _status_patch(change, patch)
    elif head == "tags" and not rest:
        await tags.apply_tags(change, patch.op, patch.value, patch.path)
    elif head in change.type_def.fields:
        _field_patch(change, patch, head, rest)
    elif (side := change.model.side(change.fs.type, head)) is not None and len(rest) <= 1:
        key = rest[0] if rest else None
        await relations.apply_relation(change, side, key, patch.op, patch.value, patch.path)
    else:
        raise invalid(patch.path, "UNKNOWN_FIELD", f"{head!r} is not a field of {change.fs.type}")


def set_name(change: Change, value: Any, path: str) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise invalid(path, "INVALID_VALUE", "name must be a non-empty string (at most 512)")
    change.changed("/name", change.fs.name or None, value)
    change.fs.name = value
    change.rename = True


def _name_patch(change: Change, patch: Patch) -> None:
    if patch.op == "remove":
        raise invalid(patch.path, "MANDATORY", "the name cannot be removed")
    set_name(change, patch.value, patch.path)


def _description_patch(change: Change, patch: Patch) -> None:
    value = None if patch.op == "remove" else patch.value
    if value is not None and (not isinstance(value, str) or "\x00" in value):
        raise invalid(patch.path, "INVALID_VALUE", "description must be a string")
    change.changed("/description", change.fs.description, value)
    change.fs.description = value


async def _status_patch(change: Change, patch: Patch) -> None:
    fs, value = change.fs, (patch.value or "").strip('"')
    if patch.op == "remove" or value not in (ACTIVE, ARCHIVED):
        raise invalid(patch.path, "INVALID_VALUE", "status must be ACTIVE or ARCHIVED")
    if value == fs.status or change.creating and value == ARCHIVED:
        if change.creating:
            raise invalid(patch.path, "INVALID_VALUE", "a new fact sheet cannot be archived")
        return
    if value == ARCHIVED:
        if not (change.comment or "").strip():
            raise invalid(patch.path, "COMMENT_REQUIRED", "archiving needs a comment")
        await relations.archive_relations(change)
        fs.archived_at, fs.archive_comment = clock.now(), change.comment
    else:
        await relations.recover_relations(change)
        fs.archived_at, fs.archive_comment = None, None
    change.changed("/status", fs.status, value)
    fs.status = change.status = value


def _field_patch(change: Change, patch: Patch, name: str, rest: list[str]) -> None:
    definition = change.type_def.fields[name]
    fields = dict(change.fs.fields)
    old = fields.get(name)
    if rest:  # /lifecycle/<phase>
        if definition.type != "LIFECYCLE" or len(rest) != 1:
            raise invalid(patch.path, "UNKNOWN_FIELD", f"{patch.path!r} is not a field path")
        new = _phase_patch(patch, definition, old, rest[0])
    elif patch.op == "remove":
        new = None
    else:
        new = parse_field(patch.path, definition, patch.value)
    if filled(new):
        fields[name] = new
    else:
        fields.pop(name, None)
    change.changed(f"/{name}", old, fields.get(name))
    change.fs.fields = fields
    if definition.type == "LIFECYCLE" and name == "lifecycle":
        phases = (fields.get(name) or {}).get("phases", [])
        change.fs.phase_dates = {p["phase"]: p["startDate"] for p in phases}
    if definition.type == "EXTERNAL_ID" and name == "externalId":
        change.fs.external_id = (fields.get(name) or {}).get("externalId")
    if name == "release":
        change.rename = True  # part of the display name


def _phase_patch(patch: Patch, definition: Any, old: Any, phase: str) -> dict[str, Any]:
    if phase not in (definition.values or ()):
        raise invalid(patch.path, "INVALID_VALUE", f"{phase!r} is not a lifecycle phase")
    dates = {p["phase"]: p["startDate"] for p in (old or {}).get("phases", [])}
    if patch.op == "remove":
        dates.pop(phase, None)
    else:
        dates[phase] = parse_date(patch.path, patch.value)
    return lifecycle_of(definition, dates)


def completion(fs: FactSheet, type_def: FactSheetTypeDef) -> float:
    """Share of the type's fields (and the description) that are filled."""
    names = list(type_def.fields)
    done = sum(1 for n in names if filled(fs.fields.get(n))) + bool(fs.description)
    return round(done / (len(names) + 1), 4)


async def finish(change: Change) -> list[tuple[str, str, Any, dict[str, Any]]]:
    """Mandatory fields, derived values, revision; returns the events of the write."""
    fs = change.fs
    for f in change.type_def.fields.values():
        if f.mandatory and not filled(fs.fields.get(f.name)):
            raise invalid(f"/{f.name}", "MANDATORY", f"{f.name} is mandatory")
    if not change.creating and not change.changes and not change.later:
        return []
    if change.rename:
        await hierarchy.rename_subtree(change.session, change.who.account_id, fs)
    fs.completion = completion(fs, change.type_def)
    fs.updated_at = clock.now()
    if not change.creating:
        fs.rev += 1
    events = [*change.before, audit.item(_main_event(change), fs, **_main_data(change))]
    return events + [audit.item(type, fs, **data) for type, data in change.later]


async def _record(change: Change, events: list[Any], validate_only: bool) -> None:
    """The write's events, recorded last, after its unit: numbering them locks the
    account row until commit (change.py), so the lock is held for this insert and the commit."""
    if events and not validate_only:
        await record_many(change.session, change.who.account_id, events, change.who.actor)


def _main_event(change: Change) -> str:
    if change.creating:
        return "FACT_SHEET_CREATED"
    return {ARCHIVED: "FACT_SHEET_ARCHIVED", ACTIVE: "FACT_SHEET_RECOVERED"}.get(
        change.status or "", "FACT_SHEET_UPDATED"
    )


def _main_data(change: Change) -> dict[str, Any]:
    data: dict[str, Any] = {"changes": change.changes}
    if change.comment:
        data["comment"] = change.comment
    return data

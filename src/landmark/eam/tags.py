"""Tags and tag groups, and the `/tags` patch.

A tag without a group belongs to "Other tags". A SINGLE tag group allows one of its tags per
fact sheet; a group restricted to some types only tags fact sheets of those types. Tagging by
an unknown name (without a group) creates the tag in "Other tags", as LeanIX does.
"""

import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.core.errors import NotFound, ValidationFailed
from landmark.core.events import record, record_many
from landmark.eam import audit
from landmark.eam.audit import tag_summary
from landmark.eam.change import Change, unit
from landmark.eam.errors import invalid, not_found
from landmark.eam.models import ACTIVE, FactSheet, FactSheetTag, Tag, TagGroup
from landmark.eam.values import decode_json
from landmark.identity.authn import Principal

OTHER_TAGS = "Other tags"
MODES = ("SINGLE", "MULTIPLE")


def _name(path: str, value: Any, limit: int = 255) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        raise invalid(path, "INVALID_VALUE", f"{path}: a non-empty name is required")
    return value.strip()


async def _group_named(session: AsyncSession, account_id: str, name: str) -> TagGroup | None:
    query = select(TagGroup).where(TagGroup.account_id == account_id, TagGroup.name == name)
    return (await session.execute(query)).scalars().first()


async def _tags_named(
    session: AsyncSession, account_id: str, name: str, group_id: uuid.UUID | None, any_group: bool
) -> list[Tag]:
    query = select(Tag).where(Tag.account_id == account_id, Tag.name == name)
    if not any_group:
        query = query.where(Tag.tag_group_id == group_id)
    return list((await session.execute(query)).scalars())


async def _resolve(change: Change, ref: Any, path: str, creating: bool) -> Tag:
    """A tag reference {"tagId"} or {"tagName", "tagGroupName"?} of this account."""
    session, account_id = change.session, change.who.account_id
    if not isinstance(ref, dict):
        raise invalid(path, "INVALID_VALUE", 'a tag is {"tagId"} or {"tagName"}')
    if ref.get("tagId") is not None:
        try:
            ident = uuid.UUID(str(ref["tagId"]))
        except ValueError:
            raise invalid(path, "INVALID_VALUE", f"tagId {ref['tagId']!r} is not a UUID") from None
        tag = await session.scalar(select(Tag).where(Tag.account_id == account_id, Tag.id == ident))
        if tag is None:
            raise not_found(path, "tag", ident)
        return tag
    name = _name(path, ref.get("tagName"))
    group_name = ref.get("tagGroupName")
    if group_name not in (None, OTHER_TAGS):
        group = await _group_named(session, account_id, group_name)
        if group is None:
            raise not_found(path, "tag group", group_name)
        found = await _tags_named(session, account_id, name, group.id, any_group=False)
    else:
        found = await _tags_named(session, account_id, name, None, any_group=group_name is None)
        found = [t for t in found if t.tag_group_id is None] or found
    if len(found) > 1:
        raise invalid(path, "TAG_AMBIGUOUS", f"several tags are named {name!r}; give tagGroupName")
    if found:
        return found[0]
    if group_name not in (None, OTHER_TAGS) or not creating:
        raise not_found(path, "tag", name)
    tag = await _new_tag(session, change.who, name, None)
    change.before.append(_created(tag))  # recorded with the write's events, at its end
    return tag


async def _new_tag(
    session: AsyncSession,
    who: Principal,
    name: str,
    group_id: uuid.UUID | None,
    description: str | None = None,
    color: str | None = None,
) -> Tag:
    tag = Tag(
        id=uuid.uuid4(), account_id=who.account_id, name=name, tag_group_id=group_id,
        description=description, color=color, status=ACTIVE,
    )  # fmt: skip
    session.add(tag)
    await session.flush()
    return tag


def _created(tag: Tag) -> tuple[str, str, Any, dict[str, Any]]:
    return "TAG_CREATED", "tag", tag.id, tag_summary(tag)


async def apply_tags(change: Change, op: str, raw: str | None, path: str) -> None:
    """`/tags`: add the given tags, replace the set with them, or remove them (all if null)."""
    session, fs = change.session, change.fs
    refs = [] if op == "remove" and raw is None else decode_json(path, raw)
    if not isinstance(refs, list):
        raise invalid(path, "INVALID_VALUE", f"{path}: expected a JSON list of tags")
    given = {t.id: t for t in [await _resolve(change, r, path, op != "remove") for r in refs]}
    current = await tags_by_id(session, fs)
    if op == "remove":
        wanted = {} if raw is None else {k: v for k, v in current.items() if k not in given}
    else:
        wanted = given if op == "replace" else {**current, **given}
    await _check_groups(change, wanted, set(wanted) - set(current), path)
    for tag_id in set(current) - set(wanted):
        await session.execute(
            delete(FactSheetTag).where(
                FactSheetTag.account_id == fs.account_id,
                FactSheetTag.fact_sheet_id == fs.id,
                FactSheetTag.tag_id == tag_id,
            )
        )
        change.event("FACT_SHEET_TAG_REMOVED", tag=tag_summary(current[tag_id]))
    for tag_id in set(wanted) - set(current):
        session.add(FactSheetTag(account_id=fs.account_id, fact_sheet_id=fs.id, tag_id=tag_id))
        change.event("FACT_SHEET_TAG_ADDED", tag=tag_summary(wanted[tag_id]))
    fs.tag_ids = sorted(map(str, wanted))
    change.changed("/tags", sorted(map(str, current)), fs.tag_ids)


async def tags_by_id(session: AsyncSession, fs: FactSheet) -> dict[uuid.UUID, Tag]:
    query = (
        select(Tag)
        .join(FactSheetTag, FactSheetTag.tag_id == Tag.id)
        .where(FactSheetTag.account_id == fs.account_id, FactSheetTag.fact_sheet_id == fs.id)
    )
    return {t.id: t for t in (await session.execute(query)).scalars()}


async def _check_groups(
    change: Change, wanted: dict[uuid.UUID, Tag], added: set[uuid.UUID], path: str
) -> None:
    group_ids = {t.tag_group_id for t in wanted.values() if t.tag_group_id is not None}
    groups = {
        g.id: g
        for g in (
            await change.session.execute(select(TagGroup).where(TagGroup.id.in_(group_ids)))
        ).scalars()
    }
    for tag_id in added:
        tag = wanted[tag_id]
        group = groups.get(tag.tag_group_id) if tag.tag_group_id else None
        if tag.status != ACTIVE:
            raise invalid(path, "TAG_ARCHIVED", f"tag {tag.name!r} is archived", tag.id)
        if group and group.restrict_to_types and change.fs.type not in group.restrict_to_types:
            message = f"tag group {group.name!r} does not apply to {change.fs.type}"
            raise invalid(path, "TAG_GROUP_RESTRICTED", message, tag.id)
    for group in groups.values():
        count = sum(1 for t in wanted.values() if t.tag_group_id == group.id)
        if group.mode == "SINGLE" and count > 1:
            message = f"tag group {group.name!r} allows one tag per fact sheet"
            raise invalid(path, "TAG_GROUP_SINGLE", message)


# ---- tag and tag group management ---------------------------------------------------------


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, [(field, message)])


async def create_tag_group(
    session: AsyncSession,
    who: Principal,
    name: str,
    short_name: str | None = None,
    description: str | None = None,
    mode: str = "MULTIPLE",
    mandatory: bool = False,
    restrict_to_types: list[str] | None = None,
    known_types: list[str] | None = None,
) -> TagGroup:
    """A tag group; `known_types` (the data model's) checks `restrict_to_types`."""
    name = _name("name", name)
    if name == OTHER_TAGS or await _group_named(session, who.account_id, name):
        raise _bad("name", f"a tag group named {name!r} exists already")
    if mode not in MODES:
        raise _bad("mode", "mode must be SINGLE or MULTIPLE")
    unknown = [
        t for t in restrict_to_types or () if known_types is not None and t not in known_types
    ]
    if unknown:
        raise _bad("restrictToFactSheetTypes", f"unknown fact sheet types: {', '.join(unknown)}")
    async with unit(session, who.account_id, False):
        group = TagGroup(
            id=uuid.uuid4(), account_id=who.account_id, name=name, short_name=short_name,
            description=description, mode=mode, mandatory=mandatory,
            restrict_to_types=list(restrict_to_types or []),
        )  # fmt: skip
        session.add(group)
        await session.flush()
        data = {"id": str(group.id), "name": name, "mode": mode}
        await record(
            session, who.account_id, "TAG_GROUP_CREATED", "tagGroup", group.id, who.actor, data
        )
    return group


async def create_tag(
    session: AsyncSession,
    who: Principal,
    name: str,
    tag_group_id: uuid.UUID | None = None,
    description: str | None = None,
    color: str | None = None,
    validate_only: bool = False,
) -> Tag:
    """A tag in a group of this account (None: "Other tags"); names are unique per group."""
    name = _name("name", name)
    if tag_group_id is not None:
        group = await session.scalar(
            select(TagGroup).where(
                TagGroup.account_id == who.account_id, TagGroup.id == tag_group_id
            )
        )
        if group is None:
            raise NotFound(f"tag group {tag_group_id} not found", [("tagGroupId", "not found")])
    if await _tags_named(session, who.account_id, name, tag_group_id, any_group=False):
        raise _bad("name", f"the group has a tag named {name!r} already")
    async with unit(session, who.account_id, validate_only):
        tag = await _new_tag(session, who, name, tag_group_id, description, color)
        await record_many(session, who.account_id, [_created(tag)], who.actor)
        result = Tag(**{c.key: getattr(tag, c.key) for c in Tag.__table__.columns})
    return result


async def delete_tag(session: AsyncSession, who: Principal, tag_id: uuid.UUID) -> None:
    """Delete a tag; each fact sheet that carried it gets FACT_SHEET_TAG_REMOVED."""
    tag = await session.scalar(
        select(Tag).where(Tag.account_id == who.account_id, Tag.id == tag_id)
    )
    if tag is None:
        raise NotFound(f"tag {tag_id} not found")
    tagged = select(FactSheetTag.fact_sheet_id).where(
        FactSheetTag.account_id == who.account_id, FactSheetTag.tag_id == tag_id
    )
    async with unit(session, who.account_id, False):
        sheets = (
            await session.execute(
                select(FactSheet).where(
                    FactSheet.account_id == who.account_id, FactSheet.id.in_(tagged)
                )
            )
        ).scalars()
        for fs in sheets:
            fs.tag_ids = [t for t in fs.tag_ids if t != str(tag_id)]
            await audit.emit(session, who, "FACT_SHEET_TAG_REMOVED", fs, tag=tag_summary(tag))
        await session.execute(
            delete(FactSheetTag).where(
                FactSheetTag.account_id == who.account_id, FactSheetTag.tag_id == tag_id
            )
        )
        await session.delete(tag)
        await record(
            session, who.account_id, "TAG_DELETED", "tag", tag_id, who.actor, tag_summary(tag)
        )

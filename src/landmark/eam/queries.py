"""Reading the inventory: search with facet filters, facet counts, and batch loaders.

Used by the GraphQL and REST faces alike. Every loader takes many fact sheet ids and runs ONE
statement whatever their number, so that a page of N fact sheets costs a constant number of
statements (no N+1).

Facet keys (LeanIX's): `FactSheetTypes`; any relation name usable from a type (keys: target
fact sheet ids, or `__missing__`); single and multiple select fields; `lifecycle` (phase keys,
with a `date_filter` {from, to}: the phase in force at some time in that range, today without
one); `Subscriptions` (user ids or UUIDs); `Tags` (tag ids, any group) and each tag group's
name (its tag ids; "Other tags" for ungrouped tags). `__missing__` in any facet means "no value".
"""

import base64
import uuid
from collections import defaultdict, namedtuple
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    cast,
    exists,
    false,
    func,
    inspect,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Bundle, aliased

from landmark.core import clock
from landmark.core.db import Reads
from landmark.core.errors import InvalidParameter
from landmark.eam.metamodel import MetaModel, RelationSide
from landmark.eam.models import (
    ACTIVE,
    Comment,
    Document,
    FactSheet,
    FactSheetTag,
    Relation,
    Subscription,
    Tag,
    TagGroup,
)
from landmark.eam.tags import OTHER_TAGS
from landmark.identity.models import User

MISSING = "__missing__"
OPERATORS = ("OR", "AND", "NOR")
MAX_PAGE = 1000
SORTS = {
    "name": FactSheet.name,
    "displayName": FactSheet.display_name,
    "fullName": FactSheet.full_name,
    "type": FactSheet.type,
    "createdAt": FactSheet.created_at,
    "updatedAt": FactSheet.updated_at,
    "completion": FactSheet.completion,
    "level": FactSheet.level,
    "rev": FactSheet.rev,
    "status": FactSheet.status,
}


@dataclass
class DateFilter:
    """The phase in force at some time between `from_` and `to` (both yyyy-mm-dd)."""

    from_: str | None = None
    to: str | None = None


@dataclass
class FacetFilter:
    facet_key: str
    operator: str = "OR"
    keys: list[str] = field(default_factory=list)
    date_filter: DateFilter | None = None


@cache
def plain(entity: Any, keys: tuple[str, ...] | None = None) -> Bundle[Any]:
    """The columns `keys` (default: every column) of `entity` as one read-only row with the
    ORM's attribute names. Pages read many rows that nothing changes: rows are much cheaper to
    build than ORM objects. Made once per entity and keys (pass module-level aliases, as
    FAR)."""
    mapper = inspect(entity).mapper
    columns = [getattr(entity, k) for k in _column_keys(mapper, keys)]
    return Bundle(mapper.class_.__name__, *columns)


def _column_keys(mapper: Any, keys: tuple[str, ...] | None) -> tuple[str, ...]:
    """`keys`, or (None) every column of the mapped class."""
    return keys if keys is not None else tuple(c.key for c in mapper.column_attrs)


FACT_SHEET_BASE = ("id", "type")  # read of every fact sheet: its id, and its type (GraphQL's)


def _with_base(columns: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """FACT_SHEET_BASE and `columns`; None (every column) for None."""
    return (*FACT_SHEET_BASE, *columns) if columns is not None else None


FAR = aliased(FactSheet, name="far")  # the far ends of relations


@dataclass
class SearchPage:
    rows: list[Any]  # fact sheets as plain rows (`plain`)
    total: int
    end_cursor: str | None
    has_next: bool


@dataclass
class FacetResult:
    key: str
    name: str
    count: int


@dataclass
class Facet:
    facet_key: str
    results: list[FacetResult]


# ---- filters -------------------------------------------------------------------------------


def _combine(operator: str, conditions: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    if not conditions:
        return true()
    if operator == "AND":
        return and_(*conditions)
    either = or_(*conditions)
    return not_(either) if operator == "NOR" else either


def _uuids(param: str, keys: Iterable[str]) -> list[uuid.UUID]:
    try:
        return [uuid.UUID(k) for k in keys]
    except ValueError:
        raise InvalidParameter(param, f"{param}: keys must be fact sheet ids") from None


def _relation_condition(side: RelationSide, key: str, param: str) -> ColumnElement[bool]:
    mine, theirs = (
        (Relation.from_id, Relation.to_id) if side.forward else (Relation.to_id, Relation.from_id)
    )
    related = [
        Relation.account_id == FactSheet.account_id,
        Relation.type == side.definition.name,
        Relation.status == ACTIVE,
        mine == FactSheet.id,
    ]
    if key == MISSING:
        return not_(exists().where(*related))
    return exists().where(*related, theirs == _uuids(param, [key])[0])


def _sides(model: MetaModel, name: str) -> list[RelationSide]:
    return model.sides_named(name)


def _field_condition(model: MetaModel, name: str, key: str) -> ColumnElement[bool] | None:
    kinds = {t.fields[name].type for t in model.types.values() if name in t.fields}
    if not kinds:
        return None
    value = FactSheet.fields[name].as_string()
    if key == MISSING:
        return value.is_(None)
    if kinds == {"SINGLE_SELECT"}:
        return value == key
    # Multiple selects: the key appears quoted in the stored JSON list.
    return value.like(f'%"{key}"%')


def _phase_condition(phase: str, date_filter: DateFilter | None) -> ColumnElement[bool]:
    """The lifecycle phase `phase` is in force at some time in [from, to]: it started by `to`,
    and no later phase started by `from`."""
    today = clock.now().date().isoformat()
    start = date_filter.from_ if date_filter and date_filter.from_ else today
    end = date_filter.to if date_filter and date_filter.to else start
    dates = FactSheet.phase_dates
    if phase == MISSING:
        return FactSheet.fields["lifecycle"].as_string().is_(None)
    mine = dates[phase].as_string()
    later = [
        and_(
            dates[p].as_string().is_not(None),  # NULL would make the whole test NULL
            dates[p].as_string() > mine,
            dates[p].as_string() <= start,
        )
        for p in ("plan", "phaseIn", "active", "phaseOut", "endOfLife")
        if p != phase
    ]
    return and_(mine.is_not(None), mine <= end, not_(or_(false(), *later)))


def _tag_condition(
    account_id: str, group: str | None, key: str, param: str, postgres: bool
) -> ColumnElement[bool]:
    if key != MISSING:
        tag_id = _uuids(param, [key])[0]
        if postgres:  # the fact sheet's copy of its tag ids, in a GIN index
            return type_coerce(FactSheet.tag_ids, JSONB).contains([str(tag_id)])
        links = select(FactSheetTag.fact_sheet_id).where(
            FactSheetTag.account_id == account_id, FactSheetTag.tag_id == tag_id
        )
        return FactSheet.id.in_(links)
    tagged = [
        FactSheetTag.account_id == FactSheet.account_id,
        FactSheetTag.fact_sheet_id == FactSheet.id,
    ]
    if group is None:
        return not_(exists().where(*tagged))
    of_group = select(Tag.id).where(Tag.account_id == FactSheet.account_id)
    if group == OTHER_TAGS:
        of_group = of_group.where(Tag.tag_group_id.is_(None))
    else:
        group_ids = select(TagGroup.id).where(
            TagGroup.account_id == FactSheet.account_id, TagGroup.name == group
        )
        of_group = of_group.where(Tag.tag_group_id.in_(group_ids))
    return not_(exists().where(*tagged, FactSheetTag.tag_id.in_(of_group)))


def _subscription_condition(key: str, param: str) -> ColumnElement[bool]:
    subscribed = [
        Subscription.account_id == FactSheet.account_id,
        Subscription.fact_sheet_id == FactSheet.id,
    ]
    if key == MISSING:
        return not_(exists().where(*subscribed))
    if key.isdigit():
        return exists().where(*subscribed, Subscription.user_id == int(key))
    by_uuid = select(User.id).where(User.uuid == _uuids(param, [key])[0]).scalar_subquery()
    return exists().where(*subscribed, Subscription.user_id == by_uuid)


def _facet_kind(model: MetaModel, key: str) -> str | None:
    """What a facet key filters by: `FactSheetTypes`, `lifecycle`, `field`, `relation`,
    `Subscriptions`, `Tags` or OTHER_TAGS; None for any other key, which can only be a tag
    group's name (or unknown)."""
    if key in ("FactSheetTypes", "lifecycle"):
        return key
    if _field_condition(model, key, MISSING) is not None:
        return "field"
    if _sides(model, key):
        return "relation"
    return key if key in ("Subscriptions", "Tags", OTHER_TAGS) else None


def _facet_condition(
    account_id: str, model: MetaModel, f: FacetFilter, tag_groups: set[str], postgres: bool
) -> Any:
    """The condition of one facet filter; InvalidParameter for an unknown facet or operator."""
    param = f"facetFilters.{f.facet_key}"
    if f.operator not in OPERATORS:
        raise InvalidParameter(param, f"{param}: operator must be OR, AND or NOR")
    key = f.facet_key
    kind = _facet_kind(model, key)
    if kind == "FactSheetTypes":
        parts = [FactSheet.type == k for k in f.keys]
    elif kind == "lifecycle":
        parts = [_phase_condition(k, f.date_filter) for k in f.keys]
    elif kind == "field":
        parts = [c for k in f.keys if (c := _field_condition(model, key, k)) is not None]
    elif kind == "relation":
        sides = _sides(model, key)
        parts = [or_(*(_relation_condition(s, k, param) for s in sides)) for k in f.keys]
    elif kind == "Subscriptions":
        parts = [_subscription_condition(k, param) for k in f.keys]
    elif kind in ("Tags", OTHER_TAGS) or key in tag_groups:
        group = None if key == "Tags" else key
        parts = [_tag_condition(account_id, group, k, param, postgres) for k in f.keys]
    else:
        raise InvalidParameter(param, f"unknown facet key {key!r}")
    return _combine(f.operator, parts)


async def _tag_group_names(session: AsyncSession, account_id: str) -> set[str]:
    query = select(TagGroup.name).where(TagGroup.account_id == account_id)
    return set((await session.execute(query)).scalars())


def _full_text(text: str) -> ColumnElement[bool]:
    """The text anywhere in the name, description or external id, in any case. ILIKE: on
    PostgreSQL cheaper per row than lower() and LIKE, and served by the trigram index on the
    name; on SQLite it is lower() and LIKE."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(
        FactSheet.name.ilike(pattern, escape="\\"),
        FactSheet.description.ilike(pattern, escape="\\"),
        FactSheet.external_id.ilike(pattern, escape="\\"),
    )


async def filtered(
    session: AsyncSession,
    account_id: str,
    model: MetaModel,
    *,
    types: list[str] | None = None,
    facet_filters: list[FacetFilter] | None = None,
    full_text: str | None = None,
    ids: list[uuid.UUID] | None = None,
    include_archived: bool = False,
    archived_only: bool = False,
    skip_facet: str | None = None,
) -> Select[FactSheet]:
    """SELECT of the account's fact sheets matching every filter (`skip_facet` left out)."""
    query = select(FactSheet).where(FactSheet.account_id == account_id)
    query = query.where(FactSheet.type.in_(types if types is not None else list(model.types)))
    if archived_only:
        query = query.where(FactSheet.status != ACTIVE)
    elif not include_archived:
        query = query.where(FactSheet.status == ACTIVE)
    if ids is not None:
        query = query.where(FactSheet.id.in_(ids))
    if full_text and full_text.strip():
        query = query.where(_full_text(full_text.strip()))
    facet_filters = [f for f in facet_filters or () if f.facet_key != skip_facet]
    if facet_filters:
        # Tag group names are read only when a key may be one (the others are known).
        maybe_group = any(_facet_kind(model, f.facet_key) is None for f in facet_filters)
        groups = await _tag_group_names(session, account_id) if maybe_group else set()
        postgres = session.get_bind().dialect.name == "postgresql"
        for f in facet_filters:
            query = query.where(_facet_condition(account_id, model, f, groups, postgres))
    return query


# ---- search --------------------------------------------------------------------------------


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        offset = int(text.removeprefix("o:"))
    except ValueError:
        raise InvalidParameter("after", "invalid cursor") from None
    if offset < 0:
        raise InvalidParameter("after", "invalid cursor")
    return offset


def _sort_keys(model: MetaModel, sort: list[tuple[str, bool]]) -> list[tuple[Any, bool]]:
    """(expression, descending) for [(key, descending)]; select fields sort by their key."""
    keys: list[tuple[Any, bool]] = []
    for key, descending in sort or [("displayName", False)]:
        column: Any = SORTS.get(key)
        if column is None and _field_condition(model, key, MISSING) is not None:
            column = cast(FactSheet.fields[key].as_string(), String)
        if column is None:
            raise InvalidParameter("sort", f"cannot sort by {key!r}")
        keys.append((column, descending))
    return keys


def _ordered(rows: Any, keys: list[tuple[Any, bool]]) -> list[Any]:
    """ORDER BY the sort keys as labelled (k0, k1, ...) in `rows`."""
    return [rows.c[f"k{i}"].desc() if d else rows.c[f"k{i}"] for i, (_, d) in enumerate(keys)]


async def search(
    session: AsyncSession,
    account_id: str,
    model: MetaModel,
    *,
    types: list[str] | None = None,
    facet_filters: list[FacetFilter] | None = None,
    full_text: str | None = None,
    ids: list[uuid.UUID] | None = None,
    include_archived: bool = False,
    archived_only: bool = False,
    first: int = 40,
    after: str | None = None,
    sort: list[tuple[str, bool]] | None = None,
    columns: tuple[str, ...] | None = None,
) -> SearchPage:
    """One page of matching fact sheets, their total, and the cursor of the page's end.

    Cursors are opaque offsets (forward only, like LeanIX: pagination is live). `sort` is a list
    of (key, descending); default displayName ascending, then the id. Rows hold `columns`
    beyond FACT_SHEET_BASE (default: all).

    One statement: the matches are collected narrow (id and sort keys), counted and sorted; only
    the page's rows are then read whole. Sorting thousands of whole rows to keep 100 cost more
    than the search itself.
    """
    if not 0 <= first <= MAX_PAGE:
        raise InvalidParameter("first", f"first must be between 0 and {MAX_PAGE}")
    query = await filtered(
        session, account_id, model, types=types, facet_filters=facet_filters,
        full_text=full_text, ids=ids, include_archived=include_archived,
        archived_only=archived_only,
    )  # fmt: skip
    offset = decode_cursor(after)
    keys = _sort_keys(model, sort or [])
    matches = (
        query.with_only_columns(FactSheet.id, *(k.label(f"k{i}") for i, (k, _) in enumerate(keys)))
        .cte("matches")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    page = (
        select(matches)
        .order_by(*_ordered(matches, keys), matches.c.id)
        .offset(offset)
        .limit(first)
        .subquery()
    )
    total = select(func.count()).select_from(matches).scalar_subquery()
    statement = (
        select(plain(FactSheet, _with_base(columns)), total.label("total"))
        .join(page, page.c.id == FactSheet.id)
        .order_by(*_ordered(page, keys), page.c.id)
    )
    found = (await session.execute(statement)).all()
    rows = [row[0] for row in found]
    if found:
        total_count = found[0].total
    elif first and not offset:
        total_count = 0
    else:  # an empty page past the end, or `first: 0`: no row carries the total
        total_count = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    end = offset + len(rows)
    return SearchPage(rows, total_count, encode_cursor(end) if rows else after, end < total_count)


# ---- facets --------------------------------------------------------------------------------


async def facets(
    session: AsyncSession,
    account_id: str,
    model: MetaModel,
    *,
    types: list[str] | None = None,
    facet_filters: list[FacetFilter] | None = None,
    full_text: str | None = None,
    ids: list[uuid.UUID] | None = None,
    include_archived: bool = False,
    keys: list[str] | None = None,
) -> list[Facet]:
    """Counts per facet key under the filters (each facet ignoring its own filter, so that its
    alternatives stay visible). Default facets: types, select fields, lifecycle, tag groups;
    relation and `Subscriptions` facets when asked for in `keys`."""
    wanted = keys or _default_facets(model, types)
    out: list[Facet] = []
    groups = await _tag_group_names(session, account_id)
    for key in wanted:
        base = await filtered(
            session, account_id, model, types=types, facet_filters=facet_filters,
            full_text=full_text, ids=ids, include_archived=include_archived, skip_facet=key,
        )  # fmt: skip
        matching = base.with_only_columns(FactSheet.id).subquery()
        out.append(
            Facet(key, await _facet_counts(session, account_id, model, key, matching, groups))
        )
    return out


def _default_facets(model: MetaModel, types: list[str] | None) -> list[str]:
    keys = ["FactSheetTypes"]
    for t in (model.types[n] for n in types or model.types if n in model.types):
        keys += [
            f.name
            for f in t.fields.values()
            if f.type in ("SINGLE_SELECT", "MULTIPLE_SELECT", "LIFECYCLE") and f.name not in keys
        ]
    return [*keys, "Tags"]


async def _facet_counts(
    session: AsyncSession, account_id: str, model: MetaModel, key: str, matching: Any,
    groups: set[str],
) -> list[FacetResult]:  # fmt: skip
    in_set = FactSheet.id.in_(select(matching.c.id))
    if key == "FactSheetTypes":
        query = select(FactSheet.type, func.count()).where(in_set).group_by(FactSheet.type)
        return [FacetResult(k, k, n) for k, n in (await session.execute(query)).all()]
    if key == "lifecycle":
        return await _phase_counts(session, in_set)
    if key in ("Tags", OTHER_TAGS) or key in groups:
        return await _tag_counts(session, account_id, key, matching)
    if key == "Subscriptions":
        return await _subscription_counts(session, account_id, matching)
    if _field_condition(model, key, MISSING) is not None:
        return await _select_counts(session, model, key, in_set)
    if sides := _sides(model, key):
        return await _relation_counts(session, account_id, sides, matching)
    raise InvalidParameter("facets", f"unknown facet key {key!r}")


async def _select_counts(
    session: AsyncSession, model: MetaModel, key: str, in_set: Any
) -> list[FacetResult]:
    values = sorted(
        {v for t in model.types.values() if key in t.fields for v in t.fields[key].values or ()}
    )
    columns = [
        func.count().filter(c)
        for v in [*values, MISSING]
        if (c := _field_condition(model, key, v)) is not None
    ]
    counts = (await session.execute(select(*columns).where(in_set))).one()
    return [FacetResult(v, v, n) for v, n in zip([*values, MISSING], counts, strict=True)]


async def _phase_counts(session: AsyncSession, in_set: Any) -> list[FacetResult]:
    phases = ["plan", "phaseIn", "active", "phaseOut", "endOfLife", MISSING]
    columns = [func.count().filter(_phase_condition(p, None)) for p in phases]
    counts = (await session.execute(select(*columns).where(in_set))).one()
    return [FacetResult(p, p, n) for p, n in zip(phases, counts, strict=True)]


async def _tag_counts(
    session: AsyncSession, account_id: str, key: str, matching: Any
) -> list[FacetResult]:
    query = (
        select(Tag.id, Tag.name, func.count(FactSheetTag.fact_sheet_id))
        .outerjoin(TagGroup, TagGroup.id == Tag.tag_group_id)
        .outerjoin(
            FactSheetTag,
            and_(
                FactSheetTag.tag_id == Tag.id,
                FactSheetTag.fact_sheet_id.in_(select(matching.c.id)),
            ),
        )
        .where(Tag.account_id == account_id)
        .group_by(Tag.id, Tag.name)
        .order_by(Tag.name)
    )
    if key == OTHER_TAGS:
        query = query.where(Tag.tag_group_id.is_(None))
    elif key != "Tags":
        query = query.where(TagGroup.name == key)
    return [FacetResult(str(i), n, c) for i, n, c in (await session.execute(query)).all()]


async def _subscription_counts(
    session: AsyncSession, account_id: str, matching: Any
) -> list[FacetResult]:
    query = (
        select(User.uuid, User.email, func.count(func.distinct(Subscription.fact_sheet_id)))
        .join(User, User.id == Subscription.user_id)
        .where(Subscription.account_id == account_id)
        .where(Subscription.fact_sheet_id.in_(select(matching.c.id)))
        .group_by(User.uuid, User.email)
    )
    rows = (await session.execute(query)).all()
    return [FacetResult(str(u), e or str(u), c) for u, e, c in rows]


async def _relation_counts(
    session: AsyncSession, account_id: str, sides: list[RelationSide], matching: Any
) -> list[FacetResult]:
    """Per related fact sheet: how many matching fact sheets relate to it (top 100)."""
    other = aliased(FactSheet)
    results: list[FacetResult] = []
    for side in sides:
        mine, theirs = (
            (Relation.from_id, Relation.to_id)
            if side.forward
            else (Relation.to_id, Relation.from_id)
        )
        query = (
            select(other.id, other.display_name, func.count(func.distinct(mine)))
            .join(other, other.id == theirs)
            .where(
                Relation.account_id == account_id,
                Relation.type == side.definition.name,
                Relation.status == ACTIVE,
                mine.in_(select(matching.c.id)),
            )
            .group_by(other.id, other.display_name)
            .order_by(func.count(func.distinct(mine)).desc())
            .limit(100)
        )
        results += [FacetResult(str(i), n, c) for i, n, c in (await session.execute(query)).all()]
    return results


# ---- batch loaders (one statement each, whatever the number of ids) ---------------------------


@dataclass
class RelationView:
    """A relation as seen from one fact sheet: `name` is the side's name (relToChild from the
    parent), `other` the fact sheet at the far end."""

    relation: Any  # Relation, or a plain row of one
    name: str
    fact_sheet_id: uuid.UUID
    other: Any  # FactSheet, or a plain row of one


async def fact_sheets_by_ids(
    session: AsyncSession, account_id: str, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, FactSheet]:
    ids = list(set(ids))
    if not ids:
        return {}
    query = select(FactSheet).where(FactSheet.account_id == account_id, FactSheet.id.in_(ids))
    return {fs.id: fs for fs in (await session.execute(query)).scalars()}


def _side_names(model: MetaModel | None, names: list[str] | None) -> set[tuple[str, bool]] | None:
    if names is None or model is None:
        return None
    return {(s.definition.name, s.forward) for n in names for s in model.sides_named(n)}


async def relations_of(
    session: AsyncSession,
    account_id: str,
    ids: Iterable[uuid.UUID],
    names: list[str] | None = None,
    model: MetaModel | None = None,
    include_archived: bool = False,
) -> dict[uuid.UUID, list[RelationView]]:
    """The relations of each fact sheet, both directions, with the far end loaded.

    `names` (side names such as relITComponentToApplication) narrows them. Pass the `model`
    when you have it; else it is loaded (cached) to name each side.
    """
    ids = list(set(ids))
    out: dict[uuid.UUID, list[RelationView]] = defaultdict(list)
    if not ids:
        return out
    if model is None:  # cached per (account, version): one cheap statement
        from landmark.eam.metamodel import load_model

        model = await load_model(session, account_id)
    wanted = _side_names(model, names)
    other = aliased(FactSheet)
    query = (
        select(Relation, other)
        .join(
            other,
            or_(
                and_(Relation.from_id.in_(ids), other.id == Relation.to_id),
                and_(Relation.to_id.in_(ids), other.id == Relation.from_id),
            ),
        )
        .where(Relation.account_id == account_id, other.account_id == account_id)
        .order_by(Relation.created_at, Relation.id)
    )
    if wanted is not None:
        query = query.where(Relation.type.in_({name for name, _ in wanted} or {""}))
    if not include_archived:
        query = query.where(Relation.status == ACTIVE)
    for relation, far in (await session.execute(query)).all():
        forward = far.id == relation.to_id
        if wanted is not None and (relation.type, forward) not in wanted:
            continue
        mine = relation.from_id if forward else relation.to_id
        name = _name_of(model, relation.type, forward)
        out[mine].append(RelationView(relation, name, mine, far))
    return out


def _name_of(model: MetaModel | None, type: str, forward: bool) -> str:
    if forward or model is None:
        return type
    definition = model.relations.get(type)
    return definition.reverse_name if definition else type


async def tags_of(
    session: AsyncSession, account_id: str, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[Tag, TagGroup | None]]]:
    ids = list(set(ids))
    out: dict[uuid.UUID, list[tuple[Tag, TagGroup | None]]] = defaultdict(list)
    if not ids:
        return out
    query = (
        select(FactSheetTag.fact_sheet_id, Tag, TagGroup)
        .join(Tag, Tag.id == FactSheetTag.tag_id)
        .outerjoin(TagGroup, TagGroup.id == Tag.tag_group_id)
        .where(FactSheetTag.account_id == account_id, FactSheetTag.fact_sheet_id.in_(ids))
        .order_by(Tag.name)
    )
    for fs_id, tag, group in (await session.execute(query)).all():
        out[fs_id].append((tag, group))
    return out


async def subscriptions_of(
    session: AsyncSession, account_id: str, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[Subscription, User]]]:
    ids = list(set(ids))
    out: dict[uuid.UUID, list[tuple[Subscription, User]]] = defaultdict(list)
    if not ids:
        return out
    query = (
        select(Subscription, User)
        .join(User, User.id == Subscription.user_id)
        .where(Subscription.account_id == account_id, Subscription.fact_sheet_id.in_(ids))
        .order_by(Subscription.created_at, Subscription.id)
    )
    for sub, user in (await session.execute(query)).all():
        out[sub.fact_sheet_id].append((sub, user))
    return out


async def documents_of(
    session: AsyncSession, account_id: str, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[Document]]:
    return await _by_fact_sheet(session, Document, account_id, ids)


async def comments_of(
    session: AsyncSession, account_id: str, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[Comment]]:
    return await _by_fact_sheet(session, Comment, account_id, ids)


async def _by_fact_sheet(
    session: AsyncSession, model: Any, account_id: str, ids: Iterable[uuid.UUID]
) -> Any:
    ids = list(set(ids))
    out: dict[uuid.UUID, list[Any]] = defaultdict(list)
    if not ids:
        return out
    query = (
        select(model)
        .where(model.account_id == account_id, model.fact_sheet_id.in_(ids))
        .order_by(model.created_at, model.id)
    )
    for row in (await session.execute(query)).scalars():
        out[row.fact_sheet_id].append(row)
    return out


RELATION_BASE = ("id", "from_id", "to_id")  # the near end groups the views


@dataclass(frozen=True)
class RelationColumns:
    """The columns a read of relations takes beyond RELATION_BASE and FACT_SHEET_BASE: of the
    relation, and of the fact sheet at the far end (None: all of them). Sorted, so that equal
    sets are equal keys."""

    relation: tuple[str, ...] = ("active_from", "active_until", "fields", "status")
    far: tuple[str, ...] | None = None

    def relation_keys(self) -> tuple[str, ...]:
        return (*RELATION_BASE, *self.relation)

    def far_keys(self) -> tuple[str, ...] | None:
        return _with_base(self.far)


async def relations_of_side(
    reads: Reads,
    account_id: str,
    ids: Iterable[uuid.UUID],
    side: RelationSide,
    columns: RelationColumns = RelationColumns(),  # noqa: B008 - frozen
) -> dict[uuid.UUID, list[RelationView]]:
    """The active relations of one side (e.g. relApplicationToITComponent from Applications) of
    each fact sheet, far ends loaded, of each only `columns`: one statement on the (account,
    from|to, type) index.

    Through `Reads` (core/db.py), rows as named tuples: a page's thousand relations and far
    ends cost SQLAlchemy's row processing about half of this read's CPU. Each column costs its
    decoding: asyncpg makes a `datetime` by arithmetic in Python, a JSON document through a
    Python call, so a page reads only what its query shows."""
    ids = list(set(ids))
    out: dict[uuid.UUID, list[RelationView]] = defaultdict(list)
    if not ids:
        return out
    params = {"account_id": account_id, "ids": ids, "type": side.definition.name, "active": ACTIVE}
    columns = _kept(columns)
    relation_row = _row_type(Relation, columns.relation_keys())
    far_row = _row_type(FactSheet, columns.far_keys())
    split = len(relation_row._fields)
    for row in await reads.all(_relations_statement(reads, side.forward, columns), params):
        relation, target = relation_row(*row[:split]), far_row(*row[split:])
        mine = relation.from_id if side.forward else relation.to_id
        out[mine].append(RelationView(relation, side.name, mine, target))
    return out


MAX_COLUMN_SETS = 64
_column_sets: set[RelationColumns] = set()


def _kept(columns: RelationColumns) -> RelationColumns:
    """`columns`, or every column once MAX_COLUMN_SETS others are in use: each set keeps a
    statement, its compiled SQL and row types for the process's life, and the client's queries
    choose them (a few thousand sets are possible)."""
    if columns in _column_sets or len(_column_sets) < MAX_COLUMN_SETS:
        _column_sets.add(columns)
        return columns
    return RelationColumns()


@cache
def _row_type(entity: Any, keys: tuple[str, ...] | None = None) -> Any:
    """A named tuple of the columns `keys` (default: all) of `entity`, by the ORM's names."""
    mapper = inspect(entity).mapper
    return namedtuple(f"{mapper.class_.__name__}Row", _column_keys(mapper, keys))


_relation_statements: dict[tuple[bool, bool, RelationColumns], Select[Any]] = {}


def _relations_statement(reads: Reads, forward: bool, columns: RelationColumns) -> Select[Any]:
    """One statement per direction, columns (and database), built once: `Reads` compiles it
    once. Column sets are bounded (`_kept`)."""
    key = (reads.dsn is None, forward, columns)
    found = _relation_statements.get(key)
    if found is None:
        near, far = (
            (Relation.from_id, Relation.to_id) if forward else (Relation.to_id, Relation.from_id)
        )
        mine, theirs = plain(Relation, columns.relation_keys()), plain(FAR, columns.far_keys())
        found = _relation_statements[key] = (
            select(*mine.exprs, *theirs.exprs)
            .join(FAR, and_(FAR.id == far, FAR.account_id == bindparam("account_id")))
            .where(Relation.account_id == bindparam("account_id"), reads.one_of(near, "ids"))
            .where(Relation.type == bindparam("type"), Relation.status == bindparam("active"))
            .order_by(Relation.created_at, Relation.id)
        )
    return found


# ---- single reads --------------------------------------------------------------------------


def select_fact_sheet(account_id: str, fact_sheet_id: uuid.UUID) -> Select[FactSheet]:
    return select(FactSheet).where(
        FactSheet.account_id == account_id, FactSheet.id == fact_sheet_id
    )


async def subtree(session: AsyncSession, account_id: str, root: FactSheet) -> list[FactSheet]:
    """`root` and its active descendants, level by level (one statement per level)."""
    out, frontier = [root], [root.id]
    while frontier:
        query = (
            select(FactSheet)
            .where(
                FactSheet.account_id == account_id,
                FactSheet.parent_id.in_(frontier),
                FactSheet.status == ACTIVE,
            )
            .order_by(FactSheet.name, FactSheet.id)
        )
        children = list((await session.execute(query)).scalars())
        out += children
        frontier = [c.id for c in children]
    return out

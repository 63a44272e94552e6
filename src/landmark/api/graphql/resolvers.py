"""The root query fields: `factSheet`, `factSheets`, `allFactSheets`, `allTags`, `allTagGroups`,
`allLogEvents`. Searching and facets are the domain's (eam/queries.py); this module translates."""

import asyncio
import uuid
from collections.abc import Awaitable, Hashable
from typing import Any

from graphql import GraphQLResolveInfo
from sqlalchemy import func, or_, select

from landmark.api.graphql import loaders
from landmark.api.graphql.common import as_connection
from landmark.api.graphql.context import Context, group
from landmark.api.graphql.limits import MAX_IDS, LimitExceeded, check_first
from landmark.api.graphql.lookahead import connection_nodes, page_columns, response_key
from landmark.core.errors import InvalidParameter, NotFound
from landmark.core.events import Event
from landmark.eam import queries
from landmark.eam.audit import SUBJECT
from landmark.eam.models import ACTIVE, FactSheet, Tag, TagGroup

TRASH_BIN = "TrashBin"


def parse_id(value: Any, name: str = "id") -> uuid.UUID:
    """A UUID argument; a malformed one is simply not found (as another workspace's id)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"{name} {value!r} not found", [(name, "not found")]) from None


def _ids(values: list[Any] | None, name: str) -> list[uuid.UUID]:
    out = []
    for value in values or []:
        try:
            out.append(uuid.UUID(str(value)))
        except ValueError:
            raise InvalidParameter(name, f"{value!r} is not a fact sheet id") from None
    return out


async def fact_sheet(_root: Any, info: GraphQLResolveInfo, id: str, **_: Any) -> Any:
    ctx: Context = info.context
    found = await ctx.fact_sheet(parse_id(id))
    if found is None:
        raise NotFound(f"fact sheet {id} not found", [("id", "not found")])
    return found


async def fact_sheets(
    _root: Any,
    info: GraphQLResolveInfo,
    ids: list[str] | None = None,
    externalIds: list[str] | None = None,
    omitArchivedFactSheets: bool = False,
) -> dict[str, Any]:
    """Fact sheets by id and by external id (unknown ones are left out)."""
    ctx: Context = info.context
    if len(ids or ()) + len(externalIds or ()) > MAX_IDS:
        raise LimitExceeded(f"at most {MAX_IDS} ids and external ids per call")
    wanted = _ids(ids, "ids")
    conditions = []
    if wanted:
        conditions.append(FactSheet.id.in_(wanted))
    if externalIds:
        conditions.append(FactSheet.external_id.in_(externalIds))
    if not conditions:
        return as_connection([])
    query = select(FactSheet).where(FactSheet.account_id == ctx.account_id, or_(*conditions))
    if omitArchivedFactSheets:
        query = query.where(FactSheet.status == ACTIVE)
    rows = list(await ctx.run(lambda: ctx.session.scalars(query.order_by(FactSheet.name))))
    return as_connection(ctx.seen(rows))


def _facet_filters(filter: dict[str, Any] | None) -> list[Any]:
    out = []
    for item in (filter or {}).get("facetFilters") or []:
        dates = item.get("dateFilter")
        date_filter = queries.DateFilter(dates.get("from_"), dates.get("to")) if dates else None
        out.append(
            queries.FacetFilter(
                facet_key=item["facetKey"],
                operator=item.get("operator") or "OR",
                keys=list(item.get("keys") or []),
                date_filter=date_filter,
            )
        )
    return out


def _search_args(args: dict[str, Any]) -> dict[str, Any]:
    """The domain's search arguments from `allFactSheets` arguments."""
    if args.get("last") is not None or args.get("before") is not None:
        raise InvalidParameter("last", "paging is forward only: use `first` and `after`")
    filter = args.get("filter") or {}
    facet_filters = _facet_filters(filter)
    # LeanIX's archive: {facetKey: "TrashBin", keys: ["archived"]} lists archived fact sheets.
    trash = [f for f in facet_filters if f.facet_key == TRASH_BIN]
    ids = filter.get("ids")
    return {
        "types": [args["factSheetType"]] if args.get("factSheetType") else None,
        "facet_filters": [f for f in facet_filters if f.facet_key != TRASH_BIN],
        "full_text": filter.get("fullTextSearch") or None,
        "ids": _ids(ids, "filter.ids") if ids is not None else None,
        "archived_only": any("archived" in f.keys for f in trash),
        "sort": [
            (s["key"], s.get("order") == "desc") for s in args.get("sort") or [] if s.get("key")
        ],
    }


async def all_fact_sheets(_root: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    ctx: Context = info.context
    first = check_first(args.get("first"))
    search = _search_args(args)
    columns = page_columns(info.field_nodes, info, ctx.relation_names)

    async def page() -> Any:
        return await queries.search(
            ctx.session, ctx.account_id, ctx.model, first=first, after=args.get("after"),
            columns=columns, **search,
        )  # fmt: skip

    found = await ctx.run(page)
    rows = ctx.seen(found.rows, whole=columns is None)
    await _preload(ctx, info, rows)
    result = as_connection(rows, found.total, found.end_cursor, found.has_next)
    result["search"] = search  # for filterOptions
    return result


async def _preload(ctx: Context, info: GraphQLResolveInfo, rows: list[Any]) -> None:
    """Load the tags and relations the query asks of the page's nodes before they resolve: each
    node then answers them without a coroutine (one task each otherwise). The same statements
    run as when the first node asks (one per field), only earlier, and together: the tags in
    the session, the relations each on a connection of `Reads`."""
    if not rows:
        return
    asked = connection_nodes(info.field_nodes, info)
    page_types = {fs.type for fs in rows}
    loads: list[Awaitable[Any]] = []
    if any(f.name.value == "tags" for _, f in asked):
        loads.append(loaders.tags(ctx, rows[0].id))
    by_key = group((f for _, f in asked), response_key)  # as the executor merges them
    sides: dict[Hashable, Any] = {}
    for on, f in asked:
        for type_name in {on} & page_types if on in ctx.model.types else page_types:
            if (side := ctx.model.side(type_name, f.name.value)) is not None:
                columns = ctx.relation_columns(by_key[response_key(f)], info)
                sides[loaders.relations_loader(side, columns)] = (side, columns)
    loads += [loaders.relations(ctx, rows[0].id, side, cols) for side, cols in sides.values()]
    await asyncio.gather(*loads)


async def filter_options(connection: dict[str, Any], info: GraphQLResolveInfo) -> dict[str, Any]:
    """The facets of the same search, with counts (computed only when asked for)."""
    ctx: Context = info.context
    search = dict(connection["search"])
    search.pop("sort", None)
    search["include_archived"] = search.pop("archived_only")

    async def facets() -> Any:
        return await queries.facets(ctx.session, ctx.account_id, ctx.model, **search)

    found = await ctx.run(facets)
    return {"facets": found}  # Facet {facet_key, results [FacetResult {key, name, count}]}


async def all_tags(
    _root: Any, info: GraphQLResolveInfo, first: int | None = None, filter: Any = None, **_: Any
) -> dict[str, Any]:
    ctx: Context = info.context
    query = select(Tag).where(Tag.account_id == ctx.account_id)
    filter = filter or {}
    if filter.get("nameSubstring"):
        query = query.where(func.lower(Tag.name).contains(filter["nameSubstring"].lower()))
    if filter.get("tagGroupName"):
        group = select(TagGroup.id).where(
            TagGroup.account_id == ctx.account_id, TagGroup.name == filter["tagGroupName"]
        )
        query = query.where(Tag.tag_group_id.in_(group))
    query = query.order_by(Tag.name, Tag.id).limit(check_first(first))
    rows = list(await ctx.run(lambda: ctx.session.scalars(query)))
    return as_connection(rows)


async def all_tag_groups(_root: Any, info: GraphQLResolveInfo, **_: Any) -> dict[str, Any]:
    return as_connection(await loaders.tag_groups(info.context))


async def all_log_events(
    _root: Any, info: GraphQLResolveInfo, factSheetId: str, first: int | None = None, **_: Any
) -> dict[str, Any]:
    """The fact sheet's audit trail, newest first (its outbox events)."""
    ctx: Context = info.context
    fs = await fact_sheet(None, info, factSheetId)
    query = (
        select(Event)
        .where(Event.account_id == ctx.account_id, Event.subject_type == SUBJECT)
        .where(Event.subject_id == str(fs.id))
        .order_by(Event.seq.desc())
        .limit(check_first(first))
    )
    rows = list(await ctx.run(lambda: ctx.session.scalars(query)))
    ctx.expect_users(e.actor_user_id for e in rows if e.actor_user_id is not None)
    return as_connection(rows)

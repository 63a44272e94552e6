"""The mutations. Each root field (alias) is its own transaction, as in LeanIX: it commits when it
succeeds, and a failing one rolls back and changes nothing, without undoing the aliases before it.
`validateOnly` runs every check, then rolls back.
"""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from graphql import GraphQLResolveInfo
from sqlalchemy import inspect, select

from landmark.api.graphql.context import Context
from landmark.api.graphql.errors import ObjectError
from landmark.api.graphql.resolvers import parse_id
from landmark.core.errors import DomainError, NotFound
from landmark.eam import service
from landmark.eam.models import Subscription, Tag
from landmark.identity.permissions import Permission


def _detached(row: Any) -> Any:
    """A copy that stays readable after a rollback expired the original."""
    columns = inspect(type(row)).column_attrs
    return type(row)(**{c.key: getattr(row, c.key) for c in columns})


async def _transaction(
    ctx: Context,
    work: Callable[[], Awaitable[Any]],
    validate_only: bool = False,
    object_id: Any = None,
) -> Any:
    """Run one mutation: commit, or roll back on error and when only validating."""
    ctx.loaders.clear()  # rows cached by an earlier alias may be expired by this one's rollback
    async with ctx.lock:
        try:
            result = await work()
            if validate_only:
                result = _detached(result)
                await ctx.session.rollback()
            else:
                await ctx.session.commit()
        except DomainError as error:
            await ctx.session.rollback()
            if object_id is not None and not getattr(error, "object_id", None):
                raise ObjectError(error, object_id) from error
            raise
        except BaseException:
            await ctx.session.rollback()
            raise
    return result


def _patches(values: list[dict[str, Any]] | None) -> list[service.Patch]:
    return [service.Patch(p["op"], p["path"], p.get("value")) for p in values or [] if p]


def _require_write(ctx: Context) -> None:
    """Every patch, archiving and recovering (/status) included, needs `write`: LeanIX members
    may archive, and the REST archive asks the same (api/leanix/pathfinder.py)."""
    ctx.who.require(Permission.WRITE)


async def create_fact_sheet(
    _root: Any,
    info: GraphQLResolveInfo,
    input: dict[str, Any],
    patches: list[dict[str, Any]] | None = None,
    validateOnly: bool = False,
) -> dict[str, Any]:
    ctx: Context = info.context
    changes = _patches(patches)
    _require_write(ctx)

    async def work() -> Any:
        return await service.create_fact_sheet(
            ctx.session, ctx.who, ctx.model, input["type"], input["name"], changes, validateOnly
        )

    fs = await _transaction(ctx, work)
    return {"factSheet": fs}


async def update_fact_sheet(
    _root: Any,
    info: GraphQLResolveInfo,
    id: str,
    patches: list[dict[str, Any]],
    rev: int | None = None,
    comment: str | None = None,
    validateOnly: bool = False,
) -> dict[str, Any]:
    ctx: Context = info.context
    changes = _patches(patches)
    _require_write(ctx)
    fact_sheet_id = parse_id(id)

    async def work() -> Any:
        return await service.update_fact_sheet(
            ctx.session, ctx.who, ctx.model, fact_sheet_id, rev, changes, comment, validateOnly
        )

    fs = await _transaction(ctx, work, object_id=fact_sheet_id)
    return {"factSheet": fs}


async def create_tag(
    _root: Any,
    info: GraphQLResolveInfo,
    name: str,
    description: str | None = None,
    color: str | None = None,
    tagGroupId: str | None = None,
    validateOnly: bool = False,
) -> Any:
    ctx: Context = info.context
    _require_write(ctx)
    group_id = parse_id(tagGroupId, "tagGroupId") if tagGroupId else None

    async def work() -> Any:
        return await service.create_tag(
            ctx.session, ctx.who, name, group_id, description, color, validateOnly
        )

    return await _transaction(ctx, work)


async def _owned(ctx: Context, model: Any, ident: uuid.UUID, what: str) -> Any:
    row = await ctx.session.scalar(
        select(model).where(model.account_id == ctx.account_id, model.id == ident)
    )
    if row is None:
        raise NotFound(f"{what} {ident} not found", [("id", "not found")])
    return _detached(row)


async def _delete(info: GraphQLResolveInfo, id: str, model: Any, what: str, remove: Any) -> Any:
    """Delete one record of the workspace with `remove`; answers the record as it was."""
    ctx: Context = info.context
    _require_write(ctx)
    ident = parse_id(id)

    async def work() -> Any:
        row = await _owned(ctx, model, ident, what)
        await remove(ctx.session, ctx.who, ident)
        return row

    return await _transaction(ctx, work)


async def delete_tag(_root: Any, info: GraphQLResolveInfo, id: str) -> Any:
    return await _delete(info, id, Tag, "tag", service.delete_tag)


def _user_ref(user: dict[str, Any]) -> dict[str, Any]:
    raw = user.get("id")
    if raw is None:
        return {"email": user.get("email")}
    return {"user_id": parse_id(raw, "user")}


async def create_subscription(
    _root: Any,
    info: GraphQLResolveInfo,
    factSheetId: str,
    user: dict[str, Any],
    type: str,
    roleIds: list[str] | None = None,
    validateOnly: bool = False,
    **_: Any,
) -> Any:
    ctx: Context = info.context
    _require_write(ctx)
    fact_sheet_id = parse_id(factSheetId, "factSheetId")

    async def work() -> Any:
        return await service.create_subscription(
            ctx.session,
            ctx.who,
            fact_sheet_id,
            type=type,
            roles=roleIds,
            validate_only=validateOnly,
            **_user_ref(user),
        )

    return await _transaction(ctx, work, object_id=fact_sheet_id)


async def delete_subscription(_root: Any, info: GraphQLResolveInfo, id: str) -> Any:
    return await _delete(info, id, Subscription, "subscription", service.delete_subscription)


async def create_comment(
    _root: Any,
    info: GraphQLResolveInfo,
    factSheetId: str,
    message: str,
    replyToId: str | None = None,
    validateOnly: bool = False,
    **_: Any,
) -> Any:
    ctx: Context = info.context
    _require_write(ctx)
    fact_sheet_id = parse_id(factSheetId, "factSheetId")
    reply_to = parse_id(replyToId, "replyToId") if replyToId else None

    async def work() -> Any:
        return await service.create_comment(ctx.session, ctx.who, fact_sheet_id, message, reply_to)

    return await _transaction(ctx, work, validateOnly, fact_sheet_id)


async def create_document(
    _root: Any,
    info: GraphQLResolveInfo,
    factSheetId: str,
    name: str,
    url: str | None = None,
    description: str | None = None,
    documentType: str | None = None,
    validateOnly: bool = False,
    **_: Any,
) -> Any:
    ctx: Context = info.context
    _require_write(ctx)
    fact_sheet_id = parse_id(factSheetId, "factSheetId")

    async def work() -> Any:
        return await service.create_document(
            ctx.session, ctx.who, fact_sheet_id, name, url, description, documentType, validateOnly
        )

    return await _transaction(ctx, work, object_id=fact_sheet_id)

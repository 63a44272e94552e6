"""The request's batch loaders over the domain's (eam/queries.py: one statement per call).

Rows that arrive with a companion (a tag with its group, a subscription with its user) carry it in
a private attribute, so that the nested field needs no statement of its own.
"""

from collections.abc import Hashable
from typing import Any
from uuid import UUID

from sqlalchemy import select

from landmark.api.graphql.context import Context, group
from landmark.eam import queries
from landmark.eam.metamodel import RelationSide
from landmark.eam.models import Comment, Document, Subscription, Tag, TagGroup

GROUP = "_lx_group"  # the tag's group, loaded with the tag
USER = "_lx_user"  # the subscription's user, loaded with it
TAGS = "tags"  # the loader of fact sheets' tags


def relations_loader(side: RelationSide, columns: queries.RelationColumns) -> Hashable:
    """The name of the loader of one relation side read with `columns`."""
    return ("relations", side.definition.name, side.forward, columns)


async def tags(ctx: Context, fact_sheet_id: UUID) -> list[Tag]:
    async def batch(ids: list[UUID]) -> dict[UUID, list[Tag]]:
        found = await queries.tags_of(ctx.session, ctx.account_id, ids)
        out: dict[UUID, list[Tag]] = {}
        for fs_id, pairs in found.items():
            for tag, tag_group in pairs:
                setattr(tag, GROUP, tag_group)
            out[fs_id] = [tag for tag, _ in pairs]
        return out

    return await ctx.loader(TAGS, batch).load(fact_sheet_id)  # type: ignore[no-any-return]


async def _all_tag_groups(ctx: Context) -> dict[Any, Any]:
    async def batch(_keys: list[Any]) -> dict[Any, Any]:
        rows = await ctx.session.scalars(
            select(TagGroup).where(TagGroup.account_id == ctx.account_id).order_by(TagGroup.name)
        )
        return {"all": {g.id: g for g in rows}}

    loader = ctx.loader("tag_groups", batch, dict, per_fact_sheet=False)
    return await loader.load("all")  # type: ignore[no-any-return]


async def tag_group(ctx: Context, tag: Tag) -> TagGroup | None:
    if hasattr(tag, GROUP):
        return getattr(tag, GROUP)  # type: ignore[no-any-return]
    if tag.tag_group_id is None:
        return None
    return (await _all_tag_groups(ctx)).get(tag.tag_group_id)


async def tag_groups(ctx: Context) -> list[TagGroup]:
    return list((await _all_tag_groups(ctx)).values())


async def tags_in_group(ctx: Context, group_id: UUID) -> list[Tag]:
    async def batch(_keys: list[Any]) -> dict[Any, Any]:
        rows = await ctx.session.scalars(
            select(Tag).where(Tag.account_id == ctx.account_id).order_by(Tag.name)
        )
        return group(rows, lambda t: t.tag_group_id)

    loader = ctx.loader("tags_by_group", batch, list, per_fact_sheet=False)
    loader.expect(g.id for g in await tag_groups(ctx))  # every group in the one statement
    return await loader.load(group_id)  # type: ignore[no-any-return]


async def subscriptions(ctx: Context, fact_sheet_id: UUID) -> list[Subscription]:
    async def batch(ids: list[UUID]) -> dict[UUID, list[Subscription]]:
        found = await queries.subscriptions_of(ctx.session, ctx.account_id, ids)
        out: dict[UUID, list[Subscription]] = {}
        for fs_id, pairs in found.items():
            for subscription, user in pairs:
                setattr(subscription, USER, user)
            out[fs_id] = [s for s, _ in pairs]
        return out

    return await ctx.loader("subscriptions", batch).load(fact_sheet_id)  # type: ignore[no-any-return]


async def user_of(ctx: Context, row: Any) -> Any:
    """The user of a subscription, comment or log event."""
    if hasattr(row, USER):
        return getattr(row, USER)
    return await ctx.user(getattr(row, "user_id", None) or getattr(row, "actor_user_id", None))


async def documents(ctx: Context, fact_sheet_id: UUID) -> list[Document]:
    async def batch(ids: list[UUID]) -> dict[UUID, list[Document]]:
        return await queries.documents_of(ctx.session, ctx.account_id, ids)

    return await ctx.loader("documents", batch).load(fact_sheet_id)  # type: ignore[no-any-return]


async def comments(ctx: Context, fact_sheet_id: UUID) -> list[Comment]:
    """Top-level comments, each with its `replies`."""

    async def batch(ids: list[UUID]) -> dict[UUID, list[Comment]]:
        found = await queries.comments_of(ctx.session, ctx.account_id, ids)
        rows = [c for cs in found.values() for c in cs]
        ctx.expect_users(c.user_id for c in rows if c.user_id is not None)
        replies = group((c for c in rows if c.reply_to_id), lambda c: c.reply_to_id)
        for c in rows:
            c.replies = replies.get(c.id, [])  # type: ignore[attr-defined]
        return group((c for c in rows if not c.reply_to_id), lambda c: c.fact_sheet_id)

    return await ctx.loader("comments", batch).load(fact_sheet_id)  # type: ignore[no-any-return]


async def relations(
    ctx: Context, fact_sheet_id: UUID, side: RelationSide, columns: queries.RelationColumns
) -> list[queries.RelationView]:
    """The active relations of one side (name) of a fact sheet, with the far ends loaded, of
    each the `columns` the query reads (Context.relation_columns)."""

    async def batch(ids: list[UUID]) -> dict[UUID, list[queries.RelationView]]:
        found = await queries.relations_of_side(ctx.reads, ctx.account_id, ids, side, columns)
        whole = columns.far is None
        ctx.seen((v.other for views in found.values() for v in views), whole=whole)
        return found

    loader = ctx.loader(relations_loader(side, columns), batch, in_session=False)
    return await loader.load(fact_sheet_id)  # type: ignore[no-any-return]

"""Tags, tag groups, subscriptions, documents, comments and log events: shared object types.

Their resolvers reach the database only through the request's batch loaders (context.py).
"""

import json
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLField,
    GraphQLID,
    GraphQLList,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLString,
)

from landmark.api.graphql import loaders
from landmark.api.graphql.common import (
    PAGE_ARGS,
    Long,
    User,
    connection,
    field,
    first_of,
)


def _ctx(info: GraphQLResolveInfo) -> Any:
    return info.context


async def _tag_group(tag: Any, info: GraphQLResolveInfo) -> Any:
    return await loaders.tag_group(_ctx(info), tag)


async def _user(row: Any, info: GraphQLResolveInfo) -> Any:
    return await loaders.user_of(_ctx(info), row)


async def _group_tags(
    group: Any, info: GraphQLResolveInfo, first: int | None = None, **_: Any
) -> Any:
    return first_of(await loaders.tags_in_group(_ctx(info), group.id), first)


def _tag_group_fields() -> dict[str, GraphQLField]:
    return {
        "id": field(GraphQLID, "id"),
        "name": field(GraphQLString, "name"),
        "shortName": field(GraphQLString, "short_name"),
        "description": field(GraphQLString, "description"),
        "mode": field(GraphQLString, "mode"),
        "mandatory": field(GraphQLBoolean, "mandatory"),
        "restrictToFactSheetTypes": field(GraphQLList(GraphQLString), "restrict_to_types"),
        "tags": GraphQLField(TagConnection, args=PAGE_ARGS, resolve=_group_tags),
    }


TagGroup: GraphQLObjectType = GraphQLObjectType("TagGroup", _tag_group_fields)

Tag = GraphQLObjectType(
    "Tag",
    lambda: {
        "id": field(GraphQLID, "id"),
        "name": field(GraphQLString, "name"),
        "description": field(GraphQLString, "description"),
        "color": field(GraphQLString, "color"),
        "status": field(GraphQLString, "status"),
        "tagGroup": GraphQLField(TagGroup, resolve=_tag_group),
    },
)
TagConnection = connection(Tag)
TagGroupConnection = connection(TagGroup)

SubscriptionRole = GraphQLObjectType(
    "SubscriptionRole",
    {
        "id": field(GraphQLID, "id"),
        "name": field(GraphQLString, "name"),
        "comment": field(GraphQLString, "comment"),
    },
)


def _roles(subscription: Any, _info: GraphQLResolveInfo) -> list[dict[str, Any]]:
    """Roles are stored by name; LeanIX shows objects."""
    out = []
    for role in subscription.roles or []:
        if isinstance(role, dict):
            out.append({"id": role.get("id") or role.get("name"), **role})
        else:
            out.append({"id": role, "name": role, "comment": None})
    return out


Subscription = GraphQLObjectType(
    "Subscription",
    {
        "id": field(GraphQLID, "id"),
        "type": field(GraphQLString, "type"),
        "user": GraphQLField(User, resolve=_user),
        "roles": GraphQLField(GraphQLList(SubscriptionRole), resolve=_roles),
        "createdAt": field(GraphQLString, "created_at"),
    },
)
SubscriptionConnection = connection(Subscription)

Document = GraphQLObjectType(
    "Document",
    {
        "id": field(GraphQLID, "id"),
        "name": field(GraphQLString, "name"),
        "url": field(GraphQLString, "url"),
        "description": field(GraphQLString, "description"),
        "documentType": field(GraphQLString, "document_type"),
        "origin": field(GraphQLString, "origin"),
        "createdAt": field(GraphQLString, "created_at"),
    },
)
DocumentConnection = connection(Document)


def _replies(comment: Any, _info: GraphQLResolveInfo) -> list[Any]:
    return getattr(comment, "replies", None) or []


Comment: GraphQLObjectType = GraphQLObjectType(
    "Comment",
    lambda: {
        "id": field(GraphQLID, "id"),
        "message": field(GraphQLString, "message"),
        "status": field(GraphQLString, "status"),
        "createdAt": field(GraphQLString, "created_at"),
        "user": GraphQLField(User, resolve=_user),
        "author": GraphQLField(User, resolve=_user),
        "replies": GraphQLField(GraphQLList(Comment), resolve=_replies),
    },
)
CommentConnection = connection(Comment)

LogEvent = GraphQLObjectType(
    "LogEvent",
    {
        "id": field(GraphQLID, "id"),
        "eventType": field(GraphQLString, "type"),
        "path": GraphQLField(GraphQLString, resolve=lambda e, _i: (e.data or {}).get("path")),
        "message": GraphQLField(GraphQLString, resolve=lambda e, _i: (e.data or {}).get("comment")),
        "oldValue": GraphQLField(GraphQLString, resolve=lambda e, _i: _text(e, "old")),
        "newValue": GraphQLField(GraphQLString, resolve=lambda e, _i: _text(e, "new")),
        "transactionSequenceNumber": field(Long, "seq"),
        "createdAt": field(GraphQLString, "created_at"),
        "user": GraphQLField(User, resolve=_user),
    },
)
LogEventConnection = connection(LogEvent)


def _text(event: Any, key: str) -> str | None:
    value = (event.data or {}).get(key)
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)

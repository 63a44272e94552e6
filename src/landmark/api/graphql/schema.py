"""The GraphQL schema of one workspace, built from its meta model and cached per model version.

- interface `BaseFactSheet`, one object type per fact sheet type implementing it, with the type's
  fields and relations (`relApplicationToITComponent { totalCount edges { node { factSheet } } }`);
- select fields are `String` (multiple select `[String]`): on the wire a LeanIX enum value is the
  same JSON string, and a key that is no GraphQL name (`"10-20"`) still works;
- lifecycle, external id and location fields are objects (`Lifecycle`, `ExternalId`, `Location`).
"""

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLString,
)

from landmark.api.graphql import entities as e
from landmark.api.graphql import loaders, mutations, resolvers
from landmark.api.graphql.common import (
    PAGE_ARGS,
    Completion,
    ExternalId,
    FilterInput,
    FilterOptions,
    Lifecycle,
    Location,
    Long,
    PageInfo,
    Patch,
    Sorting,
    TagQueryFilters,
    computed,
    connection,
    enum,
    field,
    first_of,
    plain,
)
from landmark.api.graphql.context import MISSING, Context
from landmark.eam.metamodel import FieldDef, MetaModel, RelationSide

Resolver = Callable[..., Any]

SCALARS: dict[str, Any] = {
    "STRING": GraphQLString,
    "SINGLE_SELECT": GraphQLString,
    "MULTIPLE_SELECT": GraphQLList(GraphQLString),
    "LIFECYCLE": Lifecycle,
    "EXTERNAL_ID": ExternalId,
    "DOUBLE": GraphQLFloat,
    "INTEGER": GraphQLInt,
    "DATE": GraphQLString,
    "LOCATION": Location,
}


def _completion(fs: Any, _info: GraphQLResolveInfo) -> dict[str, Any]:
    value = fs.completion or 0.0
    return {"completion": value, "percentage": round(value * 100)}


def _tags(fs: Any, info: GraphQLResolveInfo) -> Any:
    found = info.context.loaded(loaders.TAGS, fs.id)
    return loaders.tags(info.context, fs.id) if found is MISSING else found


def _listed(load: Callable[..., Any]) -> Resolver:
    async def resolve(fs: Any, info: GraphQLResolveInfo, first: int | None = None, **_: Any) -> Any:
        return first_of(await load(info.context, fs.id), first)

    return resolve


def _base_fields() -> dict[str, GraphQLField]:
    """The fields of every fact sheet (the `BaseFactSheet` interface)."""
    return {
        "id": field(GraphQLNonNull(GraphQLID), "id"),
        "name": field(GraphQLString, "name"),
        "displayName": field(GraphQLString, "display_name"),
        "fullName": field(GraphQLString, "full_name"),
        "type": field(GraphQLString, "type"),
        "description": field(GraphQLString, "description"),
        "status": field(GraphQLString, "status"),
        "level": field(GraphQLInt, "level"),
        "rev": field(Long, "rev"),
        "completion": GraphQLField(Completion, resolve=_completion),
        "createdAt": field(GraphQLString, "created_at"),
        "updatedAt": field(GraphQLString, "updated_at"),
        "lxState": GraphQLField(GraphQLString, resolve=lambda _fs, _i: None),
        "tags": GraphQLField(GraphQLList(e.Tag), resolve=_tags),
        "subscriptions": GraphQLField(
            e.SubscriptionConnection, args=PAGE_ARGS, resolve=_listed(loaders.subscriptions)
        ),
        "documents": GraphQLField(
            e.DocumentConnection, args=PAGE_ARGS, resolve=_listed(loaders.documents)
        ),
        "comments": GraphQLField(
            e.CommentConnection, args=PAGE_ARGS, resolve=_listed(loaders.comments)
        ),
    }


def _value(name: str, kind: str) -> Callable[[Any], Any]:
    """The value of a model field, from a fact sheet's or relation's `fields` (or a dict)."""

    def value_of(source: Any) -> Any:
        data = source.fields if not isinstance(source, dict) else source
        value = (data or {}).get(name)
        if kind == "MULTIPLE_SELECT" and isinstance(value, str):
            return [value]
        return plain(value)

    return value_of


def _of_relation(value_of: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A model field's value read from a relation view's relation."""
    return lambda view: value_of(view.relation)


def _model_fields(fields: dict[str, FieldDef], taken: set[str]) -> dict[str, GraphQLField]:
    return {
        f.name: computed(SCALARS[f.type], _value(f.name, f.type))
        for f in fields.values()
        if f.name not in taken and f.name.isidentifier()
    }


def _capital(name: str) -> str:
    return name[:1].upper() + name[1:]


class Builder:
    """Builds one workspace's schema; relation types are shared between the types using them."""

    def __init__(self, model: MetaModel) -> None:
        self.model = model
        self.objects: dict[str, GraphQLObjectType] = {}
        self.relation_types: dict[str, GraphQLObjectType] = {}
        self.base = GraphQLInterfaceType(
            "BaseFactSheet", _base_fields, resolve_type=lambda fs, *_: fs.type
        )
        self.fact_sheet_type = enum("FactSheetType", list(model.types) or ["None"])

    def build(self) -> GraphQLSchema:
        for name in self.model.types:
            self.objects[name] = self._object(name)
        return GraphQLSchema(
            query=self._query(),
            mutation=self._mutation(),
            types=list(self.objects.values()),
        )

    # --- fact sheet types ---------------------------------------------------------------------

    def _object(self, type_name: str) -> GraphQLObjectType:
        definition = self.model.types[type_name]

        def fields() -> dict[str, GraphQLField]:
            out = _base_fields()
            out.update(_model_fields(definition.fields, set(out)))
            for relation in definition.relations:
                side = self.model.side(type_name, relation)
                if side is not None and relation not in out:
                    out[relation] = self._relation_field(type_name, side)
            return out

        return GraphQLObjectType(type_name, fields, interfaces=[self.base])

    def _relation_field(self, owner: str, side: RelationSide) -> GraphQLField:
        target = side.target_type or owner
        type_name = _capital(side.name) if side.target_type else owner + _capital(side.name)
        if type_name not in self.relation_types:
            self.relation_types[type_name] = self._relation_type(type_name, side, target)
        node = self.relation_types[type_name]
        conn = self.relation_types.get(type_name + "Connection") or connection(node)
        self.relation_types[type_name + "Connection"] = conn

        async def load(ctx: Context, fs_id: Any, first: int | None, columns: Any) -> Any:
            return first_of(await loaders.relations(ctx, fs_id, side, columns), first)

        def resolve(fs: Any, info: GraphQLResolveInfo, first: int | None = None, **_: Any) -> Any:
            ctx: Context = info.context
            columns = ctx.relation_columns(info.field_nodes, info)
            found = ctx.loaded(loaders.relations_loader(side, columns), fs.id)
            if found is MISSING:
                return load(ctx, fs.id, first, columns)
            return first_of(found, first)

        return GraphQLField(conn, args=PAGE_ARGS, resolve=resolve)

    def _relation_type(self, name: str, side: RelationSide, target: str) -> GraphQLObjectType:
        def fields() -> dict[str, GraphQLField]:
            out: dict[str, GraphQLField] = {
                "id": computed(GraphQLNonNull(GraphQLID), lambda v: str(v.relation.id)),
                "type": computed(GraphQLString, lambda v: v.name),
                "activeFrom": computed(GraphQLString, lambda v: v.relation.active_from),
                "activeUntil": computed(GraphQLString, lambda v: v.relation.active_until),
                "status": computed(GraphQLString, lambda v: v.relation.status),
                "description": computed(
                    GraphQLString, lambda v: (v.relation.fields or {}).get("description")
                ),
                "factSheet": computed(self.objects[target], lambda v: v.other),
            }
            for f in side.definition.fields.values():
                if f.name not in out and f.name.isidentifier():
                    out[f.name] = computed(SCALARS[f.type], _of_relation(_value(f.name, f.type)))
            return out

        return GraphQLObjectType(name, fields)

    # --- roots --------------------------------------------------------------------------------

    def _query(self) -> GraphQLObjectType:
        base = self.base
        conn = GraphQLObjectType(
            "BaseFactSheetConnection",
            {
                "totalCount": GraphQLField(GraphQLNonNull(GraphQLInt)),
                "pageInfo": GraphQLField(GraphQLNonNull(PageInfo)),
                "edges": GraphQLField(GraphQLList(_edge(base, "BaseFactSheetEdge"))),
                "filterOptions": GraphQLField(FilterOptions, resolve=resolvers.filter_options),
            },
        )
        simple = connection(base, "SimpleBaseFactSheetConnection")
        return GraphQLObjectType(
            "Query",
            {
                "factSheet": GraphQLField(
                    base,
                    args={
                        "id": GraphQLArgument(GraphQLNonNull(GraphQLID)),
                        "markAsViewed": GraphQLArgument(GraphQLBoolean),
                    },
                    resolve=resolvers.fact_sheet,
                ),
                "factSheets": GraphQLField(
                    simple,
                    args={
                        "ids": GraphQLArgument(GraphQLList(GraphQLNonNull(GraphQLID))),
                        "externalIds": GraphQLArgument(GraphQLList(GraphQLNonNull(GraphQLString))),
                        "omitArchivedFactSheets": GraphQLArgument(GraphQLBoolean),
                    },
                    resolve=resolvers.fact_sheets,
                ),
                "allFactSheets": GraphQLField(
                    conn,
                    args={
                        **PAGE_ARGS,
                        "before": GraphQLArgument(GraphQLString),
                        "last": GraphQLArgument(GraphQLInt),
                        "factSheetType": GraphQLArgument(self.fact_sheet_type),
                        "filter": GraphQLArgument(FilterInput),
                        "sort": GraphQLArgument(GraphQLList(Sorting)),
                    },
                    resolve=resolvers.all_fact_sheets,
                ),
                "allTags": GraphQLField(
                    e.TagConnection,
                    args={**PAGE_ARGS, "filter": GraphQLArgument(TagQueryFilters)},
                    resolve=resolvers.all_tags,
                ),
                "allTagGroups": GraphQLField(
                    e.TagGroupConnection, args=PAGE_ARGS, resolve=resolvers.all_tag_groups
                ),
                "allLogEvents": GraphQLField(
                    e.LogEventConnection,
                    args={**PAGE_ARGS, "factSheetId": GraphQLArgument(GraphQLNonNull(GraphQLID))},
                    resolve=resolvers.all_log_events,
                ),
            },
        )

    def _mutation(self) -> GraphQLObjectType:
        result = GraphQLObjectType(
            "FactSheetMutationResult", {"factSheet": GraphQLField(self.base)}
        )
        fs_input = GraphQLInputObjectType(
            "BaseFactSheetInput",
            {
                "name": GraphQLInputField(GraphQLNonNull(GraphQLString)),
                "type": GraphQLInputField(GraphQLNonNull(self.fact_sheet_type)),
            },
        )
        patches = GraphQLArgument(GraphQLList(Patch))
        validate_only = GraphQLArgument(GraphQLBoolean, default_value=False)
        id_arg = GraphQLArgument(GraphQLNonNull(GraphQLID))
        text = GraphQLArgument(GraphQLString)
        return GraphQLObjectType(
            "Mutation",
            {
                "createFactSheet": GraphQLField(
                    result,
                    args={
                        "input": GraphQLArgument(GraphQLNonNull(fs_input)),
                        "patches": patches,
                        "validateOnly": validate_only,
                    },
                    resolve=mutations.create_fact_sheet,
                ),
                "updateFactSheet": GraphQLField(
                    result,
                    args={
                        "id": id_arg,
                        "rev": GraphQLArgument(Long),
                        "patches": GraphQLArgument(GraphQLNonNull(GraphQLList(Patch))),
                        "comment": text,
                        "validateOnly": validate_only,
                    },
                    resolve=mutations.update_fact_sheet,
                ),
                "createTag": GraphQLField(
                    e.Tag,
                    args={
                        "name": GraphQLArgument(GraphQLNonNull(GraphQLString)),
                        "description": text,
                        "color": text,
                        "tagGroupId": GraphQLArgument(GraphQLID),
                        "validateOnly": validate_only,
                    },
                    resolve=mutations.create_tag,
                ),
                "deleteTag": GraphQLField(e.Tag, args={"id": id_arg}, resolve=mutations.delete_tag),
                "createSubscription": GraphQLField(
                    e.Subscription,
                    args={
                        "factSheetId": id_arg,
                        "factSheetRev": GraphQLArgument(Long),
                        "user": GraphQLArgument(
                            GraphQLNonNull(
                                GraphQLInputObjectType(
                                    "UserInput",
                                    {
                                        "id": GraphQLInputField(GraphQLID),
                                        "email": GraphQLInputField(GraphQLString),
                                    },
                                )
                            )
                        ),
                        "type": GraphQLArgument(GraphQLNonNull(GraphQLString)),
                        "roleIds": GraphQLArgument(GraphQLList(GraphQLID)),
                        "validateOnly": validate_only,
                    },
                    resolve=mutations.create_subscription,
                ),
                "deleteSubscription": GraphQLField(
                    e.Subscription, args={"id": id_arg}, resolve=mutations.delete_subscription
                ),
                "createComment": GraphQLField(
                    e.Comment,
                    args={
                        "factSheetId": id_arg,
                        "message": GraphQLArgument(GraphQLNonNull(GraphQLString)),
                        "status": text,
                        "replyToId": GraphQLArgument(GraphQLID),
                        "validateOnly": validate_only,
                    },
                    resolve=mutations.create_comment,
                ),
                "createDocument": GraphQLField(
                    e.Document,
                    args={
                        "factSheetId": id_arg,
                        "name": GraphQLArgument(GraphQLNonNull(GraphQLString)),
                        "url": text,
                        "description": text,
                        "documentType": text,
                        "origin": text,
                        "validateOnly": validate_only,
                    },
                    resolve=mutations.create_document,
                ),
            },
        )


def _edge(node: Any, name: str) -> GraphQLObjectType:
    return GraphQLObjectType(
        name, {"node": GraphQLField(node), "cursor": GraphQLField(GraphQLString)}
    )


_cache: OrderedDict[tuple[str, int], GraphQLSchema] = OrderedDict()
CACHE_SIZE = 256  # workspaces whose schema stays built (least recently used go first)


def schema_for(account_id: str, model: MetaModel) -> GraphQLSchema:
    """The workspace's schema, built once per (account, model version)."""
    key = (account_id, model.version)
    found = _cache.get(key)
    if found is not None:
        _cache.move_to_end(key)
        return found
    for old in [k for k in _cache if k[0] == account_id]:
        del _cache[old]
    found = _cache[key] = Builder(model).build()
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return found

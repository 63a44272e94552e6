"""The GraphQL types every workspace shares: scalars, tags, subscriptions, documents, inputs.

Names are LeanIX's, so that queries written for LeanIX run unchanged. Objects resolve from ORM rows
or dicts through `attr` (snake_case attribute for a camelCase field).
"""

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from uuid import UUID

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLEnumType,
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
    GraphQLScalarType,
    GraphQLString,
    ValueNode,
)
from graphql.language import IntValueNode, StringValueNode

from landmark.api.graphql.executor import VALUE_OF


def enum(name: str, values: list[str]) -> GraphQLEnumType:
    """An enum whose values are their names (as LeanIX's)."""
    return GraphQLEnumType(name, {v: v for v in values})


def _long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"Long cannot represent {value!r}")
    return int(value)


def _long_literal(node: ValueNode, _variables: Any = None) -> int:
    if isinstance(node, IntValueNode | StringValueNode):
        return int(node.value)
    raise TypeError("Long must be an integer")


Long = GraphQLScalarType(
    "Long",
    description="A 64-bit integer (the revision of a fact sheet).",
    serialize=_long,
    parse_value=_long,
    parse_literal=_long_literal,
)


def plain(value: Any) -> Any:
    """A value as JSON shows it: UUIDs as text, times ISO 8601 with offset."""
    if value.__class__ is str:  # most values: one check (this runs for most of a page's fields)
        return value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, _TIMES):
        return value.isoformat()
    return value


_TIMES = (datetime, date)


def attr(name: str) -> Callable[[Any], Any]:
    """The value of an attribute (or dict key) of another name, as JSON shows it."""

    def value_of(source: Any) -> Any:
        value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
        return plain(value)

    return value_of


def computed(kind: Any, value_of: Callable[[Any], Any], **kwargs: Any) -> GraphQLField:
    """A field whose value is a function of its parent alone (no `info`, no arguments): the
    executor (executor.py) takes a shortcut for such fields."""
    return GraphQLField(
        kind,
        resolve=lambda source, _info, **_: value_of(source),
        extensions={VALUE_OF: value_of},
        **kwargs,
    )


def field(kind: Any, source: str | None = None, **kwargs: Any) -> GraphQLField:
    """A field resolved from `source` (an attribute name) when given."""
    return computed(kind, attr(source), **kwargs) if source else GraphQLField(kind, **kwargs)


def connection(
    node: GraphQLObjectType | GraphQLInterfaceType, name: str | None = None
) -> GraphQLObjectType:
    """A Relay connection of `node`: `{totalCount, pageInfo, edges {node cursor}}`."""
    name = name or f"{node.name}Connection"
    edge = GraphQLObjectType(
        name.removesuffix("Connection") + "Edge",
        {"node": GraphQLField(node), "cursor": GraphQLField(GraphQLString)},
    )
    return GraphQLObjectType(
        name,
        {
            "totalCount": GraphQLField(GraphQLNonNull(GraphQLInt)),
            "pageInfo": GraphQLField(GraphQLNonNull(PageInfo)),
            "edges": GraphQLField(GraphQLList(edge)),
        },
    )


def first_of(rows: list[Any], first: int | None) -> dict[str, Any]:
    """A nested connection (relations, subscriptions, ...): its first `first` rows, the total of
    all. Nested connections page forward with `first` only; `after` is not supported there."""
    from landmark.api.graphql.limits import check_first

    size = check_first(first)
    return as_connection(rows[:size], len(rows), None, len(rows) > size)


def as_connection(
    rows: list[Any], total: int | None = None, end_cursor: str | None = None, more: bool = False
) -> dict[str, Any]:
    """The value a connection type resolves from."""
    return {
        "totalCount": len(rows) if total is None else total,
        "pageInfo": {
            "hasNextPage": more,
            "hasPreviousPage": False,
            "endCursor": end_cursor,
            "startCursor": None,
        },
        "edges": [{"node": row, "cursor": None} for row in rows],
    }


PageInfo = GraphQLObjectType(
    "PageInfo",
    {
        "hasNextPage": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
        "hasPreviousPage": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
        "startCursor": GraphQLField(GraphQLString),
        "endCursor": GraphQLField(GraphQLString),
    },
)

User = GraphQLObjectType(
    "User",
    {
        "id": field(GraphQLID, "uuid"),
        "email": field(GraphQLString, "email"),
        "userName": GraphQLField(GraphQLString, resolve=lambda u, _i: u.email or u.name),
        "displayName": field(GraphQLString, "name"),
        "firstName": GraphQLField(GraphQLString, resolve=lambda u, _i: u.name.split(" ")[0]),
        "lastName": GraphQLField(
            GraphQLString, resolve=lambda u, _i: " ".join(u.name.split(" ")[1:]) or None
        ),
        "technicalUser": GraphQLField(GraphQLBoolean, resolve=lambda u, _i: u.kind == "technical"),
    },
)

Completion = GraphQLObjectType(
    "FactSheetCompletion",
    {
        "completion": GraphQLField(GraphQLFloat),
        "percentage": GraphQLField(GraphQLInt),
    },
)

LifecyclePhase = GraphQLObjectType(
    "FactSheetLifecyclePhase",
    {"phase": GraphQLField(GraphQLString), "startDate": GraphQLField(GraphQLString)},
)


def _current_phase(value: dict[str, Any], _info: Any) -> str | None:
    today = date.today().isoformat()
    started = [p for p in value.get("phases") or [] if (p.get("startDate") or "") <= today]
    return started[-1]["phase"] if started else None


Lifecycle = GraphQLObjectType(
    "Lifecycle",
    {
        "asString": GraphQLField(GraphQLString, resolve=_current_phase),
        "phases": GraphQLField(GraphQLList(LifecyclePhase)),
    },
)

ExternalId = GraphQLObjectType(
    "ExternalId",
    {
        name: GraphQLField(GraphQLString)
        for name in ("externalId", "comment", "externalUrl", "externalVersion", "status")
    },
)

Location = GraphQLObjectType(
    "Location",
    {
        **{
            name: GraphQLField(GraphQLString)
            for name in (
                "rawAddress",
                "formattedAddress",
                "street",
                "houseNumber",
                "postalCode",
                "city",
                "country",
                "countryCode",
                "place",
            )
        },
        "latitude": GraphQLField(GraphQLFloat),
        "longitude": GraphQLField(GraphQLFloat),
    },
)

PatchOperation = enum("PatchOperation", ["add", "replace", "remove"])
Patch = GraphQLInputObjectType(
    "Patch",
    {
        "op": GraphQLInputField(GraphQLNonNull(PatchOperation)),
        "path": GraphQLInputField(GraphQLNonNull(GraphQLString)),
        "value": GraphQLInputField(GraphQLString),
    },
)

FacetKeyOperator = enum("FacetKeyOperator", ["OR", "AND", "NOR"])
DateFilterType = enum(
    "FacetDateFilterType",
    ["POINT", "TODAY", "END_OF_MONTH", "END_OF_YEAR", "RANGE", "RANGE_STARTS", "RANGE_ENDS"],
)
DateFilterInput = GraphQLInputObjectType(
    "DateFilterInput",
    {
        "type": GraphQLInputField(DateFilterType),
        "from": GraphQLInputField(GraphQLString, out_name="from_"),
        "to": GraphQLInputField(GraphQLString),
    },
)
FacetFilterInput = GraphQLInputObjectType(
    "FacetFilterInput",
    {
        "facetKey": GraphQLInputField(GraphQLNonNull(GraphQLString)),
        "operator": GraphQLInputField(FacetKeyOperator, default_value="OR"),
        "keys": GraphQLInputField(GraphQLList(GraphQLString)),
        "dateFilter": GraphQLInputField(DateFilterInput),
    },
)
ResponseOptions = GraphQLInputObjectType(
    "ResponseOptions", {"maxFacetDepth": GraphQLInputField(GraphQLInt)}
)
FilterInput = GraphQLInputObjectType(
    "FilterInput",
    {
        "facetFilters": GraphQLInputField(GraphQLList(FacetFilterInput)),
        "fullTextSearch": GraphQLInputField(GraphQLString),
        "ids": GraphQLInputField(GraphQLList(GraphQLID)),
        "responseOptions": GraphQLInputField(ResponseOptions),
    },
)
SortOrder = enum("SortingOrder", ["asc", "desc"])
SortingMode = enum(
    "SortingMode", ["BY_FIELD", "BY_LIFECYCLE_LAST_PHASE", "BY_LIFECYCLE_FIRST_PHASE"]
)
Sorting = GraphQLInputObjectType(
    "Sorting",
    {
        "key": GraphQLInputField(GraphQLString),
        "order": GraphQLInputField(SortOrder, default_value="asc"),
        "mode": GraphQLInputField(SortingMode, default_value="BY_FIELD"),
    },
)
TagQueryFilters = GraphQLInputObjectType(
    "TagQueryFilters",
    {
        "tagGroupName": GraphQLInputField(GraphQLString),
        "nameSubstring": GraphQLInputField(GraphQLString),
    },
)

FacetResult = GraphQLObjectType(
    "FacetResult",
    {
        "key": GraphQLField(GraphQLString),
        "name": GraphQLField(GraphQLString),
        "count": GraphQLField(GraphQLInt),
    },
)
Facet = GraphQLObjectType(
    "Facet",
    {
        "facetKey": field(GraphQLString, "facet_key"),
        "results": GraphQLField(GraphQLList(FacetResult)),
    },
)
FilterOptions = GraphQLObjectType("FilterOptions", {"facets": GraphQLField(GraphQLList(Facet))})

PAGE_ARGS = {"first": GraphQLArgument(GraphQLInt), "after": GraphQLArgument(GraphQLString)}

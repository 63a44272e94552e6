"""What a query asks below a field, read from its syntax before the field resolves: so that a
loader reads, in one statement, what the fields below will need (and no more).

Directives are not evaluated: a field under `@skip` counts as asked, which may read more than
needed, never less.
"""

from collections.abc import Iterable, Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionSetNode,
)

from landmark.eam.queries import RelationColumns

# What each field of a relation (`edges { node { ... } }`) reads of the relation's row beyond
# its id and ends (eam/queries.RELATION_BASE); any other field (description, the model's
# relation fields) reads `fields`.
RELATION_FIELD_COLUMNS: dict[str, tuple[str, ...]] = {
    "__typename": (), "id": (), "type": (), "factSheet": (), "activeFrom": ("active_from",),
    "activeUntil": ("active_until",), "status": ("status",),
}  # fmt: skip
# What each field of a fact sheet reads of its row beyond its id and type
# (eam/queries.FACT_SHEET_BASE); any other field (description, external id, model fields,
# lifecycle, times) reads the whole row. Its tags, subscriptions, documents, comments and
# relations need only its id.
FACT_SHEET_FIELD_COLUMNS: dict[str, tuple[str, ...]] = {
    "__typename": (), "id": (), "type": (), "name": ("name",), "displayName": ("display_name",),
    "fullName": ("full_name",), "status": ("status",), "level": ("level",), "rev": ("rev",),
    "completion": ("completion",), "lxState": (), "tags": (), "subscriptions": (),
    "documents": (), "comments": (),
}  # fmt: skip


def fields_of(
    selections: SelectionSetNode | None, info: GraphQLResolveInfo, on: str | None = None
) -> Iterator[tuple[str | None, FieldNode]]:
    """(type condition, field) of a selection set, through inline fragments and spreads."""
    for node in selections.selections if selections else ():
        if isinstance(node, FieldNode):
            yield on, node
        elif isinstance(node, InlineFragmentNode):
            condition = node.type_condition.name.value if node.type_condition else on
            yield from fields_of(node.selection_set, info, condition)
        elif isinstance(node, FragmentSpreadNode) and node.name.value in info.fragments:
            fragment = info.fragments[node.name.value]
            yield from fields_of(fragment.selection_set, info, fragment.type_condition.name.value)


def children(
    fields: Iterable[FieldNode], name: str, info: GraphQLResolveInfo
) -> list[tuple[str | None, FieldNode]]:
    """(type condition, field) of the selections of those of `fields` called `name`."""
    return [
        (on, child)
        for field in fields
        if field.name.value == name
        for on, child in fields_of(field.selection_set, info)
    ]


def response_key(field: FieldNode) -> str:
    """The name a field answers under: its alias, else its name."""
    return (field.alias or field.name).value


def connection_nodes(
    fields: Iterable[FieldNode], info: GraphQLResolveInfo
) -> list[tuple[str | None, FieldNode]]:
    """(type condition, field) of what connection fields ask of their nodes (`edges { node {
    ... } }`)."""
    edges = [f for field in fields for _, f in fields_of(field.selection_set, info)]
    nodes = [f for _, f in children(edges, "edges", info)]
    return children(nodes, "node", info)


def relation_columns(
    relation_fields: Iterable[FieldNode], info: GraphQLResolveInfo, relations: Any
) -> RelationColumns:
    """The columns a relation connection's fields (`edges { node { ... factSheet { ... } } }`)
    read of the relations and their far ends (relation names in `relations` need only ids)."""
    asked = [f for _, f in connection_nodes(relation_fields, info)]
    mine = {c for f in asked for c in RELATION_FIELD_COLUMNS.get(f.name.value, ("fields",))}
    far = [f for _, f in children(asked, "factSheet", info)]
    return RelationColumns(tuple(sorted(mine)), fact_sheet_columns(far, relations))


def page_columns(
    page_fields: Iterable[FieldNode], info: GraphQLResolveInfo, relations: Any
) -> tuple[str, ...] | None:
    """The columns of a page's fact sheets (`edges { node { ... } }`) its query reads; None:
    whole rows."""
    return fact_sheet_columns([f for _, f in connection_nodes(page_fields, info)], relations)


def fact_sheet_columns(fields: list[FieldNode], relations: Any) -> tuple[str, ...] | None:
    """The columns these fields of fact sheets read (relation names in `relations` need only
    ids); None: whole rows."""
    names = [f.name.value for f in fields if f.name.value not in relations]
    needed = [FACT_SHEET_FIELD_COLUMNS.get(name) for name in names]
    return None if None in needed else tuple(sorted({c for cs in needed if cs for c in cs}))

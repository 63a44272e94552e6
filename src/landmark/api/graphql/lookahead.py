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

# The fields of a fact sheet answered from its lean columns alone (eam/queries.LEAN_COLUMNS):
# the rest (description, external id, model fields, lifecycle, times) need the whole row. A fact
# sheet's relations, tags, subscriptions, documents and comments need only its id.
LEAN_FIELDS = frozenset(
    {
        "__typename", "id", "name", "displayName", "fullName", "type", "status", "level", "rev",
        "completion", "lxState", "tags", "subscriptions", "documents", "comments",
    }
)  # fmt: skip


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


def far_ends_lean(
    relation_fields: Iterable[FieldNode], info: GraphQLResolveInfo, relations: Any
) -> bool:
    """Whether the far ends of a relation connection (`edges { node { factSheet { ... } } }`)
    are asked only fields answered from lean columns, or relations (names in `relations`)."""
    edges = [f for field in relation_fields for _, f in fields_of(field.selection_set, info)]
    nodes = [f for _, f in children(edges, "edges", info)]
    far = [f for _, f in children(nodes, "node", info)]
    return all(
        f.name.value in LEAN_FIELDS or f.name.value in relations
        for _, f in children(far, "factSheet", info)
    )

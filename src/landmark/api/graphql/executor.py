"""graphql-core's executor with a shortcut for the commonest field: a scalar or enum, without
arguments, whose value comes straight from its parent (`id`, `name`, a relation's `activeFrom`).

A page of 100 fact sheets with their relations completes ~8,000 fields, ~5,000 of them such
leaves. The full path builds a `GraphQLResolveInfo` for each, resolves, checks for an awaitable
and walks the completion rules; the shortcut reads the value and coerces it. Anything unusual
(null where the type forbids it, a value that does not coerce, an error) takes the full path,
which reports it as graphql-core does.
"""

from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
    is_leaf_type,
)
from graphql.execution.incremental.incremental_executor import IncrementalExecutor

VALUE_OF = "landmark_value_of"
"""Extension of a field whose resolver needs no `info`: the function source -> raw value."""

Leaf = tuple[Callable[[Any], Any], GraphQLLeafType, bool]  # value of, type, non-null
_NOT_LEAF = object()
_leaves: "WeakKeyDictionary[GraphQLSchema, dict[tuple[str, str], Any]]" = WeakKeyDictionary()


def _default_value(name: str) -> Callable[[Any], Any]:
    """graphql-core's default resolver, minus calling a callable (the full path does that)."""

    def value_of(source: Any) -> Any:
        value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
        return Undefined if callable(value) else value

    return value_of


def _leaf(field: GraphQLField, name: str) -> Leaf | None:
    kind, non_null = field.type, False
    if isinstance(kind, GraphQLNonNull):
        kind, non_null = kind.of_type, True
    if field.args or not is_leaf_type(kind):
        return None
    if field.resolve is None:
        return _default_value(name), kind, non_null
    value_of = (field.extensions or {}).get(VALUE_OF)
    return (value_of, kind, non_null) if value_of else None


class Executor(IncrementalExecutor):
    _leaf_cache: dict[tuple[str, str], Any] | None = None

    def _leaf_of(self, parent_type: GraphQLObjectType, name: str) -> Leaf | None:
        cache = self._leaf_cache
        if cache is None:  # the schema's, kept as long as the schema
            cache = self._leaf_cache = _leaves.setdefault(self.schema, {})
        key = (parent_type.name, name)
        found = cache.get(key, _NOT_LEAF)
        if found is _NOT_LEAF:
            field = self.schema.get_field(parent_type, name)
            found = cache[key] = _leaf(field, name) if field else None
        return found  # type: ignore[no-any-return]

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        leaf = self._leaf_of(parent_type, field_details_list[0].node.name.value)
        if leaf is not None and not self.middleware_manager:
            value_of, kind, non_null = leaf
            try:
                value = value_of(source)
                if value is None and not non_null:
                    return None
                if value is not None and value is not Undefined:
                    coerced = kind.coerce_output_value(value)
                    if coerced is not None and coerced is not Undefined:
                        return coerced
            except Exception:  # noqa: BLE001, S110 - the full path below reports it
                pass
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

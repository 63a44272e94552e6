"""graphql-core's executor with shortcuts for the commonest fields: those without arguments
whose value comes straight from their parent (`id`, `name`, a relation's `activeFrom`, its
`node` and `factSheet`), "plain" fields.

A page of 100 fact sheets with their relations completes ~8,000 fields, ~7,000 of them plain.
The full path builds a `GraphQLResolveInfo` for each, resolves, checks for an awaitable and walks
the completion rules. The shortcuts:
- a plain field is read, then a scalar coerced or an object's sub-selection run;
- an object whose whole selection is plain, down to its leaves (a relation's edge: `node { id
  activeFrom factSheet { id name type } }`), is answered by a plan compiled once per request
  and selection: a loop that reads and coerces, no per-field machinery;
- a list of such objects (a connection's edges) is answered by running the plan on each item.
Anything unusual (null where the type forbids it, a value that does not coerce, an error, an
abstract or list type, @defer) takes the full path, which reports it as graphql-core does: the
values are functions of their parents, so computing them again is safe.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from graphql import (
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    Undefined,
    is_leaf_type,
)
from graphql.execution.incremental.incremental_executor import IncrementalExecutor

VALUE_OF = "landmark_value_of"
"""Extension of a field whose resolver needs no `info`: the function source -> raw value."""


@dataclass(frozen=True)
class Plain:
    """A field the shortcut serves."""

    value_of: Callable[[Any], Any]
    kind: Any  # the named type: a scalar or enum (`leaf`), else an object type
    leaf: bool
    non_null: bool
    type: GraphQLOutputType  # as declared, for errors


Plan = tuple[tuple[str, Plain | None, Any], ...]  # (response name, field, sub-plan or constant)
_NOT_PLAIN = object()


class _Unplain(Exception):
    """A compiled plan met something unusual: graphql-core's path answers instead."""


def _read(plain: Plain, source: Any) -> Any:
    """A plain field's value: None, a coerced scalar, or an object's raw value; _Unplain (or
    the value's own error) where it is unusual."""
    value = plain.value_of(source)
    if value is None:
        if plain.non_null:
            raise _Unplain
        return None
    if value is Undefined:
        raise _Unplain
    if not plain.leaf:
        return value
    coerced = plain.kind.coerce_output_value(value)
    if coerced is None or coerced is Undefined:
        raise _Unplain
    return coerced


def _run(plan: Plan, source: Any) -> dict[str, Any]:
    out = {}
    for response_name, plain, sub in plan:
        if plain is None:  # __typename
            out[response_name] = sub
            continue
        value = _read(plain, source)
        out[response_name] = _run(sub, value) if sub is not None and value is not None else value
    return out


_plains: "WeakKeyDictionary[GraphQLSchema, dict[tuple[str, str], Any]]" = WeakKeyDictionary()


def _default_value(name: str) -> Callable[[Any], Any]:
    """graphql-core's default resolver, minus calling a callable (the full path does that)."""

    def value_of(source: Any) -> Any:
        value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
        return Undefined if callable(value) else value

    return value_of


def _plain(field: GraphQLField, name: str) -> Plain | None:
    non_null = isinstance(field.type, GraphQLNonNull)
    kind: Any = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    leaf = is_leaf_type(kind)
    plain_object = isinstance(kind, GraphQLObjectType) and kind.is_type_of is None
    if field.args or not (leaf or plain_object):
        return None
    value_of = _default_value(name) if field.resolve is None else None
    value_of = value_of or (field.extensions or {}).get(VALUE_OF)
    return Plain(value_of, kind, leaf, non_null, field.type) if value_of else None


class Executor(IncrementalExecutor):
    _plain_cache: dict[tuple[str, str], Any] | None = None
    _plans: dict[int, tuple[Any, Plan | None]] | None = None

    def collect_and_execute_subfields(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if position_context is None and not self.middleware_manager:
            grouped, defers, _ = self.collect_subfields(return_type, field_details_list)
            plan = None if defers else self._plan(return_type, grouped)
            if plan is not None:
                try:
                    return _run(plan, result)
                except Exception:  # noqa: BLE001, S110 - graphql-core's path below reports it
                    pass
        return super().collect_and_execute_subfields(
            return_type, field_details_list, path, result, position_context
        )

    def complete_list_value(
        self,
        return_type: GraphQLList[Any],
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        """A list of objects whose whole selection is plain (a connection's edges, a fact
        sheet's tags): each item by the plan, in one loop."""
        plan, non_null = self._list_plan(return_type, field_details_list, position_context)
        if plan is not None and isinstance(result, list | tuple):
            try:
                return [self._item(plan, non_null, item) for item in result]
            except Exception:  # noqa: BLE001, S110 - graphql-core's path below reports it
                pass
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _item(self, plan: Plan, non_null: bool, item: Any) -> Any:
        if item is None:
            if non_null:
                raise _Unplain
            return None
        if self.is_awaitable(item):
            raise _Unplain
        return _run(plan, item)

    def _list_plan(
        self, return_type: GraphQLList[Any], field_details_list: Any, position_context: Any
    ) -> tuple[Plan | None, bool]:
        """The plan of a list's items, and whether they may not be null; (None, _) where the
        list takes graphql-core's path (directives such as @stream, middleware, ...)."""
        item_type = return_type.of_type
        non_null = isinstance(item_type, GraphQLNonNull)
        kind = item_type.of_type if non_null else item_type
        if (
            position_context is not None
            or self.middleware_manager
            or not isinstance(kind, GraphQLObjectType)
            or kind.is_type_of is not None
            or any(details.node.directives for details in field_details_list)
        ):
            return None, non_null
        grouped, defers, _ = self.collect_subfields(kind, field_details_list)
        return (None if defers else self._plan(kind, grouped)), non_null

    def _plan(self, object_type: GraphQLObjectType, grouped: Any) -> Plan | None:
        """The compiled plan of a selection (memoized like graphql-core's collected fields: by
        identity, the selection kept alive with it), or None where it is not all plain."""
        plans = self._plans
        if plans is None:
            plans = self._plans = {}
        found = plans.get(id(grouped))
        if found is None:
            found = plans[id(grouped)] = (grouped, self._compile(object_type, grouped))
        return found[1]

    def _compile(self, object_type: GraphQLObjectType, grouped: Any) -> Plan | None:
        plan: list[tuple[str, Plain | None, Any]] = []
        for response_name, details in grouped.items():
            name = details[0].node.name.value
            if name == "__typename":
                plan.append((response_name, None, object_type.name))
                continue
            plain = self._plain_of(object_type, name)
            if plain is None:
                return None
            sub = None
            if not plain.leaf:
                sub_grouped, defers, _ = self.collect_subfields(plain.kind, details)
                sub = None if defers else self._plan(plain.kind, sub_grouped)
                if sub is None:
                    return None
            plan.append((response_name, plain, sub))
        return tuple(plan)

    def _plain_of(self, parent_type: GraphQLObjectType, name: str) -> Plain | None:
        cache = self._plain_cache
        if cache is None:  # the schema's, kept as long as the schema
            cache = self._plain_cache = _plains.setdefault(self.schema, {})
        key = (parent_type.name, name)
        found = cache.get(key, _NOT_PLAIN)
        if found is _NOT_PLAIN:
            field = self.schema.get_field(parent_type, name)
            found = cache[key] = _plain(field, name) if field else None
        return found  # type: ignore[no-any-return]

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        plain = self._plain_of(parent_type, field_details_list[0].node.name.value)
        if plain is not None and not self.middleware_manager:
            try:
                value = _read(plain, source)
            except Exception:  # noqa: BLE001 - the full path below reports it
                value = Undefined
            if value is None or (value is not Undefined and plain.leaf):
                return value
            if value is not Undefined:
                return self._object(plain, value, field_details_list, path, position_context)
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _object(
        self, plain: Plain, value: Any, field_details_list: Any, path: Any, context: Any
    ) -> Any:
        """An object's sub-selection, its errors handled as `execute_field` handles them."""
        try:
            completed = self.collect_and_execute_subfields(
                plain.kind, field_details_list, path, value, context
            )
        except Exception as raw_error:
            self.handle_field_error(raw_error, plain.type, field_details_list, path)
            return None
        if self.is_awaitable(completed):
            return self._settled(completed, plain.type, field_details_list, path)
        return completed

    async def _settled(
        self, completed: Awaitable[Any], type_: GraphQLOutputType, details: Any, path: Any
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, type_, details, path)
            return None

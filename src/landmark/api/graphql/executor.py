"""graphql-core's executor with compiled plans for selections whose values are at hand.

A page of 100 fact sheets with their relations and tags completes ~8,000 fields. graphql-core's
full path builds a `GraphQLResolveInfo` for each, resolves, checks for an awaitable and walks
the completion rules. Most of those values are at hand: attributes of their parents, or what a
loader read before (resolvers.py preloads a page's tags and relations). So each selection is
compiled, once per request, into a plan: nested functions that read, resolve and coerce with no
per-field machinery.
- A field by the default resolver, or a `computed` one (VALUE_OF: a function of its parent), is
  read. Another resolver is called with an `info` and arguments made once for its field nodes;
  an awaitable answer (a loader that has not loaded yet) makes the plan give up.
- A leaf is coerced, an object runs the plan of its selection, an abstract value (`node` of
  `BaseFactSheet`) that of the object type it resolves to, a list each item's.
Anything unusual (an awaitable, null where the type forbids it, a value that does not coerce, an
error, @defer or @stream, middleware, `is_type_of`, an `async def` resolver, a root field) makes
the plan give up, and graphql-core's path answers that field, object or list and reports it as
graphql-core does: values are functions of their parents, so computing them again is safe.
"""

from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any, NoReturn

from graphql import (
    GraphQLAbstractType,
    GraphQLField,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    Undefined,
    default_field_resolver,
    get_nullable_type,
    is_abstract_type,
    is_leaf_type,
)
from graphql.execution.executor import to_nodes
from graphql.execution.incremental.incremental_executor import IncrementalExecutor
from graphql.execution.values import get_argument_values

VALUE_OF = "landmark_value_of"
"""Extension of a field whose resolver needs no `info`: the function source -> raw value."""

Read = Callable[[Any], Any]  # parent -> a field's raw value
Finish = Callable[[Any], Any]  # raw value -> completed value (None, a leaf, a dict, a list)
Answer = Callable[[Any], Any]  # parent -> a field's completed value
Awaitable = Callable[[Any], bool]  # the executor's test for an awaitable


class _Unplain(Exception):
    """A plan met something unusual: graphql-core's path answers instead."""


def _default_value(name: str) -> Read:
    """graphql-core's default resolver, minus calling a callable (the full path does that)."""

    def read(source: Any) -> Any:
        value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
        return Undefined if callable(value) else value

    return read


def _resolved(resolve: Callable[..., Any], info: Any, args: dict[str, Any], awaitable: Any) -> Read:
    """A field's resolver, called as graphql-core would; gives up on an awaitable answer."""

    def read(source: Any) -> Any:
        value = resolve(source, info, **args)
        if awaitable(value):
            _give_up(value)
        return value

    return read


def _give_up(value: Any) -> NoReturn:
    """Leave `value` to graphql-core's path; a coroutine is closed unstarted (that path makes
    its own)."""
    close = getattr(value, "close", None)
    if close is not None:
        close()
    raise _Unplain


def _leaf(coerce: Callable[[Any], Any], non_null: bool) -> Finish:
    """A scalar's or enum's value: coerced; a coercion that answers nothing gives up."""

    def finish(value: Any) -> Any:
        if value is None:
            if non_null:
                raise _Unplain
            return None
        if value is Undefined:
            raise _Unplain
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise _Unplain
        return coerced

    return finish


def _composite(complete: Finish, non_null: bool, awaitable: Awaitable) -> Finish:
    """An object's, abstract value's or list's value, completed by `complete`."""

    def finish(value: Any) -> Any:
        if value is None:
            if non_null:
                raise _Unplain
            return None
        if value is Undefined or awaitable(value):
            raise _Unplain
        return complete(value)

    return finish


def _answer(read: Read, finish: Finish, text: bool) -> Answer:
    """A field's answer. Text (String, ID) is coerced as it is: one call less per such field,
    most of a page's."""
    if text:
        return lambda source: value if (value := read(source)).__class__ is str else finish(value)
    return lambda source: finish(read(source))


# Loops rather than comprehensions: on Python 3.11 a comprehension is a function call of its
# own, per object and list of a page (~5% of its CPU).
def _object(fields: list[tuple[str, Answer]]) -> Finish:
    def run(source: Any) -> dict[str, Any]:
        out = {}
        for name, answer in fields:
            out[name] = answer(source)
        return out

    return run


def _list(item: Finish) -> Finish:
    def run(values: Any) -> list[Any]:
        if not isinstance(values, list | tuple):
            raise _Unplain
        return list(map(item, values))

    return run


_GAVE_UP = object()


def _attempt(plan: Finish | None, value: Any) -> Any:
    """`plan` run on `value`; _GAVE_UP where there is no plan or it gave up (graphql-core's
    path then answers, and reports what made the plan give up)."""
    if plan is None:
        return _GAVE_UP
    try:
        return plan(value)
    except Exception:  # noqa: BLE001
        return _GAVE_UP


class Executor(IncrementalExecutor):
    _plans: dict[tuple[Any, ...], tuple[Any, Any]] | None = None

    # --- where graphql-core's path hands over ---------------------------------------------

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        if position_context is None and not self._is_root(parent_type):
            answer = _attempt(self._field_plan(parent_type, field_details_list), source)
            if answer is not _GAVE_UP:
                return answer
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def collect_and_execute_subfields(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if position_context is None:
            answer = _attempt(self._object_plan(return_type, field_details_list), result)
            if answer is not _GAVE_UP:
                return answer
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
        """A list whose field graphql-core resolved (an `async` resolver's, say), completed
        by its plan."""
        if position_context is None:
            key = ("list", id(field_details_list), return_type.of_type)
            plan = self._memo(key, field_details_list, lambda: self._value_plan(
                return_type, field_details_list, info
            ))  # fmt: skip
            answer = _attempt(plan, result)
            if answer is not _GAVE_UP:
                return answer
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    # --- compiling ----------------------------------------------------------------------------

    def _memo(self, key: tuple[Any, ...], keep: Any, build: Callable[[], Any]) -> Any:
        """Plans by the identity of what they were compiled from (kept alive with them, so
        that an id is not reused), as graphql-core memoizes collected fields."""
        plans = self._plans
        if plans is None:
            plans = self._plans = {}
        found = plans.get(key)
        if found is None:
            found = plans[key] = (keep, build())
        return found[1]

    def _is_root(self, object_type: GraphQLObjectType) -> bool:
        schema = self.schema
        return object_type in (schema.query_type, schema.mutation_type, schema.subscription_type)

    def _object_plan(self, object_type: GraphQLObjectType, field_details_list: Any) -> Any:
        """The plan of an object's selection, or None."""
        if self.middleware_manager or object_type.is_type_of is not None:
            return None
        grouped, defers, _ = self.collect_subfields(object_type, field_details_list)
        if defers or self._is_root(object_type):
            return None
        return self._memo(("object", id(grouped), object_type), grouped, lambda: self._compile(
            object_type, grouped
        ))  # fmt: skip

    def _compile(self, object_type: GraphQLObjectType, grouped: Any) -> Finish | None:
        fields = []
        for response_name, details in grouped.items():
            answer = self._field_plan(object_type, details)
            if answer is None:
                return None
            fields.append((response_name, answer))
        return _object(fields)

    def _field_plan(self, parent_type: GraphQLObjectType, field_details_list: Any) -> Any:
        """How one field of `parent_type` is answered (an Answer), or None."""
        key = ("field", id(field_details_list), parent_type)
        return self._memo(key, field_details_list, lambda: self._compile_field(
            parent_type, field_details_list
        ))  # fmt: skip

    def _compile_field(self, parent_type: GraphQLObjectType, details: Any) -> Answer | None:
        name = details[0].node.name.value
        if name == "__typename":
            return lambda _source: parent_type.name
        field = self.schema.get_field(parent_type, name)
        if field is None or self.middleware_manager:
            return None
        info = self.build_resolve_info(field, to_nodes(details), parent_type, None)  # type: ignore[arg-type]
        read = self._reader(field, name, details, info)
        finish = self._value_plan(field.type, details, info) if read is not None else None
        if read is None or finish is None:
            return None
        kind = get_nullable_type(field.type)
        return _answer(read, finish, text=kind is GraphQLString or kind is GraphQLID)

    def _reader(self, field: GraphQLField, name: str, details: Any, info: Any) -> Read | None:
        if field.resolve is None:
            return _default_value(name) if self.field_resolver is default_field_resolver else None
        value_of = (field.extensions or {}).get(VALUE_OF)
        if value_of is not None and not field.args:
            return value_of  # type: ignore[no-any-return]
        if iscoroutinefunction(field.resolve):
            return None  # always awaitable: no plan would ever answer
        first = details[0]
        try:
            args = get_argument_values(
                field,
                first.node,
                self.variable_values,
                first.fragment_variable_values,
                self.hide_suggestions,
            )
        except Exception:  # noqa: BLE001 - graphql-core's path reports the argument's error
            return None
        return _resolved(field.resolve, info, args, self.is_awaitable)

    def _value_plan(self, type_: GraphQLOutputType, details: Any, info: Any) -> Finish | None:
        """How a value of `type_` is completed, or None."""
        non_null = isinstance(type_, GraphQLNonNull)
        kind: Any = get_nullable_type(type_)
        complete: Finish | None
        if is_leaf_type(kind):
            return _leaf(kind.coerce_output_value, non_null)
        if isinstance(kind, GraphQLObjectType):
            complete = self._object_plan(kind, details)
        elif isinstance(kind, GraphQLList):
            item = None if any(d.node.directives for d in details) else (  # @stream
                self._value_plan(kind.of_type, details, info)
            )  # fmt: skip
            complete = _list(item) if item is not None else None
        elif is_abstract_type(kind) and kind.resolve_type is not None:
            complete = self._abstract(kind, details, info)
        else:
            complete = None
        return _composite(complete, non_null, self.is_awaitable) if complete else None

    def _abstract(self, abstract: GraphQLAbstractType, details: Any, info: Any) -> Finish:
        """An abstract value: the plan of the object type it resolves to (found on first use,
        as graphql-core's `complete_abstract_value` finds it)."""
        resolve_type = abstract.resolve_type
        by_name: dict[str, Finish | None] = {}

        def run(value: Any) -> Any:
            name = resolve_type(value, info, abstract)  # type: ignore[misc]
            if not isinstance(name, str):  # None, or an awaitable: graphql-core's path
                _give_up(name)
            if name not in by_name:
                by_name[name] = self._runtime_plan(abstract, name, details)
            plan = by_name[name]
            if plan is None:
                raise _Unplain
            return plan(value)

        return run

    def _runtime_plan(self, abstract: GraphQLAbstractType, name: str, details: Any) -> Any:
        runtime = self.schema.get_type(name)
        if not isinstance(runtime, GraphQLObjectType):
            return None
        if not self.schema.is_sub_type(abstract, runtime):
            return None
        return self._object_plan(runtime, details)

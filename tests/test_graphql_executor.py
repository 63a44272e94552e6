"""The executor's plans (api/graphql/executor.py) answer exactly as graphql-core's own
executor: values, nulls, errors and their paths, in objects, lists and abstract types, with
resolvers that answer at once, later or not at all."""

import asyncio
from typing import Any

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    execute,
    parse,
)
from graphql.execution.incremental.incremental_executor import IncrementalExecutor

from landmark.api.graphql.common import computed, field
from landmark.api.graphql.executor import Executor


class Row:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def shout(self, _info: Any) -> str:  # a callable attribute: the default resolver calls it
        return "HEY"


Part = GraphQLObjectType(
    "Part",
    {
        "code": GraphQLField(GraphQLNonNull(GraphQLString)),
        "weight": computed(GraphQLInt, lambda part: part["weight"]),
    },
)
Named = GraphQLInterfaceType(
    "Named",
    {"name": GraphQLField(GraphQLString)},
    resolve_type=lambda value, *_: value.kind if hasattr(value, "kind") else "Item",
)


def _fails(_row: Any, _info: Any) -> str:
    raise ValueError("no such value")


Gadget = GraphQLObjectType(
    "Gadget",
    {
        "name": GraphQLField(GraphQLString),
        "volts": GraphQLField(GraphQLNonNull(GraphQLInt)),
        "words": GraphQLField(GraphQLList(GraphQLNonNull(GraphQLString))),
    },
    interfaces=[Named],
)
Item = GraphQLObjectType(
    "Item",
    lambda: {
        "part": GraphQLField(Part),  # an object by the default resolver
        "mainPart": computed(GraphQLNonNull(Part), lambda row: row.part),
        "id": field(GraphQLNonNull(GraphQLID), "key"),
        "name": GraphQLField(GraphQLString),  # the default resolver
        "size": computed(GraphQLInt, lambda row: row.size),
        "label": computed(GraphQLNonNull(GraphQLString), lambda row: row.label),
        "shout": GraphQLField(GraphQLString),
        "broken": computed(GraphQLString, lambda row: row.missing),  # raises AttributeError
        "parts": GraphQLField(GraphQLList(Part), resolve=lambda row, _: [row.part, None]),
        "repeat": GraphQLField(  # a resolver with an argument
            GraphQLString,
            args={"times": GraphQLArgument(GraphQLInt)},
            resolve=lambda row, _, times=2: (row.label or "-") * times,
        ),
        "partLater": GraphQLField(Part, resolve=lambda row, _: _later(row.part)),
        "fails": GraphQLField(GraphQLString, resolve=_fails),
        "friend": GraphQLField(Named, resolve=lambda row, _: GADGETS[0] if row.size else row),
    },
    interfaces=[Named],
)


async def _later(row: Any) -> Any:
    return row


SCHEMA = GraphQLSchema(
    GraphQLObjectType(
        "Query",
        {
            "items": GraphQLField(GraphQLList(Item), resolve=lambda *_: ROWS),
            "strict": GraphQLField(  # a null item where none is allowed
                GraphQLList(GraphQLNonNull(Item)), resolve=lambda *_: [ROWS[0], None, ROWS[1]]
            ),
            "later": GraphQLField(  # items that are awaitables
                GraphQLList(Item), resolve=lambda *_: [_later(row) for row in ROWS]
            ),
            "named": GraphQLField(GraphQLList(Named), resolve=lambda *_: [*ROWS[:3], *GADGETS]),
            "odd": GraphQLField(GraphQLList(Named), resolve=lambda *_: [GADGETS[0], *ODD]),
        },
    ),
    GraphQLObjectType(
        "Mutation",
        {"bump": GraphQLField(GraphQLList(Item), resolve=lambda *_: _bump())},
    ),
    types=[Gadget],
)
BUMPS: list[int] = []


def _bump() -> list[Any]:
    BUMPS.append(1)
    return ROWS


class Device:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values, kind="Gadget")


GADGETS = [
    Device(name="radio", volts=9, words=["on", "off"]),
    Device(name="lamp", volts=None, words=None),  # volts may not be null
    Device(name="fan", volts=12, words=["on", None]),  # nor may a word
]
ODD = [Device(name="part"), Device(name="none")]  # resolve to a type not Named, and to none
ODD[0].kind, ODD[1].kind = "Part", None
ROWS = [
    Row(key=1, name="one", size=3, label="a", part={"code": "p1", "weight": 7}),
    Row(key=2, name=None, size="12", label="b", part=None),  # a string that coerces to Int
    Row(key=3, name="three", size="many", label="c", part={"code": None, "weight": "x"}),
    Row(key=None, name="four", size=None, label=None, part={"weight": 1}),  # nulls forbidden
    {"key": "5", "name": "five", "size": 5, "label": "e", "part": {"code": "p5", "weight": 5}},
]


def run(query: str, executor: type[IncrementalExecutor]) -> Any:
    result = execute(SCHEMA, parse(query), executor_class=executor)
    if hasattr(result, "__await__"):
        result = asyncio.run(_awaited(result))
    errors = sorted((e.message, tuple(e.path or ())) for e in result.errors or [])  # type: ignore[union-attr]
    return result.data, errors  # type: ignore[union-attr]


async def _awaited(result: Any) -> Any:
    return await result


@pytest.mark.parametrize(
    "query",
    [
        "{ items { id name size } }",
        "{ items { label } }",
        "{ items { id label name } }",
        "{ items { shout broken } }",
        "{ items { a: name b: name size } }",
        "{ items { __typename ... on Item { name } } }",
        "{ items { part { code weight } } }",
        "{ items { id mainPart { code } } }",
        "{ items { name mainPart { weight } part { weight } } }",
        "{ items { __typename a: id b: id part { __typename code } } }",
        "{ items { id part @include(if: false) { code } name @skip(if: true) } }",
        "{ items { ... on Item { id } ...more } } fragment more on Item { part { code } }",
        "{ items { name parts { code weight } } }",
        "{ items { parts { weight } } }",
        "{ strict { name } }",
        "{ strict { id name } }",
        "{ later { id name } }",
        "{ later { size label } }",
        "{ later { name } }",
        "{ items { name parts @include(if: true) { weight } } }",
        "{ items { repeat a: repeat(times: 3) b: repeat(times: 0) } }",
        "{ items { id partLater { code } } }",
        "{ items { id fails name } }",
        "{ items { friend { __typename name ... on Gadget { volts words } } } }",
        "{ named { __typename name } }",
        "{ named { name ... on Gadget { volts } ... on Item { id label } } }",
        "{ named { ... on Gadget { words } } }",
        "{ odd { name } }",
        "query($t: Int) { items { repeat(times: $t) } }",
    ],
)
def test_same_answer_as_graphql_core(query: str) -> None:
    assert run(query, Executor) == run(query, IncrementalExecutor)


def test_the_errors_are_there() -> None:
    data, errors = run("{ items { id size label } }", Executor)
    assert data["items"][0] == {"id": "1", "size": 3, "label": "a"}
    assert data["items"][1]["size"] == 12
    assert data["items"][3] is None  # a non-null field was null: the item is null
    messages = [message for message, _ in errors]
    assert any("Int cannot represent" in m for m in messages)
    assert ("Cannot return null for non-nullable field Item.id.", ("items", 3, "id")) in errors


def test_variables_reach_the_plans() -> None:
    query = parse("query($t: Int) { items { repeat(times: $t) } }")
    result = execute(SCHEMA, query, variable_values={"t": 3}, executor_class=Executor)
    assert result.data["items"][0] == {"repeat": "aaa"}  # type: ignore[index]


def test_a_mutation_runs_once_whatever_its_selection_meets() -> None:
    """Root fields are never planned: a selection that takes graphql-core's path (an item with
    a null where none is allowed) does not call the mutation's resolver again."""
    BUMPS.clear()
    data, errors = run("mutation { bump { id label } }", Executor)
    assert BUMPS == [1]
    assert data["bump"][3] is None and errors

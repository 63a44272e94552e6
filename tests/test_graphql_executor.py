"""The executor's shortcuts (api/graphql/executor.py) answer exactly as graphql-core's own
executor: values, nulls, errors and their paths, in objects and in lists."""

import asyncio
from typing import Any

import pytest
from graphql import (
    GraphQLField,
    GraphQLID,
    GraphQLInt,
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
Item = GraphQLObjectType(
    "Item",
    {
        "part": GraphQLField(Part),  # an object by the default resolver
        "mainPart": computed(GraphQLNonNull(Part), lambda row: row.part),
        "id": field(GraphQLNonNull(GraphQLID), "key"),
        "name": GraphQLField(GraphQLString),  # the default resolver
        "size": computed(GraphQLInt, lambda row: row.size),
        "label": computed(GraphQLNonNull(GraphQLString), lambda row: row.label),
        "shout": GraphQLField(GraphQLString),
        "broken": computed(GraphQLString, lambda row: row.missing),  # raises AttributeError
        "parts": GraphQLField(GraphQLList(Part), resolve=lambda row, _: [row.part, None]),
    },
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
        },
    )
)
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

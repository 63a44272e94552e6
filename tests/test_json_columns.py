"""JSON columns are read with orjson (core/db.py json_loads) only where it reads as json does."""

import json

import pytest

from landmark.core.db import json_loads


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "b": [1.5, null, true], "c": "x"}',
        '{"big": 123456789012345678901234567890}',  # orjson would make it a float
        '{"n": -9223372036854775809}',
        '"\\ud800"',  # a lone surrogate: orjson refuses it
        '{"id": "12345678901234567890123"}',  # long digits in a string
        "[]",
    ],
)
def test_reads_as_json_does(text: str) -> None:
    assert json_loads(text) == json.loads(text)
    assert json_loads(text.encode()) == json.loads(text)
    assert type(json_loads(text)) is type(json.loads(text))


def test_big_integers_stay_integers() -> None:
    value = json_loads('{"big": 123456789012345678901234567890}')["big"]
    assert isinstance(value, int) and value == 123456789012345678901234567890

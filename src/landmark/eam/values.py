"""Typed field values: parsing LeanIX patch values (strings, JSON-encoded when structured)
against the data model, and telling whether a value counts as filled."""

import json
import math
from datetime import date
from typing import Any

from landmark.eam.errors import invalid
from landmark.eam.metamodel import FieldDef

MAX_TEXT = 100_000


def decode_json(path: str, raw: str | None) -> Any:
    """A JSON-encoded patch value; 422 naming `path` when it is not JSON."""
    if raw is None:
        raise invalid(path, "INVALID_VALUE", f"{path}: a value is required")
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        raise invalid(path, "INVALID_VALUE", f"{path}: value is not valid JSON") from None


def _text(path: str, raw: Any) -> str:
    if not isinstance(raw, str) or "\x00" in raw or len(raw) > MAX_TEXT:
        raise invalid(path, "INVALID_VALUE", f"{path}: value must be a string")
    return raw


def _unquote(raw: str) -> str:
    """Select keys and dates arrive bare ("active"); a JSON-quoted one ("\\"active\\"") is
    accepted too."""
    if raw.startswith('"'):
        try:
            value = json.loads(raw)
        except ValueError:
            return raw
        return value if isinstance(value, str) else raw
    return raw


def parse_date(path: str, raw: Any) -> str:
    try:
        return date.fromisoformat(_unquote(_text(path, raw))).isoformat()
    except ValueError:
        raise invalid(path, "INVALID_VALUE", f"{path}: {raw!r} is not a yyyy-mm-dd date") from None


def _key(path: str, f: FieldDef, raw: Any) -> str:
    key = _unquote(_text(path, raw))
    if key not in (f.values or ()):
        allowed = ", ".join(f.values or ())
        raise invalid(path, "INVALID_VALUE", f"{key!r} is not a value of {f.name} ({allowed})")
    return key


def _number(path: str, raw: Any, integer: bool) -> float | int:
    try:
        value = float(raw) if not integer else int(str(raw).strip())
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise invalid(path, "INVALID_VALUE", f"{path}: {raw!r} is not {kind}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise invalid(path, "INVALID_VALUE", f"{path}: {raw!r} is not a finite number")
    return value


def parse_lifecycle(path: str, f: FieldDef, data: Any) -> dict[str, Any]:
    """{"phases": [{"phase", "startDate"}]} with known phases, each once, in model order."""
    phases = data.get("phases") if isinstance(data, dict) else None
    if not isinstance(phases, list):
        raise invalid(path, "INVALID_VALUE", f'{path}: expected {{"phases": [...]}}')
    seen: dict[str, str] = {}
    for item in phases:
        if not isinstance(item, dict):
            raise invalid(path, "INVALID_VALUE", f"{path}: a phase must be an object")
        phase = _key(path, f, item.get("phase"))
        if phase in seen:
            raise invalid(path, "INVALID_VALUE", f"{path}: phase {phase!r} given twice")
        seen[phase] = parse_date(path, item.get("startDate"))
    return lifecycle_of(f, seen)


def lifecycle_of(f: FieldDef, dates: dict[str, str]) -> dict[str, Any]:
    order = list(f.values or ())
    phases = sorted(dates.items(), key=lambda kv: order.index(kv[0]))
    return {"phases": [{"phase": p, "startDate": d} for p, d in phases]}


def _object(path: str, raw: str | None, key: str) -> dict[str, Any]:
    """An external id or location: a JSON object with `key`, or the bare string for `key`."""
    if raw is not None and not raw.lstrip().startswith("{"):
        return {key: _text(path, raw)}
    data = decode_json(path, raw)
    if not isinstance(data, dict) or not isinstance(data.get(key), str):
        raise invalid(path, "INVALID_VALUE", f"{path}: expected an object with {key!r}")
    return {k: v for k, v in data.items() if k != "type" and v is not None}


def parse_field(path: str, f: FieldDef, raw: str | None) -> Any:
    """The stored value of field `f` from a patch value; 422 naming `path` when it is wrong."""
    if f.type == "STRING":
        return _text(path, raw)
    if f.type == "SINGLE_SELECT":
        return _key(path, f, raw)
    if f.type == "MULTIPLE_SELECT":
        data = decode_json(path, raw) if raw and raw.startswith("[") else [raw]
        if not isinstance(data, list):
            raise invalid(path, "INVALID_VALUE", f"{path}: expected a list of values")
        return sorted({_key(path, f, v) for v in data}, key=(f.values or []).index)
    if f.type in ("DOUBLE", "INTEGER"):
        return _number(path, raw, f.type == "INTEGER")
    if f.type == "DATE":
        return parse_date(path, raw)
    if f.type == "LIFECYCLE":
        return parse_lifecycle(path, f, decode_json(path, raw))
    if f.type == "EXTERNAL_ID":
        return _object(path, raw, "externalId")
    return _object(path, raw, "rawAddress")  # LOCATION


def filled(value: Any) -> bool:
    if isinstance(value, dict) and "phases" in value:
        return bool(value["phases"])
    return value not in (None, "", [], {})

"""Reading field values from API input (JSON bodies, CSV cells) and writing them back out.

Input follows Xurrent's data types: booleans accept `1, t, y, true, yes, on` (any case) as true,
decimals arrive as numbers or strings, dates as `yyyy-mm-dd`, datetimes as ISO 8601.
"""

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from landmark.cmdb.schema import Field

TRUTHY = {"1", "t", "y", "true", "yes", "on"}
FALSY = {"0", "f", "n", "false", "no", "off", ""}


class BadValue(ValueError):
    """A value that does not fit its field; the message is shown with the field's name."""


def parse_value(field: Field, raw: Any) -> Any:
    """The Python value for `raw`, or BadValue. None (or "" for non-strings) clears the field."""
    if raw is None or (raw == "" and field.kind not in ("string", "text")):
        return None
    parse = _PARSERS[field.kind]
    return parse(field, raw)


def _string(field: Field, raw: Any) -> str | None:
    # Numbers are taken as their text (a script may send a serial number as 12345, and Xurrent
    # accepts it); booleans, arrays and objects are not strings.
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise BadValue("must be a string")
    text = str(raw)
    if "\x00" in text:  # PostgreSQL text cannot hold NUL
        raise BadValue("must not contain NUL characters")
    if field.max_length is not None and len(text) > field.max_length:
        raise BadValue(f"is too long (maximum is {field.max_length} characters)")
    return text if text != "" else None


INTEGER_LIMIT = 2**31  # the columns are 32-bit integers on both back ends


def _integer(field: Field, raw: Any) -> int:
    if isinstance(raw, bool):
        raise BadValue("must be an integer")
    if isinstance(raw, str) and re.fullmatch(r"\s*[+-]?\d{1,10}\s*", raw):
        raw = int(raw)
    if not isinstance(raw, int):
        raise BadValue("must be an integer")
    if not -INTEGER_LIMIT <= raw < INTEGER_LIMIT:
        raise BadValue(f"must be between {-INTEGER_LIMIT} and {INTEGER_LIMIT - 1}")
    return raw


def _decimal(field: Field, raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise BadValue("must be a number")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation as exc:
        raise BadValue("must be a number") from exc
    if not value.is_finite() or abs(value) >= Decimal(10) ** 12:
        raise BadValue("must be a number below 1,000,000,000,000")
    return value.quantize(Decimal("0.01"))


def _boolean(field: Field, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in TRUTHY:
        return True
    if text in FALSY:
        return False
    raise BadValue("must be true or false")


def _date(field: Field, raw: Any) -> date:
    try:
        return date.fromisoformat(str(raw))
    except ValueError as exc:
        raise BadValue("must be a date (yyyy-mm-dd)") from exc


def _datetime(field: Field, raw: Any) -> datetime:
    try:
        value = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadValue("must be a date and time (ISO 8601 with offset)") from exc
    if value.tzinfo is None:
        raise BadValue("must have a time zone offset (e.g. Z or +02:00)")
    return value


def _enum(field: Field, raw: Any) -> str:
    assert field.values is not None
    if raw not in field.values:
        raise BadValue(f"is not one of: {', '.join(field.values)}")
    return str(raw)


def _reference(field: Field, raw: Any) -> int:
    try:
        return _integer(field, raw)
    except BadValue as exc:
        raise BadValue("must be the id of a record") from exc


def _strings(field: Field, raw: Any) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(v, str) and len(v) <= 255 for v in raw):
        raise BadValue("must be an array of strings (each at most 255 characters)")
    return list(raw)


def _custom_fields(field: Field, raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not all(
        isinstance(v, dict) and isinstance(v.get("id"), str) and "value" in v for v in raw
    ):
        raise BadValue('must be an array of {"id": ..., "value": ...}')
    return [{"id": v["id"], "value": v["value"]} for v in raw]


def _aggregated(field: Field, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadValue("must be an object")
    return raw


def _attachments(field: Field, raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not all(
        isinstance(v, dict) and isinstance(v.get("key"), str) for v in raw
    ):
        raise BadValue('must be an array of {"key": ..., "filesize": ..., "inline": ...}')
    return [
        {"key": v["key"], "filesize": v.get("filesize"), "inline": bool(v.get("inline"))}
        for v in raw
        if not v.get("_destroy")
    ]


_PARSERS = {
    "string": _string,
    "text": _string,
    "integer": _integer,
    "decimal": _decimal,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "enum": _enum,
    "reference": _reference,
    "strings": _strings,
    "json": _custom_fields,
    "aggregated": _aggregated,
    "attachments": _attachments,
}


def plain(value: Any) -> Any:
    """A JSON value for output and the audit trail: decimals as strings, dates in ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value

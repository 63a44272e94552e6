"""The columns of import and export files: human-readable headers derived from the field catalogue.

A field `support_team` is the column `Support Team`; `sourceID` is `Source ID`; `serial_nr` is
`Serial Number`. A reference `x` may be given by its display value (`X`), by id (`X ID`), or by
its source pair (`X Source` and `X Source ID`). `ID` matches the record itself.
"""

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

from landmark.cmdb.schema import Field, Resource

Mode = Literal["value", "name", "id", "source", "source_id"]
# The kinds a CSV cell holds; arrays, JSON and attachments are left to the API.
CELL_KINDS = ("string", "text", "integer", "decimal", "boolean", "date", "datetime", "enum")
WORDS = {"nr": "Number", "id": "ID", "ci": "CI", "po": "PO", "of": "of", "uri": "URI"}


@cache
def header_name(name: str) -> str:
    """The column header of an API field name: `support_team` -> `Support Team`."""
    words = re.sub(r"ID$", "_id", name).split("_")
    return " ".join(WORDS.get(w.lower(), w.capitalize()) for w in words if w)


@dataclass(frozen=True)
class Column:
    header: str
    field: Field
    mode: Mode


@cache
def columns(resource: Resource) -> tuple[Column, ...]:
    """Every column an import of `resource` reads and its export writes, in export order."""
    result: list[Column] = []
    for field in resource.fields:
        title = header_name(field.name)
        if field.name == "id":
            result.append(Column("ID", field, "id"))
        elif field.readonly:
            continue
        elif field.kind == "reference":
            result += [
                Column(title, field, "name"),
                Column(f"{title} ID", field, "id"),
                Column(f"{title} Source", field, "source"),
                Column(f"{title} Source ID", field, "source_id"),
            ]
        elif field.kind in CELL_KINDS:
            result.append(Column(title, field, "value"))
    return tuple(result)


@cache
def by_header(resource: Resource) -> dict[str, Column]:
    """The columns of `resource` by lower-case header."""
    return {c.header.lower(): c for c in columns(resource)}

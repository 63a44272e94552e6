"""One query engine for every collection: Xurrent filters, sorting and pagination.

A collection describes what it allows in a `Listing`; `parse_list_query` turns the query string
into a `ListQuery` (or a 400 naming the parameter), and `fetch_page` runs it on a statement that
is already scoped to the account. Grammar: reference/xurrent-api.md §1.5, §1.6, §1.8.

Order: every sort key, then the id as the final tie-breaker. NULLs sort as the largest value on
both back ends (ASC NULLS LAST, DESC NULLS FIRST): that is PostgreSQL's native B-tree order, so a
plain index on the column still serves it there. Non-nullable columns get a plain ORDER BY.

Pagination: `page=N` uses OFFSET; the `search_after` / `search_before` cursors use keyset
conditions (rows after the cursor row in the sort order), so a deep page costs what page 1 costs.
A cursor is base64url JSON `{"offset": <0-based index of its row>, "cursor": [<sort values>, id]}`,
as Xurrent's; the offset only serves X-Pagination-Current-Page. Cursors are not signed: changing
one only moves where the page starts, never past the account scope or the filters.
"""

import base64
import binascii
import enum
import json
import math
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    SmallInteger,
    and_,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.core.errors import BadRequest, InvalidParameter

Kind = Literal[
    "integer", "decimal", "string", "text", "enum", "boolean", "date", "datetime", "reference"
]

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
RESERVED = frozenset({"page", "per_page", "sort", "fields", "search_after", "search_before"})
ORDERED_KINDS = frozenset({"integer", "decimal", "date", "datetime"})  # accept < <= > >= ranges
LIST_KINDS = frozenset({"integer", "enum", "reference"})  # a comma separates an in-list
TEXT_KINDS = frozenset({"string", "text"})  # "empty" also means ''
TRUTHY = frozenset({"1", "t", "y", "true", "yes", "on"})  # Xurrent's input booleans (§1.4)
FALSY = frozenset({"0", "f", "n", "false", "no", "off"})


@dataclass(frozen=True)
class Attribute:
    """One filterable and/or sortable field of a collection."""

    name: str  # the API name, e.g. "label", "support_team", "created_at"
    column: Any  # a SQLAlchemy column expression, e.g. CI.label or CI.support_team_id
    kind: Kind
    case_insensitive: bool = False  # label and serial_nr compare without case
    values: tuple[str, ...] | None = None  # allowed values of an enum (another one -> 400)


@dataclass(frozen=True)
class Listing:
    """What a collection allows. A reference filter "product" is also reachable as "product_id";
    "id" (and "ids") can always be filtered and sorted on, through `id_column`."""

    filters: dict[str, Attribute]
    sorts: dict[str, Attribute]
    default_sort: tuple[str, ...]  # e.g. ("label",) or ("-id",)
    id_column: Any  # the model's integer id: the final tie-breaker of every order


@dataclass(frozen=True)
class Cursor:
    """A decoded search_after / search_before: the values of one row's sort keys (id last)."""

    offset: int  # 0-based index of that row in the whole ordered collection
    values: tuple[Any, ...]


@dataclass(frozen=True)
class ListQuery:
    where: list[Any]  # SQLAlchemy boolean clauses from the filters
    order: list[tuple[Attribute, bool]]  # (attribute, descending), id last as the tie-breaker
    per_page: int
    page: int | None  # ?page=N (1-based); None with a cursor or without paging params
    after: Cursor | None  # decoded ?search_after
    before: Cursor | None  # decoded ?search_before


@dataclass
class Page:
    rows: list[Any]
    per_page: int
    current_page: int
    total_entries: int
    total_pages: int
    next_cursor: str | None  # opaque, for rel="next" (None on the last page)
    prev_cursor: str | None  # opaque, for rel="prev" (None on the first page)


# ---------------------------------------------------------------------------- parsing


def parse_list_query(
    listing: Listing, params: Sequence[tuple[str, str]], *, ignore: Collection[str] = ()
) -> ListQuery:
    """The filters, order and page of a collection request, from its URL-decoded query items.

    Raises InvalidParameter (400) naming the parameter for anything it cannot use."""
    where = [
        _filter_clause(listing, key, value)
        for key, value in params
        if key not in RESERVED and key not in ignore
    ]
    last = {key: value for key, value in params if key in RESERVED}
    order = _parse_order(listing, last.get("sort", ""))
    after = _parse_cursor("search_after", last.get("search_after", ""), order)
    before = _parse_cursor("search_before", last.get("search_before", ""), order)
    if after and before:
        raise InvalidParameter("search_before", "Use either search_after or search_before")
    page = None if after or before else _parse_page(last.get("page"))
    return ListQuery(where, order, _parse_per_page(last.get("per_page")), page, after, before)


def _invalid(param: str, text: str) -> InvalidParameter:
    shown = text if len(text) <= 100 else text[:100] + "..."
    return InvalidParameter(param, f"Invalid value for filter {param}: '{shown}'")


def _parse_per_page(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_PER_PAGE
    if not re.fullmatch(r"[0-9]{1,9}", text) or int(text) < 1:
        raise InvalidParameter("per_page", f"Invalid value for per_page: '{text[:100]}'")
    return min(int(text), MAX_PER_PAGE)  # Xurrent caps it rather than refusing


def _parse_page(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not re.fullmatch(r"[0-9]{1,9}", text) or int(text) < 1:
        raise InvalidParameter("page", f"Invalid value for page: '{text[:100]}'")
    return int(text)


def _id_attribute(listing: Listing) -> Attribute:
    return Attribute("id", listing.id_column, "integer")


def _parse_order(listing: Listing, text: str) -> list[tuple[Attribute, bool]]:
    names = [name for name in text.split(",") if name] or list(listing.default_sort)
    unknown = [name.lstrip("-") for name in names if _sort_attribute(listing, name) is None]
    if unknown:
        message = f"Sorting not allowed on fields: {', '.join(unknown)}"
        raise BadRequest(message)  # Xurrent's exact body: the message alone
    order: list[tuple[Attribute, bool]] = []
    for name in names:
        attribute = _sort_attribute(listing, name)
        assert attribute is not None
        if all(attribute.name != seen.name for seen, _ in order):
            order.append((attribute, name.startswith("-")))
    if all(attribute.name != "id" for attribute, _ in order):
        # Same direction as the last key, so "-created_at" reads newest first throughout.
        order.append((_id_attribute(listing), order[-1][1] if order else False))
    return order


def _sort_attribute(listing: Listing, name: str) -> Attribute | None:
    name = name.removeprefix("-")
    if name in listing.sorts:
        return listing.sorts[name]
    return _id_attribute(listing) if name == "id" else None


def _filter_attribute(listing: Listing, name: str) -> Attribute:
    name = "id" if name == "ids" else name
    attribute = listing.filters.get(name)
    if attribute is None and name.endswith("_id"):
        reference = listing.filters.get(name.removesuffix("_id"))
        if reference is not None and reference.kind == "reference":
            attribute = reference
    if attribute is None and name == "id":
        attribute = _id_attribute(listing)
    if attribute is None:
        raise InvalidParameter(name, f"Unknown filter: {name[:100]}")
    return attribute


# ---------------------------------------------------------------------------- filters


def _filter_clause(listing: Listing, key: str, text: str) -> ColumnElement[bool]:
    """One `?f=...` (or `?f!=...`) as a boolean clause; §1.6 operators."""
    negate = key.endswith("!")  # the "f!=v" form: the "!" ends up in the key
    name = key.removesuffix("!")
    attribute = _filter_attribute(listing, name)
    value = text
    if value.startswith("!"):
        negate, value = True, value[1:]
    if value.startswith("\\!"):
        value = value[1:]  # an escaped literal "!", as in "\\!v" or "!\\!v"
    column = attribute.column
    if value == "":
        return _present(attribute) if negate else _empty(attribute)
    try:
        clause = _match(attribute, value)
    except (ValueError, ArithmeticError) as error:
        raise _invalid(name, text) from error
    # "Not v" also holds for rows without a value: the complement of what `?f=v` returns.
    return or_(column.is_(None), not_(clause)) if negate else clause


def _empty(attribute: Attribute) -> ColumnElement[bool]:
    column = attribute.column
    if attribute.kind in TEXT_KINDS:
        return or_(column.is_(None), column == "")
    return column.is_(None)


def _present(attribute: Attribute) -> ColumnElement[bool]:
    column = attribute.column
    if attribute.kind in TEXT_KINDS:
        return and_(column.is_not(None), column != "")
    return column.is_not(None)


_BOUNDS = re.compile(r"(?:(>=?)([^<>]+))?(?:(<=?)([^<>]+))?")
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    ">": lambda column, value: column > value,
    ">=": lambda column, value: column >= value,
    "<": lambda column, value: column < value,
    "<=": lambda column, value: column <= value,
}


def _match(attribute: Attribute, value: str) -> ColumnElement[bool]:
    column = attribute.column
    if attribute.kind in ORDERED_KINDS:
        bounds = _BOUNDS.fullmatch(value)
        if bounds and (bounds[1] or bounds[3]):
            pairs = [(bounds[1], bounds[2]), (bounds[3], bounds[4])]
            return and_(
                *(
                    _COMPARE[op](column, _parse_value(attribute, operand))
                    for op, operand in pairs
                    if op
                )
            )
    if attribute.kind in LIST_KINDS and "," in value:
        return column.in_([_parse_value(attribute, item) for item in value.split(",")])
    parsed = _parse_value(attribute, value)
    if attribute.case_insensitive:
        # lower() on both sides, both computed by the database (SQLite's lower() only folds
        # ASCII), so that an expression index such as
        #   CREATE INDEX ix_cis_account_id_lower_label ON cis (account_id, lower(label))
        # serves the filter on PostgreSQL.
        return func.lower(column) == func.lower(literal(parsed, column.type))
    return column == parsed


def _parse_value(attribute: Attribute, text: str) -> Any:
    value = _PARSERS[attribute.kind](text, attribute.column)
    if attribute.values is not None and value not in attribute.values:
        raise ValueError(text)
    return value


def _parse_integer(text: str, column: Any) -> int:
    if not re.fullmatch(r"[+-]?[0-9]{1,19}", text):
        raise ValueError(text)
    value, limit = int(text), _integer_limit(column)
    if not -limit <= value < limit:  # PostgreSQL refuses an out-of-range parameter outright
        raise ValueError(text)
    return value


def _integer_limit(column: Any) -> int:
    kind = getattr(column, "type", None)
    if isinstance(kind, BigInteger):
        return 2**63
    return 2**15 if isinstance(kind, SmallInteger) else 2**31


def _parse_decimal(text: str, column: Any) -> Decimal:
    if not re.fullmatch(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)", text):
        raise ValueError(text)
    return Decimal(text)


def _parse_string(text: str, column: Any) -> str:
    if "\x00" in text:  # PostgreSQL text cannot hold NUL
        raise ValueError(text)
    return text


def _parse_boolean(text: str, column: Any) -> bool:
    if text.lower() in TRUTHY:
        return True
    if text.lower() in FALSY:
        return False
    raise ValueError(text)


def _parse_date(text: str, column: Any) -> date:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        raise ValueError(text)
    return date.fromisoformat(text)


_ISO_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.,]+(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?"
)


def _parse_datetime(text: str, column: Any) -> datetime:
    """ISO 8601 with Z or an offset; a bare date or a time without offset is taken as UTC."""
    if not _ISO_DATETIME.fullmatch(text):
        raise ValueError(text)
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "integer": _parse_integer,
    "reference": _parse_integer,
    "decimal": _parse_decimal,
    "string": _parse_string,
    "text": _parse_string,
    "enum": _parse_string,
    "boolean": _parse_boolean,
    "date": _parse_date,
    "datetime": _parse_datetime,
}


# ---------------------------------------------------------------------------- cursors


def encode_cursor(offset: int, values: Sequence[Any]) -> str:
    """The opaque search_after / search_before value for a row (unpadded base64url JSON)."""
    body = {"offset": offset, "cursor": [_jsonable(value) for value in values]}
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, Decimal | date):  # datetime is a date too
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    return value


def _parse_cursor(param: str, text: str, order: list[tuple[Attribute, bool]]) -> Cursor | None:
    if text == "":
        return None
    try:
        if len(text) > 4096:  # no real cursor is that long; do not decode it
            raise ValueError("cursor length")
        return _decode_cursor(text, [attribute for attribute, _ in order])
    except (ValueError, TypeError, ArithmeticError, RecursionError, binascii.Error) as error:
        raise InvalidParameter(param, f"Invalid value for {param}") from error


def _decode_cursor(text: str, attributes: list[Attribute]) -> Cursor:
    # Either base64 alphabet, padded or not; anything else is refused, never skipped.
    standard = text.replace("-", "+").replace("_", "/").rstrip("=")
    raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    body = json.loads(raw)
    if not isinstance(body, dict) or set(body) != {"offset", "cursor"}:
        raise ValueError("cursor shape")
    offset, values = body["offset"], body["cursor"]
    if type(offset) is not int or offset < 0 or not isinstance(values, list):
        raise ValueError("cursor shape")
    if len(values) != len(attributes) or values[-1] is None:  # the id is never null
        raise ValueError("cursor length")
    return Cursor(offset, tuple(map(_cursor_value, attributes, values)))


def _cursor_value(attribute: Attribute, value: Any) -> Any:
    if value is None:
        return None
    kind = attribute.kind
    if kind in ("integer", "reference") and type(value) is int:
        return _parse_integer(str(value), attribute.column)
    if kind == "boolean" and type(value) is bool:
        return value
    if not isinstance(value, str):
        raise TypeError("cursor value")
    if kind in ("decimal", "date", "datetime"):
        parsed = _PARSERS[kind](value, attribute.column)
        if isinstance(parsed, Decimal) and not parsed.is_finite():
            raise ValueError(value)
        return parsed
    if kind in ("string", "text", "enum"):
        return _parse_string(value, attribute.column)
    raise TypeError("cursor value")


# ---------------------------------------------------------------------------- fetching


@dataclass(frozen=True)
class _Key:
    """One ORDER BY key in the direction it is walked."""

    column: Any
    descending: bool
    nullable: bool

    def order_by(self) -> Any:
        clause = self.column.desc() if self.descending else self.column.asc()
        if not self.nullable:
            return clause
        return clause.nulls_first() if self.descending else clause.nulls_last()

    def equal(self, value: Any) -> ColumnElement[bool]:
        return self.column.is_(None) if value is None else self.column == value

    def beyond(self, value: Any) -> ColumnElement[bool]:
        """Rows strictly after `value` in this key's order (NULLs are the largest)."""
        if value is None:
            return self.column.is_not(None) if self.descending else false()
        if self.descending:
            return self.column < value
        return self._or_null(self.column > value)

    def at_or_beyond(self, value: Any) -> ColumnElement[bool]:
        """A looser bound than `beyond` that a planner can serve with a range scan."""
        if value is None:
            return true() if self.descending else self.column.is_(None)
        if self.descending:
            return self.column <= value
        return self._or_null(self.column >= value)

    def _or_null(self, clause: ColumnElement[bool]) -> ColumnElement[bool]:
        """Ascending, NULLs come after every value."""
        return or_(clause, self.column.is_(None)) if self.nullable else clause


def _nullable(column: Any) -> bool:
    element = column.__clause_element__() if hasattr(column, "__clause_element__") else column
    return bool(getattr(element, "nullable", True))  # an expression may always be NULL


def _keys(query: ListQuery, reverse: bool) -> list[_Key]:
    return [
        _Key(attribute.column, descending != reverse, _nullable(attribute.column))
        for attribute, descending in query.order
    ]


def _keyset(keys: list[_Key], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows after `values` in the order of `keys`, expanded as (k1 > v1) OR (k1 = v1 AND k2 > v2)
    OR ...: unlike a row-value comparison it works with mixed directions and NULLs."""
    branches = [
        and_(
            *(key.equal(value) for key, value in zip(keys[:i], values[:i], strict=True)),
            keys[i].beyond(values[i]),
        )
        for i in range(len(keys))
    ]
    return and_(keys[0].at_or_beyond(values[0]), or_(*branches))


async def fetch_page(
    session: AsyncSession, select_stmt: Select[Any], listing: Listing, query: ListQuery
) -> Page:
    """One page of `select_stmt` (already scoped to the account) filtered, ordered and paged by
    `query`, with the filtered total. Rows are what `select_stmt` selects (an entity alone
    comes back as the entity itself)."""
    filtered = select_stmt.where(*query.where)
    total = await _count(session, filtered, listing)
    width = len(select_stmt.column_descriptions)  # the sort values follow, for the cursors
    rows = list((await session.execute(page_statement(filtered, query))).all())
    if _null_tail(query) and len(rows) <= query.per_page:
        keys = _keys(query, reverse=query.before is not None)
        tail = _ordered(filtered, query, keys).where(keys[0].column.is_(None))
        rows += (await session.execute(tail.limit(query.per_page + 1 - len(rows)))).all()
    more = len(rows) > query.per_page  # one row beyond the page says there is a next one
    rows = rows[: query.per_page]
    if query.before is not None:
        rows.reverse()
    start = _rows_before(query, len(rows), more)
    has_next = bool(rows) and (more or query.before is not None)
    has_prev = bool(rows) and start > 0
    return Page(
        rows=[row[0] if width == 1 else tuple(row[:width]) for row in rows],
        per_page=query.per_page,
        current_page=math.ceil(start / query.per_page) + 1,
        total_entries=total,
        total_pages=math.ceil(total / query.per_page),
        next_cursor=encode_cursor(start + len(rows) - 1, rows[-1][width:]) if has_next else None,
        prev_cursor=encode_cursor(start, rows[0][width:]) if has_prev else None,
    )


def page_statement(filtered: Select[Any], query: ListQuery) -> Select[Any]:
    """The filtered statement plus the sort values, ordered, past the cursor, limited.
    search_before walks the order backwards from its row; the caller reverses the rows."""
    keys = _keys(query, reverse=query.before is not None)
    stmt = _ordered(filtered, query, keys)
    cursor = query.before or query.after
    if cursor is not None:
        if _null_tail(query):  # the NULLs of the first key come in a second query
            keys = [replace(keys[0], nullable=False), *keys[1:]]
        stmt = stmt.where(_keyset(keys, cursor.values))
    elif query.page is not None and query.page > 1:
        stmt = stmt.offset((query.page - 1) * query.per_page)
    return stmt.limit(query.per_page + 1)


def _ordered(filtered: Select[Any], query: ListQuery, keys: list[_Key]) -> Select[Any]:
    sort_values = (
        attribute.column.label(f"_sort_{i}") for i, (attribute, _) in enumerate(query.order)
    )
    return filtered.add_columns(*sort_values).order_by(None).order_by(*(k.order_by() for k in keys))


def _null_tail(query: ListQuery) -> bool:
    """Walking up a nullable first key from a value: the rows after it are `k > v OR k IS NULL`,
    which no index range serves (the whole index would be filtered). The page is then read as
    the range `k > v` first, and the NULL rows (last in the order) by a second query when the
    range falls short, so a deep cursor costs what page 1 costs."""
    cursor = query.before or query.after
    if cursor is None or cursor.values[0] is None:
        return False
    key = _keys(query, reverse=query.before is not None)[0]
    return key.nullable and not key.descending


def _rows_before(query: ListQuery, fetched: int, more: bool) -> int:
    """How many rows of the whole order precede the page (from the cursor's offset)."""
    if query.after is not None:
        return query.after.offset + 1
    if query.before is not None:
        # Offsets drift when rows come and go: a page with rows before it is never page 1.
        return max(query.before.offset - fetched, 1) if more else 0
    return ((query.page or 1) - 1) * query.per_page


async def _count(session: AsyncSession, filtered: Select[Any], listing: Listing) -> int:
    # Scopes and filters name only the listed table, so the count takes none of the joins that
    # fetch referenced records for display: PostgreSQL can count from an index alone.
    counted = select(func.count()).select_from(listing.id_column.table)
    if filtered.whereclause is not None:
        counted = counted.where(filtered.whereclause)
    return int(await session.scalar(counted) or 0)

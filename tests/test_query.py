"""The collection query engine (core/query.py) and the Xurrent pagination headers, on a real
database (SQLite, or PostgreSQL with LANDMARK_TEST_POSTGRES) through a test-only table.

Every expectation is computed in Python from the rows that were inserted."""

import base64
import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cmp_to_key
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import pytest_asyncio
from sqlalchemy import MetaData, Numeric, String, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from landmark.api.xurrent.pagination import pagination_headers
from landmark.core.db import UTCDateTime, create_engine
from landmark.core.errors import BadRequest, InvalidParameter
from landmark.core.query import (
    Attribute,
    Listing,
    Page,
    encode_cursor,
    fetch_page,
    parse_list_query,
)

on_session_loop = pytest.mark.asyncio(loop_scope="session")  # the engine fixture's loop

ACCOUNT, OTHER = "acme", "globex"
STATUSES = ("active", "broken", "stock", "retired")
WORDS = ("alpha", "bravo", "charlie", "delta", "echo")
URL = "https://landmark.example/v1/things"


class Base(DeclarativeBase):
    metadata = MetaData()  # its own: never part of the application's schema


class Thing(Base):
    __tablename__ = "query_test_things"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    account_id: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    count: Mapped[int | None]
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    seen_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_id: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool]
    team_id: Mapped[int | None]
    remarks: Mapped[str | None] = mapped_column(Text)


def make_row(i: int, account: str = ACCOUNT) -> dict[str, Any]:
    remarks = {50: "!urgent", 100: "a,b"}.get(i, "" if i % 13 == 0 else f"note {i}")
    return {
        "id": i,
        "account_id": account,
        "label": f"{WORDS[i % 5]}{i:03d}",  # lower case: the same order in every collation
        "status": STATUSES[i % 4],
        "count": None if i % 11 == 0 else (i * 7) % 50,  # many ties: the id breaks them
        "price": Decimal(f"{(i * 37) % 500}.{(i * 3) % 10}0"),
        "seen_on": None if i % 9 == 0 else date(2024, 1, 1) + timedelta(days=i % 40),
        "created_at": datetime(2024, 1, 1, tzinfo=UTC)
        + timedelta(hours=(i * 37) % 251, microseconds=i),
        "source_id": None if i % 3 == 0 else f"s{i % 17:02d}",
        "active": i % 2 == 0,
        "team_id": None if i % 5 == 0 else i % 6 + 1,
        "remarks": None if i % 7 == 0 else remarks,
    }


ROWS = [make_row(i) for i in range(1, 251)]
OTHER_ROWS = [make_row(i, OTHER) for i in range(1001, 1011)]  # must never show up

LISTING = Listing(
    filters={
        "label": Attribute("label", Thing.label, "string", case_insensitive=True),
        "status": Attribute("status", Thing.status, "enum", values=STATUSES),
        "count": Attribute("count", Thing.count, "integer"),
        "price": Attribute("price", Thing.price, "decimal"),
        "seen_on": Attribute("seen_on", Thing.seen_on, "date"),
        "created_at": Attribute("created_at", Thing.created_at, "datetime"),
        "sourceID": Attribute("sourceID", Thing.source_id, "string"),
        "active": Attribute("active", Thing.active, "boolean"),
        "team": Attribute("team", Thing.team_id, "reference"),
        "remarks": Attribute("remarks", Thing.remarks, "text"),
    },
    sorts={
        "label": Attribute("label", Thing.label, "string"),
        "status": Attribute("status", Thing.status, "enum"),
        "count": Attribute("count", Thing.count, "integer"),
        "price": Attribute("price", Thing.price, "decimal"),
        "seen_on": Attribute("seen_on", Thing.seen_on, "date"),
        "created_at": Attribute("created_at", Thing.created_at, "datetime"),
        "sourceID": Attribute("sourceID", Thing.source_id, "string"),
    },
    default_sort=("label",),
    id_column=Thing.id,
)
FIELDS = {"sourceID": "source_id"}  # API name -> row key, for the Python expectations


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
        await connection.run_sync(Base.metadata.create_all)
        await connection.execute(insert(Thing), ROWS + OTHER_ROWS)
    yield engine
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
    await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with AsyncSession(engine) as session:
        yield session


async def fetch(session: AsyncSession, params: Sequence[tuple[str, str]]) -> Page:
    query = parse_list_query(LISTING, params)
    return await fetch_page(
        session, select(Thing).where(Thing.account_id == ACCOUNT), LISTING, query
    )


def ids(page: Page) -> list[int]:
    return [row.id for row in page.rows]


def ordered(rows: list[dict[str, Any]], sort: str) -> list[int]:
    """The ids in the engine's order: NULLs largest, id last in the last key's direction."""
    keys = [(FIELDS.get(k.lstrip("-"), k.lstrip("-")), k.startswith("-")) for k in sort.split(",")]
    keys.append(("id", keys[-1][1]))

    def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
        for field, descending in keys:
            x, y = a[field], b[field]
            if x != y:
                bigger = x is None or (y is not None and x > y)
                return (1 if bigger else -1) * (-1 if descending else 1)
        return 0

    return [row["id"] for row in sorted(rows, key=cmp_to_key(compare))]


async def walk(session: AsyncSession, params: list[tuple[str, str]]) -> list[list[int]]:
    """All pages, following next cursors from page 1."""
    page = await fetch(session, params)
    pages = [ids(page)]
    while page.next_cursor:
        page = await fetch(session, [*params, ("search_after", page.next_cursor)])
        pages.append(ids(page))
        assert page.current_page == len(pages)
    return pages


# ---------------------------------------------------------------------------- filters

Row = dict[str, Any]
T0 = datetime(2024, 1, 1, tzinfo=UTC)

FILTERS: list[tuple[list[tuple[str, str]], Callable[[Row], bool]]] = [
    ([("status", "stock")], lambda r: r["status"] == "stock"),
    ([("status", "!stock")], lambda r: r["status"] != "stock"),
    ([("status!", "stock")], lambda r: r["status"] != "stock"),
    ([("status", "stock,retired")], lambda r: r["status"] in ("stock", "retired")),
    ([("status", "!stock,retired")], lambda r: r["status"] not in ("stock", "retired")),
    ([("status!", "stock,retired")], lambda r: r["status"] not in ("stock", "retired")),
    ([("count", "7")], lambda r: r["count"] == 7),
    ([("count", "!7")], lambda r: r["count"] != 7),  # rows without a count are "not 7"
    ([("count", "")], lambda r: r["count"] is None),
    ([("count", "!")], lambda r: r["count"] is not None),
    ([("count!", "")], lambda r: r["count"] is not None),
    ([("count", "1,7,14")], lambda r: r["count"] in (1, 7, 14)),
    ([("count", "!1,7,14")], lambda r: r["count"] not in (1, 7, 14)),
    ([("count", "<10")], lambda r: r["count"] is not None and r["count"] < 10),
    ([("count", "<=10")], lambda r: r["count"] is not None and r["count"] <= 10),
    ([("count", ">40")], lambda r: r["count"] is not None and r["count"] > 40),
    ([("count", ">=40")], lambda r: r["count"] is not None and r["count"] >= 40),
    ([("count", ">10<20")], lambda r: r["count"] is not None and 10 < r["count"] < 20),
    ([("count", ">=10<=20")], lambda r: r["count"] is not None and 10 <= r["count"] <= 20),
    ([("count", "<=20")], lambda r: r["count"] is not None and r["count"] <= 20),
    ([("count", "!>=10<=20")], lambda r: r["count"] is None or not 10 <= r["count"] <= 20),
    ([("id", "1,2,3,999")], lambda r: r["id"] in (1, 2, 3)),
    ([("ids", "4,5,6")], lambda r: r["id"] in (4, 5, 6)),
    ([("id", "!1,2")], lambda r: r["id"] not in (1, 2)),
    ([("id", ">=240")], lambda r: r["id"] >= 240),
    ([("price", "37.30")], lambda r: r["price"] == Decimal("37.30")),
    ([("price", ">=100.5<200")], lambda r: Decimal("100.5") <= r["price"] < 200),
    (
        [("seen_on", "<2024-01-10")],
        lambda r: r["seen_on"] is not None and r["seen_on"] < date(2024, 1, 10),
    ),
    ([("seen_on", "")], lambda r: r["seen_on"] is None),
    ([("seen_on", "2024-01-05")], lambda r: r["seen_on"] == date(2024, 1, 5)),
    (
        [("seen_on", ">=2024-01-05<=2024-01-08")],
        lambda r: r["seen_on"] is not None and date(2024, 1, 5) <= r["seen_on"] <= date(2024, 1, 8),
    ),
    (
        [("created_at", ">2024-01-05T00:00:00Z")],
        lambda r: r["created_at"] > datetime(2024, 1, 5, tzinfo=UTC),
    ),
    (
        [("created_at", "<2024-01-03T02:00:00+02:00")],  # midnight UTC
        lambda r: r["created_at"] < datetime(2024, 1, 3, tzinfo=UTC),
    ),
    ([("created_at", ">=2024-01-05")], lambda r: r["created_at"] >= T0 + timedelta(days=4)),
    (
        [("created_at", ">2024-01-02T00:00:00Z"), ("created_at", "<2024-01-04T00:00:00Z")],
        lambda r: T0 + timedelta(days=1) < r["created_at"] < T0 + timedelta(days=3),
    ),
    ([("label", "ALPHA005")], lambda r: r["label"] == "alpha005"),
    ([("label", "!Alpha005")], lambda r: r["label"] != "alpha005"),
    ([("sourceID", "s03")], lambda r: r["source_id"] == "s03"),
    ([("sourceID", "S03")], lambda r: False),  # case-sensitive
    ([("sourceID", "")], lambda r: r["source_id"] is None),
    ([("sourceID", "!")], lambda r: r["source_id"] is not None),
    ([("active", "true")], lambda r: r["active"]),
    ([("active", "NO")], lambda r: not r["active"]),
    ([("active", "1")], lambda r: r["active"]),
    ([("team", "2")], lambda r: r["team_id"] == 2),
    ([("team_id", "2,3")], lambda r: r["team_id"] in (2, 3)),
    ([("team_id", "")], lambda r: r["team_id"] is None),
    ([("team!", "2")], lambda r: r["team_id"] != 2),
    ([("remarks", "")], lambda r: not r["remarks"]),  # NULL or ''
    ([("remarks", "!")], lambda r: bool(r["remarks"])),
    ([("remarks", "a,b")], lambda r: r["remarks"] == "a,b"),  # a comma is part of a string
    ([("remarks", "\\!urgent")], lambda r: r["remarks"] == "!urgent"),
    ([("remarks", "!\\!urgent")], lambda r: r["remarks"] != "!urgent"),
    (
        [("status", "stock"), ("count", ">10")],
        lambda r: r["status"] == "stock" and (r["count"] or 0) > 10,
    ),
]


@on_session_loop
@pytest.mark.parametrize(("params", "predicate"), FILTERS, ids=lambda v: repr(v)[:60])
async def test_filter(
    session: AsyncSession, params: list[tuple[str, str]], predicate: Callable[[Row], bool]
) -> None:
    expected = ordered([row for row in ROWS if predicate(row)], "label")
    page = await fetch(session, [*params, ("per_page", "100"), ("sort", "label")])
    got = [i for p in await walk(session, [*params, ("per_page", "100")]) for i in p]
    assert got == expected
    assert page.total_entries == len(expected)
    assert 0 < len(expected) < len(ROWS) or params[0][0] == "sourceID"  # a real selection


@on_session_loop
async def test_ignored_and_reserved_params(session: AsyncSession) -> None:
    params = [("fields", "label"), ("mine", "x"), ("status", "stock")]
    query = parse_list_query(LISTING, params, ignore={"mine"})
    select_stmt = select(Thing).where(Thing.account_id == ACCOUNT)
    page = await fetch_page(session, select_stmt, LISTING, query)
    assert page.total_entries == sum(row["status"] == "stock" for row in ROWS)


ERRORS: list[tuple[list[tuple[str, str]], str, str]] = [
    ([("colour", "red")], "colour", "Unknown filter: colour"),
    ([("label_id", "3")], "label_id", "Unknown filter: label_id"),
    (
        [("created_at", "yesterday")],
        "created_at",
        "Invalid value for filter created_at: 'yesterday'",
    ),
    (
        [("created_at", ">2024-13-01")],
        "created_at",
        "Invalid value for filter created_at: '>2024-13-01'",
    ),
    ([("count", "abc")], "count", "Invalid value for filter count: 'abc'"),
    ([("count", "1.5")], "count", "Invalid value for filter count: '1.5'"),
    ([("count", "\u0663")], "count", "Invalid value for filter count: '\u0663'"),  # Arabic 3
    ([("count", "99999999999")], "count", "Invalid value for filter count: '99999999999'"),
    ([("count", ">5<")], "count", "Invalid value for filter count: '>5<'"),
    ([("count", "1,,2")], "count", "Invalid value for filter count: '1,,2'"),
    ([("status", "gone")], "status", "Invalid value for filter status: 'gone'"),
    ([("status", "<stock")], "status", "Invalid value for filter status: '<stock'"),
    ([("active", "maybe")], "active", "Invalid value for filter active: 'maybe'"),
    ([("seen_on", "2024-02-30")], "seen_on", "Invalid value for filter seen_on: '2024-02-30'"),
    (
        [("seen_on", "2024-01-01T00:00Z")],
        "seen_on",
        "Invalid value for filter seen_on: '2024-01-01T00:00Z'",
    ),
    ([("price", "1,5")], "price", "Invalid value for filter price: '1,5'"),
    ([("price", "NaN")], "price", "Invalid value for filter price: 'NaN'"),
    ([("team", "x")], "team", "Invalid value for filter team: 'x'"),
    ([("team_id", "1,x")], "team_id", "Invalid value for filter team_id: '1,x'"),
    ([("label", "a\x00b")], "label", "Invalid value for filter label: 'a\x00b'"),
    ([("per_page", "abc")], "per_page", "Invalid value for per_page: 'abc'"),
    ([("per_page", "0")], "per_page", "Invalid value for per_page: '0'"),
    ([("page", "0")], "page", "Invalid value for page: '0'"),
    ([("page", "-1")], "page", "Invalid value for page: '-1'"),
    ([("search_after", "%%%")], "search_after", "Invalid value for search_after"),
    ([("search_before", "bm9wZQ")], "search_before", "Invalid value for search_before"),
]


@pytest.mark.parametrize(("params", "field", "message"), ERRORS, ids=lambda v: repr(v)[:50])
def test_errors(params: list[tuple[str, str]], field: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as raised:
        parse_list_query(LISTING, params)
    assert (raised.value.status, raised.value.message, raised.value.param) == (400, message, field)
    assert raised.value.errors == [(field, message)]


@pytest.mark.parametrize(
    ("sort", "message"),
    [
        ("colour,-size,label", "Sorting not allowed on fields: colour, size"),
        ("remarks", "Sorting not allowed on fields: remarks"),
    ],
)
def test_unsortable_fields_give_xurrents_bare_message(sort: str, message: str) -> None:
    with pytest.raises(BadRequest) as raised:
        parse_list_query(LISTING, [("sort", sort)])
    assert (raised.value.status, raised.value.message, raised.value.errors) == (400, message, [])


def raw_cursor(body: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        raw_cursor({"offset": 19, "cursor": ["alpha005"]}),  # too short for label + id
        raw_cursor({"offset": 19, "cursor": ["alpha005", 5, 6]}),  # too long
        raw_cursor({"offset": 19, "cursor": [5, 5]}),  # a number for a string
        raw_cursor({"offset": 19, "cursor": ["alpha005", "5"]}),  # a string for the id
        raw_cursor({"offset": 19, "cursor": ["alpha005", None]}),  # no id
        raw_cursor({"offset": 19, "cursor": ["alpha005", 2**40]}),  # beyond the id column
        raw_cursor({"offset": -1, "cursor": ["alpha005", 5]}),
        raw_cursor({"offset": "1", "cursor": ["alpha005", 5]}),
        raw_cursor({"offset": 1, "cursor": ["alpha005", 5], "extra": 1}),
        raw_cursor(["alpha005", 5]),
        raw_cursor("[" * 100_000),
        encode_cursor(19, ["alpha005", 5])[:-3],  # truncated
        encode_cursor(19, ["alpha005", 5]) + "!",
        "x" * 5000,
    ],
)
def test_tampered_cursor(cursor: str) -> None:
    for param in ("search_after", "search_before"):
        with pytest.raises(InvalidParameter, match=f"^Invalid value for {param}$"):
            parse_list_query(LISTING, [(param, cursor)])


@pytest.mark.parametrize(
    ("sort", "values"),
    [
        ("-price,seen_on,-created_at", [Decimal("12.30"), date(2024, 1, 5), T0, 7]),
        ("seen_on,price", [None, None, 8]),
    ],
)
def test_cursor_round_trip(sort: str, values: list[Any]) -> None:
    cursor = encode_cursor(41, values)
    query = parse_list_query(LISTING, [("sort", sort), ("search_after", cursor)])
    assert query.after is not None and query.after.offset == 41
    assert list(query.after.values) == values
    padded = cursor + "=" * (-len(cursor) % 4)  # Xurrent's own cursors are padded
    assert (
        parse_list_query(LISTING, [("sort", sort), ("search_after", padded)]).after == query.after
    )


def test_both_cursors_refused() -> None:
    cursor = encode_cursor(0, ["alpha005", 5])
    with pytest.raises(InvalidParameter, match="search_after or search_before"):
        parse_list_query(LISTING, [("search_after", cursor), ("search_before", cursor)])


# ---------------------------------------------------------------------------- sorting and paging

SORTS = [
    "label",
    "-label",
    "count",
    "-count",
    "sourceID",
    "-sourceID",
    "-count,label",
    "status,-price,sourceID",
    "seen_on,-created_at",
    "-seen_on,count",
    "price",
    "-id",
    "id",
]


@on_session_loop
@pytest.mark.parametrize("sort", SORTS)
async def test_sort_and_walks_agree(session: AsyncSession, sort: str) -> None:
    expected = ordered(ROWS, sort)
    params = [("sort", sort), ("per_page", "17")]
    forward = await walk(session, params)
    assert [i for p in forward for i in p] == expected
    assert [len(p) for p in forward] == [17] * 14 + [12]

    numbered = []
    for number in range(1, len(forward) + 1):
        page = await fetch(session, [*params, ("page", str(number))])
        assert (page.current_page, page.total_pages, page.total_entries) == (number, 15, 250)
        numbered.append(ids(page))
    assert numbered == forward

    # Backwards from the last page with search_before.
    page = await fetch(session, [*params, ("page", "15")])
    backward = [ids(page)]
    while page.prev_cursor:
        page = await fetch(session, [*params, ("search_before", page.prev_cursor)])
        backward.append(ids(page))
        assert page.current_page == 15 - len(backward) + 1
    assert backward[::-1] == forward


@on_session_loop
async def test_default_sort_and_nulls(session: AsyncSession) -> None:
    page = await fetch(session, [("per_page", "100")])
    assert ids(page) == ordered(ROWS, "label")[:100]
    page = await fetch(session, [("sort", "sourceID"), ("per_page", "100"), ("page", "2")])
    expected = [ROWS[i - 1]["source_id"] for i in ordered(ROWS, "sourceID")[100:200]]
    assert [row.source_id for row in page.rows] == expected
    assert expected[0] is not None and expected[-1] is None  # NULLs largest: last ascending
    page = await fetch(session, [("sort", "-sourceID"), ("per_page", "50")])
    assert [row.source_id for row in page.rows] == [None] * 50  # NULLs largest: first descending


@on_session_loop
async def test_walk_with_filter(session: AsyncSession) -> None:
    params = [("status", "!retired"), ("sort", "-count,price"), ("per_page", "25")]
    expected = ordered([r for r in ROWS if r["status"] != "retired"], "-count,price")
    assert [i for p in await walk(session, params) for i in p] == expected


@on_session_loop
async def test_per_page(session: AsyncSession) -> None:
    page = await fetch(session, [])
    assert (len(page.rows), page.per_page, page.total_pages) == (20, 20, 13)
    page = await fetch(session, [("per_page", "500")])
    assert (len(page.rows), page.per_page, page.total_pages) == (100, 100, 3)
    page = await fetch(session, [("per_page", "1"), ("page", "250")])
    assert (ids(page), page.current_page, page.next_cursor) == (
        [ordered(ROWS, "label")[-1]],
        250,
        None,
    )


@on_session_loop
async def test_pages_past_the_end_and_empty(session: AsyncSession) -> None:
    page = await fetch(session, [("page", "99")])
    assert (page.rows, page.current_page, page.next_cursor, page.prev_cursor) == (
        [],
        99,
        None,
        None,
    )
    page = await fetch(session, [("status", "stock"), ("count", "999")])
    assert (page.rows, page.total_entries, page.total_pages) == ([], 0, 0)
    assert pagination_headers(URL, [], page).get("Link") is None


@on_session_loop
async def test_other_selects_keep_their_shape(session: AsyncSession) -> None:
    select_stmt = (
        select(Thing.id, Thing.label).where(Thing.account_id == ACCOUNT).order_by(Thing.id)
    )
    query = parse_list_query(LISTING, [("sort", "-label"), ("per_page", "3")])
    page = await fetch_page(session, select_stmt, LISTING, query)
    expected = ordered(ROWS, "-label")[:3]
    assert page.rows == [(i, ROWS[i - 1]["label"]) for i in expected]


# ---------------------------------------------------------------------------- headers


def links(headers: dict[str, str]) -> dict[str, str]:
    found = {}
    for part in headers.get("Link", "").split(", "):
        if part:
            href, rel = part.split("; ")
            found[rel.removeprefix('rel="').removesuffix('"')] = href.strip("<>")
    return found


async def follow(session: AsyncSession, href: str) -> Page:
    parts = urlsplit(href)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == URL  # absolute
    return await fetch(session, parse_qsl(parts.query, keep_blank_values=True))


@on_session_loop
async def test_pagination_headers(session: AsyncSession) -> None:
    params = [("status", "stock,retired"), ("sort", "-count"), ("per_page", "25")]
    matching = [r for r in ROWS if r["status"] in ("stock", "retired")]
    expected = ordered(matching, "-count")
    first = await fetch(session, params)
    headers = pagination_headers(URL, params, first)
    assert headers["X-Pagination-Per-Page"] == "25"
    assert headers["X-Pagination-Current-Page"] == "1"
    assert headers["X-Pagination-Total-Entries"] == str(len(matching))
    assert headers["X-Pagination-Total-Pages"] == "5"
    assert set(links(headers)) == {"next"}

    middle = await follow(session, links(headers)["next"])
    assert ids(middle) == expected[25:50]
    headers = pagination_headers(URL, [*params, ("search_after", "x")], middle)
    assert set(links(headers)) == {"first", "prev", "next"}
    assert headers["X-Pagination-Current-Page"] == "2"
    href = links(headers)["first"]
    assert href == f"{URL}?status=stock%2Cretired&sort=-count&per_page=25"
    assert ids(await follow(session, href)) == expected[:25]
    assert ids(await follow(session, links(headers)["prev"])) == expected[:25]
    assert ids(await follow(session, links(headers)["next"])) == expected[50:75]

    last = await fetch(session, [*params, ("page", "5")])
    headers = pagination_headers(URL, [*params, ("page", "5")], last)
    assert set(links(headers)) == {"first", "prev"}
    assert not re.search(r"[?&]page=|search_after", headers["Link"])
    assert ids(await follow(session, links(headers)["prev"])) == expected[75:100]


@on_session_loop
async def test_one_page_has_no_links(session: AsyncSession) -> None:
    page = await fetch(session, [("ids", "1,2,3")])
    headers = pagination_headers(URL, [("ids", "1,2,3")], page)
    assert "Link" not in headers
    assert (headers["X-Pagination-Total-Pages"], headers["X-Pagination-Total-Entries"]) == (
        "1",
        "3",
    )


@on_session_loop
async def test_drifted_cursor_offset(session: AsyncSession) -> None:
    """Rows came and went since the cursor was made: its offset says row 3, the row is the 61st.
    The page before it still has rows before it, so it is not reported as page 1."""
    order = ordered(ROWS, "label")
    row = ROWS[order[60] - 1]
    cursor = encode_cursor(3, [row["label"], row["id"]])
    page = await fetch(session, [("search_before", cursor)])
    assert ids(page) == order[40:60]
    assert page.prev_cursor is not None and page.current_page == 2

"""The Xurrent query grammar over HTTP on /v1/cis, /v1/teams, /v1/people and /v1/products: the
expected ids are computed in Python from the records the module made."""

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from cmdb_helpers import Cmdb, assert_xurrent_error, make_cmdb
from conftest import Tenant
from landmark.core import clock

STATUSES = ("in_production", "in_stock", "archived", "removed", "broken_down")
Record = dict[str, Any]


class Data:
    def __init__(self, cmdb: Cmdb) -> None:
        self.cmdb = cmdb
        self.server_team = cmdb.post("teams", {"name": "Server Team"})
        self.idle_team = cmdb.post("teams", {"name": "Idle Team", "disabled": True})
        self.site = cmdb.post("sites", {"name": "HQ"})
        self.hp = cmdb.post(
            "products", {"name": "HP Elite", "brand": "HP", "category_id": cmdb.category["id"]}
        )
        self.cis: list[Record] = []
        for n in range(13):
            clock.advance(timedelta(seconds=1))  # distinct created_at for the range filters
            self.cis.append(
                cmdb.ci(
                    label=f"Q{n:03d}",
                    status=STATUSES[n % 5],
                    serial_nr=f"SN-{n}" if n % 2 == 0 else None,
                    support_team_id=(cmdb.team if n % 3 else self.server_team)["id"],
                    product_id=(cmdb.product if n % 4 else self.hp)["id"],
                    site_id=self.site["id"] if n % 3 == 0 else None,
                )
            )
        self.teams = [cmdb.get(f"teams/{t['id']}") for t in cmdb.get("teams", per_page=100)]
        self.people = [
            cmdb.post(
                "people",
                {
                    "name": f"P{n}",
                    "primary_email": f"Person{n}@Example.com",
                    "organization_id": cmdb.organization["id"] if n % 2 else None,
                },
            )
            for n in range(5)
        ]
        self.people.append(cmdb.get("me"))  # the signed-in user's person is one of them
        self.products = cmdb.get("products", per_page=100)


@pytest.fixture(scope="module")
def data(server: Any) -> Iterator[Data]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        tenant = Tenant(server, f"q{uuid.uuid4().hex[:10]}")
        try:
            yield Data(make_cmdb(http, tenant.auth))
        finally:
            clock.reset()


def listed(data: Data, url: str, **params: Any) -> list[int]:
    response = data.cmdb.client.get(url, params={"per_page": 100, **params}, headers=data.cmdb.auth)
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()]


def expect(records: list[Record], keep: Callable[[Record], bool], key: str = "label") -> list[int]:
    return [r["id"] for r in sorted(records, key=lambda r: (r[key], r["id"])) if keep(r)]


def _ref(record: Record, name: str) -> Any:
    return (record[name] or {}).get("id")


CI_CASES: list[tuple[dict[str, Any], Callable[[Data], Callable[[Record], bool]]]] = [
    ({"status": "in_stock"}, lambda d: lambda r: r["status"] == "in_stock"),
    ({"status": "!in_stock"}, lambda d: lambda r: r["status"] != "in_stock"),
    ({"status!": "in_stock"}, lambda d: lambda r: r["status"] != "in_stock"),
    ({"status": "in_stock,removed"}, lambda d: lambda r: r["status"] in ("in_stock", "removed")),
    (
        {"status": "!in_stock,removed"},
        lambda d: lambda r: r["status"] not in ("in_stock", "removed"),
    ),
    ({"serial_nr": ""}, lambda d: lambda r: r["serial_nr"] is None),
    ({"serial_nr": "!"}, lambda d: lambda r: r["serial_nr"] is not None),
    ({"serial_nr": "sn-4"}, lambda d: lambda r: r["serial_nr"] == "SN-4"),
    ({"label": "q007"}, lambda d: lambda r: r["label"] == "Q007"),
    ({"label": "!q007"}, lambda d: lambda r: r["label"] != "Q007"),
    ({"site": ""}, lambda d: lambda r: r["site"] is None),
    ({"site_id": "!"}, lambda d: lambda r: r["site"] is not None),
]
REF_CASES = ["support_team", "support_team_id"]


@pytest.mark.parametrize("params,keep", CI_CASES)
def test_ci_filters(data: Data, params: dict[str, Any], keep: Any) -> None:
    assert listed(data, "/v1/cis", **params) == expect(data.cis, keep(data))


@pytest.mark.parametrize("name", REF_CASES)
def test_references_filter_by_name_and_by_name_id(data: Data, name: str) -> None:
    team, other = data.cmdb.team["id"], data.server_team["id"]
    got = listed(data, "/v1/cis", **{name: team})
    assert got == expect(data.cis, lambda r: _ref(r, "support_team") == team)
    both = listed(data, "/v1/cis", **{name: f"{team},{other}"})
    assert both == expect(data.cis, lambda r: True)
    negated = listed(data, "/v1/cis", **{f"{name}!": other})
    assert negated == expect(data.cis, lambda r: _ref(r, "support_team") != other)
    products = listed(data, "/v1/cis", product=f"{data.hp['id']},0")
    assert products == expect(data.cis, lambda r: _ref(r, "product") == data.hp["id"])


@pytest.mark.parametrize("column", ["id", "created_at", "updated_at"])
@pytest.mark.parametrize(
    "form,keep",
    [
        (">{a}", lambda v, a, b: v > a),
        (">={a}", lambda v, a, b: v >= a),
        ("<{a}", lambda v, a, b: v < a),
        ("<={a}", lambda v, a, b: v <= a),
        (">{a}<{b}", lambda v, a, b: a < v < b),
        (">={a}<={b}", lambda v, a, b: a <= v <= b),
    ],
)
def test_ranges(data: Data, column: str, form: str, keep: Any) -> None:
    def value(r: Record) -> Any:
        return r[column] if column == "id" else r[column].replace("+00:00", "Z")

    a, b = (value(data.cis[n]) for n in (3, 9))
    got = listed(data, "/v1/cis", **{column: form.format(a=a, b=b)})
    assert got == expect(data.cis, lambda r: keep(value(r), a, b))


@pytest.mark.parametrize(
    "query,keep",
    [
        ("id=%3E{a}", lambda r, a: r["id"] > a),
        ("id=%3C%3D{a}", lambda r, a: r["id"] <= a),
        ("status=%21archived", lambda r, a: r["status"] != "archived"),
        ("status%21=archived", lambda r, a: r["status"] != "archived"),
        ("ids={a}%2C{a1}", lambda r, a: r["id"] in (a, a + 1)),
        ("ids={a},{a1}", lambda r, a: r["id"] in (a, a + 1)),
    ],
)
def test_url_encoded_operators(data: Data, query: str, keep: Any) -> None:
    a = data.cis[5]["id"]
    url = f"/v1/cis?per_page=100&{query.format(a=a, a1=a + 1)}"
    response = data.cmdb.client.get(url, headers=data.cmdb.auth)
    assert [r["id"] for r in response.json()] == expect(data.cis, lambda r: keep(r, a))


@pytest.mark.parametrize(
    "url,params,records,keep,key",
    [
        ("/v1/teams", {"disabled": "true"}, "teams", lambda d, r: r["disabled"], "name"),
        (
            "/v1/teams",
            {"name": "Server Team"},
            "teams",
            lambda d, r: r["name"] == "Server Team",
            "name",
        ),
        ("/v1/teams/enabled", {}, "teams", lambda d, r: not r["disabled"], "name"),
        ("/v1/teams/disabled", {}, "teams", lambda d, r: r["disabled"], "name"),
        (
            "/v1/people",
            {"primary_email": "PERSON3@example.COM"},
            "people",
            lambda d, r: r["name"] == "P3",
            "name",
        ),
        (
            "/v1/people",
            {"organization": ""},
            "people",
            lambda d, r: r["organization"] is None,
            "name",
        ),
        (
            "/v1/people",
            {"organization_id": "!"},
            "people",
            lambda d, r: r["organization"] is not None,
            "name",
        ),
        ("/v1/products", {"rule_set": "physical_asset"}, "products", lambda d, r: True, "name"),
        ("/v1/products", {"rule_set": "!physical_asset"}, "products", lambda d, r: False, "name"),
        ("/v1/products", {"rule_set": "server,software"}, "products", lambda d, r: False, "name"),
        ("/v1/products", {"category": "0"}, "products", lambda d, r: False, "name"),
        (
            "/v1/cis/active",
            {},
            "cis",
            lambda d, r: r["status"] not in ("archived", "removed"),
            "label",
        ),
        (
            "/v1/cis/inactive",
            {},
            "cis",
            lambda d, r: r["status"] in ("archived", "removed"),
            "label",
        ),
    ],
)
def test_other_collections_and_predefined_filters(
    data: Data, url: str, params: dict[str, Any], records: str, keep: Any, key: str
) -> None:
    pool = getattr(data, records)
    assert listed(data, url, **params) == expect(pool, lambda r: keep(data, r), key)


def test_supported_by_my_teams(data: Data) -> None:
    me = data.cmdb.get("me")
    team = data.server_team["id"]
    data.cmdb.post(f"teams/{team}/members/{me['id']}", {})
    got = listed(data, "/v1/cis/supported_by_my_teams")
    assert got == expect(data.cis, lambda r: _ref(r, "support_team") == team)


@pytest.mark.parametrize(
    "url,params,names",
    [
        ("/v1/cis", {"colour": "red"}, "colour"),
        ("/v1/cis", {"created_at": "yesterday"}, "created_at"),
        ("/v1/cis", {"created_at": ">2024-13-01"}, "created_at"),
        ("/v1/cis", {"id": "abc"}, "id"),
        ("/v1/cis", {"ids": "1,x"}, "id"),
        ("/v1/cis", {"id": "99999999999"}, "id"),
        ("/v1/cis", {"status": "bogus"}, "status"),
        ("/v1/cis", {"status": "in_stock,bogus"}, "status"),
        ("/v1/cis", {"support_team": "abc"}, "support_team"),
        ("/v1/teams", {"disabled": "maybe"}, "disabled"),
        ("/v1/people", {"remarks": "x"}, "remarks"),
        ("/v1/products", {"rule_set": "bogus"}, "rule_set"),
        ("/v1/cis", {"per_page": "0"}, "per_page"),
        ("/v1/cis", {"page": "x"}, "page"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(
    data: Data, url: str, params: dict[str, Any], names: str
) -> None:
    response = data.cmdb.client.get(url, params=params, headers=data.cmdb.auth)
    assert names in assert_xurrent_error(response, 400)["message"]


@pytest.mark.parametrize("url", ["/v1/cis", "/v1/teams", "/v1/people", "/v1/products"])
def test_unknown_sort_has_xurrents_exact_body(data: Data, url: str) -> None:
    response = data.cmdb.client.get(url, params={"sort": "x"}, headers=data.cmdb.auth)
    assert response.status_code == 400 and response.json() == {
        "message": "Sorting not allowed on fields: x"
    }


@pytest.mark.parametrize(
    "sort,key,reverse",
    [
        ("-id", lambda r: r["id"], True),
        ("status", lambda r: (r["status"], r["id"]), False),
        ("-status", lambda r: (r["status"], r["id"]), True),
        ("support_team", lambda r: (_ref(r, "support_team"), r["id"]), False),
        ("-created_at", lambda r: (r["created_at"], r["id"]), True),
    ],
)
def test_sorts(data: Data, sort: str, key: Any, reverse: bool) -> None:
    expected = [r["id"] for r in sorted(data.cis, key=key, reverse=reverse)]
    assert listed(data, "/v1/cis", sort=sort) == expected


def test_fields_always_include_the_id(data: Data) -> None:
    rows = data.cmdb.get("cis", fields="status,serial_nr")
    assert rows and all(set(row) == {"id", "status", "serial_nr"} for row in rows)
    assert_xurrent_error(
        data.cmdb.client.get("/v1/cis", params={"fields": "bogus"}, headers=data.cmdb.auth), 400
    )


def _get(data: Data, url: str, **params: Any) -> httpx.Response:
    response = data.cmdb.client.get(url, params=params, headers=data.cmdb.auth)
    assert response.status_code == 200, response.text
    return response


def test_per_page_and_page(data: Data) -> None:
    order = expect(data.cis, lambda r: True)
    default = _get(data, "/v1/cis")
    assert default.headers["X-Pagination-Per-Page"] == "20"
    assert _get(data, "/v1/cis", per_page=500).headers["X-Pagination-Per-Page"] == "100"
    for page in (1, 2, 3, 4):
        response = _get(data, "/v1/cis", per_page=5, page=page)
        assert [r["id"] for r in response.json()] == order[(page - 1) * 5 : page * 5]
        assert response.headers["X-Pagination-Current-Page"] == str(page)
        assert response.headers["X-Pagination-Total-Pages"] == "3"
        assert response.headers["X-Pagination-Total-Entries"] == str(len(order))


def links(response: httpx.Response) -> dict[str, str]:
    found = re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers.get("Link", ""))
    return {rel: href for href, rel in found}


def _walk(data: Data, url: str, rel: str) -> tuple[list[list[int]], httpx.Response]:
    pages: list[list[int]] = []
    response = data.cmdb.client.get(url, headers=data.cmdb.auth)
    while True:
        assert response.status_code == 200, response.text
        pages.append([r["id"] for r in response.json()])
        following = links(response).get(rel)
        if following is None:
            return pages, response
        assert urlsplit(following).scheme == "http" and urlsplit(following).netloc
        parts = urlsplit(following)
        response = data.cmdb.client.get(f"{parts.path}?{parts.query}", headers=data.cmdb.auth)


@pytest.mark.parametrize("sort", ["label", "-created_at", "status"])
def test_cursors_walk_forward_and_back(data: Data, sort: str) -> None:
    order = listed(data, "/v1/cis", sort=sort)
    pages, last = _walk(data, f"/v1/cis?per_page=4&sort={sort}", "next")
    assert [i for page in pages for i in page] == order and len(pages) == 4
    assert last.headers["X-Pagination-Current-Page"] == "4"
    assert set(links(last)) == {"first", "prev"}
    back, first = _walk(
        data, f"{urlsplit(links(last)['prev']).path}?{urlsplit(links(last)['prev']).query}", "prev"
    )
    assert [i for page in reversed(back) for i in page] == order[: len(order) - len(pages[-1])]
    assert first.headers["X-Pagination-Current-Page"] == "1"


def _tampered(cursor: str) -> list[str]:
    raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))

    def encode(body: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")

    return [
        cursor[:-2] + "!!",
        "not-base64-json",
        encode({"x": 1}),
        encode({**raw, "cursor": raw["cursor"][:-1]}),
        encode({**raw, "offset": -1}),
        encode({**raw, "cursor": [{"a": 1}] * len(raw["cursor"])}),
    ]


def test_a_tampered_cursor_is_a_400(data: Data) -> None:
    first = _get(data, "/v1/cis", per_page=4)
    cursor = re.search(r"search_after=([^&>]+)", links(first)["next"])
    assert cursor is not None
    for bad in _tampered(cursor.group(1)):
        for param in ("search_after", "search_before"):
            response = data.cmdb.client.get("/v1/cis", params={param: bad}, headers=data.cmdb.auth)
            assert param in assert_xurrent_error(response, 400)["message"]


@pytest.mark.parametrize("url", ["/v1/cis/bogus", "/v1/teams/active", "/v1/people/disabledx"])
def test_an_unknown_predefined_filter_is_404(data: Data, url: str) -> None:
    assert_xurrent_error(data.cmdb.client.get(url, headers=data.cmdb.auth), 404)

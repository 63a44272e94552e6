"""What the CMDB refuses over /v1, and that a refusal changes nothing: bad values on create and
update for every field of every resource, uniqueness rules, bodies that are not JSON objects,
oversized bodies, stale ETags, and what each role may not do."""

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cmdb_helpers import (
    PUBLIC,
    Cmdb,
    FullCmdb,
    assert_xurrent_error,
    audit_size,
    fill,
    make_full_cmdb,
    route_ids,
    snapshot,
    total,
    v1_routes,
)
from conftest import Tenant
from landmark.cmdb.schema import RESOURCES, Field, Resource

UNKNOWN_ID = 2**31 - 1


def valid_body(cmdb: Cmdb, resource: str, tag: str = "new") -> dict[str, Any]:
    """The smallest body that creates a record of `resource` in `cmdb`'s account."""
    return {
        "product_categories": {"name": tag, "group": "G", "rule_set": "physical_asset"},
        "organizations": {"name": tag},
        "sites": {"name": tag},
        "people": {"name": tag, "primary_email": f"{tag}@example.com"},
        "teams": {"name": tag},
        "services": {"name": tag, "provider_id": cmdb.organization["id"]},
        "products": {"name": tag, "category_id": cmdb.category["id"]},
        "cis": {"product_id": cmdb.product["id"], "status": "in_production"},
    }[resource]


BAD: dict[str, list[Any]] = {
    "string": [{"a": 1}, ["x"], True],
    "integer": ["many", 1.5, {"a": 1}, 2**40],
    "decimal": ["abc", {"a": 1}, "NaN", 10**13],
    "boolean": [{"a": 1}, "maybe"],
    "date": [{"a": 1}, "2024-13-45", "yesterday"],
    "datetime": [{"a": 1}, "yesterday", "2024-01-01T10:00:00"],
    "enum": ["bogus", 1, {"a": 1}],
    "reference": ["abc", {"a": 1}, UNKNOWN_ID, 10**20, -1],
    "strings": ["x", [1], ["x" * 256]],
    "json": ["x", [{"value": 1}]],
    "aggregated": ["x", [1]],
    "attachments": ["x", [{"filesize": 1}]],
}


def bad_values(field: Field) -> list[Any]:
    values = list(BAD["string" if field.kind == "text" else field.kind])
    if field.kind in ("string", "text"):
        values += ["a\x00b", "x" * ((field.max_length or 0) + 1)]
    return values


def writable(resource: Resource) -> list[Field]:
    return [f for f in resource.fields if not f.readonly]


def the_record(cmdb: FullCmdb, resource: str) -> dict[str, Any]:
    return cmdb.by_resource()[resource]


@pytest.fixture(scope="module")
def world(server: Any) -> Iterator[tuple[FullCmdb, FullCmdb, Tenant]]:
    """Two accounts with a full CMDB each, shared by the tests of this module: each test
    compares what it may not change before and after, and only adds records of its own."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        ours, others = (Tenant(server, f"{c}{uuid.uuid4().hex[:10]}") for c in "no")
        yield (
            make_full_cmdb(http, ours.auth, suffix=" Alpha"),
            make_full_cmdb(http, others.auth, suffix=" Zeta"),
            ours,
        )


@pytest.fixture
def mine(world: tuple[FullCmdb, FullCmdb, Tenant]) -> FullCmdb:
    return world[0]


@pytest.fixture
def theirs(world: tuple[FullCmdb, FullCmdb, Tenant]) -> FullCmdb:
    return world[1]


@pytest.fixture
def owner(world: tuple[FullCmdb, FullCmdb, Tenant]) -> Tenant:
    return world[2]


def _refused(cmdb: Cmdb, method: str, path: str, body: Any, field: str, status: int = 422) -> Any:
    response = cmdb.client.request(method, f"/v1/{path}", json=body, headers=cmdb.auth)
    error = assert_xurrent_error(response, status, field)
    assert error["message"] == "Validation Failed" and len(error["errors"]) == 1, error
    return error


@pytest.mark.parametrize("resource", list(RESOURCES))
def test_bad_values_are_refused_on_create_and_update(
    mine: FullCmdb, theirs: FullCmdb, resource: str
) -> None:
    record = the_record(mine, resource)
    paths = [f"{resource}/{record['id']}"]
    before, count = snapshot(mine.client, mine.auth, paths), total(mine.client, mine.auth, resource)
    their_ids = {res: rec["id"] for res, rec in theirs.by_resource().items()}
    for field in writable(RESOURCES[resource]):
        key = field.input_name
        values = bad_values(field)
        if field.kind == "reference":
            values.append(their_ids[field.target])
        for value in values:
            body = {**valid_body(mine, resource), key: value}
            for method, path in (("POST", resource), ("PATCH", paths[0])):
                error = _refused(mine, method, path, body, key)
                assert "Zeta" not in str(error), error  # their record is not named
            if value in their_ids.values():
                label = field.name.replace("_", " ").capitalize()
                assert error["errors"] == [[key, f"{label} {value} not found"]]
    assert snapshot(mine.client, mine.auth, paths) == before
    assert total(mine.client, mine.auth, resource) == count


@pytest.mark.parametrize("resource", list(RESOURCES))
def test_required_fields_cannot_be_left_out_or_blanked(mine: FullCmdb, resource: str) -> None:
    record = the_record(mine, resource)
    paths = [f"{resource}/{record['id']}"]
    before, count = snapshot(mine.client, mine.auth, paths), total(mine.client, mine.auth, resource)
    required = [f for f in RESOURCES[resource].fields if f.required]
    assert required
    for field in required:
        key = field.input_name
        body = {k: v for k, v in valid_body(mine, resource).items() if k != key}
        _refused(mine, "POST", resource, body, key)
        for blank in (None, ""):
            _refused(mine, "PATCH", paths[0], {key: blank}, key)
    assert snapshot(mine.client, mine.auth, paths) == before
    assert total(mine.client, mine.auth, resource) == count


@pytest.mark.parametrize("resource", list(RESOURCES))
def test_strings_of_the_maximum_length_are_accepted(mine: FullCmdb, resource: str) -> None:
    strings = [f for f in writable(RESOURCES[resource]) if f.max_length and not f.writeonly]
    body = {f.input_name: chr(97 + i) * (f.max_length or 0) for i, f in enumerate(strings)}
    created = mine.post(resource, {**valid_body(mine, resource), **body})
    assert {f.name: created[f.name] for f in strings} == body


# --- uniqueness and the rules of each resource ---------------------------------------------------


def _serials(cmdb: FullCmdb) -> list[tuple[str, str, dict[str, Any], str]]:
    cmdb.patch(f"cis/{cmdb.server_ci['id']}", {"serial_nr": "ABC-1"})
    return [
        ("PATCH", f"cis/{cmdb.db_ci['id']}", {"serial_nr": "abc-1"}, "serial_nr"),
        ("POST", "cis", {**valid_body(cmdb, "cis"), "serial_nr": "Abc-1"}, "serial_nr"),
    ]


def _team_names(cmdb: FullCmdb) -> list[tuple[str, str, dict[str, Any], str]]:
    other = cmdb.post("teams", {"name": "Server Team"})
    taken = cmdb.team["name"].upper()
    return [
        ("PATCH", f"teams/{other['id']}", {"name": taken}, "name"),
        ("POST", "teams", {"name": taken}, "name"),
    ]


def _emails(cmdb: FullCmdb) -> list[tuple[str, str, dict[str, Any], str]]:
    other = cmdb.post("people", {"name": "Other", "primary_email": "other@example.com"})
    taken = cmdb.person["primary_email"].upper()
    return [
        ("PATCH", f"people/{other['id']}", {"primary_email": taken}, "primary_email"),
        ("POST", "people", {"name": "Dup", "primary_email": taken}, "primary_email"),
    ]


def _disabled_provider(cmdb: FullCmdb) -> list[tuple[str, str, dict[str, Any], str]]:
    gone = cmdb.post("organizations", {"name": "Gone Inc", "disabled": True})
    body = {"provider_id": gone["id"]}
    return [
        ("PATCH", f"services/{cmdb.service['id']}", body, "provider_id"),
        ("POST", "services", {"name": "New", **body}, "provider_id"),
    ]


def _categories(cmdb: FullCmdb) -> list[tuple[str, str, dict[str, Any], str]]:
    other = cmdb.post("product_categories", valid_body(cmdb, "product_categories", "Desk"))
    same = {"name": "LAPTOP PC Alpha", "group": "computer", "rule_set": "server"}
    return [
        ("PATCH", f"product_categories/{other['id']}", same, "name"),
        ("POST", "product_categories", same, "name"),
        ("PATCH", f"product_categories/{cmdb.category['id']}", {"rule_set": "server"}, "rule_set"),
    ]


def _product_ids(cmdb: FullCmdb) -> list[tuple[str, str, dict[str, Any], str]]:
    cmdb.patch(f"products/{cmdb.product['id']}", {"productID": "LAT-5"})
    body = {**valid_body(cmdb, "products"), "brand": "dell", "productID": "lat-5"}
    return [("POST", "products", body, "productID")]


def _ci_rules(cmdb: FullCmdb) -> list[tuple[str, str, dict[str, Any], str]]:
    bare = cmdb.post("products", {"name": "Bare", "category_id": cmdb.category["id"]})
    ci = f"cis/{cmdb.server_ci['id']}"
    return [
        ("POST", "cis", {"product_id": bare["id"], "status": "in_stock"}, "support_team_id"),
        ("PATCH", ci, {"support_team_id": None}, "support_team_id"),
        ("PATCH", ci, {"product_id": None}, "product_id"),
    ]


@pytest.mark.parametrize(
    "setup",
    [_serials, _team_names, _emails, _disabled_provider, _categories, _product_ids, _ci_rules],
)
def test_resource_rules_refuse_and_change_nothing(mine: FullCmdb, setup: Any) -> None:
    attempts = setup(mine)
    before = snapshot(mine.client, mine.auth, mine.record_paths())
    counts = {res: total(mine.client, mine.auth, res) for res in RESOURCES}
    for method, path, body, field in attempts:
        _refused(mine, method, path, body, field)
    assert snapshot(mine.client, mine.auth, mine.record_paths()) == before
    assert {res: total(mine.client, mine.auth, res) for res in RESOURCES} == counts


# --- bodies ---------------------------------------------------------------------------------


def _write_paths(cmdb: FullCmdb) -> list[tuple[str, str]]:
    ci = cmdb.server_ci["id"]
    writes = [("POST", f"/v1/{res}") for res in RESOURCES]
    writes += [
        (m, f"/v1/{res}/{rec['id']}")
        for res, rec in cmdb.by_resource().items()
        for m in ("PATCH", "PUT")
    ]
    return [*writes, ("POST", f"/v1/cis/{ci}/ci_relations")]


@pytest.mark.parametrize(
    "content",
    [b'{"name": ', b"{'name': 'x'}", b"[1, 2]", b'"text"', b"42", b"null", b"true", b"", b"\xff"],
)
def test_bodies_that_are_not_json_objects_are_refused_in_the_xurrent_dialect(
    mine: FullCmdb, content: bytes
) -> None:
    before = snapshot(mine.client, mine.auth, mine.record_paths())
    for method, path in _write_paths(mine):
        response = mine.client.request(
            method,
            path,
            content=content,
            headers={**mine.auth, "Content-Type": "application/json"},
        )
        assert response.status_code in (400, 422), f"{method} {path}: {response.text}"
        body = assert_xurrent_error(response, response.status_code)
        assert "detail" not in body
    assert snapshot(mine.client, mine.auth, mine.record_paths()) == before


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversized_body_is_refused_with_413(mine: FullCmdb, server, chunked: bool) -> None:
    limit = server.settings.max_body_bytes
    payload = b'{"remarks": "' + b"x" * limit + b'"}'
    content: Any = iter([payload[i : i + 65536] for i in range(0, len(payload), 65536)])
    count = total(mine.client, mine.auth, "cis")
    response = mine.client.post(
        "/v1/cis",
        content=content if chunked else payload,
        headers={**mine.auth, "Content-Type": "application/json"},
    )
    assert_xurrent_error(response, 413)
    assert total(mine.client, mine.auth, "cis") == count


# --- conditional requests -------------------------------------------------------------------


@pytest.mark.parametrize("resource", list(RESOURCES))
def test_stale_if_match_is_refused_and_if_none_match_answers_304(
    mine: FullCmdb, resource: str
) -> None:
    url = f"/v1/{resource}/{the_record(mine, resource)['id']}"
    old = mine.client.get(url, headers=mine.auth).headers["ETag"]
    mine.client.patch(url, json={"source": "changed"}, headers=mine.auth).raise_for_status()
    current = mine.client.get(url, headers=mine.auth)
    before = snapshot(mine.client, mine.auth, [url.removeprefix("/v1/")])
    for method in ("PATCH", "PUT"):
        stale = mine.client.request(
            method, url, json={"source": "stale"}, headers={**mine.auth, "If-Match": old}
        )
        assert_xurrent_error(stale, 412)
    assert snapshot(mine.client, mine.auth, [url.removeprefix("/v1/")]) == before
    etag = current.headers["ETag"]
    assert etag != old
    fresh = mine.client.get(url, headers={**mine.auth, "If-None-Match": etag})
    assert fresh.status_code == 304 and fresh.content == b""
    outdated = mine.client.get(url, headers={**mine.auth, "If-None-Match": old})
    assert outdated.status_code == 200 and outdated.json() == current.json()


# --- permissions ----------------------------------------------------------------------------

ARCHIVING = ("archive", "trash", "restore")


def _write_routes(client: httpx.Client) -> list[tuple[str, str]]:
    return [(m, t) for m, t in v1_routes(client) if m != "GET"]


def _request(client: httpx.Client, method: str, template: str, ids: Any, auth: Any) -> Any:
    path = fill(template, ids) if "{" in template else template
    return client.request(method, path, json={} if method != "DELETE" else None, headers=auth)


def test_a_viewer_reads_but_cannot_write(mine: FullCmdb, owner: Tenant) -> None:
    client, tenant = mine.client, owner
    viewer = tenant.add_user(client, "viewer")
    client.get("/v1/me", headers=viewer["auth"])  # a user's person is made on first sight
    ids = route_ids(mine, int(mine.get("audit_lines", per_page=1)[0]["id"]))
    before = snapshot(client, tenant.auth, mine.record_paths())
    writes = _write_routes(client)
    assert len(writes) >= 30
    for method, template in writes:
        response = _request(client, method, template, ids, viewer["auth"])
        assert_xurrent_error(response, 403)
    for method, template in v1_routes(client):
        if method == "GET":
            response = _request(client, method, template, ids, viewer["auth"])
            # imports and exports need the integrations permission, webhooks the webhooks
            # permission, which viewers lack; a webhook's verification takes its code instead
            needs = ("/v1/import", "/v1/export", "/v1/webhook")
            expected = 403 if template.startswith(needs) else 200
            expected = 404 if template in PUBLIC else expected
            assert response.status_code == expected, f"{template}: {response.text}"
    assert snapshot(client, tenant.auth, mine.record_paths()) == before


def test_a_member_cannot_archive_trash_or_restore(mine: FullCmdb, owner: Tenant) -> None:
    client, tenant = mine.client, owner
    member = tenant.add_user(client, "member")
    ci = mine.server_ci["id"]
    before = audit_size(client, tenant.auth)
    for action in ARCHIVING:
        response = client.post(f"/v1/cis/{ci}/{action}", headers=member["auth"])
        assert_xurrent_error(response, 403)
    assert audit_size(client, tenant.auth) == before
    assert mine.get(f"cis/{ci}")["id"] == ci  # still in view


def test_without_credentials_only_the_root_answers(mine: FullCmdb) -> None:
    client = mine.client
    root = client.get("/v1")
    assert root.status_code == 200 and root.json() == {}
    ids = route_ids(mine, 1)
    for method, template in v1_routes(client):
        if template == "/v1":
            continue
        response = _request(client, method, template, ids, {})
        if template in PUBLIC:  # the receiver of a webhook proves itself with the code it got
            assert_xurrent_error(response, 404)
            continue
        assert_xurrent_error(response, 401)
        assert response.headers["WWW-Authenticate"], template

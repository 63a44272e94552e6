"""Tenant isolation of the CMDB over /v1: every route that takes an id answers 404 for another
account's records (and changes nothing there), and no list shows them.

The routes come from the app's OpenAPI, so that a new /v1 route with an id is covered as soon as
it exists; a route without an id must be one of the collections listed below."""

from typing import Any

import httpx
import pytest

from cmdb_helpers import FullCmdb, fill, make_full_cmdb, route_ids, snapshot, v1_routes
from landmark.cmdb.schema import RESOURCES

MARK = "Zeta"  # in the names of the other account's records: never in a response of ours
SINGLETONS = ("/v1", "/v1/me", "/v1/people/me", "/v1/enums", "/v1/account", "/v1/rate_limit")
COLLECTIONS = (
    "/v1/audit_lines",
    "/v1/import",  # the account's own imports (tests/test_import_export.py)
    *(f"/v1/{name}" for name in RESOURCES),
    *(f"/v1/{name}/{p}" for name, r in RESOURCES.items() for p in r.predefined),
    "/v1/webhooks",
    "/v1/webhooks/enabled",
    "/v1/webhooks/disabled",
    "/v1/webhook_policies",
)
STARTS = ("/v1/export",)  # POST only: starts an export of the caller's own account
BODIES: dict[str, Any] = {"PATCH": {"name": "Hijacked", "status": "removed"}, "PUT": {"name": "H"}}


@pytest.fixture
def world(client: httpx.Client, tenant, other_tenant) -> tuple[FullCmdb, FullCmdb]:
    theirs = make_full_cmdb(client, other_tenant.auth, suffix=f" {MARK}")
    for n in range(3):  # their audit trail is longer than ours: their last line id is not ours
        theirs.patch(f"cis/{theirs.db_ci['id']}", {"location": f"Room {n}"})
    return make_full_cmdb(client, tenant.auth, suffix=" Alpha"), theirs


def _last_line(cmdb: FullCmdb) -> int:
    return int(cmdb.get("audit_lines", per_page=1)[0]["id"])


def _attempts(template: str, mine: dict[str, int], theirs: dict[str, int]) -> list[str]:
    """Their ids throughout; with a sub-id also our owner with their sub-id and the reverse."""
    paths = [fill(template, theirs)]
    if "{relation_id}" in template or "{person_id}" in template:
        paths += [fill(template, theirs, owner=mine), fill(template, mine, owner=theirs)]
    return paths


def _body(method: str, template: str, mine: FullCmdb) -> Any:
    if template.endswith("/ci_relations") and method == "POST":
        return {"related_ci_id": mine.server_ci["id"], "relation_type": "parent"}
    return BODIES.get(method, {} if method == "POST" else None)


def test_every_id_route_answers_not_found_for_another_accounts_records(
    client: httpx.Client, world: tuple[FullCmdb, FullCmdb], tenant, other_tenant
) -> None:
    mine, theirs = world
    my_ids, their_ids = route_ids(mine, _last_line(mine)), route_ids(theirs, _last_line(theirs))
    assert their_ids["audit_lines"] > my_ids["audit_lines"]
    before = snapshot(client, other_tenant.auth, theirs.record_paths())
    mine_before = snapshot(client, tenant.auth, mine.record_paths())
    exercised = 0
    for method, template in v1_routes(client):
        if "{" not in template:
            covered = SINGLETONS + COLLECTIONS + STARTS
            assert template in covered, f"{method} {template}: not covered"
            continue
        for path in _attempts(template, my_ids, their_ids):
            body = _body(method, template, mine)
            response = client.request(method, path, json=body, headers=tenant.auth)
            assert response.status_code == 404, f"{method} {path}: {response.text}"
            assert set(response.json()) == {"message"} and MARK not in response.text
            exercised += 1
    assert exercised >= 40
    assert snapshot(client, other_tenant.auth, theirs.record_paths()) == before
    assert snapshot(client, tenant.auth, mine.record_paths()) == mine_before


def _listed_ids(body: Any, path: str) -> set[tuple[str, Any]]:
    """(resource, id) of every record a collection shows; audit lines by what they audit,
    imports and exports by token."""
    singular = {r.singular: name for name, r in RESOURCES.items()}
    if path.startswith("/v1/audit_lines"):
        return {(singular[line["audited"]], line[line["audited"]]["id"]) for line in body}
    key = "token" if path == "/v1/import" else "id"
    return {(path.split("/")[2], row[key]) for row in body}


def test_no_list_shows_another_accounts_records(
    client: httpx.Client, world: tuple[FullCmdb, FullCmdb], tenant
) -> None:
    mine, theirs = world
    client.post(f"/v1/teams/{mine.team['id']}/members/{mine.get('me')['id']}", headers=tenant.auth)
    their_records = {(res, rec["id"]) for res, rec in theirs.by_resource().items()}
    their_records |= {("cis", theirs.db_ci["id"])}
    their_records |= {("import", theirs.import_token)}
    hooks = {"webhooks": "webhook", "webhook_policies": "policy"}
    their_records |= {(path, getattr(theirs, name)["id"]) for path, name in hooks.items()}
    shown: set[tuple[str, Any]] = set()
    for path in COLLECTIONS:
        response = client.get(path, params={"per_page": 100}, headers=tenant.auth)
        assert response.status_code == 200, f"{path}: {response.text}"
        assert MARK not in response.text, path
        listed = _listed_ids(response.json(), path)
        assert not listed & their_records, path
        shown |= listed
    assert {(res, rec["id"]) for res, rec in mine.by_resource().items()} <= shown
    assert ("import", mine.import_token) in shown
    assert {(path, getattr(mine, name)["id"]) for path, name in hooks.items()} <= shown
    for path in SINGLETONS:
        response = client.get(path, headers=tenant.auth)
        assert response.status_code == 200 and MARK not in response.text, path


@pytest.mark.parametrize(
    "query",
    [
        {"ids": "{cis}"},
        {"id": "{cis}"},
        {"support_team_id": "{teams}"},
        {"support_team": "{teams}"},
        {"product": "{products}"},
        {"site_id": "{sites}"},
        {"financial_owner": "{organizations}"},
    ],
)
def test_filtering_on_another_accounts_ids_finds_nothing(
    client: httpx.Client, world: tuple[FullCmdb, FullCmdb], tenant, query: dict[str, str]
) -> None:
    _, theirs = world
    ids = {res: rec["id"] for res, rec in theirs.by_resource().items()}
    params = {key: value.format(**ids) for key, value in query.items()}
    response = client.get("/v1/cis", params=params, headers=tenant.auth)
    assert response.status_code == 200 and response.json() == []
    assert response.headers["X-Pagination-Total-Entries"] == "0"

"""The CMDB over the Xurrent API, end to end: records, CI rules, audit, links, ETags."""

import asyncio

import httpx
import pytest

from cmdb_helpers import Cmdb, make_cmdb
from conftest import close_connections
from landmark.core.db import asyncpg_dsn


@pytest.fixture
def cmdb(client: httpx.Client, tenant) -> Cmdb:
    return make_cmdb(client, tenant.auth)


def test_root_answers_empty_object_without_credentials(client: httpx.Client) -> None:
    response = client.get("/v1")
    assert response.status_code == 200 and response.json() == {}


def test_records_render_references_and_every_field(cmdb: Cmdb) -> None:
    assert cmdb.category["reference"] == "computer/laptop_pc"
    product = cmdb.get(f"products/{cmdb.product['id']}")
    assert product["category"] == {"id": cmdb.category["id"], "name": "Laptop PC"}
    assert product["rule_set"] == "physical_asset"
    service = cmdb.get(f"services/{cmdb.service['id']}")
    assert service["provider"] == {"id": cmdb.organization["id"], "name": "Widget Data Center"}


def test_ci_defaults_from_product_and_derived_fields(cmdb: Cmdb) -> None:
    ci = cmdb.ci(headers={"User-Agent": "discovery/1.0"})
    assert ci["name"] == "Dell Latitude"
    assert ci["remarks"] == "Standard issue."
    assert ci["support_team"]["id"] == cmdb.team["id"]
    assert ci["service"] == {
        "id": cmdb.service["id"],
        "name": "Personal Computing",
        "provider": {"id": cmdb.organization["id"], "name": "Widget Data Center"},
    }
    assert ci["financial_owner"]["id"] == cmdb.organization["id"]
    assert ci["product"] == {
        "id": cmdb.product["id"],
        "name": "Dell Latitude",
        "brand": "Dell",
        "category": "computer/laptop_pc",
    }
    assert ci["rule_set"] == "physical_asset"
    assert ci["software"] is False and ci["ci_type"] == "hardware"
    assert ci["source"] == "discovery/1.0"
    assert ci["label"] == "CI00001"
    assert ci["serial_nr"] is None and ci["site"] is None  # blanks are null, not missing
    assert "remarks_attachments" not in ci  # write-only


def test_source_header_wins_over_user_agent_and_body_wins_over_both(cmdb: Cmdb) -> None:
    by_header = cmdb.ci(headers={"X-4me-Source": "SCCM", "User-Agent": "x"})
    assert by_header["source"] == "SCCM"
    by_xurrent = cmdb.ci(headers={"X-Xurrent-Source": "NNM"})
    assert by_xurrent["source"] == "NNM"
    by_body = cmdb.ci(source="Own", sourceID="42", headers={"X-4me-Source": "SCCM"})
    assert by_body["source"] == "Own" and by_body["sourceID"] == "42"


def test_labels_continue_the_prefix_and_padding_of_the_category(cmdb: Cmdb) -> None:
    cmdb.ci(label="NLMON00039")
    assert cmdb.ci()["label"] == "NLMON00040"
    assert cmdb.ci()["label"] == "NLMON00041"


def test_post_with_the_name_of_an_inactive_ci_updates_it(cmdb: Cmdb, client: httpx.Client) -> None:
    old = cmdb.ci(name="srv-042", status="removed")
    again = cmdb.ci(200, name="srv-042", serial_nr="S-1")
    assert again["id"] == old["id"] and again["serial_nr"] == "S-1"
    active = cmdb.ci(name="srv-043")
    second = cmdb.ci(name="srv-043")  # an active namesake is not reused
    assert second["id"] != active["id"]


def test_brand_and_serial_number_are_unique_without_case(cmdb: Cmdb) -> None:
    cmdb.ci(serial_nr="ABC-1")
    error = cmdb.ci(422, serial_nr="abc-1")
    assert error["errors"][0][0] == "serial_nr"
    other = make_cmdb(cmdb.client, cmdb.auth, brand="HP", suffix=" 2")
    assert other.ci(serial_nr="ABC-1")["serial_nr"] == "ABC-1"  # another brand may


def test_support_team_is_required_unless_removed(cmdb: Cmdb) -> None:
    product = cmdb.post("products", {"name": "Bare", "category_id": cmdb.category["id"]})
    body = {"product_id": product["id"], "status": "in_production"}
    error = cmdb.post("cis", body, 422)
    assert error["errors"][0][0] == "support_team_id"
    assert cmdb.post("cis", {**body, "status": "removed"})["support_team"] is None


def test_validation_names_each_bad_field_and_changes_nothing(cmdb: Cmdb) -> None:
    before = cmdb.client.get("/v1/cis", headers=cmdb.auth).headers["X-Pagination-Total-Entries"]
    error = cmdb.ci(
        422,
        name="x" * 161,
        nr_of_cores="many",
        license_type="free",
        in_use_since="yesterday",
    )
    fields = {field for field, _ in error["errors"]}
    assert fields == {"name", "nr_of_cores", "license_type", "in_use_since"}
    assert error["message"] == "Validation Failed"
    after = cmdb.client.get("/v1/cis", headers=cmdb.auth).headers["X-Pagination-Total-Entries"]
    assert before == after


def test_references_to_another_accounts_records_are_not_found(
    cmdb: Cmdb, client: httpx.Client, other_tenant
) -> None:
    theirs = make_cmdb(client, other_tenant.auth)
    error = cmdb.ci(422, support_team_id=theirs.team["id"])
    assert error["errors"] == [["support_team_id", f"Support team {theirs.team['id']} not found"]]
    assert cmdb.get(f"cis/{theirs.ci()['id']}", expect=404)["message"]


def test_archive_trash_restore_need_the_right_and_move_the_ci(
    cmdb: Cmdb, client: httpx.Client, tenant
) -> None:
    ci = cmdb.ci()
    member = tenant.add_user(client, "member")
    denied = client.post(f"/v1/cis/{ci['id']}/archive", headers=member["auth"])
    assert denied.status_code == 403
    cmdb.post(f"cis/{ci['id']}/archive", {}, 200)
    listed = [c["id"] for c in cmdb.get("cis", per_page=100)]
    assert ci["id"] not in listed
    cmdb.post(f"cis/{ci['id']}/trash", {}, 200)
    restored = cmdb.post(f"cis/{ci['id']}/restore", {}, 200)
    assert restored["status"] == "archived"
    assert ci["id"] in [c["id"] for c in cmdb.get("cis/inactive", per_page=100)]
    actions = [line["action"] for line in cmdb.get(f"cis/{ci['id']}/audit")]
    assert actions == ["restore", "trash", "archive", "create"]


def test_every_change_is_audited_with_old_and_new_values(cmdb: Cmdb) -> None:
    ci = cmdb.ci()
    cmdb.patch(f"cis/{ci['id']}", {"status": "broken_down", "serial_nr": "Z9"})
    lines = cmdb.get(f"cis/{ci['id']}/audit")
    assert lines[0]["action"] == "update"
    assert lines[0]["changes"] == {
        "status": ["in_production", "broken_down"],
        "serial_nr": [None, "Z9"],
    }
    assert lines[0]["created_by"]["name"]
    account_wide = cmdb.get("audit_lines", per_page=100)
    assert any(line["audited"] == "ci" and line["ci"] == {"id": ci["id"]} for line in account_wide)
    one = cmdb.get(f"audit_lines/{lines[0]['id']}")
    assert one["changes"] == lines[0]["changes"]


def test_put_is_accepted_as_patch(cmdb: Cmdb) -> None:
    ci = cmdb.ci()
    response = cmdb.client.put(
        f"/v1/cis/{ci['id']}", json={"location": "Room 202"}, headers=cmdb.auth
    )
    assert response.status_code == 200 and response.json()["location"] == "Room 202"


def test_etag_and_conditional_requests(cmdb: Cmdb) -> None:
    ci = cmdb.ci()
    url = f"/v1/cis/{ci['id']}"
    first = cmdb.client.get(url, headers=cmdb.auth)
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    again = cmdb.client.get(url, headers={**cmdb.auth, "If-None-Match": etag})
    assert again.status_code == 304
    cmdb.patch(f"cis/{ci['id']}", {"location": "Room 1"})
    stale = cmdb.client.patch(
        url, json={"location": "Room 2"}, headers={**cmdb.auth, "If-Match": etag}
    )
    assert stale.status_code == 412
    assert cmdb.get(f"cis/{ci['id']}")["location"] == "Room 1"
    fresh = cmdb.client.get(url, headers=cmdb.auth).headers["ETag"]
    ok = cmdb.client.patch(
        url, json={"location": "Room 3"}, headers={**cmdb.auth, "If-Match": fresh}
    )
    assert ok.status_code == 200


def test_requests_outlive_the_database_closing_its_connections(cmdb: Cmdb, server) -> None:
    """The database closes every pooled connection (as a restart does): the next read and the
    next write still succeed, unseen by the client. Reads by id (core/db.py Reads) replace a
    dead connection and run again; the engine's pool replaces closed ones at checkout."""
    if not server.settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL: SQLite has no server to close connections")
    ci = cmdb.ci()
    before = cmdb.get(f"cis/{ci['id']}")
    dsn = asyncpg_dsn(server.settings.resolved_database_url)
    assert dsn is not None
    assert asyncio.run(close_connections(dsn)), "the server holds pooled connections"
    assert cmdb.get(f"cis/{ci['id']}") == before
    changed = cmdb.patch(f"cis/{ci['id']}", {"location": "Room 9"})
    assert changed["location"] == "Room 9"
    assert cmdb.get(f"cis/{ci['id']}")["location"] == "Room 9"


def test_ci_relations_and_users(cmdb: Cmdb) -> None:
    parent, child = cmdb.ci(), cmdb.ci()
    relation = cmdb.post(
        f"cis/{parent['id']}/ci_relations", {"related_ci_id": child["id"], "relation_type": "child"}
    )
    assert relation["ci"]["id"] == child["id"] and relation["relation_type"] == "child"
    seen_from_child = cmdb.get(f"cis/{child['id']}/ci_relations")
    assert seen_from_child == [
        {
            "id": relation["id"],
            "ci": {"id": parent["id"], "label": parent["label"], "name": parent["name"]},
            "relation_type": "parent",
        }
    ]
    dup = cmdb.post(
        f"cis/{child['id']}/ci_relations",
        {"related_ci_id": parent["id"], "relation_type": "parent"},
        422,
    )
    assert dup["errors"][0][0] == "related_ci_id"
    deleted = cmdb.client.delete(
        f"/v1/cis/{parent['id']}/ci_relations/{relation['id']}", headers=cmdb.auth
    )
    assert deleted.status_code == 204
    assert cmdb.get(f"cis/{parent['id']}/ci_relations") == []

    person = cmdb.post("people", {"name": "Ellen Brown", "primary_email": "ellen@example.com"})
    cmdb.post(f"cis/{parent['id']}/users/{person['id']}", {})
    assert [p["id"] for p in cmdb.get(f"cis/{parent['id']}/users")] == [person["id"]]
    assert cmdb.client.delete(f"/v1/cis/{parent['id']}/users", headers=cmdb.auth).status_code == 204
    assert cmdb.get(f"cis/{parent['id']}/users") == []


def test_me_teams_and_supported_by_my_teams(cmdb: Cmdb) -> None:
    me = cmdb.get("me")
    assert cmdb.get("people/me")["id"] == me["id"]
    mine = cmdb.ci()
    other_team = cmdb.post("teams", {"name": "Server Team"})
    theirs = cmdb.ci(support_team_id=other_team["id"])
    assert cmdb.get("cis/supported_by_my_teams") == []
    cmdb.post(f"teams/{cmdb.team['id']}/members/{me['id']}", {})
    assert [t["id"] for t in cmdb.get(f"people/{me['id']}/teams")] == [cmdb.team["id"]]
    supported = [c["id"] for c in cmdb.get("cis/supported_by_my_teams")]
    assert mine["id"] in supported and theirs["id"] not in supported


def test_unique_names_and_enabled_disabled_filters(cmdb: Cmdb) -> None:
    error = cmdb.post("teams", {"name": "end-user support"}, 422)
    assert error["errors"] == [["name", "Name has already been taken"]]
    cmdb.patch(f"teams/{cmdb.team['id']}", {"disabled": True})
    assert [t["id"] for t in cmdb.get("teams/disabled")] == [cmdb.team["id"]]
    assert cmdb.get("teams/enabled") == []
    assert cmdb.get("teams")[0]["disabled"] is True


def test_enums_account_and_rate_limit(cmdb: Cmdb, tenant) -> None:
    enums = cmdb.get("enums")
    assert {"value": "in_production"} in enums["ci_status"]
    assert cmdb.get("account")["id"] == tenant.slug
    first = cmdb.get("rate_limit")["resources"]["core"]
    second = cmdb.get("rate_limit")["resources"]["core"]
    # asking does not count (>=: the fixed window may roll over between the two calls)
    assert second["remaining"] >= first["remaining"]


def test_collections_paginate_filter_and_sort(cmdb: Cmdb) -> None:
    for n in range(25):
        cmdb.ci(label=f"SRV{n:03d}", status="in_stock" if n % 5 == 0 else "in_production")
    response = cmdb.client.get("/v1/cis", headers=cmdb.auth)
    assert len(response.json()) == 20
    assert response.headers["X-Pagination-Total-Entries"] == "25"
    assert 'rel="next"' in response.headers["Link"]
    stock = cmdb.get("cis", status="in_stock")
    assert [c["label"] for c in stock] == ["SRV000", "SRV005", "SRV010", "SRV015", "SRV020"]
    assert cmdb.get("cis", label="srv003")[0]["label"] == "SRV003"  # label ignores case
    newest = cmdb.get("cis", sort="-label", per_page=2, fields="label,status")
    assert newest == [
        {"id": newest[0]["id"], "label": "SRV024", "status": "in_production"},
        {"id": newest[1]["id"], "label": "SRV023", "status": "in_production"},
    ]
    bad_sort = cmdb.get("cis", 400, sort="remarks")
    assert bad_sort == {"message": "Sorting not allowed on fields: remarks"}
    assert "colour" in cmdb.get("cis", 400, colour="red")["message"]
    by_ref = cmdb.get("cis", support_team_id=cmdb.team["id"], per_page=100)
    assert len(by_ref) == 25 == len(cmdb.get("cis", support_team=cmdb.team["id"], per_page=100))


def _walk(cmdb: Cmdb, url: str, rel: str) -> tuple[list[int], str]:
    """Follow `rel` links from `url`; the ids of every page, and the last page's URL."""
    seen: list[int] = []
    while True:
        response = cmdb.client.get(url, headers=cmdb.auth)
        assert response.status_code == 200, response.text
        ids = [row["id"] for row in response.json()]
        seen += ids if rel == "next" else ids[::-1]
        link = response.links.get(rel)
        if link is None:
            return seen, url
        url = link["url"]


@pytest.mark.parametrize("sort", ["sourceID", "-sourceID"])
def test_cursors_walk_a_nullable_sort_both_ways(cmdb: Cmdb, sort: str) -> None:
    for n in range(7):
        cmdb.ci(sourceID=f"s{n % 3}" if n % 2 else None)
    whole = [ci["id"] for ci in cmdb.get("cis", sort=sort, per_page=100)]
    forward, last = _walk(cmdb, f"/v1/cis?sort={sort}&per_page=2", "next")
    assert forward == whole
    backward, _ = _walk(cmdb, last, "prev")
    assert backward[::-1] == whole

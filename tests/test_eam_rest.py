"""The LeanIX Pathfinder REST API over HTTP: fact sheets, relations, hierarchy, tags, archive,
the data model, events and tenant isolation."""

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from landmark.core.events import Event

PF = "/services/pathfinder/v1"


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "OK" and body["errors"] == []
    return body["data"]


def _error(response: httpx.Response, status: int, path: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "ERROR"
    if path is not None:
        assert body["errors"][0]["value"] == path, body
    return body


def _field(name: str, kind: str, **data: Any) -> dict[str, Any]:
    return {"name": name, "data": {"type": kind, **data}}


def _create(client, tenant, type: str, name: str, **extra: Any) -> dict[str, Any]:
    body = {"type": type, "name": name, **extra}
    return _ok(client.post(f"{PF}/factSheets", json=body, headers=tenant.auth))


def _get(client, tenant, fs_id: str) -> dict[str, Any]:
    return _ok(client.get(f"{PF}/factSheets/{fs_id}", headers=tenant.auth))


def _fields(fs: dict[str, Any]) -> dict[str, Any]:
    return {f["name"]: f["data"] for f in fs["fields"]}


def _relate(client, tenant, fs_id: str, **body: Any) -> httpx.Response:
    return client.post(f"{PF}/factSheets/{fs_id}/relations", json=body, headers=tenant.auth)


def test_create_read_update_with_rev(client, tenant) -> None:
    made = _create(
        client,
        tenant,
        "Application",
        "CRM",
        description="Customers",
        fields=[
            _field("businessCriticality", "SingleSelect", keyword="missionCritical"),
            _field(
                "lifecycle", "Lifecycle", phases=[{"phase": "active", "startDate": "2020-01-01"}]
            ),
            _field("externalId", "ExternalId", externalId="APP-1"),
            _field("alias", "StringValue", value="crm"),
        ],
    )
    assert made["rev"] == 1 and made["status"] == "ACTIVE" and made["level"] == 1
    assert made["displayName"] == made["fullName"] == "CRM"
    fields = _fields(made)
    assert fields["businessCriticality"] == {"type": "SingleSelect", "keyword": "missionCritical"}
    assert fields["lifecycle"]["phases"] == [{"phase": "active", "startDate": "2020-01-01"}]
    assert fields["externalId"]["externalId"] == "APP-1"
    assert 0 < made["completion"]["completion"] < 1
    assert made["completion"]["percentage"] == round(made["completion"]["completion"] * 100)
    assert made["createdAt"].endswith("+00:00")
    read = _get(client, tenant, made["id"])
    assert read == made

    url = f"{PF}/factSheets/{made['id']}"
    changed = _ok(
        client.put(url, json={"rev": 1, "name": "CRM 2", "description": None}, headers=tenant.auth)
    )
    assert changed["rev"] == 2 and changed["name"] == "CRM 2" and changed["description"] is None
    assert changed["completion"]["completion"] < made["completion"]["completion"]

    stale = client.put(url, json={"rev": 1, "name": "Lost update"}, headers=tenant.auth)
    body = _error(stale, 409, "/rev")
    assert "STALE_REV" in body["errors"][0]["messages"][0]
    assert _get(client, tenant, made["id"])["name"] == "CRM 2"


def test_values_are_validated_against_the_model(client, tenant) -> None:
    fs = _create(client, tenant, "Application", "Validated")
    url = f"{PF}/factSheets/{fs['id']}"
    bad_select = {"fields": [_field("businessCriticality", "SingleSelect", keyword="huge")]}
    body = _error(
        client.put(url, json=bad_select, headers=tenant.auth), 422, "/businessCriticality"
    )
    assert "huge" in body["errors"][0]["messages"][0]
    unknown = {"fields": [_field("colour", "StringValue", value="red")]}
    _error(client.put(url, json=unknown, headers=tenant.auth), 422, "/colour")
    bad_phase = {
        "fields": [
            _field(
                "lifecycle", "Lifecycle", phases=[{"phase": "retired", "startDate": "2020-01-01"}]
            )
        ]
    }
    _error(client.put(url, json=bad_phase, headers=tenant.auth), 422, "/lifecycle")
    bad_number = {"fields": [_field("budgetOpex", "DoubleValue", value="lots")]}
    _error(client.put(url, json=bad_number, headers=tenant.auth), 422, "/budgetOpex")
    unknown_type = client.post(
        f"{PF}/factSheets", json={"type": "Spaceship", "name": "x"}, headers=tenant.auth
    )
    _error(unknown_type, 422, "/type")
    no_name = client.post(f"{PF}/factSheets", json={"type": "Application"}, headers=tenant.auth)
    _error(no_name, 422, "/name")
    assert _get(client, tenant, fs["id"])["rev"] == 1


def test_archive_needs_a_comment_and_recover_brings_relations_back(client, tenant) -> None:
    app = _create(client, tenant, "Application", "Legacy")
    itc = _create(client, tenant, "ITComponent", "Mainframe")
    _ok(_relate(client, tenant, app["id"], type="relApplicationToITComponent", toId=itc["id"]))
    url = f"{PF}/factSheets/{app['id']}"
    _error(client.request("DELETE", url, json={"rev": 2}, headers=tenant.auth), 422, "/status")
    assert _get(client, tenant, app["id"])["status"] == "ACTIVE"
    archived = _ok(
        client.request("DELETE", url, json={"comment": "retired", "rev": 2}, headers=tenant.auth)
    )
    assert archived["status"] == "ARCHIVED" and archived["rev"] == 3
    listed = _ok(
        client.get(f"{PF}/factSheets", params={"type": "Application"}, headers=tenant.auth)
    )
    assert app["id"] not in [f["id"] for f in listed]
    only = client.get(f"{PF}/factSheets", params={"archivedOnly": "true"}, headers=tenant.auth)
    assert [f["id"] for f in _ok(only)] == [app["id"]]
    # The relation is archived with it: the IT component no longer shows it.
    assert _ok(client.get(f"{PF}/factSheets/{itc['id']}/relations", headers=tenant.auth)) == []
    # An archived fact sheet cannot be edited, only recovered.
    _error(client.put(url, json={"name": "x"}, headers=tenant.auth), 422, "/name")
    recovered = _ok(client.put(url, json={"status": "ACTIVE"}, headers=tenant.auth))
    assert recovered["status"] == "ACTIVE"
    back = _ok(client.get(f"{PF}/factSheets/{itc['id']}/relations", headers=tenant.auth))
    assert [r["fromId"] for r in back] == [app["id"]]


def test_relations_add_replace_remove(client, tenant) -> None:
    app = _create(client, tenant, "Application", "Shop")
    db = _create(client, tenant, "ITComponent", "Postgres")
    cache = _create(client, tenant, "ITComponent", "Redis")
    made = _ok(
        _relate(
            client, tenant, app["id"], type="relApplicationToITComponent", toId=db["id"],
            activeFrom="2021-01-01", activeUntil="2025-12-31",
            fields={"costTotalAnnual": 125, "description": "primary store"},
        )
    )  # fmt: skip
    assert made["fromId"] == app["id"] and made["toId"] == db["id"]
    assert (made["activeFrom"], made["activeUntil"]) == ("2021-01-01", "2025-12-31")
    assert {f["name"]: f["data"] for f in made["fields"]}["costTotalAnnual"]["value"] == 125
    assert made["factSheet"]["name"] == "Postgres"
    # The other end sees it under the same relation.
    from_db = _ok(client.get(f"{PF}/factSheets/{db['id']}/relations", headers=tenant.auth))
    assert [r["id"] for r in from_db] == [made["id"]] and from_db[0]["factSheet"]["name"] == "Shop"

    rel_url = f"{PF}/factSheets/{app['id']}/relations/{made['id']}"
    body = {
        "type": "relApplicationToITComponent",
        "toId": cache["id"],
        "fields": {"costTotalAnnual": 99},
    }
    replaced = _ok(client.put(rel_url, json=body, headers=tenant.auth))
    assert replaced["toId"] == cache["id"] and replaced["activeFrom"] == "2021-01-01"
    assert {f["name"]: f["data"] for f in replaced["fields"]}["costTotalAnnual"]["value"] == 99

    # Relation fields also come as rendered: [{name, data}].
    listed = {
        "type": "relApplicationToITComponent",
        "fields": [
            _field("costTotalAnnual", "DoubleValue", value=50),
            _field("description", "StringValue", value="cache"),
        ],
    }
    relisted = _ok(client.put(rel_url, json=listed, headers=tenant.auth))
    values = {f["name"]: f["data"] for f in relisted["fields"]}
    assert values["costTotalAnnual"]["value"] == 50 and values["description"]["value"] == "cache"
    assert relisted["toId"] == cache["id"]

    bad_dates = _relate(
        client, tenant, app["id"], type="relApplicationToITComponent", toId=db["id"],
        activeFrom="2025-01-01", activeUntil="2020-01-01",
    )  # fmt: skip
    _error(bad_dates, 422, "/relApplicationToITComponent/new_1")
    unknown_field = _relate(
        client, tenant, app["id"], type="relApplicationToITComponent", toId=db["id"],
        fields={"colour": "red"},
    )  # fmt: skip
    assert "colour" in _error(unknown_field, 422)["errors"][0]["messages"][0]

    _ok(client.delete(rel_url, headers=tenant.auth))
    assert _ok(client.get(f"{PF}/factSheets/{app['id']}/relations", headers=tenant.auth)) == []
    assert _get(client, tenant, app["id"])["rev"] == 5


def test_wrong_type_and_single_multiplicity_are_refused(client, tenant) -> None:
    app = _create(client, tenant, "Application", "Provider A")
    other = _create(client, tenant, "Application", "Provider B")
    data = _create(client, tenant, "DataObject", "Customer")
    api = _create(client, tenant, "Interface", "Customer API")
    wrong = _relate(client, tenant, app["id"], type="relApplicationToITComponent", toId=data["id"])
    body = _error(wrong, 422, "/relApplicationToITComponent/new_1")
    assert "RELATION_WRONG_TYPE" in body["errors"][0]["messages"][0]
    # An interface has one provider application.
    _ok(
        _relate(client, tenant, app["id"], type="relProviderApplicationToInterface", toId=api["id"])
    )
    second = _relate(
        client, tenant, other["id"], type="relProviderApplicationToInterface", toId=api["id"]
    )
    assert "MULTIPLICITY" in _error(second, 422)["errors"][0]["messages"][0]
    duplicate = _relate(
        client, tenant, app["id"], type="relProviderApplicationToInterface", toId=api["id"]
    )
    _error(duplicate, 422)
    # From the interface's side, with the reverse name.
    seen = _ok(client.get(f"{PF}/factSheets/{api['id']}/relations", headers=tenant.auth))
    assert [(r["type"], r["fromId"]) for r in seen] == [
        ("relProviderApplicationToInterface", app["id"])
    ]
    assert _get(client, tenant, other["id"])["rev"] == 1


def test_hierarchy_depth_cycles_and_names(client, tenant) -> None:
    def child(name: str, parent: str) -> dict[str, Any]:
        rel = [{"type": "relToParent", "toId": parent}]
        return _create(client, tenant, "BusinessCapability", name, relations=rel)

    top = _create(client, tenant, "BusinessCapability", "Finance")
    mid = child("Accounting", top["id"])
    low = child("Payables", mid["id"])
    assert (low["level"], low["fullName"]) == (3, "Finance / Accounting / Payables")
    too_deep = client.post(
        f"{PF}/factSheets",
        json={
            "type": "BusinessCapability",
            "name": "Too deep",
            "relations": [{"type": "relToParent", "toId": low["id"]}],
        },
        headers=tenant.auth,
    )
    assert (
        "HIERARCHY_DEPTH" in _error(too_deep, 422, "/relToParent/new_1")["errors"][0]["messages"][0]
    )
    cycle = _relate(client, tenant, top["id"], type="relToParent", toId=low["id"])
    assert "HIERARCHY_CYCLE" in _error(cycle, 422)["errors"][0]["messages"][0]
    two_parents = _relate(client, tenant, low["id"], type="relToParent", toId=top["id"])
    assert "MULTIPLICITY" in _error(two_parents, 422)["errors"][0]["messages"][0]
    tree = client.get(f"{PF}/factSheets/hierarchy/{top['id']}", headers=tenant.auth)
    assert [f["name"] for f in _ok(tree)] == ["Finance", "Accounting", "Payables"]
    assert tree.json()["total"] == 3
    _ok(client.put(f"{PF}/factSheets/{top['id']}", json={"name": "Money"}, headers=tenant.auth))
    assert _get(client, tenant, low["id"])["fullName"] == "Money / Accounting / Payables"
    assert _get(client, tenant, top["id"])["level"] == 1


def test_tags_other_tags_and_single_groups(client, tenant, server) -> None:
    from landmark.eam import service

    async def groups(session):
        headers = {"authorization": f"Bearer {tenant.token}"}
        who = await server.app.state.authenticator.authenticate(headers, session)
        group = await service.create_tag_group(session, who, "Cloud", mode="SINGLE")
        only_apps = await service.create_tag_group(
            session, who, "App only", restrict_to_types=["Application"]
        )
        tags = [await service.create_tag(session, who, n, group.id) for n in ("AWS", "Azure")]
        restricted = await service.create_tag(session, who, "Special", only_apps.id)
        return [str(t.id) for t in tags], str(restricted.id)

    (aws, azure), special = server.run(groups)
    fs = _create(client, tenant, "Application", "Tagged", tags=[{"name": "legacy"}])
    assert [(t["name"], t["tagGroup"]) for t in fs["tags"]] == [("legacy", None)]
    url = f"{PF}/factSheets/{fs['id']}"
    both = {"tags": [{"id": aws}, {"id": azure}]}
    assert (
        "TAG_GROUP_SINGLE"
        in _error(client.put(url, json=both, headers=tenant.auth), 422, "/tags")["errors"][0][
            "messages"
        ][0]
    )
    one = _ok(
        client.put(url, json={"tags": [{"id": aws}, {"name": "legacy"}]}, headers=tenant.auth)
    )
    assert sorted(t["name"] for t in one["tags"]) == ["AWS", "legacy"]
    assert {t["name"]: (t["tagGroup"] or {}).get("name") for t in one["tags"]}["AWS"] == "Cloud"
    itc = _create(client, tenant, "ITComponent", "Box")
    restricted = client.put(
        f"{PF}/factSheets/{itc['id']}", json={"tags": [{"id": special}]}, headers=tenant.auth
    )
    _error(restricted, 422, "/tags")
    # A second fact sheet reuses "legacy" from Other tags rather than making another.
    again = _create(client, tenant, "Application", "Tagged too", tags=[{"name": "legacy"}])
    assert again["tags"][0]["id"] == fs["tags"][0]["id"]
    # A tag group's name, and Other tags, as GraphQL facet keys.

    def named(key: str, keys: list[str]) -> list[str]:
        query = """query($f: FilterInput) { allFactSheets(filter: $f) {
            edges { node { name } } } }"""
        facets = {"facetFilters": [{"facetKey": key, "operator": "OR", "keys": keys}]}
        body = {"query": query, "variables": {"f": facets}}
        answer = client.post(f"{PF}/graphql", json=body, headers=tenant.auth).json()
        assert answer["errors"] is None, answer["errors"]
        return sorted(e["node"]["name"] for e in answer["data"]["allFactSheets"]["edges"])

    assert named("Cloud", [aws]) == ["Tagged"]
    assert named("Cloud", ["__missing__"]) == ["Box", "Tagged too"]
    assert named("Other tags", ["__missing__"]) == ["Box"]


def test_events_have_increasing_sequence_numbers(client, tenant, server) -> None:
    fs = _create(client, tenant, "Application", "Evented")
    itc = _create(client, tenant, "ITComponent", "Evented ITC")
    _ok(_relate(client, tenant, fs["id"], type="relApplicationToITComponent", toId=itc["id"]))
    url = f"{PF}/factSheets/{fs['id']}"
    _ok(client.put(url, json={"tags": [{"name": "evented"}]}, headers=tenant.auth))
    _ok(client.request("DELETE", url, json={"comment": "bye"}, headers=tenant.auth))

    async def events(session):
        query = (
            select(Event)
            .where(Event.account_id == tenant.slug, Event.subject_id == fs["id"])
            .order_by(Event.seq)
        )
        return [(e.seq, e.type, e.data) for e in (await session.execute(query)).scalars()]

    found = server.run(events)
    assert [t for _, t, _ in found] == [
        "FACT_SHEET_CREATED",
        "FACT_SHEET_UPDATED",
        "RELATION_CREATED",
        "FACT_SHEET_UPDATED",
        "FACT_SHEET_TAG_ADDED",
        "FACT_SHEET_ARCHIVED",
        "RELATION_ARCHIVED",
    ]
    seqs = [s for s, _, _ in found]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    created = found[0][2]["factSheet"]
    assert created["id"] == fs["id"] and created["type"] == "Application" and created["rev"] == 1
    assert found[2][2]["relation"]["toId"] == itc["id"]
    assert found[5][2]["comment"] == "bye" and found[5][2]["factSheet"]["status"] == "ARCHIVED"


def test_data_model_get_put_orphans_and_force(client, tenant) -> None:
    model = _ok(client.get(f"{PF}/models/dataModel", headers=tenant.auth))
    app = model["factSheets"]["Application"]
    assert app["fields"]["businessCriticality"]["values"][-1] == "missionCritical"
    assert app["fields"]["lifecycle"]["values"] == [
        "plan",
        "phaseIn",
        "active",
        "phaseOut",
        "endOfLife",
    ]
    assert (
        model["relations"]["relApplicationToITComponent"]["to"]["name"]
        == "relITComponentToApplication"
    )
    _create(
        client, tenant, "Application", "Critical",
        fields=[_field("businessCriticality", "SingleSelect", keyword="missionCritical")],
    )  # fmt: skip
    values = app["fields"]["businessCriticality"]["values"]
    app["fields"]["businessCriticality"]["values"] = [v for v in values if v != "missionCritical"]
    app["fields"]["cloudReady"] = {"type": "SINGLE_SELECT", "values": ["yes", "no"]}
    refused = client.put(f"{PF}/models/dataModel", json=model, headers=tenant.auth)
    path = "/factSheets/Application/fields/businessCriticality/values/missionCritical"
    _error(refused, 422, path)
    forced = client.put(
        f"{PF}/models/dataModel", params={"force": "true"}, json=model, headers=tenant.auth
    )
    assert "cloudReady" in _ok(forced)["factSheets"]["Application"]["fields"]
    fs = _create(
        client,
        tenant,
        "Application",
        "Ready",
        fields=[_field("cloudReady", "SingleSelect", keyword="yes")],
    )
    assert _fields(fs)["cloudReady"]["keyword"] == "yes"
    # Removing a type in use is refused too.
    del model["factSheets"]["Application"]
    model["relations"] = {
        k: r for k, r in model["relations"].items()
        if "Application" not in (r["from"]["factSheetType"], r["to"]["factSheetType"])
    }  # fmt: skip
    _error(
        client.put(f"{PF}/models/dataModel", json=model, headers=tenant.auth),
        422,
        "/factSheets/Application",
    )


def test_roles(client, tenant) -> None:
    viewer = tenant.add_user(client, "viewer")
    member = tenant.add_user(client, "member")
    fs = _create(client, tenant, "Application", "Guarded")
    assert _ok(client.get(f"{PF}/factSheets/{fs['id']}", headers=viewer["auth"]))["id"] == fs["id"]
    _error(
        client.post(
            f"{PF}/factSheets", json={"type": "Application", "name": "v"}, headers=viewer["auth"]
        ),
        403,
    )
    url = f"{PF}/factSheets/{fs['id']}"
    _error(client.put(url, json={"name": "v"}, headers=viewer["auth"]), 403)
    archived = client.request(
        "DELETE", url, json={"comment": "members may archive"}, headers=member["auth"]
    )
    assert _ok(archived)["status"] == "ARCHIVED"
    model = _ok(client.get(f"{PF}/models/dataModel", headers=member["auth"]))
    _error(client.put(f"{PF}/models/dataModel", json=model, headers=member["auth"]), 403)


def test_list_pages_with_cursor_and_fields(client, tenant) -> None:
    for i in range(5):
        _create(
            client,
            tenant,
            "Provider",
            f"Vendor {i}",
            fields=[_field("alias", "StringValue", value=f"v{i}")],
        )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"type": "Provider", "pageSize": 2, "fields": "alias"}
        if cursor:
            params["cursor"] = cursor
        body = client.get(f"{PF}/factSheets", params=params, headers=tenant.auth).json()
        assert body["total"] == 5
        seen += [f["name"] for f in body["data"]]
        assert all([x["name"] for x in f["fields"]] == ["alias"] for f in body["data"])
        cursor = body["cursor"]
        if not cursor:
            break
    assert seen == [f"Vendor {i}" for i in range(5)]
    _error(client.get(f"{PF}/factSheets", params={"pageSize": 0}, headers=tenant.auth), 400)
    _error(client.get(f"{PF}/factSheets", params={"type": "Nope"}, headers=tenant.auth), 400)


def test_another_workspace_is_not_found(client, tenant, other_tenant) -> None:
    theirs = _create(client, other_tenant, "ITComponent", "Their ITC")
    their_app = _create(client, other_tenant, "Application", "Their app")
    rel = _ok(
        _relate(
            client,
            other_tenant,
            their_app["id"],
            type="relApplicationToITComponent",
            toId=theirs["id"],
        )
    )
    mine = _create(client, tenant, "Application", "Mine")
    url = f"{PF}/factSheets/{theirs['id']}"
    _error(client.get(url, headers=tenant.auth), 404)
    _error(client.put(url, json={"name": "hijacked"}, headers=tenant.auth), 404)
    _error(client.request("DELETE", url, json={"comment": "x"}, headers=tenant.auth), 404)
    _error(client.get(f"{url}/relations", headers=tenant.auth), 404)
    _error(client.get(f"{PF}/factSheets/hierarchy/{theirs['id']}", headers=tenant.auth), 404)
    # Their fact sheet as a relation target, their relation id under my fact sheet.
    target = _relate(
        client, tenant, mine["id"], type="relApplicationToITComponent", toId=theirs["id"]
    )
    _error(target, 404, "/relApplicationToITComponent/new_1")
    their_rel = f"{PF}/factSheets/{mine['id']}/relations/{rel['id']}"
    _error(client.delete(their_rel, headers=tenant.auth), 404)
    _error(
        client.delete(
            f"{PF}/factSheets/{their_app['id']}/relations/{rel['id']}", headers=tenant.auth
        ),
        404,
    )
    tagged = client.put(
        f"{PF}/factSheets/{mine['id']}",
        json={"tags": [{"id": str(uuid.uuid4())}]},
        headers=tenant.auth,
    )
    _error(tagged, 404, "/tags")
    # Nothing of theirs changed, and my lists never show theirs.
    assert _get(client, other_tenant, theirs["id"])["rev"] == 1
    assert [r["id"] for r in _ok(client.get(f"{url}/relations", headers=other_tenant.auth))] == [
        rel["id"]
    ]
    assert _get(client, tenant, mine["id"])["rev"] == 1
    listed = _ok(client.get(f"{PF}/factSheets", params={"pageSize": 1000}, headers=tenant.auth))
    assert {f["id"] for f in listed} == {mine["id"]}


@pytest.mark.parametrize("path", ["/factSheets/not-a-uuid", "/factSheets/not-a-uuid/relations"])
def test_malformed_ids(client, tenant, path: str) -> None:
    response = client.get(f"{PF}{path}", headers=tenant.auth)
    assert response.status_code in (400, 404, 422) and response.json()["status"] == "ERROR"

"""The LeanIX GraphQL API end to end over HTTP: queries, mutations, filters, errors, limits,
tenant isolation, GraphiQL and the number of SQL statements of a page."""

import asyncio
import json
import re
import threading
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from conftest import close_connections
from webhook_helpers import wait_until

URL = "/services/pathfinder/v1/graphql"
FS = "factSheet { id rev name type status }"


def call(client: httpx.Client, auth: dict[str, str], query: str, variables: Any = None) -> dict:
    response = client.post(URL, json={"query": query, "variables": variables or {}}, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def ok(client: httpx.Client, auth: dict[str, str], query: str, variables: Any = None) -> dict:
    body = call(client, auth, query, variables)
    assert body["errors"] is None, body["errors"]
    return body["data"]


def failed(client: httpx.Client, auth: dict[str, str], query: str, variables: Any = None) -> dict:
    """The only error of the answer."""
    body = call(client, auth, query, variables)
    assert body["errors"], body
    assert len(body["errors"]) == 1, body["errors"]
    return body["errors"][0]


def patch(op: str, path: str, value: Any = None) -> dict[str, Any]:
    if value is not None and not isinstance(value, str):
        value = json.dumps(value)
    return {"op": op, "path": path, "value": value}


CREATE = f"""mutation($input: BaseFactSheetInput!, $patches: [Patch], $validateOnly: Boolean) {{
  createFactSheet(input: $input, patches: $patches, validateOnly: $validateOnly) {{ {FS} }}
}}"""
UPDATE = f"""mutation($id: ID!, $rev: Long, $patches: [Patch]!, $comment: String,
                    $validateOnly: Boolean) {{
  updateFactSheet(id: $id, rev: $rev, patches: $patches, comment: $comment,
                  validateOnly: $validateOnly) {{ {FS} }}
}}"""


def create(client, auth, type: str, name: str, *patches: dict[str, Any]) -> dict[str, Any]:
    variables = {"input": {"name": name, "type": type}, "patches": list(patches)}
    return ok(client, auth, CREATE, variables)["createFactSheet"]["factSheet"]


def update(client, auth, fs_id: str, *patches: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return call(client, auth, UPDATE, {"id": fs_id, "patches": list(patches), **extra})


def total(client, auth, filter: dict[str, Any] | None = None, **args: Any) -> int:
    query = """query($filter: FilterInput, $type: FactSheetType) {
      allFactSheets(filter: $filter, factSheetType: $type) { totalCount } }"""
    variables = {"filter": filter, "type": args.get("type")}
    return ok(client, auth, query, variables)["allFactSheets"]["totalCount"]


def names(client, auth, filter: dict[str, Any], type: str | None = None) -> list[str]:
    query = """query($filter: FilterInput, $type: FactSheetType) {
      allFactSheets(filter: $filter, factSheetType: $type, sort: [{key: "name", order: asc}]) {
        edges { node { name } } } }"""
    data = ok(client, auth, query, {"filter": filter, "type": type})
    return [e["node"]["name"] for e in data["allFactSheets"]["edges"]]


def facet(key: str, keys: list[str], operator: str = "OR", **extra: Any) -> dict[str, Any]:
    return {"facetFilters": [{"facetKey": key, "operator": operator, "keys": keys, **extra}]}


def mtm_auth(client: httpx.Client, tenant) -> dict[str, str]:
    response = client.post(
        "/services/mtm/v1/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("apitoken", tenant.token),
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


# --- queries ----------------------------------------------------------------------------------


def test_mtm_token_both_urls_and_inline_fragments(client, tenant) -> None:
    auth = mtm_auth(client, tenant)
    lifecycle = {
        "phases": [
            {"phase": "plan", "startDate": "2020-01-01"},
            {"phase": "active", "startDate": "2021-01-01"},
        ]
    }
    app = create(
        client,
        auth,
        "Application",
        "CRM",
        patch("add", "/description", "Customers"),
        patch("add", "/alias", "crm"),
        patch("add", "/businessCriticality", "missionCritical"),
        patch("add", "/lifecycle", lifecycle),
        patch("add", "/externalId", {"type": "ExternalId", "externalId": "APP-1"}),
    )
    assert app["rev"] == 1 and app["status"] == "ACTIVE"
    query = """query($id: ID!) { factSheet(id: $id) {
        __typename id name displayName fullName type description status level rev
        completion { completion percentage } createdAt updatedAt tags { id }
        ... on Application { alias businessCriticality
          lifecycle { asString phases { phase startDate } } externalId { externalId comment } }
        ... on ITComponent { category } } }"""
    response = client.post(
        "/graphql", json={"query": query, "variables": {"id": app["id"]}}, headers=auth
    )
    assert response.status_code == 200
    fs = response.json()["data"]["factSheet"]
    assert fs["__typename"] == "Application" and fs["alias"] == "crm"
    assert fs["businessCriticality"] == "missionCritical" and "category" not in fs
    assert fs["lifecycle"]["asString"] == "active"
    assert fs["lifecycle"]["phases"][0] == {"phase": "plan", "startDate": "2020-01-01"}
    assert fs["externalId"]["externalId"] == "APP-1"
    assert 0 < fs["completion"]["completion"] <= 1 and fs["createdAt"].endswith("+00:00")
    by = ok(
        client,
        auth,
        """query($ids: [ID!], $ext: [String!]) { factSheets(ids: $ids, externalIds: $ext) {
             totalCount edges { node { id name } } } }""",
        {"ids": [app["id"], str(uuid.uuid4())], "ext": ["APP-1", "nope"]},
    )["factSheets"]
    assert by["totalCount"] == 1 and by["edges"][0]["node"]["name"] == "CRM"


def test_paging_full_text_and_sort(client, tenant) -> None:
    for i in range(7):
        create(client, tenant.auth, "ITComponent", f"Server {i:02d}")
    create(
        client, tenant.auth, "ITComponent", "Database", patch("add", "/description", "big server")
    )
    query = """query($after: String) { allFactSheets(first: 3, after: $after,
        factSheetType: ITComponent, filter: {fullTextSearch: "SERVER"},
        sort: [{key: "name", order: desc}]) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { name } } } }"""
    seen, after = [], None
    while True:
        page = ok(client, tenant.auth, query, {"after": after})["allFactSheets"]
        assert page["totalCount"] == 8
        seen += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"Server {i:02d}" for i in reversed(range(7))] + ["Database"]
    # The total rides on the page's rows; an empty page still tells it.
    end = page["pageInfo"]["endCursor"]
    past_the_end = ok(client, tenant.auth, query, {"after": end})["allFactSheets"]
    assert past_the_end["totalCount"] == 8 and past_the_end["edges"] == []
    none = ok(client, tenant.auth, query.replace("first: 3", "first: 0"))["allFactSheets"]
    assert none["totalCount"] == 8 and none["edges"] == []
    nothing = query.replace('"SERVER"', '"no such text"')
    assert ok(client, tenant.auth, nothing)["allFactSheets"]["totalCount"] == 0


def test_filter_options_counts(client, tenant) -> None:
    create(
        client,
        tenant.auth,
        "Application",
        "A1",
        patch("add", "/businessCriticality", "missionCritical"),
    )
    create(
        client,
        tenant.auth,
        "Application",
        "A2",
        patch("add", "/businessCriticality", "missionCritical"),
    )
    create(client, tenant.auth, "Application", "A3")
    create(client, tenant.auth, "Provider", "P1")
    query = """{ allFactSheets(factSheetType: Application, first: 1) { totalCount
        filterOptions { facets { facetKey results { key name count } } } } }"""
    data = ok(client, tenant.auth, query)["allFactSheets"]
    facets = {
        f["facetKey"]: {r["key"]: r["count"] for r in f["results"]}
        for f in data["filterOptions"]["facets"]
    }
    assert data["totalCount"] == 3
    assert facets["FactSheetTypes"]["Application"] == 3
    assert facets["businessCriticality"]["missionCritical"] == 2


def test_facet_filters(client, tenant) -> None:
    auth = tenant.auth
    itc = create(client, auth, "ITComponent", "Linux")
    other = create(client, auth, "ITComponent", "Windows")

    def rel(target: str) -> dict[str, Any]:
        return patch("add", "/relApplicationToITComponent/new_1", {"factSheetId": target})

    def lc(phase: str, when: str) -> dict[str, Any]:
        return patch("add", "/lifecycle", {"phases": [{"phase": phase, "startDate": when}]})

    create(
        client,
        auth,
        "Application",
        "Both",
        rel(itc["id"]),
        patch(
            "add", "/relApplicationToITComponent/new_2", json.dumps({"factSheetId": other["id"]})
        ),
        patch("add", "/tags", [{"tagName": "cloud"}]),
        patch("add", "/technicalSuitability", "adequate"),
        lc("active", "2020-01-01"),
    )
    create(client, auth, "Application", "LinuxOnly", rel(itc["id"]), lc("phaseOut", "2019-01-01"))
    create(
        client, auth, "Application", "None", patch("add", "/technicalSuitability", "inappropriate")
    )
    key = "relApplicationToITComponent"
    nested = """{ allFactSheets(filter: {fullTextSearch: "Both"}) { edges { node {
        ... on Application { relApplicationToITComponent(first: 1) {
          totalCount pageInfo { hasNextPage } edges { node { id } } } } } } } }"""
    rels = ok(client, auth, nested)["allFactSheets"]["edges"][0]["node"][key]
    assert rels["totalCount"] == 2 and len(rels["edges"]) == 1 and rels["pageInfo"]["hasNextPage"]
    assert names(client, auth, facet("FactSheetTypes", ["ITComponent"])) == ["Linux", "Windows"]
    assert names(client, auth, facet(key, [itc["id"]])) == ["Both", "LinuxOnly"]
    assert names(client, auth, facet(key, [itc["id"], other["id"]], "AND")) == ["Both"]
    assert names(client, auth, facet(key, [other["id"]], "NOR"), "Application") == [
        "LinuxOnly",
        "None",
    ]
    # __missing__: no relation of that name (among Applications, which have it).
    assert names(client, auth, facet(key, ["__missing__"]), "Application") == ["None"]
    assert names(client, auth, facet(key, ["__missing__"], "NOR")) == ["Both", "LinuxOnly"]
    assert names(client, auth, facet("technicalSuitability", ["adequate"])) == ["Both"]
    assert names(client, auth, facet("technicalSuitability", ["__missing__"]), "Application") == [
        "LinuxOnly"
    ]
    tags = ok(client, auth, "{ allTags { edges { node { id name tagGroup { name } } } } }")
    cloud = next(e["node"] for e in tags["allTags"]["edges"] if e["node"]["name"] == "cloud")
    assert names(client, auth, facet("Tags", [cloud["id"]])) == ["Both"]
    assert names(client, auth, facet("lifecycle", ["active"])) == ["Both"]
    assert names(
        client,
        auth,
        facet(
            "lifecycle",
            ["phaseOut"],
            dateFilter={"type": "RANGE", "from": "2019-06-01", "to": "2019-07-01"},
        ),
    ) == ["LinuxOnly"]
    assert (
        names(
            client,
            auth,
            facet(
                "lifecycle",
                ["active"],
                dateFilter={"type": "POINT", "from": "2019-06-01", "to": "2019-06-01"},
            ),
        )
        == []
    )
    # A literal query with enum values, as LeanIX clients write them.
    literal = """{ allFactSheets(filter: {facetFilters: [{facetKey: "lifecycle", operator: OR,
        keys: ["phaseOut"], dateFilter: {type: RANGE, from: "2019-06-01", to: "2019-07-01"}}]}) {
        totalCount } }"""
    assert ok(client, auth, literal)["allFactSheets"]["totalCount"] == 1


def test_tag_facets(client, tenant, other_tenant) -> None:
    """Tag facets with every operator, several tags, together with other filters and the counts,
    and with another workspace's tag id (which matches nothing)."""
    auth = tenant.auth

    def tags(*names: str) -> dict[str, Any]:
        return patch("add", "/tags", [{"tagName": n} for n in names])

    create(client, auth, "Application", "Cloud edge", tags("cloud", "edge"))
    create(client, auth, "Application", "Edge only", tags("edge"))
    create(client, auth, "Application", "Untagged")
    create(client, auth, "ITComponent", "Edge server", tags("edge"))
    listed = ok(client, auth, "{ allTags { edges { node { id name } } } }")["allTags"]["edges"]
    ids = {e["node"]["name"]: e["node"]["id"] for e in listed}
    cloud, edge = ids["cloud"], ids["edge"]
    assert names(client, auth, facet("Tags", [cloud, edge])) == [
        "Cloud edge", "Edge only", "Edge server"
    ]  # fmt: skip
    assert names(client, auth, facet("Tags", [cloud, edge], "AND")) == ["Cloud edge"]
    assert names(client, auth, facet("Tags", [cloud], "NOR"), "Application") == [
        "Edge only", "Untagged"
    ]  # fmt: skip
    both = {
        "facetFilters": [
            *facet("FactSheetTypes", ["Application"])["facetFilters"],
            *facet("Tags", [edge])["facetFilters"],
        ],
        "fullTextSearch": "only",
    }
    assert names(client, auth, both) == ["Edge only"]
    counted = """query($filter: FilterInput) { allFactSheets(filter: $filter) { totalCount
        filterOptions { facets { facetKey results { name count } } } } }"""
    data = ok(client, auth, counted, {"filter": facet("Tags", [edge])})["allFactSheets"]
    facets = data["filterOptions"]["facets"]
    by_key = {f["facetKey"]: {r["name"]: r["count"] for r in f["results"]} for f in facets}
    assert data["totalCount"] == 3
    assert by_key["FactSheetTypes"]["Application"] == 2
    assert by_key["FactSheetTypes"]["ITComponent"] == 1
    assert by_key["Tags"] == {"cloud": 1, "edge": 3}  # its own filter left out
    create(client, other_tenant.auth, "Application", "Foreign", tags("edge"))
    theirs = ok(client, other_tenant.auth, "{ allTags { edges { node { id } } } }")["allTags"]
    assert names(client, auth, facet("Tags", [theirs["edges"][0]["node"]["id"]])) == []


def test_subscriptions_comments_documents_and_log_events(client, tenant) -> None:
    auth = tenant.auth
    app = create(client, auth, "Application", "Mail")
    member = tenant.add_user(client, "member")
    made = ok(
        client,
        auth,
        """mutation($fs: ID!, $email: String) {
          s: createSubscription(factSheetId: $fs, user: {email: $email}, type: "RESPONSIBLE",
                                roleIds: ["Owner"]) { id type user { email } roles { name } }
          c: createComment(factSheetId: $fs, message: "Looks good") { id message }
          d: createDocument(factSheetId: $fs, name: "Wiki", url: "https://wiki.example/mail",
                            documentType: "documentation") { id name url origin } }""",
        {"fs": app["id"], "email": member["email"]},
    )
    assert made["s"]["user"]["email"] == member["email"] and made["s"]["roles"] == [
        {"name": "Owner"}
    ]
    assert made["d"]["origin"] == "CUSTOM_LINK"
    reply = """mutation($fs: ID!, $to: ID) { createComment(factSheetId: $fs, message: "Thanks",
        replyToId: $to) { id } }"""
    ok(client, auth, reply, {"fs": app["id"], "to": made["c"]["id"]})
    query = """query($id: ID!) { factSheet(id: $id) {
        subscriptions { edges { node { id type user { email userName } } } }
        documents { edges { node { name url documentType } } }
        comments { totalCount edges { node { message replies { message } } } } } }"""
    fs = ok(client, auth, query, {"id": app["id"]})["factSheet"]
    assert fs["subscriptions"]["edges"][0]["node"]["type"] == "RESPONSIBLE"
    assert fs["documents"]["edges"][0]["node"]["url"] == "https://wiki.example/mail"
    assert fs["comments"]["totalCount"] == 1
    assert fs["comments"]["edges"][0]["node"]["replies"] == [{"message": "Thanks"}]
    assert names(
        client,
        auth,
        facet("Subscriptions", [member["uuid"] if "uuid" in member else str(member["id"])]),
    ) == ["Mail"]
    gone = ok(
        client,
        auth,
        "mutation($id: ID!) { deleteSubscription(id: $id) { id } }",
        {"id": made["s"]["id"]},
    )
    assert gone["deleteSubscription"]["id"] == made["s"]["id"]
    log = ok(
        client,
        auth,
        """query($id: ID!) { allLogEvents(factSheetId: $id) { totalCount
             edges { node { eventType createdAt user { email } } } } }""",
        {"id": app["id"]},
    )["allLogEvents"]
    types = [e["node"]["eventType"] for e in log["edges"]]
    assert types[0] == "SUBSCRIPTION_DELETED" and types[-1] == "FACT_SHEET_CREATED"
    assert {"COMMENT_CREATED", "DOCUMENT_CREATED", "SUBSCRIPTION_CREATED"} <= set(types)
    assert log["edges"][-1]["node"]["user"]["email"] == tenant.email


def test_tags_tag_groups_and_tag_patches(client, tenant) -> None:
    auth = tenant.auth
    app = create(
        client, auth, "Application", "Billing", patch("add", "/tags", [{"tagName": "legacy"}])
    )
    made = ok(
        client,
        auth,
        'mutation { createTag(name: "gdpr", color: "#ff0000") { id name color tagGroup { id } } }',
    )
    tag = made["createTag"]
    assert tag["tagGroup"] is None
    result = update(client, auth, app["id"], patch("add", "/tags", [{"tagId": tag["id"]}]))
    assert result["errors"] is None
    query = """query($id: ID!) { factSheet(id: $id) { rev tags { name color } } }"""
    fs = ok(client, auth, query, {"id": app["id"]})["factSheet"]
    assert sorted(t["name"] for t in fs["tags"]) == ["gdpr", "legacy"]
    update(client, auth, app["id"], patch("replace", "/tags", [{"tagName": "legacy"}]))
    assert [t["name"] for t in ok(client, auth, query, {"id": app["id"]})["factSheet"]["tags"]] == [
        "legacy"
    ]
    groups = ok(
        client,
        auth,
        "{ allTagGroups { totalCount edges { node { name mode tags { totalCount } } } } }",
    )
    assert groups["allTagGroups"]["totalCount"] >= 0
    deleted = ok(
        client, auth, "mutation($id: ID!) { deleteTag(id: $id) { id name } }", {"id": tag["id"]}
    )
    assert deleted["deleteTag"]["name"] == "gdpr"
    error = failed(
        client, auth, "mutation($id: ID!) { deleteTag(id: $id) { id } }", {"id": tag["id"]}
    )
    assert error["extensions"]["errorType"] == "NOT_FOUND" and error["path"] == ["deleteTag"]


def test_relation_patches_with_per_patch_errors(client, tenant) -> None:
    auth = tenant.auth
    linux = create(client, auth, "ITComponent", "Linux")
    oracle = create(client, auth, "ITComponent", "Oracle")
    app = create(
        client,
        auth,
        "Application",
        "ERP",
        patch(
            "add",
            "/relApplicationToITComponent/new_1",
            {
                "factSheetId": linux["id"],
                "activeFrom": "2020-01-01",
                "description": "OS",
                "costTotalAnnual": 125,
            },
        ),
    )
    query = """query($id: ID!) { factSheet(id: $id) { rev ... on Application {
        relApplicationToITComponent { totalCount edges { node {
          id type activeFrom activeUntil description costTotalAnnual
          factSheet { id name type ... on ITComponent { category } } } } } } } }"""
    fs = ok(client, auth, query, {"id": app["id"]})["factSheet"]
    node = fs["relApplicationToITComponent"]["edges"][0]["node"]
    assert node["factSheet"]["name"] == "Linux" and node["costTotalAnnual"] == 125
    assert node["activeFrom"] == "2020-01-01" and node["description"] == "OS"
    # The reverse side.
    back = ok(
        client,
        auth,
        """query($id: ID!) { factSheet(id: $id) { ... on ITComponent {
        relITComponentToApplication { edges { node { factSheet { name } } } } } } }""",
        {"id": linux["id"]},
    )
    assert (
        back["factSheet"]["relITComponentToApplication"]["edges"][0]["node"]["factSheet"]["name"]
        == "ERP"
    )
    # One bad patch: its path and the relation's side in the error; nothing of the write applied.
    bad = update(
        client,
        auth,
        app["id"],
        patch("replace", "/description", "changed"),
        patch("add", "/relApplicationToITComponent/new_2", {"factSheetId": str(uuid.uuid4())}),
        rev=fs["rev"],
    )
    assert bad["data"] == {"updateFactSheet": None}
    error = bad["errors"][0]
    assert error["extensions"]["objectPath"] == "/relApplicationToITComponent/new_2"
    assert error["path"] == ["updateFactSheet"] and error["extensions"]["errorType"]
    wrong_type = update(
        client,
        auth,
        app["id"],
        patch("add", "/relApplicationToITComponent/new_1", {"factSheetId": app["id"]}),
    )
    assert (
        wrong_type["errors"][0]["extensions"]["objectPath"] == "/relApplicationToITComponent/new_1"
    )
    assert ok(client, auth, query, {"id": app["id"]})["factSheet"]["rev"] == fs["rev"]
    # Replace (new target, new description), then remove.
    rid = node["id"]
    moved = update(
        client,
        auth,
        app["id"],
        patch(
            "replace",
            f"/relApplicationToITComponent/{rid}",
            {"factSheetId": oracle["id"], "description": "DB"},
        ),
    )
    assert moved["errors"] is None
    node = ok(client, auth, query, {"id": app["id"]})["factSheet"]["relApplicationToITComponent"][
        "edges"
    ][0]["node"]
    assert node["factSheet"]["name"] == "Oracle" and node["description"] == "DB"
    assert (
        update(
            client, auth, app["id"], patch("remove", f"/relApplicationToITComponent/{node['id']}")
        )["errors"]
        is None
    )
    assert (
        ok(client, auth, query, {"id": app["id"]})["factSheet"]["relApplicationToITComponent"][
            "totalCount"
        ]
        == 0
    )


# --- mutations --------------------------------------------------------------------------------


def test_validate_only_changes_nothing(client, tenant) -> None:
    auth = tenant.auth
    before = total(client, auth)
    variables = {
        "input": {"name": "Dry", "type": "Application"},
        "patches": [patch("add", "/alias", "x")],
        "validateOnly": True,
    }
    dry = ok(client, auth, CREATE, variables)["createFactSheet"]["factSheet"]
    assert dry["name"] == "Dry"
    assert total(client, auth) == before
    app = create(client, auth, "Application", "Real")
    log = "query($id: ID!) { allLogEvents(factSheetId: $id) { totalCount } }"

    def events() -> int:
        return ok(client, auth, log, {"id": app["id"]})["allLogEvents"]["totalCount"]

    count = events()
    result = update(
        client, auth, app["id"], patch("replace", "/name", "Renamed"), validateOnly=True
    )
    assert (
        result["errors"] is None
        and result["data"]["updateFactSheet"]["factSheet"]["name"] == "Renamed"
    )
    fs = ok(client, auth, "query($id: ID!) { factSheet(id: $id) { name rev } }", {"id": app["id"]})
    assert fs["factSheet"] == {"name": "Real", "rev": 1}
    assert events() == count
    comment = """mutation($fs: ID!) {
      createComment(factSheetId: $fs, message: "dry", validateOnly: true) { message } }"""
    assert ok(client, auth, comment, {"fs": app["id"]})["createComment"]["message"] == "dry"
    assert events() == count


def test_stale_rev(client, tenant) -> None:
    app = create(client, tenant.auth, "Application", "Rev")
    first = update(client, tenant.auth, app["id"], patch("replace", "/alias", "a"), rev=1)
    assert first["data"]["updateFactSheet"]["factSheet"]["rev"] == 2
    stale = update(client, tenant.auth, app["id"], patch("replace", "/alias", "b"), rev=1)
    error = stale["errors"][0]
    assert stale["data"] == {"updateFactSheet": None}
    assert error["extensions"]["errorType"] == "STALE_REV"
    assert error["extensions"]["objectId"] == app["id"] and "stale" in error["message"].lower()


def test_aliases_run_independently(client, tenant) -> None:
    query = """mutation {
      a: createFactSheet(input: {name: "Good", type: Application}, patches: []) { factSheet { id } }
      b: createFactSheet(input: {name: "Bad", type: Application},
                         patches: [{op: add, path: "/nope", value: "x"}]) { factSheet { id } }
      c: createFactSheet(input: {name: "Also good", type: Provider}) { factSheet { id } } }"""
    body = call(client, tenant.auth, query)
    assert body["data"]["a"]["factSheet"]["id"] and body["data"]["c"]["factSheet"]["id"]
    assert body["data"]["b"] is None
    assert [e["path"] for e in body["errors"]] == [["b"]]
    assert body["errors"][0]["extensions"]["objectPath"] == "/nope"
    assert sorted(names(client, tenant.auth, {})) == ["Also good", "Good"]


def test_archive_and_recover_via_status(client, tenant) -> None:
    auth = tenant.auth
    app = create(client, auth, "Application", "Old")
    no_comment = update(client, auth, app["id"], patch("replace", "/status", "ARCHIVED"))
    assert no_comment["errors"][0]["extensions"]["objectPath"] == "/status"
    archived = update(
        client, auth, app["id"], patch("replace", "/status", "ARCHIVED"), comment="gone"
    )
    assert archived["data"]["updateFactSheet"]["factSheet"]["status"] == "ARCHIVED"
    assert names(client, auth, {}) == []
    assert names(client, auth, facet("TrashBin", ["archived"])) == ["Old"]
    viewer = tenant.add_user(client, "viewer")
    denied = update(client, viewer["auth"], app["id"], patch("replace", "/status", "ACTIVE"))
    assert denied["errors"][0]["extensions"]["errorType"] == "ACCESS_DENIED"
    member = tenant.add_user(client, "member")  # LeanIX members may archive and recover
    recovered = update(client, member["auth"], app["id"], patch("replace", "/status", "ACTIVE"))
    assert recovered["data"]["updateFactSheet"]["factSheet"]["status"] == "ACTIVE"
    assert names(client, auth, {}) == ["Old"]


# --- errors, limits, isolation ----------------------------------------------------------------


def test_errors_are_graphql_errors(client, tenant) -> None:
    unknown = failed(client, tenant.auth, "{ allFactSheets { edges { node { nope } } } }")
    assert (
        unknown["extensions"]["errorType"] == "GRAPHQL_VALIDATION" and "nope" in unknown["message"]
    )
    syntax = failed(client, tenant.auth, "{ allFactSheets(")
    assert syntax["extensions"]["errorType"] == "GRAPHQL_VALIDATION"
    missing = failed(
        client,
        tenant.auth,
        'query { factSheet(id: "00000000-0000-0000-0000-000000000000") { id } }',
    )
    assert missing["extensions"]["errorType"] == "NOT_FOUND" and missing["path"] == ["factSheet"]
    bad_body = client.post(
        URL, content=b"not json", headers={**tenant.auth, "Content-Type": "application/json"}
    )
    assert (
        bad_body.status_code == 200
        and bad_body.json()["errors"][0]["extensions"]["errorType"] == "BAD_REQUEST"
    )
    assert client.post(URL, json={"query": "{ allTags { totalCount } }"}).status_code == 401
    facet_key = failed(
        client,
        tenant.auth,
        '{ allFactSheets(filter: {facetFilters: [{facetKey: "nope"}]}) { totalCount } }',
    )
    assert facet_key["extensions"]["errorType"] == "BAD_REQUEST" and "nope" in facet_key["message"]
    cursor = failed(client, tenant.auth, '{ allFactSheets(after: "%%%") { totalCount } }')
    assert "cursor" in cursor["message"]
    typed = failed(
        client,
        tenant.auth,
        "query($n: Int) { allFactSheets(first: $n) { totalCount } }",
        {"n": "x"},
    )  # noqa: E501
    assert typed["extensions"]["errorType"] == "GRAPHQL_VALIDATION"
    viewer = tenant.add_user(client, "viewer")
    denied = failed(client, viewer["auth"], 'mutation { createTag(name: "x") { id } }')
    assert denied["extensions"]["errorType"] == "ACCESS_DENIED"
    assert ok(client, viewer["auth"], "{ allTags { totalCount } }")["allTags"]["totalCount"] == 0


def test_limits(client, tenant) -> None:
    deep = (
        "{ allFactSheets { edges { node { ... on Application { relApplicationToITComponent {"
        " edges { node { factSheet { ... on ITComponent { relITComponentToApplication {"
        " edges { node { factSheet { name" + " }" * 14
    )
    error = failed(client, tenant.auth, deep)
    assert error["extensions"]["errorType"] == "QUERY_LIMIT" and "deep" in error["message"]
    many = "{ " + " ".join(f"a{i}: allTags {{ totalCount }}" for i in range(51)) + " }"
    error = failed(client, tenant.auth, many)
    assert error["extensions"]["errorType"] == "QUERY_LIMIT" and "root fields" in error["message"]
    error = failed(client, tenant.auth, "{ allFactSheets(first: 1001) { totalCount } }")
    assert error["extensions"]["errorType"] == "QUERY_LIMIT" and "1000" in error["message"]
    huge = "{ allTags { totalCount } }" + " " * 100_001
    error = failed(client, tenant.auth, huge)
    assert "longer" in error["message"]
    # Introspection (GraphiQL's own query is deep) is not limited by depth.
    schema = ok(
        client,
        tenant.auth,
        """{ __schema { types { name fields { name type { name
             ofType { name ofType { name ofType { name ofType { name } } } } } } } } }""",
    )
    assert any(t["name"] == "BaseFactSheet" for t in schema["__schema"]["types"])


def test_tenant_isolation(client, tenant, other_tenant) -> None:
    theirs = create(client, other_tenant.auth, "ITComponent", "Theirs")
    mine = create(client, tenant.auth, "Application", "Mine")
    error = failed(
        client, tenant.auth, "query($id: ID!) { factSheet(id: $id) { id } }", {"id": theirs["id"]}
    )
    assert error["extensions"]["errorType"] == "NOT_FOUND"
    by_ids = ok(
        client,
        tenant.auth,
        "query($ids: [ID!]) { factSheets(ids: $ids) { totalCount } }",
        {"ids": [theirs["id"]]},
    )
    assert by_ids["factSheets"]["totalCount"] == 0
    assert total(client, tenant.auth, {"ids": [theirs["id"]]}) == 0
    assert names(client, tenant.auth, facet("relApplicationToITComponent", [theirs["id"]])) == []
    target = update(
        client,
        tenant.auth,
        mine["id"],
        patch("add", "/relApplicationToITComponent/new_1", {"factSheetId": theirs["id"]}),
    )
    assert target["errors"][0]["extensions"]["objectPath"] == "/relApplicationToITComponent/new_1"
    foreign = update(client, tenant.auth, theirs["id"], patch("replace", "/name", "Hijacked"))
    assert foreign["errors"][0]["extensions"]["errorType"] == "NOT_FOUND"
    their_view = ok(
        client,
        other_tenant.auth,
        "query($id: ID!) { factSheet(id: $id) { name } }",
        {"id": theirs["id"]},
    )
    assert their_view["factSheet"]["name"] == "Theirs"


def test_graphiql_page_and_get(client, tenant) -> None:
    for path in (URL, "/graphql"):
        page = client.get(path, headers={"Accept": "text/html"})
        assert page.status_code == 200 and "graphiql.min.js" in page.text
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert len(sources) == 4 and all(src.startswith(path + "/static/") for src in sources)
        asset = client.get(path + "/static/graphiql.min.js")
        assert asset.status_code == 200 and len(asset.content) > 100_000
    got = client.get(URL, params={"query": "{ allTags { totalCount } }"}, headers=tenant.auth)
    assert got.json() == {"data": {"allTags": {"totalCount": 0}}, "errors": None}
    refused = client.get(
        URL, params={"query": 'mutation { createTag(name: "x") { id } }'}, headers=tenant.auth
    )
    assert refused.json()["errors"][0]["message"] == "Mutations need POST"


# --- no N+1 -----------------------------------------------------------------------------------


def test_tag_facet_follows_every_tag_change(client, tenant, server) -> None:
    """The tag facet reads each fact sheet's copy of its tag ids on PostgreSQL (the links on
    SQLite): adding, removing, replacing and deleting tags keep the two the same."""
    auth = tenant.auth

    def tags(op: str, *names: str) -> dict[str, Any]:
        return patch(op, "/tags", [{"tagName": n} for n in names])

    a = create(client, auth, "Application", "A", tags("add", "red", "blue"))
    b = create(client, auth, "Application", "B", tags("add", "blue"))
    c = create(client, auth, "Application", "C")
    listed = ok(client, auth, "{ allTags { edges { node { id name } } } }")["allTags"]["edges"]
    ids = {e["node"]["name"]: e["node"]["id"] for e in listed}
    assert names(client, auth, facet("Tags", [ids["blue"]])) == ["A", "B"]
    update(client, auth, b["id"], tags("remove", "blue"))
    update(client, auth, c["id"], tags("replace", "red", "green"))
    update(client, auth, a["id"], tags("replace", "green"))
    ids["green"] = ok(client, auth, '{ allTags(filter: {nameSubstring: "green"}) { edges {'
                      " node { id } } } }")["allTags"]["edges"][0]["node"]["id"]  # fmt: skip
    assert names(client, auth, facet("Tags", [ids["blue"]])) == []
    assert names(client, auth, facet("Tags", [ids["red"]])) == ["C"]
    assert names(client, auth, facet("Tags", [ids["green"]])) == ["A", "C"]
    ok(client, auth, "mutation($id: ID!) { deleteTag(id: $id) { id } }", {"id": ids["green"]})
    assert names(client, auth, facet("Tags", [ids["green"]])) == []
    assert names(client, auth, facet("Tags", [ids["red"]])) == ["C"]

    async def copies_and_links(session: Any) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        from landmark.eam.models import FactSheet, FactSheetTag

        account = FactSheet.account_id == tenant.slug
        rows = await session.execute(select(FactSheet.id, FactSheet.tag_ids).where(account))
        copies = {str(i): t for i, t in rows}
        links = {i: [] for i in copies}
        for fs_id, tag_id in await session.execute(
            select(FactSheetTag.fact_sheet_id, FactSheetTag.tag_id).where(
                FactSheetTag.account_id == tenant.slug
            )
        ):
            links[str(fs_id)].append(str(tag_id))
        return copies, {i: sorted(t) for i, t in links.items()}

    copies, links = server.run(copies_and_links)
    assert copies == links and links[c["id"]] == [ids["red"]]


def _statements(server, client, auth, query: str) -> int:
    return len(_statements_run(server, client, auth, query))


def _statements_run(server, client, auth, query: str, variables: Any = None) -> list[str]:
    """The statements on inventory tables while one request runs."""
    seen: list[str] = []
    lock = threading.Lock()

    def count(_conn, _cursor, statement, *_args) -> None:
        # Inventory statements; signing in (credentials, memberships) is cached and not counted.
        if "eam_" in statement or ("users" in statement and "memberships" not in statement):
            with lock:
                seen.append(statement)

    engine = server.app.state.engine.sync_engine
    reads = server.app.state.reads  # on PostgreSQL its own asyncpg pool, unseen by the engine
    fetch = reads._fetch

    async def count_reads(statement: Any, params: Any, first: bool) -> Any:
        if reads.dsn is not None:
            with lock:
                seen.append(str(statement))
        return await fetch(statement, params, first)

    event.listen(engine, "before_cursor_execute", count)
    reads._fetch = count_reads
    try:
        body = call(client, auth, query, variables)
    finally:
        event.remove(engine, "before_cursor_execute", count)
        del reads._fetch
    assert body["errors"] is None, body["errors"]
    return seen


def test_statement_count_does_not_grow_with_the_page(client, tenant, server) -> None:
    auth = tenant.auth
    components = [create(client, auth, "ITComponent", f"C{i}")["id"] for i in range(3)]
    for batch in range(2):
        aliases = []
        for i in range(30):
            patches = [
                patch(
                    "add", "/relApplicationToITComponent/new_1", {"factSheetId": components[i % 3]}
                ),
                patch(
                    "add",
                    "/relApplicationToITComponent/new_2",
                    {"factSheetId": components[(i + 1) % 3]},
                ),
                patch("add", "/tags", [{"tagName": f"t{i % 4}"}]),
            ]
            literal = (
                json.dumps(patches)
                .replace('"op"', "op")
                .replace('"path"', "path")
                .replace('"value"', "value")
            )
            literal = literal.replace('op: "add"', "op: add")
            fs_input = f'{{name: "App {batch}-{i:02d}", type: Application}}'
            result = "{ factSheet { id } }"
            aliases.append(f"a{i}: createFactSheet(input: {fs_input}, patches: {literal}) {result}")
        made = ok(client, auth, "mutation { " + " ".join(aliases) + " }")
        subs = [
            f's{i}: createSubscription(factSheetId: "{v["factSheet"]["id"]}", '
            f'user: {{email: "{tenant.email}"}}, type: "OBSERVER") {{ id }}'
            for i, v in enumerate(made.values())
        ]
        ok(client, auth, "mutation { " + " ".join(subs) + " }")
    query = """{ allFactSheets(first: %d, factSheetType: Application) { totalCount edges { node {
        id name tags { name tagGroup { name } }
        subscriptions { edges { node { type user { email } } } }
        ... on Application { relApplicationToITComponent { edges { node { id factSheet {
          name tags { name } } } } } } } } } }"""
    call(client, auth, query % 10)  # warm: the data model and the credential are cached
    small = _statements(server, client, auth, query % 10)
    large = _statements(server, client, auth, query % 50)
    assert small == large, (small, large)
    assert small <= 10
    # A named fragment on a page of several types: the same answer as an inline fragment, and
    # the same statements for 10 nodes (Applications) as for 70 (ITComponents too).
    asked = (
        """tags { name } relApplicationToITComponent { edges { node { factSheet { name } } } }"""
    )
    inline = (
        "{ allFactSheets(first: %d) { edges { node { id type ... on Application { ASKED } } } } }"
    )
    spread = """{ allFactSheets(first: %d) { edges { node { id type ...Details } } } }
        fragment Details on Application { ASKED }"""
    inline, spread = inline.replace("ASKED", asked), spread.replace("ASKED", asked)
    page = ok(client, auth, spread % 70)["allFactSheets"]["edges"]
    assert page == ok(client, auth, inline % 70)["allFactSheets"]["edges"]
    assert {e["node"]["type"] for e in page} == {"Application", "ITComponent"}
    assert all(len(e["node"]["relApplicationToITComponent"]["edges"]) == 2 for e in page[:60])
    assert all(e["node"]["tags"] for e in page[:60])
    counts = [_statements(server, client, auth, spread % n) for n in (10, 70)]
    assert counts[0] == counts[1], counts


def test_relations_read_the_columns_asked_and_answer_as_whole(client, tenant, server) -> None:
    """Relations and their far ends are read with the columns the query's fields need; every
    such field answers as on the whole row, and asking any other field of a far end reads it
    whole."""
    auth = tenant.auth
    linux = create(
        client, auth, "ITComponent", "Linux",
        patch("replace", "/description", "The OS"), patch("replace", "/category", "software"),
        patch("add", "/tags", [{"tagName": "os"}]),
    )  # fmt: skip
    ok(client, auth, 'mutation($id: ID!) { createComment(factSheetId: $id, message: "hi") { id } }',
       {"id": linux["id"]})  # fmt: skip
    app = create(
        client, auth, "Application", "ERP",
        patch("add", "/relApplicationToITComponent/new_1", {
            "factSheetId": linux["id"], "activeFrom": "2024-01-01", "description": "runs on"}),
    )  # fmt: skip
    lean = """__typename id name displayName fullName type status level rev
        completion { completion percentage } lxState tags { name }
        subscriptions { totalCount } documents { totalCount } comments { totalCount }
        ... on ITComponent { relITComponentToApplication {
          edges { node { factSheet { name } } } } }"""
    far = """query($id: ID!) { factSheet(id: $id) { ... on Application {
        relApplicationToITComponent { edges { node { factSheet { LEAN } } } } } } }"""
    far = far.replace("LEAN", lean)
    statements = _statements_run(server, client, auth, far, {"id": app["id"]})
    relation_reads = [s for s in statements if "eam_relations" in s and "far" in s]
    assert relation_reads and not any("description" in s for s in relation_reads), statements
    via_relation = ok(client, auth, far, {"id": app["id"]})["factSheet"]
    top = "query($id: ID!) { factSheet(id: $id) { LEAN } }".replace("LEAN", lean)
    whole = ok(client, auth, top, {"id": linux["id"]})
    edge = via_relation["relApplicationToITComponent"]["edges"][0]
    assert edge["node"]["factSheet"] == whole["factSheet"]
    assert whole["factSheet"]["tags"] == [{"name": "os"}]
    assert whole["factSheet"]["comments"]["totalCount"] == 1
    # A field of the whole row; and the same relation asked both ways under two aliases.
    both = """query($id: ID!) { factSheet(id: $id) { ... on Application {
        a: relApplicationToITComponent { edges { node { factSheet { name } } } }
        b: relApplicationToITComponent { edges { node { factSheet { description
             ... on ITComponent { category } } } } } } } }"""
    statements = _statements_run(server, client, auth, both, {"id": app["id"]})
    assert any("description" in s for s in statements if "eam_relations" in s)
    answer = ok(client, auth, both, {"id": app["id"]})["factSheet"]
    assert answer["a"]["edges"][0]["node"]["factSheet"] == {"name": "Linux"}
    far_end = answer["b"]["edges"][0]["node"]["factSheet"]
    assert far_end == {"description": "The OS", "category": "software"}
    # The fewest columns for the fewest fields; each relation field answers the same whatever
    # else is read.
    few = """query($id: ID!) { factSheet(id: $id) { ... on Application {
        relApplicationToITComponent { edges { node { id factSheet { name } } } } } } }"""
    statements = _statements_run(server, client, auth, few, {"id": app["id"]})
    (read,) = [s for s in statements if "eam_relations" in s]
    selected = read.split("FROM")[0]
    assert "far.name" in selected, read
    for column in ("fields", "active_from", "status", "full_name", "created_at", "description"):
        assert column not in selected, (column, read)
    own = "id type activeFrom activeUntil status description"
    relation = """query($id: ID!) { factSheet(id: $id) { ... on Application {
        relApplicationToITComponent { edges { node { OWN factSheet { FAR } } } } } } }"""
    answers = [
        ok(client, auth, relation.replace("OWN", o).replace("FAR", f), {"id": app["id"]})
        for o, f in ((own, "id"), (own, "id description"), ("id", "id"))
    ]
    edges = [a["factSheet"]["relApplicationToITComponent"]["edges"][0]["node"] for a in answers]
    assert edges[0]["activeFrom"] == "2024-01-01" and edges[0]["description"] == "runs on"
    assert edges[1]["factSheet"]["description"] == "The OS"
    own_values = [{k: v for k, v in e.items() if k != "factSheet"} for e in edges[:2]]
    assert own_values[0] == own_values[1]
    assert edges[2]["id"] == edges[0]["id"]
    # Times are not among the columns read for a far end (decoding them cost a third of a
    # page's read): asked, the far end is read whole.
    times = far.replace(lean, "createdAt updatedAt")
    statements = _statements_run(server, client, auth, times, {"id": app["id"]})
    assert any("description" in s for s in statements if "eam_relations" in s)
    far_end = ok(client, auth, times, {"id": app["id"]})["factSheet"]
    top = ok(client, auth, top.replace(lean, "createdAt updatedAt"), {"id": linux["id"]})
    assert (
        far_end["relApplicationToITComponent"]["edges"][0]["node"]["factSheet"] == top["factSheet"]
    )


def test_a_page_reads_the_columns_its_nodes_show(client, tenant, server) -> None:
    """allFactSheets reads of its fact sheets the columns its nodes' fields need (as relations'
    far ends); a field of another column reads whole rows; the answers are the same."""
    auth = tenant.auth
    create(client, auth, "Application", "Ledger", patch("replace", "/description", "Books"))
    page = "{ allFactSheets { edges { node { FIELDS } } } }"
    few = page.replace("FIELDS", "id name rev tags { name } ... on Application { alias }")
    statements = _statements_run(server, client, auth, page.replace("FIELDS", "id name rev"))
    (search,) = [s for s in statements if "count(*)" in s]
    assert "eam_fact_sheets.rev" in search and "eam_fact_sheets.description" not in search, search
    statements = _statements_run(server, client, auth, few)
    (search,) = [s for s in statements if "count(*)" in s]
    assert "eam_fact_sheets.description" in search, search  # alias: a model field, whole rows
    lean = ok(client, auth, page.replace("FIELDS", "__typename id name type rev status level"))
    whole = ok(client, auth, page.replace("FIELDS", "__typename id name type rev status level "
                                           "description"))  # fmt: skip
    nodes = [e["node"] for e in whole["allFactSheets"]["edges"]]
    assert nodes[0]["description"] == "Books"
    assert lean["allFactSheets"]["edges"] == [
        {"node": {k: v for k, v in n.items() if k != "description"}} for n in nodes
    ]


def test_aliased_updates_each_read_their_result(client, tenant) -> None:
    auth = tenant.auth
    itc = create(client, auth, "ITComponent", "Disk")
    rel = patch("add", "/relApplicationToITComponent/new_1", {"factSheetId": itc["id"]})
    a = create(client, auth, "Application", "A", patch("add", "/tags", [{"tagName": "x"}]))
    b = create(client, auth, "Application", "B", rel)
    query = """mutation($a: ID!, $b: ID!, $p: [Patch]!) {
      u1: updateFactSheet(id: $a, patches: $p) { factSheet { rev tags { name } } }
      u2: updateFactSheet(id: $b, patches: $p) { factSheet { rev ... on Application {
        relApplicationToITComponent { edges { node {
          factSheet { name tags { name } } } } } } } } }"""
    data = ok(
        client, auth, query, {"a": a["id"], "b": b["id"], "p": [patch("replace", "/alias", "y")]}
    )
    assert data["u1"]["factSheet"] == {"rev": 2, "tags": [{"name": "x"}]}
    edges = data["u2"]["factSheet"]["relApplicationToITComponent"]["edges"]
    assert edges[0]["node"]["factSheet"] == {"name": "Disk", "tags": []}


def test_concurrent_writes_number_events_in_write_order(server, client, tenant) -> None:
    """Value updates lock only their fact sheet and number their events last; relation, tag and
    name updates take the workspace's structure lock first. Mixed and concurrent on the same
    fact sheets, none deadlocks or fails, each write is one revision, and the outbox numbers the
    events without gaps in the order the writes were made to each fact sheet."""
    from sqlalchemy import select

    from landmark.core.events import Event

    auth = tenant.auth
    apps = [create(client, auth, "Application", f"Concurrent {n}")["id"] for n in range(2)]
    parts = iter([create(client, auth, "ITComponent", f"Part {n}")["id"] for n in range(6)])
    lock = threading.Lock()
    errors: list[Any] = []

    def structural(n: int) -> dict[str, Any]:
        if n % 3 == 0:
            with lock:
                target = next(parts)
            return patch("add", "/relApplicationToITComponent/new_1", {"factSheetId": target})
        if n % 3 == 1:
            return patch("add", "/tags", [{"tagName": f"concurrent-{n}"}])
        return patch("replace", "/name", f"Renamed {n}")

    def writer(k: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for n in range(4):
                values = [patch("replace", "/description", f"{k}.{n}")]
                patches = values if k % 2 else [structural(k // 2 * 4 + n)]
                body = call(http, auth, UPDATE, {"id": apps[(k + n) % 2], "patches": patches})
                if body["errors"]:
                    errors.append(body["errors"])

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    async def events(session):
        query = select(Event).where(Event.account_id == tenant.slug).order_by(Event.seq)
        return list((await session.scalars(query)).all())

    rows = server.run(events)
    seqs = [e.seq for e in rows]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    for app in apps:
        revs = [
            e.data["factSheet"]["rev"]
            for e in rows
            if e.subject_id == app and e.type == "FACT_SHEET_UPDATED"
        ]
        assert revs == list(range(2, 2 + len(revs)))
    assert sum(1 for e in rows if e.type == "FACT_SHEET_UPDATED") == 24


LOG_EVENTS = "query($id: ID!) { allLogEvents(factSheetId: $id) { edges { node { eventType } } } }"


def _on_postgresql(server) -> bool:
    return server.settings.resolved_database_url.startswith("postgresql")


def test_a_value_update_is_one_read_and_one_write_on_postgresql(client, tenant, server) -> None:
    """On PostgreSQL an update of values only reads its fact sheet without a lock and then
    writes the row and its events in one statement, guarded by the revision it read
    (eam/optimistic.py); SQLite takes the locked way. Either way: one revision, one event."""
    auth = tenant.auth
    app = create(client, auth, "Application", "Optimistic")
    patches = [patch("replace", "/description", "quick"), patch("replace", "/alias", "q")]
    variables = {"id": app["id"], "patches": patches}
    statements = _statements_run(server, client, auth, UPDATE, variables)
    writes = [s for s in statements if "UPDATE eam_fact_sheets" in s]
    assert len(writes) == 1, statements
    if _on_postgresql(server):
        reads = [s for s in statements if s not in writes and "eam_fact_sheets" in s]
        assert len(reads) == 1 and "FOR " not in reads[0], statements
        assert writes[0].startswith("WITH guard AS (UPDATE eam_fact_sheets"), writes
    fs = ok(client, auth, f'{{ factSheet(id: "{app["id"]}") {{ rev description }} }}')
    assert fs["factSheet"] == {"rev": 2, "description": "quick"}
    events = ok(client, auth, LOG_EVENTS, {"id": app["id"]})["allLogEvents"]["edges"]
    assert [e["node"]["eventType"] for e in events].count("FACT_SHEET_UPDATED") == 1


def test_an_update_to_the_same_values_writes_nothing(client, tenant, server) -> None:
    """Patches that set what is already there make no revision, no event and no write."""
    auth = tenant.auth
    app = create(client, auth, "Application", "Same", patch("replace", "/alias", "a"))
    patches = [patch("replace", "/alias", "a")]
    statements = _statements_run(
        server, client, auth, UPDATE, {"id": app["id"], "patches": patches}
    )
    assert not [s for s in statements if "UPDATE" in s], statements
    assert (
        ok(client, auth, f'{{ factSheet(id: "{app["id"]}") {{ rev }} }}')["factSheet"]["rev"] == 1
    )
    events = ok(client, auth, LOG_EVENTS, {"id": app["id"]})["allLogEvents"]["edges"]
    assert [e["node"]["eventType"] for e in events] == ["FACT_SHEET_CREATED"]


def test_a_value_update_that_loses_the_race_goes_the_locked_way(
    client, tenant, server, monkeypatch
) -> None:
    """Another writer commits between the optimistic read and its write: the guarded
    statement writes nothing, and the update is applied again under the row lock to the row
    as that writer left it, so neither change is lost."""
    from sqlalchemy import text

    from landmark.eam import optimistic

    if not _on_postgresql(server):
        pytest.skip("the optimistic way is PostgreSQL's")
    auth = tenant.auth
    app = create(client, auth, "Application", "Race", patch("replace", "/alias", "before"))
    load = optimistic.load
    interfered: list[int] = []

    async def load_then_interfere(session, account_id, fact_sheet_id):
        fs = await load(session, account_id, fact_sheet_id)
        async with server.app.state.engine.begin() as other:
            await other.execute(
                text(
                    "UPDATE eam_fact_sheets SET rev = rev + 1, description = 'theirs'"
                    " WHERE id = :id"
                ),
                {"id": fact_sheet_id},
            )
        interfered.append(fs.rev)
        return fs

    monkeypatch.setattr(optimistic, "load", load_then_interfere)
    body = update(client, auth, app["id"], patch("replace", "/alias", "mine"))
    assert body["errors"] is None, body["errors"]
    assert interfered == [1]
    assert body["data"]["updateFactSheet"]["factSheet"]["rev"] == 3
    query = (
        f'{{ factSheet(id: "{app["id"]}") {{ rev description ... on Application {{ alias }} }} }}'
    )
    assert ok(client, auth, query)["factSheet"] == {
        "rev": 3,
        "description": "theirs",
        "alias": "mine",
    }
    events = ok(client, auth, LOG_EVENTS, {"id": app["id"]})["allLogEvents"]["edges"]
    updated = [e["node"] for e in events if e["node"]["eventType"] == "FACT_SHEET_UPDATED"]
    assert len(updated) == 1  # the guarded statement recorded nothing


PF = "/services/pathfinder/v1"
CLOUD_READY = patch("replace", "/cloudReady", "yes")


def _model_reads(server, client, auth) -> int:
    """How many times one GraphQL request read the data model's version."""
    statements = _statements_run(server, client, auth, "{ allTags { totalCount } }")
    return sum(1 for s in statements if "eam_data_models" in s)


def _with_cloud_ready(client, auth) -> dict[str, Any]:
    model = client.get(f"{PF}/models/dataModel", headers=auth).json()["data"]
    model["factSheets"]["Application"]["fields"]["cloudReady"] = {
        "type": "SINGLE_SELECT",
        "values": ["yes", "no"],
    }
    return model


def test_graphql_knows_the_data_model_version_and_sees_a_change_at_once(
    client, tenant, server
) -> None:
    """On PostgreSQL each server process keeps the accounts' data model versions and hears
    every change (LISTEN/NOTIFY), so a GraphQL request reads no version; SQLite reads it each
    time. A change made through this process is seen by its very next request."""
    auth = tenant.auth
    app = create(client, auth, "Application", "Model user")
    ok(client, auth, "{ allTags { totalCount } }")  # the version is known from here on
    assert _model_reads(server, client, auth) == (0 if _on_postgresql(server) else 1)
    assert (
        "cloudReady"
        in failed(client, auth, UPDATE, {"id": app["id"], "patches": [CLOUD_READY]})["message"]
    )
    versions = server.app.state.model_versions
    epoch = versions.epoch
    response = client.put(
        f"{PF}/models/dataModel", json=_with_cloud_ready(client, auth), headers=auth
    )
    assert response.status_code == 200, response.text
    if _on_postgresql(server):  # forgotten here at once, and heard (as other processes hear it)
        wait_until(lambda: versions.epoch >= epoch + 2)
    done = ok(client, auth, UPDATE, {"id": app["id"], "patches": [CLOUD_READY]})
    assert done["updateFactSheet"]["factSheet"]["rev"] == 2


def test_a_data_model_change_from_another_process_is_heard(client, tenant, server) -> None:
    """Another process changes the data model (its transaction NOTIFYs): this one forgets
    the version it knew and the next requests follow the new model. When the listening
    connection drops, requests read the version again until it is back."""
    from sqlalchemy import func, text

    from landmark.core.db import asyncpg_dsn
    from landmark.eam.metamodel import CHANNEL
    from landmark.eam.models import DataModel

    if not _on_postgresql(server):
        pytest.skip("SQLite has no LISTEN/NOTIFY; each request reads the version")
    auth = tenant.auth
    app = create(client, auth, "Application", "Heard")
    new_model = _with_cloud_ready(client, auth)
    versions = server.app.state.model_versions
    epoch = versions.epoch

    async def change_elsewhere(session):  # as save_model does, without this process knowing
        row = await session.get(DataModel, tenant.slug)
        row.model, row.version = new_model, row.version + 1
        await session.execute(select(func.pg_notify(CHANNEL, tenant.slug)))

    server.run(change_elsewhere)
    wait_until(lambda: versions.epoch > epoch)
    done = ok(client, auth, UPDATE, {"id": app["id"], "patches": [CLOUD_READY]})
    assert done["updateFactSheet"]["factSheet"]["rev"] == 2

    dsn = asyncpg_dsn(server.settings.resolved_database_url)
    listening = "SELECT array_agg(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%models%'"
    pids = server.run(lambda session: session.scalar(text(listening)))
    assert pids, "the server listens for data model changes"
    asyncio.run(close_connections(dsn, pids))
    wait_until(lambda: not versions.listening)
    assert _model_reads(server, client, auth) == 1
    wait_until(lambda: versions.listening)  # reconnected
    ok(client, auth, "{ allTags { totalCount } }")
    assert _model_reads(server, client, auth) == 0


def test_known_versions_keep_nothing_read_before_a_change() -> None:
    """A version read while a change was heard may be the old one: it is not kept."""
    from landmark.eam.metamodel import KnownVersions

    versions = KnownVersions()
    versions.keep("a", 1, versions.epoch)
    assert versions.get("a") is None  # not listening: nothing is known
    versions.connected(True)
    epoch = versions.epoch
    versions.changed("b")  # heard while "a" was being read
    versions.keep("a", 1, epoch)
    assert versions.get("a") is None
    versions.keep("a", 2, versions.epoch)
    assert versions.get("a") == 2
    versions.changed("a")
    assert versions.get("a") is None
    versions.keep("a", 3, versions.epoch)
    versions.connected(False)
    assert versions.get("a") is None


def test_answer_encoding_falls_back_for_integers_beyond_64_bits() -> None:
    """Answers are encoded by orjson, which refuses integers beyond 64 bits: those still go out."""
    from landmark.api.graphql.router import _answer

    body = _answer({"n": 2**70, "name": "Zürich"}).body
    assert json.loads(body) == {"data": {"n": 2**70, "name": "Zürich"}, "errors": None}


def test_a_client_hanging_up_mid_body_is_no_error(server, tenant, logs) -> None:
    """A client that closes its connection before its body arrives (a load generator
    stopping) leaves no error in the log."""
    import socket
    import time

    before = len(logs.lines)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        head = (
            f"POST /services/pathfinder/v1/graphql HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {tenant.token}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"query": "{ allTags')
        time.sleep(0.3)  # the server is reading the body
    time.sleep(0.5)
    errors = [line for line in logs.lines[before:] if '"level": "error"' in line]
    assert errors == []

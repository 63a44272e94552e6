"""LeanIX webhooks (/services/webhooks/v1) over HTTP with a real receiver on 127.0.0.1."""

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from cmdb_helpers import make_cmdb
from conftest import Server, Tenant
from webhook_helpers import Receiver, admin_principal, wait_until

WH = "/services/webhooks/v1"
PF = "/services/pathfinder/v1"
GQL = "/services/pathfinder/v1/graphql"
SECRET = "Basic dXNlcjpzM2NyZXQtcGFzc3dvcmQ="


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "OK", body
    return body["data"]


def error(response: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "ERROR", body
    if field is not None:
        assert field in [e["value"] for e in body["errors"]], body
    return body


def subscribe(client: httpx.Client, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body = {"identifier": "hook", "deliveryType": "PUSH", **fields}
    return ok(client.post(f"{WH}/subscriptions", json=body, headers=tenant.auth))


def gql(client: httpx.Client, tenant: Tenant, query: str, variables: Any = None) -> Any:
    response = client.post(GQL, json={"query": query, "variables": variables or {}},
                           headers=tenant.auth)  # fmt: skip
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    return body["data"]


def fact_sheet(client: httpx.Client, tenant: Tenant, type: str, name: str) -> dict[str, Any]:
    body = {"type": type, "name": name}
    return ok(client.post(f"{PF}/factSheets", json=body, headers=tenant.auth))


def outbox(server: Server, tenant: Tenant, after: int = 0) -> list[tuple[int, str, str]]:
    """(seq, type, subject_type) of the tenant's events after `after`."""
    from landmark.core.events import Event

    async def read(session: Any) -> list[tuple[int, str, str]]:
        rows = await session.execute(
            select(Event.seq, Event.type, Event.subject_type)
            .where(Event.account_id == tenant.slug, Event.seq > after)
            .order_by(Event.seq)
        )
        return [tuple(r) for r in rows]

    return list(server.run(read))


def head(server: Server, tenant: Tenant) -> int:
    from landmark.identity.models import Account

    async def read(session: Any) -> int:
        return int(await session.scalar(select(Account.event_seq).where(Account.id == tenant.slug)))

    return int(server.run(read))


def pending(server: Server, tenant: Tenant | None = None) -> int:
    """Deliveries not yet sent (of the tenant, or of everyone)."""
    from landmark.webhooks.models import PENDING, WebhookDelivery

    async def count(session: Any) -> int:
        query = (
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.state == PENDING)
        )
        if tenant is not None:
            query = query.where(WebhookDelivery.account_id == tenant.slug)
        return int(await session.scalar(query))

    return int(server.run(count))


def fan_out_done(server: Server, tenant: Tenant) -> bool:
    from landmark.webhooks.models import WebhookCursor

    async def read(session: Any) -> int | None:
        cursor = await session.get(WebhookCursor, tenant.slug, populate_existing=True)
        return cursor.last_seq if cursor else None

    last = server.run(read)
    return last is None or last >= head(server, tenant)  # no cursor: nothing to fan out


def settle(server: Server, tenant: Tenant) -> None:
    """Wait until every event is fanned out and every delivery sent."""
    wait_until(lambda: fan_out_done(server, tenant) and pending(server, tenant) == 0)


# ---- subscriptions --------------------------------------------------------------------------


def test_subscription_lifecycle_in_the_envelope_with_a_masked_header(
    client, tenant, receiver
) -> None:
    made = subscribe(
        client, tenant, identifier="crm-sync", targetUrl=receiver.url,
        tagSets=[["pathfinder", "FACT_SHEET_CREATED"]], authorizationHeader=SECRET,
    )  # fmt: skip
    assert made["identifier"] == "crm-sync" and made["deliveryType"] == "PUSH"
    assert made["authorizationHeader"] == "Basic ****"
    assert made["payloadMode"] == "DEFAULT" and made["active"] is True
    assert made["errorCount"] == 0 and made["lastDeliveryStatus"] is None
    sub_id = made["id"]
    got = ok(client.get(f"{WH}/subscriptions/{sub_id}", headers=tenant.auth))
    listed = client.get(f"{WH}/subscriptions", params={"identifier": "crm-sync"},
                        headers=tenant.auth)  # fmt: skip
    assert listed.json()["total"] == 1 and listed.json()["data"][0]["id"] == sub_id
    # A PUT that sends back the masked header keeps the secret (round trip of Terraform & co).
    changed = ok(
        client.put(f"{WH}/subscriptions/{sub_id}", headers=tenant.auth,
                   json={**got, "identifier": "crm-sync-2", "payloadMode": "WRAPPED_EVENT"})
    )  # fmt: skip
    assert changed["identifier"] == "crm-sync-2" and changed["payloadMode"] == "WRAPPED_EVENT"
    fact_sheet(client, tenant, "Application", "CRM")
    seen = receiver.wait_for(lambda r: len(r) >= 1)
    assert seen[0].headers["Authorization"] == SECRET
    wrapped = seen[0].json()
    assert wrapped["type"] == "FACT_SHEET_CREATED"
    assert wrapped["tags"] == ["pathfinder", "FACT_SHEET_CREATED", "Application"]
    assert json.loads(wrapped["payload"])["factSheet"]["name"] == "CRM"
    # Nothing shows the secret: responses, the deliveries log.
    texts = [
        client.get(f"{WH}/subscriptions/{sub_id}", headers=tenant.auth).text,
        client.get(f"{WH}/subscriptions", headers=tenant.auth).text,
    ]
    wait_until(lambda: ok(client.get(f"{WH}/subscriptions/{sub_id}/deliveries",
                                     headers=tenant.auth)))  # fmt: skip
    texts.append(client.get(f"{WH}/subscriptions/{sub_id}/deliveries", headers=tenant.auth).text)
    deleted = client.delete(f"{WH}/subscriptions/{sub_id}", headers=tenant.auth)
    texts.append(deleted.text)
    assert ok(deleted)["id"] == sub_id
    for text in texts:
        assert "dXNlcjpzM2NyZXQtcGFzc3dvcmQ" not in text
    error(client.get(f"{WH}/subscriptions/{sub_id}", headers=tenant.auth), 404, None)


def test_managing_subscriptions_needs_the_webhooks_permission(client, tenant) -> None:
    member = tenant.add_user(client, "member")
    denied = client.get(f"{WH}/subscriptions", headers=member["auth"])
    assert denied.status_code == 403 and denied.json()["status"] == "ERROR"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"deliveryType": "EMAIL"}, "deliveryType"),
        ({"deliveryType": None}, None),
        ({"tagSets": "pathfinder"}, "tagSets"),
        ({"tagSets": [[]]}, "tagSets"),
        ({"tagSets": [["pathfinder", 7]]}, "tagSets"),
        ({"tagSets": [["x" * 200]]}, "tagSets"),
        ({"targetUrl": "ftp://127.0.0.1/x"}, "targetUrl"),
        ({"targetUrl": "not a url"}, "targetUrl"),
        ({"targetUrl": None}, "targetUrl"),
        ({"identifier": "x" * 300}, "identifier"),
        ({"identifier": ""}, "identifier"),
        ({"payloadMode": "EVERYTHING"}, "payloadMode"),
        ({"maxBatchSize": 0}, "maxBatchSize"),
        ({"ignoreError": "yes"}, "ignoreError"),
        ({"authorizationHeader": "Basic x\r\nX-Injected: 1"}, "authorizationHeader"),
        ({"callback": "delivery.payload = {}"}, "callback"),
    ],
)
def test_malformed_subscriptions_are_refused_and_change_nothing(
    client, tenant, receiver, change, field
) -> None:
    body = {"identifier": "bad", "deliveryType": "PUSH", "targetUrl": receiver.url,
            "tagSets": [["pathfinder", "FACT_SHEET_CREATED"]], **change}  # fmt: skip
    error(client.post(f"{WH}/subscriptions", json=body, headers=tenant.auth), 400, field)
    assert ok(client.get(f"{WH}/subscriptions", headers=tenant.auth)) == []


def test_a_bad_update_changes_nothing(client, tenant, receiver) -> None:
    made = subscribe(client, tenant, targetUrl=receiver.url, tagSets=[["cmdb", "CI_CREATED"]])
    bad = {**made, "tagSets": [], "targetUrl": "http://10.1.2.3/"}
    error(client.put(f"{WH}/subscriptions/{made['id']}", json=bad, headers=tenant.auth), 400,
          "tagSets")  # fmt: skip
    assert ok(client.get(f"{WH}/subscriptions/{made['id']}", headers=tenant.auth)) == made
    for text in ("[]", '"x"', "{not json"):
        response = client.post(f"{WH}/subscriptions", content=text, headers={
            **tenant.auth, "Content-Type": "application/json"})  # fmt: skip
        assert response.status_code in (400, 422) and response.json()["status"] == "ERROR"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2:8080/hook",  # loopback, not the allowed 127.0.0.1
        "http://10.0.0.5/hook",  # private
        "http://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
        "http://100.64.0.1/",  # CGNAT
        "http://[::1]/",  # IPv6 loopback
        "http://[::ffff:10.0.0.1]/",  # IPv4-mapped IPv6
        "http://0.0.0.0/",  # unspecified
        "http://224.0.0.1/",  # multicast
        "http://240.0.0.1/",  # reserved
        "http://does-not-resolve.invalid/",
    ],
)
def test_internal_targets_are_refused_at_creation(client, tenant, url) -> None:
    body = {"identifier": "x", "deliveryType": "PUSH", "targetUrl": url,
            "tagSets": [["cmdb", "CI_CREATED"]]}  # fmt: skip
    error(client.post(f"{WH}/subscriptions", json=body, headers=tenant.auth), 400, "targetUrl")


def test_targets_are_checked_again_at_delivery_time(client, server, tenant, receiver) -> None:
    made = subscribe(client, tenant, targetUrl=receiver.url, tagSets=[["cmdb", "CI_CREATED"]])
    server.settings.webhook_allowed_hosts = ""  # the administrator withdraws the allowance
    try:
        make_cmdb(client, tenant.auth).ci(name="db-01")
        sub_url = f"{WH}/subscriptions/{made['id']}"
        sub = wait_until(lambda: (s := ok(client.get(sub_url, headers=tenant.auth)))
                         ["errorCount"] and s)  # fmt: skip
        assert "refused" in sub["lastError"] and "internal address" in sub["lastError"]
        assert receiver.received == []
    finally:
        server.settings.webhook_allowed_hosts = "127.0.0.1"
    # Allowed again: the retry goes through.
    receiver.wait_for(lambda r: len(r) == 1)
    wait_until(lambda: ok(client.get(sub_url, headers=tenant.auth))["errorCount"] == 0)


# ---- events and payloads --------------------------------------------------------------------

CMDB_TYPES = [
    "PRODUCT_CATEGORY_CREATED", "ORGANIZATION_CREATED", "TEAM_CREATED", "SERVICE_CREATED",
    "PRODUCT_CREATED", "CI_CREATED", "CI_UPDATED", "CI_ARCHIVED", "CI_TRASHED", "CI_RESTORED",
    "SITE_CREATED", "PERSON_CREATED", "PERSON_UPDATED", "PRODUCT_UPDATED",
]  # fmt: skip
INVENTORY_TYPES = [
    "FACT_SHEET_CREATED", "FACT_SHEET_UPDATED", "FACT_SHEET_ARCHIVED", "FACT_SHEET_RECOVERED",
    "FACT_SHEET_DELETED", "RELATION_CREATED", "RELATION_UPDATED", "FACT_SHEET_TAG_ADDED",
    "FACT_SHEET_TAG_REMOVED", "TAG_CREATED", "TAG_DELETED", "TAG_GROUP_CREATED",
    "SUBSCRIPTION_CREATED", "SUBSCRIPTION_DELETED", "COMMENT_CREATED", "COMMENT_REPLY_ADDED",
    "DOCUMENT_CREATED", "DOCUMENT_DELETED", "DATA_MODEL_UPDATED",
]  # fmt: skip


def cmdb_changes(client: httpx.Client, tenant: Tenant) -> None:
    cmdb = make_cmdb(client, tenant.auth)
    ci = cmdb.ci(name="app-01")
    cmdb.patch(f"cis/{ci['id']}", {"name": "app-01b"})
    for action in ("archive", "trash", "restore"):
        assert client.post(f"/v1/cis/{ci['id']}/{action}", headers=tenant.auth).status_code == 200
    cmdb.post("sites", {"name": "Amsterdam"})
    person = cmdb.post("people", {"name": "Ann", "primary_email": "ann@t.example",
                                  "organization_id": cmdb.organization["id"]})  # fmt: skip
    cmdb.patch(f"people/{person['id']}", {"job_title": "Engineer"})
    cmdb.patch(f"products/{cmdb.product['id']}", {"brand": "Lenovo"})


def inventory_changes(client: httpx.Client, server: Server, tenant: Tenant) -> None:
    app = fact_sheet(client, tenant, "Application", "Billing")
    itc = fact_sheet(client, tenant, "ITComponent", "Postgres")
    put = client.put(f"{PF}/factSheets/{app['id']}", headers=tenant.auth,
                     json={"description": "Invoices"})  # fmt: skip
    ok(put)
    relation = ok(
        client.post(
            f"{PF}/factSheets/{app['id']}/relations",
            headers=tenant.auth,
            json={"type": "relApplicationToITComponent", "toId": itc["id"]},
        )
    )
    ok(
        client.put(
            f"{PF}/factSheets/{app['id']}/relations/{relation['id']}",
            headers=tenant.auth,
            json={
                "type": "relApplicationToITComponent",
                "toId": itc["id"],
                "activeFrom": "2024-01-01",
            },
        )
    )
    tag = gql(client, tenant, 'mutation { createTag(name: "gdpr") { id } }')["createTag"]
    patches = [{"op": "add", "path": "/tags", "value": json.dumps([{"tagId": tag["id"]}])}]
    gql(client, tenant, "mutation($id: ID!, $p: [Patch]!) { updateFactSheet(id: $id, patches: $p)"
        " { factSheet { id } } }", {"id": app["id"], "p": patches})  # fmt: skip
    gql(client, tenant, "mutation($id: ID!) { deleteTag(id: $id) { id } }", {"id": tag["id"]})
    made = gql(client, tenant, """mutation($fs: ID!, $email: String) {
        s: createSubscription(factSheetId: $fs, user: {email: $email}, type: "OBSERVER") { id }
        c: createComment(factSheetId: $fs, message: "Looks good") { id }
        d: createDocument(factSheetId: $fs, name: "Wiki", url: "https://wiki.example/b") { id } }
        """, {"fs": app["id"], "email": tenant.email})  # fmt: skip
    gql(client, tenant, """mutation($fs: ID!, $to: ID, $s: ID!) {
        createComment(factSheetId: $fs, message: "Thanks", replyToId: $to) { id }
        deleteSubscription(id: $s) { id } }""",
        {"fs": app["id"], "to": made["c"]["id"], "s": made["s"]["id"]})  # fmt: skip
    in_domain(server, tenant, made["d"]["id"])  # no API deletes documents or makes tag groups
    archived = client.delete(f"{PF}/factSheets/{itc['id']}", params={"comment": "old"},
                             headers=tenant.auth)  # fmt: skip
    assert archived.status_code == 200, archived.text
    recover = [{"op": "replace", "path": "/status", "value": "ACTIVE"}]
    gql(client, tenant, "mutation($id: ID!, $p: [Patch]!) { updateFactSheet(id: $id, patches: $p)"
        " { factSheet { id } } }", {"id": itc["id"], "p": recover})  # fmt: skip
    gone = fact_sheet(client, tenant, "Application", "Legacy")
    retire = client.delete(f"{PF}/factSheets/{gone['id']}", params={"comment": "gone"},
                           headers=tenant.auth)  # fmt: skip
    assert retire.status_code == 200, retire.text
    purge_archived_now(server)
    model = ok(client.get(f"{PF}/models/dataModel", headers=tenant.auth))
    ok(client.put(f"{PF}/models/dataModel", json=model, headers=tenant.auth))


def in_domain(server: Server, tenant: Tenant, document_id: str) -> None:
    import uuid

    from landmark.eam import collab, tags

    async def run(session: Any) -> None:
        who = await admin_principal(session, tenant.slug, tenant.admin_id)
        await tags.create_tag_group(session, who, "Compliance")
        await collab.delete_document(session, who, uuid.UUID(document_id))

    server.run(run)


def purge_archived_now(server: Server) -> None:
    """Run the archive purge with no retention: the archived fact sheets are deleted."""
    from landmark.core.jobs import Worker
    from landmark.eam import purge

    async def run(session: Any) -> None:
        await purge.enqueue(session, purge.KIND, {"days": -1})
        await session.commit()
        await Worker(server.app.state.sessions, server.settings).run_once()

    server.run(run)


def test_each_event_type_reaches_its_subscription_and_no_other(
    client, server, tenant, receiver
) -> None:
    types = [("cmdb", t) for t in CMDB_TYPES] + [("pathfinder", t) for t in INVENTORY_TYPES]
    for source, kind in types:
        subscribe(client, tenant, identifier=kind, targetUrl=f"{receiver.url}/{kind}",
                  tagSets=[[source, kind]])  # fmt: skip
    never = subscribe(client, tenant, identifier="never", targetUrl=f"{receiver.url}/never",
                      tagSets=[["pathfinder", "FACT_SHEET_CREATED", "Process"]])  # fmt: skip
    start = head(server, tenant)
    cmdb_changes(client, tenant)
    inventory_changes(client, server, tenant)
    settle(server, tenant)
    by_path: dict[str, list[Any]] = {}
    for request in receiver.received:
        by_path.setdefault(request.path.rsplit("/", 1)[-1], []).append(request.json())
    for _, kind in types:
        bodies = by_path.get(kind, [])
        assert bodies, f"no {kind} delivered"
        expected = "".join(p.capitalize() for p in kind.split("_")) + "Event"
        assert {b["type"] for b in bodies} == {expected}, kind
    assert "never" not in by_path
    assert ok(client.get(f"{WH}/subscriptions/{never['id']}/deliveries",
                         headers=tenant.auth)) == []  # fmt: skip
    # Every event with a LeanIX type went to its subscription exactly once, in order of seq.
    offered = {t for _, t in types}
    from landmark.core.events import Event
    from landmark.webhooks.leanix import event_type

    wanted = []
    for seq, type_, subject in outbox(server, tenant, start):
        kind = event_type(Event(type=type_, subject_type=subject, subject_id="1", data={}))
        if kind in offered:
            wanted.append((kind, seq))
    got = sorted((k, b["transactionSequenceNumber"]) for k, bs in by_path.items() for b in bs)
    assert got == sorted(wanted)
    created = by_path["FACT_SHEET_CREATED"][0]
    assert created["factSheet"]["type"] in ("Application", "ITComponent")
    assert created["workspaceId"] == tenant.uuid and created["userId"]


def test_fact_sheet_type_filter(client, tenant, receiver) -> None:
    subscribe(client, tenant, targetUrl=receiver.url,
              tagSets=[["pathfinder", "FACT_SHEET_CREATED", "ITComponent"]])  # fmt: skip
    fact_sheet(client, tenant, "Application", "Skipped")
    fact_sheet(client, tenant, "ITComponent", "Kept")
    seen = receiver.wait_for(lambda r: len(r) >= 1)
    time.sleep(0.3)
    assert [r.json()["factSheet"]["name"] for r in receiver.received] == ["Kept"]
    assert seen[0].json()["type"] == "FactSheetCreatedEvent"


def test_no_payload_mode(client, tenant, receiver) -> None:
    subscribe(client, tenant, targetUrl=receiver.url, payloadMode="NO_PAYLOAD",
              targetMethod="PUT", tagSets=[["pathfinder", "FACT_SHEET_CREATED"]])  # fmt: skip
    fact_sheet(client, tenant, "Application", "Quiet")
    seen = receiver.wait_for(lambda r: len(r) >= 1)
    assert seen[0].method == "PUT" and seen[0].json() == {}


# ---- failures -------------------------------------------------------------------------------


def test_a_failing_target_is_retried_until_it_succeeds(client, tenant) -> None:
    receiver = Receiver(status=lambda n: 503 if n < 3 else 200).start()
    try:
        made = subscribe(client, tenant, targetUrl=receiver.url,
                         tagSets=[["pathfinder", "FACT_SHEET_CREATED"]])  # fmt: skip
        fact_sheet(client, tenant, "Application", "Flaky")
        sub_url = f"{WH}/subscriptions/{made['id']}"
        failing = wait_until(lambda: (s := ok(client.get(sub_url, headers=tenant.auth)))
                             ["errorCount"] and s)  # fmt: skip
        assert failing["lastDeliveryStatus"] == 503 and "HTTP 503" in failing["lastError"]
        assert failing["firstTimeDeliveryFailed"]
        seen = receiver.wait_for(lambda r: len(r) == 4)
        assert len({r.body for r in seen}) == 1  # the same delivery each time
        healthy = wait_until(lambda: (s := ok(client.get(sub_url, headers=tenant.auth)))
                             ["lastDeliveryStatus"] == 200 and s)  # fmt: skip
        assert healthy["errorCount"] == 0 and healthy["firstTimeDeliveryFailed"] is None
        log = ok(client.get(f"{sub_url}/deliveries", headers=tenant.auth))
        assert len(log) == 1 and log[0]["success"] is True and log[0]["attempts"] == 4
        assert log[0]["httpStatus"] == 200 and log[0]["responseBody"] == '{"received": 3}'
        assert log[0]["duration"] is not None and log[0]["eventId"]
    finally:
        receiver.stop()


def test_ignore_error_drops_a_failed_delivery(client, tenant) -> None:
    receiver = Receiver(status=lambda n: 500).start()
    try:
        made = subscribe(client, tenant, targetUrl=receiver.url, ignoreError=True,
                         tagSets=[["pathfinder", "FACT_SHEET_CREATED"]])  # fmt: skip
        fact_sheet(client, tenant, "Application", "Once")
        sub_url = f"{WH}/subscriptions/{made['id']}/deliveries"
        log = wait_until(lambda: (d := ok(client.get(sub_url, headers=tenant.auth)))
                         and d[0]["state"] == "DROPPED" and d)  # fmt: skip
        assert log[0]["success"] is False and log[0]["httpStatus"] == 500
        time.sleep(0.6)  # three retry intervals: nothing is sent again
        assert len(receiver.received) == 1
    finally:
        receiver.stop()


def test_a_redirect_is_not_followed(client, tenant) -> None:
    receiver = Receiver(status=lambda n: 302).start()
    try:
        made = subscribe(client, tenant, targetUrl=receiver.url, ignoreError=True,
                         tagSets=[["pathfinder", "FACT_SHEET_CREATED"]])  # fmt: skip
        fact_sheet(client, tenant, "Application", "Moved")
        sub_url = f"{WH}/subscriptions/{made['id']}"
        wait_until(lambda: ok(client.get(sub_url, headers=tenant.auth))["errorCount"])
        assert ok(client.get(sub_url, headers=tenant.auth))["lastDeliveryStatus"] == 302
        assert len(receiver.received) == 1
    finally:
        receiver.stop()


# ---- PULL -----------------------------------------------------------------------------------


def pull(client: httpx.Client, tenant: Tenant, sub_id: str, **params: Any) -> dict[str, Any]:
    return ok(client.get(f"{WH}/subscriptions/{sub_id}/events", params=params,
                         headers=tenant.auth))  # fmt: skip


def test_pull_with_cursor_long_poll_and_auto_commit(client, server, tenant) -> None:
    made = subscribe(client, tenant, deliveryType="PULL", maxBatchSize=1,
                     tagSets=[["pathfinder", "FACT_SHEET_CREATED"]])  # fmt: skip
    sub_id = made["id"]
    assert made["targetUrl"] is None
    empty = pull(client, tenant, sub_id)
    assert empty["events"] == []
    for name in ("One", "Two", "Three"):
        fact_sheet(client, tenant, "Application", name)
    settle(server, tenant)
    # maxBatchSize (1 KiB) holds about one event: batches of one, until the cursor moves.
    first = pull(client, tenant, sub_id)
    assert len(first["events"]) == 1
    again = pull(client, tenant, sub_id)
    assert again == first  # without a cursor move the same events come again
    event = json.loads(first["events"][0]["event"])
    assert json.loads(event["payload"])["factSheet"]["name"] == "One"
    assert event["tags"][:2] == ["pathfinder", "FACT_SHEET_CREATED"]
    offset = first["events"][0]["cursor"]["offset"]
    assert first["nextCursor"]["offset"] == offset + 1
    moved = client.put(f"{WH}/subscriptions/{sub_id}/cursor", json=first["nextCursor"],
                       headers=tenant.auth)  # fmt: skip
    assert ok(moved) == {"offset": offset + 1}
    second = pull(client, tenant, sub_id, autoCommit="true")
    assert json.loads(json.loads(second["events"][0]["event"])["payload"])["factSheet"][
        "name"] == "Two"  # fmt: skip
    third = pull(client, tenant, sub_id, autoCommit="true")
    assert third["events"][0]["cursor"]["offset"] > second["events"][0]["cursor"]["offset"]
    # Nothing left: a long poll waits, and returns as soon as an event arrives.
    started = time.time()
    assert pull(client, tenant, sub_id, timeout=0.5)["events"] == []
    assert time.time() - started >= 0.5
    import threading

    later = threading.Timer(0.4, lambda: fact_sheet(httpx.Client(base_url=server.url), tenant,
                                                     "Application", "Four"))  # fmt: skip
    later.start()
    started = time.time()
    waited = pull(client, tenant, sub_id, timeout=10)
    later.join()
    assert len(waited["events"]) == 1 and time.time() - started < 5
    # Moving the cursor back replays.
    ok(client.put(f"{WH}/subscriptions/{sub_id}/cursor", json={"offset": offset},
                  headers=tenant.auth))  # fmt: skip
    assert pull(client, tenant, sub_id)["events"] == first["events"]


def test_pull_errors(client, tenant, receiver) -> None:
    pushed = subscribe(client, tenant, targetUrl=receiver.url, tagSets=[["cmdb", "CI_CREATED"]])
    error(client.get(f"{WH}/subscriptions/{pushed['id']}/events", headers=tenant.auth), 400,
          "deliveryType")  # fmt: skip
    pulled = subscribe(client, tenant, deliveryType="PULL", tagSets=[["cmdb", "CI_CREATED"]])
    url = f"{WH}/subscriptions/{pulled['id']}"
    error(client.get(f"{url}/events", params={"timeout": 600}, headers=tenant.auth), 400,
          "timeout")  # fmt: skip
    for bad in ({"offset": -1}, {"offset": "7"}, {}, []):
        error(client.put(f"{url}/cursor", json=bad, headers=tenant.auth), 400, None)


# ---- tenant isolation -----------------------------------------------------------------------


def test_no_subscription_receives_another_accounts_events(
    client, server, tenant, other_tenant, receiver
) -> None:
    mine = subscribe(
        client,
        tenant,
        targetUrl=receiver.url,
        tagSets=[["pathfinder", "FACT_SHEET_CREATED"], ["cmdb", "CI_CREATED"]],
    )
    pulled = subscribe(client, tenant, deliveryType="PULL",
                       tagSets=[["pathfinder", "FACT_SHEET_CREATED"]])  # fmt: skip
    fact_sheet(client, other_tenant, "Application", "Theirs")
    make_cmdb(client, other_tenant.auth).ci(name="their-ci")
    fact_sheet(client, tenant, "Application", "Mine")
    settle(server, other_tenant)
    settle(server, tenant)
    bodies = receiver.bodies()
    assert [b["factSheet"]["name"] for b in bodies] == ["Mine"]
    assert {b["workspaceId"] for b in bodies} == {tenant.uuid}
    events = pull(client, tenant, pulled["id"])["events"]
    assert [json.loads(json.loads(e["event"])["payload"])["factSheet"]["name"]
            for e in events] == ["Mine"]  # fmt: skip
    # The other account sees none of these subscriptions, by any route.
    for sub in (mine, pulled):
        url = f"{WH}/subscriptions/{sub['id']}"
        auth = other_tenant.auth
        error(client.get(url, headers=auth), 404, None)
        error(client.put(url, json={**sub, "identifier": "x"}, headers=auth), 404, None)
        error(client.get(f"{url}/deliveries", headers=auth), 404, None)
        error(client.get(f"{url}/events", headers=auth), 404, None)
        error(client.put(f"{url}/cursor", json={"offset": 1}, headers=auth), 404, None)
        error(client.delete(url, headers=auth), 404, None)
    assert ok(client.get(f"{WH}/subscriptions", headers=other_tenant.auth)) == []
    assert len(ok(client.get(f"{WH}/subscriptions", headers=tenant.auth))) == 2


def test_old_pull_events_and_deliveries_are_purged(client, server, tenant, receiver) -> None:
    from landmark.core.jobs import Worker, enqueue
    from landmark.webhooks.service import PURGE

    pulled = subscribe(client, tenant, deliveryType="PULL",
                       tagSets=[["pathfinder", "FACT_SHEET_CREATED"]])  # fmt: skip
    pushed = subscribe(client, tenant, targetUrl=receiver.url,
                       tagSets=[["pathfinder", "FACT_SHEET_CREATED"]])  # fmt: skip
    fact_sheet(client, tenant, "Application", "Old")
    settle(server, tenant)
    assert len(pull(client, tenant, pulled["id"])["events"]) == 1

    async def purge_now(session: Any) -> None:
        await enqueue(session, PURGE, {"days": -1})  # everything counts as old
        await session.commit()
        await Worker(server.app.state.sessions, server.settings).run_once()

    server.run(purge_now)
    assert pull(client, tenant, pulled["id"])["events"] == []
    assert ok(client.get(f"{WH}/subscriptions/{pushed['id']}/deliveries",
                         headers=tenant.auth)) == []  # fmt: skip


def test_allowed_hosts_take_names_addresses_and_networks() -> None:
    import ipaddress

    from landmark.webhooks.ssrf import allowed, internal

    rules = allowed("hooks.internal, 10.0.0.0/8 ,192.168.1.7")
    assert rules.covers("HOOKS.internal")
    assert rules.covers("x", ipaddress.ip_address("10.20.30.40"))
    assert rules.covers("x", ipaddress.ip_address("192.168.1.7"))
    assert not rules.covers("x", ipaddress.ip_address("192.168.1.8"))
    assert internal(ipaddress.ip_address("::ffff:192.168.1.8"))
    assert not internal(ipaddress.ip_address("93.184.215.14"))

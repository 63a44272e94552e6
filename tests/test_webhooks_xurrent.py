"""Xurrent webhooks (/v1/webhooks, /v1/webhook_policies) end to end, with a real receiver on
127.0.0.1 (allowed by LANDMARK_WEBHOOK_ALLOWED_HOSTS in the test settings)."""

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from sqlalchemy import select

from cmdb_helpers import make_cmdb
from conftest import Server, Tenant
from landmark.core import clock
from landmark.webhooks.xurrent import EVENTS, VERIFY
from test_import_export import run_import
from webhook_helpers import Receiver, wait_until


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def second_receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def create(client: httpx.Client, tenant: Tenant, expect: int = 200, **body: Any) -> Any:
    response = client.post("/v1/webhooks", json=body, headers=tenant.auth)
    assert response.status_code == expect, response.text
    return response.json()


def messages(receiver: Receiver, event: str) -> list[Any]:
    return [data for data in map(unsigned, receiver.bodies()) if data["event"] == event]


def unsigned(body: Any) -> Any:
    """The delivery's data (a signed one is read without checking here: tests that care check)."""
    if "jwt" in body:
        return jwt.decode(body["jwt"], options={"verify_signature": False})["data"]
    return body


def verification(receiver: Receiver, webhook_id: int) -> dict[str, Any]:
    """The webhook.verify message the receiver got for that webhook (the last one)."""

    def found() -> Any:
        mine = [m for m in messages(receiver, VERIFY) if m["webhook_id"] == webhook_id]
        return mine[-1] if mine else None

    return dict(wait_until(found))


def callback(message: dict[str, Any]) -> str:
    """The callback as a path on the test server (the base URL of the tests is not served)."""
    parts = urlsplit(message["payload"]["callback"])
    return f"{parts.path}?{parts.query}"


def verified(client: httpx.Client, tenant: Tenant, receiver: Receiver, **body: Any) -> Any:
    hook = create(client, tenant, uri=receiver.url, **body)
    answer = client.get(callback(verification(receiver, hook["id"])))
    assert answer.status_code == 200, answer.text
    return hook


async def send_test(server: Server, session: Any, webhook_id: int) -> int | None:
    """What `landmark webhooks test` does; the receiver's status."""
    from landmark.webhooks import service
    from landmark.webhooks.models import WebhookSubscription

    sub = await session.get(WebhookSubscription, webhook_id)
    _, result = await service.send_test(server.app.state.sessions, server.settings, sub)
    return result.status


def stored(server: Server, tenant: Tenant) -> list[Any]:
    """What the database keeps of the account's webhooks and their events and verifications."""
    from landmark.core.events import Event
    from landmark.webhooks.models import WebhookSubscription
    from landmark.webhooks.verification import WebhookVerification

    async def read(session: Any) -> list[Any]:
        subs = await session.scalars(
            select(WebhookSubscription).where(WebhookSubscription.account_id == tenant.slug)
        )
        events = await session.scalars(select(Event).where(Event.account_id == tenant.slug))
        codes = await session.scalars(
            select(WebhookVerification.code_hash).where(
                WebhookVerification.account_id == tenant.slug
            )
        )
        return [*(s.config for s in subs), *(e.data for e in events), *codes]

    return list(server.run(read))


def settled(server: Server, tenant: Tenant) -> None:
    """Wait until the account's events are fanned out and no delivery is pending."""
    from landmark.identity.models import Account
    from landmark.webhooks.models import PENDING, WebhookCursor, WebhookDelivery

    async def idle(session: Any) -> bool:
        head = await session.scalar(select(Account.event_seq).where(Account.id == tenant.slug))
        cursor = await session.scalar(
            select(WebhookCursor.last_seq).where(WebhookCursor.account_id == tenant.slug)
        )
        pending = await session.scalar(
            select(WebhookDelivery.id).where(
                WebhookDelivery.account_id == tenant.slug, WebhookDelivery.state == PENDING
            )
        )
        return cursor == head and pending is None

    wait_until(lambda: server.run(idle))


def test_every_cmdb_event_type_reaches_its_webhook_and_no_other(
    client, server, tenant, receiver
) -> None:
    hooks = {verified(client, tenant, receiver, event=e)["id"]: e for e in EVENTS}
    me = client.get("/v1/me", headers=tenant.auth).json()
    cmdb = make_cmdb(client, tenant.auth)
    made = {
        "product_category": cmdb.category,
        "organization": cmdb.organization,
        "team": cmdb.team,
        "service": cmdb.service,
        "product": cmdb.product,
        "ci": cmdb.ci(name="web-01", label="WEB01"),
        "site": cmdb.post("sites", {"name": "Amsterdam"}),
        "person": cmdb.post("people", {"name": "Ellen Brown", "primary_email": "e@x.example"}),
    }
    paths = {"product_category": "product_categories", "person": "people", "ci": "cis"}
    for kind, record in made.items():
        path = paths.get(kind, f"{kind}s")
        cmdb.patch(f"{path}/{record['id']}", {"sourceID": f"{kind}-1"})
    other = cmdb.ci(name="web-02", label="WEB02")
    archived = client.post(f"/v1/cis/{other['id']}/archive", headers=tenant.auth)
    assert archived.status_code == 200, archived.text
    relation = "CI,Related CI,Relation Type\nWEB01,WEB02,child\n"
    assert run_import(client, tenant, "ci_relations", relation)["state"] == "done"
    settled(server, tenant)

    got = [unsigned(b) for b in receiver.bodies() if unsigned(b)["event"] != VERIFY]
    for body in got:  # each went to the webhook of its event, and only there
        assert hooks[body["webhook_id"]] == body["event"] == body["name"], body
        assert body["account_id"] == tenant.slug
        assert body["account"] == f"http://testserver.invalid/accounts/{tenant.slug}"
    seen = {(b["event"], b["object_id"]) for b in got}
    for kind, record in made.items():
        assert (f"{kind}.create", record["id"]) in seen, kind
        assert (f"{kind}.update", record["id"]) in seen, kind
    ci_updates = [b for b in got if b["event"] == "ci.update"]
    assert {b["object_id"] for b in ci_updates} >= {made["ci"]["id"], other["id"]}
    # One delivery per change: the admin's person (made by /v1/me), creates and updates, web-02
    # created and archived, and the imported relation as one more CI update.
    assert ("person.create", me["id"]) in seen
    changes = 1 + 2 * len(made) + 2 + 1
    assert len(got) == changes, sorted(seen)
    by_seq = {b["payload"]["audit_line_id"]: b for b in got}
    assert len(by_seq) == len(got)
    sample = next(b for b in got if b["event"] == "site.create")
    line = client.get(f"/v1/audit_lines/{sample['payload']['audit_line_id']}", headers=tenant.auth)
    assert line.json()["site"] == {"id": made["site"]["id"]}
    assert (sample["person_id"], sample["person_name"]) == (me["id"], me["name"])
    delivered = [r for r in receiver.received if r.json().get("event") == "site.create"]
    assert delivered[0].headers["Content-Type"] == "application/json; charset=utf-8"
    assert len(delivered[0].headers["x-xurrent-delivery"]) == 36


def test_nothing_is_delivered_before_the_receiver_verifies(
    client, server, tenant, receiver, second_receiver
) -> None:
    hook = create(client, tenant, event="ci.create", uri=receiver.url, name="CIs")
    assert hook["name"] == "CIs" and hook["event"] == "ci.create" and not hook["disabled"]
    message = verification(receiver, hook["id"])
    assert message["object_id"] == hook["id"] and message["name"] == VERIFY
    query = parse_qs(urlsplit(message["payload"]["callback"]).query)
    assert int(query["expires_at"][0]) > time.time()
    assert message["payload"]["callback"].startswith(
        f"http://testserver.invalid/v1/webhooks/{hook['id']}/verify?code="
    )
    code = query["code"][0]
    kept = stored(server, tenant)
    assert len(code) >= 24 and code not in json.dumps(kept)
    assert [x for x in kept if isinstance(x, str) and len(x) == 64]  # its hash is
    cmdb = make_cmdb(client, tenant.auth)
    early = cmdb.ci(name="early")
    settled(server, tenant)

    wrong = client.get(f"/v1/webhooks/{hook['id']}/verify?code=not-the-code")
    assert wrong.status_code == 404 and set(wrong.json()) == {"message"}
    clock.advance(timedelta(days=2))
    late = client.get(callback(message))
    clock.reset()
    assert late.status_code == 422 and late.json()["errors"][0][0] == "expires_at"
    assert client.get(callback(message)).status_code == 200
    assert client.get(callback(message)).status_code == 404  # a code serves once
    later = cmdb.ci(name="later")
    receiver.wait_for(lambda r: any(x.json()["object_id"] == later["id"] for x in r))
    assert early["id"] not in [b["object_id"] for b in messages(receiver, "ci.create")]

    # A new uri is verified again; until then nothing goes anywhere.
    moved = client.patch(
        f"/v1/webhooks/{hook['id']}", json={"uri": second_receiver.url}, headers=tenant.auth
    )
    assert moved.status_code == 200 and moved.json()["uri"] == second_receiver.url
    again = verification(second_receiver, hook["id"])
    assert client.get(callback(message)).status_code == 404  # the old code is void
    between = cmdb.ci(name="between")
    settled(server, tenant)
    assert client.get(callback(again)).status_code == 200
    last = cmdb.ci(name="last")
    second_receiver.wait_for(lambda r: any(x.json()["object_id"] == last["id"] for x in r))
    ids = [b["object_id"] for b in messages(second_receiver, "ci.create")]
    old = [b["object_id"] for b in messages(receiver, "ci.create")]
    assert between["id"] not in ids + old and last["id"] not in old
    # A PATCH that leaves the uri alone does not ask again.
    assert (
        client.patch(
            f"/v1/webhooks/{hook['id']}", json={"description": "d"}, headers=tenant.auth
        ).json()["description"]
        == "d"
    )
    settled(server, tenant)
    assert len(messages(second_receiver, VERIFY)) == 1


@pytest.mark.parametrize(
    ("alg", "expires_in"), [("rs256", 300), ("es256", None), ("es512", 60), ("rs384", None)]
)
def test_policy_signed_deliveries_verify_with_the_returned_public_key(
    client, server, tenant, receiver, alg, expires_in
) -> None:
    body = {"name": "Signing", "jwt_alg": alg, "jwt_audience": "integrations of test"}
    if expires_in:
        body["jwt_claim_expires_in"] = expires_in
    made = client.post("/v1/webhook_policies", json=body, headers=tenant.auth)
    assert made.status_code == 201, made.text
    policy = made.json()
    public_key = policy["public_key_pem"]
    assert public_key.startswith("-----BEGIN PUBLIC KEY-----")
    path = f"/v1/webhook_policies/{policy['id']}"
    shown = [client.get(path, headers=tenant.auth).json()]
    shown += client.get("/v1/webhook_policies", headers=tenant.auth).json()
    shown.append(client.patch(path, json={"name": "Renamed"}, headers=tenant.auth).json())
    assert all("public_key_pem" not in p and "private" not in json.dumps(p) for p in shown)

    hook = create(
        client, tenant, event="team.create", uri=receiver.url, webhook_policy_id=policy["id"]
    )
    assert hook["webhook_policy"] == {"id": policy["id"], "name": "Renamed"}
    issuer = f"http://testserver.invalid/accounts/{tenant.slug}"

    def check(token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        assert header["typ"] == "JWT" and header["alg"] == alg.upper()
        claims = jwt.decode(
            token,
            public_key,
            algorithms=[alg.upper()],
            audience="integrations of test",
            issuer=issuer,
            options={"require": ["iat", "nbf", "jti", "sub"]},
        )
        assert claims["sub"] == str(hook["id"])
        assert int(claims["jti"], 16) >= 0
        if expires_in:
            assert claims["exp"] == claims["iat"] + expires_in
        else:
            assert "exp" not in claims
        return claims

    first = wait_until(lambda: receiver.bodies())[0]
    assert set(first) == {"jwt"}
    verify = check(first["jwt"])["data"]
    assert verify["event"] == VERIFY
    assert client.get(callback(verify)).status_code == 200
    team = client.post("/v1/teams", json={"name": "Signed"}, headers=tenant.auth).json()
    seen = receiver.wait_for(lambda r: len(r) == 2)
    data = check(seen[1].json()["jwt"])["data"]
    assert (data["event"], data["object_id"]) == ("team.create", team["id"])
    # `landmark webhooks test` signs its sample too.
    status = server.run(lambda session: send_test(server, session, hook["id"]))
    assert status == 200
    sample = check(receiver.wait_for(lambda r: len(r) == 3)[2].json()["jwt"])["data"]
    assert sample["webhook_id"] == hook["id"] and "test" in sample["payload"]["message"]
    with pytest.raises(jwt.InvalidSignatureError):
        other = client.post("/v1/webhook_policies", json=body, headers=tenant.auth).json()
        jwt.decode(seen[1].json()["jwt"], other["public_key_pem"], algorithms=[alg.upper()],
                   audience="integrations of test")  # fmt: skip


def test_a_disabled_policy_holds_its_webhooks_and_a_used_one_is_not_deleted(
    client, server, tenant, receiver
) -> None:
    policy = client.post(
        "/v1/webhook_policies", json={"name": "P", "jwt_alg": "es256"}, headers=tenant.auth
    ).json()
    path = f"/v1/webhook_policies/{policy['id']}"
    hook = verified(client, tenant, receiver, event="site.create", webhook_policy_id=policy["id"])
    refused = client.delete(path, headers=tenant.auth)
    assert refused.status_code == 422 and refused.json()["errors"][0][0] == "id"

    assert client.patch(path, json={"disabled": True}, headers=tenant.auth).json()["disabled"]
    held = client.post("/v1/sites", json={"name": "Held"}, headers=tenant.auth).json()
    settled(server, tenant)
    assert messages(receiver, "site.create") == []
    client.patch(path, json={"disabled": False}, headers=tenant.auth)
    sent = client.post("/v1/sites", json={"name": "Sent"}, headers=tenant.auth).json()
    wait_until(lambda: messages(receiver, "site.create"))
    assert [m["object_id"] for m in messages(receiver, "site.create")] == [sent["id"]]
    assert held["id"] != sent["id"]

    unlink = {"webhook_policy_id": None}
    hook_path = f"/v1/webhooks/{hook['id']}"
    unlinked = client.patch(hook_path, json=unlink, headers=tenant.auth).json()
    assert unlinked["webhook_policy"] is None
    assert client.delete(path, headers=tenant.auth).status_code == 204
    assert client.get(path, headers=tenant.auth).status_code == 404


def test_webhooks_need_an_administrator(client, tenant) -> None:
    member = tenant.add_user(client, "member")
    for method, path in [
        ("GET", "/v1/webhooks"),
        ("POST", "/v1/webhooks"),
        ("GET", "/v1/webhook_policies"),
        ("POST", "/v1/webhook_policies"),
    ]:
        response = client.request(method, path, json={}, headers=member["auth"])
        assert response.status_code == 403, (method, path)
        assert "webhooks" in response.json()["message"]
        assert client.request(method, path, json={}).status_code == 401


def test_another_accounts_webhooks_are_not_found_and_get_nothing(
    client, server, tenant, other_tenant, receiver, second_receiver
) -> None:
    hook = verified(client, tenant, receiver, event="organization.create")
    policy = client.post(
        "/v1/webhook_policies", json={"name": "P", "jwt_alg": "es256"}, headers=tenant.auth
    ).json()
    theirs = verified(client, other_tenant, second_receiver, event="organization.create")
    paths = (f"/v1/webhooks/{hook['id']}", f"/v1/webhook_policies/{policy['id']}")
    before = [client.get(path, headers=tenant.auth).json() for path in paths]
    hijack = {"name": "Hijacked", "uri": second_receiver.url, "disabled": True}
    for method in ("GET", "PATCH", "DELETE"):
        for path in paths:
            response = client.request(method, path, json=hijack, headers=other_tenant.auth)
            assert response.status_code == 404, (method, path)
            assert set(response.json()) == {"message"}
    after = [client.get(path, headers=tenant.auth).json() for path in paths]
    assert after == before
    linked = create(
        client, other_tenant, 422, event="ci.create", uri=second_receiver.url,
        webhook_policy_id=policy["id"],
    )  # fmt: skip
    assert linked["errors"][0][0] == "webhook_policy_id"
    listed = client.get("/v1/webhooks", headers=other_tenant.auth).json()
    assert [w["id"] for w in listed] == [theirs["id"]]

    mine = client.post("/v1/organizations", json={"name": "Mine"}, headers=tenant.auth).json()
    other = client.post("/v1/organizations", json={"name": "X"}, headers=other_tenant.auth).json()
    settled(server, tenant)
    settled(server, other_tenant)
    assert [m["object_id"] for m in messages(receiver, "organization.create")] == [mine["id"]]
    assert [m["object_id"] for m in messages(second_receiver, "organization.create")] == [
        other["id"]
    ]


HOOK = {"event": "ci.create", "uri": "http://127.0.0.1:9/x"}
POLICY = {"name": "P", "jwt_alg": "es256"}
BAD_WEBHOOKS = [
    ({**HOOK, "event": "ci.destroy"}, "event"),
    ({**HOOK, "event": "webhook.verify"}, "event"),
    ({"uri": HOOK["uri"]}, "event"),
    ({"event": "ci.create"}, "uri"),
    ({**HOOK, "uri": "ftp://example.com/x"}, "uri"),
    ({**HOOK, "uri": "not a url"}, "uri"),
    ({**HOOK, "uri": "http://10.0.0.1/hook"}, "uri"),
    ({**HOOK, "uri": "http://169.254.169.254/latest/meta-data"}, "uri"),
    ({**HOOK, "uri": "http://[::ffff:10.0.0.1]/hook"}, "uri"),
    ({**HOOK, "uri": "http://127.0.0.1:9/" + "x" * 2100}, "uri"),
    ({**HOOK, "name": "n" * 256}, "name"),
    ({**HOOK, "description": "d" * 9000}, "description"),
    ({**HOOK, "disabled": "maybe"}, "disabled"),
    ({**HOOK, "mail_exceptions_to": "nope"}, "mail_exceptions_to"),
    ({**HOOK, "webhook_policy_id": "abc"}, "webhook_policy_id"),
    ({**HOOK, "webhook_policy_id": 999999}, "webhook_policy_id"),
]
BAD_POLICIES = [
    ({**POLICY, "jwt_alg": "hs256"}, "jwt_alg"),
    ({**POLICY, "jwt_alg": "none"}, "jwt_alg"),
    ({"name": "P"}, "jwt_alg"),
    ({"jwt_alg": "es256"}, "name"),
    ({**POLICY, "name": "P" * 300}, "name"),
    ({**POLICY, "jwt_audience": "a" * 300}, "jwt_audience"),
    ({**POLICY, "jwt_claim_expires_in": 0}, "jwt_claim_expires_in"),
    ({**POLICY, "jwt_claim_expires_in": "soon"}, "jwt_claim_expires_in"),
]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [("/v1/webhooks", *case) for case in BAD_WEBHOOKS]
    + [("/v1/webhook_policies", *case) for case in BAD_POLICIES],
)
def test_bad_input_is_refused_with_the_field_and_changes_nothing(
    client, tenant, path, body, field
) -> None:
    response = client.post(path, json=body, headers=tenant.auth)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["message"] == "Validation Failed"
    assert field in [f for f, _ in answer["errors"]], answer
    assert client.get(path, headers=tenant.auth).json() == []


def test_a_bad_patch_changes_nothing(client, tenant, receiver) -> None:
    hook = create(client, tenant, event="ci.create", uri=receiver.url)
    path = f"/v1/webhooks/{hook['id']}"
    for body, field in [
        ({"uri": "http://169.254.169.254/"}, "uri"),
        ({"event": None}, "event"),
        ({"event": "nope", "name": "new"}, "event"),
    ]:
        response = client.patch(path, json=body, headers=tenant.auth)
        assert response.status_code == 422 and response.json()["errors"][0][0] == field
    assert client.get(path, headers=tenant.auth).json() == hook
    policy = client.post(
        "/v1/webhook_policies", json={"name": "P", "jwt_alg": "rs256"}, headers=tenant.auth
    ).json()
    changed = client.patch(
        f"/v1/webhook_policies/{policy['id']}", json={"jwt_alg": "es256"}, headers=tenant.auth
    )
    assert changed.status_code == 422 and changed.json()["errors"][0][0] == "jwt_alg"


def test_last_error_shows_why_a_target_fails(client, tenant) -> None:
    failing = Receiver(status=lambda n: 503).start()
    try:
        hook = create(client, tenant, event="ci.create", uri=failing.url)

        def last_error() -> Any:
            return client.get(f"/v1/webhooks/{hook['id']}", headers=tenant.auth).json()[
                "last_error"
            ]

        assert "503" in wait_until(last_error)
    finally:
        failing.stop()


def test_lists_page_and_filter_like_every_xurrent_collection(client, tenant, receiver) -> None:
    for n, event in enumerate(["ci.create", "ci.update", "person.create"]):
        create(client, tenant, event=event, uri=receiver.url, name=f"hook {n}", disabled=n == 1)
    page = client.get("/v1/webhooks?per_page=2", headers=tenant.auth)
    assert [w["name"] for w in page.json()] == ["hook 0", "hook 1"]
    assert page.headers["X-Pagination-Total-Entries"] == "3"
    assert 'rel="next"' in page.headers["Link"]
    enabled = client.get("/v1/webhooks/enabled", headers=tenant.auth).json()
    disabled = client.get("/v1/webhooks/disabled", headers=tenant.auth).json()
    assert [w["name"] for w in enabled] == ["hook 0", "hook 2"]
    assert [(w["name"], w["disabled"]) for w in disabled] == [("hook 1", True)]
    query = "event=ci.create,person.create&sort=-name"
    chosen = client.get(f"/v1/webhooks?{query}", headers=tenant.auth)
    assert [w["name"] for w in chosen.json()] == ["hook 2", "hook 0"]
    bad = client.get("/v1/webhooks?event=ci.nope", headers=tenant.auth)
    assert bad.status_code == 400 and bad.json()["errors"][0][0] == "event"
    deleted = client.delete(f"/v1/webhooks/{enabled[0]['id']}", headers=tenant.auth)
    assert deleted.status_code == 204
    assert client.get(f"/v1/webhooks/{enabled[0]['id']}", headers=tenant.auth).status_code == 404


def test_sending_the_uri_again_renews_a_pending_verification(
    client, server, tenant, receiver
) -> None:
    hook = create(client, tenant, event="ci.create", uri=receiver.url)
    first = verification(receiver, hook["id"])
    path = f"/v1/webhooks/{hook['id']}"
    assert client.patch(path, json={"uri": receiver.url}, headers=tenant.auth).status_code == 200
    receiver.wait_for(lambda r: len(r) == 2)
    second = verification(receiver, hook["id"])
    assert second["payload"]["callback"] != first["payload"]["callback"]
    assert client.get(callback(first)).status_code == 404
    assert client.get(callback(second)).status_code == 200
    # Verified: the same uri again changes nothing and asks nothing.
    assert client.patch(path, json={"uri": receiver.url}, headers=tenant.auth).status_code == 200
    settled(server, tenant)
    assert len(messages(receiver, VERIFY)) == 2

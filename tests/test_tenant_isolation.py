"""Tenant isolation: an account never sees, changes or deletes another account's objects.

Account A is `tenant`, account B is `other_tenant`. Every route that takes an object's id answers
404 to A for B's ids (never 403, which would confirm the id exists), and B's objects are unchanged
and keep working afterwards.
"""

from typing import Any

import httpx
import pytest

from conftest import PASSWORD

MTM = "/services/mtm/v1"
CSRF = {"X-Requested-By": "test"}


def _upsolver_token(client: httpx.Client, email: str, password: str) -> dict[str, Any]:
    made = client.post(
        "/api-tokens/",
        json={"displayData": {"name": "x"}},
        headers={"x-api-email": email, "x-api-password": password},
    )
    assert made.status_code == 200, made.text
    return made.json()


def _objects(client: httpx.Client, account) -> dict[str, Any]:
    """A user, a personal token, an API key, a technical user and an Upsolver token in `account`."""
    auth = account.auth
    member = account.add_user(client, "member")
    pat = client.post("/api/v1/tokens", json={"name": "pat"}, headers=auth)
    key = client.post("/api/v1/api-keys", json={"name": "key"}, headers=auth)
    tech = client.post(
        f"{MTM}/technicalusers", json={"userName": "bot", "role": "MEMBER"}, headers=auth
    )
    for made, status in ((pat, 201), (key, 201), (tech, 200)):
        assert made.status_code == status, made.text
    ups = _upsolver_token(client, account.email, PASSWORD)
    member_pats = client.get("/api/v1/tokens", headers=member["auth"]).json()
    return {
        "account": account,
        "member": member,
        "member_pat": member_pats[0]["id"],
        "pat": pat.json()["id"],
        "pat_token": pat.json()["token"],
        "key": key.json()["id"],
        "client_id": key.json()["client_id"],
        "client_secret": key.json()["client_secret"],
        "tech": tech.json()["data"]["id"],
        "tech_token": tech.json()["data"]["apiToken"],
        "ups": ups["id"],
        "ups_token": ups["apiToken"],
    }


@pytest.fixture
def b(client: httpx.Client, other_tenant) -> dict[str, Any]:
    return _objects(client, other_tenant)


def _ids(b: dict[str, Any]) -> dict[str, Any]:
    account = b["account"]
    return {
        **b,
        "member": b["member"]["id"],
        "admin": account.admin_id,
        "uuid": account.uuid,
        "slug": account.slug,
        "member_email": b["member"]["email"],
    }


def _fill(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format_map(ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


# (method, path, body, how A signs in): every route that takes the id of an object.
ATTACKS = [
    ("GET", "/api/v1/users/{member}", None, "bearer"),
    ("GET", "/api/v1/users/{admin}", None, "bearer"),
    ("PATCH", "/api/v1/users/{member}", {"name": "taken over"}, "bearer"),
    ("PATCH", "/api/v1/users/{member}", {"status": "archived"}, "bearer"),
    ("PATCH", "/api/v1/users/{member}", {"password": "hijacked-password"}, "bearer"),
    ("PATCH", "/api/v1/users/{admin}", {"role": "viewer"}, "bearer"),
    ("DELETE", "/api/v1/tokens/{pat}", None, "bearer"),
    ("DELETE", "/api/v1/tokens/{member_pat}", None, "bearer"),
    ("GET", "/api/v1/api-keys/{key}", None, "bearer"),
    ("PATCH", "/api/v1/api-keys/{key}", {"enabled": False, "name": "taken over"}, "bearer"),
    ("DELETE", "/api/v1/api-keys/{key}", None, "bearer"),
    ("POST", "/api/v1/api-keys/{key}/regenerate", None, "bearer"),
    ("GET", MTM + "/apiTokens/{pat}", None, "bearer"),
    ("DELETE", MTM + "/apiTokens/{pat}", None, "bearer"),
    ("GET", MTM + "/technicalusers/{tech}", None, "bearer"),
    ("DELETE", MTM + "/technicalusers/{tech}", None, "bearer"),
    ("PUT", MTM + "/technicalusers/{tech}/replace_token", None, "bearer"),
    ("GET", MTM + "/technicalusers/{tech}/changelog", None, "bearer"),
    ("GET", MTM + "/workspaces/{uuid}/users", None, "bearer"),
    ("GET", MTM + "/workspaces/{slug}/users", None, "bearer"),
    (
        "POST",
        MTM + "/idm/invite",
        {
            "user": {"email": "{member_email}"},
            "workspace": {"id": "{uuid}"},
            "permission": {"role": "ADMIN"},
        },
        "bearer",
    ),
    ("DELETE", "/api-tokens/{ups}", None, "bearer"),
    ("DELETE", "/api-tokens/{ups}", None, "password"),
]


def _snapshot(client: httpx.Client, b: dict[str, Any]) -> dict[str, Any]:
    """What B's admin and member see of B's objects (less last-used times, which use moves)."""
    ids = _ids(b)
    admin, member = b["account"].auth, b["member"]["auth"]
    views = {
        path.format_map(ids): client.get(path.format_map(ids), headers=auth)
        for path, auth in [
            ("/api/v1/users", admin),
            ("/api/v1/users/{member}", admin),
            ("/api/v1/users/{admin}", admin),
            ("/api/v1/tokens", admin),
            ("/api/v1/api-keys", admin),
            ("/api/v1/api-keys/{key}", admin),
            (MTM + "/technicalusers", admin),
            (MTM + "/technicalusers/{tech}", admin),
            (MTM + "/apiTokens", admin),
            ("/api-tokens/", admin),
            ("/api/v1/audit", admin),
        ]
    }
    views["member tokens"] = client.get("/api/v1/tokens", headers=member)
    assert all(r.status_code == 200 for r in views.values()), {k: r.text for k, r in views.items()}
    return {k: _strip(r.json()) for k, r in views.items()}


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in ("last_used_at", "lastUsedAt")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _assert_b_works(client: httpx.Client, b: dict[str, Any]) -> None:
    account, member = b["account"], b["member"]
    bearers = [account.token, b["pat_token"], member["token"], b["tech_token"]]
    for credential in [{"Authorization": f"Bearer {t}"} for t in bearers] + [
        {"Authorization": b["ups_token"]}
    ]:
        me = client.get("/api/v1/me", headers=credential)
        assert me.status_code == 200, me.text
        assert me.json()["account"]["id"] == account.slug
    basic = client.get("/api/v1/me", auth=(member["email"], member["password"]), headers=CSRF)
    assert basic.status_code == 200, basic.text
    issued = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(b["client_id"], b["client_secret"]),
    )
    assert issued.status_code == 200, issued.text
    jwt_me = client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {issued.json()['access_token']}"}
    )
    assert jwt_me.status_code == 200 and jwt_me.json()["account"]["id"] == account.slug


@pytest.mark.parametrize(
    ("method", "path", "body", "sign_in"),
    ATTACKS,
    ids=[f"{m} {p} {s}" + (f" {sorted(b)}" if b else "") for m, p, b, s in ATTACKS],
)
def test_another_accounts_ids_answer_404_and_change_nothing(
    client: httpx.Client, tenant, b: dict[str, Any], method: str, path: str, body: Any, sign_in: str
) -> None:
    before = _snapshot(client, b)
    headers = (
        tenant.auth
        if sign_in == "bearer"
        else {"x-api-email": tenant.email, "x-api-password": PASSWORD}
    )
    response = client.request(
        method, _fill(path, _ids(b)), json=_fill(body, _ids(b)), headers=headers
    )
    assert response.status_code == 404, response.text
    assert _snapshot(client, b) == before
    _assert_b_works(client, b)
    trail = client.get("/api/v1/audit", params={"limit": 1000}, headers=b["account"].auth).json()
    assert [e for e in trail if e["actor_user_id"] == tenant.admin_id] == []
    a_users = client.get("/api/v1/users", headers=tenant.auth)
    assert a_users.headers["x-total-count"] == "1"  # nobody of B was invited into A either


def _id_values(value: Any) -> set[str]:
    """Every value under an id-like key, anywhere in a JSON document."""
    if isinstance(value, list):
        return set().union(*(_id_values(v) for v in value)) if value else set()
    if not isinstance(value, dict):
        return set()
    found = {
        str(v)
        for k, v in value.items()
        if k in ("id", "subject_id", "actor_user_id", "user_id", "userId")
    }
    return found.union(*(_id_values(v) for v in value.values()))


LISTS = [
    "/api/v1/users",
    "/api/v1/tokens",
    "/api/v1/api-keys",
    MTM + "/technicalusers",
    MTM + "/apiTokens",
    "/api-tokens/",
    "/api/v1/audit?limit=1000",
    MTM + "/workspaces/{uuid}/users",
]


@pytest.mark.parametrize("path", LISTS)
def test_lists_never_show_another_accounts_objects(
    client: httpx.Client, tenant, other_tenant, path: str
) -> None:
    a, b = _objects(client, tenant), _objects(client, other_tenant)
    listed = client.get(path.format(uuid=tenant.uuid), headers=tenant.auth)
    assert listed.status_code == 200, listed.text
    b_markers = {
        other_tenant.slug,
        other_tenant.uuid,
        b["client_id"],
        b["pat"],
        b["key"],
        b["ups"],
        b["member_pat"],
    }
    assert [m for m in b_markers if m in listed.text] == []
    b_users = {str(other_tenant.admin_id), str(b["member"]["id"]), str(b["tech"])}
    assert _id_values(listed.json()) & b_users == set()
    own = {tenant.email, a["member"]["email"], a["pat"], a["key"], a["ups"]}
    assert any(m in listed.text for m in own) or a["tech"] in _id_values(listed.json()), (
        "shows none of A's objects"
    )


def test_an_admin_cannot_take_over_a_person_of_another_account(
    client: httpx.Client, tenant, other_tenant
) -> None:
    """A person may be in several accounts; no account's admin may set their password."""
    invited = client.post(
        f"{MTM}/idm/invite", json={"user": {"email": other_tenant.email}}, headers=tenant.auth
    )
    assert invited.status_code == 200, invited.text  # inviting an existing person is a feature
    client.patch(
        f"/api/v1/users/{other_tenant.admin_id}",
        json={"password": "attacker-password"},
        headers=tenant.auth,
    )
    into_b = {"X-Requested-By": "t", "X-Xurrent-Account": other_tenant.slug}
    signed_in = {
        password: client.get(
            "/api/v1/me", auth=(other_tenant.email, password), headers=into_b
        ).status_code
        for password in (PASSWORD, "attacker-password")
    }
    assert signed_in == {PASSWORD: 200, "attacker-password": 401}


def test_a_personal_token_is_listed_only_to_its_owner(client: httpx.Client, tenant) -> None:
    member = tenant.add_user(client, "member")
    made = client.post(f"{MTM}/apiTokens", json={"name": "mine"}, headers=member["auth"])
    mtm = made.json()["data"]
    ups = _upsolver_token(client, member["email"], member["password"])
    owned = {t["id"] for t in client.get("/api/v1/tokens", headers=member["auth"]).json()}
    assert mtm["id"] in owned and len(owned) == 2
    for path in ["/api/v1/tokens", f"{MTM}/apiTokens", "/api-tokens/"]:
        seen = client.get(path, headers=tenant.auth)
        assert seen.status_code == 200
        assert [i for i in owned | {ups["id"]} if i in seen.text] == [], path
    for method, path in [
        *[("DELETE", f"/api/v1/tokens/{i}") for i in owned],
        *[(m, f"{MTM}/apiTokens/{i}") for i in owned for m in ("GET", "DELETE")],
        ("DELETE", f"/api-tokens/{ups['id']}"),
    ]:
        assert client.request(method, path, headers=tenant.auth).status_code == 404, (method, path)
    assert {t["id"] for t in client.get("/api/v1/tokens", headers=member["auth"]).json()} == owned
    for credential in [
        member["auth"],
        {"Authorization": f"Bearer {mtm['token']}"},
        {"Authorization": ups["apiToken"]},
    ]:
        assert client.get("/api/v1/me", headers=credential).status_code == 200

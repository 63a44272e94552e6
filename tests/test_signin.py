"""Each way of signing in works end to end over HTTP."""

import base64
import json

import httpx
import jwt

from conftest import PASSWORD


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _me(client: httpx.Client, **kwargs) -> dict:
    response = client.get("/api/v1/me", **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def test_personal_token(client, tenant) -> None:
    made = client.post(
        "/api/v1/tokens", json={"name": "laptop", "scopes": ["read"]}, headers=tenant.auth
    )
    assert made.status_code == 201
    token = made.json()["token"]
    me = _me(client, headers={"Authorization": f"Bearer {token}"})
    assert me["account"]["id"] == tenant.slug
    assert me["permissions"] == ["read"]  # narrowed by the token's scopes
    listed = client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {token}"}).json()
    assert [t["name"] for t in listed] == ["landmark init", "laptop"]
    assert listed[1]["last_used_at"] is not None


def test_api_key_client_credentials_basic_and_form(client, tenant, server) -> None:
    key = client.post(
        "/api/v1/api-keys", json={"name": "ci", "privileges": ["read"]}, headers=tenant.auth
    ).json()
    assert key["access_token_url"].endswith("/oauth/token")
    by_basic = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(key["client_id"], key["client_secret"]),
    )
    by_form = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": key["client_id"],
            "client_secret": key["client_secret"],
        },
    )
    for response in (by_basic, by_form):
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 300
        header = jwt.get_unverified_header(body["access_token"])
        assert header["alg"] == "RS256" and header["kid"]
        me = _me(client, headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me["credential"]["kind"] == "api_key" and me["permissions"] == ["read"]
    # The published keys verify the token.
    jwks = client.get("/.well-known/jwks.json").json()
    key_data = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    public = jwt.PyJWK(key_data).key
    claims = jwt.decode(
        by_basic.json()["access_token"], public, algorithms=["RS256"], audience="landmark"
    )
    assert claims["exp"] - claims["iat"] == 300


def test_api_key_lifecycle(client, tenant) -> None:
    key = client.post("/api/v1/api-keys", json={"name": "sync"}, headers=tenant.auth).json()
    assert key["client_secret"][-3:] == key["client_secret_last3"]
    shown = client.get(f"/api/v1/api-keys/{key['id']}", headers=tenant.auth).json()
    assert "client_secret" not in shown and shown["status"] == "active"
    regenerated = client.post(
        f"/api/v1/api-keys/{key['id']}/regenerate", headers=tenant.auth
    ).json()
    assert (
        regenerated["client_id"] == key["client_id"]
        and regenerated["client_secret"] != key["client_secret"]
    )
    token = lambda secret: client.post(  # noqa: E731
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(key["client_id"], secret)
    )
    assert token(key["client_secret"]).status_code == 401
    assert token(regenerated["client_secret"]).status_code == 200
    disabled = client.patch(
        f"/api/v1/api-keys/{key['id']}", json={"enabled": False}, headers=tenant.auth
    ).json()
    assert disabled["status"] == "disabled"
    assert token(regenerated["client_secret"]).status_code == 401
    client.patch(f"/api/v1/api-keys/{key['id']}", json={"enabled": True}, headers=tenant.auth)
    assert token(regenerated["client_secret"]).status_code == 200
    assert client.delete(f"/api/v1/api-keys/{key['id']}", headers=tenant.auth).status_code == 204
    assert token(regenerated["client_secret"]).status_code == 401
    assert client.get(f"/api/v1/api-keys/{key['id']}", headers=tenant.auth).status_code == 404


def test_leanix_mtm_token(client, tenant) -> None:
    response = client.post(
        "/services/mtm/v1/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("apitoken", tenant.token),
    )
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("scope", "expired", "token_type", "expires_in")} == {
        "scope": "",
        "expired": False,
        "token_type": "bearer",
        "expires_in": 3599,
    }
    claims = _claims(body["access_token"])
    assert claims["instanceUrl"] == "http://testserver.invalid"
    permission = claims["principal"]["permission"]
    assert permission["workspaceId"] == tenant.uuid and permission["workspaceName"] == tenant.slug
    assert (
        permission["role"] == "ADMIN"
        and claims["principal"]["account"]["name"] == f"Tenant {tenant.slug}"
    )
    assert claims["principal"]["username"] == tenant.email
    me = _me(client, headers={"Authorization": f"bearer {body['access_token']}"})
    assert me["user"]["email"] == tenant.email
    # grant_type may also come in the query string, as LeanIX accepts it
    again = client.post(
        "/services/mtm/v1/oauth2/token?grant_type=client_credentials",
        auth=("apitoken", tenant.token),
    )
    assert again.status_code == 200


def test_leanix_api_tokens_and_technical_users(client, tenant) -> None:
    created = client.post(
        "/services/mtm/v1/apiTokens",
        json={"name": "script", "expiry": "2027-01-31"},
        headers=tenant.auth,
    ).json()
    assert created["status"] == "OK" and created["data"]["token"].startswith("lmk_pat_")
    assert created["data"]["expiry"].startswith("2027-01-31")
    listed = client.get("/services/mtm/v1/apiTokens", headers=tenant.auth).json()
    assert "script" in [t["name"] for t in listed["data"]] and all(
        t["token"] is None for t in listed["data"]
    )

    technical = client.post(
        "/services/mtm/v1/technicalusers",
        json={"userName": "sync-bot", "description": "CI", "role": "VIEWER"},
        headers=tenant.auth,
    ).json()["data"]
    assert technical["role"] == "VIEWER" and technical["apiToken"].startswith("lmk_tut_")
    mtm = client.post(
        "/services/mtm/v1/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("apitoken", technical["apiToken"]),
    ).json()
    assert _claims(mtm["access_token"])["principal"]["role"] == "TECHNICAL_USER"
    me = _me(client, headers={"Authorization": f"Bearer {technical['apiToken']}"})
    assert me["user"]["kind"] == "technical" and me["permissions"] == ["read"]

    replaced = client.put(
        f"/services/mtm/v1/technicalusers/{technical['id']}/replace_token", headers=tenant.auth
    )
    new_token = replaced.json()["data"]["apiToken"]
    assert (
        client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {technical['apiToken']}"}
        ).status_code
        == 401
    )
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {new_token}"}).status_code
        == 200
    )
    log = client.get(
        f"/services/mtm/v1/technicalusers/{technical['id']}/changelog", headers=tenant.auth
    ).json()
    assert [e["action"] for e in log["data"]] == ["CREATED", "TOKEN_REPLACED"]
    assert (
        client.delete(
            f"/services/mtm/v1/technicalusers/{technical['id']}", headers=tenant.auth
        ).json()["status"]
        == "OK"
    )
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {new_token}"}).status_code
        == 401
    )
    assert technical["id"] not in [
        u["id"]
        for u in client.get("/services/mtm/v1/technicalusers", headers=tenant.auth).json()["data"]
    ]


def test_leanix_workspace_users_and_invite(client, tenant, other_tenant) -> None:
    invited = client.post(
        "/services/mtm/v1/idm/invite",
        json={
            "user": {"email": "new.person@example.com", "firstName": "New", "lastName": "Person"},
            "workspace": {"id": tenant.uuid},
            "permission": {"role": "MEMBER"},
        },
        headers=tenant.auth,
    )
    assert invited.status_code == 200 and invited.json()["data"]["role"] == "MEMBER"
    users = client.get(
        f"/services/mtm/v1/workspaces/{tenant.uuid}/users", headers=tenant.auth
    ).json()
    assert users["total"] == 2
    assert {u["email"] for u in users["data"]} == {tenant.email, "new.person@example.com"}
    # An existing user of another account joins with a membership of their own.
    joined = client.post(
        "/services/mtm/v1/idm/invite",
        json={"user": {"email": other_tenant.email}, "permission": {"role": "VIEWER"}},
        headers=tenant.auth,
    )
    assert joined.json()["data"]["role"] == "VIEWER"
    basic = {"X-Requested-By": "t", "X-Xurrent-Account": tenant.slug}
    me = _me(client, auth=(other_tenant.email, PASSWORD), headers=basic)
    assert me["account"]["id"] == tenant.slug and me["role"] == "viewer"


def test_upsolver_api_tokens(client, tenant) -> None:
    headers = {"x-api-email": tenant.email, "x-api-password": PASSWORD}
    created = client.post(
        "/api-tokens/",
        json={"displayData": {"name": "Bot", "description": "Data sources"}},
        headers=headers,
    )
    assert created.status_code == 200
    body = created.json()
    assert set(body) == {"id", "organizationId", "displayData", "apiToken", "createdBy"}
    assert body["organizationId"] == tenant.uuid and body["createdBy"] == tenant.email
    assert body["displayData"]["name"] == "Bot" and body["displayData"]["creationTime"]
    token = body["apiToken"]
    # Used as a raw Authorization value, and as a bearer token.
    assert _me(client, headers={"authorization": token})["credential"]["kind"] == "upsolver"
    assert _me(client, headers={"Authorization": f"Bearer {token}"})["account"]["id"] == tenant.slug
    listed = client.get("/api-tokens/", headers={"authorization": token}).json()
    assert [t["id"] for t in listed] == [body["id"]] and "apiToken" not in listed[0]
    assert client.delete(f"/api-tokens/{body['id']}", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers={"authorization": token}).status_code == 401
    wrong = client.post(
        "/api-tokens/",
        json={"displayData": {"name": "x"}},
        headers={**headers, "x-api-password": "nope"},
    )
    assert wrong.status_code == 401


def test_basic_with_csrf_header(client, tenant) -> None:
    encoded = base64.b64encode(f"{tenant.email}:{PASSWORD}".encode()).decode()
    without = client.get("/api/v1/me", headers={"Authorization": f"Basic {encoded}"})
    assert without.status_code == 400 and "X-Requested-By" in without.json()["detail"]
    with_header = client.get(
        "/api/v1/me", headers={"Authorization": f"Basic {encoded}", "X-Requested-By": "anything"}
    )
    assert with_header.status_code == 200 and with_header.json()["credential"]["kind"] == "password"
    # The same rule in the other dialects.
    assert (
        client.get("/services/mtm/v1/apiTokens", auth=(tenant.email, PASSWORD)).json()["status"]
        == "ERROR"
    )
    assert "message" in client.get("/v1/x", auth=(tenant.email, PASSWORD)).json()


def test_key_rotation_keeps_old_tokens_valid(client, tenant, server) -> None:
    from landmark.identity.keys import rotate

    old = client.post(
        "/services/mtm/v1/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("apitoken", tenant.token),
    ).json()["access_token"]
    new_key = server.run(lambda session: rotate(session, 3600))
    new = client.post(
        "/services/mtm/v1/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("apitoken", tenant.token),
    ).json()["access_token"]
    assert (
        jwt.get_unverified_header(new)["kid"]
        == new_key.kid
        != jwt.get_unverified_header(old)["kid"]
    )
    kids = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert {new_key.kid, jwt.get_unverified_header(old)["kid"]} <= kids
    for token in (old, new):
        assert (
            client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )


def test_users_api(client, tenant) -> None:
    member = tenant.add_user(client, "member")
    listed = client.get("/api/v1/users", headers=tenant.auth)
    assert listed.headers["x-total-count"] == "2"
    got = client.get(f"/api/v1/users/{member['id']}", headers=tenant.auth).json()
    assert (
        got["role"] == "member" and got["status"] == "active" and "password" not in json.dumps(got)
    )
    changed = client.patch(
        f"/api/v1/users/{member['id']}",
        json={"role": "viewer", "permissions": ["monitoring"]},
        headers=tenant.auth,
    ).json()
    assert changed["role"] == "viewer" and changed["effective_permissions"] == [
        "monitoring",
        "read",
    ]
    me = _me(client, headers=member["auth"])
    assert me["permissions"] == ["monitoring", "read"]  # the change applies at once
    archived = client.patch(
        f"/api/v1/users/{member['id']}", json={"status": "archived"}, headers=tenant.auth
    )
    assert archived.json()["status"] == "archived"
    assert client.get("/api/v1/me", headers=member["auth"]).status_code == 401
    bad = client.post(
        "/api/v1/users",
        json={"email": "not-an-email", "name": "x", "password": PASSWORD},
        headers=tenant.auth,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "email"
    duplicate = client.post(
        "/api/v1/users",
        json={"email": member["email"], "name": "x", "password": PASSWORD},
        headers=tenant.auth,
    )
    assert duplicate.status_code == 422


def test_account_settings_and_audit(client, tenant) -> None:
    assert client.get("/api/v1/account", headers=tenant.auth).json()["id"] == tenant.slug
    patched = client.patch("/api/v1/account", json={"name": "Renamed"}, headers=tenant.auth).json()
    assert patched["name"] == "Renamed"
    events = client.get("/api/v1/audit", headers=tenant.auth).json()
    types = [e["type"] for e in events]
    assert types[:4] == [
        "account.created",
        "user.created",
        "membership.created",
        "credential.created",
    ]
    assert types[-1] == "account.updated" and events[-1]["data"] == {
        "name": [f"Tenant {tenant.slug}", "Renamed"]
    }
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["request_id"] and events[-1]["actor_user_id"] == tenant.admin_id
    later = client.get(f"/api/v1/audit?after={events[-2]['seq']}", headers=tenant.auth).json()
    assert [e["seq"] for e in later] == [events[-1]["seq"]]


def test_password_changes(client, tenant) -> None:
    member = tenant.add_user(client, "member")
    basic = {"X-Requested-By": "t"}
    reset = client.patch(
        f"/api/v1/users/{member['id']}", json={"password": "reset-by-admin"}, headers=tenant.auth
    )
    assert reset.status_code == 200  # a person of this account alone
    assert (
        client.get("/api/v1/me", auth=(member["email"], PASSWORD), headers=basic).status_code == 401
    )
    own = client.patch(
        f"/api/v1/users/{member['id']}",
        json={"password": "chosen-by-me", "name": "Me"},
        auth=(member["email"], "reset-by-admin"),
        headers=basic,
    )
    assert own.status_code == 200 and own.json()["name"] == "Me"
    assert (
        client.get("/api/v1/me", auth=(member["email"], "chosen-by-me"), headers=basic).status_code
        == 200
    )
    escalate = client.patch(
        f"/api/v1/users/{member['id']}", json={"role": "admin"}, headers=member["auth"]
    )
    assert escalate.status_code == 403

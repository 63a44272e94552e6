"""Every way of signing in, refused: bad, dead, forged or under-privileged credentials.

Each refusal is checked for its status, its WWW-Authenticate challenge (on a 401) and that it
changed nothing: the audit trail gains no event except the failed sign-ins it must record.
"""

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import PASSWORD, Tenant
from landmark.core import clock
from landmark.identity.secrets import new_token

CSRF = {"X-Requested-By": "tests"}
GRANT = {"grant_type": "client_credentials"}
MTM_TOKEN = "/services/mtm/v1/oauth2/token"


# --- helpers -------------------------------------------------------------------------------------


def basic(email: str, password: str = PASSWORD, **extra: str) -> dict[str, str]:
    """HTTP Basic with the CSRF header (admin calls use it: it does not idle out as tokens do)."""
    encoded = base64.b64encode(f"{email}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}", **CSRF, **extra}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audit(client: httpx.Client, tenant: Tenant, after: int = 0) -> list[dict[str, Any]]:
    response = client.get(
        "/api/v1/audit", params={"after": after, "limit": 1000}, headers=basic(tenant.email)
    )
    assert response.status_code == 200, response.text
    return response.json()


def last_seq(client: httpx.Client, tenant: Tenant) -> int:
    events = audit(client, tenant)
    return events[-1]["seq"] if events else 0


def new_events(client: httpx.Client, tenant: Tenant, after: int) -> list[str]:
    return [e["type"] for e in audit(client, tenant, after)]


def assert_401(response: httpx.Response, scheme: str = "Bearer") -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith(scheme), f"WWW-Authenticate: {challenge!r}"


def assert_invalid_token(response: httpx.Response) -> None:
    assert_401(response)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401


def assert_oauth_401(response: httpx.Response) -> None:
    """RFC 6749 §5.2 invalid_client: 401 with a challenge, never cached, no token."""
    assert response.status_code == 401, response.text
    assert response.headers.get("www-authenticate"), "401 without WWW-Authenticate"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == "invalid_client" and body["error_description"]
    assert "access_token" not in body


def me(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    return client.get("/api/v1/me", headers=headers)


def make_token(client: httpx.Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/tokens", json={"name": "t", **body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def make_key(
    client: httpx.Client, headers: dict[str, str], privileges: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = (
        {"name": "k"} if privileges is None else {"name": "k", "privileges": privileges}
    )
    response = client.post("/api/v1/api-keys", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def client_token(
    client: httpx.Client, key: dict[str, Any], secret: str | None = None, form: bool = False
) -> httpx.Response:
    secret = secret or key["client_secret"]
    if form:
        return client.post(
            "/oauth/token", data={**GRANT, "client_id": key["client_id"], "client_secret": secret}
        )
    return client.post("/oauth/token", data=GRANT, auth=(key["client_id"], secret))


def key_jwt(client: httpx.Client, key: dict[str, Any]) -> str:
    response = client_token(client, key)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def mtm_jwt(client: httpx.Client, token: str) -> str:
    response = client.post(MTM_TOKEN, data=GRANT, auth=("apitoken", token))
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def forged_secret(token: str) -> str:
    """A well-formed token (valid checksum) with the same key id and another secret."""
    _, kind, rest = token.split("_", 2)
    kinds = {"pat": "personal", "tut": "technical", "ups": "upsolver", "cs": "api_key"}
    forged = new_token(kinds[kind], rest[:12])
    assert forged != token
    return forged


# --- 1. no credential ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, body, dialect",
    [
        ("GET", "/api/v1/me", None, "problem"),
        (
            "POST",
            "/api/v1/users",
            {"email": "x@y.example", "name": "x", "password": PASSWORD},
            "problem",
        ),
        ("POST", "/api/v1/tokens", {"name": "sneaky"}, "problem"),
        ("POST", "/services/mtm/v1/technicalusers", {"userName": "bot", "role": "ADMIN"}, "leanix"),
        ("POST", "/api-tokens/", {"displayData": {"name": "x"}}, "problem"),
    ],
)
def test_no_credential_gets_401(client, tenant, method, path, body, dialect) -> None:
    seq = last_seq(client, tenant)
    response = client.request(method, path, json=body)
    assert_401(response)
    if dialect == "leanix":
        assert response.json()["status"] == "ERROR"
    else:
        assert response.json()["status"] == 401
    assert new_events(client, tenant, seq) == []


# --- 2. malformed tokens -------------------------------------------------------------------------


def _bad_checksum(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(lambda token: f"Bearer {uuid.uuid4().hex}", id="random"),
        pytest.param(lambda token: f"Bearer {_bad_checksum(token)}", id="bad-checksum"),
        pytest.param(lambda token: "Bearer lmk_pat_" + "x" * 50, id="bad-length"),
        pytest.param(lambda token: "Bearer a.b.c", id="garbage-jwt"),
        pytest.param(lambda token: "Bearer", id="empty-bearer"),
        pytest.param(lambda token: f"Bearer {forged_secret(token)}", id="wrong-secret"),
        pytest.param(lambda token: _bad_checksum(token), id="raw-bad"),  # raw, Upsolver style
        pytest.param(lambda token: f"Digest {token}", id="digest"),
    ],
)
def test_malformed_or_wrong_token_gets_401(
    client, tenant, authorization: Callable[[str], str]
) -> None:
    fresh = make_token(client, basic(tenant.email))  # never used: last_used_at must stay empty
    before = client.get("/api/v1/tokens", headers=basic(tenant.email)).json()
    seq = last_seq(client, tenant)
    response = client.post(
        "/api/v1/tokens",
        json={"name": "x"},
        headers={"Authorization": authorization(fresh["token"])},
    )
    assert_401(response)
    assert response.json()["status"] == 401
    assert client.get("/api/v1/tokens", headers=basic(tenant.email)).json() == before
    assert new_events(client, tenant, seq) == []


def test_malformed_basic_gets_401(client, tenant) -> None:
    seq = last_seq(client, tenant)
    for value in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode()):
        assert_401(client.get("/api/v1/me", headers={"Authorization": value, **CSRF}), "Basic")
    assert new_events(client, tenant, seq) == []


# --- 3. dead personal tokens ---------------------------------------------------------------------


def _expire(client, tenant, made) -> None:
    clock.advance(timedelta(minutes=2))


def _revoke(client, tenant, made) -> None:
    assert (
        client.delete(f"/api/v1/tokens/{made['id']}", headers=basic(tenant.email)).status_code
        == 204
    )


def _idle(client, tenant, made) -> None:
    clock.advance(timedelta(days=91))


@pytest.mark.parametrize(
    "lifetime, kill",
    [(timedelta(minutes=1), _expire), (None, _revoke), (timedelta(days=300), _idle)],
    ids=["expired", "revoked", "unused-91-days"],
)
def test_dead_personal_token_gets_401(client, tenant, lifetime, kill) -> None:
    body = {"expires_at": (clock.now() + lifetime).isoformat()} if lifetime else {}
    made = make_token(client, basic(tenant.email), **body)
    assert me(client, bearer(made["token"])).status_code == 200
    kill(client, tenant, made)
    seq = last_seq(client, tenant)
    assert_invalid_token(me(client, bearer(made["token"])))
    assert_oauth_401(client.post(MTM_TOKEN, data=GRANT, auth=("apitoken", made["token"])))
    assert new_events(client, tenant, seq) == []


# --- 4-6. API keys: old secret, deleted, disabled, expired ---------------------------------------


@pytest.mark.parametrize("form", [False, True], ids=["basic", "form"])
def test_old_client_secret_after_regenerate_gets_401(client, tenant, form) -> None:
    admin = basic(tenant.email)
    key = make_key(client, admin)
    regenerated = client.post(f"/api/v1/api-keys/{key['id']}/regenerate", headers=admin)
    assert regenerated.status_code == 200
    before = client.get(f"/api/v1/api-keys/{key['id']}", headers=admin).json()
    seq = last_seq(client, tenant)
    assert_oauth_401(client_token(client, key, key["client_secret"], form))
    assert client.get(f"/api/v1/api-keys/{key['id']}", headers=admin).json() == before
    assert new_events(client, tenant, seq) == ["api_key.sign_in_failed"]
    assert client_token(client, key, regenerated.json()["client_secret"], form).status_code == 200


def _delete_key(client, admin, key) -> None:
    assert client.delete(f"/api/v1/api-keys/{key['id']}", headers=admin).status_code == 204


def _disable_key(client, admin, key) -> None:
    response = client.patch(f"/api/v1/api-keys/{key['id']}", json={"enabled": False}, headers=admin)
    assert response.status_code == 200 and response.json()["status"] == "disabled"


@pytest.mark.parametrize("kill", [_delete_key, _disable_key], ids=["deleted", "disabled"])
def test_jwt_and_secret_of_dead_key_get_401(client, tenant, kill) -> None:
    admin = basic(tenant.email)
    key = make_key(client, admin)
    access = key_jwt(client, key)
    assert me(client, bearer(access)).status_code == 200
    kill(client, admin, key)
    keys = client.get("/api/v1/api-keys", headers=admin).json()
    seq = last_seq(client, tenant)
    assert_invalid_token(me(client, bearer(access)))
    assert_oauth_401(client_token(client, key))
    assert client.get("/api/v1/api-keys", headers=admin).json() == keys
    assert new_events(client, tenant, seq) == ["api_key.sign_in_failed"]


def test_expired_key_secret_gets_401_until_regenerated(client, tenant) -> None:
    admin = basic(tenant.email)
    key = make_key(client, admin)
    clock.advance(timedelta(days=183))
    before = client.get(f"/api/v1/api-keys/{key['id']}", headers=admin).json()
    assert before["status"] == "expired"
    seq = last_seq(client, tenant)
    assert_oauth_401(client_token(client, key))
    assert client.get(f"/api/v1/api-keys/{key['id']}", headers=admin).json() == before
    assert new_events(client, tenant, seq) == ["api_key.sign_in_failed"]
    regenerated = client.post(f"/api/v1/api-keys/{key['id']}/regenerate", headers=admin).json()
    assert regenerated["status"] == "active"
    access = key_jwt(client, {**key, "client_secret": regenerated["client_secret"]})
    assert me(client, bearer(access)).json()["credential"]["kind"] == "api_key"


# --- 7. archived users ---------------------------------------------------------------------------


def _personal(client, tenant):
    user = tenant.add_user(client, "member")
    return user["auth"], lambda: _archive_user(client, tenant, user["id"])


def _mtm(client, tenant):
    user = tenant.add_user(client, "member")
    return bearer(mtm_jwt(client, user["token"])), lambda: _archive_user(client, tenant, user["id"])


def _api_key(client, tenant):
    user = tenant.add_user(client, "admin")
    access = key_jwt(client, make_key(client, user["auth"]))
    return bearer(access), lambda: _archive_user(client, tenant, user["id"])


def _technical(client, tenant):
    made = client.post(
        "/services/mtm/v1/technicalusers",
        json={"userName": "bot", "role": "MEMBER"},
        headers=tenant.auth,
    )
    assert made.status_code == 200, made.text
    data = made.json()["data"]

    def archive() -> None:
        gone = client.delete(
            f"/services/mtm/v1/technicalusers/{data['id']}", headers=basic(tenant.email)
        )
        assert gone.status_code == 200, gone.text

    return bearer(data["apiToken"]), archive


def _password(client, tenant):
    user = tenant.add_user(client, "member")
    return basic(user["email"]), lambda: _archive_user(client, tenant, user["id"])


def _archive_user(client, tenant, user_id) -> None:
    response = client.patch(
        f"/api/v1/users/{user_id}", json={"status": "archived"}, headers=basic(tenant.email)
    )
    assert response.status_code == 200 and response.json()["status"] == "archived", response.text


@pytest.mark.parametrize(
    "make, scheme",
    [
        (_personal, "Bearer"),
        (_mtm, "Bearer"),
        (_api_key, "Bearer"),
        (_technical, "Bearer"),
        (_password, "Basic"),
    ],
    ids=["personal-token", "mtm-jwt", "api-key-jwt", "technical-user-token", "password"],
)
def test_credentials_of_archived_user_get_401(client, tenant, make, scheme) -> None:
    headers, archive = make(client, tenant)
    assert me(client, headers).status_code == 200
    archive()
    seq = last_seq(client, tenant)
    assert_401(me(client, headers), scheme)
    assert new_events(client, tenant, seq) == []


# --- 8. forged and expired JWTs ------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64json(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value).encode())


def _other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def _alg_none(token: str, pem: bytes) -> str:
    header = {"alg": "none", "typ": "at+jwt", "kid": _kid(token)}
    return f"{_b64json(header)}.{token.split('.')[1]}."


def _wrong_signature(token: str, pem: bytes) -> str:
    return jwt.encode(
        _claims(token),
        _other_key(),
        algorithm="RS256",
        headers={"kid": _kid(token), "typ": "at+jwt"},
    )


def _unknown_kid(token: str, pem: bytes) -> str:
    return jwt.encode(
        _claims(token),
        _other_key(),
        algorithm="RS256",
        headers={"kid": "no-such-kid", "typ": "at+jwt"},
    )


def _hs256_with_public_key(token: str, pem: bytes) -> str:
    signing_input = (
        f"{_b64json({'alg': 'HS256', 'typ': 'at+jwt', 'kid': _kid(token)})}.{token.split('.')[1]}"
    )
    return f"{signing_input}.{_b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"


def _tampered_claims(token: str, pem: bytes) -> str:
    header, _, signature = token.split(".")
    claims = {**_claims(token), "exp": _claims(token)["exp"] + 86400}
    return f"{header}.{_b64json(claims)}.{signature}"


def _expired_by_one_second(token: str, pem: bytes) -> str:
    clock.advance(timedelta(seconds=301))
    return token


@pytest.mark.parametrize(
    "forge",
    [
        _alg_none,
        _wrong_signature,
        _unknown_kid,
        _hs256_with_public_key,
        _tampered_claims,
        _expired_by_one_second,
    ],
)
def test_forged_or_expired_jwt_gets_401(client, tenant, forge) -> None:
    access = key_jwt(client, make_key(client, basic(tenant.email)))
    assert me(client, bearer(access)).status_code == 200
    jwk = next(
        k for k in client.get("/.well-known/jwks.json").json()["keys"] if k["kid"] == _kid(access)
    )
    pem = jwt.PyJWK(jwk).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = forge(access, pem)
    seq = last_seq(client, tenant)
    assert_invalid_token(me(client, bearer(forged)))
    assert_401(client.post("/api/v1/api-keys", json={"name": "x"}, headers=bearer(forged)))
    assert new_events(client, tenant, seq) == []


# --- 9. token endpoints --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_token",
    [
        pytest.param(
            lambda c, key, token: client_token(c, key, forged_secret(key["client_secret"])),
            id="oauth-basic-wrong-secret",
        ),
        pytest.param(
            lambda c, key, token: client_token(
                c, key, forged_secret(key["client_secret"]), form=True
            ),
            id="oauth-form-wrong-secret",
        ),
        pytest.param(
            lambda c, key, token: c.post(
                "/oauth/token",
                data={**GRANT, "client_id": "lmk_ci_nobodyhere12", "client_secret": "x"},
            ),
            id="oauth-form-unknown-client",
        ),
        pytest.param(
            lambda c, key, token: c.post(
                "/oauth/token", data=GRANT, auth=("lmk_ci_nobodyhere12", "x")
            ),
            id="oauth-basic-unknown-client",
        ),
        pytest.param(
            lambda c, key, token: c.post("/oauth/token", data=GRANT), id="oauth-no-client"
        ),
        pytest.param(
            lambda c, key, token: c.post(
                "/oauth/token", data=GRANT, auth=("lmk_ci_" + token[8:20], token)
            ),
            id="oauth-personal-token-as-client",
        ),
        pytest.param(
            lambda c, key, token: c.post(MTM_TOKEN, data=GRANT, auth=("apitoken", "wrong")),
            id="mtm-garbage",
        ),
        pytest.param(
            lambda c, key, token: c.post(
                MTM_TOKEN, data=GRANT, auth=("apitoken", forged_secret(token))
            ),
            id="mtm-wrong-secret",
        ),
        pytest.param(
            lambda c, key, token: c.post(MTM_TOKEN, data=GRANT, auth=("someone", token)),
            id="mtm-wrong-username",
        ),
        pytest.param(
            lambda c, key, token: c.post(
                MTM_TOKEN, data=GRANT, auth=("apitoken", key["client_secret"])
            ),
            id="mtm-client-secret",
        ),
        pytest.param(lambda c, key, token: c.post(MTM_TOKEN, data=GRANT), id="mtm-no-credential"),
    ],
)
def test_token_endpoints_reject_wrong_credentials(client, tenant, request_token) -> None:
    key = make_key(client, basic(tenant.email))
    seq = last_seq(client, tenant)
    assert_oauth_401(request_token(client, key, tenant.token))
    assert set(new_events(client, tenant, seq)) <= {"api_key.sign_in_failed"}


@pytest.mark.parametrize("path", ["/oauth/token", MTM_TOKEN])
@pytest.mark.parametrize(
    "grant, error", [("password", "unsupported_grant_type"), (None, "invalid_request")]
)
def test_token_endpoints_reject_other_grants(client, tenant, path, grant, error) -> None:
    key = make_key(client, basic(tenant.email))
    auth = (
        (key["client_id"], key["client_secret"])
        if path == "/oauth/token"
        else ("apitoken", tenant.token)
    )
    response = client.post(
        path, data={"grant_type": grant} if grant else {"scope": "read"}, auth=auth
    )
    assert response.status_code == 400, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == error and "access_token" not in response.json()


# --- 10. missing permissions ---------------------------------------------------------------------


NEW_USER = {"email": "new@example.com", "name": "New", "password": PASSWORD}


def _viewer_creates_user(client, tenant):
    return tenant.add_user(client, "viewer")["auth"], "POST", "/api/v1/users", NEW_USER


def _member_lists_keys(client, tenant):
    return tenant.add_user(client, "member")["auth"], "GET", "/api/v1/api-keys", None


def _read_scoped_token_creates_user(client, tenant):
    return (
        bearer(make_token(client, tenant.auth, scopes=["read"])["token"]),
        "POST",
        "/api/v1/users",
        NEW_USER,
    )


def _read_key_creates_key(client, tenant):
    access = key_jwt(client, make_key(client, tenant.auth, ["read"]))
    return bearer(access), "POST", "/api/v1/api-keys", {"name": "escalate"}


def _viewer_token_beyond_role(client, tenant):
    return (
        tenant.add_user(client, "viewer")["auth"],
        "POST",
        "/api/v1/tokens",
        {"name": "x", "scopes": ["read", "write"]},
    )


def _scoped_token_beyond_scopes(client, tenant):
    scoped = bearer(make_token(client, tenant.auth, scopes=["read", "write"])["token"])
    return scoped, "POST", "/api/v1/tokens", {"name": "x", "scopes": ["users"]}


def _member_key_beyond_role(client, tenant):
    user = tenant.add_user(client, "member", permissions=["api_keys"])
    return user["auth"], "POST", "/api/v1/api-keys", {"name": "x", "privileges": ["users"]}


@pytest.mark.parametrize(
    "setup",
    [
        _viewer_creates_user,
        _member_lists_keys,
        _read_scoped_token_creates_user,
        _read_key_creates_key,
        _viewer_token_beyond_role,
        _scoped_token_beyond_scopes,
        _member_key_beyond_role,
    ],
)
def test_missing_permission_gets_403(client, tenant, setup) -> None:
    headers, method, path, body = setup(client, tenant)
    users = client.get("/api/v1/users", headers=basic(tenant.email)).json()
    seq = last_seq(client, tenant)
    response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == 403, response.text
    assert (
        response.headers["content-type"] == "application/problem+json"
        and response.json()["status"] == 403
    )
    assert client.get("/api/v1/users", headers=basic(tenant.email)).json() == users
    assert new_events(client, tenant, seq) == []


# --- 11. HTTP Basic: CSRF header, wrong passwords, lockout ---------------------------------------


def test_basic_needs_csrf_header(client, tenant) -> None:
    seq = last_seq(client, tenant)
    without = client.post("/api/v1/tokens", json={"name": "csrf"}, auth=(tenant.email, PASSWORD))
    assert without.status_code == 400 and "X-Requested-By" in without.json()["detail"]
    assert new_events(client, tenant, seq) == []
    assert me(client, basic(tenant.email)).status_code == 200


def test_wrong_password_gets_401_and_is_audited(client, tenant) -> None:
    user = tenant.add_user(client, "member")
    seq = last_seq(client, tenant)
    assert_401(me(client, basic(user["email"], "wrong-password")), "Basic")
    assert_401(me(client, basic("nobody@nowhere.example", "wrong-password")), "Basic")
    events = audit(client, tenant, seq)
    assert [(e["type"], e["subject_id"]) for e in events] == [
        ("user.sign_in_failed", str(user["id"]))
    ]


def test_five_wrong_passwords_lock_the_user(client, tenant) -> None:
    user = tenant.add_user(client, "member")
    right = basic(user["email"])
    upsolver = {"x-api-email": user["email"], "x-api-password": PASSWORD}
    assert me(client, right).status_code == 200
    seq = last_seq(client, tenant)
    for _ in range(5):
        assert_401(me(client, basic(user["email"], "wrong-password")), "Basic")
    events = audit(client, tenant, seq)
    assert [e["type"] for e in events] == ["user.sign_in_failed"] * 5
    assert events[-1]["data"] == {"failed_sign_ins": 5, "locked": True}
    seq = events[-1]["seq"]
    assert_401(me(client, right), "Basic")  # even the right password, at once
    assert_401(
        client.post("/api-tokens/", json={"displayData": {"name": "x"}}, headers=upsolver), "Basic"
    )
    clock.advance(timedelta(seconds=290))  # the lock lasts 300 s
    assert_401(me(client, right), "Basic")
    assert new_events(client, tenant, seq) == []
    clock.advance(timedelta(seconds=11))
    assert me(client, right).status_code == 200


# --- 12. users of several accounts ---------------------------------------------------------------


def _in_two_accounts(client, tenant, other_tenant) -> dict[str, Any]:
    user = tenant.add_user(client, "member")
    invited = client.post(
        "/services/mtm/v1/idm/invite",
        json={"user": {"email": user["email"]}, "permission": {"role": "MEMBER"}},
        headers=other_tenant.auth,
    )
    assert invited.status_code == 200, invited.text
    return user


@pytest.mark.parametrize(
    "header", ["X-Xurrent-Account", "x-xurrent-account", "X-4me-Account", "X-4ME-ACCOUNT"]
)
def test_user_of_two_accounts_names_one(client, tenant, other_tenant, header) -> None:
    user = _in_two_accounts(client, tenant, other_tenant)
    for account in (tenant, other_tenant):
        response = me(client, basic(user["email"], **{header: account.slug}))
        assert response.status_code == 200, response.text
        assert response.json()["account"]["id"] == account.slug


def test_user_of_two_accounts_without_or_with_a_foreign_account(
    client, server, tenant, other_tenant
) -> None:
    user = _in_two_accounts(client, tenant, other_tenant)
    third = Tenant(server, f"x{uuid.uuid4().hex[:10]}")
    seqs = [last_seq(client, t) for t in (tenant, other_tenant)]
    unnamed = me(client, basic(user["email"]))
    assert unnamed.status_code == 400 and "X-Xurrent-Account" in unnamed.json()["detail"]
    assert me(client, basic(user["email"], **{"X-Xurrent-Account": third.slug})).status_code == 403
    assert (
        me(client, basic(user["email"], **{"X-4me-Account": "no-such-account"})).status_code == 403
    )
    # A bearer token is bound to its account: naming another one is refused.
    assert me(client, {**user["auth"], "X-Xurrent-Account": tenant.slug}).status_code == 200
    assert me(client, {**user["auth"], "X-Xurrent-Account": other_tenant.slug}).status_code == 403
    assert me(client, {**tenant.auth, "X-4me-Account": other_tenant.slug}).status_code == 403
    assert [
        new_events(client, t, s) for t, s in zip((tenant, other_tenant), seqs, strict=True)
    ] == [[], []]

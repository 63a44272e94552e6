"""Secrets: shown once at creation, never again in a response, a log line or a stored row."""

import json
import re
import string
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select

from conftest import PASSWORD
from landmark.identity.models import Credential, User
from landmark.identity.secrets import parse_token

MTM = "/services/mtm/v1"
SHAPE = re.compile(r"^lmk_(pat|tut|ups|cs)_[0-9A-Za-z]{50}$")
KIND = {"pat": "personal", "tut": "technical", "ups": "upsolver", "cs": "api_key"}
GRANT = {"grant_type": "client_credentials"}


@dataclass
class Minted:
    """Every kind of secret of one account, and every response seen with the secret it may show."""

    client: httpx.Client
    secrets: dict[str, str]
    ids: dict[str, Any] = field(default_factory=dict)
    seen: list[tuple[str, httpx.Response, str | None]] = field(default_factory=list)

    def call(self, route: str, status: int = 200, **kw: Any) -> Any:
        return self.mint("", route, "", status, **kw)

    def mint(self, name: str, route: str, at: str, status: int = 200, **kw: Any) -> Any:
        """Send `route` ("METHOD /path"); the response may show only the secret found `at`."""
        method, path = route.split(" ", 1)
        response = self.client.request(method, path, **kw)
        assert response.status_code == status, (route, response.text)
        body = response.json() if response.content else None
        own = None
        if at:
            own = body
            for part in at.split("."):
                own = own[part]
            self.secrets[name] = own
        self.seen.append((route, response, own))
        return body

    @property
    def tokens(self) -> dict[str, str]:
        return {k: v for k, v in self.secrets.items() if v.startswith("lmk_")}

    @property
    def jwts(self) -> dict[str, str]:
        return {k: v for k, v in self.secrets.items() if v.count(".") == 2}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def minted(client: httpx.Client, tenant) -> Minted:
    m = Minted(client, {"admin token": tenant.token, "admin password": PASSWORD})
    admin, basic = tenant.auth, {"X-Requested-By": "t"}
    pat = m.mint("pat", "POST /api/v1/tokens", "token", 201, json={"name": "p"}, headers=admin)
    mtm = m.mint(
        "mtm token", f"POST {MTM}/apiTokens", "data.token", json={"name": "m"}, headers=admin
    )
    key = m.mint(
        "client secret",
        "POST /api/v1/api-keys",
        "client_secret",
        201,
        json={"name": "k"},
        headers=admin,
    )
    first = (key["client_id"], m.secrets["client secret"])
    m.mint("oauth jwt", "POST /oauth/token", "access_token", data=GRANT, auth=first)
    regen = m.mint(
        "regenerated client secret",
        f"POST /api/v1/api-keys/{key['id']}/regenerate",
        "client_secret",
        headers=admin,
    )
    m.call("POST /oauth/token", 401, data=GRANT, auth=first)
    form = {**GRANT, "client_id": key["client_id"], "client_secret": regen["client_secret"]}
    m.mint("oauth jwt (form)", "POST /oauth/token", "access_token", data=form)
    body = {"userName": "bot", "role": "MEMBER"}
    tech = m.mint(
        "technical token", f"POST {MTM}/technicalusers", "data.apiToken", json=body, headers=admin
    )
    m.call("GET /api/v1/me", headers=bearer(tech["data"]["apiToken"]))
    route = f"PUT {MTM}/technicalusers/{tech['data']['id']}/replace_token"
    m.mint("replaced technical token", route, "data.apiToken", headers=admin)
    m.call("GET /api/v1/me", 401, headers=bearer(tech["data"]["apiToken"]))
    password = {"x-api-email": tenant.email, "x-api-password": PASSWORD}
    m.mint(
        "upsolver token",
        "POST /api-tokens/",
        "apiToken",
        json={"displayData": {"name": "u"}},
        headers=password,
    )
    m.mint(
        "mtm jwt",
        f"POST {MTM}/oauth2/token",
        "access_token",
        data=GRANT,
        auth=("apitoken", mtm["data"]["token"]),
    )
    m.call("GET /api/v1/me", auth=(tenant.email, PASSWORD), headers=basic)
    m.secrets["new admin password"] = new = "a-new-admin-password"
    m.call(f"PATCH /api/v1/users/{tenant.admin_id}", json={"password": new}, headers=admin)
    m.call("GET /api/v1/me", 401, auth=(tenant.email, PASSWORD), headers=basic)
    m.call("GET /api/v1/me", auth=(tenant.email, new), headers=basic)
    m.ids.update(
        pat=pat["id"],
        mtm=mtm["data"]["id"],
        key=key["id"],
        client_id=key["client_id"],
        tech=tech["data"]["id"],
        first_last3=key["client_secret_last3"],
        regen_last3=regen["client_secret_last3"],
    )
    return m


def test_no_response_after_creation_and_no_log_line_contains_a_secret(
    minted: Minted, tenant, logs
) -> None:
    m, admin = minted, tenant.auth
    # Use each one (the fixture used the client secrets, the replaced token and the passwords).
    dead = (
        "technical token",
        "client secret",
        "regenerated client secret",
        "admin password",
        "new admin password",
    )
    for secret in [v for k, v in m.secrets.items() if k not in dead]:
        assert m.call("GET /api/v1/me", headers=bearer(secret))["account"]["id"] == tenant.slug
    m.call("GET /api-tokens/", headers={"Authorization": m.secrets["upsolver token"]})
    # Every list and detail route.
    key, tech = m.ids["key"], m.ids["tech"]
    for route in [
        "GET /api/v1/users",
        f"GET /api/v1/users/{tenant.admin_id}",
        "GET /api/v1/tokens",
        "GET /api/v1/api-keys",
        f"GET /api/v1/api-keys/{key}",
        f"PATCH /api/v1/api-keys/{key}",
        f"GET {MTM}/technicalusers",
        f"GET {MTM}/technicalusers/{tech}",
        f"GET {MTM}/technicalusers/{tech}/changelog",
        f"GET {MTM}/apiTokens",
        f"GET {MTM}/apiTokens/{m.ids['mtm']}",
        f"GET {MTM}/workspaces/{tenant.uuid}/users",
        "GET /api-tokens/",
        "GET /api/v1/audit?limit=1000",
        "GET /api/v1/me",
        "GET /api/v1/account",
    ]:
        m.call(route, json={"name": "r"} if route.startswith("PATCH") else None, headers=admin)

    leaks = []
    for label, response, own in m.seen:
        blob = response.text + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        leaks += [
            (label, name) for name, secret in m.secrets.items() if secret != own and secret in blob
        ]
    for name, token in m.jwts.items():
        claims = json.dumps(jwt.decode(token, options={"verify_signature": False}))
        leaks += [(f"claims of {name}", n) for n, s in m.secrets.items() if s in claims]
    assert leaks == []
    assert any(tenant.slug in line for line in logs.lines), (
        "the log capture saw none of this test's requests"
    )
    logged = [
        (name, line) for line in logs.lines for name, secret in m.secrets.items() if secret in line
    ]
    assert logged == []


def test_api_keys_show_only_the_last_3_characters_after_creation(
    client: httpx.Client, minted: Minted, tenant
) -> None:
    assert minted.ids["first_last3"] == minted.secrets["client secret"][-3:]
    assert minted.ids["regen_last3"] == minted.secrets["regenerated client secret"][-3:]
    listed = client.get("/api/v1/api-keys", headers=tenant.auth).json()
    detail = client.get(f"/api/v1/api-keys/{minted.ids['key']}", headers=tenant.auth).json()
    patched = client.patch(
        f"/api/v1/api-keys/{minted.ids['key']}", json={"enabled": True}, headers=tenant.auth
    ).json()
    for shown in [*listed, detail, patched]:
        assert "client_secret" not in shown
        assert shown["client_secret_last3"] == minted.secrets["regenerated client secret"][-3:]
    personal = client.get(f"{MTM}/apiTokens", headers=tenant.auth).json()["data"]
    assert [t["token"] for t in personal] == [None, None, None]  # init token, pat and mtm token


def test_stored_rows_hold_no_plaintext(server, minted: Minted, tenant) -> None:
    async def rows(session: Any) -> tuple[list[Credential], User]:
        credentials = (
            await session.scalars(select(Credential).where(Credential.account_id == tenant.slug))
        ).all()
        return list(credentials), await session.get(User, tenant.admin_id)

    credentials, admin = server.run(rows)
    by_key = {row.key_id: row for row in credentials}
    for token in minted.tokens.values():
        assert by_key[parse_token(token).key_id].secret_hash != token
    columns = [
        str(getattr(row, c.key)) for row in [*credentials, admin] for c in row.__table__.columns
    ]
    assert [name for name, s in minted.secrets.items() for value in columns if s in value] == []
    assert admin.password_hash.startswith("$argon2id$")


def _one_changed(token: str, at: int) -> str:
    alphabet = string.digits + string.ascii_letters
    char = token[at]
    other = alphabet[(alphabet.index(char) + 1) % len(alphabet)] if char in alphabet else "x"
    return token[:at] + other + token[at + 1 :]


def test_tokens_have_the_documented_shape(minted: Minted) -> None:
    tokens = minted.tokens
    assert sorted({t.split("_")[1] for t in tokens.values()}) == ["cs", "pat", "tut", "ups"]
    for name, token in tokens.items():
        assert SHAPE.match(token), name
        parsed = parse_token(token)
        assert parsed is not None and parsed.kind == KIND[token.split("_")[1]], name
        assert [
            i for i in range(len(token)) if parse_token(_one_changed(token, i)) is not None
        ] == [], name
    assert parse_token(minted.secrets["regenerated client secret"]).key_id == minted.ids[
        "client_id"
    ].removeprefix("lmk_ci_")

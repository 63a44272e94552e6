"""Secrets: shown once at creation, never again in a response, a log line or a stored row."""

import json
import re
import string
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from conftest import PASSWORD
from sqlalchemy import select

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

    def call(self, method: str, path: str, status: int = 200, pick: Any = None, name: str = "", **kw: Any) -> Any:
        """Send a request; `pick` takes the secret the response is allowed to show (its new one)."""
        response = self.client.request(method, path, **kw)
        assert response.status_code == status, (method, path, response.text)
        own = pick(response.json()) if pick else None
        if own is not None:
            self.secrets[name] = own
        self.seen.append((f"{method} {path}", response, own))
        return response.json() if response.content else None

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
    admin = tenant.auth
    m.ids["pat"] = m.call("POST", "/api/v1/tokens", 201, lambda j: j["token"], "pat", json={"name": "p"}, headers=admin)["id"]
    mtm = m.call("POST", f"{MTM}/apiTokens", 200, lambda j: j["data"]["token"], "mtm token", json={"name": "m"}, headers=admin)
    m.ids["mtm"] = mtm["data"]["id"]
    key = m.call("POST", "/api/v1/api-keys", 201, lambda j: j["client_secret"], "client secret", json={"name": "k"}, headers=admin)
    m.ids["key"], m.ids["client_id"], m.ids["first_last3"] = key["id"], key["client_id"], key["client_secret_last3"]
    m.call("POST", "/oauth/token", 200, lambda j: j["access_token"], "oauth jwt", data=GRANT,
           auth=(key["client_id"], m.secrets["client secret"]))
    regen = m.call("POST", f"/api/v1/api-keys/{key['id']}/regenerate", 200, lambda j: j["client_secret"],
                   "regenerated client secret", headers=admin)
    m.ids["regen_last3"] = regen["client_secret_last3"]
    m.call("POST", "/oauth/token", 401, data=GRANT, auth=(key["client_id"], m.secrets["client secret"]))
    m.call("POST", "/oauth/token", 200, lambda j: j["access_token"], "oauth jwt (client_secret_post)",
           data={**GRANT, "client_id": key["client_id"], "client_secret": m.secrets["regenerated client secret"]})
    tech = m.call("POST", f"{MTM}/technicalusers", 200, lambda j: j["data"]["apiToken"], "technical token",
                  json={"userName": "bot", "role": "MEMBER"}, headers=admin)
    m.ids["tech"] = tech["data"]["id"]
    m.call("GET", "/api/v1/me", headers=bearer(m.secrets["technical token"]))
    m.call("PUT", f"{MTM}/technicalusers/{m.ids['tech']}/replace_token", 200, lambda j: j["data"]["apiToken"],
           "replaced technical token", headers=admin)
    m.call("GET", "/api/v1/me", 401, headers=bearer(m.secrets["technical token"]))
    m.call("POST", "/api-tokens/", 200, lambda j: j["apiToken"], "upsolver token", json={"displayData": {"name": "u"}},
           headers={"x-api-email": tenant.email, "x-api-password": PASSWORD})
    m.call("POST", f"{MTM}/oauth2/token", 200, lambda j: j["access_token"], "mtm jwt", data=GRANT,
           auth=("apitoken", m.secrets["mtm token"]))
    return m


def test_no_response_after_creation_and_no_log_line_contains_a_secret(minted: Minted, tenant, logs) -> None:
    m, admin = minted, tenant.auth
    # Use each one.
    live = [v for k, v in m.secrets.items() if k not in ("admin password", "technical token", "client secret")
            and "client secret" not in k]
    for secret in live:
        assert m.call("GET", "/api/v1/me", headers=bearer(secret))["account"]["id"] == tenant.slug
    m.call("GET", "/api-tokens/", headers={"Authorization": m.secrets["upsolver token"]})
    m.call("GET", "/api/v1/me", auth=(tenant.email, PASSWORD), headers={"X-Requested-By": "t"})
    # Every list and detail route.
    for method, path, body in [
        ("GET", "/api/v1/users", None), ("GET", f"/api/v1/users/{tenant.admin_id}", None),
        ("GET", "/api/v1/tokens", None), ("GET", "/api/v1/api-keys", None),
        ("GET", f"/api/v1/api-keys/{m.ids['key']}", None), ("PATCH", f"/api/v1/api-keys/{m.ids['key']}", {"name": "r"}),
        ("GET", f"{MTM}/technicalusers", None), ("GET", f"{MTM}/technicalusers/{m.ids['tech']}", None),
        ("GET", f"{MTM}/technicalusers/{m.ids['tech']}/changelog", None),
        ("GET", f"{MTM}/apiTokens", None), ("GET", f"{MTM}/apiTokens/{m.ids['mtm']}", None),
        ("GET", f"{MTM}/workspaces/{tenant.uuid}/users", None), ("GET", "/api-tokens/", None),
        ("GET", "/api/v1/audit?limit=1000", None), ("GET", "/api/v1/me", None), ("GET", "/api/v1/account", None),
    ]:
        m.call(method, path, json=body, headers=admin)

    leaks = []
    for label, response, own in m.seen:
        blob = response.text + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        leaks += [(label, name) for name, secret in m.secrets.items() if secret != own and secret in blob]
    for name, token in m.jwts.items():
        claims = json.dumps(jwt.decode(token, options={"verify_signature": False}))
        leaks += [(f"claims of {name}", n) for n, s in m.secrets.items() if s in claims]
    assert leaks == []
    assert any(tenant.slug in line for line in logs.lines), "the log capture saw none of this test's requests"
    logged = [(name, line) for line in logs.lines for name, secret in m.secrets.items() if secret in line]
    assert logged == []


def test_api_keys_show_only_the_last_3_characters_after_creation(client: httpx.Client, minted: Minted, tenant) -> None:
    assert minted.ids["first_last3"] == minted.secrets["client secret"][-3:]
    assert minted.ids["regen_last3"] == minted.secrets["regenerated client secret"][-3:]
    listed = client.get("/api/v1/api-keys", headers=tenant.auth).json()
    detail = client.get(f"/api/v1/api-keys/{minted.ids['key']}", headers=tenant.auth).json()
    patched = client.patch(f"/api/v1/api-keys/{minted.ids['key']}", json={"enabled": True}, headers=tenant.auth).json()
    for shown in [*listed, detail, patched]:
        assert "client_secret" not in shown
        assert shown["client_secret_last3"] == minted.secrets["regenerated client secret"][-3:]
    personal = client.get(f"{MTM}/apiTokens", headers=tenant.auth).json()["data"]
    assert [t["token"] for t in personal] == [None, None, None]  # init token, pat and mtm token


def test_stored_rows_hold_no_plaintext(server, minted: Minted, tenant) -> None:
    async def rows(session: Any) -> tuple[list[Credential], User]:
        credentials = (await session.scalars(select(Credential).where(Credential.account_id == tenant.slug))).all()
        return list(credentials), await session.get(User, tenant.admin_id)

    credentials, admin = server.run(rows)
    by_key = {row.key_id: row for row in credentials}
    for token in minted.tokens.values():
        assert by_key[parse_token(token).key_id].secret_hash != token
    columns = [str(getattr(row, c.key)) for row in [*credentials, admin] for c in row.__table__.columns]
    assert [name for name, s in minted.secrets.items() for value in columns if s in value] == []
    assert admin.password_hash.startswith("$argon2id$")


def _one_changed(token: str, at: int) -> str:
    alphabet = string.digits + string.ascii_letters
    char = token[at]
    other = alphabet[(alphabet.index(char) + 1) % len(alphabet)] if char in alphabet else "x"
    return token[:at] + other + token[at + 1:]


def test_tokens_have_the_documented_shape(minted: Minted) -> None:
    tokens = minted.tokens
    assert sorted({t.split("_")[1] for t in tokens.values()}) == ["cs", "pat", "tut", "ups"]
    for name, token in tokens.items():
        assert SHAPE.match(token), name
        parsed = parse_token(token)
        assert parsed is not None and parsed.kind == KIND[token.split("_")[1]], name
        assert [i for i in range(len(token)) if parse_token(_one_changed(token, i)) is not None] == [], name
    assert parse_token(minted.secrets["regenerated client secret"]).key_id == minted.ids["client_id"].removeprefix("lmk_ci_")

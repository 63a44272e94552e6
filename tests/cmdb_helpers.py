"""Building blocks for the CMDB tests: a small CMDB made over the /v1 API of a tenant."""

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from webhook_helpers import Receiver


@dataclass
class Cmdb:
    client: httpx.Client
    auth: dict[str, str]
    category: dict[str, Any]
    organization: dict[str, Any]
    team: dict[str, Any]
    service: dict[str, Any]
    product: dict[str, Any]

    def post(self, path: str, body: dict[str, Any], expect: int = 201) -> Any:
        response = self.client.post(f"/v1/{path}", json=body, headers=self.auth)
        assert response.status_code == expect, response.text
        return response.json()

    def patch(self, path: str, body: dict[str, Any], expect: int = 200) -> Any:
        response = self.client.patch(f"/v1/{path}", json=body, headers=self.auth)
        assert response.status_code == expect, response.text
        return response.json()

    def get(self, path: str, expect: int = 200, **params: Any) -> Any:
        response = self.client.get(f"/v1/{path}", params=params, headers=self.auth)
        assert response.status_code == expect, response.text
        return response.json()

    def ci(self, expect: int = 201, headers: dict[str, str] | None = None, **fields: Any) -> Any:
        """POST a CI of the product (in production unless `status` says otherwise)."""
        body = {"product_id": self.product["id"], "status": "in_production", **fields}
        response = self.client.post("/v1/cis", json=body, headers={**self.auth, **(headers or {})})
        assert response.status_code == expect, response.text
        return response.json()


def make_cmdb(
    client: httpx.Client, auth: dict[str, str], brand: str = "Dell", suffix: str = ""
) -> Cmdb:
    def post(path: str, body: dict[str, Any]) -> Any:
        response = client.post(f"/v1/{path}", json=body, headers=auth)
        assert response.status_code == 201, response.text
        return response.json()

    category = post(
        "product_categories",
        {"name": f"Laptop PC{suffix}", "group": "Computer", "rule_set": "physical_asset"},
    )
    organization = post("organizations", {"name": f"Widget Data Center{suffix}"})
    team = post("teams", {"name": f"End-User Support{suffix}"})
    service = post(
        "services",
        {
            "name": f"Personal Computing{suffix}",
            "provider_id": organization["id"],
            "support_team_id": team["id"],
        },
    )
    product = post(
        "products",
        {
            "name": f"{brand} Latitude",
            "brand": brand,
            "category_id": category["id"],
            "support_team_id": team["id"],
            "service_id": service["id"],
            "financial_owner_id": organization["id"],
            "remarks": "Standard issue.",
        },
    )
    return Cmdb(client, auth, category, organization, team, service, product)


# --- shared by the negative, isolation and query tests -------------------------------------------


def total(client: httpx.Client, auth: dict[str, str], path: str, **params: Any) -> int:
    """How many records a collection holds (X-Pagination-Total-Entries)."""
    response = client.get(f"/v1/{path}", params=params, headers=auth)
    assert response.status_code == 200, response.text
    return int(response.headers["X-Pagination-Total-Entries"])


def audit_size(client: httpx.Client, auth: dict[str, str]) -> int:
    return total(client, auth, "audit_lines")


def snapshot(client: httpx.Client, auth: dict[str, str], paths: list[str]) -> dict[str, Any]:
    """Every record at `paths` plus the audit trail's length: equal before and after = unchanged."""
    seen: dict[str, Any] = {"audit_lines": audit_size(client, auth)}
    for path in paths:
        response = client.get(f"/v1/{path}", headers=auth)
        assert response.status_code == 200, response.text
        seen[path] = response.json()
    return seen


def assert_xurrent_error(response: httpx.Response, status: int, field: str | None = None) -> Any:
    """The Xurrent error dialect: {"message": ..., "errors": [[field, message], ...]}."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body.get("message"), str) and body["message"], body
    assert set(body) <= {"message", "errors"}, body
    for pair in body.get("errors", []):
        assert isinstance(pair, list) and len(pair) == 2, body
    if field is not None:
        assert field in [f for f, _ in body.get("errors", [])], body
    return body


@dataclass
class FullCmdb(Cmdb):
    """Every CMDB resource, plus a CI relation, a CI user and a team member."""

    site: dict[str, Any] = field(default_factory=dict)
    person: dict[str, Any] = field(default_factory=dict)
    server_ci: dict[str, Any] = field(default_factory=dict)
    db_ci: dict[str, Any] = field(default_factory=dict)
    relation: dict[str, Any] = field(default_factory=dict)
    import_token: str = ""
    export_token: str = ""
    webhook: dict[str, Any] = field(default_factory=dict)  # Xurrent webhook and its policy
    policy: dict[str, Any] = field(default_factory=dict)

    def by_resource(self) -> dict[str, dict[str, Any]]:
        return {
            "product_categories": self.category,
            "organizations": self.organization,
            "sites": self.site,
            "people": self.person,
            "teams": self.team,
            "services": self.service,
            "products": self.product,
            "cis": self.server_ci,
        }

    def record_paths(self) -> list[str]:
        """GETs that show every record and link of this CMDB."""
        paths = [f"{res}/{rec['id']}" for res, rec in self.by_resource().items()]
        ci, team, person = self.server_ci["id"], self.team["id"], self.person["id"]
        return [
            *paths,
            f"cis/{ci}/ci_relations",
            f"cis/{ci}/users",
            f"teams/{team}/members",
            f"people/{person}/teams",
            f"webhook_policies/{self.policy['id']}",
        ]


def make_full_cmdb(client: httpx.Client, auth: dict[str, str], suffix: str = "") -> FullCmdb:
    base = make_cmdb(client, auth, suffix=suffix)
    full = FullCmdb(**{k: getattr(base, k) for k in Cmdb.__dataclass_fields__})
    full.site = full.post("sites", {"name": f"Main site{suffix}"})
    full.person = full.post(
        "people",
        {
            "name": f"Howard Tanner{suffix}",
            "primary_email": f"howard{suffix.strip()}@{id(full)}.example",
            "organization_id": full.organization["id"],
            "site_id": full.site["id"],
        },
    )
    full.server_ci = full.ci(name=f"srv{suffix}", site_id=full.site["id"])
    full.db_ci = full.ci(name=f"db{suffix}")
    full.relation = full.post(
        f"cis/{full.server_ci['id']}/ci_relations",
        {"related_ci_id": full.db_ci["id"], "relation_type": "child"},
    )
    full.post(f"cis/{full.server_ci['id']}/users/{full.person['id']}", {})
    full.post(f"teams/{full.team['id']}/members/{full.person['id']}", {})
    csv = ("teams.csv", f"Name\nImported team{suffix}\n".encode(), "text/csv")
    made = client.post("/v1/import", data={"type": "teams"}, files={"file": csv}, headers=auth)
    assert made.status_code == 200, made.text
    full.import_token = made.json()["token"]
    exported = client.post("/v1/export", json={"type": "teams"}, headers=auth)
    assert exported.status_code == 200, exported.text
    full.export_token = exported.json()["token"]
    for kind in ("import", "export"):  # the worker runs them: wait, so that nothing moves later
        wait_until_done(client, auth, f"/v1/{kind}/{getattr(full, f'{kind}_token')}")
    full.policy = full.post("webhook_policies", {"name": f"Signing{suffix}", "jwt_alg": "es256"})
    hook = {"name": f"Hook{suffix}", "event": "ci.create", "uri": sink_url(), "disabled": True}
    full.webhook = full.post("webhooks", {**hook, "webhook_policy_id": full.policy["id"]}, 200)
    return full


_sink: list[Receiver] = []


def sink_url() -> str:
    """A receiver that takes every delivery (one for the whole run)."""
    if not _sink:
        _sink.append(Receiver().start())
    return _sink[0].url


def wait_until_done(client: httpx.Client, auth: dict[str, str], path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        state = client.get(path, headers=auth).json()
        if state.get("state") in ("done", "error") or time.monotonic() > deadline:
            assert state.get("state") == "done", state
            return dict(state)
        time.sleep(0.1)


# --- the /v1 routes, from the app's OpenAPI -----------------------------------------------------

ROUTE_PARAMS = {"ident", "relation_id", "person_id"}
# Routes that take no credentials: a webhook's receiver GETs its verification with the code it
# was sent (404 without it).
PUBLIC = ("/v1/webhooks/{ident}/verify",)


def v1_routes(client: httpx.Client) -> list[tuple[str, str]]:
    """(METHOD, path template) of every /v1 route the app serves."""
    spec = client.get("/openapi.json").json()
    return sorted(
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if path == "/v1" or path.startswith("/v1/")
        for method in operations
        if method in ("get", "post", "patch", "put", "delete")
    )


def route_ids(full: FullCmdb, audit_line: int) -> dict[str, Any]:
    """The id each path parameter takes: `ident` or `token` by the resource, then sub-ids."""
    ids: dict[str, Any] = {res: rec["id"] for res, rec in full.by_resource().items()}
    return {
        **ids,
        "import": full.import_token,
        "export": full.export_token,
        "audit_lines": audit_line,
        "relation_id": full.relation["id"],
        "person_id": full.person["id"],
        "webhooks": full.webhook["id"],
        "webhook_policies": full.policy["id"],
    }


def fill(template: str, ids: dict[str, Any], owner: dict[str, Any] | None = None) -> str:
    """The path with its parameters replaced: `{ident}` by the id of the path's resource (from
    `owner` when given, so that a sub-id of one account meets an owner of another)."""
    resource = template.split("/")[2]
    path = template.replace("{ident}", str((owner or ids).get(resource)))
    path = path.replace("{token}", str((owner or ids).get(resource)))
    for param in ("relation_id", "person_id"):
        path = path.replace(f"{{{param}}}", str(ids[param]))
    assert "{" not in path, f"unknown path parameter in {template}"
    return path

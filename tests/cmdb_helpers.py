"""Building blocks for the CMDB tests: a small CMDB made over the /v1 API of a tenant."""

from dataclasses import dataclass
from typing import Any

import httpx


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

"""Service basics: health, readiness, unknown routes, request ids, body limits, docs."""

import httpx


def test_healthz_and_readyz(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["migrations"] == "current"


def test_every_response_has_a_request_id(client: httpx.Client) -> None:
    assert len(client.get("/healthz").headers["x-request-id"]) == 32
    assert client.get("/nope").headers["x-request-id"]
    assert (
        client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )


def test_unknown_routes_answer_json_in_each_dialect(client: httpx.Client) -> None:
    native = client.get("/api/v1/nope")
    assert native.status_code == 404
    assert native.headers["content-type"] == "application/problem+json"
    assert native.json()["status"] == 404
    xurrent = client.get("/v1/nope")
    assert xurrent.status_code == 404 and "message" in xurrent.json()
    leanix = client.get("/services/nope")
    assert leanix.status_code == 404 and leanix.json()["status"] == "ERROR"


def test_oversized_body_gets_413_and_changes_nothing(client: httpx.Client, tenant) -> None:
    limit = 10 * 1024 * 1024  # the default limit
    big = b"x" * (limit + 1)
    response = client.post(
        "/api/v1/users", content=big, headers={**tenant.auth, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["status"] == 413
    assert len(client.get("/api/v1/users", headers=tenant.auth).json()) == 1


def test_oversized_chunked_body_gets_413(client: httpx.Client, tenant) -> None:
    def chunks():
        for _ in range(11):
            yield b"x" * (1024 * 1024)

    response = client.post("/v1/anything", content=chunks(), headers=tenant.auth)
    assert response.status_code in (404, 413)  # no route reads it: the 404 answers first
    response = client.post(
        "/api/v1/users",
        content=chunks(),
        headers={**tenant.auth, "content-type": "application/json"},
    )
    assert response.status_code == 413


def test_docs_describe_every_way_of_signing_in(client: httpx.Client) -> None:
    page = client.get("/docs").text
    assert "/static-offline-docs/swagger-ui-bundle.js" in page  # served here, not from a CDN
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["clientCredentials"]["flows"]["clientCredentials"]["tokenUrl"] == "/oauth/token"
    assert schemes["bearerToken"]["scheme"] == "bearer"
    assert schemes["basicAuth"]["scheme"] == "basic"
    assert schemes["csrfHeader"]["name"] == "X-Requested-By"
    for path in ("/api/v1/me", "/v1/cis/{ident}"):
        operation = spec["paths"][path]["get"]
        assert {"clientCredentials", "bearerToken", "basicAuth"} <= {
            k for s in operation["security"] for k in s
        }

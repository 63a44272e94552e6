"""The GraphQL endpoints: `POST /services/pathfinder/v1/graphql` and `POST /graphql`.

`{query, variables, operationName}` → `{data, errors}`, always HTTP 200 once the caller is signed
in (errors carry `extensions.errorType`). A browser's GET shows GraphiQL, served from the package
(self-hosted sites may be offline); a GET with `?query=` runs a query, never a mutation.
"""

import json
from collections.abc import Awaitable
from pathlib import Path
from types import CoroutineType
from typing import Annotated, Any, TypeGuard

import orjson
from fastapi import APIRouter, Request
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

from landmark.api.deps import Session, allowed, principal, signed_in
from landmark.api.graphql.context import Context
from landmark.api.graphql.errors import format_error, request_error
from landmark.api.graphql.executor import Executor
from landmark.api.graphql.limits import MAX_QUERY_CHARS, MAX_TOKENS, LimitsRule
from landmark.api.graphql.schema import schema_for
from landmark.core.collector import collect_young, young_collections_only
from landmark.core.errors import DomainError
from landmark.eam.metamodel import load_or_store_model
from landmark.identity.authn import Principal
from landmark.identity.permissions import Permission

PATHS = ("/services/pathfinder/v1/graphql", "/graphql")
STATIC = Path(__file__).parent / "static"
ASSETS = {
    "graphiql.min.js": "text/javascript",
    "graphiql.min.css": "text/css",
    "react.production.min.js": "text/javascript",
    "react-dom.production.min.js": "text/javascript",
}

router = APIRouter(tags=["leanix-graphql"])
# Signing in as one plain dependency (api/deps.allowed); the request's session is opened here,
# and a missing permission is answered in GraphQL's way (`_run`).
SignedIn = Annotated[Principal, allowed(None)]


class BadRequest(Exception):
    """A request that is not a GraphQL request (bad JSON, no query, a mutation over GET)."""


class _FastJSON(JSONResponse):
    """orjson encodes a page's ~8,000 values several times faster than the json module; what
    it refuses (integers beyond 64 bits) goes the standard way."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            return super().render(content)


def _answer(data: Any = None, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    return _FastJSON({"data": data, "errors": errors or None})


def _request(body: Any) -> tuple[str, dict[str, Any], str | None]:
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object {query, variables, operationName}")
    query, variables, name = body.get("query"), body.get("variables"), body.get("operationName")
    if isinstance(variables, str) and variables.strip():  # some clients send them encoded
        try:
            variables = json.loads(variables)
        except ValueError:
            raise BadRequest("`variables` is not JSON") from None
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("`query` is required")
    if len(query) > MAX_QUERY_CHARS:
        raise BadRequest(f"The query is longer than {MAX_QUERY_CHARS} characters")
    if variables is not None and not isinstance(variables, dict | str):
        raise BadRequest("`variables` must be an object")
    if name is not None and not isinstance(name, str):
        raise BadRequest("`operationName` must be a string")
    return query, variables if isinstance(variables, dict) else {}, name


async def _run(
    request: Request, session: AsyncSession, who: Principal, body: Any, allow_mutations: bool
) -> JSONResponse:
    try:
        query, variables, operation_name = _request(body)
        who.require(Permission.READ)
        reads, versions = request.app.state.reads, request.app.state.model_versions
        model, stored = await load_or_store_model(session, who.account_id, reads, versions)
        if stored:  # the standard model, stored on first use; mutations may roll back
            await session.commit()
    except BadRequest as error:
        return _answer(errors=[request_error(str(error))])
    except DomainError as error:
        return _answer(errors=[format_error(GraphQLError(error.message, original_error=error))])
    schema = schema_for(who.account_id, model)
    document, invalid = _prepared(schema, query)
    if document is None or invalid:
        return _answer(errors=invalid)
    if not allow_mutations and _is_mutation(document, operation_name):
        return _answer(errors=[request_error("Mutations need POST")])
    context = Context(session, who, model, reads)
    # A page keeps its many objects alive until answered: core/collector.py.
    with young_collections_only():
        # Every resolver that waits is a coroutine: test just that, not every value for
        # `__await__` (rows answer an unknown attribute with a costly exception).
        result = execute(
            schema, document, None, context, variables, operation_name,
            executor_class=Executor, is_awaitable=_coroutine,
        )  # fmt: skip
        if not isinstance(result, ExecutionResult):
            result = await result
        answer = _answer(result.data, [format_error(e) for e in result.errors or []])
        context.close()
        del result  # the page's objects: freed here, what cyclic garbage is left collected
        collect_young()
    return answer


_prepared_cache: dict[tuple[GraphQLSchema, str], tuple[DocumentNode | None, list[Any]]] = {}
PREPARED_CACHE_SIZE = 512


def _coroutine(value: Any) -> TypeGuard[Awaitable[Any]]:
    return isinstance(value, CoroutineType)


def _prepared(schema: GraphQLSchema, query: str) -> tuple[DocumentNode | None, list[Any]]:
    """The parsed document and its validation errors (formatted), cached per schema and text:
    clients send the same few queries again and again."""
    key = (schema, query)
    found = _prepared_cache.get(key)
    if found is None:
        document: DocumentNode | None = None
        try:
            document = parse(query, max_tokens=MAX_TOKENS)
            errors = validate(schema, document, [*specified_rules, LimitsRule])
        except GraphQLError as error:
            errors = [error]
        if len(_prepared_cache) >= PREPARED_CACHE_SIZE:
            _prepared_cache.clear()
        found = _prepared_cache[key] = (document, [format_error(e) for e in errors])
    return found


def _is_mutation(document: DocumentNode, operation_name: str | None) -> bool:
    operation = get_operation_ast(document, operation_name)
    return operation is not None and operation.operation == OperationType.MUTATION


def _graphiql(request: Request) -> HTMLResponse:
    base = request.url.path.rstrip("/")
    page = (STATIC / "graphiql.html").read_text().replace("{{ENDPOINT}}", base)
    return HTMLResponse(page)


for path in PATHS:

    @router.post(path, summary="Run a GraphQL query or mutation (LeanIX schema)")
    async def graphql_post(request: Request, who: SignedIn) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        async with request.app.state.sessions() as session:
            return await _run(request, session, who, body, allow_mutations=True)

    @router.get(path, summary="GraphiQL in a browser; runs a query given as ?query=")
    async def graphql_get(request: Request, session: Session) -> Response:
        params = request.query_params
        if "query" not in params and "text/html" in request.headers.get("accept", ""):
            return _graphiql(request)
        body = {k: params.get(k) for k in ("query", "variables", "operationName")}
        # signed in here, not as a dependency: the GraphiQL page above needs no credential
        who = await principal(request, await signed_in(request, session))
        return await _run(request, session, who, body, allow_mutations=False)

    @router.get(path + "/static/{name}", include_in_schema=False)
    async def graphiql_asset(name: str) -> Response:
        if name not in ASSETS:
            return Response(status_code=404)
        headers = {"Cache-Control": "public, max-age=86400"}
        return FileResponse(STATIC / name, media_type=ASSETS[name], headers=headers)

"""Xurrent webhooks and webhook policies (reference §1.16): `/v1/webhooks`,
`/v1/webhook_policies`, and the unauthenticated verification callback.

A face only: bodies are parsed with the CMDB's Xurrent input rules (cmdb/service.py
`parse_input`: unknown keys ignored, every bad field reported at once), the rules live in
webhooks/xurrent.py and webhooks/policies.py, and lists page like every Xurrent collection.
Everything but the callback needs the `webhooks` permission (account administrators).
"""

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.api.deps import CurrentPrincipal, Session, SettingsDep, iso, require
from landmark.api.xurrent.resources import JSONBody, page_of, reply
from landmark.cmdb.schema import Field, Resource
from landmark.cmdb.service import parse_input, require_present
from landmark.core.errors import NotFound
from landmark.core.query import Attribute, Listing
from landmark.identity.authn import Principal
from landmark.identity.permissions import Permission
from landmark.webhooks import policies, service, ssrf, xurrent
from landmark.webhooks.models import WebhookSubscription
from landmark.webhooks.policies import POLICY_ID, WebhookPolicy

router = APIRouter(prefix="/v1", tags=["Xurrent webhooks"])
ADMIN = [require(Permission.WEBHOOKS)]
DESCRIPTION_LIMIT = 8192

# What a body may carry (parsed by cmdb.service.parse_input; a model is named only for form).
WEBHOOK_INPUT = Resource(
    "webhooks",
    "webhook",
    WebhookSubscription,
    (
        Field("name", "string", max_length=255),
        Field("event", "enum", values=xurrent.EVENTS, required=True),
        Field("uri", "string", max_length=ssrf.MAX_URL, required=True),
        Field("description", "text", max_length=DESCRIPTION_LIMIT),
        Field("disabled", "boolean"),
        Field("mail_exceptions_to", "string", max_length=1024),
        Field("webhook_policy", "reference", target="webhook_policies"),
    ),
    collection_fields=(),
    filters=(),
    sorts=(),
)
POLICY_INPUT = Resource(
    "webhook_policies",
    "webhook_policy",
    WebhookPolicy,
    (
        Field("name", "string", max_length=255, required=True),
        Field("disabled", "boolean"),
        Field("jwt_alg", "enum", values=policies.ALGORITHMS, required=True),
        Field("jwt_audience", "string", max_length=255),
        Field("jwt_claim_expires_in", "integer"),
    ),
    collection_fields=(),
    filters=(),
    sorts=(),
)


def _listing(model: Any, extra: dict[str, Attribute]) -> Listing:
    common = {
        "name": Attribute("name", model.name, "string"),
        "created_at": Attribute("created_at", model.created_at, "datetime"),
        "updated_at": Attribute("updated_at", model.updated_at, "datetime"),
    }
    return Listing(
        filters={**common, **extra}, sorts=common, default_sort=("id",), id_column=model.id
    )


S = WebhookSubscription
DISABLED = S.config["disabled"].as_boolean()
WEBHOOKS = _listing(S, {"event": Attribute("event", S.config["event"].as_string(), "enum",
                                           values=xurrent.EVENTS)})  # fmt: skip
POLICIES = _listing(WebhookPolicy, {"disabled": Attribute("disabled", WebhookPolicy.disabled,
                                                          "boolean")})  # fmt: skip


# ---- rendering ----------------------------------------------------------------------------------


def render_webhook(sub: WebhookSubscription, policy_names: dict[int, str]) -> dict[str, Any]:
    config = sub.config
    policy_id = config.get(POLICY_ID)
    policy = None if policy_id is None else {"id": policy_id, "name": policy_names.get(policy_id)}
    return {
        "id": sub.id,
        "name": sub.name,
        "event": config.get("event"),
        "uri": sub.target_url,
        "description": config.get("description"),
        "disabled": bool(config.get("disabled")),
        "mail_exceptions_to": config.get("mail_exceptions_to"),
        "last_error": sub.last_error,
        "webhook_policy": policy,
        "created_at": iso(sub.created_at),
        "updated_at": iso(sub.updated_at),
    }


async def render_webhooks(
    session: AsyncSession, account_id: str, subs: list[WebhookSubscription]
) -> list[dict[str, Any]]:
    """Webhooks with their policies' names (read in one query)."""
    ids = {sub.config[POLICY_ID] for sub in subs if sub.config.get(POLICY_ID) is not None}
    names: dict[int, str] = {}
    if ids:
        rows = await session.execute(
            select(WebhookPolicy.id, WebhookPolicy.name).where(
                WebhookPolicy.account_id == account_id, WebhookPolicy.id.in_(ids)
            )
        )
        names = {ident: name for ident, name in rows}
    return [render_webhook(sub, names) for sub in subs]


def render_policy(policy: WebhookPolicy) -> dict[str, Any]:
    return {
        "id": policy.id,
        **policies.summary(policy),
        "created_at": iso(policy.created_at),
        "updated_at": iso(policy.updated_at),
    }


# ---- webhooks -----------------------------------------------------------------------------------


async def _webhook_list(
    request: Request, who: CurrentPrincipal, session: Session, disabled: bool | None
) -> Response:
    query = select(S).where(S.account_id == who.account_id, S.dialect == xurrent.NAME)
    if disabled is not None:
        query = query.where(DISABLED.is_(disabled))
    rows, headers = await page_of(request, session, query, WEBHOOKS)
    return reply(request, await render_webhooks(session, who.account_id, rows), headers=headers)


@router.get("/webhooks", dependencies=ADMIN, summary="List webhooks")
async def list_webhooks(request: Request, who: CurrentPrincipal, session: Session) -> Response:
    return await _webhook_list(request, who, session, None)


@router.get("/webhooks/enabled", dependencies=ADMIN, summary="List enabled webhooks")
async def list_enabled(request: Request, who: CurrentPrincipal, session: Session) -> Response:
    return await _webhook_list(request, who, session, False)


@router.get("/webhooks/disabled", dependencies=ADMIN, summary="List disabled webhooks")
async def list_disabled(request: Request, who: CurrentPrincipal, session: Session) -> Response:
    return await _webhook_list(request, who, session, True)


async def _webhook(
    session: AsyncSession, who: Principal, ident: int, lock: bool = False
) -> WebhookSubscription:
    """A Xurrent webhook of the account; 404 otherwise (in Xurrent's words)."""
    try:
        return await service.get(session, who.account_id, xurrent.NAME, id=ident, lock=lock)
    except NotFound:
        raise NotFound("Webhook not found") from None


async def _one_webhook(request: Request, session: Session, sub: WebhookSubscription) -> Response:
    (body,) = await render_webhooks(session, sub.account_id, [sub])
    return reply(request, body)


@router.post("/webhooks", dependencies=ADMIN, summary="Create a webhook (then verified)")
async def create_webhook(
    body: JSONBody, request: Request, who: CurrentPrincipal, session: Session, settings: SettingsDep
) -> Response:
    values = parse_input(WEBHOOK_INPUT, body, creating=True)
    pepper = request.app.state.authenticator.pepper
    sub = await xurrent.create(session, who, settings, pepper, values)
    await session.commit()
    return await _one_webhook(request, session, sub)  # 200, as Xurrent documents


@router.get("/webhooks/{ident:int}", dependencies=ADMIN, summary="Get a webhook")
async def get_webhook(
    ident: int, request: Request, who: CurrentPrincipal, session: Session
) -> Response:
    return await _one_webhook(request, session, await _webhook(session, who, ident))


@router.patch("/webhooks/{ident:int}", dependencies=ADMIN, summary="Update a webhook")
async def update_webhook(
    ident: int,
    body: JSONBody,
    request: Request,
    who: CurrentPrincipal,
    session: Session,
    settings: SettingsDep,
) -> Response:
    sub = await _webhook(session, who, ident, lock=True)
    values = parse_input(WEBHOOK_INPUT, body, creating=False)
    require_present(WEBHOOK_INPUT, values)
    pepper = request.app.state.authenticator.pepper
    await xurrent.update(session, who, settings, pepper, sub, values)
    await session.commit()
    return await _one_webhook(request, session, sub)


@router.delete("/webhooks/{ident:int}", dependencies=ADMIN, summary="Delete a webhook")
async def delete_webhook(ident: int, who: CurrentPrincipal, session: Session) -> Response:
    await service.delete(session, who, await _webhook(session, who, ident, lock=True))
    await session.commit()
    return Response(status_code=204)


@router.get("/webhooks/{ident:int}/verify", summary="Verify a webhook (its receiver's callback)")
async def verify_webhook(
    ident: int,
    request: Request,
    session: Session,
    code: str = Query("", max_length=256),
) -> Response:
    # Unauthenticated: the code from the webhook.verify message is the proof.
    await xurrent.verify(session, ident, code, request.app.state.authenticator.pepper)
    await session.commit()
    return reply(request, {"id": ident, "verified": True})


# ---- webhook policies ---------------------------------------------------------------------------


def _policy_values(body: Any, *, creating: bool) -> dict[str, Any]:
    values = parse_input(POLICY_INPUT, body, creating=creating)
    require_present(POLICY_INPUT, values)
    policies.check(values)
    return values


@router.get("/webhook_policies", dependencies=ADMIN, summary="List webhook policies")
async def list_policies(request: Request, who: CurrentPrincipal, session: Session) -> Response:
    query = select(WebhookPolicy).where(WebhookPolicy.account_id == who.account_id)
    rows, headers = await page_of(request, session, query, POLICIES)
    return reply(request, [render_policy(p) for p in rows], headers=headers)


@router.post(
    "/webhook_policies", dependencies=ADMIN, status_code=201, summary="Create a webhook policy"
)
async def create_policy(
    body: JSONBody, request: Request, who: CurrentPrincipal, session: Session
) -> Response:
    values = _policy_values(body, creating=True)
    policy, public_pem = await policies.create(session, who, values)
    await session.commit()
    location = {"Location": f"{str(request.url).split('?', 1)[0]}/{policy.id}"}
    # The public key is shown here only: Xurrent returns it once, on create.
    shown = {**render_policy(policy), "public_key_pem": public_pem}
    return reply(request, shown, 201, location)


@router.get("/webhook_policies/{ident:int}", dependencies=ADMIN, summary="Get a webhook policy")
async def get_policy(
    ident: int, request: Request, who: CurrentPrincipal, session: Session
) -> Response:
    return reply(request, render_policy(await policies.get(session, who.account_id, ident)))


@router.patch(
    "/webhook_policies/{ident:int}", dependencies=ADMIN, summary="Update a webhook policy"
)
async def update_policy(
    ident: int, body: JSONBody, request: Request, who: CurrentPrincipal, session: Session
) -> Response:
    policy = await policies.get(session, who.account_id, ident, lock=True)
    values = _policy_values(body, creating=False)
    if await policies.update(session, who, policy, values):
        await xurrent.policy_changed(session, policy)
    await session.commit()
    return reply(request, render_policy(policy))


@router.delete(
    "/webhook_policies/{ident:int}", dependencies=ADMIN, summary="Delete a webhook policy"
)
async def delete_policy(ident: int, who: CurrentPrincipal, session: Session) -> Response:
    policy = await policies.get(session, who.account_id, ident, lock=True)
    await policies.delete(session, who, policy)
    await session.commit()
    return Response(status_code=204)

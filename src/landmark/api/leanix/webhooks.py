"""LeanIX webhooks: `/services/webhooks/v1` (reference §5), subscriptions PUSH and PULL.

A face only: it checks the request in LeanIX terms (every error names the LeanIX field), builds a
`WebhookSubscription` of dialect "leanix" and calls `webhooks.service`; PULL reads go through
`webhooks.pull`. Responses use the `{"status", "type", "data", "errors"}` envelope. Everything
here needs the `webhooks` permission. `authorizationHeader` is stored and sent, but shown back
masked (`Basic ****`); sending the masked value back in a PUT keeps the stored one.
"""

import uuid
from typing import Any

from fastapi import APIRouter, Body, Query, Request

from landmark.api.deps import CurrentPrincipal, Session, SettingsDep, iso
from landmark.api.leanix.envelope import ok
from landmark.core.errors import BadRequest, InvalidParameter
from landmark.identity.authn import Principal
from landmark.identity.permissions import Permission
from landmark.webhooks import pull, service
from landmark.webhooks.leanix import NAME, PAYLOAD_MODES, user_uuids
from landmark.webhooks.models import (
    PENDING,
    PULL,
    PUSH,
    SENT,
    WebhookDelivery,
    WebhookSubscription,
)
from landmark.webhooks.sender import mask, public_headers

router = APIRouter(prefix="/services/webhooks/v1", tags=["leanix-webhooks"])

METHODS = ("POST", "PUT", "PATCH")
CONSTRAINTS = ("WORKSPACE", "NO_WORKSPACE", "ANY")
MAX_TAG_SETS = 100
MAX_TAGS = 20
MAX_TAG = 128
MAX_AUTHORIZATION = 4096
MAX_BATCH_KIB = 20 * 1024  # LeanIX's largest payload is 20 MB
DEFAULT_BATCH_KIB = 512
MAX_PULL_TIMEOUT = 60
SORTS = {"createdAt-DESC": True, "createdAt-ASC": False}


# ---- checking a request body ----------------------------------------------------------------


class Problems:
    """Every problem of a request body, reported at once with its field."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.errors.append((field, message))

    def raise_any(self) -> None:
        if self.errors:
            summary = "; ".join(f"{f}: {m}" for f, m in self.errors)
            raise BadRequest(f"Invalid subscription: {summary}", self.errors)


def _text(body: dict[str, Any], name: str, problems: Problems, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(name, "must be a string")
        return None
    if len(value) > limit:
        problems.add(name, f"must be at most {limit} characters")
        return None
    return value


def _choice(
    body: dict[str, Any], name: str, choices: tuple[str, ...], default: str, problems: Problems
) -> str:
    value = body.get(name, default)
    if value is None:
        return default
    if value not in choices:
        problems.add(name, f"must be one of {', '.join(choices)}")
        return default
    return str(value)


def _flag(body: dict[str, Any], name: str, default: bool, problems: Problems) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        problems.add(name, "must be true or false")
        return default
    return value


def _tag_sets(body: dict[str, Any], problems: Problems) -> list[list[str]]:
    value = body.get("tagSets")
    shape = f"must be a list of at most {MAX_TAG_SETS} non-empty lists of tags (strings)"
    if not isinstance(value, list) or not value or len(value) > MAX_TAG_SETS:
        problems.add("tagSets", shape)
        return []
    for tag_set in value:
        if (
            not isinstance(tag_set, list)
            or not tag_set
            or len(tag_set) > MAX_TAGS
            or not all(isinstance(t, str) and 0 < len(t) <= MAX_TAG for t in tag_set)
        ):
            problems.add("tagSets", f"{shape}, each of 1 to {MAX_TAG} characters")
            return []
    return value


def _batch_size(body: dict[str, Any], problems: Problems) -> int:
    value = body.get("maxBatchSize", DEFAULT_BATCH_KIB)
    if value is None:
        return DEFAULT_BATCH_KIB
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_BATCH_KIB:
        problems.add("maxBatchSize", f"must be a whole number of KiB from 1 to {MAX_BATCH_KIB}")
        return DEFAULT_BATCH_KIB
    return value


def _authorization(body: dict[str, Any], problems: Problems, current: str | None) -> str | None:
    if "authorizationHeader" not in body:
        return current
    value = _text(body, "authorizationHeader", problems, MAX_AUTHORIZATION)
    if value is not None and ("\r" in value or "\n" in value):
        problems.add("authorizationHeader", "must be one line")
        return current
    if current is not None and value == mask(current):  # the masked value sent back
        return current
    return value or None


async def _apply(
    body: dict[str, Any], sub: WebhookSubscription, settings: Any, creating: bool
) -> None:
    """Check `body` and set it on `sub`; BadRequest (nothing set) when anything is wrong."""
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object", [("body", "must be a JSON object")])
    problems = Problems()
    identifier = _text(body, "identifier", problems, 255)
    flagged = any(f == "identifier" for f, _ in problems.errors)
    if not flagged and (identifier is None or not identifier.strip()):
        problems.add("identifier", "is required")
    delivery_type = _choice(body, "deliveryType", (PUSH, PULL), "", problems)
    if body.get("deliveryType") is None:
        problems.add("deliveryType", "is required (PUSH or PULL)")
    tag_sets = _tag_sets(body, problems)
    target_url = _text(body, "targetUrl", problems, 2048)
    method = _choice(body, "targetMethod", METHODS, "POST", problems)
    if delivery_type == PUSH and not target_url:
        problems.add("targetUrl", "is required for PUSH")
    authorization = _authorization(body, problems, None if creating else sub.authorization)
    ignore_error = _flag(body, "ignoreError", False, problems)
    active = _flag(body, "active", True, problems)
    payload_mode = _choice(body, "payloadMode", PAYLOAD_MODES, "DEFAULT", problems)
    constraint = _choice(body, "workspaceConstraint", CONSTRAINTS, "WORKSPACE", problems)
    batch = _batch_size(body, problems)
    if body.get("callback"):
        problems.add("callback", "callbacks (scripts run per delivery) are not supported")
    problems.raise_any()
    if delivery_type == PUSH and target_url:
        await service.check_target(settings, target_url, "targetUrl")
    sub.name = (identifier or "").strip()
    sub.delivery_type = delivery_type
    sub.target_url = target_url if delivery_type == PUSH else None
    sub.target_method = method
    sub.authorization = authorization
    sub.ignore_error = ignore_error
    sub.active = active
    sub.config = {
        "tagSets": tag_sets,
        "payloadMode": payload_mode,
        "maxBatchSize": batch,
        "workspaceConstraint": constraint,
    }


# ---- rendering ------------------------------------------------------------------------------


def render(sub: WebhookSubscription, who: Principal, user_uuid: str | None) -> dict[str, Any]:
    config = sub.config
    return {
        "id": str(sub.uuid),
        "identifier": sub.name,
        "deliveryType": sub.delivery_type,
        "tagSets": config.get("tagSets", []),
        "workspaceId": str(who.account_uuid),
        "userId": user_uuid,
        "createdAt": iso(sub.created_at),
        "targetUrl": sub.target_url,
        "targetMethod": sub.target_method,
        "authorizationHeader": mask(sub.authorization),
        "callback": None,
        "ignoreError": sub.ignore_error,
        "maxBatchSize": config.get("maxBatchSize", DEFAULT_BATCH_KIB),
        "workspaceConstraint": config.get("workspaceConstraint", "WORKSPACE"),
        "payloadMode": config.get("payloadMode", "DEFAULT"),
        "active": sub.active,
        "lastDeliveryStatus": sub.last_delivery_status,
        "errorCount": sub.error_count,
        "firstTimeDeliveryFailed": iso(sub.first_failed_at),
        "lastError": sub.last_error,
        "retryAt": iso(sub.retry_at),
    }


async def _user_uuids(session: Session, subs: list[WebhookSubscription]) -> dict[int, str]:
    return await user_uuids(session, {s.user_id for s in subs if s.user_id is not None})


async def _rendered(session: Session, who: Principal, sub: WebhookSubscription) -> dict[str, Any]:
    users = await _user_uuids(session, [sub])
    return render(sub, who, users.get(sub.user_id or 0))


def render_delivery(d: WebhookDelivery) -> dict[str, Any]:
    processing = None
    if d.attempted_at and d.event_created_at:
        processing = round((d.attempted_at - d.event_created_at).total_seconds() * 1000)
    return {
        "id": str(d.id),
        "createdAt": iso(d.created_at),
        "requestHeaders": public_headers(d.headers),
        "payload": d.body,
        "targetUrl": d.url,
        "targetMethod": d.method,
        "success": d.state == SENT,
        "state": d.state.upper(),
        "attempts": d.attempts,
        "lastAttemptAt": iso(d.attempted_at),
        "httpStatus": d.http_status,
        "responseBody": d.response_body,
        "responseHeaders": d.response_headers,
        "error": d.error,
        "active": d.state == PENDING,
        "duration": d.duration_ms,
        "eventProcessingTime": processing,
        "eventId": str(d.event_id) if d.event_id else None,
        "transactionSequenceNumber": d.event_seq,
    }


# ---- endpoints ------------------------------------------------------------------------------


def _allowed(who: Principal) -> Principal:
    who.require(Permission.WEBHOOKS)
    return who


async def _load(session: Session, who: Principal, ident: str, lock: bool = False) -> Any:
    try:
        key = uuid.UUID(ident)
    except ValueError:
        raise service.not_found() from None
    return await service.get(session, who.account_id, NAME, uuid_=key, lock=lock)


@router.get("/subscriptions")
async def list_subscriptions(
    who: CurrentPrincipal, session: Session, identifier: str | None = None
) -> dict[str, Any]:
    _allowed(who)
    subs = list(await service.listing(session, who.account_id, NAME, identifier))
    users = await _user_uuids(session, subs)
    data = [render(s, who, users.get(s.user_id or 0)) for s in subs]
    return ok(data, "Subscription", len(data))


@router.post("/subscriptions")
async def create_subscription(
    request: Request,
    who: CurrentPrincipal,
    session: Session,
    settings: SettingsDep,
    body: Any = Body(...),
) -> dict[str, Any]:
    _allowed(who)
    sub = WebhookSubscription(dialect=NAME)
    await _apply(body, sub, settings, creating=True)
    await service.create(session, who, sub)
    await session.commit()
    return ok(render(sub, who, str(who.user_uuid)), "Subscription")


@router.get("/subscriptions/{subscription_id}")
async def get_subscription(
    subscription_id: str, who: CurrentPrincipal, session: Session
) -> dict[str, Any]:
    _allowed(who)
    sub = await _load(session, who, subscription_id)
    return ok(await _rendered(session, who, sub), "Subscription")


@router.put("/subscriptions/{subscription_id}")
async def update_subscription(
    subscription_id: str,
    who: CurrentPrincipal,
    session: Session,
    settings: SettingsDep,
    body: Any = Body(...),
) -> dict[str, Any]:
    _allowed(who)
    sub = await _load(session, who, subscription_id, lock=True)
    await _apply(body, sub, settings, creating=False)
    await service.save(session, who, sub)
    await session.commit()
    return ok(await _rendered(session, who, sub), "Subscription")


@router.delete("/subscriptions/{subscription_id}")
async def delete_subscription(
    subscription_id: str, who: CurrentPrincipal, session: Session
) -> dict[str, Any]:
    _allowed(who)
    sub = await _load(session, who, subscription_id, lock=True)
    shown = await _rendered(session, who, sub)
    await service.delete(session, who, sub)
    await session.commit()
    return ok(shown, "Subscription")


@router.get("/subscriptions/{subscription_id}/deliveries")
async def list_deliveries(
    subscription_id: str,
    who: CurrentPrincipal,
    session: Session,
    page: int = 1,
    size: int = 30,
    sort: str = "createdAt-DESC",
) -> dict[str, Any]:
    _allowed(who)
    if page < 1:
        raise InvalidParameter("page", "must be 1 or more")
    if not 0 < size <= 100:
        raise InvalidParameter("size", "must be from 1 to 100")
    if sort not in SORTS:
        raise InvalidParameter("sort", f"must be one of {', '.join(SORTS)}")
    sub = await _load(session, who, subscription_id)
    rows, total = await service.deliveries(session, sub, page, size, SORTS[sort])
    return ok([render_delivery(d) for d in rows], "Delivery", total)


@router.get("/subscriptions/{subscription_id}/events")
async def pull_events(
    request: Request,
    subscription_id: str,
    who: CurrentPrincipal,
    session: Session,
    timeout: float = Query(0, description=f"seconds to wait for events, up to {MAX_PULL_TIMEOUT}"),
    autoCommit: bool = False,
) -> dict[str, Any]:
    _allowed(who)
    if not 0 <= timeout <= MAX_PULL_TIMEOUT:
        raise InvalidParameter("timeout", f"must be from 0 to {MAX_PULL_TIMEOUT} seconds")
    sub = await _pull_subscription(session, who, subscription_id)
    await session.close()  # the long poll reads in sessions of its own
    max_bytes = int(sub.config.get("maxBatchSize", DEFAULT_BATCH_KIB)) * 1024
    batch = await pull.poll(request.app.state.sessions, sub, max_bytes, timeout, autoCommit)
    events = [{"cursor": {"offset": seq}, "event": body} for seq, body in batch.events]
    return ok({"events": events, "nextCursor": {"offset": batch.next_offset}}, "PullResult")


@router.put("/subscriptions/{subscription_id}/cursor")
async def move_cursor(
    subscription_id: str, who: CurrentPrincipal, session: Session, body: Any = Body(...)
) -> dict[str, Any]:
    _allowed(who)
    offset = body.get("offset") if isinstance(body, dict) else None
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise BadRequest("Invalid cursor", [("offset", "must be a whole number, 0 or more")])
    sub = await _pull_subscription(session, who, subscription_id, lock=True)
    await pull.move(session, sub, offset)
    await session.commit()
    return ok({"offset": offset}, "Cursor")


async def _pull_subscription(
    session: Session, who: Principal, ident: str, lock: bool = False
) -> WebhookSubscription:
    sub: WebhookSubscription = await _load(session, who, ident, lock)
    if sub.delivery_type != PULL:
        raise BadRequest(
            "This is a PUSH subscription: its events are sent, not pulled",
            [("deliveryType", "must be PULL to read events")],
        )
    return sub

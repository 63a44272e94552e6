"""How the native API shows identity objects. Secrets appear only where a caller passes them."""

from typing import Any

from landmark.api.deps import iso
from landmark.core import clock
from landmark.core.events import Event
from landmark.identity.authn import Principal
from landmark.identity.models import Account, Credential, Membership, User
from landmark.identity.permissions import effective_permissions
from landmark.identity.secrets import client_id_for


def account(row: Account) -> dict[str, Any]:
    return {
        "id": row.id,
        "uuid": str(row.uuid),
        "name": row.name,
        "status": row.status,
        "rate_limit": row.rate_limit,
        "rate_limit_window": row.rate_limit_window,
        "created_at": iso(row.created_at),
    }


def user(row: User, membership: Membership) -> dict[str, Any]:
    return {
        "id": row.id,
        "uuid": str(row.uuid),
        "email": row.email,
        "name": row.name,
        "kind": row.kind,
        "role": membership.role,
        "permissions": membership.permissions,
        "effective_permissions": sorted(
            effective_permissions(membership.role, membership.permissions)
        ),
        "status": membership.status,
        "created_at": iso(row.created_at),
        "updated_at": iso(max(row.updated_at, membership.updated_at)),
    }


def me(who: Principal) -> dict[str, Any]:
    return {
        "user": {
            "id": who.user_id,
            "uuid": str(who.user_uuid),
            "email": who.user_email,
            "name": who.user_name,
            "kind": who.user_kind,
        },
        "account": {"id": who.account_id, "uuid": str(who.account_uuid), "name": who.account_name},
        "role": who.role,
        "permissions": sorted(who.permissions),
        "credential": {"id": who.credential_id, "kind": who.credential_kind or "password"},
    }


def token(row: Credential, secret: str | None = None) -> dict[str, Any]:
    out = {
        "id": str(row.id),
        "name": row.name,
        "kind": row.kind,
        "description": row.description,
        "scopes": row.scopes,
        "token_last3": row.secret_last3,
        "expires_at": iso(row.expires_at),
        "last_used_at": iso(row.last_used_at),
        "created_at": iso(row.created_at),
    }
    if secret is not None:
        out["token"] = secret
    return out


def api_key(row: Credential, base_url: str, secret: str | None = None) -> dict[str, Any]:
    expired = row.expires_at is not None and row.expires_at <= clock.now()
    out = {
        "id": str(row.id),
        "name": row.name,
        "client_id": client_id_for(row.key_id),
        "client_secret_last3": row.secret_last3,
        "privileges": row.scopes,
        "enabled": row.enabled,
        "status": "expired" if expired else ("active" if row.enabled else "disabled"),
        "secret_issued_at": iso(row.issued_at),
        "secret_expires_at": iso(row.expires_at),
        "last_used_at": iso(row.last_used_at),
        "created_at": iso(row.created_at),
        "access_token_url": base_url.rstrip("/") + "/oauth/token",
    }
    if secret is not None:
        out["client_secret"] = secret
    return out


def event(row: Event) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "id": str(row.id),
        "type": row.type,
        "subject_type": row.subject_type,
        "subject_id": row.subject_id,
        "actor_user_id": row.actor_user_id,
        "actor_credential_id": row.actor_credential_id,
        "request_id": row.request_id,
        "data": row.data,
        "created_at": iso(row.created_at),
    }

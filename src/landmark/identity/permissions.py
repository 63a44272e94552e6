"""The permission vocabulary and the roles built from it: the one definition every API uses."""

from enum import StrEnum


class Permission(StrEnum):
    READ = "read"  # read the inventory (CMDB and architecture)
    WRITE = "write"  # create and change inventory records
    ARCHIVE = (
        "archive"  # archive, trash and restore records (Xurrent's Account/Directory Administrator)
    )
    MONITORING = "monitoring"  # monitors (CloverDX's "Monitoring section")
    WEBHOOKS = "webhooks"  # manage webhook subscriptions and policies
    INTEGRATIONS = "integrations"  # imports, exports, Integration API runs
    DATA_MODEL = "data_model"  # change the account's meta model
    USERS = "users"  # manage users, memberships and technical users
    API_KEYS = "api_keys"  # manage API keys (client credentials)
    AUDIT = "audit"  # read the audit trail
    ACCOUNT = "account"  # change the account's settings


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.MEMBER: frozenset({Permission.READ, Permission.WRITE}),
    Role.VIEWER: frozenset({Permission.READ}),
}

# LeanIX names its workspace roles in capitals.
LEANIX_ROLE = {Role.ADMIN: "ADMIN", Role.MEMBER: "MEMBER", Role.VIEWER: "VIEWER"}


def effective_permissions(
    role: str, grants: list[str] | None, scopes: list[str] | None = None
) -> frozenset[str]:
    """What a credential may do: its owner's role and grants, narrowed by its scopes."""
    owned = ROLE_PERMISSIONS[Role(role)] | frozenset(grants or ())
    return frozenset(owned if scopes is None else owned & frozenset(scopes))


def parse_permissions(values: list[str], field: str) -> list[str]:
    """Validate a list of permission names; raises ValidationFailed naming the field."""
    from landmark.core.errors import ValidationFailed

    known = {p.value for p in Permission}
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValidationFailed(
            "Validation Failed",
            [
                (field, f"unknown permission {v!r}; known: {', '.join(sorted(known))}")
                for v in unknown
            ],
        )
    return sorted(set(values))

"""Every table of every domain, imported in one place for migrations."""

from landmark.core.events import Event
from landmark.core.jobs import Job
from landmark.identity.models import (
    Account,
    Credential,
    InstanceSecret,
    Membership,
    SigningKey,
    User,
)

__all__ = [
    "Account",
    "Credential",
    "Event",
    "InstanceSecret",
    "Job",
    "Membership",
    "SigningKey",
    "User",
]

"""Every table of every domain, imported in one place for migrations."""

from landmark.cmdb.exports import Export
from landmark.cmdb.imports import Import, ImportFailure
from landmark.cmdb.models import (
    CIRelation,
    CIUser,
    ConfigurationItem,
    Organization,
    Person,
    Product,
    ProductCategory,
    Service,
    Site,
    Team,
    TeamMember,
)
from landmark.core.events import Event
from landmark.core.jobs import Job
from landmark.eam import purge as eam_purge  # noqa: F401  (its job handler)
from landmark.eam.models import (
    Comment,
    DataModel,
    Document,
    FactSheet,
    FactSheetTag,
    Relation,
    Subscription,
    Tag,
    TagGroup,
)
from landmark.identity.models import (
    Account,
    Credential,
    InstanceSecret,
    Membership,
    SigningKey,
    User,
)
from landmark.webhooks import engine as webhooks_engine  # noqa: F401  (its worker service)
from landmark.webhooks import service as webhooks_service  # noqa: F401  (its job handler)
from landmark.webhooks.models import WebhookCursor, WebhookDelivery, WebhookSubscription
from landmark.webhooks.policies import WebhookPolicy
from landmark.webhooks.verification import WebhookVerification

__all__ = [
    "Account",
    "CIRelation",
    "CIUser",
    "ConfigurationItem",
    "Credential",
    "Event",
    "Export",
    "Import",
    "ImportFailure",
    "InstanceSecret",
    "Job",
    "Membership",
    "Organization",
    "Person",
    "Product",
    "ProductCategory",
    "Service",
    "SigningKey",
    "Site",
    "Team",
    "TeamMember",
    "Comment",
    "DataModel",
    "Document",
    "FactSheet",
    "FactSheetTag",
    "Relation",
    "Subscription",
    "Tag",
    "TagGroup",
    "User",
    "WebhookCursor",
    "WebhookDelivery",
    "WebhookPolicy",
    "WebhookSubscription",
    "WebhookVerification",
]

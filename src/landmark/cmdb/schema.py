"""What each CMDB resource is made of: its fields, and which of them lists, filters and sorts use.

One description per resource serves validation (cmdb/service.py), rendering and the query engine
(api/xurrent). Names are the API's (`sourceID`, `support_team`); `attr` is the model's column, and
a reference `x` is written as `x_id` and stored in the column `x_id`.
"""

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from landmark.cmdb import models as m

Kind = Literal[
    "string",
    "text",
    "integer",
    "decimal",
    "boolean",
    "date",
    "datetime",
    "enum",
    "reference",
    "strings",  # an array of strings
    "json",  # custom fields: an array of {id, value}
    "aggregated",  # recurrence: a hash
    "attachments",  # write-only arrays of {key, filesize, inline}
]

CI_STATUSES = (
    "ordered",
    "being_built",
    "in_stock",
    "reserved",
    "in_transit",
    "installed",
    "being_tested",
    "standby_for_continuity",
    "lent_out",
    "in_production",
    "undergoing_maintenance",
    "broken_down",
    "being_repaired",
    "archived",
    "to_be_removed",
    "lost_or_stolen",
    "removed",
)
# A CI in one of these statuses no longer serves: /cis/inactive lists them, and a POST naming
# one of them by name or label updates it (discovery tools re-finding a CI). See docs/decisions.md.
INACTIVE_STATUSES = ("archived", "lost_or_stolen", "removed")
CATEGORY_RULE_SETS = (
    "physical_asset",
    "logical_asset_with_financial_data",
    "logical_asset_without_financial_data",
    "server",
    "software",
    "software_distribution_package",
)
RULE_SETS = ("license_certificate", *CATEGORY_RULE_SETS)
LICENSE_TYPES = (
    "concurrent_user_license",
    "cpu_license",
    "installed_user_license",
    "named_user_license",
    "unlimited_user_license",
    "other_type_of_license",
)
DEPRECIATION_METHODS = (
    "not_depreciated",
    "double_declining_balance",
    "reducing_balance",
    "straight_line",
    "sum_of_the_years_digits",
)
CI_TYPES = ("software_version", "software_license_certificate", "hardware")
SERVICE_IMPACTS = ("low", "medium", "high", "top")
TEXT_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    attr: str = ""  # the model column; defaults to name (name + "_id" for references)
    max_length: int | None = None
    values: tuple[str, ...] | None = None
    target: str = ""  # references: the resource referred to
    readonly: bool = False
    writeonly: bool = False
    required: bool = False

    @cached_property  # read for every value of every rendered record
    def column(self) -> str:
        if self.attr:
            return self.attr
        return f"{self.name}_id" if self.kind == "reference" else self.name

    @cached_property
    def input_name(self) -> str:
        return f"{self.name}_id" if self.kind == "reference" else self.name


@dataclass(frozen=True, eq=False)  # one object per resource: hashed by identity, cheaply
class Resource:
    name: str  # the path: "cis"
    singular: str  # events and audit: "ci"
    model: type[Any]
    fields: tuple[Field, ...]
    collection_fields: tuple[str, ...]
    filters: tuple[str, ...]
    sorts: tuple[str, ...]
    default_sort: tuple[str, ...] = ("name",)
    predefined: tuple[str, ...] = ("enabled", "disabled")
    display: str = "name"  # what a reference to it shows
    reference_extras: tuple[str, ...] = ()  # more fields in a reference (product: brand, category)
    by_name: dict[str, Field] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.by_name.update({f.name: f for f in self.fields})


def _common(*, disabled: bool = True) -> tuple[Field, ...]:
    fields = (
        Field("id", "integer", readonly=True),
        Field("source", "string", max_length=30),
        Field("sourceID", "string", attr="source_id", max_length=128),
        Field("created_at", "datetime", readonly=True),
        Field("updated_at", "datetime", readonly=True),
    )
    return (*fields, Field("disabled", "boolean")) if disabled else fields


def _text(name: str) -> Field:
    return Field(name, "text", max_length=TEXT_LIMIT)


def _ref(name: str, target: str, **kw: Any) -> Field:
    return Field(name, "reference", target=target, **kw)


PRODUCT_CATEGORIES = Resource(
    "product_categories",
    "product_category",
    m.ProductCategory,
    (
        *_common(),
        Field("name", "string", max_length=255, required=True),
        Field("group", "string", max_length=255, required=True),
        Field("rule_set", "enum", values=CATEGORY_RULE_SETS, required=True),
        Field("reference", "string", max_length=80, readonly=True),
    ),
    collection_fields=("id", "sourceID", "name", "group", "rule_set", "reference"),
    filters=("id", "source", "sourceID", "reference", "rule_set", "created_at", "updated_at")
    + ("disabled", "name"),
    sorts=("id", "sourceID", "name", "rule_set", "reference", "created_at", "updated_at"),
)

ORGANIZATIONS = Resource(
    "organizations",
    "organization",
    m.Organization,
    (
        *_common(),
        Field("name", "string", max_length=128, required=True),
        _ref("parent", "organizations"),
        _ref("manager", "people"),
        Field("financialID", "string", attr="financial_id", max_length=128),
        _text("remarks"),
    ),
    collection_fields=("id", "sourceID", "name", "parent", "manager", "created_at", "updated_at"),
    filters=("id", "source", "sourceID", "name", "disabled", "created_at", "updated_at")
    + ("financialID", "parent"),
    sorts=("id", "sourceID", "name", "created_at", "updated_at"),
)

SITES = Resource(
    "sites",
    "site",
    m.Site,
    (
        *_common(),
        Field("name", "string", max_length=128, required=True),
        Field("address", "string", max_length=512),
        Field("city", "string", max_length=128),
        Field("state", "string", max_length=128),
        Field("zip", "string", max_length=32),
        Field("country", "string", max_length=2),
        Field("time_zone", "string", max_length=64),
        _text("remarks"),
    ),
    collection_fields=("id", "sourceID", "name", "created_at", "updated_at"),
    filters=("id", "source", "sourceID", "name", "disabled", "created_at", "updated_at"),
    sorts=("id", "sourceID", "name", "created_at", "updated_at"),
)

PEOPLE = Resource(
    "people",
    "person",
    m.Person,
    (
        *_common(),
        Field("name", "string", max_length=128, required=True),
        Field("primary_email", "string", max_length=128, required=True),
        _ref("organization", "organizations"),
        _ref("site", "sites"),
        _ref("manager", "people"),
        Field("job_title", "string", max_length=128),
        Field("location", "string", max_length=128),
        Field("employeeID", "string", attr="employee_id", max_length=128),
        Field("supportID", "string", attr="support_id", max_length=128),
        Field("time_zone", "string", max_length=64),
        Field("locale", "string", max_length=16),
        Field("vip", "boolean"),
        _text("information"),
    ),
    collection_fields=("id", "sourceID", "name", "organization", "site", "manager")
    + ("created_at", "updated_at"),
    filters=("id", "source", "sourceID", "name", "disabled", "organization", "site", "manager")
    + ("created_at", "updated_at", "employeeID", "primary_email", "supportID"),
    sorts=("id", "sourceID", "name", "organization", "site", "manager", "created_at")
    + ("updated_at",),
)

TEAMS = Resource(
    "teams",
    "team",
    m.Team,
    (
        *_common(),
        Field("name", "string", max_length=128, required=True),
        _ref("coordinator", "people"),
        _ref("manager", "people"),
        _ref("configuration_manager", "people"),
        _text("remarks"),
    ),
    collection_fields=("id", "sourceID", "name", "created_at", "updated_at"),
    filters=("id", "source", "sourceID", "name", "created_at", "updated_at", "disabled"),
    sorts=("id", "sourceID", "name", "created_at", "updated_at"),
)

SERVICES = Resource(
    "services",
    "service",
    m.Service,
    (
        *_common(),
        Field("name", "string", max_length=255, required=True),
        _ref("provider", "organizations", required=True),
        _ref("support_team", "teams"),
        _ref("service_owner", "people"),
        Field("impact", "enum", values=SERVICE_IMPACTS),
        _text("description"),
        Field("keywords", "string", max_length=255),
    ),
    collection_fields=("id", "sourceID", "name", "provider", "support_team", "created_at")
    + ("updated_at",),
    filters=("id", "source", "sourceID", "name", "provider", "support_team", "created_at")
    + ("updated_at", "disabled"),
    sorts=("id", "sourceID", "name", "provider", "support_team", "created_at", "updated_at"),
    reference_extras=("provider",),
)

PRODUCTS = Resource(
    "products",
    "product",
    m.Product,
    (
        *_common(),
        Field("name", "string", max_length=255, required=True),
        Field("brand", "string", max_length=128),
        Field("model", "string", max_length=128),
        Field("productID", "string", attr="product_id", max_length=128),
        _ref("category", "product_categories", required=True),
        Field("rule_set", "enum", values=CATEGORY_RULE_SETS, readonly=True),
        _ref("support_team", "teams"),
        _ref("service", "services"),
        _ref("supplier", "organizations"),
        _ref("financial_owner", "organizations"),
        Field("depreciation_method", "enum", values=DEPRECIATION_METHODS),
        Field("useful_life", "integer"),
        Field("salvage_value", "decimal"),
        Field("rate", "decimal"),
        _text("remarks"),
    ),
    collection_fields=("id", "sourceID", "name", "category", "support_team", "service")
    + ("created_at", "updated_at"),
    filters=("id", "source", "sourceID", "name", "disabled", "category", "rule_set")
    + ("support_team", "service", "created_at", "updated_at"),
    sorts=("id", "sourceID", "name", "support_team", "service", "created_at", "updated_at"),
    predefined=("enabled", "disabled", "supported_by_my_teams"),
    reference_extras=("brand", "category"),
)

CIS = Resource(
    "cis",
    "ci",
    m.ConfigurationItem,
    (
        *_common(disabled=False),
        Field("alternate_names", "strings"),
        Field("assetID", "string", attr="asset_id", max_length=50),
        Field("attachments", "attachments", readonly=True),
        Field("ci_type", "enum", values=CI_TYPES, readonly=True),
        Field("custom_fields", "json"),
        Field("custom_fields_attachments", "attachments", writeonly=True),
        _ref("financial_owner", "organizations"),
        Field("in_use_since", "date"),
        Field("label", "string", max_length=160),
        Field("license_expiry_date", "date"),
        Field("license_type", "enum", values=LICENSE_TYPES),
        Field("location", "string", max_length=128),
        Field("location_hint", "string", max_length=2048),
        Field("name", "string", max_length=160),
        Field("nr_of_cores", "integer"),
        Field("nr_of_licenses", "integer"),
        Field("nr_of_processors", "integer"),
        _ref("product", "products", required=True),
        Field("recurrence", "aggregated"),
        _text("remarks"),
        Field("remarks_attachments", "attachments", writeonly=True),
        Field("rule_set", "enum", values=RULE_SETS, readonly=True),
        Field("serial_nr", "string", max_length=50),
        _ref("service", "services"),
        _ref("site", "sites"),
        Field("site_license", "boolean"),
        Field("software", "boolean", readonly=True),
        Field("status", "enum", values=CI_STATUSES, required=True),
        _ref("supplier", "organizations"),
        _ref("support_team", "teams"),
        Field("systemID", "string", attr="system_id", max_length=255),
        Field("temporary_license", "boolean"),
        Field("warranty_expiry_date", "date"),
        Field("end_of_support_date", "date"),
        Field("last_seen_at", "datetime"),
        _ref("workflow_manager", "people"),
        Field("po_nr", "string", max_length=128),
        Field("purchase_value", "decimal"),
        Field("salvage_value", "decimal"),
        Field("rate", "decimal"),
        Field("useful_life", "integer"),
        Field("depreciation_method", "enum", values=DEPRECIATION_METHODS),
    ),
    collection_fields=("id", "sourceID", "software", "label", "name", "status", "product")
    + ("rule_set", "support_team", "service", "created_at", "updated_at"),
    filters=("id", "source", "sourceID", "label", "name", "status", "rule_set", "support_team")
    + ("created_at", "updated_at", "product", "service", "systemID", "assetID", "serial_nr")
    + ("site", "financial_owner"),
    sorts=("id", "sourceID", "label", "name", "status", "support_team", "created_at")
    + ("updated_at",),
    default_sort=("label",),
    predefined=("active", "inactive", "supported_by_my_teams"),
    display="label",
)

RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        PRODUCT_CATEGORIES,
        ORGANIZATIONS,
        SITES,
        PEOPLE,
        TEAMS,
        SERVICES,
        PRODUCTS,
        CIS,
    )
}
BY_MODEL: dict[type[Any], Resource] = {r.model: r for r in RESOURCES.values()}

ENUMS: dict[str, tuple[str, ...]] = {
    "ci_status": CI_STATUSES,
    "ci_type": CI_TYPES,
    "rule_set": RULE_SETS,
    "license_type": LICENSE_TYPES,
    "depreciation_method": DEPRECIATION_METHODS,
    "service_impact": SERVICE_IMPACTS,
    "ci_relation_type": ("child", "parent"),
}

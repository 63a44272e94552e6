"""The standard data model a new account starts with: LeanIX meta model v4 type names.

v3 aliases: Initiative (Project), BusinessContext (Process), Organization (UserGroup),
TechCategory (TechnicalStack); relation names follow (relITComponentToTechCategory for v3's
relITComponentToTechnologyStack, and so on). Value keys are those of docs/reference §2.4.
"""

from landmark.eam.metamodel import FactSheetTypeDef, FieldDef, MetaModel, RelationDef

PHASES = ["plan", "phaseIn", "active", "phaseOut", "endOfLife"]
TYPES = [
    "Objective",
    "Initiative",
    "BusinessCapability",
    "BusinessContext",
    "Organization",
    "Application",
    "Interface",
    "DataObject",
    "ITComponent",
    "Provider",
    "TechCategory",
    "Platform",
]
WITH_LIFECYCLE = {"Application", "Interface", "ITComponent", "Initiative", "Platform", "Provider"}


def _s(name: str) -> FieldDef:
    return FieldDef(name, "STRING")


def _select(name: str, values: list[str], multiple: bool = False) -> FieldDef:
    return FieldDef(name, "MULTIPLE_SELECT" if multiple else "SINGLE_SELECT", values)


def _num(name: str) -> FieldDef:
    return FieldDef(name, "DOUBLE")


FUNCTIONAL = ["unreasonable", "insufficient", "appropriate", "perfect"]
TECHNICAL = ["inappropriate", "unreasonable", "adequate", "fullyAppropriate"]
CRITICALITY = [
    "administrativeService",
    "businessOperational",
    "businessCritical",
    "missionCritical",
]

TYPE_FIELDS: dict[str, list[FieldDef]] = {
    "Application": [
        _s("alias"),
        _s("release"),
        _select("businessCriticality", CRITICALITY),
        _s("businessCriticalityDescription"),
        _select("functionalSuitability", FUNCTIONAL),
        _s("functionalSuitabilityDescription"),
        _select("technicalSuitability", TECHNICAL),
        _s("technicalSuitabilityDescription"),
        FieldDef("location", "LOCATION"),
    ],
    "ITComponent": [
        _s("alias"),
        _s("release"),
        _select("category", ["software", "hardware", "service", "iaas", "paas", "saas"]),
        _select("technicalSuitability", TECHNICAL),
    ],
    "Interface": [
        _select("frequency", ["realTime", "hourly", "daily", "weekly", "monthly", "onDemand"]),
        _select("dataFlowDirection", ["incoming", "outgoing", "bidirectional"]),
        _select("interfaceType", ["api", "file", "database", "messaging"], multiple=True),
    ],
    "DataObject": [
        _select("dataClassification", ["public", "internal", "confidential", "restricted"]),
    ],
    "Initiative": [
        _select("initiativeType", ["idea", "program", "project", "epic"]),
        _num("budgetOpex"),
        _num("budgetCapex"),
        FieldDef("startDate", "DATE"),
    ],
    "Objective": [_select("objectiveType", ["strategic", "operational"])],
    "Organization": [
        _select("organizationType", ["businessUnit", "region", "legalEntity", "team"])
    ],
    "Provider": [_s("alias"), _select("providerCriticality", ["low", "medium", "high"])],
    "BusinessCapability": [FieldDef("maturity", "INTEGER")],
    "BusinessContext": [
        _select("businessContextType", ["process", "valueStream", "customerJourney", "product"])
    ],
    "TechCategory": [],
    "Platform": [_s("alias")],
}


def _fields(type_name: str) -> dict[str, FieldDef]:
    own = [FieldDef("externalId", "EXTERNAL_ID")]
    if type_name in WITH_LIFECYCLE:
        own.append(FieldDef("lifecycle", "LIFECYCLE", list(PHASES)))
    return {f.name: f for f in own + TYPE_FIELDS[type_name]}


DESCRIPTION = _s("description")
COST = _num("costTotalAnnual")


def _rel(
    from_type: str | None,
    to_type: str | None,
    name: str,
    reverse: str,
    *extra: FieldDef,
    from_multiplicity: str = "MULTI",
    to_multiplicity: str = "MULTI",
    constraints: tuple[str, ...] = (),
) -> RelationDef:
    return RelationDef(
        name,
        reverse,
        from_type,
        to_type,
        from_multiplicity,
        to_multiplicity,
        {f.name: f for f in (DESCRIPTION, *extra)},
        list(constraints),
    )


def _between(a: str, b: str, *extra: FieldDef, **kw: str) -> RelationDef:
    return _rel(a, b, f"rel{a}To{b}", f"rel{b}To{a}", *extra, **kw)  # type: ignore[arg-type]


RELATIONS = [
    # On every type, between fact sheets of the same type.
    _rel(
        None,
        None,
        "relToParent",
        "relToChild",
        from_multiplicity="SINGLE",
        constraints=("TYPE_EQUAL",),
    ),
    _rel(None, None, "relToRequires", "relToRequiredBy", constraints=("TYPE_EQUAL",)),
    _rel(None, None, "relToSuccessor", "relToPredecessor", constraints=("TYPE_EQUAL",)),
    _between("Application", "ITComponent", COST, _select("technicalSuitability", TECHNICAL)),
    _between("Application", "BusinessCapability", _select("functionalSuitability", FUNCTIONAL)),
    _between(
        "Application",
        "DataObject",
        _select("usage", ["create", "read", "update", "delete"], multiple=True),
    ),
    _rel(
        "Application",
        "Interface",
        "relProviderApplicationToInterface",
        "relInterfaceToProviderApplication",
        to_multiplicity="SINGLE",
    ),
    _rel(
        "Application",
        "Interface",
        "relConsumerApplicationToInterface",
        "relInterfaceToConsumerApplication",
    ),
    _between(
        "Application",
        "Organization",
        FieldDef("numberOfUsers", "INTEGER"),
        _select("usageType", ["owner", "user"]),
    ),
    _between("Application", "BusinessContext"),
    _between("Application", "Platform"),
    _between("Interface", "DataObject"),
    _between("Interface", "ITComponent"),
    _between("ITComponent", "TechCategory"),
    _between("ITComponent", "Provider", COST, _s("orderNo")),
    _between("ITComponent", "Organization"),
    _between("ITComponent", "Platform"),
    _between("BusinessContext", "BusinessCapability"),
    _between("Initiative", "Application"),
    _between("Initiative", "ITComponent"),
    _between("Initiative", "BusinessCapability"),
    _between("Initiative", "BusinessContext"),
    _between("Initiative", "Organization"),
    _between("Initiative", "Provider"),
    _between("Initiative", "Objective"),
    _between("Objective", "BusinessCapability"),
    _between("Organization", "BusinessCapability"),
]

STANDARD_MODEL = MetaModel(
    {t: FactSheetTypeDef(t, _fields(t)) for t in TYPES},
    {r.name: r for r in RELATIONS},
)

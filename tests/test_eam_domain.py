"""The architecture-inventory domain, driven through the running server's own sessions:
the service (patches), the batch loaders and search, the data model and the purge job."""

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from landmark.core import clock
from landmark.core.events import Event
from landmark.core.jobs import Job, enqueue
from landmark.eam import metamodel, queries, service
from landmark.eam.errors import PatchError
from landmark.eam.models import FactSheet
from landmark.eam.queries import DateFilter, FacetFilter
from landmark.eam.service import Patch


def _who(server, tenant) -> Any:
    async def sign_in(session):
        headers = {"authorization": f"Bearer {tenant.token}"}
        return await server.app.state.authenticator.authenticate(headers, session)

    return server.run(sign_in)


def _do(server, tenant, work) -> Any:
    """Run `work(session, who, model)` in a committed session of the server."""
    who = _who(server, tenant)

    async def run(session):
        model = await metamodel.load_model(session, who.account_id)
        return await work(session, who, model)

    return server.run(run)


def _create(server, tenant, type: str, name: str, *patches: Patch) -> FactSheet:
    return _do(
        server,
        tenant,
        lambda s, who, m: service.create_fact_sheet(s, who, m, type, name, list(patches)),
    )


def _update(server, tenant, fs_id, *patches: Patch, rev=None, comment=None, validate_only=False):
    return _do(
        server,
        tenant,
        lambda s, who, m: service.update_fact_sheet(
            s, who, m, fs_id, rev, list(patches), comment, validate_only
        ),
    )


def _error(fn) -> PatchError:
    with pytest.raises(PatchError) as caught:
        fn()
    return caught.value


def test_standard_model_is_created_on_first_use(server, tenant) -> None:
    model = _do(server, tenant, lambda s, who, m: _async(m))
    assert {"Application", "ITComponent", "Initiative", "TechCategory"} <= set(model.types)
    app = model.types["Application"]
    assert app.fields["businessCriticality"].values[-1] == "missionCritical"
    assert "relITComponentToApplication" in model.types["ITComponent"].relations
    assert "relToChild" in app.relations


async def _async(value: Any) -> Any:
    return value


def test_create_patch_fields_lifecycle_and_completion(server, tenant) -> None:
    lifecycle = {"phases": [{"phase": "active", "startDate": "2020-01-01"}]}
    fs = _create(
        server,
        tenant,
        "Application",
        "CRM",
        Patch("add", "/description", "Customer data"),
        Patch("add", "/businessCriticality", "missionCritical"),
        Patch("add", "/lifecycle", json.dumps(lifecycle)),
        Patch("add", "/externalId", json.dumps({"type": "ExternalId", "externalId": "APP-1"})),
        Patch("add", "/release", "2.0"),
    )
    assert fs.rev == 1 and fs.display_name == "CRM 2.0" and fs.external_id == "APP-1"
    assert fs.fields["lifecycle"] == lifecycle and fs.phase_dates == {"active": "2020-01-01"}
    assert 0 < fs.completion < 1
    updated = _update(
        server, tenant, fs.id, Patch("add", "/lifecycle/phaseOut", "2030-01-01"), rev=1
    )
    assert updated.rev == 2
    assert [p["phase"] for p in updated.fields["lifecycle"]["phases"]] == ["active", "phaseOut"]


def test_validation_errors_name_the_path(server, tenant) -> None:
    fs = _create(server, tenant, "Application", "Billing")
    bad = _error(lambda: _update(server, tenant, fs.id, Patch("add", "/businessCriticality", "x")))
    assert bad.object_path == "/businessCriticality" and "FS_VALIDATION" in bad.message
    unknown = _error(lambda: _update(server, tenant, fs.id, Patch("add", "/colour", "red")))
    assert unknown.object_path == "/colour" and "colour" in unknown.message
    stale = _error(lambda: _update(server, tenant, fs.id, Patch("add", "/alias", "b"), rev=7))
    assert stale.error_type == "STALE_REV" and stale.status == 409
    # A failing patch after a good one changes nothing.
    _error(
        lambda: _update(
            server, tenant, fs.id, Patch("add", "/alias", "ok"), Patch("add", "/nope", "x")
        )
    )
    assert _reload(server, fs.id).fields == {} and _reload(server, fs.id).rev == 1


def _reload(server, fs_id) -> FactSheet:
    return server.run(lambda s: s.get(FactSheet, fs_id, populate_existing=True))


def test_validate_only_changes_nothing(server, tenant) -> None:
    fs = _create(server, tenant, "Application", "Dry")
    seq = _last_seq(server, tenant)
    result = _update(server, tenant, fs.id, Patch("replace", "/name", "Wet"), validate_only=True)
    assert result.name == "Wet" and result.rev == 2
    assert _reload(server, fs.id).name == "Dry" and _last_seq(server, tenant) == seq


def _last_seq(server, tenant) -> int:
    async def last(session):
        query = select(Event.seq).where(Event.account_id == tenant.slug).order_by(Event.seq.desc())
        return await session.scalar(query.limit(1))

    return server.run(last)


def test_hierarchy_levels_names_depth_and_cycles(server, tenant) -> None:
    top = _create(server, tenant, "BusinessCapability", "Sales")
    mid = _create(server, tenant, "BusinessCapability", "Orders", _parent(top.id))
    low = _create(server, tenant, "BusinessCapability", "Returns", _parent(mid.id))
    assert (low.level, low.full_name) == (3, "Sales / Orders / Returns")
    too_deep = _error(lambda: _create(server, tenant, "BusinessCapability", "X", _parent(low.id)))
    assert "HIERARCHY_DEPTH" in too_deep.message and too_deep.object_path == "/relToParent/new_1"
    cycle = _error(lambda: _update(server, tenant, top.id, _parent(low.id)))
    assert "HIERARCHY_CYCLE" in cycle.message
    _update(server, tenant, top.id, Patch("replace", "/name", "Selling"))
    assert _reload(server, low.id).full_name == "Selling / Orders / Returns"


def _parent(target) -> Patch:
    return Patch("add", "/relToParent/new_1", json.dumps({"factSheetId": str(target)}))


def test_loaders_are_one_statement_each(server, tenant) -> None:
    itc = _create(server, tenant, "ITComponent", "Postgres")
    apps = [
        _create(
            server,
            tenant,
            "Application",
            f"App {i}",
            Patch(
                "add",
                "/relApplicationToITComponent/new_1",
                json.dumps({"factSheetId": str(itc.id)}),
            ),
            Patch("add", "/tags", json.dumps([{"tagName": "loader"}])),
        )
        for i in range(5)
    ]
    ids = [a.id for a in apps] + [itc.id]
    statements: list[str] = []

    def count(*args) -> None:
        statements.append(args[2])

    engine = server.app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        who = _who(server, tenant)
        model = server.run(lambda s: metamodel.load_model(s, who.account_id))
        statements.clear()
        relations = server.run(lambda s: queries.relations_of(s, who.account_id, ids, None, model))
        tags = server.run(lambda s: queries.tags_of(s, who.account_id, ids))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len([s for s in statements if "eam_" in s]) == 2
    assert len(relations[itc.id]) == 5 and all(len(relations[a.id]) == 1 for a in apps)
    assert relations[itc.id][0].relation.type == "relApplicationToITComponent"
    assert all(t.name == "loader" for a in apps for t, _ in tags[a.id])


def test_search_facets(server, tenant) -> None:
    itc = _create(server, tenant, "ITComponent", "Kafka")
    live = {"phases": [{"phase": "active", "startDate": "2020-01-01"}]}
    a = _create(
        server,
        tenant,
        "Application",
        "Search Alpha",
        Patch("add", "/lifecycle", json.dumps(live)),
        Patch("add", "/businessCriticality", "missionCritical"),
        Patch(
            "add", "/relApplicationToITComponent/new_1", json.dumps({"factSheetId": str(itc.id)})
        ),
    )
    b = _create(server, tenant, "Application", "Search Beta")
    who = _who(server, tenant)

    def run(**kw) -> list[str]:
        async def go(s):
            model = await metamodel.load_model(s, who.account_id)
            page = await queries.search(s, who.account_id, model, full_text="search", **kw)
            return [fs.name for fs in page.rows]

        return server.run(go)

    assert run() == ["Search Alpha", "Search Beta"]
    rel = FacetFilter("relApplicationToITComponent", "OR", [str(itc.id)])
    assert run(facet_filters=[rel]) == ["Search Alpha"]
    missing = FacetFilter("relApplicationToITComponent", "OR", ["__missing__"])
    assert run(facet_filters=[missing]) == ["Search Beta"]
    crit = FacetFilter("businessCriticality", "OR", ["missionCritical"])
    assert run(facet_filters=[crit]) == ["Search Alpha"]
    in_2019 = FacetFilter("lifecycle", "OR", ["active"], DateFilter("2019-01-01", "2019-01-01"))
    assert run(facet_filters=[in_2019]) == []
    in_2021 = FacetFilter("lifecycle", "OR", ["active"], DateFilter("2021-01-01", "2021-01-01"))
    assert run(facet_filters=[in_2021]) == ["Search Alpha"]
    assert a.id != b.id


def test_purge_after_retention(server, tenant) -> None:
    fs = _create(server, tenant, "Application", "Old")
    _update(server, tenant, fs.id, Patch("replace", "/status", "ARCHIVED"), comment="gone")
    clock.advance(timedelta(days=91))
    job = server.run(lambda s: enqueue(s, "eam.purge_archived", {}))
    deadline = time.time() + 20
    while server.run(lambda s: s.get(Job, job.id, populate_existing=True)).state != "done":
        assert time.time() < deadline, "the purge job did not run"
        time.sleep(0.2)
    assert _reload(server, fs.id) is None

    async def deleted(session):
        query = select(Event).where(
            Event.account_id == tenant.slug, Event.type == "FACT_SHEET_DELETED"
        )
        return list((await session.execute(query)).scalars())

    assert [e.subject_id for e in server.run(deleted)] == [str(fs.id)]
    assert uuid.UUID(str(fs.id))


def test_facet_counts(server, tenant) -> None:
    tagged = Patch("add", "/tags", json.dumps([{"tagName": "facet-tag"}]))
    crit = Patch("add", "/businessCriticality", "businessCritical")
    _create(server, tenant, "Application", "Facet A", tagged, crit)
    _create(server, tenant, "Application", "Facet B", crit)
    _create(server, tenant, "ITComponent", "Facet C", tagged)
    who = _who(server, tenant)

    async def counts(session):
        model = await metamodel.load_model(session, who.account_id)
        types = FacetFilter("FactSheetTypes", "OR", ["Application"])
        found = await queries.facets(
            session, who.account_id, model, facet_filters=[types], full_text="facet ",
            keys=["FactSheetTypes", "businessCriticality", "Tags"],
        )  # fmt: skip
        return {f.facet_key: {r.name: r.count for r in f.results} for f in found}

    facets = server.run(counts)
    assert facets["FactSheetTypes"] == {"Application": 2, "ITComponent": 1}  # own filter ignored
    assert facets["businessCriticality"]["businessCritical"] == 2
    assert facets["businessCriticality"]["__missing__"] == 0
    assert facets["Tags"]["facet-tag"] == 1


def test_subscriptions_comments_documents(server, tenant) -> None:
    fs = _create(server, tenant, "Application", "Collab")

    def collab(s, who, m):
        async def go():
            sub = await service.create_subscription(
                s, who, fs.id, user_id=who.user_uuid, type="RESPONSIBLE", roles=["Owner"]
            )
            note = await service.create_comment(s, who, fs.id, "Looks good")
            reply = await service.create_comment(s, who, fs.id, "Thanks", reply_to=note.id)
            doc = await service.create_document(s, who, fs.id, "Wiki", "https://wiki.example/crm")
            return sub.id, reply.reply_to_id == note.id, doc.id

        return go()

    sub_id, threaded, doc_id = _do(server, tenant, collab)
    assert threaded
    who = _who(server, tenant)
    subs = server.run(lambda s: queries.subscriptions_of(s, who.account_id, [fs.id]))
    assert [(x.type, u.email) for x, u in subs[fs.id]] == [("RESPONSIBLE", tenant.email)]
    with pytest.raises(Exception, match="subscribed already"):
        _do(
            server,
            tenant,
            lambda s, w, m: service.create_subscription(
                s, w, fs.id, email=tenant.email, type="OBSERVER"
            ),
        )
    _do(server, tenant, lambda s, w, m: service.delete_subscription(s, w, sub_id))
    _do(server, tenant, lambda s, w, m: service.delete_document(s, w, doc_id))
    comments = server.run(lambda s: queries.comments_of(s, who.account_id, [fs.id]))
    assert [c.message for c in comments[fs.id]] == ["Looks good", "Thanks"]

    async def types(session):
        query = select(Event.type).where(
            Event.account_id == tenant.slug, Event.subject_id == str(fs.id)
        )
        return list((await session.execute(query.order_by(Event.seq))).scalars())

    assert server.run(types) == [
        "FACT_SHEET_CREATED",
        "SUBSCRIPTION_CREATED",
        "COMMENT_CREATED",
        "COMMENT_REPLY_ADDED",
        "DOCUMENT_CREATED",
        "SUBSCRIPTION_DELETED",
        "DOCUMENT_DELETED",
    ]
    assert _reload(server, fs.id).rev == 1


def test_validate_only_create_and_delete_tag(server, tenant) -> None:
    dry = _do(
        server,
        tenant,
        lambda s, w, m: service.create_fact_sheet(
            s, w, m, "Application", "Never", [Patch("add", "/alias", "n")], validate_only=True
        ),
    )
    assert dry.name == "Never" and dry.fields == {"alias": "n"}
    assert _reload(server, dry.id) is None
    tagged = _create(
        server, tenant, "Application", "Tag holder", Patch("add", "/tags", '[{"tagName": "temp"}]')
    )
    who = _who(server, tenant)
    held = server.run(lambda s: queries.tags_of(s, who.account_id, [tagged.id]))
    tag_id = held[tagged.id][0][0].id
    _do(server, tenant, lambda s, w, m: service.delete_tag(s, w, tag_id))
    assert server.run(lambda s: queries.tags_of(s, who.account_id, [tagged.id])) == {}


def test_relation_column_sets_are_bounded(monkeypatch) -> None:
    """Each column set a query chooses keeps a statement for good: past MAX_COLUMN_SETS, new
    sets read every column (a superset: the answers are the same)."""
    monkeypatch.setattr(queries, "_column_sets", set())
    monkeypatch.setattr(queries, "MAX_COLUMN_SETS", 2)
    first = queries.RelationColumns(("status",), ("name",))
    second = queries.RelationColumns((), None)
    third = queries.RelationColumns(("fields",), ())
    assert queries._kept(first) == first and queries._kept(second) == second
    assert queries._kept(third) == queries.RelationColumns()
    assert queries._kept(first) == first  # one already in use stays

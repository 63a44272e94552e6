"""Import and export (/v1/import, /v1/export), end to end over HTTP with the in-process worker."""

import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from conftest import Server, Tenant
from landmark.cmdb import imports
from landmark.cmdb import models as m

LANDMARK = str(Path(sys.executable).parent / "landmark")


def upload(
    client: httpx.Client, tenant: Tenant, type: str, text: str, *, encoding: str = "utf-8"
) -> str:
    files = {"file": (f"{type}.csv", text.encode(encoding), "text/csv")}
    response = client.post("/v1/import", data={"type": type}, files=files, headers=tenant.auth)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def wait(client: httpx.Client, tenant: Tenant, path: str) -> dict[str, Any]:
    deadline = time.time() + 60
    while time.time() < deadline:
        body = client.get(path, headers=tenant.auth).json()
        if body["state"] not in ("queued", "processing"):
            return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"{path} did not finish")


def run_import(
    client: httpx.Client, tenant: Tenant, type: str, text: str, **kw: Any
) -> dict[str, Any]:
    token = upload(client, tenant, type, text, **kw)
    return wait(client, tenant, f"/v1/import/{token}")


def results(body: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in body["results"].items() if v}


BASE = {
    "product_categories": "Name,Group,Rule Set\nLaptop PC,Computer,physical_asset\n"
    "Server,Computer,Server\n",
    "teams": "Name,Source,Source ID\nOps,HR,t1\nDesk,HR,t2\n",
    "sites": "Name,City\nAmsterdam,Amsterdam\nBerlin,Berlin\n",
    "products": "Name,Brand,Category,Support Team\nLatitude 7440,Dell,computer/laptop_pc,Ops\n"
    "PowerEdge,Dell,Server,Desk\n",
}


def seed(client: httpx.Client, tenant: Tenant) -> None:
    for type, text in BASE.items():
        body = run_import(client, tenant, type, text)
        assert body["state"] == "done" and body["results"]["failures"] == 0, body


def cis(server: Server, tenant: Tenant) -> list[m.ConfigurationItem]:
    async def query(session: Any) -> list[m.ConfigurationItem]:
        found = await session.scalars(
            select(m.ConfigurationItem)
            .where(m.ConfigurationItem.account_id == tenant.slug)
            .order_by(m.ConfigurationItem.id)
        )
        return list(found)

    return list(server.run(query))


def test_every_type_imports(client, tenant) -> None:
    seed(client, tenant)
    for type, text in {
        "organizations": "Name,Parent\nWidget,\nWidget IT,Widget\n",
        "people": "Name,Primary Email,Organization,Site\nAda,ada@x.test,Widget IT,Berlin\n",
        "services": "Name,Provider,Support Team,Impact\nEmail,Widget IT,Ops,High\n",
        "cis": "Name,Product,Status,Site\nlaptop-1,Latitude 7440,In Production,Amsterdam\n",
    }.items():
        body = run_import(client, tenant, type, text)
        assert body["state"] == "done", body
        assert body["results"]["failures"] == 0, body["log"]
    listed = client.get("/v1/import", headers=tenant.auth).json()
    assert {i["type"] for i in listed} >= {"teams", "people", "cis"}


def test_cis_defaults_labels_matching_and_counts(client, server, tenant) -> None:
    seed(client, tenant)
    text = (
        "Source,Source ID,Name,Product,Status,Serial Number\n"
        "SCCM,1,one,Latitude 7440,in_production,S1\n"
        "SCCM,2,two,Latitude 7440,in_stock,S2\n"
        "SCCM,3,three,PowerEdge,In Production,\n"
    )
    body = run_import(client, tenant, "cis", text)
    assert results(body) == {"created": 3}, body
    made = cis(server, tenant)
    assert [c.label for c in made] == ["CI00001", "CI00002", "CI00001"]  # per category
    assert made[0].support_team_id is not None and made[0].rule_set == "physical_asset"
    # again: by Source + Source ID; one line changes, two do not
    body = run_import(client, tenant, "cis", text.replace("in_stock", "installed"))
    assert results(body) == {"updated": 1, "unchanged": 2}, body
    # by ID, and by label (the natural key)
    ident, label = made[0].id, made[1].label
    body = run_import(client, tenant, "cis", f"ID,Name\n{ident},renamed\n", encoding="utf-8")
    assert results(body) == {"updated": 1}, body
    body = run_import(client, tenant, "cis", f"Label,Remarks\n{label},hello\nNEW1,\n")
    assert body["results"]["updated"] == 1 and body["results"]["failures"] == 1, body
    assert body["log"][0]["line"] == 3  # NEW1 needs a product and a status
    assert len(cis(server, tenant)) == 3


def test_imported_cis_are_audited_one_event_each_in_sequence(client, server, tenant) -> None:
    seed(client, tenant)
    text = "Source,Source ID,Name,Product,Status,Serial Number\n" + "".join(
        f"SCCM,{n},host-{n},Latitude 7440,in_production,S{n}\n" for n in range(5)
    )
    assert results(run_import(client, tenant, "cis", text)) == {"created": 5}
    made = cis(server, tenant)
    lines = client.get(f"/v1/cis/{made[0].id}/audit", headers=tenant.auth).json()
    assert [line["action"] for line in lines] == ["create"]
    changes = lines[0]["changes"]
    assert changes["name"] == [None, "host-0"] and changes["serial_nr"] == [None, "S0"]
    assert changes["label"] == [None, made[0].label] and "disabled" not in changes
    body = run_import(client, tenant, "cis", text.replace("host-1,", "renamed,"))
    assert results(body) == {"updated": 1, "unchanged": 4}, body
    lines = client.get(f"/v1/cis/{made[1].id}/audit", headers=tenant.auth).json()
    assert lines[0]["action"] == "update" and lines[0]["changes"] == {"name": ["host-1", "renamed"]}

    async def events(session: Any) -> list[tuple[int, str, str]]:
        from landmark.core.events import Event

        rows = await session.execute(
            select(Event.seq, Event.type, Event.subject_id)
            .where(Event.account_id == tenant.slug, Event.subject_type == "ci")
            .order_by(Event.seq)
        )
        return list(rows.tuples())

    found = server.run(events)
    assert [(t, int(s)) for _, t, s in found] == [("ci.create", c.id) for c in made] + [
        ("ci.update", made[1].id)
    ]
    assert [seq for seq, _, _ in found] == list(range(found[0][0], found[0][0] + 6))


def test_generated_labels_skip_labels_taken_in_other_categories(client, server, tenant) -> None:
    seed(client, tenant)

    def labelled(label: str, product: str) -> None:
        text = f"Label,Name,Product,Status\n{label},{label},{product},in_production\n"
        assert results(run_import(client, tenant, "cis", text)) == {"created": 1}

    def unlabelled(count: int, product: str) -> list[str | None]:
        text = "Name,Product,Status\n" + f"x,{product},in_production\n" * count
        assert results(run_import(client, tenant, "cis", text)) == {"created": count}
        return [c.label for c in cis(server, tenant)[-count:]]

    labelled("CI00002", "PowerEdge")  # a server holds the laptops' second label
    assert unlabelled(3, "Latitude 7440") == ["CI00001", "CI00003", "CI00004"]
    labelled("S8", "PowerEdge")  # servers now count S8, S9, S10, ... (the width grows)
    labelled("S10", "Latitude 7440")
    assert unlabelled(2, "PowerEdge") == ["S9", "S11"]


def test_references_by_name_id_and_source(client, server, tenant) -> None:
    seed(client, tenant)
    team = "Support Team"
    text = (
        f"Name,Product,Status,{team},{team} ID,{team} Source,{team} Source ID\n"
        "a,Latitude 7440,in_production,Desk,,,\n"
        "b,Latitude 7440,in_production,,,HR,t2\n"
    )
    body = run_import(client, tenant, "cis", text)
    assert results(body) == {"created": 2}, body
    made = cis(server, tenant)
    assert made[0].support_team_id == made[1].support_team_id
    ident = made[0].support_team_id
    text = f"Name,Product,Status,Support Team ID\nc,Latitude 7440,in_production,{ident}\n"
    assert results(run_import(client, tenant, "cis", text)) == {"created": 1}


def test_broken_lines_fail_alone(client, server, tenant, other_tenant) -> None:
    seed(client, tenant)
    seed(client, other_tenant)
    text = (
        "Name,Product,Status,Number of Cores,Support Team,Support Team ID\n"
        "good1,Latitude 7440,in_production,2,,\n"
        "bad-int,Latitude 7440,in_production,many,,\n"
        f"{'x' * 200},Latitude 7440,in_production,,,\n"
        "bad-enum,Latitude 7440,flying,,,\n"
        "bad-ref,No Such Product,in_production,,,\n"
        "other-account,Latitude 7440,in_production,,,999999\n"
        "good2,PowerEdge,in_production,,Ops,\n"
    )
    body = run_import(client, tenant, "cis", text)
    assert body["state"] == "done"
    assert results(body) == {"created": 2, "failures": 5}, body["log"]
    lines = {entry["line"]: entry for entry in body["log"]}
    assert set(lines) == {3, 4, 5, 6, 7}
    assert lines[3]["column"] == "Number of Cores"
    assert lines[4]["column"] == "Name" and "too long" in lines[4]["message"]
    assert lines[5]["column"] == "Status"
    assert lines[6]["column"] == "Product"
    assert lines[7]["column"] == "Support Team ID"


def test_reference_to_another_accounts_record_fails(client, server, tenant, other_tenant) -> None:
    seed(client, tenant)
    seed(client, other_tenant)

    async def team_id(session: Any) -> int:
        return int(
            await session.scalar(select(m.Team.id).where(m.Team.account_id == other_tenant.slug))
        )

    foreign = server.run(team_id)
    text = f"Name,Product,Status,Support Team ID\nx,Latitude 7440,in_production,{foreign}\n"
    body = run_import(client, tenant, "cis", text)
    assert results(body) == {"failures": 1}, body


def test_utf16_tsv_and_duplicate_serials(client, server, tenant) -> None:
    seed(client, tenant)
    text = "Name\tProduct\tStatus\tSerial Number\nü1\tLatitude 7440\tin_production\tSN\n"
    text += "ü2\tLatitude 7440\tin_production\tsn\n"
    body = run_import(client, tenant, "cis", "\ufeff" + text, encoding="utf-16-le")
    assert results(body) == {"created": 1, "failures": 1}, body
    assert body["log"][0]["column"] == "Serial Number"
    assert cis(server, tenant)[0].name == "ü1"
    body = run_import(client, tenant, "cis", text, encoding="utf-16-le")  # no BOM
    assert results(body) == {"failures": 2}, body  # both serials are taken now


def test_bad_encoding_ends_in_error(client, tenant) -> None:
    token = upload(client, tenant, "teams", "Name\n")
    assert wait(client, tenant, f"/v1/import/{token}")["state"] == "done"
    files = {"file": ("t.csv", b"Name\nok\n\xff\xfe\xfa bad\n", "text/csv")}
    response = client.post("/v1/import", data={"type": "teams"}, files=files, headers=tenant.auth)
    body = wait(client, tenant, f"/v1/import/{response.json()['token']}")
    assert body["state"] == "error" and "line" in body["message"], body


def test_ci_relations_replace_by_source(client, server, tenant) -> None:
    seed(client, tenant)
    text = "Label,Name,Product,Status\nA1,a,PowerEdge,in_production\nB1,b,PowerEdge,in_production\n"
    text += "C1,c,PowerEdge,in_production\nD1,d,PowerEdge,in_production\n"
    assert results(run_import(client, tenant, "cis", text)) == {"created": 4}
    first = "CI,Related CI,Relation Type,Source\nA1,B1,child,NNM\nA1,C1,child,NNM\nD1,A1,child,\n"
    assert results(run_import(client, tenant, "ci_relations", first)) == {"created": 3}
    second = "CI,Related CI,Relation Type,Source\nA1,B1,child,NNM\nA1,D1,child,NNM\n"
    body = run_import(client, tenant, "ci_relations", second)
    assert results(body) == {"created": 1, "unchanged": 1, "deleted": 1}, body

    async def pairs(session: Any) -> set[tuple[int, int]]:
        rows = await session.execute(
            select(m.CIRelation.ci_id, m.CIRelation.child_id).where(
                m.CIRelation.account_id == tenant.slug
            )
        )
        return set(rows.tuples())

    by_label = {c.label: c.id for c in cis(server, tenant)}
    assert server.run(pairs) == {
        (by_label["A1"], by_label["B1"]),
        (by_label["A1"], by_label["D1"]),
        (by_label["D1"], by_label["A1"]),
    }


def test_export_round_trip(client, server, tenant) -> None:
    seed(client, tenant)
    text = "Name,Product,Status,Serial Number,In Use Since,Site\n"
    text += "r1,Latitude 7440,in_production,R1,2024-01-02,Berlin\nr2,PowerEdge,in_stock,,,\n"
    assert results(run_import(client, tenant, "cis", text)) == {"created": 2}
    response = client.post("/v1/export", json={"type": "cis"}, headers=tenant.auth)
    assert response.status_code == 200, response.text
    body = wait(client, tenant, f"/v1/export/{response.json()['token']}")
    assert body["state"] == "done" and body["url"].startswith("http")
    csv_text = client.get(urlsplit(body["url"]).path, headers=tenant.auth).text
    assert csv_text.splitlines()[0].startswith("ID,Source,Source ID")
    body = run_import(client, tenant, "cis", csv_text)
    assert results(body) == {"unchanged": 2}, body
    # several types: a zip; nothing changed since a later time: 204
    response = client.post(
        "/v1/export", data={"type": "teams,products,ci_relations"}, headers=tenant.auth
    )
    body = wait(client, tenant, f"/v1/export/{response.json()['token']}")
    archive = zipfile.ZipFile(
        io.BytesIO(client.get(urlsplit(body["url"]).path, headers=tenant.auth).content)
    )
    assert sorted(archive.namelist()) == ["ci_relations.csv", "products.csv", "teams.csv"]
    later = client.post(
        "/v1/export", json={"type": "cis", "from": "2999-01-01T00:00:00Z"}, headers=tenant.auth
    )
    assert later.status_code == 204


def test_tokens_of_another_account_and_permissions(client, tenant, other_tenant) -> None:
    token = upload(client, tenant, "teams", "Name\nT\n")
    assert client.get(f"/v1/import/{token}", headers=other_tenant.auth).status_code == 404
    export = client.post("/v1/export", json={"type": "teams"}, headers=tenant.auth).json()
    wait(client, tenant, f"/v1/export/{export['token']}")
    for path in (f"/v1/export/{export['token']}", f"/v1/export/{export['token']}/download"):
        assert client.get(path, headers=other_tenant.auth).status_code == 404
    member = tenant.add_user(client, "member")
    files = {"file": ("t.csv", b"Name\nT\n", "text/csv")}
    denied = client.post("/v1/import", data={"type": "teams"}, files=files, headers=member["auth"])
    assert denied.status_code == 403 and "message" in denied.json()
    assert client.get("/v1/import", headers=member["auth"]).status_code == 403


def test_resume_after_a_crash(client, server, tenant) -> None:
    """A crash after the first chunk: the re-run starts after it; no line is applied twice."""
    seed(client, tenant)
    lines = "".join(f"SCCM,{n},n{n},PowerEdge,in_production,SER{n}\n" for n in range(25))
    content = ("Source,Source ID,Name,Product,Status,Serial Number\n" + lines).encode()

    class Crash(Exception):
        pass

    async def crash_after_first_chunk(session: Any) -> dict[str, Any]:
        from landmark.core.events import SYSTEM

        imp, job = await imports.start(session, tenant.slug, SYSTEM, "cis", content, "x.csv")
        await session.commit()
        saved: list[dict[str, Any]] = []

        async def checkpoint(progress: dict[str, Any]) -> None:
            job.progress = progress
            await session.commit()
            saved.append(progress)
            raise Crash

        try:
            await imports.execute(session, imp, {}, checkpoint, chunk=10)
        except Crash:
            await session.rollback()
        assert saved[0]["line"] == 11 and saved[0]["created"] == 10
        result = await imports.execute(session, imp, saved[0], _commit(session), chunk=10)
        return result

    def _commit(session: Any) -> Any:
        async def checkpoint(progress: dict[str, Any]) -> None:
            await session.commit()

        return checkpoint

    result = server.run(crash_after_first_chunk)
    assert result["created"] == 25 and result["failures"] == 0, result
    assert len(cis(server, tenant)) == 25


def test_worker_gives_up_with_error(server, tenant, client) -> None:
    """An import whose job keeps failing ends `error` with a message, never `processing`."""

    async def broken(session: Any) -> int:
        from landmark.core.events import SYSTEM

        imp, job = await imports.start(session, tenant.slug, SYSTEM, "cis", b"Name\nx\n", None)
        job.state, job.attempts, job.error = "failed", 3, "OperationalError: database is gone"
        return imp.id

    server.run(broken)
    listed = client.get("/v1/import", headers=tenant.auth).json()
    assert listed[0]["state"] == "error" and "database" in listed[0]["message"]


def test_cli_import(client, server, tenant, database_url, tmp_path) -> None:
    seed(client, tenant)
    path = tmp_path / "cis.csv"
    path.write_text(
        "Name,Product,Status\ncli-1,PowerEdge,in_production\ncli-2,Nope,in_production\n"
    )
    environment = {**os.environ, "LANDMARK_DATABASE_URL": database_url}
    done = subprocess.run(
        [LANDMARK, "import", "--account", tenant.slug, "--type", "cis", str(path)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout and "line 3" in done.stdout, done.stdout
    assert [c.name for c in cis(server, tenant)] == ["cli-1"]

"""The LeanIX GraphQL API on a large inventory: a filtered page with relations and tags, and
updateFactSheet throughput.

Figures (issue 4), on PostgreSQL with 200,000 fact sheets and 1,000,000 relations:
- `allFactSheets(first: 100)` with a type facet, a tag facet and full-text search, returning each
  node's relations and tags: median under 50 ms, statement count constant in the page size;
- `updateFactSheet` with 5 patches: 500 per second or more with `landmark serve --workers 2`.

Starts `landmark serve --workers 2` on a free port over LANDMARK_DATABASE_URL (e.g.
postgresql://postgres@127.0.0.1:5432/landmark_bench; the database must exist) or, when unset, a
fresh SQLite file with fewer rows (--rows and --relations override). `landmark init --json` makes
an account; the inventory is then written straight into the tables by set-based SQL (INSERT ...
SELECT over a generated series): half Applications, half ITComponents, names with one of five
words, 20 tags (one per fact sheet), and `--relations` relApplicationToITComponent relations
spread over the Applications. The statement count is measured in-process (a listener on the
engine of an app made by create_app); timings go over HTTP to the served workers. The
machine's speed (`machine_speed`, a fixed Python loop) is printed before and after: shared hosts
drift, and the figures with them.

Run: .venv/bin/python bench/graphql_inventory.py [--rows N] [--relations N] [--repeat 30]
     [--duration 10] [--connections 8] [--keep FILE]
(--keep FILE: the first run writes its account there, later runs over the same database reuse it.)
"""

import argparse
import asyncio
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, text

sys.path.insert(0, str(Path(__file__).parent))
from me_throughput import (  # noqa: E402
    free_port,
    landmark_env,
    machine_speed,
    stop,
    wait_ready,
    wrk_script,
)

from landmark.core.db import create_engine  # noqa: E402

LANDMARK = str(Path(sys.executable).parent / "landmark")
URL = "/services/pathfinder/v1/graphql"
TAGS = 20
PAGE = """query($first: Int!, $tag: String!) {
  allFactSheets(first: $first, filter: {fullTextSearch: "billing", facetFilters: [
      {facetKey: "FactSheetTypes", operator: OR, keys: ["Application"]},
      {facetKey: "Tags", operator: OR, keys: [$tag]}]}) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id name type tags { id name }
      ... on Application { relApplicationToITComponent { totalCount edges { node {
        id activeFrom factSheet { id name type } } } } } } } } }"""
# Tag 2 is on Applications n = 1 (mod 20), all named with "billing" (n % 5 = 1): the page's
# filter matches 5,000 of 200,000 fact sheets.
PAGE_TAG = 2
UPDATE = """mutation($id: ID!, $patches: [Patch]!) {
  updateFactSheet(id: $id, patches: $patches) { factSheet { id rev } } }"""


# --- data ---------------------------------------------------------------------------------------


class Dialect:
    """The SQL pieces that differ: a series 1..n, a UUID from (kind, number), literals."""

    def __init__(self, name: str) -> None:
        self.postgres = name == "postgresql"
        if self.postgres:
            self.series = "SELECT i FROM generate_series(1::bigint, :n) AS g(i)"
            self.json, self.now = "'{}'::jsonb", "now()"
            self.word = "(ARRAY['payments','billing','crm','logistics','hr'])[s.i % 5 + 1]"
        else:
            self.series = (
                "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < :n)"
                " SELECT i FROM g"
            )
            self.json, self.now = "'{}'", "strftime('%Y-%m-%d %H:%M:%f', 'now')"
            self.word = (
                "CASE s.i % 5 WHEN 0 THEN 'payments' WHEN 1 THEN 'billing' WHEN 2 THEN 'crm'"
                " WHEN 3 THEN 'logistics' ELSE 'hr' END"
            )

    def uuid(self, kind: int, number: str) -> str:
        prefix = RUN << 4 | kind
        if self.postgres:
            return f"(lpad(to_hex({prefix}), 8, '0') || lpad(to_hex({number}), 24, '0'))::uuid"
        return f"printf('%08x%024x', {prefix}, {number})"  # SQLAlchemy's Uuid on SQLite: 32 hex

    def tag_ids(self, number: str) -> str:
        """The JSON list of one tag's id (text form), as a fact sheet's `tag_ids` holds it."""
        if self.postgres:
            return f"jsonb_build_array(({self.uuid(3, number)})::text)"
        return f"json_array(printf('%08x-0000-0000-0000-%012x', {RUN << 4 | 3}, {number}))"


RUN = random.randrange(1, 1 << 24)  # in every id: runs over one database never collide
# In every updated value: each update changes its fact sheet (one that changes nothing writes
# nothing), also when the bench runs again over a kept inventory.
STAMP = random.randrange(1, 1 << 30)


def fact_sheet_id(kind: int, number: int) -> str:
    """Kind 1: Application n, 2: ITComponent n, 3: tag n (as the SQL makes them)."""
    return str(uuid.UUID(f"{RUN << 4 | kind:08x}{number:024x}"))


def page_body(first: int) -> dict[str, Any]:
    """The measured page's request: PAGE over the tag PAGE_TAG."""
    return {"query": PAGE, "variables": {"first": first, "tag": fact_sheet_id(3, PAGE_TAG)}}


def _statements(d: Dialect) -> list[tuple[str, str]]:
    """(statement, what it writes); parameters :account, :half, :n (per statement)."""
    rows = f"FROM ({d.series}) AS s"
    # Application n has tag (n % TAGS + 1), in its `tag_ids` and in eam_fact_sheet_tags.
    tag_of = {1: d.tag_ids(f"(s.i % {TAGS} + 1)"), 2: "'[]'"}
    fact_sheets = [
        (
            "INSERT INTO eam_fact_sheets (id, account_id, type, name, display_name, full_name,"
            " status, level, rev, completion, fields, phase_dates, tag_ids, created_at,"
            f" updated_at) SELECT {d.uuid(kind, 's.i')}, :account, '{type_name}', name, name,"
            f" name, 'ACTIVE', 1, 1, 0, {d.json}, {d.json}, {tag_of[kind]}, {d.now}, {d.now}"
            f" FROM (SELECT s.i, '{prefix} ' || s.i || ' ' || {d.word} AS name {rows}) AS s",
            "half",
        )
        for kind, type_name, prefix in ((1, "Application", "App"), (2, "ITComponent", "Server"))
    ]
    tags = (
        "INSERT INTO eam_tags (id, account_id, name, status)"
        f" SELECT {d.uuid(3, 's.i')}, :account, 'tag-' || s.i, 'ACTIVE' {rows}",
        "tags",
    )
    tagged = (
        "INSERT INTO eam_fact_sheet_tags (account_id, fact_sheet_id, tag_id)"
        f" SELECT :account, {d.uuid(1, 's.i')}, {d.uuid(3, f'(s.i % {TAGS} + 1)')} {rows}",
        "half",
    )
    # Relation r: Application (r % half + 1) -> ITComponent ((r * 7919) % half + 1).
    relations = (
        "INSERT INTO eam_relations (id, account_id, type, from_id, to_id, active_from, fields,"
        " status, created_at, updated_at)"
        f" SELECT {d.uuid(4, 's.i')}, :account, 'relApplicationToITComponent',"
        f" {d.uuid(1, '(s.i % :half + 1)')}, {d.uuid(2, '((s.i * 7919) % :half + 1)')},"
        f" '2024-01-01', {d.json}, 'ACTIVE', {d.now}, {d.now} {rows}",
        "relations",
    )
    return [*fact_sheets, tags, tagged, relations]


async def generate(url: str, account: str, rows: int, relations: int) -> None:
    """The inventory, written by set-based SQL straight into the tables."""
    engine = create_engine(url)
    dialect = Dialect(engine.dialect.name)
    sizes = {"half": rows // 2, "tags": TAGS, "relations": relations}
    async with engine.begin() as connection:
        for statement, size in _statements(dialect):
            params = {"account": account, "half": rows // 2, "n": sizes[size]}
            await connection.execute(text(statement), params)
    if dialect.postgres:  # as after any bulk load: statistics, and hint bits set once, not by
        # the first reads and writes of the measurement (updates ran at 190/s instead of ~750)
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("eam_fact_sheets", "eam_relations", "eam_fact_sheet_tags", "eam_tags"):
                await connection.execute(text(f"VACUUM ANALYZE {table}"))
    await engine.dispose()


# --- the page -------------------------------------------------------------------------------------


async def statement_count(env: dict[str, str], token: str, first: int) -> int:
    """Statements of one page request, in-process (the served workers are other processes)."""
    from landmark.app import create_app
    from landmark.settings import Settings

    settings = Settings(
        _env_file=None,
        database_url=env["LANDMARK_DATABASE_URL"],
        worker_in_process=False,
        rate_limit=10**9,
        log_level="WARNING",  # the bench prints figures, not the in-process app's request logs
    )  # type: ignore[call-arg]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await known_versions(app)
        seen: list[str] = []
        engine = app.state.engine.sync_engine
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            body = page_body(first)
            headers = {"Authorization": f"Bearer {token}"}
            for _ in range(2):  # warm; the first request on a new inventory stores the
                # standard data model, whose version the next request then reads once
                (await http.post(URL, json=body, headers=headers)).raise_for_status()
            listener = lambda *args: seen.append(args[2])  # noqa: E731
            reads = app.state.reads  # on PostgreSQL its own asyncpg pool, unseen by the engine
            fetch = reads._fetch

            async def count_reads(statement: Any, params: Any, first: bool) -> Any:
                if reads.dsn is not None:
                    seen.append(str(statement))
                return await fetch(statement, params, first)

            event.listen(engine, "before_cursor_execute", listener)
            reads._fetch = count_reads
            answer = (await http.post(URL, json=body, headers=headers)).json()
            event.remove(engine, "before_cursor_execute", listener)
            del reads._fetch
    assert answer["errors"] is None, answer["errors"]
    shown = len(answer["data"]["allFactSheets"]["edges"])
    assert shown == first, f"{shown} fact sheets on the page: the count would prove nothing"
    return len(seen)


async def known_versions(app: Any) -> None:
    """On PostgreSQL, until the app hears data model changes (it then reads no version per
    request, as served workers do once started): counts taken before would include that read."""
    if not app.state.settings.resolved_database_url.startswith("postgresql"):
        return
    for _ in range(500):
        if app.state.model_versions.listening:
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("the app does not listen for data model changes")


def page_median(base: str, token: str, repeat: int) -> tuple[float, dict[str, Any]]:
    body = page_body(100)
    times, answer = [], {}
    with httpx.Client(
        base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        for i in range(repeat + 3):
            start = time.perf_counter()
            response = http.post(URL, json=body)
            if i >= 3:  # the first requests warm each worker
                times.append((time.perf_counter() - start) * 1000)  # the whole answer received
            answer = response.json()  # decoding it is the client's time, not the server's
    assert answer["errors"] is None, answer["errors"]
    return statistics.median(times), answer["data"]["allFactSheets"]


def wrk_page_median(base: str, token: str, duration: int) -> float:
    """The same page from wrk over one connection: the median latency it reports (ms)."""
    body = json.dumps(page_body(100))
    script = f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
    script += 'wrk.headers["Content-Type"] = "application/json"\n'
    out = wrk_script(script, base + URL, token, duration, connections=1)
    value, unit = re.search(r"\s50%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


# --- updates --------------------------------------------------------------------------------------


def five_patches(n: int) -> list[dict[str, str]]:
    return [
        {"op": "replace", "path": "/description", "value": f"Bench update {STAMP}-{n}"},
        {"op": "replace", "path": "/alias", "value": f"alias-{STAMP}-{n}"},
        {
            "op": "replace",
            "path": "/businessCriticality",
            "value": random.choice(["businessCritical", "missionCritical"]),
        },
        {
            "op": "replace",
            "path": "/functionalSuitability",
            "value": random.choice(["appropriate", "perfect"]),
        },
        {
            "op": "replace",
            "path": "/technicalSuitability",
            "value": random.choice(["adequate", "fullyAppropriate"]),
        },
    ]


async def update_throughput(
    base: str, token: str, half: int, duration: float, connections: int
) -> tuple[float, int, int]:
    done, failed = 0, 0
    until = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {token}"}

    async def client(http: httpx.AsyncClient, worker: int) -> None:
        nonlocal done, failed
        n = 0
        while time.perf_counter() < until:
            n += 1
            target = fact_sheet_id(1, (STAMP + worker * 100_003 + n * 7) % half + 1)
            variables = {"id": target, "patches": five_patches(n)}
            response = await http.post(URL, json={"query": UPDATE, "variables": variables})
            ok = response.status_code == 200 and response.json()["errors"] is None
            done, failed = (done + 1, failed) if ok else (done, failed + 1)

    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http, w) for w in range(connections)))
        elapsed = time.perf_counter() - start
    return done / elapsed, done, failed


WRK_UPDATES = """
-- updateFactSheet with five patches, on Applications spread over the table; counts answers
-- that carry GraphQL errors as failures (wrk itself counts only HTTP errors).
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function() failed = 0 end
local prefix, half, stamp = PREFIX, HALF, STAMP
local n = stamp % half  -- each run starts elsewhere, and writes values no run wrote before
math.randomseed(stamp)
local query = QUERY
local function pick(a, b) if math.random() < 0.5 then return a end return b end
request = function()
  n = n + 1
  local id = string.format("%08x-0000-0000-0000-%012x", prefix, (n * 7919) % half + 1)
  local patches = string.format(
    '[{"op":"replace","path":"/description","value":"Bench update %d-%d"},' ..
    '{"op":"replace","path":"/alias","value":"alias-%d-%d"},' ..
    '{"op":"replace","path":"/businessCriticality","value":"%s"},' ..
    '{"op":"replace","path":"/functionalSuitability","value":"%s"},' ..
    '{"op":"replace","path":"/technicalSuitability","value":"%s"}]',
    stamp, n, stamp, n, pick("businessCritical", "missionCritical"), pick("appropriate", "perfect"),
    pick("adequate", "fullyAppropriate"))
  local body = string.format(
    '{"query":%s,"variables":{"id":"%s","patches":%s}}', query, id, patches)
  wrk.headers["Content-Type"] = "application/json"  -- with -H Authorization
  return wrk.format("POST", PATH, nil, body)
end
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"errors":null', 1, true) then failed = failed + 1 end
end
done = function(summary, latency, requests)
  local errors = 0
  for _, thread in ipairs(threads) do errors = errors + thread:get("failed") end
  io.write(string.format("graphql errors: %d\\n", errors))
end
"""


def wrk_updates(
    base: str, token: str, half: int, duration: float, connections: int
) -> tuple[float, int, int]:
    """The same updates driven by wrk (a Lua script), which leaves the cores to the server."""
    script = WRK_UPDATES.replace("PREFIX", str(RUN << 4 | 1)).replace("HALF", str(half))
    script = script.replace("STAMP", str(STAMP))
    script = script.replace("QUERY", json.dumps(json.dumps(UPDATE)))
    script = script.replace("PATH", json.dumps(URL))
    out = wrk_script(script, base, token, int(duration), connections)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    failed = int(re.search(r"graphql errors: (\d+)", out).group(1))  # type: ignore[union-attr]
    return rate, requests - failed, failed


# --- main -------------------------------------------------------------------------------------


def init(env: dict[str, str], tmp: str) -> tuple[str, str]:
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    args = f"init --account {slug} --name Bench --admin-email admin@{slug}.example"
    args += " --admin-password bench-password-123 --json"
    out = subprocess.run(
        [LANDMARK, *args.split()], env=env, cwd=tmp, capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(f"landmark init failed: {out.stderr}")
    return slug, json.loads(out.stdout.strip().splitlines()[-1])["api_token"]


def report_page(env: dict[str, str], base: str, token: str, repeat: int) -> None:
    counts = [asyncio.run(statement_count(env, token, first)) for first in (10, 100)]
    median, page = page_median(base, token, repeat)
    print("allFactSheets(first: 100), type + tag facets + full text, relations and tags:")
    print(
        f"  median {median:.1f} ms from httpx (target < 50 ms); {page['totalCount']:,} matches,"
        f" {len(page['edges'])} on the page"
    )
    if shutil.which("wrk"):
        print(f"  median {wrk_page_median(base, token, 10):.1f} ms from wrk, one connection")
    print(f"  SQL statements: {counts[0]} for first: 10, {counts[1]} for first: 100")


async def updates_written(url: str) -> int:
    """FACT_SHEET_UPDATED events in the database: an answered update that changed nothing
    wrote none, and would flatter the rate."""
    engine = create_engine(url)
    async with engine.connect() as connection:
        query = text("SELECT count(*) FROM events WHERE type = 'FACT_SHEET_UPDATED'")
        count = await connection.scalar(query)
    await engine.dispose()
    return int(count or 0)


def report_updates(
    env: dict[str, str], base: str, token: str, half: int, arguments: argparse.Namespace
) -> None:
    duration, connections = arguments.duration, arguments.connections
    before = asyncio.run(updates_written(env["LANDMARK_DATABASE_URL"]))
    if shutil.which("wrk"):
        rate, done, failed = wrk_updates(base, token, half, duration, connections)
        driver = "wrk"
    else:
        run = update_throughput(base, token, half, duration, connections)
        rate, done, failed = asyncio.run(run)
        driver = "httpx (no wrk on this machine)"
    print(f"updateFactSheet, 5 patches, --workers 2, {connections} connections, {driver}:")
    written = asyncio.run(updates_written(env["LANDMARK_DATABASE_URL"])) - before
    print(
        f"  {rate:.0f} per second (target >= 500); {done:,} done, {failed:,} failed,"
        f" {written:,} written"
    )


def inventory(env: dict[str, str], tmp: str, rows: int, relations: int, keep: str) -> str:
    """A token of an account holding the inventory: the one `keep` names (a file written by an
    earlier run over the same database), or a new one."""
    kind = "postgresql" if env["LANDMARK_DATABASE_URL"].startswith("postgresql") else "sqlite"
    if keep and Path(keep).exists():
        kept = json.loads(Path(keep).read_text())
        if kept["database"] != env["LANDMARK_DATABASE_URL"]:
            raise SystemExit(f"{keep} holds an inventory of {kept['database']}")
        global RUN
        RUN = kept["run"]
        print(f"{kind}: the inventory of account {kept['account']} ({keep})")
        return str(kept["token"])
    account, token = init(env, tmp)
    start = time.perf_counter()
    asyncio.run(generate(env["LANDMARK_DATABASE_URL"], account, rows, relations))
    took = time.perf_counter() - start
    print(f"{kind}: {rows:,} fact sheets, {relations:,} relations written in {took:.1f} s")
    if keep:
        kept = {"database": env["LANDMARK_DATABASE_URL"], "account": account, "token": token}
        Path(keep).write_text(json.dumps({**kept, "run": RUN}))
    return token


def main(arguments: argparse.Namespace) -> None:
    tmp = tempfile.mkdtemp()
    env = landmark_env(tmp, "WARNING")
    env["LANDMARK_DATABASE_URL"] = env["LANDMARK_DATABASE_URL"].replace(
        "postgresql://", "postgresql+asyncpg://"
    )
    postgres = env["LANDMARK_DATABASE_URL"].startswith("postgresql")
    rows = arguments.rows or (200_000 if postgres else 20_000)
    relations = arguments.relations or (1_000_000 if postgres else 100_000)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [LANDMARK, "serve", "--workers", "2", "--port", str(port)], env=env, cwd=tmp
    )
    try:
        wait_ready(base, server)
        token = inventory(env, tmp, rows, relations, arguments.keep)
        before = machine_speed()
        if arguments.only in ("", "page"):
            report_page(env, base, token, arguments.repeat)
        if arguments.only in ("", "updates"):
            report_updates(env, base, token, rows // 2, arguments)
        print(
            f"machine: 10M Python additions took {before:.2f} s before, {machine_speed():.2f} after"
        )
    finally:
        stop(server)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--relations", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--only", choices=("page", "updates"), default="")
    parser.add_argument(
        "--keep", default="", help="a file: reuse the inventory it names, or write it there"
    )
    main(parser.parse_args())

"""CMDB read figures over HTTP, against `landmark serve --workers 2` on a generated database.

Figures (issue): "On PostgreSQL with 1,000,000 CIs (and their products, teams, sites):
`GET /v1/cis/:id` and a filtered, sorted list (`per_page=100`, status and support team filters,
sort by label): median under 10 ms for a single client; page 5,000 through a cursor as fast as
page 1. `GET /v1/cis/:id` at 1,500 requests/s or more with `landmark serve --workers 2`. On the
embedded SQLite default with 100,000 CIs: the same list under 20 ms median."

Uses the database and account saved by bench/cmdb_data.py (--data), or generates them first
(--generate N). Single client: httpx, keep-alive, sequential, --requests per figure after a
warm-up. The deep cursor is built the way core/query.py encodes one, from the row before page
5,000 (one SQL query), and checked against `page=5000`. Throughput: wrk, a Lua script rotating
over random ids.

Run: LANDMARK_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/landmark_bench \
       .venv/bin/python bench/cmdb_queries.py --generate 1000000 --data var/cmdb_pg.json
     .venv/bin/python bench/cmdb_queries.py --data var/cmdb_pg.json     # reuse it
     .venv/bin/python bench/cmdb_queries.py --generate 100000           # SQLite
"""

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from me_throughput import LANDMARK, free_port, stop, wait_ready, wrk_script
from sqlalchemy import text

from landmark.core.db import create_engine
from landmark.core.query import encode_cursor

DEEP_PAGE = int(os.environ.get("DEEP_PAGE", "5000"))
LIST = "/v1/cis?status=in_production&support_team={team}&sort=label&per_page=100"
ALL = "/v1/cis?sort=label&per_page=100"


async def sample(url: str, account: str, count: int) -> dict[str, Any]:
    """Random CI ids, a support team, and the row just before page DEEP_PAGE of ALL."""
    engine = create_engine(url)
    a = {"a": account}
    async with engine.connect() as conn:
        ids = (await conn.scalars(text("SELECT id FROM cis WHERE account_id = :a"), a)).all()
        team = await conn.scalar(
            text("SELECT support_team_id FROM cis WHERE account_id = :a LIMIT 1"), a
        )
        offset = (DEEP_PAGE - 1) * 100 - 1
        deep = (
            await conn.execute(
                text(
                    "SELECT label, id FROM cis WHERE account_id = :a AND hidden IS NULL"
                    " ORDER BY label, id LIMIT 1 OFFSET :o"
                ),
                {**a, "o": offset},
            )
        ).one()
    await engine.dispose()
    import random

    return {
        "ids": random.Random(2).sample(list(ids), min(count, len(ids))),
        "team": team,
        "cursor": encode_cursor(offset, list(deep)),
    }


def timed(http: httpx.Client, paths: list[str], warmup: int = 30) -> list[float]:
    for path in paths[:warmup]:
        http.get(path).raise_for_status()
    took = []
    for path in paths:
        started = time.perf_counter()
        response = http.get(path)
        took.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return took


def report(name: str, took: list[float], target: float | None) -> float:
    median = statistics.median(took)
    p95 = sorted(took)[int(len(took) * 0.95) - 1]
    verdict = "" if target is None else f"target < {target:.0f} ms: "
    verdict += "" if target is None else ("MET" if median < target else "MISSED")
    print(f"  {name:<44} median {median:7.2f} ms  p95 {p95:7.2f} ms  {verdict}")
    return median


def run_wrk(
    base: str, token: str, ids: list[int], duration: int, connections: int, threads: int
) -> str:
    script = f"ids = {{{','.join(map(str, ids))}}}\ni = 0\n"
    script += 'request = function()\n  i = i + 1\n  return wrk.format("GET", '
    script += '"/v1/cis/" .. ids[(i % #ids) + 1])\nend\n'
    return wrk_script(script, base, token, duration, connections, threads)


def measure(args: argparse.Namespace, data: dict[str, Any]) -> None:
    postgres = data["database_url"].startswith("postgresql")
    pg_target = 10.0 if postgres else None
    facts = asyncio.run(sample(data["database_url"], data["account"], args.requests))
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "LANDMARK_DATABASE_URL": data["database_url"]}
        env.update(LANDMARK_VAR_DIR=tmp, LANDMARK_RATE_LIMIT="100000000", LANDMARK_BASE_URL=base)
        env.update(LANDMARK_LOG_LEVEL="WARNING")
        serve = [LANDMARK, "serve", "--workers", "2", "--port", str(port)]
        with (Path(tmp) / "server.log").open("w") as log:
            server = subprocess.Popen(
                serve, env=env, stdout=log, stderr=log, start_new_session=True
            )
        try:
            wait_ready(base, server)
            auth = {"Authorization": f"Bearer {data['token']}"}
            with httpx.Client(base_url=base, headers=auth, timeout=60) as http:
                ids = facts["ids"]
                report("GET /v1/cis/:id", timed(http, [f"/v1/cis/{i}" for i in ids]), pg_target)
                listed = LIST.format(team=facts["team"])
                total = http.get(listed).headers["X-Pagination-Total-Entries"]
                print(f"  list: {listed} ({total} entries)")
                list_target = 10.0 if postgres else 20.0
                took = timed(http, [listed] * args.requests)
                report("  filtered, sorted list", took, list_target)
                total = http.get(ALL).headers["X-Pagination-Total-Entries"]
                print(f"  deep pages of {ALL} ({total} entries)")
                first = report("  page 1", timed(http, [ALL] * args.requests), None)
                deep = f"{ALL}&search_after={facts['cursor']}"
                check_deep(http, deep)
                cursor = report(f"  page {DEEP_PAGE} via cursor", timed(http, [deep] * 100), None)
                same = cursor <= max(first * 1.5, first + 2)
                print(f"    as fast as page 1 (within 1.5x or 2 ms): {'MET' if same else 'MISSED'}")
                offset = f"{ALL}&page={DEEP_PAGE}"
                took = timed(http, [offset] * 10, 1)
                report(f"  page {DEEP_PAGE} via page= (offset)", took, None)
            if args.duration:
                out = run_wrk(
                    base, data["token"], ids, 2, args.connections, args.threads
                )  # warm-up
                out = run_wrk(
                    base, data["token"], ids, args.duration, args.connections, args.threads
                )
                rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
                bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
                latency = " ".join(re.findall(r"^\s+((?:50|99)%\s+\S+)", out, re.M))
                verdict = "MET" if rps >= 1500 and not bad else "MISSED"
                print(
                    f"  wrk GET /v1/cis/:id, {args.threads} threads,"
                    f" {args.connections} connections, {args.duration} s:"
                    f" {rps:.0f} requests/s (target >= 1500: {verdict});"
                    f" non-2xx {bad.group(1) if bad else 0}; latency {latency}"
                )
        finally:
            stop(server)


def check_deep(http: httpx.Client, deep: str) -> None:
    """The cursor page is page DEEP_PAGE: same rows as ?page=DEEP_PAGE, and says so."""
    by_cursor = http.get(deep)
    by_offset = http.get(f"{ALL}&page={DEEP_PAGE}")
    same = [r["id"] for r in by_cursor.json()] == [r["id"] for r in by_offset.json()]
    page = by_cursor.headers["X-Pagination-Current-Page"]
    if not same or page != str(DEEP_PAGE):
        raise SystemExit(f"the deep cursor is wrong: same rows {same}, current page {page}")
    print(f"    cursor checked: same {len(by_cursor.json())} rows as page={DEEP_PAGE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="var/cmdb_bench.json", help="saved by cmdb_data.py")
    parser.add_argument("--generate", type=int, help="generate this many CIs first")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per figure")
    parser.add_argument("--duration", type=int, default=10, help="wrk seconds (0: skip wrk)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    args = parser.parse_args()
    if args.generate:
        generator = [sys.executable, str(Path(__file__).parent / "cmdb_data.py")]
        subprocess.run([*generator, "--cis", str(args.generate), "--out", args.data], check=True)
    data = json.loads(Path(args.data).read_text())
    global DEEP_PAGE
    DEEP_PAGE = min(DEEP_PAGE, data["cis"] // 100 - 1)  # 999 with 100,000 CIs
    load = os.getloadavg()
    print(
        f"CMDB reads: {data['cis']:,} CIs on {data['database_url'].split('+')[0]}, account "
        f"{data['account']}; `landmark serve --workers 2`; {os.cpu_count()} cores; load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} before the runs"
    )
    measure(args, data)


if __name__ == "__main__":
    main()

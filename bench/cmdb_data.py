"""Test data for the CMDB benches: a fresh account with N CIs and their references.

Makes an account with `landmark init --json` over LANDMARK_DATABASE_URL (default: a SQLite file
var/cmdb_bench.db), then bulk-inserts straight into the tables (test data, not an import):
~50 product categories, ~2,000 products, ~200 teams, ~500 sites, ~100 organizations and N CIs
(statuses over the 17 values, mostly in_production; labels CI0000001...; some serial numbers and
sourceIDs). PostgreSQL: COPY (asyncpg copy_records_to_table); SQLite: executemany in one
transaction. Runs (VACUUM) ANALYZE, then saves {database_url, account, token, cis} to --out for
bench/cmdb_queries.py.

Run: LANDMARK_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/landmark_bench \
       .venv/bin/python bench/cmdb_data.py --cis 1000000
     .venv/bin/python bench/cmdb_data.py --cis 100000     # SQLite
"""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

from landmark.cmdb import models as m
from landmark.cmdb.schema import CATEGORY_RULE_SETS, CI_STATUSES
from landmark.core.db import create_engine

LANDMARK = str(Path(sys.executable).parent / "landmark")
DEFAULT_SQLITE = "sqlite+aiosqlite:///var/cmdb_bench.db"
CHUNK = 50_000
# Mostly in production; the 16 other statuses share the rest.
STATUS_WEIGHTS = [70.0 if s == "in_production" else 30.0 / 16 for s in CI_STATUSES]


def init_account(url: str) -> dict[str, Any]:
    slug = f"cmdb-{uuid.uuid4().hex[:8]}"
    cmd = [LANDMARK, "init", "--account", slug, "--name", "CMDB bench", "--json"]
    cmd += ["--admin-email", f"admin@{slug}.example", "--admin-password", "bench-password-123"]
    env = {**os.environ, "LANDMARK_DATABASE_URL": url}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"landmark init failed: {out.stderr}")
    made = json.loads(out.stdout.strip().splitlines()[-1])
    return {"account": made["account"]["id"], "token": made["api_token"]}


class Writer:
    """Set-based inserts: COPY on PostgreSQL, executemany in one transaction on SQLite."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.postgres = url.startswith("postgresql")

    async def insert(self, model: Any, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        async with self.engine.begin() as conn:
            if self.postgres:
                raw = (await conn.get_raw_connection()).driver_connection
                columns = list(rows[0])
                records = [tuple(row[c] for c in columns) for row in rows]
                await raw.copy_records_to_table(
                    model.__tablename__, records=records, columns=columns
                )
            else:
                await conn.execute(insert(model.__table__), rows)

    async def ids(self, model: Any, account: str) -> list[int]:
        async with self.engine.connect() as conn:
            query = select(model.id).where(model.account_id == account).order_by(model.id)
            return list((await conn.scalars(query)).all())

    async def analyze(self) -> None:
        """ANALYZE; on PostgreSQL VACUUM too, which sets the visibility map (as autovacuum would
        on a live database) so that index-only scans skip the heap."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE" if self.postgres else "ANALYZE"))


def base(account: str, now: datetime) -> dict[str, Any]:
    return {"account_id": account, "created_at": now, "updated_at": now}


def ci_rows(
    account: str,
    count: int,
    products: list[tuple[int, int, str, str]],
    teams: list[int],
    sites: list[int],
    orgs: list[int],
    rng: random.Random,
) -> Iterator[list[dict[str, Any]]]:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    chunk: list[dict[str, Any]] = []
    for n in range(1, count + 1):
        product_id, category_id, rule_set, brand = rng.choice(products)
        serial = f"SN{n:09d}" if rng.random() < 0.3 else None
        sourced = rng.random() < 0.2
        at = start + timedelta(minutes=n)
        chunk.append(
            {
                **base(account, at),
                "label": f"CI{n:07d}",
                "name": f"{brand} host {n}",
                "status": rng.choices(CI_STATUSES, STATUS_WEIGHTS)[0],
                "product_id": product_id,
                "category_id": category_id,
                "rule_set": rule_set,
                "serial_nr": serial,
                "brand_serial": f"{brand.lower()}\x1f{serial.lower()}" if serial else None,
                "support_team_id": rng.choice(teams),
                "site_id": rng.choice(sites),
                "supplier_id": rng.choice(orgs),
                "source": "bench" if sourced else None,
                "source_id": f"src-{n}" if sourced else None,
            }
        )
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def generate(url: str, account: str, count: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    db = Writer(url)
    plain = {**base(account, now), "disabled": False}
    await db.insert(m.Organization, [{**plain, "name": f"Org {i}"} for i in range(100)])
    await db.insert(m.Site, [{**plain, "name": f"Site {i}"} for i in range(500)])
    await db.insert(m.Team, [{**plain, "name": f"Team {i}"} for i in range(200)])
    rule_sets = [rng.choice(CATEGORY_RULE_SETS) for _ in range(50)]
    categories = [
        {**plain, "name": f"Category {i}", "group": "Bench", "rule_set": rule_sets[i]}
        | {"reference": f"category_{i}"}
        for i in range(50)
    ]
    await db.insert(m.ProductCategory, categories)
    category_ids = await db.ids(m.ProductCategory, account)
    orgs, sites, teams = [await db.ids(t, account) for t in (m.Organization, m.Site, m.Team)]
    brands = [f"Brand{i}" for i in range(40)]
    product_rows = []
    for i in range(2000):
        c = rng.randrange(50)
        row = {**plain, "name": f"Product {i}", "brand": rng.choice(brands), "model": f"M{i}"}
        row |= {"category_id": category_ids[c], "support_team_id": rng.choice(teams)}
        product_rows.append((row, c))
    await db.insert(m.Product, [row for row, _ in product_rows])
    product_ids = await db.ids(m.Product, account)
    products = [
        (pid, category_ids[c], rule_sets[c], row["brand"])
        for pid, (row, c) in zip(product_ids, product_rows, strict=True)
    ]
    for chunk in ci_rows(account, count, products, teams, sites, orgs, rng):
        await db.insert(m.ConfigurationItem, chunk)
    await db.analyze()
    await db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cis", type=int, default=None, help="default 1,000,000 (100,000 SQLite)")
    parser.add_argument("--out", default="var/cmdb_bench.json", help="where to save the account")
    args = parser.parse_args()
    url = os.environ.get("LANDMARK_DATABASE_URL") or DEFAULT_SQLITE
    count = args.cis or (1_000_000 if url.startswith("postgresql") else 100_000)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path("var").mkdir(exist_ok=True)
    started = time.perf_counter()
    made = init_account(url)
    asyncio.run(generate(url, made["account"], count))
    took = time.perf_counter() - started
    saved = {"database_url": url, **made, "cis": count}
    Path(args.out).write_text(json.dumps(saved, indent=2))
    print(f"{count:,} CIs in account {made['account']} in {took:.1f} s ({count / took:,.0f}/s)")
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()

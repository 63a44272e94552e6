"""Deep pages: keyset cursor (search_after) vs OFFSET, through core/query.py.

200,000 rows in a bench-only table (a temp SQLite file, or LANDMARK_DATABASE_URL, e.g.
postgresql+asyncpg://postgres@127.0.0.1:5432/landmark), ordered by label (index on
(account_id, label, id)). Prints the median of fetch_page for page 1, page 5,000 through a
search_after cursor (the cursor of row 99,979 is taken with one query, as a client walking the
pages would hold it) and page 5,000 by ?page=, per_page=20: whole (with the count(*) every page
pays for X-Pagination-Total-Entries) and the page query alone.

Run: .venv/bin/python bench/query_keyset.py [--rows 200000] [--repeat 15]
"""

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Index, MetaData, Numeric, String, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from landmark.core.db import UTCDateTime, create_engine
from landmark.core.query import (
    Attribute,
    Listing,
    encode_cursor,
    fetch_page,
    page_statement,
    parse_list_query,
)

PER_PAGE, DEEP_PAGE = 20, 5000


class Base(DeclarativeBase):
    metadata = MetaData()


class Thing(Base):
    __tablename__ = "bench_query_things"
    __table_args__ = (Index("ix_bench_query_things_label", "account_id", "label", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    account_id: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    count: Mapped[int | None]
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_id: Mapped[str | None] = mapped_column(String(40))


LISTING = Listing(
    filters={"status": Attribute("status", Thing.status, "enum")},
    sorts={"label": Attribute("label", Thing.label, "string")},
    default_sort=("label",),
    id_column=Thing.id,
)
SCOPED = select(Thing).where(Thing.account_id == "bench")


def row(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "account_id": "bench",
        "label": f"ci{(i * 7919) % 1_000_003:07d}",  # not in id order
        "status": ("active", "broken", "stock")[i % 3],
        "count": None if i % 11 == 0 else i % 50,
        "price": Decimal(i % 1000) / 4,
        "created_at": datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
        "source_id": None if i % 3 == 0 else f"s{i}",
    }


async def median_ms(repeat: int, work: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def main(rows: int, repeat: int) -> None:
    tmp = tempfile.TemporaryDirectory()
    url = os.environ.get("LANDMARK_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp.name}/bench.db"
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
        await connection.run_sync(Base.metadata.create_all)
        for start in range(1, rows + 1, 10_000):
            batch = [row(i) for i in range(start, min(start + 10_000, rows + 1))]
            await connection.execute(insert(Thing), batch)
    try:
        async with AsyncSession(engine) as session:
            await report(session, repeat)
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.drop_all)
        await engine.dispose()
        tmp.cleanup()


async def report(session: AsyncSession, repeat: int) -> None:
    depth = (DEEP_PAGE - 1) * PER_PAGE - 1  # the last row of page 4,999
    in_order = SCOPED.with_only_columns(Thing.label, Thing.id).order_by(Thing.label, Thing.id)
    deep = (await session.execute(in_order.offset(depth).limit(1))).one()
    cases = {
        "page 1": [],
        f"page {DEEP_PAGE:,} by search_after": [("search_after", encode_cursor(depth, list(deep)))],
        f"page {DEEP_PAGE:,} by ?page=": [("page", str(DEEP_PAGE))],
    }
    print(f"{session.bind.dialect.name}, per_page={PER_PAGE}, median ms of {repeat}:")
    print(f"  {'':<28} {'fetch_page':>10} {'page query alone':>17}")
    for name, params in cases.items():
        query = parse_list_query(LISTING, [("per_page", str(PER_PAGE)), *params])
        page = await fetch_page(session, SCOPED, LISTING, query)
        assert page.current_page == (1 if name == "page 1" else DEEP_PAGE), page.current_page
        whole = await median_ms(repeat, lambda q=query: fetch_page(session, SCOPED, LISTING, q))
        alone = page_statement(SCOPED.where(*query.where), query)
        rows = await median_ms(repeat, lambda s=alone: session.execute(s))
        print(f"  {name:<28} {whole:>10.2f} {rows:>17.2f}")
    print("  (fetch_page also counts the filtered rows for X-Pagination-Total-Entries)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=15)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rows, arguments.repeat))

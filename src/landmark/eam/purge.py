"""Archived fact sheets are deleted for good after `LANDMARK_ARCHIVE_RETENTION_DAYS` (90).

`eam.purge_archived` is a job (core/jobs.py). Each server start makes sure one is queued with
`daily: true`; that one queues its successor for a day later when it has run, so the purge runs
once a day on whichever worker claims it. Each deleted fact sheet gets FACT_SHEET_DELETED in its
account's outbox; its relations, tags, subscriptions, comments and documents go with it.
"""

from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.core import clock
from landmark.core.events import record_many
from landmark.core.jobs import Job, JobContext, enqueue, ensure_queued, handler
from landmark.eam.audit import item
from landmark.eam.models import ARCHIVED, FactSheet

KIND = "eam.purge_archived"
BATCH = 500


@handler(KIND)
async def purge_archived(session: AsyncSession, job: Job, ctx: JobContext) -> dict[str, Any]:
    days = job.payload.get("days", ctx.settings.archive_retention_days)
    before = clock.now() - timedelta(days=days)
    deleted = 0
    while batch := await _due(session, before):
        events: dict[str, list[Any]] = defaultdict(list)
        for fs in batch:
            events[fs.account_id].append(item("FACT_SHEET_DELETED", fs, reason="retention"))
        await session.execute(delete(FactSheet).where(FactSheet.id.in_([fs.id for fs in batch])))
        # The events last: numbering them locks each account row until commit (eam/change.py).
        for account_id, items in events.items():
            await record_many(session, account_id, items)
        deleted += len(batch)
        await ctx.save_progress({"deleted": deleted})
    if job.payload.get("daily"):
        await enqueue(session, KIND, {"daily": True}, run_after=clock.now() + timedelta(days=1))
    return {"deleted": deleted}


async def _due(session: AsyncSession, before: Any) -> list[FactSheet]:
    query = (
        select(FactSheet)
        .where(FactSheet.status == ARCHIVED, FactSheet.archived_at < before)
        .order_by(FactSheet.archived_at)
        .limit(BATCH)
    )
    return list((await session.execute(query)).scalars())


async def ensure_scheduled(session: AsyncSession) -> None:
    """Queue the daily purge unless one is queued already (the caller commits)."""
    await ensure_queued(session, KIND, {"daily": True})

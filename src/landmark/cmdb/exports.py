"""Exports: CSV files of one or more record types, made by a background job, kept in the database.

The columns are the import's (cmdb/columns.py), references by their display value (CIs by
label, product categories by reference, people by primary email, others by name), so that an
export re-imports cleanly. Several types give a zip with one `<type>.csv` each.
"""

import csv
import io
import secrets
import zipfile
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, deferred, mapped_column

from landmark.cmdb import models as m
from landmark.cmdb.columns import Column, columns
from landmark.cmdb.imports import CI_RELATIONS, TYPES, natural_keys
from landmark.cmdb.schema import RESOURCES, Resource
from landmark.core import clock
from landmark.core.db import Base
from landmark.core.errors import ValidationFailed
from landmark.core.jobs import Job, JobContext, enqueue, handler

JOB_KIND = "cmdb.export"
BATCH = 2000
DISPLAY = {"cis": "label", "product_categories": "reference", "people": "primary_email"}


class Export(Base):
    __tablename__ = "exports"
    __table_args__ = (Index("ix_exports_account_id", "account_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    token: Mapped[str] = mapped_column(String(32), unique=True)
    types: Mapped[str] = mapped_column(String(255))
    since: Mapped[datetime | None]
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    filename: Mapped[str | None] = mapped_column(String(255))
    media_type: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


def parse_types(text: str) -> list[str]:
    types = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in types if t not in TYPES]
    if not types or unknown:
        raise ValidationFailed(
            "Validation Failed", [("type", f"must be among: {', '.join(sorted(TYPES))}")]
        )
    return list(dict.fromkeys(types))


async def start(
    session: AsyncSession, account_id: str, types: list[str], since: datetime | None
) -> Export | None:
    """Enqueue an export; None when nothing changed since `since`."""
    if since is not None and not await _changed(session, account_id, types, since):
        return None
    export = Export(
        account_id=account_id, token=secrets.token_hex(8), types=",".join(types), since=since
    )
    session.add(export)
    await session.flush()
    job = await enqueue(session, JOB_KIND, {"export_id": export.id}, account_id=account_id)
    export.job_id = job.id
    return export


async def _changed(
    session: AsyncSession, account_id: str, types: list[str], since: datetime
) -> bool:
    for type in types:
        model = TYPES[type].model
        stamp = model.created_at if type == "ci_relations" else model.updated_at
        if await session.scalar(
            select(exists().where(model.account_id == account_id, stamp >= since))
        ):
            return True
    return False


async def content(session: AsyncSession, export: Export) -> bytes | None:
    return await session.scalar(select(Export.content).where(Export.id == export.id))


def state(job: Job | None) -> str:
    if job is None:
        return "error"
    return {"queued": "queued", "running": "processing", "done": "done"}.get(job.state, "error")


# --- writing the files -----------------------------------------------------------------------


async def build(session: AsyncSession, export: Export) -> tuple[bytes, str, str]:
    """The file of an export: (bytes, file name, media type)."""
    types = export.types.split(",")
    files = {t: await csv_of(session, export.account_id, t, export.since) for t in types}
    if len(files) == 1:
        return files[types[0]], f"{types[0]}.csv", "text/csv; charset=utf-8"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for type, data in files.items():
            archive.writestr(f"{type}.csv", data)
    return buffer.getvalue(), "export.zip", "application/zip"


def export_columns(resource: Resource) -> list[Column]:
    """The import's columns, references by display value only (ID, name, source...)."""
    return [c for c in columns(resource) if c.mode in ("value", "name") or c.header == "ID"]


async def csv_of(
    session: AsyncSession, account_id: str, type: str, since: datetime | None
) -> bytes:
    if type == "ci_relations":
        return await _relations_csv(session, account_id, since)
    resource = RESOURCES[type]
    cols = export_columns(resource)
    names = {
        c.field.target: await _display(session, account_id, c.field.target)
        for c in cols
        if c.mode == "name"
    }
    model = resource.model
    query = select(*[getattr(model, c.field.column) for c in cols]).where(
        model.account_id == account_id
    )
    if since is not None:
        query = query.where(model.updated_at >= since)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.header for c in cols])
    result = await session.stream(query.order_by(model.id).execution_options(yield_per=BATCH))
    async for row in result:
        writer.writerow(
            [_cell(c, v, names.get(c.field.target)) for c, v in zip(cols, row, strict=True)]
        )
    return out.getvalue().encode("utf-8")


async def _display(session: AsyncSession, account_id: str, target: str) -> dict[int, str]:
    """Every record of `target` in the account by id -> how a file names it."""
    model = RESOURCES[target].model
    column = getattr(model, DISPLAY.get(target, "name"))
    rows = await session.execute(select(model.id, column).where(model.account_id == account_id))
    return {ident: value for ident, value in rows.tuples()}


def _cell(col: Column, value: Any, names: dict[int, str] | None) -> str:
    if value is None:
        return ""
    if col.mode == "name" and names is not None:
        return names.get(value, "")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


async def _relations_csv(session: AsyncSession, account_id: str, since: datetime | None) -> bytes:
    labels = await _display(session, account_id, "cis")
    rel = m.CIRelation
    query = select(rel.ci_id, rel.child_id, rel.source).where(rel.account_id == account_id)
    if since is not None:
        query = query.where(rel.created_at >= since)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["CI", "Related CI", "Relation Type", "Source"])
    result = await session.stream(
        query.order_by(rel.ci_id, rel.id).execution_options(yield_per=BATCH)
    )
    async for parent, child, source in result:
        writer.writerow([labels.get(parent, ""), labels.get(child, ""), "child", source or ""])
    return out.getvalue().encode("utf-8")


@handler(JOB_KIND)
async def export_job(session: AsyncSession, job: Job, ctx: JobContext) -> dict[str, Any]:
    export = await session.get_one(Export, job.payload["export_id"])
    data, filename, media_type = await build(session, export)
    export.content, export.filename, export.media_type = data, filename, media_type
    return {"size": len(data), "filename": filename}


__all__ = ["CI_RELATIONS", "Export", "natural_keys"]

"""Imports (Xurrent's Bulk API): a CSV or TSV file of one record type, applied by a background job.

The file is kept in the database (`imports.content`) so that any worker host can run the job. The
job streams the file, applies it in chunks of `CHUNK` lines, and commits each chunk together with
its progress (the last line applied and the counts), so that a crashed import resumes after the
last committed chunk: a line is never applied twice or half. A bad line fails alone; its line
number, column and message go to `import_failures` in the chunk's transaction.

Rows match an existing record by `ID`, else by `Source` + `Source ID`, else by the natural key (CIs:
label; people: primary email; product categories: reference or name; others: name). Every row goes
through the same rules as the API (cmdb/service.py, cmdb/cis.py); CIs take a batch path that
shares those rules but writes sets and keeps reference and label lookups in memory.
"""

import codecs
import csv
import io
import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, deferred, mapped_column, undefer

from landmark.cmdb import cis as ci_rules
from landmark.cmdb import models as m
from landmark.cmdb import service
from landmark.cmdb.columns import Column, by_header, columns, header_name
from landmark.cmdb.schema import CIS, RESOURCES, Field, Resource
from landmark.cmdb.values import BadValue, parse_value
from landmark.core import clock
from landmark.core.collector import collect_young, young_collections_only
from landmark.core.db import Base, bulk_insert, one_of
from landmark.core.errors import ValidationFailed
from landmark.core.events import Actor, record
from landmark.core.jobs import Job, JobContext, enqueue, handler
from landmark.identity.authn import Principal

JOB_KIND = "cmdb.import"
CHUNK = 1000  # lines per transaction
MAX_ATTEMPTS = 3
NOT_NULL_FLAGS = ("Disabled", "Vip")  # an empty cell means false, not "no value"
COUNTS = ("created", "updated", "unchanged", "deleted", "failures", "errors")

CI_RELATIONS = Resource(
    "ci_relations",
    "ci_relation",
    m.CIRelation,
    (
        Field("ci", "reference", target="cis", required=True),
        Field("related_ci", "reference", target="cis", required=True),
        Field("relation_type", "enum", values=("child", "parent"), required=True),
        Field("source", "string", max_length=30),
    ),
    collection_fields=(),
    filters=(),
    sorts=(),
)
TYPES: dict[str, Resource] = {**RESOURCES, "ci_relations": CI_RELATIONS}


class Import(Base):
    """An uploaded file and who uploaded it; its state and counts are those of its job."""

    __tablename__ = "imports"
    __table_args__ = (Index("ix_imports_account_id", "account_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    token: Mapped[str] = mapped_column(String(32), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    user_id: Mapped[int | None]
    credential_id: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(default=0)
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class ImportFailure(Base):
    """One failed line of an import: its number, column and message."""

    __tablename__ = "import_failures"
    __table_args__ = (
        Index("ix_import_failures_account_import", "account_id", "import_id", "line"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"))
    line: Mapped[int]
    column: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)


class ImportError_(Exception):
    """The file as a whole cannot be imported (encoding, header): the import ends in `error`."""


class LineFailed(Exception):
    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


# --- starting and reading imports ------------------------------------------------------------


async def start(
    session: AsyncSession,
    account_id: str,
    actor: Actor,
    type: str,
    content: bytes,
    filename: str | None,
) -> tuple[Import, Job]:
    """Store the file and enqueue its job (in the caller's transaction)."""
    if type not in TYPES:
        raise ValidationFailed(
            "Validation Failed", [("type", f"is not one of: {', '.join(sorted(TYPES))}")]
        )
    imp = Import(
        account_id=account_id,
        token=secrets.token_hex(8),
        type=type,
        user_id=actor.user_id,
        credential_id=actor.credential_id,
        filename=filename,
        size=len(content),
        content=content,
    )
    session.add(imp)
    await session.flush()
    job = await enqueue(
        session, JOB_KIND, {"import_id": imp.id}, account_id=account_id, max_attempts=MAX_ATTEMPTS
    )
    imp.job_id = job.id
    return imp, job


async def listing(session: AsyncSession, account_id: str, limit: int = 100) -> list[Any]:
    rows = await session.execute(
        select(Import, Job)
        .outerjoin(Job, Job.id == Import.job_id)
        .where(Import.account_id == account_id)
        .order_by(Import.id.desc())
        .limit(limit)
    )
    return list(rows.tuples())


def status(job: Job | None) -> dict[str, Any]:
    """Xurrent's view of a job: state (queued, processing, done, error), results, message."""
    if job is None:
        return {"state": "error", "message": "The import job was removed"}
    outcome = job.result or {}
    counts = {k: (outcome or job.progress or {}).get(k, 0) for k in COUNTS}
    state = {"queued": "queued", "running": "processing", "done": "done"}.get(job.state, "error")
    if state == "done" and outcome.get("error"):
        state = "error"
    body: dict[str, Any] = {"state": state, "results": counts}
    if state == "error":
        body["message"] = outcome.get("error") or job.error or "The import failed"
    elif state == "done":
        body["message"] = outcome.get("message", "")
    if state == "processing":
        body["line"] = (job.progress or {}).get("line", 0)
    return body


async def failures(
    session: AsyncSession, account_id: str, import_id: int, limit: int = 1000
) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(ImportFailure)
        .where(ImportFailure.account_id == account_id, ImportFailure.import_id == import_id)
        .order_by(ImportFailure.line, ImportFailure.id)
        .limit(limit)
    )
    return [{"line": f.line, "column": f.column, "message": f.message} for f in rows]


# --- reading the file -------------------------------------------------------------------------


def decode(content: bytes) -> io.TextIOBase:
    """A text stream over UTF-8 or UTF-16LE bytes, with or without a byte order mark."""
    if content.startswith(codecs.BOM_UTF8):
        return _text(content[3:], "utf-8")
    if content.startswith(codecs.BOM_UTF16_LE):
        return _text(content[2:], "utf-16-le")
    head = content[:200]
    if len(head) >= 2 and head[1::2].count(0) > len(head) // 4:
        return _text(content, "utf-16-le")
    return _text(content, "utf-8")


def _text(content: bytes, encoding: str) -> io.TextIOBase:
    return io.TextIOWrapper(io.BytesIO(content), encoding=encoding, newline="")


def rows(stream: io.TextIOBase) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every record after the header; TSV when the header has tabs."""
    first = stream.readline()
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    header = next(csv.reader([first], delimiter=delimiter), [])
    yield 1, header
    reader = csv.reader(stream, delimiter=delimiter)
    line = 1
    try:
        for cells in reader:
            line = reader.line_num + 1
            if any(c.strip() for c in cells):
                yield line, cells
    except csv.Error as exc:
        raise ImportError_(f"Malformed CSV on line {line + 1}: {exc}") from exc


def count_lines(content: bytes) -> int:
    """About how many lines the file has (for progress bars)."""
    utf16 = content[:2] == codecs.BOM_UTF16_LE or content[1:200:2].count(0) > 50
    return content.count(b"\n\x00" if utf16 else b"\n")


# --- references -------------------------------------------------------------------------------


class References:
    """Reference lookups (display name, id, source pair -> id) of one account, remembered."""

    def __init__(self, session: AsyncSession, account_id: str) -> None:
        self.session = session
        self.account_id = account_id
        self.found: dict[tuple[str, str, Any], int] = {}

    async def resolve(self, target: str, mode: str, key: Any) -> int | None:
        cached = self.found.get((target, mode, key))
        if cached is not None:
            return cached
        model = RESOURCES[target].model
        query = select(model.id).where(model.account_id == self.account_id)
        if mode == "id":
            query = query.where(model.id == key)
        elif mode == "source":
            query = query.where(model.source == key[0], model.source_id == key[1])
        else:
            query = query.where(or_(*natural_keys(target, model, key)))
        ident = await self.session.scalar(query.order_by(model.id).limit(1))
        if ident is not None:
            self.found[(target, mode, key)] = ident
        return ident


def natural_keys(target: str, model: Any, key: str) -> list[Any]:
    """How a record of `target` is named in a file: CIs by label, people by email or name, ..."""
    lowered = key.lower()
    if target == "cis":
        return [func.lower(model.label) == lowered]
    if target == "people":
        return [func.lower(model.primary_email) == lowered, func.lower(model.name) == lowered]
    if target == "product_categories":
        return [model.reference == lowered, func.lower(model.name) == lowered]
    return [func.lower(model.name) == lowered]


# --- one import run ----------------------------------------------------------------------------


@dataclass
class Row:
    line: int
    body: dict[str, Any]  # API input names -> values (references as ids)
    ident: int | None = None  # the `ID` column
    natural: str | None = None  # the natural key
    refs: dict[str, dict[str, str]] = field(default_factory=dict)  # reference cells by field


async def resolve(run: "Run", row: Row) -> None:
    """Turn the line's reference cells into ids (when applied: earlier lines may be named)."""
    for name, given in row.refs.items():
        field_ = run.resource.by_name[name]
        row.body[field_.input_name] = await _reference(run, field_, given)


Progress = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Run:
    session: AsyncSession
    imp: Import
    who: Principal
    resource: Resource
    progress: dict[str, Any]
    refs: References
    failed: list[dict[str, Any]] = field(default_factory=list)
    labels: ci_rules.LabelCounter | None = None
    products: dict[int, m.Product] = field(default_factory=dict)
    categories: dict[int, m.ProductCategory] = field(default_factory=dict)
    confirmed: set[int] = field(default_factory=set)  # ci relations given by this file

    def count(self, what: str, n: int = 1) -> None:
        self.progress[what] = self.progress.get(what, 0) + n

    def fail(self, line: int, column: str | None, message: str) -> None:
        self.count("failures")
        self.failed.append(
            {
                "account_id": self.imp.account_id,
                "import_id": self.imp.id,
                "line": line,
                "column": column,
                "message": message[:2000],
            }
        )


class Uploader(Principal):
    """Who an import acts as in the audit trail: the uploader, or the system (the CLI)."""

    @property
    def actor(self) -> Actor:
        return Actor(self.user_id or None, self.credential_id)


def principal_of(imp: Import) -> Principal:
    """Who the import acts as (for audit entries): its uploader and their credential."""
    import uuid

    return Uploader(
        user_id=imp.user_id or 0,
        user_uuid=uuid.UUID(int=0),
        user_name="",
        user_email=None,
        user_kind="person",
        account_id=imp.account_id,
        account_uuid=uuid.UUID(int=0),
        account_name="",
        role="admin",
        permissions=frozenset(),
        credential_id=imp.credential_id,
        credential_kind=None,
        rate_limit=0,
        rate_window=0,
        valid_until=None,
    )


async def execute(
    session: AsyncSession,
    imp: Import,
    progress: dict[str, Any],
    checkpoint: Progress,
    chunk: int = CHUNK,
) -> dict[str, Any]:
    """Apply the import from the line after `progress["line"]`; the final results."""
    progress = {k: 0 for k in COUNTS} | dict(progress)
    progress.setdefault("started_at", clock.now().isoformat())
    run = Run(
        session,
        imp,
        principal_of(imp),
        TYPES[imp.type],
        progress,
        References(session, imp.account_id),
    )
    try:
        with young_collections_only():
            await _apply_file(run, imp.content, chunk, checkpoint)
    except ImportError_ as exc:
        return {**_counts(run.progress), "error": str(exc)}
    except UnicodeDecodeError as exc:
        return {**_counts(run.progress), "error": _bad_bytes(imp.content, exc)}
    return {**_counts(run.progress), "message": _summary(run.progress)}


def _bad_bytes(content: bytes, exc: UnicodeDecodeError) -> str:
    """Where the file stops being text: the line of the first undecodable byte."""
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as found:
        line = content[: found.start].count(b"\n") + 1
        return f"Invalid byte sequence in UTF-8 on line {line}"
    return f"Invalid byte sequence in UTF-16LE: {exc.reason}"


def _counts(progress: dict[str, Any]) -> dict[str, int]:
    return {k: int(progress.get(k, 0)) for k in COUNTS}


def _summary(progress: dict[str, Any]) -> str:
    failed = progress.get("failures", 0)
    return f"{failed} line(s) failed; see the log" if failed else "Import completed"


async def _apply_file(run: Run, content: bytes, chunk: int, checkpoint: Progress) -> None:
    lines = rows(decode(content))
    _, header = next(lines, (1, []))
    known = by_header(run.resource)
    cols: list[Column | None] = [known.get(h.strip().lower()) for h in header]
    if not any(cols):
        raise ImportError_("The first line names none of the columns of " + run.resource.name)
    done = int(run.progress.get("line", 0))
    batch: list[Row] = []
    last = done
    for line, cells in lines:
        if line <= done:
            continue
        try:
            row = await _read(run, line, cells, cols)
        except LineFailed as exc:
            run.fail(line, exc.column, exc.message)  # committed with the next chunk
            last = line
            continue
        if len(batch) >= chunk and not _same_group(run, batch[-1], row):
            await _commit(run, batch, last, checkpoint)
            batch = []
        batch.append(row)
        last = line
    await _commit(run, batch, last, checkpoint)


def _same_group(run: Run, previous: Row, row: Row) -> bool:
    """CI relations: a CI's consecutive lines stay in one chunk (they replace its relations)."""
    return run.resource is CI_RELATIONS and previous.refs.get("ci") == row.refs.get("ci")


async def _commit(run: Run, batch: list[Row], last: int, checkpoint: Progress) -> None:
    """Apply a chunk, then commit it with its failures and progress in one transaction."""
    if batch:
        await _fresh_plans(run.session)
        await APPLY.get(run.resource.name, _apply_records)(run, batch)
    if run.failed:
        await run.session.execute(insert(ImportFailure), run.failed)
        run.failed = []
    run.progress["line"] = last
    await checkpoint(dict(run.progress))
    run.session.expunge_all()  # keeps memory flat over a long file
    collect_young()  # the chunk's cyclic garbage (core/collector.py)


async def _fresh_plans(session: AsyncSession) -> None:
    """PostgreSQL: plan each lookup for the table as it is now. The tables grow during an import,
    and a prepared statement's generic plan, made while they were small, would scan them whole."""
    if (await session.connection()).dialect.name == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def _read(run: Run, line: int, cells: list[str], cols: list[Column | None]) -> Row:
    """A line as an API body: cells parsed, references resolved to ids of this account."""
    row = Row(line, {})
    refs: dict[str, dict[str, str]] = {}
    for cell, col in zip(cells, cols, strict=False):
        if col is None:
            continue
        value = cell.strip()
        if col.field.name == "id":
            row.ident = _cell(col, value) if value else None
        elif col.mode == "value":
            row.body[col.field.input_name] = _cell(col, value)
        else:
            refs.setdefault(col.field.name, {})[col.mode] = value
    row.refs = refs
    row.natural = _natural(run.resource, row.body)
    return row


def _cell(col: Column, value: str) -> Any:
    field_ = col.field
    if field_.kind == "enum" and value:
        value = _enum_value(field_, value)
    try:
        parsed = parse_value(field_, value)
    except BadValue as exc:
        raise LineFailed(col.header, f"{col.header} {exc}") from exc
    return False if parsed is None and col.header in NOT_NULL_FLAGS else parsed


def _enum_value(field_: Field, value: str) -> str:
    """An enum is given by value (`in_production`) or by label (`In Production`)."""
    candidate = value.strip().lower().replace(" ", "_").replace("-", "_")
    return candidate if field_.values and candidate in field_.values else value


async def _reference(run: Run, field_: Field, given: dict[str, str]) -> int | None:
    title = header_name(field_.name)
    if given.get("id"):
        mode, key, column = "id", given["id"], f"{title} ID"
        if not key.isdigit():
            raise LineFailed(column, f"{column} must be the id of a record")
        key_: Any = int(key)
    elif given.get("source") or given.get("source_id"):
        column = f"{title} Source ID"
        if not (given.get("source") and given.get("source_id")):
            raise LineFailed(column, f"{title} needs both {title} Source and {title} Source ID")
        mode, key_ = "source", (given["source"], given["source_id"])
    elif given.get("name"):
        mode, key_, column = "name", given["name"], title
    else:
        return None
    ident = await run.refs.resolve(field_.target, mode, key_)
    if ident is None:
        shown = key_ if mode != "source" else f"{key_[0]}/{key_[1]}"
        raise LineFailed(column, f"{title} {shown} not found")
    return ident


def _natural(resource: Resource, body: dict[str, Any]) -> str | None:
    name = {"cis": "label", "people": "primary_email"}.get(resource.name, "name")
    value = body.get(name)
    return value.lower() if isinstance(value, str) else None


def _header_of(run: Run, error_field: str) -> str:
    for col in columns(run.resource):
        if col.field.input_name == error_field or col.field.name == error_field:
            return col.header
    return error_field


def _failed(run: Run, row: Row, exc: ValidationFailed) -> None:
    field_, message = exc.errors[0] if exc.errors else ("", exc.message)
    run.fail(row.line, _header_of(run, field_), message)


# --- records other than CIs: the API's own create and update, line by line ---------------------


async def _apply_records(run: Run, batch: list[Row]) -> None:
    resource = run.resource
    for row in batch:
        try:
            await resolve(run, row)
            obj = await _match_one(run, row)
        except LineFailed as exc:
            run.fail(row.line, exc.column, exc.message)
            continue
        with run.session.no_autoflush:  # a failed line leaves nothing behind to flush
            try:
                if obj is None:
                    await service.create(run.session, run.who, resource, row.body, service.Write())
                    run.count("created")
                else:
                    before = obj.updated_at
                    await service.update(run.session, run.who, resource, obj, row.body)
                    run.count("updated" if obj.updated_at != before else "unchanged")
            except ValidationFailed as exc:
                if obj is not None:
                    run.session.expire(obj)
                _failed(run, row, exc)


async def _match_one(run: Run, row: Row) -> Any:
    model = run.resource.model
    query = select(model).where(model.account_id == run.imp.account_id)
    source, source_id = row.body.get("source"), row.body.get("sourceID")
    if row.ident is not None:
        found = await run.session.scalar(query.where(model.id == row.ident))
        if found is None:
            raise LineFailed("ID", f"ID {row.ident} not found")
        return found
    if source and source_id:
        return await run.session.scalar(
            query.where(model.source == source, model.source_id == source_id).limit(1)
        )
    if row.natural:
        key = natural_keys(run.resource.name, model, row.natural)[0]
        return await run.session.scalar(query.where(key).order_by(model.id).limit(1))
    return None


# --- CIs: the batch path ------------------------------------------------------------------------

CI = m.ConfigurationItem
# What a failed line restores on a CI it had started to change.
CI_COLUMNS = tuple(c.key for c in CI.__mapper__.column_attrs)
JSON_COLUMNS = ("alternate_names", "custom_fields", "recurrence", "attachments")


@dataclass
class Pending:
    row: Row
    ci: Any  # a NewCI, or the ORM instance of a matched CI
    changes: dict[str, list[Any]] | None  # None: a new CI
    snapshot: dict[str, Any] | None


async def _apply_cis(run: Run, batch: list[Row]) -> None:
    existing = await _match_cis(run, batch)
    pending: list[Pending] = []
    for row in batch:
        try:
            pending.append(await _stage_ci(run, row, existing))
        except LineFailed as exc:
            run.fail(row.line, exc.column, exc.message)
        except ValidationFailed as exc:
            _failed(run, row, exc)
    pending = await _unique_serials(run, pending)
    await _label_new(run, [p for p in pending if p.changes is None])
    new = [p.ci for p in pending if p.changes is None]
    now = clock.now()
    await _insert_cis(run.session, new, now)
    entries: list[tuple[Any, str, dict[str, list[Any]]]] = []
    for p in pending:
        if p.changes is None:
            entries.append((p.ci, "create", service.creation_changes(CIS, p.ci)))
        elif p.changes:
            p.ci.updated_at = now
            entries.append((p.ci, "update", p.changes))
    await run.session.flush()
    await service.audit_many(run.session, run.who, CIS, entries)
    run.count("created", len(new))
    run.count("updated", sum(1 for p in pending if p.changes))
    run.count("unchanged", sum(1 for p in pending if p.changes == {}))


class NewCI:
    """A CI the batch path is about to insert: plain attributes, None until set. Filling an ORM
    instance costs several times more, and the batch path inserts rows itself (`_insert_cis`).
    The rules (`cis.apply_rules`) and the audit (`service.creation_changes`) read it as they read
    a model instance; `vars()` holds exactly the values set."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        if name in CI_KEYS:
            return None
        raise AttributeError(name)


CI_KEYS = frozenset(CI_COLUMNS)


async def _insert_cis(session: AsyncSession, new: list[Any], now: datetime) -> None:
    """One set-based insert for the chunk's new CIs (`NewCI`s, not through the unit of work)."""
    if not new:
        return
    for ci in new:
        ci.created_at = ci.updated_at = now
    # JSON columns no line set stay out (SQL NULL, as the API leaves them).
    values = [vars(ci) for ci in new]
    columns = [
        key
        for key in CI_COLUMNS
        if key != "id" and (key not in JSON_COLUMNS or any(v.get(key) is not None for v in values))
    ]
    records = [[v.get(key) for key in columns] for v in values]
    table: Any = CI.__table__
    connection = await session.connection()
    ids: Sequence[int]
    if connection.dialect.name == "sqlite":
        # SQLite promises no order of RETURNING rows (SQLAlchemy then inserts row by row). It has
        # one writer at a time and gives each row max(id) + 1: the new ids are the last ones.
        await bulk_insert(connection, table, columns, records)
        last = int(await session.scalar(select(func.max(CI.id))) or 0)
        ids = range(last - len(records) + 1, last + 1)
    else:
        # The ids first, from the sequence (safe with concurrent writers), then a COPY: much
        # faster than an ordered INSERT ... RETURNING.
        sequence = text(
            "SELECT nextval(pg_get_serial_sequence('cis', 'id')) FROM generate_series(1, :n)"
        )
        ids = list(await session.scalars(sequence, {"n": len(records)}))
        for record, ident in zip(records, ids, strict=True):
            record.append(ident)
        await bulk_insert(connection, table, [*columns, "id"], records)
    for ci, ident in zip(new, ids, strict=True):
        ci.id = ident


@dataclass
class Matches:
    by_id: dict[int, m.ConfigurationItem] = field(default_factory=dict)
    by_source: dict[tuple[str, str], m.ConfigurationItem] = field(default_factory=dict)
    by_label: dict[str, m.ConfigurationItem] = field(default_factory=dict)

    def add(self, ci: m.ConfigurationItem) -> None:
        if ci.id is not None:
            self.by_id.setdefault(ci.id, ci)
        if ci.source and ci.source_id:
            self.by_source.setdefault((ci.source, ci.source_id), ci)
        if ci.label:
            self.by_label.setdefault(ci.label.lower(), ci)


async def _match_cis(run: Run, batch: list[Row]) -> Matches:
    """The CIs the chunk's lines name, by ID, source pair or label: three queries at most."""
    ids = {r.ident for r in batch if r.ident is not None}
    pairs: dict[str, set[str]] = {}  # source -> its source ids
    for r in batch:
        if r.ident is None and r.body.get("source") and r.body.get("sourceID"):
            pairs.setdefault(r.body["source"], set()).add(r.body["sourceID"])
    labels = {r.natural for r in batch if r.natural}
    base = select(CI).where(CI.account_id == run.imp.account_id)
    matches = Matches()
    session = run.session
    for condition in (
        one_of(session, CI.id, ids) if ids else None,
        or_(*(and_(CI.source == s, one_of(session, CI.source_id, ids)) for s, ids in pairs.items()))
        if pairs
        else None,
        one_of(session, func.lower(CI.label, type_=String), labels) if labels else None,
    ):
        if condition is not None:
            for ci in await session.scalars(base.where(condition).order_by(CI.id)):
                matches.add(ci)
    return matches


def _find(matches: Matches, row: Row) -> m.ConfigurationItem | None:
    source, source_id = row.body.get("source"), row.body.get("sourceID")
    if row.ident is not None:
        found = matches.by_id.get(row.ident)
        if found is None:
            raise LineFailed("ID", f"ID {row.ident} not found")
        return found
    if source and source_id:
        return matches.by_source.get((source, source_id))
    return matches.by_label.get(row.natural) if row.natural else None


async def _stage_ci(run: Run, row: Row, matches: Matches) -> Pending:
    """Check one line and set it on its CI (new or matched) in memory; nothing is written yet."""
    await resolve(run, row)
    ci = _find(matches, row)
    values = service.parse_input(CIS, row.body, creating=ci is None)
    if ci is None:
        product = await _product(run, values["product"])
        ci = ci_rules.new_ci(run.imp.account_id, product, values, service.Write(), NewCI)
        staged = Pending(row, ci, None, None)
    else:
        for required in ("product", "status"):
            if required in values and values[required] is None:
                name = "product_id" if required == "product" else required
                raise service.invalid(name, f"{required.capitalize()} is required")
        snapshot = {key: getattr(ci, key) for key in CI_COLUMNS}
        staged = Pending(row, ci, service.assign(CIS, ci, values), snapshot)
        product = await _product(run, ci.product_id)
    try:
        ci_rules.apply_rules(ci, product, await _category(run, product.category_id), values)
    except ValidationFailed:
        _undo(staged)
        raise
    matches.add(ci)
    return staged


def _undo(p: Pending) -> None:
    for key, value in (p.snapshot or {}).items():
        setattr(p.ci, key, value)


async def _product(run: Run, ident: int) -> m.Product:
    if ident not in run.products:
        run.products[ident] = await run.session.get_one(m.Product, ident)
    return run.products[ident]


async def _category(run: Run, ident: int) -> m.ProductCategory:
    if ident not in run.categories:
        run.categories[ident] = await run.session.get_one(m.ProductCategory, ident)
    return run.categories[ident]


async def _unique_serials(run: Run, pending: list[Pending]) -> list[Pending]:
    """Brand + serial number stays unique: one query for the chunk, then the chunk itself."""
    keys = {p.ci.brand_serial for p in pending if p.ci.brand_serial}
    taken = await ci_rules.serials_taken(run.session, run.imp.account_id, keys)
    claimed: dict[str, m.ConfigurationItem] = {}
    kept = []
    for p in pending:
        key = p.ci.brand_serial
        holder = taken.get(key) if key else None
        if key and (
            (holder is not None and holder != p.ci.id) or claimed.get(key, p.ci) is not p.ci
        ):
            _undo(p)
            run.fail(p.row.line, "Serial Number", ci_rules.SERIAL_TAKEN)
            continue
        if key:
            claimed[key] = p.ci
        kept.append(p)
    return kept


async def _label_new(run: Run, new: list[Pending]) -> None:
    """Labels for new CIs without one: the category's counter, kept in memory for the import."""
    if run.labels is None:
        run.labels = ci_rules.LabelCounter(run.imp.account_id)
    given = {p.ci.label for p in new if p.ci.label}
    by_category: dict[int, list[m.ConfigurationItem]] = {}
    for p in new:
        if p.ci.label is None:
            by_category.setdefault(p.ci.category_id, []).append(p.ci)
    for category_id, cis in by_category.items():
        labels = await run.labels.labels(run.session, category_id, len(cis), given)
        for ci, label in zip(cis, labels, strict=True):
            ci.label = label


# --- CI relations --------------------------------------------------------------------------------

Rel = m.CIRelation


async def _apply_relations(run: Run, batch: list[Row]) -> None:
    started = datetime.fromisoformat(run.progress["started_at"])
    groups: dict[tuple[int, str], None] = {}
    for row in batch:
        try:
            await resolve(run, row)
            relation = await _relate(run, row)
        except LineFailed as exc:
            run.fail(row.line, exc.column, exc.message)
            continue
        except ValidationFailed as exc:
            _failed(run, row, exc)
            continue
        run.confirmed.add(relation.id)
        if row.body.get("source"):
            groups[(row.body["ci_id"], row.body["source"])] = None
    for ci_id, source in groups:
        await _replace(run, ci_id, source, started)


async def _relate(run: Run, row: Row) -> m.CIRelation:
    values = service.parse_input(CI_RELATIONS, row.body, creating=True)
    ci_id, other = values["ci"], values["related_ci"]
    if ci_id == other:
        raise service.invalid("related_ci_id", "A CI cannot be related to itself")
    parent, child = (ci_id, other) if values["relation_type"] == "child" else (other, ci_id)
    relation = await run.session.scalar(
        select(Rel).where(
            Rel.account_id == run.imp.account_id, Rel.ci_id == parent, Rel.child_id == child
        )
    )
    if relation is not None:
        changed = relation.source != values.get("source") and values.get("source") is not None
        if changed:
            relation.source = values["source"]
        run.count("updated" if changed else "unchanged")
        return relation
    relation = Rel(
        account_id=run.imp.account_id, ci_id=parent, child_id=child, source=values.get("source")
    )
    run.session.add(relation)
    await run.session.flush()
    await _relation_event(run, "create", relation)
    run.count("created")
    return relation


async def _replace(run: Run, ci_id: int, source: str, started: datetime) -> None:
    """The CI's relations of `source` that existed before this import and it did not name go."""
    stale = list(
        await run.session.scalars(
            select(Rel).where(
                Rel.account_id == run.imp.account_id,
                or_(Rel.ci_id == ci_id, Rel.child_id == ci_id),
                Rel.source == source,
                Rel.created_at < started,
                Rel.id.not_in(run.confirmed) if run.confirmed else Rel.id.is_not(None),
            )
        )
    )
    for relation in stale:
        await _relation_event(run, "destroy", relation)
    if stale:
        await run.session.execute(delete(Rel).where(Rel.id.in_([r.id for r in stale])))
        run.count("deleted", len(stale))


async def _relation_event(run: Run, action: str, relation: m.CIRelation) -> None:
    data = {"action": action, "ci_id": relation.ci_id, "child_id": relation.child_id}
    actor = Actor(run.who.user_id, run.who.credential_id)
    await record(
        run.session,
        run.imp.account_id,
        f"ci_relation.{action}",
        "ci_relation",
        relation.id,
        actor,
        data,
    )


APPLY = {"cis": _apply_cis, "ci_relations": _apply_relations}


# --- the job ---------------------------------------------------------------------------------


@handler(JOB_KIND)
async def import_job(session: AsyncSession, job: Job, ctx: JobContext) -> dict[str, Any]:
    imp = await session.get_one(Import, job.payload["import_id"], options=[undefer(Import.content)])
    return await execute(session, imp, job.progress or {}, ctx.save_progress)

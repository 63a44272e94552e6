"""The unit of a write: one fact sheet's change while patches apply.

A unit is the only write of its transaction (a GraphQL mutation, a REST call): it rolls the
transaction back when it fails or only validates, and its caller commits.

Locks, always in this order, so that writers of one account never deadlock:
1. the account's *structure lock* (PostgreSQL advisory lock), taken first by writes whose rules
   span several fact sheets (relations, hierarchy, names, tags, archiving, collaboration): they
   check and change rows other writers may check at the same time, so they run one at a time;
2. row locks: the fact sheet being written (FOR NO KEY UPDATE: inserting a relation to it only
   needs a key share), then rows of other fact sheets;
3. the account row, last: the outbox takes it to number the write's events and it stays locked
   until commit, so that events commit in `seq` order (core/events.py). The fact sheet writes
   number theirs after the unit (service.py), and take no other lock after it, so it is held
   only for the events' insert and the commit.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.eam.metamodel import FactSheetTypeDef, MetaModel
from landmark.eam.models import FactSheet
from landmark.identity.authn import Principal
from landmark.identity.models import Account


@dataclass
class Change:
    """One write to one fact sheet while its patches are applied."""

    session: AsyncSession
    who: Principal
    model: MetaModel
    fs: FactSheet
    type_def: FactSheetTypeDef
    comment: str | None = None
    creating: bool = False
    changes: dict[str, list[Any]] = field(default_factory=dict)
    rename: bool = False  # the names of the subtree must be recomputed
    status: str | None = None  # ARCHIVED or ACTIVE when /status changed it
    later: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # events after the main
    before: list[tuple[str, str, Any, dict[str, Any]]] = field(default_factory=list)
    """Events of other subjects (a tag created on the fly), recorded before the main one."""

    def changed(self, path: str, old: Any, new: Any) -> None:
        if old != new:
            self.changes[path] = [old, new]

    def event(self, type: str, **data: Any) -> None:
        self.later.append((type, data))


STRUCTURE_LOCK = 0x4541_4D00  # advisory lock class of the inventory's structure ("EAM")


@asynccontextmanager
async def unit(
    session: AsyncSession, account_id: str, validate_only: bool, structural: bool = True
) -> AsyncIterator[None]:
    """A write, rolled back (with its transaction) on error or when only validating.

    `structural` writes take the account's structure lock first (see above); a write that only
    changes its own fact sheet's values passes False. On SQLite the account row is touched
    first instead: SQLite runs one writer at a time, and taking the write lock before reading
    keeps two writers from both reading and then waiting on each other.
    """
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(
            update(Account).where(Account.id == account_id).values(event_seq=Account.event_seq)
        )
    elif structural:
        await session.execute(
            select(func.pg_advisory_xact_lock(STRUCTURE_LOCK, func.hashtext(account_id)))
        )
    try:
        yield
        await session.flush()
    except BaseException:
        await session.rollback()
        raise
    if validate_only:
        await session.rollback()


def snapshot(fs: FactSheet) -> FactSheet:
    """A detached copy, readable after a validate-only rollback expired the original."""
    return FactSheet(**{a.key: getattr(fs, a.key) for a in inspect(FactSheet).column_attrs})

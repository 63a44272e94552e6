"""The unit of a write: one fact sheet's change while patches apply, inside a SAVEPOINT."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import inspect, update
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

    def changed(self, path: str, old: Any, new: Any) -> None:
        if old != new:
            self.changes[path] = [old, new]

    def event(self, type: str, **data: Any) -> None:
        self.later.append((type, data))


@asynccontextmanager
async def unit(session: AsyncSession, account_id: str, validate_only: bool) -> AsyncIterator[None]:
    """A write in a SAVEPOINT, rolled back on error or when only validating.

    The account row is touched first: it opens the real transaction (SQLite's driver would
    otherwise let the SAVEPOINT be the outer transaction and commit on release) and orders the
    account's writers, as the outbox does anyway.
    """
    await session.execute(
        update(Account).where(Account.id == account_id).values(event_seq=Account.event_seq)
    )
    savepoint = await session.begin_nested()
    try:
        yield
        await session.flush()
    except BaseException:
        await savepoint.rollback()
        raise
    if validate_only:
        await savepoint.rollback()
    else:
        await savepoint.commit()


def snapshot(fs: FactSheet) -> FactSheet:
    """A detached copy, readable after a validate-only rollback expired the original."""
    return FactSheet(**{a.key: getattr(fs, a.key) for a in inspect(FactSheet).column_attrs})

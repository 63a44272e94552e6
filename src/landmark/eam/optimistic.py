"""Value updates without a lock held across round trips (PostgreSQL).

An update whose patches change only its own fact sheet's values (the description and fields:
`service._structural` is False), and that is the first work of its session, runs in autocommit:
the fact sheet is read without a lock, the patches apply in memory under the same rules as
every write (service.py), and then ONE statement writes the row, numbers the write's events and
inserts them, on condition that the row is still at the revision that was read. A writer that
came in between makes the condition fail; the update then goes the locked way, as structural
ones do (`service.update_fact_sheet`), so that under contention it waits its turn instead of
retrying. Five round trips (BEGIN, SELECT ... FOR NO KEY UPDATE, UPDATE, events, COMMIT) become
two, and the account row is locked only inside PostgreSQL, for the statement and its commit,
never while this process's event loop is busy elsewhere.
"""

import uuid
from functools import cache
from typing import Any

from sqlalchemy import TextClause, bindparam, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.core.events import numbered_insert, record_many_if
from landmark.eam.errors import not_found
from landmark.eam.models import FactSheet
from landmark.identity.authn import Principal


async def begin(session: AsyncSession) -> bool:
    """Whether the session may write this way: PostgreSQL, and no transaction open yet. Its
    connection is then in autocommit until the caller commits (each statement its own)."""
    if session.get_bind().dialect.name != "postgresql" or session.in_transaction():
        return False
    await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return True


# Built once: each value update runs it.
LOAD = (
    select(FactSheet)
    .where(FactSheet.account_id == bindparam("account_id"), FactSheet.id == bindparam("id"))
    .execution_options(populate_existing=True)
)


async def load(session: AsyncSession, account_id: str, fact_sheet_id: uuid.UUID) -> FactSheet:
    """The fact sheet as it is now (no lock: `write` checks that it did not change)."""
    params = {"account_id": account_id, "id": fact_sheet_id}
    fs = (await session.execute(LOAD, params)).scalar_one_or_none()
    if fs is None:
        raise not_found("/id", "fact sheet", fact_sheet_id)
    return fs


async def write(
    session: AsyncSession,
    who: Principal,
    fs: FactSheet,
    read_rev: int,
    events: list[tuple[str, str, Any, dict[str, Any]]],
) -> bool:
    """The row's changed columns and the events, in one statement, if the row is still at
    `read_rev` (no events: nothing changed, nothing to write). Either way the fact sheet
    leaves the session, so that nothing flushes it unguarded: when written, the row holds its
    values; when not, the caller starts over."""
    if not events:
        session.expunge(fs)
        return True
    state: Any = inspect(fs)
    # Only attributes set since the read can have changed (their old values are kept there).
    attrs = state.attrs
    changed = {
        key: attrs[key].value for key in state.committed_state if attrs[key].history.has_changes()
    }
    params = {f"set_{key}": value for key, value in changed.items()}
    params.update(account_id=who.account_id, fact_sheet_id=fs.id, read_rev=read_rev)
    statement = _guarded(tuple(sorted(changed)))
    with session.no_autoflush:  # the statement writes the row; the ORM must not
        written = await record_many_if(
            session, statement, params, who.account_id, events, who.actor
        )
    session.expunge(fs)
    return written


@cache
def _guarded(keys: tuple[str, ...]) -> TextClause:
    """The statement for one set of changed columns, built once."""
    table: Any = FactSheet.__table__
    sets = ", ".join(f"{table.c[key].name} = :set_{key}" for key in keys)
    update = (
        f"UPDATE {table.name} SET {sets} WHERE account_id = :account_id"
        " AND id = :fact_sheet_id AND rev = :read_rev RETURNING id"
    )
    types = [bindparam(f"set_{key}", type_=table.c[key].type) for key in keys]
    return numbered_insert(update).bindparams(
        *types, bindparam("fact_sheet_id", type_=table.c.id.type)
    )

"""What every resolver of one request sees, and the batch loaders that prevent N+1 queries.

Batching is by *lookahead*, not by timing: every fact sheet a request materialises (a page of
`allFactSheets`, the targets of relations, ...) is remembered, and the first time a resolver asks
for, say, the tags of one of them, the tags of all remembered fact sheets not loaded yet are read
in one statement. The number of statements therefore depends on the shape of the query, never on
the number of fact sheets it returns. One lock serialises the request's statements in its
session (an AsyncSession runs one at a time); reads through `Reads` take a connection each.
"""

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from uuid import UUID

from graphql import FieldNode, GraphQLResolveInfo
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.api.graphql.lookahead import relation_columns
from landmark.core.db import Reads
from landmark.eam.queries import RelationColumns
from landmark.identity.authn import Principal
from landmark.identity.models import User

Batch = Callable[[list[Any]], Awaitable[dict[Any, Any]]]
MISSING = object()  # not loaded yet


class Loader:
    """Values by key, loaded for every pending key at once on the first miss."""

    def __init__(
        self, lock: asyncio.Lock, batch: Batch, default: Callable[[], Any], per_fact_sheet: bool
    ) -> None:
        self.lock = lock
        self.batch = batch
        self.default = default
        self.per_fact_sheet = per_fact_sheet  # keyed by fact sheet id: expects every one seen
        self.values: dict[Any, Any] = {}
        self.pending: dict[Any, None] = {}  # insertion-ordered set

    def expect(self, keys: Iterable[Any]) -> None:
        for key in keys:
            if key not in self.values:
                self.pending[key] = None

    async def load(self, key: Any) -> Any:
        if key not in self.values:
            self.pending[key] = None
            async with self.lock:
                if key not in self.values:  # another resolver may have loaded it meanwhile
                    keys = list(self.pending)
                    self.pending.clear()
                    found = await self.batch(keys)
                    for k in keys:
                        self.values[k] = found.get(k, self.default())
        return self.values[key]


@dataclass
class Context:
    """One GraphQL request: who asks, in which session, with which meta model."""

    session: AsyncSession
    who: Principal
    model: Any  # landmark.eam.metamodel.MetaModel
    reads: Reads  # the busiest reads, off the ORM (core/db.py)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    loaders: dict[Hashable, Loader] = field(default_factory=dict)
    fact_sheet_ids: dict[UUID, None] = field(default_factory=dict)  # every one seen, in order
    columns: dict[int, RelationColumns] = field(default_factory=dict)  # by first field node

    @cached_property
    def relation_names(self) -> frozenset[str]:
        return self.model.relation_names()  # type: ignore[no-any-return]

    def relation_columns(
        self, relation_fields: list[FieldNode], info: GraphQLResolveInfo
    ) -> RelationColumns:
        """The columns these (merged) relation fields read (lookahead.py); decided once per
        field and request."""
        key = id(relation_fields[0])
        found = self.columns.get(key)
        if found is None:
            found = self.columns[key] = relation_columns(relation_fields, info, self.relation_names)
        return found

    @property
    def account_id(self) -> str:
        return self.who.account_id

    def close(self) -> None:
        """Forget what the loaders hold. Their batch functions refer back to this context, a
        cycle: cleared, the request's rows are freed at once by reference counting instead of
        waiting, thousands of them, for the garbage collector."""
        self.loaders.clear()
        self.fact_sheet_ids.clear()

    async def run(self, work: Callable[[], Awaitable[Any]]) -> Any:
        """Run statements outside the loaders, one at a time with theirs."""
        async with self.lock:
            return await work()

    def loader(
        self,
        name: Hashable,
        batch: Batch,
        default: Callable[[], Any] = list,
        per_fact_sheet: bool = True,
        in_session: bool = True,
    ) -> Loader:
        """The request's loader called `name`, made on first use. One whose batch reads
        through `reads`, not the session (`in_session=False`), has a lock of its own: it may
        run while the session runs a statement."""
        found = self.loaders.get(name)
        if found is None:
            lock = self.lock if in_session else asyncio.Lock()
            found = self.loaders[name] = Loader(lock, batch, default, per_fact_sheet)
            if per_fact_sheet:
                found.expect(self._seen_fact_sheets())
        return found

    def loaded(self, name: Hashable, key: Any) -> Any:
        """The value loader `name` already holds for `key`, else MISSING: a resolver then
        answers without a coroutine (graphql-core gathers those in a task each)."""
        found = self.loaders.get(name)
        return found.values.get(key, MISSING) if found is not None else MISSING

    def _seen_fact_sheets(self) -> Iterable[UUID]:
        return self.fact_sheet_ids.keys()

    def seen(self, fact_sheets: Iterable[Any], whole: bool = True) -> list[Any]:
        """Remember fact sheets the response will show, so that their details load together.
        `whole`: rows of every column, which later asks for the same fact sheet may use; rows
        of some columns (a relation's far ends: queries.RelationColumns) only announce their
        ids."""
        rows = [fs for fs in fact_sheets if fs is not None]
        if whole:
            sheets = self.fact_sheet_loader()
            for fs in rows:
                sheets.values[fs.id] = fs
        ids = [fs.id for fs in rows]
        self.fact_sheet_ids.update(dict.fromkeys(ids))
        for loader in self.loaders.values():
            if loader.per_fact_sheet:
                loader.expect(ids)
        return rows

    def fact_sheet_loader(self) -> Loader:
        from landmark.eam import queries

        async def batch(ids: list[UUID]) -> dict[UUID, Any]:
            rows = await queries.fact_sheets_by_ids(self.session, self.account_id, ids)
            found = rows.values() if isinstance(rows, dict) else rows
            return {fs.id: fs for fs in found}

        return self.loader("fact_sheet", batch, lambda: None, per_fact_sheet=False)

    async def fact_sheet(self, fact_sheet_id: UUID) -> Any:
        """One fact sheet (loaded with every other one asked for meanwhile)."""
        found = await self.fact_sheet_loader().load(fact_sheet_id)
        if found is not None:
            self.seen([found])
        return found

    def _users(self) -> Loader:
        async def batch(ids: list[int]) -> dict[int, User]:
            rows = await self.session.scalars(select(User).where(User.id.in_(ids)))
            return {u.id: u for u in rows}

        return self.loader("user", batch, lambda: None, per_fact_sheet=False)

    def expect_users(self, user_ids: Iterable[int]) -> None:
        """Users the response will show (of subscriptions, comments): loaded together."""
        self._users().expect(user_ids)

    async def user(self, user_id: int | None) -> User | None:
        if user_id is None:
            return None
        return await self._users().load(user_id)  # type: ignore[no-any-return]


def group(rows: Iterable[Any], key: Callable[[Any], Any]) -> dict[Any, list[Any]]:
    """Rows grouped by `key`, in their order."""
    out: dict[Any, list[Any]] = defaultdict(list)
    for row in rows:
        out[key(row)].append(row)
    return out

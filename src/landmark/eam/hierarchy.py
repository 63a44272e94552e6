"""The fact-sheet hierarchy (relToParent): levels, full names, depth and cycle rules.

`parent_id` mirrors the relToParent relation so that a subtree is found level by level (one
statement per level, at most `maxHierarchyLevel` of them).
"""

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.eam.change import Change
from landmark.eam.errors import invalid
from landmark.eam.models import FactSheet

SEPARATOR = " / "


def _set_names(fs: FactSheet, parent: FactSheet | None) -> None:
    fs.level = parent.level + 1 if parent else 1
    fs.full_name = f"{parent.full_name}{SEPARATOR}{fs.name}" if parent else fs.name
    release = fs.fields.get("release")
    fs.display_name = f"{fs.full_name} {release}" if isinstance(release, str) else fs.full_name


async def _children(
    session: AsyncSession, account_id: str, ids: list[uuid.UUID]
) -> list[FactSheet]:
    query = select(FactSheet).where(
        FactSheet.account_id == account_id, FactSheet.parent_id.in_(ids)
    )
    return list((await session.execute(query)).scalars())


async def rename_subtree(session: AsyncSession, account_id: str, root: FactSheet) -> None:
    """Recompute level, full name and display name of `root` and everything below it."""
    parent = await _parent(session, account_id, root)
    _set_names(root, parent)
    frontier = {root.id: root}
    while frontier:
        children = await _children(session, account_id, list(frontier))
        for child in children:
            _set_names(child, frontier[child.parent_id])  # type: ignore[index]
        frontier = {c.id: c for c in children}


async def _parent(session: AsyncSession, account_id: str, fs: FactSheet) -> FactSheet | None:
    if fs.parent_id is None:
        return None
    parent = await session.get(FactSheet, fs.parent_id)
    return parent if parent is not None and parent.account_id == account_id else None


async def _height(session: AsyncSession, account_id: str, root: FactSheet) -> int:
    """How many levels lie below `root`."""
    height, frontier = 0, [root.id]
    while frontier := [c.id for c in await _children(session, account_id, frontier)]:
        height += 1
    return height


async def set_parent(change: Change, child: FactSheet, parent: FactSheet | None, path: str) -> None:
    """Hang `child` under `parent` (or make it a root): no cycle, no level beyond the type's
    maxHierarchyLevel; then the subtree's levels and names follow."""
    session, account_id = change.session, change.who.account_id
    if parent is not None:
        node: FactSheet | None = parent
        while node is not None:
            if node.id == child.id:
                raise invalid(path, "HIERARCHY_CYCLE", f"{parent.name!r} is below {child.name!r}")
            node = await _parent(session, account_id, node)
        limit = change.model.types[child.type].max_hierarchy_level
        deepest = parent.level + 1 + await _height(session, account_id, child)
        if deepest > limit:
            message = f"the hierarchy of {child.type} is limited to {limit} levels (got {deepest})"
            raise invalid(path, "HIERARCHY_DEPTH", message, child.id)
    child.parent_id = parent.id if parent else None
    await rename_subtree(session, account_id, child)

"""cmdb indexes: the CI list's sorted indexes INCLUDE the columns its usual filters test

PostgreSQL only (SQLite has no INCLUDE): the list's exact count becomes an index-only scan.

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-24 02:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIST_INDEXES = (
    ("label",),
    ("status", "label"),
    ("support_team_id", "label"),
    ("category_id", "label"),
)
INCLUDE = ("hidden", "status", "support_team_id")


def _recreate(include: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for cols in LIST_INDEXES:
        name = f"ix_cis_account_{'_'.join(cols)}"
        extra = [c for c in INCLUDE if c not in cols] if include else []
        op.drop_index(name, table_name="cis")
        op.create_index(name, "cis", ["account_id", *cols], postgresql_include=extra)


def upgrade() -> None:
    _recreate(include=True)


def downgrade() -> None:
    _recreate(include=False)

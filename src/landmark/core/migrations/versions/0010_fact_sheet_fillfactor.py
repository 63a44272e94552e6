"""Fact sheets leave room in each page for their next version (fillfactor 80 on PostgreSQL)

An update that finds room on its row's page is a HOT update: no new entry in any of the table's
seven indexes (two of them GIN). On full pages (a bulk load, fillfactor 100) ~97% of updates
were not HOT. Existing pages keep their fill until rewritten; new ones follow the setting.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 08:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE eam_fact_sheets SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE eam_fact_sheets RESET (fillfactor)")

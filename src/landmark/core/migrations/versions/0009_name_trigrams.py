"""Full-text search is ILIKE on the name: its trigram index is on the name itself

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 17:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _has_trigram_index(name: str) -> bool:
    found = op.get_bind().execute(sa.text("SELECT to_regclass(:name)"), {"name": name})
    return found.scalar() is not None


def upgrade() -> None:
    """Replace the index on lower(name) made by 0006 (where pg_trgm could be had)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    if _has_trigram_index("ix_eam_fact_sheets_lname_trgm"):
        op.drop_index("ix_eam_fact_sheets_lname_trgm", table_name="eam_fact_sheets")
        op.create_index(
            "ix_eam_fact_sheets_name_trgm",
            "eam_fact_sheets",
            [sa.text("name gin_trgm_ops")],
            postgresql_using="gin",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    if _has_trigram_index("ix_eam_fact_sheets_name_trgm"):
        op.drop_index("ix_eam_fact_sheets_name_trgm", table_name="eam_fact_sheets")
        op.create_index(
            "ix_eam_fact_sheets_lname_trgm",
            "eam_fact_sheets",
            [sa.text("lower(name) gin_trgm_ops")],
            postgresql_using="gin",
        )

"""Fact sheet search: each fact sheet's tag ids (in a GIN index on PostgreSQL), and the trigram
index on the name itself (full-text search is ILIKE)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 17:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import landmark.core.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite keeps a UUID as 32 hex digits; the copy holds the usual text form.
_SQLITE_TEXT = (
    "lower(substr(t.tag_id, 1, 8) || '-' || substr(t.tag_id, 9, 4) || '-' ||"
    " substr(t.tag_id, 13, 4) || '-' || substr(t.tag_id, 17, 4) || '-' || substr(t.tag_id, 21))"
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("eam_fact_sheets") as batch_op:
        batch_op.add_column(
            sa.Column("tag_ids", landmark.core.db.JSONType, nullable=False, server_default="[]")
        )
    if postgres:
        op.execute(
            "UPDATE eam_fact_sheets f SET tag_ids = t.ids FROM (SELECT fact_sheet_id,"
            " jsonb_agg(tag_id::text ORDER BY tag_id::text) AS ids FROM eam_fact_sheet_tags"
            " GROUP BY fact_sheet_id) t WHERE t.fact_sheet_id = f.id"
        )
        op.execute(
            "CREATE INDEX ix_eam_fact_sheets_tag_ids ON eam_fact_sheets"
            " USING gin (tag_ids jsonb_path_ops)"
        )
        _name_trigrams("lower(name) gin_trgm_ops", "name gin_trgm_ops")
    else:
        op.execute(
            "UPDATE eam_fact_sheets SET tag_ids = (SELECT json_group_array(text) FROM"
            f" (SELECT {_SQLITE_TEXT} AS text FROM eam_fact_sheet_tags t"
            " WHERE t.fact_sheet_id = eam_fact_sheets.id ORDER BY text))"
            " WHERE id IN (SELECT fact_sheet_id FROM eam_fact_sheet_tags)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_eam_fact_sheets_tag_ids", table_name="eam_fact_sheets")
        _name_trigrams("name gin_trgm_ops", "lower(name) gin_trgm_ops")
    with op.batch_alter_table("eam_fact_sheets") as batch_op:
        batch_op.drop_column("tag_ids")


_TRIGRAM_INDEXES = {
    "lower(name) gin_trgm_ops": "ix_eam_fact_sheets_lname_trgm",
    "name gin_trgm_ops": "ix_eam_fact_sheets_name_trgm",
}


def _name_trigrams(old: str, new: str) -> None:
    """Replace the trigram index `old` with `new`, where 0006 could make one (pg_trgm)."""
    found = op.get_bind().execute(sa.text("SELECT to_regclass(:n)"), {"n": _TRIGRAM_INDEXES[old]})
    if found.scalar() is None:
        return
    op.drop_index(_TRIGRAM_INDEXES[old], table_name="eam_fact_sheets")
    op.create_index(
        _TRIGRAM_INDEXES[new], "eam_fact_sheets", [sa.text(new)], postgresql_using="gin"
    )

"""Alembic environment: runs on the connection that core/migrate.py hands over."""

from alembic import context

import landmark.models  # noqa: F401  (registers every table on the metadata)
from landmark.core.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `landmark migrate`")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

"""Calls keep the engine's input journal and start snapshot (replay after a crash).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 20:25:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("snapshot", JSON_DOC, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("journal", JSON_DOC, nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("journal")
        batch.drop_column("snapshot")

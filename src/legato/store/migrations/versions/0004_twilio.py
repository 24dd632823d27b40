"""Twilio layer: call SIDs with callback settings, the signing token, the callback outbox.

Revision ID: 0004tw
Revises: 0003
Create Date: 2026-11-25 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Registers the Twilio tables on the store's metadata (schema test, autogenerate).
import legato.twilio.models  # noqa: F401

revision: str = "0004tw"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "twilio_calls",
        sa.Column("call_sid", sa.String(length=34), nullable=False),
        sa.Column("call_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("method", sa.String(length=4), nullable=False),
        sa.Column("status_callback", sa.Text(), nullable=True),
        sa.Column("status_callback_method", sa.String(length=4), nullable=False),
        sa.Column("status_callback_events", JSON_DOC, nullable=False),
        sa.Column("reported", JSON_DOC, nullable=False),
        sa.Column("next_sequence", sa.Integer(), nullable=False),
        sa.Column("ended_via_api", sa.String(length=10), nullable=True),
        sa.Column("deleted_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_twilio_calls_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"],
                                name=op.f("fk_twilio_calls_call_id_calls"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("call_sid", name=op.f("pk_twilio_calls")),
        sa.UniqueConstraint("call_id", name=op.f("uq_twilio_calls_call_id")),
    )
    op.create_index("ix_twilio_calls_account_call", "twilio_calls", ["account_id", "call_id"])
    op.create_table(
        "twilio_auth_tokens",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_twilio_auth_tokens_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"],
                                name=op.f("fk_twilio_auth_tokens_key_id_api_keys"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_twilio_auth_tokens")),
    )
    op.create_table(
        "twilio_callbacks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_sid", sa.String(length=34), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("method", sa.String(length=4), nullable=False),
        sa.Column("params", JSON_DOC, nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["call_sid"], ["twilio_calls.call_sid"],
                                name=op.f("fk_twilio_callbacks_call_sid_twilio_calls"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_twilio_callbacks")),
        sa.UniqueConstraint("call_sid", "sequence", name="uq_twilio_callbacks_call_sequence"),
    )
    op.create_index("ix_twilio_callbacks_state_due", "twilio_callbacks",
                    ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_twilio_callbacks_state_due", table_name="twilio_callbacks")
    op.drop_table("twilio_callbacks")
    op.drop_table("twilio_auth_tokens")
    op.drop_index("ix_twilio_calls_account_call", table_name="twilio_calls")
    op.drop_table("twilio_calls")

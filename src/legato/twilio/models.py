"""The Twilio layer's tables: call SIDs with their callback settings, the signing token,
and the status-callback outbox.

They share the store's declarative base, so the schema test that compares migrations
with models covers them. Callback rows are written in the call writer's transaction: a
callback exists exactly when the call state behind it was committed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from legato.store.models import Base
from legato.store.types import JSONDoc, utcnow

#: Callback delivery states (`pending` includes waiting for a retry).
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


class TwilioCall(Base):
    """A call placed through the Twilio API: its SID and how it reports its progress."""

    __tablename__ = "twilio_calls"
    __table_args__ = (Index("ix_twilio_calls_account_call", "account_id", "call_id"),)

    call_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    call_id: Mapped[str] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    url: Mapped[str | None] = mapped_column(Text, default=None)
    method: Mapped[str] = mapped_column(String(4), default="POST")
    status_callback: Mapped[str | None] = mapped_column(Text, default=None)
    status_callback_method: Mapped[str] = mapped_column(String(4), default="POST")
    #: Subscribed StatusCallbackEvent values (initiated, ringing, answered, completed).
    status_callback_events: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    #: Progress events already turned into callbacks (each once), and the next sequence.
    reported: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    next_sequence: Mapped[int] = mapped_column(Integer, default=0)
    #: "canceled" or "completed" when the API ended the call (Status=...).
    ended_via_api: Mapped[str | None] = mapped_column(String(10), default=None)
    #: Deleted through the API: hidden from it, its callbacks still delivered.
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TwilioAuthToken(Base):
    """The API key that signs an account's Twilio-layer requests (its "auth token").

    Signing needs the key in clear (HMAC), so it is kept here like a webhook secret: the
    first key that authenticates on the Twilio API, until it is revoked.
    """

    __tablename__ = "twilio_auth_tokens"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TwilioCallback(Base):
    """One status callback of one call, delivered in sequence order, retried until done."""

    __tablename__ = "twilio_callbacks"
    __table_args__ = (
        UniqueConstraint("call_sid", "sequence", name="uq_twilio_callbacks_call_sequence"),
        Index("ix_twilio_callbacks_state_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_sid: Mapped[str] = mapped_column(
        ForeignKey("twilio_calls.call_sid", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(20))
    url: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(4))
    #: The form parameters, in order: [[name, value], ...].
    params: Mapped[list[Any]] = mapped_column(JSONDoc, default=list)
    state: Mapped[str] = mapped_column(String(10), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

"""The webhook tables: endpoints, the event outbox, deliveries and their attempt log.

They share the store's declarative base (one metadata, one naming convention) so the
schema check that compares migrations with models covers them too. Rows written here in
the call writer's transaction are the outbox: an event exists exactly when the call state
that caused it was committed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from legato.store.models import Base
from legato.store.types import JSONDoc, utcnow

#: Endpoint kinds: one the account registered, or the account's per-call callback signer.
ENDPOINT, CALLBACK = "endpoint", "callback"
#: Delivery states. `pending` includes waiting for a retry; `failed` means given up.
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


class WebhookEndpoint(Base):
    """Where an account's events go, which ones, and the secrets that sign them.

    The secret is kept in clear because signing needs it (HMAC), as in every Standard
    Webhooks implementation; it is returned by the API only when created or rotated.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_account_kind", "account_id", "kind"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10), default=ENDPOINT)
    url: Mapped[str | None] = mapped_column(Text, default=None)
    description: Mapped[str | None] = mapped_column(String(200), default=None)
    #: Subscribed event types; an empty list means every type.
    events: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Who disabled it (`user` or `failures`) and why, shown to the account.
    disabled_by: Mapped[str | None] = mapped_column(String(10), default=None)
    disabled_reason: Mapped[str | None] = mapped_column(Text, default=None)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    #: When the current run of failed attempts began (None: the last attempt succeeded).
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    secret: Mapped[str] = mapped_column(String(100))
    #: The secret before the last rotation; it keeps signing until `previous_expires_at`.
    previous_secret: Mapped[str | None] = mapped_column(String(100), default=None)
    previous_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookCallCursor(Base):
    """How far a call's webhook events have been written, so each is written once."""

    __tablename__ = "webhook_call_cursors"

    call_id: Mapped[str] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(String(40))
    next_sequence: Mapped[int] = mapped_column(Integer, default=1)
    #: Which leg facts were already announced: {"leg:attempt": "rae"} (ringing/answered/ended).
    legs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookEvent(Base):
    """One event, once: its id is the `webhook-id` every delivery of it carries."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("call_id", "sequence", name="uq_webhook_events_call_sequence"),
        Index("ix_webhook_events_account_created", "account_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    call_id: Mapped[str] = mapped_column(String(40))
    sequence: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40))
    #: The exact JSON body sent (Standard Webhooks envelope), serialised once.
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event on its way to one target URL: state, schedule, lease and last result."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", "url", name="uq_webhook_deliveries_target"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_order", "endpoint_id", "call_id", "sequence"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(40))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    call_id: Mapped[str] = mapped_column(String(40))
    sequence: Mapped[int] = mapped_column(Integer)
    event_type: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(10), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: A worker holds the row until this instant while it sends (crash-safe claim).
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    leased_by: Mapped[str | None] = mapped_column(String(40), default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookAttempt(Base):
    """Every HTTP attempt, kept for the delivery log."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    response_excerpt: Mapped[str | None] = mapped_column(Text, default=None)

"""The tables: accounts, API keys, numbers, calls, legs and events (SQLAlchemy 2, typed).

Every row that belongs to a business carries `account_id`; the API scopes each query by
it. Calls keep their normalised columns (for filters and reports) beside the full call
record document (DESIGN section 7) that the API returns verbatim.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from legato.store.types import JSONDoc, UTCDateTime, utcnow

#: Deterministic constraint names, so migrations can name what they alter on both engines.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base sharing one metadata (and naming convention) for all tables."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSONDoc}


class Account(Base):
    """A business using Legato: the tenant every other row belongs to."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: Account-wide settings (dialling permissions, DND scrubbing), a JSON document.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    keys: Mapped[list[ApiKey]] = relationship(back_populates="account")


class ApiKey(Base):
    """An API key, stored as its SHA-256; only the prefix is kept in clear."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    account: Mapped[Account] = relationship(back_populates="keys")


class Number(Base):
    """A Legato number (a virtual number a business owns) and its configuration.

    A number belongs to exactly one account (unique across accounts), because an incoming
    call to it must route to one business.
    """

    __tablename__ = "numbers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[str] = mapped_column(String(20), unique=True)
    #: The scenario `config` block (DESIGN section 6), validated before it is stored.
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Call(Base):
    """One call: its request, its live state while it runs and its final record."""

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("account_id", "idempotency_key", name="uq_calls_account_idempotency"),
        Index("ix_calls_account_id_id", "account_id", "id"),
        Index("ix_calls_account_status", "account_id", "status"),
        Index("ix_calls_account_started", "account_id", "started_at"),
        Index("ix_calls_state", "state"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(20))
    #: queued -> in_progress -> completed. `status` is set only when completed.
    state: Mapped[str] = mapped_column(String(20), default="queued")
    status: Mapped[str | None] = mapped_column(String(20), default=None)
    number: Mapped[str] = mapped_column(String(20))
    #: The numbers of each side as JSON lists, and "|a|b|" strings for portable filters.
    from_numbers: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    to_numbers: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    from_index: Mapped[str] = mapped_column(Text, default="")
    to_index: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    duration_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    billable_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    #: answered_at -> ended_at in seconds (unrounded), the basis of ACD in reports.
    connected_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    disconnected_by: Mapped[str | None] = mapped_column(String(20), default=None)
    connected_to: Mapped[str | None] = mapped_column(String(40), default=None)
    picked_by: Mapped[str | None] = mapped_column(String(40), default=None)
    #: Why the platform ended the call when it was not the flow (e.g. a restart).
    end_reason: Mapped[str | None] = mapped_column(Text, default=None)
    custom_data: Mapped[Any] = mapped_column(JSONDoc, default=None, nullable=True)
    callback_url: Mapped[str | None] = mapped_column(Text, default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The validated request, enough to run the call again from nothing.
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: What the engine was started with (config snapshot, clock origin): replay input.
    snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Every input fed to the engine (start, events, timers) with its time, in order, so a
    #: call interrupted by a crash can be replayed to its last state and ended exactly.
    journal: Mapped[list[Any]] = mapped_column(JSONDoc, default=list)
    #: The call record document (DESIGN section 7): partial while live, final once ended.
    record: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    legs: Mapped[list[Leg]] = relationship(
        back_populates="call", cascade="all, delete-orphan", order_by="Leg.position"
    )
    events: Mapped[list[Event]] = relationship(
        back_populates="call", cascade="all, delete-orphan", order_by="Event.seq"
    )


class Leg(Base):
    """One leg attempt of a finished call, normalised for reports (PDD, outcomes)."""

    __tablename__ = "legs"
    __table_args__ = (UniqueConstraint("call_id", "position", name="uq_legs_call_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    leg: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    role: Mapped[str | None] = mapped_column(String(20), default=None)
    number: Mapped[str | None] = mapped_column(String(40), default=None)
    direction: Mapped[str | None] = mapped_column(String(10), default=None)
    outcome: Mapped[str | None] = mapped_column(String(20), default=None)
    sip_code: Mapped[int | None] = mapped_column(Integer, default=None)
    sip_reason: Mapped[str | None] = mapped_column(String(100), default=None)
    q850_cause: Mapped[int | None] = mapped_column(Integer, default=None)
    q850_derived: Mapped[bool | None] = mapped_column(Boolean, default=None)
    dialed_at: Mapped[datetime | None] = mapped_column(default=None)
    ringing_at: Mapped[datetime | None] = mapped_column(default=None)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    ring_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    talk_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    ended_by: Mapped[str | None] = mapped_column(String(20), default=None)
    pdd_ms: Mapped[float | None] = mapped_column(Float, default=None)

    call: Mapped[Call] = relationship(back_populates="legs")


class Event(Base):
    """One event of a call's timeline, in order (`seq` per call)."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("call_id", "seq", name="uq_events_call_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    t: Mapped[float] = mapped_column(Float)
    leg: Mapped[int | None] = mapped_column(Integer, default=None)
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    call: Mapped[Call] = relationship(back_populates="events")

"""Endpoints, the delivery log and redelivery: what the API and the CLI share.

Every function takes the account id and never touches another account's rows; a row of
another account is reported as not found, exactly like a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from legato.store.accounts import NotFound
from legato.store.ids import new_id
from legato.store.types import utcnow
from legato.webhooks.events import EVENT_TYPES, subscribed
from legato.webhooks.models import (
    CALLBACK,
    ENDPOINT,
    FAILED,
    PENDING,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from legato.webhooks.outbox import callback_endpoint
from legato.webhooks.signing import new_secret


class InvalidField(ValueError):
    """A field breaks a rule: carries the field name and the rule for the error."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.rule = rule
        self.message = message


def check_url(url: str, field: str = "url") -> str:
    """An absolute http(s) URL with a host; anything else cannot receive a POST."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidField(field, "http_url", f"{url!r} is not an absolute http:// or https:// URL")
    if len(url) > 2000:
        raise InvalidField(field, "max_length", "at most 2000 characters")
    return url


def check_events(events: list[str] | None, field: str = "events") -> list[str]:
    """Known event types, each once; empty means every type."""
    out: list[str] = []
    for i, kind in enumerate(events or []):
        if kind not in EVENT_TYPES:
            raise InvalidField(
                f"{field}[{i}]", "event_type", f"{kind!r} is not one of {', '.join(EVENT_TYPES)}"
            )
        if kind in out:
            raise InvalidField(f"{field}[{i}]", "unique", f"{kind} is given twice")
        out.append(kind)
    return out


@dataclass(frozen=True, slots=True)
class Issued:
    """An endpoint with its secret in clear: only on creation and rotation."""

    endpoint: WebhookEndpoint
    secret: str


def create_endpoint(
    session: Session,
    account_id: str,
    url: str,
    events: list[str] | None = None,
    description: str | None = None,
) -> Issued:
    secret = new_secret()
    endpoint = WebhookEndpoint(
        id=new_id("wh"),
        account_id=account_id,
        kind=ENDPOINT,
        url=check_url(url),
        description=description,
        events=check_events(events),
        enabled=True,
        consecutive_failures=0,
        secret=secret,
    )
    session.add(endpoint)
    session.flush()
    return Issued(endpoint, secret)


def list_endpoints(session: Session, account_id: str) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.account_id == account_id, WebhookEndpoint.kind == ENDPOINT)
            .order_by(WebhookEndpoint.id)
        )
    )


def get_endpoint(session: Session, account_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.account_id == account_id,
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.kind == ENDPOINT,
        )
    )
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return endpoint


def update_endpoint(
    session: Session,
    account_id: str,
    endpoint_id: str,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    enabled: bool | None = None,
    description: str | None = None,
) -> WebhookEndpoint:
    """Change what was given; enabling clears the failure run and the disabled reason."""
    endpoint = get_endpoint(session, account_id, endpoint_id)
    if url is not None:
        endpoint.url = check_url(url)
        d = WebhookDelivery
        session.execute(  # what is still to send goes to the new address
            update(d)
            .where(d.endpoint_id == endpoint.id, d.state == PENDING)
            .values(url=endpoint.url)
            .execution_options(synchronize_session=False)
        )
    if events is not None:
        endpoint.events = check_events(events)
    if description is not None:
        endpoint.description = description
    if enabled is True:
        endpoint.enabled = True
        endpoint.disabled_by = endpoint.disabled_reason = endpoint.disabled_at = None
        endpoint.consecutive_failures = 0
        endpoint.failing_since = None
    elif enabled is False and endpoint.enabled:
        endpoint.enabled = False
        endpoint.disabled_by = "user"
        endpoint.disabled_reason = "disabled by the account"
        endpoint.disabled_at = utcnow()
    endpoint.updated_at = utcnow()
    session.flush()
    return endpoint


def delete_endpoint(session: Session, account_id: str, endpoint_id: str) -> None:
    """Delete the endpoint with its deliveries and their log (events stay for others)."""
    session.delete(get_endpoint(session, account_id, endpoint_id))
    session.flush()


def rotate_secret(session: Session, endpoint: WebhookEndpoint, overlap_seconds: float) -> Issued:
    """A new secret now; the old one keeps signing (a second `v1,`) for the overlap."""
    secret = new_secret()
    now = utcnow()
    if overlap_seconds > 0:
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_expires_at = now + timedelta(seconds=overlap_seconds)
    else:
        endpoint.previous_secret = endpoint.previous_expires_at = None
    endpoint.secret = secret
    endpoint.updated_at = now
    session.flush()
    return Issued(endpoint, secret)


def rotate_callback_secret(session: Session, account_id: str, overlap_seconds: float) -> Issued:
    """The secret that signs per-call callback URLs: created (or rotated) and shown once."""
    existing = session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.account_id == account_id, WebhookEndpoint.kind == CALLBACK
        )
    )
    if existing is None:
        endpoint = callback_endpoint(session, account_id)
        return Issued(endpoint, endpoint.secret)
    return rotate_secret(session, existing, overlap_seconds)


def endpoint_document(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events or []),
        "enabled": endpoint.enabled,
        "disabled_by": endpoint.disabled_by,
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": _iso(endpoint.disabled_at),
        "consecutive_failures": endpoint.consecutive_failures,
        "failing_since": _iso(endpoint.failing_since),
        "previous_secret_expires_at": _iso(endpoint.previous_expires_at)
        if endpoint.previous_secret
        else None,
        "created_at": _iso(endpoint.created_at),
        "updated_at": _iso(endpoint.updated_at),
    }
    if secret is not None:
        doc["secret"] = secret
    return doc


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# ------------------------------------------------------------------ the delivery log
def list_deliveries(
    session: Session,
    account_id: str,
    endpoint_id: str,
    *,
    state: str | None = None,
    call_id: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
    attempts_per_delivery: int = 20,
) -> tuple[list[dict[str, Any]], int | None]:
    """The endpoint's deliveries, newest first, each with its attempts; and the next cursor."""
    get_endpoint(session, account_id, endpoint_id)
    d = WebhookDelivery
    stmt = select(d).where(d.endpoint_id == endpoint_id, d.account_id == account_id)
    if state:
        stmt = stmt.where(d.state == state)
    if call_id:
        stmt = stmt.where(d.call_id == call_id)
    if before_id is not None:
        stmt = stmt.where(d.id < before_id)
    rows = list(session.scalars(stmt.order_by(d.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    attempts: dict[int, list[WebhookAttempt]] = {}
    if rows:
        for a in session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([r.id for r in rows]))
            .order_by(WebhookAttempt.id)
        ):
            attempts.setdefault(a.delivery_id, []).append(a)
    docs = [_delivery_doc(r, attempts.get(r.id, [])[-attempts_per_delivery:]) for r in rows]
    return docs, (rows[-1].id if more and rows else None)


def _delivery_doc(row: WebhookDelivery, attempts: list[WebhookAttempt]) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "call_id": row.call_id,
        "sequence": row.sequence,
        "url": row.url,
        "state": row.state,
        "attempts": row.attempts,
        "next_attempt_at": _iso(row.next_attempt_at) if row.state == PENDING else None,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "delivered_at": _iso(row.delivered_at),
        "created_at": _iso(row.created_at),
        "log": [
            {
                "attempted_at": _iso(a.attempted_at),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "response": a.response_excerpt,
            }
            for a in attempts
        ],
    }


def redeliver(
    session: Session,
    account_id: str,
    endpoint_id: str,
    *,
    event_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Send again one event (any state), or every failed delivery in a time range.

    The event keeps its id, so receivers that already have it can drop the copy. Returns
    how many deliveries were queued.
    """
    endpoint = get_endpoint(session, account_id, endpoint_id)
    now = utcnow()
    d = WebhookDelivery
    reset = {
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": None,
        "leased_by": None,
        "updated_at": now,
    }
    if event_id is not None:
        ev = session.scalar(
            select(WebhookEvent).where(
                WebhookEvent.id == event_id, WebhookEvent.account_id == account_id
            )
        )
        if ev is None:
            raise NotFound(f"event {event_id} not found")
        if not subscribed(endpoint.events, ev.type):
            raise InvalidField(
                "event_id", "subscribed", f"the endpoint is not subscribed to {ev.type}"
            )
        existing = session.scalar(
            select(d).where(d.endpoint_id == endpoint.id, d.event_id == ev.id)
        )
        if existing is None:
            session.add(
                WebhookDelivery(
                    account_id=account_id,
                    endpoint_id=endpoint.id,
                    event_id=ev.id,
                    url=endpoint.url or "",
                    call_id=ev.call_id,
                    sequence=ev.sequence,
                    event_type=ev.type,
                    created_at=now,
                    **reset,
                )
            )
        else:
            existing.url = endpoint.url or existing.url
            for key, value in reset.items():
                setattr(existing, key, value)
        session.flush()
        return 1
    stmt = (
        update(d)
        .where(d.endpoint_id == endpoint.id, d.account_id == account_id, d.state == FAILED)
        .values(url=endpoint.url, **reset)
        .execution_options(synchronize_session=False)
    )
    if since is not None:
        stmt = stmt.where(d.created_at >= since)
    if until is not None:
        stmt = stmt.where(d.created_at < until)
    result = session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)

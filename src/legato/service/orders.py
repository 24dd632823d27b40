"""From a stored call to the order the runtime runs: which legs, with which configuration."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from legato.core.catalogue import Service
from legato.core.config import AccountSettings, NumberConfig
from legato.service.spec import CallOrder
from legato.store.models import Account, Call, Number

#: Request fields that override the number's configuration for one call.
OVERRIDES = ("ring_timeout", "max_duration", "flow", "flow_url", "send_digits", "record")
#: A call's own flow (steps or a URL) replaces the number's, whichever form either has.
FLOW_KEYS = ("flow", "flow_url")


def effective_config(base: dict[str, Any], request: dict[str, Any],
                     account_settings: dict[str, Any] | None = None) -> NumberConfig:
    """The number's configuration, with the account's defaults where the number sets
    nothing and the call's own overrides on top, validated."""
    merged = AccountSettings.model_validate(account_settings or {}).apply_to(base)
    if any(request.get(key) is not None for key in FLOW_KEYS):
        for key in FLOW_KEYS:
            merged.pop(key, None)
    for key in OVERRIDES:
        if request.get(key) is not None:
            merged[key] = request[key]
    return NumberConfig.model_validate(merged)


def _account_settings(session: Session, account_id: str) -> dict[str, Any]:
    account = session.get(Account, account_id)
    return dict(account.settings or {}) if account is not None else {}


def sides(
    service: Service, from_numbers: list[str], to_numbers: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Leg 1 and leg 2 numbers by service (DESIGN section 2)."""
    if service is Service.OUTBOUND:
        return tuple(to_numbers), ()
    return tuple(from_numbers), tuple(to_numbers)


def order_for(
    session: Session,
    call: Call,
    received_at: float | None = None,
    number: Number | None = None,
) -> CallOrder:
    """The order for a stored call, with its number's current configuration (`number`,
    when the caller has already loaded it, saves a query)."""
    if number is None:
        number = session.scalar(
            select(Number).where(Number.account_id == call.account_id, Number.number == call.number)
        )
    config = effective_config(number.config if number else {}, call.request or {},
                              _account_settings(session, call.account_id))
    return order_from(call, config, received_at)


def order_from(call: Call, config: NumberConfig, received_at: float | None = None) -> CallOrder:
    """The order for a stored call whose effective configuration is already built (no I/O)."""
    request = call.request or {}
    service = Service(call.service)
    leg1, leg2 = sides(service, list(call.from_numbers), list(call.to_numbers))
    return CallOrder(
        call_id=call.id,
        service=service,
        number=call.number,
        leg1=leg1,
        leg2=leg2,
        config=config,
        started_at=call.started_at,
        category=request.get("dnd_category"),
        transactional=bool(request.get("transactional", False)),
        received_at=received_at if received_at is not None else time.perf_counter(),
    )

"""What a call is started with, as a JSON snapshot, and the engine's CallSpec built from it.

The snapshot freezes the number's configuration at the moment the call starts, so a
replay after a crash runs against the same rules even if the number was changed since.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from legato.core.admission import Policy
from legato.core.catalogue import Service
from legato.core.config import NumberConfig
from legato.core.engine import CallSpec
from legato.core.policy.dnd import DndLookup


@dataclass(frozen=True, slots=True)
class CallOrder:
    """A call the API has stored and wants run."""

    call_id: str
    service: Service
    number: str
    leg1: tuple[str, ...]
    leg2: tuple[str, ...]
    config: NumberConfig
    started_at: datetime
    category: int | None = None
    transactional: bool = False
    #: time.perf_counter() when the request arrived (for the create-call latency figure).
    received_at: float | None = None


def snapshot(order: CallOrder, t0: float, lines_in_use: int) -> dict[str, Any]:
    return {
        "service": order.service.value,
        "number": order.number,
        "leg1": list(order.leg1),
        "leg2": list(order.leg2),
        "config": order.config.model_dump(mode="json", exclude_unset=True),
        "started_at": order.started_at.isoformat(),
        "t0": t0,
        "lines_in_use": lines_in_use,
        "category": order.category,
        "transactional": order.transactional,
    }


def spec_from_order(order: CallOrder, lines_in_use: int, dnd: DndLookup | None = None) -> CallSpec:
    """The engine's spec; `dnd` (the national registry) replaces the config's own list."""
    return CallSpec(
        id=order.call_id,
        service=order.service,
        number=order.number,
        leg1=order.leg1,
        leg2=order.leg2,
        config=order.config,
        policy=Policy.from_config(order.config, dnd),
        started_at=order.started_at,
        lines_in_use=lines_in_use,
        category=order.category,
        transactional=order.transactional,
    )


def order_from_snapshot(call_id: str, snap: dict[str, Any]) -> tuple[CallOrder, float, int]:
    """The order, clock origin and lines in use a call was started with."""
    config = NumberConfig.model_validate(snap.get("config") or {})
    order = CallOrder(
        call_id=call_id,
        service=Service(snap["service"]),
        number=snap["number"],
        leg1=tuple(snap.get("leg1") or ()),
        leg2=tuple(snap.get("leg2") or ()),
        config=config,
        started_at=datetime.fromisoformat(snap["started_at"]),
        category=snap.get("category"),
        transactional=bool(snap.get("transactional", False)),
    )
    return order, float(snap.get("t0", 0.0)), int(snap.get("lines_in_use", 0))

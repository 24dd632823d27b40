"""The sans-IO call engine: one state machine per call, by service."""

from __future__ import annotations

from legato.core.catalogue import Service
from legato.core.engine.base import Call, CallSpec
from legato.core.engine.click_to_call import ClickToCall
from legato.core.engine.incoming import IncomingCall, MissedCall
from legato.core.engine.outbound import OutboundCall

_FLOWS: dict[Service, type[Call]] = {
    Service.INCOMING: IncomingCall,
    Service.MISSED_CALL: MissedCall,
    Service.CLICK_TO_CALL: ClickToCall,
    Service.OUTBOUND: OutboundCall,
}


def create_call(spec: CallSpec, now: float) -> Call:
    """A new call for ``spec``; the driver calls ``start(now)`` on it."""
    return _FLOWS[spec.service](spec, now)


__all__ = ["Call", "CallSpec", "create_call"]

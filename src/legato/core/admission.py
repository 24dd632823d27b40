"""Admission: the pre-dial policies of a call as one pure function (DESIGN section 4).

(policy snapshot, call request, now, lines in use) -> verdict. The verdict says either
"admit", with the numbers left to dial once DND and permissions have dropped theirs, or
which pre-dial status stops the call and why (which list, which rule, which holiday).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from legato.core.catalogue import Service, Status
from legato.core.config import NumberConfig
from legato.core.policy.blacklist import Blacklist
from legato.core.policy.dnd import DndLookup, InMemoryDnd
from legato.core.policy.office_hours import OfficeHours, check_open
from legato.core.policy.permissions import check_permission


@dataclass(frozen=True, slots=True)
class Policy:
    """A number's policies, compiled once from its `NumberConfig` for the hot path."""

    blacklist: Blacklist
    missed_call: bool
    office_hours: OfficeHours | None
    lines: int | None
    allowed_countries: frozenset[str] | None
    allowed_types: frozenset[str] | None
    dnd: DndLookup | None  # None: the account does not scrub DND

    @classmethod
    def from_config(cls, config: NumberConfig, registry: DndLookup | None = None) -> Policy:
        """Compile a config; ``registry`` replaces the config's own ``dnd`` list if given."""
        dnd: DndLookup | None = None
        if config.dnd_scrub:
            dnd = registry if registry is not None else InMemoryDnd(config.dnd)
        return cls(
            blacklist=Blacklist(config.blacklist),
            missed_call=config.missed_call,
            office_hours=config.office_hours,
            lines=config.lines,
            allowed_countries=_set(config.allowed_countries),
            allowed_types=_set(config.allowed_number_types),
            dnd=dnd,
        )


def _set(values: list[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


class AdmissionRequest(Protocol):
    """What admission reads of a call (the engine's `CallSpec` has all of it)."""

    @property
    def service(self) -> Service: ...
    @property
    def number(self) -> str: ...
    @property
    def leg1(self) -> tuple[str, ...]: ...
    @property
    def leg2(self) -> tuple[str, ...]: ...
    @property
    def category(self) -> int | None: ...
    @property
    def transactional(self) -> bool: ...


@dataclass(slots=True)
class Dropped:
    """A number left out before dialling, and the rule that dropped it."""

    number: str
    side: str  # leg1 | leg2
    rule: str  # dnd | country | number_type
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"number": self.number, "side": self.side, "rule": self.rule,
                "detail": self.detail}


@dataclass(slots=True)
class Verdict:
    """``status`` None means admitted; ``leg1``/``leg2`` are what is left to dial."""

    status: Status | None
    rule: str | None = None
    detail: str | None = None
    leg1: tuple[str, ...] = ()
    leg2: tuple[str, ...] = ()
    dropped: tuple[Dropped, ...] = ()


#: The sides each outgoing service scrubs: (side, numbers are customers so DND applies).
def _sides(request: AdmissionRequest) -> tuple[tuple[str, tuple[str, ...], bool], ...]:
    if request.service is Service.CLICK_TO_CALL:
        return (("leg1", request.leg1, False), ("leg2", request.leg2, True))
    return (("leg1", request.leg1, True),)


_INBOUND = frozenset({Service.INCOMING, Service.MISSED_CALL})


def admit(policy: Policy, request: AdmissionRequest, now: datetime,
          lines_in_use: int = 0) -> Verdict:
    """Decide whether a call may proceed, before anything is dialled."""
    if request.service in _INBOUND:
        return _admit_inbound(policy, request, now, lines_in_use)
    return _admit_outgoing(policy, request)


def _admit_inbound(policy: Policy, request: AdmissionRequest, now: datetime,
                   in_use: int) -> Verdict:
    caller = request.leg1[0]
    entry = policy.blacklist.match(caller)
    if entry is not None:
        return Verdict(Status.BLOCKED, "blacklist", f"{caller} matches blacklist entry {entry}")
    if request.service is Service.MISSED_CALL or policy.missed_call:
        return Verdict(Status.MISWIG, "missed_call", f"{request.number} is a missed-call number")
    if policy.office_hours is not None:
        check = check_open(policy.office_hours, now)
        if not check.open:
            return Verdict(Status.OFF_HOUR, check.rule, check.detail)
    if policy.lines is not None and in_use >= policy.lines:
        return Verdict(Status.MAX_USE, "lines",
                       f"{in_use} of {policy.lines} lines in use on {request.number}")
    return Verdict(None, leg1=request.leg1)


def _admit_outgoing(policy: Policy, request: AdmissionRequest) -> Verdict:
    dropped: list[Dropped] = []
    kept: dict[str, tuple[str, ...]] = {}
    for side, numbers, customers in _sides(request):
        left = []
        for number in numbers:
            why = _refusal(policy, request, number, customers)
            if why is None:
                left.append(number)
            else:
                dropped.append(Dropped(number, side, why[0], why[1]))
        kept[side] = tuple(left)
    leg1, leg2 = kept["leg1"], kept.get("leg2", ())
    empty = [side for side, numbers, _ in _sides(request) if not kept[side]]
    if empty:
        dnd_sides = {d.side for d in dropped if d.rule == "dnd"}
        status = Status.DND if dnd_sides & set(empty) else Status.NOTALLOWED
        first = next(d for d in dropped if d.side in empty
                     and (d.rule == "dnd") == (status is Status.DND))
        return Verdict(status, first.rule, first.detail, leg1, leg2, tuple(dropped))
    return Verdict(None, None, None, leg1, leg2, tuple(dropped))


def _refusal(policy: Policy, request: AdmissionRequest, number: str,
             customer: bool) -> tuple[str, str] | None:
    if customer and policy.dnd is not None and policy.dnd.is_dnd(
        number, request.category, request.transactional
    ):
        return "dnd", f"{number} is on the DND registry"
    refusal = check_permission(number, policy.allowed_countries, policy.allowed_types)
    return None if refusal is None else (refusal.rule, refusal.detail)


def permitted(policy: Policy, number: str) -> tuple[str, str] | None:
    """Why an agent an outbound flow wants to dial is not allowed, or None."""
    refusal = check_permission(number, policy.allowed_countries, policy.allowed_types)
    return None if refusal is None else (refusal.rule, refusal.detail)

"""Which webhook events a call's record implies, and their envelopes.

Events are derived from the call record the runtime persists, not from the engine's
internals: a leg that got a ringing time has rung, one with an end time has ended. A
cursor per call remembers what was already announced, so replaying the same or a later
record (a retried write, crash recovery) never announces a fact twice, and coalesced
writes (several changes in one) still announce each fact, in time order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CALL_INITIATED = "call.initiated"
LEG_RINGING = "call.leg.ringing"
LEG_ANSWERED = "call.leg.answered"
LEG_ENDED = "call.leg.ended"
CALL_COMPLETED = "call.completed"

#: Every event type, in the order a call produces them.
EVENT_TYPES = (CALL_INITIATED, LEG_RINGING, LEG_ANSWERED, LEG_ENDED, CALL_COMPLETED)

#: Leg facts: (flag kept in the cursor, leg field with the time, event type, the record
#: timeline entries that mark the same fact).
_LEG_FACTS = (
    ("r", "ringing_at", LEG_RINGING, frozenset({"ringing"})),
    ("a", "answered_at", LEG_ANSWERED, frozenset({"answered"})),
    ("e", "ended_at", LEG_ENDED, frozenset({"failed", "hangup", "cancel", "reject"})),
)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to write: its type, when it happened, and its `data`."""

    type: str
    at: datetime
    data: dict[str, Any]


@dataclass(slots=True)
class Progress:
    """What was announced for one call (the cursor row's content)."""

    next_sequence: int
    legs: dict[str, str]
    completed: bool


def _instant(value: Any, fallback: datetime) -> datetime:
    if not value:
        return fallback
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return fallback
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def pending_events(
    progress: Progress,
    record: dict[str, Any],
    *,
    final: bool,
    initiated: dict[str, Any],
    completed: dict[str, Any] | None,
    now: datetime,
) -> list[NewEvent]:
    """The events `record` implies that `progress` has not announced yet, to be numbered
    from `progress.next_sequence` on; updates `progress` past them.

    `initiated` is the data of `call.initiated`; `completed` the data of `call.completed`
    (the full call record), used only when `final`.
    """
    out: list[NewEvent] = []
    if progress.completed:
        return out
    started = _instant(record.get("started_at") or initiated.get("started_at"), now)
    if progress.next_sequence == 1:
        out.append(NewEvent(CALL_INITIATED, started, initiated))
    call_id = initiated["id"]
    timeline = record.get("events") or []
    facts: list[tuple[float, int, int, NewEvent]] = []
    for position, leg in enumerate(record.get("legs") or []):
        key = f"{leg.get('leg')}:{leg.get('attempt', 1)}"
        seen = progress.legs.get(key, "")
        for order, (flag, field, kind, marks) in enumerate(_LEG_FACTS):
            if flag in seen or not leg.get(field):
                continue
            at = _instant(leg[field], started)
            rank = _rank(timeline, leg, marks, (at - started).total_seconds())
            facts.append((rank, order, position, NewEvent(kind, at, {"call_id": call_id, **leg})))
            seen += flag
        progress.legs[key] = seen
    facts.sort(key=lambda f: (f[0], f[1], f[2]))
    out.extend(f[3] for f in facts)
    if final:
        data = completed if completed is not None else {"id": call_id, **record}
        out.append(NewEvent(CALL_COMPLETED, _instant(record.get("ended_at"), now), data))
        progress.completed = True
    progress.next_sequence += len(out)
    return out


def _rank(
    timeline: list[dict[str, Any]], leg: dict[str, Any], marks: frozenset[str], t: float
) -> float:
    """Where a leg fact sits in the call's causal order: the index of the timeline entry
    that records it, else just after everything that happened by its time. Times alone
    cannot order facts of one instant (leg 1 answers, leg 2 is dialled and rings)."""
    after = 0
    for i, entry in enumerate(timeline):
        if (
            entry.get("type") in marks
            and entry.get("leg") == leg.get("leg")
            and entry.get("attempt", 1) == leg.get("attempt", 1)
        ):
            return float(i)
        if float(entry.get("t", 0.0)) <= t + 1e-6:
            after = i + 1
    return after - 0.5


def envelope(event: NewEvent, sequence: int) -> str:
    """The JSON body sent: the Standard Webhooks envelope plus the per-call `sequence`."""
    at = event.at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps(
        {"type": event.type, "timestamp": at, "data": event.data, "sequence": sequence},
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def subscribed(events: list[str] | None, event_type: str) -> bool:
    """An endpoint with no event list receives every type."""
    return not events or event_type in events

"""The engine's input journal: every start, event and timer a call received, with its time.

The engine is deterministic and sans-IO, so replaying its journal rebuilds its exact
state. That is how a call interrupted by a crash is brought back and ended properly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any

from legato.core import events as ev
from legato.core.config import FlowUrl, Step, parse_flow
from legato.core.engine import Call
from legato.core.events import Command, Dial, Event
from legato.core.outcomes import Outcome

_EVENT_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (ev.LegProgress, ev.LegAnswered, ev.LegFailed, ev.LegHangup, ev.Digits, ev.PlayDone)
}

log = logging.getLogger("legato.service")

#: ["start", t] | ["timer", t] | ["event", t, {"type": ..., ...}]
#: | ["terminate", t, reason, cut outcome or None] (the API or an operator ended the call)
#: | ["redirect", t, {"url": ..., "method": ...} or {"steps": [...]}] (the API moved the
#: call to a new document)
Entry = list[Any]


def encode_event(event: Event) -> dict[str, Any]:
    if isinstance(event, ev.FlowFetched):  # fetched steps are models: journal their JSON form
        steps = (
            None
            if event.steps is None
            else [s.model_dump(mode="json", exclude_unset=True) for s in event.steps]
        )
        return {
            "type": "FlowFetched",
            "request": event.request,
            "steps": steps,
            "error": event.error,
        }
    return {"type": type(event).__name__, **dataclasses.asdict(event)}


def decode_event(data: dict[str, Any]) -> Event:
    fields = dict(data)
    kind = fields.pop("type")
    if kind == "FlowFetched":
        steps = fields.get("steps")
        return ev.FlowFetched(
            fields["request"],
            None if steps is None else tuple(parse_flow(steps)),
            fields.get("error"),
        )
    cls = _EVENT_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown journal event type {kind!r}")
    return cls(**fields)  # type: ignore[no-any-return]


def encode_redirect(to: FlowUrl | list[Step]) -> dict[str, Any]:
    if isinstance(to, FlowUrl):
        return to.model_dump(mode="json")
    return {"steps": [s.model_dump(mode="json", exclude_unset=True) for s in to]}


def decode_redirect(data: dict[str, Any]) -> FlowUrl | list[Step]:
    if "steps" in data:
        return parse_flow(data["steps"])
    return FlowUrl.model_validate(data)


def terminate(call: Call, now: float) -> None:
    """End a call as the platform: answered legs hung up, ringing ones cut (NOANSWER if
    they rang, else FAILED), the status resolved by the engine's own resolver."""
    call.terminate(now, "interrupted")


def replay(call: Call, journal: list[Entry]) -> None:
    """Feed a fresh engine the inputs of its journal; the commands it emits are dropped
    (they were carried out by the driver the first time)."""
    for entry in journal:
        kind, t = entry[0], float(entry[1])
        if kind == "start":
            call.start(t)
        elif kind == "timer":
            call.handle_timer(t)
        elif kind == "event":
            call.handle(decode_event(entry[2]), t)
        elif kind == "terminate":
            call.terminate(t, entry[2], Outcome(entry[3]) if entry[3] else None)
        elif kind == "redirect":
            call.redirect(t, decode_redirect(entry[2]))
        else:
            raise ValueError(f"unknown journal entry {kind!r}")
        call.commands.clear()


class JournaledCall:
    """An engine call that writes down every input it gets, for the driver to run.

    It offers the surface a driver uses (start, handle, handle_timer, get_timer, commands,
    settled, record, spec) and notes when the first Dial leaves the engine.
    """

    __slots__ = ("call", "clock", "dirty", "error", "first_dial_at", "journal", "launched_at")

    def __init__(self, call: Call, launched_at: float, clock: Any) -> None:
        self.call = call
        self.journal: list[Entry] = []
        self.dirty = False
        self.launched_at = launched_at
        self.first_dial_at: float | None = None
        self.clock = clock  # time.perf_counter, for the create-call latency figure
        #: Set when the engine raised: the call is ended and no other call is disturbed.
        self.error: str | None = None

    @property
    def spec(self) -> Any:
        return self.call.spec

    @property
    def record(self) -> Any:
        return self.call.record

    @property
    def commands(self) -> list[Command]:
        commands = self.call.commands
        if self.first_dial_at is None and any(isinstance(c, Dial) for c in commands):
            self.first_dial_at = self.clock()
        return commands

    @commands.setter
    def commands(self, value: list[Command]) -> None:
        self.call.commands = value

    @property
    def settled(self) -> bool:
        return self.error is not None or self.call.settled

    @property
    def finished(self) -> bool:
        return self.call.finished

    def get_timer(self) -> float | None:
        return self.call.get_timer()

    def start(self, now: float) -> None:
        self._feed(["start", now], lambda: self.call.start(now), now)

    def handle(self, event: Event, now: float) -> None:
        self._feed(["event", now, encode_event(event)], lambda: self.call.handle(event, now), now)

    def handle_timer(self, now: float) -> None:
        self._feed(["timer", now], lambda: self.call.handle_timer(now), now)

    def terminate(self, now: float, reason: str, cut: Outcome | None = None) -> None:
        """End the call as the platform from outside its flow (the API, an operator)."""
        entry = ["terminate", now, reason, None if cut is None else cut.value]
        self._feed(entry, lambda: self.call.terminate(now, reason, cut), now)

    def redirect(self, now: float, to: FlowUrl | list[Step]) -> bool:
        """Move the call to a new document (the API); False when it is over or has no
        flow (replay gets the same answer, so journaling a refused one is harmless)."""
        took = False

        def step() -> None:
            nonlocal took
            took = self.call.redirect(now, to)

        self._feed(["redirect", now, encode_redirect(to)], step, now)
        return took

    def _feed(self, entry: Entry, step: Any, now: float) -> None:
        if self.error is not None:
            return
        self.journal.append(entry)
        self.dirty = True
        try:
            step()
        except Exception as exc:  # one call's bug must not stop the network's other calls
            log.exception("call %s failed on %s", self.call.spec.id, entry[0])
            self.error = f"internal error: {type(exc).__name__}: {exc}"
            self.call.commands.clear()
            with contextlib.suppress(Exception):
                terminate(self.call, now)

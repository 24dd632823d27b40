"""The SIP driver: a back-to-back user agent that runs engine calls over real SIP.

The engine decides; this module only translates. Engine commands become SIP (Dial ->
INVITE, Cancel -> CANCEL, Ring -> 180, Answer -> 200, Reject -> a final response with
`Reason: Q.850`, Hangup -> BYE with `Reason: Q.850`), and what the network says becomes
engine events (1xx -> LegProgress, 2xx -> LegAnswered, 3xx-6xx -> LegFailed with the code,
the phrase and the Reason's Q.850 cause, no response -> LegFailed(None), BYE or the
caller's CANCEL -> LegHangup). SIP codes are never interpreted here: the cause map
(`legato.core.causes`) and the resolver do that inside the engine.

Media is not anchored: legs are bridged in signalling only, by handing one leg's SDP offer
to the other and its answer back (see docs/sip.md). Calls Legato places (click-to-call,
outbound) use RFC 3725 flow IV: leg 1 is invited without SDP and parked (its offer answered
with a held, inactive stream in the ACK, so the phone has a confirmed call it can hang up);
leg 2 is invited without SDP too; its offer goes to leg 1 in a re-INVITE, and leg 1's answer
goes back in leg 2's ACK. Flows that need audio (answer/play/gather) are refused at call start
with `UnsupportedFlow` until the media driver exists.

Everything runs on one asyncio loop; the engine's clock is the loop's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from legato.core.admission import Policy
from legato.core.catalogue import Service
from legato.core.causes import format_reason_header, parse_reason_header
from legato.core.config import AnswerStep, GatherStep, NumberConfig, PlayStep, Step
from legato.core.engine import CallSpec, create_call
from legato.core.events import (
    DTMF_KEY_SECONDS,
    DTMF_WAITS,
    Answer,
    Bridge,
    Cancel,
    Command,
    Dial,
    Event,
    FetchFlow,
    FlowFetched,
    Gather,
    Hangup,
    LegAnswered,
    LegFailed,
    LegHangup,
    LegProgress,
    Play,
    PlayDone,
    Reject,
    Ring,
    SendDigits,
    StopPlay,
)
from legato.core.policy.permissions import InvalidNumber, normalize_number
from legato.core.record import CallRecord, compact_timeline
from legato.drivers.sip.config import SipDriverConfig
from legato.drivers.sip.sdp import held_answer
from legato.media.call import CallMedia, MediaServer
from legato.media.sdp import SdpError
from legato.sip import events as ev
from legato.sip.auth import DigestServer
from legato.sip.errors import LocalProtocolError, RemoteProtocolError
from legato.sip.fields import NameAddr, Reason
from legato.sip.registrar import Registrar
from legato.sip.transport import SipTransport
from legato.sip.ua import UAConfig, UserAgent
from legato.sip.uri import SipURI

log = logging.getLogger("legato.drivers.sip")

#: number dialled at Legato (the Request-URI user) -> (the Legato number, its config).
NumberLookup = Callable[[str], "tuple[str, NumberConfig] | None"]
Done = Callable[[CallRecord], None]


class IncomingCalls(Protocol):
    """Who owns the engine calls of incoming SIP calls: under `legato serve`, the live
    runtime (it stores, journals and counts them). Without one, the driver makes them."""

    def begin(
        self, number: str, config: NumberConfig, caller: str, now: float
    ) -> tuple[Any, Done | None]:
        """The engine call (or a wrapper with its surface) for a call from ``caller`` to
        the Legato ``number``, started at ``now``, and what to call when it ends."""

    def placed(self, call: Any, handle: Any) -> None:
        """The driver's handle of the call (for `SipDriver.act`)."""


class UnsupportedFlow(ValueError):
    """The call's flow needs audio (answer, play, gather), which the sip driver lacks yet."""


def audio_steps(flow: list[Step] | None, path: str = "flow") -> list[str]:
    """Key paths of the steps that need a media server (empty: signalling suffices)."""
    found: list[str] = []
    for index, step in enumerate(flow or []):
        if isinstance(step, AnswerStep | PlayStep):
            found.append(f"{path}.{index}.{'answer' if isinstance(step, AnswerStep) else 'play'}")
        elif isinstance(step, GatherStep):
            found.append(f"{path}.{index}.gather")
    return found


def check_supported(config: NumberConfig) -> None:
    """Raise `UnsupportedFlow` naming the first step the sip driver cannot run."""
    steps = audio_steps(config.flow)
    if steps:
        raise UnsupportedFlow(
            f"{steps[0]}: the sip driver cannot play or answer with audio yet (media is "
            "issue 8); use dial and hangup steps, or run this flow with --driver sim"
        )


def number_lookup(
    numbers: Mapping[str, NumberConfig] | Callable[[str], NumberConfig | None],
) -> NumberLookup:
    """Find a Legato number by the dialled user part: as given, E.164, or with a `+`;
    ``numbers`` maps E.164 numbers to their configuration, or is a function that does."""
    config_of = numbers.get if isinstance(numbers, Mapping) else numbers

    def lookup(user: str) -> tuple[str, NumberConfig] | None:
        for candidate in (user, f"+{user}"):
            try:
                number = normalize_number(candidate)
            except InvalidNumber:
                continue
            config = config_of(number)
            if config is not None:
                return number, config
        return None

    return lookup


@functools.lru_cache(maxsize=128)
def reason_for(cause: int) -> Reason:
    """The Reason header of a Q.850 cause, worded by the cause map."""
    return Reason.parse(format_reason_header(cause))


@dataclass(slots=True, eq=False)
class _SipCall:
    """One engine call and the SIP legs carrying it. Containers most calls never need are
    None until first used: 10,000 held calls pay for what they hold, not for every case."""

    call: Any  # Call, or a wrapper with the same surface (JournaledCall)
    on_done: Done | None
    number: str | None = None  # incoming calls: the Legato number (counted in lines in use)
    ua: dict[int, int] = field(default_factory=dict)  # engine leg -> UA leg
    offer: bytes = b""  # the caller's offer (incoming), until the caller is answered
    answer: dict[int, bytes] | None = None  # SDP answers legs gave us, until passed on
    deferred: set[int] | None = None  # legs invited without SDP
    late_offer: dict[int, bytes] | None = None  # their 200's offer, unACKed
    parked: set[int] | None = None  # flow IV leg 1, held until the bridge
    reinvite: dict[int, int] | None = None  # parked leg -> leg awaiting ACK
    peer: dict[int, int] | None = None  # bridged engine legs
    later: list[Event] | None = None  # events to feed after the commands
    media: CallMedia | None = None  # incoming calls with audio steps (legato.media)
    timer_at: float | None = None  # the engine's next timer (in the driver's timer heap)
    compacted: int = 0  # timeline entries already compacted (`compact_timeline`)
    done: bool = False

    def feed_later(self, event: Event) -> None:
        if self.later is None:
            self.later = []
        self.later.append(event)

    def set_late_offer(self, leg: int, body: bytes) -> None:
        if self.late_offer is None:
            self.late_offer = {}
        self.late_offer[leg] = body


_NO_LEGS: frozenset[int] = frozenset()


@dataclass(slots=True)
class DriverStats:
    """Counters for logs, tests and the benchmark."""

    calls: int = 0
    completed: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    bad_messages: int = 0


class SipDriver:
    """Runs engine calls over SIP on one listening socket. Use `await SipDriver.open(...)`."""

    def __init__(
        self,
        config: SipDriverConfig,
        numbers: NumberLookup | None = None,
        *,
        on_incoming_done: Done | None = None,
        incoming: IncomingCalls | None = None,
        on_change: Callable[[Any], None] | None = None,
        media: MediaServer | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.numbers = numbers or (lambda _user: None)
        self.on_incoming_done = on_incoming_done
        self.incoming = incoming
        self.on_change = on_change
        self.media = media  # with it, incoming flows may answer, play and gather (docs/media.md)
        self._clock = clock  # the engine's clock (None: the event loop's)
        #: Answers `FetchFlow` (flow_url, TwiML): the `SimNetwork` surface the Twilio
        #: layer sets on the runtime's network.
        self.fetcher: Any = None
        self.stats = DriverStats()
        self.registrar: Registrar | None = None
        if config.phones:
            phones = dict(config.phones)
            self.registrar = Registrar(
                phones.get,
                auth=DigestServer(realm=config.phone_domain, algorithm=config.phone_auth),
            )
        self._transport: SipTransport | None = None
        self._legs: dict[int, _SipCall] = {}  # UA leg -> its call (`sc.ua` maps it back)
        self._relayed: dict[tuple[int, str], list[int]] = {}  # (UA leg, method) -> requests
        self._lines: Counter[str] = Counter()
        self._policies: dict[int, tuple[NumberConfig, Policy]] = {}
        self._calls: set[_SipCall] = set()
        self._timer_heap: list[tuple[float, int, _SipCall]] = []
        self._timer_seq = itertools.count()
        self._wakeup: asyncio.TimerHandle | None = None
        self._wakeup_at: float | None = None

    # ---------------------------------------------------------------- lifecycle
    @classmethod
    async def open(cls, config: SipDriverConfig, numbers: NumberLookup | None = None,
                   **kwargs: Any) -> SipDriver:
        self = cls(config, numbers, **kwargs)
        await self.start()
        return self

    async def start(self) -> None:
        ua_config = UAConfig(
            local=self.config.listen, transport=self.config.transport,
            timers=self.config.timers, user_agent=self.config.user_agent,
        )
        opener = SipTransport.open_udp if self.config.transport == "UDP" else SipTransport.open_tcp
        self._transport = await opener(ua_config, self._on_sip, registrar=self.registrar)

    async def close(self) -> None:
        """Hang up every call in progress (platform), then close the socket."""
        for sc in list(self._calls):
            self._end_all_legs(sc)
            self._forget(sc)
        if self._wakeup is not None:
            self._wakeup.cancel()
            self._wakeup = self._wakeup_at = None
        self._timer_heap.clear()
        if self._transport is not None:
            self._transport.flush()
            await asyncio.sleep(0.05)  # let the BYEs/CANCELs leave
            await self._transport.close()

    @property
    def local(self) -> tuple[str, int]:
        assert self._transport is not None, "the driver is not started"
        return self._transport.local

    @property
    def ua(self) -> UserAgent:
        assert self._transport is not None, "the driver is not started"
        return self._transport.ua

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def now(self) -> float:
        """The engine's clock: the loop's, or the one given (e.g. the live runtime's)."""
        if self._clock is not None:
            return self._clock()
        assert self._transport is not None, "the driver is not started"
        return self._transport.loop.time()

    def follow(self, clock: Callable[[], float], on_change: Callable[[Any], None]) -> None:
        """Run engine calls on another clock (the live runtime's) and report each change
        (so the runtime persists live states as they happen)."""
        self._clock = clock
        self.on_change = on_change

    def _ua_now(self) -> float:
        """The SIP stack's clock (the transport's loop), whatever clock the engine runs on."""
        assert self._transport is not None, "the driver is not started"
        return self._transport.loop.time()

    # The `SimNetwork` surface the live runtime drives: a real network runs by itself.
    def run(self, until: float | None = None) -> None:
        """Nothing to advance: SIP events and engine timers arrive on the loop."""

    def next_time(self) -> float | None:
        return None

    def lines_in_use(self, number: str) -> int:
        return self._lines[number]

    # ------------------------------------------------------------ placing calls
    def place(self, call: Any, at: float | None = None, on_done: Done | None = None) -> _SipCall:
        """Start a call (click-to-call, outbound) now; `call` is an engine call or a factory
        taking the start time (the `SimNetwork.place` surface). `at` must be None: a real
        network has no future. Raises `UnsupportedFlow` for flows that need audio."""
        if at is not None and at > self.now() + 1e-3:
            raise ValueError("the sip driver starts calls now; `at` in the future is not supported")
        now = self.now()
        if not hasattr(call, "start"):
            call = call(now)
        check_supported(call.spec.config)
        sc = _SipCall(call, on_done)
        self._calls.add(sc)
        self.stats.calls += 1
        self._input(sc, lambda: call.start(now))
        self._flush()
        return sc

    def act(self, handle: _SipCall, step: Callable[[Any, float], None], now: float) -> bool:
        """Give a running call an input from outside (the API ending or redirecting it)
        and carry out what it says at once (the `SimNetwork.act` surface). False when
        the call is over."""
        if handle.done:
            return False
        self._input(handle, lambda: step(handle.call, max(now, self.now())))
        self._flush()
        return True

    # --------------------------------------------------------------- SIP -> engine
    def _on_sip(self, event: ev.Event) -> None:
        kind = type(event)
        if kind is ev.IncomingCall:
            self._incoming(event)  # type: ignore[arg-type]
            return
        if kind is ev.BadMessage:
            self.stats.bad_messages += 1
            log.debug("bad SIP message from %s: %s", event.source, event.reason)  # type: ignore[union-attr]
            return
        ua_leg: int = event.leg  # type: ignore[union-attr]
        sc = self._legs.get(ua_leg)
        leg = _engine_leg(sc, ua_leg) if sc is not None else None
        if sc is None or leg is None:
            return  # a leg whose call is over (e.g. our BYE completing)
        handler = _SIP_HANDLERS.get(kind)
        if handler is not None:
            handler(self, sc, leg, event)

    def _progress(self, sc: _SipCall, leg: int, event: ev.Progress) -> None:
        if sc.media is not None and leg != 0:
            sc.media.progress(0)  # an agent rings: ringback to an answered caller
        self._feed(sc, LegProgress(leg, event.response.status))

    def _answered(self, sc: _SipCall, leg: int, event: ev.Answered) -> None:
        body = event.response.body
        if sc.media is not None and leg in sc.media.sessions:
            try:
                sc.media.answered(leg, body)
            except SdpError as exc:
                log.warning("call %s: leg %s answered with unusable SDP: %s",
                            sc.call.spec.id, leg, exc)
        if sc.deferred is None or leg not in sc.deferred:
            if body:
                if sc.answer is None:
                    sc.answer = {}
                sc.answer[leg] = body
        elif sc.number is None and not sc.parked:
            # Flow IV: the first leg of a call we place (not an incoming one) is parked.
            sc.parked = {leg}
            sc.set_late_offer(leg, body)
            held = held_answer(body, self.local[0]) if body else b""
            self.ua.ack(event.leg, self._ua_now(), held)
        else:
            sc.set_late_offer(leg, body)  # answered in the ACK once the bridge says how
        self._feed(sc, LegAnswered(leg))

    def _failed(self, sc: _SipCall, leg: int, event: ev.Failed) -> None:
        self._drop_leg(sc, leg, event.leg)
        if event.response is None:  # our timer or a transport error: no response at all
            self._feed(sc, LegFailed(leg, None))
            return
        cause = parse_reason_header(str(event.reason)) if event.reason is not None else None
        self._feed(sc, LegFailed(leg, event.status, cause, event.reason_phrase))

    def _cancelled(self, sc: _SipCall, leg: int, event: ev.Cancelled) -> None:
        self._drop_leg(sc, leg, event.leg)
        self._feed(sc, LegHangup(leg, _cause(event.reason)))

    def _ended(self, sc: _SipCall, leg: int, event: ev.Ended) -> None:
        self._drop_leg(sc, leg, event.leg)
        if event.by == "remote":
            self._feed(sc, LegHangup(leg, _cause(event.reason)))

    def _lost(self, sc: _SipCall, leg: int, event: ev.Lost) -> None:
        """The stack ended a leg whose far end is gone (no ACK for our 200, or 408/481 to
        a request in the dialog): over as if that end hung up. A caller that never ACKed
        may even think it hung up itself (its BYE lost too)."""
        self._drop_leg(sc, leg, event.leg)
        self._feed(sc, LegHangup(leg, _cause(event.reason)))

    def _confirmed(self, sc: _SipCall, leg: int, event: ev.Confirmed) -> None:
        """The caller's ACK: in a late-offer call it carries the answer for the agent."""
        body = event.request.body
        peer = sc.peer.get(leg) if sc.peer is not None else None
        late = sc.late_offer
        if body and peer is not None and late is not None and peer in late and peer in sc.ua:
            del late[peer]
            self.ua.ack(sc.ua[peer], self._ua_now(), body)

    def _dialog_request(self, sc: _SipCall, leg: int, event: ev.DialogRequest) -> None:
        """re-INVITE, UPDATE, INFO on a bridged leg go to the other leg unchanged."""
        request, now = event.request, self._ua_now()
        if (sc.media is not None and request.method == "INFO"
                and sc.media.info(leg, request.get("Content-Type"), request.body)):
            self.ua.respond_request(event.request_id, 200, now)  # DTMF: Digits follows
            return
        if sc.media is not None and request.method == "INVITE":
            try:
                answer = sc.media.reoffer(leg, request.body)
            except SdpError as exc:
                log.info("call %s: re-INVITE refused: %s", sc.call.spec.id, exc)
                self.ua.respond_request(event.request_id, 488, now)
                return
            if answer is not None:  # anchored media: the re-INVITE ends here (hold/resume)
                self.ua.respond_request(event.request_id, 200, now, body=answer)
                return
        peer = sc.peer.get(leg) if sc.peer is not None else None
        target = sc.ua.get(peer) if peer is not None else None
        if target is None or self.ua.leg_state(target) not in ("early", "confirmed"):
            status = 200 if request.method in ("INFO", "OPTIONS") else 488
            self.ua.respond_request(event.request_id, status, now)
            return
        self.ua.request(
            target, request.method, now, body=request.body,
            content_type=request.get("Content-Type") or "application/sdp",
        )
        self._relayed.setdefault((target, request.method), []).append(event.request_id)

    def _dialog_response(self, sc: _SipCall, leg: int, event: ev.DialogResponse) -> None:
        if event.method == "INVITE" and sc.reinvite is not None and leg in sc.reinvite:
            self._reconnected(sc, leg, event)
            return
        waiting = self._relayed.get((event.leg, event.method))
        if not waiting:
            return
        request_id = waiting.pop(0)
        if not waiting:
            del self._relayed[(event.leg, event.method)]
        response = event.response
        body = response.body if response is not None else b""
        content_type = (response.get("Content-Type") if response is not None else None) or ""
        self.ua.respond_request(
            request_id, event.status, self._ua_now(), body=body,
            content_type=content_type or "application/sdp",
        )

    # ------------------------------------------------------------ incoming calls
    def _incoming(self, event: ev.IncomingCall) -> None:
        request, now, ua = event.request, self._ua_now(), self.ua
        try:
            dialled = SipURI.parse(request.uri).user or ""
        except RemoteProtocolError:
            dialled = ""
        try:
            found = self.numbers(dialled)
        except Exception as exc:  # e.g. a stored config that no longer validates
            self._refuse_internal(event.leg, dialled, "bad number config", exc)
            return
        if found is None:
            self.stats.refused["unknown number"] += 1
            ua.respond(event.leg, 404, now, reason=reason_for(1))
            return
        number, config = found
        try:
            if self.media is None:
                check_supported(config)
        except UnsupportedFlow as exc:
            log.error("incoming call to %s refused: %s", number, exc)
            self.stats.refused["flow needs audio"] += 1
            ua.respond(event.leg, 503, now, reason=reason_for(79),
                       headers=[("Warning", f'399 legato "{exc}"')])
            return
        caller = _caller_number(request)
        start = self.now()  # the engine's clock
        on_done: Done | None
        if self.incoming is not None:
            try:
                call, on_done = self.incoming.begin(number, config, caller, start)
            except Exception as exc:  # e.g. the number was deleted a moment ago
                self._refuse_internal(event.leg, dialled, "call not started", exc)
                return
        else:
            spec = CallSpec(
                id=str(uuid.uuid4()),
                service=Service.MISSED_CALL if config.missed_call else Service.INCOMING,
                number=number,
                leg1=(caller,),
                leg2=(),
                config=config,
                policy=self._policy(config),
                started_at=datetime.now(UTC),
                lines_in_use=self._lines[number],
            )
            call, on_done = create_call(spec, start), self.on_incoming_done
        sc = _SipCall(call, on_done, number)
        if self.media is not None and (audio_steps(config.flow) or config.flow_url):
            sc.media = self.media.call(lambda event: self._media_event(sc, event), call.spec.id)
            if request.body:
                sc.media.offers[0] = request.body
        self._calls.add(sc)
        self._lines[number] += 1
        self.stats.calls += 1
        # The engine's caller is leg 0 (its first leg), created by start().
        sc.ua[0] = event.leg
        self._legs[event.leg] = sc
        if request.body:
            sc.offer = request.body
        if self.incoming is not None:
            self.incoming.placed(call, sc)
        self._input(sc, lambda: call.start(start))

    def _refuse_internal(self, leg: int, dialled: str, why: str, exc: Exception) -> None:
        """Our side cannot take the call: 500 with cause 41, logged and counted."""
        log.error("incoming call to %r refused (%s): %s", dialled, why, exc)
        self.stats.refused[why] += 1
        self.ua.respond(leg, 500, self._ua_now(), reason=reason_for(41))

    def _policy(self, config: NumberConfig) -> Policy:
        """Policies compiled once per number configuration (blacklist, hours, lines)."""
        cached = self._policies.get(id(config))
        if cached is None or cached[0] is not config:
            cached = self._policies[id(config)] = (config, Policy.from_config(config))
            if len(self._policies) > 4096:
                self._policies.clear()
        return cached[1]

    # -------------------------------------------------------------- engine side
    def _feed(self, sc: _SipCall, event: Event) -> None:
        if sc.done:
            return
        now = self.now()
        self._input(sc, lambda: sc.call.handle(event, now))

    def _input(self, sc: _SipCall, step: Callable[[], None]) -> None:
        """Give the engine one input, carry out what it says, and follow its timer."""
        call = sc.call
        try:
            step()
            while call.commands or sc.later:
                while call.commands:
                    commands, call.commands = call.commands, []
                    self._carry_out(sc, commands)
                if sc.later:
                    event = sc.later.pop(0)
                    if not sc.later:
                        sc.later = None
                    now = self.now()
                    call.handle(event, now)
        except Exception:  # one call's bug must not stop the other calls
            log.exception("call %s failed in the sip driver", call.spec.id)
            self._end_all_legs(sc)
            self._forget(sc)
            return
        if self.on_change is not None:
            self.on_change(call)
        if call.settled:
            self._forget(sc)
            self.stats.completed += 1
            if sc.on_done is not None:
                sc.on_done(call.record)
            return
        sc.compacted = compact_timeline(call.record.timeline, sc.compacted)  # held for minutes
        when = call.get_timer()
        if when != sc.timer_at:
            sc.timer_at = when
            if when is not None:
                self._schedule(sc, when)

    # One loop timer for all calls: a heap of (when, seq, call) entries, the loop woken
    # for the earliest. An entry whose call has moved its timer (or ended) is stale and
    # skipped; the heap is rebuilt when it holds half as many stale entries as calls.
    def _schedule(self, sc: _SipCall, when: float) -> None:
        heap = self._timer_heap
        heapq.heappush(heap, (when, next(self._timer_seq), sc))
        if len(heap) > len(self._calls) * 3 // 2 + 64:
            heap[:] = [e for e in heap if not e[2].done and e[2].timer_at == e[0]]
            heapq.heapify(heap)
        if self._wakeup_at is None or when < self._wakeup_at:
            self._arm(when)

    def _arm(self, when: float) -> None:
        if self._wakeup is not None:
            self._wakeup.cancel()
        self._wakeup_at = when
        self._wakeup = asyncio.get_running_loop().call_later(
            max(0.0, when - self.now()), self._on_timers)

    def _on_timers(self) -> None:
        heap, armed = self._timer_heap, self._wakeup_at or 0.0
        self._wakeup = self._wakeup_at = None
        limit = max(self.now(), armed)  # the loop may wake a hair early
        due: list[tuple[float, _SipCall]] = []
        while heap and heap[0][0] <= limit:
            when, _, sc = heapq.heappop(heap)
            if not sc.done and sc.timer_at == when:
                due.append((when, sc))
        for when, sc in due:
            if not sc.done and sc.timer_at == when:  # an earlier one may have moved it
                self._on_timer(sc, when)
        while heap and (heap[0][2].done or heap[0][2].timer_at != heap[0][0]):
            heapq.heappop(heap)  # stale: do not wake the loop for it
        if heap and (self._wakeup_at is None or heap[0][0] < self._wakeup_at):
            self._arm(heap[0][0])

    def _on_timer(self, sc: _SipCall, when: float) -> None:
        now = max(self.now(), when)  # the loop may wake a hair early
        sc.timer_at = None
        self._input(sc, lambda: sc.call.handle_timer(now))
        self._flush()

    def _flush(self) -> None:
        if self._transport is not None:
            self._transport.flush()

    def _carry_out(self, sc: _SipCall, commands: list[Command]) -> None:
        for command in commands:  # Bridge first tells Answer whose SDP answers the caller
            if type(command) is Bridge:
                if sc.peer is None:
                    sc.peer = {}
                sc.peer[command.a] = command.b
                sc.peer[command.b] = command.a
        for command in commands:
            handler = _COMMANDS.get(type(command))
            if handler is None:
                log.error("call %s: the sip driver cannot carry out %r", sc.call.spec.id, command)
                continue
            handler(self, sc, command)

    def _dial(self, sc: _SipCall, command: Dial) -> None:
        now, leg = self._ua_now(), command.leg
        route = self._route(command.number, now)
        if route is None:
            log.warning("call %s: no trunk serves %s and no phone is registered for it",
                        sc.call.spec.id, command.number)
            sc.feed_later(LegFailed(leg, None))  # nowhere to send it: no response at all
            return
        request_uri, destination, credentials = route
        offer = sc.offer  # an incoming caller's offer goes to the agents
        if self.media is not None and sc.number is not None and offer:
            self._early_media(sc)
        if sc.media is not None and 0 in sc.media.sessions:
            offer = sc.media.offer(leg)  # the caller's media ends here: anchor the agent's
        domain = self.config.phone_domain
        try:
            ua_leg = self.ua.invite(
                f"<sip:{command.number}@{destination[0]}>",
                from_=f"<sip:{command.caller_id}@{domain}>",
                now=now, request_uri=request_uri, destination=destination, body=offer,
                credentials=credentials, defer_ack=not offer,
            )
        except LocalProtocolError as exc:
            log.warning("call %s: cannot dial %s: %s", sc.call.spec.id, command.number, exc)
            sc.feed_later(LegFailed(leg, None))
            return
        if not offer:
            if sc.deferred is None:
                sc.deferred = set()
            sc.deferred.add(leg)
        sc.ua[leg] = ua_leg
        self._legs[ua_leg] = sc

    def _early_media(self, sc: _SipCall) -> None:
        """Agents dialled before the flow answered the caller: anchor the caller's media
        with a 183 and play ringback until an agent answers (docs/decisions.md)."""
        assert self.media is not None
        if sc.media is None:
            sc.media = self.media.call(lambda event: self._media_event(sc, event),
                                       sc.call.spec.id)
        media, ua_leg = sc.media, sc.ua.get(0)
        if (0 in media.sessions or ua_leg is None
                or self.ua.leg_state(ua_leg) in ("confirmed", "terminated")):
            return  # already anchored (IVR answered, or a second dial), or the caller left
        media.offers[0] = sc.offer
        try:
            body = media.early_media(0)
        except SdpError as exc:  # e.g. no G.711: the agents get the caller's offer instead
            log.info("call %s: no early media, caller's SDP: %s", sc.call.spec.id, exc)
            media.drop(0)
            return
        self.ua.respond(ua_leg, 183, self._ua_now(), body=body)

    def _route(
        self, number: str, now: float
    ) -> tuple[str, tuple[str, int], Any] | None:
        """Where a number is dialled: a registered phone first, else the trunk."""
        registrar = self.registrar
        if registrar is not None:
            domain = self.config.phone_domain
            for user in (number, number.lstrip("+")):
                for binding in registrar.lookup(f"sip:{user}@{domain}", now):
                    try:
                        contact = SipURI.parse(binding.uri)
                    except RemoteProtocolError:
                        continue
                    return binding.uri, (contact.host.strip("[]"), contact.port or 5060), None
        trunk = self.config.trunk_for(number)
        if trunk is None:
            return None
        uri = f"sip:{number}@{trunk.host}:{trunk.port};user=phone"
        return uri, trunk.addr, trunk.credentials

    def _cancel(self, sc: _SipCall, command: Cancel) -> None:
        ua_leg = sc.ua.get(command.leg)
        if ua_leg is not None:
            self.ua.cancel(ua_leg, self._ua_now())  # the final response comes back as an event

    def _ring(self, sc: _SipCall, command: Ring) -> None:
        ua_leg = sc.ua.get(command.leg)
        if ua_leg is not None:
            self.ua.respond(ua_leg, 180, self._ua_now())

    def _answer(self, sc: _SipCall, command: Answer) -> None:
        leg = command.leg
        ua_leg = sc.ua.get(leg)
        if ua_leg is None:
            return
        peer = sc.peer.get(leg) if sc.peer is not None else None
        body = b""
        if sc.media is not None and (peer is None or leg in sc.media.sessions):
            try:
                body = sc.media.answer(leg)
            except SdpError as exc:
                log.warning("call %s: caller's SDP refused: %s", sc.call.spec.id, exc)
                self.ua.respond(ua_leg, 488, self._ua_now(), reason=reason_for(65))
                self._drop_leg(sc, leg, ua_leg)
                sc.feed_later(LegHangup(leg, 65))
                return
        elif peer is not None:
            body = self._answer_of(sc, peer)
        if leg == 0:
            sc.offer = b""  # the caller is answered: its offer is no longer needed
        self.ua.respond(ua_leg, 200, self._ua_now(), body=body)

    @staticmethod
    def _answer_of(sc: _SipCall, peer: int) -> bytes:
        """The SDP answering the caller: the bridged leg's answer (handed on once, then
        let go) or the offer of its 200."""
        answers = sc.answer
        if answers is not None and peer in answers:
            body = answers.pop(peer)
            if not answers:
                sc.answer = None
            if body:
                return body
        return sc.late_offer.get(peer, b"") if sc.late_offer is not None else b""

    def _reject(self, sc: _SipCall, command: Reject) -> None:
        ua_leg = sc.ua.get(command.leg)
        if ua_leg is not None:
            self.ua.respond(ua_leg, command.sip_code, self._ua_now(),
                            reason=reason_for(command.q850_cause))
            self._drop_leg(sc, command.leg, ua_leg)

    def _hangup(self, sc: _SipCall, command: Hangup) -> None:
        ua_leg = sc.ua.get(command.leg)
        if ua_leg is not None:
            self.ua.hangup(ua_leg, self._ua_now(), reason_for(command.q850_cause))

    def _bridge(self, sc: _SipCall, command: Bridge) -> None:
        """Flow IV's last steps: leg 2's offer goes to the parked leg 1 in a re-INVITE; its
        answer then goes to leg 2 in the ACK (`_reconnected`). With media, the two legs'
        RTP is relayed through Legato instead (media anchoring, docs/media.md)."""
        media = sc.media
        if media is not None and command.a in media.sessions and command.b in media.sessions:
            path = media.bridge(command.a, command.b, record=sc.call.spec.config.record)
            if path is not None:
                sc.call.record.recording = str(path)  # written when the bridge ends
            return
        for parked, other in ((command.a, command.b), (command.b, command.a)):
            late = sc.late_offer
            if sc.parked is None or parked not in sc.parked or late is None or other not in late:
                continue
            parked_ua, other_ua = sc.ua.get(parked), sc.ua.get(other)
            if parked_ua is None or other_ua is None:
                continue
            offer = late[other]
            if not offer:  # leg 2 offered nothing: nothing to connect in signalling
                del late[other]
                self.ua.ack(other_ua, self._ua_now())
                continue
            if sc.reinvite is None:
                sc.reinvite = {}
            sc.reinvite[parked] = other
            self.ua.request(parked_ua, "INVITE", self._ua_now(), body=offer)

    def _reconnected(self, sc: _SipCall, parked: int, event: ev.DialogResponse) -> None:
        assert sc.reinvite is not None  # _dialog_response checked it
        other = sc.reinvite.pop(parked)
        other_ua = sc.ua.get(other)
        offer = sc.late_offer.pop(other, b"") if sc.late_offer is not None else b""
        if other_ua is None or self.ua.leg_state(other_ua) != "confirmed":
            return
        response = event.response
        if response is not None and 200 <= event.status < 300 and response.body:
            self.ua.ack(other_ua, self._ua_now(), response.body)
            return
        log.warning("call %s: leg 1 refused the re-INVITE (%s); leg 2 stays held",
                    sc.call.spec.id, event.status)
        self.ua.ack(other_ua, self._ua_now(), held_answer(offer, self.local[0]) if offer else b"")

    def _play(self, sc: _SipCall, command: Play | Gather) -> None:
        if sc.media is not None:
            sc.media.play(command)  # PlayDone comes back through _media_event
        else:
            sc.feed_later(PlayDone(command.play))

    def _fetch(self, sc: _SipCall, command: FetchFlow) -> None:
        """A dynamic flow (flow_url, TwiML, an action URL): the fetcher the runtime set
        (`fetcher`, the `SimNetwork` surface) answers later, on the loop."""
        loop = asyncio.get_running_loop()

        def reply(event: FlowFetched) -> None:  # never re-entered from _carry_out
            loop.call_soon(self._fetched, sc, event)

        if self.fetcher is None:
            reply(FlowFetched(command.request, None, "this network has no flow fetcher: "
                              "dynamic flows (flow_url, redirect, actions) cannot be fetched"))
        else:
            self.fetcher(command, sc.call, reply)

    def _fetched(self, sc: _SipCall, event: FlowFetched) -> None:
        self._feed(sc, event)
        self._flush()

    def _stop_play(self, sc: _SipCall, command: StopPlay) -> None:
        if sc.media is not None:
            sc.media.stop_play(command)

    def _send_digits(self, sc: _SipCall, command: SendDigits) -> None:
        """SendDigits, keyed at the pace the engine waits for (`DTMF_KEY_SECONDS` a key,
        `w`/`W` pauses): RFC 4733 events on the leg's media when telephone-event was
        agreed, else one SIP INFO (application/dtmf-relay) per key."""
        loop, at = asyncio.get_running_loop(), 0.0
        for key in command.digits:
            if key in DTMF_WAITS:
                at += DTMF_WAITS[key]
                continue
            loop.call_later(at, self._send_key, sc, command.leg, key)
            at += DTMF_KEY_SECONDS

    def _send_key(self, sc: _SipCall, leg: int, key: str) -> None:
        if sc.done:
            return
        session = sc.media.sessions.get(leg) if sc.media is not None else None
        if session is not None and session.endpoint.event_pt is not None:
            session.endpoint.send_digit(key)
            return
        ua_leg = sc.ua.get(leg)
        if ua_leg is None:
            return
        body = f"Signal={key}\r\nDuration={int(DTMF_KEY_SECONDS * 500)}\r\n".encode()
        try:
            self.ua.request(ua_leg, "INFO", self._ua_now(), body=body,
                            content_type="application/dtmf-relay")
        except LocalProtocolError as exc:  # the leg went away meanwhile
            log.info("call %s: DTMF %s not sent: %s", sc.call.spec.id, key, exc)
            return
        self._flush()

    def _media_event(self, sc: _SipCall, event: Event) -> None:
        """PlayDone and Digits from the media (always on a later loop turn)."""
        self._feed(sc, event)
        self._flush()

    # -------------------------------------------------------------- bookkeeping
    def _drop_leg(self, sc: _SipCall, leg: int, ua_leg: int) -> None:
        if sc.media is not None:
            sc.media.drop(leg)
        self._legs.pop(ua_leg, None)
        if sc.ua.get(leg) == ua_leg:
            del sc.ua[leg]

    def _end_all_legs(self, sc: _SipCall) -> None:
        now = self._ua_now()
        for ua_leg in list(sc.ua.values()):
            with contextlib.suppress(LocalProtocolError):
                self.ua.hangup(ua_leg, now, reason_for(41))

    def _forget(self, sc: _SipCall) -> None:
        if sc.done:
            return
        sc.done = True
        if sc.media is not None:
            sc.media.close()
        sc.timer_at = None  # its heap entry, if any, is now stale
        for ua_leg in sc.ua.values():
            self._legs.pop(ua_leg, None)
        self._calls.discard(sc)
        if sc.number is not None:
            self._lines[sc.number] -= 1
            if self._lines[sc.number] <= 0:
                del self._lines[sc.number]


def _engine_leg(sc: _SipCall, ua_leg: int) -> int | None:
    """The engine leg a UA leg carries: `_legs` holds a UA leg exactly while `sc.ua` maps
    an engine leg to it (a call has a handful of legs: a scan, not a second map)."""
    for leg, mapped in sc.ua.items():
        if mapped == ua_leg:
            return leg
    return None


def _cause(reason: Reason | None) -> int | None:
    return parse_reason_header(str(reason)) if reason is not None else None


def _caller_number(request: Any) -> str:
    """The caller's number from From (E.164 when it parses as one, else as sent)."""
    try:
        user = NameAddr.parse(request.get("From") or "", "From").parsed_uri.user or ""
    except RemoteProtocolError:
        return "anonymous"
    return _e164_or_as_sent(user)


@functools.lru_cache(maxsize=65536)
def _e164_or_as_sent(user: str) -> str:
    """Parsing a number costs ~50 us; callers call again, so remember the answer."""
    for candidate in (user, f"+{user}"):
        try:
            return normalize_number(candidate)
        except InvalidNumber:
            continue
    return user or "anonymous"


_SIP_HANDLERS: dict[type, Callable[[SipDriver, _SipCall, int, Any], None]] = {
    ev.Progress: SipDriver._progress,
    ev.Answered: SipDriver._answered,
    ev.Failed: SipDriver._failed,
    ev.Cancelled: SipDriver._cancelled,
    ev.Ended: SipDriver._ended,
    ev.Lost: SipDriver._lost,
    ev.Confirmed: SipDriver._confirmed,
    ev.DialogRequest: SipDriver._dialog_request,
    ev.DialogResponse: SipDriver._dialog_response,
}

_COMMANDS: dict[type, Callable[[SipDriver, _SipCall, Any], None]] = {
    Dial: SipDriver._dial,
    Cancel: SipDriver._cancel,
    Ring: SipDriver._ring,
    Answer: SipDriver._answer,
    Reject: SipDriver._reject,
    Hangup: SipDriver._hangup,
    Bridge: SipDriver._bridge,
    Play: SipDriver._play,
    Gather: SipDriver._play,
    StopPlay: SipDriver._stop_play,
    SendDigits: SipDriver._send_digits,
    FetchFlow: SipDriver._fetch,
}

__all__ = ["SipDriver", "UnsupportedFlow", "audio_steps", "check_supported", "number_lookup"]

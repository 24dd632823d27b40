"""RFC 3261 §17 transactions (with RFC 6026's Accepted states), driven by a `now` value.

Each transaction owns its retransmission and timeout timers and exposes the earliest as
`deadline`; the user agent keeps one heap of deadlines and calls `on_timer(now)` when one is
due. Bytes to send are appended to the shared `out` list the user agent drains in
`datagrams_to_send()`: one queue per endpoint, so the responses of a transaction always leave
in the order they were produced.

Timers (names as in the RFC): client INVITE A (retransmit), B (timeout), D (absorb final
retransmissions), M (RFC 6026: absorb 2xx forks); client non-INVITE E, F, K; server INVITE
G, H, I, L and the 100 Trying delay; server non-INVITE J. On a reliable transport the
retransmission timers are not started and D, I, J, K are zero, as §17 requires.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from legato.sip.errors import LocalProtocolError
from legato.sip.message import Request, Response, make_response

Addr = tuple[str, int]


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """RFC 3261 timer values in seconds. `trying_delay`: how long an INVITE server
    transaction waits for the TU's first response before sending 100 Trying itself
    (0 = at once). 200 ms is the RFC's allowance (§17.2.1) and saves a message per call
    that is answered or rejected quickly; it is well under T1, so the caller never
    retransmits just because the 100 was held back."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    trying_delay: float = 0.2

    def __post_init__(self) -> None:
        if not (0 < self.t1 <= self.t2) or self.t4 <= 0 or self.trying_delay < 0:
            raise ValueError("SIP timers need 0 < T1 <= T2, T4 > 0 and trying_delay >= 0")


class State(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


class Transaction:
    """What every transaction shares: a request, a peer address, named timers, an outbox."""

    __slots__ = (
        "_timers",
        "dest",
        "leg",
        "out",
        "reliable",
        "request",
        "scheduled",
        "state",
        "timer_config",
    )

    def __init__(
        self,
        request: Request,
        dest: Addr,
        out: list[tuple[bytes, Addr]],
        timer_config: TimerConfig,
        reliable: bool,
        leg: int | None,
    ) -> None:
        self.request = request
        self.dest = dest
        self.out = out
        self.timer_config = timer_config
        self.reliable = reliable
        self.leg = leg  # the user agent's leg this transaction belongs to, if any
        self.state = State.TRYING
        # name, when, name, when...: a flat list (88 bytes) rather than a dict (184): a
        # transaction runs at most three timers, and 10,000 held calls keep two each.
        self._timers: list[Any] = []
        self.scheduled: float | None = None  # deadline last pushed on the agent's heap

    @property
    def deadline(self) -> float | None:
        timers = self._timers
        if not timers:
            return None
        when: float = timers[1] if len(timers) == 2 else min(timers[1::2])
        return when

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def _due(self, now: float) -> list[str]:
        timers = self._timers
        due: list[str] = [timers[i] for i in range(0, len(timers), 2) if timers[i + 1] <= now]
        for name in due:
            self._pop_timer(name)
        return due

    def _set_timer(self, name: str, when: float) -> None:
        timers = self._timers
        for i in range(0, len(timers), 2):
            if timers[i] == name:
                timers[i + 1] = when
                return
        timers.append(name)
        timers.append(when)

    def _pop_timer(self, name: str) -> None:
        timers = self._timers
        for i in range(0, len(timers), 2):
            if timers[i] == name:
                del timers[i : i + 2]
                return

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        self._timers.clear()

    def transport_error(self) -> None:
        """The transport could not send (§17.1.4, §17.2.4): the transaction ends at once."""
        self._terminate()

    def on_timer(self, now: float) -> bool:
        """Fire due timers; True means the TU must be told of a timeout."""
        raise NotImplementedError


class ClientTransaction(Transaction):
    """Client INVITE (§17.1.1) and non-INVITE (§17.1.2) transactions."""

    __slots__ = ("_data", "_final_ack", "_interval", "ack_for_2xx")

    def __init__(
        self,
        request: Request,
        dest: Addr,
        out: list[tuple[bytes, Addr]],
        timer_config: TimerConfig,
        reliable: bool,
        now: float,
        leg: int | None = None,
    ) -> None:
        super().__init__(request, dest, out, timer_config, reliable, leg)
        self._data = request.to_bytes()
        self._final_ack: bytes | None = None
        self.ack_for_2xx: bytes | None = None  # set by the TU; re-sent on 2xx retransmissions
        t1 = timer_config.t1
        self._interval = t1
        out.append((self._data, dest))
        if self.is_invite:
            self.state = State.CALLING
            if not reliable:
                self._set_timer("A", now + t1)
            self._set_timer("B", now + 64 * t1)
        else:
            if not reliable:
                self._set_timer("E", now + t1)
            self._set_timer("F", now + 64 * t1)

    @property
    def is_invite(self) -> bool:
        return self.request.method == "INVITE"

    def receive_response(self, response: Response, now: float) -> bool:
        """Feed a matching response; True when the TU should see it (False: absorbed)."""
        status = response.status
        state = self.state
        if self.is_invite:
            if state in (State.CALLING, State.PROCEEDING):
                self._pop_timer("A")
                self._data = b""  # an INVITE is never re-sent once answered (§17.1.1.2)
                if status < 200:
                    self.state = State.PROCEEDING
                    self._pop_timer("B")
                    return True
                if status < 300:
                    self.state = State.ACCEPTED
                    self._pop_timer("B")
                    self._set_timer("M", now + 64 * self.timer_config.t1)
                    return True
                self.state = State.COMPLETED
                self._pop_timer("B")
                self._final_ack = build_ack_for_non_2xx(self.request, response).to_bytes()
                self.out.append((self._final_ack, self.dest))
                self._set_timer("D", now + (0 if self.reliable else 32.0))
                return True
            if state is State.COMPLETED and status >= 300 and self._final_ack is not None:
                self.out.append((self._final_ack, self.dest))
                return False
            if state is State.ACCEPTED and 200 <= status < 300:
                if self.ack_for_2xx is not None:
                    self.out.append((self.ack_for_2xx, self.dest))
                return True  # the TU sees 2xx retransmissions and forks (RFC 6026)
            return False
        if state in (State.TRYING, State.PROCEEDING):
            if status < 200:
                self.state = State.PROCEEDING
                return True
            self.state = State.COMPLETED
            self._pop_timer("E")
            self._pop_timer("F")
            self._set_timer("K", now + (0 if self.reliable else self.timer_config.t4))
            self._data = b""  # Timer K only absorbs retransmitted responses
            return True
        return False

    def stop_waiting_after_cancel(self, now: float) -> None:
        """§9.1: after CANCEL, give up on the INVITE if no final comes within 64*T1."""
        if self.state in (State.CALLING, State.PROCEEDING):
            self._set_timer("B", now + 64 * self.timer_config.t1)

    def on_timer(self, now: float) -> bool:
        timed_out = False
        cfg = self.timer_config
        for name in self._due(now):
            if name in ("A", "E"):
                self.out.append((self._data, self.dest))
                if name == "A":
                    self._interval *= 2
                elif self.state is State.PROCEEDING:
                    self._interval = cfg.t2
                else:
                    self._interval = min(self._interval * 2, cfg.t2)
                self._set_timer(name, now + self._interval)
            elif name in ("B", "F"):
                self._terminate()
                timed_out = True
            else:  # D, K, M
                self._terminate()
        return timed_out


class ServerTransaction(Transaction):
    """Server INVITE (§17.2.1 with RFC 6026) and non-INVITE (§17.2.2) transactions."""

    __slots__ = ("_interval", "_last", "responded")

    def __init__(
        self,
        request: Request,
        dest: Addr,
        out: list[tuple[bytes, Addr]],
        timer_config: TimerConfig,
        reliable: bool,
        now: float,
        leg: int | None = None,
    ) -> None:
        super().__init__(request, dest, out, timer_config, reliable, leg)
        self._last: bytes | None = None  # last response sent, re-sent on retransmissions
        self._interval = timer_config.t1
        self.responded = False
        if request.method == "INVITE":
            self.state = State.PROCEEDING
            if timer_config.trying_delay == 0:
                self._send_trying()
            else:
                self._set_timer("trying", now + timer_config.trying_delay)

    @property
    def is_invite(self) -> bool:
        return self.request.method == "INVITE"

    @property
    def final_sent(self) -> bool:
        return self.state not in (State.TRYING, State.PROCEEDING)

    def _send_trying(self) -> None:
        self._last = make_response(self.request, 100).to_bytes()
        self.out.append((self._last, self.dest))

    def respond(self, response: Response, now: float) -> None:
        """Send a response built by the TU; provisional after final is a local error."""
        status = response.status
        if self.state is State.ACCEPTED and 200 <= status < 300:
            self.out.append((response.to_bytes(), self.dest))  # TU retransmitting its 2xx
            return
        if self.final_sent:
            raise LocalProtocolError(
                f"cannot send {status}: the {self.request.method} already has a final response"
            )
        self.responded = True
        self._pop_timer("trying")
        data = response.to_bytes()
        self.out.append((data, self.dest))
        self._last = data
        t1 = self.timer_config.t1
        if status < 200:
            self.state = State.PROCEEDING
        elif self.is_invite:
            if status < 300:
                # Accepted: the TU retransmits its 2xx and the ACK goes to the TU (RFC 6026);
                # nothing here is re-sent, so the response is not kept for Timer L's 32 s.
                self.state = State.ACCEPTED
                self._last = None
                self._set_timer("L", now + 64 * t1)
            else:
                self.state = State.COMPLETED
                if not self.reliable:
                    self._set_timer("G", now + t1)
                self._set_timer("H", now + 64 * t1)
        else:
            self.state = State.COMPLETED
            self._set_timer("J", now + (0 if self.reliable else 64 * t1))
            # For Timer J's 32 s only `_last` is re-sent: keep the method, not the request.
            self.request = Request(self.request.method, self.request.uri)

    def receive_request(self, request: Request, now: float) -> None:
        """A retransmitted request (or the ACK for a non-2xx final) matched this transaction."""
        if request.method == "ACK":
            if self.state is State.COMPLETED:
                self.state = State.CONFIRMED
                self._pop_timer("G")
                self._pop_timer("H")
                self._set_timer("I", now + (0 if self.reliable else self.timer_config.t4))
            return
        if self.state in (State.PROCEEDING, State.COMPLETED) and self._last is not None:
            self.out.append((self._last, self.dest))

    def on_timer(self, now: float) -> bool:
        timed_out = False
        for name in self._due(now):
            if name == "trying":
                if self.state is State.PROCEEDING and not self.responded:
                    self._send_trying()
            elif name == "G":
                if self._last is not None:
                    self.out.append((self._last, self.dest))
                self._interval = min(self._interval * 2, self.timer_config.t2)
                self._set_timer("G", now + self._interval)
            elif name == "H":
                self._terminate()
                timed_out = True  # the ACK never came
            else:  # I, J, L
                self._terminate()
        return timed_out


_ACK_COPIED = ("Via", "From", "Call-ID", "Route")


def build_ack_for_non_2xx(invite: Request, response: Response) -> Request:
    """§17.1.1.3: same Request-URI, top Via, From, Call-ID, Route and CSeq number as the
    INVITE; To from the response (it carries the tag)."""
    headers: list[tuple[str, str]] = []
    via_done = False
    for name, value in invite.headers:
        if name == "Via":
            if via_done:
                continue
            via_done = True
        if name in _ACK_COPIED:
            headers.append((name, value))
    headers.append(("To", response.get("To") or ""))
    headers.append(("CSeq", f"{invite.cseq.seq} ACK"))
    headers.append(("Max-Forwards", "70"))
    return Request("ACK", invite.uri, headers)

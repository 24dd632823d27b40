"""The sans-IO user agent a B2BUA driver talks to: bytes and `now` in, bytes, events and the
next timer out (the aioquic `get_timer()`/`handle_timer()` contract).

Driving it:

    ua.receive_datagram(data, addr, now)     # or receive_stream_data() on TCP
    for data, addr in ua.datagrams_to_send(now): send
    while (event := ua.next_event()) is not None: handle
    ua.get_timer() -> when to call ua.handle_timer(now) next (None: no timer)

Commands (`invite`, `respond`, `cancel`, `bye`, `ack`, `request`, `respond_request`,
`hangup`) only queue messages; nothing is sent until the transport drains
`datagrams_to_send()`. The agent answers by itself what needs no decision: 100 Trying,
OPTIONS, CANCEL (200 + 487), BYE (200), ACK for non-2xx, 2xx retransmissions, digest
challenges (when the leg has credentials), REGISTER (when a registrar is attached), 400 for
malformed requests, 481 for requests outside any dialog.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import re
import secrets
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from legato.sip import events as ev
from legato.sip.auth import Challenge, Credentials, authorization_for
from legato.sip.dialog import Dialog, DialogState
from legato.sip.errors import LocalProtocolError, RemoteProtocolError
from legato.sip.fields import NameAddr, Reason
from legato.sip.headers import canonical_name
from legato.sip.message import Request, Response, make_response
from legato.sip.parser import DEFAULT_LIMITS, Limits, StreamParser, parse_message
from legato.sip.registrar import Registrar
from legato.sip.transaction import (
    Addr,
    ClientTransaction,
    ServerTransaction,
    State,
    TimerConfig,
)
from legato.sip.uri import SipURI

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REGISTER"
_SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()
_REPLACEABLE = frozenset(("Max-Forwards", "Contact", "Allow", "User-Agent"))
_ClientKey = tuple[str, str]
_ServerKey = tuple[str, str, int, str]
_CLIENT, _SERVER, _LEG = 0, 1, 2
# How long a peer on RFC 3261's default timers (T1 = 500 ms) may retransmit a BYE: 64*T1.
# Our own T1 may be shorter (a LAN deployment, the tests); the peer's is not ours to know.
_PEER_RETRANSMIT_WINDOW = 64 * 0.5
#: Final responses to a request inside a dialog that mean the dialog is gone (§12.2.1.2).
_DIALOG_GONE = frozenset({408, 481})
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}\Z")


@dataclass(frozen=True, slots=True)
class UAConfig:
    """Addresses and knobs of one user agent (one per listening socket)."""

    local: Addr
    transport: Literal["UDP", "TCP"] = "UDP"
    timers: TimerConfig = field(default_factory=TimerConfig)
    limits: Limits = DEFAULT_LIMITS
    outbound_proxy: Addr | None = None  # where out-of-dialog requests go by default
    contact_user: str = "legato"
    user_agent: str = "Legato"


class _Leg:
    """Per-call state of the agent. Holds only plain values and keys (no references to the
    agent or to transactions), so a finished call is freed by reference counting alone."""

    __slots__ = (
        "answered",
        "auth_tries",
        "bye_reason",
        "cancel_reason",
        "cancel_requested",
        "cancel_sent",
        "credentials",
        "defer_ack",
        "dialog",
        "hop_cache",
        "id",
        "invite",
        "invite_key",
        "local_tag",
        "peer",
        "pending_ack",
        "provisional_seen",
        "reply_to",
        "retrans_data",
        "retrans_give_up",
        "retrans_interval",
        "retrans_next",
        "role",
        "state",
    )

    def __init__(
        self, leg_id: int, role: Literal["uac", "uas"], invite: Request, local_tag: str, peer: Addr
    ) -> None:
        self.id = leg_id
        self.role = role
        self.invite = invite
        self.invite_key: _ClientKey | _ServerKey | None = None
        self.local_tag = local_tag
        self.peer = peer
        self.reply_to = peer  # where our responses go (UAS: the INVITE's response address)
        self.dialog: Dialog | None = None
        self.hop_cache: tuple[str, Addr] | None = None  # (route or target, its address)
        self.state = "calling"  # calling | early | confirmed | terminated
        self.credentials: Credentials | None = None
        self.auth_tries = 0
        self.cancel_requested = False
        self.cancel_sent = False
        self.cancel_reason: Reason | None = None
        self.bye_reason: Reason | None = None
        self.defer_ack = False
        self.pending_ack: int | None = None  # CSeq of a 2xx-answered INVITE awaiting ack()
        self.answered = False
        self.provisional_seen = False
        # UAS 2xx retransmission until the ACK (§13.3.1.4)
        self.retrans_data: bytes | None = None
        self.retrans_next: float | None = None
        self.retrans_interval = 0.0
        self.retrans_give_up = 0.0


class UserAgent:
    """RFC 3261 user agent core plus transaction layer, without I/O."""

    def __init__(self, config: UAConfig, registrar: Registrar | None = None) -> None:
        self.config = config
        self.registrar = registrar
        self._reliable = config.transport != "UDP"
        self._out: list[tuple[bytes, Addr]] = []
        self._events: deque[ev.Event] = deque()
        self._heap: list[tuple[float, int, int, object]] = []
        self._heap_seq = itertools.count()
        self._client: dict[_ClientKey, ClientTransaction] = {}
        self._server: dict[_ServerKey, ServerTransaction] = {}
        self._legs: dict[int, _Leg] = {}
        self._dialogs: dict[tuple[str, str], int] = {}
        self._requests: dict[int, _ServerKey] = {}
        self._streams: dict[Addr, StreamParser] = {}
        self._ended: dict[tuple[str, str], float] = {}  # recently ended dialogs -> expiry
        self._ended_order: deque[tuple[float, tuple[str, str]]] = deque()
        self._now = 0.0  # the latest `now` given, for bookkeeping without a clock
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(4)
        host, port = config.local
        transport_param = ";transport=tcp" if self._reliable else ""
        self._via_base = f"SIP/2.0/{config.transport} {_host_for_uri(host)}:{port};branch=z9hG4bK"
        self.contact = f"<sip:{config.contact_user}@{_host_for_uri(host)}:{port}{transport_param}>"

    # ------------------------------------------------------------------ I/O side
    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        """One UDP datagram from `addr`."""
        if not data.strip(b"\r\n\x00 "):
            return  # keep-alive
        try:
            message = parse_message(data, self.config.limits)
        except RemoteProtocolError as exc:
            self._reject(exc, addr)
            return
        self._dispatch(message, addr, now)

    def receive_stream_data(self, data: bytes, addr: Addr, now: float) -> bool:
        """Bytes from the stream connection `addr`; False: framing is lost, close it."""
        parser = self._streams.get(addr)
        if parser is None:
            parser = self._streams[addr] = StreamParser(self.config.limits)
        try:
            messages = parser.feed(data)
        except RemoteProtocolError as exc:
            self._reject(exc, addr)
            del self._streams[addr]
            return False
        for message in messages:
            self._dispatch(message, addr, now)
        return True

    def connection_lost(self, addr: Addr, now: float) -> None:
        """A stream connection closed: transactions that can only use it fail (§17.1.4)."""
        self._streams.pop(addr, None)
        if self._reliable:
            self.transport_error(addr, now)

    def transport_error(self, addr: Addr, now: float) -> None:
        """Sending to `addr` failed: its client transactions end as a 503 would."""
        self._now = now
        for key, tx in list(self._client.items()):
            if tx.dest == addr and not tx.terminated:
                tx.transport_error()
                del self._client[key]
                self._client_failed(tx, 503, "Service Unavailable (transport error)")

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        # The list is shared with every transaction: hand out a copy and empty it in place.
        out = self._out.copy()
        self._out.clear()
        return out

    def next_event(self) -> ev.Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        heap = self._heap
        while heap:
            when, _, kind, key = heap[0]
            if self._current_deadline(kind, key) == when:
                return when
            heapq.heappop(heap)
            self._stale(when, kind, key)
        return None

    def _stale(self, when: float, kind: int, key: object) -> None:
        """An entry whose deadline moved: a transaction whose deadline moved later kept
        this (earlier) entry rather than adding one (`_after_client`), so it is re-pushed
        now, at the deadline; any other stale entry is dropped."""
        if kind == _LEG:
            return
        tx = (self._client if kind == _CLIENT else self._server).get(key)  # type: ignore[call-overload]
        if tx is None or tx.scheduled != when:
            return
        deadline = tx.deadline
        tx.scheduled = deadline
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._heap_seq), kind, key))

    def handle_timer(self, now: float) -> None:
        self._now = now
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, kind, key = heapq.heappop(heap)
            if self._current_deadline(kind, key) != when:
                self._stale(when, kind, key)
                continue
            if kind == _CLIENT:
                ckey: _ClientKey = key  # type: ignore[assignment]
                ctx = self._client[ckey]
                ctx.scheduled = None
                if ctx.on_timer(now):
                    self._client_failed(ctx, 408, "Request Timeout")
                self._after_client(ckey, ctx)
            elif kind == _SERVER:
                skey: _ServerKey = key  # type: ignore[assignment]
                stx = self._server[skey]
                stx.scheduled = None
                stx.on_timer(now)
                self._after_server(skey, stx)
            else:
                leg = self._legs[key]  # type: ignore[index]
                self._leg_timer(leg, now)

    # -------------------------------------------------------------- UAC commands
    def invite(
        self,
        to: str,
        *,
        from_: str,
        now: float,
        request_uri: str | None = None,
        destination: Addr | None = None,
        body: bytes = b"",
        content_type: str = "application/sdp",
        headers: Iterable[tuple[str, str]] = (),
        credentials: Credentials | None = None,
        defer_ack: bool = False,
        call_id: str | None = None,
    ) -> int:
        """Place a call; returns the leg handle. `to`/`from_` are URIs or name-addrs.
        `defer_ack`: do not ACK a 2xx; the driver calls `ack(leg, body)` (RFC 3725 flows)."""
        to_value, to_uri = _name_addr(to, "to")
        from_value, _ = _name_addr(from_, "from_")
        uri = request_uri or to_uri
        dest = destination or self.config.outbound_proxy or _resolve(uri, "request_uri")
        tag = self._token()
        call_id = call_id or f"{self._token()}{self._token()}"
        request_headers: list[tuple[str, str]] = [
            ("Via", self._via()),
            ("Max-Forwards", "70"),
            ("From", f"{from_value};tag={tag}"),
            ("To", to_value),
            ("Call-ID", call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", self.contact),
            ("Allow", ALLOW),
            ("User-Agent", self.config.user_agent),
        ]
        if body:
            request_headers.append(("Content-Type", content_type))
        request = Request("INVITE", uri, request_headers, body)
        for name, value in headers:
            if canonical_name(name) in _REPLACEABLE:
                request.set(name, value)  # the driver's value wins over our default
            else:
                request.add(name, value)
        leg = _Leg(next(self._ids), "uac", request, tag, dest)
        leg.credentials = credentials
        leg.defer_ack = defer_ack
        self._legs[leg.id] = leg
        self._dialogs[(call_id, tag)] = leg.id
        leg.invite_key = self._send_request(request, dest, leg.id, now)
        return leg.id

    def cancel(self, leg_id: int, now: float, reason: Reason | None = None) -> None:
        """CANCEL an unanswered INVITE we sent (sent after the first provisional, §9.1).
        No-op on a finished leg, so a driver racing a final response needs no check."""
        leg = self._legs.get(leg_id)
        if leg is None or leg.state == "terminated" or leg.cancel_requested:
            return
        if leg.role != "uac":
            raise LocalProtocolError("cancel() is for calls we placed; use respond()/hangup()")
        if leg.state == "confirmed":
            raise LocalProtocolError("the call is answered: use bye()")
        leg.cancel_requested = True
        leg.cancel_reason = reason
        if leg.provisional_seen:
            self._send_cancel(leg, now)

    def ack(
        self, leg_id: int, now: float, body: bytes = b"", content_type: str = "application/sdp"
    ) -> None:
        """ACK the 2xx of a `defer_ack` leg, carrying the SDP answer if any."""
        leg = self._leg(leg_id)
        if leg.pending_ack is None:
            raise LocalProtocolError(f"leg {leg_id} has no 2xx waiting for an ACK")
        self._send_ack(leg, leg.pending_ack, now, body, content_type)

    # ---------------------------------------------------------- UAS commands
    def respond(
        self,
        leg_id: int,
        status: int,
        now: float,
        *,
        reason_phrase: str | None = None,
        body: bytes = b"",
        content_type: str = "application/sdp",
        reason: Reason | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> bool:
        """Answer an incoming INVITE: 180/183 (early dialog), 2xx (confirmed, retransmitted
        until the ACK) or 3xx-6xx (with an optional Reason). False when the leg is already
        over (e.g. the caller's CANCEL crossed this call)."""
        if not 100 <= status <= 699:
            raise LocalProtocolError(f"status must be 100..699, got {status}")
        leg = self._legs.get(leg_id)
        if leg is None or leg.state == "terminated":
            return False
        if leg.role != "uas":
            raise LocalProtocolError("respond() answers incoming calls only")
        self._now = now
        key: _ServerKey = leg.invite_key  # type: ignore[assignment]
        tx = self._server.get(key)
        if tx is None or tx.final_sent:
            raise LocalProtocolError(f"leg {leg_id}'s INVITE already has a final response")
        response = self._response(
            leg.invite, status, reason_phrase, leg.local_tag, body, content_type, reason, headers
        )
        tx.respond(response, now)
        self._after_server(key, tx)
        dialog = leg.dialog
        assert dialog is not None
        if status < 200:
            if status > 100:
                leg.state = "early"
        elif status < 300:
            leg.state = "confirmed"
            leg.answered = True
            dialog.state = DialogState.CONFIRMED
            self._start_2xx_retransmission(leg, response.to_bytes(), now)
        else:
            self._finish(leg)
        return True

    def respond_request(
        self,
        request_id: int,
        status: int,
        now: float,
        *,
        reason_phrase: str | None = None,
        body: bytes = b"",
        content_type: str = "application/sdp",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Answer a `DialogRequest` (re-INVITE, UPDATE, INFO, ...)."""
        key = self._requests.get(request_id)
        tx = self._server.get(key) if key is not None else None
        if key is None or tx is None:
            raise LocalProtocolError(f"no pending request {request_id}")
        leg = self._legs.get(tx.leg) if tx.leg is not None else None
        tag = leg.local_tag if leg is not None else None
        response = self._response(
            tx.request, status, reason_phrase, tag, body, content_type, None, headers
        )
        tx.respond(response, now)
        if status >= 200:
            del self._requests[request_id]
            if tx.is_invite and status < 300 and leg is not None:
                leg.reply_to = tx.dest  # a re-INVITE's 2xx goes where its request came from
                self._start_2xx_retransmission(leg, response.to_bytes(), now)
        self._after_server(key, tx)

    # ------------------------------------------------------- dialog commands
    def bye(self, leg_id: int, now: float, reason: Reason | None = None) -> None:
        """End a confirmed call; `Ended(by="local")` follows when the BYE completes."""
        leg = self._leg(leg_id)
        if leg.state != "confirmed" or leg.dialog is None:
            raise LocalProtocolError(f"bye() needs a confirmed call; leg {leg_id} is {leg.state}")
        if leg.pending_ack is not None:
            self._send_ack(leg, leg.pending_ack, now, b"", "")  # a 2xx is never left un-ACKed
        self._send_bye(leg, now, reason)

    def request(
        self,
        leg_id: int,
        method: str,
        now: float,
        *,
        body: bytes = b"",
        content_type: str = "application/sdp",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Send a request inside the dialog (re-INVITE, UPDATE, INFO, ...);
        `DialogResponse` follows with its final response."""
        if method in ("ACK", "CANCEL", "BYE"):
            raise LocalProtocolError(f"use ack()/cancel()/bye() for {method}")
        leg = self._leg(leg_id)
        if leg.dialog is None or leg.state not in ("early", "confirmed"):
            raise LocalProtocolError(f"leg {leg_id} has no dialog for {method}")
        request = leg.dialog.new_request(method, self._via(), self.contact)
        for name, value in headers:
            request.add(name, value)
        if body:
            request.add("Content-Type", content_type)
            request.body = body
        self._send_request(request, self._dialog_destination(leg), leg.id, now)

    def hangup(
        self, leg_id: int, now: float, reason: Reason | None = None, status: int = 480
    ) -> None:
        """End a leg whatever its state: CANCEL, BYE, or a `status` final response."""
        leg = self._legs.get(leg_id)
        if leg is None or leg.state == "terminated":
            return
        if leg.state == "confirmed":
            self.bye(leg_id, now, reason)
        elif leg.role == "uac":
            self.cancel(leg_id, now, reason)
        else:
            self.respond(leg_id, status, now, reason=reason)

    def leg_state(self, leg_id: int) -> str:
        """calling | early | confirmed | terminated (terminated also for unknown legs)."""
        leg = self._legs.get(leg_id)
        return leg.state if leg is not None else "terminated"

    @property
    def active_legs(self) -> int:
        return len(self._legs)

    @property
    def active_transactions(self) -> int:
        return len(self._client) + len(self._server)

    # ------------------------------------------------------------- internals
    def _token(self) -> str:
        return f"{self._prefix}{next(self._ids):x}"

    def _via(self) -> str:
        return f"{self._via_base}{self._prefix}{next(self._ids):x};rport"

    def _leg(self, leg_id: int) -> _Leg:
        leg = self._legs.get(leg_id)
        if leg is None:
            raise LocalProtocolError(f"no leg {leg_id} (ended or never existed)")
        return leg

    def _response(
        self,
        request: Request,
        status: int,
        reason_phrase: str | None,
        to_tag: str | None,
        body: bytes,
        content_type: str,
        reason: Reason | None,
        headers: Iterable[tuple[str, str]],
    ) -> Response:
        response = make_response(
            request, status, reason_phrase, to_tag=to_tag if status > 100 else None, body=body
        )
        if 100 < status < 300 and request.method in ("INVITE", "UPDATE"):
            response.add("Contact", self.contact)
        if reason is not None:
            response.add("Reason", str(reason))
        for name, value in headers:
            response.add(name, value)
        if body:
            response.add("Content-Type", content_type)
        return response

    def _push(self, when: float, kind: int, key: object) -> None:
        heapq.heappush(self._heap, (when, next(self._heap_seq), kind, key))

    def _current_deadline(self, kind: int, key: object) -> float | None:
        if kind == _CLIENT:
            ctx = self._client.get(key)  # type: ignore[call-overload]
            return ctx.deadline if ctx is not None else None
        if kind == _SERVER:
            stx = self._server.get(key)  # type: ignore[call-overload]
            return stx.deadline if stx is not None else None
        leg = self._legs.get(key)  # type: ignore[call-overload]
        return leg.retrans_next if leg is not None else None

    def _after_client(self, key: _ClientKey, tx: ClientTransaction) -> None:
        if tx.terminated:
            self._client.pop(key, None)
            return
        deadline = tx.deadline
        if deadline is not None and (tx.scheduled is None or deadline < tx.scheduled):
            tx.scheduled = deadline
            self._push(deadline, _CLIENT, key)
        # A later deadline (Timer B -> M once answered) keeps its earlier entry, re-pushed
        # when it comes up (`_stale`): one heap entry per transaction, not two for 32 s.

    def _after_server(self, key: _ServerKey, tx: ServerTransaction) -> None:
        if tx.terminated:
            self._server.pop(key, None)
            return
        deadline = tx.deadline
        if deadline is not None and (tx.scheduled is None or deadline < tx.scheduled):
            tx.scheduled = deadline
            self._push(deadline, _SERVER, key)

    def _send_request(
        self, request: Request, dest: Addr, leg: int | None, now: float
    ) -> _ClientKey:
        self._now = now
        branch = _branch_of(request)
        key = (branch, request.method)
        tx = ClientTransaction(
            request, dest, self._out, self.config.timers, self._reliable, now, leg
        )
        self._client[key] = tx
        self._after_client(key, tx)
        return key

    def _dialog_destination(self, leg: _Leg) -> Addr:
        dialog = leg.dialog
        assert dialog is not None
        hop = dialog.route_set[0] if dialog.route_set else dialog.remote_target
        if leg.hop_cache is not None and leg.hop_cache[0] == hop:
            return leg.hop_cache[1]
        try:
            dest = _resolve(dialog.next_hop(), "route")
        except (LocalProtocolError, RemoteProtocolError):
            dest = leg.peer  # a host name we cannot resolve sans-IO: the peer we know
        leg.hop_cache = (hop, dest)
        return dest

    # -------------------------------------------------------------- receiving
    def _reject(self, exc: RemoteProtocolError, addr: Addr) -> None:
        self._events.append(ev.BadMessage(addr, exc.reason))
        partial = exc.partial
        if not isinstance(partial, Request) or partial.method == "ACK":
            return
        try:
            response = make_response(partial, exc.status_code, _phrase(exc.reason))
            data = response.to_bytes()
        except RemoteProtocolError:
            return
        self._out.append((data, addr))

    def _dispatch(self, message: Request | Response, addr: Addr, now: float) -> None:
        self._now = now
        try:
            if isinstance(message, Response):
                self._on_response(message, addr, now)
            else:
                self._on_request(message, addr, now)
        except RemoteProtocolError as exc:
            if exc.partial is None:
                exc.partial = message
            self._reject(exc, addr)

    def _on_response(self, response: Response, addr: Addr, now: float) -> None:
        via = response.top_via
        key = (via.branch or "", response.cseq.method)
        tx = self._client.get(key)
        if tx is None:
            self._events.append(ev.BadMessage(addr, f"{response!r} matches no transaction"))
            return
        passed = tx.receive_response(response, now)
        self._after_client(key, tx)
        if passed and tx.leg is not None:
            leg = self._legs.get(tx.leg)
            if leg is not None:
                self._leg_response(leg, tx, key, response, now)

    def _on_request(self, request: Request, addr: Addr, now: float) -> None:
        via = request.top_via
        if not self._reliable:
            self._stamp_via(request, via.host, addr, "rport" in via.params)
        method = request.method
        branch = via.branch or f"{request.call_id}:{request.cseq.seq}:{request.from_.tag}"
        host, port = via.sent_by
        key = (branch, host, port, "INVITE" if method == "ACK" else method)
        tx = self._server.get(key)
        if tx is not None:
            if method == "ACK" and tx.state is State.ACCEPTED:
                self._on_ack(request)  # a 2xx ACK reusing the INVITE's branch
                return
            tx.receive_request(request, now)
            self._after_server(key, tx)
            return
        if method == "ACK":
            self._on_ack(request)
            return
        # §18.2.2 / RFC 3581: answer the source address when the client asked for rport.
        symmetric = self._reliable or "rport" in via.params
        dest = addr if symmetric else (addr[0], via.port or 5060)
        tx = ServerTransaction(request, dest, self._out, self.config.timers, self._reliable, now)
        self._server[key] = tx
        try:
            if method == "CANCEL":
                self._on_cancel(tx, key, now)
            else:
                self._on_new_request(tx, key, addr, now)
        except RemoteProtocolError as exc:
            # A header the TU needed was malformed: answer through the transaction so it
            # absorbs retransmissions and ends on its own timer.
            self._events.append(ev.BadMessage(addr, exc.reason))
            if not tx.final_sent:
                tx.respond(make_response(request, exc.status_code, _phrase(exc.reason)), now)
        self._after_server(key, tx)

    def _stamp_via(self, request: Request, host: str, addr: Addr, rport: bool) -> None:
        """RFC 3261 §18.2.1 `received` and RFC 3581 `rport` on the top Via."""
        same_host = host.strip("[]") == addr[0]
        if same_host and not rport:
            return
        value = request.get("Via") or ""
        if not same_host:
            value += f";received={addr[0]}"
        if rport:
            value = _set_rport(value, addr[1])
        request.replace_first("Via", value)

    def _answer(
        self,
        tx: ServerTransaction,
        key: _ServerKey,
        status: int,
        now: float,
        phrase: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        to_tag = None if tx.request.to.tag else self._token()
        response = self._response(tx.request, status, phrase, to_tag, b"", "", None, headers)
        tx.respond(response, now)

    def _on_new_request(
        self, tx: ServerTransaction, key: _ServerKey, addr: Addr, now: float
    ) -> None:
        request = tx.request
        method = request.method
        to_tag = request.to.tag
        if to_tag is not None:
            leg_id = self._dialogs.get((request.call_id, to_tag))
            leg = self._legs.get(leg_id) if leg_id is not None else None
            if leg is None or leg.dialog is None:
                ended_until = self._ended.get((request.call_id, to_tag), 0.0)
                late = method == "BYE" and ended_until > now
                self._answer(tx, key, 200 if late else 481, now)
                return
            self._in_dialog(leg, tx, key, now)
            return
        if method == "INVITE":
            self._new_call(tx, key, addr, now)
        elif method == "OPTIONS":
            self._answer(
                tx, key, 200, now, headers=[("Allow", ALLOW), ("Accept", "application/sdp")]
            )
        elif method == "REGISTER" and self.registrar is not None:
            tx.respond(self.registrar.handle(request, now), now)
        elif method in ("BYE", "UPDATE", "INFO", "PRACK"):
            self._answer(tx, key, 481, now)
        else:
            self._answer(tx, key, 405, now, headers=[("Allow", ALLOW)])

    def _new_call(self, tx: ServerTransaction, key: _ServerKey, addr: Addr, now: float) -> None:
        request = tx.request
        request.parsed_uri  # noqa: B018 - an unknown scheme or bad URI: 416/400 (RFC 4475 §3.3.5)
        if request.max_forwards == 0:
            self._answer(tx, key, 483, now)
            return
        required = {
            option.strip().lower()
            for value in request.get_all("Require")
            for option in value.split(",")
        } - _SUPPORTED_EXTENSIONS
        if required:
            self._answer(tx, key, 420, now, headers=[("Unsupported", ", ".join(sorted(required)))])
            return
        leg = _Leg(next(self._ids), "uas", request, self._token(), addr)
        leg.dialog = Dialog.as_uas(request, leg.local_tag)
        leg.invite_key = key
        leg.reply_to = tx.dest
        tx.leg = leg.id
        self._legs[leg.id] = leg
        self._dialogs[(request.call_id, leg.local_tag)] = leg.id
        self._events.append(ev.IncomingCall(leg.id, request, addr))

    def _in_dialog(self, leg: _Leg, tx: ServerTransaction, key: _ServerKey, now: float) -> None:
        request = tx.request
        dialog = leg.dialog
        assert dialog is not None
        if not dialog.check_remote_cseq(request):
            self._answer(tx, key, 500, now, "CSeq out of order")
            return
        method = request.method
        if method == "BYE":
            self._answer(tx, key, 200, now)
            if leg.state == "terminated":
                return  # our BYE crossed theirs: Ended(local) follows from our BYE
            if leg.role == "uas":
                invite_tx = self._server.get(leg.invite_key)  # type: ignore[arg-type]
                if invite_tx is not None and not invite_tx.final_sent:
                    invite_tx.respond(
                        self._response(leg.invite, 487, None, leg.local_tag, b"", "", None, ()),
                        now,
                    )
            self._events.append(ev.Ended(leg.id, "remote", _first_reason(request)))
            self._finish(leg)
        elif method == "OPTIONS":
            self._answer(tx, key, 200, now, headers=[("Allow", ALLOW)])
        elif leg.state == "terminated":
            self._answer(tx, key, 481, now)
        else:
            request_id = next(self._ids)
            self._requests[request_id] = key
            tx.leg = leg.id
            if method == "INVITE" and len(request.get_all("Contact")) == 1:
                dialog.remote_target = request.contacts[0].uri
            self._events.append(ev.DialogRequest(leg.id, request_id, request))

    def _on_cancel(self, tx: ServerTransaction, key: _ServerKey, now: float) -> None:
        request = tx.request
        invite_key = (key[0], key[1], key[2], "INVITE")
        invite_tx = self._server.get(invite_key)
        if invite_tx is None:
            self._answer(tx, key, 481, now)
            return
        tx.respond(make_response(request, 200, to_tag=None), now)
        if invite_tx.final_sent:
            return
        leg = self._legs.get(invite_tx.leg) if invite_tx.leg is not None else None
        tag = leg.local_tag if leg is not None else self._token()
        invite_tx.respond(self._response(invite_tx.request, 487, None, tag, b"", "", None, ()), now)
        self._after_server(invite_key, invite_tx)
        if leg is not None:
            self._events.append(ev.Cancelled(leg.id, _first_reason(request), request))
            self._finish(leg)

    def _on_ack(self, request: Request) -> None:
        to_tag = request.to.tag
        leg_id = self._dialogs.get((request.call_id, to_tag or ""))
        leg = self._legs.get(leg_id) if leg_id is not None else None
        if leg is None or leg.retrans_give_up == 0.0:
            return  # stray or duplicate ACK: nothing to do (§17.2.3 / §13.3.1.4)
        leg.retrans_data = None
        leg.retrans_next = None
        leg.retrans_give_up = 0.0
        leg.invite = _slim(leg.invite)
        invite_tx = self._server.get(leg.invite_key)  # type: ignore[arg-type]
        if invite_tx is not None and invite_tx.request.cseq == leg.invite.cseq:
            invite_tx.request = leg.invite  # held for Timer L: the slim copy will do
        self._events.append(ev.Confirmed(leg.id, request))

    # --------------------------------------------------------------- UAC side
    def _leg_response(
        self, leg: _Leg, tx: ClientTransaction, key: _ClientKey, response: Response, now: float
    ) -> None:
        method = tx.request.method
        status = response.status
        if method == "INVITE" and key == leg.invite_key:
            self._invite_response(leg, tx, response, now)
        elif method == "CANCEL" or status < 200:
            return  # a CANCEL's outcome is the INVITE's final response
        elif status in (401, 407) and self._retry_with_auth(leg, tx, response, now):
            return
        elif method == "BYE":
            self._events.append(ev.Ended(leg.id, "local", leg.bye_reason, status))
            self._finish(leg)
        else:
            if method == "INVITE" and status < 300:
                if leg.dialog is not None:
                    leg.dialog.update_from_response(response)
                self._send_ack(leg, tx.request.cseq.seq, now, b"", "", tx)
            self._events.append(ev.DialogResponse(leg.id, response, method, status))
            if status in _DIALOG_GONE:
                self._lose(leg, now, Reason("SIP", status, response.reason))

    def _invite_response(
        self, leg: _Leg, tx: ClientTransaction, response: Response, now: float
    ) -> None:
        status = response.status
        if status < 200:
            leg.provisional_seen = True
            if leg.cancel_requested and not leg.cancel_sent:
                self._send_cancel(leg, now)
            if status > 100 and response.to.tag is not None and leg.state != "confirmed":
                if leg.dialog is None or leg.dialog.remote_tag != response.to.tag:
                    leg.dialog = Dialog.as_uac(leg.invite, response)
                else:
                    leg.dialog.update_from_response(response)
                leg.state = "early"
            if status > 100:
                self._events.append(ev.Progress(leg.id, response))
            return
        if status < 300:
            to_tag = response.to.tag
            if leg.answered:
                dialog = leg.dialog
                if dialog is not None and to_tag != dialog.remote_tag:
                    self._reject_fork(leg, response, now)
                return  # a retransmission: the transaction re-sent the ACK
            if leg.dialog is None or leg.dialog.remote_tag != to_tag:
                leg.dialog = Dialog.as_uac(leg.invite, response)
            else:
                leg.dialog.update_from_response(response)
            leg.state = "confirmed"
            leg.answered = True
            cseq = leg.invite.cseq.seq
            self._events.append(ev.Answered(leg.id, response))
            if leg.cancel_requested:
                # 200 crossed our CANCEL (§9.1/§15): ACK it, then end the call with BYE.
                self._send_ack(leg, cseq, now, b"", "", tx)
                self._send_bye(leg, now, leg.cancel_reason)
            elif leg.defer_ack:
                leg.pending_ack = cseq
            else:
                self._send_ack(leg, cseq, now, b"", "", tx)
            return
        if status in (401, 407) and self._retry_with_auth(leg, tx, response, now):
            return
        reason = _first_reason(response)
        self._events.append(ev.Failed(leg.id, status, response.reason, reason, response))
        self._finish(leg)

    def _reject_fork(self, leg: _Leg, response: Response, now: float) -> None:
        """A second 2xx from another fork (§13.2.2.4): ACK it and BYE that dialog."""
        fork = Dialog.as_uac(leg.invite, response)
        dest = self._dialog_destination(leg)
        ack = fork.new_request("ACK", self._via(), None, cseq=leg.invite.cseq.seq)
        self._out.append((ack.to_bytes(), dest))
        self._send_request(fork.new_request("BYE", self._via(), None), dest, None, now)

    def _send_ack(
        self,
        leg: _Leg,
        cseq: int,
        now: float,
        body: bytes,
        content_type: str,
        tx: ClientTransaction | None = None,
    ) -> None:
        dialog = leg.dialog
        assert dialog is not None
        ack = dialog.new_request("ACK", self._via(), None, cseq=cseq)
        if body:
            ack.add("Content-Type", content_type)
            ack.body = body
        data = ack.to_bytes()
        self._out.append((data, self._dialog_destination(leg)))
        if tx is None and isinstance(leg.invite_key, tuple) and len(leg.invite_key) == 2:
            tx = self._client.get(leg.invite_key)
        if tx is not None:
            tx.ack_for_2xx = data
        if leg.pending_ack == cseq:
            leg.pending_ack = None
        if cseq == leg.invite.cseq.seq:
            if tx is not None and tx.request is leg.invite:
                tx.request = leg.invite = _slim(leg.invite)  # held for Timer M: slim will do
            else:
                leg.invite = _slim(leg.invite)

    def _send_cancel(self, leg: _Leg, now: float) -> None:
        invite = leg.invite
        headers = [(n, v) for n, v in invite.headers if n in ("From", "To", "Call-ID", "Route")]
        headers.insert(0, ("Via", invite.get("Via") or ""))
        headers += [("CSeq", f"{invite.cseq.seq} CANCEL"), ("Max-Forwards", "70")]
        if leg.cancel_reason is not None:
            headers.append(("Reason", str(leg.cancel_reason)))
        cancel = Request("CANCEL", invite.uri, headers)
        key: _ClientKey = leg.invite_key  # type: ignore[assignment]
        self._send_request(cancel, leg.peer, leg.id, now)
        leg.cancel_sent = True
        invite_tx = self._client.get(key)
        if invite_tx is not None:
            invite_tx.stop_waiting_after_cancel(now)
            self._after_client(key, invite_tx)

    def _send_bye(self, leg: _Leg, now: float, reason: Reason | None) -> None:
        assert leg.dialog is not None
        bye = leg.dialog.new_request("BYE", self._via(), None)
        if reason is not None:
            bye.add("Reason", str(reason))
        leg.bye_reason = reason
        leg.state = "terminated"
        leg.retrans_data = None
        leg.retrans_next = None
        leg.retrans_give_up = 0.0
        self._send_request(bye, self._dialog_destination(leg), leg.id, now)

    def _retry_with_auth(
        self, leg: _Leg, tx: ClientTransaction, response: Response, now: float
    ) -> bool:
        """Answer a 401/407 by re-sending the request with credentials (at most twice, and
        never twice for the same nonce unless the server says it was stale)."""
        if leg.credentials is None or leg.auth_tries >= 2:
            return False
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        answer = "Authorization" if response.status == 401 else "Proxy-Authorization"
        challenge: Challenge | None = None
        for value in response.get_all(header):
            try:
                candidate = Challenge.parse(value)
            except RemoteProtocolError:
                continue
            if leg.credentials.realm in (None, candidate.realm):
                challenge = candidate
                if candidate.algorithm.startswith("SHA-256"):
                    break  # RFC 8760: prefer the strongest algorithm offered
        if challenge is None:
            return False
        if leg.auth_tries and not challenge.stale:
            return False  # credentials were refused
        leg.auth_tries += 1
        old = tx.request
        method = old.method
        seq = old.cseq.seq + 1
        headers = [
            (n, v)
            for n, v in old.headers
            if n not in ("Via", "CSeq", "Authorization", "Proxy-Authorization")
        ]
        headers.insert(0, ("Via", self._via()))
        headers.append(("CSeq", f"{seq} {method}"))
        headers.append(
            (answer, authorization_for(challenge, leg.credentials, method, old.uri, body=old.body))
        )
        request = Request(method, old.uri, headers, old.body)
        if leg.dialog is not None and leg.dialog.local_seq < seq:
            leg.dialog.local_seq = seq
        key = self._send_request(request, tx.dest, leg.id, now)
        if method == "INVITE" and tx.request is leg.invite:
            leg.invite = request
            leg.invite_key = key
            leg.provisional_seen = False
        return True

    def _client_failed(self, tx: ClientTransaction, status: int, phrase: str) -> None:
        """Timeout (408) or transport failure (503) of a client transaction."""
        leg = self._legs.get(tx.leg) if tx.leg is not None else None
        if leg is None:
            return
        method = tx.request.method
        if method == "INVITE" and tx.request is leg.invite:
            if leg.answered:
                return
            self._events.append(ev.Failed(leg.id, status, phrase, None, None))
            self._finish(leg)
        elif method == "BYE":
            self._events.append(ev.Ended(leg.id, "local", leg.bye_reason, status, phrase))
            self._finish(leg)
        elif method != "CANCEL":
            self._events.append(ev.DialogResponse(leg.id, None, method, status))
            self._lose(leg, self._now, Reason("SIP", status, phrase))

    # ------------------------------------------------------------ leg timers
    def _start_2xx_retransmission(self, leg: _Leg, data: bytes, now: float) -> None:
        """§13.3.1.4: the UAS core re-sends its 2xx until the ACK, for up to 64*T1."""
        t1 = self.config.timers.t1
        leg.retrans_data = data
        leg.retrans_interval = t1
        leg.retrans_give_up = now + 64 * t1
        leg.retrans_next = leg.retrans_give_up if self._reliable else now + t1
        self._push(leg.retrans_next, _LEG, leg.id)

    def _leg_timer(self, leg: _Leg, now: float) -> None:
        if leg.retrans_data is None:
            leg.retrans_next = None
            return
        if now >= leg.retrans_give_up:
            leg.retrans_data = None
            leg.retrans_next = None
            leg.retrans_give_up = 0.0
            self._lose(leg, now, Reason("SIP", 408, "ACK not received"))
            return
        self._out.append((leg.retrans_data, leg.reply_to))
        leg.retrans_interval = min(leg.retrans_interval * 2, self.config.timers.t2)
        leg.retrans_next = min(now + leg.retrans_interval, leg.retrans_give_up)
        self._push(leg.retrans_next, _LEG, leg.id)

    def _lose(self, leg: _Leg, now: float, reason: Reason) -> None:
        """The far end is gone (§13.3.1.4, §12.2.1.2): end a confirmed session with BYE
        and tell the driver, which did not ask for it."""
        if leg.state != "confirmed":
            return
        self._send_bye(leg, now, reason)
        self._events.append(ev.Lost(leg.id, reason))

    def _finish(self, leg: _Leg) -> None:
        """The leg is over for the driver: forget it (transactions finish on their own).
        Its dialog id is remembered so that a BYE crossing ours, or a late retransmission of
        theirs, is answered 200 rather than 481: for 64*T1, and at least as long as a peer
        on default timers retransmits (its BYE may outlive our Timer J when our T1 is
        shorter than its own; 481 would make it fail a call that ended normally)."""
        leg.state = "terminated"
        self._legs.pop(leg.id, None)
        key = (leg.invite.call_id, leg.local_tag)
        self._dialogs.pop(key, None)
        if leg.dialog is not None and leg.dialog.state is DialogState.CONFIRMED:
            expiry = self._now + max(64 * self.config.timers.t1, _PEER_RETRANSMIT_WINDOW)
            self._ended[key] = expiry
            self._ended_order.append((expiry, key))
        ended, order = self._ended, self._ended_order
        while order and order[0][0] <= self._now:
            _, old = order.popleft()
            if ended.get(old, 0.0) <= self._now:
                ended.pop(old, None)


# ------------------------------------------------------------------ helpers
def _branch_of(request: Request) -> str:
    via = request.get("Via") or ""
    start = via.find("branch=")
    if start < 0:
        raise LocalProtocolError("request without a Via branch")
    end = via.find(";", start)
    return via[start + 7 : end if end >= 0 else len(via)]


_KEPT = frozenset(("From", "Call-ID", "CSeq"))


def _slim(invite: Request) -> Request:
    """What an ACKed leg still needs of its INVITE: the ids of its dialog, for a late 2xx
    from another fork (CANCEL, 487 and auth retries are over by then), so a held call does
    not keep the whole request, its body and parsed fields alive (nor does the INVITE
    transaction that outlives the ACK by Timer L or M)."""
    slim = Request(invite.method, invite.uri)
    slim.headers = [header for header in invite.headers if header[0] in _KEPT]  # shared
    return slim


def _phrase(reason: str) -> str:
    """A reason phrase from an error text: printable, one line, bounded."""
    return "".join(ch for ch in reason if ch.isprintable())[:120] or "Bad Request"


def _set_rport(via: str, port: int) -> str:
    parts = via.split(";")
    return ";".join(f"rport={port}" if p.strip().lower() == "rport" else p for p in parts)


def _first_reason(message: Request | Response) -> Reason | None:
    """The Q.850 Reason if present, else the first parsable one (malformed ones ignored)."""
    found: Reason | None = None
    for value in message.get_all("Reason"):
        try:
            reason = Reason.parse(value)
        except RemoteProtocolError:
            continue
        if reason.protocol.upper() == "Q.850":
            return reason
        found = found or reason
    return found


def _host_for_uri(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _name_addr(value: str, what: str) -> tuple[str, str]:
    """A header value and its URI from a URI or name-addr given by the driver."""
    try:
        parsed = NameAddr.parse(value, what)
        SipURI.parse(parsed.uri)
    except RemoteProtocolError as exc:
        raise LocalProtocolError(f"{what}: {exc.reason}") from None
    text = value.strip()
    return (text if "<" in text else f"<{parsed.uri}>"), parsed.uri


_RESOLVED: dict[str, Addr] = {}  # the few URIs a B2BUA sends to (trunks, phones), bounded


def _resolve(uri: str, what: str) -> Addr:
    """Host and port of a URI whose host is an IP literal (no DNS in the sans-IO core:
    give `destination=` or `outbound_proxy` for names)."""
    known = _RESOLVED.get(uri)
    if known is not None:
        return known
    try:
        parsed = SipURI.parse(uri)
    except RemoteProtocolError as exc:
        raise LocalProtocolError(f"{what}: {exc.reason}") from None
    host = parsed.host.strip("[]")
    try:
        if not _IPV4.match(host):
            ipaddress.ip_address(host)
    except ValueError:
        raise LocalProtocolError(
            f"{what}: host {parsed.host!r} is not an IP address; pass destination= "
            "or configure outbound_proxy"
        ) from None
    default = 5061 if parsed.scheme == "sips" else 5060
    addr = host, parsed.port or default
    if len(_RESOLVED) < 4096:
        _RESOLVED[uri] = addr
    return addr

"""Interop with SIPp, a real SIP peer, over 127.0.0.1: SIPp's built-in `uac` calling a
UAS built on our stack (UDP and TCP), and our UAC calling SIPp's built-in `uas`. Each
must finish with 0 failed calls (SIPp's exit status 0) and every call ended cleanly here."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
from pathlib import Path

import pytest

from legato.sip import events as ev
from legato.sip.auth import Credentials, DigestServer
from legato.sip.registrar import Registrar
from legato.sip.transaction import TimerConfig
from legato.sip.transport import SipTransport, run
from legato.sip.ua import UAConfig
from legato.testing import free_port

pytestmark = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp not installed")
MALFORMED = [
    b"INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKj\r\n"
    b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: j\r\nCSeq: 1 BYE\r\n\r\n",
    b"INVITE sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: 99999\r\n\r\n",
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKnone\r\nFrom: <sip:a@h>"
    b";tag=1\r\nTo: <sip:b@h>\r\nCall-ID: j\r\nCSeq: 1 INVITE\r\n\r\n",
    b"BYE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP\r\nFrom: a\r\nTo: b\r\n"
    b"Call-ID: j\r\nCSeq: x BYE\r\n\r\n",
]
SDP = (
    b"v=0\r\no=legato 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


async def sipp(cwd: Path, *args: str, timeout: float = 60) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "sipp",
        *args,
        "-nostdin",
        "-trace_err",
        "-timeout",
        "40",
        "-timeout_error",
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    errors = "".join(p.read_text(errors="replace")[-3000:] for p in cwd.glob("*_errors.log"))
    return proc.returncode or 0, out.decode(errors="replace")[-3000:] + errors


class Uas:
    """A minimal answering machine on our stack: 180, then 200 with SDP; counts BYEs."""

    def __init__(self) -> None:
        self.transport: SipTransport | None = None
        self.incoming = 0
        self.confirmed = 0
        self.ended_by_remote = 0
        self.bad: list[str] = []

    def handle(self, event: ev.Event) -> None:
        assert self.transport is not None
        ua, now = self.transport.ua, self.transport.loop.time()
        if isinstance(event, ev.IncomingCall):
            self.incoming += 1
            ua.respond(event.leg, 180, now)
            ua.respond(event.leg, 200, now, body=SDP)
        elif isinstance(event, ev.Confirmed):
            self.confirmed += 1
        elif isinstance(event, ev.Ended) and event.by == "remote":
            self.ended_by_remote += 1
        elif isinstance(event, ev.BadMessage):
            self.bad.append(event.reason)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sipp_uac_calls_our_uas(tmp_path: Path, transport: str) -> None:
    calls = 30

    async def main() -> tuple[int, str, Uas, int]:
        uas = Uas()
        config = UAConfig(("127.0.0.1", 0))
        opener = SipTransport.open_udp if transport == "udp" else SipTransport.open_tcp
        uas.transport = await opener(config, uas.handle)
        port = uas.transport.local[1]
        mode = ["-t", "u1"] if transport == "udp" else ["-t", "t1"]
        calls_done = asyncio.create_task(
            sipp(
                tmp_path,
                "-sn",
                "uac",
                f"127.0.0.1:{port}",
                "-i",
                "127.0.0.1",
                "-p",
                str(free_port()),
                *mode,
                "-m",
                str(calls),
                "-r",
                "20",
                "-d",
                "200",
                "-l",
                "20",
            )
        )
        if transport == "udp":
            await asyncio.sleep(0.5)  # calls in progress: now a burst of malformed messages
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
                rng = random.Random(7)
                for i in range(300):
                    junk.sendto(rng.randbytes(rng.randrange(1, 1400)), ("127.0.0.1", port))
                    junk.sendto(MALFORMED[i % len(MALFORMED)], ("127.0.0.1", port))
                    if i % 50 == 0:
                        await asyncio.sleep(0.01)
        code, output = await calls_done
        await asyncio.sleep(0.2)
        legs = uas.transport.ua.active_legs
        await uas.transport.close()
        return code, output, uas, legs

    code, output, uas, legs = run(main())
    assert code == 0, output
    assert uas.incoming == uas.confirmed == uas.ended_by_remote == calls, output
    assert legs == 0
    if transport == "udp":
        assert len(uas.bad) >= 300  # every malformed message was seen and refused
    else:
        assert uas.bad == []


@pytest.mark.parametrize("transport_kind", ["udp", "tcp"])
def test_our_uac_calls_sipp_uas(tmp_path: Path, transport_kind: str) -> None:
    calls = 20

    async def main() -> tuple[int, str, dict[str, int], int]:
        port = free_port()
        mode = ["-t", "u1"] if transport_kind == "udp" else ["-t", "t1"]
        proc_task = asyncio.create_task(
            sipp(
                tmp_path, "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-m", str(calls), *mode
            )
        )
        await asyncio.sleep(0.5)  # let SIPp bind
        counts = {"answered": 0, "ended": 0, "failed": 0}
        done = asyncio.Event()
        transport: SipTransport | None = None

        def handle(event: ev.Event) -> None:
            assert transport is not None
            if isinstance(event, ev.Answered):
                counts["answered"] += 1
                leg = event.leg
                transport.loop.call_later(
                    0.05, lambda: (transport.ua.bye(leg, transport.loop.time()), transport.flush())
                )
            elif isinstance(event, ev.Ended):
                counts["ended"] += 1
            elif isinstance(event, ev.Failed):
                counts["failed"] += 1
            if counts["ended"] + counts["failed"] == calls:
                done.set()

        opener = SipTransport.open_udp if transport_kind == "udp" else SipTransport.open_tcp
        transport = await opener(UAConfig(("127.0.0.1", 0)), handle)
        for i in range(calls):
            transport.ua.invite(
                f"sip:service@127.0.0.1:{port}",
                from_=f"sip:caller{i}@127.0.0.1",
                now=transport.loop.time(),
                body=SDP,
            )
            transport.flush()
            await asyncio.sleep(0.01)
        await asyncio.wait_for(done.wait(), 30)
        code, output = await proc_task
        legs = transport.ua.active_legs
        await transport.close()
        return code, output, counts, legs

    code, output, counts, legs = run(main())
    assert counts == {"answered": calls, "ended": calls, "failed": 0}, output
    assert code == 0, output
    assert legs == 0


class Bridge:
    """The shape of a B2BUA driver on this API: each incoming call is bridged to a new
    outgoing call; progress, answer, failures and hang-ups are relayed leg to leg."""

    def __init__(self, next_hop: int) -> None:
        self.next_hop = next_hop
        self.transport: SipTransport | None = None
        self.peer: dict[int, int] = {}
        self.bridged = 0
        self.ended = 0

    def handle(self, event: ev.Event) -> None:
        assert self.transport is not None
        ua, now = self.transport.ua, self.transport.loop.time()
        if isinstance(event, ev.IncomingCall):
            out = ua.invite(
                f"sip:agent@127.0.0.1:{self.next_hop}",
                from_=event.request.get("From") or "",
                now=now,
                body=event.request.body,
            )
            self.peer[out], self.peer[event.leg] = event.leg, out
        elif isinstance(event, ev.Progress):
            ua.respond(self.peer[event.leg], event.response.status, now)
        elif isinstance(event, ev.Answered):
            ua.respond(self.peer[event.leg], 200, now, body=event.response.body)
            self.bridged += 1
        elif isinstance(event, ev.Failed):
            ua.respond(self.peer.pop(event.leg), event.status, now, reason=event.reason)
        elif isinstance(event, ev.Cancelled):
            ua.cancel(self.peer.pop(event.leg), now, event.reason)
        elif isinstance(event, ev.Ended):
            other = self.peer.pop(event.leg, None)
            self.ended += 1
            if other is not None:
                self.peer.pop(other, None)
                ua.hangup(other, now, event.reason)


def test_sipp_uac_through_our_bridge_to_sipp_uas(tmp_path: Path) -> None:
    calls = 30

    async def main() -> tuple[int, str, int, str, Bridge, int]:
        uas_port = free_port()
        (tmp_path / "uas").mkdir()
        (tmp_path / "uac").mkdir()
        uas_task = asyncio.create_task(
            sipp(
                tmp_path / "uas",
                "-sn",
                "uas",
                "-i",
                "127.0.0.1",
                "-p",
                str(uas_port),
                "-m",
                str(calls),
            )
        )
        await asyncio.sleep(0.5)
        bridge = Bridge(uas_port)
        bridge.transport = await SipTransport.open_udp(UAConfig(("127.0.0.1", 0)), bridge.handle)
        uac_code, uac_out = await sipp(
            tmp_path / "uac",
            "-sn",
            "uac",
            f"127.0.0.1:{bridge.transport.local[1]}",
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-m",
            str(calls),
            "-r",
            "20",
            "-d",
            "200",
        )
        uas_code, uas_out = await uas_task
        await asyncio.sleep(0.2)
        legs = bridge.transport.ua.active_legs
        await bridge.transport.close()
        return uac_code, uac_out, uas_code, uas_out, bridge, legs

    uac_code, uac_out, uas_code, uas_out, bridge, legs = run(main())
    assert uac_code == 0, uac_out
    assert uas_code == 0, uas_out
    assert bridge.bridged == calls and bridge.ended == 2 * calls
    assert legs == 0


def test_sipp_uac_with_packet_loss_still_completes(tmp_path: Path) -> None:
    """SIPp drops 10% of the messages it sends and receives (`-lost 10`): retransmissions
    on both sides must still complete every call, and our agent must end up with no call
    state (a call whose ACK and BYE were both lost is ended by our ACK timeout)."""
    calls = 40
    fast = TimerConfig(t1=0.1, t2=0.8, t4=1.0)

    async def main() -> tuple[int, str, Uas, int, int]:
        uas = Uas()
        ended_local = 0

        def handle(event: ev.Event) -> None:
            nonlocal ended_local
            if isinstance(event, ev.Ended) and event.by == "local":
                ended_local += 1
            uas.handle(event)

        uas.transport = await SipTransport.open_udp(UAConfig(("127.0.0.1", 0), timers=fast), handle)
        code, output = await sipp(
            tmp_path,
            "-sn",
            "uac",
            f"127.0.0.1:{uas.transport.local[1]}",
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-m",
            str(calls),
            "-r",
            "20",
            "-d",
            "200",
            "-lost",
            "10",
        )
        # A call whose ACK and BYE were both lost lives on here for up to 128*T1 = 12.8 s:
        # 64*T1 of 2xx retransmissions waiting for the ACK, then our BYE, which may go
        # unanswered for Timer F = 64*T1 more. SIPp's built-in uac takes any 200 as its
        # BYE's 200, a retransmitted 200 to the INVITE included, so it may count the call
        # done and forget it before either reached us: it never answers that BYE.
        for _ in range(150):
            if uas.transport.ua.active_legs == 0:
                break
            await asyncio.sleep(0.1)
        legs = uas.transport.ua.active_legs
        await uas.transport.close()
        return code, output, uas, legs, ended_local

    code, output, uas, legs, ended_local = run(main())
    assert code == 0, output
    assert uas.incoming == calls and legs == 0
    assert uas.ended_by_remote + ended_local == calls


def test_sipp_registers_with_digest_against_our_registrar(tmp_path: Path) -> None:
    """SIPp as a SIP phone: REGISTER, 401 challenge, REGISTER with SIPp's own digest
    answer (an independent implementation), 200 with the binding."""
    calls = 5
    scenario = Path(__file__).with_name("scenarios") / "register_digest.xml"

    async def main() -> tuple[int, str, list[str]]:
        registrar = Registrar(
            {"agent1": "s3cret"}.get, auth=DigestServer("legato", algorithm="MD5")
        )
        transport = await SipTransport.open_udp(
            UAConfig(("127.0.0.1", 0)), lambda event: None, registrar=registrar
        )
        phone_port = free_port()
        code, output = await sipp(
            tmp_path,
            "-sf",
            str(scenario),
            f"127.0.0.1:{transport.local[1]}",
            "-i",
            "127.0.0.1",
            "-p",
            str(phone_port),
            "-m",
            str(calls),
            "-r",
            "10",
        )
        bindings = [b.uri for b in registrar.lookup("sip:agent1@127.0.0.1", transport.loop.time())]
        await transport.close()
        return code, output, bindings

    code, output, bindings = run(main())
    assert code == 0, output
    assert len(bindings) == 1 and bindings[0].startswith("sip:agent1@127.0.0.1:")


@pytest.mark.parametrize(("password", "answered"), [("s3cret", True), ("wrong", False)])
def test_our_uac_answers_a_trunk_digest_challenge(
    tmp_path: Path, password: str, answered: bool
) -> None:
    """SIPp as a trunk challenges with 401 and verifies our answer with its own digest
    code: the right password gets the call through, a wrong one is refused (403)."""
    calls = 5
    scenario = Path(__file__).with_name("scenarios") / "uas_digest.xml"

    async def main() -> tuple[int, str, list[str]]:
        port = free_port()
        trunk = asyncio.create_task(
            sipp(
                tmp_path, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-m", str(calls)
            )
        )
        await asyncio.sleep(0.5)
        outcomes: list[str] = []
        done = asyncio.Event()
        transport: SipTransport | None = None

        def handle(event: ev.Event) -> None:
            assert transport is not None
            if isinstance(event, ev.Answered):
                outcomes.append("answered")
                transport.ua.bye(event.leg, transport.loop.time())
            elif isinstance(event, ev.Failed):
                outcomes.append(str(event.status))
            if len(outcomes) == calls:
                done.set()

        transport = await SipTransport.open_udp(UAConfig(("127.0.0.1", 0)), handle)
        for i in range(calls):
            transport.ua.invite(
                f"sip:+1555000{i}@127.0.0.1:{port}",
                from_="sip:acct@127.0.0.1",
                now=transport.loop.time(),
                credentials=Credentials("acct", password),
            )
            transport.flush()
        await asyncio.wait_for(done.wait(), 20)
        await asyncio.sleep(0.3)  # the BYEs
        code, output = await trunk
        await transport.close()
        return code, output, outcomes

    code, output, outcomes = run(main())
    assert code == 0, output
    assert outcomes == (["answered"] * calls if answered else ["403"] * calls), output

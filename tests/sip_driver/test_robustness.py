"""The driver keeps calls going whatever arrives on its socket, and refuses what it cannot
run with a clear answer."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from legato.core.config import NumberConfig
from legato.core.engine import create_call
from legato.drivers.sip import SipDriver, SipDriverConfig, Trunk, UnsupportedFlow, number_lookup
from legato.scenario.loader import parse_scenario
from legato.scenario.run import scenario_spec
from legato.sip import events as ev
from legato.sip.transport import SipTransport
from legato.sip.ua import UAConfig

from .harness import TIMERS, Case, Peer, answer, finish_sipp, free_port, run_sip, start_sipp
from .test_statuses import AGENT, CALLER, CUSTOMER, NUMBER, dial

pytestmark = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp not installed")


def malformed(rng: random.Random, target: tuple[str, int]) -> list[bytes]:
    """Random bytes, truncated and oversized requests, bad numbers, stray responses."""
    host, port = target
    start = f"INVITE sip:{NUMBER[1:]}@{host}:{port} SIP/2.0\r\n".encode()
    samples = [
        os.urandom(rng.randint(1, 1400)),
        start,
        start + b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\nContent-Length: 99999\r\n\r\n",
        start + b"X-Big: " + b"a" * 60000 + b"\r\n\r\n",
        start + b"CSeq: notanumber INVITE\r\nCall-ID: x\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:c@d>\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKy\r\n\r\n",
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKnone\r\n"
        b"CSeq: 1 INVITE\r\nCall-ID: none\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\n\r\n",
        b"\x00\xff" * 300,
        b"BYE sip:x SIP/2.0\r\n\r\n",
    ]
    return [rng.choice(samples) for _ in range(3000)]


def test_malformed_burst_does_not_disturb_a_call_in_progress(tmp_path: Path) -> None:
    case = Case(
        "burst", {"name": "burst", "service": "incoming", "number": NUMBER, "from": CALLER,
                  "config": {"flow": dial(AGENT)},
                  "phones": {AGENT: {"answer_after": 0.3, "hangup_after": 2}}},
        {AGENT: answer(300, 2000)}, "ANSWER", "leg2", caller=Peer("uac_wait_bye.xml"),
    )
    seen: list[SipDriver] = []

    async def burst(driver: SipDriver) -> None:
        for _ in range(500):  # until the call is in progress
            if driver.active_calls:
                break
            await asyncio.sleep(0.02)
        assert driver.active_calls == 1, (driver.stats, driver.local)
        await asyncio.sleep(0.5)  # answered and bridged by now
        rng = random.Random(7)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, data in enumerate(malformed(rng, driver.local)):
                s.sendto(data[:65000], driver.local)
                if i % 200 == 0:
                    await asyncio.sleep(0)  # let the driver read
        seen.append(driver)

    record, peers = asyncio.run(run_sip(case, tmp_path, during=burst))
    assert (record.status, record.disconnected_by) == ("ANSWER", "leg2")
    for name, rc, out in peers:
        assert rc == 0, f"{name} failed:\n{out}"
    # the burst reached the stack (some of it overflows the socket buffer)
    assert seen[0].stats.bad_messages > 500


def test_a_flow_needing_audio_is_refused_clearly(tmp_path: Path) -> None:
    config = NumberConfig.model_validate(
        {"flow": [{"answer": {}}, {"play": {"prompt": "welcome"}}]})

    async def main() -> tuple[int, str]:
        driver = await SipDriver.open(
            SipDriverConfig(listen=("127.0.0.1", 0), timers=TIMERS),
            number_lookup({NUMBER: config}),
        )
        try:
            scenario = parse_scenario(
                "name: audio\nservice: outbound\nnumber: '+918047001000'\nto: '+919811000003'\n"
                "config: {flow: [{play: {prompt: welcome}}]}\n", "audio")
            with pytest.raises(UnsupportedFlow, match=r"flow\.0\.play: the sip driver"):
                driver.place(create_call(scenario_spec(scenario), driver.now()))
            host, port = driver.local
            caller = await start_sipp(Peer("uac_rejected.xml", {"caller": CALLER[1:]}),
                                      tmp_path, free_port(), "-s", NUMBER[1:], f"{host}:{port}")
            rc, out = await finish_sipp(caller, tmp_path)
            return rc, out + str(dict(driver.stats.refused))
        finally:
            await driver.close()

    rc, out = asyncio.run(main())
    assert rc == 0, out  # refused with 503 and a Reason header
    assert "flow needs audio" in out


def test_calls_complete_under_packet_loss(tmp_path: Path) -> None:
    """10% of SIPp's datagrams lost both ways: retransmissions (ours and SIPp's) recover
    every message, and every call ends as it would without loss."""
    calls = 12

    async def main() -> tuple[list[str], list[tuple[int, str]]]:
        records: list[str] = []
        agent_port = free_port()
        agent = await start_sipp(Peer("uas_ring_answer_wait.xml", sets={"ring_ms": 100},
                                      calls=calls, extra=("-lost", "10")),
                                 tmp_path, agent_port)
        driver = await SipDriver.open(
            SipDriverConfig(listen=("127.0.0.1", 0), trunks=(Trunk("127.0.0.1", agent_port),),
                            timers=TIMERS),
            number_lookup({NUMBER: NumberConfig.model_validate({"flow": dial(AGENT)})}),
            on_incoming_done=lambda r: records.append(f"{r.status}/{r.disconnected_by}"),
        )
        try:
            host, port = driver.local
            caller = await start_sipp(
                Peer("uac_answered_bye.xml", {"caller": CALLER[1:]}, {"hold_ms": 300},
                     calls=calls, extra=("-lost", "10", "-r", "4")),
                tmp_path, free_port(), "-s", NUMBER[1:], f"{host}:{port}")
            for _ in range(600):
                if len(records) == calls:
                    break
                await asyncio.sleep(0.05)
            results = [await finish_sipp(caller, tmp_path), await finish_sipp(agent, tmp_path)]
        finally:
            await driver.close()
        return records, results

    records, results = asyncio.run(main())
    assert records == ["ANSWER/leg1"] * calls
    for rc, out in results:
        assert rc == 0, out


def test_a_caller_whose_ack_never_comes_is_hung_up_and_the_call_ends(tmp_path: Path) -> None:
    """RFC 3261 §13.3.1.4: no ACK for our 200 within 64*T1 (the caller's ACKs were lost, or
    it went away): the caller gets a BYE saying `SIP;cause=408`, the agent a BYE too, and
    the call ends as the caller's side hanging up. Before, the call stayed up with the
    agent (for ever, with an agent that waits for a BYE)."""
    case = Case(
        "no ack", {"name": "no ack", "service": "incoming", "number": NUMBER, "from": CALLER,
                   "config": {"flow": dial(AGENT)}},
        {AGENT: answer(100)}, "ANSWER", "leg1", caller=Peer("uac_no_ack.xml"),
    )
    record, peers = asyncio.run(run_sip(case, tmp_path))
    for name, rc, out in peers:
        assert rc == 0, f"{name} failed:\n{out}"
    assert (record.status, record.disconnected_by) == ("ANSWER", "leg1")
    caller = record.legs[0]
    assert (caller.leg, caller.outcome, caller.ended_by) == (1, "ANSWERED", "leg1")
    assert caller.ended_at - caller.answered_at >= 64 * TIMERS.t1  # the 200 went on that long


def test_a_leg_that_lost_its_dialog_ends_the_call(tmp_path: Path) -> None:
    """RFC 3261 §12.2.1.2: click-to-call's agent answers the re-INVITE that connects it to
    the customer with 481 (its side of the dialog is gone): Legato ends that session with
    a BYE saying `SIP;cause=481`, and the call ends as the agent's hang-up, the customer
    getting a BYE too. Before, the call went on with the agent held and unreachable."""
    case = Case(
        "lost dialog", {"name": "lost dialog", "service": "click_to_call", "number": NUMBER,
                        "from": AGENT, "to": CUSTOMER},
        {AGENT: Peer("uas_answer_refuse_reinvite.xml", sets={"ring_ms": 100}),
         CUSTOMER: answer(100)}, "ANSWER", "leg1",
    )
    record, peers = asyncio.run(run_sip(case, tmp_path))
    for name, rc, out in peers:
        assert rc == 0, f"{name} failed:\n{out}"
    assert (record.status, record.disconnected_by, record.connected_to) == (
        "ANSWER", "leg1", CUSTOMER)
    assert [(leg.leg, leg.outcome, leg.ended_by) for leg in record.legs] == [
        (1, "ANSWERED", "leg1"), (2, "ANSWERED", "platform")]


def test_a_call_that_cannot_be_started_is_refused_with_500() -> None:
    """Whoever owns incoming calls (the runtime under `legato serve`) fails to start one,
    e.g. its number was deleted between the lookup and the start: the caller gets 500 with
    `Reason: Q.850;cause=41`, and the driver keeps taking calls."""

    class Failing:
        def begin(self, number: str, config: NumberConfig, caller: str, now: float) -> Any:
            raise LookupError(f"{number} is no longer a Legato number")

        def placed(self, call: Any, handle: Any) -> None:
            raise AssertionError("never placed")

    async def main() -> tuple[list[ev.Event], SipDriver]:
        config = NumberConfig.model_validate({"flow": dial(AGENT)})
        driver = await SipDriver.open(SipDriverConfig(listen=("127.0.0.1", 0), timers=TIMERS),
                                      number_lookup({NUMBER: config}), incoming=Failing())
        events: list[ev.Event] = []
        caller = await SipTransport.open_udp(UAConfig(("127.0.0.1", 0), timers=TIMERS),
                                             events.append)
        for _ in range(2):
            caller.ua.invite(f"sip:{NUMBER[1:]}@127.0.0.1", from_=f"sip:{CALLER[1:]}@127.0.0.1",
                             now=caller.loop.time(), destination=driver.local)
            caller.flush()
        for _ in range(100):
            if sum(isinstance(e, ev.Failed) for e in events) == 2:
                break
            await asyncio.sleep(0.02)
        await caller.close()
        await driver.close()
        return events, driver

    events, driver = asyncio.run(main())
    failed = [e for e in events if isinstance(e, ev.Failed)]
    assert [(f.status, f.reason.cause if f.reason else None) for f in failed] == [
        (500, 41), (500, 41)]
    assert driver.stats.refused["call not started"] == 2 and driver.active_calls == 0

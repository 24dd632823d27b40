"""The SIP driver with media: a SIPp caller dials a Legato number whose flow is
answer -> gather (espeak-ng menu) -> dial; it presses 1 as an RFC 2833 event, the agent
(a SIPp UAS behind the trunk) rings (the caller gets ringback) and answers, and media is
relayed; hanging up in the menu instead gives IVR-ANSWER (DESIGN §4, issue 8 "done")."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import pytest

from legato.core.config import NumberConfig
from legato.core.record import CallRecord
from legato.drivers.sip import SipDriver, SipDriverConfig, Trunk, number_lookup
from legato.media.call import MediaConfig, MediaServer
from legato.media.ports import PortRange
from legato.sip.transaction import TimerConfig
from legato.sip.transport import SipTransport, run

pytestmark = [
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (sip-tester) not installed"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed"),
    pytest.mark.timeout(90),
]
HERE = Path(__file__).parent
AGENT_SCENARIO = HERE.parent / "sip_driver" / "scenarios" / "uas_ring_answer_bye.xml"
NUMBER, AGENT = "+918047001000", "+919811000101"
FLOW = {
    "flow": [
        {"answer": {}},
        {"gather": {"prompt": {"text": "Welcome to Legato. Press one for sales."},
                    "digits": 1, "timeout": 5,
                    "branches": {"1": [{"dial": {"to": [AGENT], "ring_timeout": 10}}]}}},
    ]
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def sipp(cwd: Path, scenario: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(free_port()),
        "-mp", str(free_port() // 2 * 2 % 20000 + 30000), "-m", "1", "-nostdin",
        "-timeout", "30", "-timeout_error", "-trace_err", *args,
        cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def finish(proc: asyncio.subprocess.Process, cwd: Path) -> tuple[int, str]:
    out, _ = await asyncio.wait_for(proc.communicate(), 40)
    errors = "".join(p.read_text(errors="replace")[-1500:] for p in cwd.glob("*_errors.log"))
    return proc.returncode or 0, out.decode(errors="replace")[-1500:] + errors


def call(tmp_path: Path, caller_scenario: str, listen_ms: int, digit: str | None
         ) -> tuple[CallRecord, list[tuple[int, str]], MediaServer]:
    async def main() -> tuple[CallRecord, list[tuple[int, str]], MediaServer]:
        agent_port = free_port()
        agent = await sipp(tmp_path, AGENT_SCENARIO, "-set", "ring_ms", "800",
                           "-set", "talk_ms", "1500", "-p", str(agent_port))
        await asyncio.sleep(0.3)
        media = MediaServer(MediaConfig(ports=PortRange(50000, 50999),
                                        cache_dir=tmp_path / "cache"))
        done: asyncio.Future[CallRecord] = asyncio.get_running_loop().create_future()
        driver = await SipDriver.open(
            SipDriverConfig(listen=("127.0.0.1", 0),
                            trunks=(Trunk("127.0.0.1", agent_port, numbers=(AGENT,)),),
                            timers=TimerConfig(t1=0.05, t2=0.4, t4=0.5)),
            number_lookup({NUMBER: NumberConfig.model_validate(FLOW)}),
            on_incoming_done=lambda record: done.done() or done.set_result(record),
            media=media,
        )
        scenario = HERE / "scenarios" / caller_scenario
        if digit is not None:
            text = scenario.read_text().replace("{{digit}}", digit)
            scenario = tmp_path / caller_scenario
            scenario.write_text(text)
        host, port = driver.local
        caller = await sipp(tmp_path, scenario, "-s", NUMBER.lstrip("+"),
                            "-set", "listen_ms", str(listen_ms), f"{host}:{port}")
        try:
            record = await asyncio.wait_for(done, 40)
        finally:
            await asyncio.sleep(0.3)
            await driver.close()
        results = [await finish(caller, tmp_path)]
        if digit is None:
            agent.kill()
            await agent.wait()
        else:
            results.append(await finish(agent, tmp_path))
        return record, results, media

    return run(main())


def test_caller_presses_1_hears_ringback_and_talks_to_the_agent(tmp_path: Path) -> None:
    record, results, media = call(tmp_path, "ivr_press.xml", 1200, "1")  # mid-menu
    for code, output in results:
        assert code == 0, output
    data = record.to_dict()
    assert data["status"] == "ANSWER", data
    assert data["picked_by"] == AGENT
    assert any(p.name.startswith("tts-") for p in (tmp_path / "cache").iterdir())
    stats = media.stats  # the menu played and was cut by the digit; ringback; anchored
    assert stats["answers"] == 1 and stats["plays"] == 1 and stats["plays_stopped"] == 1
    assert stats["digits"] == 1 and stats["ringbacks"] == 1 and stats["bridges"] == 1


def test_caller_leaving_in_the_menu_is_ivr_answer(tmp_path: Path) -> None:
    record, results, media = call(tmp_path, "ivr_leave.xml", 1500, None)
    assert results[0][0] == 0, results[0][1]
    data = record.to_dict()
    assert data["status"] == "IVR-ANSWER", data
    assert data["disconnected_by"] == "leg1"
    assert media.stats["plays"] == 1 and media.stats["digits"] == 0


def test_the_caller_hears_the_menu_then_ringback_then_the_agent(tmp_path: Path) -> None:
    """Issue 8's "done": a phone (our UA + an RTP endpoint, recording what it hears) calls
    the menu, hears the espeak-ng welcome, presses 1 (RFC 4733), hears 425 Hz ringback
    while the agent rings, then the agent's voice (SIPp playing g711a.pcap), relayed."""
    import numpy as np

    from legato.media import g711, sdp
    from legato.media.endpoint import RtpEndpoint
    from legato.sip import events as ev
    from legato.sip.ua import UAConfig

    from .net import SIPP_PCAPS

    async def main() -> tuple[CallRecord, list[tuple[float, bytes]], float, tuple[int, str]]:
        agent_port = free_port()
        agent = await sipp(tmp_path, HERE / "scenarios" / "agent_talks.xml", "-set", "ring_ms",
                           "1500", "-set", "talk_ms", "3000", "-p", str(agent_port))
        await asyncio.sleep(0.3)
        media = MediaServer(MediaConfig(ports=PortRange(50000, 50999),
                                        cache_dir=tmp_path / "cache"))
        done: asyncio.Future[CallRecord] = asyncio.get_running_loop().create_future()
        driver = await SipDriver.open(
            SipDriverConfig(listen=("127.0.0.1", 0),
                            trunks=(Trunk("127.0.0.1", agent_port, numbers=(AGENT,)),),
                            timers=TimerConfig(t1=0.05, t2=0.4, t4=0.5)),
            number_lookup({NUMBER: NumberConfig.model_validate(FLOW)}),
            on_incoming_done=lambda record: done.done() or done.set_result(record),
            media=media,
        )
        loop = asyncio.get_running_loop()
        phone = await RtpEndpoint.open("127.0.0.1", PortRange(51000, 51999))
        offer = sdp.offer("127.0.0.1", phone.local[1], codecs=("PCMU",))
        heard: list[tuple[float, bytes]] = []
        phone.on_audio = lambda packet: heard.append((loop.time(), packet.payload))
        answered: asyncio.Future[float] = loop.create_future()
        ended: asyncio.Future[None] = loop.create_future()

        def on_sip(event: ev.Event) -> None:
            if isinstance(event, ev.Answered) and not answered.done():
                phone.configure(sdp.accept_answer(offer, sdp.parse(event.response.body)))
                answered.set_result(loop.time())
            elif isinstance(event, ev.Ended | ev.Failed) and not ended.done():
                ended.set_result(None)

        caller = await SipTransport.open_udp(UAConfig(("127.0.0.1", 0)), on_sip)
        host, port = driver.local
        caller.ua.invite(f"<sip:{NUMBER.lstrip('+')}@{host}:{port}>",
                         from_="<sip:919811000001@127.0.0.1>", now=loop.time(),
                         destination=(host, port), body=offer.encode())
        caller.flush()
        t0 = await asyncio.wait_for(answered, 10)
        await asyncio.sleep(1.2)  # the menu is playing
        phone.send_digit("1")
        try:
            await asyncio.wait_for(ended, 30)
            record = await asyncio.wait_for(done, 10)
        finally:
            await asyncio.sleep(0.3)
            phone.close()
            await caller.close()
            await driver.close()
        agent_result = await finish(agent, tmp_path)
        return record, [(t - t0, p) for t, p in heard], t0, agent_result

    record, heard, _, (agent_code, agent_out) = run(main())
    assert agent_code == 0, agent_out
    data = record.to_dict()
    assert data["status"] == "ANSWER" and data["picked_by"] == AGENT, data

    def window(start: float, end: float) -> np.ndarray:
        frames = [p for t, p in heard if start <= t < end]
        return g711.decode(b"".join(frames), "PCMU").astype(float)

    def rms(x: np.ndarray) -> float:
        return float(np.sqrt((x**2).mean())) if len(x) else 0.0

    def dominant(x: np.ndarray) -> float:
        return float(np.argmax(np.abs(np.fft.rfft(x))) * 8000 / len(x))

    # 1. the welcome prompt (speech) before the digit
    assert rms(window(0.1, 1.1)) > 500
    # 2. ringback: some 0.5 s while the agent rings is a 425 Hz tone
    times = [t for t, _ in heard]
    ring = [s for s in np.arange(1.3, max(times) - 0.5, 0.1)
            if rms(window(s, s + 0.5)) > 500 and abs(dominant(window(s, s + 0.5)) - 425) < 5]
    assert ring, "no ringback heard"
    # 3. then the agent's voice: its envelope matches SIPp's g711a.pcap
    from legato.media import rtp
    from legato.media.capture import Capture

    from .net import pcap_udp_payloads
    reference = Capture()
    for _, payload in pcap_udp_payloads(SIPP_PCAPS / "g711a.pcap"):
        reference.add(rtp.parse(payload), None)
    talk = window(ring[-1] + 0.5, max(times) + 1)
    assert len(talk) / 8000 > 2.0 and rms(talk) > 500
    env = lambda x: np.sqrt((x[: len(x) // 160 * 160].reshape(-1, 160) ** 2).mean(axis=1))  # noqa: E731
    ref_env, talk_env = env(reference.samples().astype(float)), env(talk)

    def overlap_corr(lag: int) -> float:  # talk_env delayed by `lag` windows vs the pcap
        ref = ref_env[max(-lag, 0):]
        got = talk_env[max(lag, 0):]
        m = min(len(ref), len(got))
        return float(np.corrcoef(ref[:m], got[:m])[0, 1])

    best = max(overlap_corr(lag) for lag in range(-50, 50))
    assert best > 0.95  # the agent's voice arrives intact (A-law -> relay -> µ-law)

"""The SIP driver with media: a SIPp caller dials a Legato number whose flow is
answer -> gather (espeak-ng menu) -> dial; it presses 1 as an RFC 2833 event, the agent
(a SIPp UAS behind the trunk) rings (the caller gets ringback) and answers, and media is
relayed; hanging up in the menu instead gives IVR-ANSWER (DESIGN §4, issue 8 "done")."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest

from legato.core.config import NumberConfig
from legato.core.record import CallRecord
from legato.drivers.sip import SipDriver, SipDriverConfig, Trunk, number_lookup
from legato.media import rtp
from legato.media.call import MediaConfig, MediaServer
from legato.media.capture import Capture
from legato.media.ports import PortRange
from legato.sip.transaction import TimerConfig
from legato.sip.transport import run
from legato.testing import free_port

from .net import SIPP_PCAPS, pcap_udp_payloads
from .phone import Phone, dominant_hz, rms

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


async def open_driver(tmp_path: Path, agent_port: int, number: dict[str, object] | None = None,
                      **media_options: object) -> tuple[SipDriver, asyncio.Future[CallRecord]]:
    """The sip driver with media, the number's config (the IVR flow unless given), the agent
    behind a trunk."""
    media = MediaServer(MediaConfig(ports=PortRange(50000, 50999),
                                    cache_dir=tmp_path / "cache", **media_options))  # type: ignore[arg-type]
    done: asyncio.Future[CallRecord] = asyncio.get_running_loop().create_future()
    driver = await SipDriver.open(
        SipDriverConfig(listen=("127.0.0.1", 0),
                        trunks=(Trunk("127.0.0.1", agent_port, numbers=(AGENT,)),),
                        timers=TimerConfig(t1=0.05, t2=0.4, t4=0.5)),
        number_lookup({NUMBER: NumberConfig.model_validate(number or FLOW)}),
        on_incoming_done=lambda record: done.done() or done.set_result(record),
        media=media,
    )
    return driver, done


def call(tmp_path: Path, caller_scenario: str, listen_ms: int, digit: str | None
         ) -> tuple[CallRecord, list[tuple[int, str]], MediaServer]:
    async def main() -> tuple[CallRecord, list[tuple[int, str]], MediaServer]:
        agent_port = free_port()
        agent = await sipp(tmp_path, AGENT_SCENARIO, "-set", "ring_ms", "800",
                           "-set", "talk_ms", "1500", "-p", str(agent_port))
        await asyncio.sleep(0.3)
        driver, done = await open_driver(tmp_path, agent_port)
        media = driver.media
        assert media is not None
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

    async def main() -> tuple[CallRecord, Phone, float, tuple[int, str]]:
        agent_port = free_port()
        agent = await sipp(tmp_path, HERE / "scenarios" / "agent_talks.xml", "-set", "ring_ms",
                           "1500", "-set", "talk_ms", "3000", "-p", str(agent_port))
        await asyncio.sleep(0.3)
        driver, done = await open_driver(tmp_path, agent_port)
        phone = await Phone.open(PortRange(51000, 51999))
        phone.call(NUMBER.lstrip("+"), driver.local)
        t0 = await asyncio.wait_for(phone.answered, 10)
        await asyncio.sleep(1.2)  # the menu is playing
        phone.endpoint.send_digit("1")
        try:
            await asyncio.wait_for(phone.ended, 30)
            record = await asyncio.wait_for(done, 10)
        finally:
            await asyncio.sleep(0.3)
            await phone.close()
            await driver.close()
        return record, phone, t0, await finish(agent, tmp_path)

    record, phone, t0, (agent_code, agent_out) = run(main())
    assert agent_code == 0, agent_out
    data = record.to_dict()
    assert data["status"] == "ANSWER" and data["picked_by"] == AGENT, data

    def window(start: float, end: float) -> np.ndarray:
        return phone.window(t0 + start, t0 + end)

    # 1. the welcome prompt (speech) before the digit
    assert rms(window(0.1, 1.1)) > 500
    # 2. ringback: some 0.5 s while the agent rings is a 425 Hz tone
    last = max(t for t, _ in phone.heard) - t0
    ring = [s for s in np.arange(1.3, last - 0.5, 0.1)
            if rms(window(s, s + 0.5)) > 500 and abs(dominant_hz(window(s, s + 0.5)) - 425) < 5]
    assert ring, "no ringback heard"
    # 3. then the agent's voice: its envelope matches SIPp's g711a.pcap
    reference = Capture()
    for _, payload in pcap_udp_payloads(SIPP_PCAPS / "g711a.pcap"):
        reference.add(rtp.parse(payload), None)
    talk = window(ring[-1] + 0.5, last + 1)
    assert len(talk) / 8000 > 2.0 and rms(talk) > 500

    def env(x: np.ndarray) -> np.ndarray:
        return np.sqrt((x[: len(x) // 160 * 160].reshape(-1, 160) ** 2).mean(axis=1))

    ref_env, talk_env = env(reference.samples().astype(float)), env(talk)

    def overlap_corr(lag: int) -> float:  # talk_env delayed by `lag` windows vs the pcap
        ref = ref_env[max(-lag, 0):]
        got = talk_env[max(lag, 0):]
        m = min(len(ref), len(got))
        return float(np.corrcoef(ref[:m], got[:m])[0, 1])

    best = max(overlap_corr(lag) for lag in range(-50, 50))
    assert best > 0.95  # the agent's voice arrives intact (A-law -> relay -> µ-law)

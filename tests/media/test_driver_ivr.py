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
from legato.sip.transport import run

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

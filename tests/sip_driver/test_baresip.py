"""baresip, a real SIP phone, as the agent of a click-to-call: it answers Legato's INVITE
without SDP, is parked with a held answer, and takes the customer's offer in the re-INVITE
(RFC 3725 flow IV). The record equals the sim's for the same behaviour."""

from __future__ import annotations

import asyncio
import re
import shutil
import struct
import wave
from pathlib import Path

import pytest
import yaml

from legato.core.config import NumberConfig
from legato.core.engine import create_call
from legato.core.record import CallRecord
from legato.drivers.sip import SipDriver, SipDriverConfig, Trunk, number_lookup
from legato.scenario.loader import parse_scenario
from legato.scenario.run import scenario_spec

from .harness import Case, Peer, answer, facts, finish_sipp, free_port, run_sim, start_sipp
from .test_statuses import AGENT, CALLER, CUSTOMER, NUMBER

pytestmark = [
    pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip not installed"),
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp not installed"),
]


def baresip_config(home: Path, port: int, account: str = "") -> None:
    """Auto-answering phone on 127.0.0.1, audio from a file (no sound card needed)."""
    with wave.open(str(home / "tone.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<h", 0) * 8000 * 5)
    rtp = free_port() // 2 * 2
    (home / "config").write_text(
        f"poll_method epoll\nsip_listen 127.0.0.1:{port}\n"
        f"audio_player aufile,{home / 'heard.wav'}\naudio_source aufile,{home / 'tone.wav'}\n"
        f"audio_alert aufile,{home / 'alert.wav'}\nmodule_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule account.so\nmodule menu.so\n"
        f"rtp_ports {rtp}-{rtp + 20}\n"
    )
    account = account or f"<sip:{AGENT}@127.0.0.1>;regint=0;answermode=auto"
    (home / "accounts").write_text(account + "\n")


async def start_baresip(home: Path) -> asyncio.subprocess.Process:
    phone = await asyncio.create_subprocess_exec(
        "baresip", "-f", str(home), "-s", "-t", "40", stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    assert phone.stdout is not None
    ready = b""
    while b"baresip is ready" not in ready:
        line = await asyncio.wait_for(phone.stdout.readline(), 15)
        assert line, "baresip exited before it was ready"
        ready += line
    return phone


async def _call(tmp: Path) -> tuple[CallRecord, str, tuple[int, str]]:
    home = tmp / "baresip"
    home.mkdir()
    phone_port, customer_port = free_port(), free_port()
    baresip_config(home, phone_port)
    phone = await start_baresip(home)
    customer = await start_sipp(answer(300, 1500), tmp, customer_port)
    done: asyncio.Future[CallRecord] = asyncio.get_running_loop().create_future()
    driver = await SipDriver.open(SipDriverConfig(
        listen=("127.0.0.1", 0),
        trunks=(Trunk("127.0.0.1", phone_port, numbers=(AGENT,)),
                Trunk("127.0.0.1", customer_port, numbers=(CUSTOMER,))),
    ))
    try:
        spec = scenario_spec(parse_scenario(yaml.safe_dump(SCENARIO), "baresip"))
        driver.place(create_call(spec, driver.now()), on_done=done.set_result)
        record = await asyncio.wait_for(done, 20)
        await asyncio.sleep(0.5)
    finally:
        await driver.close()
        phone.terminate()
    out, _ = await phone.communicate()
    return record, out.decode(errors="replace"), await finish_sipp(customer, tmp)


SCENARIO = {
    "name": "baresip agent", "service": "click_to_call", "number": NUMBER,
    "from": AGENT, "to": CUSTOMER,
    "phones": {AGENT: {"answer_after": 0}, CUSTOMER: {"answer_after": 0.3, "hangup_after": 1.5}},
}


def test_baresip_agent_click_to_call(tmp_path: Path) -> None:
    record, trace, (rc, out) = asyncio.run(_call(tmp_path))
    assert rc == 0, out
    sip = record.to_dict()
    assert (sip["status"], sip["disconnected_by"]) == ("ANSWER", "leg2")
    case = Case("baresip", SCENARIO, {}, "ANSWER", "leg2")
    assert facts(sip) == facts(run_sim(case, tmp_path))
    # baresip's SIP trace (-s): each INVITE it received, up to its response
    invites = re.findall(r"INVITE sip:.*?(?=SIP/2\.0 [12]\d\d )", trace, re.DOTALL)
    assert len(invites) >= 2, trace[-3000:]  # the first INVITE and the re-INVITE
    assert "m=audio" not in invites[0]  # flow IV: leg 1 is invited without SDP
    assert re.search(r"m=audio [1-9]\d+ ", invites[1]), invites[1]  # the customer's offer
    assert "m=audio 9 " not in invites[1]  # not our held answer


INCOMING = {
    "name": "agent on a registered phone", "service": "incoming", "number": NUMBER,
    "from": CALLER, "config": {"flow": [{"dial": {"to": [AGENT]}}]},
    "phones": {CALLER: {"hangup_after": 1.3}, AGENT: {"answer_after": 0}},
}


async def _registered(tmp: Path) -> tuple[CallRecord, tuple[int, str]]:
    done: asyncio.Future[CallRecord] = asyncio.get_running_loop().create_future()
    driver = await SipDriver.open(
        SipDriverConfig(listen=("127.0.0.1", 0), phones={AGENT: "s3cret"}, phone_auth="MD5"),
        number_lookup({NUMBER: NumberConfig.model_validate(INCOMING["config"])}),
        on_incoming_done=done.set_result,
    )
    home = tmp / "baresip"
    home.mkdir()
    host, port = driver.local
    baresip_config(home, free_port(), f"<sip:{AGENT}@{host}:{port}>;auth_pass=s3cret;"
                   "regint=60;answermode=auto")
    phone = await start_baresip(home)
    try:
        assert driver.registrar is not None
        for _ in range(200):  # until the phone's REGISTER (with digest) is accepted
            if driver.registrar.lookup(f"sip:{AGENT}@{host}", driver.now()):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("baresip did not register")
        caller = await start_sipp(
            Peer("uac_answered_bye.xml", {"caller": CALLER[1:]}, {"hold_ms": 1000}),
            tmp, free_port(), "-s", NUMBER[1:], f"{host}:{port}")
        record = await asyncio.wait_for(done, 20)
        result = await finish_sipp(caller, tmp)
    finally:
        phone.kill()  # not terminate: it would wait 32 s to unregister from a closed server
        await phone.communicate()
        await driver.close()
    return record, result


def test_agent_on_a_registered_sip_phone(tmp_path: Path) -> None:
    """No trunk at all: the agent's number is reached on the phone registered for it."""
    record, (rc, out) = asyncio.run(_registered(tmp_path))
    assert rc == 0, out
    sip = record.to_dict()
    assert (sip["status"], sip["disconnected_by"]) == ("ANSWER", "leg1")
    case = Case("registered", INCOMING, {}, "ANSWER", "leg1")
    assert facts(sip) == facts(run_sim(case, tmp_path))

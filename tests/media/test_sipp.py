"""SIPp as a real caller: it talks (g711a.pcap), presses 1 and # (its RFC 2833 pcaps) and 5
by SIP INFO, while a small IVR built from `legato.sip.ua` and `MediaSession` answers with
an espeak-ng welcome prompt. Checks the digits, the caller's audio and the prompt's pace."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest

from legato.media.capture import Capture
from legato.media.ports import PortRange
from legato.media.prompts import PromptLibrary, Speech
from legato.media.session import MediaSession
from legato.sip import events as ev
from legato.sip.transport import SipTransport, run
from legato.sip.ua import UAConfig
from legato.testing import free_port

pytestmark = [
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (sip-tester) not installed"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed"),
    pytest.mark.timeout(90),
]
SCENARIO = Path(__file__).parent / "scenarios" / "ivr_caller.xml"


class Ivr:
    """Answers one call with a prompt and collects its digits (RTP events and INFO)."""

    def __init__(self, media: MediaSession) -> None:
        self.media = media
        self.transport: SipTransport | None = None
        self.digits: list[str] = []
        self.heard = Capture()
        self.prompt_done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.ended = asyncio.get_running_loop().create_future()
        media.on_digit = self.digits.append
        media.endpoint.on_audio = lambda packet: self.heard.add(packet, media.endpoint.codec)

    def handle(self, event: ev.Event) -> None:
        assert self.transport is not None
        ua, now = self.transport.ua, self.transport.loop.time()
        if isinstance(event, ev.IncomingCall):
            ua.respond(event.leg, 180, now)
            answer = self.media.answer(event.request.body)
            ua.respond(event.leg, 200, now, body=answer)
        elif isinstance(event, ev.Confirmed):
            self.media.play([Speech("Welcome to Legato. Press one, then hash.")],
                            self.prompt_done.set_result)
        elif isinstance(event, ev.DialogRequest) and event.request.method == "INFO":
            handled = self.media.info(event.request.get("Content-Type"), event.request.body)
            ua.respond_request(event.request_id, 200 if handled else 415, now)
        elif isinstance(event, ev.Ended) and not self.ended.done():
            self.ended.set_result(event.by)


def test_sipp_caller_presses_digits_and_hears_the_prompt(tmp_path: Path) -> None:
    async def main() -> tuple[int, str, Ivr]:
        library = PromptLibrary(None, tmp_path / "cache")
        media = await MediaSession.open("127.0.0.1", PortRange(45000, 45999), library)
        ivr = Ivr(media)
        ivr.transport = await SipTransport.open_udp(UAConfig(("127.0.0.1", 0)), ivr.handle)
        proc = await asyncio.create_subprocess_exec(
            "sipp", "-sf", str(SCENARIO), f"127.0.0.1:{ivr.transport.local[1]}",
            "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(46000 + 2 * (free_port() % 400)),
            "-m", "1", "-nostdin", "-trace_err", "-timeout", "40", "-timeout_error",
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        await asyncio.wait_for(ivr.ended, 5)
        await asyncio.sleep(0.1)
        media.close()
        await ivr.transport.close()
        errors = "".join(p.read_text(errors="replace")[-2000:] for p in tmp_path.glob("*errors*"))
        return proc.returncode or 0, out.decode(errors="replace")[-2000:] + errors, ivr

    code, output, ivr = run(main())
    assert code == 0, output
    assert ivr.digits == ["1", "#", "5"]  # RFC 2833 (once each despite 3 end packets), INFO
    assert ivr.media.negotiated is not None and ivr.media.negotiated.codec == "PCMA"
    # the caller's speech arrived: about 7 s of audio with real energy
    heard = ivr.heard.samples().astype(float)
    assert 6.5 < len(heard) / 8000 < 8.0
    windows = heard[: len(heard) // 160 * 160].reshape(-1, 160)
    assert np.sqrt((windows**2).mean(axis=1)).max() > 1000
    # the prompt played out to the end (not cut) and went to SIPp's media port
    assert ivr.prompt_done.done() and ivr.prompt_done.result() is False
    stats = ivr.media.endpoint.stats
    assert stats.sent_packets + stats.skipped_frames >= 100  # a loaded machine may skip

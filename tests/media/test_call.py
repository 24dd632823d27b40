"""`CallMedia`, the surface the SIP driver uses: an IVR prompt with barge-in by RFC 4733,
Digits and PlayDone events for the engine, ringback while an agent rings, then anchored
two-way audio with a dual-channel recording."""

from __future__ import annotations

import asyncio
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from legato.core.events import Digits, Event, Gather, Play, PlayDone, StopPlay
from legato.media import g711, sdp
from legato.media.audio import Audio
from legato.media.call import MediaConfig, MediaServer
from legato.media.endpoint import RtpEndpoint
from legato.media.ports import PortRange
from legato.media.prompts import PromptPlayer

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed"),
]
PHONES = PortRange(47000, 47999)


def level(frames: list[bytes], codec: g711.Codec = "PCMU") -> float:
    if not frames:
        return 0.0
    samples = g711.decode(b"".join(frames), codec).astype(float)
    return float(np.sqrt((samples**2).mean()))


def dominant_hz(frames: list[bytes]) -> float:
    samples = g711.decode(b"".join(frames), "PCMU").astype(float)
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.argmax(spectrum) * 8000 / len(samples))


def test_ivr_prompt_digits_barge_in_ringback_and_recorded_bridge(tmp_path: Path) -> None:
    async def run() -> dict[str, object]:
        events: list[Event] = []
        server = MediaServer(MediaConfig(ports=PortRange(48000, 48999),
                                         cache_dir=tmp_path / "cache",
                                         record_dir=tmp_path / "rec"))
        media = server.call(events.append, "call-1")
        # the caller's phone offers; Legato answers
        caller = await RtpEndpoint.open("127.0.0.1", PHONES)
        caller_offer = sdp.offer("127.0.0.1", caller.local[1], codecs=("PCMU",))
        media.offers[0] = caller_offer.encode()
        answer = media.answer(0)
        caller.configure(sdp.accept_answer(caller_offer, sdp.parse(answer)))
        heard: list[bytes] = []
        caller.on_audio = lambda p: heard.append(p.payload)
        await asyncio.sleep(0.05)
        # Gather: the welcome prompt plays until the caller presses 1 (barge-in)
        media.play(Gather(0, play=1, gather=1, prompt=None,
                          text="Welcome to Legato. Press one for sales, two for support.",
                          seconds=4.0))
        while not heard:  # synthesising the prompt takes a moment on a busy machine
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.0)
        caller.send_digit("1")
        while not any(isinstance(e, Digits) for e in events):
            await asyncio.sleep(0.02)
        media.stop_play(StopPlay(1))  # what the engine says on a barge-in digit
        await asyncio.sleep(0.05)
        prompt_frames = len(heard)
        await asyncio.sleep(0.2)
        after_stop = len(heard) - prompt_frames
        # Play on a leg without media completes at once (the engine must not wait forever)
        media.play(Play(5, play=2, prompt=None, text="nobody hears this", seconds=1.0))
        await asyncio.sleep(0.05)
        # the agent's leg: we offer, it answers, it rings -> the caller hears ringback
        agent = await RtpEndpoint.open("127.0.0.1", PHONES)
        agent_answer, agent_side = sdp.answer(sdp.parse(media.offer(1)), "127.0.0.1",
                                              agent.local[1], codecs=("PCMA",))
        agent.configure(agent_side)
        media.progress(0)
        heard.clear()
        await asyncio.sleep(0.6)
        ringback = list(heard)
        media.answered(1, agent_answer.encode())
        recording = media.bridge(0, 1, record=True)
        heard.clear()
        agent_heard: list[bytes] = []
        agent.on_audio = lambda p: agent_heard.append(p.payload)
        tone = (np.sin(np.arange(8000) * 2 * np.pi * 700 / 8000) * 12000).astype(np.int16)
        agent.play(PromptPlayer([Audio.from_pcm(tone)]))
        caller.play(PromptPlayer([Audio.from_pcm(tone // 4)]))
        await asyncio.sleep(1.3)
        path = media.close()
        caller.close()
        agent.close()
        await asyncio.sleep(0.05)
        return {"events": events, "prompt_frames": prompt_frames, "after_stop": after_stop,
                "ringback": ringback, "bridged": list(heard), "agent_heard": agent_heard,
                "recording": recording, "path": path}

    r = asyncio.run(run())
    events = r["events"]
    assert Digits(0, "1") in events and PlayDone(1) in events and PlayDone(2) in events
    assert events.index(Digits(0, "1")) < events.index(PlayDone(1))
    assert 40 <= r["prompt_frames"] <= 90  # about 1 s of the prompt, then it stopped
    assert r["after_stop"] == 0
    ringback = r["ringback"]
    assert level(ringback) > 1000 and dominant_hz(ringback) == pytest.approx(425, abs=5)
    assert level(r["bridged"]) > 5000  # the agent's loud tone reached the caller
    assert dominant_hz(r["bridged"]) == pytest.approx(700, abs=5)
    assert 1500 < level(r["agent_heard"], "PCMA") < 4000  # the caller's quiet tone, A-law
    assert r["path"] == r["recording"] and Path(r["path"]).exists()
    with wave.open(str(r["path"])) as wav:
        assert wav.getnchannels() == 2 and wav.getframerate() == 8000
        frames = np.frombuffer(wav.readframes(wav.getnframes()), np.int16).reshape(-1, 2)
    caller_side = np.sqrt((frames[:, 0].astype(float) ** 2).mean())
    agent_side = np.sqrt((frames[:, 1].astype(float) ** 2).mean())
    assert agent_side > 2.5 * caller_side > 0


def test_reinvite_hold_mutes_and_resume_restores(tmp_path: Path) -> None:
    async def run() -> tuple[bytes, bytes, bytes, int, int, int]:
        server = MediaServer(MediaConfig(ports=PortRange(48000, 48999),
                                         cache_dir=tmp_path / "cache"))
        media = server.call(lambda event: None, "call-2")
        phone = await RtpEndpoint.open("127.0.0.1", PHONES)
        offer = sdp.offer("127.0.0.1", phone.local[1], codecs=("PCMU",))
        media.offers[0] = offer.encode()
        first = media.answer(0)
        session = media.sessions[0]
        session.ringback()
        await asyncio.sleep(0.2)
        before = phone.stats.received_packets
        held = media.reoffer(0, sdp.hold(offer).encode())
        await asyncio.sleep(0.2)
        during = phone.stats.received_packets - before
        resumed = media.reoffer(0, offer.encode())
        await asyncio.sleep(0.2)
        after = phone.stats.received_packets - before - during
        assert media.reoffer(5, offer.encode()) is None  # not a leg with media here
        media.close()
        phone.close()
        return first, held or b"", resumed or b"", before, during, after

    first, held, resumed, before, during, after = asyncio.run(run())
    a, b, c = sdp.parse(first), sdp.parse(held), sdp.parse(resumed)
    assert a.session_id == b.session_id == c.session_id
    assert (b.session_version, c.session_version) == (a.session_version + 1, a.session_version + 2)
    assert b.audio is not None and b.audio.direction == "recvonly"
    assert c.audio is not None and c.audio.direction == "sendrecv"
    assert before >= 3 and during <= 2 and after >= 3  # (loose: a shared, loaded machine)

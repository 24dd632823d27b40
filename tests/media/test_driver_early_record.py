"""Issue 8 on the SIP driver: a number whose flow dials the agent first gets early media
(183 with SDP, ringback until the agent answers), and a number with `record: true` gets
its bridged call recorded as a dual-channel WAV whose path is in the call record."""

from __future__ import annotations

import asyncio
import contextlib
import wave
from pathlib import Path

import numpy as np

from legato.core.record import CallRecord
from legato.media import rtp
from legato.media.audio import Audio
from legato.media.capture import Capture
from legato.media.ports import PortRange
from legato.media.prompts import PromptPlayer
from legato.sip.transport import run

from .net import SIPP_PCAPS, pcap_udp_payloads
from .phone import Phone, dominant_hz, rms
from .test_driver_ivr import (
    AGENT,
    AGENT_SCENARIO,
    HERE,
    NUMBER,
    finish,
    free_port,
    open_driver,
    sipp,
)
from .test_driver_ivr import pytestmark as pytestmark  # sipp and espeak-ng, timeout

DIAL_FIRST = {"record": True, "flow": [{"dial": {"to": [AGENT], "ring_timeout": 10}}]}


def read_stereo(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return frames[:, 0].astype(float), frames[:, 1].astype(float)


def envelope(x: np.ndarray) -> np.ndarray:
    return np.sqrt((x[: len(x) // 160 * 160].reshape(-1, 160) ** 2).mean(axis=1))


def best_correlation(reference: np.ndarray, got: np.ndarray, lags: int = 150) -> float:
    """Envelope correlation of `got` against `reference`, at the best delay (20 ms steps)."""
    ref, out = envelope(reference), envelope(got)
    best = -1.0
    for lag in range(-lags, lags):
        a, b = ref[max(-lag, 0):], out[max(lag, 0):]
        m = min(len(a), len(b))
        if m > 50 and a[:m].std() > 0 and b[:m].std() > 0:
            best = max(best, float(np.corrcoef(a[:m], b[:m])[0, 1]))
    return best


def pcap_speech() -> np.ndarray:
    reference = Capture()
    for _, payload in pcap_udp_payloads(SIPP_PCAPS / "g711a.pcap"):
        reference.add(rtp.parse(payload), None)
    return reference.samples().astype(float)


def test_the_caller_hears_early_ringback_then_the_agent_and_both_sides_are_recorded(
        tmp_path: Path) -> None:
    """A phone (our UA + endpoint) calls a recorded number whose flow dials first: it gets
    a 183 with SDP, hears 425 Hz ringback before the 200 while the agent (SIPp, ringing
    1.5 s) rings, then the agent's speech (g711a.pcap); it sends a 600 Hz tone. The record
    names a stereo WAV: left the caller's 600 Hz, right the agent's speech."""

    async def main() -> tuple[CallRecord, Phone, float, tuple[int, str]]:
        agent_port = free_port()
        agent = await sipp(tmp_path, HERE / "scenarios" / "agent_talks.xml", "-set", "ring_ms",
                           "1500", "-set", "talk_ms", "3000", "-p", str(agent_port))
        await asyncio.sleep(0.3)
        driver, done = await open_driver(tmp_path, agent_port, DIAL_FIRST,
                                         record_dir=tmp_path / "recordings")
        phone = await Phone.open(PortRange(51000, 51999))
        phone.call(NUMBER.lstrip("+"), driver.local)
        try:
            answered = await asyncio.wait_for(phone.answered, 10)
            tone = np.sin(np.arange(8000 * 10) * 2 * np.pi * 600 / 8000) * 8000
            phone.endpoint.play(PromptPlayer([Audio.from_pcm(tone.astype(np.int16))]))
            await asyncio.wait_for(phone.ended, 30)
            record = await asyncio.wait_for(done, 10)
        finally:
            await asyncio.sleep(0.3)
            await phone.close()
            await driver.close()
        return record, phone, answered, await finish(agent, tmp_path)

    record, phone, answered, (agent_code, agent_out) = run(main())
    assert agent_code == 0, agent_out
    data = record.to_dict()
    assert data["status"] == "ANSWER" and data["picked_by"] == AGENT, data

    # 183 with SDP before the 200, the same SDP in both (RFC 3261 §13.2.1)
    assert [status for _, status, _ in phone.early] == [183]
    early_at, _, early_sdp = phone.early[0]
    assert early_at < answered and early_sdp == phone.answer_sdp
    # ringback heard before the 200: the first ~1 s of the cadence is a 425 Hz tone
    ringing = phone.window(early_at, answered)
    assert len(ringing) > 8000 * 0.8
    assert rms(ringing[:6000]) > 500 and abs(dominant_hz(ringing[:6000]) - 425) < 5
    # then the agent (the pcap's speech) through the relay
    talk = phone.window(answered + 0.3, answered + 3.0)
    assert rms(talk) > 500 and abs(dominant_hz(talk) - 425) > 20

    # the recording: path in the record, caller left, agent right
    path = Path(data["recording"])
    assert path.parent == (tmp_path / "recordings").resolve() and path.name == f"{data['id']}.wav"
    left, right = read_stereo(path)
    assert len(left) / 8000 > 2.0
    loud = np.flatnonzero(np.abs(left) > 1000)
    assert len(loud) > 8000  # over a second of the caller's tone
    assert abs(dominant_hz(left[loud[0]:loud[0] + 8000]) - 600) < 5
    assert best_correlation(pcap_speech(), right) > 0.9  # the agent's speech, not the tone
    assert abs(dominant_hz(right[:16000]) - 600) > 20


def test_a_sipp_caller_gets_183_with_sdp_and_the_recording_keeps_the_sides_apart(
        tmp_path: Path) -> None:
    """SIPp both sides: the caller requires a 183 answering its PCMA offer before the 200,
    then plays g711a.pcap; the agent (uas_ring_answer_bye) sends no audio. Left channel =
    the caller's speech, right channel silent."""

    async def main() -> tuple[CallRecord, list[tuple[int, str]], dict[str, int]]:
        agent_port = free_port()
        agent = await sipp(tmp_path, AGENT_SCENARIO, "-set", "ring_ms", "1000",
                           "-set", "talk_ms", "20000", "-p", str(agent_port))
        await asyncio.sleep(0.3)
        driver, done = await open_driver(tmp_path, agent_port, DIAL_FIRST,
                                         record_dir=tmp_path / "recordings")
        host, port = driver.local
        caller = await sipp(tmp_path, HERE / "scenarios" / "early_caller.xml",
                            "-s", NUMBER.lstrip("+"), "-set", "listen_ms", "4000",
                            f"{host}:{port}")
        try:
            record = await asyncio.wait_for(done, 40)
        finally:
            await asyncio.sleep(0.3)
            await driver.close()
        results = [await finish(caller, tmp_path)]
        with contextlib.suppress(ProcessLookupError):  # it may have ended on our BYE
            agent.kill()
        await agent.wait()
        assert driver.media is not None
        return record, results, dict(driver.media.stats)

    record, results, stats = run(main())
    assert results[0][0] == 0, results[0][1]
    data = record.to_dict()
    assert data["status"] == "ANSWER" and data["disconnected_by"] == "leg1", data
    assert stats["early_media"] == 1 and stats["ringbacks"] == 1 and stats["recordings"] == 1
    left, right = read_stereo(Path(data["recording"]))
    assert best_correlation(pcap_speech(), left) > 0.9
    assert rms(right) < 50 < rms(left) / 10

"""baresip, a real SIP phone, as the agent behind the IVR: our test phone calls the menu,
presses 1, and once Legato anchors the media each side hears the other's tone (600 Hz from
the caller, 1 kHz from baresip's audio file) — two-way audio through the relay."""

from __future__ import annotations

import asyncio
import shutil
import socket
import wave
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from legato.core.record import CallRecord
from legato.media.audio import Audio
from legato.media.ports import PortRange
from legato.media.prompts import PromptPlayer
from legato.sip.transport import run

from .phone import Phone, dominant_hz, rms
from .test_driver_ivr import AGENT, NUMBER, free_port, open_driver

pytestmark = [
    pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip not installed"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed"),
    pytest.mark.timeout(90),
]


def tone(hz: float, seconds: float, amplitude: float = 10000) -> np.ndarray:
    return (np.sin(2 * np.pi * hz * np.arange(int(8000 * seconds)) / 8000) * amplitude
            ).astype(np.int16)


def sip_port_pair() -> int:
    """A port free for UDP and TCP whose next port is free for TCP (baresip's SIP/TLS)."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tls:
                tcp.bind(("127.0.0.1", port))
                tls.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for baresip")


def baresip_home(home: Path, port: int) -> None:
    """Auto-answering agent on 127.0.0.1; plays a 1 kHz tone; its sndfile module dumps
    what it hears (decoded) to `*-dec.wav` in `home`."""
    home.mkdir()
    wavfile.write(home / "tone.wav", 8000, tone(1000, 20))
    rtp = free_port() // 2 * 2
    (home / "config").write_text(
        f"poll_method epoll\nsip_listen 127.0.0.1:{port}\n"
        f"audio_player aufile,{home / 'heard.wav'}\naudio_source aufile,{home / 'tone.wav'}\n"
        f"audio_alert aufile,{home / 'alert.wav'}\nmodule_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule account.so\nmodule menu.so\n"
        f"module sndfile.so\nsnd_path {home}\nrtp_ports {rtp}-{rtp + 20}\n")
    (home / "accounts").write_text(f"<sip:{AGENT}@127.0.0.1>;regint=0;answermode=auto\n")


async def start_baresip(home: Path) -> asyncio.subprocess.Process:
    phone = await asyncio.create_subprocess_exec(
        "baresip", "-f", str(home), "-t", "60", stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert phone.stdout is not None
    ready = b""
    while b"baresip is ready" not in ready:
        line = await asyncio.wait_for(phone.stdout.readline(), 15)
        assert line, "baresip exited before it was ready"
        ready += line
    return phone


def test_two_way_audio_with_baresip_as_the_agent(tmp_path: Path) -> None:
    async def main() -> tuple[CallRecord, Phone, float, Path]:
        home = tmp_path / "baresip"
        agent_port = sip_port_pair()
        baresip_home(home, agent_port)
        agent = await start_baresip(home)
        driver, done = await open_driver(tmp_path, agent_port)
        assert driver.media is not None
        phone = await Phone.open(PortRange(51000, 51999))
        try:
            phone.call(NUMBER.lstrip("+"), driver.local)
            await asyncio.wait_for(phone.answered, 10)
            await asyncio.sleep(1.0)
            phone.endpoint.send_digit("1")
            for _ in range(200):  # until the agent answered and media is relayed
                if driver.media.stats["bridges"]:
                    break
                await asyncio.sleep(0.05)
            bridged = phone.loop.time()
            phone.endpoint.play(PromptPlayer([Audio.from_pcm(tone(600, 10, 8000))]))
            await asyncio.sleep(2.5)
            phone.hang_up()
            record = await asyncio.wait_for(done, 10)
            await asyncio.sleep(0.5)
        finally:
            await phone.close()
            await driver.close()
            agent.terminate()
            await agent.communicate()
        dumps = sorted(home.glob("*dec.wav"))
        assert dumps, f"baresip wrote no audio dump: {sorted(p.name for p in home.iterdir())}"
        return record, phone, bridged, dumps[-1]

    record, phone, bridged, heard_path = run(main())
    data = record.to_dict()
    assert (data["status"], data["picked_by"], data["disconnected_by"]) == (
        "ANSWER", AGENT, "leg1"), data
    # the caller hears baresip's 1 kHz tone once bridged
    caller_heard = phone.window(bridged + 0.5, bridged + 2.3)
    assert rms(caller_heard) > 1500 and dominant_hz(caller_heard) == pytest.approx(1000, abs=5)
    # baresip heard the caller's 600 Hz tone
    with wave.open(str(heard_path)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
        if wav.getnchannels() > 1:
            samples = samples.reshape(-1, wav.getnchannels())[:, 0]
    loud = samples.astype(float)
    windows = loud[: len(loud) // (rate // 10) * (rate // 10)].reshape(-1, rate // 10)
    voiced = windows[np.sqrt((windows**2).mean(axis=1)) > 1000]
    assert len(voiced) >= 10, f"baresip heard {len(voiced) / 10:.1f} s of audio"
    assert dominant_hz(voiced.reshape(-1), rate) == pytest.approx(600, abs=5)

"""RTP endpoints on loopback: SIPp's RFC 2833 and G.711 pcaps replayed at an endpoint,
espeak-ng prompts heard by a receiving endpoint, pacing, latching, RTCP, relay, recording."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import statistics
import wave

import numpy as np
import pytest

from legato.media import g711, rtp, sdp
from legato.media.audio import Audio
from legato.media.capture import Capture
from legato.media.endpoint import RtpEndpoint
from legato.media.ports import PortRange, PortRangeExhausted
from legato.media.prompts import PromptLibrary, PromptPlayer, Speech
from legato.media.relay import Relay
from legato.media.tones import Ringback, ToneSpec

from .net import SIPP_PCAPS, UdpPeer, pcap_udp_payloads

pytestmark = pytest.mark.timeout(60)
PORTS = PortRange(41000, 42999)
needs_sipp_pcaps = pytest.mark.skipif(
    not (SIPP_PCAPS / "g711a.pcap").exists(), reason="sip-tester (SIPp) pcaps not installed")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


def agreed(codec="PCMU", pt=0, event_pt: int | None = 101, to=("127.0.0.1", 9)):
    return sdp.Negotiated(codec, pt, event_pt, "sendrecv", to[0], to[1])


async def pair(codec="PCMU", pt=0) -> tuple[RtpEndpoint, RtpEndpoint]:
    """Two endpoints that negotiated with each other through real SDP."""
    a = await RtpEndpoint.open("127.0.0.1", PORTS)
    b = await RtpEndpoint.open("127.0.0.1", PORTS)
    offer = sdp.offer("127.0.0.1", a.local[1], codecs=(codec,))
    answer, b_side = sdp.answer(sdp.parse(offer.encode()), "127.0.0.1", b.local[1])
    b.configure(b_side)
    a.configure(sdp.accept_answer(offer, sdp.parse(answer.encode())))
    return a, b


def envelope(samples: np.ndarray, window: int = 160) -> np.ndarray:
    """RMS per 20 ms window."""
    usable = len(samples) // window * window
    frames = samples[:usable].astype(float).reshape(-1, window)
    return np.sqrt((frames**2).mean(axis=1))


@needs_sipp_pcaps
@pytest.mark.parametrize("name", ["0", "1", "5", "9", "star", "pound"])
def test_rfc2833_digits_from_sipp_pcaps(name):
    """SIPp's DTMF pcaps (each with three retransmitted end packets) give the digit once."""
    async def run():
        endpoint = await RtpEndpoint.open("127.0.0.1", PORTS)
        endpoint.configure(agreed(event_pt=101))
        digits: list[str] = []
        endpoint.on_digit = digits.append
        peer = await UdpPeer.open()
        packets = pcap_udp_payloads(SIPP_PCAPS / f"dtmf_2833_{name}.pcap")
        await peer.replay(packets + packets, endpoint.local, speed=4)  # the key, retransmitted
        await asyncio.sleep(0.1)
        peer.close()
        endpoint.close()
        return digits

    expected = {"star": "*", "pound": "#"}.get(name, name)
    assert asyncio.run(run()) == [expected]


@needs_sipp_pcaps
def test_digit_sequence_from_several_pcaps_in_order():
    async def run():
        endpoint = await RtpEndpoint.open("127.0.0.1", PORTS)
        endpoint.configure(agreed(event_pt=101))
        digits: list[str] = []
        endpoint.on_digit = digits.append
        peer = await UdpPeer.open()
        for index, name in enumerate(["1", "2", "pound"]):
            packets = pcap_udp_payloads(SIPP_PCAPS / f"dtmf_2833_{name}.pcap")
            shifted = [(t, _retime(p, index * 8000)) for t, p in packets]
            await peer.replay(shifted, endpoint.local, speed=4)
        await asyncio.sleep(0.1)
        endpoint.close()
        peer.close()
        return digits

    assert asyncio.run(run()) == ["1", "2", "#"]


def _retime(packet: bytes, shift: int) -> bytes:
    """Give a replayed key press its own RTP timestamp, as a second press would have."""
    parsed = rtp.parse(packet)
    return rtp.build(parsed.pt, parsed.seq, parsed.timestamp + shift, parsed.ssrc,
                     parsed.payload, parsed.marker)


@needs_sipp_pcaps
def test_g711a_pcap_audio_received_with_its_duration_and_energy():
    packets = pcap_udp_payloads(SIPP_PCAPS / "g711a.pcap")
    expected = Capture()
    for _, payload in packets:
        expected.add(rtp.parse(payload), None)
    reference = expected.samples()

    async def run():
        endpoint = await RtpEndpoint.open("127.0.0.1", PORTS)
        endpoint.configure(agreed("PCMA", 8))
        capture = Capture()
        endpoint.on_audio = lambda packet: capture.add(packet, endpoint.codec)
        peer = await UdpPeer.open()
        # shuffle neighbours to simulate jitter: the capture places audio by timestamp
        jittered = list(packets)
        for i in range(0, len(jittered) - 1, 7):
            jittered[i], jittered[i + 1] = (jittered[i][0], jittered[i + 1][1]), (
                jittered[i + 1][0], jittered[i][1])
        await peer.replay(jittered, endpoint.local, speed=8)
        await asyncio.sleep(0.1)
        peer.close()
        endpoint.close()
        return capture.samples(), endpoint.stats

    heard, stats = asyncio.run(run())
    assert stats.received_packets == len(packets) and stats.bad_packets == 0
    assert len(heard) == len(reference) and len(heard) / 8000 > 4.0
    assert np.array_equal(heard, reference)
    assert envelope(heard).max() > 1000  # real speech, not silence


@needs_espeak
def test_espeak_prompt_arrives_paced_with_the_right_duration(tmp_path):
    async def run():
        library = PromptLibrary(None, tmp_path / "cache")
        (audio,) = await library.load([Speech("Welcome to Legato. Press one for sales.")])
        a, b = await pair("PCMA", 8)
        capture = Capture()
        arrivals: list[tuple[float, rtp.RtpPacket]] = []

        def heard(packet: rtp.RtpPacket) -> None:
            arrivals.append((b.loop.time(), packet))
            capture.add(packet, b.codec)

        b.on_audio = heard
        done = asyncio.get_running_loop().create_future()
        started = a.loop.time()
        a.play(PromptPlayer([audio]), done.set_result)
        stopped = await done
        elapsed = a.loop.time() - started
        await asyncio.sleep(0.05)
        a.close()
        b.close()
        return audio, arrivals, stopped, elapsed, a.stats.skipped_frames

    audio, arrivals, stopped, elapsed, skipped = asyncio.run(run())
    assert stopped is False
    frames = -(-len(audio.pcma) // 160)
    assert len(arrivals) == frames
    # real time, not a burst (frames skipped after a stall of the shared machine push it out)
    assert elapsed == pytest.approx(audio.seconds + skipped * 0.02, abs=0.06)
    packets = [p for _, p in arrivals]
    assert [p.seq for p in packets] == [(packets[0].seq + i) & 0xFFFF for i in range(frames)]
    steps = [(q.timestamp - p.timestamp) & 0xFFFFFFFF for p, q in itertools.pairwise(packets)]
    assert all(step >= 160 and step % 160 == 0 for step in steps)
    assert sum(steps) == 160 * (frames - 1 + skipped)  # a stall shows as a timestamp gap
    assert packets[0].marker and not any(p.marker for p in packets[1:])
    assert len({p.ssrc for p in packets}) == 1
    # pacing: each packet arrives when its timestamp says, without drift
    first, ts0 = arrivals[0][0], packets[0].timestamp
    errors = [abs(t - first - ((p.timestamp - ts0) & 0xFFFFFFFF) / 8000) for t, p in arrivals]
    assert statistics.median(errors) < 0.005 and max(errors[-10:]) < 0.03
    # what was heard is the prompt: same length, and it correlates with it
    sent = audio.pcm().astype(float)
    heard = g711.decode(b"".join(p.payload for p in packets), "PCMA")
    got = heard[: len(sent)].astype(float)
    assert abs(len(heard) - len(sent)) < 160
    correlation = np.corrcoef(envelope(sent), envelope(got))[0, 1]
    assert correlation > 0.99


@needs_espeak
def test_prompt_cache_synthesises_once_and_survives_restart(tmp_path):
    async def run():
        first = PromptLibrary(None, tmp_path)
        one, two = await first.load([Speech("hello"), Speech("hello")])
        files = sorted(p.name for p in tmp_path.iterdir())
        second = PromptLibrary(None, tmp_path, espeak="espeak-ng")
        again = await second.load_one(Speech("hello"))
        other = await second.load_one(Speech("hello", voice="en-gb"))
        return one, two, files, again, other, sorted(p.name for p in tmp_path.iterdir())

    one, two, files, again, other, after = asyncio.run(run())
    assert one is two and again == one and other != one
    assert len(files) == 2 and all(f.startswith("tts-") for f in files)  # .ulaw and .alaw
    assert len(after) == 4


def test_wav_of_any_format_becomes_8khz_g711_and_is_cached(tmp_path):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    rate, seconds = 44100, 0.5
    t = np.arange(int(rate * seconds)) / rate
    tone = (np.sin(2 * np.pi * 1000 * t) * 0.5 * 2**31).astype(np.int32)
    from scipy.io import wavfile
    wavfile.write(prompts / "stereo.wav", rate, np.stack([tone, tone], axis=1))
    wavfile.write(prompts / "mono8.wav", 11025,
                  (np.sin(2 * np.pi * 500 * np.arange(11025) / 11025) * 100 + 128).astype(np.uint8))
    (prompts / "broken.wav").write_bytes(b"RIFF....not a wav")

    async def run():
        library = PromptLibrary(prompts, tmp_path / "cache")
        stereo, mono = await library.load([
            __import__("legato.media.prompts", fromlist=["PromptFile"]).PromptFile("stereo.wav"),
            __import__("legato.media.prompts", fromlist=["PromptFile"]).PromptFile("mono8.wav"),
        ])
        return library, stereo, mono

    from legato.media.audio import AudioError
    from legato.media.prompts import PromptFile
    library, stereo, mono = asyncio.run(run())
    assert stereo.seconds == pytest.approx(0.5, abs=0.001)
    assert mono.seconds == pytest.approx(1.0, abs=0.001)
    pcm = stereo.pcm().astype(float)
    spectrum = np.abs(np.fft.rfft(pcm))
    assert np.argmax(spectrum) * 8000 / len(pcm) == pytest.approx(1000, abs=4)
    assert np.sqrt((pcm**2).mean()) == pytest.approx(0.5 * 32767 / np.sqrt(2), rel=0.05)
    assert len(list((tmp_path / "cache").iterdir())) == 4
    assert library.path("stereo") == library.path("stereo.wav")  # `prompt: welcome` form
    for name, message in [("broken.wav", "not a PCM"), ("../x.wav", "inside the prompts"),
                          ("none.wav", "no such file")]:
        with pytest.raises(AudioError, match=message):
            asyncio.run(library.load_one(PromptFile(name)))


def test_barge_in_stops_the_prompt_within_a_frame():
    async def run():
        a, b = await pair()
        silence = Audio(b"\x7f" * 8000, b"\x55" * 8000)  # 1 s
        done = asyncio.get_running_loop().create_future()
        a.play(PromptPlayer([silence]), done.set_result)
        await asyncio.sleep(0.2)
        a.stop()
        stopped = await done
        sent = a.stats.sent_packets
        await asyncio.sleep(0.1)
        count = b.stats.received_packets
        a.close()
        b.close()
        return stopped, sent, a.stats.sent_packets, count

    stopped, sent, after, count = asyncio.run(run())
    assert stopped is True and 4 <= sent <= 16 and after == sent and count == sent


def test_symmetric_rtp_answers_where_the_caller_really_is():
    """The SDP says one port (a NAT hides the real one): we send where packets come from."""
    async def run():
        endpoint = await RtpEndpoint.open("127.0.0.1", PORTS)
        behind_nat = await UdpPeer.open()
        endpoint.configure(agreed(to=("127.0.0.1", 9)))  # what the phone's SDP claimed
        behind_nat.transport.sendto(rtp.build(0, 1, 160, 7, b"\xff" * 160), endpoint.local)
        await asyncio.sleep(0.05)
        endpoint.play(Ringback(ToneSpec((425.0,), ((0.1, 0.0),))))
        await asyncio.sleep(0.2)
        endpoint.close()
        behind_nat.close()
        return behind_nat.received, endpoint.remote

    received, remote = asyncio.run(run())
    assert len(received) >= 5
    assert all(addr[1] == remote[1] for _, _, addr in received) or remote is not None


def test_rtcp_sender_report_follows_media(monkeypatch):
    import legato.media.endpoint as module
    monkeypatch.setattr(module, "RTCP_INTERVAL", 0.1)

    async def run():
        endpoint = await RtpEndpoint.open("127.0.0.1", PORTS)
        rtcp_peer = await UdpPeer.open()
        endpoint.configure(agreed())
        endpoint.remote_rtcp = rtcp_peer.address
        endpoint.play(Ringback())
        await asyncio.sleep(0.35)
        sent = endpoint.stats.sent_packets
        endpoint.close()
        rtcp_peer.close()
        return rtcp_peer.received, endpoint.ssrc, sent

    received, ssrc, sent = asyncio.run(run())
    reports = [rtp.parse_sender_report(data) for _, data, _ in received]
    assert len(reports) >= 2 and all(r is not None and r.ssrc == ssrc for r in reports)
    assert 0 < reports[-1].packets <= sent


def test_ringback_cadence_is_on_then_off():
    async def run():
        a, b = await pair()
        frames: list[bytes] = []  # in arrival order: a loop stall must not shift the check
        b.on_audio = lambda p: frames.append(p.payload)
        a.play(Ringback(ToneSpec.parse("440+480/0.2,0.2")))
        while len(frames) < 45:
            await asyncio.sleep(0.05)
        a.close()
        b.close()
        return g711.decode(b"".join(frames), "PCMU")

    heard = asyncio.run(run())
    level = envelope(heard) > 500
    assert level[:10].all() and not level[10:20].any() and level[20:30].all()
    assert not level[30:40].any()
    spectrum = np.abs(np.fft.rfft(heard[:1600].astype(float)))
    peaks = sorted(np.argsort(spectrum)[-2:] * 8000 / 1600)
    assert peaks == pytest.approx([440, 480], abs=6)


def test_relay_rewrites_streams_transcodes_and_records_both_sides(tmp_path):
    """caller <-> [leg A | relay | leg B] <-> agent, with different laws on each side."""
    async def run():
        caller, leg_a = await pair("PCMU", 0)
        leg_b, agent = await pair("PCMA", 8)
        to_agent, to_caller = Capture(), Capture()
        agent_packets: list[rtp.RtpPacket] = []
        agent.on_packet = agent_packets.append
        agent.on_audio = lambda p: to_agent.add(p, agent.codec)
        caller.on_audio = lambda p: to_caller.add(p, caller.codec)
        digits: list[str] = []
        agent.on_digit = digits.append
        leg_a.play(Ringback())  # the caller hears ringback until the agent answers
        await asyncio.sleep(0.1)
        relay = Relay(leg_a, leg_b, record_to=tmp_path / "call.wav")
        assert not leg_a.playing
        tone = (np.sin(np.arange(8000) * 2 * np.pi * 600 / 8000) * 9000).astype(np.int16)
        caller.play(PromptPlayer([Audio.from_pcm(tone)]))
        agent.play(PromptPlayer([Audio.from_pcm(tone[:4000] // 3)]))
        await asyncio.sleep(0.3)
        caller.send_digit("4")
        await asyncio.sleep(0.9)
        path = relay.stop()
        for endpoint in (caller, leg_a, leg_b, agent):
            endpoint.close()
        return agent_packets, to_agent.samples(), to_caller.samples(), tone, digits, path, leg_b

    packets, agent_heard, caller_heard, tone, digits, path, leg_b = asyncio.run(run())
    assert {p.ssrc for p in packets} == {leg_b.ssrc}
    seqs = [p.seq for p in packets]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(len(seqs))]
    assert {p.pt for p in packets} == {8, 101}  # A-law and the agent's event type
    assert digits == ["4"]
    assert np.corrcoef(envelope(agent_heard[:8000]), envelope(tone.astype(float)))[0, 1] > 0.9 \
        or envelope(agent_heard).max() > 5000
    assert envelope(caller_heard).max() > 1500
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)
    left, right = envelope(frames[:, 0]), envelope(frames[:, 1])
    assert left.max() > 5000 and 1500 < right.max() < 4000  # caller loud, agent at a third
    assert abs(np.argmax(left > 1000) - np.argmax(right > 1000)) <= 3  # both start together


def test_port_range_exhaustion_is_a_clear_error():
    async def run():
        small = PortRange(43000, 43003)
        endpoints = [await RtpEndpoint.open("127.0.0.1", small) for _ in range(2)]
        try:
            with pytest.raises(PortRangeExhausted, match="43000-43003"):
                await RtpEndpoint.open("127.0.0.1", small)
        finally:
            for endpoint in endpoints:
                endpoint.close()
        await asyncio.sleep(0)  # transports release their sockets on the next loop turn
        again = await RtpEndpoint.open("127.0.0.1", small)  # closed pairs are reusable
        again.close()
        return [e.local[1] for e in endpoints]

    assert sorted(asyncio.run(run())) == [43000, 43002]
    with pytest.raises(ValueError, match="FIRST-LAST"):
        PortRange.parse("10000")


def test_a_loop_stall_catches_up_three_frames_then_skips_without_drift():
    """A 250 ms stall of the loop: up to 3 late frames go back to back, the rest are skipped
    as a timestamp gap, and the stream stays on its original 20 ms grid afterwards."""
    import time

    async def run():
        a, b = await pair()
        arrivals: list[tuple[float, rtp.RtpPacket]] = []
        b.on_audio = lambda p: arrivals.append((b.loop.time(), p))
        a.stats.lateness = []
        done = asyncio.get_running_loop().create_future()
        a.play(PromptPlayer([Audio(b"\x7f" * 8000, b"\x55" * 8000)]), done.set_result)
        a.loop.call_later(0.3, time.sleep, 0.25)  # block the whole loop
        await done
        await asyncio.sleep(0.05)
        a.close()
        b.close()
        return arrivals, a.stats

    arrivals, stats = asyncio.run(run())
    assert len(arrivals) == 50  # no audio lost: 1 s of prompt in 50 frames
    # 250 ms = 12.5 frames late, 3 sent at once: at least 9 skipped (one of margin for the
    # instant the stall starts within a frame)
    assert stats.skipped_frames >= 8
    packets = [p for _, p in arrivals]
    steps = [(q.timestamp - p.timestamp) & 0xFFFFFFFF for p, q in itertools.pairwise(packets)]
    assert sum(steps) == 160 * (49 + stats.skipped_frames)
    assert min(steps) == 160 and max(steps) >= 160 * 6
    # after the stall, sends are back on the grid (lateness small again, never accumulated)
    assert statistics.median(stats.lateness[-10:]) < 0.005

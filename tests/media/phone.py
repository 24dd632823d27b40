"""A SIP phone for tests, built from our own parts: a `legato.sip.ua` user agent and an
RTP endpoint that records what it hears (with arrival times) and can play and press keys."""

from __future__ import annotations

import asyncio

import numpy as np

from legato.media import g711, sdp
from legato.media.endpoint import RtpEndpoint
from legato.media.ports import PortRange
from legato.sip import events as ev
from legato.sip.transport import SipTransport
from legato.sip.ua import UAConfig


class Phone:
    def __init__(self, endpoint: RtpEndpoint) -> None:
        self.endpoint = endpoint
        self.loop = endpoint.loop
        self.offer = sdp.offer("127.0.0.1", endpoint.local[1], codecs=("PCMU",))
        self.heard: list[tuple[float, bytes]] = []
        self.answered: asyncio.Future[float] = self.loop.create_future()
        self.early: list[tuple[float, int, bytes]] = []  # (time, status, SDP) of 18x with SDP
        self.answer_sdp = b""
        self.ended: asyncio.Future[None] = self.loop.create_future()
        self.transport: SipTransport | None = None
        self.leg: int | None = None
        endpoint.on_audio = lambda packet: self.heard.append((self.loop.time(), packet.payload))

    @classmethod
    async def open(cls, ports: PortRange) -> Phone:
        phone = cls(await RtpEndpoint.open("127.0.0.1", ports))
        phone.transport = await SipTransport.open_udp(UAConfig(("127.0.0.1", 0)), phone._on_sip)
        return phone

    def _on_sip(self, event: ev.Event) -> None:
        if isinstance(event, ev.Progress) and event.response.body:  # early media
            body = event.response.body
            self.early.append((self.loop.time(), event.response.status, body))
            self.endpoint.configure(sdp.accept_answer(self.offer, sdp.parse(body)))
        elif isinstance(event, ev.Answered) and not self.answered.done():
            self.answer_sdp = event.response.body
            self.endpoint.configure(sdp.accept_answer(self.offer, sdp.parse(event.response.body)))
            self.answered.set_result(self.loop.time())
        elif isinstance(event, ev.Ended | ev.Failed) and not self.ended.done():
            self.ended.set_result(None)

    def call(self, user: str, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.leg = self.transport.ua.invite(
            f"<sip:{user}@{to[0]}:{to[1]}>", from_="<sip:919811000001@127.0.0.1>",
            now=self.loop.time(), destination=to, body=self.offer.encode())
        self.transport.flush()

    def hang_up(self) -> None:
        assert self.transport is not None and self.leg is not None
        self.transport.ua.bye(self.leg, self.loop.time())
        self.transport.flush()

    def window(self, start: float, end: float) -> np.ndarray:
        """What it heard between two loop times, decoded."""
        frames = [p for t, p in self.heard if start <= t < end]
        return g711.decode(b"".join(frames), "PCMU").astype(float)

    async def close(self) -> None:
        self.endpoint.close()
        if self.transport is not None:
            await self.transport.close()


def rms(x: np.ndarray) -> float:
    return float(np.sqrt((x**2).mean())) if len(x) else 0.0


def dominant_hz(x: np.ndarray, rate: int = 8000) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(x))) * rate / len(x)) if len(x) else 0.0

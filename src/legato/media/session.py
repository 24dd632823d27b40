"""One SIP leg's media, the single object the SIP driver holds per leg.

It ties the SDP offer/answer to an RTP endpoint and gives the driver the verbs of the
engine's commands: `play` (Play/Gather prompts, reporting when done), `stop` (StopPlay,
barge-in), `ringback` (early media), `bridge` (anchored media, optional recording), and
`on_digit` fed by both RFC 4733 and SIP INFO. Prompt loading is asynchronous; a stop that
arrives while a prompt is still being synthesised cancels it before it starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from legato.media import sdp
from legato.media.dtmf import DtmfError, parse_dtmf_relay
from legato.media.endpoint import RtpEndpoint
from legato.media.g711 import Codec
from legato.media.ports import PortRange
from legato.media.prompts import PromptItem, PromptLibrary, PromptPlayer
from legato.media.relay import Relay
from legato.media.tones import Ringback, ToneSpec

log = logging.getLogger(__name__)
DTMF_INFO_TYPES = ("application/dtmf-relay", "application/dtmf")


class MediaSession:
    """SDP + RTP endpoint + prompts + DTMF for one leg."""

    def __init__(self, endpoint: RtpEndpoint, library: PromptLibrary | None,
                 address: str, codecs: tuple[Codec, ...] = ("PCMU", "PCMA")) -> None:
        self.endpoint = endpoint
        self.library = library
        self.address = address  # what goes in our SDP c= line (the public address)
        self.codecs = codecs
        self.local_sdp: sdp.SessionDescription | None = None
        self.negotiated: sdp.Negotiated | None = None
        self.on_digit: Callable[[str], None] | None = None
        self.relay: Relay | None = None
        self._loading: asyncio.Task[None] | None = None
        self._pending_done: Callable[[bool], None] | None = None
        endpoint.on_digit = self._digit

    @classmethod
    async def open(cls, bind: str, ports: PortRange, library: PromptLibrary | None,
                   address: str | None = None, symmetric: bool = True) -> MediaSession:
        endpoint = await RtpEndpoint.open(bind, ports, symmetric)
        return cls(endpoint, library, address or bind)

    # ------------------------------------------------------------------ offer/answer
    def answer(self, offer: bytes) -> bytes:
        """Our SDP answer to a caller's offer; raises `sdp.SdpError` (answer 488) if unusable."""
        ours, agreed = sdp.answer(sdp.parse(offer), self.address, self.endpoint.local[1],
                                  self.codecs)
        self.local_sdp, self.negotiated = ours, agreed
        self.endpoint.configure(agreed)
        return ours.encode()

    def reanswer(self, offer: bytes) -> bytes:
        """Answer a re-INVITE's offer (hold, resume, a new address): same session, next
        version (RFC 3264 §8); a hold (sendonly/inactive) stops what we send."""
        previous = self.local_sdp
        if previous is None:
            return self.answer(offer)
        ours, agreed = sdp.answer(
            sdp.parse(offer), self.address, self.endpoint.local[1], self.codecs,
            session_id=previous.session_id, version=previous.session_version + 1)
        self.local_sdp, self.negotiated = ours, agreed
        self.endpoint.configure(agreed)
        return ours.encode()

    def offer(self) -> bytes:
        """Our SDP offer for a leg we dial."""
        self.local_sdp = sdp.offer(self.address, self.endpoint.local[1], self.codecs)
        return self.local_sdp.encode()

    def accept(self, answer: bytes) -> None:
        """The dialled leg's SDP answer to our offer."""
        if self.local_sdp is None:
            raise sdp.SdpError(None, "an answer arrived but we made no offer")
        self.negotiated = sdp.accept_answer(self.local_sdp, sdp.parse(answer))
        self.endpoint.configure(self.negotiated)

    # ------------------------------------------------------------------------ audio
    def play(self, items: Sequence[PromptItem], on_done: Callable[[bool], None]) -> None:
        """Load (cached) and play prompts; `on_done(stopped)` runs exactly once.

        A prompt that cannot be loaded (missing file, espeak-ng failure) is logged and
        reported done, so the flow moves on rather than hanging the call.
        """
        self.stop()
        if self.library is None:
            raise RuntimeError("no prompt library configured for this media session")
        library = self.library
        self._pending_done = on_done

        async def load_and_play() -> None:
            try:
                audio = await library.load(items)
            except (OSError, ValueError) as exc:
                log.warning("prompt not played: %s", exc)
                self._report(stopped=False)
                return
            done, self._pending_done = self._pending_done, None
            if done is not None:
                self.endpoint.play(PromptPlayer(audio), done)

        self._loading = asyncio.get_running_loop().create_task(load_and_play())

    def ringback(self, spec: ToneSpec | None = None) -> None:
        """Play ringback until stopped (early media after a 183)."""
        self.stop()
        self.endpoint.play(Ringback(spec))

    def stop(self) -> None:
        """Stop what is playing or about to play (barge-in, StopPlay, bridging)."""
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        self._loading = None
        self._report(stopped=True)
        self.endpoint.stop()

    def _report(self, stopped: bool) -> None:
        done, self._pending_done = self._pending_done, None
        if done is not None:
            done(stopped)

    # ------------------------------------------------------------------------- DTMF
    def _digit(self, digit: str) -> None:
        if self.on_digit is not None:
            self.on_digit(digit)

    def info(self, content_type: str | None, body: bytes) -> bool:
        """Feed a SIP INFO; True when it carried a DTMF digit (answer 200), else False."""
        kind = (content_type or "").split(";")[0].strip().lower()
        if kind not in DTMF_INFO_TYPES:
            return False
        try:
            digit = parse_dtmf_relay(body)
        except DtmfError as exc:
            log.info("INFO without a usable digit: %s", exc)
            return False
        self._digit(digit)
        return True

    # ---------------------------------------------------------------------- bridging
    def bridge(self, other: MediaSession, record_to: str | Path | None = None) -> Relay:
        """Anchor media between this leg and `other` (stops prompts and ringback)."""
        self.stop()
        other.stop()
        self.relay = other.relay = Relay(self.endpoint, other.endpoint, record_to)
        return self.relay

    def close(self) -> Path | None:
        """End the leg's media; returns the recording's path if this leg was recorded."""
        self.stop()
        path = None
        if self.relay is not None:
            path = self.relay.stop()
            self.relay = None
        self.endpoint.close()
        return path

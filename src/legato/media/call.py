"""The media of one engine call, keyed by engine leg: what the SIP driver calls.

The driver keeps its SIP logic; at each point where a call needs media it makes one call
here (`answer`, `offer`, `answered`, `progress`, `play`, `stop_play`, `info`, `bridge`,
`drop`, `close`) and gets the engine events back through `feed` (`PlayDone`, `Digits`).
Events are always delivered on a later loop turn, never from inside the driver's command
loop, so the engine is never re-entered.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from legato.core.events import Digits, Event, Gather, Play, PlayDone, StopPlay
from legato.media.endpoint import RtpEndpoint
from legato.media.g711 import Codec
from legato.media.ports import PortRange
from legato.media.prompts import DEFAULT_VOICE, PromptLibrary, prompt_items
from legato.media.session import MediaSession
from legato.media.tones import ToneSpec

log = logging.getLogger(__name__)


@dataclass(slots=True)
class MediaConfig:
    """Where media lives: bind address and the address put in SDP, ports, prompts, tones."""

    bind: str = "127.0.0.1"
    address: str | None = None  # public address for SDP c= (default: bind)
    ports: PortRange = field(default_factory=PortRange)
    prompts_dir: Path | None = None
    cache_dir: Path = Path(".legato/prompt-cache")
    voice: str = DEFAULT_VOICE
    ringback: ToneSpec = field(default_factory=ToneSpec)
    codecs: tuple[Codec, ...] = ("PCMU", "PCMA")
    record_dir: Path | None = None  # recordings of bridged calls, when switched on
    symmetric: bool = True


class MediaServer:
    """One per driver: the configuration and the shared prompt cache."""

    def __init__(self, config: MediaConfig) -> None:
        self.config = config
        self.library = PromptLibrary(config.prompts_dir, config.cache_dir)
        #: what media did, for logs, tests and operators: answers, offers, plays,
        #: plays_stopped, digits, ringbacks, bridges, sdp_refused
        self.stats: Counter[str] = Counter()

    def call(self, feed: Callable[[Event], None], call_id: str = "call") -> CallMedia:
        return CallMedia(self, feed, call_id)


class CallMedia:
    """Media sessions of one call's legs, and the engine's media commands on them."""

    def __init__(self, server: MediaServer, feed: Callable[[Event], None], call_id: str) -> None:
        self.server = server
        self._feed = feed
        self.call_id = call_id
        self.sessions: dict[int, MediaSession] = {}
        self.offers: dict[int, bytes] = {}  # callers' SDP offers, until we answer them
        self._plays: dict[int, int] = {}  # play id -> leg
        self._early: dict[int, bytes] = {}  # SDP sent in a 183, to repeat in the 200
        self.recording: Path | None = None
        self._loop = asyncio.get_running_loop()

    def _later(self, event: Event) -> None:
        self._loop.call_soon(self._feed, event)

    def session(self, leg: int) -> MediaSession:
        """The leg's media session, binding its ports on first use."""
        session = self.sessions.get(leg)
        if session is None:
            config = self.server.config
            endpoint = RtpEndpoint.bind(config.bind, config.ports, config.symmetric)
            session = MediaSession(endpoint, self.server.library, config.address or config.bind,
                                   config.codecs)
            session.on_digit = lambda digit: self._digit(leg, digit)
            self.sessions[leg] = session
        return session

    def _digit(self, leg: int, digit: str) -> None:
        self.server.stats["digits"] += 1
        self._later(Digits(leg, digit))

    # -------------------------------------------------------------- offer/answer
    def answer(self, leg: int) -> bytes:
        """Our SDP answer to the caller's stored offer (for its 183 or 200).

        Raises `SdpError`/`NoCommonCodec` (reply 488) when the offer is unusable."""
        early = self._early.pop(leg, None)
        if early is not None:  # the 200 repeats the 183's answer (RFC 3261 §13.2.1)
            return early
        self.server.stats["answers"] += 1
        offer = self.offers.get(leg)
        if offer is None:
            session = self.session(leg)
            return session.offer()  # no offer in the INVITE: ours goes in the 200 (RFC 3261)
        try:
            body = self.session(leg).answer(offer)
        except ValueError:
            self.server.stats["sdp_refused"] += 1
            raise
        del self.offers[leg]
        return body

    def early_media(self, caller: int) -> bytes:
        """Answer an unanswered caller's offer for a 183 and play ringback on it until the
        bridge (agents are dialled before the flow answers). Raises like `answer`."""
        body = self._early[caller] = self.answer(caller)
        self.sessions[caller].ringback(self.server.config.ringback)
        self.server.stats["early_media"] += 1
        self.server.stats["ringbacks"] += 1
        return body

    def offer(self, leg: int) -> bytes:
        """Our SDP offer for a leg we dial (an agent): media is anchored here."""
        self.server.stats["offers"] += 1
        return self.session(leg).offer()

    def reoffer(self, leg: int, body: bytes) -> bytes | None:
        """A re-INVITE on a leg whose media ends here: our answer (None: not ours to answer).

        With anchored media a re-INVITE must not be passed to the other leg: its SDP would
        point that leg's media away from the relay."""
        session = self.sessions.get(leg)
        if session is None or not body:
            return None
        return session.reanswer(body)

    def answered(self, leg: int, body: bytes) -> None:
        """A dialled leg's answer (its 200 or 183 SDP) to our offer."""
        if body and leg in self.sessions:
            self.sessions[leg].accept(body)

    def progress(self, caller: int) -> None:
        """An agent is ringing: the caller hears ringback if its media is up."""
        session = self.sessions.get(caller)
        if (session is not None and session.negotiated is not None and session.relay is None
                and not session.endpoint.playing):
            session.ringback(self.server.config.ringback)
            self.server.stats["ringbacks"] += 1

    # --------------------------------------------------------------------- prompts
    def play(self, command: Play | Gather) -> None:
        """Play/Gather: load and play the prompt; `PlayDone` follows when it ends."""
        play_id = command.play
        session = self.sessions.get(command.leg)
        items = prompt_items(command.prompt, command.text, self.server.config.voice)
        if session is None or session.negotiated is None or not items:
            log.info("call %s: play %s has no audio path; done at once", self.call_id, play_id)
            self._later(PlayDone(play_id))
            return
        self._plays[play_id] = command.leg
        self.server.stats["plays"] += 1

        def done(stopped: bool) -> None:
            if self._plays.pop(play_id, None) is not None:
                if stopped:
                    self.server.stats["plays_stopped"] += 1
                self._later(PlayDone(play_id))

        session.play(items, done)

    def stop_play(self, command: StopPlay) -> None:
        """StopPlay: barge-in or leg going away; its `PlayDone` follows."""
        leg = self._plays.get(command.play)
        if leg is not None and leg in self.sessions:
            self.sessions[leg].stop()

    def info(self, leg: int, content_type: str | None, body: bytes) -> bool:
        """A SIP INFO on a leg; True when it was DTMF (reply 200; `Digits` follows)."""
        session = self.sessions.get(leg)
        return session is not None and session.info(content_type, body)

    # -------------------------------------------------------------------- bridging
    def bridge(self, a: int, b: int, record: bool = False) -> Path | None:
        """Relay media between two legs; returns where the recording will be written."""
        first, second = self.sessions.get(a), self.sessions.get(b)
        if first is None or second is None:
            return None
        path = None
        record_dir = self.server.config.record_dir
        if record and record_dir is None:
            log.warning("call %s: recording asked for but no recordings folder is configured",
                        self.call_id)
            self.server.stats["recordings_skipped"] += 1
        elif record and record_dir is not None:
            record_dir.mkdir(parents=True, exist_ok=True)
            path = record_dir.resolve() / f"{self.call_id}.wav"
            self.server.stats["recordings"] += 1
        first.bridge(second, path)
        self.server.stats["bridges"] += 1
        self.recording = path
        return path

    def drop(self, leg: int) -> None:
        """A leg ended: release its media (a recording is written when its relay stops)."""
        session = self.sessions.pop(leg, None)
        self.offers.pop(leg, None)
        self._early.pop(leg, None)
        if session is not None:
            session.close()
        for play_id, play_leg in list(self._plays.items()):
            if play_leg == leg:
                del self._plays[play_id]
                self._later(PlayDone(play_id))

    def close(self) -> Path | None:
        """The call is over: release every leg's media; the recording's path, if any."""
        for leg in list(self.sessions):
            self.drop(leg)
        return self.recording

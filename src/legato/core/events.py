"""What flows between the call engine and a driver.

Events go in (something happened on a leg, a prompt finished, a digit arrived); commands
come out (dial this number, play that prompt, bridge two legs). A leg is named by a small
integer that is unique within its call; the driver maps it to its own handle (a virtual
phone in `sim`, a SIP dialog in `sip`).

They are values, never changed after they are made; they are not declared frozen only
because a frozen dataclass costs five times as much to build, and the engine builds
about twenty of them per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# ----------------------------------------------------------------------------- events


@dataclass(slots=True)
class LegProgress:
    """A provisional response (1xx) on a leg we dialled; 180/183 mean it is ringing."""

    leg: int
    sip_code: int = 180


@dataclass(slots=True)
class LegAnswered:
    """The far end answered (200 OK) a leg we dialled."""

    leg: int


@dataclass(slots=True)
class LegFailed:
    """A dialled leg ended without an answer: a final failure response, or none at all.

    ``sip_code`` None means no response at all (transaction timeout, transport error,
    unknown destination). ``reason_cause`` is the Q.850 cause of a Reason header.
    """

    leg: int
    sip_code: int | None
    reason_cause: int | None = None
    reason_phrase: str | None = None


@dataclass(slots=True)
class LegHangup:
    """The far end of a leg hung up: a BYE, or the inbound caller abandoning (CANCEL)."""

    leg: int
    reason_cause: int | None = None


@dataclass(slots=True)
class Digits:
    """DTMF digits pressed on a leg (in order; several at once is allowed)."""

    leg: int
    digits: str


@dataclass(slots=True)
class PlayDone:
    """A prompt started by `Play` or `Gather` finished playing (or was stopped)."""

    play: int


@dataclass(slots=True)
class FlowFetched:
    """The answer to `FetchFlow`: the validated steps of the new flow, or why there are
    none (unreachable URL, bad document, unknown verb). The steps replace what was left."""

    request: int
    steps: tuple[Any, ...] | None = None
    error: str | None = None


Event = LegProgress | LegAnswered | LegFailed | LegHangup | Digits | PlayDone | FlowFetched

# --------------------------------------------------------------------------- commands


@dataclass(slots=True)
class Dial:
    """Place an outbound leg to ``number`` (INVITE). Legato runs the ring timer itself."""

    leg: int
    number: str
    caller_id: str


@dataclass(slots=True)
class Cancel:
    """Stop a leg that is still ringing (CANCEL); the driver reports the final response."""

    leg: int


@dataclass(slots=True)
class Ring:
    """Tell the inbound caller the call is progressing (100 Trying + 180 Ringing)."""

    leg: int


@dataclass(slots=True)
class Answer:
    """Answer the inbound caller's leg (200 OK)."""

    leg: int


@dataclass(slots=True)
class Reject:
    """Refuse the inbound caller's leg with a final response and a Q.850 Reason."""

    leg: int
    sip_code: int
    q850_cause: int


@dataclass(slots=True)
class Hangup:
    """Hang up an answered leg (BYE) with a Q.850 Reason."""

    leg: int
    q850_cause: int = 16


@dataclass(slots=True)
class Play:
    """Play a prompt to a leg; the driver reports `PlayDone` when it ends."""

    leg: int
    play: int
    prompt: str | None
    text: str | None
    seconds: float


@dataclass(slots=True)
class Gather:
    """Play a gather's prompt and collect digits; ``gather`` counts the call's gathers."""

    leg: int
    play: int
    gather: int
    prompt: str | None
    text: str | None
    seconds: float


@dataclass(slots=True)
class StopPlay:
    """Stop a prompt that is playing (barge-in, or the leg is going away)."""

    play: int


@dataclass(slots=True)
class Bridge:
    """Connect the audio of two answered legs."""

    a: int
    b: int


@dataclass(slots=True)
class FetchFlow:
    """Fetch the next flow document (dynamic flows: TwiML, Legato JSON).

    ``params`` say why, in Legato's terms: ``event`` is ``start``, ``gather`` (with
    ``digits``), ``dial`` (with ``outcome``, ``sip_code``, ``talk_seconds``, ``number``)
    or ``redirect``. The adapter that fetches adds the call's own facts and answers with
    `FlowFetched`.
    """

    request: int
    url: str
    method: str
    params: dict[str, str]


@dataclass(slots=True)
class SendDigits:
    """Play DTMF to an answered leg (Twilio's SendDigits): ``0-9 * # A-D`` are keys, ``w``
    waits half a second and ``W`` a second. A driver with media sends RFC 4733 events
    (else SIP INFO); the engine waits `digits_seconds` before going on."""

    leg: int
    digits: str


Command = (
    Dial | Cancel | Ring | Answer | Reject | Hangup | Play | Gather | StopPlay | Bridge
    | FetchFlow | SendDigits
)

#: How long one key takes when sent (a 100 ms tone and the gap after it), and the waits.
DTMF_KEY_SECONDS = 0.2
DTMF_WAITS = {"w": 0.5, "W": 1.0}


def digits_seconds(digits: str) -> float:
    """How long sending ``digits`` takes: keys plus the `w`/`W` waits."""
    return sum(DTMF_WAITS.get(c, DTMF_KEY_SECONDS) for c in digits)

"""TwiML → Legato flow steps: one flow model, so a TwiML document runs on the same engine.

The translation is pure (text in, validated steps out). Twilio's control-flow rules map
onto the engine's: the end of a document ends the call; verbs after a `<Gather>` with an
action run only when no digits came (the engine goes on with the next step then); a
`<Redirect>`, a gather action or a dial action fetch a new document that replaces the
rest. Anything Legato cannot do faithfully is an error naming the element and the rule,
never a silent skip: the fetcher hands it to the engine, which records a flow error.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urljoin

from pydantic import ValidationError

from legato.core.config import Step, parse_flow
from legato.core.errors import describe_errors

#: The largest TwiML document accepted (Twilio's own limit is 64 KB).
MAX_TWIML_BYTES = 64 * 1024
#: How long a prompt fetched from a URL plays in the sim (its audio is not fetched there).
PLAY_SECONDS = 3.0
#: Sim stand-in for speech: seconds per word spoken by `<Say>` (about 150 words a minute).
SECONDS_PER_WORD = 0.4
#: Twilio's loop="0" repeats "indefinitely" (1000 times in practice); we cap it there too.
MAX_LOOP = 1000

_DIGITS_OR_KEYS = set("0123456789*#")
_FORBIDDEN = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


class TwimlError(ValueError):
    """A TwiML document Legato cannot run: bad XML, unknown verb, unsupported attribute."""


class _Context:
    """Where relative URLs resolve and where a Gather without action posts back."""

    def __init__(self, document_url: str, method: str) -> None:
        self.url = document_url
        self.method = method

    def absolute(self, ref: str, where: str) -> str:
        url = urljoin(self.url, ref.strip())
        if not url.startswith(("http://", "https://")):
            raise TwimlError(f"{where}: {ref!r} is not an http(s) URL, nor relative to one")
        return url


def parse_twiml(document: str | bytes) -> ET.Element:
    """Parse a TwiML document safely: no DOCTYPE, no entity declarations, bounded size."""
    raw = document.encode("utf-8") if isinstance(document, str) else document
    if len(raw) > MAX_TWIML_BYTES:
        raise TwimlError(f"the TwiML document is {len(raw)} bytes; the limit is {MAX_TWIML_BYTES}")
    if _FORBIDDEN.search(raw):
        raise TwimlError("the TwiML document declares a DOCTYPE or entities, which are refused")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise TwimlError(f"the TwiML document is not well-formed XML: {exc}") from None
    if root.tag != "Response":
        raise TwimlError(f"the root element must be <Response>, not <{root.tag}>")
    return root


def translate(document: str | bytes, document_url: str | None = None,
              method: str = "POST") -> list[Step]:
    """The Legato flow steps of a TwiML document fetched from ``document_url`` (relative
    URLs resolve against it; a Gather without action posts back to it)."""
    root = parse_twiml(document)
    ctx = _Context(document_url or "", method.upper())
    steps: list[dict[str, Any]] = []
    for index, verb in enumerate(root, start=1):
        steps.extend(_verb(verb, ctx, f"Response/{verb.tag}[{index}]"))
    if steps and next(iter(steps[0])) == "pause":
        # Twilio answers an incoming call before running its first verb; Legato's pause
        # would not (play and gather answer on their own, dial answers on the agent).
        steps.insert(0, {"answer": {}})
    try:
        return parse_flow(steps)
    except ValidationError as exc:
        (loc, rule), *_ = describe_errors(exc.errors())
        raise TwimlError(f"TwiML translates to an invalid flow at {_path(loc)}: {rule}") from None


def _path(loc: list[str | int]) -> str:
    return ".".join(str(p) for p in loc) or "(document)"


# ------------------------------------------------------------------- attributes
def _attrs(el: ET.Element, where: str, allowed: set[str]) -> dict[str, str]:
    unknown = sorted(set(el.attrib) - allowed)
    if unknown:
        raise TwimlError(
            f"{where}: attribute {unknown[0]!r} is not supported by Legato "
            f"(supported: {', '.join(sorted(allowed)) or 'none'})")
    return dict(el.attrib)


def _number(value: str, where: str, name: str, low: float, high: float) -> float:
    try:
        n = float(value)
    except ValueError:
        raise TwimlError(f"{where}: {name}={value!r} is not a number") from None
    if not low <= n <= high:
        raise TwimlError(f"{where}: {name}={value!r} must be between {low:g} and {high:g}")
    return n


def _loop(attrs: dict[str, str], where: str) -> int:
    n = int(_number(attrs.get("loop", "1"), where, "loop", 0, MAX_LOOP))
    return MAX_LOOP if n == 0 else n


def _method(attrs: dict[str, str], where: str) -> str:
    method = attrs.get("method", "POST").upper()
    if method not in ("GET", "POST"):
        raise TwimlError(f"{where}: method={attrs['method']!r} must be GET or POST")
    return method


def _text(el: ET.Element, where: str, what: str) -> str:
    text = (el.text or "").strip()
    if not text:
        raise TwimlError(f"{where}: {what} is empty")
    if len(el):
        raise TwimlError(f"{where}: nested <{el[0].tag}> is not supported inside <{el.tag}>")
    return text


# ------------------------------------------------------------------------ verbs
def _prompt(el: ET.Element, ctx: _Context, where: str) -> tuple[dict[str, Any], int]:
    """A `<Say>` or `<Play>` as a Legato prompt, and how many times it loops."""
    if el.tag == "Say":
        # voice and language are accepted for the media layer; the flow's prompt model
        # carries text only, so the media layer speaks it with its configured voice.
        attrs = _attrs(el, where, {"voice", "language", "loop"})
        text = _text(el, where, "the text to say")
        seconds = max(1.0, round(len(text.split()) * SECONDS_PER_WORD, 1))
        return {"text": text, "seconds": seconds}, _loop(attrs, where)
    attrs = _attrs(el, where, {"loop"})
    url = ctx.absolute(_text(el, where, "the audio URL"), where)
    return {"prompt": url, "seconds": PLAY_SECONDS}, _loop(attrs, where)


def _pause(el: ET.Element, where: str) -> float:
    attrs = _attrs(el, where, {"length"})
    if len(el) or (el.text or "").strip():
        raise TwimlError(f"{where}: <Pause> takes no content")
    return _number(attrs.get("length", "1"), where, "length", 0, 86_400)


def _verb(el: ET.Element, ctx: _Context, where: str) -> list[dict[str, Any]]:
    handler = _VERBS.get(el.tag)
    if handler is None:
        raise TwimlError(
            f"{where}: <{el.tag}> is not a TwiML verb Legato supports "
            f"(supported: {', '.join(sorted(_VERBS))})")
    return handler(el, ctx, where)


def _say_or_play(el: ET.Element, ctx: _Context, where: str) -> list[dict[str, Any]]:
    prompt, loop = _prompt(el, ctx, where)
    return [{"play": prompt} for _ in range(loop)]


def _pause_verb(el: ET.Element, ctx: _Context, where: str) -> list[dict[str, Any]]:
    return [{"pause": {"seconds": _pause(el, where)}}]


def _hangup(el: ET.Element, ctx: _Context, where: str) -> list[dict[str, Any]]:
    _attrs(el, where, set())
    return [{"hangup": {}}]


def _reject(el: ET.Element, ctx: _Context, where: str) -> list[dict[str, Any]]:
    attrs = _attrs(el, where, {"reason"})
    reason = attrs.get("reason", "rejected")
    if reason not in ("rejected", "busy"):
        raise TwimlError(f"{where}: reason={reason!r} must be 'rejected' or 'busy'")
    return [{"reject": {"reason": reason}}]


def _redirect(el: ET.Element, ctx: _Context, where: str) -> list[dict[str, Any]]:
    attrs = _attrs(el, where, {"method"})
    url = ctx.absolute(_text(el, where, "the redirect URL"), where)
    return [{"redirect": {"url": url, "method": _method(attrs, where)}}]


def _gather(el: ET.Element, ctx: _Context, where: str) -> list[dict[str, Any]]:
    attrs = _attrs(el, where, {"numDigits", "timeout", "finishOnKey", "action", "method",
                               "input"})
    if attrs.get("input", "dtmf") != "dtmf":
        raise TwimlError(f"{where}: input={attrs['input']!r} is not supported; only 'dtmf'")
    before: list[dict[str, Any]] = []  # nested verbs before the last prompt
    prompt: dict[str, Any] | None = None
    after_pause = 0.0  # silence after the prompt extends the wait for digits
    for index, child in enumerate(el, start=1):
        cwhere = f"{where}/{child.tag}[{index}]"
        if child.tag == "Pause":
            seconds = _pause(child, cwhere)
            if prompt is None:
                before.append({"pause": {"seconds": seconds}})
            else:
                after_pause += seconds
        elif child.tag in ("Say", "Play"):
            if prompt is not None:  # an earlier prompt plays in full, without barge-in
                before.append({"play": prompt})
                if after_pause:
                    before.append({"pause": {"seconds": after_pause}})
                after_pause = 0.0
            p, loop = _prompt(child, ctx, cwhere)
            before.extend({"play": p} for _ in range(loop - 1))
            prompt = p
        else:
            raise TwimlError(f"{cwhere}: <Gather> may contain <Say>, <Play> and <Pause> only")
    if prompt is None:
        raise TwimlError(f"{where}: a <Gather> needs a nested <Say> or <Play> in Legato "
                         "(its gather always plays a prompt, which digits interrupt)")
    timeout = _number(attrs.get("timeout", "5"), where, "timeout", 0, 600)
    finish = attrs.get("finishOnKey", "#")
    if finish not in ("", *_DIGITS_OR_KEYS):
        raise TwimlError(f"{where}: finishOnKey={finish!r} must be one key (0-9, *, #) or empty")
    # Without numDigits Twilio collects until finishOnKey or the timeout: up to 32 here.
    digits = int(_number(attrs.get("numDigits", "32"), where, "numDigits", 1, 32))
    if "action" in attrs:
        action = {"url": ctx.absolute(attrs["action"], f"{where} action"),
                  "method": _method(attrs, where)}
    else:  # Twilio posts the digits back to the document that holds the Gather
        action = {"url": ctx.absolute(ctx.url, f"{where} (no action: the document URL)"),
                  "method": _method(attrs, where) if "method" in attrs else ctx.method}
    gather = {"prompt": prompt, "digits": digits, "timeout": timeout + after_pause,
              "finish_on_key": finish, "action": action}
    return [*before, {"gather": gather}]


def _dial(el: ET.Element, ctx: _Context, where: str) -> list[dict[str, Any]]:
    attrs = _attrs(el, where, {"timeout", "callerId", "action", "method", "sequential"})
    numbers: list[str] = []
    text = (el.text or "").strip()
    if text:
        numbers.append(text)
    for index, child in enumerate(el, start=1):
        cwhere = f"{where}/{child.tag}[{index}]"
        if child.tag != "Number":
            raise TwimlError(f"{cwhere}: <Dial> supports <Number> nouns only")
        _attrs(child, cwhere, set())
        numbers.append(_text(child, cwhere, "the number"))
        if (child.tail or "").strip():
            raise TwimlError(f"{where}: give either a plain number or <Number> nouns")
    if not numbers:
        raise TwimlError(f"{where}: <Dial> has no number to call")
    sequential = attrs.get("sequential", "false").lower()
    if sequential not in ("true", "false"):
        raise TwimlError(f"{where}: sequential={attrs['sequential']!r} must be true or false")
    dial: dict[str, Any] = {
        "to": numbers,
        "ring_timeout": _number(attrs.get("timeout", "30"), where, "timeout", 5, 600),
        "strategy": "sequential" if sequential == "true" else "parallel",
    }
    if "callerId" in attrs:
        dial["caller_id"] = attrs["callerId"]
    if "action" in attrs:
        dial["action"] = {"url": ctx.absolute(attrs["action"], f"{where} action"),
                          "method": _method(attrs, where)}
    return [{"dial": dial}]


_VERBS = {
    "Say": _say_or_play,
    "Play": _say_or_play,
    "Pause": _pause_verb,
    "Gather": _gather,
    "Dial": _dial,
    "Hangup": _hangup,
    "Reject": _reject,
    "Redirect": _redirect,
}

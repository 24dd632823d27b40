"""The cause map (DESIGN section 3): SIP final responses and Q.850 causes -> leg outcome.

This is the only place where a SIP code or a Q.850 cause is interpreted; the engine, the
drivers and the docs all ask here. The decisions are tables, not ``if`` chains:

- ``SIP_OUTCOMES`` names the codes DESIGN names; any other code takes its class default
  (``CLASS_OUTCOMES``): 2xx answered, 3xx (a redirect we do not follow) and 4xx failed,
  5xx congestion, 6xx busy.
- ``CAUSE_OUTCOMES`` names the Q.850 causes DESIGN names; any other cause is FAILED.
- A ``Reason: Q.850;cause=N`` header on a failure response decides the outcome, except
  that a 487 is always CANCELLED (it answers our own CANCEL; a cause in it describes why
  we cancelled) and causes 16 and 127 (``NON_DECISIVE_CAUSES``) say nothing about why a
  call failed, so the SIP code decides for them. The cause is kept either way.
- Without a Reason header the cause is derived: RFC 3398's table first, then
  ``LEGATO_SIP_TO_Q850`` for registered codes it has no row for, then the class default
  ``CLASS_Q850``. A code outside the IANA registry is read as the x00 code of its class,
  as RFC 3261 section 8.1.3.2 tells a client to.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from legato.core.causes_data import Q850_CAUSES, RFC3398_SIP_TO_Q850, SIP_RESPONSES
from legato.core.outcomes import Outcome

__all__ = [
    "CAUSE_OUTCOMES",
    "CLASS_OUTCOMES",
    "CLASS_Q850",
    "LEGATO_SIP_TO_Q850",
    "NON_DECISIVE_CAUSES",
    "Q850_CAUSES",
    "RFC3398_SIP_TO_Q850",
    "SIP_OUTCOMES",
    "SIP_RESPONSES",
    "Classified",
    "Derivation",
    "classify_cause",
    "classify_no_response",
    "classify_response",
    "derivation_of",
    "derive_q850",
    "format_reason_header",
    "parse_reason_header",
    "q850_name",
    "reason_phrase",
    "sip_outcome",
]

_A = Outcome.ANSWERED
_B = Outcome.BUSY
_N = Outcome.NOANSWER
_U = Outcome.CHANUNAVAIL
_C = Outcome.CONGESTION
_F = Outcome.FAILED
_X = Outcome.CANCELLED

#: The SIP final responses DESIGN section 3 names explicitly.
SIP_OUTCOMES: dict[int, Outcome] = {
    403: _F,  # a network refusing the call is not the callee being busy
    404: _U,
    410: _U,
    484: _U,
    502: _U,
    408: _N,
    480: _N,  # as on most switches
    486: _B,
    600: _B,
    603: _B,
    487: _X,  # the answer to our CANCEL
    500: _C,
    503: _C,
    504: _C,
    604: _U,
    606: _F,
}

#: Every other final response, by class (the first digit).
CLASS_OUTCOMES: dict[int, Outcome] = {2: _A, 3: _F, 4: _F, 5: _C, 6: _B}

#: The Q.850 causes DESIGN section 3 names; every other cause is FAILED.
CAUSE_OUTCOMES: dict[int, Outcome] = {
    17: _B,
    21: _B,
    18: _N,
    19: _N,
    1: _U,
    3: _U,
    22: _U,
    27: _U,
    28: _U,
    34: _C,
    38: _C,
    41: _C,
    42: _C,
    20: _F,  # subscriber absent: "not reachable, switched off"
    16: _X,
    127: _X,  # a clearing we caused, when a cause arrives alone
}

#: Causes that say nothing about why a call failed (normal clearing; interworking,
#: unspecified): in a failure response's Reason header the SIP code decides instead.
NON_DECISIVE_CAUSES: frozenset[int] = frozenset({16, 127})

#: Responses whose outcome a Reason header never changes: 2xx is an answer, and a 487 is
#: the far end confirming our own CANCEL.
_REASON_IGNORED_CLASSES: frozenset[int] = frozenset({2})
_REASON_IGNORED_CODES: frozenset[int] = frozenset({487})

#: Derived causes for registered codes RFC 3398 has no row for (docs/decisions.md).
LEGATO_SIP_TO_Q850: dict[int, int] = {
    433: 24,  # Anonymity Disallowed: call rejected due to a feature at the destination
    487: 16,  # Request Terminated: we cleared the attempt, normally
    488: 88,  # Not Acceptable Here: incompatible destination (RFC 3398: "by Warning")
    606: 88,  # Not Acceptable: incompatible destination (RFC 3398: "by Warning")
    607: 21,  # Unwanted: call rejected
    608: 21,  # Rejected (by an intermediary): call rejected
}

#: Derived causes for every other registered final response, by class: 2xx answered
#: calls clear normally, a 3xx is a redirection, and a 4xx-6xx with no PSTN analogue is
#: "interworking, unspecified", as RFC 3398 itself maps such protocol-level codes.
CLASS_Q850: dict[int, int] = {2: 16, 3: 23, 4: 127, 5: 127, 6: 127}

_FIRST_FINAL = 200
_LAST_CODE = 699
_FIRST_CODE = 100
_LAST_CAUSE = 127


class Derivation(StrEnum):
    """Where a derived Q.850 cause comes from, for the generated docs."""

    RFC3398 = "RFC 3398"
    LEGATO = "Legato"
    CLASS = "class default"


@dataclass(frozen=True, slots=True)
class Classified:
    """What a leg attempt's final signalling means: the outcome and the facts behind it."""

    outcome: Outcome
    sip_code: int | None
    sip_reason: str | None  # reason phrase (the standard one if none given)
    q850_cause: int | None
    q850_derived: bool  # True when derived from the SIP code, not from a Reason header


def _check_code(sip_code: int) -> None:
    if isinstance(sip_code, bool) or not isinstance(sip_code, int):
        raise ValueError(
            f"sip_code: must be an integer SIP status code 100..699 (RFC 3261 Status-Code), "
            f"got {sip_code!r}"
        )
    if not _FIRST_CODE <= sip_code <= _LAST_CODE:
        raise ValueError(
            f"sip_code: must be a SIP status code 100..699 (RFC 3261 Status-Code), got {sip_code}"
        )


def _check_final(sip_code: int) -> None:
    _check_code(sip_code)
    if sip_code < _FIRST_FINAL:
        raise ValueError(
            f"sip_code: must be a final response 200..699 to end a leg attempt, got "
            f"{sip_code}, a provisional (1xx) response"
        )


def _check_cause(cause: int, field: str) -> None:
    if isinstance(cause, bool) or not isinstance(cause, int) or not 1 <= cause <= _LAST_CAUSE:
        raise ValueError(f"{field}: must be a Q.850 cause value 1..127, got {cause!r}")


def _as_registered(sip_code: int) -> int:
    """An unregistered code is read as the x00 code of its class (RFC 3261 8.1.3.2)."""
    return sip_code if sip_code in SIP_RESPONSES else sip_code // 100 * 100


def sip_outcome(sip_code: int) -> Outcome:
    """The outcome a final response gives when no Reason header decides it."""
    _check_final(sip_code)
    return SIP_OUTCOMES.get(sip_code) or CLASS_OUTCOMES[sip_code // 100]


def derivation_of(sip_code: int) -> tuple[int, Derivation] | None:
    """The cause derived from a SIP code and where that mapping comes from (None for 1xx)."""
    _check_code(sip_code)
    if sip_code < _FIRST_FINAL:
        return None
    code = _as_registered(sip_code)
    if code in RFC3398_SIP_TO_Q850:
        return RFC3398_SIP_TO_Q850[code], Derivation.RFC3398
    if code in LEGATO_SIP_TO_Q850:
        return LEGATO_SIP_TO_Q850[code], Derivation.LEGATO
    return CLASS_Q850[code // 100], Derivation.CLASS


def derive_q850(sip_code: int) -> int | None:
    """The Q.850 cause a SIP final response stands for when no Reason header gives one."""
    derived = derivation_of(sip_code)
    return None if derived is None else derived[0]


def reason_phrase(sip_code: int) -> str | None:
    """The registry's default reason phrase, or None for an unregistered code."""
    return SIP_RESPONSES.get(sip_code)


def q850_name(cause: int) -> str | None:
    """The Q.850 name of a cause value, or None when Q.850 does not define it."""
    return Q850_CAUSES.get(cause)


def classify_cause(q850_cause: int) -> Outcome:
    """The outcome a Q.850 cause stands for on its own (e.g. the Reason of a BYE)."""
    _check_cause(q850_cause, "q850_cause")
    return CAUSE_OUTCOMES.get(q850_cause, Outcome.FAILED)


def _classify_plain(sip_code: int) -> Classified:
    return Classified(
        outcome=sip_outcome(sip_code),
        sip_code=sip_code,
        sip_reason=reason_phrase(sip_code),
        q850_cause=derive_q850(sip_code),
        q850_derived=True,
    )


#: Every final response without a Reason header, computed once: this runs per leg in the
#: simulator's hot path.
_PLAIN: dict[int, Classified] = {
    code: _classify_plain(code) for code in range(_FIRST_FINAL, _LAST_CODE + 1)
}


def classify_response(
    sip_code: int, reason_cause: int | None = None, reason_phrase: str | None = None
) -> Classified:
    """Classify a final response, with the Q.850 cause of its Reason header if it had one.

    ``reason_phrase`` is the phrase the far end sent; blank or absent means the standard one.
    """
    plain = _PLAIN.get(sip_code) if type(sip_code) is int else None
    if plain is None:  # the slow path: explain the error, or accept an int subclass
        _check_final(sip_code)
        sip_code = int(sip_code)
        plain = _PLAIN[sip_code]
    phrase = plain.sip_reason
    if reason_phrase is not None and reason_phrase.strip():
        phrase = reason_phrase.strip()
    if reason_cause is None:
        if phrase is plain.sip_reason:
            return plain
        return Classified(plain.outcome, sip_code, phrase, plain.q850_cause, True)
    if type(reason_cause) is not int:
        _check_cause(reason_cause, "reason_cause")
        reason_cause = int(reason_cause)
    key = (sip_code, reason_cause)
    with_reason = _WITH_REASON.get(key)
    if with_reason is None:
        _check_cause(reason_cause, "reason_cause")
        with_reason = _WITH_REASON[key] = _classify_with_reason(plain, reason_cause)
    if phrase is plain.sip_reason:
        return with_reason
    return Classified(with_reason.outcome, sip_code, phrase, reason_cause, False)


def _classify_with_reason(plain: Classified, reason_cause: int) -> Classified:
    outcome = plain.outcome
    code = plain.sip_code
    assert code is not None
    if (
        code // 100 not in _REASON_IGNORED_CLASSES
        and code not in _REASON_IGNORED_CODES
        and reason_cause not in NON_DECISIVE_CAUSES
    ):
        outcome = CAUSE_OUTCOMES.get(reason_cause, Outcome.FAILED)
    return Classified(outcome, code, plain.sip_reason, reason_cause, False)


#: Responses with a Reason header, memoised as they are met (at most 500 x 127 entries).
_WITH_REASON: dict[tuple[int, int], Classified] = {}


_NO_RESPONSE = Classified(Outcome.FAILED, None, None, None, False)


def classify_no_response() -> Classified:
    """No final response at all (transaction timeout, transport error): FAILED, no facts."""
    return _NO_RESPONSE


def _split_unquoted(text: str, separator: str) -> list[str]:
    """Split on a separator outside quoted strings (which may hold escaped quotes)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def parse_reason_header(value: str) -> int | None:
    """The Q.850 cause in a Reason header value (RFC 3326), or None if it carries none.

    Tolerant, as a receiver should be: protocol and parameter names in any case, spaces
    around ``;`` and ``=``, several comma-separated reason values (the first Q.850 one with
    a valid cause counts), commas and semicolons inside the quoted ``text``. A cause that
    is not a number in 1..127 is no cause.
    """
    for reason_value in _split_unquoted(value, ","):
        protocol, *params = _split_unquoted(reason_value, ";")
        if protocol.strip().upper() != "Q.850":
            continue
        for param in params:
            name, equals, raw = param.partition("=")
            if name.strip().lower() != "cause" or not equals:
                continue
            digits = raw.strip()
            if digits.isascii() and digits.isdigit() and 1 <= int(digits) <= _LAST_CAUSE:
                return int(digits)
    return None


def format_reason_header(cause: int) -> str:
    """A Reason header value for a Q.850 cause (RFC 3326), with its Q.850 name as text."""
    _check_cause(cause, "cause")
    name = q850_name(cause)
    if name is None:
        return f"Q.850;cause={cause}"
    text = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'Q.850;cause={cause};text="{text}"'


#: Provisional responses that mean the far end is alerting (PDD ends at the first of them).
RINGING_CODES = frozenset({180, 183})


def is_ringing(sip_code: int) -> bool:
    """Whether a provisional response says the callee is being alerted (180/183)."""
    return sip_code in RINGING_CODES


#: The facts of an answered leg: 200 OK, Q.850 16 (normal clearing) at the end.
ANSWERED_200 = classify_response(200)

"""The cause map, row by row, against expectations written out here from DESIGN section 3.

The tables below are typed in by hand from the sources (the IANA registry, RFC 3398
section 8.2.6.1, ITU-T Q.850 and DESIGN's fixed decisions), not computed from the module
under test, so a wrong row in either place makes a test fail.
"""

from __future__ import annotations

import pytest

from legato.core.causes import (
    Q850_CAUSES,
    SIP_RESPONSES,
    Classified,
    classify_cause,
    classify_no_response,
    classify_response,
    derive_q850,
    format_reason_header,
    parse_reason_header,
    q850_name,
    reason_phrase,
)
from legato.core.outcomes import Outcome

A, B, N = Outcome.ANSWERED, Outcome.BUSY, Outcome.NOANSWER
U, C, F, X = Outcome.CHANUNAVAIL, Outcome.CONGESTION, Outcome.FAILED, Outcome.CANCELLED

#: code: (IANA reason phrase, outcome without Reason, derived Q.850 cause)
#: Outcomes: DESIGN §3; other 4xx FAILED, 5xx CONGESTION, 6xx BUSY, 3xx FAILED.
#: Causes: RFC 3398 §8.2.6.1 where it has a row; otherwise docs/decisions.md.
EXPECTED_SIP: dict[int, tuple[str, Outcome | None, int | None]] = {
    100: ("Trying", None, None),
    180: ("Ringing", None, None),
    181: ("Call Is Being Forwarded", None, None),
    182: ("Queued", None, None),
    183: ("Session Progress", None, None),
    199: ("Early Dialog Terminated", None, None),
    200: ("OK", A, 16),
    202: ("Accepted", A, 16),
    204: ("No Notification", A, 16),
    300: ("Multiple Choices", F, 23),
    301: ("Moved Permanently", F, 23),
    302: ("Moved Temporarily", F, 23),
    305: ("Use Proxy", F, 23),
    380: ("Alternative Service", F, 23),
    400: ("Bad Request", F, 41),
    401: ("Unauthorized", F, 21),
    402: ("Payment Required", F, 21),
    403: ("Forbidden", F, 21),
    404: ("Not Found", U, 1),
    405: ("Method Not Allowed", F, 63),
    406: ("Not Acceptable", F, 79),
    407: ("Proxy Authentication Required", F, 21),
    408: ("Request Timeout", N, 102),
    410: ("Gone", U, 22),
    412: ("Conditional Request Failed", F, 127),
    413: ("Request Entity Too Large", F, 127),
    414: ("Request-URI Too Long", F, 127),
    415: ("Unsupported Media Type", F, 79),
    416: ("Unsupported URI Scheme", F, 127),
    417: ("Unknown Resource-Priority", F, 127),
    420: ("Bad Extension", F, 127),
    421: ("Extension Required", F, 127),
    422: ("Session Interval Too Small", F, 127),
    423: ("Interval Too Brief", F, 127),
    424: ("Bad Location Information", F, 127),
    425: ("Bad Alert Message", F, 127),
    428: ("Use Identity Header", F, 127),
    429: ("Provide Referrer Identity", F, 127),
    430: ("Flow Failed", F, 127),
    433: ("Anonymity Disallowed", F, 24),
    436: ("Bad Identity Info", F, 127),
    437: ("Unsupported Credential", F, 127),
    438: ("Invalid Identity Header", F, 127),
    439: ("First Hop Lacks Outbound Support", F, 127),
    440: ("Max-Breadth Exceeded", F, 127),
    469: ("Bad Info Package", F, 127),
    470: ("Consent Needed", F, 127),
    480: ("Temporarily Unavailable", N, 18),
    481: ("Call/Transaction Does Not Exist", F, 41),
    482: ("Loop Detected", F, 25),
    483: ("Too Many Hops", F, 25),
    484: ("Address Incomplete", U, 28),
    485: ("Ambiguous", F, 1),
    486: ("Busy Here", B, 17),
    487: ("Request Terminated", X, 16),
    488: ("Not Acceptable Here", F, 88),
    489: ("Bad Event", F, 127),
    491: ("Request Pending", F, 127),
    493: ("Undecipherable", F, 127),
    494: ("Security Agreement Required", F, 127),
    500: ("Server Internal Error", C, 41),
    501: ("Not Implemented", C, 79),
    502: ("Bad Gateway", U, 38),
    503: ("Service Unavailable", C, 41),
    504: ("Server Time-out", C, 102),
    505: ("Version Not Supported", C, 127),
    513: ("Message Too Large", C, 127),
    555: ("Push Notification Service Not Supported", C, 127),
    580: ("Precondition Failure", C, 127),
    600: ("Busy Everywhere", B, 17),
    603: ("Decline", B, 21),
    604: ("Does Not Exist Anywhere", U, 1),
    606: ("Not Acceptable", F, 88),
    607: ("Unwanted", B, 21),
    608: ("Rejected", B, 21),
}

#: The Q.850 causes DESIGN §3 names; everything else 1..127 is FAILED.
EXPECTED_NAMED_CAUSES: dict[int, Outcome] = {
    17: B, 21: B,
    18: N, 19: N,
    1: U, 3: U, 22: U, 27: U, 28: U,
    34: C, 38: C, 41: C, 42: C,
    20: F,
    16: X, 127: X,
}

#: The cause values ITU-T Q.850 defines (with the amendments that added 14 and 24).
DEFINED_CAUSES = frozenset({
    1, 2, 3, 4, 5, 6, 7, 8, 9, 14, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
    30, 31, 34, 38, 39, 40, 41, 42, 43, 44, 46, 47, 49, 50, 53, 55, 57, 58, 62, 63, 65, 66,
    69, 70, 79, 81, 82, 83, 84, 85, 86, 87, 88, 90, 91, 95, 96, 97, 98, 99, 100, 101, 102,
    103, 110, 111, 127,
})


def test_registry_is_exactly_the_iana_codes() -> None:
    assert set(SIP_RESPONSES) == set(EXPECTED_SIP)
    assert len(SIP_RESPONSES) == 75
    assert 409 not in SIP_RESPONSES and 411 not in SIP_RESPONSES  # RFC 2543 only


@pytest.mark.parametrize("code", sorted(EXPECTED_SIP))
def test_sip_code_row(code: int) -> None:
    phrase, outcome, cause = EXPECTED_SIP[code]
    assert reason_phrase(code) == phrase
    assert derive_q850(code) == cause
    if outcome is None:
        with pytest.raises(ValueError, match="provisional"):
            classify_response(code)
        return
    assert classify_response(code) == Classified(outcome, code, phrase, cause, True)


def _class_rule(code: int) -> Outcome:
    """DESIGN's rule for a code it does not name, written independently of the module."""
    return {2: A, 3: F, 4: F, 5: C, 6: B}[code // 100]


@pytest.mark.parametrize("code", [c for c in range(200, 700) if c not in EXPECTED_SIP])
def test_unregistered_code_is_read_as_its_class_x00(code: int) -> None:
    x00 = code // 100 * 100
    result = classify_response(code)
    assert result.outcome == _class_rule(code)
    assert result.q850_cause == EXPECTED_SIP[x00][2]
    assert result.sip_reason is None
    assert result.q850_derived


@pytest.mark.parametrize("cause", range(1, 128))
def test_cause_row(cause: int) -> None:
    assert classify_cause(cause) == EXPECTED_NAMED_CAUSES.get(cause, F)
    assert (q850_name(cause) is not None) == (cause in DEFINED_CAUSES)


def test_cause_names_follow_q850() -> None:
    assert set(Q850_CAUSES) == DEFINED_CAUSES
    assert q850_name(17) == "User busy"
    assert q850_name(34) == "No circuit/channel available"
    assert q850_name(127) == "Interworking, unspecified"
    assert q850_name(0) is None and q850_name(128) is None


@pytest.mark.parametrize("cause", range(1, 128))
@pytest.mark.parametrize("code", [403, 480, 486, 503, 604, 606, 302, 499])
def test_reason_cause_wins_on_failure_responses(code: int, cause: int) -> None:
    expected = _class_rule(code) if code not in EXPECTED_SIP else EXPECTED_SIP[code][1]
    if cause not in (16, 127):
        expected = EXPECTED_NAMED_CAUSES.get(cause, F)
    result = classify_response(code, reason_cause=cause)
    assert result.outcome == expected
    assert (result.sip_code, result.q850_cause, result.q850_derived) == (code, cause, False)


@pytest.mark.parametrize(
    ("code", "cause", "outcome"),
    [
        (503, 34, C),  # the sim's `congestion` phone
        (486, 21, B),
        (480, 20, F),  # switched off: DESIGN's explicit 20 -> FAILED
        (404, 17, B),  # the cause decides, the SIP code is kept
        (603, 18, N),
        (408, 41, C),
        (500, 1, U),
        (486, 31, F),  # a named-nowhere cause is FAILED
        (486, 16, B),  # 16 says nothing about a failure: the code decides
        (404, 127, U),
        (487, 17, X),  # 487 answers our CANCEL: always CANCELLED
        (487, 16, X),
        (487, 127, X),
        (200, 16, A),  # an answer stays an answer
        (200, 17, A),
    ],
)
def test_reason_examples(code: int, cause: int, outcome: Outcome) -> None:
    result = classify_response(code, cause)
    assert result == Classified(outcome, code, SIP_RESPONSES[code], cause, False)


def test_reason_phrase_given_is_kept_and_blank_means_standard() -> None:
    assert classify_response(486, reason_phrase="Busy").sip_reason == "Busy"
    assert classify_response(486, reason_phrase="  User Busy \r").sip_reason == "User Busy"
    assert classify_response(486, reason_phrase="   ").sip_reason == "Busy Here"
    assert classify_response(499, reason_phrase="Weird").sip_reason == "Weird"
    with_reason = classify_response(503, 34, "Overloaded")
    assert with_reason == Classified(C, 503, "Overloaded", 34, False)
    # the memo of Reason results must not leak one call's phrase into the next
    assert classify_response(503, 34).sip_reason == "Service Unavailable"


def test_no_response_is_failed_without_facts() -> None:
    assert classify_no_response() == Classified(F, None, None, None, False)


@pytest.mark.parametrize("code", [-1, 0, 99, 700, 999])
def test_out_of_range_codes_are_rejected(code: int) -> None:
    with pytest.raises(ValueError, match=r"sip_code: .*100\.\.699"):
        classify_response(code)
    with pytest.raises(ValueError, match="sip_code"):
        derive_q850(code)


@pytest.mark.parametrize("code", [100, 180, 183, 199])
def test_provisional_responses_do_not_end_an_attempt(code: int) -> None:
    with pytest.raises(ValueError, match=r"sip_code: must be a final response 200\.\.699"):
        classify_response(code, 16)


@pytest.mark.parametrize("code", [486.0, "486", True, None])
def test_non_integer_codes_are_rejected(code: object) -> None:
    with pytest.raises(ValueError, match="sip_code: must be an integer"):
        classify_response(code)  # type: ignore[arg-type]


@pytest.mark.parametrize("cause", [0, 128, -3, 34.0, True, "34"])
def test_bad_reason_causes_are_rejected(cause: object) -> None:
    classify_response(503, 34)  # memoise a valid neighbour first
    with pytest.raises(ValueError, match=r"reason_cause: must be a Q\.850 cause value 1\.\.127"):
        classify_response(503, cause)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="q850_cause"):
        classify_cause(cause)  # type: ignore[arg-type]


def test_int_subclasses_are_accepted() -> None:
    from enum import IntEnum

    class Code(IntEnum):
        BUSY_HERE = 486

    result = classify_response(Code.BUSY_HERE, Code.BUSY_HERE - 469)
    assert result == Classified(B, 486, "Busy Here", 17, False)
    assert type(result.sip_code) is int


# --- Reason header (RFC 3326) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cause"),
    [
        ('Q.850;cause=34;text="No circuit/channel available"', 34),
        ("Q.850;cause=16", 16),
        ("q.850;CAUSE=17", 17),
        ('Q.850 ; cause = 21 ; text="Call rejected"', 21),
        ("  Q.850;cause=034  ", 34),
        ('SIP;cause=200;text="Call completed elsewhere", Q.850;cause=26', 26),
        ('SIP ;cause=487 ;text="a, b; c", Q.850 ;cause=41 ;text="x"', 41),
        ('Q.850;text="cause=99, really";cause=18', 18),
        ('Q.850;text="escaped \\" quote, cause=5";cause=19', 19),
        ("Q.850;cause=127", 127),
        ("Q.850;cause=1", 1),
        ("Q.850;cause=abc, Q.850;cause=20", 20),
        ("Q.850;foo=bar;cause=27;location=LN", 27),
    ],
)
def test_parse_reason_header(value: str, cause: int) -> None:
    assert parse_reason_header(value) == cause


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "SIP;cause=486",
        'SIP;cause=200;text="Q.850;cause=17"',
        "Q.850",
        "Q.850;cause",
        "Q.850;cause=",
        "Q.850;cause=0",
        "Q.850;cause=128",
        "Q.850;cause=999999999999999999999",
        "Q.850;cause=-3",
        "Q.850;cause=3.5",
        "Q.850;cause=１７",  # fullwidth digits are not DIGIT
        'Q.850;text="unterminated, cause=17',
        "Q.8500;cause=17",
        "Q850;cause=17",
        "Q.850;reason=17",
    ],
)
def test_parse_reason_header_without_a_q850_cause(value: str) -> None:
    assert parse_reason_header(value) is None


@pytest.mark.parametrize("cause", range(1, 128))
def test_reason_header_round_trip(cause: int) -> None:
    header = format_reason_header(cause)
    assert parse_reason_header(header) == cause
    assert parse_reason_header(f'SIP;cause=480;text="x", {header}') == cause


def test_format_reason_header() -> None:
    assert format_reason_header(34) == 'Q.850;cause=34;text="No circuit/channel available"'
    assert format_reason_header(17) == 'Q.850;cause=17;text="User busy"'
    assert format_reason_header(10) == "Q.850;cause=10"  # Q.850 defines no name for 10
    for bad in (0, 128, -1):
        with pytest.raises(ValueError, match=r"cause: must be a Q\.850 cause value"):
            format_reason_header(bad)

"""Dialling permissions: which countries and number types an account may call.

Everything about a number (validity, country, type) comes from ``phonenumbers``; there
are no hand-written prefix tables here, so the rules follow the library's metadata as
numbering plans change. Parsing is slow (tens of microseconds), and the sim checks
~20k calls a second over a small set of numbers, so the per-number facts are cached.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

#: phonenumbers' type names in lower case, derived from the library (not typed by hand).
NUMBER_TYPES: dict[int, str] = {
    getattr(PhoneNumberType, name): name.lower()
    for name in dir(PhoneNumberType)
    if name.isupper() and isinstance(getattr(PhoneNumberType, name), int)
}
#: The names an account may allow in ``allowed_number_types``.
ALLOWED_TYPE_NAMES: frozenset[str] = frozenset(NUMBER_TYPES.values())

#: A number of this type is allowed when any of these types is allowed (DESIGN section 4).
_EITHER = "fixed_line_or_mobile"
_EITHER_ALLOWS = frozenset({"fixed_line", "mobile", "fixed_line_or_mobile"})


class InvalidNumber(ValueError):
    """A number that is not a valid international (E.164) telephone number."""


@dataclass(frozen=True, slots=True)
class NumberFacts:
    """What phonenumbers says about one number."""

    e164: str
    country: str  # ISO 3166 alpha-2, or "001" for non-geographic numbers (e.g. +800)
    type: str  # one of NUMBER_TYPES' values


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a number may not be dialled: ``rule`` is ``country`` or ``number_type``."""

    rule: str
    detail: str


def _read(raw: str) -> NumberFacts | str:
    """The facts of ``raw``, or the reason it is invalid (a str, so that it can be cached)."""
    text = raw.strip()
    if not text.startswith("+"):
        return (
            f"{raw!r} is not in international form: write + then the country code, "
            "e.g. +919811000001"
        )
    try:
        parsed = phonenumbers.parse(text, None)
    except NumberParseException as exc:
        return f"{raw!r} is not a telephone number: {exc._msg}"
    if not phonenumbers.is_valid_number(parsed):
        return f"{raw!r} is not a valid number in its numbering plan"
    return NumberFacts(
        e164=phonenumbers.format_number(parsed, PhoneNumberFormat.E164),
        country=phonenumbers.region_code_for_number(parsed) or "001",
        type=NUMBER_TYPES.get(phonenumbers.number_type(parsed), "unknown"),
    )


#: The hot path's cache: the sim and the engine see the same numbers over and over.
_facts = lru_cache(maxsize=65536)(_read)


def number_facts(raw: str) -> NumberFacts:
    """E.164 form, country and type of ``raw``; :class:`InvalidNumber` if it is not valid."""
    facts = _facts(raw)
    if isinstance(facts, str):
        raise InvalidNumber(facts)
    return facts


def parse_number(raw: str) -> NumberFacts:
    """:func:`number_facts` without the cache, for bulk input (a 100,000-entry blacklist,
    an import) that would otherwise evict the numbers calls actually use."""
    facts = _read(raw)
    if isinstance(facts, str):
        raise InvalidNumber(facts)
    return facts


def normalize_number(raw: str) -> str:
    """The E.164 form of ``raw`` (given in international ``+`` form, spaces allowed)."""
    return number_facts(raw).e164


def number_country(number: str) -> str:
    """ISO 3166 alpha-2 region of the number ("001" for non-geographic ones)."""
    return number_facts(number).country


def number_type(number: str) -> str:
    """Lower-case phonenumbers type name: ``mobile``, ``fixed_line``, ..., ``unknown``."""
    return number_facts(number).type


def check_permission(
    number: str,
    allowed_countries: frozenset[str] | None,
    allowed_types: frozenset[str] | None,
) -> Refusal | None:
    """Why ``number`` may not be dialled, or None when it may.

    None for a set means no restriction. Raises :class:`InvalidNumber` for a number that
    is not valid at all: that is an input error for the API, not a NOTALLOWED call.
    """
    facts = number_facts(number)
    if allowed_countries is not None and facts.country not in allowed_countries:
        return Refusal(
            "country",
            f"{facts.e164} is in {facts.country}, not an allowed country "
            f"({_listed(allowed_countries)})",
        )
    if allowed_types is not None and not _type_allowed(facts.type, allowed_types):
        return Refusal(
            "number_type",
            f"{facts.e164} is a {facts.type} number, not an allowed type "
            f"({_listed(allowed_types)})",
        )
    return None


def _type_allowed(kind: str, allowed: frozenset[str]) -> bool:
    if kind == _EITHER:
        return not allowed.isdisjoint(_EITHER_ALLOWS)
    return kind in allowed


def _listed(values: frozenset[str]) -> str:
    return ", ".join(sorted(values)) if values else "none"


def validate_allowed_countries(values: Iterable[str]) -> frozenset[str]:
    """Check ``allowed_countries``: ISO 3166 alpha-2 codes known to phonenumbers.

    Lower case is accepted and upper-cased. The error names the rule and every bad code.
    """
    codes: list[str] = []
    bad: list[str] = []
    for value in values:
        code = value.strip().upper() if isinstance(value, str) else ""
        if code in phonenumbers.SUPPORTED_REGIONS:
            codes.append(code)
        else:
            bad.append(repr(value))
    if bad:
        raise ValueError(
            f"allowed_countries: {', '.join(bad)} not an ISO 3166 alpha-2 country code "
            "known to phonenumbers (e.g. IN, US, GB)"
        )
    return frozenset(codes)


def validate_allowed_number_types(values: Iterable[str]) -> frozenset[str]:
    """Check ``allowed_number_types``: phonenumbers type names in lower case."""
    names: list[str] = []
    bad: list[str] = []
    for value in values:
        name = value.strip() if isinstance(value, str) else ""
        if name in ALLOWED_TYPE_NAMES:
            names.append(name)
        else:
            bad.append(repr(value))
    if bad:
        raise ValueError(
            f"allowed_number_types: {', '.join(bad)} not a number type; "
            f"use {', '.join(sorted(ALLOWED_TYPE_NAMES))}"
        )
    return frozenset(names)

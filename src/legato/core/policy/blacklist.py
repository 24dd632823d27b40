"""A Legato number's blacklist: callers rejected as BLOCKED before anything rings.

Entries are exact numbers (``+919811000009``) or prefixes written with a trailing ``*``
(``+9198110*``). A lookup costs one set probe for the exact numbers plus one per distinct
prefix length, so it stays O(length of the number) however long the list grows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from legato.core.policy.permissions import InvalidNumber, parse_number

_PREFIX_RE = re.compile(r"^\+[1-9]\d{0,14}$")
_COUNTRY_CODES = tuple(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)


class BlacklistError(ValueError):
    """A blacklist entry that is neither a valid number nor a valid prefix."""


def _prefix_fits_a_country(digits: str) -> bool:
    """``+9198110*`` starts with a country code; ``+9*`` is the start of several."""
    return any(digits.startswith(cc) or cc.startswith(digits) for cc in _COUNTRY_CODES)


def parse_entry(entry: str) -> tuple[str, bool]:
    """The normalised entry and whether it is a prefix; the error names entry and rule."""
    if not isinstance(entry, str):
        raise BlacklistError(f"blacklist entry {entry!r}: an entry is a string")
    text = re.sub(r"[\s\-]", "", entry)
    if text.endswith("*"):
        prefix = text[:-1]
        if not _PREFIX_RE.match(prefix):
            raise BlacklistError(
                f"blacklist entry {entry!r}: a prefix is + then 1 to 15 digits then *, "
                "e.g. +9198110*"
            )
        if not _prefix_fits_a_country(prefix[1:]):
            raise BlacklistError(
                f"blacklist entry {entry!r}: no country calling code starts like {prefix}"
            )
        return prefix, True
    try:
        return parse_number(text).e164, False
    except InvalidNumber as exc:
        raise BlacklistError(
            f"blacklist entry {entry!r}: not a valid E.164 number ({exc}); "
            "end it with * to block a prefix"
        ) from None


class Blacklist:
    """Exact numbers and prefixes; :meth:`match` says which entry blocks a caller."""

    __slots__ = ("_exact", "_lengths", "_prefixes")

    def __init__(self, entries: Iterable[str] = ()) -> None:
        exact: set[str] = set()
        prefixes: set[str] = set()
        errors: list[str] = []
        for entry in entries:
            try:
                value, is_prefix = parse_entry(entry)
            except BlacklistError as exc:
                errors.append(str(exc))
                continue
            (prefixes if is_prefix else exact).add(value)
        if errors:
            raise BlacklistError("; ".join(errors))
        self._exact = frozenset(exact)
        self._prefixes = frozenset(prefixes)
        # Longest first, so the most specific entry is the one reported.
        self._lengths = tuple(sorted({len(p) for p in prefixes}, reverse=True))

    def match(self, number: str) -> str | None:
        """The entry that blocks ``number`` (E.164, as ``normalize_number`` returns), or None.

        An exact entry is reported as the number, a prefix entry with its trailing ``*``.
        """
        if number in self._exact:
            return number
        for length in self._lengths:
            if len(number) >= length and number[:length] in self._prefixes:
                return number[:length] + "*"
        return None

    @property
    def entries(self) -> tuple[str, ...]:
        """Every entry in normalised form, sorted (what an admin surface lists)."""
        return tuple(sorted([*self._exact, *(p + "*" for p in self._prefixes)]))

    def __len__(self) -> int:
        return len(self._exact) + len(self._prefixes)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Blacklist):
            return NotImplemented
        return self._exact == other._exact and self._prefixes == other._prefixes

    def __hash__(self) -> int:
        return hash((self._exact, self._prefixes))

    def __repr__(self) -> str:
        return f"Blacklist({list(self.entries)!r})"

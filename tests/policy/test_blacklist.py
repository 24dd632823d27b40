"""Blacklist: exact numbers and prefixes, clear errors, and a brute-force check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legato.core.policy.blacklist import Blacklist, BlacklistError


def test_exact_and_prefix_entries() -> None:
    blacklist = Blacklist(["+919811000009", "+9198110*", "+1 800*"])
    assert blacklist.match("+919811000009") == "+919811000009"
    assert blacklist.match("+919811012345") == "+9198110*"
    assert blacklist.match("+18002752273") == "+1800*"
    assert blacklist.match("+918047001000") is None
    assert blacklist.match("+14155552671") is None
    assert len(blacklist) == 3
    assert blacklist.entries == ("+1800*", "+9198110*", "+919811000009")


def test_exact_entries_are_normalised() -> None:
    blacklist = Blacklist(["+91 98110 00009"])
    assert blacklist.match("+919811000009") == "+919811000009"


def test_exact_match_wins_then_longest_prefix() -> None:
    blacklist = Blacklist(["+91*", "+9198*", "+91981100*", "+919811000009"])
    assert blacklist.match("+919811000009") == "+919811000009"
    assert blacklist.match("+919811000001") == "+91981100*"
    assert blacklist.match("+919911000001") == "+91*"


def test_empty_blacklist_matches_nothing() -> None:
    assert Blacklist().match("+919811000009") is None
    assert Blacklist([]) == Blacklist()


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        ("+91abc*", "a prefix is + then 1 to 15 digits then *"),
        ("9198110*", "a prefix is + then 1 to 15 digits then *"),
        ("+*", "a prefix is + then 1 to 15 digits then *"),
        ("+0*", "a prefix is + then 1 to 15 digits then *"),
        ("+1234567890123456*", "a prefix is + then 1 to 15 digits then *"),
        ("+999*", "no country calling code starts like +999"),
        ("9811000009", "not a valid E.164 number"),
        ("+91981100000", "not a valid E.164 number"),
        ("+919811*000", "not a valid E.164 number"),
    ],
)
def test_bad_entry_names_entry_and_rule(entry: str, rule: str) -> None:
    with pytest.raises(BlacklistError) as info:
        Blacklist(["+919811000009", entry])
    message = str(info.value)
    assert message.startswith(f"blacklist entry {entry!r}:")
    assert rule in message
    assert isinstance(info.value, ValueError)


def test_every_bad_entry_is_reported() -> None:
    with pytest.raises(BlacklistError) as info:
        Blacklist(["+91abc*", "+919811000009", "12345"])
    assert "'+91abc*'" in str(info.value) and "'12345'" in str(info.value)


def test_prefix_of_a_country_code_is_allowed() -> None:
    # +9 is the start of +91, +92, ...: blocks the whole zone.
    assert Blacklist(["+9*"]).match("+919811000001") == "+9*"


def test_equality_and_hash() -> None:
    a = Blacklist(["+919811000009", "+9198110*"])
    b = Blacklist(["+9198110*", "+91 9811 000009", "+9198110*"])
    assert a == b and hash(a) == hash(b)
    assert a != Blacklist(["+9198110*"])


digits = st.text("0123456789", min_size=1, max_size=6)


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failure
@given(
    prefixes=st.lists(digits.map(lambda d: "+91" + d), max_size=8),
    numbers=st.lists(st.text("0123456789", min_size=10, max_size=10), min_size=1, max_size=20),
)
def test_match_agrees_with_brute_force(prefixes: list[str], numbers: list[str]) -> None:
    blacklist = Blacklist([p + "*" for p in prefixes])
    for tail in numbers:
        number = "+91" + tail
        matching = [p for p in prefixes if number.startswith(p)]
        expected = max(matching, key=len) + "*" if matching else None
        assert blacklist.match(number) == expected


def test_a_big_blacklist_does_not_evict_the_hot_number_cache() -> None:
    from legato.core.policy import permissions

    before = permissions._facts.cache_info()
    Blacklist([f"+91981100{i:04d}" for i in range(500)])
    after = permissions._facts.cache_info()
    assert (after.hits, after.misses, after.currsize) == (
        before.hits,
        before.misses,
        before.currsize,
    )

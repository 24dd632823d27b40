"""The pure DND decision (core): masks, categories, transactional policy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legato.core.policy.dnd import (
    ALL_CATEGORIES,
    FULLY_BLOCKED,
    DndLookup,
    InMemoryDnd,
    TransactionalPolicy,
    blocks,
    categories_of,
    is_fully_blocked,
    mask_of,
)

ALLOW, BLOCK = TransactionalPolicy.ALLOW, TransactionalPolicy.BLOCK


def test_masks_round_trip_categories() -> None:
    assert mask_of([1, 3, 7]) == 0b1000101
    assert categories_of(mask_of([7, 1, 3])) == (1, 3, 7)
    assert mask_of(None) == FULLY_BLOCKED
    assert mask_of([0]) == FULLY_BLOCKED
    assert categories_of(FULLY_BLOCKED) == (1, 2, 3, 4, 5, 6, 7)
    assert is_fully_blocked(FULLY_BLOCKED)
    assert not is_fully_blocked(mask_of(range(1, 8)))  # all seven chosen is not "fully"
    assert mask_of(range(1, 8)) == ALL_CATEGORIES


@pytest.mark.parametrize("bad", [8, -1, True, "3"])
def test_category_out_of_range_is_rejected_naming_the_rule(bad: object) -> None:
    with pytest.raises(ValueError, match="category must be an integer from 1 to 7"):
        blocks(FULLY_BLOCKED, bad, False, ALLOW)  # type: ignore[arg-type]


def test_empty_registration_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one category"):
        mask_of([])


def test_transactional_and_category_together_is_an_error() -> None:
    with pytest.raises(ValueError, match="not both"):
        blocks(FULLY_BLOCKED, 2, True, ALLOW)


def test_decision_table() -> None:
    partial = mask_of([2, 5])
    # not registered: never DND
    assert not blocks(None, None, False, BLOCK)
    assert not blocks(None, 3, False, BLOCK)
    assert not blocks(None, None, True, BLOCK)
    # fully blocked: every promotional call, transactional per policy
    assert all(blocks(FULLY_BLOCKED, c, False, ALLOW) for c in range(1, 8))
    assert blocks(FULLY_BLOCKED, None, False, ALLOW)
    assert not blocks(FULLY_BLOCKED, None, True, ALLOW)
    assert blocks(FULLY_BLOCKED, None, True, BLOCK)
    # partial: only its categories; uncategorised promotional calls are blocked
    assert [c for c in range(1, 8) if blocks(partial, c, False, ALLOW)] == [2, 5]
    assert blocks(partial, None, False, ALLOW)
    assert not blocks(partial, None, True, ALLOW)
    assert blocks(partial, None, True, BLOCK)


@given(
    registered=st.dictionaries(
        st.integers(10**9, 10**10).map(lambda n: f"+91{n}"),
        st.none() | st.frozensets(st.integers(1, 7), min_size=1),
        max_size=30,
    ),
    probe=st.integers(10**9, 10**10).map(lambda n: f"+91{n}"),
    category=st.none() | st.integers(1, 7),
    transactional=st.booleans(),
    policy=st.sampled_from(TransactionalPolicy),
)
def test_in_memory_registry_follows_the_ncpr_rule(
    registered: dict[str, frozenset[int] | None],
    probe: str,
    category: int | None,
    transactional: bool,
    policy: TransactionalPolicy,
) -> None:
    if transactional:
        category = None
    lookup: DndLookup = InMemoryDnd(registered, transactional_policy=policy)
    for number in [*registered, probe]:
        if number not in registered:
            expected = False
        elif transactional:
            expected = policy is BLOCK
        elif category is None:
            expected = True
        else:
            chosen = registered[number]
            expected = chosen is None or category in chosen
        assert lookup.is_dnd(number, category, transactional) is expected


def test_scenario_list_blocks_fully_and_views_share_data() -> None:
    dnd = InMemoryDnd(["+919811000002"])
    assert dnd.is_dnd("+919811000002", 4)
    assert not dnd.is_dnd("+919811000003")
    assert not dnd.is_dnd("+919811000002", transactional=True)
    assert dnd.with_policy(BLOCK).is_dnd("+919811000002", transactional=True)
    assert len(dnd) == 1 and "+919811000002" in dnd


@pytest.mark.parametrize(
    "bad", ["919811000002", "+91981", "+9198110000020000", "+91 9811", "", "+0919811000002"]
)
def test_malformed_numbers_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match=r"'\+' followed by 8 to 15 digits"):
        InMemoryDnd([bad])
    with pytest.raises(ValueError, match=r"'\+' followed by 8 to 15 digits"):
        InMemoryDnd().is_dnd(bad)

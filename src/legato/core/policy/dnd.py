"""Do-Not-Disturb decisions, modelled on India's NCPR (DESIGN section 4).

A subscriber registers either *fully blocked* or a subset of the seven preference
categories (1 banking/insurance/finance, 2 real estate, 3 education, 4 health,
5 consumer goods and automobiles, 6 communication/broadcasting/entertainment/IT,
7 tourism and leisure). A call is either promotional, optionally carrying one category,
or transactional; how a transactional call is treated is the account's choice
(:class:`TransactionalPolicy`).

Registrations are kept as one small integer per number (a *mask*): bit ``c - 1`` set means
category ``c`` is blocked; ``FULLY_BLOCKED`` adds bit 7 on top of all seven categories.
Every registry implementation (scenario lists, the stored registry, the in-memory index)
answers through :func:`blocks`, so the rule lives in exactly one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Protocol

CATEGORIES = range(1, 8)
"""The NCPR preference categories a promotional call may carry."""

ALL_CATEGORIES = 0x7F
FULLY_BLOCKED = 0x80 | ALL_CATEGORIES
"""Mask of a subscriber who blocks everything (NCPR preference 0)."""

MIN_DIGITS = 8
MAX_DIGITS = 15


class TransactionalPolicy(StrEnum):
    """How an account treats its transactional calls when scrubbing DND.

    ``allow`` follows TRAI's exemption (transactional calls reach DND subscribers);
    ``block`` scrubs them like an uncategorised promotional call.
    """

    ALLOW = "allow"
    BLOCK = "block"


class DndLookup(Protocol):
    """Anything that can say whether a call to ``number`` is blocked by DND."""

    def is_dnd(self, number: str, category: int | None = None, transactional: bool = False) -> bool:
        """True when the registry forbids this call to ``number`` (E.164, ``+`` and digits)."""
        ...


def check_category(category: int | None) -> None:
    """Reject a category outside 1..7 with an error naming the rule."""
    if category is not None and (
        isinstance(category, bool) or not isinstance(category, int) or category not in CATEGORIES
    ):
        raise ValueError(f"category must be an integer from 1 to 7, got {category!r}")


def mask_of(categories: Iterable[int] | None) -> int:
    """The mask for a registration; ``None`` (or a 0 among them) means fully blocked."""
    if categories is None:
        return FULLY_BLOCKED
    mask = 0
    for category in categories:
        if category == 0:
            return FULLY_BLOCKED
        check_category(category)
        mask |= 1 << (category - 1)
    if mask == 0:
        raise ValueError("a DND registration blocks at least one category (or 0 for all)")
    return mask


def categories_of(mask: int) -> tuple[int, ...]:
    """The blocked categories of a mask, ascending (all seven when fully blocked)."""
    return tuple(c for c in CATEGORIES if mask & (1 << (c - 1)))


def is_fully_blocked(mask: int) -> bool:
    """True for a subscriber registered as fully blocked."""
    return mask & FULLY_BLOCKED == FULLY_BLOCKED


def blocks(
    mask: int | None,
    category: int | None,
    transactional: bool,
    policy: TransactionalPolicy,
) -> bool:
    """Decide one call against one registration (``mask`` None or 0: not registered).

    - transactional: blocked only when the account's policy is ``block`` and the number is
      registered in any form;
    - promotional with a category: blocked when that category is blocked;
    - promotional without a category: blocked when the number is registered at all, since
      nothing shows the call falls outside the subscriber's blocked categories.
    """
    check_category(category)
    if transactional and category is not None:
        raise ValueError("a call is either transactional or carries a category, not both")
    if not mask:
        return False
    if transactional:
        return policy is TransactionalPolicy.BLOCK
    if category is None:
        return True
    return bool(mask & (1 << (category - 1)))


def check_number(number: str) -> str:
    """Return ``number`` when it is ``+`` then 8 to 15 digits, else raise naming the rule.

    This is the registry's key format, not full E.164 validation: numbers reaching the
    registry were validated with ``phonenumbers`` at the API edge.
    """
    digits = number[1:]
    if not (
        number.startswith("+")
        and digits.isascii()
        and digits.isdigit()
        and not digits.startswith("0")
        and MIN_DIGITS <= len(digits) <= MAX_DIGITS
    ):
        raise ValueError(
            f"number must be '+' followed by {MIN_DIGITS} to {MAX_DIGITS} digits "
            f"(the first not 0), got {number!r}"
        )
    return number


class InMemoryDnd:
    """A small registry held in a dict, used by scenario files' ``dnd:`` lists and tests."""

    __slots__ = ("_masks", "transactional_policy")

    def __init__(
        self,
        entries: Iterable[str] | Mapping[str, Iterable[int] | None] = (),
        transactional_policy: TransactionalPolicy = TransactionalPolicy.ALLOW,
    ) -> None:
        """``entries``: numbers (fully blocked) or a map number → categories (None = all)."""
        self._masks: dict[str, int] = {}
        self.transactional_policy = transactional_policy
        if isinstance(entries, Mapping):
            for number, categories in entries.items():
                self._masks[check_number(number)] = mask_of(categories)
        else:
            for number in entries:
                self._masks[check_number(number)] = FULLY_BLOCKED

    def __len__(self) -> int:
        return len(self._masks)

    def __contains__(self, number: object) -> bool:
        return number in self._masks

    def mask(self, number: str) -> int | None:
        """The registration mask of ``number``, None when it is not registered."""
        return self._masks.get(check_number(number))

    def with_policy(self, policy: TransactionalPolicy) -> InMemoryDnd:
        """A view of the same registrations for an account with another policy."""
        view = InMemoryDnd.__new__(InMemoryDnd)
        view._masks = self._masks
        view.transactional_policy = policy
        return view

    def is_dnd(self, number: str, category: int | None = None, transactional: bool = False) -> bool:
        """See :class:`DndLookup`."""
        return blocks(self.mask(number), category, transactional, self.transactional_policy)

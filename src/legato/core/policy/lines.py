"""Line allocation (MAX-USE): how many calls a Legato number carries at once.

The core only names the interface; implementations live in ``legato.lines`` (an exact
in-process counter for one node, a Redis one shared by a cluster). A line is held by a
call id, so a retried acquire or a repeated release is harmless, and a release by the
wrong call cannot free somebody else's line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable


@runtime_checkable
class LineCounter(Protocol):
    """Counts the lines in use per number; ``limit`` None means no limit."""

    def acquire(self, number: str, limit: int | None, call_id: str) -> bool:
        """Take a line for ``call_id`` unless ``limit`` lines are in use (True = taken).

        Acquiring again for a call that already holds a line on ``number`` returns True
        without taking a second one.
        """
        ...

    def release(self, number: str, call_id: str) -> None:
        """Give back ``call_id``'s line; a no-op if it holds none (idempotent)."""
        ...

    def in_use(self, number: str) -> int:
        """Lines currently held on ``number``."""
        ...


def check_limit(limit: int | None) -> None:
    """A limit is None (no limit) or an integer >= 0; anything else is a caller's bug."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"lines: limit must be an integer >= 0 or None, not {limit!r}")


@contextmanager
def held_line(counter: LineCounter, number: str, limit: int | None, call_id: str) -> Iterator[bool]:
    """Hold a line for the body of a ``with`` block and release it on every way out.

    Yields whether the line was taken; when it was not, nothing is released on exit.
    """
    taken = counter.acquire(number, limit, call_id)
    try:
        yield taken
    finally:
        if taken:
            counter.release(number, call_id)

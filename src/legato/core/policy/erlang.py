"""The Erlang-B formula: the blocking probability of N lines offered E erlangs.

Used to check that line allocation (MAX-USE) blocks exactly as much Poisson traffic as
theory says, and by an operator to size the lines of a number.
"""

from __future__ import annotations

import math


def erlang_b(traffic: float, lines: int) -> float:
    """Blocking probability for ``traffic`` erlangs offered to ``lines`` servers.

    Uses the recurrence B(E, 0) = 1, B(E, m) = E·B / (m + E·B): no factorials or powers,
    so it neither overflows nor loses precision for thousands of lines.
    """
    if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
        raise ValueError(f"lines must be an integer >= 0, not {lines!r}")
    if not math.isfinite(traffic) or traffic < 0:
        raise ValueError(f"traffic must be a finite number of erlangs >= 0, not {traffic!r}")
    blocking = 1.0
    for m in range(1, lines + 1):
        blocking = traffic * blocking / (m + traffic * blocking)
    return blocking


def lines_for(traffic: float, target_blocking: float) -> int:
    """The fewest lines that keep blocking at or below ``target_blocking``."""
    if not 0 < target_blocking <= 1:
        raise ValueError(f"target_blocking must be in (0, 1], not {target_blocking!r}")
    if not math.isfinite(traffic) or traffic < 0:
        raise ValueError(f"traffic must be a finite number of erlangs >= 0, not {traffic!r}")
    blocking, lines = 1.0, 0
    while blocking > target_blocking:
        lines += 1
        blocking = traffic * blocking / (lines + traffic * blocking)
    return lines

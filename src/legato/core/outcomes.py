"""The normalised outcome of one leg attempt (DESIGN section 3)."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """How one dial attempt ended, whatever the signalling said."""

    ANSWERED = "ANSWERED"
    BUSY = "BUSY"
    NOANSWER = "NOANSWER"
    CHANUNAVAIL = "CHANUNAVAIL"
    CONGESTION = "CONGESTION"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_failure(self) -> bool:
        """A failure to connect: neither answered, busy, unanswered nor cancelled."""
        return self in _FAILURES


_FAILURES = frozenset({Outcome.CHANUNAVAIL, Outcome.CONGESTION, Outcome.FAILED})

#: When several agents ring at once and none answers, the dial step's outcome is the
#: first of these present among the attempts (DESIGN section 3).
PARALLEL_PRECEDENCE: tuple[Outcome, ...] = (
    Outcome.BUSY,
    Outcome.NOANSWER,
    Outcome.CONGESTION,
    Outcome.CHANUNAVAIL,
    Outcome.FAILED,
)


def parallel_outcome(outcomes: list[Outcome]) -> Outcome:
    """The outcome of a parallel dial step from its attempts' outcomes."""
    if Outcome.ANSWERED in outcomes:
        return Outcome.ANSWERED
    for candidate in PARALLEL_PRECEDENCE:
        if candidate in outcomes:
            return candidate
    return Outcome.FAILED

"""A delivery reserved by a worker, with what sending it needs (claimed by the worker's
query, or leased by the writer's transaction and handed over)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery reserved by this worker, with what sending it needs."""

    delivery_id: int
    call_id: str
    endpoint_id: str
    kind: str
    url: str
    event_id: str
    body: bytes
    keys: tuple[bytes, ...]
    attempts: int
    #: time.monotonic() just before the lease was taken: the lease runs from there.
    leased_at: float
    #: Leased by the writer's transaction and handed over (not claimed by a query).
    handed_over: bool = False

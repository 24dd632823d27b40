"""Delivery settings, read from the environment so `legato serve` needs no new flags."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, fields


class SettingsError(ValueError):
    """A LEGATO_WEBHOOK_* variable is not a valid value."""


#: Settings where 0 means "never" or "at once" rather than a mistake.
_ZERO_ALLOWED = ("disable_after", "disable_after_seconds", "rotation_overlap")


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """How the delivery worker sends. Each field reads `LEGATO_WEBHOOK_<FIELD>`."""

    #: Seconds an attempt may take, connection to last byte.
    timeout: float = 10.0
    #: Attempts per delivery before it is given up (state `failed`).
    max_attempts: int = 15
    #: First retry delay; each retry doubles it, up to `backoff_max`, with jitter.
    backoff_base: float = 2.0
    backoff_max: float = 3600.0
    #: Consecutive failed attempts after which an endpoint is disabled (0: never) ...
    disable_after: int = 100
    #: ... once that run of failures has also lasted this long (0: at once), so that an
    #: outage of a few hours under load never needs the account to enable it again.
    disable_after_seconds: float = 86400.0
    #: Deliveries in flight at once, per worker.
    concurrency: int = 256
    #: How long a claimed delivery stays reserved to its worker (must exceed `timeout`).
    lease: float = 60.0
    #: How often the worker looks for due retries and other nodes' events.
    poll_interval: float = 1.0
    #: Seconds the previous secret keeps signing after a rotation (default 24 h).
    rotation_overlap: float = 86400.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            zero_allowed = f.name in _ZERO_ALLOWED
            if value < 0 or (value == 0 and not zero_allowed):
                rule = ">= 0" if zero_allowed else "> 0"
                raise SettingsError(
                    f"LEGATO_WEBHOOK_{f.name.upper()}: must be {rule}, not {value}")
        if self.lease <= self.timeout:
            raise SettingsError(
                f"LEGATO_WEBHOOK_LEASE ({self.lease}) must exceed LEGATO_WEBHOOK_TIMEOUT "
                f"({self.timeout}), or a slow attempt could be sent twice"
            )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> WebhookSettings:
        env = dict(os.environ if env is None else env)
        values: dict[str, float | int] = {}
        for f in fields(cls):
            raw = env.get(f"LEGATO_WEBHOOK_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            kind = int if f.type in ("int", int) else float
            try:
                values[f.name] = kind(raw)
            except ValueError:
                what = "an integer" if kind is int else "a number"
                raise SettingsError(
                    f"LEGATO_WEBHOOK_{f.name.upper()}: {raw!r} is not {what}"
                ) from None
        return cls(**values)  # type: ignore[arg-type]

    def backoff(self, attempts: int, rng: random.Random | None = None) -> float:
        """Delay before the next attempt after `attempts` failures: exponential, capped,
        with "equal jitter" (half fixed, half random) so retries of many deliveries spread
        out without ever retrying at once."""
        doublings = min(max(0, attempts - 1), 64)  # 2.0 ** 1024 would overflow
        delay = min(self.backoff_max, self.backoff_base * 2.0**doublings)
        return delay / 2 + (rng or random).uniform(0, delay / 2)

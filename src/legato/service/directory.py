"""Which account owns each Legato number, held in memory for routing incoming calls.

An INVITE must be routed without a database round trip on the SIP path, so `legato
serve` keeps the numbers (and their owners' settings) in memory and reloads them when the
store says they changed: a cheap fingerprint (count and latest change of the numbers,
the accounts' settings) is read every few seconds, and the API says so at once when it
changes a number. A number's effective configuration (account defaults merged, validated)
is built on its first call and kept until the number changes.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select

from legato.core.config import NumberConfig
from legato.service.orders import effective_config
from legato.store.db import Database
from legato.store.models import Account, Number

log = logging.getLogger("legato.service")


class BadNumberConfig(ValueError):
    """A stored number's configuration no longer validates; the message says where."""


@dataclass(slots=True)
class Entry:
    """One Legato number: its owner and its stored configuration."""

    account_id: str
    raw: dict[str, Any]
    config: NumberConfig | None = None  # effective configuration, built on first use


class NumberDirectory:
    """The numbers of every account (`config` is what the SIP driver's `number_lookup` reads)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._entries: dict[str, Entry] = {}
        self._settings: dict[str, dict[str, Any]] = {}
        self._fingerprint: object = None
        self._lock = threading.Lock()  # refresh runs in a worker thread

    def refresh(self, force: bool = False) -> bool:
        """Reload from the store when it changed (or ``force``); True when reloaded."""
        with self.database.session() as session:
            count, latest = session.execute(
                select(func.count(Number.id), func.max(Number.updated_at))
            ).one()
            settings = {
                account_id: dict(value or {})
                for account_id, value in session.execute(select(Account.id, Account.settings))
            }
            fingerprint = (count, latest, json.dumps(settings, sort_keys=True, default=str))
            if not force and fingerprint == self._fingerprint:
                return False
            rows = session.execute(select(Number.number, Number.account_id, Number.config)).all()
        entries = {number: Entry(account, dict(config or {})) for number, account, config in rows}
        with self._lock:
            self._entries, self._settings, self._fingerprint = entries, settings, fingerprint
        return True

    def __len__(self) -> int:
        return len(self._entries)

    def numbers(self) -> list[str]:
        """Every Legato number, sorted."""
        return sorted(self._entries)

    def account_of(self, number: str) -> str | None:
        entry = self._entries.get(number)
        return None if entry is None else entry.account_id

    def config(self, number: str) -> NumberConfig | None:
        """The number's effective configuration; None for a number nobody owns.
        Raises `BadNumberConfig` when what is stored does not validate any more."""
        entry = self._entries.get(number)
        if entry is None:
            return None
        if entry.config is None:
            try:
                entry.config = effective_config(
                    entry.raw, {}, self._settings.get(entry.account_id)
                )
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "config"
                raise BadNumberConfig(f"number {number}: {where}: {first['msg']}") from exc
        return entry.config

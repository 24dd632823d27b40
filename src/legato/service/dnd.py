"""The stored national DND registry for live calls, as an in-memory index.

Admission runs inside the event loop, so it must not query the database: the runtime
keeps the `legato dnd import`-ed registry as a `DndIndex` (microsecond lookups), loads it
in a thread at start and reloads it when the registry switches version.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from legato.core.config import NumberConfig
from legato.core.policy.dnd import DndLookup, InMemoryDnd
from legato.dnd import DndIndex, DndRegistry

log = logging.getLogger("legato.service")


class _Either:
    """DND when either the national registry or the number's own `dnd` list says so."""

    __slots__ = ("lookups",)

    def __init__(self, *lookups: DndLookup) -> None:
        self.lookups = lookups

    def is_dnd(self, number: str, category: int | None = None, transactional: bool = False) -> bool:
        return any(lk.is_dnd(number, category, transactional) for lk in self.lookups)


class DndSource:
    """The current registry version, or None before the first import."""

    def __init__(self, engine: Engine) -> None:
        self.registry = DndRegistry(engine)
        self.index: DndIndex | None = None

    def refresh(self) -> bool:
        """Reload the index if the registry changed (blocking: run it in a thread)."""
        current = self.registry.current()
        if current is None:
            changed, self.index = self.index is not None, None
            return changed
        if self.index is not None and not self.index.is_stale(self.registry):
            return False
        self.index = DndIndex.load(self.registry)
        log.info("DND registry version %d loaded: %d numbers", self.index.version, len(self.index))
        return True

    def lookup_for(self, config: NumberConfig) -> DndLookup | None:
        """What admission checks for a number with `config`; None: the config's own list."""
        index = self.index
        if index is None:
            return None
        return _Either(index, InMemoryDnd(config.dnd)) if config.dnd else index

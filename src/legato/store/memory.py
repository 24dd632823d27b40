"""What a process remembers of the store for a few seconds, on hot paths.

A `Memory` holds values read from the store, each for `seconds`. Writes of the watched
models through this process's ORM sessions forget everything at once and again after
their commit (a reader in between may have remembered what the store still showed); a
read that saw a change start is not kept. Changes made by other processes (the CLI
against a running server), or by bulk Core statements, apply within `seconds`, unless
their writer calls `forget()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session, object_session

K = TypeVar("K")
V = TypeVar("V")


class Memory(Generic[K, V]):
    def __init__(self, name: str, seconds: float, *models: type[Any], limit: int = 10_000):
        self.name = name
        self.seconds = seconds
        self.limit = limit
        self._values: dict[K, tuple[V, float]] = {}
        #: Bumped by every change: a read that saw another generation start is not kept.
        self._generation = 0
        self._commit_key = f"legato.forget.{name}"
        for model in models:
            for kind in ("after_insert", "after_update", "after_delete"):
                event.listen(model, kind, self._changed)

    def get(self, key: K) -> V | None:
        """The value remembered for `key`, if still fresh."""
        known = self._values.get(key)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        return None

    def read(self, key: K, load: Callable[[], V]) -> V:
        """The remembered value, else `load()`'s, kept unless a change began meanwhile."""
        found = self.get(key)
        if found is not None:
            return found
        return self.read_many(lambda: {key: load()})[key]

    def read_many(self, load: Callable[[], dict[K, V]]) -> dict[K, V]:
        """`load()`'s values, each kept unless a change began meanwhile."""
        generation = self._generation
        values = load()
        if generation == self._generation:
            if len(self._values) + len(values) > self.limit:
                self._values.clear()
            expires = time.monotonic() + self.seconds
            self._values.update((k, (v, expires)) for k, v in values.items())
        return values

    def drop(self, key: K) -> None:
        self._values.pop(key, None)

    def forget(self, *_: Any) -> None:
        """Drop everything: the next reads ask the store."""
        self._generation += 1
        self._values.clear()

    def forget_after_commit(self, session: Session) -> None:
        """Forget now and once `session` commits."""
        self.forget()
        if not session.info.get(self._commit_key):
            session.info[self._commit_key] = True
            event.listen(session, "after_commit", self._after_commit, once=True)

    def _changed(self, _mapper: Any, _connection: Any, target: Any) -> None:
        session = object_session(target)
        if session is None:
            self.forget()
        else:
            self.forget_after_commit(session)

    def _after_commit(self, session: Session) -> None:
        session.info.pop(self._commit_key, None)
        self.forget()

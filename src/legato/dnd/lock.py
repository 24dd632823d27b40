"""One writer at a time per registry, released by the OS if the writer dies.

A killed import must not leave a lock behind, so the lock is tied to the process:
PostgreSQL's session advisory lock (gone with the connection) or an ``flock`` on a file
beside the SQLite database (gone with the file descriptor).
"""

from __future__ import annotations

import fcntl
import os
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

_ADVISORY_KEY = zlib.crc32(b"legato.dnd.registry")
_MEMORY_LOCK = threading.Lock()


@contextmanager
def writer_lock(engine: Engine) -> Iterator[None]:
    """Hold the registry's writer lock for the duration of the block (blocking)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _ADVISORY_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_KEY})
                conn.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        with _MEMORY_LOCK:
            yield
        return
    fd = os.open(f"{database}.dnd-lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)

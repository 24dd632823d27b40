"""A server's SQLite store is checkpointed by a background thread, never in a commit."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text

from legato.store.db import Database


def test_commits_do_not_checkpoint_and_the_thread_does(tmp_path: Path) -> None:
    path = tmp_path / "legato.db"
    database = Database(f"sqlite:///{path}")
    checkpointer = database.checkpoint_in_background(every=0.2)
    assert checkpointer is not None
    try:
        with database.engine.begin() as conn:
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
            conn.execute(text("CREATE TABLE t (x TEXT)"))
        before = path.stat().st_size
        with database.engine.begin() as conn:  # ~300 pages: only the WAL grows at commit
            conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": "y" * 400}] * 3000)
        assert path.stat().st_size == before
        deadline = time.monotonic() + 10
        while path.stat().st_size == before:  # the thread copies them into the file
            assert time.monotonic() < deadline, "no checkpoint within 10 s"
            time.sleep(0.05)
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 3000
    finally:
        checkpointer.stop()
        database.dispose()


def test_only_sqlite_files_get_a_checkpointer(tmp_path: Path) -> None:
    memory = Database("sqlite://")
    assert memory.checkpoint_in_background() is None
    memory.dispose()
    uri = Database(f"sqlite:///file:{tmp_path / 'u.db'}?mode=rwc&uri=true")
    assert uri.checkpoint_in_background() is None  # SQLite's defaults for URI filenames
    uri.dispose()


def test_the_log_restarts_while_writers_keep_writing(tmp_path: Path) -> None:
    """A checkpoint beside running writers never completes (they keep appending) and the
    log grew without bound; a round finishes holding the write gate, so it completes and
    the next writer reuses the log from its start."""
    path = tmp_path / "legato.db"
    database = Database(f"sqlite:///{path}")
    checkpointer = database.checkpoint_in_background(every=3600)  # rounds run by hand
    assert checkpointer is not None
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            with database.engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": "z" * 4000}] * 10)

    writer = threading.Thread(target=write)
    own = sqlite3.connect(path)
    try:
        writer.start()
        time.sleep(0.5)
        busy, frames, done = checkpointer.checkpoint(own)
        assert busy == 0 and frames == done > 0  # complete, with the writer running
        time.sleep(0.05)
        after = own.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        assert after < frames / 2, (after, frames)  # the log started over
    finally:
        stop.set()
        writer.join()
        own.close()
        checkpointer.stop()
        database.dispose()

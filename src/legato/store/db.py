"""Opening a store: which URL, engine settings per backend, and schema upgrades."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

#: Used when neither `--db` nor `LEGATO_DB` is given: a file in the working directory.
DEFAULT_DB_URL = "sqlite:///legato.db"
ENV_VAR = "LEGATO_DB"
MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger("legato.store")


class StoreError(Exception):
    """The store cannot be opened or upgraded (bad URL, unreachable server, ...)."""


def resolve_db_url(url: str | None) -> str:
    """The database URL: the explicit one, else `LEGATO_DB`, else the SQLite default."""
    chosen = url or os.environ.get(ENV_VAR) or DEFAULT_DB_URL
    try:
        parsed = make_url(chosen)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse text
        raise StoreError(f"invalid database URL {chosen!r}: {exc}") from exc
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite:///FILE "
            "or postgresql+psycopg://USER@HOST/DB"
        )
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # psycopg 3 is the driver we install; plain postgresql:// would look for psycopg2.
        chosen = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return chosen


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL lets readers run while the runtime writes; foreign keys are off by default."""
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


#: Statements that take SQLite's write lock until the transaction ends.
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


class SqliteWriteGate:
    """One write transaction at a time in this process, queued on a Python lock.

    SQLite has one writer; a second one waits in SQLite's busy handler, which sleeps in
    growing steps (up to 100 ms) instead of waking when the lock frees. With API requests,
    the runtime's writer and webhook delivery all writing, throughput collapsed under
    load. The gate is taken at a transaction's first write and released after its commit
    or rollback, so waiting writers wake at once. Other processes (the CLI) still meet
    SQLite's busy timeout.
    """

    def __init__(self, engine: Engine, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._holder: int | None = None  # id() of the DBAPI connection holding the gate
        event.listen(engine, "before_cursor_execute", self._before_execute)
        dialect = engine.dialect
        commit, rollback = dialect.do_commit, dialect.do_rollback

        def do_commit(connection: Any) -> None:
            try:
                commit(connection)
            finally:
                self._release(connection)

        def do_rollback(connection: Any) -> None:
            try:
                rollback(connection)
            finally:
                self._release(connection)

        dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]
        dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]
        event.listen(engine.pool, "close", lambda conn, _rec: self._release(conn))
        event.listen(engine.pool, "invalidate", lambda conn, _rec, _exc: self._release(conn))

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the gate outside any transaction (no writer of this process runs)."""
        if not self._lock.acquire(timeout=self.timeout):
            raise StoreError(f"the store was busy writing for more than {self.timeout:.0f} s")
        try:
            yield
        finally:
            self._lock.release()

    def _before_execute(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        key = id(conn.connection.dbapi_connection)
        if self._holder == key or not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        if not self._lock.acquire(timeout=self.timeout):
            raise StoreError(f"the store was busy writing for more than {self.timeout:.0f} s")
        self._holder = key

    def _release(self, connection: Any) -> None:
        raw = getattr(connection, "dbapi_connection", connection)
        if self._holder is not None and self._holder == id(raw):
            self._holder = None
            self._lock.release()


#: What a restarted write-ahead log is truncated to (bytes).
WAL_SIZE_LIMIT = 16 * 1024 * 1024


class WalCheckpointer:
    """Checkpoints a SQLite store's write-ahead log in a background thread, not in commits.

    By default SQLite checkpoints in the commit that takes the log past 1,000 pages: that
    commit copies the pages back and fsyncs the database file while it still holds the
    write lock (and the store's write gate), so every writer waits. Measured under
    `legato serve` at 200 calls/s: commits of 100-240 ms, each a latency spike for every
    call ending then. Here the engine's connections never checkpoint on commit; every
    `every` seconds a thread, on its own connection, copies the log back with a PASSIVE
    checkpoint (it neither waits for nor blocks readers and writers), then finishes it
    holding the write gate: only the pages written meanwhile are left, and a RESTART
    checkpoint (readers of the old log get 50 ms) makes the next writer start the log
    over. PASSIVE checkpoints alone never complete while writers keep appending: the log
    grew without bound (144 MB in 20 s). Other processes on the file (the CLI)
    keep SQLite's default.
    """

    def __init__(self, engine: Engine, gate: SqliteWriteGate, every: float = 1.0) -> None:
        self.path = engine.url.database or ""
        self.gate = gate
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        event.listen(engine, "connect", self._server_pragmas)

    @staticmethod
    def _server_pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")
        # A log that grew while a checkpoint could not finish shrinks back at its restart.
        dbapi_conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="legato-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """One round: (busy, log frames, frames checkpointed) of its finishing step."""
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        with self.gate.held():  # RESTART: readers of the old log get 50 ms to finish
            row = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def _run(self) -> None:
        # A short busy timeout: a round that meets another process's writer is skipped.
        conn = sqlite3.connect(self.path, timeout=0.05, check_same_thread=False)
        try:
            while not self._stop.wait(self.every):
                try:
                    self.checkpoint(conn)
                except (sqlite3.Error, StoreError):  # busy or gone: the next round retries
                    log.debug("WAL checkpoint failed", exc_info=True)
        finally:
            conn.close()


def _json_text(value: Any) -> str:
    """JSON columns (call records, journals, event bodies) as text, by orjson: the writer
    encodes every running call's record and journal, and the standard library's encoder
    was 7% of the server's CPU under load."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


#: Engine options every backend shares.
_JSON = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


#: The write gate of each SQLite engine this process made.
_gates: weakref.WeakKeyDictionary[Engine, SqliteWriteGate] = weakref.WeakKeyDictionary()


def make_engine(url: str) -> Engine:
    """An engine tuned for the backend of `url`."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False}, **_JSON)
        event.listen(engine, "connect", _sqlite_pragmas)
        _gates[engine] = SqliteWriteGate(engine)
    else:
        engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, **_JSON)
    # Bulk INSERTs as multi-row VALUES statements, not one step per row: on SQLite every
    # step gives up the GIL (and a busy loop thread keeps it up to 5 ms) while the write
    # lock is held; on PostgreSQL each batch is one round trip.
    engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration that needs no alembic.ini: everything ships in the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    cfg.attributes["engine"] = engine
    return cfg


class Database:
    """One store: an engine, a session factory, and its migrations."""

    def __init__(self, url: str | None = None) -> None:
        self.url = resolve_db_url(url)
        self.engine = make_engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def checkpoint_in_background(self, every: float = 1.0) -> WalCheckpointer | None:
        """For a long-running server on a SQLite file: the WAL is checkpointed by a
        thread (started here; `stop()` it), not by whichever commit crosses the limit.
        Call before the first connection. None on other stores."""
        if self.backend != "sqlite" or not self.engine.url.database:
            return None
        if self.engine.url.database == ":memory:" or self.engine.url.query.get("uri"):
            return None  # (a URI filename is the engine's to open; it keeps the default)
        checkpointer = WalCheckpointer(self.engine, _gates[self.engine], every)
        checkpointer.start()
        return checkpointer

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.url.get_backend_name()

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to `revision` (idempotent; run on every `legato serve`)."""
        try:
            command.upgrade(alembic_config(self.engine), revision)
        except Exception as exc:
            raise StoreError(f"cannot upgrade {self.safe_url}: {exc}") from exc

    def downgrade(self, revision: str) -> None:
        """Take the schema back to `revision`."""
        command.downgrade(alembic_config(self.engine), revision)

    def current_revision(self) -> str | None:
        """The revision the database is at, or None when it has never been upgraded."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        """The newest revision shipped with this version of Legato."""
        return ScriptDirectory.from_config(alembic_config(self.engine)).get_current_head()

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

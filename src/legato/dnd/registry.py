"""The stored DND registry: versioned full imports, incremental changes, lookups.

A full import parses and validates the whole file first (nothing is written when it has
more invalid lines than allowed), loads it into a fresh version table, and only then moves
the ``current`` pointer in one transaction; the old version is dropped after the switch.
A killed import leaves a ``loading`` version nobody reads; the next writer marks it
failed and drops its table. Incremental add/remove files change the current version in
one transaction.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from legato.core.policy.dnd import TransactionalPolicy, blocks, check_number
from legato.dnd.load import bulk_load, read_keys
from legato.dnd.lock import writer_lock
from legato.dnd.parse import Keys, ParseReport, read_entries
from legato.dnd.tables import (
    CURRENT_VIEW,
    VersionState,
    ensure_meta,
    point_current_view,
    table_name,
    version_table,
    versions,
)

DEFAULT_URL = "sqlite:///legato.db"
PhaseFn = Callable[[str, int, int], None]
"""Progress callback: (phase, done, total); phases ``read`` (bytes) and ``load`` (rows)."""


class ImportMode(StrEnum):
    """A full replacement, or a change to the current version."""

    REPLACE = "replace"
    ADD = "add"
    REMOVE = "remove"


class ImportRejected(ValueError):
    """The file had more invalid lines than allowed; nothing stored was changed."""

    def __init__(self, report: ParseReport, max_invalid: int) -> None:
        super().__init__(
            f"{report.invalid} invalid line(s), more than the {max_invalid} allowed; "
            "the registry was not changed"
        )
        self.report = report


class NoRegistry(LookupError):
    """No registry version has been imported yet."""


@dataclass(frozen=True)
class VersionInfo:
    """One row of ``dnd_versions``."""

    version: int
    state: str
    numbers: int
    generation: int
    source: str
    created_at: datetime
    switched_at: datetime | None
    updated_at: datetime | None


@dataclass
class ImportResult:
    """What an import or change did."""

    mode: ImportMode
    report: ParseReport
    version: int
    numbers: int
    """Numbers in the current version afterwards."""
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)
    inserted: int = 0
    updated: int = 0
    removed: int = 0
    absent: int = 0


def database_url(db: str | None) -> str:
    """``--db`` if given, else ``LEGATO_DB``, else the default SQLite file."""
    return db or os.environ.get("LEGATO_DB") or DEFAULT_URL


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite waits for the other writers instead of failing."""
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"timeout": 60})
    return create_engine(url, pool_pre_ping=True)


def _now() -> datetime:
    return datetime.now(UTC)


class DndRegistry:
    """The DND registry stored in a SQLite or PostgreSQL database."""

    def __init__(
        self,
        engine: Engine | str,
        transactional_policy: TransactionalPolicy = TransactionalPolicy.ALLOW,
    ) -> None:
        self.engine = make_engine(engine) if isinstance(engine, str) else engine
        self.transactional_policy = transactional_policy
        self._schema_ready = False
        self._local = threading.local()
        self._dbapi_error: type[Exception] = self.engine.dialect.dbapi.Error  # type: ignore[union-attr]
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self._in_memory = self.engine.dialect.name == "sqlite" and (
            self.engine.url.database in (None, "", ":memory:")
        )
        self._mask_sql = f"SELECT categories FROM {CURRENT_VIEW} WHERE number = {mark}"
        self._lookup_sql = (
            f"SELECT v.version, (SELECT c.categories FROM {CURRENT_VIEW} c "
            f"WHERE c.number = {mark}) FROM dnd_versions v WHERE v.state = 'current'"
        )

    # -- reading -----------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Create the meta table if this database has none yet."""
        if not self._schema_ready:
            ensure_meta(self.engine)
            self._schema_ready = True

    def current(self) -> VersionInfo | None:
        """The version lookups answer from, None before the first import."""
        self.ensure_schema()
        with self.engine.connect() as conn:
            return self._current(conn)

    def _current(self, conn: Connection) -> VersionInfo | None:
        row = conn.execute(select(versions).where(versions.c.state == VersionState.CURRENT)).first()
        return VersionInfo(**row._asdict()) if row is not None else None

    def history(self) -> list[VersionInfo]:
        """Every version, newest first."""
        self.ensure_schema()
        with self.engine.connect() as conn:
            rows = conn.execute(select(versions).order_by(versions.c.version.desc())).all()
        return [VersionInfo(**row._asdict()) for row in rows]

    def lookup(self, number: str) -> tuple[int | None, int]:
        """(mask of ``number`` or None, version answered from); raises NoRegistry.

        One statement reads the pointer and the entry, so both come from one snapshot.
        """
        digits = int(check_number(number)[1:])
        row = self._query(self._lookup_sql, digits)
        if row is None:
            raise NoRegistry("no DND registry imported yet: run `legato dnd import FILE`")
        return (int(row[1]) if row[1] is not None else None), int(row[0])

    def mask(self, number: str) -> int | None:
        """Registration mask of ``number`` in the current version (None: not registered)."""
        digits = int(check_number(number)[1:])
        row = self._query(self._mask_sql, digits)
        return int(row[0]) if row is not None else None

    def is_dnd(self, number: str, category: int | None = None, transactional: bool = False) -> bool:
        """See :class:`legato.core.policy.dnd.DndLookup`."""
        return blocks(self.mask(number), category, transactional, self.transactional_policy)

    def _query(self, sql: str, digits: int) -> tuple[Any, ...] | None:
        """Run a point query on this thread's lookup connection (autocommit, kept open).

        The hot path skips SQLAlchemy's per-call checkout and statement handling (about
        4x faster); autocommit keeps no snapshot open that would stall the next switch.
        An in-memory SQLite database exists only on the pool's one connection, so there
        the query goes through the pool.
        """
        if self._in_memory:
            self.ensure_schema()
            with self.engine.connect() as shared:
                try:
                    return tuple(shared.exec_driver_sql(sql, (digits,)).first() or ()) or None
                except DBAPIError as exc:
                    raise NoRegistry(
                        "no DND registry imported yet: run `legato dnd import FILE`"
                    ) from exc
        for attempt in range(2):
            conn = self._lookup_connection()
            try:
                cursor = conn.execute(sql, (digits,))
                row: tuple[Any, ...] | None = cursor.fetchone()
                return row
            except self._dbapi_error as exc:
                self._close_lookup_connection()
                if self.current() is None:
                    raise NoRegistry(
                        "no DND registry imported yet: run `legato dnd import FILE`"
                    ) from exc
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def _lookup_connection(self) -> Any:
        cached: Any = getattr(self._local, "conn", None)
        if cached is not None:
            return cached
        self.ensure_schema()
        proxy = self.engine.raw_connection()
        conn: Any = proxy.driver_connection
        proxy.detach()  # never returned to the pool with autocommit switched on
        if self.engine.dialect.name == "postgresql":
            conn.autocommit = True
        else:
            conn.isolation_level = None
        self._local.conn = conn
        return conn

    def _close_lookup_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with contextlib.suppress(self._dbapi_error):
                conn.close()

    def close(self) -> None:
        """Release this thread's lookup connection and the engine's pool."""
        self._close_lookup_connection()
        self.engine.dispose()

    def read_current_keys(self) -> tuple[Keys, VersionInfo]:
        """All entries of the current version, for building the in-memory index."""
        self.ensure_schema()
        for attempt in range(3):
            with self.engine.connect() as conn:
                info = self._current(conn)
                if info is None:
                    raise NoRegistry("no DND registry imported yet: run `legato dnd import FILE`")
                try:
                    return read_keys(conn, table_name(info.version), info.numbers), info
                except DBAPIError:
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    # -- writing -----------------------------------------------------------------------

    def import_file(
        self,
        path: Path,
        mode: ImportMode = ImportMode.REPLACE,
        *,
        max_invalid: int = 0,
        max_shown: int = 20,
        progress: PhaseFn | None = None,
    ) -> ImportResult:
        """Import ``path`` as a new version (replace) or as a change to the current one."""
        started = time.perf_counter()
        phases: dict[str, float] = {}
        keys, report = read_entries(
            path,
            max_shown=max_shown,
            progress=(lambda done, total: progress("read", done, total)) if progress else None,
        )
        phases["read"] = time.perf_counter() - started
        if report.invalid > max_invalid:
            raise ImportRejected(report, max_invalid)
        self.ensure_schema()
        with writer_lock(self.engine):
            self._abandon_stale_loads()
            current = self.current()
            if mode is ImportMode.REMOVE and current is None:
                raise NoRegistry("no DND registry to remove numbers from: import one first")
            if mode is ImportMode.REPLACE or current is None:
                result = self._replace(path, keys, report, progress, phases)
            else:
                result = self._change(current, mode, keys, report, progress, phases)
        result.seconds = time.perf_counter() - started
        return result

    def _abandon_stale_loads(self) -> None:
        """Under the writer lock any ``loading`` version is from a writer that died."""
        with self.engine.connect() as conn:
            stale = (
                conn.execute(
                    select(versions.c.version).where(versions.c.state == VersionState.LOADING)
                )
                .scalars()
                .all()
            )
            for version in stale:
                conn.execute(text(f"DROP TABLE IF EXISTS {table_name(version)}"))
                conn.execute(
                    update(versions)
                    .where(versions.c.version == version)
                    .values(state=VersionState.FAILED, updated_at=_now())
                )
            conn.commit()

    def _replace(
        self,
        path: Path,
        keys: Keys,
        report: ParseReport,
        progress: PhaseFn | None,
        phases: dict[str, float],
    ) -> ImportResult:
        mark = time.perf_counter()
        with self.engine.connect() as conn:
            version = int(
                conn.execute(  # type: ignore[index]
                    insert(versions).values(
                        state=VersionState.LOADING,
                        numbers=0,
                        generation=0,
                        source=str(path)[:1000],
                        created_at=_now(),
                    )
                ).inserted_primary_key[0]
            )
            conn.commit()
        try:
            self._load_version(version, keys, progress)
        except BaseException:
            self._fail(version)
            raise
        phases["load"] = time.perf_counter() - mark
        mark = time.perf_counter()
        self._switch(version, len(keys))
        phases["switch"] = time.perf_counter() - mark
        return ImportResult(ImportMode.REPLACE, report, version, len(keys), 0.0, phases)

    def _load_version(self, version: int, keys: Keys, progress: PhaseFn | None) -> None:
        name = table_name(version)
        on_rows = (lambda done: progress("load", done, len(keys))) if progress else None
        postgres = self.engine.dialect.name == "postgresql"
        with self.engine.connect() as conn:
            if postgres:
                version_table(version, primary_key=False).create(conn)
                conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
                bulk_load(conn, name, keys, on_rows, commit=False, freeze=True)
                conn.exec_driver_sql(
                    f"ALTER TABLE {name} ADD PRIMARY KEY (number) WITH (fillfactor = 100)"
                )
                conn.commit()
            else:
                # Unsynced batches are safe against a killed process (SQLite's journal
                # still protects the file); the switch commits with a full sync.
                conn.exec_driver_sql("PRAGMA synchronous = OFF")
                conn.exec_driver_sql("PRAGMA cache_size = -262144")
                version_table(version).create(conn)
                conn.commit()
                try:
                    bulk_load(conn, name, keys, on_rows, commit=True)
                    conn.commit()
                finally:
                    conn.exec_driver_sql("PRAGMA synchronous = FULL")

    def _switch(self, version: int, numbers: int) -> None:
        """Move the current pointer to ``version`` in one transaction, then drop the old."""
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA synchronous = FULL")
            now = _now()
            conn.execute(
                update(versions)
                .where(versions.c.state == VersionState.CURRENT)
                .values(state=VersionState.RETIRED, updated_at=now)
            )
            conn.execute(
                update(versions)
                .where(versions.c.version == version)
                .values(
                    state=VersionState.CURRENT, numbers=numbers, switched_at=now, updated_at=now
                )
            )
            point_current_view(conn, version)
            conn.commit()
        self._drop_retired()

    def _drop_retired(self) -> None:
        with self.engine.connect() as conn:
            retired = (
                conn.execute(
                    select(versions.c.version).where(versions.c.state == VersionState.RETIRED)
                )
                .scalars()
                .all()
            )
            for version in retired:
                conn.execute(text(f"DROP TABLE IF EXISTS {table_name(version)}"))
                conn.commit()

    def _fail(self, version: int) -> None:
        """Best effort after an error: drop the partial table and mark the version failed."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text(f"DROP TABLE IF EXISTS {table_name(version)}"))
                conn.execute(
                    update(versions)
                    .where(versions.c.version == version)
                    .values(state=VersionState.FAILED, updated_at=_now())
                )
                conn.commit()
        except DBAPIError:
            pass  # the next writer cleans it up (_abandon_stale_loads)

    def _change(
        self,
        current: VersionInfo,
        mode: ImportMode,
        keys: Keys,
        report: ParseReport,
        progress: PhaseFn | None,
        phases: dict[str, float],
    ) -> ImportResult:
        """Apply an add or remove file to the current version in one transaction."""
        mark = time.perf_counter()
        name = table_name(current.version)
        staging = "dnd_staging"
        on_rows = (lambda done: progress("load", done, len(keys))) if progress else None
        result = ImportResult(mode, report, current.version, current.numbers, 0.0, phases)
        with self.engine.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE TEMPORARY TABLE {staging} "
                "(number BIGINT PRIMARY KEY, categories SMALLINT NOT NULL)"
            )
            try:
                bulk_load(conn, staging, keys, on_rows, commit=False)
                present = int(
                    conn.exec_driver_sql(
                        f"SELECT count(*) FROM {staging} s JOIN {name} t ON t.number = s.number"
                    ).scalar_one()
                )
                if mode is ImportMode.ADD:
                    conn.exec_driver_sql(
                        f"INSERT INTO {name} (number, categories) "
                        f"SELECT number, categories FROM {staging} WHERE true "
                        "ON CONFLICT (number) DO UPDATE SET categories = excluded.categories"
                    )
                    result.inserted, result.updated = len(keys) - present, present
                    result.numbers += result.inserted
                else:
                    conn.exec_driver_sql(
                        f"DELETE FROM {name} WHERE number IN (SELECT number FROM {staging})"
                    )
                    result.removed, result.absent = present, len(keys) - present
                    result.numbers -= result.removed
                conn.execute(
                    update(versions)
                    .where(versions.c.version == current.version)
                    .values(
                        numbers=result.numbers,
                        generation=versions.c.generation + 1,
                        updated_at=_now(),
                    )
                )
                conn.commit()
            finally:
                conn.rollback()
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {staging}")
                conn.commit()
        phases["apply"] = time.perf_counter() - mark
        return result

    def count(self) -> int:
        """Rows actually in the current version (a full scan; for checks and tests)."""
        info = self.current()
        if info is None:
            return 0
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(version_table(info.version))
                ).scalar_one()
            )

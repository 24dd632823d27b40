"""The fastest bulk path each engine has, for packed entries (``digits << 8 | mask``).

PostgreSQL: binary ``COPY ... FROM STDIN`` built with numpy (20 bytes a row, no text
formatting), into a table without a key; the primary key is built afterwards from data
already sorted and unique. SQLite: sorted rows in batches of 1M (unpacked by
``json_each``), one transaction each, into a WITHOUT ROWID table, so the B-tree only
ever appends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import Connection

from legato.dnd.parse import MASK, MASK_BITS, Keys

RowsFn = Callable[[int], None]
"""Called with the number of rows written so far."""

BATCH_ROWS = 1 << 20

_PG_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_PG_TRAILER = b"\xff\xff"
_PG_ROW = np.dtype(
    [("fields", ">i2"), ("len1", ">i4"), ("number", ">i8"), ("len2", ">i4"), ("mask", ">i2")]
)


def _pg_rows(keys: Keys) -> bytes:
    rows = np.empty(len(keys), dtype=_PG_ROW)
    rows["fields"] = 2
    rows["len1"] = 8
    rows["number"] = keys >> MASK_BITS
    rows["len2"] = 2
    rows["mask"] = keys & MASK
    return rows.tobytes()


def copy_postgres(
    conn: Connection, table: str, keys: Keys, progress: RowsFn | None, *, freeze: bool = False
) -> None:
    """Stream ``keys`` into ``table`` with binary COPY inside the connection's transaction.

    ``freeze`` (for a table created in this transaction) writes the rows already frozen,
    so neither the first reads nor anti-wraparound vacuum rewrite a write-once table.
    """
    options = "FORMAT BINARY, FREEZE" if freeze else "FORMAT BINARY"
    driver: Any = conn.connection.driver_connection
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {table} (number, categories) FROM STDIN ({options})") as copy,
    ):
        copy.write(_PG_HEADER)
        for start in range(0, len(keys), BATCH_ROWS):
            copy.write(_pg_rows(keys[start : start + BATCH_ROWS]))
            if progress is not None:
                progress(min(start + BATCH_ROWS, len(keys)))
        copy.write(_PG_TRAILER)


def insert_sqlite(
    conn: Connection, table: str, keys: Keys, progress: RowsFn | None, *, commit: bool
) -> None:
    """Insert ``keys`` a batch per statement; commit each batch when ``commit`` (fresh tables).

    A batch goes in as one JSON array unpacked by SQLite's ``json_each`` (in C), twice as
    fast as ``executemany``, which builds a Python tuple per row.
    """
    driver: Any = conn.connection.driver_connection
    sql = (
        f"INSERT INTO {table} (number, categories) "
        f"SELECT value >> {MASK_BITS}, value & {MASK} FROM json_each(?)"
    )
    for start in range(0, len(keys), BATCH_ROWS):
        part = keys[start : start + BATCH_ROWS]
        driver.execute(sql, (str(part.tolist()),))
        if commit:
            driver.commit()
        if progress is not None:
            progress(min(start + BATCH_ROWS, len(keys)))


def bulk_load(
    conn: Connection,
    table: str,
    keys: Keys,
    progress: RowsFn | None,
    *,
    commit: bool,
    freeze: bool = False,
) -> None:
    """Load ``keys`` into ``table`` by the engine's fastest path."""
    if conn.dialect.name == "postgresql":
        copy_postgres(conn, table, keys, progress, freeze=freeze)
    else:
        insert_sqlite(conn, table, keys, progress, commit=commit)


READ_CHUNK_ROWS = 4 << 20


def read_keys(conn: Connection, table: str, expected: int) -> Keys:
    """Read a whole version table back as sorted packed entries (for the in-memory index).

    The server packs each chunk into one value (PostgreSQL: ``int8send`` bytes, 8 a row;
    SQLite: ``group_concat`` text parsed by numpy), so no Python object is made per row.
    Chunks follow the primary key (keyset pagination) to stay under value size limits.
    """
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        sql = (
            "SELECT string_agg(int8send(number * 256 + categories), ''::bytea), "
            f"max(number), count(*) FROM (SELECT number, categories FROM {table} "
            "WHERE number > :last ORDER BY number LIMIT :rows) s"
        )
    else:
        sql = (
            "SELECT group_concat(number * 256 + categories, ','), max(number), count(*) "
            f"FROM (SELECT number, categories FROM {table} WHERE number > :last "
            "ORDER BY number LIMIT :rows)"
        )
    parts: list[Keys] = []
    last = -1
    while True:
        packed, last_number, rows = conn.exec_driver_sql(
            sql.replace(":last", "%(last)s" if postgres else ":last").replace(
                ":rows", "%(rows)s" if postgres else ":rows"
            ),
            {"last": last, "rows": READ_CHUNK_ROWS},
        ).one()
        if not rows:
            break
        if postgres:
            parts.append(np.frombuffer(packed, dtype=">i8").astype(np.int64))
        else:
            parts.append(np.fromstring(packed, dtype=np.int64, sep=","))
        last = int(last_number)
        if rows < READ_CHUNK_ROWS:
            break
    keys = np.concatenate(parts) if parts else np.empty(0, np.int64)
    keys.sort()
    if len(keys) != expected:
        raise RuntimeError(f"registry table {table} has {len(keys)} rows, expected {expected}")
    return keys

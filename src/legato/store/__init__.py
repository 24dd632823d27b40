"""Persistence adapter: call records, accounts, keys and numbers in SQLite or PostgreSQL.

One SQLAlchemy 2 schema serves both engines; Alembic migrations ship inside the package
(`legato.store.migrations`) so an installed wheel can upgrade any database it is pointed at.
"""

from legato.store.db import Database, resolve_db_url

__all__ = ["Database", "resolve_db_url"]

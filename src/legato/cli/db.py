"""`legato db ...` and the `--db` option every store-touching command shares."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from legato.cli.main import app
from legato.core.policy.permissions import InvalidNumber, normalize_number
from legato.store.accounts import list_accounts
from legato.store.db import ENV_VAR, Database, StoreError

#: `--db URL`, falling back to `LEGATO_DB`, then to sqlite:///legato.db in the working dir.
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar=ENV_VAR,
        help="Database URL: sqlite:///FILE (default sqlite:///legato.db) or "
        "postgresql+psycopg://USER@HOST/DB. Read from LEGATO_DB when absent.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
AccountOpt = Annotated[
    str | None,
    typer.Option("--account", help="Account id (acc_...); optional when there is one account."),
]


def open_store(url: str | None, *, upgrade: bool = True) -> Database:
    """Open the store, bringing its schema up to date; exit 1 with a clear message if not."""
    try:
        database = Database(url)
        if upgrade:
            database.upgrade()
    except StoreError as exc:
        fail(str(exc))
    return database


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error to stderr and exit with `code` (2 for bad input, 1 otherwise)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def resolve_account(database: Database, account: str | None) -> str:
    with database.session() as s:
        ids = [a.id for a in list_accounts(s)]
    if account is not None:
        if account not in ids:
            fail(f"--account: no account {account}", 2)
        return account
    if len(ids) == 1:
        return ids[0]
    fail(
        "--account: required when the store has "
        + ("no accounts" if not ids else f"{len(ids)} accounts"),
        2,
    )
    raise AssertionError  # unreachable: fail() exits


def parse_time(option: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not an ISO 8601 date or time", 2)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def parse_number(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalize_number(value)
    except InvalidNumber as exc:
        fail(f"{option}: {exc}", 2)
    raise AssertionError


db_app = typer.Typer(help="Database schema: upgrade and inspect.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade(db: DbOption = None) -> None:
    """Apply every pending migration (legato serve also does this at start)."""
    database = open_store(db)
    typer.echo(f"{database.safe_url}: schema at {database.current_revision()}")


@db_app.command("current")
def current(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show the schema revision of the database and the newest one shipped."""
    database = open_store(db, upgrade=False)
    try:
        now, head = database.current_revision(), database.head_revision()
    except Exception as exc:  # unreachable server, bad credentials
        fail(f"cannot read {database.safe_url}: {exc}")
    if as_json:
        echo_json({"database": database.safe_url, "current": now, "head": head})
        return
    typer.echo(f"{database.safe_url}: current {now or '(empty)'}, head {head}")

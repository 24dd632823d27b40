"""`legato db ...` and the `--db` option every store-touching command shares."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from legato.cli.main import app
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

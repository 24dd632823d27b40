"""`legato numbers ...`: an account's Legato numbers and their configuration files.

A configuration file holds exactly a scenario's `config` block (YAML or JSON) and is
validated by the same model as scenario files and the REST API, so errors name the same
key paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from legato.api.schemas.numbers import stored_config
from legato.cli.db import (
    AccountOpt,
    DbOption,
    JsonOption,
    echo_json,
    fail,
    open_store,
    parse_number,
    resolve_account,
)
from legato.cli.main import app
from legato.core.config import NumberConfig
from legato.store import numbers as store
from legato.store.accounts import NotFound
from legato.store.models import Number

numbers_app = typer.Typer(help="Legato numbers and their configuration.", no_args_is_help=True)
app.add_typer(numbers_app, name="numbers")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="YAML/JSON file with the number's `config` block.",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]


def load_config(path: Path | None) -> NumberConfig | None:
    """Read and validate a config file; exit 2 naming the file, the key path and the rule."""
    if path is None:
        return None
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        fail(f"{path}: {exc}", 2)
    if isinstance(doc, dict) and set(doc) == {"config"}:
        doc = doc["config"]  # a file with a top-level `config:` key is fine too
    try:
        return NumberConfig.model_validate(doc or {})
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"]) or "(file)"
            lines.append(f"{path}: {where}: {e['msg']} ({e['type']})")
        fail("\n".join(lines), 2)
    raise AssertionError


def _doc(row: Number) -> dict[str, Any]:
    return {
        "id": row.id,
        "number": row.number,
        "config": row.config or {},
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


@numbers_app.command("add")
def add(
    number: Annotated[str, typer.Argument(help="The Legato number, E.164.")],
    config: ConfigOpt = None,
    db: DbOption = None,
    account: AccountOpt = None,
    as_json: JsonOption = False,
) -> None:
    """Add a number to an account, with an optional configuration file."""
    e164 = parse_number("NUMBER", number)
    cfg = load_config(config)
    database = open_store(db)
    acc = resolve_account(database, account)
    try:
        with database.session() as s:
            doc = _doc(store.create_number(s, acc, e164 or number, stored_config(cfg)))
    except store.NumberTaken:
        fail(f"{e164} already belongs to an account")
    echo_json(doc) if as_json else typer.echo(f"number {doc['number']} added")


@numbers_app.command("list")
def list_(db: DbOption = None, account: AccountOpt = None, as_json: JsonOption = False) -> None:
    """The account's numbers."""
    database = open_store(db)
    acc = resolve_account(database, account)
    with database.session() as s:
        docs = [_doc(n) for n in store.list_numbers(s, acc)]
    if as_json:
        echo_json(docs)
        return
    table = Table(title="Numbers")
    table.add_column("number")
    table.add_column("configured", overflow="fold")
    for d in docs:
        table.add_row(d["number"], ", ".join(sorted(d["config"])) or "(defaults)")
    Console().print(table)


@numbers_app.command("show")
def show(
    number: Annotated[str, typer.Argument(help="The Legato number.")],
    db: DbOption = None,
    account: AccountOpt = None,
    as_json: JsonOption = False,
) -> None:
    """A number's configuration (as YAML, or JSON with --json)."""
    e164 = parse_number("NUMBER", number) or number
    database = open_store(db)
    acc = resolve_account(database, account)
    try:
        with database.session() as s:
            doc = _doc(store.get_number(s, acc, e164))
    except NotFound as exc:
        fail(str(exc))
    if as_json:
        echo_json(doc)
    else:
        typer.echo(
            yaml.safe_dump({"number": doc["number"], "config": doc["config"]}, sort_keys=False)
        )


@numbers_app.command("configure")
def configure(
    number: Annotated[str, typer.Argument(help="The Legato number.")],
    config: Annotated[
        Path,
        typer.Argument(
            help="YAML/JSON file with the `config` block.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    db: DbOption = None,
    account: AccountOpt = None,
    as_json: JsonOption = False,
) -> None:
    """Replace a number's whole configuration with the file's (validated first)."""
    e164 = parse_number("NUMBER", number) or number
    cfg = load_config(config)
    database = open_store(db)
    acc = resolve_account(database, account)
    try:
        with database.session() as s:
            doc = _doc(store.replace_config(s, acc, e164, stored_config(cfg)))
    except NotFound as exc:
        fail(str(exc))
    echo_json(doc) if as_json else typer.echo(f"number {doc['number']} configured")


@numbers_app.command("remove")
def remove(
    number: Annotated[str, typer.Argument(help="The Legato number.")],
    db: DbOption = None,
    account: AccountOpt = None,
) -> None:
    """Remove a number from the account (its call records stay)."""
    e164 = parse_number("NUMBER", number) or number
    database = open_store(db)
    acc = resolve_account(database, account)
    try:
        with database.session() as s:
            store.delete_number(s, acc, e164)
    except NotFound as exc:
        fail(str(exc))
    typer.echo(f"number {e164} removed")

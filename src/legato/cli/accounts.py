"""`legato accounts ...`: create accounts and manage their API keys."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from legato.cli.db import DbOption, JsonOption, echo_json, fail, open_store
from legato.cli.main import app
from legato.store import accounts as store
from legato.store.accounts import NotFound
from legato.twilio.ids import account_sid

accounts_app = typer.Typer(help="Accounts and their API keys.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")


@accounts_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The business's name.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an account and print its API key (shown this once only)."""
    database = open_store(db)
    try:
        with database.session() as s:
            issued = store.create_account(s, name)
    except ValueError as exc:
        fail(str(exc), 2)
    if as_json:
        echo_json({"id": issued.account_id, "api_key": issued.api_key,
                   "twilio_account_sid": account_sid(issued.account_id)})
        return
    typer.echo(f"account {issued.account_id} created")
    typer.echo(f"API key (shown once, keep it safe): {issued.api_key}")
    typer.echo(f"Twilio-compatible account SID: {account_sid(issued.account_id)}")


@accounts_app.command("list")
def list_(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List accounts and their keys (prefixes only: secrets are never stored)."""
    database = open_store(db)
    with database.session() as s:
        rows: list[dict[str, Any]] = [
            {
                "id": a.id,
                "name": a.name,
                "created_at": a.created_at.isoformat(),
                "keys": [
                    {
                        "id": k.id,
                        "prefix": k.prefix,
                        "created_at": k.created_at.isoformat(),
                        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                    }
                    for k in store.list_keys(s, a.id)
                ],
            }
            for a in store.list_accounts(s)
        ]
    if as_json:
        echo_json(rows)
        return
    table = Table(title="Accounts")
    for column in ("account", "name", "key id", "prefix", "state"):
        table.add_column(column, overflow="fold")
    for a in rows:
        for i, k in enumerate(a["keys"] or [None]):
            state = "" if k is None else ("revoked" if k["revoked_at"] else "live")
            table.add_row(
                a["id"] if i == 0 else "",
                a["name"] if i == 0 else "",
                k["id"] if k else "",
                f"{k['prefix']}…" if k else "",
                state,
            )
    Console().print(table)


@accounts_app.command("revoke")
def revoke(
    key: Annotated[str, typer.Argument(help="Key id (key_...) or its listed prefix.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke an API key: requests with it are refused from now on."""
    database = open_store(db)
    try:
        with database.session() as s:
            row = store.revoke_key(s, key)
            out = {"id": row.id, "prefix": row.prefix, "revoked_at": row.revoked_at}
    except NotFound as exc:
        fail(str(exc))
    except ValueError as exc:
        fail(str(exc), 2)
    if as_json:
        echo_json(out)
    else:
        typer.echo(f"key {out['id']} ({out['prefix']}…) revoked")


@accounts_app.command("rotate")
def rotate(
    account: Annotated[str, typer.Argument(help="Account id (acc_...).")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a new key and revoke every older one of the account, in one step."""
    database = open_store(db)
    try:
        with database.session() as s:
            issued = store.rotate_key(s, account)
    except NotFound as exc:
        fail(str(exc))
    if as_json:
        echo_json({"id": issued.account_id, "key_id": issued.key_id, "api_key": issued.api_key})
        return
    typer.echo(f"new API key for {issued.account_id} (shown once): {issued.api_key}")
    typer.echo("every older key of this account is now revoked")

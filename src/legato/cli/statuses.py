"""`legato statuses`: print the status catalogue."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from legato.cli.main import app
from legato.core.catalogue import CATALOGUE


@app.command()
def statuses(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print the 21 call status codes, the services they apply to and what they mean."""
    rows: list[dict[str, Any]] = [
        {
            "code": row.code.value,
            "services": sorted(s.value for s in row.services),
            "pre_dial": row.pre_dial,
            "description": row.description,
        }
        for row in CATALOGUE
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Legato call statuses")
    for column in ("code", "services", "pre-dial", "description"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["code"], ", ".join(r["services"]), "yes" if r["pre_dial"] else "",
                      r["description"])
    Console().print(table)

"""`legato dnd import|check|status`: the national DND registry from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from legato.cli.main import app
from legato.core.policy.dnd import (
    TransactionalPolicy,
    blocks,
    categories_of,
    is_fully_blocked,
)
from legato.dnd import (
    DndRegistry,
    ImportMode,
    ImportRejected,
    ImportResult,
    NoRegistry,
    ParseReport,
    database_url,
)

dnd_app = typer.Typer(
    name="dnd",
    help="The Do-Not-Disturb registry (India's NCPR): import, check, status.",
    no_args_is_help=True,
)
app.add_typer(dnd_app)

DB_HELP = "Database URL (sqlite:///FILE or postgresql+psycopg://...); default $LEGATO_DB."
_out = Console()
_err = Console(stderr=True)


def _fail(message: str, code: int) -> NoReturn:
    _err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _registry(db: str | None) -> DndRegistry:
    try:
        return DndRegistry(database_url(db))
    except (SQLAlchemyError, ValueError) as exc:
        _fail(f"--db: cannot use database URL {database_url(db)!r}: {exc}", 2)


def _report_rows(report: ParseReport) -> list[tuple[str, str]]:
    return [
        ("lines", f"{report.lines:,}"),
        ("accepted", f"{report.accepted:,}"),
        ("duplicate", f"{report.duplicates:,}"),
        ("invalid", f"{report.invalid:,}"),
    ]


def _print_invalid(report: ParseReport) -> None:
    if not report.invalid_shown:
        return
    shown = len(report.invalid_shown)
    table = Table(title=f"Invalid lines ({shown:,} shown of {report.invalid:,})")
    for column in ("line", "rule broken", "text"):
        table.add_column(column)
    for bad in report.invalid_shown:
        table.add_row(str(bad.line), bad.reason, bad.text)
    _err.print(table)


def _result_json(result: ImportResult) -> dict[str, Any]:
    report = result.report
    return {
        "mode": result.mode.value,
        "version": result.version,
        "numbers": result.numbers,
        "lines": report.lines,
        "accepted": report.accepted,
        "duplicate": report.duplicates,
        "invalid": report.invalid,
        "invalid_lines": [vars(bad) for bad in report.invalid_shown],
        "inserted": result.inserted,
        "updated": result.updated,
        "removed": result.removed,
        "absent": result.absent,
        "seconds": round(result.seconds, 3),
        "phases": {name: round(s, 3) for name, s in result.phases.items()},
    }


class _Bar:
    """The Rich progress bar: bytes read, then rows loaded."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase not in self.tasks:
            label = "reading and checking" if phase == "read" else "loading"
            columns = {"read": "bytes", "load": "rows"}.get(phase, "")
            self.tasks[phase] = self.progress.add_task(f"{label} ({columns})", total=total)
        self.progress.update(self.tasks[phase], completed=done, total=total)


@dnd_app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="CSV (number[,categories]) or one +E.164 number a line; .gz accepted.",
        ),
    ],
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    add: bool = typer.Option(
        False, "--add", help="Add/update these numbers in the current version."
    ),
    remove: bool = typer.Option(
        False, "--remove", help="Remove these numbers from the current version."
    ),
    max_invalid: int = typer.Option(
        0,
        "--max-invalid",
        min=0,
        help="Invalid lines tolerated (skipped); above this nothing is changed.",
    ),
    show_invalid: int = typer.Option(20, "--show-invalid", min=0, help="Invalid lines listed."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Import a registry file as a new version (switched atomically), or --add/--remove it."""
    if add and remove:
        _fail("--add and --remove: give at most one", 2)
    mode = ImportMode.ADD if add else ImportMode.REMOVE if remove else ImportMode.REPLACE
    registry = _registry(db)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=_err, transient=True, disable=as_json) as progress:
            result = registry.import_file(
                file,
                mode,
                max_invalid=max_invalid,
                max_shown=show_invalid,
                progress=_Bar(progress),
            )
    except ImportRejected as exc:
        _print_invalid(exc.report)
        _fail(f"{file}: {exc}", 2)
    except NoRegistry as exc:
        _fail(str(exc), 1)
    except SQLAlchemyError as exc:
        _fail(
            f"database {registry.engine.url.render_as_string()}: {exc.__class__.__name__}: {exc}", 1
        )
    if as_json:
        typer.echo(json.dumps(_result_json(result)))
        return
    _print_invalid(result.report)
    table = Table(title=f"DND {mode.value}: {file.name}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for name, value in _report_rows(result.report):
        table.add_row(name, value)
    if mode is ImportMode.ADD:
        table.add_row("new numbers", f"{result.inserted:,}")
        table.add_row("updated numbers", f"{result.updated:,}")
    elif mode is ImportMode.REMOVE:
        table.add_row("removed", f"{result.removed:,}")
        table.add_row("not in registry", f"{result.absent:,}")
    table.add_row("version", str(result.version))
    table.add_row("numbers in registry", f"{result.numbers:,}")
    table.add_row("seconds", f"{result.seconds:.2f}")
    _out.print(table)


@dnd_app.command()
def check(
    number: str = typer.Argument(..., help="The number to check, +E.164 (e.g. +919811000001)."),
    category: int | None = typer.Option(
        None, "--category", min=1, max=7, help="The call's NCPR preference category, 1..7."
    ),
    transactional: bool = typer.Option(False, "--transactional", help="The call is transactional."),
    policy: Annotated[
        TransactionalPolicy,
        typer.Option("--transactional-policy", help="How the account treats transactional calls."),
    ] = TransactionalPolicy.ALLOW,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Say whether a call to NUMBER is blocked by the stored DND registry."""
    if transactional and category is not None:
        _fail("--category and --transactional: a call is one or the other", 2)
    registry = _registry(db)
    try:
        mask, version = registry.lookup(number)
    except ValueError as exc:
        if isinstance(exc, NoRegistry):
            _fail(str(exc), 1)
        _fail(f"NUMBER: {exc}", 2)
    except LookupError as exc:
        _fail(str(exc), 1)
    except SQLAlchemyError as exc:
        _fail(f"database {registry.engine.url.render_as_string()}: {exc}", 1)
    dnd = blocks(mask, category, transactional, policy)
    answer = {
        "number": number,
        "dnd": dnd,
        "registered": mask is not None,
        "fully_blocked": mask is not None and is_fully_blocked(mask),
        "categories": list(categories_of(mask)) if mask is not None else [],
        "category": category,
        "transactional": transactional,
        "transactional_policy": policy.value,
        "version": version,
    }
    if as_json:
        typer.echo(json.dumps(answer))
        return
    if mask is None:
        why = "not on the registry"
    elif is_fully_blocked(mask):
        why = "fully blocked"
    else:
        why = "blocks categories " + ", ".join(map(str, categories_of(mask)))
    verdict = "[bold red]DND[/]" if dnd else "[bold green]not DND[/]"
    _out.print(f"{number}: {verdict} ({why}; registry version {version})")


@dnd_app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Show the current registry version and the import history."""
    registry = _registry(db)
    try:
        history = registry.history()
    except SQLAlchemyError as exc:
        _fail(f"database {registry.engine.url.render_as_string()}: {exc}", 1)
    rows = [
        {
            "version": v.version,
            "state": v.state,
            "numbers": v.numbers,
            "changes": v.generation,
            "source": v.source,
            "created_at": v.created_at.isoformat(),
            "switched_at": v.switched_at.isoformat() if v.switched_at else None,
            "updated_at": v.updated_at.isoformat() if v.updated_at else None,
        }
        for v in history
    ]
    current = next((r for r in rows if r["state"] == "current"), None)
    if as_json:
        typer.echo(json.dumps({"current": current, "versions": rows}))
        return
    if current is None:
        _out.print("No DND registry imported yet: run `legato dnd import FILE`.")
    if not rows:
        return
    table = Table(title="DND registry versions")
    for column in ("version", "state", "numbers", "changes", "source", "switched at"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["version"]),
            str(r["state"]),
            f"{r['numbers']:,}",
            str(r["changes"]),
            str(r["source"]),
            str(r["switched_at"] or ""),
        )
    _out.print(table)

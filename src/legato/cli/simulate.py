"""`legato simulate`: run scenario files on the virtual network and show or check the result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from legato.cli.main import app
from legato.core.record import CallRecord
from legato.scenario import ScenarioError, check_expectations, load_paths, run_scenario
from legato.scenario.loader import iter_files

EXIT_MISMATCH, EXIT_INVALID = 1, 2


@app.command()
def simulate(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files, or folders of them.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON call record a line.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Compare with each `expect`.")] = False,
) -> None:
    """Simulate calls described by scenario files, offline, on a virtual clock."""
    out = Console(highlight=False, width=None if _tty() else 160)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        err.print(f"[red]no such file or folder:[/] {', '.join(missing)}")
        raise typer.Exit(EXIT_INVALID)
    if not any(True for _ in iter_files(paths)):
        err.print("[red]no scenario files (*.yaml, *.yml) found[/]")
        raise typer.Exit(EXIT_INVALID)
    invalid = mismatched = passed = unchecked = 0
    summary = Table(show_header=True, header_style="bold", box=None)
    for column in ("scenario", "status", "disconnected_by", "connected_to", "picked_by",
                   "duration"):
        summary.add_column(column, overflow="fold")
    if check:
        summary.add_column("check", no_wrap=True)
    for file, loaded in load_paths(paths):
        if isinstance(loaded, ScenarioError):
            invalid += 1
            for line in loaded.lines():
                err.print(f"[red]invalid:[/] {line}", markup=True)
            continue
        record = run_scenario(loaded)
        misses = check_expectations(loaded, record) if check else []
        if check and loaded.expect is None:
            unchecked += 1
            err.print(f"[yellow]not checked:[/] {file}: it has no `expect` block")
        elif misses:
            mismatched += 1
        else:
            passed += 1
        if as_json:
            typer.echo(json.dumps(record.to_dict(), separators=(",", ":")))
        else:
            verdict = None if not check else "unchecked" if loaded.expect is None else \
                "MISMATCH" if misses else "ok"
            _row(summary, file, record, verdict)
        for key, want, got in misses:
            err.print(f"[red]mismatch:[/] {file}: {key}: expected {_show(want)}, "
                      f"got {_show(got)}")
            err.print(f"  [red]- {key}: {_show(want)}[/]\n  [green]+ {key}: {_show(got)}[/]")
    if not as_json and summary.row_count:
        out.print(summary)
    if check:
        extra = (f", {invalid} invalid" if invalid else "") + (
            f", {unchecked} not checked" if unchecked else "")
        err.print(f"{passed} passed, {mismatched} failed{extra}")
    if invalid:
        raise typer.Exit(EXIT_INVALID)
    if mismatched:
        raise typer.Exit(EXIT_MISMATCH)


def _tty() -> bool:
    import sys

    return sys.stdout.isatty()


def _show(value: object) -> str:
    return "null" if value is None else str(value)


def _row(table: Table, file: Path, record: CallRecord, verdict: str | None) -> None:
    cells = [file.stem, _show(record.status), _show(record.disconnected_by),
             _show(record.connected_to), _show(record.picked_by),
             f"{record.duration_seconds:g}s"]
    if verdict is not None:
        colour = {"ok": "green", "MISMATCH": "red"}.get(verdict, "yellow")
        cells.append(f"[{colour}]{verdict}[/]")
    table.add_row(*cells)

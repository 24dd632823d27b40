"""`legato calls list|show|export` and `legato report`: the store, from the terminal."""

from __future__ import annotations

import sys
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

from legato.cli.db import (
    AccountOpt,
    DbOption,
    JsonOption,
    echo_json,
    fail,
    open_store,
    parse_number,
    parse_time,
    resolve_account,
)
from legato.cli.main import app
from legato.core.catalogue import Service, Status
from legato.store import calls as store
from legato.store import reports
from legato.store.accounts import NotFound
from legato.store.export import csv_rows

calls_app = typer.Typer(help="Call records: list, show, export.", no_args_is_help=True)
app.add_typer(calls_app, name="calls")

StatusOpt = Annotated[list[str] | None, typer.Option("--status", help="Status code (repeatable).")]
ServiceOpt = Annotated[str | None, typer.Option("--service", help="incoming, click_to_call, ...")]
NumberOpt = Annotated[str | None, typer.Option("--number", help="The Legato number.")]
FromOpt = Annotated[str | None, typer.Option("--from", help="A number of the `from` side.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="A number of the `to` side.")]
ByOpt = Annotated[str | None, typer.Option("--disconnected-by", help="leg1, leg2 or platform.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="Started at or after (ISO 8601).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Started before (ISO 8601).")]


def _filter(
    status: list[str] | None,
    service: str | None,
    number: str | None,
    from_: str | None,
    to: str | None,
    by: str | None,
    since: str | None,
    until: str | None,
) -> store.CallFilter:
    codes = {s.value for s in Status}
    for code in status or ():
        if code not in codes:
            fail(f"--status: {code!r} is not a status code (see `legato statuses`)", 2)
    if service is not None and service not in {s.value for s in Service}:
        fail(f"--service: {service!r} is not one of {', '.join(s.value for s in Service)}", 2)
    if by is not None and by not in ("leg1", "leg2", "platform"):
        fail(f"--disconnected-by: {by!r} is not leg1, leg2 or platform", 2)
    return store.CallFilter(
        status=tuple(status or ()),
        service=service,
        number=parse_number("--number", number),
        from_number=parse_number("--from", from_),
        to_number=parse_number("--to", to),
        disconnected_by=by,
        started_after=parse_time("--since", since),
        started_before=parse_time("--until", until),
    )


@calls_app.command("list")
def list_(
    db: DbOption = None,
    account: AccountOpt = None,
    status: StatusOpt = None,
    service: ServiceOpt = None,
    number: NumberOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    disconnected_by: ByOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[int, typer.Option(help="At most this many calls.", min=1)] = 50,
    as_json: JsonOption = False,
) -> None:
    """The newest calls first, with their status and who disconnected."""
    database = open_store(db)
    acc = resolve_account(database, account)
    where = _filter(status, service, number, from_, to, disconnected_by, since, until)
    with database.session() as s:
        rows, _ = store.list_calls(s, acc, where, limit)
        docs = [store.call_document(c) for c in rows]
    if as_json:
        echo_json(docs)
        return
    table = Table(title=f"Calls ({len(docs)})")
    for col in ("id", "started", "service", "from", "to", "status", "by", "secs"):
        table.add_column(col, overflow="fold")
    for d in docs:
        table.add_row(
            d["id"],
            d["started_at"][:19],
            d["service"],
            ",".join(d["from"]),
            ",".join(d["to"]),
            d["status"] or d["state"],
            d["disconnected_by"] or "",
            "" if d["duration_seconds"] is None else f"{d['duration_seconds']:g}",
        )
    Console().print(table)


@calls_app.command("show")
def show(
    call_id: Annotated[str, typer.Argument(help="The call id (call_...).")],
    db: DbOption = None,
    account: AccountOpt = None,
    as_json: JsonOption = False,
) -> None:
    """One call's record: status, legs with SIP codes and Q.850 causes, events."""
    database = open_store(db)
    acc = resolve_account(database, account)
    try:
        with database.session() as s:
            doc = store.call_document(store.get_call(s, acc, call_id))
    except NotFound as exc:
        fail(str(exc))
    if as_json:
        echo_json(doc)
        return
    console = Console()
    status = doc["status"] or doc["state"]
    console.print(
        f"[bold]{doc['id']}[/bold]  {doc['service']}  [bold]{status}[/bold]  "
        f"disconnected by {doc['disconnected_by'] or '-'}"
    )
    if doc["status_description"]:
        console.print(doc["status_description"])
    console.print(
        f"number {doc['number']}  from {','.join(doc['from']) or '-'}  "
        f"to {','.join(doc['to']) or '-'}  picked by {doc['picked_by'] or '-'}  "
        f"connected to {doc['connected_to'] or '-'}"
    )
    console.print(
        f"started {doc['started_at']}  answered {doc['answered_at'] or '-'}  "
        f"ended {doc['ended_at'] or '-'}  duration {doc['duration_seconds']}"
    )
    if doc["end_reason"]:
        console.print(f"[yellow]{doc['end_reason']}[/yellow]")
    legs = Table(title="Legs")
    for col in (
        "leg",
        "try",
        "role",
        "number",
        "outcome",
        "sip",
        "q850",
        "ring s",
        "talk s",
        "pdd ms",
    ):
        legs.add_column(col)
    for leg in doc["legs"]:
        legs.add_row(
            *(
                "" if leg.get(k) is None else str(leg.get(k))
                for k in (
                    "leg",
                    "attempt",
                    "role",
                    "number",
                    "outcome",
                    "sip_code",
                    "q850_cause",
                    "ring_seconds",
                    "talk_seconds",
                    "pdd_ms",
                )
            )
        )
    console.print(legs)


@calls_app.command("export")
def export(
    db: DbOption = None,
    account: AccountOpt = None,
    status: StatusOpt = None,
    service: ServiceOpt = None,
    number: NumberOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    disconnected_by: ByOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of CSV.")] = False,
) -> None:
    """Every matching call to stdout as CSV (the same columns as /v1/calls/export.csv)."""
    import json

    database = open_store(db)
    acc = resolve_account(database, account)
    where = _filter(status, service, number, from_, to, disconnected_by, since, until)
    with database.sessions() as s:
        docs = (store.call_document(c) for c in store.iter_calls(s, acc, where))
        if as_json:
            for doc in docs:
                sys.stdout.write(json.dumps(doc, default=str) + "\n")
        else:
            for chunk in csv_rows(docs):
                sys.stdout.write(chunk)


@app.command()
def report(
    db: DbOption = None,
    account: AccountOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    group_by: Annotated[
        str | None, typer.Option("--group-by", help="hour, day, number, service or status.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The summary report: counts per status, ASR, NER, ACD, PDD p50/p95, who hung up."""
    if group_by is not None and group_by not in reports.GROUPS:
        fail(f"--group-by: {group_by!r} is not one of {', '.join(reports.GROUPS)}", 2)
    database = open_store(db)
    acc = resolve_account(database, account)
    with database.session() as s:
        rep = reports.summary(  # group_by was checked against reports.GROUPS above
            s, acc, parse_time("--since", since), parse_time("--until", until),
            cast(reports.GroupBy | None, group_by),
        )
    if as_json:
        echo_json(rep)
        return
    rows: list[tuple[str, dict[str, Any]]] = [(g["key"], g) for g in rep["groups"]]
    rows.append(("all", rep["totals"]))
    table = Table(
        title=f"Calls summary{' by ' + group_by if group_by else ''}"
        f" ({rep['in_progress']} in progress)"
    )
    for col in (
        group_by or "",
        "calls",
        "ASR",
        "NER",
        "ACD s",
        "PDD p50",
        "PDD p95",
        "statuses",
        "disconnected by",
    ):
        table.add_column(col, overflow="fold")

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v * 100:.1f}%"

    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:g}"

    for key, f in rows:
        table.add_row(
            str(key),
            str(f["calls"]),
            pct(f["asr"]),
            pct(f["ner"]),
            num(f["acd_seconds"]),
            num(f["pdd_ms_p50"]),
            num(f["pdd_ms_p95"]),
            " ".join(f"{k}:{v}" for k, v in f["statuses"].items()),
            " ".join(f"{k}:{pct(v)}" for k, v in f["disconnected_by"].items()),
        )
    Console().print(table)

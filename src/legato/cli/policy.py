"""`legato policy ...`: change one policy of a number at a time.

Each command reads the number's stored configuration, changes one part of it, and
validates the result with the same model as scenario files and the REST API before
storing it. A change that breaks a rule is refused with the key path and the rule, and
nothing stored changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
from legato.core.errors import describe_errors
from legato.store import numbers as store
from legato.store.accounts import NotFound

policy_app = typer.Typer(help="Change one policy of a number: hours, holidays, blacklist, "
                         "lines, missed-call mode, flow, permissions, DND.",
                         no_args_is_help=True)
app.add_typer(policy_app, name="policy")

Number = Annotated[str, typer.Argument(help="The Legato number (E.164).")]
Edit = Callable[[dict[str, Any]], None]


def _apply(number: str, db: str | None, account: str | None, edit: Edit | None,
           as_json: bool) -> None:
    """Load, change, validate, store, show. Exit 2 naming the key and the rule on bad input."""
    e164 = parse_number("NUMBER", number) or number
    database = open_store(db)
    acc = resolve_account(database, account)
    try:
        with database.session() as s:
            row = store.get_number(s, acc, e164)
            config = json.loads(json.dumps(row.config or {}))  # a deep copy to change
            if edit is not None:
                edit(config)
                try:
                    validated = NumberConfig.model_validate(config)
                except ValidationError as exc:
                    s.rollback()
                    problems = describe_errors(exc.errors())
                    fail("\n".join(f"config.{'.'.join(map(str, loc))}: {rule}"
                                   for loc, rule in problems), 2)
                store.replace_config(s, acc, e164, stored_config(validated))
                config = stored_config(validated)
    except NotFound as exc:
        fail(str(exc))
    _show(e164, config, as_json)


def _show(number: str, config: dict[str, Any], as_json: bool) -> None:
    effective = NumberConfig.model_validate(config)
    hours = effective.office_hours
    view = {
        "number": number,
        "blacklist": effective.blacklist,
        "missed_call": effective.missed_call,
        "missed_call_ring": effective.missed_call_ring,
        "lines": effective.lines,
        "office_hours": None if hours is None else config.get("office_hours"),
        "allowed_countries": effective.allowed_countries,
        "allowed_number_types": effective.allowed_number_types,
        "dnd_scrub": effective.dnd_scrub,
        "ring_timeout": effective.ring_timeout,
        "max_duration": effective.max_duration,
        "flow_steps": len(effective.flow or []),
    }
    if as_json:
        echo_json(view)
        return
    table = Table(title=f"Policies of {number}", show_header=False)
    table.add_column("policy", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in view.items():
        if key == "number":
            continue
        shown = "none" if value is None else yaml.safe_dump(value, default_flow_style=True,
                                                             width=200).strip()
        table.add_row(key, shown.removesuffix("\n..."))
    Console().print(table)


@policy_app.command("show")
def show(number: Number, db: DbOption = None, account: AccountOpt = None,
         as_json: JsonOption = False) -> None:
    """Every policy of a number, defaults included."""
    _apply(number, db, account, None, as_json)


@policy_app.command("hours")
def hours(
    number: Number,
    timezone: Annotated[str | None, typer.Option(help="IANA timezone, e.g. Asia/Kolkata.")] = None,
    day: Annotated[list[str] | None, typer.Option(
        help="DAY=HH:MM-HH:MM[,HH:MM-HH:MM] (mon..sun); days not given are days off.")] = None,
    always_open: Annotated[bool, typer.Option("--always-open",
                                              help="Remove office hours.")] = False,
    db: DbOption = None, account: AccountOpt = None, as_json: JsonOption = False,
) -> None:
    """Set the weekly office hours (calls outside them end OFF-HOUR)."""
    def edit(config: dict[str, Any]) -> None:
        if always_open:
            config.pop("office_hours", None)
            return
        if timezone is None or not day:
            fail("--timezone and at least one --day are required (or --always-open)", 2)
        days: dict[str, Any] = {}
        for entry in day or []:
            key, sep, spans = entry.partition("=")
            if not sep:
                fail(f"--day: {entry!r} is not DAY=HH:MM-HH:MM", 2)
            parts = [p.strip() for p in spans.split(",") if p.strip()]
            days[key.strip()] = parts[0] if len(parts) == 1 else parts
        current = config.get("office_hours") or {}
        config["office_hours"] = {"timezone": timezone, "days": days,
                                  "holidays": current.get("holidays", [])}
    _apply(number, db, account, edit, as_json)


def _list_edit(path: tuple[str, ...], action: str, values: list[str]) -> Edit:
    """Add to or remove from a list inside the config (e.g. blacklist, holidays)."""
    if action not in ("add", "remove"):
        fail(f"ACTION: {action!r} must be add or remove", 2)

    def edit(config: dict[str, Any]) -> None:
        parent = config
        for key in path[:-1]:
            if not isinstance(parent.get(key), dict):
                fail(f"{'.'.join(path[:-1])} is not set: set it first "
                     "(e.g. `legato policy hours`)", 2)
            parent = parent[key]
        items = [str(v) for v in parent.get(path[-1], [])]
        if action == "add":
            items += [v for v in values if v not in items]
        else:
            missing = [v for v in values if v not in items]
            if missing:
                fail(f"{'.'.join(path)}: {', '.join(missing)} not in the list", 2)
            items = [v for v in items if v not in values]
        parent[path[-1]] = items
    return edit


Action = Annotated[str, typer.Argument(help="add or remove")]


@policy_app.command("holidays")
def holidays(number: Number, action: Action,
             dates: Annotated[list[str], typer.Argument(
                 help="YYYY-MM-DD, or a range YYYY-MM-DD..YYYY-MM-DD")],
             db: DbOption = None, account: AccountOpt = None,
             as_json: JsonOption = False) -> None:
    """Add or remove holidays (closed all day, in the office-hours timezone)."""
    _apply(number, db, account, _list_edit(("office_hours", "holidays"), action, dates),
           as_json)


@policy_app.command("blacklist")
def blacklist(number: Number, action: Action,
              entries: Annotated[list[str], typer.Argument(
                  help="E.164 numbers, or prefixes ending in * (+9198110*)")],
              db: DbOption = None, account: AccountOpt = None,
              as_json: JsonOption = False) -> None:
    """Add or remove blacklist entries (their calls end BLOCKED)."""
    _apply(number, db, account, _list_edit(("blacklist",), action, entries), as_json)


@policy_app.command("lines")
def lines(number: Number,
          count: Annotated[str, typer.Argument(help="lines allocated, or 'unlimited'")],
          db: DbOption = None, account: AccountOpt = None,
          as_json: JsonOption = False) -> None:
    """Set the lines allocated (calls beyond them end MAX-USE)."""
    def edit(config: dict[str, Any]) -> None:
        if count == "unlimited":
            config.pop("lines", None)
        else:
            config["lines"] = int(count) if count.lstrip("-").isdigit() else count
    _apply(number, db, account, edit, as_json)


@policy_app.command("missed-call")
def missed_call(number: Number,
                mode: Annotated[str, typer.Argument(help="on or off")],
                ring: Annotated[float | None, typer.Option(
                    help="seconds it rings before rejecting")] = None,
                db: DbOption = None, account: AccountOpt = None,
                as_json: JsonOption = False) -> None:
    """Switch missed-call mode (calls ring, are rejected, and end MISWIG)."""
    if mode not in ("on", "off"):
        fail(f"MODE: {mode!r} must be on or off", 2)

    def edit(config: dict[str, Any]) -> None:
        config["missed_call"] = mode == "on"
        if ring is not None:
            config["missed_call_ring"] = ring
    _apply(number, db, account, edit, as_json)


@policy_app.command("flow")
def flow(number: Number,
         file: Annotated[Path | None, typer.Argument(
             help="YAML/JSON file with the flow's steps (a list)", dir_okay=False)] = None,
         clear: Annotated[bool, typer.Option("--clear", help="Remove the flow.")] = False,
         db: DbOption = None, account: AccountOpt = None,
         as_json: JsonOption = False) -> None:
    """Set the number's IVR flow (answer, play, gather, dial, hangup steps)."""
    if clear == (file is not None):
        fail("give a FILE or --clear", 2)
    steps: Any = None
    if file is not None:
        try:
            steps = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            fail(f"{file}: {exc}", 2)
        if isinstance(steps, dict) and set(steps) == {"flow"}:
            steps = steps["flow"]

    def edit(config: dict[str, Any]) -> None:
        if clear:
            config.pop("flow", None)
        else:
            config["flow"] = steps
    _apply(number, db, account, edit, as_json)


@policy_app.command("permissions")
def permissions(
    number: Number,
    country: Annotated[list[str] | None, typer.Option(
        help="ISO 3166 alpha-2 country that may be dialled (repeat)")] = None,
    number_type: Annotated[list[str] | None, typer.Option(
        "--type", help="number type that may be dialled: mobile, fixed_line, ... (repeat)")] = None,
    unrestricted: Annotated[bool, typer.Option("--unrestricted",
                                               help="Remove both restrictions.")] = False,
    db: DbOption = None, account: AccountOpt = None, as_json: JsonOption = False,
) -> None:
    """Set which countries and number types calls from this number may dial (NOTALLOWED)."""
    def edit(config: dict[str, Any]) -> None:
        if unrestricted:
            config.pop("allowed_countries", None)
            config.pop("allowed_number_types", None)
        if country:
            config["allowed_countries"] = country
        if number_type:
            config["allowed_number_types"] = number_type
    _apply(number, db, account, edit, as_json)


@policy_app.command("dnd")
def dnd(number: Number,
        mode: Annotated[str, typer.Argument(help="scrub or no-scrub")],
        db: DbOption = None, account: AccountOpt = None,
        as_json: JsonOption = False) -> None:
    """Whether customers dialled from this number are checked against the DND registry."""
    if mode not in ("scrub", "no-scrub"):
        fail(f"MODE: {mode!r} must be scrub or no-scrub", 2)

    def edit(config: dict[str, Any]) -> None:
        config["dnd_scrub"] = mode == "scrub"
    _apply(number, db, account, edit, as_json)

"""`legato webhooks ...`: endpoints, secrets, the delivery log, redelivery and `verify`.

Everything but `verify` works on the store (`--db`/`LEGATO_DB`), scoped to one account.
`verify` needs no store: it checks a captured request against a secret, the way a
receiver would, and exits 0 when the signature holds, 1 when it does not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

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
    parse_time,
    resolve_account,
)
from legato.cli.main import app
from legato.store.accounts import NotFound
from legato.webhooks import manage
from legato.webhooks.events import EVENT_TYPES
from legato.webhooks.settings import SettingsError, WebhookSettings
from legato.webhooks.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    InvalidSecret,
    VerificationError,
    verify,
)

webhooks_app = typer.Typer(
    help="Webhook endpoints, signing secrets, the delivery log; verify a captured request.",
    no_args_is_help=True,
)
app.add_typer(webhooks_app, name="webhooks")

EventsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--event", help=f"Event type to send (repeat); default all: {', '.join(EVENT_TYPES)}"
    ),
]
FileOpt = Annotated[Path | None, typer.Option(exists=True, dir_okay=False, readable=True)]


def _store(db: str | None, account: str | None) -> tuple[Any, str]:
    database = open_store(db)
    return database, resolve_account(database, account)


def _overlap(overlap: float | None) -> float:
    if overlap is not None:
        return overlap
    try:
        return WebhookSettings.from_env().rotation_overlap
    except SettingsError as exc:
        fail(str(exc), 2)
    raise AssertionError


def _print_endpoint(doc: dict[str, Any]) -> None:
    for key in ("id", "url", "events", "enabled", "disabled_reason", "consecutive_failures",
                "failing_since"):
        value = doc.get(key)
        if key == "events":
            value = ", ".join(value) if value else "(all)"
        if value is not None:
            typer.echo(f"{key}: {value}")
    if doc.get("previous_secret_expires_at"):
        typer.echo(f"previous secret signs until: {doc['previous_secret_expires_at']}")
    if "secret" in doc:
        typer.echo(f"secret: {doc['secret']}")
        typer.echo("(the secret is shown only now: store it with your receiver)")


@webhooks_app.command("create")
def create(
    url: Annotated[str, typer.Argument(help="http(s) URL that receives the events")],
    event: EventsOpt = None,
    description: Annotated[str | None, typer.Option(help="A note for you.")] = None,
    db: DbOption = None,
    account: AccountOpt = None,
    as_json: JsonOption = False,
) -> None:
    """Register an endpoint; prints its signing secret once."""
    database, account_id = _store(db, account)
    try:
        with database.session() as s:
            issued = manage.create_endpoint(s, account_id, url, event, description)
            doc = manage.endpoint_document(issued.endpoint, issued.secret)
    except manage.InvalidField as exc:
        fail(str(exc), 2)
    echo_json(doc) if as_json else _print_endpoint(doc)


@webhooks_app.command("list")
def list_(db: DbOption = None, account: AccountOpt = None, as_json: JsonOption = False) -> None:
    """The account's endpoints."""
    database, account_id = _store(db, account)
    with database.session() as s:
        docs = [manage.endpoint_document(e) for e in manage.list_endpoints(s, account_id)]
    if as_json:
        echo_json(docs)
        return
    table = Table("id", "url", "events", "enabled", "failures", "disabled because")
    for d in docs:
        table.add_row(
            d["id"],
            d["url"],
            ", ".join(d["events"]) or "(all)",
            "yes" if d["enabled"] else "no",
            str(d["consecutive_failures"])
            + (f" since {d['failing_since']}" if d["failing_since"] else ""),
            d["disabled_reason"] or "",
        )
    Console().print(table)


def _get(database: Any, account_id: str, endpoint_id: str) -> dict[str, Any]:
    try:
        with database.session() as s:
            return manage.endpoint_document(manage.get_endpoint(s, account_id, endpoint_id))
    except NotFound as exc:
        fail(str(exc), 1)
    raise AssertionError


@webhooks_app.command("show")
def show(
    endpoint_id: str, db: DbOption = None, account: AccountOpt = None, as_json: JsonOption = False
) -> None:
    """One endpoint, with why it is disabled when it is."""
    database, account_id = _store(db, account)
    doc = _get(database, account_id, endpoint_id)
    echo_json(doc) if as_json else _print_endpoint(doc)


@webhooks_app.command("update")
def update(
    endpoint_id: str,
    url: Annotated[str | None, typer.Option(help="New URL.")] = None,
    event: EventsOpt = None,
    all_events: Annotated[bool, typer.Option("--all-events", help="Send every type.")] = False,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Resume or pause deliveries.")
    ] = None,
    db: DbOption = None,
    account: AccountOpt = None,
    as_json: JsonOption = False,
) -> None:
    """Change the URL or the event types, or enable/disable the endpoint."""
    if event and all_events:
        fail("--event and --all-events exclude each other", 2)
    database, account_id = _store(db, account)
    events = [] if all_events else event
    try:
        with database.session() as s:
            endpoint = manage.update_endpoint(
                s, account_id, endpoint_id, url=url, events=events, enabled=enabled
            )
            doc = manage.endpoint_document(endpoint)
    except NotFound as exc:
        fail(str(exc), 1)
    except manage.InvalidField as exc:
        fail(str(exc), 2)
    echo_json(doc) if as_json else _print_endpoint(doc)


@webhooks_app.command("delete")
def delete(endpoint_id: str, db: DbOption = None, account: AccountOpt = None) -> None:
    """Delete an endpoint with its pending deliveries and log."""
    database, account_id = _store(db, account)
    try:
        with database.session() as s:
            manage.delete_endpoint(s, account_id, endpoint_id)
    except NotFound as exc:
        fail(str(exc), 1)
    typer.echo(f"deleted {endpoint_id}")


OverlapOpt = Annotated[
    float | None,
    typer.Option(help="Seconds the old secret keeps signing (default 86400).", min=0, max=604800),
]


@webhooks_app.command("rotate")
def rotate(
    endpoint_id: str,
    overlap: OverlapOpt = None,
    db: DbOption = None,
    account: AccountOpt = None,
    as_json: JsonOption = False,
) -> None:
    """A new signing secret, printed once; the old one signs too during the overlap."""
    database, account_id = _store(db, account)
    try:
        with database.session() as s:
            endpoint = manage.get_endpoint(s, account_id, endpoint_id)
            issued = manage.rotate_secret(s, endpoint, _overlap(overlap))
            doc = manage.endpoint_document(issued.endpoint, issued.secret)
    except NotFound as exc:
        fail(str(exc), 1)
    echo_json(doc) if as_json else _print_endpoint(doc)


@webhooks_app.command("callback-secret")
def callback_secret(
    overlap: OverlapOpt = None,
    db: DbOption = None,
    account: AccountOpt = None,
    as_json: JsonOption = False,
) -> None:
    """The secret that signs events sent to calls' own callback URLs (created or rotated)."""
    database, account_id = _store(db, account)
    with database.session() as s:
        issued = manage.rotate_callback_secret(s, account_id, _overlap(overlap))
        doc = manage.endpoint_document(issued.endpoint, issued.secret)
    if as_json:
        echo_json(
            {
                "secret": doc["secret"],
                "previous_secret_expires_at": doc["previous_secret_expires_at"],
            }
        )
        return
    typer.echo(f"secret: {doc['secret']}")
    if doc["previous_secret_expires_at"]:
        typer.echo(f"previous secret signs until: {doc['previous_secret_expires_at']}")


@webhooks_app.command("deliveries")
def deliveries(
    endpoint_id: str,
    state: Annotated[str | None, typer.Option(help="pending, delivered or failed")] = None,
    call: Annotated[str | None, typer.Option("--call", help="Only this call's events.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    db: DbOption = None,
    account: AccountOpt = None,
    as_json: JsonOption = False,
) -> None:
    """The delivery log, newest first: state and every attempt's status, latency, error."""
    if state is not None and state not in ("pending", "delivered", "failed"):
        fail(f"--state: must be pending, delivered or failed, not {state!r}", 2)
    database, account_id = _store(db, account)
    try:
        with database.session() as s:
            docs, _ = manage.list_deliveries(
                s, account_id, endpoint_id, state=state, call_id=call, limit=limit
            )
    except NotFound as exc:
        fail(str(exc), 1)
    if as_json:
        echo_json(docs)
        return
    table = Table("event", "type", "call", "seq", "state", "tries", "last", "ms")
    for d in docs:
        last = d["log"][-1] if d["log"] else {}
        table.add_row(
            d["event_id"],
            d["event_type"],
            d["call_id"],
            str(d["sequence"]),
            d["state"],
            str(d["attempts"]),
            str(last.get("status_code") or last.get("error") or ""),
            "" if last.get("latency_ms") is None else f"{last['latency_ms']:.0f}",
        )
    Console().print(table)


@webhooks_app.command("redeliver")
def redeliver(
    endpoint_id: str,
    event: Annotated[str | None, typer.Option("--event", help="One event id (msg_...).")] = None,
    since: Annotated[str | None, typer.Option(help="Failed deliveries created from (ISO).")] = None,
    until: Annotated[str | None, typer.Option(help="... up to, excluded (ISO).")] = None,
    db: DbOption = None,
    account: AccountOpt = None,
) -> None:
    """Send one event again, or every failed delivery in a time range (a running server
    picks them up within its poll interval)."""
    if event and (since or until):
        fail("--event excludes --since/--until", 2)
    start, end = parse_time("--since", since), parse_time("--until", until)
    database, account_id = _store(db, account)
    try:
        with database.session() as s:
            n = manage.redeliver(s, account_id, endpoint_id, event_id=event, since=start, until=end)
    except NotFound as exc:
        fail(str(exc), 1)
    except manage.InvalidField as exc:
        fail(str(exc), 2)
    typer.echo(f"queued {n} deliver{'y' if n == 1 else 'ies'}")


def read_headers(path: Path) -> dict[str, str]:
    """Headers from a file: a JSON object, or `Name: value` lines (a request line, if the
    capture starts with one, and anything after the blank line are ignored)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except json.JSONDecodeError as exc:
            fail(f"--headers: {path} is not valid JSON: {exc}", 2)
        if not isinstance(doc, dict):
            fail(f"--headers: {path} must hold a JSON object of header names to values", 2)
        return {str(k): str(v) for k, v in doc.items()}
    headers: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if headers:
                break
            continue
        if ":" not in line or line.split(":", 1)[0].strip().count(" "):
            continue  # e.g. "POST /hook HTTP/1.1"
        name, value = line.split(":", 1)
        headers[name.strip()] = value.strip()
    return headers


@webhooks_app.command("verify")
def verify_cmd(
    secret: Annotated[
        list[str], typer.Option("--secret", help="whsec_... (repeat to try several)")
    ],
    body: Annotated[
        Path,
        typer.Option(
            exists=True, dir_okay=False, readable=True, help="The raw request body, byte for byte."
        ),
    ],
    headers: FileOpt = None,
    msg_id: Annotated[str | None, typer.Option("--id", help="webhook-id")] = None,
    timestamp: Annotated[str | None, typer.Option(help="webhook-timestamp")] = None,
    signature: Annotated[str | None, typer.Option(help="webhook-signature")] = None,
    tolerance: Annotated[
        float,
        typer.Option(help="Max age of the timestamp in seconds; -1 disables the check."),
    ] = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Check a captured request's Standard Webhooks signature: exit 0 valid, 1 not."""
    given: dict[str, str] = read_headers(headers) if headers is not None else {}
    for name, value in (
        ("webhook-id", msg_id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signature),
    ):
        if value is not None:
            given[name] = value
    if not given:
        fail("give --headers FILE, or --id, --timestamp and --signature", 2)
    try:
        msg = verify(secret, given, body.read_bytes(), tolerance=tolerance)
    except InvalidSecret as exc:
        fail(f"--secret: {exc}", 2)
    except VerificationError as exc:
        typer.secho(f"invalid: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    typer.secho(f"valid: {msg} is signed by the given secret", fg=typer.colors.GREEN)

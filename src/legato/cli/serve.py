"""`legato serve`: the REST API and the live call runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from legato.cli.db import DbOption, fail, open_store
from legato.cli.main import app
from legato.store.db import Database


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    db: DbOption = None,
    driver: Annotated[str, typer.Option(help="Telephony driver: sim or sip.")] = "sim",
    sim_speed: Annotated[
        float, typer.Option("--sim-speed", help="sim: virtual seconds per wall second.", min=0.001)
    ] = 1.0,
    phones: Annotated[
        Path | None,
        typer.Option(
            help="sim: YAML map of numbers to phone behaviours, plus `default`.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    sip_listen: Annotated[
        str, typer.Option("--sip-listen", help="sip: HOST:PORT to receive and send SIP on.")
    ] = "127.0.0.1:5060",
    trunk: Annotated[
        str | None, typer.Option(help="sip: sip:HOST:PORT of the carrier proxy to dial.")
    ] = None,
    trunk_user: Annotated[
        str | None, typer.Option(help="sip: the trunk's digest username.")
    ] = None,
    trunk_password: Annotated[
        str | None, typer.Option(help="sip: the trunk's digest password.")
    ] = None,
    prompts: Annotated[
        Path | None,
        typer.Option(
            help="sip: folder of the WAV prompts flows name in `prompt` (any rate/width).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    recordings: Annotated[
        Path,
        typer.Option(help="sip: folder for recordings of numbers or calls with `record`."),
    ] = Path(".legato/recordings"),
    rtp_ports: Annotated[
        str, typer.Option("--rtp-ports", help="sip: FIRST-LAST UDP ports for RTP.")
    ] = "10000-20000",
    media_address: Annotated[
        str | None,
        typer.Option("--media-address", help="sip: address put in SDP (default: the SIP host)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the REST API (docs at /docs); migrations run first."""
    import uvicorn

    from legato.api.app import DriverUnavailable, ServerSettings, create_app
    from legato.service.phones import PhonesError
    from legato.webhooks.settings import SettingsError, WebhookSettings

    if driver not in ("sim", "sip"):
        fail(f"--driver: must be sim or sip, not {driver!r}", 2)
    try:  # read again by the delivery worker at start-up: refuse bad values before that
        WebhookSettings.from_env()
    except SettingsError as exc:
        fail(str(exc), 2)
    extra: dict[str, Any] = {}
    if driver == "sip":
        from legato.drivers.sip import SipConfigError, SipDriverConfig, Trunk, parse_listen
        from legato.media.call import MediaConfig
        from legato.media.ports import PortRange

        try:
            trunks = () if trunk is None else (
                Trunk.parse(trunk, username=trunk_user, password=trunk_password),)
            sip = SipDriverConfig(listen=parse_listen(sip_listen), trunks=trunks)
        except SipConfigError as exc:
            fail(str(exc), 2)
        try:
            ports = PortRange.parse(rtp_ports)
        except ValueError as exc:
            fail(f"--rtp-ports: {exc}", 2)
        host_only = sip.listen[0]
        extra["sip"] = sip
        extra["media"] = MediaConfig(
            bind=host_only, address=media_address, ports=ports, prompts_dir=prompts,
            record_dir=recordings,
        )
    database = open_store(db)  # migrate now, so a bad URL fails before binding the port
    if driver == "sip":
        problems = _unplayable_numbers(database, prompts)
        if problems:
            fail("numbers whose flows cannot play:\n  " + "\n  ".join(problems), 2)
    url = database.url
    database.dispose()
    try:
        api = create_app(
            ServerSettings(
                db_url=url,
                driver=driver,  # type: ignore[arg-type]
                sim_speed=sim_speed,
                phones=phones,
                **extra,
            )
        )
    except PhonesError as exc:
        fail(f"--phones: {exc}", 2)
    except DriverUnavailable as exc:
        fail(str(exc), 2)
    if phones is None and driver == "sim":
        typer.echo("sim: no --phones file; every phone answers after 3 s and hangs up after 20 s")
    typer.echo(
        f"legato: store {database.safe_url}, driver {driver}, docs at http://{host}:{port}/docs"
    )
    from legato.gc_tuning import tune_for_server

    tune_for_server()  # short collector pauses: less tail latency per call
    uvicorn.run(api, host=host, port=port, log_level=log_level, loop="auto")


def _unplayable_numbers(database: Database, prompts: Path | None) -> list[str]:
    """Stored numbers whose configuration no longer validates or names a prompt file
    missing from `--prompts`: refused at start rather than found by a caller."""
    from legato.media.prompts import missing_prompts
    from legato.service.directory import BadNumberConfig, NumberDirectory

    directory = NumberDirectory(database)
    directory.refresh(force=True)
    problems = []
    for number in directory.numbers():
        try:
            config = directory.config(number)
        except BadNumberConfig as exc:
            problems.append(str(exc))
            continue
        if config is not None:
            problems += [f"number {number}: {p}" for p in missing_prompts(config, prompts)]
    return problems

"""The application factory: `legato serve` and the tests build the app the same way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import anyio.to_thread
from fastapi import FastAPI

import legato
from legato.api import problems
from legato.api.arrival import ArrivalTime
from legato.api.routers import account, calls, numbers, policies, reports, sim, webhooks
from legato.drivers.sip import SipDriver, SipDriverConfig, number_lookup
from legato.gc_tuning import collect_cycles
from legato.media.call import MediaConfig, MediaServer
from legato.media.prompts import missing_prompts
from legato.service.directory import NumberDirectory
from legato.service.dnd import DndSource
from legato.service.phones import load_phones
from legato.service.runtime import CallRuntime
from legato.sim import SimNetwork
from legato.store.db import Database
from legato.twilio import api as twilio_api
from legato.twilio import errors as twilio_errors
from legato.webhooks.outbox import prepare_call_writes

DESCRIPTION = """
Place click-to-call and outbound calls, read each call's exact status with the facts
behind it (legs, SIP codes, Q.850 causes, who disconnected), manage your numbers and read
the summary report. Authenticate with `Authorization: Bearer <API key>`; the key comes from
`legato accounts create NAME`. Errors are RFC 9457 problem documents naming the field and
the rule.
"""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """What `legato serve` was started with."""

    db_url: str | None = None
    driver: Literal["sim", "sip"] = "sim"
    sim_speed: float = 1.0
    phones: Path | None = None
    sip: SipDriverConfig | None = None  # --driver sip: listen address and trunks
    #: --driver sip: RTP, prompts and recordings for flows that answer, play and gather.
    media: MediaConfig | None = None


#: Worker threads for the sync routes (each holds at most one pooled connection).
ROUTE_THREADS = 8


class DriverUnavailable(RuntimeError):
    """The requested driver cannot run in this server."""


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """A ready-to-serve app; the lifespan opens the store, migrates it and starts the runtime."""
    settings = settings or ServerSettings()
    if settings.driver == "sip" and settings.sip is None:
        raise DriverUnavailable("--driver sip needs its settings (--sip-listen, --trunk)")
    phones, default = load_phones(settings.phones)  # bad files fail before the server starts

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Routes are short store round trips: a few worker threads keep the GIL and the
        # connection pool uncontended (the default 40 convoy under load).
        anyio.to_thread.current_default_thread_limiter().total_tokens = ROUTE_THREADS
        database = Database(settings.db_url)
        checkpointer = database.checkpoint_in_background()
        try:
            await asyncio.to_thread(database.upgrade)
        except BaseException:
            if checkpointer is not None:
                checkpointer.stop()
            raise
        sip = directory = None
        if settings.sip is not None:
            directory = NumberDirectory(database)
            media = MediaServer(settings.media or MediaConfig())
            sip = await SipDriver.open(settings.sip, number_lookup(directory.config), media=media)
        runtime = CallRuntime(
            database,
            sip or SimNetwork(phones, default),  # type: ignore[arg-type]
            1.0 if sip is not None else settings.sim_speed,
            on_writes=prepare_call_writes,
            dnd=DndSource(database.engine),
            directory=directory,
        )
        if sip is not None:  # engine on the runtime's clock; live states written as they change
            sip.follow(runtime.virtual_now, lambda _call: runtime.wake())
            sip.incoming = runtime  # incoming calls are stored and journaled by the runtime
            prompts_dir = (settings.media or MediaConfig()).prompts_dir
            app.state.missing_prompts = partial(missing_prompts, prompts_dir=prompts_dir)
        app.state.database = database
        app.state.runtime = runtime
        await runtime.start()
        collector = asyncio.create_task(collect_cycles(), name="legato-gc")
        try:
            yield
        finally:
            collector.cancel()
            await runtime.stop()
            if sip is not None:
                await sip.close()  # hangs up what the runtime ended
            database.dispose()
            if checkpointer is not None:
                checkpointer.stop()

    app = FastAPI(
        title="Legato",
        version=legato.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    problems.install(app)
    app.add_middleware(ArrivalTime)
    app.include_router(account.router)
    app.include_router(numbers.router)
    app.include_router(policies.router)
    app.include_router(calls.router)
    app.include_router(reports.router)
    app.include_router(webhooks.router)  # and the webhook delivery worker's lifespan
    if settings.driver == "sim":
        app.include_router(sim.router)
    twilio_errors.install(app)
    app.include_router(twilio_api.router)  # the Twilio-compatible layer, and its lifespan
    app.state.settings = settings
    return app

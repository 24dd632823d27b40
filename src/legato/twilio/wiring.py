"""Plugs the Twilio layer into a running `legato serve`: the TwiML fetcher on the sim
network, the callback outbox on the runtime's writer, and the callback sender."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from legato.twilio.callbacks import CallbackSender, chain, on_runtime_writes, reconcile
from legato.twilio.fetcher import HttpFlowFetcher


@asynccontextmanager
async def attach(app: FastAPI) -> AsyncIterator[None]:
    runtime = app.state.runtime
    database = app.state.database
    client = httpx.AsyncClient(timeout=10.0, follow_redirects=True)
    fetcher = HttpFlowFetcher(database, client, wake=runtime.wake)
    if runtime.network.fetcher is None:
        runtime.network.fetcher = fetcher
    runtime.on_writes = chain(runtime.on_writes, on_runtime_writes)
    await asyncio.to_thread(reconcile, database)  # calls crash recovery ended
    sender = CallbackSender(database, client)
    app.state.twilio_callbacks = sender
    await sender.start()
    try:
        yield
    finally:
        await sender.stop()
        await fetcher.close()
        await client.aclose()

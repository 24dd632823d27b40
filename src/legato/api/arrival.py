"""When each request arrived: the start of the create-call latency the benchmark reports."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Receive, Scope, Send


class ArrivalTime:
    """Pure ASGI middleware stamping each request's arrival (perf_counter) into its state,
    so the create-call latency covers parsing, authentication and the store write too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["received_at"] = time.perf_counter()
        await self.app(scope, receive, send)


def received_at(state: object) -> float:
    """When the request arrived (see `ArrivalTime`); now, if it was not stamped."""
    return float(getattr(state, "received_at", time.perf_counter()))

"""Ending a running call from the Twilio API (`Status=completed|canceled`).

The engine's public `Call.terminate` does the ending (statuses stay the resolver's); what
this module adds is running it on the runtime's loop and having the sim network carry out
the commands it emits at once. The runtime has no public "end this call" yet, so this is
the one place that reaches into it (see docs/decisions.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from legato.core.outcomes import Outcome
from legato.service.runtime import CallRuntime


def _end_now(runtime: CallRuntime, call_id: str, reason: str, canceled: bool) -> bool:
    jcall = runtime._active.get(call_id)
    if jcall is None:
        return False
    network = runtime.network
    active: Any = next((entry[3] for entry in network._heap if entry[3].call is jcall), None)
    now = max(runtime.virtual_now(), network.now)
    jcall.call.terminate(now, reason, cut=Outcome.CANCELLED if canceled else None)
    jcall.dirty = True
    if active is not None:
        network._after(active, now)  # carry out the Cancel/Hangup commands now
    runtime._step()
    runtime.wake()
    return True


async def end_call(runtime: CallRuntime, call_id: str, reason: str, canceled: bool) -> bool:
    """End a running call as the platform; False when it is not running (any more).
    Returns once the final record is in the store."""
    loop = runtime._loop
    assert loop is not None, "the runtime is not started"
    done: asyncio.Future[bool] = loop.create_future()

    def run() -> None:
        try:
            done.set_result(_end_now(runtime, call_id, reason, canceled))
        except Exception as exc:  # surfaced to the request, not lost in the loop
            done.set_exception(exc)

    loop.call_soon(run)
    ended = await done
    await runtime.drain()
    return ended

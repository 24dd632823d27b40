"""Helpers the webhook tests share: stored calls, real sim records, a worker in a thread."""

from __future__ import annotations

import asyncio
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from legato.scenario.loader import load_scenario
from legato.scenario.run import run_scenario
from legato.store import accounts
from legato.store import calls as call_store
from legato.store.db import Database
from legato.webhooks.delivery import DeliveryWorker
from legato.webhooks.outbox import on_call_writes
from legato.webhooks.settings import WebhookSettings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
#: Both legs ring, answer and end: 7 events (initiated, 2 x ringing/answered/ended ... completed).
ANSWERED = EXAMPLES / "click_to_call_agent_hangs_up_after_talking.yaml"

#: Fast settings: short back-off, quick polling, small timeouts.
FAST = WebhookSettings(
    timeout=2.0,
    max_attempts=5,
    backoff_base=0.05,
    backoff_max=0.2,
    disable_after=0,
    poll_interval=0.05,
    lease=5.0,
)


def sim_record(call_id: str, scenario: Path = ANSWERED) -> dict[str, Any]:
    """The final record of a real sim run of `scenario`, under `call_id`."""
    record = run_scenario(load_scenario(scenario)).to_dict()
    record["id"] = call_id
    return record


def new_account(database: Database, name: str = "Acme") -> tuple[str, str]:
    with database.session() as s:
        issued = accounts.create_account(s, name)
    return issued.account_id, issued.api_key


def add_call(database: Database, account_id: str, callback_url: str | None = None) -> str:
    with database.session() as s:
        call, _ = call_store.create_call(
            s,
            account_id,
            call_store.NewCall(
                service="click_to_call",
                number="+918047001000",
                from_numbers=("+919811000101",),
                to_numbers=("+919911000001",),
                request={},
                callback_url=callback_url,
            ),
        )
        return call.id


class Write:
    def __init__(self, call_id: str, record: dict[str, Any], final: bool) -> None:
        self.call_id, self.record, self.final = call_id, record, final


def finish(database: Database, call_id: str, record: dict[str, Any]) -> int:
    """What the runtime's writer does at a call's end: the final record and its events,
    in one transaction."""
    with database.session() as s:
        call_store.finish_call(s, call_id, record)
        return on_call_writes(s, [Write(call_id, record, True)])


def calls_with_events(database: Database, account_id: str, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        call_id = add_call(database, account_id)
        finish(database, call_id, sim_record(call_id))
        ids.append(call_id)
    return ids


@contextmanager
def running_worker(
    database: Database, settings: WebhookSettings = FAST
) -> Iterator[DeliveryWorker]:
    """A delivery worker on its own event loop in a thread, as `legato serve` runs it."""
    loop = asyncio.new_event_loop()
    worker = DeliveryWorker(database, settings)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(worker.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30), "the worker did not start"
    try:
        yield worker
    finally:
        stopping = asyncio.run_coroutine_threadsafe(worker.stop(), loop)
        try:
            stopping.result(30)
        except TimeoutError:  # show where it hangs
            for th_id, frame in sys._current_frames().items():
                print("THREAD", th_id, "".join(traceback.format_stack(frame)[-6:]))
            for task in asyncio.all_tasks(loop):
                task.print_stack()
            raise
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

"""Webhook benchmark: call end -> `call.completed` received, at ~200 completed calls/s.

A real `legato serve` process (sim driver at wall-clock speed, its delivery worker, a fresh
SQLite file or PostgreSQL database) runs click-to-call calls placed through the REST API
at a fixed rate; each call's phones answer at once and hang up within a second, so calls
complete at the offered rate. One endpoint points at an asyncio HTTP receiver on loopback
in this process; by default each store is measured twice, with the endpoint taking only
`call.completed` (a status callback: one request per call) and taking every event type
(eight per call). For every `call.completed` received we take `received - data.ended_at`;
`ended_at` is the instant the call ended on the server's clock (the record's times count
from when the runtime started the call), on the same machine.

Also reported: the outbox lag (call end -> the event row committed, from the store),
every event's delivery count, so duplicates or losses show, and the server process's CPU
time per call (Linux), the figure that says whether a rate fits the machine.

Usage: python bench/webhooks.py [--quick] [--rate 200] [--seconds 20] [--backends sqlite,postgresql]
                               [--events call.completed|all|TYPE,...]
Ends with one `name=value` line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from legato.store import accounts
from legato.store.db import Database
from legato.store.models import Call
from legato.store.scratch import scratch_url
from legato.testing import ServeProcess, free_port
from legato.webhooks.models import WebhookEvent

NUMBER = "+918047001000"
AGENTS = [f"+9198110{i:05d}" for i in range(50)]
CUSTOMERS = [f"+9199110{i:05d}" for i in range(50)]
ENV = {"LEGATO_WEBHOOK_POLL_INTERVAL": "0.5"}
#: Subscriptions measured by default: the endpoint of a status callback (one event per
#: call) and one that takes every type (eight per call).
SUBSCRIPTIONS = {"completed": ["call.completed"], "all": []}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


# ----------------------------------------------------------------------- receiver
class Receiver:
    """A minimal keep-alive HTTP/1.1 server on asyncio: it notes each request's arrival
    time and body, and answers 200 at once (the receiver must not be the bottleneck)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.completed: dict[str, float] = {}  # call id -> latency (s), first sighting
        self.ids: Counter[str] = Counter()
        self.received = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()

    def start(self) -> Receiver:
        self.thread.start()
        self.ready.wait(10)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port, backlog=1024)
        )
        self.ready.set()
        self.loop.run_until_complete(server.serve_forever())

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                now = time.time()
                length = 0
                msg_id = ""
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    key = name.strip().lower()
                    if key == b"content-length":
                        length = int(value)
                    elif key == b"webhook-id":
                        msg_id = value.strip().decode()
                body = await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                self._note(now, msg_id, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _note(self, now: float, msg_id: str, body: bytes) -> None:
        self.received += 1
        self.ids[msg_id] += 1
        if b'"type":"call.completed"' not in body[:40]:
            return
        data = json.loads(body)["data"]
        call_id = data["id"]
        if call_id not in self.completed and data.get("ended_at"):
            ended = datetime.fromisoformat(data["ended_at"]).timestamp()
            self.completed[call_id] = now - ended


# ----------------------------------------------------------------------- server
def serve(db_url: str, phones: Path, workdir: Path) -> ServeProcess:
    return ServeProcess("--db", db_url, "--phones", str(phones), cwd=workdir, env=ENV,
                        ready_within=90)


def stop(server: ServeProcess) -> None:
    text = server.stop()
    if "Traceback" in text or "ERROR" in text:
        print(f"server log has errors ({text.count('Traceback')} tracebacks):")
        print(text[-3000:])


# ----------------------------------------------------------------------- load
class _Conn:
    """One keep-alive HTTP/1.1 connection to the server (the load generator's own client:
    httpx costs ~1 ms of CPU per request, and the bench shares the CPUs with the server)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


async def offer(base: str, key: str, rate: float, seconds: float) -> tuple[list[str], int]:
    """Place calls at `rate` per second for `seconds`; returns the call ids and failures."""
    ids: list[str] = []
    failures = 0
    host, port = base.removeprefix("http://").rsplit(":", 1)
    head = (
        f"POST /v1/calls HTTP/1.1\r\nhost: {host}:{port}\r\nauthorization: Bearer {key}\r\n"
        "content-type: application/json\r\ncontent-length: "
    ).encode()
    idle: list[_Conn] = []
    conns: list[_Conn] = []

    async def one(i: int) -> None:
        nonlocal failures
        body = {
            "service": "click_to_call",
            "number": NUMBER,
            "from": AGENTS[i % len(AGENTS)],
            "to": CUSTOMERS[i % len(CUSTOMERS)],
        }
        conn = idle.pop() if idle else None
        try:
            if conn is None:
                conn = _Conn(*await asyncio.open_connection(host, int(port)))
                conns.append(conn)
            status, answer = await asyncio.wait_for(conn.post(head, json.dumps(body).encode()), 30)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            failures += 1
            return  # the connection is dropped, not reused
        idle.append(conn)
        if status == 201:
            ids.append(json.loads(answer)["id"])
        else:
            failures += 1

    start = time.perf_counter()
    tasks = []
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    for conn in conns:
        conn.writer.close()
    return ids, failures


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_backend(
    backend: str, events: list[str], rate: float, seconds: float, workdir: Path
) -> dict[str, Any]:
    """One `legato serve` on a fresh store, an endpoint subscribed to `events` (empty:
    every type), calls at `rate` for `seconds`."""
    phones = workdir / "phones.yaml"
    phones.write_text(
        "phones:\n"
        + "".join(f'  "{a}": {{answer_after: 0.1, hangup_after: 5}}\n' for a in AGENTS)
        + "".join(f'  "{c}": {{answer_after: 0.1, hangup_after: 0.3}}\n' for c in CUSTOMERS)
        + "default: {unreachable: true}\n"
    )
    with ExitStack() as stack:
        url = stack.enter_context(scratch_url(backend))
        database = Database(url)
        stack.callback(database.dispose)
        database.upgrade()
        with database.session() as s:
            key = accounts.create_account(s, "Bench").api_key
        receiver = Receiver().start()
        server = serve(url, phones, workdir)
        stack.callback(stop, server)
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.base, headers=auth, timeout=30) as http:
            http.post("/v1/numbers", json={"number": NUMBER}).raise_for_status()
            if not os.environ.get("BENCH_NO_ENDPOINT"):  # baseline: the service alone
                hook = f"http://127.0.0.1:{receiver.port}/hook"
                sub = {"url": hook, "events": events} if events else {"url": hook}
                http.post("/v1/webhooks/endpoints", json=sub).raise_for_status()
        asyncio.run(offer(server.base, key, rate, min(2.0, seconds)))  # warm-up
        warm = set(receiver.completed)
        t0 = time.perf_counter()
        cpu0 = cpu_seconds(server.proc.pid)
        ids, failures = asyncio.run(offer(server.base, key, rate, seconds))
        offered_for = time.perf_counter() - t0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not set(ids) <= set(receiver.completed):
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        server_cpu = cpu_seconds(server.proc.pid) - cpu0
        latencies = [receiver.completed[i] * 1000 for i in ids if i in receiver.completed]
        with database.session() as s:
            rows = s.execute(
                select(Call.ended_at, WebhookEvent.created_at)
                .join(WebhookEvent, WebhookEvent.call_id == Call.id)
                .where(Call.id.in_(ids), WebhookEvent.type == "call.completed")
            ).all()
        outbox = [(c - e).total_seconds() * 1000 for e, c in rows if e is not None]
        with database.session() as s:
            stored = s.execute(select(Call.ended_at, Call.updated_at).where(Call.id.in_(ids)))
            store_lag = [(u - e).total_seconds() * 1000 for e, u in stored if e is not None]
        dups = sum(n - 1 for n in receiver.ids.values() if n > 1)
        return {
            "backend": backend,
            "calls": len(ids),
            "failures": failures,
            "rate": len(ids) / offered_for,
            "completed": len(latencies),
            "missing": len(set(ids) - set(receiver.completed)),
            "p50": pct(latencies, 0.50),
            "p99": pct(latencies, 0.99),
            "max": max(latencies, default=float("nan")),
            "store_p50": pct(store_lag, 0.50),
            "store_p99": pct(store_lag, 0.99),
            "outbox_p50": pct(outbox, 0.50),
            "outbox_p99": pct(outbox, 0.99),
            "events": receiver.received,
            "duplicates": dups,
            "elapsed": elapsed,
            "warm": len(warm),
            "cpu_ms": server_cpu * 1000 / max(1, len(ids)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="SQLite only, 8 s of load")
    parser.add_argument("--rate", type=float, default=200.0, help="calls placed per second")
    parser.add_argument("--seconds", type=float, default=None, help="seconds of load")
    parser.add_argument("--backends", default=None, help="comma list: sqlite,postgresql")
    parser.add_argument(
        "--events",
        default=None,
        help="comma list of types the endpoint takes, or 'all'; default: two runs, "
        "call.completed only, then every type",
    )
    args = parser.parse_args()
    if args.events is None:
        subscriptions = SUBSCRIPTIONS
    elif args.events == "all":
        subscriptions = {"all": []}
    else:
        types = [e for e in args.events.split(",") if e]
        subscriptions = {"completed" if types == ["call.completed"] else "custom": types}
    seconds = args.seconds or (8.0 if args.quick else 20.0)
    backends = (args.backends or ("sqlite" if args.quick else "sqlite,postgresql")).split(",")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            for name, events in subscriptions.items():
                workdir = Path(tmp) / f"{backend}-{name}"
                workdir.mkdir()
                result = run_backend(backend.strip(), events, args.rate, seconds, workdir)
                result["name"] = f"{backend.strip()}_{name}" if name != "completed" else backend
                result["subscription"] = "call.completed" if name == "completed" else name
                results.append(result)
    table = Table(
        min_width=150, title=f"call end -> call.completed received ({args.rate:g} calls/s offered)"
    )
    for col in (
        "store",
        "endpoint takes",
        "calls",
        "achieved/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "store p50 ms",
        "store p99 ms",
        "outbox p50 ms",
        "outbox p99 ms",
        "events",
        "dups",
        "missing",
        "server CPU ms/call",
    ):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            r["backend"],
            r["subscription"],
            str(r["calls"]),
            f"{r['rate']:.0f}",
            f"{r['p50']:.1f}",
            f"{r['p99']:.1f}",
            f"{r['max']:.1f}",
            f"{r['store_p50']:.1f}",
            f"{r['store_p99']:.1f}",
            f"{r['outbox_p50']:.1f}",
            f"{r['outbox_p99']:.1f}",
            str(r["events"]),
            str(r["duplicates"]),
            str(r["missing"]),
            f"{r['cpu_ms']:.2f}",
        )
    Console(width=220).print(table)
    print("goal: p99 < 100 ms; events = requests received (8 per call with every type)")
    headline = " ".join(
        f"{r['name']}_p50_ms={r['p50']:.1f} {r['name']}_p99_ms={r['p99']:.1f} "
        f"{r['name']}_calls_per_s={r['rate']:.0f} {r['name']}_missing={r['missing']} "
        f"{r['name']}_server_cpu_ms_per_call={r['cpu_ms']:.2f}"
        for r in results
    )
    print(headline)


if __name__ == "__main__":
    main()

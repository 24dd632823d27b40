"""API benchmark: create-call latency and GET /v1/calls/{id} throughput, SQLite vs PostgreSQL.

For each store (a fresh SQLite file and a freshly created PostgreSQL database on
127.0.0.1:5432), a real `legato serve` app runs under uvicorn on loopback with the sim
driver. We measure:

- create-call latency: from the request's arrival at the server to the first Dial command
  handed to the sim driver (the runtime stamps both), p50/p99, over sequential
  `POST /v1/calls` (click-to-call; the virtual phones ring 60 s so calls stay live);
- the client-side round trip of the same POSTs, for reference;
- `GET /v1/calls/{id}` requests per second with N concurrent keep-alive clients.

Usage: python bench/api.py [--quick]. Ends with one `name=value` line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from legato.api.app import ServerSettings, create_app
from legato.store import accounts
from legato.store.db import Database
from legato.store.scratch import scratch_url

NUMBER = "+918047001000"
AGENT = "+919811000001"
CUSTOMER = "+919811000002"
PHONES = "default: {answer_after: 60, hangup_after: 5}\n"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


class Live:
    """The app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.app = app
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="error", access_log=False
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


async def get_throughput(
    base: str, key: str, ids: list[str], seconds: float, clients: int
) -> float:
    headers = {"Authorization": f"Bearer {key}"}
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=base, headers=headers) as c:
            i = n
            while time.perf_counter() < stop_at:
                r = await c.get(f"/v1/calls/{ids[i % len(ids)]}")
                assert r.status_code == 200, r.text
                done += 1
                i += clients

    start = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(clients)))
    return done / (time.perf_counter() - start)


def run_backend(
    backend: str, creates: int, get_seconds: float, clients: int, phones: Path
) -> dict[str, float]:
    with scratch_url(backend) as url:
        database = Database(url)
        database.upgrade()
        with database.session() as s:
            key = accounts.create_account(s, "Bench").api_key
        database.dispose()
        live = Live(create_app(ServerSettings(db_url=url, sim_speed=1.0, phones=phones)))
        try:
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=live.base, headers=headers) as c:
                c.post("/v1/numbers", json={"number": NUMBER}).raise_for_status()
                body = {"service": "click_to_call", "number": NUMBER, "from": AGENT, "to": CUSTOMER}
                for _ in range(20):  # warm-up
                    c.post("/v1/calls", json=body).raise_for_status()
                runtime = live.app.state.runtime
                runtime.metrics.dial_latencies.clear()
                ids, rtt = [], []
                cpu0 = time.process_time()
                for _ in range(creates):
                    t = time.perf_counter()
                    r = c.post("/v1/calls", json=body)
                    rtt.append(time.perf_counter() - t)
                    assert r.status_code == 201, r.text
                    ids.append(r.json()["id"])
                deadline = time.monotonic() + 10
                while len(runtime.metrics.dial_latencies) < creates:
                    assert time.monotonic() < deadline, "calls did not all dial"
                    time.sleep(0.01)
                dial = list(runtime.metrics.dial_latencies[:creates])
                cpu_create = (time.process_time() - cpu0) / creates
            cpu0 = time.process_time()
            rps = asyncio.run(get_throughput(live.base, key, ids, get_seconds, clients))
            cpu_get = (time.process_time() - cpu0) / max(1.0, rps * get_seconds)
        finally:
            live.stop()
    ms = 1000.0
    return {
        "dial_p50_ms": pct(dial, 0.50) * ms,
        "dial_p99_ms": pct(dial, 0.99) * ms,
        "dial_mean_ms": statistics.fmean(dial) * ms,
        "post_rtt_p50_ms": pct(rtt, 0.50) * ms,
        "post_rtt_p99_ms": pct(rtt, 0.99) * ms,
        "get_rps": rps,
        "cpu_create_ms": cpu_create * ms,
        "cpu_get_ms": cpu_get * ms,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (< 1 minute)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent GET clients")
    args = parser.parse_args()
    creates, get_seconds = (200, 3.0) if args.quick else (2000, 10.0)
    with tempfile.TemporaryDirectory() as tmp:
        phones = Path(tmp) / "phones.yaml"
        phones.write_text(PHONES)
        results = {
            b: run_backend(b, creates, get_seconds, args.clients, phones)
            for b in ("sqlite", "postgresql")
        }
    cols = [
        ("dial_p50_ms", "create→Dial p50 ms"),
        ("dial_p99_ms", "create→Dial p99 ms"),
        ("post_rtt_p50_ms", "POST rtt p50 ms"),
        ("post_rtt_p99_ms", "POST rtt p99 ms"),
        ("get_rps", f"GET /v1/calls/{{id}} req/s ({args.clients} clients)"),
        ("cpu_create_ms", "CPU ms per create (client+server)"),
        ("cpu_get_ms", "CPU ms per GET (client+server)"),
    ]
    print(
        f"API benchmark: {creates} click-to-call creates, GET for {get_seconds:g} s per store"
        f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    print(f"{'metric':<42}{'sqlite':>12}{'postgresql':>14}")
    for key, label in cols:
        print(f"{label:<42}{results['sqlite'][key]:>12.2f}{results['postgresql'][key]:>14.2f}")
    goal = all(r["dial_p99_ms"] < 10.0 for r in results.values())
    print(f"goal create→Dial p99 < 10 ms: {'met' if goal else 'NOT met'}")
    s, p = results["sqlite"], results["postgresql"]
    print(
        f"sqlite_create_p50_ms={s['dial_p50_ms']:.2f} sqlite_create_p99_ms={s['dial_p99_ms']:.2f} "
        f"pg_create_p50_ms={p['dial_p50_ms']:.2f} pg_create_p99_ms={p['dial_p99_ms']:.2f} "
        f"sqlite_get_rps={s['get_rps']:.0f} pg_get_rps={p['get_rps']:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

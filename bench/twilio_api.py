"""Twilio-layer benchmark: the official `twilio` library against `legato serve`, SQLite vs
PostgreSQL in one run.

For each store a real app runs under uvicorn on loopback (sim driver). We measure with
`twilio.rest.Client` (what a customer's code does): `calls.create` with inline TwiML
(round trip, p50/p99), `calls(sid).fetch` round trip, and, for the same calls, the time
from the create request to the signed final status callback received by a real local
receiver (the subscriber is busy, so each call ends at once).

Usage: python bench/twilio_api.py [--quick]. Ends with one `name=value` line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import uvicorn
from twilio.rest import Client

from legato.api.app import ServerSettings, create_app
from legato.store import accounts
from legato.store.db import Database
from legato.store.scratch import scratch_url
from legato.twilio.ids import account_sid

NUMBER, BUSY = "+918047001000", "+919811000201"
TWIML = "<Response><Say>Hello</Say></Response>"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Receiver:
    """Records when each CallSid's final callback arrived."""

    def __init__(self) -> None:
        self.final: dict[str, float] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = dict(parse_qsl(body))
                owner.final.setdefault(form.get("CallSid", ""), time.perf_counter())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/status"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def run(backend: str, calls: int, tmp: Path) -> dict[str, float]:
    with scratch_url(backend, tmp) as url:
        phones = tmp / "phones.yaml"
        phones.write_text(f'phones:\n  "{BUSY}": {{busy: true}}\ndefault: {{unreachable: true}}\n')
        app = create_app(ServerSettings(db_url=url, sim_speed=1.0, phones=phones))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        db = Database(url)
        with db.session() as s:
            issued = accounts.create_account(s, "Bench")
        httpx.post(base + "/v1/numbers", json={"number": NUMBER},
                   headers={"Authorization": f"Bearer {issued.api_key}"}).raise_for_status()
        client = Client(account_sid(issued.account_id), issued.api_key, environment={})
        client.api.base_url = base
        receiver = Receiver()
        created, fetched, sent = [], [], {}
        for _ in range(calls):
            t0 = time.perf_counter()
            call = client.calls.create(to=BUSY, from_=NUMBER, twiml=TWIML,
                                       status_callback=receiver.url)
            created.append(time.perf_counter() - t0)
            sent[call.sid] = t0
            t1 = time.perf_counter()
            client.calls(call.sid).fetch()
            fetched.append(time.perf_counter() - t1)
        deadline = time.monotonic() + 60
        while len(receiver.final) < calls and time.monotonic() < deadline:
            time.sleep(0.05)
        to_callback = [receiver.final[s] - t for s, t in sent.items() if s in receiver.final]
        server.should_exit = True
        thread.join(30)
        receiver.httpd.shutdown()
        db.dispose()
        return {"create_p50": _pct(created, 0.5), "create_p99": _pct(created, 0.99),
                "fetch_p50": _pct(fetched, 0.5), "callback_p50": _pct(to_callback, 0.5),
                "callback_p99": _pct(to_callback, 0.99),
                "delivered": len(to_callback) / calls * 100,
                "mean": statistics.mean(created) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (< 1 minute)")
    args = parser.parse_args()
    calls = 100 if args.quick else 500
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgresql"):
            results[backend] = run(backend, calls, Path(tmp))
    print(f"{'store':<11}{'create p50':>11}{'create p99':>11}{'fetch p50':>10}"
          f"{'create→final callback p50':>27}{'p99':>8}{'delivered':>10}  (ms; {calls} calls)")
    for backend, r in results.items():
        print(f"{backend:<11}{r['create_p50']:>11.1f}{r['create_p99']:>11.1f}"
              f"{r['fetch_p50']:>10.1f}{r['callback_p50']:>27.1f}{r['callback_p99']:>8.1f}"
              f"{r['delivered']:>9.0f}%")
    s, p = results["sqlite"], results["postgresql"]
    print(f"sqlite_create_p99_ms={s['create_p99']:.1f} pg_create_p99_ms={p['create_p99']:.1f} "
          f"sqlite_callback_p99_ms={s['callback_p99']:.1f} "
          f"pg_callback_p99_ms={p['callback_p99']:.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

"""Real servers for the Twilio-layer tests: `legato serve`'s app under uvicorn on loopback,
and a customer's web app that serves TwiML and records every request Legato sends."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import uvicorn
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from legato.api.app import ServerSettings, create_app
from legato.store import accounts
from legato.store.db import Database
from legato.testing import free_port
from legato.twilio.ids import account_sid

NUMBER = "+918047001000"
SUBSCRIBER = "+919811000001"  # answers, presses 1 at the first gather
AGENT = "+919811000101"  # answers the dial
AGENT_2 = "+919811000102"  # never answers
BUSY = "+919811000201"
SLOW = "+919811000301"  # rings for a long time
SILENT = "+919811000401"  # answers, presses nothing, hangs up late

PHONES = f"""
phones:
  "{SUBSCRIBER}": {{answer_after: 1, dtmf: ["1"], hangup_after: 120}}
  "{AGENT}": {{answer_after: 1, hangup_after: 5}}
  "{AGENT_2}": {{no_answer: true}}
  "{BUSY}": {{busy: true}}
  "{SLOW}": {{answer_after: 500}}
  "{SILENT}": {{answer_after: 1, hangup_after: 120}}
default: {{unreachable: true}}
"""


class LegatoServer:
    """The real app (store, runtime, sim network, Twilio layer) under uvicorn, in a thread."""

    def __init__(self, db_url: str, phones: Path, speed: float) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.app = create_app(ServerSettings(db_url=db_url, sim_speed=speed, phones=phones))
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the Legato server did not start")
            time.sleep(0.02)
        self.database = Database(db_url)

    def account(self, name: str = "Acme") -> tuple[str, str, str]:
        """(account id, AC sid, API key) of a new account."""
        with self.database.session() as s:
            issued = accounts.create_account(s, name)
        return issued.account_id, account_sid(issued.account_id), issued.api_key

    def add_number(self, key: str, number: str) -> None:
        r = httpx.post(self.base + "/v1/numbers", json={"number": number},
                       headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 201, r.text

    def client(self) -> tuple[Client, str]:
        """The official client for a new account with the number, and its API key."""
        _, sid, key = self.account()
        self.add_number(key, NUMBER)
        client = Client(sid, key, environment={})
        client.api.base_url = self.base
        return client, key

    def completed(self, key: str, call_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """The native record of a call, once it is completed."""
        deadline = time.monotonic() + timeout
        while True:
            doc: dict[str, Any] = httpx.get(f"{self.base}/v1/calls/{call_id}",
                                            headers={"Authorization": f"Bearer {key}"}).json()
            if doc["state"] == "completed":
                return doc
            assert time.monotonic() < deadline, doc
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.database.dispose()


@dataclass
class Seen:
    """One request the customer's app received from Legato."""

    method: str
    url: str
    path: str
    params: list[tuple[str, str]]
    signature: str | None

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)

    def valid(self, token: str) -> bool:
        class Multi(dict[str, list[str]]):
            def getall(self, name: str) -> list[str]:
                return self[name]

        form = Multi()
        if self.method == "POST":
            for k, v in self.params:
                form.setdefault(k, []).append(v)
        return RequestValidator(token).validate(self.url, form, self.signature or "")


@dataclass
class CustomerApp:
    """A web app on loopback: `routes` map a path to TwiML (str) or a function of the
    request; every request is recorded in `seen`."""

    routes: dict[str, str | Callable[[Seen], tuple[int, str, str]]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        app = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                params = parse_qsl(parts.query if self.command == "GET" else body,
                                   keep_blank_values=True)
                seen = Seen(self.command, f"http://127.0.0.1:{app.port}{self.path}",
                            parts.path, params, self.headers.get("X-Twilio-Signature"))
                app.seen.append(seen)
                route = app.routes.get(parts.path)
                if route is None:
                    status, ctype, text = 200, "text/plain", "ok"
                elif isinstance(route, str):
                    status, ctype, text = 200, "application/xml", route
                else:
                    status, ctype, text = route(seen)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def at(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 20.0) -> list[Seen]:
        deadline = time.monotonic() + timeout
        while len(self.at(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: {len(self.at(path))} of {count} requests: "
                                     f"{[(s.path, s.params) for s in self.seen]}")
            time.sleep(0.02)
        return self.at(path)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

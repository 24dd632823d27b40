"""A real HTTP receiver on 127.0.0.1 for webhook tests: records every request, and can
answer with a chosen status, answer slowly, or be shut down and brought back on its port."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when the body was read
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Behaviour:
    """How the receiver answers: a status, or a function of the request count."""

    status: int | Callable[[int], int] = 200
    delay: float = 0.0


@dataclass
class Receiver:
    port: int = 0
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                at = time.time()
                if len(body) < length:  # the sender died mid-request: nothing was received
                    self.close_connection = True
                    return
                b = receiver.behaviour
                with receiver.lock:
                    n = len(receiver.requests)
                status = b.status(n) if callable(b.status) else b.status
                if b.delay:
                    time.sleep(b.delay)
                with receiver.lock:
                    receiver.requests.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            at,
                            status,
                        )
                    )
                payload = b"ok" if status < 300 else b"nope"
                try:
                    self.send_response(status)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def delivered(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def wait(self, predicate: Callable[[list[Received]], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.delivered()):
                return
            time.sleep(0.02)
        raise AssertionError(
            f"receiver: condition not met in {timeout} s; got {len(self.requests)} requests"
        )


"""Real Legato processes for tests and benchmarks: free loopback ports, and `legato serve`
as a child process that is ready when made.

Legato's own tests, its benches and a user's integration tests all start servers and SIP
peers on loopback ports; one implementation keeps them from racing each other for ports.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

#: Ports handed out lie below the kernel's ephemeral range (Linux: 32768-60999).
_LOW, _HIGH = 20000, 32000


def _ephemeral_low() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _free(port: int, host: str) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for TCP and UDP on `host`, picked below the ephemeral range. A port
    the kernel gave to a socket bound to port 0 and then closed can be given again to the
    next such socket (a client, SIPp's media sockets, another server) before the caller
    binds it: SIPp then fails with "Address already in use" (seen in CI)."""
    high = min(_HIGH, _ephemeral_low())
    for _ in range(200):
        port = random.randrange(_LOW, high)
        if _free(port, host):
            return port
    raise OSError(f"no free port in {_LOW}-{high} on {host}")


class ServeProcess:
    """`legato serve ARGS --port PORT` on loopback, in its own process, its output in a
    log file under `cwd`; made only once it answers HTTP. `kill()` is SIGKILL (no clean
    shutdown: a crash), `stop()` SIGTERM then wait."""

    def __init__(
        self,
        *args: str,
        cwd: Path,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        ready_within: float = 60.0,
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f"serve-{self.port}-{time.time_ns()}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from legato.cli.main import app; app()", "serve",
             "--port", str(self.port), "--log-level", "warning", *args],
            cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.close()
                raise RuntimeError(
                    f"legato serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.base + "/openapi.json", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:  # not listening yet, or half started
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"legato serve did not start in {ready_within:g} s:\n{self.output()}")

    def output(self) -> str:
        """What the server printed so far (its log)."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> str:
        """SIGTERM (a graceful stop), then the output."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.output()

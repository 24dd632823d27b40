"""A real `legato serve` process for crash tests and the benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .receiver import free_port


class Serve:
    """`legato serve` on a free loopback port; `kill()` is SIGKILL, no clean shutdown."""

    def __init__(
        self,
        db_url: str,
        phones: Path,
        cwd: Path,
        *,
        speed: float = 1.0,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = (cwd / f"serve-{self.port}-{time.time_ns()}.log").open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from legato.cli.main import app; app()",
                "serve",
                "--port",
                str(self.port),
                "--db",
                db_url,
                "--phones",
                str(phones),
                "--sim-speed",
                str(speed),
                "--log-level",
                "warning",
            ],
            cwd=cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"legato serve exited with {self.proc.returncode}")
            try:
                if httpx.get(self.base + "/openapi.json", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("legato serve did not start in 60 s")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()

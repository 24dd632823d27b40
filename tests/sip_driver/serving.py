"""`legato serve --driver sip` as a new user runs it, for the tests: a store set up with the
CLI, the server in its own process, SIPp phones behind its trunk, and the REST API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from legato.testing import ServeProcess

from .harness import SCENARIOS, free_port

SRC = str(Path(__file__).resolve().parents[2] / "src")
CLI = [sys.executable, "-c", "from legato.cli.main import app; app()"]


def environment() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))


def legato(*args: str) -> str:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True,
                            env=environment(), timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def http(method: str, url: str, key: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def finished(proc: subprocess.Popen[bytes], cwd: Path) -> tuple[int, str]:
    """A SIPp run's exit code and the end of its output and error log."""
    out = proc.communicate(timeout=60)[0].decode(errors="replace")
    errors = "".join(p.read_text(errors="replace")[-2000:] for p in cwd.glob("*_errors.log"))
    return proc.returncode, out[-1500:] + errors


def sipp_uas(
    cwd: Path, port: int, scenario: str, calls: int, **sets: int
) -> subprocess.Popen[bytes]:
    """A SIPp phone behind the trunk (`-set NAME MS` for each of `sets`)."""
    args = ["sipp", "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port),
            "-m", str(calls), "-nostdin", "-timeout", "40", "-timeout_error"]
    for name, value in sets.items():
        args += ["-set", name, str(value)]
    return subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def sipp_uac(cwd: Path, scenario: Path, sip: int, number: str, *extra: str, **sets: int
             ) -> tuple[int, str]:
    """One SIPp call to the Legato ``number`` at 127.0.0.1:``sip``; its exit code and output."""
    args = ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(free_port()), "-m", "1",
            "-nostdin", "-timeout", "40", "-timeout_error", "-trace_err",
            "-s", number.lstrip("+"), *extra]
    for name, value in sets.items():
        args += ["-set", name, str(value)]
    proc = subprocess.Popen([*args, f"127.0.0.1:{sip}"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return finished(proc, cwd)


@dataclass
class Store:
    """A SQLite store with one account (made with `legato accounts create`)."""

    path: Path
    url: str = field(init=False)
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"sqlite:///{self.path / 'legato.db'}"
        self.key = json.loads(legato("accounts", "create", "Acme", "--db", self.url, "--json"))[
            "api_key"]

    def add_number(self, number: str, config: dict[str, Any] | None = None) -> None:
        args = ["numbers", "add", number, "--db", self.url]
        if config is not None:
            file = self.path / f"config-{number.lstrip('+')}.json"
            file.write_text(json.dumps(config), encoding="utf-8")
            args += ["--config", str(file)]
        legato(*args)


class Server:
    """`legato serve --driver sip` on free ports, its trunk at ``trunk``; `stop()` returns
    its output."""

    def __init__(self, store: Store, trunk: int | None, *extra: str) -> None:
        self.store = store
        self.sip, self.port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.args = ["--driver", "sip", "--sip-listen", f"127.0.0.1:{self.sip}",
                     "--db", store.url,
                     *([] if trunk is None else ["--trunk", f"sip:127.0.0.1:{trunk}"]), *extra]
        self.process: ServeProcess | None = None

    def run_to_exit(self) -> subprocess.CompletedProcess[str]:
        """Run it expecting it to refuse to start."""
        return subprocess.run([*CLI, "serve", "--port", str(self.port), *self.args],
                              env=environment(), capture_output=True, text=True, timeout=60,
                              cwd=self.store.path)

    def start(self) -> Server:
        self.process = ServeProcess(*self.args, cwd=self.store.path, port=self.port,
                                    env=environment(), ready_within=30)
        return self

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return http(method, f"{self.base}{path}", self.store.key, body)

    def calls(self, count: int, path: str = "/v1/calls") -> list[dict[str, Any]]:
        """The full records of the first ``count`` calls, once they are all completed."""
        listed: list[dict[str, Any]] = []
        for _ in range(150):
            listed = self.api("GET", path)["data"]
            if len(listed) >= count and all(c["state"] == "completed" for c in listed):
                break
            time.sleep(0.1)
        return [self.api("GET", f"/v1/calls/{c['id']}") for c in listed]

    def stop(self) -> str:
        if self.process is None:
            return ""
        out, self.process = self.process.stop(), None
        return out

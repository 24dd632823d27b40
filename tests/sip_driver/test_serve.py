"""`legato serve --driver sip` as a new user tries it: a trunk pointing at a SIPp UAS, a
click-to-call placed through the REST API, and a stored record equal to `legato simulate`'s
for the same behaviour. Skipped until `legato serve` is wired to the sip driver (the API
app's settings carry `sip`; see docs/sip.md, "Status")."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from legato.api.app import ServerSettings

from .harness import SCENARIOS, Case, facts, free_port, run_sim
from .test_statuses import AGENT, CUSTOMER, NUMBER

WIRED = "sip" in {f.name for f in dataclasses.fields(ServerSettings)}
pytestmark = [
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp not installed"),
    pytest.mark.skipif(not WIRED, reason="legato serve is not wired to the sip driver yet"),
]
SRC = str(Path(__file__).resolve().parents[2] / "src")


def legato(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-c", "from legato.cli.main import app; app()",
                             *args], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def http(method: str, url: str, key: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_click_to_call_through_the_api_over_sip(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
    db = f"sqlite:///{tmp_path / 'legato.db'}"
    key = json.loads(legato("accounts", "create", "Acme", "--db", db, "--json", env=env))[
        "api_key"]
    legato("numbers", "add", NUMBER, "--db", db, env=env)
    trunk, sip, port = free_port(), free_port(), free_port()
    # Both legs reach the same SIPp phone: it rings 0.3 s, answers (and the re-INVITE of
    # flow IV), and stays until Legato's BYE at the maximum duration.
    phones = subprocess.Popen(
        ["sipp", "-sf", str(SCENARIOS / "uas_ring_answer.xml"), "-i", "127.0.0.1",
         "-p", str(trunk), "-m", "2", "-nostdin", "-timeout", "30", "-timeout_error",
         "-set", "ring_ms", "300"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    server = subprocess.Popen(
        [sys.executable, "-c", "from legato.cli.main import app; app()", "serve",
         "--driver", "sip", "--sip-listen", f"127.0.0.1:{sip}", "--trunk",
         f"sip:127.0.0.1:{trunk}", "--db", db, "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/openapi.json", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        created = http("POST", f"{base}/v1/calls", key, {
            "service": "click_to_call", "number": NUMBER, "from": AGENT, "to": CUSTOMER,
            "max_duration": 2})
        record: dict[str, Any] = {}
        for _ in range(200):
            record = http("GET", f"{base}/v1/calls/{created['id']}", key)
            if record.get("state") == "completed":
                break
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=20)
        sipp_out = phones.communicate(timeout=40)[0].decode(errors="replace")
    assert record.get("state") == "completed", record
    assert (record["status"], record["disconnected_by"]) == ("ANSWER", "platform")
    assert phones.returncode == 0, sipp_out[-2000:]  # both legs answered and got their BYE
    scenario = {"name": "serve", "service": "click_to_call", "number": NUMBER, "from": AGENT,
                "to": CUSTOMER, "config": {"max_duration": 2},
                "phones": {AGENT: {"answer_after": 0.3}, CUSTOMER: {"answer_after": 0.3}}}
    assert facts(record) == facts(run_sim(Case("serve", scenario, {}, "ANSWER", "platform"),
                                          tmp_path))

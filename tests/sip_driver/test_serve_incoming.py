"""Incoming SIP calls under `legato serve --driver sip`, as a business would run them: its
numbers are in the store (one added with the CLI before the server started, one through
the API while it runs), a SIPp caller dials each one, the flow rings an agent behind the
trunk, and the call shows up in the API with the record `legato simulate` gives for the same
behaviour. A blacklist entry added through the API applies to the very next INVITE."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .harness import SCENARIOS, Case, facts, free_port, now_iso, run_sim
from .test_serve import SRC, http, legato, pytestmark  # noqa: F401 - pytestmark applies here
from .test_statuses import AGENT, CALLER, NUMBER

NUMBER_B = "+918047001001"
FLOW = {"flow": [{"dial": {"to": [AGENT]}}]}


def sipp(tmp: Path, scenario: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["sipp", "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(free_port()),
         "-nostdin", "-timeout", "30", "-timeout_error", "-trace_err", *args],
        cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def finished(proc: subprocess.Popen[bytes], tmp: Path) -> tuple[int, str]:
    out = proc.communicate(timeout=40)[0].decode(errors="replace")
    errors = "".join(p.read_text(errors="replace")[-2000:] for p in tmp.glob("*_errors.log"))
    return proc.returncode, out[-1500:] + errors


def call_from(sip: int, number: str, tmp: Path, scenario: str, **sets: int) -> tuple[int, str]:
    args = ["-m", "1", "-key", "caller", CALLER.lstrip("+"), "-s", number.lstrip("+")]
    for name, value in sets.items():
        args += ["-set", name, str(value)]
    return finished(sipp(tmp, scenario, *args, f"127.0.0.1:{sip}"), tmp)


def test_incoming_calls_to_stored_numbers_are_answered_and_recorded(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
    db = f"sqlite:///{tmp_path / 'legato.db'}"
    key = json.loads(legato("accounts", "create", "Acme", "--db", db, "--json", env=env))[
        "api_key"]
    config = tmp_path / "flow.json"
    config.write_text(json.dumps(FLOW), encoding="utf-8")
    legato("numbers", "add", NUMBER, "--config", str(config), "--db", db, env=env)
    trunk, sip, port = free_port(), free_port(), free_port()
    # The agent behind the trunk: rings 0.3 s and answers, twice; Legato sends the BYEs.
    agent = subprocess.Popen(
        ["sipp", "-sf", str(SCENARIOS / "uas_ring_answer.xml"), "-i", "127.0.0.1",
         "-p", str(trunk), "-m", "2", "-nostdin", "-timeout", "40", "-timeout_error",
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
        first = call_from(sip, NUMBER, tmp_path, "uac_answered_bye.xml", hold_ms=1000)
        http("POST", f"{base}/v1/numbers", key, {"number": NUMBER_B, "config": FLOW})
        second = call_from(sip, NUMBER_B, tmp_path, "uac_answered_bye.xml", hold_ms=1000)
        http("POST", f"{base}/v1/numbers/{NUMBER}/blacklist", key, {"entries": [CALLER]})
        blocked = call_from(sip, NUMBER, tmp_path, "uac_rejected.xml")
        calls: list[dict[str, Any]] = []
        for _ in range(100):
            calls = http("GET", f"{base}/v1/calls?service=incoming", key)["data"]
            if len(calls) == 3 and all(c["state"] == "completed" for c in calls):
                break
            time.sleep(0.1)
        records = [http("GET", f"{base}/v1/calls/{c['id']}", key) for c in calls]
    finally:
        server.terminate()
        server.wait(timeout=20)
        agent_rc, agent_out = finished(agent, tmp_path)
    assert first[0] == 0, first[1]
    assert second[0] == 0, second[1]
    assert blocked[0] == 0, blocked[1]  # 603 with a Reason header
    assert agent_rc == 0, agent_out
    assert sorted((c["status"], c["number"]) for c in calls) == [
        ("ANSWER", NUMBER), ("ANSWER", NUMBER_B), ("BLOCKED", NUMBER)], calls
    scenario = {"name": "incoming", "service": "incoming", "number": NUMBER, "from": CALLER,
                "at": now_iso(), "config": FLOW,
                "phones": {CALLER: {"hangup_after": 1.3}, AGENT: {"answer_after": 0.3}}}
    answered = facts(run_sim(Case("incoming", scenario, {}, "ANSWER", "leg1"), tmp_path))
    scenario["config"] = {**FLOW, "blacklist": [CALLER]}
    blacklisted = facts(run_sim(Case("blocked", scenario, {}, "BLOCKED", "platform"), tmp_path))
    for call in records:
        assert call["from"] == [CALLER] and call["service"] == "incoming"
        if call["status"] == "ANSWER":
            assert facts(call) == answered
        else:
            assert facts(call) == blacklisted and call["admission"]["rule"] == "blacklist"


@pytest.mark.parametrize("flag", ["--rtp-ports=9-5"])
def test_bad_media_options_are_refused_before_serving(tmp_path: Path, flag: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from legato.cli.main import app; app()", "serve", "--driver",
         "sip", "--db", f"sqlite:///{tmp_path / 'x.db'}", flag],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=SRC),
    )
    assert result.returncode == 2 and "--rtp-ports" in result.stdout + result.stderr


def test_a_number_with_a_flow_url_fetches_its_flow_over_http(tmp_path: Path) -> None:
    """`flow_url` (Legato's JSON form, the same path TwiML takes) on a real SIP call: the
    flow is fetched when the INVITE arrives, then rings the agent."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    fetched: list[str] = []

    class Flows(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            fetched.append(self.rfile.read(length).decode())
            body = json.dumps(FLOW).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    flows = ThreadingHTTPServer(("127.0.0.1", 0), Flows)
    threading.Thread(target=flows.serve_forever, daemon=True).start()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
    db = f"sqlite:///{tmp_path / 'legato.db'}"
    key = json.loads(legato("accounts", "create", "Acme", "--db", db, "--json", env=env))[
        "api_key"]
    config = tmp_path / "flow.json"
    config.write_text(json.dumps({"flow_url": {"url": f"http://127.0.0.1:{flows.server_port}/ivr"}}),
                      encoding="utf-8")
    legato("numbers", "add", NUMBER, "--config", str(config), "--db", db, env=env)
    trunk, sip, port = free_port(), free_port(), free_port()
    agent = subprocess.Popen(
        ["sipp", "-sf", str(SCENARIOS / "uas_ring_answer.xml"), "-i", "127.0.0.1",
         "-p", str(trunk), "-m", "1", "-nostdin", "-timeout", "40", "-timeout_error",
         "-set", "ring_ms", "300"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    server = subprocess.Popen(
        [sys.executable, "-c", "from legato.cli.main import app; app()", "serve",
         "--driver", "sip", "--sip-listen", f"127.0.0.1:{sip}", "--trunk",
         f"sip:127.0.0.1:{trunk}", "--db", db, "--port", str(port), "--log-level", "warning",
         "--rtp-ports", "54000-54999"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/openapi.json", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        caller = call_from(sip, NUMBER, tmp_path, "uac_answered_bye.xml", hold_ms=1000)
        calls: list[dict[str, Any]] = []
        for _ in range(100):
            calls = http("GET", f"{base}/v1/calls", key)["data"]
            if calls and calls[0]["state"] == "completed":
                break
            time.sleep(0.1)
    finally:
        server.terminate()
        log = server.communicate(timeout=20)[0].decode(errors="replace")
        flows.shutdown()
        agent_rc, agent_out = finished(agent, tmp_path)
    assert caller[0] == 0, (calls, log[-3000:], caller[1])
    assert agent_rc == 0, agent_out
    assert len(fetched) == 1 and "From=%2B" + CALLER.lstrip("+") in fetched[0]
    assert [(c["status"], c["picked_by"]) for c in calls] == [("ANSWER", AGENT)]

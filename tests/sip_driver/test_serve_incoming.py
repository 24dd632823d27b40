"""Incoming SIP calls under `legato serve --driver sip`, as a business would run them: its
numbers are in the store (one added with the CLI before the server started, one through
the API while it runs), a SIPp caller dials each one, the flow rings an agent behind the
trunk, and the call shows up in the API with the record `legato simulate` gives for the same
behaviour. A blacklist entry added through the API applies to the very next INVITE; a
number with a `flow_url` fetches its flow over HTTP when the INVITE arrives."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .harness import SCENARIOS, Case, facts, free_port, now_iso, run_sim
from .serving import Server, Store, finished, sipp_uac, sipp_uas
from .test_statuses import AGENT, CALLER, NUMBER

pytestmark = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp not installed")
NUMBER_B = "+918047001001"
FLOW = {"flow": [{"dial": {"to": [AGENT]}}]}


def call_from(server: Server, number: str, tmp: Path, scenario: str, **sets: int
              ) -> tuple[int, str]:
    return sipp_uac(tmp, SCENARIOS / scenario, server.sip, number,
                    "-key", "caller", CALLER.lstrip("+"), **sets)


def test_incoming_calls_to_stored_numbers_are_answered_and_recorded(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.add_number(NUMBER, FLOW)
    trunk = free_port()
    # The agent behind the trunk: rings 0.3 s and answers, twice; Legato sends the BYEs.
    agent = sipp_uas(tmp_path, trunk, "uas_ring_answer.xml", 2, ring_ms=300)
    server = Server(store, trunk).start()
    try:
        first = call_from(server, NUMBER, tmp_path, "uac_answered_bye.xml", hold_ms=1000)
        server.api("POST", "/v1/numbers", {"number": NUMBER_B, "config": FLOW})
        second = call_from(server, NUMBER_B, tmp_path, "uac_answered_bye.xml", hold_ms=1000)
        server.api("POST", f"/v1/numbers/{NUMBER}/blacklist", {"entries": [CALLER]})
        blocked = call_from(server, NUMBER, tmp_path, "uac_rejected.xml")
        records = server.calls(3, "/v1/calls?service=incoming")
    finally:
        server.stop()
        agent_rc, agent_out = finished(agent, tmp_path)
    assert first[0] == 0, first[1]
    assert second[0] == 0, second[1]
    assert blocked[0] == 0, blocked[1]  # 603 with a Reason header
    assert agent_rc == 0, agent_out
    assert sorted((c["status"], c["number"]) for c in records) == [
        ("ANSWER", NUMBER), ("ANSWER", NUMBER_B), ("BLOCKED", NUMBER)], records
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


def test_a_number_with_a_flow_url_fetches_its_flow_over_http(tmp_path: Path) -> None:
    """`flow_url` (Legato's JSON form, the same path TwiML takes) on a real SIP call: the
    flow is fetched when the INVITE arrives, then rings the agent."""
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
    store = Store(tmp_path)
    store.add_number(NUMBER, {"flow_url": {"url": f"http://127.0.0.1:{flows.server_port}/ivr"}})
    trunk = free_port()
    agent = sipp_uas(tmp_path, trunk, "uas_ring_answer.xml", 1, ring_ms=300)
    server = Server(store, trunk, "--rtp-ports", "54000-54999").start()
    try:
        caller = call_from(server, NUMBER, tmp_path, "uac_answered_bye.xml", hold_ms=1000)
        records = server.calls(1)
    finally:
        log = server.stop()
        flows.shutdown()
        agent_rc, agent_out = finished(agent, tmp_path)
    assert caller[0] == 0, (records, log[-3000:], caller[1])
    assert agent_rc == 0, agent_out
    assert len(fetched) == 1 and "From=%2B" + CALLER.lstrip("+") in fetched[0]
    assert [(c["status"], c["picked_by"]) for c in records] == [("ANSWER", AGENT)]


@pytest.mark.parametrize("flag", ["--rtp-ports=9-5"])
def test_bad_media_options_are_refused_before_serving(tmp_path: Path, flag: str) -> None:
    result = Server(Store(tmp_path), None, flag).run_to_exit()
    assert result.returncode == 2 and "--rtp-ports" in result.stdout + result.stderr

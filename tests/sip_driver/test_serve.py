"""`legato serve --driver sip` as a new user tries it: a trunk pointing at a SIPp UAS, a
click-to-call placed through the REST API, and a stored record equal to `legato simulate`'s
for the same behaviour."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .harness import Case, facts, free_port, run_sim
from .serving import Server, Store, finished, sipp_uas
from .test_statuses import AGENT, CUSTOMER, NUMBER

pytestmark = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp not installed")


def test_click_to_call_through_the_api_over_sip(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.add_number(NUMBER)
    trunk = free_port()
    # Both legs reach the same SIPp phone: it rings 0.3 s, answers (and the re-INVITE of
    # flow IV), and stays until Legato's BYE at the maximum duration.
    phones = sipp_uas(tmp_path, trunk, "uas_ring_answer.xml", 2, ring_ms=300)
    server = Server(store, trunk).start()
    try:
        server.api("POST", "/v1/calls", {
            "service": "click_to_call", "number": NUMBER, "from": AGENT, "to": CUSTOMER,
            "max_duration": 2})
        records = server.calls(1)
    finally:
        server.stop()
        phones_rc, phones_out = finished(phones, tmp_path)
    [record] = records
    assert (record["status"], record["disconnected_by"]) == ("ANSWER", "platform")
    assert phones_rc == 0, phones_out  # both legs answered and got their BYE
    scenario = {"name": "serve", "service": "click_to_call", "number": NUMBER, "from": AGENT,
                "to": CUSTOMER, "config": {"max_duration": 2},
                "phones": {AGENT: {"answer_after": 0.3}, CUSTOMER: {"answer_after": 0.3}}}
    assert facts(record) == facts(run_sim(Case("serve", scenario, {}, "ANSWER", "platform"),
                                          tmp_path))

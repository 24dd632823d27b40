"""SendDigits over real SIP: with no media anchored, each key goes to the answered
subscriber as a SIP INFO (application/dtmf-relay), in order, before the flow goes on."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from .harness import Case, Peer, run_sip

pytestmark = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp not installed")

NUMBER, SUBSCRIBER = "+918047001000", "+919811000003"


def test_send_digits_are_sip_info_dtmf_relay(tmp_path: Path) -> None:
    case = Case("send digits", {
        "name": "send digits", "service": "outbound", "number": NUMBER, "to": SUBSCRIBER,
        "config": {"send_digits": "1w#"}, "phones": {SUBSCRIBER: {}}},
        {SUBSCRIBER: Peer("uas_answer_info_digits.xml", sets={"ring_ms": 50})}, "IVR",
        "platform")
    record, peers = asyncio.run(run_sip(case, tmp_path))
    for name, rc, out in peers:
        assert rc == 0, f"{name} failed:\n{out}"
    events = record.to_dict()["events"]
    sent = next(e for e in events if e["type"] == "send_digits")
    assert sent["digits"] == "1w#"
    assert events[-1]["t"] - sent["t"] >= 0.2 + 0.5 + 0.2 - 0.05  # the engine waited

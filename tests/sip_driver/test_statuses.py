"""Every status the sip driver can produce, from real SIPp phones and callers, and the
equivalence with the sim: the same behaviour through `legato simulate` gives the same
status, disconnected_by, parties, leg outcomes, SIP codes and Q.850 causes."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    RING,
    SILENT,
    Case,
    Peer,
    answer,
    facts,
    now_iso,
    reject,
    run_sim,
    run_sip,
)

pytestmark = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp not installed")

NUMBER = "+918047001000"
AGENT, AGENT2 = "+919811000101", "+919811000102"
CUSTOMER = "+919811000002"
CALLER = "+919811000001"
SUBSCRIBER = "+919811000003"


def outbound(name: str, phone: dict[str, Any], peer: Peer, status: str, by: str,
             **config: Any) -> Case:
    """Leg 1 (the subscriber) meets `peer`; no flow, so the leg's outcome is the status."""
    return Case(name, {"name": name, "service": "outbound", "number": NUMBER, "to": SUBSCRIBER,
                       "config": config, "phones": {SUBSCRIBER: phone}},
                {SUBSCRIBER: peer}, status, by)


def c2c(name: str, agent: tuple[dict[str, Any], Peer] | None,
        customer: tuple[dict[str, Any], Peer] | None, status: str, by: str,
        **config: Any) -> Case:
    phones, peers = {}, {}
    for number, side in ((AGENT, agent), (CUSTOMER, customer)):
        if side is not None:
            phones[number], peers[number] = side
    return Case(name, {"name": name, "service": "click_to_call", "number": NUMBER,
                       "from": AGENT, "to": CUSTOMER, "config": config, "phones": phones},
                peers, status, by)


def incoming(name: str, caller: tuple[dict[str, Any], Peer],
             agents: dict[str, tuple[dict[str, Any], Peer]], status: str, by: str,
             **config: Any) -> Case:
    phones = {CALLER: caller[0], **{n: a[0] for n, a in agents.items()}}
    return Case(name, {"name": name, "service": "incoming", "number": NUMBER, "from": CALLER,
                       "at": now_iso(), "config": config, "phones": phones},
                {n: a[1] for n, a in agents.items()}, status, by, caller=caller[1])


def dial(*agents: str, strategy: str = "sequential", ring_timeout: float | None = None
         ) -> list[dict[str, Any]]:
    args: dict[str, Any] = {"to": list(agents), "strategy": strategy}
    if ring_timeout is not None:
        args["ring_timeout"] = ring_timeout
    return [{"dial": args}]


REFUSED = Peer("uac_rejected.xml")
STAYS = Peer("uac_wait_bye.xml")
TODAY = datetime.now(UTC).date().isoformat()

CASES = [
    # ---- leg-outcome classes from real final responses (outbound leg 1)
    outbound("486 busy", {"sip_status": 486}, reject(486, "Busy Here"), "BUSY", "leg1"),
    outbound("600 busy everywhere", {"sip_status": 600}, reject(600, "Busy Everywhere"),
             "BUSY", "leg1"),
    outbound("603 decline", {"sip_status": 603}, reject(603, "Decline"), "BUSY", "leg1"),
    outbound("404 not found", {"sip_status": 404}, reject(404, "Not Found"),
             "CHANUNAVAIL", "leg1"),
    outbound("410 gone", {"sip_status": 410}, reject(410, "Gone"), "CHANUNAVAIL", "leg1"),
    outbound("484 address incomplete", {"sip_status": 484}, reject(484, "Address Incomplete"),
             "CHANUNAVAIL", "leg1"),
    outbound("503 unavailable", {"sip_status": 503}, reject(503, "Service Unavailable"),
             "CONGESTION", "leg1"),
    outbound("486 with Q.850 17", {"sip_status": 486, "q850": 17},
             reject(486, "Busy Here", 17), "BUSY", "leg1"),
    outbound("600 with Q.850 17", {"sip_status": 600, "q850": 17},
             reject(600, "Busy Everywhere", 17), "BUSY", "leg1"),
    outbound("603 with Q.850 21", {"sip_status": 603, "q850": 21},
             reject(603, "Decline", 21), "BUSY", "leg1"),
    outbound("404 with Q.850 1", {"sip_status": 404, "q850": 1},
             reject(404, "Not Found", 1), "CHANUNAVAIL", "leg1"),
    outbound("410 with Q.850 22", {"sip_status": 410, "q850": 22},
             reject(410, "Gone", 22), "CHANUNAVAIL", "leg1"),
    outbound("484 with Q.850 28", {"sip_status": 484, "q850": 28},
             reject(484, "Address Incomplete", 28), "CHANUNAVAIL", "leg1"),
    outbound("503 with Q.850 34", {"sip_status": 503, "q850": 34},
             reject(503, "Service Unavailable", 34), "CONGESTION", "leg1"),
    outbound("480 with Q.850 20 (switched off)", {"sip_status": 480, "q850": 20},
             reject(480, "Temporarily Unavailable", 20), "FAILED", "leg1"),
    outbound("408 timeout", {"sip_status": 408}, reject(408, "Request Timeout"),
             "NOANSWER", "leg1"),
    outbound("480 unavailable", {"sip_status": 480}, reject(480, "Temporarily Unavailable"),
             "NOANSWER", "leg1"),
    outbound("no response at all", {"unreachable": True}, SILENT, "FAILED", "platform"),
    outbound("ring timeout", {"no_answer": True}, RING, "NOANSWER", "platform",
             ring_timeout=1),
    # ---- outbound bridged to an agent
    Case("outbound answered, bridged, agent BYE",
         {"name": "x", "service": "outbound", "number": NUMBER, "to": SUBSCRIBER,
          "config": {"flow": dial(AGENT)},
          "phones": {SUBSCRIBER: {"answer_after": 0.1},
                     AGENT: {"answer_after": 0.1, "hangup_after": 1}}},
         {SUBSCRIBER: answer(100), AGENT: answer(100, 1000)}, "ANSWER", "leg2"),
    Case("outbound answered without a flow",
         {"name": "x", "service": "outbound", "number": NUMBER, "to": SUBSCRIBER,
          "phones": {SUBSCRIBER: {"answer_after": 0.1}}},
         {SUBSCRIBER: answer(100)}, "IVR", "platform"),
    Case("outbound subscriber hangs up while the agent rings",
         {"name": "x", "service": "outbound", "number": NUMBER, "to": SUBSCRIBER,
          "config": {"flow": dial(AGENT)},
          "phones": {SUBSCRIBER: {"answer_after": 0.1, "hangup_after": 1},
                     AGENT: {"no_answer": True}}},
         {SUBSCRIBER: answer(100, 1000), AGENT: RING}, "CANCEL", "leg1"),
    Case("outbound DND", {"name": "x", "service": "outbound", "number": NUMBER,
                          "to": SUBSCRIBER, "config": {"dnd": [SUBSCRIBER]}},
         {}, "DND", "platform"),
    Case("outbound not allowed", {"name": "x", "service": "outbound", "number": NUMBER,
                                  "to": SUBSCRIBER, "config": {"allowed_countries": ["US"]}},
         {}, "NOTALLOWED", "platform"),
    # ---- click-to-call (RFC 3725 flow IV)
    Case("parallel agents: one rings, one answers; leg 2 hangs up",
         {"name": "x", "service": "click_to_call", "number": NUMBER, "from": [AGENT, AGENT2],
          "to": CUSTOMER,
          "phones": {AGENT: {"no_answer": True}, AGENT2: {"answer_after": 0.3},
                     CUSTOMER: {"answer_after": 0.1, "hangup_after": 1}}},
         {AGENT: RING, AGENT2: answer(300), CUSTOMER: answer(100, 1000)}, "ANSWER", "leg2"),
    c2c("180 then 200 then BYE from leg 2", ({"answer_after": 0.1}, answer(100)),
        ({"answer_after": 0.1, "hangup_after": 1}, answer(100, 1000)), "ANSWER", "leg2"),
    c2c("leg 1 BYE while leg 2 rings",
        ({"answer_after": 0.1, "hangup_after": 1}, answer(100, 1000)),
        ({"no_answer": True}, RING), "CANCEL", "leg1"),
    c2c("maximum duration", ({"answer_after": 0.1}, answer(100)),
        ({"answer_after": 0.1}, answer(100)), "ANSWER", "platform", max_duration=1.5),
    c2c("leg 2 busy", ({"answer_after": 0.1}, answer(100)),
        ({"sip_status": 486}, reject(486, "Busy Here")), "BUSY_LEG2", "leg2"),
    c2c("leg 2 no answer", ({"answer_after": 0.1}, answer(100)),
        ({"no_answer": True}, RING), "NOANSWER_LEG2", "platform", ring_timeout=1),
    c2c("leg 2 congestion", ({"answer_after": 0.1}, answer(100)),
        ({"sip_status": 503, "q850": 34}, reject(503, "Service Unavailable", 34)),
        "FAILED_LEG2", "leg2"),
    c2c("leg 1 declines", ({"sip_status": 603}, reject(603, "Decline")), None,
        "BUSY_LEG1", "leg1"),
    c2c("leg 1 not found", ({"sip_status": 404}, reject(404, "Not Found")), None,
        "FAILED_LEG1", "leg1"),
    c2c("leg 1 no answer", ({"no_answer": True}, RING), None, "NOANSWER_LEG1", "platform",
        ring_timeout=1),
    c2c("DND", None, None, "DND", "platform", dnd=[CUSTOMER]),
    c2c("not allowed", None, None, "NOTALLOWED", "platform", allowed_countries=["US"]),
    # ---- incoming
    incoming("agent answers, caller hangs up", ({"hangup_after": 1.5}, Peer(
        "uac_answered_bye.xml", sets={"hold_ms": 1000})),
        {AGENT: ({"answer_after": 0.1}, answer(100))}, "ANSWER", "leg1", flow=dial(AGENT)),
    incoming("agent answers and hangs up", ({}, STAYS),
             {AGENT: ({"answer_after": 0.1, "hangup_after": 1}, answer(100, 1000))},
             "ANSWER", "leg2", flow=dial(AGENT)),
    incoming("caller hangs up while agents ring",
             ({"hangup_after": 0.8}, Peer("uac_cancel.xml", sets={"hold_ms": 800})),
             {AGENT: ({"no_answer": True}, RING), AGENT2: ({"no_answer": True}, RING)},
             "CANCEL", "leg1", flow=dial(AGENT, AGENT2, strategy="parallel")),
    incoming("agent busy", ({}, REFUSED), {AGENT: ({"busy": True}, reject(486, "Busy Here"))},
             "BUSY", "platform", flow=dial(AGENT)),
    incoming("agents do not answer (sequential)", ({}, REFUSED),
             {AGENT: ({"no_answer": True}, RING), AGENT2: ({"no_answer": True}, RING)},
             "NOANSWER", "platform", flow=dial(AGENT, AGENT2, ring_timeout=0.7)),
    incoming("agent number not found", ({}, REFUSED),
             {AGENT: ({"sip_status": 404}, reject(404, "Not Found"))}, "FAILED", "platform",
             flow=dial(AGENT)),
    incoming("maximum duration", ({}, STAYS), {AGENT: ({"answer_after": 0.1}, answer(100))},
             "ANSWER", "platform", flow=dial(AGENT), max_duration=1.2),
    incoming("blacklisted caller", ({}, REFUSED), {}, "BLOCKED", "platform",
             blacklist=[CALLER], flow=dial(AGENT)),
    incoming("lines in use", ({}, REFUSED), {}, "MAX-USE", "platform", lines=0,
             flow=dial(AGENT)),
    incoming("holiday", ({}, REFUSED), {}, "OFF-HOUR", "platform", flow=dial(AGENT),
             office_hours={"timezone": "UTC", "days": {d: "00:00-23:59" for d in (
                 "mon", "tue", "wed", "thu", "fri", "sat", "sun")}, "holidays": [TODAY]}),
    incoming("no flow", ({}, REFUSED), {}, "IVR", "platform"),
    incoming("missed-call number", ({}, REFUSED), {}, "MISWIG", "platform",
             missed_call=True, missed_call_ring=0.5),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_status_over_sip_equals_sim(case: Case, tmp_path: Path) -> None:
    record, peers = asyncio.run(run_sip(case, tmp_path))
    sip = record.to_dict()
    assert (sip["status"], sip["disconnected_by"]) == (case.status, case.disconnected_by), sip
    for name, rc, out in peers:
        assert rc == 0, f"{name} failed:\n{out}"
    sim = run_sim(case, tmp_path)
    assert facts(sip) == facts(sim)

"""Which events a call's successive records imply: each fact once, in time order."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from legato.scenario.loader import load_scenario
from legato.scenario.run import run_scenario
from legato.webhooks.events import Progress, envelope, pending_events

from .kit import ANSWERED, EXAMPLES

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def _events(progress: Progress, record: dict[str, Any], final: bool) -> list[str]:
    initiated = {"id": "c1", "started_at": record["started_at"]}
    return [
        e.type
        for e in pending_events(
            progress, record, final=final, initiated=initiated, completed=None, now=NOW
        )
    ]


def test_a_full_record_at_once_gives_every_event_in_order() -> None:
    record = run_scenario(load_scenario(ANSWERED)).to_dict()
    types = _events(Progress(1, {}, False), record, True)
    assert types == [
        "call.initiated",
        "call.leg.ringing",
        "call.leg.answered",
        "call.leg.ringing",
        "call.leg.answered",
        "call.leg.ended",
        "call.leg.ended",
        "call.completed",
    ]


def test_partial_records_then_final_announce_each_fact_once() -> None:
    final = run_scenario(load_scenario(ANSWERED)).to_dict()
    partial = copy.deepcopy(final)
    partial["legs"] = partial["legs"][:1]
    for key in ("answered_at", "ended_at"):
        partial["legs"][0][key] = None
    progress = Progress(1, {}, False)
    first = _events(progress, partial, False)
    assert first == ["call.initiated", "call.leg.ringing"]
    second = _events(progress, final, True)
    assert second[0] == "call.leg.answered" and second[-1] == "call.completed"
    assert "call.initiated" not in second and second.count("call.leg.ringing") == 1
    assert _events(progress, final, True) == []  # replay: nothing new, no second completed


def test_policy_rejection_is_initiated_then_completed() -> None:
    scenario = next(EXAMPLES.glob("click_to_call_all_customer_numbers_on_dnd.yaml"))
    record = run_scenario(load_scenario(scenario)).to_dict()
    assert record["status"] == "DND"
    assert _events(Progress(1, {}, False), record, True) == ["call.initiated", "call.completed"]


def test_envelope_is_standard_webhooks_plus_sequence() -> None:
    record = run_scenario(load_scenario(ANSWERED)).to_dict()
    event = pending_events(
        Progress(1, {}, False),
        record,
        final=True,
        initiated={"id": "c1"},
        completed={"id": "c1"},
        now=NOW,
    )[-1]
    body = envelope(event, 8)
    assert body.startswith('{"type":"call.completed","timestamp":"')
    assert '"sequence":8}' in body and 'Z","data":{"id":"c1"}' in body

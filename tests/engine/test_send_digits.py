"""SendDigits: DTMF keyed to an outbound subscriber once it answers, before its flow."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from legato.core.admission import Policy
from legato.core.catalogue import Service, Status
from legato.core.config import NumberConfig, parse_flow
from legato.core.engine import CallSpec, create_call
from legato.core.events import Play, SendDigits, digits_seconds
from legato.sim import PhoneBehaviour, SimNetwork

NUMBER, SUBSCRIBER = "+918047001000", "+919811000001"


def _run(config: dict[str, Any], redirect_at: float | None = None) -> tuple[Any, list[Any]]:
    cfg = NumberConfig.model_validate(config)
    spec = CallSpec("t", Service.OUTBOUND, NUMBER, (SUBSCRIBER,), (), cfg,
                    Policy.from_config(cfg), datetime(2026, 11, 23, tzinfo=UTC))
    network = SimNetwork({SUBSCRIBER: PhoneBehaviour(answer_after=1, hangup_after=60)})
    call = create_call(spec, 0.0)
    seen: list[tuple[float, Any]] = []
    original = network._after

    def spy(active: Any, now: float) -> None:
        seen.extend((now, c) for c in active.call.commands)
        original(active, now)

    network._after = spy  # type: ignore[method-assign]
    handle = network.place(call, 0.0)
    if redirect_at is not None:
        network.run(until=redirect_at)
        bye = parse_flow([{"play": {"text": "moved", "seconds": 1}}])
        assert network.act(handle, lambda c, now: c.redirect(now, bye), redirect_at)
    network.run()
    assert call.settled
    return call.record, seen


def test_digits_are_sent_on_answer_and_the_flow_waits_for_them() -> None:
    record, seen = _run({"send_digits": "12w#", "flow": [{"play": {"text": "hi", "seconds": 2}}]})
    sends = [(t, c) for t, c in seen if isinstance(c, SendDigits)]
    assert sends == [(1.0, SendDigits(0, "12w#"))]
    plays = [t for t, c in seen if isinstance(c, Play)]
    assert plays == [pytest.approx(1.0 + 0.2 * 3 + 0.5)]
    assert ("send_digits", {"digits": "12w#"}) in [(e[1], e[3]) for e in record.timeline]
    assert record.status is Status.ANSWER


def test_a_redirect_while_digits_are_sent_runs_once_they_are_done() -> None:
    _, seen = _run({"send_digits": "W", "flow": [{"play": {"text": "old", "seconds": 2}}]},
                   redirect_at=1.5)
    assert [(t, c.text) for t, c in seen if isinstance(c, Play)] == [(2.0, "moved")]


def test_without_digits_nothing_is_sent() -> None:
    _, seen = _run({"flow": [{"hangup": {}}]})
    assert not any(isinstance(c, SendDigits) for _, c in seen)


def test_digits_are_validated() -> None:
    assert digits_seconds("wW1") == pytest.approx(1.7)
    with pytest.raises(ValidationError, match="send_digits"):
        NumberConfig.model_validate({"send_digits": "12x"})

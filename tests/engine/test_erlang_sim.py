"""MAX-USE under Poisson traffic, through the real engine and the sim driver.

Calls arrive at one number with N lines as a Poisson process and hold a line for an
exponential time; the share that ends MAX-USE must match the Erlang-B formula.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from legato.core.admission import Policy
from legato.core.catalogue import Service, Status
from legato.core.config import NumberConfig
from legato.core.engine import Call, CallSpec, create_call
from legato.core.policy.erlang import erlang_b
from legato.core.record import CallRecord
from legato.lines.memory import MemoryLineCounter
from legato.sim import PhoneBehaviour, SimNetwork

NUMBER = "+918047001000"


@pytest.mark.parametrize(("lines", "erlangs"), [(5, 4.0), (10, 7.0)])
def test_max_use_share_matches_erlang_b(lines: int, erlangs: float) -> None:
    rng = random.Random(lines)
    holding = 120.0  # mean seconds a caller stays
    rate = erlangs / holding
    calls = 12_000
    # the IVR answers at once and plays until the caller hangs up
    config = NumberConfig.model_validate(
        {"lines": lines, "flow": [{"play": {"text": "please hold", "seconds": 1e9}}]})
    policy = Policy.from_config(config)
    phones: dict[str, PhoneBehaviour] = {}
    network = SimNetwork(phones)
    counter = MemoryLineCounter()
    statuses: list[Status] = []

    def arrival(call_id: str, caller: str) -> tuple[object, object]:
        def create(now: float) -> Call:
            spec = CallSpec(call_id, Service.INCOMING, NUMBER, (caller,), (), config, policy,
                            datetime(2026, 11, 23, tzinfo=UTC), counter.in_use(NUMBER))
            counter.acquire(NUMBER, None, call_id)  # held until the call ends
            return create_call(spec, now)

        def done(record: CallRecord) -> None:
            counter.release(NUMBER, call_id)
            assert record.status is not None
            statuses.append(record.status)

        return create, done

    now = 0.0
    for i in range(calls):
        now += rng.expovariate(rate)
        caller = f"+9199{i:08d}"
        phones[caller] = PhoneBehaviour(hangup_after=rng.expovariate(1 / holding))
        network.run(until=now)
        create, done = arrival(str(i), caller)
        network.place(create, now, on_done=done)  # type: ignore[arg-type]
    network.run()

    assert len(statuses) == calls
    assert set(statuses) <= {Status.MAX_USE, Status.IVR_ANSWER}
    measured = statuses.count(Status.MAX_USE) / calls
    expected = erlang_b(erlangs, lines)
    assert abs(measured - expected) < 0.025, (measured, expected)
    assert counter.in_use(NUMBER) == 0  # every path released its line

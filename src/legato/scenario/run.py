"""Running a scenario on the `sim` driver and checking it against its `expect` block."""

from __future__ import annotations

import uuid
from typing import Any

from legato.core.admission import Policy
from legato.core.engine import CallSpec, create_call
from legato.core.record import CallRecord
from legato.scenario.model import Scenario
from legato.sim.network import SimNetwork

_NAMESPACE = uuid.UUID("8d3f6a52-51f4-4a8e-9f1d-3c2a7d9b1e40")


def scenario_spec(scenario: Scenario) -> CallSpec:
    """The engine's view of a scenario's call."""
    config = scenario.config
    leg1 = scenario.from_ if scenario.from_ else scenario.to
    leg2 = scenario.to if scenario.from_ and scenario.to else []
    return CallSpec(
        id=str(uuid.uuid5(_NAMESPACE, scenario.name)),
        service=scenario.service,
        number=scenario.number,
        leg1=tuple(leg1),
        leg2=tuple(leg2) if scenario.from_ else (),
        config=config,
        policy=Policy.from_config(config),
        started_at=scenario.started_at,
        lines_in_use=config.lines_in_use,
    )


def run_scenario(scenario: Scenario) -> CallRecord:
    """Simulate the scenario's call to its end on a fresh virtual network."""
    network = SimNetwork(scenario.phones)
    call = create_call(scenario_spec(scenario), 0.0)
    network.place(call, 0.0)
    network.run()
    if not call.finished:  # cannot happen: every flow ends (max_duration at the latest)
        raise RuntimeError(f"scenario {scenario.name!r} did not finish")
    return call.record


def check_expectations(scenario: Scenario, record: CallRecord) -> list[tuple[str, Any, Any]]:
    """(key, expected, actual) for every expectation the record does not meet."""
    if scenario.expect is None:
        return []
    actual = {
        "status": record.status,
        "disconnected_by": record.disconnected_by,
        "connected_to": record.connected_to,
        "picked_by": record.picked_by,
    }
    return [(key, want, actual[key]) for key, want in scenario.expect.given().items()
            if actual[key] != want]

"""The resolver: rule by rule, and as a property over every reachable input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legato.core.catalogue import CATALOGUE, Service, Status, applies_to
from legato.core.outcomes import Outcome
from legato.core.resolver import ADMISSION_STATUSES, PARTIES, CallFacts, resolve

FAILURES = [Outcome.BUSY, Outcome.NOANSWER, Outcome.CHANUNAVAIL, Outcome.CONGESTION,
            Outcome.FAILED]
ANY_END = [*FAILURES, Outcome.ANSWERED, Outcome.CANCELLED]


def _dial_steps() -> st.SearchStrategy[tuple[Outcome, ...]]:
    """Steps in time order: every step but the last failed (an answer ends the hunt)."""
    return st.builds(
        lambda head, last: (*head, *last),
        st.lists(st.sampled_from(FAILURES), max_size=3),
        st.lists(st.sampled_from(ANY_END), max_size=1),
    )


@st.composite
def reachable_facts(draw: st.DrawFn) -> CallFacts:
    service = draw(st.sampled_from(list(Service)))
    admission = draw(st.none() | st.sampled_from(ADMISSION_STATUSES[service]))
    leg1 = None
    if service in (Service.CLICK_TO_CALL, Service.OUTBOUND):
        leg1 = draw(st.sampled_from(ANY_END))
    steps = draw(_dial_steps())
    if service is Service.CLICK_TO_CALL:
        steps = steps[-1:]
    return CallFacts(
        service=service, ended_by=draw(st.sampled_from(PARTIES)), admission=admission,
        flow_started=draw(st.booleans()), ivr_answered=draw(st.booleans()), leg1=leg1,
        dial_steps=steps,
    )


@settings(max_examples=3000, deadline=None)
@given(reachable_facts())
def test_every_reachable_input_gives_one_code_that_applies_to_the_service(f: CallFacts) -> None:
    resolution = resolve(f)
    assert isinstance(resolution.status, Status)
    assert applies_to(resolution.status, f.service), (f, resolution)
    assert resolution.disconnected_by == f.ended_by


def test_every_code_of_the_catalogue_is_reachable() -> None:
    seen: set[Status] = set()

    @settings(max_examples=4000, deadline=None, database=None)
    @given(reachable_facts())
    def collect(f: CallFacts) -> None:
        seen.add(resolve(f).status)

    collect()
    assert seen == {row.code for row in CATALOGUE}


def _in(**kw: object) -> Status:
    return resolve(CallFacts(service=Service.INCOMING, ended_by="platform", **kw)).status  # type: ignore[arg-type]


def test_incoming_rules_in_order() -> None:
    # 1-4: admission verdicts win over everything that follows
    assert _in(admission=Status.BLOCKED, dial_steps=(Outcome.ANSWERED,)) is Status.BLOCKED
    assert _in(admission=Status.MAX_USE) is Status.MAX_USE
    # 5: no flow, or the caller left before the IVR answered
    assert _in(flow_started=False) is Status.IVR
    assert _in(ivr_answered=False) is Status.IVR
    # 6: the IVR answered and no agent was dialled
    assert _in(ivr_answered=True) is Status.IVR_ANSWER
    # 7: any agent answered (a dial-first flow: the IVR never answered)
    assert _in(dial_steps=(Outcome.BUSY, Outcome.ANSWERED)) is Status.ANSWER
    # 8: the caller hung up while an agent rang
    assert _in(ivr_answered=True, dial_steps=(Outcome.CANCELLED,)) is Status.CANCEL
    # 9: the last dial step's outcome, failures rolled up into FAILED
    assert _in(dial_steps=(Outcome.NOANSWER, Outcome.BUSY)) is Status.BUSY
    assert _in(dial_steps=(Outcome.BUSY, Outcome.NOANSWER)) is Status.NOANSWER
    for failure in (Outcome.CHANUNAVAIL, Outcome.CONGESTION, Outcome.FAILED):
        assert _in(dial_steps=(failure,)) is Status.FAILED


@pytest.mark.parametrize(
    ("leg1", "steps", "status"),
    [
        (Outcome.BUSY, (), Status.BUSY_LEG1),
        (Outcome.NOANSWER, (), Status.NOANSWER_LEG1),
        (Outcome.CONGESTION, (), Status.FAILED_LEG1),
        (Outcome.CHANUNAVAIL, (), Status.FAILED_LEG1),
        (Outcome.FAILED, (), Status.FAILED_LEG1),
        (Outcome.ANSWERED, (Outcome.CANCELLED,), Status.CANCEL),
        (Outcome.ANSWERED, (), Status.CANCEL),
        (Outcome.ANSWERED, (Outcome.BUSY,), Status.BUSY_LEG2),
        (Outcome.ANSWERED, (Outcome.NOANSWER,), Status.NOANSWER_LEG2),
        (Outcome.ANSWERED, (Outcome.CONGESTION,), Status.FAILED_LEG2),
        (Outcome.ANSWERED, (Outcome.FAILED,), Status.FAILED_LEG2),
        (Outcome.ANSWERED, (Outcome.ANSWERED,), Status.ANSWER),
    ],
)
def test_click_to_call_rules(leg1: Outcome, steps: tuple[Outcome, ...], status: Status) -> None:
    f = CallFacts(service=Service.CLICK_TO_CALL, ended_by="leg1", leg1=leg1, dial_steps=steps)
    assert resolve(f).status is status


@pytest.mark.parametrize(
    ("kw", "status"),
    [
        ({"admission": Status.DND}, Status.DND),
        ({"admission": Status.NOTALLOWED}, Status.NOTALLOWED),
        ({"leg1": Outcome.BUSY}, Status.BUSY),
        ({"leg1": Outcome.NOANSWER}, Status.NOANSWER),
        ({"leg1": Outcome.CHANUNAVAIL}, Status.CHANUNAVAIL),
        ({"leg1": Outcome.CONGESTION}, Status.CONGESTION),
        ({"leg1": Outcome.FAILED}, Status.FAILED),
        ({"leg1": Outcome.ANSWERED, "flow_started": False}, Status.IVR),
        ({"leg1": Outcome.ANSWERED, "dial_steps": (Outcome.CANCELLED,)}, Status.CANCEL),
        ({"leg1": Outcome.ANSWERED, "dial_steps": (Outcome.BUSY,)}, Status.ANSWER),
        ({"leg1": Outcome.ANSWERED}, Status.ANSWER),
    ],
)
def test_outbound_rules(kw: dict[str, object], status: Status) -> None:
    f = CallFacts(service=Service.OUTBOUND, ended_by="platform", **kw)  # type: ignore[arg-type]
    assert resolve(f).status is status


def test_missed_call() -> None:
    assert resolve(CallFacts(Service.MISSED_CALL, "leg1")).status is Status.MISWIG
    assert resolve(CallFacts(Service.MISSED_CALL, "platform", admission=Status.BLOCKED)
                   ).status is Status.BLOCKED


def test_bad_facts_are_refused_with_the_rule() -> None:
    with pytest.raises(ValueError, match="ended_by"):
        resolve(CallFacts(Service.INCOMING, "caller"))
    with pytest.raises(ValueError, match="not a pre-dial status of click_to_call"):
        resolve(CallFacts(Service.CLICK_TO_CALL, "platform", admission=Status.BLOCKED))

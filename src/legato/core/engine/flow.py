"""The IVR flow interpreter shared by incoming and outbound calls.

A flow is a list of steps (answer, play, gather, dial, hangup); a gather's branch is a
nested list that, once done, returns to the step after the gather. The interpreter keeps
a stack of (steps, next index) and runs steps until one has to wait for the network.
"""

from __future__ import annotations

from legato.core.admission import permitted
from legato.core.catalogue import Service, Status
from legato.core.config import (
    AnswerStep,
    DialArgs,
    DialStep,
    FlowUrl,
    GatherArgs,
    GatherStep,
    HangupStep,
    PauseStep,
    PlayStep,
    RedirectStep,
    RejectStep,
    Step,
)
from legato.core.engine.base import (
    ANSWERED,
    RINGING,
    Call,
    CallSpec,
    DialGroup,
    Leg,
    set_answered,
)
from legato.core.events import (
    Answer,
    Bridge,
    FetchFlow,
    FlowFetched,
    Gather,
    Hangup,
    Play,
    StopPlay,
)
from legato.core.outcomes import Outcome


class _GatherState:
    __slots__ = ("args", "digits", "play", "prompt_done")

    def __init__(self, args: GatherArgs, play: int) -> None:
        self.args = args
        self.play = play
        self.digits = ""
        self.prompt_done = False


class FlowCall(Call):
    """A call whose leg 1 is taken through a flow: the caller (incoming) or subscriber."""

    #: Incoming flows may answer; outbound flows start on an answered leg.
    checks_agents = False

    # Scalar state starts at these class values; an instance gets its own value when it
    # first changes one (cheaper than setting them all for every call).
    caller: Leg | None = None
    agent: Leg | None = None
    flow_started = True
    ivr_answered = False
    _dial_group: DialGroup | None = None
    _gather: _GatherState | None = None
    _playing: int | None = None
    _plays = 0
    _gathers = 0
    _fetching: int | None = None  # the FetchFlow request the flow waits for
    _fetches = 0
    _flow_loaded = False  # a flow document has been loaded at least once
    _dial_action: FlowUrl | None = None  # the connected dial step's action
    _flow_begun = False  # the flow was started (an outbound subscriber has answered)
    _redirected: FlowUrl | list[Step] | None = None  # the document to start with instead
    rejected_by_flow: str | None = None  # a `reject` step's reason

    def __init__(self, spec: CallSpec, now: float) -> None:
        super().__init__(spec, now)
        self.dial_steps: list[Outcome] = []
        self._stack: list[tuple[list[Step], int]] = []

    # ----------------------------------------------------------------- running
    def _begin_flow(self, now: float) -> bool:
        """Start the configured flow (or the document the call was redirected to before
        it began); False when there is none (it "could not start")."""
        self._flow_begun = True
        if self._redirected is not None:
            self._follow(self._redirected, now)
            return True
        if self.config.flow_url is not None:
            self._fetch(self.config.flow_url, {"event": "start"}, now)
            return True
        if not self.config.flow:
            self.flow_started = False
            return False
        self._flow_loaded = True
        self._stack = [(self.config.flow, 0)]
        self._run(now)
        return True

    # ---------------------------------------------------------------- redirects
    def redirect(self, now: float, to: FlowUrl | list[Step]) -> bool:
        """Abandon the current document at once and run ``to`` from its start (Twilio's
        update with Url/Twiml). Answered legs stay; a prompt or gather is stopped; a dial
        in progress ends as Twilio ends it: ringing agents are cut as a timer would cut
        them, a connected agent is hung up, and the dial's action is not fetched. A call
        whose flow has not begun (its subscriber is still ringing) keeps ringing and runs
        ``to`` instead of its own flow when answered."""
        if self.finished:
            return False
        if isinstance(to, FlowUrl):
            self._event(now, "redirect", None, url=to.url, method=to.method)
        else:
            self._event(now, "redirect", None, steps=len(to))
        if not self._flow_begun:
            self._redirected = to
            return True
        self._abandon(now)
        self._follow(to, now)
        return True

    def _abandon(self, now: float) -> None:
        """Stop whatever the flow was doing or waiting for; answered callers stay."""
        if self._playing is not None:
            self.commands.append(StopPlay(self._playing))
            self._playing = None
        g = self._gather
        if g is not None:
            if not g.prompt_done:
                self.commands.append(StopPlay(g.play))
            self._gather = None
        for key in ("gather", "pause", "answer"):
            self._timers.pop(key, None)
        self._fetching = None  # an answer still on its way is for the old document
        self._stack = []
        group = self._dial_group
        if group is not None:
            for leg in group.pending:
                self._cut(leg, now, None)
            self.dial_steps.append(group.settle())
            self._dial_group = None
        agent = self.agent
        if agent is not None and agent.state == ANSWERED:
            self.commands.append(Hangup(agent.id, 16))
            self._close_leg(agent, now, "platform")
            self._event(now, "hangup", agent.rec, by="platform")
        self._dial_action = None

    def _follow(self, to: FlowUrl | list[Step], now: float) -> None:
        if isinstance(to, FlowUrl):
            self._fetch(to, {"event": "redirect"}, now)
            return
        self._flow_loaded = True
        self._stack = [(list(to), 0)]
        self._run(now)

    # -------------------------------------------------------------- dynamic flows
    def _fetch(self, where: FlowUrl, params: dict[str, str], now: float) -> None:
        """Ask the driver for the next flow document; it will replace what is left."""
        self._fetches += 1
        self._fetching = self._fetches
        self._stack = []
        self.commands.append(FetchFlow(self._fetches, where.url, where.method, params))
        self._event(now, "fetch", None, url=where.url, **params)

    def _on_flow_fetched(self, event: FlowFetched, now: float) -> None:
        if event.request != self._fetching:
            return  # an answer nobody waits for any more
        self._fetching = None
        if event.steps is None:
            self._event(now, "flow_error", None, error=event.error or "no flow")
            if not self._flow_loaded:
                self.flow_started = False  # the flow could not start (DESIGN section 4)
            self._finish(now, "platform")
            return
        self._flow_loaded = True
        self._stack = [(list(event.steps), 0)]
        self._run(now)

    def _next_step(self) -> Step | None:
        stack = self._stack
        while stack:
            steps, i = stack[-1]
            if i < len(steps):
                stack[-1] = (steps, i + 1)
                return steps[i]
            stack.pop()
        return None

    def _run(self, now: float) -> None:
        """Run steps until one waits for the network, or the flow ends the call."""
        while not self.finished:
            step = self._next_step()
            if step is None:  # a flow that reaches its end hangs up (DESIGN section 6)
                self._finish(now, "platform")
                return
            if isinstance(step, DialStep):
                if self._start_dial(step.dial, now):
                    return
                continue
            if isinstance(step, AnswerStep):
                if self._answer_after(step.answer.after, now):
                    return
            elif isinstance(step, PlayStep):
                self._ensure_answered(now)
                self._plays += 1
                self._playing = self._plays
                p = step.play
                self.commands.append(
                    Play(self._caller().id, self._plays, p.prompt, p.text, p.seconds)
                )
                self._event(now, "play", self._caller().rec, prompt=p.prompt or p.text)
                return
            elif isinstance(step, GatherStep):
                self._start_gather(step.gather, now)
                return
            elif isinstance(step, HangupStep):
                self._finish(now, "platform")
                return
            elif isinstance(step, PauseStep):
                if step.pause.seconds > 0:
                    self._timers["pause"] = now + step.pause.seconds
                    return
            elif isinstance(step, RedirectStep):
                self._fetch(step.redirect, {"event": "redirect"}, now)
                return
            elif isinstance(step, RejectStep):
                self._reject_by_flow(step.reject.reason, now)
                return

    def _reject_by_flow(self, reason: str, now: float) -> None:
        """The application refuses the call (TwiML <Reject>): BLOCKED if still unanswered."""
        caller = self._caller()
        if caller.state != RINGING or caller.rec.direction != "inbound":
            self._finish(now, "platform")  # too late to refuse: it is answered; hang up
            return
        self.rejected_by_flow = reason
        code, cause = (486, 17) if reason == "busy" else (603, 21)
        self._event(now, "flow_reject", caller.rec, reason=reason)
        self._finish(now, "platform", reject=(code, cause))

    def _caller(self) -> Leg:
        assert self.caller is not None
        return self.caller

    def _answer_after(self, after: float, now: float) -> bool:
        """Incoming only: answer after a delay. True when the flow must wait for it."""
        if self._caller().state == ANSWERED:
            return False
        if after <= 0:
            self._ensure_answered(now)
            return False
        self._timers["answer"] = now + after
        return True

    def _ensure_answered(self, now: float) -> None:
        caller = self._caller()
        if caller.state == RINGING and caller.rec.direction == "inbound":
            self._answer_caller(caller, now)
            self.ivr_answered = True
            if self.service is Service.INCOMING:
                self.record.connected_to = "ivr"  # live state, until an agent answers
            self._event(now, "ivr_answered", caller.rec)

    def _answer_caller(self, caller: Leg, now: float) -> None:
        self.commands.append(Answer(caller.id))
        caller.state = ANSWERED
        set_answered(caller.rec, now)
        self._mark_answer(now)

    # ------------------------------------------------------------------ gather
    def _start_gather(self, args: GatherArgs, now: float) -> None:
        self._ensure_answered(now)
        self._plays += 1
        self._gathers += 1
        self._gather = _GatherState(args, self._plays)
        p = args.prompt
        self.commands.append(
            Gather(self._caller().id, self._plays, self._gathers, p.prompt, p.text, p.seconds)
        )
        self._event(now, "gather", self._caller().rec, prompt=p.prompt or p.text)

    def _on_digits(self, leg: Leg, digits: str, now: float) -> None:
        g = self._gather
        if g is None or leg is not self.caller:
            return  # digits pressed during a play (or on another leg) are dropped
        if not g.prompt_done:  # barge-in: a digit stops the gather's prompt and counts
            g.prompt_done = True
            self.commands.append(StopPlay(g.play))
        finish = g.args.finish_on_key
        for digit in digits:
            if finish and digit == finish:
                self._complete_gather(now)
                return
            g.digits += digit
            if len(g.digits) >= g.args.digits:
                self._complete_gather(now)
                return

    def _complete_gather(self, now: float) -> None:
        g = self._gather
        assert g is not None
        self._gather = None
        self._timers.pop("gather", None)
        if g.args.action is not None:  # the digits go to the action, which decides
            self._event(now, "digits", self._caller().rec, digits=g.digits)
            if g.digits:
                self._fetch(g.args.action, {"event": "gather", "digits": g.digits}, now)
            else:
                self._run(now)  # no input: the flow goes on with the next step
            return
        branch = g.args.branches.get(g.digits)
        self._event(
            now,
            "digits",
            self._caller().rec,
            digits=g.digits,
            branch=g.digits if branch is not None else "default",
        )
        self._stack.append((branch if branch is not None else g.args.default, 0))
        self._run(now)

    def _on_play_done(self, play: int, now: float) -> None:
        g = self._gather
        if g is not None and play == g.play:
            if not g.prompt_done:
                g.prompt_done = True
                self._timers["gather"] = now + g.args.timeout
        elif play == self._playing:
            self._playing = None
            self._run(now)

    def _on_flow_timer(self, key: object, now: float) -> None:
        if key == "answer":
            self._ensure_answered(now)
            self._run(now)
        elif key == "gather":
            self._complete_gather(now)
        elif key == "pause":
            self._run(now)
        else:
            super()._on_flow_timer(key, now)

    # -------------------------------------------------------------------- dial
    def _start_dial(self, args: DialArgs, now: float) -> bool:
        """Start a dial step; False when it ended at once (no agent left to dial)."""
        numbers = list(args.to)
        if self.checks_agents:
            for number in list(numbers):
                why = permitted(self.spec.policy, number)
                if why is not None:
                    numbers.remove(number)
                    self._event(now, "skipped", None, number=number, rule=why[0], detail=why[1])
        ring_timeout = args.ring_timeout or self.config.ring_timeout
        group = DialGroup(numbers, args.strategy == "parallel", ring_timeout, "agent", 2,
                          args.caller_id, args.action)
        if not numbers:
            self.dial_steps.append(group.settle())
            if args.action is not None:
                self._dial_done(group, None, now)
                return True
            return False
        self._dial_group = group
        for number in numbers if group.parallel else numbers[:1]:
            self._dial(group, number, now)
        return True

    def _agent_failed(self, leg: Leg, now: float) -> None:
        group = self._dial_group
        if group is None or group.pending:
            return
        if not group.parallel and len(group.attempts) < len(group.numbers):
            self._dial(group, group.numbers[len(group.attempts)], now)
            return
        self.dial_steps.append(group.settle())
        self._dial_group = None
        self._dial_done(group, leg, now)

    def _dial_done(self, group: DialGroup, last: Leg | None, now: float) -> None:
        """A dial step is over: fetch its action if it has one, else go on with the flow
        (if the flow ends here, the platform hangs up)."""
        if group.action is None:
            self._run(now)
            return
        rec = None if last is None else last.rec
        params = {"event": "dial", "outcome": (group.outcome or Outcome.FAILED).value,
                  "sip_code": "" if rec is None or rec.sip_code is None else str(rec.sip_code),
                  "talk_seconds": "0" if rec is None else f"{rec.talk_seconds:g}",
                  "number": "" if rec is None else rec.number}
        self._fetch(group.action, params, now)

    def _agent_left(self, leg: Leg, now: float) -> bool:
        """A connected agent hung up: with a dial action the caller stays and the action's
        flow runs (True); without one the call ends."""
        action = self._dial_action
        if action is None or leg is not self.agent:
            return False
        self._dial_action = None
        group = DialGroup([], False, 0.0, "agent", 2, None, action)
        group.outcome = Outcome.ANSWERED
        self._dial_done(group, leg, now)
        return True

    def _agent_answered(self, leg: Leg, now: float) -> None:
        group = self._dial_group
        assert group is not None
        for other in group.pending:
            self._cut(other, now, Outcome.CANCELLED)
        group.outcome = Outcome.ANSWERED
        self.dial_steps.append(Outcome.ANSWERED)
        self._dial_group = None
        self._dial_action = group.action
        self.agent = leg
        self.record.connected_to = leg.rec.number
        if self.service is Service.INCOMING:
            self.record.picked_by = leg.rec.number
        caller = self._caller()
        if caller.state == RINGING:  # a flow that starts with dial answers on the agent
            self._answer_caller(caller, now)
        self.commands.append(Bridge(caller.id, leg.id))
        self._event(now, "bridge", leg.rec, number=leg.rec.number)

    def _settle_groups(self, cut: Outcome | None) -> None:
        if self._dial_group is not None:
            self.dial_steps.append(self._dial_group.settle(cut))
            self._dial_group = None
        if self._playing is not None:
            self.commands.append(StopPlay(self._playing))
        if self._gather is not None and not self._gather.prompt_done:
            self.commands.append(StopPlay(self._gather.play))

    def _unanswered_reason(self) -> Status | Outcome:
        return self.dial_steps[-1] if self.dial_steps else Status.IVR

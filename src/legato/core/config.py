"""The configuration of a Legato number and its flow: one schema for scenario files and the API.

A scenario's ``config:`` block (DESIGN section 6) and the REST API's number ``config`` are
the same Pydantic model, so a file and a request are validated by the same rules and
their errors name the same key paths.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

from legato.core.errors import KeyProblem, each
from legato.core.policy.blacklist import Blacklist
from legato.core.policy.office_hours import OfficeHours
from legato.core.policy.permissions import (
    normalize_number,
    validate_allowed_countries,
    validate_allowed_number_types,
)

#: How long a prompt plays in the sim when its ``seconds`` is not given.
DEFAULT_PROMPT_SECONDS = 3.0


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in a config must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Prompt(_Strict):
    """Audio to play: a prompt file from the prompts folder, or text to speak."""

    prompt: str | None = Field(default=None, min_length=1, description="prompt file name")
    text: str | None = Field(default=None, min_length=1, description="text to speak")
    seconds: float = Field(
        default=DEFAULT_PROMPT_SECONDS, ge=0, description="how long it plays in the sim"
    )

    @model_validator(mode="after")
    def _one_source(self) -> Prompt:
        if (self.prompt is None) == (self.text is None):
            raise ValueError("give exactly one of 'prompt' (a file name) or 'text'")
        return self


class FlowUrl(_Strict):
    """Where to fetch the next flow document (a dynamic flow: TwiML or Legato JSON)."""

    url: str = Field(min_length=1, max_length=2048)
    method: Literal["GET", "POST"] = "POST"

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value


class AnswerArgs(_Strict):
    after: float = Field(default=0.0, ge=0, description="seconds before the platform answers")


class HangupArgs(_Strict):
    pass


class DialArgs(_Strict):
    to: list[str] = Field(min_length=1, description="agent numbers, tried as `strategy` says")
    ring_timeout: float | None = Field(default=None, gt=0)
    strategy: Literal["sequential", "parallel"] = "sequential"
    caller_id: str | None = Field(default=None, description="caller ID shown to the agents")
    action: FlowUrl | None = Field(
        default=None, description="fetch the next flow here when the dial ends; the caller "
        "stays on the line even after a connected agent hangs up")

    @field_validator("caller_id")
    @classmethod
    def _caller_id(cls, value: str | None) -> str | None:
        return None if value is None else normalize_number(value)

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("to")
    @classmethod
    def _numbers(cls, value: list[str]) -> list[str]:
        return unique_numbers(value)


class GatherArgs(_Strict):
    prompt: Prompt
    digits: int = Field(default=1, ge=1, le=32)
    timeout: float = Field(default=5.0, ge=0, description="seconds from the end of the prompt")
    branches: dict[str, list[Step]] = Field(default_factory=dict)
    default: list[Step] = Field(default_factory=list)
    finish_on_key: Literal["", "#", "*", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"] = "#"
    action: FlowUrl | None = Field(
        default=None, description="send the digits here and run the flow it returns; with "
        "no digits the flow goes on with the next step")

    @model_validator(mode="after")
    def _branches_or_action(self) -> GatherArgs:
        if self.action is not None and self.branches:
            raise KeyProblem(("branches",), "give `branches` or `action`, not both: with an "
                             "action the fetched flow decides what the digits do")
        return self

    @field_validator("branches")
    @classmethod
    def _digit_keys(cls, value: dict[str, list[Step]]) -> dict[str, list[Step]]:
        for key in value:
            if not key or any(c not in "0123456789*#" for c in key):
                raise ValueError(f"branch key {key!r} must be DTMF digits (0-9, *, #)")
        return value


class PauseArgs(_Strict):
    seconds: float = Field(default=1.0, ge=0, le=86_400)


class RejectArgs(_Strict):
    reason: Literal["rejected", "busy"] = "rejected"


class AnswerStep(_Strict):
    answer: AnswerArgs


class PauseStep(_Strict):
    pause: PauseArgs


class RedirectStep(_Strict):
    redirect: FlowUrl


class RejectStep(_Strict):
    reject: RejectArgs


class PlayStep(_Strict):
    play: Prompt


class GatherStep(_Strict):
    gather: GatherArgs


class DialStep(_Strict):
    dial: DialArgs


class HangupStep(_Strict):
    hangup: HangupArgs


STEP_KINDS = ("answer", "play", "gather", "dial", "hangup", "pause", "redirect", "reject")


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next(iter(value)) if len(value) == 1 else None
    return next((k for k in STEP_KINDS if getattr(value, k, None) is not None), None)


Step = Annotated[
    Annotated[AnswerStep, Tag("answer")]
    | Annotated[PlayStep, Tag("play")]
    | Annotated[GatherStep, Tag("gather")]
    | Annotated[DialStep, Tag("dial")]
    | Annotated[HangupStep, Tag("hangup")]
    | Annotated[PauseStep, Tag("pause")]
    | Annotated[RedirectStep, Tag("redirect")]
    | Annotated[RejectStep, Tag("reject")],
    Discriminator(
        _step_kind,
        custom_error_type="flow_step",
        custom_error_message="a flow step is a mapping with exactly one of the keys "
        + ", ".join(STEP_KINDS),
    ),
]
GatherArgs.model_rebuild()

#: A flow: the steps a call runs through, in order.
Flow = list[Step]
_FLOW = TypeAdapter(Flow)


def parse_flow(data: Any) -> list[Step]:
    """Validate a flow document (Legato's JSON/YAML form, or a translated TwiML one) with
    the same rules as a number's `flow`; raises pydantic's ValidationError."""
    return _FLOW.validate_python(data)


def unique_numbers(numbers: list[str]) -> list[str]:
    """E.164-normalise a list of numbers; a number given twice is an error."""
    out = each(numbers, normalize_number)
    seen: set[str] = set()
    for index, n in enumerate(out):
        if n in seen:
            raise KeyProblem((index,), f"{n} is given twice")
        seen.add(n)
    return out


def _countries(value: list[str] | None) -> list[str] | None:
    """ISO 3166 alpha-2 codes phonenumbers knows; a bad one is named by its index."""
    return None if value is None else each(
        value, lambda v: next(iter(validate_allowed_countries([v]))))


def _types(value: list[str] | None) -> list[str] | None:
    """phonenumbers' number types in lower case; a bad one is named by its index."""
    return None if value is None else each(
        value, lambda v: next(iter(validate_allowed_number_types([v]))))


class NumberConfig(_Strict):
    """Everything that decides how calls to or from a Legato number behave."""

    ring_timeout: float = Field(default=30.0, gt=0, description="seconds a dialled phone may ring")
    max_duration: float = Field(default=3600.0, gt=0, description="seconds from the first answer")
    lines: int | None = Field(default=None, ge=0, description="lines allocated; absent = no limit")
    lines_in_use: int = Field(default=0, ge=0, description="lines already busy (scenarios)")
    blacklist: list[str] = Field(default_factory=list, description="numbers, or prefixes ending *")
    dnd: list[str] = Field(default_factory=list, description="DND registry entries (scenarios)")
    dnd_scrub: bool = True
    allowed_countries: list[str] | None = None
    allowed_number_types: list[str] | None = None
    office_hours: OfficeHours | None = None
    missed_call: bool = False
    missed_call_ring: float = Field(default=2.0, ge=0)
    flow: list[Step] | None = None
    flow_url: FlowUrl | None = Field(
        default=None, description="fetch the flow when a call starts, instead of `flow`")
    send_digits: str = Field(
        default="", max_length=256, pattern=r"^[0-9*#A-DwW]*$",
        description="outbound: DTMF keyed to the subscriber when it answers, before the "
        "flow runs (0-9 * # A-D; w waits 0.5 s, W 1 s)")
    record: bool = Field(
        default=False,
        description="record bridged calls (both sides, dual-channel WAV; needs media)")

    @model_validator(mode="after")
    def _one_flow(self) -> NumberConfig:
        if self.flow and self.flow_url is not None:
            raise KeyProblem(("flow_url",), "give `flow` or `flow_url`, not both")
        return self

    @field_validator("blacklist")
    @classmethod
    def _blacklist(cls, value: list[str]) -> list[str]:
        return each(value, _blacklist_entry)  # a bad entry is named by its index

    @field_validator("dnd")
    @classmethod
    def _dnd(cls, value: list[str]) -> list[str]:
        return each(value, normalize_number)

    _countries = field_validator("allowed_countries")(staticmethod(_countries))
    _types = field_validator("allowed_number_types")(staticmethod(_types))


class AccountSettings(_Strict):
    """Account-wide defaults for the policies of the numbers Legato dials out for
    (click-to-call, outbound). A number's own `config` overrides each of them."""

    allowed_countries: list[str] | None = None
    allowed_number_types: list[str] | None = None
    dnd_scrub: bool | None = None

    _countries = field_validator("allowed_countries")(staticmethod(_countries))
    _types = field_validator("allowed_number_types")(staticmethod(_types))

    def apply_to(self, number_config: dict[str, Any]) -> dict[str, Any]:
        """The number's config document with the account's defaults filled in where the
        number sets nothing of its own."""
        merged = dict(number_config)
        for key, value in self.model_dump(exclude_none=True).items():
            merged.setdefault(key, value)
        return merged


def _blacklist_entry(entry: str) -> str:
    Blacklist([entry])
    return entry


def find_answer(steps: list[Step]) -> tuple[str | int, ...] | None:
    """The key path of an ``answer`` or ``reject`` step anywhere in a flow (outbound flows
    forbid both: leg 1 has already answered when they run)."""
    for index, step in enumerate(steps):
        if isinstance(step, AnswerStep | RejectStep):
            return (index, "answer" if isinstance(step, AnswerStep) else "reject")
        if isinstance(step, GatherStep):
            g = step.gather
            nested: list[tuple[tuple[str | int, ...], list[Step]]] = [
                (("default",), g.default),
                *((("branches", k), v) for k, v in g.branches.items()),
            ]
            for prefix, branch in nested:
                found = find_answer(branch)
                if found is not None:
                    return (index, "gather", *prefix, *found)
    return None

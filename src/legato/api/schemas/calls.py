"""Calls: what a client may ask for, and the call record it reads back (DESIGN section 7)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, JsonValue, model_validator
from pydantic_core import PydanticCustomError

from legato.api.schemas.common import E164, NumberList
from legato.core.config import Step, find_answer

State = Literal["queued", "in_progress", "completed"]
Party = Literal["leg1", "leg2", "platform"]


class CallBase(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    service: Literal["click_to_call", "outbound"]
    number: E164 = Field(description="the account's Legato number: caller ID and configuration")


class CallCreate(CallBase):
    """A click-to-call (`from` agents, `to` customers) or an outbound call (`to` subscriber)."""

    from_: NumberList | None = Field(
        default=None,
        alias="from",
        description="click_to_call: the agent(s), rung at once; the first to answer is leg 1",
    )
    to: NumberList = Field(
        description="click_to_call: customer number(s), tried in order; outbound: the subscriber"
    )
    ring_timeout: float | None = Field(default=None, gt=0, le=600)
    max_duration: float | None = Field(default=None, gt=0, le=86400)
    flow: list[Step] | None = Field(
        default=None, description="outbound: the flow run once the subscriber answers"
    )
    dnd_category: int | None = Field(default=None, ge=1, le=7, description="NCPR category")
    transactional: bool = False
    record: bool | None = Field(
        default=None,
        description="record the bridged call to a dual-channel WAV (sip driver with media); "
        "default: the number's `record`",
    )
    custom_data: JsonValue = Field(default=None, description="echoed back in the record")
    callback_url: AnyHttpUrl | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _shape(self) -> CallCreate:
        if self.service == "click_to_call":
            if not self.from_:
                raise PydanticCustomError(
                    "missing", "click_to_call needs `from`: the agent number(s)"
                )
            if self.flow is not None:
                raise PydanticCustomError("forbidden", "`flow` applies to outbound calls only")
            overlap = set(self.from_) & set(self.to)
            if overlap:
                raise PydanticCustomError(
                    "unique", "{n} is both in `from` and in `to`", {"n": sorted(overlap)[0]}
                )
        else:
            if self.from_ is not None:
                raise PydanticCustomError(
                    "forbidden", "outbound takes `to` (the subscriber) and `number`, not `from`"
                )
            if len(self.to) != 1:
                raise PydanticCustomError("max_items", "outbound calls one subscriber: one `to`")
            path = find_answer(self.flow) if self.flow else None
            if path is not None:
                where = "flow" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
                raise PydanticCustomError(
                    "forbidden",
                    "{where}: `answer` is not allowed in an outbound flow: leg 1 has answered",
                    {"where": where},
                )
        return self


class SimIncoming(BaseModel):
    """Place an incoming call from a virtual phone to one of the account's numbers."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    number: E164
    from_: E164 = Field(alias="from")


class LegPublic(BaseModel):
    leg: int
    attempt: int
    role: str | None = None
    number: str | None = None
    direction: str | None = None
    outcome: str | None = None
    sip_code: int | None = None
    sip_reason: str | None = None
    q850_cause: int | None = None
    q850_derived: bool | None = None
    dialed_at: str | None = None
    ringing_at: str | None = None
    answered_at: str | None = None
    ended_at: str | None = None
    ended_by: str | None = None
    ring_seconds: float | None = None
    talk_seconds: float | None = None
    pdd_ms: float | None = None


class EventPublic(BaseModel):
    """One event of the timeline; `t` is seconds from the start. Extra keys give details."""

    model_config = ConfigDict(extra="allow")

    t: float
    type: str
    leg: int | None = None


class AdmissionPublic(BaseModel):
    verdict: str
    rule: str | None = None
    detail: str | None = None
    dropped: list[dict[str, str]] = Field(default_factory=list)


class CallPublic(BaseModel):
    """The call record of DESIGN section 7, with the request's echo and the call's state.

    While `state` is not `completed`, `status` is null and `legs`/`events` hold what has
    happened so far.
    """

    id: str
    service: str
    state: State
    status: str | None
    status_description: str | None
    number: str
    from_: list[str] = Field(alias="from")
    to: list[str]
    started_at: str
    answered_at: str | None
    ended_at: str | None
    duration_seconds: float | None
    billable_seconds: int | None
    disconnected_by: str | None
    connected_to: str | None
    picked_by: str | None
    admission: AdmissionPublic | None
    end_reason: str | None
    custom_data: JsonValue
    callback_url: str | None
    recording: str | None = Field(
        default=None, description="the WAV of a recorded bridge (both sides, one per channel)"
    )
    legs: list[LegPublic]
    events: list[EventPublic]


class CallList(BaseModel):
    data: list[CallPublic]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )


def request_document(body: CallCreate) -> dict[str, Any]:
    """The validated request as JSON: stored with the call and hashed for idempotency."""
    return body.model_dump(mode="json", by_alias=True, exclude_none=True)

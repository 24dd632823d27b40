"""The scenario schema. Its `config` block is the same `NumberConfig` the API uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from legato.core.catalogue import Service, Status
from legato.core.config import NumberConfig, find_answer, unique_numbers
from legato.core.errors import KeyProblem
from legato.core.policy.permissions import normalize_number
from legato.sim.phones import PhoneBehaviour

#: When a scenario gives no `at`, its call starts here (timestamps only: a scenario that
#: depends on the time of day must say when the call lands).
DEFAULT_AT = datetime(2026, 1, 1, tzinfo=UTC)

Party = Literal["leg1", "leg2", "platform"]


class Expect(BaseModel):
    """What the call must end with. A key given as null must be null; a key left out is
    not checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Status | None = None
    disconnected_by: Party | None = None
    connected_to: str | None = None
    picked_by: str | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _known_status(cls, value: Any) -> Any:
        if value is not None and value not in {s.value for s in Status}:
            raise ValueError(f"{value!r} is not a status code of the catalogue (the 21 "
                             "codes `legato statuses` lists)")
        return value

    def given(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.model_fields_set}


class Scenario(BaseModel):
    """One call and the behaviour of every phone involved."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    description: str | None = None
    service: Service
    at: datetime | None = None
    number: str
    from_: list[str] = Field(default_factory=list, alias="from")
    to: list[str] = Field(default_factory=list)
    config: NumberConfig = Field(default_factory=NumberConfig)
    phones: dict[str, PhoneBehaviour] = Field(default_factory=dict)
    expect: Expect | None = None

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        return normalize_number(value)

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _one_or_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("from_", "to")
    @classmethod
    def _numbers(cls, value: list[str]) -> list[str]:
        return unique_numbers(value)

    @field_validator("phones", mode="before")
    @classmethod
    def _phone_numbers(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, behaviour in value.items():
            if str(key) in out:
                raise KeyProblem((str(key),), f"{key} is given twice")
            try:
                number = normalize_number(str(key))
            except ValueError as error:
                raise KeyProblem((str(key),), str(error)) from None
            out[number] = {} if behaviour is None else behaviour
        return out

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a UTC offset (e.g. 2026-11-23T11:00:00+05:30)")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Scenario:
        s = self.service
        if s is Service.OUTBOUND:
            if self.from_:
                raise KeyProblem(("from",), "outbound takes `to` (the subscriber) and "
                                 "`number` (the caller ID), not `from`")
            if len(self.to) != 1:
                raise KeyProblem(("to",), "outbound needs exactly one `to` number (the "
                                 "subscriber)")
            where = find_answer(self.config.flow or [])
            if where is not None:
                raise KeyProblem(("config", "flow", *where), f"`{where[-1]}` is not allowed in "
                                 "an outbound flow: leg 1 has already answered when it runs")
        elif s is Service.CLICK_TO_CALL:
            for key, numbers, side in (("from", self.from_, "the agents"),
                                       ("to", self.to, "the customers")):
                if not numbers:
                    raise KeyProblem((key,), f"click_to_call needs `{key}` ({side})")
        else:
            if len(self.from_) != 1:
                raise KeyProblem(("from",), f"{s.value} needs exactly one `from` number "
                                 "(the caller)")
            if self.to:
                raise KeyProblem(("to",), f"{s.value} takes no `to`: the caller dials "
                                 "`number`")
        if self.config.office_hours is not None and self.at is None:
            raise KeyProblem(("at",), "required when config.office_hours is set: the "
                             "status depends on when the call lands")
        return self

    @property
    def started_at(self) -> datetime:
        return self.at or DEFAULT_AT

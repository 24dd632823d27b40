"""How a virtual phone behaves when it is dialled or when it calls (DESIGN section 6)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: The keys that decide how a dialled phone responds; a phone has at most one of them.
RESPONSE_KEYS = ("busy", "no_answer", "unreachable", "congestion", "sip_status", "reject_after",
                 "answer_after")
_DTMF = frozenset("0123456789*#ABCD")


class PhoneBehaviour(BaseModel):
    """One phone of the virtual network. With no response key it answers at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    answer_after: float | None = Field(default=None, ge=0)
    hangup_after: float | None = Field(default=None, ge=0)
    reject_after: float | None = Field(default=None, ge=0)
    busy: bool = False
    no_answer: bool = False
    unreachable: bool = False
    congestion: bool = False
    sip_status: int | None = Field(default=None, description="final response code (3xx-6xx)")
    q850: int | None = Field(default=None,
                             description="Q.850 cause of the Reason header sent with sip_status")
    dtmf: list[str] = Field(default_factory=list,
                            description="the n-th gather receives the n-th entry")

    @field_validator("sip_status")
    @classmethod
    def _final_failure(cls, value: int | None) -> int | None:
        if value is not None and not 300 <= value <= 699:
            raise ValueError(f"{value} is not a final failure response: give a SIP code "
                             "from 300 to 699 (answering is the default behaviour)")
        return value

    @field_validator("q850")
    @classmethod
    def _cause(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 127:
            raise ValueError(f"{value} is not a Q.850 cause: causes are 1 to 127")
        return value

    @field_validator("dtmf", mode="before")
    @classmethod
    def _digits_as_text(cls, value: Any) -> Any:
        if isinstance(value, list):
            return ["" if v is None else str(v) if isinstance(v, int) else v for v in value]
        return value

    @field_validator("dtmf")
    @classmethod
    def _dtmf_chars(cls, value: list[str]) -> list[str]:
        for entry in value:
            bad = set(entry) - _DTMF
            if bad:
                raise ValueError(f"{entry!r} has characters that are not DTMF digits: "
                                 f"{''.join(sorted(bad))}")
        return value

    @model_validator(mode="after")
    def _one_response(self) -> PhoneBehaviour:
        given = [k for k in RESPONSE_KEYS if getattr(self, k) not in (None, False)]
        if len(given) > 1:
            raise ValueError(f"a phone has at most one of {', '.join(RESPONSE_KEYS)}; "
                             f"got {' and '.join(given)}")
        if self.q850 is not None and self.sip_status is None:
            raise ValueError("q850 is the Reason cause of sip_status: give sip_status too")
        return self

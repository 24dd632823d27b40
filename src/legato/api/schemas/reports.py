"""The summary report."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Figures(BaseModel):
    calls: int = Field(description="completed calls")
    attempted: int = Field(description="completed calls not stopped by a pre-dial policy")
    answered: int = Field(description="attempted calls with an answer that decided the status")
    statuses: dict[str, int]
    asr: float | None = Field(description="answer-seizure ratio: answered / attempted")
    ner: float | None = Field(description="network effectiveness: not network-failed / attempted")
    acd_seconds: float | None = Field(description="average connected duration of answered calls")
    pdd_ms_p50: float | None
    pdd_ms_p95: float | None
    disconnected_by: dict[str, float | None] = Field(description="share of calls per side")


class Group(Figures):
    key: str | None


class Summary(BaseModel):
    since: str | None
    until: str | None
    group_by: str | None
    in_progress: int
    totals: Figures
    groups: list[Group]

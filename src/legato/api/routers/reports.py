"""`/v1/reports/summary`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from legato.api.deps import AccountId, SessionDep
from legato.api.problems import field_problem, problem_responses
from legato.api.schemas.reports import Summary
from legato.store import reports

router = APIRouter(prefix="/v1/reports", tags=["reports"])


def aware(value: datetime | None) -> datetime | None:
    """Times without a zone are taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@router.get("/summary", response_model=Summary, responses=problem_responses(401, 422))
def summary(
    session: SessionDep,
    account: AccountId,
    since: Annotated[datetime | None, Query(description="calls started at or after")] = None,
    until: Annotated[datetime | None, Query(description="calls started before")] = None,
    group_by: Annotated[reports.GroupBy | None, Query(description="split the figures")] = None,
) -> Any:
    """Counts per status, ASR, NER, ACD, PDD p50/p95 and who disconnected, for completed calls."""
    since, until = aware(since), aware(until)
    if since and until and since >= until:
        raise field_problem("until", "after_since", "must be later than `since`", "query")
    return reports.summary(session, account, since, until, group_by)

"""The summary report: counts per status, ASR, NER, ACD, PDD percentiles, who hung up.

Definitions (see docs/decisions.md): only completed calls count; *attempted* excludes
calls a policy stopped before dialling; *answered* means the call has an `answered_at`
(the answer that decided its status); NER counts every attempted call that did not end
in a network failure (FAILED*, CHANUNAVAIL, CONGESTION); ACD averages answered_at ->
ended_at over answered calls; PDD percentiles run over every leg attempt that rang.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, String, cast, func, select
from sqlalchemy.orm import Session

from legato.core.catalogue import CATALOGUE
from legato.store.calls import COMPLETED
from legato.store.models import Call, Leg

GroupBy = Literal["hour", "day", "number", "service", "status"]
GROUPS: tuple[str, ...] = ("hour", "day", "number", "service", "status")

PRE_DIAL = frozenset(row.code.value for row in CATALOGUE if row.pre_dial)
NETWORK_FAILURES = frozenset({"FAILED", "FAILED_LEG1", "FAILED_LEG2", "CHANUNAVAIL", "CONGESTION"})


@dataclass(slots=True)
class _Tally:
    total: int = 0
    attempted: int = 0
    answered: int = 0
    network_ok: int = 0
    connected_sum: float = 0.0
    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    by_disconnect: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pdd: list[float] = field(default_factory=list)


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every figure is a measured PDD)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _bucket(session: Session, group_by: GroupBy | None) -> ColumnElement[Any] | None:
    """The SQL expression of a group key (time buckets are ISO strings in UTC)."""
    if group_by is None:
        return None
    if group_by in ("number", "service", "status"):
        return getattr(Call, group_by)  # type: ignore[no-any-return]
    fmt = "%Y-%m-%dT%H:00:00Z" if group_by == "hour" else "%Y-%m-%d"
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime(fmt, Call.started_at)
    pg_fmt = 'YYYY-MM-DD"T"HH24":00:00Z"' if group_by == "hour" else "YYYY-MM-DD"
    return cast(func.to_char(func.timezone("UTC", Call.started_at), pg_fmt), String)


def summary(
    session: Session,
    account_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
    group_by: GroupBy | None = None,
) -> dict[str, Any]:
    """The report for one account over [since, until), overall and per group."""
    key = _bucket(session, group_by)
    scope = [Call.account_id == account_id, Call.state == COMPLETED]
    if since is not None:
        scope.append(Call.started_at >= since)
    if until is not None:
        scope.append(Call.started_at < until)

    # Without grouping, group by the account: one group, and valid SQL on every engine.
    label = (key if key is not None else Call.account_id).label("g")
    rows = session.execute(
        select(
            label,
            Call.status,
            Call.disconnected_by,
            (Call.answered_at.is_not(None)).label("answered"),
            func.count(),
            func.coalesce(func.sum(Call.connected_seconds), 0.0),
        )
        .where(*scope)
        .group_by(label, Call.status, Call.disconnected_by, Call.answered_at.is_not(None))
    ).all()
    overall = _Tally()
    groups: dict[str, _Tally] = defaultdict(_Tally)
    for g, status, disc, answered, count, connected in rows:
        for tally in (overall, groups[g]) if key is not None else (overall,):
            _add(tally, status, disc, bool(answered), int(count), float(connected))

    pdd_rows = session.execute(
        select(label, Leg.pdd_ms)
        .join(Call, Call.id == Leg.call_id)
        .where(*scope, Leg.pdd_ms.is_not(None))
    ).all()
    for g, pdd in pdd_rows:
        overall.pdd.append(float(pdd))
        if key is not None:
            groups[g].pdd.append(float(pdd))

    in_progress = session.scalar(
        select(func.count())
        .select_from(Call)
        .where(Call.account_id == account_id, Call.state != COMPLETED)
    )
    return {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "group_by": group_by,
        "in_progress": int(in_progress or 0),
        "totals": _figures(overall),
        "groups": [
            {"key": g, **_figures(t)} for g, t in sorted(groups.items(), key=lambda kv: str(kv[0]))
        ]
        if key is not None
        else [],
    }


def _add(
    tally: _Tally, status: str | None, disc: str | None, answered: bool, n: int, connected: float
) -> None:
    tally.total += n
    code = status or "UNKNOWN"
    tally.by_status[code] += n
    tally.by_disconnect[disc or "unknown"] += n
    if code in PRE_DIAL:
        return
    tally.attempted += n
    if answered:
        tally.answered += n
        tally.connected_sum += connected
    if code not in NETWORK_FAILURES:
        tally.network_ok += n


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def _figures(t: _Tally) -> dict[str, Any]:
    return {
        "calls": t.total,
        "attempted": t.attempted,
        "answered": t.answered,
        "statuses": dict(sorted(t.by_status.items())),
        "asr": _ratio(t.answered, t.attempted),
        "ner": _ratio(t.network_ok, t.attempted),
        "acd_seconds": round(t.connected_sum / t.answered, 3) if t.answered else None,
        "pdd_ms_p50": _percentile(t.pdd, 0.50),
        "pdd_ms_p95": _percentile(t.pdd, 0.95),
        "disconnected_by": {k: _ratio(v, t.total) for k, v in sorted(t.by_disconnect.items())},
    }

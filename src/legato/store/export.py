"""CSV export of call records (the API's export.csv and `legato calls export`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

CSV_COLUMNS = (
    "id",
    "service",
    "state",
    "status",
    "number",
    "from",
    "to",
    "started_at",
    "answered_at",
    "ended_at",
    "duration_seconds",
    "billable_seconds",
    "disconnected_by",
    "connected_to",
    "picked_by",
    "end_reason",
)


def csv_rows(docs: Iterable[dict[str, Any]]) -> Iterator[str]:
    """CSV text, a header then one line per call; lists are joined with `;`."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for doc in docs:
        writer.writerow(
            ";".join(v) if isinstance(v := doc.get(col), list) else ("" if v is None else v)
            for col in CSV_COLUMNS
        )
        if buf.tell() > 64_000:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()

"""Office hours and holidays of a Legato number: is it open at a given instant?

An incoming call outside working hours ends OFF-HOUR (DESIGN section 4, rule 3), and the
admission verdict records which rule closed the number, so :func:`check_open` answers
with the rule and a human-readable detail, not just a boolean.

Semantics (DESIGN section 6, "Exact semantics"):

* Intervals are half-open ``[start, end)`` in local wall-clock time of ``timezone``.
* An interval whose end is before its start crosses midnight and belongs to the day it
  starts on: ``fri: "22:00-06:00"`` is open until Saturday 06:00.
* A holiday closes every moment whose *local date* is that day, even the part of a
  midnight-crossing interval that spills into it.

Daylight-saving changes: an interval opens at the first instant the local clock reads
its start and closes at the first instant the clock reads its end. A bound that falls in
a gap (a local time that does not exist, e.g. 02:30 on a spring-forward night) maps to
the instant of the jump; a bound in a repeated hour maps to its first occurrence. So an
interval is always one contiguous stretch of real time, and the office does not
"re-close" when the clocks go back in the middle of a shift.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_MINUTES_PER_DAY = 24 * 60
_MINUTES_PER_WEEK = 7 * _MINUTES_PER_DAY
_INTERVAL_RE = re.compile(r"^\s*(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})\s*$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class Interval(NamedTuple):
    """One ``HH:MM-HH:MM`` opening of a day, as minutes after local midnight.

    ``end`` is 0..1440 (``24:00`` is allowed); ``end < start`` means the interval
    crosses midnight into the next day. A named tuple, because it is hashed on the hot
    path (a cache key) and a tuple hashes in C.
    """

    start: int
    end: int

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    @property
    def stop(self) -> int:
        """Where the interval ends, in minutes after the midnight that starts its day."""
        return self.end + _MINUTES_PER_DAY if self.crosses_midnight else self.end

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"

    @classmethod
    def parse(cls, text: str) -> Interval:
        """Parse ``"HH:MM-HH:MM"``; the error says which rule the text breaks."""
        m = _INTERVAL_RE.match(text)
        if m is None:
            raise ValueError(f"{text!r} is not an interval: write HH:MM-HH:MM, e.g. 09:00-18:00")
        sh, sm, eh, em = (int(g) for g in m.groups())
        if sh > 23 or sm > 59:
            raise ValueError(f"{text!r}: start {sh:02d}:{sm:02d} is not a time of day")
        if eh > 24 or em > 59 or (eh == 24 and em != 0):
            raise ValueError(f"{text!r}: end {eh:02d}:{em:02d} is not a time of day (max 24:00)")
        start, end = sh * 60 + sm, eh * 60 + em
        if start == end or (start == 0 and end == 0):
            raise ValueError(
                f"{text!r} is empty: start and end are equal (write 00:00-24:00 for a whole day)"
            )
        return cls(start, end)


@dataclass(frozen=True, slots=True)
class HolidayRange:
    """Holiday dates ``first..last``, inclusive (a single holiday has first == last)."""

    first: date
    last: date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last

    def __str__(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    @classmethod
    def parse(cls, value: object) -> HolidayRange:
        """Parse ``"YYYY-MM-DD"``, ``"YYYY-MM-DD..YYYY-MM-DD"`` or a :class:`date`.

        YAML loads an unquoted ``2026-12-25`` as a date, so a date object is accepted.
        """
        if isinstance(value, HolidayRange):
            return value
        if isinstance(value, datetime):
            raise ValueError(f"{value.isoformat()!r} is a date-time: a holiday is a date")
        if isinstance(value, date):
            return cls(value, value)
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a date: write YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD")
        text = value.strip()
        first_text, sep, last_text = text.partition("..")
        first = _parse_date(first_text.strip(), value)
        last = _parse_date(last_text.strip(), value) if sep else first
        if last < first:
            raise ValueError(f"holiday range {value!r} ends before it starts")
        return cls(first, last)


def _parse_date(text: str, entry: str) -> date:
    if not _DATE_RE.match(text):
        raise ValueError(f"{entry!r} is not a date: write YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{entry!r}: {text} is not a calendar date") from None


def _interval_input(value: Any) -> Interval:
    if isinstance(value, Interval):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an interval: write HH:MM-HH:MM, e.g. 09:00-18:00")
    return Interval.parse(value)


def _one_or_many(value: Any) -> Any:
    """A day takes one interval string or a list of them."""
    return [value] if isinstance(value, str | Interval) else value


IntervalField = Annotated[
    Interval,
    PlainValidator(_interval_input),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d{2}:\d{2}-\d{2}:\d{2}$"}),
]


def _no_overlap_within_day(intervals: tuple[Interval, ...]) -> tuple[Interval, ...]:
    """Same-day overlaps are reported here, so the error's location names the day."""
    ordered = sorted(intervals)
    for a, b in itertools.pairwise(ordered):
        if b.start < a.stop:
            raise ValueError(f"intervals {a} and {b} overlap")
    return tuple(ordered)


DayIntervals = Annotated[
    tuple[IntervalField, ...],
    BeforeValidator(_one_or_many),
    AfterValidator(_no_overlap_within_day),
]
HolidayField = Annotated[
    HolidayRange,
    PlainValidator(HolidayRange.parse),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}(\.\.\d{4}-\d{2}-\d{2})?$"}),
]


class OfficeHours(BaseModel):
    """The weekly working hours, holidays and timezone of a Legato number.

    Days not listed are days off. Overlapping intervals are refused (also an interval
    that spills past midnight into the next day's first interval) because they are
    almost always a typing mistake and would make the closing reason ambiguous.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = Field(description="IANA timezone name, e.g. Asia/Kolkata")
    days: dict[Weekday, DayIntervals] = Field(default_factory=dict)
    holidays: tuple[HolidayField, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA timezone name (e.g. Asia/Kolkata, Europe/London)"
            ) from None
        return value

    @field_validator("days")
    @classmethod
    def _no_overlap_across_days(
        cls, value: dict[Weekday, tuple[Interval, ...]]
    ) -> dict[Weekday, tuple[Interval, ...]]:
        _check_overlaps(value)
        return {d: value[d] for d in WEEKDAYS if d in value}  # mon..sun, as people read them

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # ZoneInfo caches instances per key

    def holiday_on(self, day: date) -> HolidayRange | None:
        """The holiday entry covering local date ``day``, if any."""
        for holiday in self.holidays:
            if holiday.first <= day <= holiday.last:
                return holiday
        return None


def _check_overlaps(days: dict[Weekday, tuple[Interval, ...]]) -> None:
    """Refuse two intervals sharing a minute, across midnight and the end of the week."""
    spans: list[tuple[int, int, Weekday, Interval]] = []
    for index, day in enumerate(WEEKDAYS):
        for interval in days.get(day, ()):
            base = index * _MINUTES_PER_DAY
            spans.append((base + interval.start, base + interval.stop, day, interval))
    if not spans:
        return
    spans.sort(key=lambda s: s[0])
    latest = spans[0]
    for span in spans[1:]:
        if span[0] < latest[1]:
            raise ValueError(_overlap_message(latest, span))
        if span[1] > latest[1]:
            latest = span
    # Sunday's interval may spill into Monday of the next week.
    first = spans[0]
    if latest[1] - _MINUTES_PER_WEEK > first[0]:
        raise ValueError(_overlap_message(latest, first))


def _overlap_message(
    a: tuple[int, int, Weekday, Interval], b: tuple[int, int, Weekday, Interval]
) -> str:
    if a[2] == b[2]:
        return f"{a[2]}: intervals {a[3]} and {b[3]} overlap"
    return f"{a[2]} {a[3]} overlaps {b[2]} {b[3]}"


@dataclass(frozen=True, slots=True)
class OpenCheck:
    """Whether the number is open; when closed, the rule and a detail for the record.

    ``rule`` is ``"holiday"``, ``"day_off"`` or ``"outside_hours"`` when closed and None
    when open; when open, ``detail`` names the interval that admitted the call.
    """

    open: bool
    rule: str | None
    detail: str | None


def check_open(hours: OfficeHours, at: datetime) -> OpenCheck:
    """Is the number open at instant ``at`` (timezone-aware)?

    Precedence when closed: a holiday first, then a day off, then outside the hours.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"at={at.isoformat()} has no timezone: pass an aware datetime")
    today = at.astimezone(hours.zone).date()
    holiday = hours.holiday_on(today)
    if holiday is not None:
        detail = f"holiday {today.isoformat()}"
        if holiday.first != holiday.last:
            detail += f" ({holiday})"
        return OpenCheck(False, "holiday", detail)
    weekday = today.weekday()
    spans, closed = _plan(
        hours.timezone,
        today,
        hours.days.get(WEEKDAYS[weekday - 1], ()),
        hours.days.get(WEEKDAYS[weekday], ()),
        hours.days.get(WEEKDAYS[(weekday + 1) % 7], ()),
    )
    # Bounds are whole seconds, so a float timestamp decides exactly to the microsecond.
    moment = at.timestamp()
    for opens, closes, within in spans:
        if opens <= moment < closes:
            return within
    return closed


@lru_cache(maxsize=8192)
def _plan(
    timezone: str,
    today: date,
    before: tuple[Interval, ...],
    intervals: tuple[Interval, ...],
    after: tuple[Interval, ...],
) -> tuple[tuple[tuple[float, float, OpenCheck], ...], OpenCheck]:
    """The real-time spans that may cover an instant of local date ``today``, and the
    answer when none does. Cached: the sim asks about the same few days all day long.

    The day before covers spills past midnight; the day after covers zones whose clocks
    go back across midnight (an instant of local date d can then follow d+1 00:00).
    """
    zone = ZoneInfo(timezone)
    spans: list[tuple[float, float, OpenCheck]] = []
    for offset, day_intervals in ((-1, before), (0, intervals), (1, after)):
        day = today + timedelta(days=offset)
        midnight = datetime(day.year, day.month, day.day)
        name = WEEKDAYS[day.weekday()]
        for i in day_intervals:
            opens = first_instant(zone, midnight + timedelta(minutes=i.start))
            closes = first_instant(zone, midnight + timedelta(minutes=i.stop))
            spans.append(
                (opens.timestamp(), closes.timestamp(), OpenCheck(True, None, f"within {name} {i}"))
            )
    name = WEEKDAYS[today.weekday()]
    if not intervals:
        closed = OpenCheck(False, "day_off", f"{name} is a day off")
    else:
        closed = OpenCheck(
            False, "outside_hours", f"outside {name} {', '.join(map(str, intervals))}"
        )
    return tuple(spans), closed


def first_instant(zone: ZoneInfo, wall: datetime) -> datetime:
    """The first instant (UTC) at which the local clock of ``zone`` reads ``wall`` or later.

    ``wall`` is naive local wall-clock time. A repeated time gives its first occurrence;
    a time skipped by a spring-forward gap gives the instant of the jump.
    """
    utc = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == wall:
        return utc
    # In a gap: fold=1 reads the wall time with the post-jump offset, which lands before
    # the jump; fold=0 lands after it. Bisect (offsets change on whole seconds).
    lo = math.floor(wall.replace(tzinfo=zone, fold=1).timestamp())
    hi = math.ceil(utc.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)

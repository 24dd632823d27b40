"""Office hours: validation, examples, DST edges, and a brute-force oracle (hypothesis)."""

from __future__ import annotations

from bisect import bisect_left
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from legato.core.policy.office_hours import (
    WEEKDAYS,
    OfficeHours,
    OpenCheck,
    check_open,
    first_instant,
)

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
KOLKATA = ZoneInfo("Asia/Kolkata")
WEEKDAYS_9_TO_6 = {d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}


def local(zone: ZoneInfo, text: str, fold: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone, fold=fold)


def error_of(**fields: object) -> tuple[str, str]:
    """(dotted location, message) of the single validation error ``fields`` produce."""
    with pytest.raises(ValidationError) as info:
        OfficeHours.model_validate(fields)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(p) for p in errors[0]["loc"]), errors[0]["msg"]


# --- validation ---------------------------------------------------------------------


def test_unknown_timezone_names_the_field() -> None:
    loc, msg = error_of(timezone="Asia/Bangalore")
    assert loc == "timezone"
    assert "'Asia/Bangalore' is not an IANA timezone" in msg


@pytest.mark.parametrize("bad", ["", "../../etc/passwd", "+05:30"])
def test_malformed_timezone_is_refused(bad: str) -> None:
    assert error_of(timezone=bad)[0] == "timezone"


def test_overlapping_intervals_name_the_day() -> None:
    loc, msg = error_of(timezone="UTC", days={"tue": ["09:00-13:00", "12:30-18:00"]})
    assert loc == "days.tue"
    assert msg.endswith("intervals 09:00-13:00 and 12:30-18:00 overlap")


def test_touching_intervals_are_fine_half_open() -> None:
    hours = OfficeHours(timezone="UTC", days={"tue": ["13:00-18:00", "09:00-13:00"]})
    assert [str(i) for i in hours.days["tue"]] == ["09:00-13:00", "13:00-18:00"]
    assert check_open(hours, datetime(2026, 11, 24, 13, 0, tzinfo=UTC)).open


def test_spill_past_midnight_overlapping_next_day_is_refused() -> None:
    loc, msg = error_of(timezone="UTC", days={"fri": "22:00-06:00", "sat": "05:00-09:00"})
    assert loc == "days"
    assert "fri 22:00-06:00 overlaps sat 05:00-09:00" in msg
    # ... also from Sunday into the next Monday.
    _, msg = error_of(timezone="UTC", days={"sun": "23:00-01:00", "mon": "00:30-09:00"})
    assert "sun 23:00-01:00 overlaps mon 00:30-09:00" in msg


def test_spill_touching_next_day_is_fine() -> None:
    hours = OfficeHours(timezone="UTC", days={"sun": "22:00-06:00", "mon": "06:00-09:00"})
    assert check_open(hours, datetime(2026, 11, 30, 5, 59, tzinfo=UTC)).open  # a Monday
    assert check_open(hours, datetime(2026, 11, 30, 6, 0, tzinfo=UTC)).open


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("09:00-09:00", "is empty"),
        ("00:00-00:00", "is empty"),
        ("9:00-18:00", "write HH:MM-HH:MM"),
        ("09:00", "write HH:MM-HH:MM"),
        ("24:00-06:00", "start 24:00 is not a time of day"),
        ("09:60-18:00", "start 09:60 is not a time of day"),
        ("09:00-24:30", "end 24:30 is not a time of day"),
        ("09:00-25:00", "end 25:00 is not a time of day"),
    ],
)
def test_bad_interval_names_day_and_rule(text: str, rule: str) -> None:
    loc, msg = error_of(timezone="UTC", days={"wed": ["08:00-08:30", text]})
    assert loc == "days.wed.1"
    assert rule in msg


def test_unknown_day_and_unknown_key_are_refused() -> None:
    assert error_of(timezone="UTC", days={"monday": "09:00-18:00"})[0].startswith("days.monday")
    assert error_of(timezone="UTC", weekends=True)[0] == "weekends"


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        ("2026-12-31..2026-12-01", "ends before it starts"),
        ("2026-02-30", "not a calendar date"),
        ("25/12/2026", "write YYYY-MM-DD"),
        ("20261225", "write YYYY-MM-DD"),
        (datetime(2026, 12, 25, 10, 0), "a holiday is a date"),
        (20261225, "write YYYY-MM-DD"),
    ],
)
def test_bad_holiday_names_entry_and_rule(entry: object, rule: str) -> None:
    loc, msg = error_of(timezone="UTC", holidays=["2026-01-26", entry])
    assert loc == "holidays.1"
    assert rule in msg


def test_round_trip_through_json() -> None:
    hours = OfficeHours.model_validate(
        {
            "timezone": "Asia/Kolkata",
            "days": {"fri": "22:00-06:00", "mon": ["14:00-18:00", "09:00-13:00"]},
            "holidays": [date(2026, 12, 25), "2026-12-28 .. 2026-12-31"],
        }
    )
    dumped = hours.model_dump(mode="json")
    assert dumped == {
        "timezone": "Asia/Kolkata",
        "days": {"mon": ["09:00-13:00", "14:00-18:00"], "fri": ["22:00-06:00"]},
        "holidays": ["2026-12-25", "2026-12-28..2026-12-31"],
    }
    assert OfficeHours.model_validate(dumped) == hours
    assert OfficeHours.model_validate_json(hours.model_dump_json()) == hours
    assert "pattern" in str(OfficeHours.model_json_schema())


def test_model_is_frozen() -> None:
    hours = OfficeHours(timezone="UTC")
    with pytest.raises(ValidationError):
        hours.timezone = "Asia/Kolkata"  # type: ignore[misc]


# --- examples -----------------------------------------------------------------------


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        check_open(OfficeHours(timezone="UTC"), datetime(2026, 11, 23, 10, 0))


def test_design_example_weekdays_in_kolkata() -> None:
    hours = OfficeHours(timezone="Asia/Kolkata", days=WEEKDAYS_9_TO_6, holidays=["2026-12-25"])
    # 2026-11-23 is a Monday.
    assert check_open(hours, local(KOLKATA, "2026-11-23T11:00")) == OpenCheck(
        True, None, "within mon 09:00-18:00"
    )
    assert check_open(hours, local(KOLKATA, "2026-11-23T09:00")).open
    assert check_open(hours, local(KOLKATA, "2026-11-23T18:00")) == OpenCheck(
        False, "outside_hours", "outside mon 09:00-18:00"
    )
    assert check_open(hours, local(KOLKATA, "2026-11-23T08:59:59.999999")).rule == "outside_hours"
    assert check_open(hours, local(KOLKATA, "2026-11-29T11:00")) == OpenCheck(
        False, "day_off", "sun is a day off"
    )
    assert check_open(hours, local(KOLKATA, "2026-12-25T11:00")) == OpenCheck(
        False, "holiday", "holiday 2026-12-25"
    )


def test_instant_in_another_timezone_is_converted() -> None:
    hours = OfficeHours(timezone="Asia/Kolkata", days=WEEKDAYS_9_TO_6)
    # 03:29 UTC = 08:59 IST (closed); 03:30 UTC = 09:00 IST (open).
    assert not check_open(hours, datetime(2026, 11, 23, 3, 29, tzinfo=UTC)).open
    assert check_open(hours, datetime(2026, 11, 23, 3, 30, tzinfo=UTC)).open
    # Friday 23:00 in New York is Saturday 09:30 in Kolkata: a day off there.
    assert check_open(hours, local(NY, "2026-11-27T23:00")).rule == "day_off"


def test_interval_crossing_midnight_belongs_to_its_start_day() -> None:
    hours = OfficeHours(timezone="Asia/Kolkata", days={"fri": "22:00-06:00"})
    assert check_open(hours, local(KOLKATA, "2026-11-27T21:59")).rule == "outside_hours"
    assert check_open(hours, local(KOLKATA, "2026-11-27T22:00")).open
    assert check_open(hours, local(KOLKATA, "2026-11-28T05:59")) == OpenCheck(
        True, None, "within fri 22:00-06:00"
    )
    assert check_open(hours, local(KOLKATA, "2026-11-28T06:00")) == OpenCheck(
        False, "day_off", "sat is a day off"
    )
    # Thursday night is not covered: the interval belongs to Friday only.
    assert check_open(hours, local(KOLKATA, "2026-11-27T03:00")).rule == "outside_hours"


def test_end_at_midnight_and_whole_day() -> None:
    hours = OfficeHours(timezone="UTC", days={"mon": "18:00-00:00", "tue": "00:00-24:00"})
    assert check_open(hours, datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC)).open
    assert check_open(hours, datetime(2026, 11, 24, 0, 0, tzinfo=UTC)).open  # Tuesday
    assert check_open(hours, datetime(2026, 11, 24, 23, 59, 59, tzinfo=UTC)).open
    assert check_open(hours, datetime(2026, 11, 25, 0, 0, tzinfo=UTC)).rule == "day_off"


def test_holiday_closes_the_spill_of_the_day_before() -> None:
    hours = OfficeHours(
        timezone="Europe/London", days={"thu": "22:00-06:00"}, holidays=["2026-12-25"]
    )
    # Thursday 2026-12-24 22:00 opens; midnight enters the holiday: closed at once.
    assert check_open(hours, local(LONDON, "2026-12-24T23:59")).open
    assert check_open(hours, local(LONDON, "2026-12-25T00:00")) == OpenCheck(
        False, "holiday", "holiday 2026-12-25"
    )


def test_spill_of_a_holiday_into_a_working_date_is_open() -> None:
    # The holiday closes moments whose local date is the holiday, no more.
    hours = OfficeHours(timezone="UTC", days={"fri": "22:00-06:00"}, holidays=["2026-12-25"])
    assert check_open(hours, datetime(2026, 12, 25, 23, 0, tzinfo=UTC)).rule == "holiday"
    assert check_open(hours, datetime(2026, 12, 26, 1, 0, tzinfo=UTC)).open


def test_holiday_range_is_inclusive_and_reported() -> None:
    hours = OfficeHours(timezone="UTC", days=WEEKDAYS_9_TO_6, holidays=["2026-12-28..2026-12-31"])
    assert check_open(hours, datetime(2026, 12, 25, 10, tzinfo=UTC)).open
    assert check_open(hours, datetime(2026, 12, 28, 10, tzinfo=UTC)) == OpenCheck(
        False, "holiday", "holiday 2026-12-28 (2026-12-28..2026-12-31)"
    )
    assert check_open(hours, datetime(2026, 12, 31, 23, 59, tzinfo=UTC)).rule == "holiday"
    assert check_open(hours, datetime(2027, 1, 1, 10, tzinfo=UTC)).open


def test_holiday_is_the_local_date_not_the_utc_date() -> None:
    hours = OfficeHours(
        timezone="Asia/Kolkata", days={"fri": "00:00-24:00"}, holidays=["2026-12-25"]
    )
    # 2026-12-24 19:00 UTC is already 00:30 on the 25th in Kolkata.
    assert check_open(hours, datetime(2026, 12, 24, 19, 0, tzinfo=UTC)).rule == "holiday"


def test_several_intervals_a_day() -> None:
    hours = OfficeHours(timezone="UTC", days={"mon": ["09:00-12:00", "13:00-18:00"]})
    assert check_open(hours, datetime(2026, 11, 23, 12, 30, tzinfo=UTC)) == OpenCheck(
        False, "outside_hours", "outside mon 09:00-12:00, 13:00-18:00"
    )
    assert check_open(hours, datetime(2026, 11, 23, 13, 0, tzinfo=UTC)).detail == (
        "within mon 13:00-18:00"
    )


# --- DST edges ----------------------------------------------------------------------


def test_first_instant_in_spring_forward_gap_is_the_jump() -> None:
    # New York 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
    jump = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert first_instant(NY, datetime(2026, 3, 8, 2, 0)) == jump
    assert first_instant(NY, datetime(2026, 3, 8, 2, 30)) == jump
    assert first_instant(NY, datetime(2026, 3, 8, 3, 0)) == jump
    assert first_instant(NY, datetime(2026, 3, 8, 1, 59)) == jump - timedelta(minutes=1)


def test_first_instant_in_repeated_hour_is_first_occurrence() -> None:
    # London 2026-10-25: 02:00 BST goes back to 01:00 GMT; 01:30 happens twice.
    assert first_instant(LONDON, datetime(2026, 10, 25, 1, 30)) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )


def test_ny_spring_forward_interval_starting_in_the_gap_opens_at_the_jump() -> None:
    hours = OfficeHours(timezone="America/New_York", days={"sun": "02:30-04:00"})
    assert not check_open(hours, datetime(2026, 3, 8, 6, 59, tzinfo=UTC)).open  # 01:59 EST
    assert check_open(hours, datetime(2026, 3, 8, 7, 0, tzinfo=UTC)).open  # 03:00 EDT
    assert check_open(hours, local(NY, "2026-03-08T03:59")).open
    assert not check_open(hours, local(NY, "2026-03-08T04:00")).open


def test_ny_spring_forward_night_shift_is_an_hour_shorter() -> None:
    hours = OfficeHours(timezone="America/New_York", days={"sat": "22:00-06:00"})
    opens = datetime(2026, 3, 8, 3, 0, tzinfo=UTC)  # Sat 22:00 EST
    closes = datetime(2026, 3, 8, 10, 0, tzinfo=UTC)  # Sun 06:00 EDT
    assert closes - opens == timedelta(hours=7)
    assert check_open(hours, opens).open
    assert check_open(hours, closes - timedelta(microseconds=1)).open
    assert not check_open(hours, closes).open


def test_interval_wholly_inside_the_gap_never_opens() -> None:
    hours = OfficeHours(timezone="America/New_York", days={"sun": "02:10-02:50"})
    start = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    assert not any(check_open(hours, start + timedelta(minutes=m)).open for m in range(0, 240))


def test_ny_fall_back_shift_does_not_reclose_in_the_repeated_hour() -> None:
    # 2026-11-01: 02:00 EDT goes back to 01:00 EST. Opening at 01:30 means the first
    # 01:30 (EDT); the repeated 01:00-01:30 (EST) is still the same, open shift.
    hours = OfficeHours(timezone="America/New_York", days={"sun": "01:30-03:00"})
    assert not check_open(hours, local(NY, "2026-11-01T01:29", fold=0)).open
    assert check_open(hours, local(NY, "2026-11-01T01:30", fold=0)).open
    assert check_open(hours, local(NY, "2026-11-01T01:15", fold=1)).open
    assert check_open(hours, local(NY, "2026-11-01T02:59")).open
    assert not check_open(hours, local(NY, "2026-11-01T03:00")).open


def test_london_fall_back_interval_ending_in_repeated_hour_closes_at_first_reading() -> None:
    hours = OfficeHours(timezone="Europe/London", days={"sat": "22:00-01:30"})
    assert check_open(hours, local(LONDON, "2026-10-25T01:29", fold=0)).open
    assert not check_open(hours, local(LONDON, "2026-10-25T01:30", fold=0)).open
    # The clock reads 01:00-01:29 again after going back: the shift is over.
    assert not check_open(hours, local(LONDON, "2026-10-25T01:10", fold=1)).open


def test_london_fall_back_night_shift_is_an_hour_longer() -> None:
    hours = OfficeHours(timezone="Europe/London", days={"sat": "22:00-06:00"})
    opens = datetime(2026, 10, 24, 21, 0, tzinfo=UTC)  # 22:00 BST
    closes = datetime(2026, 10, 25, 6, 0, tzinfo=UTC)  # 06:00 GMT
    second = timedelta(seconds=1)
    assert check_open(hours, opens).open and not check_open(hours, opens - second).open
    assert check_open(hours, closes - second).open and not check_open(hours, closes).open
    minutes_open = sum(
        check_open(hours, opens + timedelta(minutes=m)).open for m in range(-60, 11 * 60)
    )
    assert minutes_open == 9 * 60


def test_kolkata_has_no_dst_surprises() -> None:
    hours = OfficeHours(timezone="Asia/Kolkata", days={"sun": "01:00-03:00"})
    for day in (date(2026, 3, 8), date(2026, 3, 29), date(2026, 10, 25), date(2026, 11, 1)):
        start = datetime.combine(day, time(1, 0), KOLKATA)
        assert check_open(hours, start).open
        assert check_open(hours, start + timedelta(minutes=119)).open
        assert not check_open(hours, start + timedelta(minutes=120)).open


# --- the oracle ---------------------------------------------------------------------

ZONES = ("America/New_York", "Europe/London", "Asia/Kolkata")
# The 2025-2027 clock changes (UTC instants) of New York and London, where bugs live;
# Kolkata has none, so it gets New York's instants as ordinary nights.
CHANGES = {
    "America/New_York": [
        datetime(2025, 3, 9, 7), datetime(2025, 11, 2, 6), datetime(2026, 3, 8, 7),
        datetime(2026, 11, 1, 6), datetime(2027, 3, 14, 7), datetime(2027, 11, 7, 6),
    ],
    "Europe/London": [
        datetime(2025, 3, 30, 1), datetime(2025, 10, 26, 1), datetime(2026, 3, 29, 1),
        datetime(2026, 10, 25, 1), datetime(2027, 3, 28, 1), datetime(2027, 10, 31, 1),
    ],
}  # fmt: skip
CHANGES["Asia/Kolkata"] = CHANGES["America/New_York"]
# Interval bounds at the local times of the clock changes (01:00-03:00) are drawn often.
BOUNDS = st.one_of(
    st.sampled_from([0, 60, 75, 90, 105, 120, 135, 150, 165, 180, 1380, 1440]),
    st.integers(0, 1440),
)


@lru_cache(maxsize=256)
def _wall_clock(zone_name: str, first: date) -> tuple[datetime, tuple[datetime, ...]]:
    """Walk UTC minute by minute over four days from ``first``, reading the local wall
    clock; return the origin and the running maximum of the readings (so "the first
    minute the clock reads W or later" is a bisection)."""
    zone = ZoneInfo(zone_name)
    origin = datetime.combine(first, time(0), UTC) - timedelta(hours=15)
    highest: list[datetime] = []
    for m in range((4 * 24 + 30) * 60):
        reading = (origin + timedelta(minutes=m)).astimezone(zone).replace(tzinfo=None)
        highest.append(max(reading, highest[-1]) if highest else reading)
    return origin, tuple(highest)


def oracle_open(hours: OfficeHours, at: datetime) -> bool:
    """Open iff ``at`` lies between the first minutes the wall clock reaches an interval's
    start and its end, found by walking the clock; holidays by the local date."""
    zone = ZoneInfo(hours.timezone)
    today = at.astimezone(zone).date()
    if any(h.first <= today <= h.last for h in hours.holidays):
        return False
    origin, highest = _wall_clock(hours.timezone, today - timedelta(days=1))
    # Every bound and clock change is on a whole minute, so the minute of ``at`` decides.
    at_minute = int((at - origin).total_seconds() // 60)
    for offset in (-1, 0, 1):
        day = today + timedelta(days=offset)
        for interval in hours.days.get(WEEKDAYS[day.weekday()], ()):
            midnight = datetime.combine(day, time(0))
            opens = bisect_left(highest, midnight + timedelta(minutes=interval.start))
            closes = bisect_left(highest, midnight + timedelta(minutes=interval.stop))
            if opens <= at_minute < closes:
                return True
    return False


def _hhmm(a: int, b: int) -> str:
    return f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}"


@st.composite
def office_hours(draw: st.DrawFn, zone: str) -> OfficeHours:
    days: dict[str, list[str]] = {}
    for day in WEEKDAYS:
        # Clocks change on Sunday mornings in both zones: Sat and Sun always have hours.
        at_least = 1 if day in ("sat", "sun") else 0
        cuts = sorted(set(draw(st.lists(BOUNDS, min_size=at_least, max_size=4))))
        texts = [_hhmm(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False)]
        latest = max(cuts, default=0)
        if latest < 1439 and draw(st.booleans()):  # a night shift that crosses midnight
            start = draw(st.integers(latest + 1, 1439))
            texts.append(_hhmm(start, draw(st.one_of(BOUNDS, st.integers(0, 300)))))
        if texts:
            days[day] = texts
    holidays = draw(
        st.lists(
            st.builds(
                lambda d, n: f"{d}..{d + timedelta(days=n)}" if n else str(d),
                st.sampled_from(CHANGES[zone]).map(lambda t: t.date() - timedelta(days=1)),
                st.integers(0, 2),
            ),
            max_size=2,
        )
    )
    try:
        return OfficeHours(timezone=zone, days=days, holidays=holidays)
    except ValidationError:
        assume(False)
        raise


@st.composite
def cases(draw: st.DrawFn) -> tuple[OfficeHours, datetime]:
    """A schedule and an instant, most often within hours of one of its zone's changes."""
    zone = draw(st.sampled_from(ZONES))
    hours = draw(office_hours(zone))
    micro = draw(st.sampled_from([0, 0, 1, 999_999]))
    if draw(st.integers(0, 3)):
        change = draw(st.sampled_from(CHANGES[zone])).replace(tzinfo=UTC)
        seconds = draw(st.integers(-3 * 3600, 3 * 3600))
        return hours, change + timedelta(seconds=seconds, microseconds=micro)
    day = draw(st.dates(date(2025, 1, 1), date(2027, 12, 31)))
    seconds = draw(st.integers(0, 24 * 3600 - 1))
    return hours, datetime.combine(day, time(0), UTC) + timedelta(
        seconds=seconds, microseconds=micro
    )


@st.composite
def night_of_a_change(draw: st.DrawFn) -> tuple[OfficeHours, datetime]:
    """Bounds on the small hours of the Sunday the clocks change, and an instant then."""
    zone = draw(st.sampled_from(ZONES[:2]))
    small_hours = st.integers(0, 60).map(lambda n: n * 5)  # 00:00 .. 05:00
    start, end = sorted(draw(st.lists(small_hours, min_size=2, max_size=2, unique=True)))
    days = {"sun": [_hhmm(start, end)]}
    if start > 0 and draw(st.booleans()):
        days["sat"] = [_hhmm(draw(st.integers(1200, 1439)), draw(st.integers(0, start)))]
    change = draw(st.sampled_from(CHANGES[zone])).replace(tzinfo=UTC)
    at = change + timedelta(minutes=draw(st.integers(-150, 150)))
    return OfficeHours(timezone=zone, days=days), at


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.one_of(cases(), night_of_a_change()))
def test_check_open_agrees_with_the_wall_clock_walk(case: tuple[OfficeHours, datetime]) -> None:
    hours, at = case
    result = check_open(hours, at)
    assert result.open == oracle_open(hours, at), (hours.model_dump(mode="json"), at, result)
    assert (result.rule is None) == result.open
    if not result.open:
        today = at.astimezone(hours.zone).date()
        name = WEEKDAYS[today.weekday()]
        expected = (
            "holiday" if hours.holiday_on(today) else
            "day_off" if not hours.days.get(name) else
            "outside_hours"
        )  # fmt: skip
        assert result.rule == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_answer_does_not_depend_on_the_timezone_at_is_given_in(
    case: tuple[OfficeHours, datetime],
) -> None:
    hours, at = case
    expected = check_open(hours, at)
    for zone in (NY, LONDON, KOLKATA):
        assert check_open(hours, at.astimezone(zone)) == expected

"""Working days on the real national calendar: the docs/architecture.md vectors, 调休, provisional years."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from approval.calendar.sources import ScheduledHoliday, official_year, seed_year
from approval.calendar.workdays import (
    CalendarSnapshot,
    DayKind,
    DaySource,
    OutsideSnapshot,
    add_working_days,
    answer_add,
    count_working_days,
)

from .conftest import d

# (start, working days, due): start day not counted, holidays and closed weekends skipped.
VECTORS = [
    (
        "2021-09-17",
        20,
        "2021-10-21",
    ),  # docs/architecture.md: Mid-autumn, National Day, two 调休 Saturdays
    ("2021-02-05", 20, "2021-03-10"),  # across Spring Festival 2021
    ("2021-09-17", 1, "2021-09-18"),  # the 调休 Saturday is a working day
    ("2021-09-30", 1, "2021-10-08"),  # National Day week skipped
    ("2021-10-01", 1, "2021-10-08"),  # starting on a holiday
    ("2021-10-08", 1, "2021-10-09"),  # Saturday 2021-10-09 was 调休上班
    ("2023-09-28", 1, "2023-10-07"),  # 2023 National Day: 9-29..10-6 off, Saturday 10-7 worked
    ("2024-02-08", 1, "2024-02-09"),  # 除夕 2024 was a working day
    ("2024-02-09", 1, "2024-02-18"),  # Spring Festival 2024, back on Sunday 2-18
    ("2024-02-02", 1, "2024-02-04"),  # Sunday 2024-02-04 was 调休上班
    ("2020-01-23", 1, "2020-02-03"),  # Spring Festival 2020, extended to 2-2
    ("2021-09-17", 0, "2021-09-17"),  # zero days: the start itself when it is a working day
    ("2021-10-02", 0, "2021-10-08"),  # zero days from a holiday: the next working day
    ("2019-12-31", 5, "2020-01-08"),  # New Year's Day across the year boundary
]


@pytest.mark.parametrize(("start", "days", "due"), VECTORS)
def test_add_working_days_on_real_calendar(
    real_calendar: CalendarSnapshot, start: str, days: int, due: str
) -> None:
    assert add_working_days(real_calendar, d(start), days) == d(due)


@pytest.mark.parametrize(("start", "days", "due"), [v for v in VECTORS if v[1] > 0])
def test_counting_back_gives_the_days(
    real_calendar: CalendarSnapshot, start: str, days: int, due: str
) -> None:
    assert count_working_days(real_calendar, d(start), d(due)) == days
    assert count_working_days(real_calendar, d(due), d(start)) == -days


@pytest.mark.parametrize(
    ("day", "kind", "working"),
    [
        ("2021-09-18", DayKind.ADJUSTED_WORKDAY, True),  # docs/architecture.md: a 调休 Saturday
        ("2021-10-01", DayKind.HOLIDAY, False),
        ("2021-10-02", DayKind.HOLIDAY, False),  # a Saturday inside the holiday
        ("2021-10-07", DayKind.ADJUSTED_HOLIDAY, False),  # a Thursday off in exchange
        ("2021-10-11", DayKind.WEEKDAY, True),
        ("2021-10-16", DayKind.WEEKEND, False),
        ("2024-02-18", DayKind.ADJUSTED_WORKDAY, True),
        ("2024-02-12", DayKind.HOLIDAY, False),
    ],
)
def test_day_kinds(real_calendar: CalendarSnapshot, day: str, kind: DayKind, working: bool) -> None:
    entry = real_calendar.day(d(day))
    assert entry.kind is kind
    assert entry.source is DaySource.CHINESECALENDAR and not entry.provisional
    assert real_calendar.is_working_day(d(day)) is working


def test_holiday_names_are_chinese(real_calendar: CalendarSnapshot) -> None:
    assert real_calendar.day(d("2021-10-01")).name == "国庆节"
    assert real_calendar.day(d("2024-02-10")).name == "春节"


def test_years_the_library_does_not_know_are_provisional(real_calendar: CalendarSnapshot) -> None:
    days = seed_year(2027)
    assert len(days) == 365
    assert all(day.provisional and day.source is DaySource.PROVISIONAL for day in days)
    # Not "weekends only": the 放假办法 fixes 国庆节 10-01..03 (Art. 2) and, 10-02/03 being a
    # weekend, two working days of 补假 (Art. 6); only the 调休 waits for the notice.
    assert not real_calendar.is_working_day(d("2027-10-01"))
    assert real_calendar.day(d("2027-10-02")).kind is DayKind.HOLIDAY
    assert real_calendar.day(d("2027-10-05")).name == "国庆节（补假）"
    assert real_calendar.is_working_day(d("2027-10-06"))
    assert real_calendar.day(d("2027-10-09")).kind is DayKind.WEEKEND  # no 调休 is guessed


def test_deadlines_crossing_a_provisional_year_are_flagged(real_calendar: CalendarSnapshot) -> None:
    inside = answer_add(real_calendar, d("2021-09-17"), 20)
    assert not inside.depends_on_provisional
    crossing = answer_add(real_calendar, d("2026-12-28"), 10)
    assert crossing.depends_on_provisional
    assert {p.year for p in crossing.provisional_dates} == {2027}
    assert all(p > d("2026-12-28") for p in crossing.provisional_dates)


def test_dates_beyond_any_stored_year_are_provisional() -> None:
    empty = CalendarSnapshot([])
    answer = answer_add(empty, d("2040-01-06"), 5)  # a Friday
    assert answer.due == d("2040-01-13")
    assert answer.depends_on_provisional


def test_loading_an_official_year_changes_the_computed_date() -> None:
    start = d("2027-09-30")
    provisional = CalendarSnapshot(seed_year(2027))
    # 10-01 (Fri) 国庆节, 10-02/03 its weekend days, 10-04/05 their 补假: 10-06 is the next working day
    assert add_working_days(provisional, start, 1) == d("2027-10-06")
    national_day = [d("2027-10-01") + timedelta(days=i) for i in range(7)]
    official = CalendarSnapshot(
        official_year(
            2027,
            holidays=[ScheduledHoliday(x, "国庆节") for x in national_day],
            adjusted_workdays=[],
        )
    )
    assert add_working_days(official, start, 1) == d("2027-10-08")
    assert not answer_add(official, start, 1).depends_on_provisional


def test_local_closures_are_not_working_days(real_calendar: CalendarSnapshot) -> None:
    days = [real_calendar.day(d("2021-09-01") + timedelta(days=i)) for i in range(90)]
    closed = CalendarSnapshot(days, closures=[d("2021-09-22")])
    assert add_working_days(closed, d("2021-09-17"), 20) == d("2021-10-22")


def test_a_windowed_snapshot_refuses_to_guess_outside_its_window() -> None:
    window = CalendarSnapshot([], window=(d("2021-09-17"), d("2021-09-30")))
    with pytest.raises(OutsideSnapshot):
        add_working_days(window, d("2021-09-17"), 20)


def test_negative_days_are_refused(real_calendar: CalendarSnapshot) -> None:
    with pytest.raises(ValueError):
        add_working_days(real_calendar, d("2021-09-17"), -1)


# --- properties ------------------------------------------------------------------------------

starts = st.dates(min_value=date(2004, 1, 1), max_value=date(2028, 6, 30))


@settings(max_examples=300, deadline=None)
@given(start=starts, days=st.integers(min_value=1, max_value=120))
def test_adding_then_counting_back_agree(
    real_calendar: CalendarSnapshot, start: date, days: int
) -> None:
    due = add_working_days(real_calendar, start, days)
    assert real_calendar.is_working_day(due)
    assert count_working_days(real_calendar, start, due) == days
    assert add_working_days(real_calendar, start, days + 1) > due


@settings(max_examples=300, deadline=None)
@given(start=starts, span=st.integers(min_value=0, max_value=200))
def test_counting_then_adding_lands_on_the_last_working_day(
    real_calendar: CalendarSnapshot, start: date, span: int
) -> None:
    end = start + timedelta(days=span)
    count = count_working_days(real_calendar, start, end)
    assert count >= 0
    if count:
        landed = add_working_days(real_calendar, start, count)
        assert landed <= end
        assert count_working_days(real_calendar, landed, end) == 0
        if real_calendar.is_working_day(end):
            assert landed == end

"""The statutory holidays of the 全国年节及纪念日放假办法 (Arts. 2 and 6), pure: no database.

Vectors worked out by hand from the 办法 and a published 万年历, and the rule checked against every
State Council schedule ``chinesecalendar`` holds (2004–2026): the holidays and 补假 it gives must be
exactly the weekdays off that the schedules give apart from 调休.
"""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from approval.calendar.sources import provisional_year
from approval.calendar.workdays import DayKind, DaySource
from govshared.holidays import (
    computed_lunar,
    computed_qingming,
    festivals,
    lunar_new_year_eve,
    qingming,
    regime_of,
    statutory_days,
)

from .conftest import d

FESTIVAL_NAMES = {"元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节"}
LIBRARY_NAMES = {
    "清明节": "Tomb-sweeping Day",
    "端午节": "Dragon Boat Festival",
    "中秋节": "Mid-autumn Festival",
}


def weekdays_off(year: int) -> set[date]:
    """The weekdays the 办法 alone gives off in a year."""
    return {day for day in statutory_days(year) if day.weekday() < 5}


def test_2027_lunar_dates_and_solar_term() -> None:
    # 丁未 year: 正月初一 2027-02-06, so 除夕 is 02-05; 清明 (sun at 15°) on 04-05;
    # 五月初五 on 06-09; 八月十五 on 09-15.
    assert lunar_new_year_eve(2027) == d("2027-02-05")
    assert qingming(2027) == d("2027-04-05")
    by_name = {f.name: f.days for f in festivals(2027)}
    assert by_name["春节"] == tuple(d("2027-02-05") + timedelta(days=n) for n in range(4))
    assert by_name["清明节"] == (d("2027-04-05"),)
    assert by_name["端午节"] == (d("2027-06-09"),)
    assert by_name["中秋节"] == (d("2027-09-15"),)
    assert by_name["劳动节"] == (d("2027-05-01"), d("2027-05-02"))
    assert by_name["国庆节"] == (d("2027-10-01"), d("2027-10-02"), d("2027-10-03"))


def test_2027_weekend_festival_days_give_working_days_off() -> None:
    # Art. 6: 春节 02-06/07, 劳动节 05-01/02 and 国庆节 10-02/03 fall on weekends.
    days = statutory_days(2027)
    substitutes = {day: s.name for day, s in days.items() if s.substitute}
    assert substitutes == {
        d("2027-02-09"): "春节（补假）",
        d("2027-02-10"): "春节（补假）",
        d("2027-05-03"): "劳动节（补假）",
        d("2027-05-04"): "劳动节（补假）",
        d("2027-10-04"): "国庆节（补假）",
        d("2027-10-05"): "国庆节（补假）",
    }
    assert weekdays_off(2027) == {
        d(x)
        for x in (
            "2027-01-01",
            "2027-02-05",
            "2027-02-08",
            "2027-02-09",
            "2027-02-10",
            "2027-04-05",
            "2027-05-03",
            "2027-05-04",
            "2027-06-09",
            "2027-09-15",
            "2027-10-01",
            "2027-10-04",
            "2027-10-05",
        )
    }


def test_2028_new_year_on_saturday_and_mid_autumn_on_national_day() -> None:
    days = statutory_days(2028)
    assert days[d("2028-01-03")].name == "元旦（补假）"  # 元旦 is a Saturday
    assert lunar_new_year_eve(2028) == d("2028-01-25")
    assert days[d("2028-05-29")].name == "端午节（补假）"  # 端午 05-28 is a Sunday
    # 中秋 (八月十五) is 10-03, a day 国庆节 already has: Art. 2 gives each festival its day.
    assert days[d("2028-10-03")].name == "国庆节、中秋节"
    assert days[d("2028-10-04")].name == "国庆节（补假）"  # for Sunday 10-01
    assert days[d("2028-10-05")].name == "中秋节（补假）"
    assert d("2028-10-06") not in days
    assert len(weekdays_off(2028)) == 13


def test_the_provisional_year_marks_them_as_provisional_holidays() -> None:
    year = {day.day: day for day in provisional_year(2027)}
    assert len(year) == 365
    assert all(day.provisional and day.source is DaySource.PROVISIONAL for day in year.values())
    assert year[d("2027-02-10")].kind is DayKind.HOLIDAY and not year[d("2027-02-10")].is_working
    assert year[d("2027-02-13")].kind is DayKind.WEEKEND  # no 调休 is guessed
    assert year[d("2027-02-11")].kind is DayKind.WEEKDAY
    assert sum(day.is_working for day in year.values()) == 261 - 13


def test_holidays_of_some_citizens_close_no_office() -> None:
    # Art. 3 (妇女节, 青年节, 儿童节, 建军节) and Art. 6's second sentence: no day off, no 补假.
    assert {f.name for f in festivals(2027)} == FESTIVAL_NAMES
    for day in ("2027-03-08", "2027-06-01", "2027-08-01", "2026-03-08"):
        assert d(day) not in statutory_days(d(day).year)


def test_the_version_of_the_banfa_in_force_each_year() -> None:
    assert (
        regime_of(2024).decree == "国务院令第644号" and regime_of(2025).decree == "国务院令第795号"
    )
    spring_2024 = next(f for f in festivals(2024) if f.name == "春节")
    assert spring_2024.days[0] == d("2024-02-10")  # 正月初一: 除夕 was not a holiday until 2025
    assert len(weekdays_off(2024)) == 11 and len(weekdays_off(2025)) == 13


# --- against the State Council's published schedules (chinesecalendar) -------------------------


def official_weekdays_off_without_tiaoxiu(year: int) -> set[date]:
    """Weekdays off in the published schedule that are not 调休 (the library's in-lieu days)."""
    day = date(year, 1, 1)
    found = set()
    while day.year == year:
        if (
            day.weekday() < 5
            and day in chinese_calendar.holidays
            and day not in chinese_calendar.in_lieu_days
        ):
            found.add(day)
        day += timedelta(days=1)
    return found


# Years whose schedule placed each 补假 on the first working day after the festival. Elsewhere the
# notice put it on another working day (2012: 端午's on the Friday before; 2015–2022: 春节's on 除夕)
# or added a day of its own (2006-01-03, 2015-09-03): Art. 6 fixes the number of days, not the date.
EXACT_YEARS = [2004, 2005, 2007, 2008, 2009, 2010, 2011, 2013, 2014, 2016, 2019, 2023, 2024, 2025]


@pytest.mark.parametrize("year", [*EXACT_YEARS, 2026])
def test_the_rule_gives_exactly_the_published_days_off_apart_from_tiaoxiu(year: int) -> None:
    ours = statutory_days(year)
    assert all(day in chinese_calendar.holidays for day in ours)
    assert weekdays_off(year) == official_weekdays_off_without_tiaoxiu(year)


def test_2025_and_2026_by_hand() -> None:
    # 2025: 端午 05-31 is a Saturday → Monday 06-02; 2026: 清明 04-05 a Sunday → 04-06,
    # 劳动节 05-02 a Saturday → 05-04, 国庆节 10-03 a Saturday → 10-05.
    assert statutory_days(2025)[d("2025-06-02")].name == "端午节（补假）"
    assert statutory_days(2026)[d("2026-04-06")].name == "清明节（补假）"
    assert statutory_days(2026)[d("2026-05-04")].name == "劳动节（补假）"
    assert statutory_days(2026)[d("2026-10-05")].name == "国庆节（补假）"
    assert lunar_new_year_eve(2025) == d("2025-01-28") and lunar_new_year_eve(2026) == d(
        "2026-02-16"
    )


# Years whose 调休 working weekends all balance weekdays off in the same year (none crosses New
# Year's Day) and that added no day of their own (2015: the 9-3 anniversary; 2020: the epidemic).
BALANCED_YEARS = [y for y in range(2004, 2027) if y not in (2006, 2007, 2011, 2012, 2015, 2020)]


@pytest.mark.parametrize("year", BALANCED_YEARS)
def test_the_number_of_days_off_matches_every_published_schedule(year: int) -> None:
    day, off, worked = date(year, 1, 1), 0, 0
    while day.year == year:
        off += day.weekday() < 5 and day in chinese_calendar.holidays
        worked += day in chinese_calendar.workdays
        day += timedelta(days=1)
    # Every 调休 weekend worked buys exactly one weekday off: the rest is Arts. 2 and 6.
    assert off - worked == len(weekdays_off(year))


@pytest.mark.parametrize("year", range(2008, 2027))
def test_lunar_festivals_and_qingming_fall_on_the_published_days(year: int) -> None:
    for festival in festivals(year):
        english = LIBRARY_NAMES.get(festival.name)
        if english is None or (year, festival.name) == (2012, "端午节"):
            continue  # the library omits Saturday 2012-06-23, 端午 itself
        (day,) = festival.days
        # On a day it shares with 国庆节 (2009-10-03, 2020-10-01) the library names one of them.
        shared = day.month == 10 and day.day <= 3
        expected = {english, "National Day"} if shared else {english}
        assert chinese_calendar.holidays.get(day) in expected, (festival.name, day)


@pytest.mark.parametrize("year", range(2004, 2101))
def test_the_lunar_table_is_what_tyme4py_computes(year: int) -> None:
    # The table spares every process tyme4py's memory; it must give the library's own answers.
    assert lunar_new_year_eve(year) == computed_lunar(year, 1, 1) - timedelta(days=1)
    assert qingming(year) == computed_qingming(year)
    dates = {f.name: f.days for f in festivals(year)}
    if year >= 2008:  # 端午 and 中秋 are holidays since the 2008 version
        assert dates["端午节"] == (computed_lunar(year, 5, 5),)
        assert dates["中秋节"] == (computed_lunar(year, 8, 15),)


def test_a_year_beyond_the_table_is_computed() -> None:
    # The table stops at 2100: 2101's 除夕 (28 January, tyme4py) comes from the library.
    assert lunar_new_year_eve(2101) == d("2101-01-28")
    assert regime_of(2101).spring_from_eve
    assert festivals(2101)[1].days[0] == lunar_new_year_eve(2101)


# --- properties for every year the calendar may meet ---------------------------------------------


@given(year=st.integers(min_value=2025, max_value=2100))
def test_every_year_since_2025_has_thirteen_weekdays_off(year: int) -> None:
    days = statutory_days(year)
    assert len(weekdays_off(year)) == 13  # 13 days (Art. 2), each on a weekday (Art. 6)
    for festival in festivals(year):
        assert all(day in days for day in festival.days)
        assert all(day.year == year for day in festival.days)
    for day, entry in days.items():
        if entry.substitute:
            assert day.weekday() < 5
            assert entry.name.removesuffix("（补假）") in FESTIVAL_NAMES
            source = next(f for f in festivals(year) if f.name == entry.name[:-4])
            assert source.days[-1] < day <= source.days[-1] + timedelta(days=7)


@given(year=st.integers(min_value=2004, max_value=2100))
def test_substitutes_match_the_weekend_and_shared_festival_days(year: int) -> None:
    days = statutory_days(year)
    festival_days = [day for f in festivals(year) for day in f.days]
    owed = sum(day.weekday() >= 5 for day in set(festival_days))
    owed += len(festival_days) - len(set(festival_days))
    assert sum(entry.substitute for entry in days.values()) == owed

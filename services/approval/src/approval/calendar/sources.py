"""Where calendar data comes from: ``chinesecalendar``, an official notice, the 放假办法 itself."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import chinese_calendar

from approval.calendar.errors import InvalidHolidaySchedule
from approval.calendar.workdays import (
    ONE_DAY,
    CalendarDay,
    DayKind,
    DaySource,
    default_kind,
    provisional_day,
)

# The library raises for years it has no data for; its own tables tell which years those are.
LIBRARY_FIRST_YEAR = min(chinese_calendar.holidays).year
LIBRARY_LAST_YEAR = max(chinese_calendar.holidays).year


def _chinese_name(english: str | None) -> str | None:
    if english is None:
        return None
    try:
        return str(chinese_calendar.Holiday(english).chinese)
    except ValueError:
        return english


def dates_of_year(year: int) -> Iterable[date]:
    """Every date of a year."""
    current = date(year, 1, 1)
    while current.year == year:
        yield current
        current += ONE_DAY


def library_knows(year: int) -> bool:
    """True when ``chinesecalendar`` has the State Council's schedule for the year."""
    return LIBRARY_FIRST_YEAR <= year <= LIBRARY_LAST_YEAR


def library_day(day: date) -> CalendarDay:
    """A date as ``chinesecalendar`` classifies it (its year must be known to the library)."""
    source = DaySource.CHINESECALENDAR
    if day in chinese_calendar.in_lieu_days:
        name = _chinese_name(chinese_calendar.holidays.get(day))
        return CalendarDay(day, DayKind.ADJUSTED_HOLIDAY, source, provisional=False, name=name)
    if day in chinese_calendar.holidays:
        name = _chinese_name(chinese_calendar.holidays[day])
        return CalendarDay(day, DayKind.HOLIDAY, source, provisional=False, name=name)
    if day in chinese_calendar.workdays:
        name = _chinese_name(chinese_calendar.workdays[day])
        return CalendarDay(day, DayKind.ADJUSTED_WORKDAY, source, provisional=False, name=name)
    return CalendarDay(day, default_kind(day), source, provisional=False)


def provisional_year(year: int) -> list[CalendarDay]:
    """A year whose schedule is not published: the statutory holidays with their 补假, no 调休.

    The 全国年节及纪念日放假办法 fixes the holidays (Art. 2) and the 补假 (Art. 6) whether or not the
    State Council has published its notice; only the 调休 waits for it (``statutory``).
    """
    return [provisional_day(d) for d in dates_of_year(year)]


def seed_year(year: int) -> list[CalendarDay]:
    """The best data available without an admin: the library's, else provisional."""
    if library_knows(year):
        return [library_day(d) for d in dates_of_year(year)]
    return provisional_year(year)


@dataclass(frozen=True, slots=True)
class ScheduledHoliday:
    """A day off in an official notice; ``in_lieu`` marks a weekday given off in exchange (调休)."""

    day: date
    name: str | None = None
    in_lieu: bool = False


@dataclass(frozen=True, slots=True)
class ScheduledWorkday:
    """A weekend day declared a working day (调休上班)."""

    day: date
    name: str | None = None


def official_year(
    year: int,
    *,
    holidays: Iterable[ScheduledHoliday],
    adjusted_workdays: Iterable[ScheduledWorkday],
    source: DaySource = DaySource.OFFICIAL_NOTICE,
) -> list[CalendarDay]:
    """A whole year from an official schedule (every unlisted date follows the weekend rule)."""
    problems: list[dict[str, str]] = []
    off: dict[date, ScheduledHoliday] = {}
    on: dict[date, ScheduledWorkday] = {}
    for holiday in holidays:
        where = f"holidays.{holiday.day.isoformat()}"
        if holiday.day.year != year:
            problems.append({"name": where, "reason": f"不属于 {year} 年"})
        elif holiday.day in off:
            problems.append({"name": where, "reason": "重复"})
        elif holiday.in_lieu and holiday.day.weekday() >= 5:
            problems.append({"name": where, "reason": "调休放假日应为周一至周五"})
        off[holiday.day] = holiday
    for workday in adjusted_workdays:
        where = f"adjusted_workdays.{workday.day.isoformat()}"
        if workday.day.year != year:
            problems.append({"name": where, "reason": f"不属于 {year} 年"})
        elif workday.day in on:
            problems.append({"name": where, "reason": "重复"})
        elif workday.day.weekday() < 5:
            problems.append({"name": where, "reason": "调休上班日应为周六或周日"})
        elif workday.day in off:
            problems.append({"name": where, "reason": "同一天不能既放假又上班"})
        on[workday.day] = workday
    if problems:
        raise InvalidHolidaySchedule(
            "；".join(f"{p['name']}: {p['reason']}" for p in problems), invalid_params=problems
        )
    days: list[CalendarDay] = []
    for d in dates_of_year(year):
        if d in off:
            kind = DayKind.ADJUSTED_HOLIDAY if off[d].in_lieu else DayKind.HOLIDAY
            days.append(CalendarDay(d, kind, source, provisional=False, name=off[d].name))
        elif d in on:
            days.append(
                CalendarDay(d, DayKind.ADJUSTED_WORKDAY, source, provisional=False, name=on[d].name)
            )
        else:
            days.append(CalendarDay(d, default_kind(d), source, provisional=False))
    return days

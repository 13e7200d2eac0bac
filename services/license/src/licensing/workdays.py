"""Working days for license's own limits (行政许可法 Art. 82, 行政处罚法 Art. 85: 工作日).

A year's official schedule (国务院办公厅 放假安排, 调休 included), once approval's admins load it,
comes from approval (``licensing.calendar`` keeps it here), so that license and approval count the
same days. Before that, the national schedule comes from chinesecalendar (the same source
approval's calendar loads first). A year neither knows yet is not "weekends only": the statutory
holidays of the 全国年节及纪念日放假办法 (Art. 2) and their 补假 (Art. 6) still close offices, and
only the 调休 is unknown until the State Council publishes it (govshared.holidays, the rule
approval's provisional years use). The start day is not counted, so a limit always ends on a
working day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import chinese_calendar

from govshared.holidays import statutory_days

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class OfficialYear:
    """A year's official schedule: the weekdays offices close, the weekends they work."""

    closed_weekdays: frozenset[date]
    working_weekends: frozenset[date]


# The official schedules this process knows, by year (``licensing.calendar`` fills it from the
# database; one process serves one database).
_OFFICIAL: dict[int, OfficialYear] = {}


def adopt(years: Mapping[int, OfficialYear]) -> None:
    """Count these years' working days by their official schedules from now on (a year already
    adopted is replaced; one not given is kept)."""
    _OFFICIAL.update(years)


def forget() -> None:
    """Back to chinesecalendar and the statutory rule for every year (tests)."""
    _OFFICIAL.clear()


def is_working_day(day: date) -> bool:
    """True when offices work that day (调休 included); the statutory holidays and their 补假 in a
    year whose schedule is not published yet."""
    official = _OFFICIAL.get(day.year)
    if official is not None:
        if day.weekday() < 5:
            return day not in official.closed_weekdays
        return day in official.working_weekends
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5 and day not in statutory_days(day.year)


def add_working_days(start: date, days: int) -> date:
    """The day ``days`` working days after ``start`` (the start day itself not counted)."""
    day = start
    counted = 0
    while counted < days:
        day += ONE_DAY
        if is_working_day(day):
            counted += 1
    return day

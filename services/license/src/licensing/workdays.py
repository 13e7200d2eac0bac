"""Working days for license's own limits (行政许可法 Art. 82, 行政处罚法 Art. 85: 工作日).

The national holiday schedule comes from chinesecalendar (the same source approval's calendar
loads first); a year it does not know yet falls back to the weekend rule. The start day is not
counted, so a limit always ends on a working day.
"""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar

ONE_DAY = timedelta(days=1)


def is_working_day(day: date) -> bool:
    """True when offices work that day (调休 included); weekend rule outside the library's years."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def add_working_days(start: date, days: int) -> date:
    """The day ``days`` working days after ``start`` (the start day itself not counted)."""
    day = start
    counted = 0
    while counted < days:
        day += ONE_DAY
        if is_working_day(day):
            counted += 1
    return day

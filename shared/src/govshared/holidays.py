"""The statutory holidays of a year, from the 全国年节及纪念日放假办法 alone: pure, no I/O.

One rule for the whole suite: approval's calendar fills a provisional year with it, and license counts
its own working-day limits (inspections, hearings) with it where no official schedule is known yet.

Art. 2 of the 办法 fixes the holidays of all citizens (全体公民放假的节日); as revised by State
Council Decree No. 795 (2024-11-10, in force 2025-01-01):

* 元旦 1 day (1 January);
* 春节 4 days (农历除夕、正月初一至初三);
* 清明节 1 day (农历清明当日: the day of the 清明 solar term);
* 劳动节 2 days (1 and 2 May);
* 端午节 1 day (农历端午当日: the 5th of the 5th lunar month);
* 中秋节 1 day (农历中秋当日: the 15th of the 8th lunar month);
* 国庆节 3 days (1 to 3 October).

Art. 6: "全体公民放假的假日，如果适逢星期六、星期日，应当在工作日补假。部分公民放假的假日，如果适逢
星期六、星期日，则不补假。" A holiday of all citizens that falls on a Saturday or Sunday gives a
working day off (补假); the half days of Art. 3 (妇女节, 青年节, 建军节) and the 儿童节 are holidays
of some citizens only, close no office and give no 补假. Art. 6 does not say which working day: the
State Council's yearly notice fixes it. Until then the provisional calendar gives the first working
day after the holiday (the day the notices have given whenever no 调休 was involved: 2021-04-05 for
清明 on a Sunday, 2025-06-02 for 端午 on a Saturday, 2026-05-04 and 2026-10-05 for 劳动节 and 国庆节
ending on a Saturday). A festival whose day is already off for another (中秋 on 1–3 October, as in
2020 and 2028) gives its day on the next working day in the same way, since Art. 2 grants each
festival its own days; the 2020 schedule did so.

What is left to the State Council (Art. 7 since 2025: 调休 to form longer breaks, working weekends)
is unknown until its notice is published, so a year computed here is always provisional.

Lunar dates and the 清明 solar term come from ``tyme4py`` (6tail's calendar library, the maintained
successor of ``lunar-python``): pure Python, no data files, the lunar calendar and the 24 solar terms
computed astronomically (寿星天文历 algorithms by 许剑伟) in Beijing time, for any year we accept.
The tests check it against every State Council schedule ``chinesecalendar`` holds (2004–2026).
Its answers for 2004–2100 are kept in ``govshared.lunar_dates`` (checked against it by the tests),
so that a process imports it only for a year outside that range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from govshared.lunar_dates import LUNAR_DATES

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Regime:
    """The holidays of Art. 2 in one version of the 办法, from the day it came into force."""

    in_force: date
    decree: str
    new_year_days: int  # from 1 January
    spring_from_eve: bool  # 除夕 is a holiday (else 春节 starts on 正月初一)
    spring_days: int
    qingming: bool  # 清明、端午、中秋 are holidays since 2008
    labour_days: int  # from 1 May
    national_days: int  # from 1 October


# Every version since the one in force in 2004, the calendar's first year (FIRST_YEAR).
REGIMES = (
    Regime(date(1999, 9, 18), "国务院令第270号", 1, False, 3, False, 3, 3),
    Regime(date(2008, 1, 1), "国务院令第513号", 1, True, 3, True, 1, 3),
    Regime(date(2014, 1, 1), "国务院令第644号", 1, False, 3, True, 1, 3),
    Regime(date(2025, 1, 1), "国务院令第795号", 1, True, 4, True, 2, 3),
)


def regime_of(year: int) -> Regime:
    """The version of the 办法 in force on 1 January of a year."""
    first = date(year, 1, 1)
    in_force = [r for r in REGIMES if r.in_force <= first]
    if not in_force:
        raise ValueError(f"no version of the 办法 known for {year}")
    return in_force[-1]


@dataclass(frozen=True, slots=True)
class Festival:
    """A holiday of all citizens in a year: its name and its dates (Art. 2)."""

    name: str
    days: tuple[date, ...]


@dataclass(frozen=True, slots=True)
class StatutoryDay:
    """A day off the 办法 itself gives: a festival's day, or a 补假 for one (Art. 6)."""

    day: date
    name: str
    substitute: bool  # 补假: a working day given off for a festival day on a weekend (or taken)


def _run(start: date, days: int) -> tuple[date, ...]:
    return tuple(start + n * ONE_DAY for n in range(days))


def computed_lunar(year: int, month: int, day: int) -> date:
    """A lunar date's Gregorian day, computed by ``tyme4py`` (imported by the first call)."""
    from tyme4py.lunar import LunarDay

    solar = LunarDay.from_ymd(year, month, day).get_solar_day()
    return date(solar.get_year(), solar.get_month(), solar.get_day())


def computed_qingming(year: int) -> date:
    """The 清明 solar term's day, computed by ``tyme4py`` (imported by the first call)."""
    from tyme4py.solar import SolarTerm

    solar = SolarTerm.from_name(year, "清明").get_julian_day().get_solar_day()
    return date(solar.get_year(), solar.get_month(), solar.get_day())


# The lunar dates the 办法 names, by (month, day): their column in ``LUNAR_DATES``.
_TABLED = {(1, 1): 0, (5, 5): 2, (8, 15): 3}


def _lunar(year: int, month: int, day: int) -> date:
    # 2004–2100 from the table (tyme4py's own answers, checked by the tests): tyme4py, about 8.7 MB
    # of a process's memory, is imported only for a year outside it.
    column = _TABLED.get((month, day))
    if column is not None and year in LUNAR_DATES:
        return LUNAR_DATES[year][column]
    return computed_lunar(year, month, day)


def lunar_new_year_eve(year: int) -> date:
    """除夕: the last day of the lunar year that ends in this Gregorian year (the 29th or 30th)."""
    return _lunar(year, 1, 1) - ONE_DAY


def qingming(year: int) -> date:
    """The day (Beijing time) of the 清明 solar term: the sun at ecliptic longitude 15°."""
    if year in LUNAR_DATES:
        return LUNAR_DATES[year][1]
    return computed_qingming(year)


def festivals(year: int) -> list[Festival]:
    """The holidays of all citizens in a year, by the version of the 办法 in force (Art. 2)."""
    regime = regime_of(year)
    spring_start = lunar_new_year_eve(year) if regime.spring_from_eve else _lunar(year, 1, 1)
    found = [
        Festival("元旦", _run(date(year, 1, 1), regime.new_year_days)),
        Festival("春节", _run(spring_start, regime.spring_days)),
    ]
    if regime.qingming:
        found.append(Festival("清明节", (qingming(year),)))
    found.append(Festival("劳动节", _run(date(year, 5, 1), regime.labour_days)))
    if regime.qingming:
        found.append(Festival("端午节", (_lunar(year, 5, 5),)))
        found.append(Festival("中秋节", (_lunar(year, 8, 15),)))
    found.append(Festival("国庆节", _run(date(year, 10, 1), regime.national_days)))
    return sorted(found, key=lambda f: f.days[0])


@lru_cache(maxsize=256)
def statutory_days(year: int) -> dict[date, StatutoryDay]:
    """Every day off of a year that the 办法 fixes: festival days and their 补假 (Arts. 2 and 6).

    Weekends are not listed unless a festival falls on one. No 调休: that is the State Council's.
    """
    result: dict[date, StatutoryDay] = {}
    owed: list[tuple[Festival, int]] = []
    for festival in festivals(year):
        debt = 0
        for day in festival.days:
            if day in result:
                # The day is already another festival's: Art. 2 grants each festival its own.
                taken = result[day]
                result[day] = StatutoryDay(day, f"{taken.name}、{festival.name}", substitute=False)
                debt += 1
            else:
                result[day] = StatutoryDay(day, festival.name, substitute=False)
                debt += day.weekday() >= 5  # Art. 6: 适逢星期六、星期日，应当在工作日补假
        if debt:
            owed.append((festival, debt))
    for festival, debt in owed:
        current = festival.days[-1]
        while debt:
            current += ONE_DAY
            if current.weekday() < 5 and current not in result:
                result[current] = StatutoryDay(current, f"{festival.name}（补假）", substitute=True)
                debt -= 1
    return result

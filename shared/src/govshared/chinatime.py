"""China Standard Time, the one time zone of the suite.

Every statutory limit counts days in China (行政许可法 Art. 82 with the Civil Code, arts. 201, 203: a
day ends at midnight in Beijing, not in UTC), and every date a person reads (a 办件编号, a notice's
date, a licence's validity) is a China date. Instants are stored and sent in UTC; they become China
dates only here.

A fixed UTC+8 offset rather than the tz database's ``Asia/Shanghai``: China has kept no daylight
saving time since 1991, so the two agree on every date the suite handles, and the fixed offset
converts without a zone lookup on the hot paths (a submission's number is a China date).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

CHINA_ZONE_NAME = "Asia/Shanghai"
CHINA = timezone(timedelta(hours=8), CHINA_ZONE_NAME)


def china_today() -> date:
    """Today's date in China, the date every statutory limit is counted in."""
    return datetime.now(CHINA).date()


def china_date_text(iso_date: str) -> str:
    """2026-11-29 → 2026年11月29日 (as printed on documents and in verification answers)."""
    year, month, day = (int(part) for part in iso_date.split("-"))
    return f"{year}年{month}月{day}日"

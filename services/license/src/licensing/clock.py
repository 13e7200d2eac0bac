"""Dates in China Standard Time: a licence's day ends at midnight in Beijing, not in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


def today() -> date:
    """Today's date in China."""
    return datetime.now(CHINA).date()


def now() -> datetime:
    """The current instant (UTC, timezone-aware)."""
    return datetime.now(UTC)

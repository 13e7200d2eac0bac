"""License's clock: today's China date and the current instant, one seam the tests move.

Dates are China dates (``govshared.chinatime``): a licence's day ends at midnight in Beijing, not in
UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from govshared.chinatime import china_today


def today() -> date:
    """Today's date in China."""
    return china_today()


def now() -> datetime:
    """The current instant (UTC, timezone-aware)."""
    return datetime.now(UTC)

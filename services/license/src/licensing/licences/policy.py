"""The register's configurable rules and the date arithmetic of a licence's validity."""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta

from licensing.models import Licence


def add_months(start: date, months: int) -> date:
    """The same day ``months`` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    years, month_index = divmod(start.month - 1 + months, 12)
    year, month = start.year + years, month_index + 1
    return date(year, month, min(start.day, monthrange(year, month)[1]))


def validity_end(start: date, months: int | None) -> date | None:
    """The last valid day of a validity of ``months`` starting on ``start`` (None: no limit)."""
    return None if months is None else add_months(start, months) - timedelta(days=1)


@dataclass(frozen=True, slots=True)
class LicencePolicy:
    """The register's configurable rules (from settings)."""

    renewal_lead_days: int = 30  # Art. 50: 届满三十日前 is the last day to apply
    late_renewal: str = "decide_without_deemed_renewal"  # or "refuse" (config.LateRenewal)
    reminder_days: tuple[int, ...] = (90, 45)
    verification_days: int = 60
    on_site_share: float = 0.2
    inspectors: tuple[str, ...] = ("执法人员甲", "执法人员乙")

    def renewal_apply_by(self, licence: Licence) -> date | None:
        """The last day a renewal is applied for in time (Art. 50: 届满三十日前); no first day."""
        if licence.valid_until is None:
            return None
        return licence.valid_until - timedelta(days=self.renewal_lead_days)

    def renewal_is_timely(self, licence: Licence, applied_on: date) -> bool:
        """Art. 50: applied for no later than 30 days before expiry (however early)."""
        apply_by = self.renewal_apply_by(licence)
        return apply_by is not None and applied_on <= apply_by

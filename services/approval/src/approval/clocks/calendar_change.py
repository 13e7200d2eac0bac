"""A year's schedule replaced: the running clocks around it re-derived (``CalendarChange``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from approval.calendar.service import check_year
from approval.clocks.derivation import Derived
from approval.clocks.models import ApplicationClock, ClockLedgerEntry
from approval.clocks.service import ClockKeeper


@dataclass(frozen=True, slots=True)
class MovedDeadline:
    """A running clock whose due date a calendar change moved."""

    clock: ApplicationClock
    old_due_on: date
    derived: Derived


class CalendarChange:
    """Re-derives the running clocks around a year before and after its schedule is replaced."""

    def __init__(self, keeper: ClockKeeper, *, year: int, today: date) -> None:
        check_year(year)  # before any date arithmetic around the year (422 problem otherwise)
        self.keeper = keeper
        self.first, self.last = date(year, 1, 1), date(year, 12, 31)
        self.today = today
        self.before: dict[tuple[uuid.UUID, str], date] = {}
        self.clocks: list[ApplicationClock] = []
        self.ledgers: dict[uuid.UUID, list[ClockLedgerEntry]] = {}

    async def _derive(self, clock: ApplicationClock) -> Derived:
        entries = self.ledgers.get(clock.application_id)
        if entries is None:
            entries = await self.keeper.repository.ledger(clock.application_id)
            self.ledgers[clock.application_id] = entries
        return await self.keeper.derive_stored(
            clock, entries, as_of=max(self.today, clock.started_on)
        )

    async def capture(self) -> None:
        """The due dates on the calendar as it is (call before the year is replaced)."""
        # A due date up to a quarter before the year may be pushed into it by the new schedule.
        self.clocks = await self.keeper.repository.open_around(
            self.first - timedelta(days=92), self.last
        )
        for clock in self.clocks:
            self.before[(clock.application_id, clock.kind)] = (
                await self._derive(clock)
            ).view.due_on

    async def moved(self, *, now: datetime) -> list[MovedDeadline]:
        """Refresh every captured clock's cache; those whose due date moved."""
        result = []
        for clock in self.clocks:
            derived = await self._derive(clock)
            old = self.before[(clock.application_id, clock.kind)]
            values: dict[str, Any] = {**derived.cache(), "updated_at": now}
            if derived.view.due_on > old and derived.warn_on > self.today:
                # Later than announced and no longer near: warn again when it is.
                values |= {"warned_at": None, "overdue_at": None}
            await self.keeper.repository.update(clock.application_id, clock.kind, values)
            if derived.view.due_on != old:
                result.append(MovedDeadline(clock=clock, old_due_on=old, derived=derived))
        for application_id in {m.clock.application_id for m in result}:
            running = await self.keeper.repository.for_application(application_id)
            dues = [c.due_on for c in running if c.stopped_on is None]
            await self.keeper.repository.set_application_due(
                application_id, min(dues) if dues else None
            )
        return result

"""Per-application clocks: opened, stopped, paused, extended and restarted with the lifecycle.

Every change is a ledger entry or a stop written in the transaction of the lifecycle event that
causes it; the due date is then re-derived from the ledger and the calendar and kept only as an
index cache (``due_on``, ``warn_on``) for the timers and the work queue.

Clock behaviour during 补正 (Art. 32), as the 补正告知书 says it:

* The acceptance clock (5 working days from receipt) **stops** when the authority sends the 补正
  notice: the authority acted within its limit, and nothing is due from it while the applicant
  gathers the missing materials, so no timer runs and no deemed acceptance can happen.
* The notice promises acceptance "自收到全部补正材料之日起" (Art. 32(1)(5): an authority shall accept
  once the applicant has handed in all the materials it asked for). So when the complete supplement
  arrives, that day is the day the application is accepted as of: the acceptance clock **restarts
  from it** (a ``restart`` ledger entry; 5 working days for staff to confirm in a 受理通知书, or to ask
  again for what the supplement still lacks), and whether staff accept within those days or the
  period runs out (deemed acceptance), the decision clock **starts on the day the complete
  supplement arrived**, not on the day the notice is signed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.clock import (
    DEFAULT_WARN_DAYS,
    JOINT_MAX_EXTENSION_DAYS,
    MAX_EXTENSION_DAYS,
    ClockKind,
    ClockView,
    Extension,
    PauseEntry,
    replay,
)
from approval.calendar.errors import YearOutOfRange
from approval.calendar.repository import CalendarRepository
from approval.calendar.service import CalendarService, jurisdiction_chain
from approval.calendar.workdays import (
    LAST_YEAR,
    CalendarDay,
    CalendarSnapshot,
    OutsideSnapshot,
    add_working_days,
)
from approval.catalogue.repository import ITEM_CACHE, ItemRepository
from approval.catalogue.schemas import JOINT_HANDLING_LABELS, JointHandling
from approval.clocks.models import (
    ApplicationClock,
    ClockLedgerEntry,
    LedgerEntryKind,
    StopReason,
)
from approval.clocks.repository import ClockRepository
from approval.lifecycle import Action
from approval.models import Application
from govshared.applications import ApplicationState
from govshared.sql import database_key

T = TypeVar("T")
ACCEPTANCE_DAYS = 5  # Art. 32
DECISION_DAYS = 20  # Art. 42, when the item sets no limit of its own
DELIVERY_DAYS = 10  # Art. 44
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DecisionTerms:
    """The decision clock an item gets: its limits, and whether it is handled jointly."""

    statutory_days: int
    committed_days: int
    joint: JointHandling | None = None

    @property
    def extension_limit_days(self) -> int | None:
        """Art. 42(2): up to 15 working days for a jointly handled item; None: Art. 42(1)'s 10."""
        return JOINT_MAX_EXTENSION_DAYS if self.joint is not None else None

    def notice(self) -> dict[str, Any]:
        """What the audit entry and the 受理通知书 say about the decision limit."""
        return {
            "decision_limit_days": self.statutory_days,
            **({"joint_handling": self.joint.value} if self.joint else {}),
        }


async def decision_terms(session: AsyncSession, item_code: str) -> DecisionTerms:
    """The item's decision limits (Art. 42) from the catalogue cache."""
    item = await ITEM_CACHE.get(ItemRepository(session), item_code)
    if item is None:
        return DecisionTerms(DECISION_DAYS, DECISION_DAYS)
    joint = item.guide.get("joint_handling")
    return DecisionTerms(
        item.statutory_limit_days,
        item.committed_limit_days,
        JointHandling(joint) if joint else None,
    )


def joint_label(joint: str | None) -> str | None:
    """统一办理/联合办理/集中办理 for a stored mark."""
    return JOINT_HANDLING_LABELS[JointHandling(joint)] if joint else None


@dataclass(frozen=True, slots=True)
class ClockSpec:
    """What a clock is apart from its ledger."""

    kind: ClockKind
    started_on: date
    budget_days: int
    committed_days: int | None = None
    extension_limit_days: int | None = None  # None: Art. 42(1)'s ten working days


@dataclass(frozen=True, slots=True)
class DeemedAcceptance:
    """Art. 32: the acceptance period ran out; the application IS accepted as of ``received_on``."""

    received_on: date  # the day the (complete) materials arrived: accepted as of this day
    acceptance_due_on: date  # the last day of the authority's acceptance period
    clock: ApplicationClock
    derived: Derived

    @property
    def effective_on(self) -> date:
        """The first day the deemed acceptance holds (the day after the period ran out)."""
        return self.acceptance_due_on + ONE_DAY


@dataclass(frozen=True, slots=True)
class Derived:
    """A clock's view on a day plus the day it turns yellow (the index cache)."""

    view: ClockView
    warn_on: date

    def cache(self) -> dict[str, Any]:
        """The index-cache columns of the clock row."""
        return {
            "due_on": self.view.due_on,
            "warn_on": self.warn_on,
            "is_paused": self.view.is_paused,
            "provisional": self.view.depends_on_provisional,
        }


def ledger_of(
    entries: Sequence[ClockLedgerEntry], kind: ClockKind
) -> tuple[tuple[PauseEntry, ...], Extension | None]:
    """The pauses and the extension of one clock, from its ledger entries in recorded order."""
    pauses: list[PauseEntry] = []
    extension = None
    for entry in entries:
        if entry.kind != kind.value:
            continue
        if entry.entry == LedgerEntryKind.PAUSE:
            pauses.append(
                PauseEntry(
                    reason=entry.reason or "", started_on=entry.on_date, expected_days=entry.days
                )
            )
        elif entry.entry == LedgerEntryKind.RESUME and pauses and pauses[-1].ended_on is None:
            last = pauses[-1]
            pauses[-1] = PauseEntry(
                reason=last.reason,
                started_on=last.started_on,
                ended_on=entry.on_date,
                expected_days=last.expected_days,
            )
        elif entry.entry == LedgerEntryKind.EXTENSION:
            extension = Extension(
                days=entry.days or 0,
                granted_on=entry.on_date,
                reason=entry.reason or "",
                approved_by=entry.actor,
            )
    return tuple(pauses), extension


def warn_on(calendar: CalendarSnapshot, *, started_on: date, due_on: date, warn_days: int) -> date:
    """The first day the clock is yellow: ``warn_days`` working days before the due date."""
    seen = 0
    current = due_on
    while current > started_on:
        if calendar.is_working_day(current):
            seen += 1
            if seen > warn_days:
                return current
        current -= ONE_DAY
    return started_on


def derive(
    calendar: CalendarSnapshot,
    spec: ClockSpec,
    *,
    pauses: tuple[PauseEntry, ...] = (),
    extension: Extension | None = None,
    as_of: date,
    warn_days: int,
) -> Derived:
    """Replay the ledger (every rule checked again) and derive the clock on ``as_of``."""
    clock = replay(
        calendar,
        kind=spec.kind,
        started_on=spec.started_on,
        budget_days=spec.budget_days,
        committed_days=spec.committed_days,
        pauses=pauses,
        extension=extension,
        max_extension_days=spec.extension_limit_days or MAX_EXTENSION_DAYS,
    )
    view = clock.view(calendar, as_of=as_of, warn_days=warn_days)
    return Derived(
        view=view,
        warn_on=warn_on(
            calendar, started_on=spec.started_on, due_on=view.due_on, warn_days=warn_days
        ),
    )


def spec_of(clock: ApplicationClock) -> ClockSpec:
    """The spec of a stored clock."""
    return ClockSpec(
        kind=ClockKind(clock.kind),
        started_on=clock.started_on,
        budget_days=clock.budget_days,
        committed_days=clock.committed_days,
        extension_limit_days=clock.extension_limit_days,
    )


def window(spec: ClockSpec, pauses: Sequence[PauseEntry], as_of: date) -> tuple[date, date]:
    """A calendar window that covers a clock's derivation in the ordinary case."""
    ledger_end = max([as_of, spec.started_on, *(p.ended_on or p.started_on for p in pauses)])
    return min(spec.started_on, as_of), ledger_end + timedelta(days=2 * spec.budget_days + 60)


class CalendarCache:
    """The national calendar per year, kept in the process for the submission hot path.

    The years' ``updated_at`` stamps are checked at most every ``recheck_seconds`` (one small query);
    a year loaded by any replica changes its stamp, so a stale year is reloaded here, and the replica
    that loaded it forgets it at once. Until then an index cache may lag; the year load itself
    re-derives every open clock it touches. Local closures are left out: they only ever move a due
    date later, so the cached ``due_on`` is never later than the truth, and the timers re-derive from
    the database (closures included) before they fire.
    """

    def __init__(self, recheck_seconds: float = 5.0) -> None:
        self._years: dict[tuple[str, int], tuple[Any, list[CalendarDay]]] = {}
        self._snapshots: dict[tuple[str, int, int], tuple[float, CalendarSnapshot]] = {}
        self._recheck = recheck_seconds
        # Results of ``memoised``, each with the snapshot it was derived on.
        self._memo: dict[tuple[Any, ...], tuple[CalendarSnapshot, Any]] = {}

    async def snapshot(self, session: AsyncSession, first: int, last: int) -> CalendarSnapshot:
        """The national calendar of the years ``first..last``."""
        database = database_key(session)
        key = (database, first, last)
        recent = self._snapshots.get(key)
        if recent is not None and time.monotonic() - recent[0] < self._recheck:
            return recent[1]
        years = list(range(first, last + 1))
        stamps = await ClockRepository(session).calendar_stamps(years)
        days: list[CalendarDay] = []
        for year in years:
            cached = self._years.get((database, year))
            if cached is None or cached[0] != stamps.get(year):
                loaded = (
                    await CalendarRepository(session).days_between(
                        date(year, 1, 1), date(year, 12, 31)
                    )
                    if year in stamps
                    else []
                )
                cached = (stamps.get(year), loaded)
                self._years[(database, year)] = cached
            days.extend(cached[1])
        snapshot = CalendarSnapshot(days, window=(date(first, 1, 1), date(last, 12, 31)))
        self._snapshots[key] = (time.monotonic(), snapshot)
        return snapshot

    async def compute(
        self,
        session: AsyncSession,
        rule: Callable[[CalendarSnapshot], T],
        *,
        first: date,
        last: date,
        jurisdiction: str | None = None,
        closures: dict[tuple[str, int, int], list[date]] | None = None,
    ) -> T:
        """Run a pure rule on the cached years, adding years until the rule has what it needs.

        With a ``jurisdiction``, its closures (and its parents') are read from the database (one
        small indexed query, usually empty; ``closures`` memoises them for the caller's
        transaction) and laid over the cached national calendar.
        """
        low, high = first.year, last.year
        memo = closures if closures is not None else {}
        while True:
            snapshot = await self.snapshot(session, low, high)
            if jurisdiction is not None:
                key = (jurisdiction, low, high)
                if key not in memo:
                    memo[key] = await CalendarRepository(session).closure_days(
                        jurisdiction_chain(jurisdiction), date(low, 1, 1), date(high, 12, 31)
                    )
                snapshot = snapshot.with_closures(memo[key])
            try:
                return rule(snapshot)
            except OutsideSnapshot as exc:
                if exc.day.year < low:
                    low = exc.day.year
                else:
                    high = exc.day.year
                if high > LAST_YEAR:
                    raise YearOutOfRange(f"期限超出 {LAST_YEAR} 年，无法计算") from exc

    async def memoised(
        self,
        session: AsyncSession,
        key: tuple[Any, ...],
        rule: Callable[[CalendarSnapshot], T],
        *,
        first: date,
        last: date,
    ) -> T:
        """``compute`` for a rule that depends on nothing but ``key`` and the national calendar
        (every submission of a day opens the same acceptance clock): reused for as long as the
        snapshot of ``first..last`` is the same one, so at most until the next recheck."""
        snapshot = await self.snapshot(session, first.year, last.year)
        memo_key = (database_key(session), *key)
        known = self._memo.get(memo_key)
        if known is not None and known[0] is snapshot:
            return cast(T, known[1])
        result = await self.compute(session, rule, first=first, last=last)
        if len(self._memo) > 1000:
            self._memo.clear()
        self._memo[memo_key] = (snapshot, result)
        return result

    def invalidate(self, year: int) -> None:
        """Forget a year (this process loaded it; other processes notice its new stamp)."""
        self._memo.clear()
        for key in [k for k in self._years if k[1] == year]:
            del self._years[key]
        for snapshot_key in [k for k in self._snapshots if k[1] <= year <= k[2]]:
            del self._snapshots[snapshot_key]


CALENDAR_CACHE = CalendarCache()


class CachedCalendar:
    """``CalendarService.compute`` on the process's calendar cache (closures still read live).

    The lifecycle actions derive clocks with it: the national calendar of a year changes once a
    year, and a process sees another replica's load within the cache's recheck interval; the
    timers, which act on a due date, derive from the database (``CalendarService``) before firing.
    """

    def __init__(self, session: AsyncSession, cache: CalendarCache) -> None:
        self.session = session
        self.cache = cache
        # One request stops one clock and opens the next: their closures are read once.
        self._closures: dict[tuple[str, int, int], list[date]] = {}

    async def compute(
        self,
        rule: Callable[[CalendarSnapshot], T],
        *,
        first: date,
        last: date,
        jurisdiction: str | None = None,
    ) -> T:
        """Run a pure rule on the cached calendar with the jurisdiction's closures."""
        return await self.cache.compute(
            self.session,
            rule,
            first=first,
            last=last,
            jurisdiction=jurisdiction,
            closures=self._closures,
        )


class ClockKeeper:
    """Writes the clocks of an application alongside its lifecycle events (never commits)."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        warn_days: int = DEFAULT_WARN_DAYS,
        cache: CalendarCache = CALENDAR_CACHE,
        cached_calendar: bool = False,
    ) -> None:
        self.session = session
        self.repository = ClockRepository(session)
        # Lifecycle actions use the cached national calendar; timers and views the database.
        self.calendar: CalendarService | CachedCalendar = (
            CachedCalendar(session, cache) if cached_calendar else CalendarService(session)
        )
        self.warn_days = warn_days
        self.cache = cache

    async def derive_stored(
        self,
        clock: ApplicationClock,
        entries: Sequence[ClockLedgerEntry],
        *,
        as_of: date,
        extra: tuple[PauseEntry, ...] | None = None,
        extension: Extension | None = None,
    ) -> Derived:
        """Derive a stored clock from the database calendar, the jurisdiction's closures included.

        ``extra``/``extension`` replace the stored pauses/extension (to check a new entry first).
        """
        spec = spec_of(clock)
        pauses, stored_extension = ledger_of(entries, spec.kind)
        if extra is not None:
            pauses = extra
        chosen = extension or stored_extension
        first, last = window(spec, pauses, as_of)
        return await self.calendar.compute(
            lambda calendar: derive(
                calendar,
                spec,
                pauses=pauses,
                extension=chosen,
                as_of=as_of,
                warn_days=self.warn_days,
            ),
            first=first,
            last=last,
            jurisdiction=clock.jurisdiction,
        )

    async def opening(self, *, kind: ClockKind, budget_days: int, today: date) -> Derived:
        """A new clock derived from the cached calendar (the submission hot path: one small query)."""
        spec = ClockSpec(kind, today, budget_days)
        first, last = window(spec, (), today)
        return await self.cache.memoised(
            self.session,
            (spec, self.warn_days),
            lambda calendar: derive(calendar, spec, as_of=today, warn_days=self.warn_days),
            first=first,
            last=last,
        )

    async def insert_opening(
        self, *, application_id: uuid.UUID, jurisdiction: str, derived: Derived, now: datetime
    ) -> None:
        """Store a clock made by ``opening``."""
        view = derived.view
        spec = ClockSpec(view.kind, view.started_on, view.budget_days)
        await self._insert(application_id, jurisdiction, spec, derived, now)

    async def _insert(
        self,
        application_id: uuid.UUID,
        jurisdiction: str,
        spec: ClockSpec,
        derived: Derived,
        now: datetime,
    ) -> None:
        await self.repository.insert(
            {
                "application_id": application_id,
                "kind": spec.kind.value,
                "jurisdiction": jurisdiction,
                "started_on": spec.started_on,
                "budget_days": spec.budget_days,
                "committed_days": spec.committed_days,
                "extension_limit_days": spec.extension_limit_days,
                "stopped_on": None,
                "stop_reason": None,
                "used_days": None,
                "updated_at": now,
                **derived.cache(),
            }
        )

    async def open(
        self,
        *,
        application: Application,
        spec: ClockSpec,
        today: date,
        now: datetime,
    ) -> Derived:
        """Open a clock from the database calendar (closures included)."""
        first, last = window(spec, (), today)
        derived = await self.calendar.compute(
            lambda calendar: derive(calendar, spec, as_of=today, warn_days=self.warn_days),
            first=first,
            last=last,
            jurisdiction=application.jurisdiction,
        )
        await self._insert(application.id, application.jurisdiction, spec, derived, now)
        return derived

    async def stop(
        self,
        clock: ApplicationClock,
        entries: Sequence[ClockLedgerEntry],
        *,
        reason: StopReason,
        on: date,
        now: datetime,
    ) -> None:
        """Stop a running clock; its final due date and working days used are kept for statistics."""
        derived = await self.derive_stored(clock, entries, as_of=max(on, clock.started_on))
        await self.repository.update(
            clock.application_id,
            clock.kind,
            {
                **derived.cache(),
                "is_paused": False,
                "stopped_on": on,
                "stop_reason": reason.value,
                "used_days": derived.view.used_days,
                "updated_at": now,
            },
        )

    async def apply(
        self,
        *,
        application: Application,
        action: Action,
        details: dict[str, Any],
        reason: str | None,
        actor: str,
        today: date,
        now: datetime,
        terms: DecisionTerms | None = None,
    ) -> date | None:
        """Record what a lifecycle action does to the clocks; the application's new due-date cache.

        What the clocks derive and the notice must state is added to ``details`` (the day accepted
        as of and the decision limit for ``accept``; the expected end of an Art. 45 pause), so that
        the audit entry, the event and the sealed notice say what the clocks do.
        """
        if action is Action.REVIEW:
            return application.due_on
        clocks = {
            c.kind: c for c in await self.repository.for_application(application.id, lock=True)
        }
        entries = await self.repository.ledger(application.id)
        running = {k: c for k, c in clocks.items() if c.stopped_on is None}
        acceptance = running.get(ClockKind.ACCEPTANCE.value)
        decision = running.get(ClockKind.DECISION.value)
        dues: dict[str, date] = {k: c.due_on for k, c in running.items()}

        async def stop(clock: ApplicationClock | None, why: StopReason) -> None:
            if clock is not None:
                await self.stop(clock, entries, reason=why, on=today, now=now)
                dues.pop(clock.kind, None)

        async def open_clock(spec: ClockSpec) -> None:
            if spec.kind.value in clocks:  # a clock is opened once per application
                return
            dues[spec.kind.value] = (
                await self.open(application=application, spec=spec, today=today, now=now)
            ).view.due_on

        if action is Action.ACCEPT:
            await stop(acceptance, StopReason.ACCEPTED)
            terms = terms or DecisionTerms(DECISION_DAYS, DECISION_DAYS)
            # Art. 32(1)(5) and the 补正告知书: after a complete 补正 the application is accepted as
            # of the day the supplement arrived (the restarted acceptance clock's start).
            supplemented = acceptance is not None and any(
                e.kind == acceptance.kind and e.entry == LedgerEntryKind.RESTART for e in entries
            )
            accepted_on = acceptance.started_on if acceptance and supplemented else today
            details |= {
                "accepted_on": accepted_on.isoformat(),
                "after_supplement": supplemented,
                **terms.notice(),
            }
            await open_clock(
                ClockSpec(
                    ClockKind.DECISION,
                    accepted_on,
                    terms.statutory_days,
                    terms.committed_days,
                    terms.extension_limit_days,
                )
            )
            if ClockKind.DECISION.value in dues:
                details["decision_due_on"] = dues[ClockKind.DECISION.value].isoformat()
        elif action is Action.REJECT:
            await stop(acceptance, StopReason.REJECTED)
        elif action is Action.REQUEST_SUPPLEMENT:
            await stop(acceptance, StopReason.SUPPLEMENT_REQUESTED)
        elif action is Action.SUPPLEMENT:
            stored = clocks.get(ClockKind.ACCEPTANCE.value)
            if stored is not None:
                dues[stored.kind] = await self._restart(stored, actor=actor, on=today, now=now)
        elif action in (Action.PAUSE, Action.RESUME, Action.EXTEND) and decision is not None:
            dues[decision.kind] = await self._ledger_change(
                decision,
                entries,
                action=action,
                details=details,
                reason=reason,
                actor=actor,
                on=today,
                now=now,
            )
        elif action in (Action.APPROVE, Action.DENY):
            await stop(decision, StopReason.DECIDED)
            if action is Action.APPROVE:
                await open_clock(ClockSpec(ClockKind.DELIVERY, today, DELIVERY_DAYS))
        elif action is Action.INSTANT_DECISION:
            await stop(acceptance, StopReason.INSTANT_DECISION)
            await open_clock(ClockSpec(ClockKind.DELIVERY, today, DELIVERY_DAYS))
        elif action is Action.WITHDRAW:
            for clock in running.values():
                await stop(clock, StopReason.WITHDRAWN)
        return min(dues.values()) if dues else None

    async def deemed_acceptance(
        self, application: Application, *, today: date
    ) -> DeemedAcceptance | None:
        """Art. 32: the deemed acceptance in force on ``today`` that the timer has not recorded yet.

        A legal fact, not the timer's doing: once the acceptance period has run out the application
        is accepted as of the day its (complete) materials arrived. The application's cached due
        date is never later than the truth (closures only move it later), so a case not yet past it
        costs nothing; one past it is derived from the database calendar, closures included.
        """
        if (
            application.state != ApplicationState.SUBMITTED
            or application.due_on is None
            or application.due_on >= today
        ):
            return None
        clocks = await self.repository.for_application(application.id)
        acceptance = next(
            (c for c in clocks if c.kind == ClockKind.ACCEPTANCE and c.stopped_on is None), None
        )
        if acceptance is None:
            return None
        entries = await self.repository.ledger(application.id)
        derived = await self.derive_stored(acceptance, entries, as_of=today)
        if derived.view.due_on >= today:
            return None
        return DeemedAcceptance(
            received_on=acceptance.started_on,
            acceptance_due_on=derived.view.due_on,
            clock=acceptance,
            derived=derived,
        )

    async def decision_from(
        self, *, jurisdiction: str, terms: DecisionTerms, started_on: date, as_of: date
    ) -> tuple[ClockSpec, Derived]:
        """The decision clock that starts on ``started_on`` under the item's terms, derived."""
        spec = ClockSpec(
            ClockKind.DECISION,
            started_on,
            terms.statutory_days,
            terms.committed_days,
            terms.extension_limit_days,
        )
        first, last = window(spec, (), as_of)
        derived = await self.calendar.compute(
            lambda calendar: derive(calendar, spec, as_of=as_of, warn_days=self.warn_days),
            first=first,
            last=last,
            jurisdiction=jurisdiction,
        )
        return spec, derived

    async def record_deemed(
        self,
        application: Application,
        deemed: DeemedAcceptance,
        *,
        terms: DecisionTerms,
        today: date,
        now: datetime,
    ) -> Derived:
        """Write a deemed acceptance: the acceptance clock stops, the decision clock runs from the
        day the materials arrived; the decision clock as derived on ``today``."""
        await self.repository.update(
            application.id,
            deemed.clock.kind,
            {
                **deemed.derived.cache(),
                "stopped_on": deemed.effective_on,
                "stop_reason": StopReason.DEEMED_ACCEPTED.value,
                "used_days": deemed.clock.budget_days,
                "deemed_at": now,
                "updated_at": now,
            },
        )
        spec, derived = await self.decision_from(
            jurisdiction=application.jurisdiction,
            terms=terms,
            started_on=deemed.received_on,
            as_of=today,
        )
        await self._insert(application.id, application.jurisdiction, spec, derived, now)
        return derived

    async def delivered(self, application_id: uuid.UUID, *, on: date, now: datetime) -> None:
        """Art. 44: the licence was issued on ``on``; its delivery clock stops."""
        clocks = await self.repository.for_application(application_id, lock=True)
        delivery = next(
            (c for c in clocks if c.kind == ClockKind.DELIVERY and c.stopped_on is None), None
        )
        if delivery is None:
            return
        await self.stop(delivery, (), reason=StopReason.DELIVERED, on=on, now=now)
        dues = [c.due_on for c in clocks if c.stopped_on is None and c is not delivery]
        await self.repository.set_application_due(application_id, min(dues) if dues else None)

    async def _restart(
        self, clock: ApplicationClock, *, actor: str, on: date, now: datetime
    ) -> date:
        """Art. 32 after 补正: the acceptance period runs again from the day the supplement arrived."""
        await self.repository.append(
            {
                "id": uuid.uuid4(),
                "application_id": clock.application_id,
                "kind": clock.kind,
                "entry": LedgerEntryKind.RESTART.value,
                "on_date": on,
                "days": ACCEPTANCE_DAYS,
                "reason": "申请人提交全部补正材料，受理期限重新起算",
                "actor": actor,
                "recorded_at": now,
            }
        )
        spec = ClockSpec(ClockKind.ACCEPTANCE, on, ACCEPTANCE_DAYS)
        first, last = window(spec, (), on)
        derived = await self.calendar.compute(
            lambda calendar: derive(calendar, spec, as_of=on, warn_days=self.warn_days),
            first=first,
            last=last,
            jurisdiction=clock.jurisdiction,
        )
        await self.repository.update(
            clock.application_id,
            clock.kind,
            {
                **derived.cache(),
                "started_on": on,
                "budget_days": ACCEPTANCE_DAYS,
                "stopped_on": None,
                "stop_reason": None,
                "used_days": None,
                "warned_at": None,
                "overdue_at": None,
                "deemed_at": None,
                "updated_at": now,
            },
        )
        return derived.view.due_on

    async def _ledger_change(
        self,
        clock: ApplicationClock,
        entries: Sequence[ClockLedgerEntry],
        *,
        action: Action,
        details: dict[str, Any],
        reason: str | None,
        actor: str,
        on: date,
        now: datetime,
    ) -> date:
        """Pause, resume or extend the decision clock, checking the rules on the new ledger first."""
        kind = ClockKind(clock.kind)
        pauses, extension = ledger_of(entries, kind)
        row: dict[str, Any] = {
            "id": uuid.uuid4(),
            "application_id": clock.application_id,
            "kind": clock.kind,
            "on_date": on,
            "actor": actor,
            "recorded_at": now,
        }
        if action is Action.PAUSE:
            row |= {
                "entry": LedgerEntryKind.PAUSE.value,
                "reason": details["pause_reason"],
                "days": details.get("expected_days"),
            }
            # Art. 45: the applicant is told in writing the time the procedure needs, in working
            # days from the pause, and the day that ends.
            expected = int(details["expected_days"])
            details["expected_end_on"] = (
                await self.calendar.compute(
                    lambda calendar: add_working_days(calendar, on, expected),
                    first=on,
                    last=on + timedelta(days=2 * expected + 60),
                    jurisdiction=clock.jurisdiction,
                )
            ).isoformat()
            pauses = (
                *pauses,
                PauseEntry(
                    reason=details["pause_reason"],
                    started_on=on,
                    expected_days=details.get("expected_days"),
                ),
            )
        elif action is Action.RESUME:
            row |= {"entry": LedgerEntryKind.RESUME.value, "reason": reason, "days": None}
            if pauses and pauses[-1].ended_on is None:
                last = pauses[-1]
                pauses = (
                    *pauses[:-1],
                    PauseEntry(
                        reason=last.reason,
                        started_on=last.started_on,
                        ended_on=on,
                        expected_days=last.expected_days,
                    ),
                )
        else:
            days = int(details["extension_days"])
            row |= {"entry": LedgerEntryKind.EXTENSION.value, "reason": reason, "days": days}
            extension = Extension(days=days, granted_on=on, reason=reason or "", approved_by=actor)
        derived = await self.derive_stored(
            clock, entries, as_of=on, extra=pauses, extension=extension
        )
        await self.repository.append(row)
        await self.repository.update(
            clock.application_id, clock.kind, {**derived.cache(), "updated_at": now}
        )
        return derived.view.due_on


@dataclass(frozen=True, slots=True)
class MovedDeadline:
    """A running clock whose due date a calendar change moved."""

    clock: ApplicationClock
    old_due_on: date
    derived: Derived


class CalendarChange:
    """Re-derives the running clocks around a year before and after its schedule is replaced."""

    def __init__(self, keeper: ClockKeeper, *, year: int, today: date) -> None:
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

"""The pure parts of the per-application clocks: ledger replay and the yellow day."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from approval.calendar.clock import ClockKind
from approval.calendar.sources import seed_year
from approval.calendar.workdays import CalendarSnapshot, count_working_days
from approval.clocks.derivation import ClockSpec, derive, ledger_of, warn_on
from approval.clocks.models import ClockLedgerEntry, LedgerEntryKind

CALENDAR = CalendarSnapshot([day for year in (2021, 2022) for day in seed_year(year)])
D = date.fromisoformat


def _entry(
    entry: LedgerEntryKind, on: str, *, days: int | None = None, reason: str = ""
) -> ClockLedgerEntry:
    return ClockLedgerEntry(
        id=uuid.uuid4(),
        application_id=uuid.uuid4(),
        kind=ClockKind.DECISION.value,
        entry=entry.value,
        on_date=D(on),
        days=days,
        reason=reason,
        actor="head-1",
        recorded_at=datetime.now(UTC),
    )


def test_ledger_pairs_pauses_and_keeps_the_extension() -> None:
    pauses, extension = ledger_of(
        [
            _entry(LedgerEntryKind.PAUSE, "2021-09-22", days=5, reason="expert_review"),
            _entry(LedgerEntryKind.RESUME, "2021-09-29"),
            _entry(LedgerEntryKind.EXTENSION, "2021-10-08", days=10, reason="情况复杂"),
        ],
        ClockKind.DECISION,
    )
    assert [(p.started_on, p.ended_on, p.expected_days) for p in pauses] == [
        (D("2021-09-22"), D("2021-09-29"), 5)
    ]
    assert extension is not None and (extension.days, extension.approved_by) == (10, "head-1")
    derived = derive(
        CALENDAR,
        ClockSpec(ClockKind.DECISION, D("2021-09-17"), 20, 15),
        pauses=pauses,
        extension=extension,
        as_of=D("2021-10-08"),
        warn_days=3,
    )
    assert derived.view.due_on == D("2021-11-12") and derived.warn_on == D("2021-11-09")


@given(
    start=st.dates(min_value=D("2021-01-01"), max_value=D("2021-10-31")),
    budget=st.integers(min_value=1, max_value=45),
    warn=st.integers(min_value=0, max_value=10),
)
def test_warn_on_is_the_first_yellow_day(start: date, budget: int, warn: int) -> None:
    view = derive(
        CALENDAR, ClockSpec(ClockKind.DECISION, start, budget), as_of=start, warn_days=warn
    ).view
    first_yellow = warn_on(CALENDAR, started_on=start, due_on=view.due_on, warn_days=warn)
    assert count_working_days(CALENDAR, first_yellow, view.due_on) <= warn
    before = first_yellow - timedelta(days=1)
    if before >= start:
        assert count_working_days(CALENDAR, before, view.due_on) > warn


def test_two_pauses_of_one_day_replay_in_ledger_order() -> None:
    """Art. 45: a pause begun and ended on a day, then another begun that day, replays cleanly."""
    pauses, _ = ledger_of(
        [
            _entry(LedgerEntryKind.PAUSE, "2021-09-22", days=3, reason="expert_review"),
            _entry(LedgerEntryKind.RESUME, "2021-09-22"),
            _entry(LedgerEntryKind.PAUSE, "2021-09-22", days=3, reason="testing"),
        ],
        ClockKind.DECISION,
    )
    spec = ClockSpec(ClockKind.DECISION, D("2021-09-17"), 20)
    view = derive(CALENDAR, spec, pauses=pauses, as_of=D("2021-09-24"), warn_days=3).view
    assert view.is_paused and view.pause_reason == "testing" and view.paused_days == 2


def test_a_joint_item_clock_takes_an_extension_of_fifteen_days() -> None:
    """Art. 42(2): the ceiling travels with the clock (15 working days for joint handling)."""
    spec = ClockSpec(ClockKind.DECISION, D("2021-09-17"), 45, 45, extension_limit_days=15)
    _, extension = ledger_of(
        [_entry(LedgerEntryKind.EXTENSION, "2021-10-08", days=15, reason="多部门会签")],
        ClockKind.DECISION,
    )
    view = derive(CALENDAR, spec, extension=extension, as_of=D("2021-10-08"), warn_days=3).view
    # 45 working days from 09-17 end on 11-25; 15 more on 12-16
    assert (view.extension_days, view.due_on) == (15, D("2021-12-16"))

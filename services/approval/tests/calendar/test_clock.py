"""Statutory clocks: budget, Art. 45 pauses, the single Art. 42 extension, derived states."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from approval.calendar.clock import (
    MAX_EXTENSION_DAYS,
    Clock,
    ClockKind,
    ClockState,
    Extension,
    PauseEntry,
    PauseReason,
    replay,
)
from approval.calendar.errors import (
    ExtensionAlreadyGranted,
    ExtensionNotAllowed,
    ExtensionTooLong,
    InvalidPause,
    PauseReasonNotAllowed,
)
from approval.calendar.workdays import CalendarSnapshot, add_working_days, count_working_days

from .conftest import d


def decision(start: str = "2021-09-17", budget: int = 20, committed: int | None = None) -> Clock:
    return Clock(
        kind=ClockKind.DECISION,
        started_on=d(start),
        budget_days=budget,
        committed_days=committed,
    )


def test_decision_clock_derives_the_design_vector(real_calendar: CalendarSnapshot) -> None:
    view = decision().view(real_calendar, as_of=d("2021-09-22"))
    assert view.due_on == d("2021-10-21")
    assert view.used_days == 2  # 2021-09-18 (调休上班) and 2021-09-22
    assert view.remaining_days == 18
    assert view.state is ClockState.GREEN
    assert not view.depends_on_provisional


@pytest.mark.parametrize(
    ("as_of", "state", "remaining"),
    [
        ("2021-10-15", ClockState.GREEN, 4),
        ("2021-10-18", ClockState.YELLOW, 3),
        ("2021-10-21", ClockState.YELLOW, 0),
        ("2021-10-22", ClockState.RED, -1),
        ("2021-10-23", ClockState.RED, -1),  # a Saturday adds no overdue working day
    ],
)
def test_states_follow_the_remaining_working_days(
    real_calendar: CalendarSnapshot, as_of: str, state: ClockState, remaining: int
) -> None:
    view = decision().view(real_calendar, as_of=d(as_of), warn_days=3)
    assert (view.state, view.remaining_days) == (state, remaining)


def test_the_yellow_threshold_is_configurable(real_calendar: CalendarSnapshot) -> None:
    view = decision().view(real_calendar, as_of=d("2021-10-15"), warn_days=5)
    assert view.state is ClockState.YELLOW


def test_an_expert_review_pause_is_not_counted(real_calendar: CalendarSnapshot) -> None:
    clock = decision().pause(
        real_calendar, reason=PauseReason.EXPERT_REVIEW, on=d("2021-09-22"), expected_days=5
    )
    running = clock.view(real_calendar, as_of=d("2021-09-24"))
    assert running.is_paused and running.pause_reason is PauseReason.EXPERT_REVIEW
    assert running.paused_days == 2  # 09-23 and 09-24
    assert running.used_days == 2  # frozen while paused
    clock = clock.resume(on=d("2021-09-29"))
    view = clock.view(real_calendar, as_of=d("2021-09-30"))
    # (09-22, 09-29] holds six working days, Sunday 09-26 (调休上班) among them.
    assert view.paused_days == 6
    assert view.due_on == d("2021-10-29")
    assert view.used_days == 3
    assert not view.is_paused


def test_only_art_45_reasons_pause_a_clock(real_calendar: CalendarSnapshot) -> None:
    with pytest.raises(PauseReasonNotAllowed) as caught:
        decision().pause(real_calendar, reason="waiting_for_boss", on=d("2021-09-22"))
    assert "expert_review" in caught.value.extensions["allowed_reasons"]
    assert len(PauseReason) == 8


def test_pause_ledger_rules(real_calendar: CalendarSnapshot) -> None:
    clock = decision().pause(real_calendar, reason="hearing", on=d("2021-09-22"))
    with pytest.raises(InvalidPause):
        clock.pause(real_calendar, reason="testing", on=d("2021-09-23"))  # already paused
    with pytest.raises(InvalidPause):
        clock.resume(on=d("2021-09-21"))  # before the pause began
    clock = clock.resume(on=d("2021-09-24"))
    with pytest.raises(InvalidPause):
        clock.resume(on=d("2021-09-27"))  # nothing to resume
    with pytest.raises(InvalidPause):
        clock.pause(real_calendar, reason="testing", on=d("2021-09-23"))  # overlaps the last one
    with pytest.raises(InvalidPause):
        decision().pause(real_calendar, reason="testing", on=d("2021-09-16"))  # before the start
    with pytest.raises(InvalidPause):
        decision().pause(real_calendar, reason="testing", on=d("2021-10-22"))  # already overdue


def test_one_extension_of_at_most_ten_days(real_calendar: CalendarSnapshot) -> None:
    clock = decision().extend(
        real_calendar, days=10, on=d("2021-10-15"), reason="需组织现场核查", approved_by="head-1"
    )
    view = clock.view(real_calendar, as_of=d("2021-10-15"))
    assert view.extension_days == 10
    assert view.due_on == d("2021-11-04")
    with pytest.raises(ExtensionAlreadyGranted):
        clock.extend(real_calendar, days=1, on=d("2021-10-18"), reason="再延", approved_by="h")
    with pytest.raises(ExtensionTooLong):
        decision().extend(real_calendar, days=11, on=d("2021-10-15"), reason="x", approved_by="h")
    with pytest.raises(ExtensionNotAllowed):
        decision().extend(real_calendar, days=5, on=d("2021-10-22"), reason="x", approved_by="h")
    with pytest.raises(ExtensionNotAllowed):
        Clock(kind=ClockKind.ACCEPTANCE, started_on=d("2021-09-17"), budget_days=5).extend(
            real_calendar, days=5, on=d("2021-09-18"), reason="x", approved_by="h"
        )


def test_committed_limit_is_tracked_beside_the_statutory_one(
    real_calendar: CalendarSnapshot,
) -> None:
    clock = decision(committed=10).extend(
        real_calendar, days=5, on=d("2021-09-22"), reason="复杂", approved_by="h"
    )
    view = clock.view(real_calendar, as_of=d("2021-09-22"))
    assert view.committed_due_on == d("2021-10-08")  # 10 days; the extension does not stretch it
    assert view.due_on == d("2021-10-28")


def test_acceptance_clock_of_five_days_across_national_day(
    real_calendar: CalendarSnapshot,
) -> None:
    clock = Clock(kind=ClockKind.ACCEPTANCE, started_on=d("2021-09-29"), budget_days=5)
    assert clock.view(real_calendar, as_of=d("2021-09-29")).due_on == d("2021-10-12")


def test_clock_ending_in_a_provisional_year_is_flagged(real_calendar: CalendarSnapshot) -> None:
    view = decision(start="2026-12-20").view(real_calendar, as_of=d("2026-12-21"))
    assert view.depends_on_provisional
    assert view.provisional_years == (2027,)


# --- properties ------------------------------------------------------------------------------

starts = st.dates(min_value=date(2005, 1, 1), max_value=date(2027, 6, 30))
pause_plans = st.lists(
    st.tuples(st.integers(min_value=0, max_value=15), st.integers(min_value=0, max_value=20)),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(
    start=starts,
    budget=st.integers(min_value=1, max_value=45),
    plan=pause_plans,
    reason=st.sampled_from(list(PauseReason)),
)
def test_pauses_never_shorten_a_deadline(
    real_calendar: CalendarSnapshot,
    start: date,
    budget: int,
    plan: list[tuple[int, int]],
    reason: PauseReason,
) -> None:
    base = Clock(kind=ClockKind.DECISION, started_on=start, budget_days=budget)
    clock = base
    cursor = start
    for gap, length in plan:
        begin = cursor + timedelta(days=gap)
        try:
            clock = clock.pause(real_calendar, reason=reason, on=begin)
        except InvalidPause:
            break  # pausing after the due date is refused, as it should be
        cursor = begin + timedelta(days=length)
        clock = clock.resume(on=cursor)
    as_of = cursor + timedelta(days=1)
    paused = clock.view(real_calendar, as_of=as_of)
    plain = base.view(real_calendar, as_of=as_of)
    assert paused.due_on >= plain.due_on
    assert count_working_days(real_calendar, plain.due_on, paused.due_on) == paused.paused_days


@settings(max_examples=200, deadline=None)
@given(start=starts, budget=st.integers(min_value=1, max_value=45), days=st.integers(-5, 30))
def test_an_extension_never_exceeds_ten_working_days(
    real_calendar: CalendarSnapshot, start: date, budget: int, days: int
) -> None:
    base = Clock(kind=ClockKind.DECISION, started_on=start, budget_days=budget)
    try:
        extended = base.extend(real_calendar, days=days, on=start, reason="理由", approved_by="h")
    except ExtensionTooLong:
        assert not 1 <= days <= MAX_EXTENSION_DAYS
        return
    before = base.due_on(real_calendar, as_of=start)
    after = extended.due_on(real_calendar, as_of=start)
    assert 1 <= count_working_days(real_calendar, before, after) <= MAX_EXTENSION_DAYS
    assert after == add_working_days(real_calendar, before, days)


def test_replaying_a_ledger_checks_every_rule(real_calendar: CalendarSnapshot) -> None:
    extension = Extension(days=10, granted_on=d("2021-09-24"), reason="现场核查", approved_by="h")
    clock = replay(
        real_calendar,
        kind=ClockKind.DECISION,
        started_on=d("2021-09-17"),
        budget_days=20,
        pauses=(
            PauseEntry("testing", d("2021-10-11"), d("2021-10-11")),  # ends the day it began
            PauseEntry("expert_review", d("2021-09-22"), d("2021-09-29")),
        ),
        extension=extension,
    )
    view = clock.view(real_calendar, as_of=d("2021-10-12"))
    assert view.paused_days == 6 and view.extension_days == 10
    assert view.due_on == add_working_days(real_calendar, d("2021-10-29"), 10)
    with pytest.raises(PauseReasonNotAllowed):
        replay(
            real_calendar,
            kind=ClockKind.DECISION,
            started_on=d("2021-09-17"),
            budget_days=20,
            pauses=(PauseEntry("supplement", d("2021-09-22")),),
        )


def test_a_loaded_year_names_the_clocks_it_moves() -> None:
    from approval.calendar.service import DayChange, YearLoad
    from approval.calendar.workdays import CalendarDay, DayKind, DaySource

    change = DayChange(
        before=CalendarDay(d("2027-10-01"), DayKind.WEEKDAY, DaySource.PROVISIONAL, True),
        after=CalendarDay(d("2027-10-01"), DayKind.HOLIDAY, DaySource.OFFICIAL_NOTICE, False),
    )
    load = YearLoad(2027, DaySource.OFFICIAL_NOTICE, None, (change,), 365)
    assert load.touches(d("2027-09-20"), d("2027-10-01"))
    assert not load.touches(d("2027-10-01"), d("2027-10-20"))  # the start day is not counted
    assert not load.touches(d("2027-08-01"), d("2027-09-30"))

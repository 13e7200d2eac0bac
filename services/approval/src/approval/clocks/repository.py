"""All SQL of the clocks (Core on the hot paths, the row lock of the timers)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Date,
    Integer,
    Uuid,
    and_,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.models import calendar_closures, calendar_years
from approval.calendar.repository import CHAIN_LEVELS
from approval.calendar.service import jurisdiction_chain
from approval.clocks.models import (
    ApplicationClock,
    ClockLedgerEntry,
    application_clocks,
    clock_entries,
)
from approval.models import Application, ItemVersion
from approval.repository import applications
from govshared.db import UTCDateTime
from govshared.jurisdictions import under_prefix
from govshared.sql import DriverStatement, dialect_name, insert_ignore, snapshot
from govshared.sqlbatch import execute_insert, execute_update

ACCEPTANCE = "acceptance"

# The lifecycle's statements, built once and run on the driver (see approval.repository).
_CLOCKS_QUERY = (
    select(application_clocks)
    .where(application_clocks.c.application_id == bindparam("application_id"))
    .order_by(application_clocks.c.started_on, application_clocks.c.kind)
)
_CLOCKS = DriverStatement(_CLOCKS_QUERY)
_CLOCKS_LOCKED = DriverStatement(_CLOCKS_QUERY.with_for_update())
_LEDGER = DriverStatement(
    select(clock_entries)
    .where(clock_entries.c.application_id == bindparam("application_id"))
    .order_by(clock_entries.c.recorded_at, clock_entries.c.id)
)
# PostgreSQL: the clocks, locked, and their ledger in one round trip (a lifecycle action needs
# both): each clock row carries the application's whole ledger as a JSON array, in the order
# recorded (the same array on every row; ledgers are a few entries).
_ENTRY = clock_entries.alias("ledger_entry")
_CLOCKS_AND_LEDGER = DriverStatement(
    select(
        application_clocks,
        select(
            func.json_agg(
                aggregate_order_by(
                    literal_column("ledger_entry"), _ENTRY.c.recorded_at, _ENTRY.c.id
                )
            )
        )
        .where(_ENTRY.c.application_id == application_clocks.c.application_id)
        .scalar_subquery()
        .label("ledger"),
        # The closures of the case's jurisdiction chain in the window of years asked for
        # (the clocks' derivations read them: CachedCalendar.know_closures).
        select(func.array_agg(calendar_closures.c.day.distinct()))
        .where(
            calendar_closures.c.jurisdiction.in_([bindparam(f"j{n}") for n in range(CHAIN_LEVELS)]),
            calendar_closures.c.day.between(bindparam("start"), bindparam("end")),
        )
        .scalar_subquery()
        .label("closures"),
    )
    .where(application_clocks.c.application_id == bindparam("application_id"))
    .order_by(application_clocks.c.started_on, application_clocks.c.kind)
    .with_for_update(of=application_clocks)
)


# The same three, as columns of another statement's row (an action's read, approval.action_read):
# the clocks of the row's application locked, as a JSON array in the order above, their ledger,
# and the closure days of its jurisdiction's chain (jurisdictions.ancestors, in SQL) between
# :clock_start and :clock_end.
def clocks_beside(application_id: Any, jurisdiction: Any) -> list[Any]:
    """The columns that read ``application_id``'s clocks (locked), ledger and closures."""
    locked = (
        select(application_clocks)
        .where(application_clocks.c.application_id == application_id)
        .with_for_update()
        .correlate(application_id.table)
        .subquery("locked_clock")
    )
    j = jurisdiction
    chain = (
        j,
        func.substr(j, 1, 9),
        func.substr(j, 1, 6),
        func.substr(j, 1, 4).concat("00"),
        func.substr(j, 1, 2).concat("0000"),
    )
    return [
        select(
            func.json_agg(
                aggregate_order_by(
                    literal_column("locked_clock"), locked.c.started_on, locked.c.kind
                )
            )
        )
        .scalar_subquery()
        .label("clocks"),
        select(
            func.json_agg(
                aggregate_order_by(
                    literal_column("ledger_entry"), _ENTRY.c.recorded_at, _ENTRY.c.id
                )
            )
        )
        .where(_ENTRY.c.application_id == application_id)
        .scalar_subquery()
        .label("ledger"),
        select(func.array_agg(calendar_closures.c.day.distinct()))
        .where(
            calendar_closures.c.jurisdiction.in_(chain),
            calendar_closures.c.day.between(bindparam("clock_start"), bindparam("clock_end")),
        )
        .scalar_subquery()
        .label("closures"),
    ]


# What an action's read of the clocks gives: the clocks (locked), the ledger, the closure days of
# the years read (None: not read, as on SQLite).
ClocksRead = tuple[list[ApplicationClock], list[ClockLedgerEntry], list[date] | None]


def clocks_window(years: tuple[int, int]) -> dict[str, date]:
    """The parameters of ``clocks_beside`` for a window of years."""
    return {"clock_start": date(years[0], 1, 1), "clock_end": date(years[1], 12, 31)}


def clocks_from_row(row: Any) -> ClocksRead:
    """``clocks_beside``'s columns of a row, typed as rows read apart would be."""
    items = row["clocks"]
    if isinstance(items, str | bytes):
        items = json.loads(items)
    clocks = _from_json(ApplicationClock, _CLOCK_VALUES, items)
    return clocks, _entries_from_json(row["ledger"]), list(row["closures"] or [])


def _json_value(column_type: object) -> Callable[[Any], Any]:
    """How a ledger column's value comes back from JSON (dates, times and ids as text)."""
    if isinstance(column_type, Uuid):
        return uuid.UUID
    if isinstance(column_type, Date):
        return date.fromisoformat
    if isinstance(column_type, Integer):
        return int
    if isinstance(column_type, UTCDateTime):
        return lambda value: datetime.fromisoformat(value).astimezone(UTC)
    return lambda value: value


_ENTRY_VALUES = {c.name: _json_value(c.type) for c in clock_entries.c}
_CLOCK_VALUES = {c.name: _json_value(c.type) for c in application_clocks.c}


def _entries_from_json(ledger: Any) -> list[ClockLedgerEntry]:
    """The ledger entries of ``_CLOCKS_AND_LEDGER``'s JSON array, typed as a row read would be."""
    if ledger is None:
        return []
    items = json.loads(ledger) if isinstance(ledger, str | bytes) else ledger
    return _from_json(ClockLedgerEntry, _ENTRY_VALUES, items)


_M = TypeVar("_M")


def _from_json(cls: type[_M], values: dict[str, Callable[[Any], Any]], items: Any) -> list[_M]:
    """Rows of a JSON array as snapshots of ``cls``, each value typed as a row read would be."""
    return [
        snapshot(
            cls,
            {
                name: None if item[name] is None else convert(item[name])
                for name, convert in values.items()
            },
        )
        for item in items or ()
    ]


class ClockRepository:
    """Clock rows and their ledgers, in the caller's transaction (never commits)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, row: dict[str, Any]) -> None:
        """Open a clock (Core).

        A concurrent action that opened the same clock first wins; this one's transaction then
        fails its optimistic update of the application and rolls back as a 409.
        """
        statement = insert_ignore(
            self.session, application_clocks, index_elements=["application_id", "kind"]
        )
        await execute_insert(self.session, statement, row)

    async def append(self, row: dict[str, Any]) -> None:
        """Append a ledger entry (Core)."""
        await self.session.execute(insert(clock_entries), row)

    async def update(self, application_id: uuid.UUID, kind: str, values: dict[str, Any]) -> None:
        """Change a clock row (its stop, restart, cache or markers); inside an
        ``inserts_together`` block, with the block's statement at its end. Its row count is not
        checked (it never was): a lifecycle action changes the clocks it read locked
        (``locked_with_ledger``), the timers those they claimed."""
        await execute_update(
            self.session,
            application_clocks,
            {"application_id": application_id, "kind": kind},
            values,
        )

    async def for_application(
        self, application_id: uuid.UUID, *, lock: bool = False
    ) -> list[ApplicationClock]:
        """The clocks of an application as read now (row-locked on PostgreSQL when ``lock``):
        detached snapshots, since every write to a clock is a Core statement."""
        query = _CLOCKS_LOCKED if lock and dialect_name(self.session) == "postgresql" else _CLOCKS
        rows = await query.rows(self.session, {"application_id": application_id})
        return [snapshot(ApplicationClock, row) for row in rows]

    async def locked_with_ledger(
        self, application_id: uuid.UUID, *, jurisdiction: str, years: tuple[int, int]
    ) -> tuple[list[ApplicationClock], list[ClockLedgerEntry], list[date] | None]:
        """``for_application(lock=True)``, ``ledger`` and, on PostgreSQL, the closures of
        ``jurisdiction`` (and the jurisdictions above it) in ``years``: one statement there.
        On SQLite the closures are None (read when a derivation needs them)."""
        if dialect_name(self.session) != "postgresql":
            return (
                await self.for_application(application_id, lock=True),
                await self.ledger(application_id),
                None,
            )
        chain = jurisdiction_chain(jurisdiction)
        levels = {f"j{n}": chain[min(n, len(chain) - 1)] for n in range(CHAIN_LEVELS)}
        rows = await _CLOCKS_AND_LEDGER.rows(
            self.session,
            {
                "application_id": application_id,
                **levels,
                "start": date(years[0], 1, 1),
                "end": date(years[1], 12, 31),
            },
        )
        if not rows:
            return [], [], None
        clocks = [
            snapshot(
                ApplicationClock,
                {k: v for k, v in row.items() if k not in ("ledger", "closures")},
            )
            for row in rows
        ]
        return clocks, _entries_from_json(rows[0]["ledger"]), list(rows[0]["closures"] or [])

    async def ledger(self, application_id: uuid.UUID) -> list[ClockLedgerEntry]:
        """Every ledger entry of an application's clocks, in the order recorded."""
        rows = await _LEDGER.rows(self.session, {"application_id": application_id})
        return [snapshot(ClockLedgerEntry, row) for row in rows]

    async def claim_due(self, *, today: date, limit: int) -> list[ApplicationClock]:
        """Running clocks a timer may have to fire for, locked so that one replica takes each.

        PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so a second worker skips what the first holds and,
        once the first commits, no longer matches (its fired markers are set). SQLite has one writer
        (``BEGIN IMMEDIATE``), which serialises the workers the same way.
        """
        c = application_clocks.c
        query = (
            select(ApplicationClock)
            .where(
                c.stopped_on.is_(None),
                c.is_paused.is_(False),
                or_(
                    and_(c.warned_at.is_(None), c.warn_on <= today),
                    and_(c.kind == ACCEPTANCE, c.deemed_at.is_(None), c.due_on < today),
                    and_(c.kind != ACCEPTANCE, c.overdue_at.is_(None), c.due_on < today),
                ),
            )
            .order_by(c.due_on, c.application_id, c.kind)
            .limit(limit)
        )
        if dialect_name(self.session) == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list((await self.session.scalars(query)).all())

    async def open_around(self, first: date, last: date) -> list[ApplicationClock]:
        """Running clocks whose period may cross ``[first, last]`` (locked on PostgreSQL)."""
        c = application_clocks.c
        query = select(ApplicationClock).where(
            c.stopped_on.is_(None),
            c.started_on <= last,
            or_(c.due_on >= first, c.is_paused.is_(True)),
        )
        if dialect_name(self.session) == "postgresql":
            query = query.with_for_update()
        return list((await self.session.scalars(query)).all())

    async def set_application_due(self, application_id: uuid.UUID, due_on: date | None) -> None:
        """Refresh the work queue's cache of an application's earliest due date."""
        await self.session.execute(
            update(applications).where(applications.c.id == application_id).values(due_on=due_on)
        )

    async def calendar_stamps(self, years: Sequence[int]) -> dict[int, Any]:
        """When each of the given years was last written (the calendar cache's validity check)."""
        result = await self.session.execute(
            select(calendar_years.c.year, calendar_years.c.updated_at).where(
                calendar_years.c.year.in_(list(years))
            )
        )
        return {row.year: row.updated_at for row in result}

    async def timeliness_rows(
        self, *, jurisdiction_prefix: str | None, item_code: str | None
    ) -> list[Any]:
        """Per-clock rows for the statistics: clock, item and authority."""
        query = (
            select(
                Application.item_code,
                Application.item_name,
                ItemVersion.authority,
                ApplicationClock.kind,
                ApplicationClock.started_on,
                ApplicationClock.stopped_on,
                ApplicationClock.stop_reason,
                ApplicationClock.due_on,
                ApplicationClock.used_days,
                ApplicationClock.committed_days,
                ApplicationClock.budget_days,
                ApplicationClock.is_paused,
            )
            .join(Application, Application.id == ApplicationClock.application_id)
            # The authority of the guide each case was filed under: a later revision naming
            # another authority does not move past cases to it.
            .join(
                ItemVersion,
                and_(
                    ItemVersion.code == Application.item_code,
                    ItemVersion.version == Application.item_version,
                ),
            )
            .where(ApplicationClock.kind.in_([ACCEPTANCE, "decision"]))
        )
        if jurisdiction_prefix:
            query = query.where(under_prefix(Application.jurisdiction, jurisdiction_prefix))
        if item_code:
            query = query.where(Application.item_code == item_code)
        return list((await self.session.execute(query)).all())

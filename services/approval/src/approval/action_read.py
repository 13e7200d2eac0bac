"""What an action reads first (``ActionService.act``), in one statement on PostgreSQL: the
application; the sequence number and hash of its trail's newest entry; for acceptance, the names of
the materials it holds; for every action but review, its clocks locked, their ledger and the
closure days of its jurisdiction (``approval.clocks.repository.clocks_beside``).

The application and the trail's end are not locked: the action's write checks the row version it
read (``ApplicationRepository.write_state``), and an entry appended to the trail meanwhile by a
writer that does not change the row (a proof of service, a signed receipt) takes the number the
action's entry would have: the trail's primary key refuses it, and the action is read and taken
again. The clocks are locked as before, clocks first (the timers' order); when the read waits for
one, what it read of the application may be older than the clocks, which the same two checks catch.
On SQLite every writing transaction holds the database's write lock from its start (``BEGIN
IMMEDIATE``): nothing comes between, and each part is read on its own, in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import bindparam, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from approval.clocks.repository import ClocksRead, clocks_beside, clocks_from_row, clocks_window
from approval.models import Application
from approval.repository import ApplicationRepository, application_events, applications, materials
from govshared.hashchain import GENESIS
from govshared.sql import DriverStatement, dialect_name, snapshot


@dataclass(frozen=True, slots=True)
class ActionRead:
    """An action's first read."""

    application: Application | None
    # The names of the materials held (asked for, on PostgreSQL; else None: read when needed).
    material_names: set[str] | None
    trail_end: tuple[int, str]  # the newest entry's sequence number and hash (0, GENESIS: none)
    # The clocks (locked), ledger and closure days (asked for, on PostgreSQL; else None: the
    # clock keeper reads them).
    clocks: ClocksRead | None


_TRAIL_END = (
    select(
        application_events.c.seq.label("trail_seq"), application_events.c.hash.label("trail_hash")
    )
    .where(application_events.c.application_id == applications.c.id)
    .order_by(application_events.c.seq.desc())
    .limit(1)
    .lateral("trail_end")
)
_MATERIAL_NAMES = (
    select(func.array_agg(materials.c.name))
    .where(materials.c.application_id == applications.c.id)
    .scalar_subquery()
    .label("material_names")
)
# Columns of the read that are not the application's.
_EXTRAS = frozenset({"trail_seq", "trail_hash", "material_names", "clocks", "ledger", "closures"})


def _statement(*, materials: bool, clocks: bool) -> DriverStatement:
    columns: list[Any] = [applications, _TRAIL_END.c.trail_seq, _TRAIL_END.c.trail_hash]
    if materials:
        columns.append(_MATERIAL_NAMES)
    if clocks:
        columns += clocks_beside(applications.c.id, applications.c.jurisdiction)
    return DriverStatement(
        select(*columns)
        .select_from(applications.outerjoin(_TRAIL_END, true()))
        .where(applications.c.id == bindparam("id"))
    )


_READS = {(m, c): _statement(materials=m, clocks=c) for m in (False, True) for c in (False, True)}


async def read_for_action(
    session: AsyncSession,
    application_id: uuid.UUID,
    *,
    with_materials: bool,
    clock_years: tuple[int, int] | None,
) -> ActionRead:
    """The application and its trail's end; with ``with_materials`` the names of the materials it
    holds, with ``clock_years`` its clocks (locked), ledger and the closure days of those years."""
    if dialect_name(session) != "postgresql":
        repository = ApplicationRepository(session)
        application = await repository.get(application_id)
        end = await repository.chain_end(application_id) if application else (0, GENESIS)
        return ActionRead(application, None, end, None)
    parameters: dict[str, uuid.UUID | date] = {"id": application_id}
    if clock_years is not None:
        parameters |= clocks_window(clock_years)
    row = await _READS[with_materials, clock_years is not None].first(session, parameters)
    if row is None:
        return ActionRead(None, None, (0, GENESIS), None)
    application = snapshot(Application, {k: v for k, v in row.items() if k not in _EXTRAS})
    names = set(row["material_names"] or ()) if with_materials else None
    end = (row["trail_seq"], row["trail_hash"]) if row["trail_seq"] is not None else (0, GENESIS)
    return ActionRead(
        application, names, end, clocks_from_row(row) if clock_years is not None else None
    )

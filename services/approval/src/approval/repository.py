"""All of approval's SQL. Hot paths (submission) are Core statements on the mapped tables."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Table,
    and_,
    bindparam,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from approval.models import QUEUE_DUE_SQL, Application, ApplicationEvent, Material, Tolerance
from govshared.applications import ENDED_UNGRANTED
from govshared.hashchain import GENESIS
from govshared.jurisdictions import under_prefix
from govshared.sql import DriverStatement, dialect_name, snapshot
from govshared.sqlbatch import execute_insert, execute_update

applications: Table = Application.__table__  # type: ignore[assignment]
# Applications with no running clock (waiting for 补正) sort after every due date, on both databases.
NO_DUE_DATE = date(9999, 12, 31)
application_events: Table = ApplicationEvent.__table__  # type: ignore[assignment]
# The trail's primary key (application_id, seq): one entry per number, whoever appends.
TRAIL_KEY = "pk_application_events"
materials: Table = Material.__table__  # type: ignore[assignment]
tolerances: Table = Tolerance.__table__  # type: ignore[assignment]

# The lifecycle's statements are built once (building one, coercing its columns and operators,
# cost more CPU than executing it) and run on the driver (see govshared.sql.DriverStatement).
_INSERT_APPLICATION = insert(applications)
_APPEND_EVENT = insert(application_events)
_APPLICATION = DriverStatement(select(applications).where(applications.c.id == bindparam("id")))
_CHAIN_END = DriverStatement(
    select(application_events.c.seq, application_events.c.hash)
    .where(application_events.c.application_id == bindparam("application_id"))
    .order_by(application_events.c.seq.desc())
    .limit(1)
)
# The names of the materials an application holds (acceptance checks them against its guide).
_MATERIAL_NAMES = DriverStatement(
    select(materials.c.name).where(materials.c.application_id == bindparam("application_id"))
)
# PostgreSQL: the application and those names in one round trip (acceptance needs both).
_APPLICATION_AND_MATERIALS = DriverStatement(
    select(
        applications,
        select(func.array_agg(materials.c.name))
        .where(materials.c.application_id == applications.c.id)
        .scalar_subquery()
        .label("material_names"),
    ).where(applications.c.id == bindparam("id"))
)
_INSERT_TOLERANCE = insert(tolerances)
# Without .values(): the SET clause is made of the columns the execution's parameters name.
_UPDATE_STATE = DriverStatement(
    update(applications).where(
        applications.c.id == bindparam("where_id"),
        applications.c.row_version == bindparam("where_version"),
    )
)


def effective_state_in(states: list[str], today: date) -> Any:
    """SQL: the application's state by law is one of ``states``.

    A ``submitted`` case past its acceptance due date (its ``due_on`` while submitted) is accepted
    (Art. 32), whether or not the timer has recorded it yet.
    """
    state, due = applications.c.state, applications.c.due_on
    submitted, accepted = "submitted", "accepted"
    if (submitted in states) == (accepted in states):
        return state.in_(states)  # a deemed case stays in (or out of) the result either way
    others = [s for s in states if s != submitted]
    conditions: list[ColumnElement[bool]] = [state.in_(others)] if others else []
    if submitted in states:
        conditions.append(and_(state == submitted, or_(due.is_(None), due >= today)))
    if accepted in states:
        conditions.append(and_(state == submitted, due < today))
    return or_(*conditions) if conditions else false()


class ApplicationRepository:
    """Applications and their audit trail."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, row: dict[str, Any]) -> None:
        """Insert a new application (Core; joins an ``inserts_together`` block)."""
        await execute_insert(self.session, _INSERT_APPLICATION, row)

    async def append_event(self, row: dict[str, Any]) -> None:
        """Append an audit event (Core; joins an ``inserts_together`` block)."""
        await execute_insert(self.session, _APPEND_EVENT, row)

    async def get(self, application_id: uuid.UUID) -> Application | None:
        """One application, as read now: a detached snapshot (every write to it is a Core
        statement), not the session's identity-mapped instance."""
        row = await _APPLICATION.first(self.session, {"id": application_id})
        return snapshot(Application, row) if row is not None else None

    async def get_with_material_names(
        self, application_id: uuid.UUID
    ) -> tuple[Application | None, set[str] | None]:
        """``get`` and, on PostgreSQL, ``material_names`` in the same statement (None on SQLite:
        read them with ``material_names`` when needed)."""
        if dialect_name(self.session) != "postgresql":
            return await self.get(application_id), None
        row = await _APPLICATION_AND_MATERIALS.first(self.session, {"id": application_id})
        if row is None:
            return None, None
        names = row["material_names"]
        application = snapshot(Application, {k: v for k, v in row.items() if k != "material_names"})
        return application, set(names or ())

    async def write_state(
        self, application_id: uuid.UUID, *, expected_version: int, values: dict[str, Any]
    ) -> None:
        """``update_state`` inside an ``inserts_together`` block: one of the block's statement's
        parts on PostgreSQL; if the row is no longer at ``expected_version``, the block's end
        raises ``UpdateMissed`` (at once on SQLite) and the transaction must be rolled back."""
        await execute_update(
            self.session,
            applications,
            {"id": application_id, "row_version": expected_version},
            {**values, "row_version": expected_version + 1},
            checked=True,
        )

    async def get_for_update(self, application_id: uuid.UUID) -> Application | None:
        """One application, row-locked on PostgreSQL (SQLite transactions are serial already)."""
        return await self.session.get(Application, application_id, with_for_update=True)

    async def chain_end(self, application_id: uuid.UUID) -> tuple[int, str]:
        """The sequence number and hash of the newest audit entry (0 and the genesis hash if none)."""
        row = await _CHAIN_END.first(self.session, {"application_id": application_id})
        return (row["seq"], row["hash"]) if row is not None else (0, GENESIS)

    async def list_for_applicant(
        self, uscc: str, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Application]:
        """An enterprise's applications, newest first (keyset on submitted_at, id)."""
        query = select(Application).where(Application.applicant_uscc == uscc)
        if after is not None:
            query = query.where(tuple_(Application.submitted_at, Application.id) < after)
        query = query.order_by(Application.submitted_at.desc(), Application.id.desc()).limit(limit)
        return list((await self.session.scalars(query)).all())

    async def update_state(
        self, application_id: uuid.UUID, *, expected_version: int, values: dict[str, Any]
    ) -> bool:
        """Optimistic update: False when someone else changed the row since it was read."""
        changed = await _UPDATE_STATE.rowcount(
            self.session,
            {
                "where_id": application_id,
                "where_version": expected_version,
                "row_version": expected_version + 1,
                **values,
            },
        )
        return bool(changed)

    async def staff_queue(
        self,
        *,
        jurisdiction_prefix: str | None,
        states: list[str],
        item_code: str | None,
        keyword: str | None,
        after: tuple[date, datetime, uuid.UUID] | None,
        limit: int,
        today: date,
    ) -> list[Application]:
        """Applications of a jurisdiction, earliest due date first (keyset on due_on, submitted_at, id).

        ``due_on`` is the index cache of the earliest running clock (see ``approval.clocks``). The
        state filtered on is the effective one: a submitted case whose acceptance period has run
        out is accepted by law (Art. 32) before the timer records it. The keyset stays on the stored
        columns, so pages stay consistent while the timer catches up.
        """
        query = select(Application).where(effective_state_in(states, today))
        if jurisdiction_prefix:
            query = query.where(under_prefix(Application.jurisdiction, jurisdiction_prefix))
        if item_code:
            query = query.where(Application.item_code == item_code)
        if keyword:
            query = query.where(
                or_(
                    Application.application_no == keyword,
                    Application.applicant_uscc == keyword.upper(),
                    Application.applicant_name.contains(keyword, autoescape=True),
                )
            )
        due = literal_column(QUEUE_DUE_SQL, Date)
        if after is not None:
            query = query.where(tuple_(due, Application.submitted_at, Application.id) > after)
        query = query.order_by(due, Application.submitted_at, Application.id).limit(limit)
        return list((await self.session.scalars(query)).all())

    async def touch(self, application_id: uuid.UUID, *, at: datetime) -> None:
        """Set ``updated_at`` (and so hold the row until the transaction ends)."""
        await self.session.execute(
            update(applications).where(applications.c.id == application_id).values(updated_at=at)
        )

    async def material_names(self, application_id: uuid.UUID) -> set[str]:
        """The guide materials an application holds (uploaded or from an e-licence)."""
        rows = await _MATERIAL_NAMES.rows(self.session, {"application_id": application_id})
        return {row["name"] for row in rows}

    async def insert_tolerance(self, row: dict[str, Any]) -> None:
        """Record a material accepted as missing (容缺受理; joins an ``inserts_together`` block)."""
        await execute_insert(self.session, _INSERT_TOLERANCE, row)

    async def tolerances(self, application_id: uuid.UUID) -> list[Tolerance]:
        """The 容缺 materials of an application, by promised date."""
        query = (
            select(Tolerance)
            .where(Tolerance.application_id == application_id)
            .order_by(Tolerance.deliver_by, Tolerance.name)
        )
        return list((await self.session.scalars(query)).all())

    async def deliver_tolerance(
        self, application_id: uuid.UUID, name: str, *, material_id: uuid.UUID, at: datetime
    ) -> bool:
        """Mark a 容缺 material delivered (the first delivery counts); False when none awaited."""
        result = await self.session.execute(
            update(tolerances)
            .where(
                tolerances.c.application_id == application_id,
                tolerances.c.name == name,
                tolerances.c.delivered_at.is_(None),
            )
            .values(delivered_at=at, material_id=material_id)
        )
        return bool(getattr(result, "rowcount", 0))

    async def follow_ups(
        self, *, jurisdiction_prefix: str | None, overdue_on: date | None, limit: int
    ) -> list[Tolerance]:
        """容缺 materials still awaited (past their date when ``overdue_on``), earliest first."""
        query = (
            select(Tolerance)
            .join(Application, Application.id == Tolerance.application_id)
            .where(Tolerance.delivered_at.is_(None), Application.state.not_in(ENDED_UNGRANTED))
        )
        if jurisdiction_prefix:
            query = query.where(under_prefix(Tolerance.jurisdiction, jurisdiction_prefix))
        if overdue_on is not None:
            query = query.where(Tolerance.deliver_by < overdue_on)
        query = query.order_by(
            Tolerance.deliver_by, Tolerance.application_id, Tolerance.name
        ).limit(limit)
        return list((await self.session.scalars(query)).all())

    async def events(self, application_id: uuid.UUID) -> list[ApplicationEvent]:
        """The audit trail in order."""
        query = (
            select(ApplicationEvent)
            .where(ApplicationEvent.application_id == application_id)
            .order_by(ApplicationEvent.seq)
        )
        return list((await self.session.scalars(query)).all())

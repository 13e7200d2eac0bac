"""All of approval's SQL. Hot paths (submission) are Core statements on the mapped tables."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Table, bindparam, insert, literal_column, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from approval.audit import GENESIS
from approval.models import QUEUE_DUE_SQL, Application, ApplicationEvent
from govshared.sql import DriverStatement, execute_insert

applications: Table = Application.__table__  # type: ignore[assignment]
# Applications with no running clock (waiting for 补正) sort after every due date, on both databases.
NO_DUE_DATE = date(9999, 12, 31)
application_events: Table = ApplicationEvent.__table__  # type: ignore[assignment]

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
# Without .values(): the SET clause is made of the columns the execution's parameters name.
_UPDATE_STATE = DriverStatement(
    update(applications).where(
        applications.c.id == bindparam("where_id"),
        applications.c.row_version == bindparam("where_version"),
    )
)


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
        return Application(**row) if row is not None else None

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
    ) -> list[Application]:
        """Applications of a jurisdiction, earliest due date first (keyset on due_on, submitted_at, id).

        ``due_on`` is the index cache of the earliest running clock (see ``approval.clocks``).
        """
        query = select(Application).where(Application.state.in_(states))
        if jurisdiction_prefix:
            query = query.where(Application.jurisdiction.startswith(jurisdiction_prefix))
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

    async def events(self, application_id: uuid.UUID) -> list[ApplicationEvent]:
        """The audit trail in order."""
        query = (
            select(ApplicationEvent)
            .where(ApplicationEvent.application_id == application_id)
            .order_by(ApplicationEvent.seq)
        )
        return list((await self.session.scalars(query)).all())

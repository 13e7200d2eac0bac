"""SQL of the licence register. Writes are Core statements: they run on the event hot path."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from govshared.jurisdictions import under_prefix
from govshared.sql import dialect_name, insert_ignore
from licensing.models import (
    CreditRecord,
    EnterpriseApplication,
    Licence,
    LicenceCounter,
    LicenceHistory,
    LicenceStatus,
    LicenceType,
    VerificationTask,
)


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


LICENCES = _table(Licence)
HISTORY = _table(LicenceHistory)
COUNTERS = _table(LicenceCounter)
TASKS = _table(VerificationTask)
CREDIT = _table(CreditRecord)
APPLICATIONS = _table(EnterpriseApplication)
LIVE_STATUSES = (LicenceStatus.VALID.value, LicenceStatus.SUSPENDED.value)


class LicenceRepository:
    """Reads and writes licences, their history, tasks and credit records."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- licence types ---------------------------------------------------------------------

    async def licence_types(self) -> Sequence[LicenceType]:
        """The licence type catalogue."""
        return (await self.session.scalars(select(LicenceType).order_by(LicenceType.code))).all()

    async def licence_type(self, code: str) -> LicenceType | None:
        """One licence type."""
        return await self.session.get(LicenceType, code)

    async def licence_type_for_item(self, item_code: str) -> LicenceType | None:
        """The type of licence an item results in, if any."""
        return (
            await self.session.scalars(
                select(LicenceType).where(LicenceType.item_code == item_code)
            )
        ).one_or_none()

    # --- licences --------------------------------------------------------------------------

    async def current(self, licence_no: str) -> Licence | None:
        """The current version of a licence, as stored now (a version this session read before,
        e.g. before another transaction changed it, is read again)."""
        return (
            await self.session.scalars(
                select(Licence)
                .where(Licence.licence_no == licence_no, Licence.is_current)
                .execution_options(populate_existing=True)
            )
        ).one_or_none()

    async def version(self, licence_no: str, version: int) -> Licence | None:
        """One version of a licence."""
        return (
            await self.session.scalars(
                select(Licence).where(Licence.licence_no == licence_no, Licence.version == version)
            )
        ).one_or_none()

    async def versions(self, licence_no: str) -> Sequence[Licence]:
        """Every version of a licence, oldest first."""
        return (
            await self.session.scalars(
                select(Licence).where(Licence.licence_no == licence_no).order_by(Licence.version)
            )
        ).all()

    async def history(self, licence_no: str) -> Sequence[LicenceHistory]:
        """A licence's history, oldest first."""
        return (
            await self.session.scalars(
                select(LicenceHistory)
                .where(LicenceHistory.licence_no == licence_no)
                .order_by(LicenceHistory.occurred_at, LicenceHistory.version)
            )
        ).all()

    async def issued_for_application(self, application_id: uuid.UUID) -> bool:
        """True when a licence was already issued on this application."""
        found = await self.session.scalar(
            select(Licence.id).where(Licence.source_application_id == application_id).limit(1)
        )
        return found is not None

    async def current_for_holder_item(self, *, holder_uscc: str, item_code: str) -> Licence | None:
        """The holder's live licence for an item (the one a change or renewal applies to)."""
        return (
            await self.session.scalars(
                select(Licence)
                .where(
                    Licence.holder_uscc == holder_uscc,
                    Licence.item_code == item_code,
                    Licence.is_current,
                    Licence.status.in_(LIVE_STATUSES),
                )
                .order_by(Licence.issued_on.desc())
                .limit(1)
                .execution_options(populate_existing=True)
            )
        ).one_or_none()

    async def list_current(
        self,
        *,
        holder_uscc: str | None = None,
        jurisdiction_prefix: str | None = None,
        status: str | None = None,
        after_no: str | None = None,
        limit: int,
    ) -> Sequence[Licence]:
        """Current versions by licence number (keyset on the number)."""
        query = select(Licence).where(Licence.is_current).order_by(Licence.licence_no).limit(limit)
        if holder_uscc is not None:
            query = query.where(Licence.holder_uscc == holder_uscc)
        if jurisdiction_prefix is not None:
            query = query.where(under_prefix(Licence.jurisdiction, jurisdiction_prefix))
        if status is not None:
            query = query.where(Licence.status == status)
        if after_no is not None:
            query = query.where(Licence.licence_no > after_no)
        return (await self.session.scalars(query)).all()

    async def next_number(self, *, prefix: str, year: int) -> int:
        """The next sequence number of a prefix in a year (row-locked on PostgreSQL until commit)."""
        await self.session.execute(
            insert_ignore(self.session, COUNTERS, index_elements=["prefix", "year"]).values(
                prefix=prefix, year=year, last_value=0
            )
        )
        value = await self.session.scalar(
            update(COUNTERS)
            .where(COUNTERS.c.prefix == prefix, COUNTERS.c.year == year)
            .values(last_value=COUNTERS.c.last_value + 1)
            .returning(COUNTERS.c.last_value)
        )
        return int(value or 0)

    async def insert_licence(self, row: dict[str, Any]) -> None:
        """Insert a licence version."""
        await self.session.execute(insert(LICENCES).values(**row))

    async def set_status(
        self,
        *,
        licence_id: uuid.UUID,
        expected: str,
        values: dict[str, Any],
        unchanged_since: datetime | None = None,
    ) -> bool:
        """Update a current version if its status is still ``expected`` (and, with
        ``unchanged_since``, nothing updated it after it was read); False when it moved."""
        query = update(LICENCES).where(
            LICENCES.c.id == licence_id,
            LICENCES.c.is_current.is_(True),
            LICENCES.c.status == expected,
        )
        if unchanged_since is not None:
            query = query.where(LICENCES.c.updated_at == unchanged_since)
        result = await self.session.execute(query.values(**values))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def add_history(self, row: dict[str, Any]) -> None:
        """Append a history entry."""
        await self.session.execute(insert(HISTORY).values(id=uuid.uuid4(), **row))

    async def claim_expired(self, *, today: date, limit: int) -> Sequence[Licence]:
        """Live licences past their last valid day, locked so that replicas share the work."""
        query = (
            select(Licence)
            .where(
                Licence.is_current,
                Licence.status.in_(LIVE_STATUSES),
                Licence.valid_until < today,
            )
            .order_by(Licence.valid_until, Licence.id)
            .limit(limit)
        )
        if dialect_name(self.session) == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return (await self.session.scalars(query)).all()

    async def claim_ended_suspensions(self, *, today: date, limit: int) -> Sequence[Licence]:
        """Suspended licences whose 暂扣 term (``act_details.suspended_until``, its last day) is
        over, locked likewise. One suspended without a term stays so until staff reinstate it."""
        until = Licence.act_details["suspended_until"].as_string()
        query = (
            select(Licence)
            .where(
                Licence.is_current,
                Licence.status == LicenceStatus.SUSPENDED.value,
                until.is_not(None),
                until < today.isoformat(),
            )
            .order_by(Licence.id)
            .limit(limit)
        )
        if dialect_name(self.session) == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return (await self.session.scalars(query)).all()

    async def claim_reminders(
        self, *, today: date, thresholds: Sequence[int], limit: int
    ) -> Sequence[Licence]:
        """Valid licences whose next renewal reminder is due today, locked likewise.

        ``thresholds`` are the reminder stages' days before expiry, largest first: a licence that
        has had ``k`` reminders is due its next one once it expires within ``thresholds[k]`` days.
        Only those are claimed (and in expiry order), so licences reminded already, however many
        expire earlier, never fill a batch and hold back one whose reminder is due."""
        due = or_(
            *(
                (Licence.renewal_reminders_sent == sent)
                & (Licence.valid_until <= today + timedelta(days=days))
                for sent, days in enumerate(thresholds)
            )
        )
        query = (
            select(Licence)
            .where(
                Licence.is_current,
                # A suspended licence too: its holder may apply for renewal (Art. 50).
                Licence.status.in_(LIVE_STATUSES),
                Licence.valid_until >= today,
                Licence.renewal_requested_on.is_(None),
                due,
            )
            .order_by(Licence.valid_until, Licence.id)
            .limit(limit)
        )
        if dialect_name(self.session) == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return (await self.session.scalars(query)).all()

    # --- verification tasks and credit -------------------------------------------------------

    async def insert_task(self, row: dict[str, Any]) -> None:
        """Insert a verification task."""
        await self.session.execute(insert(TASKS).values(**row))

    async def task(self, task_id: uuid.UUID) -> VerificationTask | None:
        """One verification task."""
        return await self.session.get(VerificationTask, task_id)

    async def tasks(
        self,
        *,
        jurisdiction_prefix: str | None,
        statuses: tuple[str, ...],
        after: tuple[date, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[VerificationTask]:
        """Tasks by due date (keyset on due date and id)."""
        query = (
            select(VerificationTask)
            .order_by(VerificationTask.due_on, VerificationTask.id)
            .limit(limit)
        )
        if jurisdiction_prefix is not None:
            query = query.where(under_prefix(VerificationTask.jurisdiction, jurisdiction_prefix))
        query = query.where(VerificationTask.status.in_(statuses))
        if after is not None:
            due_on, task_id = after
            query = query.where(
                (VerificationTask.due_on > due_on)
                | ((VerificationTask.due_on == due_on) & (VerificationTask.id > task_id))
            )
        return (await self.session.scalars(query)).all()

    async def decide_task(
        self, *, task_id: uuid.UUID, expected: str, values: dict[str, Any]
    ) -> bool:
        """Record a task's result if it is still ``expected``; False when someone acted first."""
        result = await self.session.execute(
            update(TASKS).where(TASKS.c.id == task_id, TASKS.c.status == expected).values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def insert_credit(self, row: dict[str, Any]) -> None:
        """Insert a credit record."""
        await self.session.execute(insert(CREDIT).values(**row))

    async def credit_records(self, holder_uscc: str) -> Sequence[CreditRecord]:
        """An enterprise's credit records, newest first."""
        return (
            await self.session.scalars(
                select(CreditRecord)
                .where(CreditRecord.holder_uscc == holder_uscc)
                .order_by(CreditRecord.recorded_at.desc())
            )
        ).all()

    # --- applications seen in approval's events ---------------------------------------------

    async def track_application(self, row: dict[str, Any]) -> None:
        """Record an application's latest state; an older, late event never overwrites a newer one."""
        inserted = await self.session.execute(
            insert_ignore(self.session, APPLICATIONS, index_elements=["application_id"]).values(
                **row
            )
        )
        if inserted.rowcount:  # type: ignore[attr-defined]
            return
        await self.session.execute(
            update(APPLICATIONS)
            .where(
                APPLICATIONS.c.application_id == row["application_id"],
                APPLICATIONS.c.occurred_at <= row["occurred_at"],
            )
            .values(
                state=row["state"],
                reform_mode=row["reform_mode"],
                occurred_at=row["occurred_at"],
                business_type=func.coalesce(row["business_type"], APPLICATIONS.c.business_type),
            )
        )

    async def application_state(self, application_id: uuid.UUID) -> str | None:
        """The latest state approval told us of an application (None: never heard of)."""
        return await self.session.scalar(
            select(APPLICATIONS.c.state).where(APPLICATIONS.c.application_id == application_id)
        )

    async def applications_of(self, holder_uscc: str) -> Sequence[EnterpriseApplication]:
        """The applications of an enterprise that approval told us of."""
        return (
            await self.session.scalars(
                select(EnterpriseApplication)
                .where(EnterpriseApplication.holder_uscc == holder_uscc)
                .order_by(EnterpriseApplication.occurred_at)
            )
        ).all()

    async def holder_licences(self, holder_uscc: str) -> Sequence[Licence]:
        """Every current licence of a holder."""
        return (
            await self.session.scalars(
                select(Licence).where(Licence.holder_uscc == holder_uscc, Licence.is_current)
            )
        ).all()


def history_row(
    licence: dict[str, Any] | Licence,
    *,
    action: str,
    from_status: str | None,
    to_status: str,
    reason: str | None,
    actor: str,
    at: datetime,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A history entry for a licence version (``details``: the act's own fields)."""
    get = licence.get if isinstance(licence, dict) else licence.__getattribute__
    return {
        "licence_id": get("id"),
        "licence_no": get("licence_no"),
        "version": get("version"),
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "reason": reason,
        "details": details,
        "actor": actor,
        "occurred_at": at,
    }


def loaded(instance: Any, values: dict[str, Any]) -> None:
    """Reflect a Core update on a loaded object without making the ORM write it again."""
    for key, value in values.items():
        set_committed_value(instance, key, value)

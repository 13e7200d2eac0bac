"""Reads and writes of review tasks and delegations (Core writes: they join an
``inserts_together`` block when the lifecycle action that opens them runs in one)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from approval.models import Application
from approval.tasks.chain import TaskFacts, TaskKind, TaskStatus
from approval.tasks.models import Delegation, ReviewTask
from govshared.jurisdictions import under_prefix
from govshared.sqlbatch import execute_insert

TASKS: Table = ReviewTask.__table__  # type: ignore[assignment]
DELEGATIONS: Table = Delegation.__table__  # type: ignore[assignment]


def facts_of(task: ReviewTask) -> TaskFacts:
    """What the chain's rules read of a task."""
    return TaskFacts(
        id=task.id,
        kind=TaskKind(task.kind),
        step_index=task.step_index,
        status=TaskStatus(task.status),
        department=task.department,
        due_on=task.due_on,
        outcome=task.outcome,
        overridden=task.overridden_by is not None,
        completed_by=task.completed_by,
    )


def task_row(**values: Any) -> dict[str, Any]:
    """A new task's columns, the optional ones empty."""
    row: dict[str, Any] = {
        "department": None,
        "assignee": None,
        "due_on": None,
        "outcome": None,
        "reasons": None,
        "conditions": None,
        "completed_at": None,
        "completed_by": None,
        "overridden_by": None,
        "override_reason": None,
        "overridden_at": None,
        "escalated_at": None,
        "status": TaskStatus.OPEN.value,
    }
    row.update(values)
    row.setdefault("id", uuid.uuid4())
    return row


class TaskRepository:
    """Review tasks and delegations."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_application(self, application_id: uuid.UUID) -> list[ReviewTask]:
        """A case's tasks, oldest first."""
        query = (
            select(ReviewTask)
            .where(ReviewTask.application_id == application_id)
            .order_by(ReviewTask.created_at, ReviewTask.step_index, ReviewTask.id)
            .execution_options(populate_existing=True)
        )
        return list((await self.session.scalars(query)).all())

    async def insert(self, row: dict[str, Any]) -> None:
        """A new task (joins an ``inserts_together`` block)."""
        await execute_insert(self.session, TASKS.insert(), row)

    async def change(
        self, task_id: uuid.UUID, values: dict[str, Any], *, only_if_open: bool = True
    ) -> bool:
        """Update a task (still open, unless told otherwise); False if it was not."""
        query = update(TASKS).where(TASKS.c.id == task_id)
        if only_if_open:
            query = query.where(TASKS.c.status == TaskStatus.OPEN.value)
        result = await self.session.execute(query.values(**values))
        return bool(getattr(result, "rowcount", 0))

    async def claim(self, task_id: uuid.UUID, subject: str) -> bool:
        """Assign an open, unassigned task to ``subject``; False if someone was first."""
        result = await self.session.execute(
            update(TASKS)
            .where(
                TASKS.c.id == task_id,
                TASKS.c.status == TaskStatus.OPEN.value,
                TASKS.c.assignee.is_(None),
            )
            .values(assignee=subject)
        )
        return bool(getattr(result, "rowcount", 0))

    async def cancel_open(self, application_id: uuid.UUID, at: datetime) -> None:
        """The case ended: its open tasks with it."""
        await self.session.execute(
            update(TASKS)
            .where(
                TASKS.c.application_id == application_id,
                TASKS.c.status == TaskStatus.OPEN.value,
            )
            .values(status=TaskStatus.CANCELLED.value, completed_at=at)
        )

    # -- delegations (委托) --------------------------------------------------------------------

    def _active(self, today: date) -> Any:
        return and_(
            Delegation.revoked_at.is_(None),
            Delegation.starts_on <= today,
            Delegation.ends_on >= today,
        )

    async def acts_for(
        self, *, delegate: str, delegator: str, role: str, today: date
    ) -> Delegation | None:
        """The delegation in force by which ``delegate`` handles ``delegator``'s tasks of a role."""
        query = select(Delegation).where(
            Delegation.delegate == delegate,
            Delegation.delegator == delegator,
            Delegation.role == role,
            self._active(today),
        )
        return (await self.session.scalars(query.limit(1))).first()

    async def delegators_of(self, *, delegate: str, role: str, today: date) -> list[str]:
        """Whose tasks ``delegate`` handles today."""
        query = select(Delegation.delegator).where(
            Delegation.delegate == delegate, Delegation.role == role, self._active(today)
        )
        return sorted(set((await self.session.scalars(query)).all()))

    async def delegates_of(self, *, delegator: str, role: str, today: date) -> list[str]:
        """Who handles ``delegator``'s tasks today (they are told of new ones too)."""
        query = select(Delegation.delegate).where(
            Delegation.delegator == delegator, Delegation.role == role, self._active(today)
        )
        return sorted(set((await self.session.scalars(query)).all()))

    async def add_delegation(self, row: dict[str, Any]) -> None:
        await execute_insert(self.session, DELEGATIONS.insert(), row)

    async def delegation(self, delegation_id: uuid.UUID) -> Delegation | None:
        query = (
            select(Delegation)
            .where(Delegation.id == delegation_id)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(query)).first()

    async def revoke(self, delegation_id: uuid.UUID, *, by: str, at: datetime) -> bool:
        result = await self.session.execute(
            update(DELEGATIONS)
            .where(DELEGATIONS.c.id == delegation_id, DELEGATIONS.c.revoked_at.is_(None))
            .values(revoked_at=at, revoked_by=by)
        )
        return bool(getattr(result, "rowcount", 0))

    async def delegations_of(self, subject: str) -> list[Delegation]:
        """The delegations a member of staff gave or received, newest first."""
        query = (
            select(Delegation)
            .where(or_(Delegation.delegator == subject, Delegation.delegate == subject))
            .order_by(Delegation.created_at.desc(), Delegation.id)
            .limit(200)
        )
        return list((await self.session.scalars(query)).all())

    # -- the staff queue -----------------------------------------------------------------------

    async def queue(
        self,
        *,
        subject: str,
        role: str,
        department: str | None,
        jurisdiction_prefix: str,
        delegators: list[str],
        limit: int,
    ) -> list[tuple[ReviewTask, Application, date | None]]:
        """A member of staff's open tasks (theirs, their delegators', or open to their role and
        department), earliest statutory due date first: a step is due with the case's decision
        clock, an opinion on its own date."""
        due = case(
            (ReviewTask.kind == TaskKind.STEP.value, Application.due_on),
            else_=ReviewTask.due_on,
        )
        mine = ReviewTask.assignee.in_([subject, *delegators])
        open_to_me = and_(
            ReviewTask.assignee.is_(None),
            ReviewTask.role == role,
            or_(ReviewTask.department.is_(None), ReviewTask.department == department)
            if department
            else ReviewTask.department.is_(None),
        )
        query = (
            select(ReviewTask, Application, due)
            .join(Application, Application.id == ReviewTask.application_id)
            .where(
                ReviewTask.status == TaskStatus.OPEN.value,
                ReviewTask.role == role,
                under_prefix(ReviewTask.jurisdiction, jurisdiction_prefix),
                or_(mine, open_to_me),
            )
            .order_by(func.coalesce(due, date(9999, 12, 31)), ReviewTask.created_at, ReviewTask.id)
            .limit(limit)
        )
        rows = (await self.session.execute(query)).all()
        return [(row[0], row[1], row[2]) for row in rows]

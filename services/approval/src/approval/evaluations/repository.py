"""好差评 SQL."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import Table, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from approval.models import Evaluation, RemediationTask
from govshared.jurisdictions import under_prefix
from govshared.sql import insert_ignore

evaluations: Table = Evaluation.__table__  # type: ignore[assignment]


class EvaluationRepository:
    """Evaluations and remediation tasks."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: dict[str, Any]) -> bool:
        """Insert the case's evaluation; False when it was already rated."""
        statement = insert_ignore(self.session, evaluations, index_elements=["application_id"])
        result = await self.session.execute(statement.values(**row))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def get(self, application_id: uuid.UUID) -> Evaluation | None:
        """A case's evaluation."""
        return await self.session.get(Evaluation, application_id)

    async def add_task(self, row: dict[str, Any]) -> None:
        """Open a remediation task."""
        await self.session.execute(insert(RemediationTask).values(**row))

    async def task_for(self, application_id: uuid.UUID) -> RemediationTask | None:
        """The remediation task of a case."""
        return await self.session.scalar(
            select(RemediationTask).where(RemediationTask.application_id == application_id)
        )

    async def task(self, task_id: uuid.UUID) -> RemediationTask | None:
        """One task."""
        return await self.session.get(RemediationTask, task_id)

    async def tasks(
        self,
        *,
        jurisdiction_prefix: str | None,
        status: str | None,
        limit: int,
        after: tuple[date, uuid.UUID] | None = None,
    ) -> list[RemediationTask]:
        """Tasks of a jurisdiction, earliest due first, after the keyset ``(due_on, id)``."""
        query = select(RemediationTask)
        if jurisdiction_prefix:
            query = query.where(under_prefix(RemediationTask.jurisdiction, jurisdiction_prefix))
        if status:
            query = query.where(RemediationTask.status == status)
        if after is not None:
            query = query.where(tuple_(RemediationTask.due_on, RemediationTask.id) > tuple_(*after))
        query = query.order_by(RemediationTask.due_on, RemediationTask.id).limit(limit)
        return list((await self.session.scalars(query)).all())

    async def resolve(self, task_id: uuid.UUID, values: dict[str, Any]) -> bool:
        """Close a task that is still open; False when it was not (already resolved). The status
        condition is in the UPDATE itself: of two concurrent resolves only one changes the row."""
        result = await self.session.execute(
            update(RemediationTask)
            .where(RemediationTask.id == task_id, RemediationTask.status == "open")
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def statistics(self, *, jurisdiction_prefix: str | None) -> tuple[dict[int, int], int]:
        """Counts per rating, and open remediation tasks."""
        query = select(Evaluation.rating, func.count()).group_by(Evaluation.rating)
        tasks = (
            select(func.count())
            .select_from(RemediationTask)
            .where(RemediationTask.status == "open")
        )
        if jurisdiction_prefix:
            query = query.where(under_prefix(Evaluation.jurisdiction, jurisdiction_prefix))
            tasks = tasks.where(under_prefix(RemediationTask.jurisdiction, jurisdiction_prefix))
        counts = {int(r): int(n) for r, n in (await self.session.execute(query)).all()}
        return counts, int(await self.session.scalar(tasks) or 0)

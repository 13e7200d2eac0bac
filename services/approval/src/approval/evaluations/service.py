"""好差评 use cases."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from approval.calendar.service import CalendarService
from approval.errors import (
    AlreadyEvaluated,
    CaseNotClosed,
    RemediationTaskAlreadyResolved,
    RemediationTaskNotFound,
)
from approval.evaluations.repository import EvaluationRepository
from approval.evaluations.schemas import (
    RATING_LABELS,
    EvaluationCreate,
    EvaluationOut,
    EvaluationStatistics,
    Rating,
    RemediationResolve,
    RemediationTaskOut,
)
from approval.models import Application
from govshared import jurisdictions
from govshared.applications import SETTLED_STATES, ApplicationState
from govshared.auth import Principal, Role
from govshared.chinatime import china_today

POOR = Rating.DISSATISFIED


class EvaluationService:
    """Ratings of closed cases and the remediation of poor ones."""

    def __init__(self, session: AsyncSession, *, remediation_sla_days: int) -> None:
        self.repository = EvaluationRepository(session)
        self.calendar = CalendarService(session)
        self.sla_days = remediation_sla_days

    async def rate(self, *, application: Application, body: EvaluationCreate) -> EvaluationOut:
        """Record the applicant's rating, once; 2 or less opens a remediation task."""
        if ApplicationState(application.state) not in SETTLED_STATES:
            raise CaseNotClosed("办件尚未办结，办结后方可评价", current_state=application.state)
        now = datetime.now(UTC)
        row = {
            "application_id": application.id,
            "rating": int(body.rating),
            "indicators": {k.value: int(v) for k, v in body.indicators.items()},
            "comment": body.comment,
            "item_code": application.item_code,
            "jurisdiction": application.jurisdiction,
            "created_at": now,
        }
        if not await self.repository.add(row):
            raise AlreadyEvaluated("每个办件只能评价一次")
        due_on = None
        if body.rating <= POOR:
            answer = await self.calendar.add_working_days(
                china_today(), self.sla_days, jurisdiction=application.jurisdiction
            )
            due_on = answer.due
            await self.repository.add_task(
                {
                    "id": uuid.uuid4(),
                    "application_id": application.id,
                    "jurisdiction": application.jurisdiction,
                    "status": "open",
                    "due_on": due_on,
                    "resolution": None,
                    "created_at": now,
                    "resolved_at": None,
                }
            )
        return EvaluationOut(
            application_id=application.id,
            rating=body.rating,
            rating_label=RATING_LABELS[body.rating],
            indicators=row["indicators"],
            comment=body.comment,
            created_at=now,
            remediation_due_on=due_on,
        )

    async def tasks(
        self,
        *,
        principal: Principal,
        status: str | None,
        limit: int,
        after: tuple[date, uuid.UUID] | None = None,
    ) -> list[RemediationTaskOut]:
        """The remediation tasks of the caller's jurisdiction, after the keyset ``after``."""
        prefix = (
            None
            if principal.role is Role.ADMIN
            else jurisdictions.scope_prefix(principal.jurisdiction or "")
        )
        rows = await self.repository.tasks(
            jurisdiction_prefix=prefix, status=status, limit=limit, after=after
        )
        return [RemediationTaskOut.model_validate(r) for r in rows]

    async def resolve(
        self, *, principal: Principal, task_id: uuid.UUID, body: RemediationResolve
    ) -> RemediationTaskOut:
        """Close an open task of the caller's jurisdiction; a resolved one keeps its resolution
        (409 problem)."""
        task = await self.repository.task(task_id)
        prefix = (
            ""
            if principal.role is Role.ADMIN
            else jurisdictions.scope_prefix(principal.jurisdiction or "")
        )
        if task is None or not task.jurisdiction.startswith(prefix):
            raise RemediationTaskNotFound(f"整改任务 {task_id} 不存在")
        if not await self.repository.resolve(
            task_id,
            {"status": "resolved", "resolution": body.resolution, "resolved_at": datetime.now(UTC)},
        ):
            raise RemediationTaskAlreadyResolved(f"整改任务 {task_id} 已办结")
        await self.repository.session.refresh(task)
        return RemediationTaskOut.model_validate(task)

    async def statistics(self, *, principal: Principal) -> EvaluationStatistics:
        """Ratings of the caller's jurisdiction."""
        prefix = (
            None
            if principal.role is Role.ADMIN
            else jurisdictions.scope_prefix(principal.jurisdiction or "")
        )
        counts, open_tasks = await self.repository.statistics(jurisdiction_prefix=prefix)
        total = sum(counts.values())
        return EvaluationStatistics(
            evaluations=total,
            average_rating=round(sum(r * n for r, n in counts.items()) / total, 2)
            if total
            else None,
            by_rating={RATING_LABELS[Rating(r)]: n for r, n in sorted(counts.items())},
            poor_ratings=sum(n for r, n in counts.items() if r <= POOR),
            open_remediation_tasks=open_tasks,
        )

"""好差评 API."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from approval.context import Context
from approval.dependencies import ApplicationById, Session
from approval.errors import (
    AlreadyEvaluated,
    ApplicationNotFound,
    CaseNotClosed,
    RemediationTaskAlreadyResolved,
    RemediationTaskNotFound,
)
from approval.evaluations.schemas import (
    EvaluationCreate,
    EvaluationOut,
    EvaluationStatistics,
    RemediationResolve,
    RemediationTaskOut,
)
from approval.evaluations.service import EvaluationService
from govshared.auth import STAFF_ROLES, Principal, Role, require_roles
from govshared.db import AutoCommitRoute
from govshared.pagination import InvalidCursor, Page, decode_keyset, page_of
from govshared.problems import Forbidden, Unauthenticated, ValidationFailed, problem_responses

router = APIRouter(prefix="/api/v1", tags=["evaluations"], route_class=AutoCommitRoute)
AUTH_ERRORS = (Unauthenticated, Forbidden, ValidationFailed)


async def get_evaluations(context: Context, session: Session) -> EvaluationService:
    """The evaluation service of this request."""
    return EvaluationService(
        session, remediation_sla_days=context.settings.remediation_sla_working_days
    )


Evaluations = Annotated[EvaluationService, Depends(get_evaluations)]
Staff = Annotated[Principal, Depends(require_roles(*STAFF_ROLES))]


@router.post(
    "/applications/{application_id}/evaluation",
    summary="好差评：评价已办结的办件 (enterprise)",
    status_code=201,
    response_model=EvaluationOut,
    responses=problem_responses(*AUTH_ERRORS, ApplicationNotFound, CaseNotClosed, AlreadyEvaluated),
    dependencies=[Depends(require_roles(Role.ENTERPRISE))],
)
async def rate_application(
    application: ApplicationById, body: EvaluationCreate, evaluations: Evaluations
) -> EvaluationOut:
    """Rate a closed case once; 2 or less opens a remediation task."""
    return await evaluations.rate(application=application, body=body)


@router.get(
    "/remediation-tasks",
    summary="差评整改任务 (staff)",
    response_model=Page[RemediationTaskOut],
    responses=problem_responses(*AUTH_ERRORS, InvalidCursor),
)
async def remediation_tasks(
    evaluations: Evaluations,
    principal: Staff,
    status: Literal["open", "resolved"] | None = "open",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[RemediationTaskOut]:
    """Tasks of the caller's jurisdiction, earliest due first; keyset-paginated like every list."""
    rows = await evaluations.tasks(
        principal=principal, status=status, limit=limit + 1, after=_task_keyset(cursor)
    )
    return page_of(
        rows[:limit],
        more=len(rows) > limit,
        cursor_of=lambda last: [last.due_on.isoformat(), str(last.id)],
    )


def _task_keyset(cursor: str | None) -> tuple[date, uuid.UUID] | None:
    if not cursor:
        return None
    due, ident = decode_keyset(cursor, date, uuid.UUID)
    return due, ident


@router.post(
    "/remediation-tasks/{task_id}/resolve",
    summary="办结整改任务 (staff)",
    response_model=RemediationTaskOut,
    responses=problem_responses(
        *AUTH_ERRORS, RemediationTaskNotFound, RemediationTaskAlreadyResolved
    ),
)
async def resolve_task(
    task_id: uuid.UUID, body: RemediationResolve, evaluations: Evaluations, principal: Staff
) -> RemediationTaskOut:
    """Record how a poor rating was remedied, once: a resolved task is not resolved again (409)."""
    return await evaluations.resolve(principal=principal, task_id=task_id, body=body)


@router.get(
    "/evaluations/statistics",
    summary="好差评统计 (staff)",
    response_model=EvaluationStatistics,
    responses=problem_responses(*AUTH_ERRORS),
)
async def evaluation_statistics(evaluations: Evaluations, principal: Staff) -> EvaluationStatistics:
    """Ratings of the caller's jurisdiction."""
    return await evaluations.statistics(principal=principal)

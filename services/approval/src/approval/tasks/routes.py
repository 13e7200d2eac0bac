"""REST API of the review chains: a case's tasks and their moves, consulted departments' opinions,
each member of staff's queue, and delegations (委托). Staff only, within their jurisdiction."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from approval.context import Context
from approval.db import idempotency_keys
from approval.dependencies import Actions, ApplicationById, Reader, Session
from approval.errors import (
    ActionInputInvalid,
    ApplicationNotFound,
    ConcurrentModification,
    IllegalTransition,
    ReviewRequired,
)
from approval.lifecycle import Action
from approval.models import Application
from approval.routes import answer
from approval.schemas import ActionRequest, ApplicationOut, Submitted
from approval.tasks.chain import current_step
from approval.tasks.directory import StaffDirectory
from approval.tasks.errors import (
    ChainStepPending,
    DelegationNotFound,
    DissentUnresolved,
    MoveInvalid,
    NotConsulted,
    NothingToOverride,
    OpinionAlreadyGiven,
    OpinionEscalated,
    OpinionsPending,
    StaffIneligible,
    StaffUnknown,
    TaskAssignedElsewhere,
    TaskClosed,
    TaskNotFound,
)
from approval.tasks.handlers import TaskMoves
from approval.tasks.models import ReviewTask
from approval.tasks.repository import TaskRepository, facts_of
from approval.tasks.schemas import (
    CompleteRequest,
    Decision,
    DelegationCreate,
    DelegationList,
    DelegationOut,
    OpinionRequest,
    OverrideRequest,
    QueuedTask,
    ReturnRequest,
    TaskList,
    TaskOut,
    TaskQueue,
    TransferRequest,
)
from govshared import jurisdictions
from govshared.auth import Principal, Role, require_roles
from govshared.db import AutoCommitRoute
from govshared.idempotency import (
    claim,
    idempotency_key,
    idempotency_openapi,
    key_owner,
    replay,
    request_fingerprint,
)
from govshared.problems import (
    Forbidden,
    IdempotencyKeyReused,
    Unauthenticated,
    ValidationFailed,
    problem_responses,
)

router = APIRouter(prefix="/api/v1", route_class=AutoCommitRoute, tags=["review-chains"])
AUTH = (Unauthenticated, Forbidden, ValidationFailed)
WORKING_ROLES = (Role.REVIEWER, Role.APPROVER, Role.HEAD)
Staff = Annotated[
    Principal,
    Depends(require_roles(Role.ACCEPTOR, *WORKING_ROLES, Role.GOVERNMENT_HEAD, Role.ADMIN)),
]
Worker = Annotated[Principal, Depends(require_roles(*WORKING_ROLES))]
GovernmentHead = Annotated[Principal, Depends(require_roles(Role.GOVERNMENT_HEAD))]
MOVE_ERRORS = (
    *AUTH,
    ApplicationNotFound,
    TaskNotFound,
    TaskClosed,
    TaskAssignedElsewhere,
    ChainStepPending,
    IllegalTransition,
    ConcurrentModification,
    MoveInvalid,
)
DIRECTORY_ERRORS = (StaffUnknown, StaffIneligible)


async def get_moves(context: Context, service: Reader) -> TaskMoves:
    """The task moves of this request, on the application service's session."""
    return TaskMoves(service.session, context.outbox, context.today())


Moves = Annotated[TaskMoves, Depends(get_moves)]


@router.get(
    "/applications/{application_id}/tasks",
    summary="办件的审查环节和征求意见任务 (staff)",
    response_model=TaskList,
    responses=problem_responses(*AUTH, ApplicationNotFound),
)
async def list_tasks(application: ApplicationById, moves: Moves, principal: Staff) -> TaskList:
    """The case's tasks, oldest first, and the step it is at."""
    tasks, current = await moves.tasks_of(application)
    return TaskList(items=[TaskOut.of(t) for t in tasks], current_step=current)


async def _move(
    request: Request,
    service: Reader,
    moves: TaskMoves,
    action: Action,
    application: ApplicationById,
    principal: Principal,
    task_id: uuid.UUID | None,
    body: BaseModel | None,
) -> Response:
    """Take a move; with an ``Idempotency-Key`` a retry gets the first answer back."""
    key = idempotency_key(request)
    owner = key_owner(principal, f"POST {request.url.path}")
    fingerprint = request_fingerprint(
        "POST", request.url.path, body.model_dump(mode="json") if body is not None else {}
    )
    if key is not None:
        stored = await replay(
            service.session, idempotency_keys, owner=owner, key=key, request_hash=fingerprint
        )
        if stored is not None:
            return answer(Submitted(stored.status_code, stored.body, replayed=True))
    task = await moves.move(
        action, principal=principal, application=application, task_id=task_id, body=body
    )
    out = TaskOut.of(task)
    if key is not None and not await claim(
        service.session,
        idempotency_keys,
        owner=owner,
        key=key,
        request_hash=fingerprint,
        status_code=200,
        body=out.model_dump(mode="json"),
    ):
        raise ConcurrentModification("同一幂等键的请求正在处理，请稍后重试")
    return answer(Submitted(200, out.model_dump_json().encode(), replayed=False))


IDEMPOTENT = idempotency_openapi("A retry with the same key returns the first result")


@router.post(
    "/applications/{application_id}/tasks/{task_id}/claim",
    summary="签收任务 (reviewer, approver, head)",
    response_model=TaskOut,
    openapi_extra=IDEMPOTENT,
    responses=problem_responses(IdempotencyKeyReused, *MOVE_ERRORS),
)
async def claim_task(
    request: Request,
    task_id: uuid.UUID,
    application: ApplicationById,
    service: Reader,
    moves: Moves,
    principal: Worker,
) -> Response:
    """Take an open task of one's role (and department): from now on it is one's own."""
    return await _move(
        request, service, moves, Action.CLAIM_TASK, application, principal, task_id, None
    )


@router.post(
    "/applications/{application_id}/tasks/{task_id}/return",
    summary="退回至此前的审查环节 (reviewer, approver)",
    response_model=TaskOut,
    openapi_extra=IDEMPOTENT,
    responses=problem_responses(IdempotencyKeyReused, *MOVE_ERRORS),
)
async def return_task(
    request: Request,
    task_id: uuid.UUID,
    body: ReturnRequest,
    application: ApplicationById,
    service: Reader,
    moves: Moves,
    principal: Worker,
) -> Response:
    """Return the case from its current step to an earlier review step, with a reason; the step
    goes back to whoever completed it (else to its role), and every step after it is done again."""
    return await _move(
        request, service, moves, Action.RETURN_TASK, application, principal, task_id, body
    )


@router.post(
    "/applications/{application_id}/tasks/{task_id}/transfer",
    summary="转办给同一区划、同一角色的其他工作人员",
    response_model=TaskOut,
    openapi_extra=IDEMPOTENT,
    responses=problem_responses(IdempotencyKeyReused, *MOVE_ERRORS, *DIRECTORY_ERRORS),
)
async def transfer_task(
    request: Request,
    task_id: uuid.UUID,
    body: TransferRequest,
    application: ApplicationById,
    service: Reader,
    moves: Moves,
    principal: Worker,
) -> Response:
    """Hand one's task to a colleague of the staff directory holding the task's role in its
    jurisdiction (and department); they act on it with a token of that role."""
    return await _move(
        request, service, moves, Action.TRANSFER_TASK, application, principal, task_id, body
    )


@router.post(
    "/applications/{application_id}/tasks/{task_id}/complete",
    summary="办结当前环节：审查环节记录审查意见，审批环节作出决定",
    response_model=ApplicationOut,
    responses=problem_responses(
        IdempotencyKeyReused,
        *MOVE_ERRORS,
        OpinionsPending,
        OpinionEscalated,
        DissentUnresolved,
        ReviewRequired,
        ActionInputInvalid,
    ),
    openapi_extra=IDEMPOTENT,
)
async def complete_task(
    request: Request,
    task_id: uuid.UUID,
    body: CompleteRequest,
    application: ApplicationById,
    service: Reader,
    actions: Actions,
    moves: Moves,
    principal: Worker,
) -> Response:
    """The same as ``review`` (a review step) or ``approve``/``deny`` (the decision step) on the
    case, for this task: it must be the current step's. A retry with the key of a step completed
    gets its first answer, though the step is no longer current."""
    action = {
        None: Action.REVIEW,
        Decision.APPROVE: Action.APPROVE,
        Decision.DENY: Action.DENY,
    }[body.decision]
    taken = ActionRequest(opinion=body.opinion, reason=body.reason)
    stored = await actions.replayed(
        principal=principal,
        application_id=application.id,
        action=action,
        body=taken,
        idempotency_key=idempotency_key(request),
        step=task_id,
    )
    if stored is not None:
        return answer(stored)
    tasks, _ = await moves.tasks_of(application)
    task = next((t for t in tasks if t.id == task_id), None)
    if task is None:
        raise TaskNotFound()
    current = current_step([facts_of(t) for t in tasks])
    if current is None or current.id != task.id:
        raise (TaskClosed if task.status != "open" else ChainStepPending)(
            f"任务「{task.name}」不是办件当前所在的环节"
        )
    result = await actions.act(
        principal=principal,
        application_id=application.id,
        action=action,
        body=taken,
        idempotency_key=idempotency_key(request),
        step=task_id,
    )
    return answer(result)


@router.post(
    "/applications/{application_id}/opinions",
    summary="被征求意见部门出具会签意见 (token with a department claim)",
    response_model=TaskOut,
    openapi_extra=IDEMPOTENT,
    responses=problem_responses(
        IdempotencyKeyReused, *MOVE_ERRORS, NotConsulted, OpinionAlreadyGiven
    ),
)
async def give_opinion(
    request: Request,
    body: OpinionRequest,
    application: ApplicationById,
    service: Reader,
    moves: Moves,
    principal: Worker,
) -> Response:
    """The department of the caller's token answers: agree, disagree with reasons, or agree with
    conditions."""
    return await _move(
        request, service, moves, Action.GIVE_OPINION, application, principal, None, body
    )


@router.post(
    "/applications/{application_id}/opinions/{task_id}/override",
    summary="本级人民政府负责人对不同意或逾期未答复的意见作出决定 (government_head)",
    response_model=TaskOut,
    openapi_extra=IDEMPOTENT,
    responses=problem_responses(IdempotencyKeyReused, *MOVE_ERRORS, NothingToOverride),
)
async def override_opinion(
    request: Request,
    task_id: uuid.UUID,
    body: OverrideRequest,
    application: ApplicationById,
    service: Reader,
    moves: Moves,
    principal: GovernmentHead,
) -> Response:
    """A documented decision over a department's disagreement (or its overdue opinion under the
    escalation rule): the case may then be approved."""
    return await _move(
        request, service, moves, Action.OVERRIDE_OPINION, application, principal, task_id, body
    )


@router.get(
    "/staff/tasks",
    summary="我的待办：已签收的、委托给我的和本角色可签收的任务，法定期限最早的在前",
    response_model=TaskQueue,
    responses=problem_responses(*AUTH),
)
async def my_tasks(
    context: Context,
    session: Session,
    principal: Worker,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TaskQueue:
    """The caller's queue (the first ``limit``; each task leaves it once done)."""
    repository = TaskRepository(session)
    today = context.today()
    delegators = await repository.delegators_of(
        delegate=principal.subject, role=principal.role.value, today=today
    )
    rows = await repository.queue(
        subject=principal.subject,
        role=principal.role.value,
        department=principal.department,
        jurisdiction_prefix=jurisdictions.scope_prefix(principal.jurisdiction or ""),
        delegators=delegators,
        limit=limit,
    )
    return TaskQueue(items=[_queued(task, app, due) for task, app, due in rows])


def _queued(task: ReviewTask, application: Application, due: date | None) -> QueuedTask:
    return QueuedTask(
        **TaskOut.of(task).model_dump(),
        application_no=application.application_no,
        item_code=application.item_code,
        item_name=application.item_name,
        applicant_name=application.applicant_name,
        statutory_due_on=due,
    )


@router.post(
    "/delegations",
    summary="委托：休假等期间由同事办理本人任务",
    status_code=201,
    response_model=DelegationOut,
    responses=problem_responses(*AUTH, MoveInvalid, *DIRECTORY_ERRORS),
)
async def create_delegation(
    context: Context, body: DelegationCreate, session: Session, principal: Worker
) -> DelegationOut:
    """The caller's tasks of its role are handled by ``delegate`` from ``starts_on`` to
    ``ends_on`` (the delegate acts with a token of the same role; each act names the delegator)."""
    today = context.today()
    if body.delegate == principal.subject:
        raise MoveInvalid("不能委托给本人")
    if body.ends_on < body.starts_on or body.ends_on < today:
        raise MoveInvalid("委托期限须至今天或以后结束，且结束日不早于开始日")
    if (body.ends_on - body.starts_on).days > 366:
        raise MoveInvalid("委托期限至多一年")
    # The delegate handles the delegator's tasks of their role: the directory must say they
    # hold it, in a jurisdiction covering the delegator's (and in the delegator's department).
    await StaffDirectory(session).eligible(
        body.delegate,
        role=principal.role.value,
        jurisdiction=principal.jurisdiction or "",
        department=principal.department,
        what="委托",
    )
    row = {
        "id": uuid.uuid4(),
        "delegator": principal.subject,
        "delegate": body.delegate,
        "role": principal.role.value,
        "jurisdiction": principal.jurisdiction,
        "department": principal.department,
        "starts_on": body.starts_on,
        "ends_on": body.ends_on,
        "reason": body.reason,
        "created_at": datetime.now(UTC),
        "revoked_at": None,
        "revoked_by": None,
    }
    await TaskRepository(session).add_delegation(row)
    return DelegationOut.model_validate(row)


@router.get(
    "/delegations",
    summary="我给出和收到的委托",
    response_model=DelegationList,
    responses=problem_responses(*AUTH),
)
async def list_delegations(session: Session, principal: Worker) -> DelegationList:
    """The caller's delegations, newest first."""
    found = await TaskRepository(session).delegations_of(principal.subject)
    return DelegationList(items=[DelegationOut.model_validate(d) for d in found])


@router.post(
    "/delegations/{delegation_id}/revoke",
    summary="撤销委托 (the delegator, or the head of the jurisdiction)",
    response_model=DelegationOut,
    responses=problem_responses(*AUTH, DelegationNotFound, ConcurrentModification),
)
async def revoke_delegation(
    delegation_id: uuid.UUID, session: Session, principal: Worker
) -> DelegationOut:
    """End a delegation now; acts already taken under it stay in the trail with its id."""
    repository = TaskRepository(session)
    delegation = await repository.delegation(delegation_id)
    if delegation is None:
        raise DelegationNotFound()
    own = principal.subject in (delegation.delegator, delegation.delegate)
    head = principal.role is Role.HEAD and jurisdictions.covers(
        principal.jurisdiction, delegation.jurisdiction
    )
    if not (own or head):
        raise DelegationNotFound()
    if not await repository.revoke(delegation_id, by=principal.subject, at=datetime.now(UTC)):
        raise ConcurrentModification("委托已撤销")
    changed = await repository.delegation(delegation_id)
    return DelegationOut.model_validate(changed)

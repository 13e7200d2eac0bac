"""Approval's REST API (``/api/v1``). Routes stay thin: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from approval.calendar.errors import (
    ExtensionAlreadyGranted,
    ExtensionNotAllowed,
    ExtensionTooLong,
    InvalidPause,
    PauseReasonNotAllowed,
)
from approval.dependencies import ApplicationById, Reader, get_actions, get_submissions
from approval.errors import (
    ActionInputInvalid,
    AlreadyExtended,
    ApplicationNotFound,
    ApprovalCancelled,
    ConcurrentModification,
    DeemedAccepted,
    IllegalTransition,
    ItemNotFound,
    MaterialsIncomplete,
    NotInstantItem,
    ReviewRequired,
    SupplementNotInFirstRequest,
)
from approval.lifecycle import Action
from approval.materials.schemas import ToleranceFollowUp, ToleranceOut
from approval.repository import NO_DUE_DATE
from approval.schemas import (
    ActionRequest,
    ApplicationCreate,
    ApplicationOut,
    AuditEventOut,
    ChainVerification,
    Submitted,
)
from approval.signing.errors import (
    LegalRepresentativeSignatureRequired,
    SignatureRequired,
    SigningSessionNotFound,
    SigningSessionReplayed,
)
from govshared import applications
from govshared.applications import ApplicationState
from govshared.auth import STAFF_ROLES, Principal, Role, get_principal, require_roles
from govshared.db import AutoCommitRoute
from govshared.idempotency import idempotency_key, idempotency_openapi
from govshared.pagination import InvalidCursor, Page, decode_keyset, page_of
from govshared.problems import (
    DependencyUnavailable,
    Forbidden,
    IdempotencyKeyReused,
    Unauthenticated,
    ValidationFailed,
    problem_responses,
)

router = APIRouter(prefix="/api/v1", route_class=AutoCommitRoute)
AUTH_ERRORS = (Unauthenticated, Forbidden)

# The submission and the lifecycle actions build their service in the endpoint
# (``get_submissions(request)``, ``get_actions(request)``) rather than through ``Depends``: FastAPI
# solves each sub-dependency in a generic recursive pass (parameter lists, cache keys, generator
# and security checks) that cost about 72,000 instructions a request for what is only plumbing
# (``make bench-instructions``). The caller's principal stays a dependency: it is the security
# scheme the OpenAPI document declares.


@router.post(
    "/applications",
    tags=["applications"],
    summary="提交申请 (enterprise)",
    status_code=201,
    response_model=ApplicationOut,
    responses=problem_responses(
        *AUTH_ERRORS,
        ItemNotFound,
        ApprovalCancelled,
        IdempotencyKeyReused,
        ValidationFailed,
        DependencyUnavailable,
        SignatureRequired,
        LegalRepresentativeSignatureRequired,
        SigningSessionNotFound,
        SigningSessionReplayed,
    ),
    openapi_extra=idempotency_openapi(
        "A retry with the same key returns the first result, never a second application"
    ),
)
async def submit_application(
    request: Request,
    body: ApplicationCreate,
    principal: Annotated[Principal, Depends(require_roles(Role.ENTERPRISE))],
) -> Response:
    """Submit an application for a catalogue item; the applicant is the token's enterprise."""
    service = await get_submissions(request)  # not a Depends (see above)
    result = await service.submit(
        principal=principal, body=body, idempotency_key=idempotency_key(request)
    )
    return answer(result)


def answer(result: Submitted) -> Response:
    """The response to a submission or an action; a replay says so in ``Idempotent-Replayed``.

    A fresh result comes serialised by pydantic straight to JSON (one pass, before the write), a
    stored one as stored.
    """
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    if isinstance(result.body, bytes):
        return Response(
            result.body,
            status_code=result.status_code,
            media_type="application/json",
            headers=headers,
        )
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)


# The write routes come first, the commonest first: FastAPI tries a request against each route
# in turn, and a route it passes over costs about as much as a small dependency.
ACTION_PATHS: dict[Action, tuple[str, str]] = {
    Action.ACCEPT: ("accept", "受理 (acceptor)"),
    Action.REVIEW: ("review", "审查 (reviewer, approver)"),
    Action.APPROVE: ("approve", "准予许可 (approver)"),
    Action.DENY: ("deny", "不予许可 (approver)"),
    Action.REJECT: ("reject", "不予受理 (acceptor)"),
    Action.REQUEST_SUPPLEMENT: ("supplement-request", "一次性告知补正 (acceptor)"),
    Action.SUPPLEMENT: ("supplement", "申请人补正 (enterprise)"),
    Action.PAUSE: ("pause", "特别程序，不计入期限 (reviewer, approver)"),
    Action.RESUME: ("resume", "结束特别程序 (reviewer, approver)"),
    Action.EXTEND: ("extend", "延长审批期限一次 (head; government_head for joint handling)"),
    Action.WITHDRAW: ("withdraw", "撤回申请 (enterprise)"),
    Action.INSTANT_DECISION: ("instant-decision", "即办件当场受理并决定 (acceptor, approver)"),
}


def _action_endpoint(action: Action) -> Any:
    async def endpoint(
        request: Request,
        application_id: uuid.UUID,
        body: ActionRequest,
        principal: Annotated[Principal, Depends(get_principal)],
    ) -> Response:
        service = await get_actions(request)  # not a Depends (see above)
        result = await service.act(
            principal=principal,
            application_id=application_id,
            action=action,
            body=body,
            idempotency_key=idempotency_key(request),
        )
        return answer(result)

    endpoint.__name__ = f"application_{action.value}"
    endpoint.__doc__ = f"{ACTION_PATHS[action][1]}: allowed only from the states the law allows."
    return endpoint


for _action, (_path, _summary) in ACTION_PATHS.items():
    router.add_api_route(
        f"/applications/{{application_id}}/{_path}",
        _action_endpoint(_action),
        methods=["POST"],
        tags=["applications"],
        summary=_summary,
        response_model=ApplicationOut,
        openapi_extra=idempotency_openapi("A retry with the same key returns the first result"),
        responses=problem_responses(
            *AUTH_ERRORS,
            ApplicationNotFound,
            IllegalTransition,
            DeemedAccepted,
            MaterialsIncomplete,
            ReviewRequired,
            ConcurrentModification,
            AlreadyExtended,
            NotInstantItem,
            SupplementNotInFirstRequest,
            ActionInputInvalid,
            InvalidPause,
            PauseReasonNotAllowed,
            ExtensionAlreadyGranted,
            ExtensionNotAllowed,
            ExtensionTooLong,
            SignatureRequired,
            SigningSessionNotFound,
            SigningSessionReplayed,
            IdempotencyKeyReused,
            ValidationFailed,
        ),
    )


@router.get(
    "/applications",
    tags=["applications"],
    summary="我的申请 (enterprise)",
    response_model=Page[ApplicationOut],
    responses=problem_responses(InvalidCursor, *AUTH_ERRORS, ValidationFailed),
)
async def list_my_applications(
    service: Reader,
    principal: Annotated[Principal, Depends(require_roles(Role.ENTERPRISE))],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> Page[ApplicationOut]:
    """The enterprise's own applications, newest first."""
    rows = await service.list_own(principal=principal, limit=limit + 1, after=_keyset(cursor))
    return page_of(
        [ApplicationOut.model_validate(await service.effective(r)) for r in rows[:limit]],
        more=len(rows) > limit,
        cursor_of=lambda last: [last.submitted_at.isoformat(), str(last.id)],
    )


# The work queue's default: every state still before the authority, in the lifecycle's order.
OPEN_STATES = [s for s in ApplicationState if s in applications.OPEN_STATES]


def _keyset(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    return decode_keyset(cursor, datetime, uuid.UUID) if cursor else None


def _queue_keyset(cursor: str | None) -> tuple[date, datetime, uuid.UUID] | None:
    return decode_keyset(cursor, date, datetime, uuid.UUID) if cursor else None


@router.get(
    "/staff/applications",
    tags=["staff"],
    summary="工作台：本辖区办件 (staff)",
    response_model=Page[ApplicationOut],
    responses=problem_responses(InvalidCursor, *AUTH_ERRORS, ValidationFailed),
)
async def staff_queue(
    service: Reader,
    principal: Annotated[Principal, Depends(require_roles(*STAFF_ROLES))],
    state: Annotated[list[ApplicationState] | None, Query(description="默认：全部在办状态")] = None,
    item_code: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[
        str | None, Query(max_length=100, description="办件编号、信用代码或申请人名称")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> Page[ApplicationOut]:
    """Applications of the caller's jurisdiction, earliest due date first, then oldest first."""
    rows = await service.staff_queue(
        principal=principal,
        states=state or OPEN_STATES,
        item_code=item_code,
        keyword=q,
        after=_queue_keyset(cursor),
        limit=limit + 1,
    )
    page = rows[:limit]
    # The cursor is the last row's stored sort key, not its effective due date (a case deemed
    # accepted by law but not yet by the timer shows its decision due date, yet sorts as stored).
    return page_of(
        [ApplicationOut.model_validate(await service.effective(r)) for r in page],
        more=len(rows) > limit,
        cursor_of=lambda _: [
            (page[-1].due_on or NO_DUE_DATE).isoformat(),
            page[-1].submitted_at.isoformat(),
            str(page[-1].id),
        ],
    )


@router.get(
    "/staff/tolerated-materials",
    tags=["staff"],
    summary="容缺受理跟踪：待补交的材料 (staff)",
    response_model=list[ToleranceFollowUp],
    responses=problem_responses(*AUTH_ERRORS, ValidationFailed),
)
async def tolerated_materials(
    service: Reader,
    principal: Annotated[Principal, Depends(require_roles(*STAFF_ROLES))],
    overdue: Annotated[bool, Query(description="只看已过补交期限的")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ToleranceFollowUp]:
    """Materials accepted as missing (容缺受理) and not yet delivered, earliest date first."""
    today = service.today()
    return [
        ToleranceFollowUp(
            **ToleranceOut.model_validate(t).model_dump(), overdue=t.deliver_by < today
        )
        for t in await service.follow_ups(principal=principal, overdue=overdue, limit=limit)
    ]


@router.get(
    "/applications/{application_id}",
    tags=["applications"],
    summary="申请详情",
    response_model=ApplicationOut,
    responses=problem_responses(*AUTH_ERRORS, ApplicationNotFound),
    dependencies=[Depends(require_roles(Role.ENTERPRISE, *STAFF_ROLES))],
)
async def get_application(application: ApplicationById) -> ApplicationOut:
    """One application, for its applicant or the staff of its jurisdiction."""
    return ApplicationOut.model_validate(application)


@router.get(
    "/applications/{application_id}/events",
    tags=["applications"],
    summary="办件进度 (audit trail)",
    response_model=list[AuditEventOut],
    responses=problem_responses(*AUTH_ERRORS, ApplicationNotFound),
    dependencies=[Depends(require_roles(Role.ENTERPRISE, *STAFF_ROLES))],
)
async def application_events(application: ApplicationById, service: Reader) -> list[AuditEventOut]:
    """Every transition of the application, oldest first."""
    return [AuditEventOut.model_validate(e) for e in await service.events(application=application)]


@router.get(
    "/applications/{application_id}/events/verify",
    tags=["applications"],
    summary="校验办件记录哈希链",
    response_model=ChainVerification,
    responses=problem_responses(*AUTH_ERRORS, ApplicationNotFound),
    dependencies=[Depends(require_roles(Role.ENTERPRISE, *STAFF_ROLES))],
)
async def verify_application_events(
    application: ApplicationById, service: Reader
) -> ChainVerification:
    """Re-hash the audit trail and report the first broken link, if any."""
    return await service.verify_chain(application=application)

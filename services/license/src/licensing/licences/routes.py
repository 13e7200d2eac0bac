"""The licence register's REST API. Routes stay thin: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from govshared.auth import STAFF_ROLES, Principal, Role, require_roles
from govshared.consumer import EVENT_ERRORS, EVENTS_OPENAPI, read_events
from govshared.contracts import LicenceSummary
from govshared.db import AutoCommitRoute
from govshared.pagination import InvalidCursor, Page, decode_keyset, page_of
from govshared.problems import (
    Forbidden,
    Unauthenticated,
    ValidationFailed,
    problem_responses,
)
from licensing import clock
from licensing.catalogue.schemas import JURISDICTION_PATTERN
from licensing.dependencies import (
    Consumer,
    EnterpriseUscc,
    FollowUp,
    LicenceByNo,
    Lifecycle,
    ManagedLicence,
    Presenter,
    ReadableLicence,
    Register,
    Statuses,
    TaskById,
    staff_scope,
)
from licensing.errors import (
    ChangeNeedsHolderApplication,
    HearingRightsNotRespected,
    HolderNameChangeNeedsApplication,
    InvalidUscc,
    LicenceNotActive,
    LicenceNotFound,
    NotYourEnterprise,
    OutsideJurisdiction,
    PenaltyNoticeRequired,
    RectificationDeadlineInvalid,
    RectificationPeriodRunning,
    RenewalDecidedInApproval,
    RenewalNotNeeded,
    RenewalNotPending,
    RenewalTooLate,
    RevocationNeedsDecider,
    VerificationAlreadyDecided,
    VerificationTaskNotFound,
)
from licensing.licences.follow_up import REVOKERS
from licensing.licences.presenters import licence_summary
from licensing.licences.schemas import (
    CancellationBody,
    CommitmentEligibility,
    CreditRecordCreate,
    CreditRecordOut,
    EnterpriseReformStatus,
    EventIntake,
    LicenceChange,
    LicenceDetail,
    LicenceOut,
    LicenceTypeOut,
    PenaltyBody,
    PenaltyNotice,
    ReasonBody,
    RenewalDecision,
    RevocationBody,
    VerificationDecision,
    VerificationTaskOut,
    WithdrawalBody,
)
from licensing.models import CITY_WIDE, LicenceStatus, VerificationStatus

router = APIRouter(prefix="/api/v1", route_class=AutoCommitRoute)
AUTH_ERRORS = (Unauthenticated, Forbidden)
Decider = Annotated[Principal, Depends(require_roles(*REVOKERS))]
Limit = Annotated[int, Query(ge=1, le=100)]


def _after_no(cursor: str | None) -> str | None:
    return decode_keyset(cursor, str)[0] if cursor else None


@router.get(
    "/licence-types",
    tags=["licences"],
    summary="证照类型目录 (public)",
    response_model=list[LicenceTypeOut],
)
async def list_licence_types(register: Register) -> list[LicenceTypeOut]:
    """The licence type catalogue."""
    return [LicenceTypeOut.model_validate(t) for t in await register.licence_types()]


@router.get(
    "/licences",
    tags=["licences"],
    summary="电子证照库 (staff: their jurisdiction; service)",
    response_model=Page[LicenceOut],
    responses=problem_responses(InvalidCursor, *AUTH_ERRORS, ValidationFailed),
)
async def list_licences(
    register: Register,
    presenter: Presenter,
    principal: Annotated[Principal, Depends(require_roles(Role.SERVICE, *STAFF_ROLES))],
    status: LicenceStatus | None = None,
    limit: Limit = 20,
    cursor: str | None = None,
) -> Page[LicenceOut]:
    """Current licences of the register, by number."""
    rows = await register.list(
        jurisdiction_prefix=staff_scope(principal),
        status=status,
        after_no=_after_no(cursor),
        limit=limit + 1,
    )
    return page_of(
        await presenter.outs(rows[:limit]),
        more=len(rows) > limit,
        cursor_of=lambda last: [last.licence_no],
    )


@router.get(
    "/licences/{licence_no}",
    tags=["licences"],
    summary="证照详情及版本历史 (holder, staff of its jurisdiction, service)",
    response_model=LicenceDetail,
    responses=problem_responses(*AUTH_ERRORS, LicenceNotFound),
    dependencies=[Depends(require_roles(Role.ENTERPRISE, Role.SERVICE, *STAFF_ROLES))],
)
async def get_licence(licence: ReadableLicence, presenter: Presenter) -> LicenceDetail:
    """A licence with its versions and history."""
    return await presenter.detail(licence)


LIFECYCLE_ERRORS = (
    *AUTH_ERRORS,
    OutsideJurisdiction,
    LicenceNotFound,
    LicenceNotActive,
    ValidationFailed,
)


@router.post(
    "/licences/{licence_no}/changes",
    tags=["licence lifecycle"],
    summary="依第八条变更许可 (approver, head, admin): only with legal basis and compensation",
    response_model=LicenceOut,
    responses=problem_responses(
        *LIFECYCLE_ERRORS, ChangeNeedsHolderApplication, HolderNameChangeNeedsApplication
    ),
)
async def change_licence(
    body: LicenceChange,
    licence: ManagedLicence,
    lifecycle: Lifecycle,
    presenter: Presenter,
    principal: Decider,
) -> LicenceOut:
    """The authority's own change (Art. 8); any other change is the holder's application (Art. 49,
    an approval application with business_type change)."""
    return await presenter.out(await lifecycle.change(licence, body=body, actor=principal))


@router.post(
    "/licences/{licence_no}/renewal",
    tags=["licence lifecycle"],
    summary="申请延续 (holder; no later than 30 days before expiry, Art. 50)",
    response_model=LicenceOut,
    responses=problem_responses(*LIFECYCLE_ERRORS, RenewalTooLate, RenewalNotNeeded),
)
async def request_renewal(
    licence: LicenceByNo,
    lifecycle: Lifecycle,
    presenter: Presenter,
    principal: Annotated[Principal, Depends(require_roles(Role.ENTERPRISE))],
) -> LicenceOut:
    """Apply for renewal; applied for in time and undecided at expiry, it is deemed granted."""
    return await presenter.out(await lifecycle.request_renewal(licence, actor=principal))


@router.post(
    "/licences/{licence_no}/renewal/decision",
    tags=["licence lifecycle"],
    summary="延续决定 (approver, head, admin)",
    response_model=LicenceOut,
    responses=problem_responses(*LIFECYCLE_ERRORS, RenewalNotPending, RenewalDecidedInApproval),
)
async def decide_renewal(
    body: RenewalDecision,
    licence: ManagedLicence,
    lifecycle: Lifecycle,
    presenter: Presenter,
    principal: Decider,
) -> LicenceOut:
    """Grant (new version) or refuse a pending renewal requested here; one filed as an approval
    application is decided in approval, whose decision this service applies (409 here)."""
    decided = await lifecycle.decide_renewal(
        licence, grant=body.grant, reason=body.reason, actor=principal
    )
    return await presenter.out(decided)


PENALTY_ERRORS = (*LIFECYCLE_ERRORS, HearingRightsNotRespected, PenaltyNoticeRequired)


@router.post(
    "/licences/{licence_no}/penalty-notices",
    tags=["licence lifecycle"],
    summary="行政处罚事先告知 (approver, head, admin): the intended 吊销/暂扣 and the right to a hearing",
    response_model=LicenceOut,
    responses=problem_responses(*PENALTY_ERRORS),
)
async def notify_penalty(
    body: PenaltyNotice,
    licence: ManagedLicence,
    lifecycle: Lifecycle,
    presenter: Presenter,
    principal: Decider,
) -> LicenceOut:
    """Serve the notice of an intended penalty through notify (行政处罚法 Art. 44); the decision
    follows after the hearing or its deadline."""
    return await presenter.out(
        await lifecycle.acts.notify_penalty(licence, body=body, actor=principal.subject)
    )


@router.post(
    "/licences/{licence_no}/suspension",
    tags=["licence lifecycle"],
    summary="暂扣许可证件 (approver, head, admin): a penalty, after the notice of rights",
    response_model=LicenceOut,
    responses=problem_responses(*PENALTY_ERRORS),
)
async def suspend_licence(
    body: PenaltyBody,
    licence: ManagedLicence,
    lifecycle: Lifecycle,
    presenter: Presenter,
    principal: Decider,
) -> LicenceOut:
    """Suspend a valid licence as a penalty (行政处罚法: notice of rights, hearing, decision)."""
    return await presenter.out(await lifecycle.suspend(licence, body=body, actor=principal))


@router.post(
    "/licences/{licence_no}/reinstatement",
    tags=["licence lifecycle"],
    summary="恢复证照 (approver, head, admin)",
    response_model=LicenceOut,
    responses=problem_responses(*LIFECYCLE_ERRORS),
)
async def reinstate_licence(
    body: ReasonBody,
    licence: ManagedLicence,
    lifecycle: Lifecycle,
    presenter: Presenter,
    principal: Decider,
) -> LicenceOut:
    """Make a suspended licence valid again."""
    reinstated = await lifecycle.reinstate(licence, reason=body.reason, actor=principal)
    return await presenter.out(reinstated)


@router.post(
    "/licences/{licence_no}/revocation",
    tags=["licence lifecycle"],
    summary="撤销行政许可 (approver, head, admin): Art. 69, the grant was unlawful",
    response_model=LicenceOut,
    responses=problem_responses(*LIFECYCLE_ERRORS),
)
async def revoke_licence(
    body: RevocationBody,
    licence: ManagedLicence,
    lifecycle: Lifecycle,
    presenter: Presenter,
    principal: Decider,
) -> LicenceOut:
    """撤销 with its legal basis, then 注销 (Art. 70(4))."""
    revoked = await lifecycle.acts.revoke(
        licence,
        legal_basis=body.legal_basis,
        reason=body.reason,
        compensation_note=body.compensation_note,
        actor=principal.subject,
    )
    return await presenter.out(revoked)


@router.post(
    "/licences/{licence_no}/withdrawal",
    tags=["licence lifecycle"],
    summary="撤回行政许可 (approver, head, admin): Art. 8, with the compensation told",
    response_model=LicenceOut,
    responses=problem_responses(*LIFECYCLE_ERRORS),
)
async def withdraw_licence(
    body: WithdrawalBody,
    licence: ManagedLicence,
    lifecycle: Lifecycle,
    presenter: Presenter,
    principal: Decider,
) -> LicenceOut:
    """撤回 because the law or the objective circumstances changed, then 注销 (Art. 70(4))."""
    withdrawn = await lifecycle.acts.withdraw(licence, body=body, actor=principal.subject)
    return await presenter.out(withdrawn)


@router.post(
    "/licences/{licence_no}/penalty-revocation",
    tags=["licence lifecycle"],
    summary="吊销许可证件 (approver, head, admin): a penalty, after the notice of rights",
    response_model=LicenceOut,
    responses=problem_responses(*PENALTY_ERRORS),
)
async def revoke_licence_as_penalty(
    body: PenaltyBody,
    licence: ManagedLicence,
    lifecycle: Lifecycle,
    presenter: Presenter,
    principal: Decider,
) -> LicenceOut:
    """吊销 citing the penalty decision (行政处罚法), then 注销 (Art. 70(4))."""
    revoked = await lifecycle.acts.revoke_as_penalty(licence, body=body, actor=principal.subject)
    return await presenter.out(revoked)


@router.post(
    "/licences/{licence_no}/cancellation",
    tags=["licence lifecycle"],
    summary="注销 (approver, head, admin): Art. 70's grounds of the holder's end or force majeure",
    response_model=LicenceOut,
    responses=problem_responses(*LIFECYCLE_ERRORS),
)
async def cancel_licence(
    body: CancellationBody,
    licence: ManagedLicence,
    lifecycle: Lifecycle,
    presenter: Presenter,
    principal: Decider,
) -> LicenceOut:
    """注销 on the holder's termination or death, force majeure or another statute (a holder's own
    注销 is its approved application with business_type cancel)."""
    cancelled = await lifecycle.acts.cancel(
        licence,
        ground=body.ground,
        reason=body.reason,
        legal_basis=body.legal_basis,
        actor=principal.subject,
    )
    return await presenter.out(cancelled)


@router.get(
    "/verification-tasks",
    tags=["commitment follow-up"],
    summary="告知承诺核查任务 (staff: their jurisdiction)",
    response_model=Page[VerificationTaskOut],
    responses=problem_responses(InvalidCursor, *AUTH_ERRORS, ValidationFailed),
)
async def list_verification_tasks(
    follow_up: FollowUp,
    principal: Annotated[Principal, Depends(require_roles(*STAFF_ROLES))],
    status: Annotated[
        VerificationStatus | None,
        Query(description="Default: open and rectifying (the tasks still to verify)"),
    ] = None,
    limit: Limit = 20,
    cursor: str | None = None,
) -> Page[VerificationTaskOut]:
    """Tasks by due date."""
    after = decode_keyset(cursor, date, uuid.UUID) if cursor else None
    rows = await follow_up.tasks(
        jurisdiction_prefix=staff_scope(principal), status=status, after=after, limit=limit + 1
    )
    return page_of(
        [VerificationTaskOut.model_validate(r) for r in rows[:limit]],
        more=len(rows) > limit,
        cursor_of=lambda last: [last.due_on.isoformat(), str(last.id)],
    )


@router.post(
    "/verification-tasks/{task_id}/result",
    tags=["commitment follow-up"],
    summary="核查结论 (reviewer, approver, head, admin): unmet conditions are ordered put right "
    "by a deadline; a false commitment, or conditions unmet after it, revoke the licence "
    "(approver, head, admin only: 403 revocation_needs_decider)",
    response_model=VerificationTaskOut,
    responses=problem_responses(
        *AUTH_ERRORS,
        OutsideJurisdiction,
        RevocationNeedsDecider,
        VerificationTaskNotFound,
        VerificationAlreadyDecided,
        RectificationDeadlineInvalid,
        RectificationPeriodRunning,
        LicenceNotActive,
        ValidationFailed,
    ),
)
async def decide_verification(
    body: VerificationDecision,
    task: TaskById,
    follow_up: FollowUp,
    principal: Annotated[
        Principal, Depends(require_roles(Role.REVIEWER, Role.APPROVER, Role.HEAD, Role.ADMIN))
    ],
) -> VerificationTaskOut:
    """Record the verification's outcome."""
    decided = await follow_up.decide_verification(task, body=body, actor=principal)
    return VerificationTaskOut.model_validate(decided)


ENTERPRISE_ERRORS = (*AUTH_ERRORS, NotYourEnterprise, InvalidUscc)


@router.get(
    "/enterprises/{uscc}/licences",
    tags=["enterprises"],
    summary="企业持有的证照 (service, staff; the enterprise itself)",
    response_model=Page[LicenceSummary],
    responses=problem_responses(InvalidCursor, *ENTERPRISE_ERRORS, ValidationFailed),
    dependencies=[Depends(require_roles(Role.ENTERPRISE, Role.SERVICE, *STAFF_ROLES))],
)
async def enterprise_licences(
    uscc: EnterpriseUscc,
    register: Register,
    status: LicenceStatus | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> Page[LicenceSummary]:
    """The enterprise's current licences (减证便民: check here instead of asking for paper)."""
    rows = await register.list(
        holder_uscc=uscc, status=status, after_no=_after_no(cursor), limit=limit + 1
    )
    return page_of(
        [licence_summary(r) for r in rows[:limit]],
        more=len(rows) > limit,
        cursor_of=lambda last: [last.licence_no],
    )


@router.get(
    "/enterprises/{uscc}/commitment-eligibility",
    tags=["enterprises"],
    summary="能否适用告知承诺 (service, staff)",
    response_model=CommitmentEligibility,
    responses=problem_responses(*ENTERPRISE_ERRORS),
    dependencies=[Depends(require_roles(Role.SERVICE, *STAFF_ROLES))],
)
async def commitment_eligibility(
    uscc: EnterpriseUscc, follow_up: FollowUp
) -> CommitmentEligibility:
    """False commitments and serious bad credit bar the 告知承诺 route."""
    return await follow_up.commitment_eligibility(uscc)


@router.post(
    "/enterprises/{uscc}/credit-records",
    tags=["enterprises"],
    summary="登记失信记录 (admin)",
    status_code=201,
    response_model=CreditRecordOut,
    responses=problem_responses(*ENTERPRISE_ERRORS, ValidationFailed),
)
async def add_credit_record(
    uscc: EnterpriseUscc,
    body: CreditRecordCreate,
    follow_up: FollowUp,
    principal: Annotated[Principal, Depends(require_roles(Role.ADMIN))],
) -> CreditRecordOut:
    """Record bad credit from another source."""
    return await follow_up.add_credit_record(uscc=uscc, body=body, actor=principal)


@router.get(
    "/enterprises/{uscc}/reform-status",
    tags=["enterprises"],
    summary="企业的证照分离改革状态 (the enterprise itself, service, staff)",
    response_model=EnterpriseReformStatus,
    responses=problem_responses(*ENTERPRISE_ERRORS, ValidationFailed),
    dependencies=[Depends(require_roles(Role.ENTERPRISE, Role.SERVICE, *STAFF_ROLES))],
)
async def reform_status(
    uscc: EnterpriseUscc,
    statuses: Statuses,
    jurisdiction: Annotated[str, Query(pattern=JURISDICTION_PATTERN)] = CITY_WIDE,
    on: date | None = None,
) -> EnterpriseReformStatus:
    """Which permits it holds, no longer needs, may file or commit for, or has pending."""
    return await statuses.reform_status(
        uscc=uscc, jurisdiction=jurisdiction, on=on or clock.today()
    )


@router.post(
    "/events",
    tags=["events"],
    summary="CloudEvents consumer (service)",
    response_model=EventIntake,
    responses=problem_responses(*AUTH_ERRORS, *EVENT_ERRORS),
    dependencies=[Depends(require_roles(Role.SERVICE))],
    openapi_extra=EVENTS_OPENAPI,
)
async def receive_events(request: Request, consumer: Consumer) -> EventIntake:
    """Apply approval's events exactly once each (inbox in the same transaction)."""
    return await consumer.consume(await read_events(request))

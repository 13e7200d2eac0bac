"""The REST API of 双随机、一公开 inspections. Routes stay thin: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, UploadFile

from govshared.auth import STAFF_ROLES, Principal, Role, require_roles
from govshared.db import AutoCommitRoute
from govshared.pagination import InvalidCursor, Page, decode_keyset, page_of
from govshared.problems import (
    Forbidden,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from licensing.dependencies import (
    Context,
    Session,
    check_holder_jurisdiction,
    check_jurisdiction,
    staff_scope,
)
from licensing.errors import (
    EvidenceRequired,
    InspectionAlreadyRecorded,
    InspectionNotFound,
    InspectionPlanNotFound,
    InspectorConflictExists,
    NotEnoughInspectors,
    OutsideJurisdiction,
    PlanAlreadyDrawn,
    PlanNotDrawn,
    RectificationDeadlineInvalid,
    RectificationPeriodRunning,
)
from licensing.inspections.models import Inspection, InspectionPlan, InspectionStatus
from licensing.inspections.plans import PlanService
from licensing.inspections.reports import ReportService
from licensing.inspections.repository import InspectionRepository
from licensing.inspections.results import ResultService
from licensing.inspections.schemas import (
    ITEM_CODE_PATTERN,
    ConflictCreate,
    ConflictOut,
    DrawInputs,
    EvidenceOut,
    InspectionDetail,
    InspectionOut,
    PlanCreate,
    PlanOut,
    PlanRecordOut,
    PlanStatistics,
    ProposalOut,
    PublicPlan,
    PublicResult,
    ReplayOut,
    ResultCreate,
)

router = APIRouter(prefix="/api/v1", route_class=AutoCommitRoute)
public_router = APIRouter(prefix="/api/v1", route_class=AutoCommitRoute)
AUTH_ERRORS = (Unauthenticated, Forbidden)
# Supervision is planned and drawn by those who decide; results are recorded by inspecting staff.
PLANNERS = (Role.APPROVER, Role.HEAD, Role.ADMIN)
RECORDERS = (Role.REVIEWER, Role.APPROVER, Role.HEAD, Role.ADMIN)
Planner = Annotated[Principal, Depends(require_roles(*PLANNERS))]
Recorder = Annotated[Principal, Depends(require_roles(*RECORDERS))]
Staff = Annotated[Principal, Depends(require_roles(*STAFF_ROLES))]
Limit = Annotated[int, Query(ge=1, le=100)]


async def get_plan_service(context: Context, session: Session) -> PlanService:
    """Plans and draws, bound to this request's session."""
    settings = context.settings
    return PlanService(
        session,
        outbox=context.outbox,
        default_ratios=settings.inspection_ratios,
        due_working_days=settings.inspection_due_working_days,
    )


async def get_result_service(context: Context, session: Session) -> ResultService:
    """Inspections and their results, bound to this request's session."""
    settings = context.settings
    return ResultService(
        session,
        outbox=context.outbox,
        storage=context.evidence_storage,
        publication_working_days=settings.inspection_publication_working_days,
        reinspection_working_days=settings.reinspection_working_days,
        max_upload_bytes=settings.max_upload_bytes,
    )


async def get_report_service(session: Session) -> ReportService:
    """Published results and statistics, bound to this request's session."""
    return ReportService(session)


async def get_repository(session: Session) -> InspectionRepository:
    """The inspection repository of this request's session (lookups of path parameters)."""
    return InspectionRepository(session)


Plans = Annotated[PlanService, Depends(get_plan_service)]
Results = Annotated[ResultService, Depends(get_result_service)]
Reports = Annotated[ReportService, Depends(get_report_service)]
Repository = Annotated[InspectionRepository, Depends(get_repository)]


async def plan_by_id(
    plan_id: uuid.UUID, repository: Repository, principal: Staff
) -> InspectionPlan:
    """The plan in the path, within the caller's jurisdiction."""
    plan = await repository.plan(plan_id)
    if plan is None:
        raise InspectionPlanNotFound()
    check_jurisdiction(principal, plan.jurisdiction)
    return plan


PlanById = Annotated[InspectionPlan, Depends(plan_by_id)]


async def inspection_by_id(
    inspection_id: uuid.UUID, repository: Repository, principal: Staff
) -> Inspection:
    """The inspection in the path, within the caller's jurisdiction."""
    inspection = await repository.inspection(inspection_id)
    if inspection is None:
        raise InspectionNotFound()
    check_jurisdiction(principal, inspection.jurisdiction)
    return inspection


InspectionById = Annotated[Inspection, Depends(inspection_by_id)]
PLAN_ERRORS = (*AUTH_ERRORS, OutsideJurisdiction, InspectionPlanNotFound)
INSPECTION_ERRORS = (*AUTH_ERRORS, OutsideJurisdiction, InspectionNotFound)


@router.post(
    "/inspection-plans",
    tags=["inspections"],
    summary="制定双随机抽查计划 (approver, head, admin: their jurisdiction)",
    status_code=201,
    response_model=PlanOut,
    responses=problem_responses(*AUTH_ERRORS, OutsideJurisdiction, ValidationFailed),
)
async def create_plan(body: PlanCreate, service: Plans, principal: Planner) -> PlanOut:
    """A plan: items, area, period, ratio per risk class, inspector pool."""
    check_jurisdiction(principal, body.jurisdiction)
    return await service.create_plan(body, actor=principal)


@router.get(
    "/inspection-plans",
    tags=["inspections"],
    summary="抽查计划 (staff: their jurisdiction)",
    response_model=Page[PlanOut],
    responses=problem_responses(*AUTH_ERRORS, InvalidCursor),
)
async def list_plans(
    service: Plans, principal: Staff, limit: Limit = 20, cursor: str | None = None
) -> Page[PlanOut]:
    """Plans of the caller's area (without their draws: see each plan)."""
    after = decode_keyset(cursor, uuid.UUID)[0] if cursor else None
    rows = await service.repository.plans(
        jurisdiction_prefix=staff_scope(principal), after_id=after, limit=limit + 1
    )
    return page_of(
        [PlanOut.model_validate(r, from_attributes=True) for r in rows[:limit]],
        more=len(rows) > limit,
        cursor_of=lambda last: [str(last.id)],
    )


@router.get(
    "/inspection-plans/{plan_id}",
    tags=["inspections"],
    summary="抽查计划及其抽取结果 (staff): with the seed and the draw's digests",
    response_model=PlanOut,
    responses=problem_responses(*PLAN_ERRORS),
)
async def get_plan(plan: PlanById, service: Plans) -> PlanOut:
    """A plan and its draw."""
    return await service.plan_out(plan)


@router.post(
    "/inspection-plans/{plan_id}/draw",
    tags=["inspections"],
    summary="随机抽取检查对象和检查人员 (approver, head, admin): once per plan",
    response_model=PlanOut,
    responses=problem_responses(*PLAN_ERRORS, PlanAlreadyDrawn, NotEnoughInspectors),
)
async def draw_plan(plan: PlanById, service: Plans, principal: Planner) -> PlanOut:
    """Draw targets and inspectors; the seed and inputs are recorded for replay."""
    return await service.draw(plan, actor=principal)


@router.get(
    "/inspection-plans/{plan_id}/draw-inputs",
    tags=["inspections"],
    summary="抽取的全部输入 (staff): replay them with licensing.inspections.draw.draw",
    response_model=DrawInputs,
    responses=problem_responses(*PLAN_ERRORS, PlanNotDrawn),
)
async def draw_inputs(plan: PlanById, service: Plans) -> DrawInputs:
    """The seed, candidates with risk classes, ratios, inspectors, conflicts and result."""
    return await service.draw_inputs(plan)


@router.post(
    "/inspection-plans/{plan_id}/replay",
    tags=["inspections"],
    summary="复现抽取 (staff): the draw recomputed from its recorded inputs",
    response_model=ReplayOut,
    responses=problem_responses(*PLAN_ERRORS, PlanNotDrawn),
)
async def replay_plan(plan: PlanById, service: Plans) -> ReplayOut:
    """Recompute and compare; ``matches`` is false only if the record was altered."""
    return await service.replay(plan)


@router.get(
    "/inspection-plans/{plan_id}/record",
    tags=["inspections"],
    summary="抽查计划的留痕记录 (staff): hash-chained, checked",
    response_model=PlanRecordOut,
    responses=problem_responses(*PLAN_ERRORS),
)
async def plan_record(plan: PlanById, service: Plans) -> PlanRecordOut:
    """The plan's record with whether its chain is intact."""
    return await service.record(plan)


@router.get(
    "/inspection-plans/{plan_id}/statistics",
    tags=["inspections"],
    summary="抽查统计 (staff): drawn, inspected, compliant share, corrections closed on time",
    response_model=PlanStatistics,
    responses=problem_responses(*PLAN_ERRORS),
)
async def plan_statistics(plan: PlanById, service: Reports) -> PlanStatistics:
    """Per item and in total."""
    return await service.statistics(plan)


@router.post(
    "/inspector-conflicts",
    tags=["inspections"],
    summary="登记检查人员回避情形 (approver, head, admin)",
    status_code=201,
    response_model=ConflictOut,
    responses=problem_responses(
        *AUTH_ERRORS, OutsideJurisdiction, InspectorConflictExists, ValidationFailed
    ),
)
async def declare_conflict(body: ConflictCreate, service: Plans, principal: Planner) -> ConflictOut:
    """The inspector is never drawn for that holder (in any plan: a conflict is the person's).
    Declared by staff where the holder holds a licence: another district's staff could otherwise
    keep an inspector out of draws they have no part in."""
    held = await service.holder_jurisdictions(body.holder_uscc)
    check_holder_jurisdiction(principal, body.holder_uscc, held)
    return await service.declare_conflict(body, actor=principal)


@router.get(
    "/inspections",
    tags=["inspections"],
    summary="抽查任务 (staff: their jurisdiction)",
    response_model=Page[InspectionOut],
    responses=problem_responses(*AUTH_ERRORS, InvalidCursor),
)
async def list_inspections(
    service: Results,
    principal: Staff,
    plan: uuid.UUID | None = None,
    status: InspectionStatus | None = None,
    limit: Limit = 20,
    cursor: str | None = None,
) -> Page[InspectionOut]:
    """Inspections by due date."""
    after = decode_keyset(cursor, date, uuid.UUID) if cursor else None
    rows = await service.inspections(
        plan_id=plan,
        jurisdiction_prefix=staff_scope(principal),
        status=status,
        after=after,
        limit=limit + 1,
    )
    return page_of(
        [InspectionOut.model_validate(r) for r in rows[:limit]],
        more=len(rows) > limit,
        cursor_of=lambda last: [last.due_on.isoformat(), str(last.id)],
    )


@router.get(
    "/inspections/{inspection_id}",
    tags=["inspections"],
    summary="抽查任务详情 (staff)",
    response_model=InspectionDetail,
    responses=problem_responses(*INSPECTION_ERRORS),
)
async def get_inspection(inspection: InspectionById, service: Results) -> InspectionDetail:
    """An inspection with its evidence and proposals."""
    return await service.detail(inspection)


@router.post(
    "/inspections/{inspection_id}/evidence",
    tags=["inspections"],
    summary="上传检查证据 (reviewer, approver, head, admin): PDF, OFD, PNG or JPEG",
    status_code=201,
    response_model=EvidenceOut,
    responses=problem_responses(
        *INSPECTION_ERRORS, InspectionAlreadyRecorded, PayloadTooLarge, UnsupportedMediaType
    ),
)
async def add_evidence(
    inspection: InspectionById,
    service: Results,
    principal: Recorder,
    file: Annotated[UploadFile, File(description="检查记录、现场照片等")],
) -> EvidenceOut:
    """Store a file checked by its content, with its SHA-256."""
    return await service.add_evidence(inspection, file=file, actor=principal)


@router.post(
    "/inspections/{inspection_id}/result",
    tags=["inspections"],
    summary="录入抽查结果 (reviewer, approver, head, admin): published, notified, acted on",
    response_model=InspectionDetail,
    responses=problem_responses(
        *INSPECTION_ERRORS,
        InspectionAlreadyRecorded,
        EvidenceRequired,
        RectificationDeadlineInvalid,
        RectificationPeriodRunning,
        ValidationFailed,
    ),
)
async def record_result(
    body: ResultCreate, inspection: InspectionById, service: Results, principal: Recorder
) -> InspectionDetail:
    """合格 / 不合格 (findings, severity) / 未发现 / 无法联系, with its consequences."""
    return await service.record_result(inspection, body, actor=principal)


@router.get(
    "/inspection-proposals",
    tags=["inspections"],
    summary="抽查提出的证照处理建议 (staff): carried out through the licence act endpoints",
    response_model=list[ProposalOut],
    responses=problem_responses(*AUTH_ERRORS),
)
async def list_proposals(service: Results, principal: Staff) -> list[ProposalOut]:
    """Proposed acts with each licence's status now."""
    return await service.proposals(jurisdiction_prefix=staff_scope(principal))


@public_router.get(
    "/public/inspection-results",
    tags=["inspections"],
    summary="双随机抽查结果公示 (public, no login)",
    response_model=Page[PublicResult],
    responses=problem_responses(InvalidCursor),
)
async def public_results(
    service: Reports,
    item: Annotated[str | None, Query(pattern=ITEM_CODE_PATTERN)] = None,
    limit: Limit = 20,
    cursor: str | None = None,
) -> Page[PublicResult]:
    """Published results, newest first: holder, USCC, item, date, outcome."""
    after = decode_keyset(cursor, date, uuid.UUID) if cursor else None
    rows = await service.public_results(item_code=item, after=after, limit=limit + 1)
    # The cursor is the last row's (published_on, id), the id not being part of what is published.
    last_id = str(rows[limit - 1][0]) if len(rows) > limit else ""
    return page_of(
        [r for _, r in rows[:limit]],
        more=len(rows) > limit,
        cursor_of=lambda last: [last.published_on.isoformat(), last_id],
    )


@public_router.get(
    "/public/inspection-plans",
    tags=["inspections"],
    summary="双随机抽查计划及抽取随机数公示 (public, no login): seed and digests of each draw",
    response_model=Page[PublicPlan],
    responses=problem_responses(InvalidCursor),
)
async def public_plans(
    service: Reports, limit: Limit = 20, cursor: str | None = None
) -> Page[PublicPlan]:
    """Drawn plans, newest draw first: items, area, period, ratios, and the draw's algorithm,
    seed, counts and SHA-256 of its inputs and result (replay: docs/inspections.md)."""
    after = decode_keyset(cursor, datetime, uuid.UUID) if cursor else None
    rows = await service.public_plans(after=after, limit=limit + 1)
    return page_of(
        rows[:limit],
        more=len(rows) > limit,
        cursor_of=lambda last: [last.drawn_at.isoformat(), str(last.id)],
    )

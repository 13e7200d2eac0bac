"""Approval's REST API (``/api/v1``). Routes stay thin: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse
from govshared.auth import STAFF_ROLES, Principal, Role, get_principal, require_roles
from govshared.db import AutoCommitRoute
from govshared.idempotency import check_key
from govshared.pagination import Page, decode_cursor, encode_cursor
from govshared.problems import (
    DependencyUnavailable,
    Forbidden,
    IdempotencyKeyReused,
    Unauthenticated,
    ValidationFailed,
    problem_responses,
)

from approval.dependencies import ApplicationById, Applications, Session
from approval.errors import ApplicationNotFound, ApprovalCancelled, ItemNotFound
from approval.repository import ItemRepository
from approval.schemas import ApplicationCreate, ApplicationOut, AuditEventOut, ItemOut

router = APIRouter(prefix="/api/v1", route_class=AutoCommitRoute)
AUTH_ERRORS = (Unauthenticated, Forbidden)


@router.get("/items", tags=["catalogue"], summary="事项目录 (public)", response_model=list[ItemOut])
async def list_items(session: Session) -> list[ItemOut]:
    """The public catalogue of approval items."""
    return [ItemOut.model_validate(i) for i in await ItemRepository(session).all()]


@router.get(
    "/items/{code}",
    tags=["catalogue"],
    summary="事项及其办事指南 (public)",
    response_model=ItemOut,
    responses=problem_responses(ItemNotFound),
)
async def get_item(code: str, session: Session) -> ItemOut:
    """One item with its current service guide."""
    item = await ItemRepository(session).get(code)
    if item is None:
        raise ItemNotFound(f"事项编码 {code} 不在事项目录中")
    return ItemOut.model_validate(item)


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
    ),
)
async def submit_application(
    body: ApplicationCreate,
    service: Applications,
    principal: Annotated[Principal, Depends(require_roles(Role.ENTERPRISE))],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="A retry with the same key returns the first result, never a second application",
        ),
    ] = None,
) -> JSONResponse:
    """Submit an application for a catalogue item; the applicant is the token's enterprise."""
    result = await service.submit(
        principal=principal, body=body, idempotency_key=check_key(idempotency_key)
    )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)


@router.get(
    "/applications",
    tags=["applications"],
    summary="我的申请 (enterprise)",
    response_model=Page[ApplicationOut],
    responses=problem_responses(*AUTH_ERRORS, ValidationFailed),
)
async def list_my_applications(
    service: Applications,
    principal: Annotated[Principal, Depends(require_roles(Role.ENTERPRISE))],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> Page[ApplicationOut]:
    """The enterprise's own applications, newest first."""
    after = None
    if cursor:
        at, ident = decode_cursor(cursor, 2)
        try:
            after = (datetime.fromisoformat(at), uuid.UUID(ident))
        except (TypeError, ValueError) as exc:
            raise ValidationFailed("分页游标无效") from exc
    rows = await service.list_own(principal=principal, limit=limit + 1, after=after)
    page = [ApplicationOut.model_validate(r) for r in rows[:limit]]
    next_cursor = (
        encode_cursor([page[-1].submitted_at.isoformat(), str(page[-1].id)])
        if len(rows) > limit
        else None
    )
    return Page[ApplicationOut](items=page, next_cursor=next_cursor)


@router.get(
    "/applications/{application_id}",
    tags=["applications"],
    summary="申请详情",
    response_model=ApplicationOut,
    responses=problem_responses(*AUTH_ERRORS, ApplicationNotFound),
    dependencies=[Depends(require_roles(Role.ENTERPRISE, Role.SERVICE, *STAFF_ROLES))],
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
    dependencies=[Depends(get_principal)],
)
async def application_events(
    application: ApplicationById, service: Applications
) -> list[AuditEventOut]:
    """Every transition of the application, oldest first."""
    return [AuditEventOut.model_validate(e) for e in await service.events(application=application)]
